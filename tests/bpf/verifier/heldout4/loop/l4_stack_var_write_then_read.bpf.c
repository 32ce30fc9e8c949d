/* a variable-offset stack write, then a fixed read of one slot it may hit */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r8 = *(u64 *)(r1 + 8);"
	"r1 = *(u32 *)(r8 + 0);"
	"r1 &= 8;"
	"r2 = r10;"
	"r2 += -16;"
	"r2 += r1;"
	"r3 = 5;"
	"*(u64 *)(r2 + 0) = r3;"
	"r0 = *(u64 *)(r10 - 8);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
