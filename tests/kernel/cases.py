"""The differential cases: each is ``fn(executor) -> observables`` and runs once with
``executor="kernel"`` (the 7.2 guest's own io_uring BPF code) and once with
``executor="emulated"`` (uringbpf), in the same guest process; the two results must be
equal.  Observables are plain data: return codes, errnos, CQEs in order
(user_data, res, flags), globals after the run, file contents, verdicts.
"""

from __future__ import annotations

import ctypes
import errno
import os
import struct
import tempfile
from pathlib import Path
from typing import Any, Callable

from fork_child import run_forked
from uringbpf import BpfObject, Ring
from uringbpf.bpf.elf import BpfLoadError
from uringbpf.designs import filter as filt
from uringbpf.designs import loop
from uringbpf.designs.filter import cbpf
from uringbpf.uring import uapi
from uringbpf.uring import (ENTER_GETEVENTS, SETUP_CQSIZE, SETUP_DEFER_TASKRUN,
                            SETUP_NO_SQARRAY, SETUP_SINGLE_ISSUER, SETUP_SQ_REWIND)

REPO = Path(__file__).resolve().parents[2]
OBJS = REPO / "build" / "kernel-vm" / "objs"
LOOP_FLAGS = SETUP_SINGLE_ISSUER | SETUP_DEFER_TASKRUN | SETUP_NO_SQARRAY | SETUP_CQSIZE | SETUP_SQ_REWIND

CASES: dict[str, Callable[[str], Any]] = {}


def case(name: str):
    def deco(fn):
        CASES[name] = fn
        return fn
    return deco


def _errno_of(exc: BaseException) -> Any:
    if isinstance(exc, OSError):
        return ("errno", errno.errorcode.get(exc.errno, exc.errno))
    if isinstance(exc, BpfLoadError) or type(exc).__name__ == "BpfVerifierError":
        return ("refused",)
    raise exc


def _cqes(ring: Ring) -> list[tuple[int, int, int]]:
    out = []
    while True:
        cqe = ring.peek_cqe()
        if cqe is None:
            return out
        out.append((cqe.user_data, cqe.res, cqe.flags))
        ring.cqe_seen(cqe)


# --- the loop design ------------------------------------------------------------------
def _open(name: str, ring: Ring, ring_fd: int | None = None, **rodata) -> BpfObject:
    obj = BpfObject.open(OBJS / f"{name}.o")
    st = next(iter(obj.struct_ops))
    st.ring_fd = ring.fd if ring_fd is None else ring_fd
    if ".rodata" not in obj.datasecs:
        return obj
    ro = obj.rodata
    for field, value in (("cq_head_offset", ring.params.cq_off.head),
                         ("cq_tail_offset", ring.params.cq_off.tail),
                         ("cqes_offset", ring.params.cq_off.cqes),
                         ("cq_entries", ring.params.cq_entries),
                         ("sq_entries", ring.params.sq_entries)):
        if field in ro.variables:
            setattr(ro, field, value)
    for key, value in rodata.items():
        setattr(ro, key, value)
    return obj


def run_nops(executor: str, total: int, k: int, engine: str = "interp") -> dict:
    ring = Ring(k, cq_entries=k, flags=LOOP_FLAGS)
    obj = _open("nops", ring, max_inflight=k)
    try:
        obj.bss.reqs_to_run = total
        obj.load(engine, executor=executor)
        link = obj.attach_struct_ops("nops_ops")
        ret = ring.enter(0, 0, ENTER_GETEVENTS)
        res = {"ret": ret, "left": obj.bss.reqs_to_run, "inflight": obj.bss.reqs_inflight,
               "bad": obj.bss.bad_cqes, "cqes": _cqes(ring)}
        link.destroy()
        return res
    finally:
        obj.close()
        ring.close()


for _total, _k in ((1, 1), (200, 1), (1000, 8), (1000, 32)):
    case(f"loop_nops_{_total}_k{_k}")(lambda ex, t=_total, k=_k: run_nops(ex, t, k))


def run_cp(executor: str, data: bytes, chunk: int, depth: int, pipe_in: bool = False) -> dict:
    import mmap
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.write_bytes(data)
        if pipe_in:
            rfd, wfd = os.pipe()
            os.write(wfd, data)
            os.close(wfd)
            in_fd = rfd
        else:
            in_fd = os.open(src, os.O_RDONLY)
        out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        ring = Ring(8, cq_entries=8, flags=LOOP_FLAGS)
        buf = mmap.mmap(-1, chunk * depth)
        obj = _open("cp", ring, in_fd=in_fd, out_fd=out_fd,
                    buf_addr=ctypes.addressof(ctypes.c_char.from_buffer(buf)),
                    chunk_size=chunk, depth=depth, in_start=0)
        try:
            obj.load("interp", executor=executor)
            link = obj.attach_struct_ops("cp_ops")
            ret = ring.enter(0, 0, ENTER_GETEVENTS)
            b = obj.bss
            res = {"ret": ret, "copied": b.copied, "error": b.error, "done": b.done,
                   "reads": b.reads, "writes": b.writes, "short_reads": b.short_reads,
                   "pending": b.pending, "same": dst.read_bytes() == data,
                   "size": dst.stat().st_size}
            link.destroy()
            return res
        finally:
            obj.close()
            ring.close()
            del buf
            os.close(in_fd)
            os.close(out_fd)


