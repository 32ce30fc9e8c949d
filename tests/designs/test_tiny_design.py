"""The test-only design of docs/adding-a-design.md: a platform with one more line loads and
runs a program through its kfunc and section, on both engines; nothing of it is imported
or compiled before a program needs it."""

from __future__ import annotations

import ctypes
import sys
from pathlib import Path

import pytest

from uringbpf.bpf import cc
from uringbpf.bpf.object import BpfObject
from uringbpf.errors import ProgTypeError
from uringbpf.platform import default_platform

HERE = Path(__file__).resolve().parent


def tiny_platform():
    """The default platform plus the one line docs/adding-a-design.md asks for."""
    p = default_platform()
    p.add_design("tiny_design", kfuncs={"bpf_tiny_scale"}, sections={"tiny"})
    return p


@pytest.fixture(scope="module")
def scale_obj(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "scale.bpf.o"
    cc.compile_c(HERE / "tiny_design" / "examples" / "scale.bpf.c", out)
    return out


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_a_program_runs_through_the_designs_kfunc_and_section(scale_obj, engine):
    sys.modules.pop("tiny_design", None)
    platform = tiny_platform()
    obj = BpfObject.open(scale_obj)
    assert "tiny_design" not in sys.modules          # opened, nothing needed yet
    obj.load(engine=engine, platform=platform)
    assert "tiny_design" in sys.modules              # the kfunc lookup imported it
    assert platform.prog_type_for(obj.programs["scale"].program).name == "tiny"
    ctx = (ctypes.c_uint64 * 2)(20, 3)
    prog = obj.programs["scale"]
    prog.runtime.mem.add(ctypes.addressof(ctx), ctypes.sizeof(ctx), True, "tiny_ctx")
    assert prog(ctypes.addressof(ctx)) == 20 * 3 + 1
    assert list(ctx) == [20, 6]
    obj.close()


def test_the_verifier_applies_the_designs_context_rules(tmp_path):
    src = tmp_path / "bad.bpf.c"
    src.write_text('#include <linux/types.h>\n#include <bpf/bpf_helpers.h>\n'
                   'SEC("tiny/w") int w(__u64 *ctx) { ctx[0] = 1; return 0; }\n'
                   'char LICENSE[] SEC("license") = "GPL";\n')
    cc.compile_c(src, tmp_path / "bad.o")
    obj = BpfObject.open(tmp_path / "bad.o")
    with pytest.raises(Exception) as info:
        obj.load(engine="interp", platform=tiny_platform())
    assert type(info.value).__name__ == "BpfVerifierError" and info.value.program == "w"
    obj.close()


def test_without_the_line_the_section_is_unknown(scale_obj):
    obj = BpfObject.open(scale_obj)
    with pytest.raises((ProgTypeError, Exception)) as info:
        obj.load(engine="interp", platform=default_platform())
    assert "bpf_tiny_scale" in str(info.value) or "tiny" in str(info.value)
    obj.close()


def test_the_declaration_is_checked_against_what_the_design_provides():
    p = default_platform()
    p.add_design("tiny_design", kfuncs={"bpf_tiny_scale", "bpf_tiny_missing"})
    with pytest.raises(Exception, match="bpf_tiny_missing"):
        p.get_kfunc("bpf_tiny_scale")
