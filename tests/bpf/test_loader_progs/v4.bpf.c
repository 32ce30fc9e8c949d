/* Loader test: cpu v4 (signed division) needs a compiler that supports -mcpu=v4. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

__s64 divisor = -3;

SEC("syscall")
int sdiv(void *ctx)
{
	__s64 x = -100;
	return (int)(x / divisor);
}
