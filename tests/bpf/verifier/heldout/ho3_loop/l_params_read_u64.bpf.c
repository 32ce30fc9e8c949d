/* an 8-byte read at lp+0: the struct is 4 bytes */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r0 = *(u64 *)(r7 + 0);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