_DATA = bytes((i * 7 + i // 251) & 0xFF for i in range(100_000))
case("loop_cp_file_depth1")(lambda ex: run_cp(ex, _DATA, 4096, 1))
case("loop_cp_file_depth4")(lambda ex: run_cp(ex, _DATA, 4096, 4))
case("loop_cp_pipe")(lambda ex: run_cp(ex, _DATA[:60000], 4096, 1, pipe_in=True))


def run_cksum(executor: str, data: bytes) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        src.write_bytes(data)
        in_fd = os.open(src, os.O_RDONLY)
        out_fd = os.open(dst, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
        ring = Ring(8, cq_entries=8, flags=LOOP_FLAGS)
        try:
            region = loop.register_region(ring, 4096)
            obj = _open("cksum", ring, in_fd=in_fd, out_fd=out_fd, buf_addr=region.addr)
            try:
                obj.load("interp", executor=executor)
                link = obj.attach_struct_ops("cksum_ops")
                ret = ring.enter(0, 0, ENTER_GETEVENTS)
                res = {"ret": ret, "copied": obj.bss.copied, "error": obj.bss.error,
                       "done": obj.bss.done, "fnv1a": obj.data.fnv1a & 0xFFFFFFFF,
                       "expect": loop.fnv1a32(data), "same": dst.read_bytes() == data}
                link.destroy()
                return res
            finally:
                obj.close()
        finally:
            ring.close()
            os.close(in_fd)
            os.close(out_fd)


case("loop_cksum_file")(lambda ex: run_cksum(ex, _DATA[:30000]))
case("loop_cksum_empty")(lambda ex: run_cksum(ex, b""))


# the error paths, with tests/kernel/bpf/probe.bpf.c
def run_probe(executor: str, *, flags: int = LOOP_FLAGS, entries: int = 8, ring_fd: Any = None,
              bss: dict | None = None, twice: bool = False, mem_region: int = 0,
              enter_twice: bool = False, enter_submit: int = 0, after_detach: bool = False) -> dict:
    try:
        ring = Ring(entries, cq_entries=entries, flags=flags)
    except OSError as exc:
        return {"setup": _errno_of(exc)}
    extra_fds = []
    try:
        if ring_fd == "pipe":
            r, w = os.pipe()
            extra_fds += [r, w]
            fd = r
        elif ring_fd == "closed":
            # a number no file uses (a just-closed fd would be reused by the kernel
            # executor's own map fds before the attach looks it up)
            fd = 65000
        elif ring_fd is not None:
            fd = ring_fd
        else:
            fd = ring.fd
        if mem_region:
            loop.register_region(ring, mem_region)
        obj = _probe(executor, fd)
        try:
            for k, v in (bss or {}).items():
                setattr(obj.bss, k, v)
            res: dict[str, Any] = {"load": "ok"}
            try:
                link = obj.attach_struct_ops("probe_ops")
                res["attach"] = 0
            except Exception as exc:  # noqa: BLE001 - the errno is the observable
                res["attach"] = _errno_of(exc)
                return res
            if twice:
                obj2 = _probe(executor + "-2", fd)
                try:
                    obj2.attach_struct_ops("probe_ops")
                    res["attach2"] = 0
                except Exception as exc:  # noqa: BLE001
                    res["attach2"] = _errno_of(exc)
            res["enter"] = ring.enter(enter_submit, 0, ENTER_GETEVENTS)
            if enter_twice:
                res["enter2"] = ring.enter(0, 0, ENTER_GETEVENTS)
            b = obj.bss
            res.update(steps=b.steps, submit_ret=b.submit_ret, region_ok=b.region_ok,
                       cqes=_cqes(ring))
            if after_detach:
                # detached: io_uring_enter is the plain syscall again
                _release_probes()
                ring.prep_nop(user_data=4242)
                res["plain_submit"] = ring.submit_and_wait(1)
                res["plain_cqes"] = _cqes(ring)
                res["steps_after"] = obj.bss.steps
            return res
        finally:
            _release_probes()
    finally:
        ring.close()
        for fd in extra_fds:
            os.close(fd)


# One loaded probe object per executor, shared by the error-path cases: loading (our
# verifier + JIT) costs tens of seconds under TCG, and nothing a case observes depends
# on a fresh load.  Before each case the struct_ops ring_fd bytes and .bss are reset.
_PROBES: dict[str, tuple[BpfObject, bytes]] = {}


def _probe(key: str, ring_fd: int) -> BpfObject:
    if key not in _PROBES:
        obj = BpfObject.open(OBJS / "probe.o")
        obj.load("interp", executor=key.split("-")[0])
        _PROBES[key] = (obj, bytes(obj.bss.raw()))
    obj, bss0 = _PROBES[key]
    st = obj.struct_ops.probe_ops
    off = st.field_offset("ring_fd")
    st.data[off:off + 4] = (ring_fd & 0xFFFFFFFF).to_bytes(4, "little")
    obj.bss.raw()[:] = bss0
    return obj


def _release_probes() -> None:
    for obj, _ in _PROBES.values():
        for link in list(obj._links):
            link.destroy()
        obj._links.clear()
        for st in obj.struct_ops:
            st.link = None


_P = run_probe
case("loop_attach_ok_stop")(lambda ex: _P(ex, bss={"mode": 0, "ret_value": 1}))
case("loop_attach_no_single_issuer")(lambda ex: _P(ex, flags=LOOP_FLAGS & ~SETUP_SINGLE_ISSUER))
case("loop_attach_no_defer_taskrun")(lambda ex: _P(ex, flags=LOOP_FLAGS & ~SETUP_DEFER_TASKRUN))
case("loop_attach_plain_ring")(lambda ex: _P(ex, flags=0))
case("loop_attach_no_sq_rewind")(lambda ex: _P(ex, flags=LOOP_FLAGS & ~SETUP_SQ_REWIND,
                                              bss={"mode": 0, "ret_value": 1}))
case("loop_attach_with_sqarray")(lambda ex: _P(ex, flags=LOOP_FLAGS & ~SETUP_NO_SQARRAY,
                                              bss={"mode": 0, "ret_value": 1}))
case("loop_ring_fd_not_io_uring")(lambda ex: _P(ex, ring_fd="pipe"))
case("loop_ring_fd_closed")(lambda ex: _P(ex, ring_fd="closed"))
case("loop_ring_fd_minus_one")(lambda ex: _P(ex, ring_fd=-1))
case("loop_second_attach")(lambda ex: _P(ex, twice=True, bss={"mode": 0, "ret_value": 1}))
case("loop_ret_continue_then_cap")(lambda ex: _P(ex, bss={"mode": 0, "ret_value": 0, "max_steps": 3}))
for _rv in (2, -1, 7):
    case(f"loop_bad_return_{_rv}")(lambda ex, rv=_rv: _P(ex, bss={"mode": 0, "ret_value": rv}))
# (an index no CQE will reach sleeps forever in both: not a case)
for _wi in (0, 0xFFFFFFFF):
    case(f"loop_cq_wait_idx_{_wi}")(lambda ex, wi=_wi: _P(ex, bss={"mode": 1, "wait_idx": wi}))
for _n in (0, 1, 8, 9, 64, 0xFFFFFFFF):
    case(f"loop_submit_{_n}_of_8")(lambda ex, n=_n: _P(ex, bss={"mode": 2, "submit_nr": n}))
for _rid in (0, 1, 2, 3, 1000):
    for _si in (0, 1, 3, 4):
        case(f"loop_region_{_rid}_size{_si}")(
            lambda ex, rid=_rid, si=_si: _P(ex, bss={"mode": 3, "region_id": rid, "size_idx": si}))
for _si in (1, 2, 3):
    case(f"loop_region_mem_registered_8k_size{_si}")(
        lambda ex, si=_si: _P(ex, mem_region=8192, bss={"mode": 3, "region_id": 0, "size_idx": si}))
case("loop_detach_then_plain_nop")(lambda ex: _P(ex, after_detach=True, bss={"mode": 0, "ret_value": 1}))
case("loop_enter_with_to_submit")(lambda ex: _P(ex, enter_submit=4, bss={"mode": 0, "ret_value": 1}))
case("loop_enter_twice")(lambda ex: _P(ex, enter_twice=True, bss={"mode": 0, "ret_value": 1}))


# --- the cBPF filters -------------------------------------------------------------------
OP_NOP, OP_READ, OP_SOCKET = uapi.IORING_OP_NOP, uapi.IORING_OP_READ, uapi.IORING_OP_SOCKET
ALLOW = [cbpf.stmt(cbpf.RET | cbpf.K, 1)]
DENY = [cbpf.stmt(cbpf.RET | cbpf.K, 0)]


def _ud_is(v: int) -> list:
    # user_data low word at offset 0 (little endian): allow only v
    return [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 0),
            cbpf.jump(cbpf.JMP | cbpf.JEQ | cbpf.K, v, 0, 1),
            cbpf.stmt(cbpf.RET | cbpf.K, 1), cbpf.stmt(cbpf.RET | cbpf.K, 0)]


def _family_is(fam: int) -> list:
    return [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 16),
            cbpf.jump(cbpf.JMP | cbpf.JEQ | cbpf.K, fam, 0, 1),
            cbpf.stmt(cbpf.RET | cbpf.K, 1), cbpf.stmt(cbpf.RET | cbpf.K, 0)]


def _register(ring: Ring, executor: str, opcode: int, code: bytes, *, flags: int = 0,
              pdu_size: int | None = None, cmd_type: int = filt.IO_URING_BPF_CMD_FILTER,
              cmd_flags: int = 0, resv: int = 0, nr_args: int = 1, null_ptr: bool = False,
              filter_len: int | None = None) -> tuple[int, int]:
    """IORING_REGISTER_BPF_FILTER through ring.register: the kernel's own, or (emulated)
    the design's register hook.  Returns (ret, pdu_size written back)."""
    if executor == "emulated":
        filt.enable(ring)
    buf = ctypes.create_string_buffer(code, max(len(code), 1))
    reg = filt.IoUringBpf(cmd_type=cmd_type, cmd_flags=cmd_flags, resv=resv)
    reg.filter.opcode = opcode
    reg.filter.flags = flags
    reg.filter.filter_len = len(code) // 8 if filter_len is None else filter_len
    reg.filter.pdu_size = filt.FILTER_PDU_SIZE.get(opcode, 0) if pdu_size is None else pdu_size
    reg.filter.filter_ptr = 0 if null_ptr else ctypes.addressof(buf)
    ret = ring.register(filt.IORING_REGISTER_BPF_FILTER, ctypes.addressof(reg), nr_args)
    return ret, reg.filter.pdu_size


_LINK_SUFFIX = {"": 0, "L": uapi.IOSQE_IO_LINK, "H": uapi.IOSQE_IO_HARDLINK}


def _ud_not(*bad: int) -> list:
    # refuse the listed user_data values (low word), allow the rest
    out = [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 0)]
    for i, v in enumerate(bad):
        out.append(cbpf.jump(cbpf.JMP | cbpf.JEQ | cbpf.K, v, len(bad) - i, 0))
    return out + [cbpf.stmt(cbpf.RET | cbpf.K, 1), cbpf.stmt(cbpf.RET | cbpf.K, 0)]


