"""BPF maps as native structs (``native/maps.c``), with a Python API.

Every map is a ``struct ubpf_map`` allocated in C; its address is what a program's
``lddw rX, map`` (``PSEUDO_MAP_IDX``) yields and what helpers receive as ``struct bpf_map *``.
The helpers (lookup/update/delete, ring buffer, arena kfuncs) are C functions that the JIT
calls directly and the interpreter and Python call through ctypes: one implementation.

Supported types: ARRAY, HASH, PERCPU_ARRAY and PERCPU_HASH (with **one CPU's worth** of
storage: uringbpf runs a program on one thread at a time per attachment, so there is
nothing to shard; ``lookup_percpu`` returns a one-element list), RINGBUF (BPF side:
reserve/submit/discard/output/query; Python side: :class:`RingBuffer`), and ARENA (pages
shared between BPF and Python at the user address ``map_extra`` names, or one uringbpf
picks, inside a fully mapped 4 GiB window with guard zones: every arena access the
engines make, window + low 32 bits of the pointer + insn offset, lands in it; see
docs/loader.md, "Arenas").
Global data sections (``.rodata``, ``.data``, ``.bss``) are single-entry ARRAY maps.
"""

from __future__ import annotations

import ctypes
import errno
import os
import select
import time
import weakref
from typing import Callable, Iterator

from .. import native
from .memory import Region

MAP_TYPE_HASH = 1
MAP_TYPE_ARRAY = 2
MAP_TYPE_PERCPU_HASH = 5
MAP_TYPE_PERCPU_ARRAY = 6
MAP_TYPE_STRUCT_OPS = 26
MAP_TYPE_RINGBUF = 27
MAP_TYPE_ARENA = 33
MAP_TYPE_NAMES = {
    1: "hash", 2: "array", 3: "prog_array", 4: "perf_event_array", 5: "percpu_hash",
    6: "percpu_array", 9: "lru_hash", 12: "array_of_maps", 13: "hash_of_maps",
    22: "queue", 23: "stack", 26: "struct_ops", 27: "ringbuf", 30: "bloom_filter", 33: "arena",
}
SUPPORTED_TYPES = (MAP_TYPE_HASH, MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_HASH, MAP_TYPE_PERCPU_ARRAY,
                   MAP_TYPE_RINGBUF, MAP_TYPE_ARENA)

BPF_ANY, BPF_NOEXIST, BPF_EXIST, BPF_F_LOCK = 0, 1, 2, 4
BPF_F_RDONLY_PROG = 1 << 7
BPF_F_MMAPABLE = 1 << 10

PAGE_SIZE = os.sysconf("SC_PAGESIZE")


from ..errors import MapError  # noqa: E402,F401  (defined in uringbpf.errors)


class _UbpfMap(ctypes.Structure):
    """Mirror of ``struct ubpf_map`` in native/maps.h (read-only use from Python)."""

    _fields_ = [
        ("magic", ctypes.c_uint64), ("type", ctypes.c_uint32), ("key_size", ctypes.c_uint32),
        ("value_size", ctypes.c_uint32), ("max_entries", ctypes.c_uint32),
        ("map_flags", ctypes.c_uint32), ("value_stride", ctypes.c_uint32),
        ("values", ctypes.c_uint64), ("values_len", ctypes.c_uint64),
        ("lock", ctypes.c_uint32), ("count", ctypes.c_uint32),
        ("n_buckets", ctypes.c_uint32), ("free_head", ctypes.c_uint32),
        ("buckets", ctypes.c_uint64), ("next", ctypes.c_uint64), ("keys", ctypes.c_uint64),
        ("used", ctypes.c_uint64),
        ("rb_base", ctypes.c_uint64), ("rb_len", ctypes.c_uint64),
        ("rb_consumer_pos", ctypes.c_uint64), ("rb_producer_pos", ctypes.c_uint64),
        ("rb_data", ctypes.c_uint64), ("rb_mask", ctypes.c_uint64),
        ("arena_base", ctypes.c_uint64), ("arena_len", ctypes.c_uint64),
        ("arena_page_used", ctypes.c_uint64), ("reserve_addr", ctypes.c_uint64),
        ("reserve_len", ctypes.c_uint64), ("rb_eventfd", ctypes.c_int32),
        ("frozen", ctypes.c_uint32),
    ]


