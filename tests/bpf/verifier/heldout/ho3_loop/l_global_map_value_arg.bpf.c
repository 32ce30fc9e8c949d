/* a map value (maybe NULL) passed to a global function that checks it */
#include "ho3.h"
__attribute__((noinline)) int first(struct val16 *v)
{
	if (!v)
		return 0;
	return v->b[0];
}
STEP
{
	int k = 0;
	return first(bpf_map_lookup_elem(&arr, &k)) & 1;
}
OPS;
