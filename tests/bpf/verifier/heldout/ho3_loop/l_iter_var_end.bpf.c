/* realistic: bpf_for up to a run-time bound, the index checked against the table */
#include "ho3.h"
STEP
{
	int i, sum = 0, n = lp->cq_wait_idx;
	bpf_for(i, 0, n) {
		if (i >= 16)
			break;
		sum += tbl[i];
	}
	return sum & 1;
}
OPS;
