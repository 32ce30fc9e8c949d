/*
 * Classic-BPF io_uring opcode filters (Linux 7.0) in C, for SQEs that a loop_step
 * program submits natively: no trip to Python per SQE.
 *
 * designs/filter.py checks and rewrites every program exactly as the kernel does
 * (designs/cbpf.py) and flattens the ring's filter table into one blob with the
 * layout below; this header only *runs* such checked programs, with the same
 * semantics as cbpf.run() (the tests compare both on random programs).
 *
 *   blob:   u32 magic, u32 nr_ops, u32 chain_off[UB_FILTER_MAX_OPS]   (0 = no filter)
 *   chain:  u32 count, u32 prog_off[count]                            (0 = deny marker)
 *   prog:   u32 len, u32 pad, struct ub_sock_filter insns[len]
 */
#ifndef URINGBPF_CBPF_H
#define URINGBPF_CBPF_H

#include <stdint.h>
#include <string.h>
#include <errno.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

#define UB_FILTER_MAGIC 0x63627066u /* "cbpf" */
#define UB_FILTER_MAX_OPS 256
#define UB_FILTER_CTX_SIZE 40

struct ub_sock_filter {
	uint16_t code;
	uint8_t jt;
	uint8_t jf;
	uint32_t k;
};

struct ub_filter_table {
	uint32_t magic;
	uint32_t nr_ops;
	uint32_t flags;     /* UB_FILTER_F_*: what the ring's setup says about refusals */
	uint32_t chain_off[UB_FILTER_MAX_OPS];
};

/* The ring has IORING_SETUP_SUBMIT_ALL: a refused SQE does not end the submission batch. */
#define UB_FILTER_F_SUBMIT_ALL 1u

/*
 * After ub_filter_check refused `sqe`: does the kernel's io_submit_sqes stop there?  It
 * does (the refused SQE counted as consumed) unless the ring has SUBMIT_ALL or the SQE
 * links on (io_submit_fail_init keeps assembling the chain and returns 0).
 */
static int ub_filter_ends_batch(const struct ub_filter_table *t, const uint8_t *sqe)
{
	return !(t->flags & UB_FILTER_F_SUBMIT_ALL) && !(sqe[1] & (4u | 8u) /* LINK, HARDLINK */);
}

/* Returns the u32 the program returns; faults (division by zero) return 0. */
static uint32_t ub_cbpf_run(const struct ub_sock_filter *insns, uint32_t n, const uint8_t *ctx,
			    uint32_t ctx_len)
{
	uint32_t a = 0, x = 0, mem[16] = {0};
	uint32_t pc = 0;

	while (pc < n) {
		const struct ub_sock_filter *ins = &insns[pc++];
		uint16_t code = ins->code;
		uint32_t k = ins->k, src;

		switch (code & 0x07) {
		case 0x04: /* ALU */
			if ((code & 0xf0) == 0x80) {
				a = -a;
				break;
			}
			src = (code & 0x08) ? x : k;
			switch (code & 0xf0) {
			case 0x00: a += src; break;
			case 0x10: a -= src; break;
			case 0x20: a *= src; break;
			case 0x30: if (!src) return 0; a /= src; break;
			case 0x90: if (!src) return 0; a %= src; break;
			case 0x50: a &= src; break;
			case 0x40: a |= src; break;
			case 0xa0: a ^= src; break;
			case 0x60: a <<= (src & 31); break;
			case 0x70: a >>= (src & 31); break;
			default: return 0;
			}
			break;
		case 0x05: /* JMP */
			if ((code & 0xf0) == 0x00) {
				pc += k;
				break;
			}
			src = (code & 0x08) ? x : k;
			{
				int taken;
				switch (code & 0xf0) {
				case 0x10: taken = a == src; break;
				case 0x20: taken = a > src; break;
				case 0x30: taken = a >= src; break;
				default: taken = (a & src) != 0; break;
				}
				pc += taken ? ins->jt : ins->jf;
			}
			break;
		case 0x06: /* RET */
			return ((code & 0x18) == 0x10) ? a : k;
		case 0x00: /* LD */
			switch (code & 0xe0) {
			case 0x00: a = k; break;
			case 0x60: a = mem[k & 15]; break;
			case 0x80: a = ctx_len; break;
			default: return 0; /* packet loads are refused at registration */
			}
			break;
		case 0x01: /* LDX */
			if (code == 0x21) { /* LDX|W|ABS: the rewritten native context load, into A */
				if (k + 4 > ctx_len)
					return 0;
				memcpy(&a, ctx + k, 4);
				break;
			}
			switch (code & 0xe0) {
			case 0x00: x = k; break;
			case 0x60: x = mem[k & 15]; break;
			case 0x80: x = ctx_len; break;
			default: return 0;
			}
			break;
		case 0x02: mem[k & 15] = a; break; /* ST */
		case 0x03: mem[k & 15] = x; break; /* STX */
		case 0x07: /* MISC */
			if ((code & 0xf8) == 0x80)
				a = x;
			else
				x = a;
			break;
		}
	}
	return 0;
}

/* struct io_uring_bpf_ctx for one SQE; 0 when the kernel's prep would fail first. */
/*
 * 7.2's CONNECT payload (io_connect_prep, then io_connect_bpf_populate in io_uring/net.c):
 * __u32 family at 16, __be16 port at 20, v4/v6 address at 24, pdu_size 24.  The filter
 * runs after prep, so a CONNECT whose prep fails (-EINVAL, -EFAULT) is let through for
 * the kernel to fail (0).  Family needs addr_len >= 2, port and address the whole
 * sockaddr_in (16) / sockaddr_in6 (28); shorter addresses leave the zeros.
 */