def _submit_and_reap(ring: Ring, n: int) -> list:
    ring.submit_and_wait(n)
    return _cqes(ring)


def run_filter(executor: str, filters: list[tuple[int, list, int]], requests: list[str],
               ring_flags: int = 0) -> dict:
    """Register ``filters`` (opcode, insns, flags) on a fresh ring, then issue
    ``requests`` (nop:<ud>, read, socket:<family>) and return the CQEs."""
    import socket
    ring = Ring(8, flags=ring_flags)
    zero = os.open("/dev/zero", os.O_RDONLY)
    buf = ctypes.create_string_buffer(64)
    try:
        regs = [_register(ring, executor, op, cbpf.pack(ins), flags=fl) for op, ins, fl in filters]
        for i, req in enumerate(requests):
            kind, _, arg = req.partition(":")
            arg, _, link = arg.partition(":")   # "nop:<ud>:L" links on, ":H" hard-links
            if kind == "nop":
                ring.prep_nop(user_data=int(arg), flags=_LINK_SUFFIX[link])
            elif kind == "read":
                ring.prep_read(zero, buf, 0, nbytes=16, user_data=100 + i)
            elif kind == "socket":
                sqe = ring.get_sqe()
                ctypes.memset(ctypes.addressof(sqe), 0, 64)
                sqe.opcode = OP_SOCKET
                sqe.fd = int(arg)
                sqe.off = socket.SOCK_STREAM
                sqe.user_data = 200 + i
        cqes = _submit_and_reap(ring, len(requests)) if requests else []
        # socket CQEs carry fds that differ run to run: compare success, not the number
        cqes = [(ud, (res >= 0) if ud >= 200 else res, fl) for ud, res, fl in cqes]
        return {"regs": regs, "cqes": cqes}
    finally:
        ring.close()
        os.close(zero)


