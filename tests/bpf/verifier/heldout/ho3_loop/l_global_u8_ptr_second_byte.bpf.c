/* a global function reads p[1] of a __u8 * argument: its memory is one byte */
#include "ho3.h"
__attribute__((noinline)) int second(__u8 *p)
{
	if (!p)
		return 0;
	return p[1];
}
STEP
{
	__u8 buf[8] = {};
	return second(buf) & 1;
}
OPS;
