/* the ring pointer spilled, its low half read back */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r6 = *(u64 *)(r1 + 0);"
	"*(u64 *)(r10 - 8) = r6;"
	"r0 = *(u32 *)(r10 - 8);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