#: byte offset of ``arena_base`` in ``struct ubpf_map`` (the JIT reads the window from it)
ARENA_BASE_OFFSET = _UbpfMap.arena_base.offset

_U64 = ctypes.c_uint64
def _set_prototypes(so: ctypes.CDLL) -> None:
    so.ubpf_map_create.argtypes = [ctypes.c_uint32] * 5 + [ctypes.POINTER(ctypes.c_void_p)]
    so.ubpf_map_create.restype = ctypes.c_int
    so.ubpf_map_create_extra.argtypes = [ctypes.c_uint32] * 5 + [ctypes.c_uint64,
                                                                 ctypes.POINTER(ctypes.c_void_p)]
    so.ubpf_map_create_extra.restype = ctypes.c_int
    so.ubpf_map_destroy.argtypes = [ctypes.c_void_p]
    so.ubpf_map_destroy.restype = None
    so.ubpf_map_freeze.argtypes = [ctypes.c_void_p]
    so.ubpf_map_freeze.restype = ctypes.c_int
    so.ubpf_map_get_next_key.argtypes = [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_void_p]
    so.ubpf_map_get_next_key.restype = ctypes.c_int
    so.ubpf_ringbuf_peek.argtypes = [ctypes.c_void_p, ctypes.POINTER(_U64)]
    so.ubpf_ringbuf_peek.restype = ctypes.c_int64
    so.ubpf_ringbuf_release.argtypes = [ctypes.c_void_p]
    so.ubpf_ringbuf_release.restype = None
    so.ubpf_ringbuf_set_eventfd.argtypes = [ctypes.c_void_p, ctypes.c_int]
    so.ubpf_ringbuf_set_eventfd.restype = ctypes.c_int
    native.set_register_prototypes(so, HELPER_SYMBOLS.values())


def lib() -> ctypes.CDLL:
    """The loaded native maps module with argument types set."""
    return native.load("maps", configure=_set_prototypes)


#: helper/kfunc name -> C symbol in native/maps.c (each takes and returns u64 registers)
HELPER_SYMBOLS = {
    "map_lookup_elem": "ubpf_helper_map_lookup_elem",
    "map_update_elem": "ubpf_helper_map_update_elem",
    "map_delete_elem": "ubpf_helper_map_delete_elem",
    "map_lookup_percpu_elem": "ubpf_helper_map_lookup_percpu_elem",
    "ringbuf_output": "ubpf_helper_ringbuf_output",
    "ringbuf_reserve": "ubpf_helper_ringbuf_reserve",
    "ringbuf_submit": "ubpf_helper_ringbuf_submit",
    "ringbuf_discard": "ubpf_helper_ringbuf_discard",
    "ringbuf_query": "ubpf_helper_ringbuf_query",
    "bpf_arena_alloc_pages": "ubpf_kfunc_arena_alloc_pages",
    "bpf_arena_free_pages": "ubpf_kfunc_arena_free_pages",
    "bpf_arena_reserve_pages": "ubpf_kfunc_arena_reserve_pages",
}


def call_native(name: str, *args: int) -> int:
    """Call a map helper's C implementation with up to five u64 arguments."""
    regs = [a & 0xFFFFFFFFFFFFFFFF for a in args] + [0] * (5 - len(args))
    return getattr(lib(), HELPER_SYMBOLS[name])(*regs)


# Live maps by native address: the interpreter-side helpers refuse pointers that are not
# a live map (a native call with a bogus map pointer would crash the process).
_live: "weakref.WeakValueDictionary[int, Map]" = weakref.WeakValueDictionary()


def _destroy(addr: int) -> None:
    lib().ubpf_map_destroy(ctypes.c_void_p(addr))


class _NativeMemory:
    """Owner of one native map's memory (see Map.__init__)."""


def map_at(addr: int) -> "Map | None":
    """The live map whose native address is ``addr``, or None."""
    return _live.get(addr)


def _errcheck(ret: int, what: str) -> int:
    if ret >= 1 << 63:
        ret -= 1 << 64
    if ret < 0:
        raise MapError(-ret, f"{what}: {os.strerror(-ret)}")
    return ret


