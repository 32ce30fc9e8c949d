/* the caller passes a 4-byte stack object for an 8-byte struct pointer argument */
#include "ho3.h"
struct pair { int a, b; };
__attribute__((noinline)) int get_a(struct pair *p)
{
	if (!p)
		return 0;
	return p->a;
}
STEP
{
	int x = 3;
	return get_a((struct pair *)&x) & 1;
}
OPS;
