/* realistic: a can_loop loop whose index is checked each turn */
#include "ho3.h"
STEP
{
	unsigned int i = 0, sum = 0;
	while (can_loop) {
		if (i >= 16)
			break;
		sum += tbl[i];
		i++;
	}
	return sum & 1;
}
OPS;
