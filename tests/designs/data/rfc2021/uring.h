/* Shared between rfc_uring.bpf.c and its driver (tests/designs/test_requests_rfc.py), laid
 * out as the 2021 RFC's examples/bpf/uring.h: constants of test 4 and the per-test
 * user contexts. Written for uringbpf. */
#ifndef RFC_URING_H
#define RFC_URING_H

#define FILL_QD		4
#define FILL_BLOCKS	16
#define FILL_BLOCK_SIZE	(4096 * 4)

struct counting_ctx {
	struct __kernel_timespec ts;
};

struct ping_ctx {
	int idx;
};

#endif
