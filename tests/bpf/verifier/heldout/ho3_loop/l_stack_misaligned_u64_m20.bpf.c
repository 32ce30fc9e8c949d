/* an 8-byte stack store at fp-20 */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r1 = 0;"
	"*(u64 *)(r10 - 20) = r1;"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
