"""The verifier corpus: parsing, fake map descriptors, test-only helpers, kfuncs and program types.

Corpus files (``tests/bpf/verifier/corpus/*.txt``) hold cases separated by ``### name`` lines::

    ### map_value_null_checked
    # free text explaining the case
    expect: accept                      | reject <substring of the error message>
    type: socket_filter                 (default; or syscall, test_ctx, test_loop, ...)
    maps: 0=array:4:8:1 1=ringbuf:0:0:4096 2=array:4:8:1:ro
    kernel: skip <why>                  (optional: leave out of the kernel cross-check)
    kernel: compare                     (cross-check even though r1 is read: LD_ABS's r6)
    budget: 1000000                     (optional: processed-instruction budget; default 50,000)
    <assembly, see vasm.py>
"""

from __future__ import annotations

import pathlib
import re
import warnings
from dataclasses import dataclass, field

import uringbpf  # noqa: F401  (installs the default platform: the designs' kfuncs)
from uringbpf.bpf import helpers, isa, progtypes
from uringbpf.bpf.helpers import Arg, Ret

import vasm

CORPUS_DIR = pathlib.Path(__file__).parent / "corpus"

MAP_TYPES = {"hash": 1, "array": 2, "percpu_array": 6, "ringbuf": 27}


@dataclass(eq=False)
class FakeMap:
    """What the verifier reads of a map (duck-typed like bpf/maps.py's Map)."""

    name: str
    type: int
    key_size: int
    value_size: int
    max_entries: int
    map_flags: int = 0


@dataclass
class Case:
    name: str
    expect: str                 # "accept" | "reject"
    reason: str
    prog_type: str
    maps: list[FakeMap]
    source: str
    kernel: str = ""            # "" or "skip <why>"
    file: str = ""
    line: int = 0
    insns: list = field(default_factory=list)
    kfuncs: list = field(default_factory=list)
    budget: int = 50_000        # max_insns for our verifier (the kernel always has 1M)

    def program(self) -> isa.Program:
        insns, kfuncs = vasm.assemble(self.source, helper_names())
        section = "socket" if self.prog_type == "socket_filter" else self.prog_type
        attach = ""
        if self.prog_type.startswith("struct_ops:"):
            # a design's struct_ops member type (e.g. struct_ops:uring_bpf_ops.issue_fn):
            # bind it the way the loader does, by section and attach target
            attach = self.prog_type.split(":", 1)[1]
            section = "struct_ops/" + attach.rsplit(".", 1)[1]
        return isa.Program(self.name, insns, section=section, prog_type=self.prog_type,
                           maps=list(self.maps), kfuncs=kfuncs, attach=attach,
                           sleepable=self.prog_type.endswith("_s"))


def parse_maps(text: str) -> list[FakeMap]:
    maps: list[FakeMap] = []
    for tok in text.split():
        idx, spec = tok.split("=", 1)
        parts = spec.split(":")
        kind, ks, vs, n = parts[0], int(parts[1]), int(parts[2]), int(parts[3])
        flags = 0x80 if "ro" in parts[4:] else 0
        assert int(idx) == len(maps), f"maps must be numbered in order: {text}"
        maps.append(FakeMap(f"m{idx}", MAP_TYPES[kind], ks, vs, n, flags))
    return maps


HELDOUT_DIR = pathlib.Path(__file__).parent / "heldout"


def load_corpus(directory: pathlib.Path = CORPUS_DIR) -> list[Case]:
    cases: list[Case] = []
    for path in sorted(directory.glob("*.txt")):
        text = path.read_text()
        chunks = re.split(r"^### ", text, flags=re.M)
        offset = text[: len(chunks[0])].count("\n")
        line_no = offset + 1
        for chunk in chunks[1:]:
            lines = chunk.split("\n")
            name = lines[0].strip()
            expect, reason, ptype, maps, kernel = "", "", "socket_filter", [], ""
            budget = 50_000
            body = []
            for ln in lines[1:]:
                s = ln.strip()
                if s.startswith("expect:"):
                    parts = s[len("expect:"):].strip().split(None, 1)
                    expect = parts[0]
                    reason = parts[1] if len(parts) > 1 else ""
                elif s.startswith("type:"):
                    ptype = s[len("type:"):].strip()
                elif s.startswith("maps:"):
                    maps = parse_maps(s[len("maps:"):])
                elif s.startswith("kernel:"):
                    kernel = s[len("kernel:"):].strip()
                elif s.startswith("budget:"):
                    budget = int(s[len("budget:"):])
                else:
                    body.append(ln)
            assert expect in ("accept", "reject"), f"{path.name}:{name}: missing expect"
            assert expect == "accept" or reason, f"{path.name}:{name}: a reject needs a reason"
            cases.append(Case(name, expect, reason, ptype, maps, "\n".join(body), kernel,
                              path.name, line_no, budget=budget))
            line_no += chunk.count("\n")
    names = [c.name for c in cases]
    dupes = {n for n in names if names.count(n) > 1}
    assert not dupes, f"duplicate corpus names: {dupes}"
    return cases


