/* a may_goto loop that sets r0 only inside the loop */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"2:"
	"may_goto 1f;"
	"r0 = 0;"
	"goto 2b;"
	"1:"
	"exit;"
	::  : "memory");
}
OPS;
