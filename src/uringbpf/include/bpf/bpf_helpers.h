/* uringbpf: libbpf-compatible <bpf/bpf_helpers.h>, written for uringbpf.
 * SEC(), map-definition macros, __ksym/__weak/__kconfig, bpf_printk and the helper
 * declarations (bpf_helper_defs.h). Needs no system header.
 *
 * Like libbpf's, this header does not include <linux/bpf.h>: the program brings the
 * kernel types itself, either from a `vmlinux.h` (bpftool's, or `uringbpf vmlinux
 * --design ...`) or from the UAPI headers (<linux/bpf.h> ...).  Including both would
 * define enum bpf_map_type twice.  Only the fixed-width __u* types are needed here;
 * <linux/types.h> gives them and repeats vmlinux.h's typedefs identically (allowed in C11). */
#ifndef __BPF_HELPERS__
#define __BPF_HELPERS__

#include <linux/types.h>
#include "bpf_helper_defs.h"

#define __uint(name, val) int (*name)[val]
#define __type(name, val) typeof(val) *name
#define __array(name, val) typeof(val) *name[]
#define __ulong(name, val) enum { ___bpf_concat(__unique_value, __COUNTER__) = val } name

#define ___bpf_concat(a, b) a ## b

/* libbpf 0.x legacy map definitions: `struct bpf_map_def SEC("maps") m = {...};`.
 * libbpf 1.0 dropped them; uringbpf's loader still reads them (5 x u32, as libbpf did),
 * because the 2021 RFC's examples and many older programs use them. */
struct bpf_map_def {
	unsigned int type;
	unsigned int key_size;
	unsigned int value_size;
	unsigned int max_entries;
	unsigned int map_flags;
};

enum libbpf_pin_type {
	LIBBPF_PIN_NONE,
	LIBBPF_PIN_BY_NAME,
};

enum libbpf_tristate {
	TRI_NO = 0,
	TRI_YES = 1,
	TRI_MODULE = 2,
};

#define SEC(name) \
	_Pragma("GCC diagnostic push") \
	_Pragma("GCC diagnostic ignored \"-Wignored-attributes\"") \
	__attribute__((section(name), used)) \
	_Pragma("GCC diagnostic pop")

#undef __always_inline
#define __always_inline inline __attribute__((always_inline))
#ifndef __noinline
#define __noinline __attribute__((noinline))
#endif
#ifndef __weak
#define __weak __attribute__((weak))
#endif
#define __hidden __attribute__((visibility("hidden")))
#define __ksym __attribute__((section(".ksyms")))
#define __kconfig __attribute__((section(".kconfig")))
#define __kptr_untrusted __attribute__((btf_type_tag("kptr_untrusted")))
#define __kptr __attribute__((btf_type_tag("kptr")))
#define __percpu_kptr __attribute__((btf_type_tag("percpu_kptr")))
#define __arg_ctx __attribute__((btf_decl_tag("arg:ctx")))
#define __arg_nonnull __attribute((btf_decl_tag("arg:nonnull")))
#define __arg_nullable __attribute((btf_decl_tag("arg:nullable")))
#define __arg_trusted __attribute((btf_decl_tag("arg:trusted")))
#define __arg_arena __attribute((btf_decl_tag("arg:arena")))

#ifndef NULL
#define NULL ((void *)0)
#endif
#ifndef offsetof
#define offsetof(type, member) __builtin_offsetof(type, member)
#endif
#ifndef container_of
#define container_of(ptr, type, member) \
	((type *)((void *)(ptr) - offsetof(type, member)))
#endif

#define barrier() asm volatile("" ::: "memory")
#define barrier_var(var) asm volatile("" : "+r"(var))
#define __bpf_unreachable() __builtin_trap()

#define likely(x) __builtin_expect(!!(x), 1)
#define unlikely(x) __builtin_expect(!!(x), 0)

/* true if a __weak __ksym extern was resolved by the loader */
#define bpf_ksym_exists(sym) ({ \
	_Static_assert(!__builtin_constant_p(!!sym), #sym " should be marked as __weak"); \
	!!sym; \
})

#define __bpf_printk_fmt(fmt) ({ static const char ____fmt[] = fmt; ____fmt; })

/* bpf_printk("x=%d", x): up to three arguments (the trace_printk limit); the line is
 * captured by the runtime and readable from Python (obj.printk). */
#define bpf_printk(fmt, args...) ({ \
	static const char ____fmt[] = fmt; \
	bpf_trace_printk(____fmt, sizeof(____fmt), ##args); \
})

/* open-coded numeric iterators: bpf_for(i, start, end) { ... } and bpf_repeat(n) { ... }.
 * struct bpf_iter_num itself comes with the kernel types (<linux/bpf.h> or vmlinux.h). */
struct bpf_iter_num;

extern int bpf_iter_num_new(struct bpf_iter_num *it, int start, int end) __weak __ksym;
extern int *bpf_iter_num_next(struct bpf_iter_num *it) __weak __ksym;
extern void bpf_iter_num_destroy(struct bpf_iter_num *it) __weak __ksym;

#ifndef bpf_for
#define bpf_for(i, start, end) for ( \
	struct bpf_iter_num ___it __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))), \
	*___p __attribute__((unused)) = ( \
		bpf_iter_num_new(&___it, (start), (end)), \
		(void)bpf_iter_num_destroy, (void *)0); \
	({ int *___t = bpf_iter_num_next(&___it); \
	   (___t && ((i) = *___t, (i) >= (start) && (i) < (end))); }); \
	)
#endif

#ifndef bpf_repeat
#define bpf_repeat(N) for ( \
	struct bpf_iter_num ___it __attribute__((aligned(8), cleanup(bpf_iter_num_destroy))), \
	*___p __attribute__((unused)) = ( \
		bpf_iter_num_new(&___it, 0, (N)), \
		(void)bpf_iter_num_destroy, (void *)0); \
	bpf_iter_num_next(&___it); \
	)
#endif

#define bpf_for_each_loop(nr, cb, ctx) bpf_loop(nr, cb, ctx, 0)

/* struct_ops helpers */
#define BPF_STRUCT_OPS(name, args...) SEC("struct_ops/" #name) BPF_PROG(name, ##args)
#define BPF_STRUCT_OPS_SLEEPABLE(name, args...) SEC("struct_ops.s/" #name) BPF_PROG(name, ##args)

#endif /* __BPF_HELPERS__ */
