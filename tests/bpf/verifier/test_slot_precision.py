"""Spilled scalars no check depends on are compared like imprecise registers (Cfg.precise_slots).

Regression: since a spill shares its register's id (the kernel's
assign_scalar_id_before_mov), a branch on a filled copy also narrows the slot, so paths
that differ only in such a slot never pruned: bench/verify_speed.py's program (spill an
accumulator, fill it, six diamonds on its bits, per block) hit the 1M-instruction limit
from 2 of its 40 blocks on, where Linux 6.18 processes 14,295 instructions for all 40.
The kernel compares an imprecise spilled scalar by type and links only (regsafe through
stacksafe); a slot is precise here where a fill from it may load a register a check needs.
"""

from __future__ import annotations

import os
import re
import sys
from pathlib import Path

import pytest

import corpus_lib
import kernel_bpf
from uringbpf.bpf import isa, verifier
from uringbpf.bpf.verifier.cfg import Cfg
from uringbpf.errors import BpfVerifierError

corpus_lib.register_test_env()
sys.path.insert(0, str(Path(__file__).resolve().parents[3] / "bench"))
import verify_speed  # noqa: E402


def _kernel_processed(program: isa.Program) -> int:
    fd = kernel_bpf.map_create(2, 4, 256, 1)
    assert fd >= 0, fd
    try:
        ret, log = kernel_bpf.prog_load(kernel_bpf.kernel_form(program.insns, [fd]),
                                        log_size=1 << 16)
    finally:
        os.close(fd)
    assert ret >= 0, log[-400:]
    return int(re.search(r"processed (\d+) insns", log).group(1))


@pytest.mark.parametrize("blocks", [3, 10])
def test_spill_fill_diamonds_prune_as_in_the_kernel(blocks):
    """Accepted, and within 2x of the kernel's processed count (both counted now)."""
    if (why := kernel_bpf.available()) is not None:
        pytest.fail(f"bpf(2) is needed to count the kernel's instructions: {why}")
    program = verify_speed.build(blocks)
    ours = verifier.verify(program).processed_insns
    kernel = _kernel_processed(verify_speed.build(blocks))
    assert ours <= 2 * kernel, (ours, kernel)


def _case(name: str, text: str, size: int = 8) -> corpus_lib.Case:
    maps = corpus_lib.parse_maps(f"0=array:4:{size}:1")
    return corpus_lib.Case(name, "accept", "", "socket_filter", maps, text)


# Two paths join (a checkpoint: two jumps and eight instructions since the start) with
# different values in fp-8 and nothing else live; after the join fp-8 is filled and used
# as an index into an 8-byte map value: the slot is precise, so the path with the wide
# value is explored and refused (pruning it against the narrow one would accept an
# out-of-bounds read).  The fill's register decides, not the slot.
_JOIN = """call get_prandom_u32
r6 = r0
call get_prandom_u32
r0 &= 7
if r6 > 100 goto second
r0 {first}
*(u64 *)(r10 - 8) = r0
goto join
second:
r0 {second}
*(u64 *)(r10 - 8) = r0
join:
r1 = *(u64 *)(r10 - 8)
r2 = map_value[0] ll
r2 += r1
r0 = *(u8 *)(r2 + 0)
r0 = 0
exit
"""


@pytest.mark.parametrize("first,second", [("+= 0", "+= 8"), ("+= 8", "+= 0")])
def test_a_slot_filled_into_an_index_stays_precise(first, second):
    """Whichever path is explored first, the wide one is refused."""
    verifier.verify(_case("narrow", _JOIN.format(first="&= 3", second="&= 5")).program())
    with pytest.raises(BpfVerifierError, match="value is outside of the allowed memory range"):
        verifier.verify(_case("wide", _JOIN.format(first=first, second=second)).program())


def _cfg(text: str) -> Cfg:
    program = _case("c", text).program()
    return Cfg(program, lambda insn: 5)


def test_slot_precision_follows_fills_overwrites_and_escapes():
    base = """call get_prandom_u32
*(u64 *)(r10 - 8) = r0
*(u64 *)(r10 - 16) = r0
r1 = *(u64 *)(r10 - 8)
r2 = map_value[0] ll
r2 += r1
r1 = *(u64 *)(r10 - 16)
if r1 > 3 goto out
out:
*(u64 *)(r10 - 8) = r0
r0 = 0
exit
"""
    cfg = _cfg(base)
    fill8 = 3                        # r1 = *(fp-8), r1 then a pointer offset: precise
    assert cfg.precise_slots[fill8] & 0b01          # fp-8 until that fill
    assert not cfg.precise_slots[fill8] & 0b10      # fp-16: only compared with a constant
    assert cfg.precise_slots_branch[fill8] & 0b10   # ... which a decided branch needs
    assert cfg.precise_slots[fill8 + 1] == 0        # after the last precise fill
    escaped = _cfg(base.replace("r0 = 0\nexit", "r3 = r10\nr0 = 0\nexit"))
    assert all(m == (1 << 64) - 1 for m in escaped.precise_slots)
