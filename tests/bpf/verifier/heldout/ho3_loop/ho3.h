/* Held-out corpus 3 (#20): common part of the loop_step programs. Each program is one
 * io_uring_bpf_ops.loop_step, either plain C or a naked function of BPF assembly (the
 * kernel selftests' style) where the exact instructions matter. The verdicts that count
 * are Linux 7.2's (kernel72_heldout3.json); the comment at the top of each file says what
 * the case probes. */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "GPL";

/* may_goto as in the kernel's bpf_experimental.h (written afresh) */
#define can_loop ({ __label__ l_break, l_continue; int ok_ = 1;			\
	asm volatile goto("may_goto %l[l_break]" :::: l_break);			\
	goto l_continue; l_break: ok_ = 0; l_continue:; ok_; })

/* a loop_step in C: ring and lp are the two arguments */
#define STEP SEC("struct_ops.s/step") int BPF_PROG(step, struct io_ring_ctx *ring,	\
						     struct iou_loop_params *lp)
/* a loop_step in assembly: r1 points at the two arguments (ring at +0, lp at +8); no
 * parameter in C, because clang leaves a naked function's parameters unnamed in BTF,
 * which the kernel refuses (l_btf_naked_unnamed_param) */
#define NAKED_STEP SEC("struct_ops.s/step") __attribute__((naked)) void step(void)
#define OPS SEC(".struct_ops.link") struct io_uring_bpf_ops ops = { .loop_step = (void *)step }

/* pieces of the naked programs' assembly (string literals, concatenated) */
#define ASM_RING_R6 "r6 = *(u64 *)(r1 + 0);"			/* r6 = the ring */
#define ASM_REGION(id, size) "r1 = r6;" "r2 = " #id ";" "r3 = " #size ";"	\
	"call %[bpf_io_uring_get_region];"			/* r0 = region or NULL */
#define ASM_ITER_NEW(n) "r1 = r10;" "r1 += -8;" "r2 = 0;" "r3 = " #n ";"	\
	"call %[bpf_iter_num_new];"				/* iterator at fp-8 over [0, n) */
#define ASM_ITER(fn) "r1 = r10;" "r1 += -8;" "call %[" #fn "];"	/* fn(fp-8) */

#define IMM(name) [name] "i"(name)
#define IMM_ADDR(name) [name] "i"(&name)

struct val16 { unsigned char b[16]; };
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, struct val16);
} arr SEC(".maps");
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, int);
	__type(value, __u64);
} hmap SEC(".maps");

unsigned char tbl[16];

/* Calls from C make the compiler emit the BTF declarations of the kfuncs (and the
 * relocations a loader resolves as kfuncs); the naked programs name them only in asm.
 * Never called, so never part of a program. */
__attribute__((noinline)) int ho3_kfunc_decls(struct iou_ctx *r, struct bpf_iter_num *it)
{
	bpf_iter_num_new(it, 0, 1);
	bpf_iter_num_next(it);
	bpf_iter_num_destroy(it);
	return bpf_io_uring_submit_sqes(r, 0) + (bpf_io_uring_get_region(r, 0, 8) != 0);
}
