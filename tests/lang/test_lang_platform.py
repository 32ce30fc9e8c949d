"""The platform is explicit: a module's programs resolve helpers and kfuncs against the
platform the module was given, in the compiled run (loader, verifier, engines) and in the
application run alike; nothing is looked up in a process-wide table."""

from __future__ import annotations

import pytest

from uringbpf.bpf.helpers import Arg, Ret
from uringbpf.errors import BpfLoadError
from uringbpf.lang import Kfunc, Module, u64
from uringbpf.platform import default_platform

h7_mix = Kfunc("h7_mix", u64, (u64, u64), None)


def _with_mix() -> object:
    p = default_platform()

    @p.kfunc("h7_mix", (Arg.SCALAR, Arg.SCALAR), Ret.INTEGER)
    def _mix(rt, a, b, *_):
        return (a * 3 + b) & 0xFFFFFFFFFFFFFFFF
    return p


def _module(platform) -> tuple[Module, object]:
    bpf = Module("platform_test", platform=platform)

    @bpf.socket_filter
    def mix(data, n) -> u64:
        return h7_mix(n, 7)
    return bpf, mix


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_kfunc_of_the_module_platform_both_ways(engine):
    bpf, mix = _module(_with_mix())
    assert mix.run_in_app(b"abcde") == 22
    assert mix.run(b"abcde", engine) == 22


def test_platform_without_the_kfunc_refuses_both_ways():
    bpf, mix = _module(default_platform())      # a fresh default platform: no h7_mix
    with pytest.raises(NotImplementedError, match="h7_mix"):
        mix.run_in_app(b"abc")
    with pytest.raises(BpfLoadError, match="h7_mix"):
        mix.run(b"abc", "interp")


def test_default_is_the_shared_default_platform():
    from uringbpf.bpf.platform import default_platform as shared
    assert Module("m").platform is shared()
