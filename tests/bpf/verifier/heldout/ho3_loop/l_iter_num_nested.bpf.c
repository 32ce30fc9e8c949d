/* realistic: two nested bpf_for loops indexing a 16-byte table with i*4+j */
#include "ho3.h"
STEP
{
	int sum = 0, i, j;
	bpf_for(i, 0, 4)
		bpf_for(j, 0, 4)
			sum += tbl[i * 4 + j];
	return sum & 1;
}
OPS;
