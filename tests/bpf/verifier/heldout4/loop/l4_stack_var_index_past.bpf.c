/* a stack read at fp-32 + (idx & 63): up to fp+31 */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r8 = *(u64 *)(r1 + 8);"
	"r1 = 0;"
	"*(u64 *)(r10 - 32) = r1;"
	"*(u64 *)(r10 - 24) = r1;"
	"*(u64 *)(r10 - 16) = r1;"
	"*(u64 *)(r10 - 8) = r1;"
	"r1 = *(u32 *)(r8 + 0);"
	"r1 &= 63;"
	"r2 = r10;"
	"r2 += -32;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"exit;"
	::  : "memory");
}
OPS;
