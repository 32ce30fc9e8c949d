/* a 2-byte store into lp->cq_wait_idx */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = 1;"
	"*(u16 *)(r7 + 0) = r1;"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
