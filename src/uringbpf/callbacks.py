"""The one barrier between C and a Python callback.

ctypes calls our Python functions from C (helpers and trampolines called by JIT code or by
a design's native library). An exception must not unwind through those C frames: ctypes
would print it and hand C a meaningless value. Every such callback is wrapped by
:func:`barrier`, which hands any exception to the caller's ``on_error``; that function
records it (to be raised again once C has returned, or turned into an errno) and returns
the value that tells C the call failed.

Two rules keep a Ctrl-C from being lost on the way (see the requests design's native
engine, tests/designs/requests/test_requests.py ``*ctrl_c*``):

* ``on_error`` must tell a KeyboardInterrupt apart from a failure of the callback: record
  it to be raised again, and tell the C loop to *stop* (a flag C checks after the call).
  Recorded as an ordinary failure, C goes on (a program "fault" completes its request
  with -EFAULT) and nobody raises the interrupt: the caller's wait never ends.
* A signal that arrived while C ran raises as the wrapper's own frame starts (the
  interpreter checks pending signals on function entry), before its ``try``: ctypes then
  only reports it through ``sys.unraisablehook`` and hands C an undefined result. A C loop
  that calls back while signals may arrive runs inside :class:`route_escapes`, which sends
  such an exception to the barrier's ``on_error`` all the same (its return value cannot
  reach C: ``on_error`` must also set the flag that C checks).  Users: the loop driver's
  run, the requests engines' program runs and native pump/wait, the ops design's
  ``ops_enter``, :meth:`uringbpf.bpf.jit.JitFunction.__call__` (JIT code calls Python
  helpers and checked code's region-miss callback, and native helpers may call back too),
  and the interpreter's helper calls (a helper's native code may call back).
"""

from __future__ import annotations

import sys
from typing import Callable

__all__ = ["barrier", "route_escapes"]


def barrier(fn: Callable[..., int],
            on_error: Callable[[BaseException, tuple], int]) -> Callable[..., int]:
    """``fn`` made safe for a C caller: ``fn(*args)``, or ``on_error(exc, args)`` when it
    raised ``exc`` (``args`` are the C call's arguments)."""
    def call(*args):
        try:
            return fn(*args)
        except BaseException as exc:  # why: the callback barrier: nothing may unwind through C frames; on_error records the failure
            return on_error(exc, args)
    call.__wrapped__ = fn  # type: ignore[attr-defined]
    call.__barrier_on_error__ = on_error  # type: ignore[attr-defined]
    return call


class route_escapes:
    """``with route_escapes():`` around a C call that runs barrier callbacks.

    An exception that escaped a barrier before its ``try`` (see the module docstring) is
    given to that barrier's ``on_error`` (with ``args=()``); any other unraisable report goes
    to the hook that was installed before.  Nests; restores the previous hook on exit.
    """

    def __enter__(self) -> "route_escapes":
        self.prev = sys.unraisablehook
        sys.unraisablehook = self._hook
        return self

    def _hook(self, unraisable) -> None:
        on_error = getattr(unraisable.object, "__barrier_on_error__", None)
        if on_error is not None and unraisable.exc_value is not None:
            on_error(unraisable.exc_value, ())
        else:
            self.prev(unraisable)

    def __exit__(self, *exc) -> None:
        sys.unraisablehook = self.prev