case("filter_none")(lambda ex: run_filter(ex, [], ["nop:1", "read"]))
case("filter_allow_nop")(lambda ex: run_filter(ex, [(OP_NOP, ALLOW, 0)], ["nop:1", "nop:2"]))
case("filter_deny_nop")(lambda ex: run_filter(ex, [(OP_NOP, DENY, 0)], ["nop:1", "read"]))
case("filter_user_data")(lambda ex: run_filter(ex, [(OP_NOP, _ud_is(7), 0)], ["nop:7", "nop:8", "nop:7"]))
case("filter_deny_rest")(lambda ex: run_filter(ex, [(OP_NOP, ALLOW, filt.FILTER_DENY_REST)],
                                                ["nop:1", "read"]))
case("filter_deny_rest_then_allow_read")(lambda ex: run_filter(
    ex, [(OP_NOP, ALLOW, filt.FILTER_DENY_REST), (OP_READ, ALLOW, 0)], ["nop:1", "read"]))
case("filter_stack_allow_then_deny")(lambda ex: run_filter(
    ex, [(OP_NOP, ALLOW, 0), (OP_NOP, DENY, 0)], ["nop:3"]))
case("filter_stack_deny_then_allow")(lambda ex: run_filter(
    ex, [(OP_NOP, DENY, 0), (OP_NOP, ALLOW, 0)], ["nop:3"]))
case("filter_stack_two_user_data")(lambda ex: run_filter(
    ex, [(OP_NOP, _ud_is(5), 0), (OP_NOP, _ud_is(6), 0)], ["nop:5", "nop:6"]))
case("filter_socket_family")(lambda ex: run_filter(
    ex, [(OP_SOCKET, _family_is(2), 0)], ["socket:2", "socket:1", "socket:10"]))
# With IORING_SETUP_SUBMIT_ALL a refused SQE does not end the submission batch.
case("filter_user_data_submit_all")(lambda ex: run_filter(
    ex, [(OP_NOP, _ud_is(7), 0)], ["nop:7", "nop:8", "nop:7"], ring_flags=uapi.IORING_SETUP_SUBMIT_ALL))
case("filter_socket_family_submit_all")(lambda ex: run_filter(
    ex, [(OP_SOCKET, _family_is(2), 0)], ["socket:2", "socket:1", "socket:10"],
    ring_flags=uapi.IORING_SETUP_SUBMIT_ALL))
# A refused SQE inside a link chain (io_submit_fail_init): the whole chain fails, its
# head with -ECANCELED; the CQE order is compared too.
_C = [(OP_NOP, _ud_not(5, 6), 0)]
case("filter_chain_middle")(lambda ex: run_filter(ex, _C, ["nop:1:L", "nop:2:L", "nop:5:L", "nop:3", "nop:4"]))
case("filter_chain_tail_ends_batch")(lambda ex: run_filter(ex, _C, ["nop:1:L", "nop:5", "nop:3"]))
case("filter_chain_head_refused")(lambda ex: run_filter(ex, _C, ["nop:5:L", "nop:1:L", "nop:2", "nop:3"]))
case("filter_chain_hardlink")(lambda ex: run_filter(ex, _C, ["nop:1:H", "nop:5:H", "nop:2", "nop:3"]))
case("filter_chain_two_refused")(lambda ex: run_filter(ex, _C, ["nop:1:L", "nop:5:L", "nop:2:L", "nop:6", "nop:3"]))
case("filter_chain_open_at_batch_end")(lambda ex: run_filter(ex, _C, ["nop:1", "nop:2:L", "nop:5:L"]))
case("filter_chain_submit_all")(lambda ex: run_filter(
    ex, _C, ["nop:1:L", "nop:5", "nop:3", "nop:2:L", "nop:4"], ring_flags=uapi.IORING_SETUP_SUBMIT_ALL))
case("filter_chain_two_failed_chains")(lambda ex: run_filter(
    ex, _C, ["nop:1:L", "nop:5:L", "nop:2", "nop:3:H", "nop:6", "nop:4"], ring_flags=uapi.IORING_SETUP_SUBMIT_ALL))
case("filter_chain_read_member")(lambda ex: run_filter(
    ex, [(uapi.IORING_OP_READ, DENY, 0)], ["nop:1:L", "read", "nop:2"]))
case("filter_deny_first_of_batch")(lambda ex: run_filter(ex, [(OP_NOP, DENY, 0)], ["nop:1"]))
case("filter_read_deny_only")(lambda ex: run_filter(ex, [(uapi.IORING_OP_READ, DENY, 0)], ["nop:9", "read"]))


def run_register(executor: str, opcode: int, insns: list | bytes = ALLOW, **kw) -> dict:
    ring = Ring(4)
    try:
        code = insns if isinstance(insns, bytes) else cbpf.pack(insns)
        ret, pdu = _register(ring, executor, opcode, code, **kw)
        return {"ret": ret, "pdu_size": pdu}
    finally:
        ring.close()


