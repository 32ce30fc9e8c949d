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
* A signal can also raise in the wrapper's own frame, as it starts (the interpreter checks
  pending signals on function entry), before the ``try``: ctypes then reports it through
  ``sys.unraisablehook``. A C loop that runs callbacks while signals may arrive installs
  a hook for its duration (``requests.engine.catch_lost_interrupts``).
"""

from __future__ import annotations

from typing import Callable

__all__ = ["barrier"]


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
    return call
