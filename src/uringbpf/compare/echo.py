"""Workload 4: TCP echo on 127.0.0.1. One op = one message echoed; bytes = bytes echoed.

The client is cbench's ``client`` (C, blocking sockets, a separate process so this
process's CPU is the server's): ``conns`` connections; per round each sends ``msg``
bytes (a pattern that depends on connection and round) and reads them back, comparing
every byte. Each server: accept the connections, then per connection recv -> send all
that came, until EOF. Parameters: ``conns``, ``msg``, ``rounds``.
"""

from __future__ import annotations

import errno
import json
import socket
import subprocess

from ..uring import Buffer, Ring
from ..uring import uapi as u
from .common import CannotExpress, Ctx, Measure, WrongOutput, c_measure, cbench, finish

NAME = "echo"
TITLE = "TCP echo on 127.0.0.1, N connections, fixed message size"


def cases(quick: bool) -> list[dict]:
    """The parameter sets of this workload (small ones with ``quick``)."""
    rounds = 50 if quick else 2000
    return [{"conns": n, "msg": 512, "rounds": rounds} for n in (1, 16)]


def label(p: dict) -> str:
    """A case's short name for the table."""
    return f"{p['conns']} conn x {p['msg']} B"


def _client(port: int, p: dict) -> subprocess.Popen:
    return subprocess.Popen([str(cbench()), "client", str(port), str(p["conns"]), str(p["msg"]),
                             str(p["rounds"])], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def _client_done(proc: subprocess.Popen) -> None:
    out, err = proc.communicate(timeout=120)
    if proc.returncode:
        raise WrongOutput(f"echo client: exit {proc.returncode} {out.strip()} {err.strip()[:200]}")


def _listener() -> socket.socket:
    ls = socket.socket()
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", 0))
    ls.listen(128)
    return ls


def _serve(p: dict, ctx: Ctx, linked: bool) -> Measure:
    conns, msg = p["conns"], p["msg"]
    ls = _listener()
    client = _client(ls.getsockname()[1], p)
    socks = []
    short = [0]          # linked mode: recvs shorter than a message
    try:
        for _ in range(conns):
            s, _addr = ls.accept()
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            socks.append(s)
        bufs = [Buffer(msg) for _ in range(conns)]
        ops_done = nbytes = 0
        with Ring(4 * conns + 8, backend="kernel") as ring:
            with ctx.measure():
                if linked:
                    # RECV (link) -> SEND of a full message: the send length is fixed at
                    # submission; a short recv sends stale bytes (the links' limit)
                    def arm(i: int) -> None:
                        ring.prep_recv(socks[i], bufs[i], nbytes=msg, user_data=i << 2,
                                       flags=u.IOSQE_IO_LINK)
                        ring.prep_send(socks[i], bufs[i], nbytes=msg, user_data=i << 2 | 1)
                else:
                    def arm(i: int) -> None:
                        ring.prep_recv(socks[i], bufs[i], nbytes=msg, user_data=i << 2)
                for i in range(conns):
                    arm(i)
                open_ = conns
                sent = [0] * conns
                have = [0] * conns
                while open_:
                    ring.submit_and_wait(1)
                    for cq in ring.reap():
                        i, kind, res = cq.user_data >> 2, cq.user_data & 3, cq.res
                        if linked:
                            if kind == 0:
                                if res < 0:
                                    raise WrongOutput(f"recv: {res}")
                                have[i] = res
                                if res == 0:
                                    open_ -= 1
                                elif res < msg:
                                    # not a link failure for RECV: the SEND goes out with
                                    # msg bytes, some of them stale
                                    short[0] += 1
                            elif res == -errno.ECANCELED or have[i] == 0:
                                continue                # after EOF
                            elif res < 0:
                                raise WrongOutput(f"send: {res}")
                            else:
                                ops_done += 1
                                nbytes += min(res, have[i])
                                arm(i)
                            continue
                        if res < 0:
                            raise WrongOutput(f"{'recv' if kind == 0 else 'send'}: {res}")
                        if kind == 0:
                            if res == 0:
                                open_ -= 1
                                continue
                            have[i], sent[i] = res, 0
                            ring.prep_send(socks[i], bufs[i].view[:res], user_data=i << 2 | 1)
                        else:
                            sent[i] += res
                            nbytes += res
                            if sent[i] < have[i]:
                                ring.prep_send(socks[i], bufs[i].view[sent[i]:have[i]],
                                               user_data=i << 2 | 1)
                            else:
                                ops_done += 1
                                ring.prep_recv(socks[i], bufs[i], nbytes=msg, user_data=i << 2)
        for s in socks:
            s.close()
        _client_done(client)
    finally:
        if client.poll() is None:
            client.kill()
            client.wait()
        for s in socks:
            s.close()
        ls.close()
    if linked and short[0]:
        raise WrongOutput(f"{short[0]} short recvs: their linked SEND sent stale bytes")
    want = p["conns"] * p["rounds"] * p["msg"]
    if nbytes != want:
        raise WrongOutput(f"echoed {nbytes} of {want} bytes")
    return finish(ctx, ops_done, nbytes, note="recv (link) -> send" if linked else "")


def python(p: dict, ctx: Ctx) -> Measure:
    """Ring: recv -> send what came (resuming short sends) -> recv, per connection."""
    return _serve(p, ctx, linked=False)


def links(p: dict, ctx: Ctx) -> Measure:
    """RECV linked to a fixed-length SEND: right only while every recv is a full message."""
    return _serve(p, ctx, linked=True)


def c(p: dict, ctx: Ctx) -> Measure:
    """cbench.c echo server (C liburing) in its own process."""
    exe = cbench()
    ls = _listener()
    port = ls.getsockname()[1]
    ls.close()                     # cbench binds the port itself (SO_REUSEADDR)
    server = subprocess.Popen([str(exe), "echo", str(port), str(p["conns"]), str(p["msg"])],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        if server.stdout.readline().strip() != "ready":
            raise WrongOutput(f"C echo server did not start: {server.stderr.read()[:200]}")
        client = _client(port, p)
        _client_done(client)
        out, err = server.communicate(timeout=120)
        if server.returncode:
            raise WrongOutput(f"C echo server exit {server.returncode}: {err[:200]}")
    finally:
        if server.poll() is None:
            server.kill()
            server.wait()
    m = c_measure(json.loads(out.strip().splitlines()[-1]))
    m.ops //= 2                    # cbench counts recv and send completions
    return m


def _none(why: str):
    def impl(p: dict, ctx: Ctx) -> Measure:
        raise CannotExpress(why)
    return impl


IMPLS = {
    "python": python, "c": c, "links": links,
    "loop": _none("expressible (a loop_step reacting to recv/send CQEs) but no echo program "
                  "exists for the loop design"),
    "opbpf": _none("nothing for a per-op BPF program to do between recv and send: it would "
                   "be the links row plus one OP_BPF per message"),
    "rfc2021": _none("expressible (a BPF request can reap recv CQEs and queue sends) but no "
                     "echo program exists (pingpong bounces CQEs, not sockets)"),
    "lang": _none("no Python-authored echo program (examples/python has pingpong: CQEs, not "
                  "sockets)"),
}
