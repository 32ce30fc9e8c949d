"""Map API misuse from Python raises instead of touching freed or foreign memory."""

import ctypes
import errno

import pytest

from uringbpf.bpf import maps as M
from uringbpf.bpf.maps import Map, MapError


def test_arena_calls_on_a_closed_map_raise():
    # was a segfault: the native kfunc got the NULL map of a closed Map
    m = Map("a", M.MAP_TYPE_ARENA, 0, 0, 4, 1024)
    m.close()
    with pytest.raises(MapError) as e:
        m.arena_alloc_pages(1)
    assert e.value.errno == errno.EBADF
    with pytest.raises(MapError):
        m.arena_free_pages(0x1000, 1)


def test_arena_calls_on_a_map_that_is_no_arena_raise():
    m = Map("h", M.MAP_TYPE_HASH, 4, 4, 4)
    with pytest.raises(MapError) as e:
        m.arena_alloc_pages(1)
    assert e.value.errno == errno.EINVAL
    m.close()


def test_closed_map_does_not_read_its_freed_header():
    m = Map("h", M.MAP_TYPE_HASH, 4, 4, 4)
    m.close()
    with pytest.raises(MapError):
        len(m)
    with pytest.raises(MapError):
        m.value_stride


def test_a_memory_view_keeps_the_map_memory_alive_after_close():
    # was a write into freed memory that the next maps reused
    m = Map("x", M.MAP_TYPE_ARRAY, 4, 4096, 16)
    mv = m.memory()
    m.close()
    others = [Map(f"y{i}", M.MAP_TYPE_ARRAY, 4, 4096, 16) for i in range(8)]
    mv[:] = b"\xff" * len(mv)
    assert all(not any(o.memory()) for o in others)
    del mv
    for o in others:
        o.close()


@pytest.mark.parametrize("field,value", [
    ("value_size", 2 ** 32 + 8), ("value_size", -8), ("key_size", -1),
    ("max_entries", 2 ** 32 + 1), ("map_flags", 2 ** 40)])
def test_sizes_that_are_no_u32_are_refused(field, value):
    # was: value_size 2**32+8 reached C as 8 while Python read 2**32+8 bytes per lookup
    kw = dict(key_size=4, value_size=8, max_entries=4, map_flags=0)
    kw[field] = value
    with pytest.raises(MapError) as e:
        Map("s", M.MAP_TYPE_ARRAY, **kw)
    assert e.value.errno == errno.EINVAL
