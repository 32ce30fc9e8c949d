/* a 2-byte store and load at fp-2 */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r1 = 1;"
	"*(u16 *)(r10 - 2) = r1;"
	"r0 = *(u16 *)(r10 - 2);"
	"r0 &= 1;"
	"exit;"
	::  : "memory");
}
OPS;
