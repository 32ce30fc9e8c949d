/* a loop whose state never changes */
#include "ho4.h"
NAKED_STEP
{
	asm volatile(
	"r7 = 0;"
	"1:"
	"if r7 > 3 goto 2f;"
	"goto 1b;"
	"2:"
	"r0 = 0;"
	"exit;"
	::  : "memory");
}
OPS;
