/* Loader test: a struct_ops object with two members bound to programs and data fields. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>

char LICENSE[] SEC("license") = "GPL";

struct ubpf_test_ctx {
	__u64 a;
	__u64 b;
};

struct ubpf_test_ops {
	int (*combine)(struct ubpf_test_ctx *ctx, int extra);
	int (*other)(int x);
	__u32 ring_fd;
	__u64 cookie;
};

int calls;

static __attribute__((noinline)) int twice(int v)
{
	return v * 2;
}

SEC("struct_ops/combine")
int BPF_PROG(combine, struct ubpf_test_ctx *c, int extra)
{
	calls++;
	return (int)(c->a + c->b) + twice(extra);
}

SEC("struct_ops.s/other")
int BPF_PROG(other, int x)
{
	calls++;
	return x - 1;
}

SEC(".struct_ops.link")
struct ubpf_test_ops test_ops = {
	.combine = (void *)combine,
	.other = (void *)other,
	.ring_fd = 17,
	.cookie = 0x1122334455667788ULL,
};
