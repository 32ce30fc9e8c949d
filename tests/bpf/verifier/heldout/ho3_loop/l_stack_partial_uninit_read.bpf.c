/* an 8-byte read of a slot with only 4 bytes written (privileged: allowed) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r1 = 7;"
	"*(u32 *)(r10 - 8) = r1;"
	"r0 = *(u64 *)(r10 - 8);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