# ------------------------------------------------------------------ helpers and kfuncs

_STD_HELPERS = [
    # id, name, args, ret, extra
    (1, "map_lookup_elem", (Arg.CONST_MAP_PTR, Arg.MAP_KEY), Ret.MAP_VALUE_OR_NULL, {}),
    (2, "map_update_elem", (Arg.CONST_MAP_PTR, Arg.MAP_KEY, Arg.MAP_VALUE, Arg.ANYTHING), Ret.INTEGER, {}),
    (3, "map_delete_elem", (Arg.CONST_MAP_PTR, Arg.MAP_KEY), Ret.INTEGER, {}),
    (5, "ktime_get_ns", (), Ret.INTEGER, {}),
    (7, "get_prandom_u32", (), Ret.INTEGER, {}),
    (8, "get_smp_processor_id", (), Ret.INTEGER, {}),
    (130, "ringbuf_output", (Arg.CONST_MAP_PTR, Arg.MEM, Arg.CONST_SIZE_OR_ZERO, Arg.ANYTHING), Ret.INTEGER, {}),
    (131, "ringbuf_reserve", (Arg.CONST_MAP_PTR, Arg.CONST_ALLOC_SIZE, Arg.ANYTHING),
     Ret.RINGBUF_MEM_OR_NULL, {"ret_size_arg": 1, "acquires": True}),
    (132, "ringbuf_submit", (Arg.RINGBUF_MEM, Arg.ANYTHING), Ret.VOID, {"releases": 0}),
    (133, "ringbuf_discard", (Arg.RINGBUF_MEM, Arg.ANYTHING), Ret.VOID, {"releases": 0}),
]


def _not_run(*_args):  # pragma: no cover - fallback helpers are only verified, never run
    raise NotImplementedError("test-only fallback helper")


def _run_ktime(rt, *_):
    return 12345


TEST_KFUNCS = {
    # name: (args, ret, kwargs)
    "uringbpf_test_get_region": ((Arg.TRUSTED_PTR, Arg.SCALAR, Arg.CONST_SIZE), Ret.MEM_OR_NULL,
                                 {"ret_size_arg": 2, "kfunc_flags": frozenset({"KF_RET_NULL", "KF_TRUSTED_ARGS"})}),
    "uringbpf_test_submit": ((Arg.TRUSTED_PTR, Arg.SCALAR), Ret.INTEGER,
                             {"sleepable_only": True}),
    "uringbpf_test_acquire": ((Arg.SCALAR,), Ret.MEM_OR_NULL,
                              {"ret_size": 16, "acquires": True}),
    "uringbpf_test_release": ((Arg.ANYTHING,), Ret.VOID, {"releases": 0}),
    "bpf_iter_utest_new": ((Arg.STACK_PTR, Arg.SCALAR, Arg.SCALAR), Ret.INTEGER,
                           {"kfunc_flags": frozenset({"ITER_NEW"})}),
    "bpf_iter_utest_next": ((Arg.STACK_PTR,), Ret.INTEGER,
                            {"ret_size": 4, "kfunc_flags": frozenset({"ITER_NEXT", "RET_NULL"})}),
    "bpf_iter_utest_destroy": ((Arg.STACK_PTR,), Ret.VOID,
                               {"kfunc_flags": frozenset({"ITER_DESTROY"})}),
    "uringbpf_test_only_loop": ((), Ret.INTEGER, {"prog_types": frozenset({"test_loop"})}),
    # dynptrs: one made from an initialised utest iterator (ITER_ARG, like ops' per-page
    # bpf_uring_buf_dynptr), one from a scalar, one acquired (holds a reference)
    "uringbpf_test_dynptr_from_iter": ((Arg.STACK_PTR, Arg.STACK_PTR), Ret.INTEGER,
                                       {"kfunc_flags": frozenset({"DYNPTR_NEW:1",
                                                                  "ITER_ARG:0:bpf_iter_utest"})}),
    "uringbpf_test_dynptr_plain": ((Arg.SCALAR, Arg.STACK_PTR), Ret.INTEGER,
                                   {"kfunc_flags": frozenset({"DYNPTR_NEW:1"})}),
    "uringbpf_test_dynptr_acquire": ((Arg.SCALAR, Arg.STACK_PTR), Ret.INTEGER,
                                     {"kfunc_flags": frozenset({"DYNPTR_NEW:1", "KF_ACQUIRE"})}),
    "uringbpf_test_dynptr_len": ((Arg.STACK_PTR,), Ret.INTEGER,
                                 {"kfunc_flags": frozenset({"DYNPTR:0"})}),
    "uringbpf_test_iter_peek": ((Arg.STACK_PTR,), Ret.INTEGER,
                                {"kfunc_flags": frozenset({"ITER_ARG:0"})}),
    # a slice of a dynptr (like bpf_dynptr_slice): (dynptr, offset, constant size)
    "uringbpf_test_dynptr_slice": ((Arg.STACK_PTR, Arg.SCALAR, Arg.SCALAR), Ret.MEM_OR_NULL,
                                   {"ret_size_arg": 2, "kfunc_flags": frozenset({"DYNPTR:0"})}),
}

