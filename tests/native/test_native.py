"""uringbpf.native: one load per module, each caller's prototypes set exactly once."""

import ctypes

import pytest

from uringbpf import native
from uringbpf.designs.kbuf.nativelib import NATIVE_SOURCE


def test_configure_runs_once_per_function_and_every_function_runs():
    calls = []

    def first(lib):
        calls.append(("first", lib))

    def second(lib):
        calls.append(("second", lib))

    a = native.load(NATIVE_SOURCE, configure=first)
    b = native.load(NATIVE_SOURCE, configure=first)
    c = native.load(NATIVE_SOURCE, configure=second)
    assert a is b is c
    assert calls == [("first", a), ("second", a)]


def test_register_prototypes_make_helper_shaped_calls():
    lib = native.load("base")
    native.set_register_prototypes(lib, ["ubpf_helper_get_prandom_u32"])
    fn = lib.ubpf_helper_get_prandom_u32
    assert fn.restype is ctypes.c_uint64 and fn.argtypes == [ctypes.c_uint64] * 5
    assert 0 <= fn(0, 0, 0, 0, 0) < 1 << 32


def test_unknown_native_module_is_a_clear_error():
    with pytest.raises(native.NativeBuildError, match="no native module"):
        native.load("no-such-module")


def test_compile_cached_reuses_the_object_until_an_input_changes(tmp_path, monkeypatch):
    from uringbpf.bpf import cc
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    src = tmp_path / "p.bpf.c"
    src.write_text('#include <bpf/bpf_helpers.h>\nSEC("socket") int p(void *c) { return 1; }\n'
                   'char LICENSE[] SEC("license") = "MIT";\n')
    first = cc.compile_cached(src)
    assert cc.compile_cached(src) == first                 # same inputs: same object
    (tmp_path / "local.h").write_text("/* a header beside the source */\n")
    assert cc.compile_cached(src) != first                 # a header beside it changed
    assert cc.compile_cached(src, defines=("X=1",)) != cc.compile_cached(src)
    with pytest.raises(cc.CompileError):
        cc.compile_cached(tmp_path / "missing.bpf.c")
