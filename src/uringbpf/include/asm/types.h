/* uringbpf: <asm/types.h> */
#include <asm-generic/int-ll64.h>
