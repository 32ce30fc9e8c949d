/* uringbpf: <linux/posix_types.h> subset (the __kernel_* types live in <linux/types.h>). */
#ifndef _LINUX_POSIX_TYPES_H
#define _LINUX_POSIX_TYPES_H
#include <linux/types.h>
typedef unsigned int __kernel_mode_t;
typedef long long __kernel_off64_t;
typedef long __kernel_off_t;
typedef long __kernel_time_t;
typedef long __kernel_clock_t;
typedef int __kernel_clockid_t;
typedef int __kernel_timer_t;
typedef unsigned short __kernel_sa_family_t;
#endif
