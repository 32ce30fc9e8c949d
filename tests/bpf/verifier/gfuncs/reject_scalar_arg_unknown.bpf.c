#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>
char LICENSE[] SEC("license") = "GPL";
unsigned char tbl[16];

/* a scalar argument is unknown in the global function, whatever the caller passes */
__attribute__((noinline)) int at(unsigned int i) { return tbl[i]; }
SEC("struct_ops.s/step")
int BPF_PROG(step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	return at(3);
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops ops = { .loop_step = (void *)step };
