/* realistic: a global function with a can_loop scan of its buffer argument */
#include "ho3.h"
__attribute__((noinline)) int count_nonzero(struct val16 *v)
{
	int n = 0;
	unsigned int i = 0;
	if (!v)
		return 0;
	while (can_loop) {
		if (i >= 16)
			break;
		n += v->b[i] != 0;
		i++;
	}
	return n;
}
STEP
{
	int k = 0;
	return count_nonzero(bpf_map_lookup_elem(&arr, &k)) & 1;
}
OPS;
