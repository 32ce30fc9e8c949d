/* Native twins of the dynptr accessors of the IORING_OP_BPF design (designs/ops.py).
 *
 * The dynptrs that bpf_uring_buf_dynptr[_rdwr] hand out are plain 16-byte stack objects:
 *   u64 data;  u32 size;  u32 flags (bit 30 = valid, bit 31 = read-only)
 * The accessors only check bounds and copy, so they are C: the JIT calls them directly
 * (no Python per call) and the interpreter's table entries call the same functions
 * through ctypes, after checking the program-side memory against the run's regions.
 * Every function has the helper ABI: uint64_t f(uint64_t r1, ..., uint64_t r5).
 */
#include <stdint.h>
#include <string.h>
#include <errno.h>

#define DYNPTR_VALID (1u << 30)
#define DYNPTR_RDONLY (1u << 31)

struct ops_dynptr {
    uint64_t data;
    uint32_t size;
    uint32_t flags;
};

static int dp_ok(const struct ops_dynptr *d, uint32_t off, uint32_t len)
{
    return d && (d->flags & DYNPTR_VALID) && (uint64_t)off + len <= d->size;
}

/* long bpf_dynptr_read(void *dst, u32 len, const struct bpf_dynptr *src, u32 off, u64 flags) */
uint64_t ops_dynptr_read(uint64_t dst, uint64_t len, uint64_t src, uint64_t off, uint64_t flags)
{
    const struct ops_dynptr *d = (const void *)(uintptr_t)src;
    if (!(d->flags & DYNPTR_VALID) || flags)
        return (uint64_t)-EINVAL;
    if (!dp_ok(d, (uint32_t)off, (uint32_t)len))
        return (uint64_t)-E2BIG;
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)(d->data + (uint32_t)off), (uint32_t)len);
    return 0;
}

/* long bpf_dynptr_write(const struct bpf_dynptr *dst, u32 off, void *src, u32 len, u64 flags) */
uint64_t ops_dynptr_write(uint64_t dst, uint64_t off, uint64_t src, uint64_t len, uint64_t flags)
{
    const struct ops_dynptr *d = (const void *)(uintptr_t)dst;
    if (!(d->flags & DYNPTR_VALID) || (d->flags & DYNPTR_RDONLY) || flags)
        return (uint64_t)-EINVAL;
    if (!dp_ok(d, (uint32_t)off, (uint32_t)len))
        return (uint64_t)-E2BIG;
    memmove((void *)(uintptr_t)(d->data + (uint32_t)off), (const void *)(uintptr_t)src, (uint32_t)len);
    return 0;
}

/* void *bpf_dynptr_data(const struct bpf_dynptr *p, u32 off, u32 len): NULL if read-only */
uint64_t ops_dynptr_data(uint64_t p, uint64_t off, uint64_t len, uint64_t r4, uint64_t r5)
{
    const struct ops_dynptr *d = (const void *)(uintptr_t)p;
    if ((d->flags & DYNPTR_RDONLY) || !dp_ok(d, (uint32_t)off, (uint32_t)len))
        return 0;
    return d->data + (uint32_t)off;
}

/* void *bpf_dynptr_slice(const struct bpf_dynptr *p, u32 off, void *buf, u32 len) */
uint64_t ops_dynptr_slice(uint64_t p, uint64_t off, uint64_t buf, uint64_t len, uint64_t r5)
{
    const struct ops_dynptr *d = (const void *)(uintptr_t)p;
    if (!dp_ok(d, (uint32_t)off, (uint32_t)len))
        return 0;
    return d->data + (uint32_t)off;
}

uint64_t ops_dynptr_slice_rdwr(uint64_t p, uint64_t off, uint64_t buf, uint64_t len, uint64_t r5)
{
    const struct ops_dynptr *d = (const void *)(uintptr_t)p;
    if (d->flags & DYNPTR_RDONLY)
        return 0;
    return ops_dynptr_slice(p, off, buf, len, r5);
}

uint64_t ops_dynptr_size(uint64_t p, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    const struct ops_dynptr *d = (const void *)(uintptr_t)p;
    return (d->flags & DYNPTR_VALID) ? d->size : 0;
}
