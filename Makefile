# Entry points: `make demo`, `make test`, `make wheel-check`. All build .venv from pyproject.toml.
#
# What gets installed (and why):
#   make demo  uringbpf (editable) alone: no dependencies, BPF programs run on the
#              interpreter. The JIT's llvmlite (~175 MB installed) is the uringbpf[jit]
#              extra, which `make test` installs (the demo then runs on the JIT). Plus the
#              `uringbpf[cc]` extra -- the ziglang package, ~410 MB installed -- only when
#              no system clang can compile BPF (install clang to skip it: apt install clang).
#   make test  the above plus the JIT and pytest, pytest-timeout, hypothesis (`uringbpf[test]`).
#
# The verifier's compiled core (setup.py; docs/internals.md "The compiled verifier core"):
# Cython compiles the hot verifier modules (~1 min of CPU). `make demo` does not build it:
# the examples verify in ~0.1 s either way, and a first run should not wait for a C compile
# (every `pip install -e` here passes URINGBPF_BUILD_CORE=0). `make core` builds it in place
# (Cython then goes into .venv); `make test` builds it first and runs the suite with
# URINGBPF_VERIFIER=compiled (a missing or stale core is then an error, not a silently slower
# run); the pure-Python core stays tested by tests/bpf/verifier/test_compiled_core.py
# (URINGBPF_VERIFIER=pure). Edit a verifier module and the build is *stale*:
# uringbpf.bpf.verifier.CORE says so and the pure-Python modules run (never the old compiled
# ones) until `make core`. A wheel (`pip install .`, `make wheel-check`) carries the core.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip -q --disable-pip-version-check
DEMO_STAMP := $(VENV)/.demo-installed
TEST_STAMP := $(VENV)/.test-installed
CORE_SRC := $(wildcard src/uringbpf/bpf/verifier/*.py src/uringbpf/bpf/verifier/*.pxd) setup.py
CORE_STAMP := src/uringbpf/bpf/verifier/_compiled/SOURCES.sha256

.PHONY: demo test venv clean bench wheel-check core

# The BPF compiler decides the [cc] extra: ask uringbpf's own driver whether a system clang
# can build BPF (the same probe `uringbpf cc` uses), after installing uringbpf itself.
$(DEMO_STAMP): pyproject.toml
	@start=$$(date +%s); \
	if [ ! -x $(PY) ]; then \
	  echo "make: creating $(VENV) (python venv)"; $(PYTHON) -m venv $(VENV) || exit 1; fi; \
	echo "make: installing uringbpf (editable; no dependencies: without the uringbpf[jit]"; \
	echo "      extra -- llvmlite, ~175 MB -- programs run on the interpreter; make test adds it)"; \
	URINGBPF_BUILD_CORE=0 $(PIP) install -e . || exit 1; \
	if $(PY) -c "from uringbpf.bpf import cc; cc.find_compiler(prefer='clang')" 2>/dev/null; then \
	  echo "make: a system clang compiles BPF: not installing the ziglang compiler"; \
	else \
	  echo "make: no system clang can compile BPF: installing uringbpf[cc] (the ziglang"; \
	  echo "      package, ~80 MB download, ~410 MB installed; 'apt install clang' avoids it)"; \
	  URINGBPF_BUILD_CORE=0 $(PIP) install -e '.[cc]' || exit 1; \
	fi; \
	echo "make: $(VENV) ready in $$(( $$(date +%s) - start )) s ($$(du -sm $(VENV) | cut -f1) MB;" \
	  "$$(du -sm --exclude=ziglang $(VENV) | cut -f1) MB without the ziglang compiler)"
	@touch $@

$(TEST_STAMP): $(DEMO_STAMP)
	@echo "make: installing the JIT (llvmlite, ~45 MB download) and the test tools (pytest,"
	@echo "      pytest-timeout, hypothesis)"
	URINGBPF_BUILD_CORE=0 $(PIP) install -e '.[test,jit]'
	@touch $@

venv: $(TEST_STAMP)

# Rebuild the compiled verifier core in place when a verifier source is newer than it.
$(CORE_STAMP): $(CORE_SRC) | $(DEMO_STAMP)
	@$(PY) -c "import Cython" 2>/dev/null || $(PIP) install 'Cython>=3.0'
	$(PY) setup.py -q build_ext --inplace

core: $(CORE_STAMP)

demo: $(DEMO_STAMP)
	@echo "make: running 'uringbpf demo' (the first run compiles the native parts and the"
	@echo "      example programs, ~30 s; later runs reuse the cache; its first line says"
	@echo "      which engine runs the BPF programs)"
	$(VENV)/bin/uringbpf demo

test: $(TEST_STAMP) $(CORE_STAMP)
	URINGBPF_VERIFIER=compiled $(PY) -m pytest -q -p no:cacheprovider

bench: $(TEST_STAMP)       # the benchmarks time the JIT: the [jit] extra
	$(VENV)/bin/uringbpf bench all

# A non-editable install from a built wheel, in a fresh venv, without the source tree on
# sys.path: what `pip install uringbpf` users get (CI runs it after `make test`).
wheel-check: $(DEMO_STAMP)
	.ci/wheel-check

clean:
	rm -rf $(VENV) build src/*.egg-info src/uringbpf/bpf/verifier/_compiled

# The differential suite in a Linux 7.2 guest under QEMU (tools/kernel-vm, docs/kernel.md):
# sets the guest up (cached), exits 0 with one line when no suitable kernel exists.
.PHONY: kernel-test
kernel-test: venv
	PY=$(PY) bash tools/kernel-vm/kernel-test
