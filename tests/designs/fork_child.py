"""Run a function in a forked child and bring its result back (task state that cannot
be undone -- a task's io_uring BPF filters -- stays in the child).

Shared by tests/designs/filter (task-level filters in the emulation) and tests/kernel
(the same scenarios against Linux 7.2, where the child's outcome is the observable).
"""

from __future__ import annotations

import os
import pickle
from typing import Any, Callable


def run_forked(fn: Callable[[], Any]) -> tuple[str, Any]:
    """``fn()`` in a forked child: ``("ok", result)`` (the result must pickle) or
    ``("raised", repr(exception))``, whatever ``fn`` raised, BaseException included."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        try:
            os.close(r)
            try:
                out = ("ok", fn())
            except BaseException as exc:  # noqa: BLE001 - carried to the parent as its outcome
                out = ("raised", repr(exc))
            os.write(w, pickle.dumps(out))
        finally:
            os._exit(0)
    os.close(w)
    data = b""
    while chunk := os.read(r, 65536):
        data += chunk
    os.close(r)
    os.waitpid(pid, 0)
    return pickle.loads(data)