class Map:
    """One native map.  ``addr`` is the ``struct bpf_map *`` programs see."""

    def __init__(self, name: str, map_type: int, key_size: int, value_size: int,
                 max_entries: int, map_flags: int = 0, btf_key_type: int = 0,
                 btf_value_type: int = 0, map_extra: int = 0):
        if map_type not in SUPPORTED_TYPES:
            tname = MAP_TYPE_NAMES.get(map_type, str(map_type))
            raise MapError(errno.EOPNOTSUPP, f"map {name!r}: map type {tname} is not supported")
        for what, v in (("key_size", key_size), ("value_size", value_size),
                        ("max_entries", max_entries), ("map_flags", map_flags)):
            # bpf_attr fields are u32: anything else would be truncated on the way to C
            # while Python kept the untruncated size (and read that many bytes)
            if not isinstance(v, int) or not 0 <= v <= 0xFFFFFFFF:
                raise MapError(errno.EINVAL, f"map {name!r}: {what} {v!r} is not a u32")
        if not isinstance(map_extra, int) or not 0 <= map_extra < 1 << 64:
            raise MapError(errno.EINVAL, f"map {name!r}: map_extra {map_extra!r} is not a u64")
        self.map_extra = map_extra
        self.name = name
        self.type = map_type
        self.key_size = key_size
        self.value_size = value_size
        self.max_entries = max_entries
        self.map_flags = map_flags
        self.btf_key_type = btf_key_type
        self.btf_value_type = btf_value_type
        self.frozen = False
        self._holders: dict[int, int] = {}   # id(loaded object) -> references (hold/release)
        out = ctypes.c_void_p()
        ret = lib().ubpf_map_create_extra(map_type, key_size, value_size, max_entries,
                                          map_flags, map_extra, ctypes.byref(out))
        if ret < 0:
            raise MapError(-ret, f"map {name!r} ({MAP_TYPE_NAMES.get(map_type, map_type)}, key "
                                 f"{key_size}, value {value_size}, max_entries {max_entries}): "
                                 f"{os.strerror(-ret)}")
        self.addr: int = out.value
        self._s = _UbpfMap.from_address(self.addr)
        _live[self.addr] = self
        # The native memory goes when nothing references it: neither this Map (close()
        # drops its reference early) nor a view from memory(), which would otherwise write
        # into freed memory after close()
        self._owner = _NativeMemory()
        weakref.finalize(self._owner, _destroy, self.addr)

    # --- addresses the engines need ---------------------------------------------------
    @property
    def closed(self) -> bool:
        """True once the map was closed (its memory released)."""
        return self.addr == 0

    def _check_open(self) -> None:
        if self.addr == 0:
            raise MapError(errno.EBADF, f"map {self.name!r} is closed")

    @property
    def value_addr(self) -> int:
        """Address of value 0 (array maps; what ``PSEUDO_MAP_IDX_VALUE`` adds its offset to).

        For an arena it is the arena's base address; for a ring buffer, its data area.
        """
        self._check_open()
        if self.type == MAP_TYPE_ARENA:
            return self._s.arena_base
        if self.type == MAP_TYPE_RINGBUF:
            return self._s.rb_data
        return self._s.values

    @property
    def value_stride(self) -> int:
        """Bytes between consecutive values in the map's storage (value size rounded up to 8)."""
        self._check_open()
        return self._s.value_stride

    def regions(self) -> list[Region]:
        """Memory a program may touch through this map (for the interpreter's AddressSpace)."""
        self._check_open()
        s = self._s
        writable = not (self.map_flags & BPF_F_RDONLY_PROG) and not self.frozen
        if self.type in (MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY, MAP_TYPE_HASH, MAP_TYPE_PERCPU_HASH):
            return [Region(s.values, self.max_entries * s.value_stride, writable,
                           f"map {self.name} values")]
        if self.type == MAP_TYPE_RINGBUF:
            return [Region(s.rb_data, 2 * (s.rb_mask + 1), True, f"ringbuf {self.name} data")]
        if self.type == MAP_TYPE_ARENA:
            # the whole window with its guards: what PROBE_MEM32 accesses may reach
            return [Region(s.reserve_addr, s.reserve_len, True, f"arena {self.name}")]
        return []

    @property
    def arena_window(self) -> int:
        """Arena: the start of its 4 GiB window (the kernel's kern_vm_start, and the upper
        32 bits a user-side pointer gets from ``addr_space_cast(p, 1, 0)``)."""
        self._check_open()
        self._require_arena()
        return self._s.arena_base & ~0xFFFFFFFF

    # --- Python API ------------------------------------------------------------------
    def _key(self, key) -> ctypes.Array:
        if isinstance(key, int):
            if self.key_size not in (1, 2, 4, 8):
                raise TypeError(f"map {self.name!r}: key is {self.key_size} bytes; pass bytes")
            key = key.to_bytes(self.key_size, "little", signed=key < 0)
        key = bytes(key)
        if len(key) != self.key_size:
            raise ValueError(f"map {self.name!r}: key must be {self.key_size} bytes, got {len(key)}")
        return ctypes.create_string_buffer(key, self.key_size)

    def _value(self, value) -> ctypes.Array:
        if isinstance(value, (list, tuple)) and self.type in (MAP_TYPE_PERCPU_ARRAY, MAP_TYPE_PERCPU_HASH):
            if len(value) != 1:  # one CPU's worth of storage (see the module docstring)
                raise ValueError(f"map {self.name!r}: per-CPU value list must have 1 entry")
            value = value[0]
        if isinstance(value, int):
            if self.value_size not in (1, 2, 4, 8):
                raise TypeError(f"map {self.name!r}: value is {self.value_size} bytes; pass bytes")
            value = value.to_bytes(self.value_size, "little", signed=value < 0)
        value = bytes(value)
        if len(value) != self.value_size:
            raise ValueError(f"map {self.name!r}: value must be {self.value_size} bytes, "
                             f"got {len(value)}")
        return ctypes.create_string_buffer(value, self.value_size)

    def _require_kv(self) -> None:
        self._check_open()
        if self.type in (MAP_TYPE_RINGBUF, MAP_TYPE_ARENA):
            raise MapError(errno.EINVAL, f"map {self.name!r} has no keys")

    def lookup(self, key) -> bytes | None:
        """The value for ``key`` (bytes), or None."""
        self._require_kv()
        k = self._key(key)
        ptr = call_native("map_lookup_elem", self.addr, ctypes.addressof(k))
        return None if ptr == 0 else ctypes.string_at(ptr, self.value_size)

    def lookup_percpu(self, key) -> list[bytes] | None:
        """Per-CPU maps: one value per CPU (uringbpf keeps one CPU)."""
        v = self.lookup(key)
        return None if v is None else [v]

    def lookup_int(self, key, signed: bool = False) -> int | None:
        """The value at ``key`` as a little-endian integer, or None if absent."""
        v = self.lookup(key)
        return None if v is None else int.from_bytes(v, "little", signed=signed)

    def value_address(self, key) -> int:
        """Native address of the value for ``key`` (0 if absent): zero-copy access."""
        self._require_kv()
        k = self._key(key)
        return call_native("map_lookup_elem", self.addr, ctypes.addressof(k))

    def update(self, key, value, flags: int = BPF_ANY) -> None:
        """Insert or replace ``key`` (``flags``: BPF_ANY, BPF_NOEXIST, BPF_EXIST); MapError with
        the kernel's errno."""
        if self.frozen:
            raise MapError(errno.EPERM, f"map {self.name!r} is frozen (read-only after load)")
        self._require_kv()
        k, v = self._key(key), self._value(value)
        _errcheck(call_native("map_update_elem", self.addr, ctypes.addressof(k),
                              ctypes.addressof(v), flags), f"update of map {self.name!r}")

    def delete(self, key) -> None:
        """Delete ``key``; MapError (ENOENT) if absent, EINVAL for arrays."""
        self._require_kv()
        k = self._key(key)
        _errcheck(call_native("map_delete_elem", self.addr, ctypes.addressof(k)),
                  f"delete from map {self.name!r}")

    def next_key(self, key=None) -> bytes | None:
        """The key after ``key`` (the first with None), or None at the end."""
        self._require_kv()
        out = ctypes.create_string_buffer(self.key_size)
        k = None if key is None else self._key(key)
        ret = lib().ubpf_map_get_next_key(ctypes.c_void_p(self.addr),
                                          None if k is None else ctypes.addressof(k),
                                          ctypes.addressof(out))
        if ret == -errno.ENOENT:
            return None
        _errcheck(ret, f"next key of map {self.name!r}")
        return out.raw

    def keys(self) -> Iterator[bytes]:
        """Iterate over the keys (bpf_map_get_next_key order)."""
        key = self.next_key(None)
        seen = 0
        while key is not None and seen <= self.max_entries:
            yield key
            seen += 1
            key = self.next_key(key)

    def items(self) -> Iterator[tuple[bytes, bytes]]:
        """Iterate over ``(key, value)`` pairs."""
        for key in list(self.keys()):
            value = self.lookup(key)
            if value is not None:
                yield key, value

    def values(self) -> Iterator[bytes]:
        """Iterate over the values."""
        for _, value in self.items():
            yield value

    def __iter__(self) -> Iterator[bytes]:
        return iter(list(self.keys()))

    def __len__(self) -> int:
        self._check_open()
        if self.type in (MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY):
            return self.max_entries
        if self.type in (MAP_TYPE_HASH, MAP_TYPE_PERCPU_HASH):
            return self._s.count
        return 0

    def __getitem__(self, key) -> bytes:
        v = self.lookup(key)
        if v is None:
            raise KeyError(key)
        return v

    def __setitem__(self, key, value) -> None:
        self.update(key, value)

    def __delitem__(self, key) -> None:
        try:
            self.delete(key)
        except MapError as exc:
            if exc.errno == errno.ENOENT:
                raise KeyError(key) from None
            raise

    def __contains__(self, key) -> bool:
        return self.lookup(key) is not None

    # --- raw memory (global data, arena) ----------------------------------------------
    def memory(self) -> memoryview:
        """The map's memory as a writable memoryview (array values, arena pages)."""
        self._check_open()
        if self.type == MAP_TYPE_ARENA:
            base, size = self._s.arena_base, self._s.arena_len
        elif self.type in (MAP_TYPE_ARRAY, MAP_TYPE_PERCPU_ARRAY):
            base, size = self._s.values, self.max_entries * self._s.value_stride
        else:
            raise MapError(errno.EINVAL, f"map {self.name!r} has no flat memory")
        arr = (ctypes.c_char * size).from_address(base)
        arr._owner = self._owner        # the view keeps the native memory alive
        mv = memoryview(arr).cast("B")
        return mv.toreadonly() if self.frozen else mv

    def freeze(self) -> None:
        """Make the values read-only for programs and Python (global .rodata after load)."""
        self._check_open()
        if not self.frozen:
            ret = lib().ubpf_map_freeze(ctypes.c_void_p(self.addr))
            _errcheck(ret, f"freeze of map {self.name!r}")
            self.frozen = True

    # arena
    def arena_alloc_pages(self, page_cnt: int = 1, addr: int = 0) -> int:
        """Allocate arena pages as bpf_arena_alloc_pages does; returns the address (0 = failed)."""
        self._require_arena()
        return call_native("bpf_arena_alloc_pages", self.addr, addr, page_cnt, 0, 0)

    def arena_free_pages(self, ptr: int, page_cnt: int = 1) -> None:
        """Free arena pages as bpf_arena_free_pages does (addresses outside: ignored)."""
        self._require_arena()
        call_native("bpf_arena_free_pages", self.addr, ptr, page_cnt)

    def arena_reserve_pages(self, ptr: int, page_cnt: int = 1) -> int:
        """Reserve arena pages as bpf_arena_reserve_pages does: 0, -EINVAL or -EBUSY."""
        self._require_arena()
        ret = call_native("bpf_arena_reserve_pages", self.addr, ptr, page_cnt)
        return ret - (1 << 64) if ret >= 1 << 63 else ret

    def _require_arena(self) -> None:
        self._check_open()
        if self.type != MAP_TYPE_ARENA:
            raise MapError(errno.EINVAL, f"map {self.name!r} is not an arena")

    def hold(self, holder: object) -> None:
        """A loaded program of ``holder`` uses this map: keep it alive (the kernel's
        program -> map reference) until :meth:`release`."""
        self._check_open()
        self._holders[id(holder)] = self._holders.get(id(holder), 0) + 1

    def release(self, holder: object) -> None:
        """Drop one reference taken by :meth:`hold`."""
        n = self._holders.get(id(holder), 0) - 1
        if n > 0:
            self._holders[id(holder)] = n
        else:
            self._holders.pop(id(holder), None)

    def close(self) -> None:
        """Free the map's native memory.

        Raises :class:`MapError` (``EBUSY``) while a loaded program uses it: the program
        holds addresses inside it (the kernel keeps such a map alive; here freeing it
        would let a later map reuse the memory under the running program). Close the
        object (``obj.close()``) first.
        """
        if self._holders:
            raise MapError(errno.EBUSY, f"map {self.name!r} is used by a loaded program; "
                                        "close the object that loaded it first")
        if self.addr:
            _live.pop(self.addr, None)
            self.addr = 0
            self._owner = None      # freed now unless a memory() view still uses it

    def __repr__(self) -> str:
        return (f"<Map {self.name!r} {MAP_TYPE_NAMES.get(self.type, self.type)} key={self.key_size} "
                f"value={self.value_size} max_entries={self.max_entries}>")


