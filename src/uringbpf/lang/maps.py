"""Maps of a module: ``bpf.array_map(...)``, ``bpf.hash_map(...)``, ``bpf.ringbuf(...)``.

A map is one native :class:`~uringbpf.bpf.maps.Map` that both runs share: the compiled
object is told to use it (``BpfObject.reuse_map``, libbpf's ``bpf_map__reuse_fd``), and in
the application the methods call the helper table's own implementations on it.  So the
map's contents are the same observable in both runs, and persist across them.

In a program: ``p = m.lookup(key)`` (``ptr[value]`` or NULL), ``m.update(key, value)``,
``m.delete(key)`` (0 or -errno), ``rb.output(ptr, size)``, ``r = rb.reserve(T)`` then ``rb.submit(r)`` or
``rb.discard(r)`` for a ring buffer,
``arena.alloc_pages(n)`` / ``arena.free_pages(p, n)`` for an arena.
"""

from __future__ import annotations

import contextlib

from typing import Any

from ..bpf import maps as _maps
from . import types as T
from .appmode import _RUNTIMES, AppRuntime, Ptr, arena_memory_ptr, memory_ptr, stack

BPF_FUNC_map_lookup_elem, BPF_FUNC_map_update_elem, BPF_FUNC_map_delete_elem = 1, 2, 3
BPF_FUNC_ringbuf_output, BPF_FUNC_ringbuf_reserve = 130, 131
BPF_FUNC_ringbuf_submit, BPF_FUNC_ringbuf_discard = 132, 133


