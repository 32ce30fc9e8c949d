"""The batch paths of kbuf.c (#17): node ids, the submit-path import and the CQ reap."""

from __future__ import annotations

import ctypes
import errno
import os

import pytest

from uringbpf.designs import kbuf as K
from uringbpf.uring import uapi as u


def test_a_released_node_id_is_refused_not_aliased():
    """After a node's last reference its id is dead, even once its pool index is reused:
    a stale put must not drop the new node's reference."""
    ring = K.KbufRing(2, buffers=2)
    table = ring.kbuf
    buf = ctypes.create_string_buffer(8192)
    addr = ctypes.addressof(buf)
    released = []
    assert table.register_kbuf(0, addr, 4096, K.KBUF_DIR_DEST, lambda: released.append(0),
                               pin=(addr, 8192)) == 0
    old = table.nodes[0]
    assert table.unregister_kbuf(0) == 0
    assert released == [0] and old.refs == 0
    assert table.register_kbuf(0, addr, 4096, K.KBUF_DIR_DEST, lambda: released.append(1),
                               pin=(addr, 8192)) == 0
    new = table.nodes[0]
    assert new.nid != old.nid and new.refs == 1
    with pytest.raises(ValueError):
        table.put(old)
    with pytest.raises(ValueError):
        table.get(old)
    assert new.refs == 1 and released == [0]
    ring.close()
    assert released == [0, 1]


def test_in_flight_fixed_op_holds_its_node_until_the_cqe(tmp_path):
    """kb_scan takes the op's reference at submit, kb_reap drops it at the CQE, and the
    release runs only then (unregistered while the op was queued)."""
    path = tmp_path / "f"
    path.write_bytes(b"x" * 4096)
    fd = os.open(path, os.O_RDONLY)
    buf = ctypes.create_string_buffer(8192)
    addr = ctypes.addressof(buf)
    released = []
    with K.KbufRing(8, buffers=2) as ring:
        assert ring.kbuf.register_kbuf(1, addr, 4096, K.KBUF_DIR_DEST,
                                       lambda: released.append(1), pin=(addr, 8192)) == 0
        node = ring.kbuf.nodes[1]
        sqe = ring.get_sqe()
        K.prep_read_fixed(sqe, fd, 0, 4096, 0, 1)
        sqe.flags = u.IOSQE_IO_DRAIN        # nothing special: flags must survive the import
        sqe.user_data = 77
        # publish without entering: the import already happened in kb_scan
        ring._submit(0, 0)
        assert node.refs == 2
        assert ring.kbuf.unregister_kbuf(1) == 0
        assert node.refs == 1 and released == []
        c = ring.wait_cqe(timeout=5)
        assert (c.user_data, c.res) == (77, 4096)
        assert released == [1] and node.refs == 0
        assert buf.raw[:4096] == b"x" * 4096
        assert ring.stats["kbuf_import"] == 1
    os.close(fd)


def test_refused_vectored_import_keeps_user_data_and_errno():
    """READV_FIXED with a bad iovec count (-EINVAL) or a wild iovec pointer (-EFAULT) on a
    kernel buffer completes in SQ order with its own user_data."""
    buf = ctypes.create_string_buffer(8192)
    addr = ctypes.addressof(buf)
    with K.KbufRing(8, buffers=2) as ring:
        assert ring.kbuf.register_kbuf(0, addr, 4096, K.KBUF_DIR_DEST, pin=(addr, 8192)) == 0
        for nr, iov_addr, want, ud in ((0, 0, -errno.EINVAL, 5), (1025, 0, -errno.EINVAL, 6),
                                       (1, 8, -errno.EFAULT, 7)):
            sqe = ring.get_sqe()
            K.prep_rwv_fixed(sqe, False, 0, iov_addr, nr, 0, 0)
            sqe.user_data = ud
            c = ring.wait_cqe(timeout=5)
            assert (c.user_data, c.res) == (ud, want)
        assert ring.stats["kbuf_refused"] == 3
        assert ring.kbuf.nodes[0].refs == 1     # a refused op holds no reference


