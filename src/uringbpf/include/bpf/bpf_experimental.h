/* SPDX-License-Identifier: MIT */
/*
 * uringbpf: loop helpers of libbpf's bpf_experimental.h, written for uringbpf.
 *
 * can_loop    -- an expression: true while this frame's hidden loop counter lasts, false
 *                once it is spent.  for (i = 0; i < n && can_loop; i++) ... is a loop the
 *                verifier accepts for any n.
 * cond_break  -- a statement: leaves the enclosing loop once the counter is spent.
 *
 * Both compile to one `may_goto` instruction (opcode 0xe5, Linux 6.9+): at run time each
 * frame has a counter (the kernel's BPF_MAX_LOOPS, 8M) that every may_goto counts down;
 * at 0 it jumps.  uringbpf's interpreter and JIT keep the same count (docs/internals.md).
 */
#ifndef __URINGBPF_BPF_EXPERIMENTAL_H
#define __URINGBPF_BPF_EXPERIMENTAL_H

#ifdef __BPF_FEATURE_MAY_GOTO
/* clang 19+ knows the mnemonic */
#define __uringbpf_may_goto(label) \
	asm volatile goto("may_goto %l[" #label "]" :::: label)
#else
/* older clang: the instruction's 8 bytes spelled out (code 0xe5, regs 0, off = slots from
 * the next instruction to the label, imm 0); off and the low half of imm go out as one
 * 32-bit word because the BPF assembler resolves label differences only in 32-bit data */
#define __uringbpf_may_goto(label)					\
	asm volatile goto("1: .byte 0xe5, 0\n"				\
			  "   .long ((%l[" #label "] - 1b - 8) / 8) & 0xffff\n" \
			  "   .short 0\n" :::: label)
#endif

#define can_loop							\
	({ __label__ __ub_spent, __ub_go;				\
	   _Bool __ub_ok = 1;						\
	   __uringbpf_may_goto(__ub_spent);				\
	   goto __ub_go;						\
	__ub_spent: __ub_ok = 0;					\
	__ub_go:;							\
	   __ub_ok; })

#define cond_break							\
	({ __label__ __ub_spent, __ub_go;				\
	   __uringbpf_may_goto(__ub_spent);				\
	   goto __ub_go;						\
	__ub_spent: break;						\
	__ub_go:; })

#endif /* __URINGBPF_BPF_EXPERIMENTAL_H */
