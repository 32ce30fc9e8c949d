/* a may_goto loop indexing the table with a growing, unchecked index */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r6 = 0;"
	"2:"
	"may_goto 1f;"
	"r1 = %[tbl] ll;"
	"r1 += r6;"
	"r0 = *(u8 *)(r1 + 0);"
	"r6 += 1;"
	"goto 2b;"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM_ADDR(tbl) : "memory");
}
OPS;
