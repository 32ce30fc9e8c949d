/* an uninitialised stack struct passed to a global function that reads it */
#include "ho4.h"
struct pair { __u32 a, b; };
__attribute__((noinline)) int sum(struct pair *q)
{
	if (!q)
		return 0;
	return (q->a + q->b) & 1;
}
STEP
{
	struct pair q;
	asm volatile("" : : "r"(&q) : "memory");
	return sum(&q);
}
OPS;
