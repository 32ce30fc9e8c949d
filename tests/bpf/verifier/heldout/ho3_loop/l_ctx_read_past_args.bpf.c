/* the context holds two arguments: a third one read at +16 */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r0 = *(u64 *)(r1 + 16);"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
