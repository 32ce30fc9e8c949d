/* Loader test: ring buffer, bpf_loop with a callback, spin lock in a map value, printk. */
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct event {
	__u32 seq;
	__u32 kind;
	__u64 value;
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct locked {
	struct bpf_spin_lock lock;
	__u32 total;
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct locked);
} state SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 2);
	__type(key, __u32);
	__type(value, __u64);
} percpu SEC(".maps");

__u32 seq;

static int add_one(__u32 i, void *ctx)
{
	__u64 *sum = ctx;
	*sum += i + 1;
	return *sum > 1000 ? 1 : 0;
}

SEC("syscall")
int produce(void *ctx)
{
	struct event *e;
	struct event out = {};
	__u64 sum = 0;
	__u32 zero = 0;
	struct locked *l;
	__u64 *pc;
	long looped;

	looped = bpf_loop(10, add_one, &sum, 0);    /* 1 + 2 + ... + 10 = 55 */

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return -1;
	e->seq = ++seq;
	e->kind = 1;
	e->value = sum;
	bpf_ringbuf_submit(e, 0);

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return -2;
	e->seq = 999;
	bpf_ringbuf_discard(e, 0);

	out.seq = ++seq;
	out.kind = 2;
	out.value = looped;
	if (bpf_ringbuf_output(&events, &out, sizeof(out), 0))
		return -3;

	l = bpf_map_lookup_elem(&state, &zero);
	if (!l)
		return -4;
	bpf_spin_lock(&l->lock);
	l->total += 5;
	bpf_spin_unlock(&l->lock);

	pc = bpf_map_lookup_elem(&percpu, &zero);
	if (pc)
		*pc += 1;
	return (int)sum;
}

SEC("syscall")
int iterate(void *ctx)
{
	int i, sum = 0, n = 0;

	bpf_for(i, 3, 8)          /* 3 + 4 + 5 + 6 + 7 = 25 */
		sum += i;
	bpf_repeat(4)
		n++;
	return sum * 100 + n;
}
