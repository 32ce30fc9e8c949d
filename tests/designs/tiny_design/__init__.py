"""A test-only design, written by following docs/adding-a-design.md alone.

It gives programs one kfunc (``bpf_tiny_scale``, a C twin in ``tiny.c`` next to this file)
and one program type, ``SEC("tiny/...")``, whose context is ``struct tiny_ctx { __u64
value; __u64 factor; }`` (read-only ``value``, read-write ``factor``).
"""

from __future__ import annotations

import ctypes
from pathlib import Path

from uringbpf import native
from uringbpf.bpf import progtypes as pt
from uringbpf.bpf.helpers import Arg, Runtime
from uringbpf.bpf.platform import Design, Platform

#: the design's C, built on first use (never at import)
NATIVE_SOURCE = Path(__file__).resolve().with_name("tiny.c")
KFUNC_SCALE = "bpf_tiny_scale"
PROG_TYPE = "tiny"
CTX = pt.Layout("tiny_ctx", 16, (pt.Field("value", 0, 8, read=True, write=False),
                                 pt.Field("factor", 8, 8, read=True, write=True)))


def lib() -> ctypes.CDLL:
    """The compiled ``tiny.c`` with its prototypes."""
    return native.load(NATIVE_SOURCE, configure=_set_prototypes)


def _set_prototypes(so: ctypes.CDLL) -> None:
    native.set_register_prototypes(so, ("tiny_kf_scale",))


def _kf_scale(rt: Runtime, r1: int, r2: int, r3: int, r4: int, r5: int) -> int:
    """The interpreter's entry: the same C the JIT calls (one implementation)."""
    return lib().tiny_kf_scale(r1, r2, 0, 0, 0)


class TinyDesign(Design):
    """One kfunc and one section."""

    name = "tiny"

    def contribute(self, platform: Platform) -> None:
        platform.kfunc(KFUNC_SCALE, (Arg.SCALAR, Arg.SCALAR),
                       prog_types=frozenset({PROG_TYPE}))(_kf_scale)
        platform.kfuncs[KFUNC_SCALE].native = (NATIVE_SOURCE, "tiny_kf_scale")
        platform.add_section("tiny", pt.ProgType(PROG_TYPE, ctx="struct", layout=CTX,
                                                 ret_range=None, sleepable=False))


DESIGN = TinyDesign()
