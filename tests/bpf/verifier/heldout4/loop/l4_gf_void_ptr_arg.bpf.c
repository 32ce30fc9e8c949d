/* a global function with a void * parameter */
#include "ho4.h"
__attribute__((noinline)) int nz(void *v)
{
	return v != 0;
}
STEP
{
	__u8 *p = bpf_io_uring_get_region(ring, IOU_REGION_MEM, 8);
	return nz(p);
}
OPS;
