/* Loader test: a kfunc the test registers, and (with -DMISSING) one nobody registers. */
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

extern __u64 ubpf_test_kfunc_mul(__u64 a, __u64 b) __ksym;
#ifdef MISSING
extern int ubpf_test_kfunc_missing(int x) __ksym;
#endif

SEC("syscall")
int use_kfunc(void *ctx)
{
	int r = (int)ubpf_test_kfunc_mul(6, 7);
#ifdef MISSING
	r += ubpf_test_kfunc_missing(1);
#endif
	return r;
}
