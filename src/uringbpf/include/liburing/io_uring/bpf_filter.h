/* uringbpf: liburing ships the filter UAPI here too. */
#include <linux/io_uring/bpf_filter.h>
