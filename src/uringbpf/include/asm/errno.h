/* uringbpf: <asm/errno.h>: the generic table (x86-64, arm64, BPF). */
#include <asm-generic/errno.h>
