/* a 4-byte store at fp-2 */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r1 = 0;"
	"*(u32 *)(r10 - 2) = r1;"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
