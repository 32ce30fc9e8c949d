// may_goto from BPF C: libbpf-style can_loop / cond_break (uringbpf's bpf_experimental.h).
// Each program is verified here and loaded into the Linux 7.2 guest with libbpf (BTF and
// func_info, so the bpf_loop callback loads too): may_goto_c_guest.sh, recorded in
// ../may_goto_c_kernel72.json.
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_experimental.h>

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, __u64[8]);
} vals SEC(".maps");

static __u64 *value(void)
{
	__u32 key = 0;

	return bpf_map_lookup_elem(&vals, &key);
}

SEC("socket")
int sum_to_n(void *ctx)
{
	__u64 *v = value(), sum = 0, i;

	if (!v)
		return 0;
	for (i = 0; i < v[0] && can_loop; i++)
		sum += i;
	return sum;
}

SEC("socket")
int count_forever(void *ctx)
{
	__u64 k = 0;

	for (;;) {
		cond_break;
		k++;
	}
	return k;
}

SEC("socket")
int index_bounded(void *ctx)
{
	__u64 *v = value(), sum = 0;
	__u32 i;

	if (!v)
		return 0;
	for (i = 0; i < v[0] && can_loop; i++) {
		if (i >= 8)
			break;
		sum += v[i];
	}
	return sum;
}

SEC("socket")
int nested(void *ctx)
{
	__u64 *v = value(), sum = 0, i, j;

	if (!v)
		return 0;
	for (i = 0; i < v[0] && can_loop; i++)
		for (j = 0; j < v[1] && can_loop; j++)
			sum += i * j;
	return sum;
}

static __attribute__((noinline)) __u64 triangle(__u64 n)
{
	__u64 s = 0, i;

	for (i = 0; i < n && can_loop; i++)
		s += i;
	return s;
}

SEC("socket")
int in_subprog(void *ctx)
{
	__u64 *v = value();

	if (!v)
		return 0;
	return triangle(v[0]) + triangle(v[1]);
}

static long cb(__u64 index, void *data)
{
	__u64 *acc = data, k = 0;

	while (k < index && can_loop)
		k++;
	*acc += k;
	return 0;
}

SEC("socket")
int in_callback(void *ctx)
{
	__u64 acc = 0;

	bpf_loop(5, cb, &acc, 0);
	return acc;
}

char LICENSE[] SEC("license") = "GPL";
