"""The first load after an edit (issue #19): the verdict cache never stands in for the
verifier when the program changed, and its cheaper bookkeeping (the source walk, the
instruction fast path of the key) computes exactly what the general code does."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import uringbpf  # noqa: F401  (installs the default platform)
from uringbpf.bpf import cc, isa, verify_cache
from uringbpf.bpf.object import BpfObject
from uringbpf.bpf.run import run_program
from uringbpf.errors import BpfVerifierError

from test_load_path_cache import cache  # noqa: F401  (autouse: a private, empty cache per test)

SRC = """\
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";

SEC("socket")
int first(unsigned char *data, unsigned long len)
{
	unsigned int s = 0;
	if (len < LEN)
		return 0;
	for (int i = 0; i < LEN; i++)
		s += data[i];
	return s + BIAS;
}
"""


def _build(tmp_path: Path, length: int, bias: int, guard: bool = True) -> Path:
    """The program with its constants edited in; the same object path every time, as a
    developer rebuilding after an edit."""
    text = SRC.replace("LEN", str(length)).replace("BIAS", str(bias))
    if not guard:
        text = text.replace("\tif (len < %d)\n\t\treturn 0;\n" % length, "")
    src = tmp_path / "edit.bpf.c"
    src.write_text(text)
    return cc.compile_c(src, tmp_path / "edit.o")


def _run(path: Path) -> tuple[int, dict]:
    """r0 of the program over bytes 1..64 and what the cache did for its load."""
    before = dict(verify_cache.stats())
    r0 = run_program(path, "first", bytes(range(1, 65)), engine="interp").retval
    after = verify_cache.stats()
    return r0, {k: after[k] - before[k] for k in ("hits", "misses", "stores")}


def test_a_load_after_an_edit_verifies_the_edited_program(tmp_path):
    path = _build(tmp_path, 8, 0)
    assert _run(path)[1] == {"hits": 0, "misses": 1, "stores": 1}
    assert _run(path)[1] == {"hits": 1, "misses": 0, "stores": 0}      # unchanged: cached
    r0, counts = _run(_build(tmp_path, 8, 5))                          # edited: verified
    assert counts == {"hits": 0, "misses": 1, "stores": 1} and r0 == sum(range(1, 9)) + 5


def test_an_edit_that_makes_the_program_unsafe_is_refused_after_a_cached_load(tmp_path):
    path = _build(tmp_path, 8, 0)
    _run(path)
    assert _run(path)[1]["hits"] == 1
    # no length check any more: data[i] may read past the packet, the verifier must say so
    with pytest.raises(BpfVerifierError):
        BpfObject.open(_build(tmp_path, 8, 0, guard=False)).load(engine="interp")


def test_the_key_writes_a_list_of_instructions_as_the_general_form_does():
    class Sub(isa.Insn):
        """A subclass takes the general path; its form must be the same."""

    insns = [isa.Insn(0xB7, 1, 0, 0, 7), Sub(0x95, 0, 0, 0, 0), [isa.Insn(0x18, 2, 0, 0, 1, 1 << 40)]]
    general = ["list", [["insn", [0xB7, 1, 0, 0, 7, 0]], ["insn", [0x95, 0, 0, 0, 0, 0]],
                        ["list", [["insn", [0x18, 2, 0, 0, 1, 1 << 40]]]]]]
    assert verify_cache._canon(insns) == general
    assert verify_cache._canon(tuple(insns)) == general
    # an instruction never writes the same JSON as the plain list of its fields
    assert json.dumps(verify_cache._canon([isa.Insn(0xB7, 1, 0, 0, 7)])) != \
        json.dumps(verify_cache._canon([[0xB7, 1, 0, 0, 7, 0]]))


def test_the_source_walk_finds_every_source_of_the_package_but_the_engines():
    bpf = Path(verify_cache.__file__).resolve().parent
    expected = sorted(p for p in bpf.glob("**/*") if p.suffix in (".py", ".pxd")
                      and "__pycache__" not in p.relative_to(bpf).parts
                      and not (p.parent == bpf and p.name in verify_cache._ENGINE_ONLY))
    files = verify_cache.source_files()
    assert files[:-2] == expected
    assert files[-2:] == [bpf.parent / "errors.py", bpf.parent / "native" / "__init__.py"]
    # the verifier's compiled-core declarations are hashed too, the engines are not
    assert bpf / "verifier" / "state.pxd" in files and bpf / "jit.py" not in files
