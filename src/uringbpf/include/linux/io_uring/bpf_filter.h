/* uringbpf: Linux 7.0 io_uring classic-BPF filter UAPI (include/uapi/linux/io_uring/bpf_filter.h). */
#ifndef LINUX_IO_URING_BPF_FILTER_H
#define LINUX_IO_URING_BPF_FILTER_H
#include <linux/types.h>

/* what a filter sees: the request being issued */
struct io_uring_bpf_ctx {
	__u64	user_data;
	__u8	opcode;
	__u8	sqe_flags;
	__u8	pdu_size;	/* size of the opcode-specific data below */
	__u8	pad[5];
	union {
		struct {
			__u32	family;
			__u32	type;
			__u32	protocol;
		} socket;
		struct {
			__u64	flags;
			__u64	mode;
			__u64	resolve;
		} open;
		/* 7.2: IORING_OP_CONNECT; family from addr_len >= 2, port and address only
		 * for a full sockaddr_in / sockaddr_in6, network byte order */
		struct {
			__u32	family;
			__be16	port;
			__u8	pad[2];
			union {
				__be32	v4_addr;
				__u8	v6_addr[16];
			};
		} connect;
	};
};

enum {
	IO_URING_BPF_FILTER_DENY_REST	= 1,	/* deny every opcode without a filter */
	IO_URING_BPF_FILTER_SZ_STRICT	= 2,	/* pdu_size must match exactly */
};

struct io_uring_bpf_filter {
	__u32	opcode;
	__u32	flags;
	__u32	filter_len;	/* number of struct sock_filter */
	__u8	pdu_size;
	__u8	resv[3];
	__u64	filter_ptr;	/* struct sock_filter * */
	__u64	resv2[5];
};

enum {
	IO_URING_BPF_CMD_FILTER	= 1,
};

struct io_uring_bpf {
	__u16	cmd_type;
	__u16	cmd_flags;
	__u32	resv;
	union {
		struct io_uring_bpf_filter	filter;
	};
};
#endif
