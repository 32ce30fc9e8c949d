/* a naked loop_step declared with a parameter: clang's BTF leaves it unnamed */
#include "ho3.h"
SEC("struct_ops.s/step") __attribute__((naked)) int step(unsigned long long *ctx)
{
	asm volatile("r0 = 0; exit;" ::: "memory");
}
OPS;
