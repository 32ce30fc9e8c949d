"""RequestsRing.close() from another thread while a thread waits on one of its CQs.

Before the fix the waiter stayed blocked in io_uring_enter for ever on a ring fd that
was closed (the native engine's rq_wait held the fd number and raw pointers into the
unmapped CQ; had a CQE woken it, it would have read freed memory). Now waits run in
slices, close() ends them and returns only once they have left: the waiter raises
RingClosedError. Both engines; in a child process (a failure may be a crash or a hang).
"""

import subprocess
import sys
import textwrap

import pytest

CHILD = textwrap.dedent(r"""
    import sys, threading, time
    from uringbpf.designs import requests as rq
    from uringbpf.uring import RingClosedError

    ring = rq.RequestsRing(8, nr_cq=1, cq_sizes=[8], native=sys.argv[1] == "native")
    assert ring.requests.native == (sys.argv[1] == "native")
    out = {}

    def waiter():
        try:
            out["r"] = ring.wait_cqe_nr(1, None, cq_idx=int(sys.argv[2]))
        except BaseException as exc:     # noqa: BLE001 - checked below
            out["e"] = exc

    t = threading.Thread(target=waiter, daemon=True)
    t.start()
    time.sleep(0.3)
    assert t.is_alive()
    ring.close()
    assert not t.is_alive(), "close() returned while the wait still ran"
    assert isinstance(out.get("e"), RingClosedError), out
    junk = [bytearray(4096) for _ in range(2000)]
    for _ in range(100):
        compile("x = " + "(" * 60 + "1" + ")" * 60, "f", "exec")
    assert all(not any(b[:64]) for b in junk)
    print("CHILD-OK")
""")


@pytest.mark.parametrize("engine", ["native", "python"])
@pytest.mark.parametrize("cq_idx", [0, 1])
def test_close_ends_a_wait_on_another_thread(engine, cq_idx):
    r = subprocess.run([sys.executable, "-c", CHILD, engine, str(cq_idx)],
                       capture_output=True, text=True, timeout=30)
    assert r.returncode == 0 and "CHILD-OK" in r.stdout, (r.returncode, r.stdout,
                                                          r.stderr[-3000:])
