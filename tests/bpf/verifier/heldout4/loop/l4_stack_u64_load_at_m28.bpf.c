/* an 8-byte load at fp-28 of initialised bytes */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r1 = 0;"
	"*(u64 *)(r10 - 32) = r1;"
	"*(u64 *)(r10 - 24) = r1;"
	"r0 = *(u64 *)(r10 - 28);"
	"exit;"
	::  : "memory");
}
OPS;
