/* Loader test: global data, several programs per section, .text subprograms, BTF maps,
 * weak/unresolved kfuncs, kconfig. */
#include <linux/types.h>
#include <linux/errno.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 scale = 3;          /* .rodata, set from Python before load */
const volatile __s32 negative = -5;      /* .rodata */
const volatile char greeting[8] = "hi";  /* .rodata char array */
__u64 counter = 100;                      /* .data */
__u32 last_seen;                          /* .bss */
__s64 big_bss;                            /* .bss */
__u32 custom_data SEC(".data.custom") = 77;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern int bpf_ubpf_no_such_kfunc(int x) __ksym __weak;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} slots SEC(".maps");

static __attribute__((noinline)) __u32 mul_scale(__u32 x)
{
	return x * scale;
}

__attribute__((noinline)) int global_add(int a, int b)
{
	return a + b + (int)custom_data;
}

SEC("syscall")
int compute(void *ctx)
{
	last_seen = mul_scale(7);
	counter += 1;
	return global_add((int)last_seen, negative);
}

SEC("syscall")
int count_key(void *ctx)
{
	__u32 key = last_seen;
	__u64 one = 1, *v;

	v = bpf_map_lookup_elem(&counts, &key);
	if (v)
		*v += 1;
	else
		bpf_map_update_elem(&counts, &key, &one, BPF_NOEXIST);
	v = bpf_map_lookup_elem(&counts, &key);
	return v ? (int)*v : -1;
}

SEC("socket")
int printer(void *ctx)
{
	__u32 idx = 2;
	__u64 val = 0x1234;

	bpf_map_update_elem(&slots, &idx, &val, BPF_ANY);
	bpf_printk("value=%d name=%s", (int)scale, "ubpf");
	return greeting[0];
}

SEC("syscall")
int weak_kfunc(void *ctx)
{
	if (bpf_ksym_exists(bpf_ubpf_no_such_kfunc))
		return bpf_ubpf_no_such_kfunc(1);
	return 42 + bpf_ubpf_no_such_kfunc(2);
}

SEC("syscall")
int kversion(void *ctx)
{
	return LINUX_KERNEL_VERSION >> 16;
}

SEC("?syscall")
int optional(void *ctx)
{
	return 5;
}
