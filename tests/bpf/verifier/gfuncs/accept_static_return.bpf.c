#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
char LICENSE[] SEC("license") = "GPL";
unsigned char tbl[16];

/* the static twin: analysed per call site, the index is known < 16 */
static __attribute__((noinline)) int pick(int x) { return x & 15; }
SEC("struct_ops.s/step")
int BPF_PROG(step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	return tbl[pick(lp->cq_wait_idx)];
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops ops = { .loop_step = (void *)step };
