"""Verifier speed: a 4,000-instruction program with bounded loops (target: < 1 s).

Builds a socket-filter-like program of 40 blocks; each block has a bounded loop that
indexes a map value (the index is proven in range by the loop condition), straight-line
ALU work, a few if/else diamonds (state pruning) and stack spills.  Also times the
shipped example objects.  Prints times and the ratio to the 1-second budget.
"""

from __future__ import annotations

import pathlib
import sys
import time

from uringbpf.bpf import isa, verifier

ROOT = pathlib.Path(__file__).resolve().parents[1]


class _Map:
    type, key_size, value_size, max_entries, map_flags = 2, 4, 256, 1, 0
    name = "bench"


def I(op, dst=0, src=0, off=0, imm=0):  # noqa: E743 - assembler-like helper
    return isa.Insn(op, dst, src, off, imm)


def block(k: int) -> list[isa.Insn]:
    out: list[isa.Insn] = []
    iters = 8 + k % 9
    out += [I(isa.ALU64 | isa.MOV | isa.K, 6, imm=0),          # i = 0
            I(isa.ALU64 | isa.MOV | isa.K, 7, imm=k)]          # acc = k
    loop = len(out)
    body = [
        I(isa.ALU64 | isa.MOV | isa.X, 2, 8),                  # r2 = map value
        I(isa.ALU64 | isa.MOV | isa.X, 3, 6),
        I(isa.ALU64 | isa.LSH | isa.K, 3, imm=3),              # r3 = i * 8
        I(isa.ALU64 | isa.ADD | isa.X, 2, 3),
        I(isa.LDX | isa.MEM | isa.DW, 4, 2, 0),                # r4 = value[i]
        I(isa.ALU64 | isa.ADD | isa.X, 7, 4),
        I(isa.ALU64 | isa.XOR | isa.K, 7, imm=0x5A5A),
        I(isa.ALU64 | isa.MUL | isa.K, 7, imm=31),
        I(isa.STX | isa.MEM | isa.DW, 10, 7, -8 * (1 + k % 8)),  # spill acc
        I(isa.ALU64 | isa.ADD | isa.K, 6, imm=1),
    ]
    out += body
    out.append(I(isa.JMP | isa.JLT | isa.K, 6, off=loop - (len(out) + 1), imm=iters))
    # straight-line work and diamonds on an unknown value
    out.append(I(isa.LDX | isa.MEM | isa.DW, 5, 10, -8 * (1 + k % 8)))
    for d in range(6):
        out += [
            I(isa.JMP | isa.JSET | isa.K, 5, off=2, imm=1 << d),
            I(isa.ALU64 | isa.MOV | isa.K, 1, imm=d),
            I(isa.JMP | isa.JA, off=1),
            I(isa.ALU64 | isa.MOV | isa.K, 1, imm=-d),
            I(isa.ALU64 | isa.ADD | isa.X, 0, 1),
        ]
    while len(out) < 100:
        out.append(I(isa.ALU64 | isa.ADD | isa.K, 0, imm=len(out)))
    return out


def build(blocks: int = 40) -> isa.Program:
    insns = isa.lddw_pair(8, 0, isa.PSEUDO_MAP_IDX_VALUE)
    insns += [I(isa.ALU64 | isa.MOV | isa.K, 0, imm=0)]
    for k in range(blocks):
        insns += block(k)
    insns += [I(isa.ALU64 | isa.AND | isa.K, 0, imm=0xff), I(isa.OP_EXIT)]
    return isa.Program("bench4k", insns, section="socket", maps=[_Map()])


def main() -> int:
    prog = build()
    t = time.perf_counter()
    res = verifier.verify(prog)
    dt = time.perf_counter() - t
    print(f"4k program: {len(prog.insns)} insns, {res.processed_insns} processed, "
          f"{res.total_states} states, {dt * 1000:.0f} ms ({dt / 1.0:.2f}x of the 1 s budget, "
          f"{res.processed_insns / dt / 1000:.0f}k insns/s)")
    # the shipped examples, verified as load() does (verify_object: .rodata frozen)
    import tempfile

    from uringbpf.bpf import cc
    from uringbpf.bpf.object import BpfObject
    with tempfile.TemporaryDirectory() as d:
        for src in sorted((ROOT / "examples").glob("*/**/*.bpf.c")):
            obj = BpfObject.open(str(cc.compile_c(src, pathlib.Path(d) / (src.stem + ".o"))))
            t = time.perf_counter()
            verdicts = verifier.verify_object(obj)
            dt = time.perf_counter() - t
            for v in verdicts:
                what = f"{v.result.processed_insns} processed" if v.ok else f"REFUSED: {v.error.message}"
                print(f"{src.relative_to(ROOT)}:{v.name}: {what}")
            print(f"{src.relative_to(ROOT)}: {dt * 1000:.0f} ms for {len(verdicts)} program(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
