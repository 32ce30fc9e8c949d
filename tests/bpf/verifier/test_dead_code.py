"""Dead code as Linux 7.2 treats it (#20): which checks run on every instruction, which
only on those a path reaches, and what becomes of code no path reaches.

Every verdict and message below was measured with bpf(BPF_PROG_LOAD) as root in the
tools/kernel-vm guest (Debian's 7.2.13 kernel), from the raw bytes of each program
(socket filters, log level 1; ``last`` is the log's last line before the statistics).
7.2 checks the instruction table, the fields of every class, lddw forms, jump and call
targets and the register numbers on every instruction, reached or not; it checks a zero
constant divisor, a constant shift of the width or more, the atomic operation and its
size, and whether a helper id exists only where a path reaches the instruction.  Code
that no path reaches but the control-flow graph does (behind a branch the verifier
decides) then loads, and is rewritten to ``ja -1`` (sanitize_dead_code) before either
engine sees it.
"""

from __future__ import annotations

import pytest

from uringbpf.bpf import isa, jit, jit_codegen
from uringbpf.bpf.helpers import Runtime
from uringbpf.bpf.interp import Interpreter
from uringbpf.bpf.memory import AddressSpace
from uringbpf.bpf.verifier import verify
from uringbpf.errors import BpfVerifierError, JitError

OK = None      # accepted

