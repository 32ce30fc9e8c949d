/* a global function returning a pointer */
#include "ho3.h"
__attribute__((noinline)) __u8 *same(__u8 *p)
{
	return p;
}
STEP
{
	__u8 b = 1;
	__u8 *q = same(&b);
	return q ? 1 : 0;
}
OPS;