# payload-size negotiation: every opcode, strict with pdu 0
for _op in range(uapi.IORING_OP_LAST + 2):
    case(f"filter_pdu_strict_op{_op}")(
        lambda ex, op=_op: run_register(ex, op, pdu_size=0, flags=filt.FILTER_SZ_STRICT))
for _op, _pdu in ((OP_SOCKET, 32), (uapi.IORING_OP_OPENAT, 40), (OP_NOP, 8), (OP_SOCKET, 4)):
    case(f"filter_pdu_op{_op}_given{_pdu}")(lambda ex, op=_op, p=_pdu: run_register(ex, op, pdu_size=p))
_MALFORMED = {
    "len0": dict(filter_len=0),
    "len4097": dict(insns=ALLOW * 4097),
    "null_ptr": dict(null_ptr=True),
    "cmd_type0": dict(cmd_type=0),
    "cmd_type2": dict(cmd_type=2),
    "cmd_flags": dict(cmd_flags=1),
    "resv": dict(resv=1),
    "flags_unknown": dict(flags=4),
    "nr_args2": dict(nr_args=2),
    "nr_args0": dict(nr_args=0),
    "no_ret": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.IMM, 1)]),
    "jump_out": dict(insns=[cbpf.jump(cbpf.JMP | cbpf.JEQ | cbpf.K, 0, 5, 5)] + ALLOW),
    "ld_past_ctx": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 40)] + ALLOW),
    "ld_misaligned": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 2)] + ALLOW),
    "ld_half": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.H | cbpf.ABS, 0)] + ALLOW),
    "ld_last_word": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 36)] + ALLOW),
    "div_zero_k": dict(insns=[cbpf.stmt(cbpf.ALU | cbpf.DIV | cbpf.K, 0)] + ALLOW),
    "ld_ind": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.W | cbpf.IND, 0)] + ALLOW),
    "ret_a": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.IMM, 1), cbpf.stmt(cbpf.RET | cbpf.A)]),
    "mem_uninit": dict(insns=[cbpf.stmt(cbpf.LD | cbpf.MEM, 3)] + ALLOW),
}
for _name, _kw in _MALFORMED.items():
    case(f"filter_malformed_{_name}")(lambda ex, kw=_kw: run_register(ex, OP_NOP, **kw))


# --- the verifier on loop_step programs (tests/kernel/bpf/v_*.bpf.c) --------------------
def run_verdict(executor: str, name: str) -> Any:
    obj = BpfObject.open(OBJS / f"{name}.o")
    try:
        obj.load("interp", executor=executor)
        return "accept"
    except Exception as exc:  # noqa: BLE001 - the verdict is the observable
        if isinstance(exc, BpfLoadError) or type(exc).__name__ == "BpfVerifierError":
            return "refuse"
        raise
    finally:
        obj.close()


for _src in sorted((Path(__file__).parent / "bpf").glob("v_*.bpf.c")):
    _n = _src.name[:-len(".bpf.c")]
    case(f"loop_verifier_{_n[2:]}")(lambda ex, n=_n: run_verdict(ex, n))


# --- the README's example, as written except for the executor -------------------------
def run_readme(executor: str) -> Any:
    """README.md's Python example with ``obj.load()`` -> ``obj.load(executor=...)``.

    The guest has no BPF compiler, so ``loop.example_object`` is pointed at the objects
    tests/kernel/prepare.py compiled from the same sources for the length of the run.
    """
    import re
    text = (REPO / "README.md").read_text()
    code = re.search(r"```python\n(.*?)```", text, re.S).group(1)
    if code.count("obj.load()") != 1:
        raise AssertionError("README example no longer has exactly one obj.load()")
    code = code.replace("obj.load()", f"obj.load(executor={executor!r})")
    saved = loop.example_object
    loop.example_object = lambda name: OBJS / f"{name}.o"
    try:
        exec(compile(code, "README.md", "exec"), {})
        return "ran"
    finally:
        loop.example_object = saved


case("readme_example")(run_readme)


# --- CONNECT's filter payload (7.2: family, port, address) -------------------------------
def run_connect_filter(executor: str, field: str) -> dict:
    """A filter that allows IORING_OP_CONNECT only when ``field`` of the context equals
    the destination's (127.0.0.1:<listening port>); the connect's CQE says what it saw."""
    import socket
    import struct as st
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(4)
    port = srv.getsockname()[1]
    off, want = {"family": (16, socket.AF_INET),
                 "port": (20, st.unpack("<I", st.pack(">H", port) + b"\0\0")[0]),
                 "v4": (24, st.unpack("<I", socket.inet_aton("127.0.0.1"))[0])}[field]
    code = [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, off),
            cbpf.jump(cbpf.JMP | cbpf.JEQ | cbpf.K, want, 0, 1),
            cbpf.stmt(cbpf.RET | cbpf.K, 1), cbpf.stmt(cbpf.RET | cbpf.K, 0)]
    ring = Ring(4)
    s = socket.socket()
    sa = st.pack("<H", socket.AF_INET) + st.pack(">H", port) + socket.inet_aton("127.0.0.1") + bytes(8)
    buf = ctypes.create_string_buffer(sa, len(sa))
    try:
        reg = _register(ring, executor, uapi.IORING_OP_CONNECT, cbpf.pack(code))
        sqe = ring.get_sqe()
        ctypes.memset(ctypes.addressof(sqe), 0, 64)
        sqe.opcode = uapi.IORING_OP_CONNECT
        sqe.fd = s.fileno()
        sqe.addr = ctypes.addressof(buf)
        sqe.off = len(sa)
        sqe.user_data = 77
        ring.submit_and_wait(1)
        return {"reg": reg, "cqes": _cqes(ring)}
    finally:
        ring.close()
        s.close()
        srv.close()


