/* filter: Linux 7.0 io_uring classic-BPF filters (include/uapi/linux/io_uring/bpf_filter.h).
 * The context is 40 bytes; the opcode-specific union at 16 has socket (12 bytes), open and
 * connect (24 bytes each: what the kernel reports as pdu_size). */
struct io_uring_bpf_ctx {
	__u64 user_data;
	__u8 opcode;
	__u8 sqe_flags;
	__u8 pdu_size;
	__u8 pad[5];
	union {
		struct {
			__u32 family;
			__u32 type;
			__u32 protocol;
		} socket;
		struct {
			__u64 flags;
			__u64 mode;
			__u64 resolve;
		} open;
		struct {
			__u32 family;
			__be16 port;
			__u8 pad[2];
			union {
				__be32 v4_addr;
				__u8 v6_addr[16];
			};
		} connect;
	};
};

enum {
	IO_URING_BPF_FILTER_DENY_REST = 1,
	IO_URING_BPF_FILTER_SZ_STRICT = 2,
};

struct io_uring_bpf_filter {
	__u32 opcode;
	__u32 flags;
	__u32 filter_len;
	__u8 pdu_size;
	__u8 resv[3];
	__u64 filter_ptr;
	__u64 resv2[5];
};

enum {
	IO_URING_BPF_CMD_FILTER = 1,
};

struct io_uring_bpf {
	__u16 cmd_type;
	__u16 cmd_flags;
	__u32 resv;
	union {
		struct io_uring_bpf_filter filter;
	};
};

struct sock_filter {
	__u16 code;
	__u8 jt;
	__u8 jf;
	__u32 k;
};
