/* the last 8 bytes of the 512-byte stack, then one slot past it */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r1 = 1;"
	"*(u64 *)(r10 - 512) = r1;"
	"*(u64 *)(r10 - 520) = r1;"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
