/* uringbpf: <linux/errno.h>: the Linux errno values, through <asm/errno.h> as in the UAPI. */
#ifndef _UAPI_LINUX_ERRNO_H
#define _UAPI_LINUX_ERRNO_H
#include <asm/errno.h>
/* not a kernel name, but earlier uringbpf headers defined it (glibc's alias) */
#ifndef ENOTSUP
#define ENOTSUP EOPNOTSUPP
#endif
#endif
