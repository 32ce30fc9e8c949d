/* a 1-byte read of the third byte of lp->cq_wait_idx */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r0 = *(u8 *)(r7 + 2);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
