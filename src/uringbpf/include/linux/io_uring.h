/* uringbpf: <linux/io_uring.h> is the same UAPI as <liburing/io_uring.h>. */
#include <liburing/io_uring.h>
