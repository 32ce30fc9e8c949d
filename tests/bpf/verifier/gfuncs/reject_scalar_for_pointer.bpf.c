#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
char LICENSE[] SEC("license") = "GPL";
unsigned char tbl[16];

/* the caller must pass memory (or NULL) for a pointer argument */
__attribute__((noinline)) int get(int *p) { if (!p) return 0; return *p; }
SEC("struct_ops.s/step")
int BPF_PROG(step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	return get((int *)(unsigned long)(lp->cq_wait_idx | 1));
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops ops = { .loop_step = (void *)step };
