/* SEC("tiny/..."): returns bpf_tiny_scale(ctx->value, ctx->factor), then doubles factor. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

struct tiny_ctx {
	__u64 value;
	__u64 factor;
};

extern __u64 bpf_tiny_scale(__u64 value, __u64 factor) __ksym;

SEC("tiny/scale")
int scale(struct tiny_ctx *ctx)
{
	__u64 r = bpf_tiny_scale(ctx->value, ctx->factor);

	ctx->factor *= 2;
	return (int)r;
}

char LICENSE[] SEC("license") = "GPL";