# name: (the instruction(s) under test as (opcode, dst, src, off, imm), 7.2's verdict when
# they sit behind a branch never taken ("dead"), when a path reaches them ("reached") and
# when no edge leads to them ("unreach"))
SINGLE = {
    "alu_k_src": ([(7, 0, 1, 0, 1)], 'BPF_ALU uses reserved fields', 'BPF_ALU uses reserved fields', 'BPF_ALU uses reserved fields'),
    "alu_off": ([(7, 0, 0, 1, 1)], 'BPF_ALU uses reserved fields', 'BPF_ALU uses reserved fields', 'BPF_ALU uses reserved fields'),
    "alu_x_imm": ([(15, 0, 0, 0, 1)], 'BPF_ALU uses reserved fields', 'BPF_ALU uses reserved fields', 'BPF_ALU uses reserved fields'),
    "div_zero": ([(55, 0, 0, 0, 0)], OK, 'div by zero', 'unreachable insn 2'),
    "mod32_zero": ([(148, 0, 0, 0, 0)], OK, 'div by zero', 'unreachable insn 2'),
    "shift64": ([(103, 0, 0, 0, 64)], OK, 'invalid shift 64', 'unreachable insn 2'),
    "shift32": ([(100, 0, 0, 0, 32)], OK, 'invalid shift 32', 'unreachable insn 2'),
    "neg_imm": ([(135, 0, 0, 0, 1)], 'BPF_NEG uses reserved fields', 'BPF_NEG uses reserved fields', 'BPF_NEG uses reserved fields'),
    "neg_x": ([(143, 0, 0, 0, 0)], 'unknown opcode 8f', 'unknown opcode 8f', 'unknown opcode 8f'),
    "end_imm": ([(212, 0, 0, 0, 8)], 'BPF_END uses reserved fields', 'BPF_END uses reserved fields', 'BPF_END uses reserved fields'),
    "bswap_x64": ([(223, 0, 0, 0, 16)], 'unknown opcode df', 'unknown opcode df', 'unknown opcode df'),
    "mov_off": ([(183, 0, 0, 5, 0)], 'BPF_MOV uses reserved fields', 'BPF_MOV uses reserved fields', 'BPF_MOV uses reserved fields'),
    "movsx_bad": ([(191, 0, 1, 7, 0)], 'BPF_MOV uses reserved fields', 'BPF_MOV uses reserved fields', 'BPF_MOV uses reserved fields'),
    "alu_bad_op": ([(231, 0, 0, 0, 0)], 'unknown opcode e7', 'unknown opcode e7', 'unknown opcode e7'),
    "ldx_imm": ([(121, 0, 10, -8, 1)], 'BPF_LDX uses reserved fields', 'BPF_LDX uses reserved fields', 'BPF_LDX uses reserved fields'),
    "ldx_mode": ([(65, 0, 10, -8, 0)], 'unknown opcode 41', 'unknown opcode 41', 'unknown opcode 41'),
    "ldxsx_dw": ([(153, 0, 10, -8, 0)], 'unknown opcode 99', 'unknown opcode 99', 'unknown opcode 99'),
    "st_src": ([(122, 10, 1, -8, 0)], 'BPF_ST uses reserved fields', 'BPF_ST uses reserved fields', 'BPF_ST uses reserved fields'),
    "st_nospec": ([(194, 0, 0, 0, 0)], 'unknown opcode c2', 'unknown opcode c2', 'unknown opcode c2'),
    "st_mode": ([(34, 10, 0, -8, 0)], 'unknown opcode 22', 'unknown opcode 22', 'unknown opcode 22'),
    "stx_imm": ([(123, 10, 0, -8, 1)], 'BPF_STX uses reserved fields', 'BPF_STX uses reserved fields', 'BPF_STX uses reserved fields'),
    "stx_mode": ([(35, 10, 0, -8, 0)], 'unknown opcode 23', 'unknown opcode 23', 'unknown opcode 23'),
    "atomic_bad_op": ([(219, 10, 0, -8, 119)], OK, 'BPF_ATOMIC uses invalid atomic opcode 77', 'unreachable insn 2'),
    "atomic_b_add": ([(211, 10, 0, -8, 0)], OK, 'invalid atomic operand size', 'unreachable insn 2'),
    "helper_unknown": ([(133, 0, 0, 0, 9999)], OK, 'invalid func unknown#9999', 'unreachable insn 2'),
    "helper_not_allowed": ([(133, 0, 0, 0, 113)], OK, 'R2 !read_ok', 'unreachable insn 2'),
    "call_src5": ([(133, 0, 5, 0, 0)], 'BPF_CALL uses reserved fields', 'BPF_CALL uses reserved fields', 'BPF_CALL uses reserved fields'),
    "call_off": ([(133, 0, 0, 1, 7)], 'BPF_CALL uses reserved fields', 'BPF_CALL uses reserved fields', 'BPF_CALL uses reserved fields'),
    "call_dst": ([(133, 1, 0, 0, 7)], 'BPF_CALL uses reserved fields', 'BPF_CALL uses reserved fields', 'BPF_CALL uses reserved fields'),
    "callx": ([(141, 0, 0, 0, 0)], 'unknown opcode 8d', 'unknown opcode 8d', 'unknown opcode 8d'),
    "jmp32_call": ([(134, 0, 0, 0, 7)], 'unknown opcode 86', 'unknown opcode 86', 'unknown opcode 86'),
    "exit_imm": ([(149, 0, 0, 0, 1)], 'BPF_EXIT uses reserved fields', 'BPF_EXIT uses reserved fields', 'BPF_EXIT uses reserved fields'),
    "exit_src": ([(149, 0, 1, 0, 0)], 'BPF_EXIT uses reserved fields', 'BPF_EXIT uses reserved fields', 'BPF_EXIT uses reserved fields'),
    "exit_off": ([(149, 0, 0, 1, 0)], 'unreachable insn 4', 'unreachable insn 2', 'unreachable insn 2'),
    "ja_src": ([(5, 0, 1, 0, 0)], 'BPF_JA uses reserved fields', 'BPF_JA uses reserved fields', 'BPF_JA uses reserved fields'),
    "ja_imm": ([(5, 0, 0, 0, 1)], 'BPF_JA uses reserved fields', 'BPF_JA uses reserved fields', 'BPF_JA uses reserved fields'),
    "ja32_off": ([(6, 0, 0, 1, 0)], 'BPF_JA uses reserved fields', 'BPF_JA uses reserved fields', 'BPF_JA uses reserved fields'),
    "jeq_k_src": ([(21, 0, 1, 0, 0)], 'BPF_JMP/JMP32 uses reserved fields', 'BPF_JMP/JMP32 uses reserved fields', 'BPF_JMP/JMP32 uses reserved fields'),
    "jeq_x_imm": ([(29, 0, 0, 0, 1)], 'BPF_JMP/JMP32 uses reserved fields', 'BPF_JMP/JMP32 uses reserved fields', 'BPF_JMP/JMP32 uses reserved fields'),
    "jmp_tail_call": ([(245, 0, 0, 0, 0)], 'unknown opcode f5', 'unknown opcode f5', 'unknown opcode f5'),
    "jmp32_bad_op": ([(246, 0, 0, 0, 0)], 'unknown opcode f6', 'unknown opcode f6', 'unknown opcode f6'),
    "mov_r11": ([(183, 11, 0, 0, 0)], 'R11 is invalid', 'R11 is invalid', 'R11 is invalid'),
    "mov_src_r12": ([(191, 0, 12, 0, 0)], 'R12 is invalid', 'R12 is invalid', 'R12 is invalid'),
    "ldx_r11": ([(121, 11, 10, -8, 0)], 'R11 is invalid', 'R11 is invalid', 'R11 is invalid'),
    "write_r10": ([(183, 10, 0, 0, 0)], OK, 'frame pointer is read only', 'unreachable insn 2'),
    "ldabs_dst": ([(32, 1, 0, 0, 0)], 'BPF_LD_[ABS|IND] uses reserved fields', 'BPF_LD_[ABS|IND] uses reserved fields', 'BPF_LD_[ABS|IND] uses reserved fields'),
    "ldind_src12": ([(64, 0, 12, 0, 0)], 'R12 is invalid', 'R12 is invalid', 'R12 is invalid'),
    "ldabs_dw": ([(56, 0, 0, 0, 0)], 'unknown opcode 38', 'unknown opcode 38', 'unknown opcode 38'),
    "lddw_off": ([(24, 0, 0, 1, 5), (0, 0, 0, 0, 0)], 'BPF_LD_IMM64 uses reserved fields', 'BPF_LD_IMM64 uses reserved fields', 'BPF_LD_IMM64 uses reserved fields'),
    "lddw_src7": ([(24, 0, 7, 0, 5), (0, 0, 0, 0, 0)], 'unrecognized bpf_ld_imm64 insn', 'unrecognized bpf_ld_imm64 insn', 'unrecognized bpf_ld_imm64 insn'),
    "pseudo_call_bad": ([(133, 0, 1, 0, 100)], 'call to invalid destination', 'call to invalid destination', 'call to invalid destination'),
    "unknown_ff": ([(255, 0, 0, 0, 0)], 'unknown opcode ff', 'unknown opcode ff', 'unknown opcode ff'),
    "ja_range": ([(5, 0, 0, 100, 0)], 'jump out of range from insn 3 to 104', 'jump out of range from insn 1 to 102', 'jump out of range from insn 2 to 103'),
    "jeq_range": ([(21, 0, 0, 100, 0)], 'jump out of range from insn 3 to 104', 'jump out of range from insn 1 to 102', 'jump out of range from insn 2 to 103'),
    "read_uninit_r5": ([(191, 0, 5, 0, 0)], OK, 'R5 !read_ok', 'unreachable insn 2'),
    "stack_oob": ([(121, 0, 10, -520, 0)], OK, 'invalid read from stack R10 off=-520 size=8', 'unreachable insn 2'),
}