for _f in ("family", "port", "v4"):
    case(f"filter_connect_{_f}")(lambda ex, f=_f: run_connect_filter(ex, f))


# --- the examples/loop scripts, run as a user would with --executor ----------------------
def run_example_script(executor: str, script: str, args: list[str], data: bytes | None = None,
                       stdin_pipe: bool = False) -> dict:
    """Run ``examples/loop/<script>`` in this process (``__main__``, its own argv) with
    ``--executor <executor>``; returns its output with the run's timings and the engine name
    masked (the only words that differ by design), and the bytes it wrote.

    The guest has no BPF compiler: ``loop.example_object`` points at the prebuilt objects.
    ``{src}``/``{dst}`` in ``args`` are a temp input holding ``data`` and an output path;
    with ``stdin_pipe`` the input is ``-`` and ``data`` comes through a pipe on fd 0.
    """
    import contextlib
    import io
    import re
    import runpy
    import sys
    with tempfile.TemporaryDirectory() as tmp:
        src, dst = Path(tmp) / "in", Path(tmp) / "out"
        if data is not None:
            src.write_bytes(data)
        argv = [str(loop.EXAMPLES_DIR / script)] + \
            [a.format(src="-" if stdin_pipe else src, dst=dst) for a in args] + \
            ["--engine", "interp", "--executor", executor]
        saved_fd0 = None
        if stdin_pipe:
            r, w = os.pipe()
            os.write(w, data)       # < 64 KiB: fits the pipe buffer
            os.close(w)
            saved_fd0 = os.dup(0)
            os.dup2(r, 0)
            os.close(r)
        # nops.py calls loop.example_object, copy_fd reaches it through open_example's module
        helpers = sys.modules[loop.open_example.__module__]
        saved = loop.example_object, helpers.example_object, sys.argv, sys.stdin
        loop.example_object = helpers.example_object = lambda name: OBJS / f"{name}.o"
        # pytest replaces sys.stdin with an object without fileno(); the script reads fd 0
        sys.stdin = open(0, closefd=False)
        out = io.StringIO()
        code = 0
        try:
            sys.argv = argv
            with contextlib.redirect_stdout(out):
                try:
                    runpy.run_path(argv[0], run_name="__main__")
                except SystemExit as exc:     # the scripts exit with a message on error
                    code = exc.code
        finally:
            loop.example_object, helpers.example_object, sys.argv, sys.stdin = saved
            if saved_fd0 is not None:
                os.dup2(saved_fd0, 0)
                os.close(saved_fd0)
        text = out.getvalue()
        engine = re.findall(r"engine=(\w+)", text)
        text = re.sub(r"engine=\w+", "engine=*", text)
        text = re.sub(r"in [0-9.]+ ms \([0-9.]+ M/s", "in * ms (* M/s", text)
        res = {"exit": code, "output": text,
               "engine_matches_executor": [e == "kernel" for e in engine] == [executor == "kernel"] * len(engine)}
        if data is not None:
            res["same"] = dst.exists() and dst.read_bytes() == data
        return res


_EX = run_example_script
case("example_nops_py")(lambda ex: _EX(ex, "nops.py", ["--nops", "3000", "--k", "8"]))
case("example_nops_py_k1")(lambda ex: _EX(ex, "nops.py", ["--nops", "50", "--k", "1"]))
case("example_cp_py")(lambda ex: _EX(ex, "cp.py", ["{src}", "{dst}", "--chunk", "16384"], _DATA))
case("example_cp_py_depth4")(lambda ex: _EX(ex, "cp.py", ["{src}", "{dst}", "--chunk", "8192",
                                                         "--depth", "4"], _DATA))
case("example_cp_py_stdin_pipe")(lambda ex: _EX(ex, "cp.py", ["{src}", "{dst}", "--chunk", "4096"],
                                                _DATA[:50000], stdin_pipe=True))
case("example_cksum_py")(lambda ex: _EX(ex, "cksum.py", ["{src}", "{dst}"], _DATA[:40000]))
case("example_cksum_py_empty")(lambda ex: _EX(ex, "cksum.py", ["{src}", "{dst}"], b""))


# --- task-level ("blind") filters: io_uring_register(-1, IORING_REGISTER_BPF_FILTER) -------
def _in_child(fn: Callable[[], Any]) -> Any:
    """fn() in a forked child (task filters cannot be removed from a task): its outcome,
    ``("ok", result)`` or ``("raised", repr(exc))``, is the observable."""
    return run_forked(fn)


def _task_steps(executor: str, steps: list) -> list:
    """Run ``steps`` in this task; one observable per step (see run_task)."""
    from uringbpf.uring import syscalls
    rings: dict[str, Ring] = {}
    out: list = []
    zero = os.open("/dev/zero", os.O_RDONLY)
    buf = ctypes.create_string_buffer(64)
    try:
        for step in steps:
            kind = step[0]
            if kind == "task":
                _, opcode, insns, flags, pdu, nr_args = step
                reg, _keep = filt.build_registration(opcode, insns, flags, pdu)
                addr = ctypes.addressof(reg)
                if executor == "kernel":
                    ret = syscalls.io_uring_register(-1, filt.IORING_REGISTER_BPF_FILTER, addr, nr_args)
                else:
                    ret = filt.register_task_bpf_filter_raw(addr, nr_args)
                out.append((ret, reg.filter.pdu_size))
            elif kind == "ring":
                rings[step[1]] = Ring(8)
                out.append("ring")
            elif kind == "ringreg":
                _, name, opcode, insns, flags = step
                out.append(_register(rings[name], executor, opcode, cbpf.pack(insns), flags=flags))
            elif kind == "nop":
                ring = rings[step[1]]
                ring.prep_nop(user_data=step[2])
                out.append(_submit_and_reap(ring, 1))
            elif kind == "read":
                ring = rings[step[1]]
                ring.prep_read(zero, buf, 0, nbytes=16, user_data=100)
                out.append(_submit_and_reap(ring, 1))
            elif kind == "fork":
                out.append(_in_child(lambda s=step[1]: _task_steps(executor, s)))
            elif kind == "drop_privs":
                filt.lib()        # loaded while the build cache is still readable
                os.setgroups([])
                os.setresgid(65534, 65534, 65534)
                os.setresuid(65534, 65534, 65534)
                out.append("nobody")
            elif kind == "no_new_privs":
                out.append(ctypes.CDLL(None, use_errno=True).prctl(38, 1, 0, 0, 0))
            else:
                raise ValueError(step)
        return out
    finally:
        for ring in rings.values():
            ring.close()
        os.close(zero)


