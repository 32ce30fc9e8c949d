/* a 64-bit copy tested with a 32-bit compare bounds the original */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = *(u32 *)(r7 + 0);"
	"r3 = r1;"
	"if w3 > 15 goto 1f;"
	"r2 = %[tbl] ll;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM_ADDR(tbl) : "memory");
}
OPS;
