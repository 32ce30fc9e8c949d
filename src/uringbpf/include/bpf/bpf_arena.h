/* uringbpf: BPF arena kfuncs (BPF_MAP_TYPE_ARENA subset). The arena is mapped at a 4 GiB
 * aligned address shared with Python (Map.memory()); pointers are plain addresses. */
#ifndef __UBPF_BPF_ARENA_H
#define __UBPF_BPF_ARENA_H
#ifndef __VMLINUX_H__
#include <linux/bpf.h>	/* map types etc.; a vmlinux.h brings its own */
#endif
#include <bpf/bpf_helpers.h>

/* uringbpf maps the arena at the same address for programs and Python, so arena pointers
 * are plain pointers: __arena is empty unless UBPF_ARENA_ADDR_SPACE asks for clang's
 * address_space(1), as libbpf's bpf_arena_common.h does; the loader then checks and lowers
 * the BPF_ADDR_SPACE_CAST instructions LLVM 19+ emits (docs/loader.md). */
#ifndef __arena
#if defined(UBPF_ARENA_ADDR_SPACE) && defined(__BPF_FEATURE_ADDR_SPACE_CAST)
#define __arena __attribute__((address_space(1)))
#else
#define __arena
#endif
#endif

#ifndef PAGE_SIZE
#define PAGE_SIZE 4096
#endif
#ifndef NUMA_NO_NODE
#define NUMA_NO_NODE (-1)
#endif

extern void __arena *bpf_arena_alloc_pages(void *map, void __arena *addr, __u32 page_cnt,
					   int node_id, __u64 flags) __ksym __weak;
extern void bpf_arena_free_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym __weak;
extern int bpf_arena_reserve_pages(void *map, void __arena *ptr, __u32 page_cnt) __ksym __weak;
#endif
