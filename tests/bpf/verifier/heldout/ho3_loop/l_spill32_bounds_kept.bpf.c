/* a 4-byte spill of a bounded value keeps its bounds */
#include "ho3.h"
NAKED_STEP
{
	asm volatile(
	"r7 = *(u64 *)(r1 + 8);"
	"r6 = *(u32 *)(r7 + 0);"
	"r6 &= 15;"
	"*(u32 *)(r10 - 4) = r6;"
	"r1 = *(u32 *)(r10 - 4);"
	"r2 = %[tbl] ll;"
	"r2 += r1;"
	"r0 = *(u8 *)(r2 + 0);"
	"r0 &= 1;"
	"exit;"
	:: IMM_ADDR(tbl) : "memory");
}
OPS;
