/* realistic: a global function reads a field of a struct pointer argument after the NULL check */
#include "ho3.h"
struct pair { int a, b; };
__attribute__((noinline)) int get_b(struct pair *p)
{
	if (!p)
		return 0;
	return p->b;
}
STEP
{
	struct pair pr = { .a = 1, .b = (int)lp->cq_wait_idx };
	return get_b(&pr) & 1;
}
OPS;
