"""uringbpf.callbacks: the barrier between C and Python callbacks, and its one gap."""

import ctypes
import signal
import sys
from ctypes import CFUNCTYPE, c_uint64, c_void_p

import pytest

from uringbpf import native
from uringbpf.bpf import asm, isa, jit
from uringbpf.bpf.helpers import Arg, Helper, Proto, Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.callbacks import barrier, route_escapes

# C that lets a signal arrive while C runs, then calls back: Python handles the signal
# as the callback's first frame starts, before the barrier's try.
C_SOURCE = r"""
#include <signal.h>
#include <stdint.h>
uint64_t call_after_signal(uint64_t (*cb)(uint64_t), uint64_t arg)
{
	raise(SIGINT);
	return cb(arg);
}
uint64_t call(uint64_t (*cb)(uint64_t), uint64_t arg) { return cb(arg); }
"""

CB = CFUNCTYPE(c_uint64, c_uint64)


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    src = tmp_path_factory.mktemp("cb") / "callbacks_test.c"
    src.write_text(C_SOURCE)
    lib = native.load(src)
    for name in ("call_after_signal", "call"):
        getattr(lib, name).restype = c_uint64
        getattr(lib, name).argtypes = [c_void_p, c_uint64]
    return lib


def _guarded(seen):
    def fn(x):
        if x == 13:
            raise ValueError("thirteen")
        return x + 1

    def on_error(exc, args):
        seen.append((type(exc), args))
        return 99
    return CB(barrier(fn, on_error))


def test_barrier_hands_an_exception_to_on_error_and_its_value_to_c(lib):
    seen = []
    cb = _guarded(seen)
    assert lib.call(ctypes.cast(cb, c_void_p), 1) == 2
    assert lib.call(ctypes.cast(cb, c_void_p), 13) == 99
    assert seen == [(ValueError, (13,))]


def test_a_signal_that_arrived_in_c_escapes_the_barrier_unless_routed(lib):
    """The gap is real (first half), and route_escapes closes it (second half): a Ctrl-C
    that was pending when C called back must reach on_error, not be printed and lost."""
    seen, escaped = [], []
    cb = _guarded(seen)
    prev = sys.unraisablehook
    sys.unraisablehook = lambda u: escaped.append(u.exc_type)
    try:
        lib.call_after_signal(ctypes.cast(cb, c_void_p), 1)
    finally:
        sys.unraisablehook = prev
    assert escaped == [KeyboardInterrupt] and seen == []
    with route_escapes():
        lib.call_after_signal(ctypes.cast(cb, c_void_p), 1)
    assert seen == [(KeyboardInterrupt, ())]
    assert sys.unraisablehook is prev


def test_route_escapes_passes_other_reports_on(lib):
    got = []
    prev = sys.unraisablehook
    sys.unraisablehook = lambda u: got.append(u.exc_type)
    try:
        with route_escapes():
            def bare(x):            # a callback without a barrier: not ours to route
                raise KeyError(x)
            cb = CB(bare)
            lib.call(ctypes.cast(cb, c_void_p), 1)
    finally:
        sys.unraisablehook = prev
    assert got == [KeyError]


# --- a JIT program whose native helper lets a signal arrive, then calls a Python helper ---
# Helper 1 is libc's raise() itself (a native twin: JIT code calls it directly, no Python
# frame runs); helper 2 is implemented in Python, so the JIT calls it through a barrier
# trampoline: the pending SIGINT fires as that trampoline's frame starts.
JIT_RAISE_THEN_CALL = """
r1 = {sig}
call 1
r1 = 7
call 2
r0 += 40
exit
"""


def _jit(text: str, helpers: dict) -> jit.JitFunction:
    return jit.compile(isa.Program("p", asm.assemble(text)), Runtime(), helpers=helpers,
                       cache=False)


def _jit_raise_then_call(python_helper):
    libc = ctypes.CDLL(None)
    raise_addr = ctypes.cast(libc["raise"], c_void_p).value
    helpers = {1: Helper(Proto("raise", (Arg.SCALAR,)), lambda rt, *a: 0, 1, native=raise_addr),
               2: Helper(Proto("py_helper", (Arg.SCALAR,)), python_helper, 2)}
    return _jit(JIT_RAISE_THEN_CALL.format(sig=int(signal.SIGINT)), helpers)


def test_a_sigint_raised_in_jit_code_surfaces_from_the_jit_call():
    """JitFunction.__call__ runs JIT code that calls Python helpers: a Ctrl-C that arrived
    in native code escapes the helper's barrier unless routed.  Regression: it was printed
    and lost, the program ran on and returned 40 + garbage."""
    calls = []

    def py_helper(rt, r1, *_):
        calls.append(r1)
        return 2
    fn = _jit_raise_then_call(py_helper)
    escaped = []
    prev = sys.unraisablehook
    sys.unraisablehook = lambda u: escaped.append(u.exc_type)
    try:
        with pytest.raises(KeyboardInterrupt):
            fn()
    finally:
        sys.unraisablehook = prev
    assert escaped == [] and calls == []
    # the function stays usable: no stale error word, no stale parked exception
    fn.reset()
    assert fn.take_error() is None
    assert _jit("r1 = 7\ncall 2\nr0 += 40\nexit", {2: py_helper})() == 42
    assert calls == [7]


