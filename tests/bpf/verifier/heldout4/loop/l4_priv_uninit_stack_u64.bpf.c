/* an 8-byte read of a never written stack slot */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r0 = *(u64 *)(r10 - 16);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
