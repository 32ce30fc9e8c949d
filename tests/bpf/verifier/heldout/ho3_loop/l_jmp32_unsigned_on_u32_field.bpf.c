/* a 32-bit unsigned check of the parameter then a 64-bit use (the load zero-extends) */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r1 = *(u32 *)(r7 + 0);"
	"if w1 > 15 goto 1f;"
	"r2 = %[tbl] ll;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"1:"
	"r0 = 0;"
	"exit;"
	:: IMM_ADDR(tbl) : "memory");
}
OPS;
