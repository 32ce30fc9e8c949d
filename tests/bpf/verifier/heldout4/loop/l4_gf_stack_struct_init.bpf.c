/* realistic: an initialised stack struct passed to a global function */
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
	struct pair q = { .a = lp->cq_wait_idx, .b = 3 };
	return sum(&q);
}
OPS;
