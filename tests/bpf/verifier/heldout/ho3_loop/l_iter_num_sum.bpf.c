/* realistic: bpf_for over the table, the index bounded by the iterator's range checks */
#include "ho3.h"
STEP
{
	int sum = 0, i;
	bpf_for(i, 0, 16)
		sum += tbl[i];
	return sum & 1;
}
OPS;
