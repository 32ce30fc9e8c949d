/* uringbpf: liburing ships the query UAPI here too. */
#include <linux/io_uring/query.h>
