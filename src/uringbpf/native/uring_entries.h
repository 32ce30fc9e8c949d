/*
 * struct io_uring_sqe and struct io_uring_cqe as include/uapi/linux/io_uring.h lays them
 * out, for the C that works on a ring's SQ and CQ memory in place (uringbpf._aioreap's
 * prep_rw and reap, the kbuf design's fixed-buffer import and CQ reap). One definition
 * each: the kernel's unions are given the member names this code uses (off, addr,
 * op_flags, buf_index). The 64- and 16-byte forms; SQE128/CQE32 rings add 64/16 bytes
 * after each entry.
 */
#ifndef URINGBPF_URING_ENTRIES_H
#define URINGBPF_URING_ENTRIES_H

#include <stddef.h>
#include <stdint.h>

struct uringbpf_sqe {
	uint8_t opcode, flags;
	uint16_t ioprio;
	int32_t fd;
	uint64_t off, addr;
	uint32_t len, op_flags;
	uint64_t user_data;
	uint16_t buf_index, personality;
	int32_t splice_fd_in;
	uint64_t addr3, pad;
};

_Static_assert(sizeof(struct uringbpf_sqe) == 64, "struct io_uring_sqe is 64 bytes");
_Static_assert(offsetof(struct uringbpf_sqe, user_data) == 32, "user_data at 32");
_Static_assert(offsetof(struct uringbpf_sqe, buf_index) == 40, "buf_index at 40");
_Static_assert(offsetof(struct uringbpf_sqe, addr3) == 48, "addr3 at 48");

struct uringbpf_cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

_Static_assert(sizeof(struct uringbpf_cqe) == 16, "struct io_uring_cqe is 16 bytes");

#endif