def test_a_sigint_before_a_native_helpers_callback_reaches_its_barrier(lib):
    """The class, not only trampolines: a native helper (here C's ``call``) may itself call
    back into Python through its own barrier; a Ctrl-C that arrived in native code fires as
    that callback starts.  JitFunction.__call__ routes it to that barrier's on_error."""
    seen = []
    cb = _guarded(seen)
    libc = ctypes.CDLL(None)
    natives = {1: ctypes.cast(libc["raise"], c_void_p).value,
               3: ctypes.cast(lib.call, c_void_p).value}
    helpers = {hid: Helper(Proto(f"native{hid}", (Arg.SCALAR, Arg.SCALAR)), lambda rt, *a: 0,
                           hid, native=addr) for hid, addr in natives.items()}
    text = (f"r1 = {int(signal.SIGINT)}\ncall 1\n"
            f"r1 = {ctypes.cast(cb, c_void_p).value} ll\nr2 = 5\ncall 3\nexit")
    fn = _jit(text, helpers)
    fn()
    assert seen == [(KeyboardInterrupt, ())]


# --- checked JIT code: the region-miss callback is a barrier callback too ---
# An access outside the region table calls back into Python (runtime.mem may have grown
# since the table was built).  A Ctrl-C that arrived in native code fires there.
CHECKED_ACCESSES = {
    "load": "r0 = *(u64 *)(r1 + 0)",
    "store": "*(u32 *)(r1 + 0) = r2",
    "atomic": "lock *(u64 *)(r1 + 0) += r2",
}


def _checked_raise_then_access(access: str) -> jit.JitFunction:
    libc = ctypes.CDLL(None)
    helpers = {1: Helper(Proto("raise", (Arg.SCALAR,)), lambda rt, *a: 0, 1,
                         native=ctypes.cast(libc["raise"], c_void_p).value)}
    text = (f"r6 = r1\nr1 = {int(signal.SIGINT)}\ncall 1\nr1 = r6\nr2 = 1\n"
            f"{access}\nr0 = 5\nexit")
    return jit.compile(isa.Program("p", asm.assemble(text)), Runtime(), checked=True,
                       helpers=helpers, cache=False)


@pytest.mark.parametrize("access", sorted(CHECKED_ACCESSES))
def test_a_sigint_before_a_checked_access_miss_surfaces_from_the_jit_call(access):
    """Regression: the region-miss callback's on_error answered "no region", so the
    interrupt became a BpfMemoryError (out of bounds) and was lost."""
    fn = _checked_raise_then_access(CHECKED_ACCESSES[access])
    escaped = []
    prev = sys.unraisablehook
    sys.unraisablehook = lambda u: escaped.append(u.exc_type)
    try:
        with pytest.raises(KeyboardInterrupt):
            fn(0x10)                 # no region there: the miss callback runs
    finally:
        sys.unraisablehook = prev
    assert escaped == []
    assert fn.take_error() is None   # nothing stale: the next run reports its own outcome


def test_a_checked_function_stays_usable_after_an_interrupted_miss():
    fn = _checked_raise_then_access(CHECKED_ACCESSES["load"])
    with pytest.raises(KeyboardInterrupt):
        fn(0x10)
    buf = ctypes.create_string_buffer(8)
    region = fn.runtime.mem.add(ctypes.addressof(buf), 8, True, "late")
    prev = signal.signal(signal.SIGINT, lambda *a: None)      # this run's raise is harmless
    try:
        assert fn(ctypes.addressof(buf)) == 5
        with pytest.raises(jit.BpfMemoryError):                # a real miss is still refused
            fn(0x10)
    finally:
        signal.signal(signal.SIGINT, prev)
        fn.runtime.mem.remove(region)


# --- the interpreter: a helper calls native code that lets a signal arrive, then calls back ---
INTERP_NATIVE_CALLBACK = """
r1 = func(cb) ll
r2 = 5
call 1
r0 += 100
exit
cb:
r0 = r1
r0 += 1
exit
"""


def _interp_with(lib, c_function: str):
    native_fn = getattr(lib, c_function)
    helpers = {1: Helper(Proto("native_call", (Arg.SCALAR, Arg.SCALAR)),
                         lambda rt, r1, r2, *_: native_fn(r1, r2), 1)}
    return Interpreter(isa.Program("p", asm.assemble(INTERP_NATIVE_CALLBACK)), helpers=helpers)


def test_a_sigint_before_a_native_helpers_callback_surfaces_from_the_interpreter(lib):
    """Regression: the interpreter's helper call was not routed, so the Ctrl-C escaped the
    callback trampoline's barrier, was printed and lost, and the program ran on with
    whatever ctypes handed C."""
    vm = _interp_with(lib, "call_after_signal")
    escaped = []
    prev = sys.unraisablehook
    sys.unraisablehook = lambda u: escaped.append(u.exc_type)
    try:
        with pytest.raises(KeyboardInterrupt):
            vm.run()
    finally:
        sys.unraisablehook = prev
    assert escaped == []
    assert sys.unraisablehook is prev
    # usable: nothing parked is left behind, the same helper and callback work again
    assert vm.take_error() is None
    assert _interp_with(lib, "call").run() == 106
    prev_handler = signal.signal(signal.SIGINT, lambda *a: None)
    try:
        assert vm.run() == 106
    finally:
        signal.signal(signal.SIGINT, prev_handler)


def test_a_sigint_before_a_foreign_barrier_in_an_interpreted_helper_reaches_it(lib):
    """The class: the helper's native code calls back through a barrier that is not the
    interpreter's own; the Ctrl-C reaches that barrier's on_error."""
    seen = []
    cb = _guarded(seen)
    native_fn = lib.call_after_signal
    helpers = {1: Helper(Proto("native_call", (Arg.SCALAR,)),
                         lambda rt, r1, *_: native_fn(ctypes.cast(cb, c_void_p), r1), 1)}
    vm = Interpreter(isa.Program("p", asm.assemble("r1 = 3\ncall 1\nexit")), helpers=helpers)
    vm.run()
    assert seen == [(KeyboardInterrupt, ())]