class RingBuffer:
    """Python consumer of one or more BPF ring-buffer maps (like libbpf's ring_buffer).

    ``callback(data: bytes) -> int | None`` is called per record in order; a non-zero
    return stops consumption and is returned by :meth:`consume`/:meth:`poll`.

    Producers signal an eventfd (:meth:`fileno`) the way the kernel wakes ring-buffer
    consumers: when the consumer has caught up with the committed record, or always with
    ``BPF_RB_FORCE_WAKEUP``, never with ``BPF_RB_NO_WAKEUP``.  :meth:`poll` sleeps on it;
    an application can also wait for it itself (``select``, or an io_uring read/poll).
    """

    def __init__(self, ringbuf_map: Map | None = None, callback: Callable[[bytes], int | None] | None = None):
        self._rings: list[tuple[Map, Callable[[bytes], int | None]]] = []
        self._efd = os.eventfd(0, os.EFD_NONBLOCK | os.EFD_CLOEXEC)
        if ringbuf_map is not None:
            self.add(ringbuf_map, callback or (lambda data: None))

    def fileno(self) -> int:
        """The eventfd that becomes readable when records may be available."""
        return self._efd

    def add(self, ringbuf_map: Map, callback: Callable[[bytes], int | None]) -> None:
        """Also poll ``ringbuf_map``, calling ``callback(sample)`` for each record (like
        ring_buffer__add)."""
        if ringbuf_map.type != MAP_TYPE_RINGBUF:
            raise MapError(errno.EINVAL, f"map {ringbuf_map.name!r} is not a ring buffer")
        ringbuf_map._check_open()
        lib().ubpf_ringbuf_set_eventfd(ctypes.c_void_p(ringbuf_map.addr), self._efd)
        self._rings.append((ringbuf_map, callback))

    def consume(self) -> int:
        """Process every committed record; returns the number of records (or a callback's stop value)."""
        n = 0
        so = lib()
        addr = _U64()
        for m, cb in self._rings:
            m._check_open()
            while True:
                size = so.ubpf_ringbuf_peek(ctypes.c_void_p(m.addr), ctypes.byref(addr))
                if size < 0:
                    break
                data = ctypes.string_at(addr.value, size)
                so.ubpf_ringbuf_release(ctypes.c_void_p(m.addr))
                n += 1
                ret = cb(data)
                if ret:
                    return ret
        return n

    def poll(self, timeout_ms: int = 0) -> int:
        """Consume, waiting up to ``timeout_ms`` for at least one record (-1: forever)."""
        deadline = None if timeout_ms < 0 else time.monotonic() + timeout_ms / 1000
        while True:
            n = self.consume()
            if n:
                return n
            left = None if deadline is None else deadline - time.monotonic()
            if left is not None and left <= 0:
                return 0
            # a producer that committed between consume() and here already signalled
            select.select([self._efd], [], [], left)
            try:
                os.eventfd_read(self._efd)
            except BlockingIOError:
                pass

    def records(self) -> list[bytes]:
        """Drain and return all committed records of every ring (convenience)."""
        out: list[bytes] = []
        saved = self._rings
        self._rings = [(m, out.append) for m, _ in saved]
        try:
            self.consume()
        finally:
            self._rings = saved
        return out

    def close(self) -> None:
        """Stop being signalled and close the eventfd."""
        for m, _ in self._rings:
            if not m.closed and m._s.rb_eventfd == self._efd:
                lib().ubpf_ringbuf_set_eventfd(ctypes.c_void_p(m.addr), -1)
        self._rings = []
        if self._efd >= 0:
            os.close(self._efd)
            self._efd = -1

    def __enter__(self) -> "RingBuffer":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def __del__(self) -> None:
        self.close()        # (an error here is reported by Python as "Exception ignored")
