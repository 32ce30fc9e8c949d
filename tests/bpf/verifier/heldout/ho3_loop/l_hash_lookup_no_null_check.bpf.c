/* a hash map value used without the NULL check */
#include "ho3.h"
STEP
{
	int k = 1;
	__u64 *v = bpf_map_lookup_elem(&hmap, &k);
	return *(volatile __u64 *)v & 1;
}
OPS;