_registered = False


def register_test_env() -> None:
    """Make sure the helpers, kfuncs and program types the corpus uses exist."""
    global _registered
    if _registered:
        return
    _registered = True
    for hid, name, args, ret, extra in _STD_HELPERS:
        if hid not in helpers.HELPERS:
            helpers.helper(hid, name, args, ret, **extra)(_run_ktime if hid == 5 else _not_run)
    for name, (args, ret, extra) in TEST_KFUNCS.items():
        if name not in helpers.KFUNCS:
            helpers.kfunc(name, args, ret, **extra)(_not_run)
    _register_prog_types()


def helper_names() -> dict[str, int]:
    register_test_env()
    out = {}
    for hid, h in helpers.HELPERS.items():
        out[h.name] = hid
        out[h.name.removeprefix("bpf_")] = hid
    return out


# An RFC-2021-like context struct and a loop_step-like struct_ops member, test-only.
TEST_CTX = progtypes.Layout("test_ctx", 16, (
    progtypes.Field("user_data", 0, 8, read=True, write=False),
    progtypes.Field("wait_nr", 8, 4, read=True, write=True),
    progtypes.Field("wait_idx", 12, 4, read=True, write=True),
))
TEST_LOOP_PARAMS = progtypes.Layout("test_loop_params", 8, (
    progtypes.Field("cq_wait_idx", 0, 4, read=True, write=True),
    progtypes.Field("flags", 4, 4, read=True, write=False),
))


def _register_prog_types() -> None:
    progtypes.register_prog_type(progtypes.ProgType("test_ctx", ctx="struct", layout=TEST_CTX,
                                                    ret_range=(0, 0)))
    progtypes.register_section_type("test_ctx", progtypes.get_prog_type("test_ctx"))
    for name, sleepable in (("test_loop", False), ("test_loop_s", True)):
        pt = progtypes.register_struct_ops_member(
            "uringbpf_test_ops", name, [progtypes.ValueKind.trusted("io_ring_ctx"),
                                        progtypes.ValueKind.struct(TEST_LOOP_PARAMS)],
            ret_range=(0, 1), sleepable=sleepable, name=name)
        progtypes.register_section_type(name, pt)
    progtypes.register_section_type(
        "test_buf16", progtypes.ProgType("test_buf16", ctx="buffer", buffer_min_size=16,
                                         buffer_writable=False))


def check_message_and_count(name: str, row: dict, ok: bool, msg: str, processed: int,
                            message_differs, count_differs) -> None:
    """Where the kernel (``row``: its recorded ``last`` line and ``processed`` count) and
    we give the same verdict: a refusal's message starts with the kernel's last line and an
    acceptance's processed count is the kernel's, unless the case is listed as differing
    (then a listed case that now agrees is reported, to be unlisted)."""
    if not ok:
        same = msg.startswith(row["last"])
        if name in message_differs:
            if same:
                warnings.warn(f"{name}: the message now matches 7.2's; unlist it")
        else:
            assert same, f"{name}: 7.2 says {row['last']!r}, we say {msg!r}"
    elif name in count_differs:
        if processed == row["processed"]:
            warnings.warn(f"{name}: the processed count now matches 7.2's; unlist it")
    else:
        assert processed == row["processed"], f"{name}: 7.2 processed {row['processed']}, we {processed}"
