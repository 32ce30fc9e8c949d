/* kbuf: registered kernel buffers of Linux 6.15+ (io_uring/rsrc.c) as ublk uses them
 * (drivers/block/ublk_drv.c, include/uapi/linux/ublk_cmd.h). */
struct ublksrv_io_desc {
	__u32 op_flags;
	union {
		__u32 nr_sectors;
		__u32 nr_zones;
	};
	__u64 start_sector;
	__u64 addr;
};

struct ublksrv_io_cmd {
	__u16 q_id;
	__u16 tag;
	__s32 result;
	union {
		__u64 addr;
		__u64 zone_append_lba;
	};
};

struct ublk_auto_buf_reg {
	__u16 index;
	__u8 flags;
	__u8 reserved0;
	__u32 reserved1;
};

enum {
	UBLK_IO_OP_READ = 0,
	UBLK_IO_OP_WRITE = 1,
	UBLK_IO_OP_FLUSH = 2,
	UBLK_IO_OP_DISCARD = 3,
	UBLK_IO_OP_WRITE_SAME = 4,
	UBLK_IO_OP_WRITE_ZEROES = 5,
};
