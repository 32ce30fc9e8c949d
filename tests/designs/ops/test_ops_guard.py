"""IORING_OP_BPF and the runtime's own memory (issue #13 item 5): a USER buffer descriptor
that names a map value (or any runtime-owned range) is -EFAULT for uring_bpf_memcpy, both
as source and destination, and the map is not written."""

from __future__ import annotations

import ctypes
import errno

import pytest

from uringbpf.bpf import maps as maps_mod
from uringbpf.designs import ops


@pytest.mark.parametrize("engine", ["interp", "jit"])
def test_memcpy_with_a_user_descriptor_on_a_map_value_is_efault(engine):
    victim = maps_mod.Map("victim", 2, 4, 64, 1)          # BPF_MAP_TYPE_ARRAY
    ctypes.memset(victim.value_addr, 0x5A, 64)
    user = ctypes.create_string_buffer(b"\x22" * 64, 64)
    U = ops.IO_BPF_BUF_USER
    with ops.create_ring(8) as ring:
        obj, _ = ops.open_example("memcpy", ring, engine=engine)
        try:
            ring.prep_bpf(2, ops.buf_descs((U, victim.value_addr, 64),
                                           (U, ctypes.addressof(user), 64)), user_data=1)
            ring.prep_bpf(2, ops.buf_descs((U, ctypes.addressof(user), 64),
                                           (U, victim.value_addr, 64)), user_data=2)
            ring.submit()
            got = {c.user_data: c.res for c in ring.wait(2)}
        finally:
            obj.close()
    assert got == {1: -errno.EFAULT, 2: -errno.EFAULT}
    assert ctypes.string_at(victim.value_addr, 64) == b"\x5A" * 64
    assert user.raw == b"\x22" * 64
