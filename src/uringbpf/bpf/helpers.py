"""The one table of helpers (by id) and kfuncs (by name): prototype + implementation.

The loader resolves ``extern ... __ksym`` kfuncs here, the verifier checks calls
against :class:`Proto`, the interpreter calls :attr:`Helper.impl`, and the JIT binds
the same implementation (or a native twin named in :attr:`Helper.native`).

Implementations take the :class:`Runtime` of the calling run followed by r1..r5 (as
unsigned 64-bit ints) and return r0.  Helpers that do not use an argument still
receive it.  :data:`HELPERS` and :data:`KFUNCS` are the *base table* (filled by
:mod:`uringbpf.bpf.base_helpers` with :func:`helper` and :func:`kfunc`); designs add theirs
to a :class:`~uringbpf.bpf.platform.Platform`, never here.
"""

from __future__ import annotations

import contextvars
import enum
from dataclasses import dataclass, field
from typing import Any, Callable

from .memory import AddressSpace


class Arg(enum.Enum):
    """Argument kinds, after the kernel's ``enum bpf_arg_type``."""

    ANYTHING = "anything"            # any initialised scalar or pointer
    SCALAR = "scalar"                # must be a scalar
    CTX = "ctx"                      # the program's context pointer
    CONST_MAP_PTR = "map_ptr"        # a map from lddw
    MAP_KEY = "map_key"              # pointer to key_size readable bytes
    MAP_VALUE = "map_value"          # pointer to value_size readable bytes
    MEM = "mem"                      # readable memory; its size is the next argument
    UNINIT_MEM = "uninit_mem"        # writable memory (may be uninitialised); size is next arg
    MEM_OR_NULL = "mem_or_null"      # as MEM but NULL allowed (size must then be 0)
    CONST_SIZE = "size"              # size of the previous memory argument, > 0
    CONST_SIZE_OR_ZERO = "size_or_zero"
    CONST_ALLOC_SIZE = "alloc_size"  # a constant size for an allocation (ringbuf reserve)
    RINGBUF_MEM = "ringbuf_mem"      # a record from ringbuf reserve (released by the call)
    TRUSTED_PTR = "trusted_ptr"      # an opaque kernel object passed to the program (e.g. io_ring_ctx)
    FUNC = "func"                    # a callback subprogram (bpf_loop)
    STACK_PTR = "stack_ptr"          # pointer to the stack (iterators, dynptrs, spin locks)
    SPIN_LOCK = "spin_lock"          # pointer to a bpf_spin_lock inside a map value


class Ret(enum.Enum):
    """What a helper returns, as the verifier types r0 after the call."""
    INTEGER = "integer"
    VOID = "void"
    MAP_VALUE_OR_NULL = "map_value_or_null"
    MEM_OR_NULL = "mem_or_null"          # size from Proto.ret_size_arg (a constant argument)
    MEM = "mem"                          # non-null memory of Proto.ret_size_arg / ret_size bytes
    RINGBUF_MEM_OR_NULL = "ringbuf_mem_or_null"  # acquires a reference (must be released)


@dataclass(frozen=True)
class Proto:
    """A helper's or kfunc's signature as the verifier checks it.

    ``kfunc_flags`` (meanings in docs/verifier.md): ITER_NEW[:i], ITER_NEXT, ITER_DESTROY,
    ITER_SIZE=N, ITER_ARG:i[:T] (arg i must be an initialised iterator, of type T if given,
    e.g. ``ITER_ARG:0:bpf_iter_uring_buf``; no next/destroy meaning: the kernel's
    ``__iter``), DYNPTR_NEW:i, DYNPTR:i, DYNPTR_SIZE=N, RET_NULL, KF_ACQUIRE, KF_RELEASE,
    KF_RET_NULL, KF_SLEEPABLE, KF_TRUSTED_ARGS, ARENA_RET.
    """

    name: str
    args: tuple[Arg, ...]
    ret: Ret = Ret.INTEGER
    ret_size_arg: int | None = None      # index (0-based) of the argument giving the size of returned memory
    ret_size: int | None = None          # fixed size of returned memory
    sleepable_only: bool = False         # may only be called from sleepable programs
    prog_types: frozenset[str] | None = None   # None: any program type
    acquires: bool = False               # the returned pointer is a reference that must be released
    releases: int | None = None          # index of the argument this call releases
    kfunc_flags: frozenset[str] = frozenset()  # ITER_NEW, ITER_NEXT, ITER_DESTROY, RET_NULL, ...


