"""uringbpf.native: one load per module, each caller's prototypes set exactly once."""

import ctypes

import pytest

from uringbpf import native


def test_configure_runs_once_per_function_and_every_function_runs():
    calls = []

    def first(lib):
        calls.append(("first", lib))

    def second(lib):
        calls.append(("second", lib))

    a = native.load("kbuf", configure=first)
    b = native.load("kbuf", configure=first)
    c = native.load("kbuf", configure=second)
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
