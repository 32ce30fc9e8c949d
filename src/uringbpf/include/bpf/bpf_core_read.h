/* uringbpf: minimal <bpf/bpf_core_read.h>. There is no CO-RE relocation in uringbpf (types
 * are this process's own), so the reads are plain probe reads of the named field. */
#ifndef __BPF_CORE_READ_H__
#define __BPF_CORE_READ_H__
#include "bpf_helpers.h"

#define bpf_core_read(dst, sz, src) bpf_probe_read_kernel(dst, sz, (const void *)(src))
#define bpf_core_read_user(dst, sz, src) bpf_probe_read_user(dst, sz, (const void *)(src))
#define bpf_core_field_exists(field) 1
#define bpf_core_field_size(field) sizeof(field)
#define bpf_core_type_exists(type) 1

/* BPF_CORE_READ(src, a): one level of field access, read with a probe read. */
#define BPF_CORE_READ(src, field) ({ \
	typeof((src)->field) ____v; \
	bpf_probe_read_kernel(&____v, sizeof(____v), (const void *)&(src)->field); \
	____v; \
})
#define BPF_CORE_READ_INTO(dst, src, field) \
	bpf_probe_read_kernel(dst, sizeof(*(dst)), (const void *)&(src)->field)
#endif