static int ub_filter_connect_ctx(const uint8_t *sqe, uint8_t *ctx)
{
	uint8_t ss[128];
	int32_t addr_len;
	uint64_t addr;
	uint16_t family;
	struct iovec local, remote;
	size_t i;

	for (i = 24; i < 32; i++)      /* len, rw_flags */
		if (sqe[i])
			return 0;
	for (i = 40; i < 48; i++)      /* buf_index, (personality skipped), splice_fd_in */
		if (i != 42 && i != 43 && sqe[i])
			return 0;
	memcpy(&addr_len, sqe + 8, 4); /* (int) sqe->addr2 */
	memcpy(&addr, sqe + 16, 8);
	if (addr_len < 0 || addr_len > (int32_t)sizeof(ss))
		return 0;
	if (addr_len) {
		if (!addr)
			return 0;
		local.iov_base = ss;
		local.iov_len = (size_t)addr_len;
		remote.iov_base = (void *)(uintptr_t)addr;
		remote.iov_len = (size_t)addr_len;
		if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != addr_len)
			return 0;
	}
	ctx[10] = 24;
	if (addr_len < 2)
		return 1;
	memcpy(&family, ss, 2);
	ctx[16] = (uint8_t)family;
	ctx[17] = (uint8_t)(family >> 8);
	if (family == 2 /* AF_INET */ && addr_len >= 16) {
		memcpy(ctx + 20, ss + 2, 2);
		memcpy(ctx + 24, ss + 4, 4);
	} else if (family == 10 /* AF_INET6 */ && addr_len >= 28) {
		memcpy(ctx + 20, ss + 2, 2);
		memcpy(ctx + 24, ss + 8, 16);
	}
	return 1;
}

static int ub_filter_build_ctx(const uint8_t *sqe, uint8_t ctx[UB_FILTER_CTX_SIZE])
{
	uint8_t opcode = sqe[0];
	uint64_t user_data;

	memset(ctx, 0, UB_FILTER_CTX_SIZE);
	memcpy(&user_data, sqe + 32, 8);
	memcpy(ctx, &user_data, 8);
	ctx[8] = opcode;
	ctx[9] = sqe[1] & 0x7f;
	if (opcode == 45 /* SOCKET */) {
		ctx[10] = 12;
		memcpy(ctx + 16, sqe + 4, 4);  /* family = sqe->fd */
		memcpy(ctx + 20, sqe + 8, 4);  /* type = sqe->off */
		memcpy(ctx + 24, sqe + 24, 4); /* protocol = sqe->len */
	} else if (opcode == 18 /* OPENAT */ || opcode == 28 /* OPENAT2 */) {
		uint64_t flags, mode, resolve = 0;
		ctx[10] = 24;
		if (opcode == 18) {
			uint32_t f, m;
			memcpy(&f, sqe + 28, 4);
			memcpy(&m, sqe + 24, 4);
			flags = f & (0037777703u | 0100000u);
			mode = m & 07777;
			if (flags & 010000000)
				flags &= (0200000 | 0400000 | 010000000 | 02000000);
			if (!(flags & (0100 | 020000000)))
				mode = 0;
		} else {
			uint32_t how_len;
			uint64_t how_addr, how[3];
			struct iovec local, remote;
			memcpy(&how_len, sqe + 24, 4);
			memcpy(&how_addr, sqe + 8, 8);
			if (how_len < 24 || !how_addr)
				return 0;
			local.iov_base = how;
			local.iov_len = 24;
			remote.iov_base = (void *)(uintptr_t)how_addr;
			remote.iov_len = 24;
			if (process_vm_readv(getpid(), &local, 1, &remote, 1, 0) != 24)
				return 0;
			flags = how[0];
			mode = how[1];
			resolve = how[2];
		}
		if (!(flags & 010000000))
			flags |= 0100000;
		memcpy(ctx + 16, &flags, 8);
		memcpy(ctx + 24, &mode, 8);
		memcpy(ctx + 32, &resolve, 8);
	} else if (opcode == 16 /* CONNECT */) {
		return ub_filter_connect_ctx(sqe, ctx);
	}
	return 1;
}

/* 0 to let the SQE through, -EACCES to fail it (io_uring_run_bpf_filters). */
static int ub_filter_check(const struct ub_filter_table *t, const uint8_t *sqe)
{
	const uint8_t *base = (const uint8_t *)t;
	uint8_t opcode = sqe[0];
	uint8_t ctx[UB_FILTER_CTX_SIZE];
	const uint32_t *chain;
	uint32_t i;

	if (!t || t->magic != UB_FILTER_MAGIC || opcode >= t->nr_ops || !t->chain_off[opcode])
		return 0;
	chain = (const uint32_t *)(base + t->chain_off[opcode]);
	/* A chain that is only the DENY_REST marker: no context needed. */
	if (chain[0] == 1 && chain[1] == 0)
		return -EACCES;
	if (!ub_filter_build_ctx(sqe, ctx))
		return 0;
	for (i = 0; i < chain[0]; i++) {
		const uint32_t *prog;
		if (!chain[1 + i])
			return -EACCES;
		prog = (const uint32_t *)(base + chain[1 + i]);
		if (!ub_cbpf_run((const struct ub_sock_filter *)(prog + 2), prog[0], ctx,
				 UB_FILTER_CTX_SIZE))
			return -EACCES;
	}
	return 0;
}

#endif
