"""Suite-wide guard: no test may leave the process's signal state changed.

A Ctrl-C (SIGINT) must reach the main thread for the rest of the run: the loop, requests
and ops designs' tests raise it on purpose and expect a KeyboardInterrupt. If a test left
SIGINT blocked in the main thread, or replaced its process-wide action behind Python's
back, a later Ctrl-C test would wait for ever (seen once as a hang in a full-suite run).
So after every test the main thread's blocked set and the actions of the signals Python
handles are compared with what they were when the session started, and a change fails
the test that made it.
"""

from __future__ import annotations

import ctypes
import signal
import threading

import pytest

_libc = ctypes.CDLL(None, use_errno=True)
# Signals whose action the suite must never leave changed (not SIGALRM: pytest-timeout
# sets its handler around each test and restores it after this check).
_WATCHED = (signal.SIGINT, signal.SIGTERM, signal.SIGUSR1, signal.SIGUSR2, signal.SIGCHLD,
            signal.SIGPIPE)


def _blocked() -> str:
    """The calling thread's blocked set as the kernel reports it."""
    with open("/proc/thread-self/status") as f:
        for line in f:
            if line.startswith("SigBlk:"):
                return line.split()[1]
    raise RuntimeError("no SigBlk line in /proc/thread-self/status")


def _action(sig: int) -> int:
    """The process-wide handler address of ``sig`` (the first field of glibc's struct
    sigaction; 0 is SIG_DFL, 1 SIG_IGN). Flags are not compared: Python sets SA_ONSTACK
    when it puts back even a default action."""
    raw = (ctypes.c_uint64 * 40)()
    if _libc.sigaction(sig, None, raw) != 0:
        raise OSError(ctypes.get_errno(), f"sigaction({sig})")
    return raw[0]


def _state() -> dict:
    return {"blocked": _blocked(), **{signal.Signals(s).name: _action(s) for s in _WATCHED}}


_START: dict = {}


def pytest_sessionstart(session) -> None:
    _START.update(_state())


@pytest.fixture(autouse=True)
def _signal_state_unchanged():
    yield
    if threading.current_thread() is not threading.main_thread():
        return
    now = _state()
    changed = {k: (v, now[k]) for k, v in _START.items() if now[k] != v}
    if changed:
        # Put it back, so one culprit fails one test, not every later one.
        if "blocked" in changed:
            mask = int(_START["blocked"], 16)
            signal.pthread_sigmask(signal.SIG_SETMASK,
                                   {s for s in signal.valid_signals() if mask >> (s - 1) & 1})
        pytest.fail(f"the test left the process's signal state changed (before, after): "
                    f"{changed}", pytrace=False)
