/* loop_step returns 2 (the kernel fails the enter at run time) */
#include "ho3.h"
STEP
{
	return 2;
}
OPS;
