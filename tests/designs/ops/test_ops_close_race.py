"""Closing an OpsRing while another thread is inside its io_uring_enter (the IORING_OP_BPF
submit path waits there for the kernel part of a chain).

The native submit path (ops_enter in ops.c) holds raw pointers into the ring's mmaps and
its fd. Before the fix, Ring.close() on another thread unmapped them while ops_enter was
still waiting: after the wait it wrote SQEs and read CQEs in memory that Python's
allocator had reused (reported as a later CPython crash), and entered an fd number that
might by then name another ring. Now close() first cancels what is in flight (the wait
ends with -ECANCELED CQEs), waits for the enter to return, and only then unmaps.
Each case runs in a child process: a failure is a corrupted or crashed interpreter.
"""

import subprocess
import sys
import textwrap

CHILD = textwrap.dedent(r"""
    import ctypes, gc, socket, sys, threading, time
    from uringbpf.designs import ops

    lst = socket.create_server(("127.0.0.1", 0))
    cli = socket.create_connection(lst.getsockname())
    srv, _ = lst.accept()
    ring = ops.create_ring(16)
    obj, links = ops.open_example("cksum", ring)
    assert ring.ops.native_path
    buf = ctypes.create_string_buffer(64)
    desc = ops.buf_descs((ops.IO_BPF_BUF_USER, ctypes.addressof(buf), 64))
    ring.prep_recv(srv, buf, user_data=1, flags=4)      # IOSQE_IO_LINK
    ring.prep_bpf(0, desc, user_data=2)
    out = {}

    def submit():
        try:
            out["ret"] = ring.submit()
        except BaseException as exc:     # noqa: BLE001 - reported below
            out["exc"] = exc

    t = threading.Thread(target=submit, daemon=True)
    t.start()
    time.sleep(0.3)                      # the worker waits in ops_enter for the RECV
    assert t.is_alive()
    ring.close()                         # must end that wait before unmapping anything
    assert not t.is_alive(), "close() returned while ops_enter still ran"
    t.join()
    # churn the allocator: reused memory written by a stale ops_enter shows up here
    junk = [bytearray(4096) for _ in range(3000)]
    for _ in range(200):
        compile("x = " + "(" * 60 + "1" + ")" * 60, "f", "exec")
    assert all(not any(b[:64]) for b in junk)
    del junk
    gc.collect()
    print("CHILD-OK", type(out.get("exc")).__name__)
    obj.close()
    cli.close(); srv.close(); lst.close()
""")


def test_close_while_another_thread_waits_in_the_native_enter():
    r = subprocess.run([sys.executable, "-c", CHILD], capture_output=True, text=True,
                       timeout=30)
    assert r.returncode == 0 and "CHILD-OK" in r.stdout, (r.returncode, r.stdout, r.stderr[-3000:])
