/*
 * The 7.0 cBPF opcode filters' C: the ring-side SQE check (designs/filter: one ctypes call per
 * SQE). The classic-BPF machine itself is native/cbpf.h, shared with the loop driver, which
 * runs the same check on SQEs a loop_step program submits.
 */
#include <stdint.h>

#include "cbpf.h"

int32_t filter_sqe_check(uint64_t table, const uint8_t *sqe)
{
	return ub_filter_check((const struct ub_filter_table *)(uintptr_t)table, sqe);
}

uint32_t filter_cbpf_run(const struct ub_sock_filter *insns, uint32_t n, const uint8_t *ctx,
			 uint32_t ctx_len)
{
	return ub_cbpf_run(insns, n, ctx, ctx_len);
}