@dataclass
class Helper:
    """A helper or kfunc: its prototype, its Python implementation and optional native twin."""
    proto: Proto
    impl: Callable[..., int]
    helper_id: int | None = None         # BPF_FUNC_* id for helpers, None for kfuncs
    native: Any = None                   # optional native twin for the JIT (address or IR emitter)

    @property
    def name(self) -> str:
        """The helper's name (its prototype's)."""
        return self.proto.name

    @property
    def is_kfunc(self) -> bool:
        """True for a kfunc (called by name), False for a numbered helper."""
        return self.helper_id is None


@dataclass
class Runtime:
    """What one program run can reach: memory regions, maps, captured output, its host.

    ``host`` is the design object that runs the program (a loop attachment, a ring's
    BPF-request engine, ...); kfuncs that act on a ring reach it through here.
    ``platform`` is where the engines look helpers and kfuncs up.
    """

    mem: AddressSpace = field(default_factory=AddressSpace)
    maps: list = field(default_factory=list)
    host: Any = None
    platform: Any = None                 # the Platform helpers/kfuncs come from (None: base)
    sleepable: bool = False
    printk: list[str] = field(default_factory=list)


HELPERS: dict[int, Helper] = {}
KFUNCS: dict[str, Helper] = {}


def helper(helper_id: int, name: str, args: tuple[Arg, ...], ret: Ret = Ret.INTEGER, **proto_kw):
    """Register ``fn(runtime, r1, r2, r3, r4, r5) -> int`` as helper ``helper_id``."""

    def register(fn: Callable[..., int]) -> Callable[..., int]:
        if helper_id in HELPERS:
            raise ValueError(f"helper id {helper_id} registered twice")
        HELPERS[helper_id] = Helper(Proto(name, tuple(args), ret, **proto_kw), fn, helper_id)
        return fn

    return register


def kfunc(name: str, args: tuple[Arg, ...], ret: Ret = Ret.INTEGER, **proto_kw):
    """Register ``fn(runtime, r1, ..., r5) -> int`` as kfunc ``name``."""

    def register(fn: Callable[..., int]) -> Callable[..., int]:
        if name in KFUNCS:
            raise ValueError(f"kfunc {name} registered twice")
        KFUNCS[name] = Helper(Proto(name, tuple(args), ret, **proto_kw), fn, None)
        return fn

    return register


#: The platform that the module-level lookups below answer from while
#: ``Platform.active()`` runs.  Code that is handed a platform uses it directly; these
#: lookups are for callers that are not handed one (yet).
ACTIVE_PLATFORM: contextvars.ContextVar[Any] = contextvars.ContextVar("uringbpf_platform",
                                                                        default=None)


def current_platform() -> Any:
    """The active platform, else :func:`uringbpf.bpf.platform.default_platform`."""
    platform = ACTIVE_PLATFORM.get()
    if platform is None:
        platform = DEFAULT_PLATFORM[0]()
    return platform


#: ``[default_platform]``, filled by :mod:`uringbpf.bpf.platform` (which imports this
#: module, so it cannot be imported from here).
DEFAULT_PLATFORM: list[Callable[[], Any]] = []


def get_helper(helper_id: int) -> Helper | None:
    """Helper ``helper_id`` of :func:`current_platform`."""
    return current_platform().get_helper(helper_id)


def get_kfunc(name: str) -> Helper | None:
    """Kfunc ``name`` of :func:`current_platform`."""
    return current_platform().get_kfunc(name)


def _platform_of(runtime: Any) -> Any:
    platform = getattr(runtime, "platform", None)
    return platform if platform is not None else current_platform()


def runtime_helper(runtime: Any, helper_id: int) -> Helper | None:
    """Helper ``helper_id`` for a run: from the runtime's platform (set by the loader or
    the design that made the runtime), else from :func:`current_platform`."""
    return _platform_of(runtime).get_helper(helper_id)


def runtime_kfunc(runtime: Any, name: str) -> Helper | None:
    """Kfunc ``name`` for a run (see :func:`runtime_helper`)."""
    return _platform_of(runtime).get_kfunc(name)


def runtime_helper_ids(runtime: Any) -> list[int]:
    """Every helper id a run may call (``callx`` tables)."""
    return _platform_of(runtime).helper_ids()
