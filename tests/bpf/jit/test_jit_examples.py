"""Every example program of the repository (examples/**/*.bpf.c) JIT-compiles, checked
and unchecked, with its kfuncs bound to their native twins (the designs' C code)."""

from __future__ import annotations

from pathlib import Path

import pytest

from uringbpf.bpf import cc, helpers, isa, jit
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.object import BpfObject

ROOT = Path(__file__).resolve().parents[3]
SOURCES = sorted((ROOT / "examples").glob("*/**/*.bpf.c"))  # */: examples/<design> are symlinks


def test_there_are_examples():
    assert len(SOURCES) >= 3


@pytest.mark.parametrize("src", SOURCES, ids=[str(p.relative_to(ROOT / "examples")) for p in SOURCES])
def test_example_compiles(src, tmp_path):
    out = tmp_path / (src.stem + ".o")
    cc.compile_c(src, out, cpu="v3")
    obj = BpfObject.open(out)
    try:
        assert obj.programs
        for name, loaded in obj.programs.items():
            program = loaded.program
            for checked in (False, True):
                fn = jit.compile(program, Runtime(), checked=checked)
                assert fn.address
                fn.close()
            # kfuncs with a native twin are direct calls, the others Python callbacks.
            fn = jit.compile(program, Runtime())
            for index, kname in enumerate(program.kfuncs):
                k = helpers.get_kfunc(kname)
                used = any(i.is_call and i.src == isa.PSEUDO_KFUNC_CALL and i.imm == index
                           for i in program.insns)
                if k is not None and used:
                    through_python = ("kfunc", index) in fn.slots
                    assert through_python == (not k.native), (name, kname)
            fn.close()
    finally:
        obj.close()
