/* half of the first argument read from the context */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r0 = *(u32 *)(r1 + 0);"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