class BpfMap:
    """A map definition (``SEC(".maps")``) and its native map."""

    def __init__(self, module: Any, name: str, map_type: int, key: Any, value: Any,
                 max_entries: int, map_flags: int = 0):
        self.module = module
        self.name = name
        self.map_type = map_type
        self.key = key
        self.value = value
        self.max_entries = int(max_entries)
        self.map_flags = int(map_flags)
        self._map: _maps.Map | None = None

    @property
    def key_size(self) -> int:
        """Key size in bytes (0 for maps without keys)."""
        return T.sizeof(self.key) if self.key is not None else 0

    @property
    def value_size(self) -> int:
        """Value size in bytes."""
        return T.sizeof(self.value) if self.value is not None else 0

    @property
    def map(self) -> _maps.Map:
        """The native map both runs use (created on first use)."""
        if self._map is None or self._map.closed:
            m = _maps.Map(self.name, self.map_type, self.key_size, self.value_size,
                          self.max_entries, self.map_flags)
            with contextlib.ExitStack() as undo:
                undo.callback(m.close)
                for sec in self.module.sections:
                    if sec._arena is self:
                        sec.place_in_arena(m)      # __arena globals: the arena's last pages
                undo.pop_all()
            self._map = m
        return self._map

    # the application side of the program-visible methods ---------------------------
    def _rt(self) -> AppRuntime:
        """The runtime of the application run in progress; outside one (the application
        reading or filling the map itself) the module's own, on the module's platform."""
        rt = _RUNTIMES[-1] if _RUNTIMES else self.module.app_rt
        rt.use_map(self.map)
        return rt

    def _call(self, helper_id: int, *regs: int) -> int:
        rt = self._rt()
        h = rt.helper(helper_id)
        args = [self.map.addr] + [r & 0xFFFFFFFFFFFFFFFF for r in regs]
        return h.impl(rt.rt, *(args + [0] * (5 - len(args))))

    def _key(self, key: Any) -> Ptr:
        k = stack(self.key)
        k[0] = key
        return k

    def lookup(self, key: Any) -> Ptr:
        """``bpf_map_lookup_elem``: a pointer to the value, or a null pointer."""
        addr = self._call(BPF_FUNC_map_lookup_elem, self._key(key)._paddr())
        if not addr:
            return Ptr(None, 0, self.value)
        return memory_ptr(addr, self.value_size, self.value)

    def update(self, key: Any, value: Any, flags: int = 0) -> T.s64:
        """``bpf_map_update_elem``: 0 or -errno."""
        v = stack(self.value)
        if isinstance(value, Ptr):
            v._pbuf[:] = value._span(value._poff, self.value_size)
        else:
            v[0] = value
        return T.s64(self._call(BPF_FUNC_map_update_elem, self._key(key)._paddr(), v._paddr(),
                                int(flags)))

    def delete(self, key: Any) -> T.s64:
        """``bpf_map_delete_elem``: 0 or -errno."""
        return T.s64(self._call(BPF_FUNC_map_delete_elem, self._key(key)._paddr()))

    def output(self, data: Ptr, size: int, flags: int = 0) -> T.s64:
        """``bpf_ringbuf_output`` of ``size`` bytes at ``data``: 0 or -errno."""
        self._need_ringbuf("output")
        rt = self._rt()
        rt.add(data._paddr(), int(size), False, "output data")
        return T.s64(self._call(BPF_FUNC_ringbuf_output, data._paddr(), int(size), int(flags)))

    def reserve(self, t: Any) -> Ptr:
        """``bpf_ringbuf_reserve(&rb, sizeof(T), 0)``: a ``ptr[T]`` record, or a null pointer
        when the ring buffer is full."""
        self._need_ringbuf("reserve")
        addr = self._call(BPF_FUNC_ringbuf_reserve, T.sizeof(t), 0)
        if not addr:
            return Ptr(None, 0, t)
        return memory_ptr(addr, T.sizeof(t), t)

    def submit(self, record: Ptr, flags: int = 0) -> None:
        """``bpf_ringbuf_submit``: publish a reserved record."""
        self._need_ringbuf("submit")
        self._record_call(BPF_FUNC_ringbuf_submit, record, flags)

    def discard(self, record: Ptr, flags: int = 0) -> None:
        """``bpf_ringbuf_discard``: drop a reserved record."""
        self._need_ringbuf("discard")
        self._record_call(BPF_FUNC_ringbuf_discard, record, flags)

    def _need_ringbuf(self, what: str) -> None:
        if self.map_type != _maps.MAP_TYPE_RINGBUF:
            raise TypeError(f"{self.name}.{what}(): {self.name} is not a ring buffer")

    def _record_call(self, helper_id: int, record: Ptr, flags: int) -> None:
        # the helpers take the record only: it carries its ring in its header
        rt = self._rt()
        rt.helper(helper_id).impl(rt.rt, record._paddr(), int(flags) & 0xFFFFFFFFFFFFFFFF, 0, 0, 0)

    def alloc_pages(self, page_cnt: int) -> Ptr:
        """Arena: ``bpf_arena_alloc_pages(&arena, NULL, page_cnt, NUMA_NO_NODE, 0)``, an
        ``arena_ptr[u8]`` (NULL when the arena is full)."""
        if self.map_type != _maps.MAP_TYPE_ARENA:
            raise TypeError(f"{self.name} is not an arena")
        rt = self._rt()
        addr = rt.kfunc("bpf_arena_alloc_pages").impl(rt.rt, self.map.addr, 0, int(page_cnt) & 0xFFFFFFFF,
                                                      0xFFFFFFFF, 0)
        return arena_memory_ptr(self.map, addr, T.u8)

    def free_pages(self, p: Ptr, page_cnt: int) -> None:
        """``bpf_arena_free_pages`` of ``page_cnt`` pages at ``p``."""
        rt = self._rt()
        rt.kfunc("bpf_arena_free_pages").impl(rt.rt, self.map.addr, p._paddr(), int(page_cnt) & 0xFFFFFFFF,
                                              0, 0)

    def close(self) -> None:
        """Release the map when run in app mode (idempotent)."""
        if self._map is not None:
            self._map.close()
            self._map = None

    def __repr__(self) -> str:
        return f"<map {self.name} {_maps.MAP_TYPE_NAMES.get(self.map_type, self.map_type)}>"
