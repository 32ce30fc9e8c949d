/*
 * SQE rewrites shared by every design's C (and mirrored by uring.ring.deny_sqe in Python):
 * one implementation of "deny this SQE": it becomes a NOP that completes with `res`
 * (IORING_NOP_INJECT_RESULT, Linux 6.?+: the NOP's len is the CQE's res), keeps its own
 * user_data and only the flags in `keep` (the link/drain flags, so the rest of its chain
 * is cancelled as the kernel would cancel it), so the kernel still completes it in SQ order.
 */
#ifndef URINGBPF_SQE_H
#define URINGBPF_SQE_H

#include <errno.h>
#include <stdint.h>
#include <string.h>

#define URINGBPF_OP_NOP 0
#define URINGBPF_NOP_INJECT_RESULT 1u
/* IOSQE_IO_DRAIN | IOSQE_IO_LINK | IOSQE_IO_HARDLINK: what a denied SQE keeps (Ring._deny) */
#define URINGBPF_DENY_KEEP_FLAGS (2u | 4u | 8u)

static inline void uringbpf_deny_sqe(uint8_t *sqe, uint32_t sqe_size, int32_t res, uint8_t keep)
{
	uint64_t user_data;
	uint8_t flags = sqe[1] & keep;
	uint32_t nop_flags = URINGBPF_NOP_INJECT_RESULT;

	memcpy(&user_data, sqe + 32, 8);
	memset(sqe, 0, sqe_size);
	sqe[0] = URINGBPF_OP_NOP;
	sqe[1] = flags;
	memset(sqe + 4, 0xff, 4);        /* fd = -1 */
	memcpy(sqe + 24, &res, 4);       /* len: the injected result */
	memcpy(sqe + 28, &nop_flags, 4); /* nop_flags */
	memcpy(sqe + 32, &user_data, 8);
}

/*
 * A link chain with a refused member fails as a whole, as io_submit_fail_init() makes it
 * fail (mirrored by uring.ring.Ring._fail_chain): while the chain is assembled a refused
 * SQE is rewritten at once by uringbpf_chain_refuse() (a NOP carrying its error, its
 * link/drain flags kept so the chain can still be followed, tagged in addr3); once the
 * chain ends uringbpf_fail_chain_member() rewrites every member in order: a refused one
 * completes with its error, the others with -ECANCELED, each hard-linked to the next but
 * the last, so the CQEs come in the kernel's order and nothing cancels them on the way.
 */
#define URINGBPF_CHAIN_TAG 0x6e69616863627575ull /* "uubchain" */
#define URINGBPF_SQE_LINKS (4u | 8u)           /* IOSQE_IO_LINK | IOSQE_IO_HARDLINK */

static inline void uringbpf_chain_refuse(uint8_t *sqe, uint32_t sqe_size, int32_t res)
{
	uint64_t tag = URINGBPF_CHAIN_TAG;

	uringbpf_deny_sqe(sqe, sqe_size, res, URINGBPF_DENY_KEEP_FLAGS);
	memcpy(sqe + 48, &tag, 8);       /* addr3: cleared by uringbpf_fail_chain_member */
}

static inline void uringbpf_fail_chain_member(uint8_t *sqe, uint32_t sqe_size, int last)
{
	uint64_t tag;
	int32_t res = -ECANCELED;

	memcpy(&tag, sqe + 48, 8);
	if (sqe[0] == URINGBPF_OP_NOP && tag == URINGBPF_CHAIN_TAG)
		memcpy(&res, sqe + 24, 4);
	uringbpf_deny_sqe(sqe, sqe_size, res, 2u /* IOSQE_IO_DRAIN */);
	if (!last)
		sqe[1] |= 8u;            /* IOSQE_IO_HARDLINK */
}

#endif
