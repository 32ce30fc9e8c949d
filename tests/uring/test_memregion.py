"""uring/memregion.py: IORING_REGISTER_MEM_REGION remembered per ring (a ring concern)."""

import ctypes
import errno

import pytest

from uringbpf.uring import memregion
from uringbpf.uring.ring import Ring


@pytest.fixture
def kring():
    ring = Ring(8)
    if ring.backend != "kernel":
        ring.close()
        pytest.skip("needs a kernel io_uring")
    yield ring
    ring.close()


def test_register_region_is_remembered_and_writable(kring):
    assert memregion.mem_region_of(kring) is None
    region = memregion.register_region(kring, 10)
    assert region.size == 4096                      # page granular, as the kernel's regions
    assert memregion.mem_region_of(kring) is region
    region.view()[:3] = b"abc"
    assert ctypes.string_at(region.addr, 3) == b"abc"
    with pytest.raises(OSError) as exc:              # one region per ring
        memregion.register_region(kring, 10)
    assert exc.value.errno == errno.EBUSY


def test_bad_size_is_refused_before_the_kernel(kring):
    with pytest.raises(ValueError):
        memregion.register_region(kring, 0)
    assert memregion.mem_region_of(kring) is None


def test_raw_kernel_allocated_registration_is_seen_and_mapped(kring):
    """A raw ``ring.register(MEM_REGION)`` with kernel memory (no TYPE_USER): once watched,
    the region is found and mapped through the offset the kernel wrote back."""
    seen = []
    memregion.watch(kring)
    memregion.watch(kring)                           # idempotent: one hook
    memregion.add_listener(kring, seen.append)
    desc = memregion.IoUringRegionDesc(size=4096)
    reg = memregion.IoUringMemRegionReg(region_uptr=ctypes.addressof(desc))
    ret = kring.register(memregion.IORING_REGISTER_MEM_REGION, ctypes.addressof(reg), 1)
    assert ret == 0
    region = memregion.mem_region_of(kring)
    assert region is not None and seen == [region]
    assert region.size == 4096 and desc.mmap_offset != 0
    region.view()[0] = 7                             # our mapping of the kernel's pages
    assert region.view()[0] == 7
    memregion.remove_listener(kring, seen.append)
    memregion.remove_listener(kring, seen.append)    # no error when not listening


def test_unwatched_raw_registration_is_not_remembered(kring):
    desc = memregion.IoUringRegionDesc(size=4096)
    reg = memregion.IoUringMemRegionReg(region_uptr=ctypes.addressof(desc))
    assert kring.register(memregion.IORING_REGISTER_MEM_REGION, ctypes.addressof(reg), 1) == 0
    assert memregion.mem_region_of(kring) is None