def run_task(executor: str, steps: list) -> Any:
    """Task-level filter scenario in a forked child: ("task", opcode, insns, flags, pdu, nr)
    registers for the task, ("ring", name) creates a ring, ("ringreg", name, opcode, insns,
    flags) registers on it, ("nop"|"read", name, ...) submits one request and gives its CQEs,
    ("fork", steps) runs steps in a child, ("drop_privs",) becomes nobody, ("no_new_privs",)
    sets it."""
    return _in_child(lambda: _task_steps(executor, steps))


def _t(opcode: int, insns: list, flags: int = 0, pdu: int | None = None, nr: int = 1) -> tuple:
    return ("task", opcode, insns, flags, pdu, nr)


_N8, _N9 = _ud_not(8), _ud_not(9)
_TASK = {
    "inherited_by_later_rings": [("ring", "a"), _t(OP_NOP, _N8), ("ring", "b"),
                                 ("nop", "a", 8), ("nop", "b", 7), ("nop", "b", 8)],
    "later_filter_reaches_shared_rings": [_t(OP_NOP, _N8), ("ring", "a"), _t(OP_NOP, _N9), ("ring", "b"),
                                      ("nop", "a", 9), ("nop", "a", 8), ("nop", "b", 9), ("nop", "b", 8)],
    "ring_level_on_inherited_ring": [_t(OP_NOP, _N8), ("ring", "a"), ("ringreg", "a", OP_NOP, _N9, 0),
                                     ("ring", "b"), ("nop", "a", 9), ("nop", "a", 8),
                                     ("nop", "b", 9), ("nop", "b", 8)],
    "fork_inherits_and_keeps_own": [_t(OP_NOP, _N8),
                                    ("fork", [("ring", "c"), ("nop", "c", 8), _t(OP_NOP, _N9),
                                              ("ring", "d"), ("nop", "d", 9), ("nop", "c", 9)]),
                                    ("ring", "a"), ("nop", "a", 9), ("nop", "a", 8)],
    "ring_level_detaches_from_task": [_t(OP_NOP, _N8), ("ring", "a"), ("ringreg", "a", OP_NOP, _ud_not(7), 0),
                                      _t(OP_NOP, _N9), ("nop", "a", 9), ("nop", "a", 7), ("ring", "b"),
                                      ("nop", "b", 9), ("nop", "b", 7)],
    "child_registration_copies": [_t(OP_NOP, _N8),
                                  ("fork", [("ring", "c"), _t(OP_NOP, _N9), ("nop", "c", 9), ("nop", "c", 8),
                                            ("ring", "d"), ("nop", "d", 9)]),
                                  ("ring", "a"), ("nop", "a", 9)],
    "deny_rest": [_t(OP_NOP, ALLOW, filt.FILTER_DENY_REST), ("ring", "a"), ("nop", "a", 1),
                  ("read", "a")],
    "deny_rest_then_ring_allow_read": [_t(OP_NOP, ALLOW, filt.FILTER_DENY_REST), ("ring", "a"),
                                       ("ringreg", "a", uapi.IORING_OP_READ, ALLOW, 0),
                                       ("read", "a"), ("ring", "b"), ("read", "b")],
    "stack_task_filters": [_t(OP_NOP, _N8), _t(OP_NOP, _N9), ("ring", "a"), ("nop", "a", 7),
                           ("nop", "a", 8), ("nop", "a", 9)],
    "nr_args_2": [_t(OP_NOP, _N8, nr=2), ("ring", "a"), ("nop", "a", 8)],
    "nr_args_0": [_t(OP_NOP, _N8, nr=0), ("ring", "a"), ("nop", "a", 8)],
    "malformed": [_t(OP_NOP, [cbpf.stmt(cbpf.LD | cbpf.W | cbpf.ABS, 2)] + ALLOW), ("ring", "a"),
                  ("nop", "a", 8)],
    "opcode_past_last": [_t(uapi.IORING_OP_LAST, ALLOW), ("ring", "a"), ("nop", "a", 8)],
    "pdu_strict_socket": [_t(OP_SOCKET, ALLOW, filt.FILTER_SZ_STRICT, 0), ("ring", "a"), ("nop", "a", 1)],
    "pdu_smaller_socket": [_t(OP_SOCKET, ALLOW, 0, 4), ("ring", "a"), ("nop", "a", 1)],
    "malformed_after_good": [_t(OP_NOP, _N8), _t(OP_NOP, [cbpf.stmt(cbpf.LD | cbpf.IND, 0)] + ALLOW),
                             ("ring", "a"), ("nop", "a", 8), ("nop", "a", 7)],
    "unprivileged": [("drop_privs",), _t(OP_NOP, _N8), ("ring", "a"), ("nop", "a", 8)],
    "unprivileged_no_new_privs": [("drop_privs",), ("no_new_privs",), _t(OP_NOP, _N8),
                                  ("ring", "a"), ("nop", "a", 8)],
}
for _name, _steps in _TASK.items():
    case(f"filter_task_{_name}")(lambda ex, s=_steps: run_task(ex, s))


