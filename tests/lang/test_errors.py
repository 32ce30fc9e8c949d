"""Each refusal is one message naming the Python file and line: an unsupported construct,
a type error, a verifier refusal, a run-time failure."""

from __future__ import annotations

import inspect

import pytest

from uringbpf.lang import (LangCompileError, LangRuntimeError, LangVerifierError, Module, ptr, u8,
                           u32, u64)

HERE = __file__


def _line_of(fn, text: str) -> int:
    lines, first = inspect.getsourcelines(fn)
    for i, line in enumerate(lines):
        if text in line:
            return first + i
    raise AssertionError(text)


def test_unsupported_construct_names_file_and_line():
    bpf = Module("bad1")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        xs = [1, 2, 3]          # a list: not in the subset
        return 0

    with pytest.raises(LangCompileError) as ei:
        bpf.compile()
    e = ei.value
    assert e.filename == HERE
    assert e.line == _line_of(prog.fn, "xs = [1, 2, 3]")
    assert str(e).startswith(f"{HERE}:{e.line}: a list is not supported")
    assert "\n" not in str(e)


def test_try_statement_refused():
    bpf = Module("bad2")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        try:
            pass
        finally:
            pass
        return 0

    with pytest.raises(LangCompileError, match="try/except is not supported") as ei:
        bpf.compile()
    assert ei.value.line == _line_of(prog.fn, "try:")


def test_type_error_names_line():
    bpf = Module("bad3")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        x = u32(1)
        x = u64(2)              # a local keeps the type of its first assignment
        return x

    with pytest.raises(LangCompileError, match=r"x is u32; this value is u64") as ei:
        bpf.compile()
    assert ei.value.filename == HERE
    assert ei.value.line == _line_of(prog.fn, "x = u64(2)")


def test_plain_int_into_typed_local_refused():
    bpf = Module("bad4")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        x = u32(1)
        x = 5
        return x

    with pytest.raises(LangCompileError, match=r"write x = u32\(5\)"):
        bpf.compile()


def test_verifier_refusal_names_python_line():
    bpf = Module("bad5")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        if n < 4:
            return 0
        return u64(data[64])    # beyond what the length check proved

    with pytest.raises(LangVerifierError) as ei:
        prog.run(bytes(100))
    e = ei.value
    assert e.filename == HERE
    assert e.line == _line_of(prog.fn, "data[64]")
    assert "packet" in e.message or "invalid" in e.message
    assert f"{inspect.getsourcefile(prog.fn).rsplit('/', 1)[1]}:{e.line}" in e.log


def test_verifier_refusal_in_subprogram_names_its_line():
    bpf = Module("bad6")

    @bpf.function
    def read_far(p: ptr[u8]) -> u32:
        return u32(p[300])

    @bpf.socket_filter
    def prog(data, n) -> u64:
        if n < 8:
            return 0
        return u64(read_far(data))

    with pytest.raises(LangVerifierError) as ei:
        prog.run(bytes(400))
    assert ei.value.line == _line_of(read_far.fn, "p[300]")


def test_null_read_refused_by_verifier_and_raises_in_app():
    from uringbpf.lang.appmode import LangMemoryError
    bpf = Module("bad7")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        p = ptr[u8](0)
        if n > 1000000:
            return u64(p[0])    # never reached at run time, but a NULL read for the verifier
        return 1

    with pytest.raises(LangVerifierError) as ei:
        prog.run(b"x")
    assert ei.value.line == _line_of(prog.fn, "p[0]")
    assert prog.run_in_app(b"x") == 1
    bpf2 = Module("bad8")

    @bpf2.socket_filter
    def prog2(data, n) -> u64:
        p = ptr[u8](0)
        return u64(p[0])

    with pytest.raises(LangMemoryError):
        prog2.run_in_app(b"x")


BAD_BODIES = [
    ("return 1.5", "a float constant is not supported"),
    ("x = n / 2\n    return 0", "/ is not integer division"),
    ("return undefined_name", "name 'undefined_name' is not defined"),
    ("return u32(n) // s32(2) // 1.0", "a float constant is not supported"),
    ("with open('x'):\n        pass\n    return 0", "with is not supported"),
    ("return len(data)", "len cannot be called from a program"),
    ("x = u32(1) if n else 0\n    return 0", "one branch is a plain int"),
    ("return data * 2", "* on ptr[u8] and int: pointer arithmetic"),
    ("for i in [1, 2]:\n        pass\n    return 0", "range(...) or bpf_range(...) only"),
    ("st.ro = 1\n    return 0", "ro is in .rodata"),
]


@pytest.mark.parametrize("body,message", BAD_BODIES)
def test_refusals_name_the_line(tmp_path, body, message):
    src = tmp_path / "prog_bad.py"
    src.write_text(
        "from uringbpf.lang import Module, s32, u32, u64\n"
        "bpf = Module('bad')\n"
        "@bpf.rodata\n"
        "class st:\n"
        "    ro: u32 = 1\n"
        "@bpf.socket_filter\n"
        "def prog(data, n) -> u64:\n"
        f"    {body}\n")
    import importlib.util
    import sys
    name = f"prog_bad_{abs(hash(body))}"
    spec = importlib.util.spec_from_file_location(name, src)
    mod = importlib.util.module_from_spec(spec)
    sys.modules[name] = mod          # inspect finds class sources through sys.modules
    try:
        spec.loader.exec_module(mod)
        with pytest.raises(LangCompileError) as ei:
            mod.bpf.compile()
    finally:
        del sys.modules[name]
    assert message in str(ei.value)
    assert ei.value.filename == str(src)
    assert ei.value.line >= 8


def test_run_time_error_maps_the_failing_instruction_to_its_line():
    from uringbpf.bpf.memory import BpfRuntimeError
    bpf = Module("rt_map")

    @bpf.socket_filter
    def prog(data, n) -> u64:
        if n < 2:
            return 0
        x = u32(data[0])
        return u64(x * 3 + data[1])

    loaded = bpf.load("interp")
    try:
        lines = loaded.lines("prog")
        pc = max(i for i, ln in enumerate(lines) if ln and ln[1] == _line_of(prog.fn, "x * 3"))
        err = loaded.runtime_error("prog", BpfRuntimeError("access outside every region", pc))
    finally:
        loaded.close()
    assert isinstance(err, LangRuntimeError)
    assert (err.filename, err.line, err.pc) == (HERE, _line_of(prog.fn, "x * 3"), pc)
    assert str(err).startswith(f"{HERE}:{err.line}: insn {pc}: access outside every region")


def test_local_used_before_assignment_is_refused_like_python():
    bpf = Module("unbound")
    LIMIT = 5

    @bpf.socket_filter
    def prog(data, n) -> u64:
        if n > LIMIT:
            total = u64(n)      # `total` is local everywhere in the function, as in Python
        return total

    with pytest.raises(LangCompileError, match="'total' is used before it is assigned"):
        bpf.compile()


def test_a_local_may_shadow_a_module_name():
    bpf = Module("shadow")
    LIMIT = 5

    @bpf.socket_filter
    def prog(data, n) -> u64:
        LIMIT = u64(7)          # a local, as Python makes it
        return LIMIT + n

    assert prog.run_in_app(b"ab") == prog.run(b"ab") == 9
