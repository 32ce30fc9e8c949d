/* a 4-byte variable-offset stack store at fp-16 + (idx & 2) */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r8 = *(u64 *)(r1 + 8);"
	"r1 = *(u32 *)(r8 + 0);"
	"r1 &= 2;"
	"r2 = r10;"
	"r2 += -16;"
	"r2 += r1;"
	"r3 = 5;"
	"*(u32 *)(r2 + 0) = r3;"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
