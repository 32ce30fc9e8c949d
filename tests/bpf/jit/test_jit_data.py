"""Every ``.data`` test of tests/bpf/data through the JIT (the interpreter's suite).

Each file is run as the conformance plugin runs it (memory buffer in r1/r2, the plugin's
helpers, helper 5 "unwind"), by the JIT in checked mode (every file, including those that
expect a memory fault) and unchecked (files that expect a result). Results and error
messages must equal the file's expectation, which the interpreter meets too.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from uringbpf.bpf import conformance, isa, jit
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.memory import AddressSpace, BpfRuntimeError, Buffer

DATA = Path(__file__).resolve().parent.parent / "data"
FILES = sorted(DATA.glob("*.data"))


def test_the_suite_is_there():
    # The ISA engineer's suite: if it moved, the parametrised test below would run nothing.
    assert len(FILES) >= 100


def _run(test: conformance.DataTest, checked: bool) -> tuple[str, object]:
    program = isa.Program("main", test.program(), section=".text")
    runtime = Runtime(mem=AddressSpace())
    buf = None
    if test.mem:
        buf = Buffer(len(test.mem), test.mem)
        runtime.mem.add_buffer(buf, True, "mem")
    try:
        fn = jit.compile(program, runtime, checked=checked,
                         helpers=conformance.plugin_helpers(),
                         unwind_helper=conformance.UNWIND_HELPER)
        try:
            return "ok", fn(buf.addr if buf is not None else 0, len(test.mem))
        finally:
            fn.close()
    except BpfRuntimeError as exc:
        return "error", str(exc)


@pytest.mark.parametrize("path", FILES, ids=[p.stem for p in FILES])
def test_data_file(path):
    test = conformance.parse_data_file(path)
    if test.skip:
        pytest.skip(test.skip)
    kind, value = _run(test, checked=True)
    if test.error is not None:
        assert (kind, value) == ("error", test.error)
    else:
        assert kind == "ok", value
        assert value == test.result
        # The unchecked build must agree when the program is well-behaved.
        assert _run(test, checked=False) == ("ok", test.result)