def test_queue_sqe_bytes():
    with K.KbufRing(2, buffers=0) as ring:
        with pytest.raises(ValueError):
            ring.queue_sqe_bytes(bytes(63))
        nop = bytearray(64)
        nop[32:40] = (99).to_bytes(8, "little")     # user_data; opcode 0 = NOP
        assert ring.queue_sqe_bytes(bytes(nop)) and ring.queue_sqe_bytes(bytes(nop))
        assert not ring.queue_sqe_bytes(bytes(nop))    # SQ full
        assert [ring.wait_cqe(timeout=5).user_data for _ in range(2)] == [99, 99]


def test_a_release_callback_may_reap_the_ring_again(tmp_path):
    """kb_reap's records are read after the call; a release callback that reaps the same
    ring again (more CQEs than one batch are waiting) must not overwrite the records still
    being read: every CQE is delivered exactly once."""
    path = tmp_path / "f"
    path.write_bytes(b"y" * 4096)
    fd = os.open(path, os.O_RDONLY)
    buf = ctypes.create_string_buffer(8192)
    addr = ctypes.addressof(buf)
    nops = 300                                          # more than one reap batch (256)
    with K.KbufRing(64, buffers=1, cq_entries=1024) as ring:
        inner = []
        assert ring.kbuf.register_kbuf(0, addr, 4096, K.KBUF_DIR_DEST,
                                       lambda: inner.append(ring.peek_cqe()),
                                       pin=(addr, 8192)) == 0
        sqe = ring.get_sqe()
        K.prep_read_fixed(sqe, fd, 0, 4096, 0, 0)
        sqe.user_data = 1
        ring._submit(0, 0)
        assert ring.kbuf.unregister_kbuf(0) == 0        # the op holds the last reference
        for ud in range(2, nops + 2):
            sqe = ring.get_sqe()
            if sqe is None:
                ring._submit(0, 0)
                sqe = ring.get_sqe()
            sqe.opcode, sqe.fd, sqe.user_data = u.IORING_OP_NOP, -1, ud
        ring._submit(nops + 1, u.IORING_ENTER_GETEVENTS, 5)
        got = []
        while (c := ring.peek_cqe()) is not None:
            got.append(c.user_data)
        assert len(inner) == 1 and inner[0] is not None
        got.append(inner[0].user_data)
        assert sorted(got) == list(range(1, nops + 2))
    os.close(fd)


def test_a_node_outliving_its_ring_keeps_the_table_context():
    """A caller holding a node after its ring is closed and dropped can still read its
    count (the node keeps the table, hence the C context, alive)."""
    import gc
    buf = ctypes.create_string_buffer(8192)
    addr = ctypes.addressof(buf)
    ring = K.KbufRing(2, buffers=1)
    assert ring.kbuf.register_kbuf(0, addr, 4096, K.KBUF_DIR_DEST, pin=(addr, 8192)) == 0
    node = ring.kbuf.nodes[0]
    ring.kbuf.get(node)
    ring.close()
    del ring
    gc.collect()
    for _ in range(50):                  # churn the allocator over the freed context, if freed
        K.KbufTable(-1, 64, register=False)
    assert node.refs == 1


def test_a_closed_ring_raises_instead_of_touching_its_unmapped_rings():
    """After close() the SQ/CQ mappings are gone: every SQ/CQ call raises (it used to read
    the unmapped CQ head and crash the process)."""
    import gc
    ring = K.KbufRing(4, buffers=1)
    ring.close()
    gc.collect()
    for call in (ring.peek_cqe, ring.get_sqe, ring.sq_space_left, ring.submit,
                 lambda: ring.queue_sqe_bytes(bytes(64)), lambda: ring.wait_cqe(0.01)):
        with pytest.raises(ValueError):
            call()
