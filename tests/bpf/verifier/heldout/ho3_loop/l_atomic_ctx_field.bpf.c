/* an atomic add on lp->cq_wait_idx (the struct_ops context argument) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = 1;"
	"lock *(u32 *)(r7 + 0) += w1;"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
