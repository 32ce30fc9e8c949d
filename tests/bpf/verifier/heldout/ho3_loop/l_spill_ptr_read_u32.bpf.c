/* 4 bytes of a spilled region pointer read back */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	ASM_RING_R6
	"*(u64 *)(r10 - 8) = r6;"
	"r0 = *(u32 *)(r10 - 8);"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
