/* uringbpf: <asm-generic/int-ll64.h>: __u8..__s64 (long long is 64-bit); see <linux/types.h>. */
#include <linux/types.h>