# --- global (non-static) BPF functions: func_info from the object's BTF ------------------
def run_global_funcs(executor: str) -> dict:
    """tests/kernel/bpf/g_global.bpf.c: a loop_step calling global functions (one taking a
    pointer), run to its STOP; the kernel needs the functions' BTF (func_info) for them."""
    ring = Ring(8, cq_entries=8, flags=LOOP_FLAGS)
    obj = _open("g_global", ring)
    try:
        obj.load("interp", executor=executor)
        link = obj.attach_struct_ops("g_ops")
        ret = ring.enter(0, 0, ENTER_GETEVENTS)
        res = {"ret": ret, "steps": obj.bss.steps, "total": obj.bss.total}
        link.destroy()
        return res
    finally:
        obj.close()
        ring.close()


case("loop_global_funcs")(run_global_funcs)


# --- a filter refusing SQEs that a loop_step program submits in link chains --------------
def run_loop_filter_chain(executor: str, flags: list[int], refuse: tuple[int, ...],
                          ring_flags: int = 0, task: bool = False) -> dict:
    """tests/kernel/bpf/chain.bpf.c submits NOPs 1..n with ``flags`` in one
    bpf_io_uring_submit_sqes; a filter refuses the user_data in ``refuse``.  The emulation
    runs the filter in the loop driver's C (native/sqe.h chain rewrite).  With ``task`` the
    filter is the task's, registered before the ring exists (run it in a child)."""
    if task:
        reg = _task_steps(executor, [_t(OP_NOP, _ud_not(*refuse))])[0]
    ring = Ring(8, cq_entries=16, flags=LOOP_FLAGS | ring_flags)
    try:
        if not task:
            reg = _register(ring, executor, OP_NOP, cbpf.pack(_ud_not(*refuse)))
        sqe_flags = (ctypes.c_uint8 * 8)(*flags)
        obj = _open("chain", ring, n=len(flags))
        try:
            obj.rodata.sqe_flags = bytes(sqe_flags)
            obj.load("interp", executor=executor)
            link = obj.attach_struct_ops("chain_ops")
            ret = ring.enter(0, 0, ENTER_GETEVENTS)
            submit_ret = obj.data.submit_ret
            link.destroy()
            ring.enter(0, 0, ENTER_GETEVENTS)   # run the task work that fails link members
            return {"reg": reg, "ret": ret, "submit_ret": submit_ret, "cqes": _cqes(ring)}
        finally:
            obj.close()
    finally:
        ring.close()


_L, _H = uapi.IOSQE_IO_LINK, uapi.IOSQE_IO_HARDLINK
case("loop_filter_chain_middle")(lambda ex: run_loop_filter_chain(ex, [_L, _L, 0, 0], (2,)))
case("loop_filter_chain_tail_ends_batch")(lambda ex: run_loop_filter_chain(ex, [_L, 0, 0], (2,)))
case("loop_filter_chain_hardlink")(lambda ex: run_loop_filter_chain(ex, [_H, _H, 0, 0], (1,)))
case("loop_filter_chain_two_refused")(lambda ex: run_loop_filter_chain(ex, [_L, _L, _L, 0, 0], (2, 4)))
case("loop_filter_chain_open_at_end")(lambda ex: run_loop_filter_chain(ex, [0, _L, _L], (2,)))
case("loop_filter_chain_submit_all")(lambda ex: run_loop_filter_chain(
    ex, [_L, 0, 0, _L, 0], (2,), ring_flags=uapi.IORING_SETUP_SUBMIT_ALL))
case("loop_filter_chain_task_filter")(lambda ex: _in_child(
    lambda: run_loop_filter_chain(ex, [_L, _L, 0, 0, 0], (2,), task=True)))
# A failed chain beside another link chain in one batch: the CQE order of their later
# members differs (known.py).
case("loop_filter_chain_two_failed_chains")(lambda ex: run_loop_filter_chain(ex, [_L, _L, 0, _H, 0], (2, 5)))


# --- an arena: kernel map with map_extra, mmapped, __arena globals copied in -----------
def run_arena(executor: str, name: str) -> dict:
    """tests/kernel/bpf/arena.h (``arena_fixed``: map_extra 1 << 44; ``arena_any``: the
    mmap picks): a loop_step allocating two arena pages and updating ``__arena`` globals
    (one initialised in the ELF, one set from Python before load) for five steps.
    Compared: the globals, the allocated pages' bytes and every arena address relative to
    the arena's start (absolute too when map_extra fixes it)."""
    ring = Ring(8, cq_entries=8, flags=LOOP_FLAGS)
    obj = _open(name, ring)
    try:
        globs = obj.datasec(".addr_space.1")
        globs.seed = 7
        obj.load("interp", executor=executor)
        link = obj.attach_struct_ops("arena_ops")
        ret = ring.enter(0, 0, ENTER_GETEVENTS)
        arena = obj.maps["arena"]
        base = arena.value_addr
        mem = arena.memory()
        page = obj.bss.page_addr - base
        res = {"ret": ret, "steps": obj.bss.steps, "sum": obj.bss.sum,
               "steps_a": globs.steps_a, "table": globs.table, "seed": globs.seed,
               "base": base if arena.map_extra else base % 4096,
               "page": page, "table_at": obj.bss.table_addr - base,
               "words": struct.unpack_from("<24Q", mem, page),
               "second_page": struct.unpack_from("<Q", mem, page + 4096 + 7 * 8)[0]}
        del mem
        link.destroy()
        return res
    finally:
        obj.close()
        ring.close()


case("loop_arena_fixed_address")(lambda ex: run_arena(ex, "arena_fixed"))
case("loop_arena_any_address")(lambda ex: run_arena(ex, "arena_any"))