# r0 = 0; if r0 != 0 goto +1; exit; <X>; exit   (X at pc 3: reachable in the graph only)
HEAD = {"dead": [(0xb7, 0, 0, 0, 0), (0x55, 0, 0, 1, 0), (0x95, 0, 0, 0, 0)],
        "reached": [(0xb7, 0, 0, 0, 0)],
        "unreach": [(0xb7, 0, 0, 0, 0), (0x95, 0, 0, 0, 0)]}
TAIL = [(0x95, 0, 0, 0, 0)]

# whole programs (name: raw instructions, 7.2's verdict)
WHOLE = {
    "dead_lddw_bad_second": ([[183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [24, 0, 0, 0, 5], [0, 1, 0, 0, 0], [149, 0, 0, 0, 0]],
        'invalid bpf_ld_imm64 insn'),
    "reached_lddw_bad_second": ([[183, 0, 0, 0, 0], [24, 0, 0, 0, 5], [0, 1, 0, 0, 0], [149, 0, 0, 0, 0]],
        'invalid bpf_ld_imm64 insn'),
    "dead_lddw_second_off": ([[183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [24, 0, 0, 0, 5], [0, 0, 0, 3, 0], [149, 0, 0, 0, 0]],
        'invalid bpf_ld_imm64 insn'),
    "dead_lddw_func_bad": ([[183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [24, 1, 4, 0, 100], [0, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'call to invalid destination'),
    "dead_lddw_last": ([[183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [24, 0, 0, 0, 5]],
        'last insn is not an exit or jmp'),
    "dead_call_subprog_div0": ([[183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [133, 0, 1, 0, 1], [149, 0, 0, 0, 0], [183, 0, 0, 0, 0], [55, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        OK),
    "dead_call_subprog_reserved": ([[183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [133, 0, 1, 0, 1], [149, 0, 0, 0, 0], [183, 0, 0, 0, 0], [7, 0, 1, 0, 1], [149, 0, 0, 0, 0]],
        'BPF_ALU uses reserved fields'),
    "reached_call_subprog_div0": ([[183, 0, 0, 0, 0], [133, 0, 1, 0, 1], [149, 0, 0, 0, 0], [183, 0, 0, 0, 0], [55, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'div by zero'),
    "subprog_dead_helper": ([[133, 0, 1, 0, 1], [149, 0, 0, 0, 0], [183, 0, 0, 0, 0], [85, 0, 0, 1, 0], [149, 0, 0, 0, 0], [133, 0, 0, 0, 9999], [149, 0, 0, 0, 0]],
        OK),
    "reached_div0_uninit": ([[55, 3, 0, 0, 0], [183, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'R3 !read_ok'),
    "reached_shift_uninit": ([[103, 3, 0, 0, 70], [183, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'R3 !read_ok'),
    "reached_atomic_bad_uninit": ([[219, 3, 4, -8, 119], [183, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'BPF_ATOMIC uses invalid atomic opcode 77'),
    "dead_after_range": ([[183, 0, 0, 0, 5], [37, 0, 0, 1, 10], [149, 0, 0, 0, 0], [55, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        OK),
    "ja_over_div0": ([[183, 0, 0, 0, 0], [5, 0, 0, 1, 0], [55, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'unreachable insn 2'),
    "stack_read_above": ([[121, 0, 10, 0, 0], [149, 0, 0, 0, 0]],
        'invalid read from stack R10 off=0 size=8'),
    "stack_var_read": ([[183, 1, 0, 0, 0], [87, 0, 0, 0, 0], [191, 2, 10, 0, 0], [183, 0, 0, 0, 0], [149, 0, 0, 0, 0]],
        'R0 !read_ok'),
    "dead_ldx_imm_mode": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (1, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode 01'),
    "reached_ldx_imm_mode": ([(183, 0, 0, 0, 0), (1, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode 01'),
    "unreach_ldx_imm_mode": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (1, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode 01'),
    "dead_ldx_abs_mode": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (33, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode 21'),
    "reached_ldx_abs_mode": ([(183, 0, 0, 0, 0), (33, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode 21'),
    "unreach_ldx_abs_mode": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (33, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode 21'),
    "dead_ldx_ind_imm": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (65, 0, 10, -8, 1), (149, 0, 0, 0, 0)],
        'unknown opcode 41'),
    "reached_ldx_ind_imm": ([(183, 0, 0, 0, 0), (65, 0, 10, -8, 1), (149, 0, 0, 0, 0)],
        'unknown opcode 41'),
    "unreach_ldx_ind_imm": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (65, 0, 10, -8, 1), (149, 0, 0, 0, 0)],
        'unknown opcode 41'),
    "dead_ldx_atomic_mode": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (193, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode c1'),
    "reached_ldx_atomic_mode": ([(183, 0, 0, 0, 0), (193, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode c1'),
    "unreach_ldx_atomic_mode": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (193, 0, 10, -8, 0), (149, 0, 0, 0, 0)],
        'unknown opcode c1'),
    "dead_ldx_mem_imm_r11": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (121, 11, 10, -8, 1), (149, 0, 0, 0, 0)],
        'R11 is invalid'),
    "reached_ldx_mem_imm_r11": ([(183, 0, 0, 0, 0), (121, 11, 10, -8, 1), (149, 0, 0, 0, 0)],
        'R11 is invalid'),
    "unreach_ldx_mem_imm_r11": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (121, 11, 10, -8, 1), (149, 0, 0, 0, 0)],
        'R11 is invalid'),
    "dead_st_nospec_src": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (194, 0, 1, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode c2'),
    "reached_st_nospec_src": ([(183, 0, 0, 0, 0), (194, 0, 1, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode c2'),
    "unreach_st_nospec_src": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (194, 0, 1, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode c2'),
    "dead_alu_bad_op_src": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (231, 0, 1, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode e7'),
    "reached_alu_bad_op_src": ([(183, 0, 0, 0, 0), (231, 0, 1, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode e7'),
    "unreach_alu_bad_op_src": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (231, 0, 1, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode e7'),
    "dead_jmp_bad_op": ([(183, 0, 0, 0, 0), (85, 0, 0, 1, 0), (149, 0, 0, 0, 0), (245, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode f5'),
    "reached_jmp_bad_op": ([(183, 0, 0, 0, 0), (245, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode f5'),
    "unreach_jmp_bad_op": ([(183, 0, 0, 0, 0), (149, 0, 0, 0, 0), (245, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'unknown opcode f5'),
    "ctx_as_map": ([(191, 2, 10, 0, 0), (7, 2, 0, 0, -8), (122, 10, 0, -8, 0), (133, 0, 0, 0, 1), (183, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'R1 type=ctx expected=map_ptr'),
    "ctx_atomic_store": ([(183, 2, 0, 0, 1), (219, 1, 2, 0, 0), (183, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'BPF_ATOMIC stores into R1 ctx is not allowed'),
    "ctx_read_far": ([(97, 0, 1, 4000, 0), (149, 0, 0, 0, 0)],
        'invalid bpf_context access off=4000 size=4'),
    "order_jump_vs_reserved": ([(183, 0, 0, 0, 0), (7, 0, 1, 0, 1), (5, 0, 0, 100, 0), (149, 0, 0, 0, 0)],
        'jump out of range from insn 2 to 103'),
    "order_reserved_vs_jump": ([(183, 0, 0, 0, 0), (5, 0, 0, 100, 0), (7, 0, 1, 0, 1), (149, 0, 0, 0, 0)],
        'jump out of range from insn 1 to 102'),
    "order_lddw_vs_reserved": ([(183, 0, 0, 0, 0), (7, 0, 1, 0, 1), (24, 0, 7, 0, 5), (0, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'BPF_ALU uses reserved fields'),
    "order_reserved_vs_unknown": ([(183, 0, 0, 0, 0), (7, 0, 1, 0, 1), (255, 0, 0, 0, 0), (149, 0, 0, 0, 0)],
        'BPF_ALU uses reserved fields'),
    "order_unknown_vs_reserved": ([(183, 0, 0, 0, 0), (255, 0, 0, 0, 0), (7, 0, 1, 0, 1), (149, 0, 0, 0, 0)],
        'unknown opcode ff'),
    "order_last_vs_reserved": ([(183, 0, 0, 0, 0), (7, 0, 1, 0, 1), (183, 0, 0, 0, 0)],
        'last insn is not an exit or jmp'),
    "order_call_dest_vs_reserved": ([(7, 0, 1, 0, 1), (133, 0, 1, 0, 100), (149, 0, 0, 0, 0)],
        'call to invalid destination'),
}


def _program(raw) -> isa.Program:
    insns = [isa.Insn(o, d, s, off, imm) for (o, d, s, off, imm) in raw]
    return isa.Program("t", insns, section="socket", prog_type="socket_filter")


def _verdict(program: isa.Program) -> str | None:
    try:
        verify(program)
    except BpfVerifierError as exc:
        return exc.message
    return OK


# our socket filters get the data length in r2 (the data-buffer convention of
# docs/verifier.md), the kernel's r2 is unset: a reached helper call reading r2 differs
NOT_COMPARABLE = {("helper_not_allowed", "reached")}
SINGLE_CASES = [(name, layout, HEAD[layout] + raw + TAIL, want)
                for name, (raw, *wants) in SINGLE.items()
                for layout, want in zip(("dead", "reached", "unreach"), wants)
                if (name, layout) not in NOT_COMPARABLE]


@pytest.mark.parametrize("name,layout,raw,want", SINGLE_CASES,
                         ids=[f"{c[1]}-{c[0]}" for c in SINGLE_CASES])
def test_single_insn_as_linux_7_2(name, layout, raw, want):
    assert _verdict(_program(raw)) == want


@pytest.mark.parametrize("name", sorted(WHOLE))
def test_whole_program_as_linux_7_2(name):
    raw, want = WHOLE[name]
    assert _verdict(_program(raw)) == want


def test_table_covers_both_kinds():
    """The table holds faults 7.2 checks everywhere and faults it checks only when reached."""
    dead_ok = [n for n, (_, dead, reached, _) in SINGLE.items() if dead is OK and reached]
    everywhere = [n for n, (_, dead, reached, _) in SINGLE.items() if dead and dead == reached]
    assert len(dead_ok) >= 10 and len(everywhere) >= 25


def _run_both(program: isa.Program) -> dict:
    out = {}
    for engine in ("interp", "jit"):
        rt = Runtime(mem=AddressSpace(), maps=[])
        if engine == "interp":
            out[engine] = Interpreter(program, rt).run(0, 0)
        else:
            fn = jit.compile(program, rt)
            try:
                out[engine] = fn(0, 0)
            finally:
                fn.close()
    return out


# in dead code 7.2 accepts it, the JIT's up-front check refuses it as written
ENGINE_REFUSES = [(0xdb, 10, 0, -8, 0x77)]   # an atomic operation that does not exist
ACCEPTED_DEAD = sorted(n for n, (_, dead, reached, _) in SINGLE.items() if dead is OK and reached)


@pytest.mark.parametrize("name", ACCEPTED_DEAD)
def test_dead_insn_becomes_a_trap_and_both_engines_run(name):
    """Each fault 7.2 accepts in dead code: the loaded program has ``ja -1`` there (the
    original kept in ``Program.dead_code``), both engines accept and run it alike."""
    raw = HEAD["dead"] + SINGLE[name][0] + TAIL
    program = _program(raw)
    original = list(program.insns)
    verify(program)
    # everything after the decided branch's dead side, the final exit included
    assert sorted(program.dead_code) == list(range(3, len(original)))
    for pc in range(3, len(original)):
        assert program.insns[pc] == isa.Insn(isa.OP_JA, 0, 0, -1, 0)
        assert program.dead_code[pc] == original[pc]
    assert program.insns[:3] == original[:3]
    jit_codegen.validate(program.insns)
    assert _run_both(program) == {"interp": 0, "jit": 0}


def test_the_engines_would_refuse_the_unchecked_instruction():
    """Why the rewrite matters: an engine given the dead instruction as written refuses the
    program (it checks what the verifier left unchecked); given the loaded form, it runs."""
    program = _program(HEAD["dead"] + ENGINE_REFUSES + TAIL)
    with pytest.raises(JitError):
        jit_codegen.validate(list(program.insns))
    verify(program)
    jit_codegen.validate(program.insns)


def test_verifying_again_sees_the_program_as_given():
    """The traps are the verifier's output: a second verification puts the originals back
    first, gives the same verdict and makes the same rewrite."""
    program = _program(HEAD["dead"] + [(0x37, 0, 0, 0, 0)] + TAIL)    # r0 /= 0, dead
    verify(program)
    first = list(program.insns)
    verify(program)
    assert program.insns == first and set(program.dead_code) == {3, 4}
    assert program.dead_code[3] == isa.Insn(0x37, 0, 0, 0, 0)


def test_subprogram_called_only_from_dead_code_is_rewritten_whole():
    raw, want = WHOLE["dead_call_subprog_div0"]
    program = _program(raw)
    verify(program)
    assert want is OK
    assert sorted(program.dead_code) == [3, 4, 5, 6, 7]
    assert _run_both(program) == {"interp": 0, "jit": 0}


def test_dead_lddw_is_two_traps():
    """An lddw no path reaches: both slots become traps (the kernel's sanitize_dead_code
    rewrites every slot), so no engine decodes its immediate."""
    lddw = isa.lddw_pair(1, 0x1122334455667788)
    program = isa.Program("t", [isa.Insn(o.opcode, o.dst, o.src, o.off, o.imm, o.imm64)
                                for o in _program(HEAD["dead"]).insns] + lddw
                          + [isa.Insn(isa.OP_EXIT)], section="socket", prog_type="socket_filter")
    verify(program)
    assert sorted(program.dead_code) == [3, 4, 5]
    assert _run_both(program) == {"interp": 0, "jit": 0}


def test_reached_code_is_never_rewritten():
    """A branch both ways can take (on the data length in r2): nothing is dead, nothing
    changes, and the engines take either side."""
    program = _program([(0xb7, 0, 0, 0, 0), (0x55, 2, 0, 1, 0), (0x95, 0, 0, 0, 0),
                        (0xb7, 0, 0, 0, 7), (0x95, 0, 0, 0, 0)])
    before = list(program.insns)
    verify(program)
    assert program.dead_code == {} and program.insns == before
