/* base: the integer and kernel scalar types every kernel's BTF has. */
typedef signed char __s8;
typedef unsigned char __u8;
typedef short int __s16;
typedef short unsigned int __u16;
typedef int __s32;
typedef unsigned int __u32;
typedef long long int __s64;
typedef long long unsigned int __u64;
typedef __s8 s8;
typedef __u8 u8;
typedef __s16 s16;
typedef __u16 u16;
typedef __s32 s32;
typedef __u32 u32;
typedef __s64 s64;
typedef __u64 u64;
typedef __u16 __le16;
typedef __u16 __be16;
typedef __u32 __le32;
typedef __u32 __be32;
typedef __u64 __le64;
typedef __u64 __be64;
typedef __u16 __sum16;
typedef __u32 __wsum;
typedef unsigned int __poll_t;
typedef _Bool bool;
enum {
	false = 0,
	true = 1,
};
#ifndef __UBPF_VMLINUX_2021
/* 6.9+ (kernel/bpf/core.c, 2024): PAGE_SIZE as an enum so vmlinux.h programs see it */
enum page_size_enum {
	__PAGE_SIZE = 4096,
};
#endif
typedef long int __kernel_long_t;
typedef long unsigned int __kernel_ulong_t;
typedef int __kernel_pid_t;
typedef unsigned int __kernel_uid32_t;
typedef unsigned int __kernel_gid32_t;
typedef __kernel_ulong_t __kernel_size_t;
typedef __kernel_long_t __kernel_ssize_t;
typedef long long int __kernel_loff_t;
typedef long long int __kernel_time64_t;
typedef __kernel_long_t __kernel_off_t;
typedef int __kernel_rwf_t;
typedef unsigned int __kernel_mode_t;
typedef __kernel_size_t size_t;
typedef __kernel_ssize_t ssize_t;
typedef __kernel_off_t off_t;
typedef __kernel_loff_t loff_t;
typedef __kernel_pid_t pid_t;
typedef __kernel_mode_t umode_t;
typedef __kernel_uid32_t uid_t;
typedef __kernel_gid32_t gid_t;
typedef __u32 __kernel_dev_t;
typedef __kernel_rwf_t rwf_t;

struct __kernel_timespec {
	__kernel_time64_t tv_sec;
	long long int tv_nsec;
};

struct iovec {
	void *iov_base;
	__kernel_size_t iov_len;
};

struct list_head {
	struct list_head *next;
	struct list_head *prev;
};
