#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
char LICENSE[] SEC("license") = "GPL";
unsigned char tbl[16];

/* a pointer argument may be NULL inside the global function */
__attribute__((noinline)) int get(int *p) { return *p; }
SEC("struct_ops.s/step")
int BPF_PROG(step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	int x = lp->cq_wait_idx;
	return get(&x);
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops ops = { .loop_step = (void *)step };
