/* Native twins of the dynptr accessors of the IORING_OP_BPF design (designs/ops.py).
 *
 * The dynptrs that bpf_uring_buf_dynptr[_rdwr] hand out are plain 16-byte stack objects:
 *   u64 data;  u32 size;  u32 flags (bit 30 = valid, bit 31 = read-only)
 * The accessors only check bounds and copy, so they are C: the JIT calls them directly
 * (no Python per call) and the interpreter's table entries call the same functions
 * through ctypes, after checking the program-side memory against the run's regions.
 * Every function has the helper ABI: uint64_t f(uint64_t r1, ..., uint64_t r5).
 */
#define _GNU_SOURCE
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

/* ---------------------------------------------------------------------------------------
 * Native twins of the op-specific kfuncs: uring_bpf_set_result, the buffer iterator
 * (bpf_iter_uring_buf_new/next/destroy), bpf_uring_buf_dynptr[_rdwr], uring_bpf_memcpy.
 *
 * Python (designs/ops.py) keeps one `struct ops_tab` per OpsTable (its request slab) and,
 * per live request, a descriptor table resolved at prep time: for every io_bpf_buf_desc
 * the SQE names, and each direction, the list of (addr, len, checked) segments or -errno.
 * The kfuncs only look requests up by their `struct uring_bpf_data *` (the slab address
 * says which table and slot) and walk those arrays.  A descriptor the SQE did not name
 * (the program built it) is resolved by a Python callback, once per iter_new/memcpy.
 *
 * Iterator state lives in a C table indexed by the id stored in the program's 64-byte
 * `struct bpf_iter_uring_buf` (magic @0, id @8, the int `next` points to @16), so a
 * forged iterator is never dereferenced.  One mutex guards the tables: JIT code of
 * several rings can run on several threads (ctypes releases the GIL).
 */
#include <pthread.h>
#include <stdlib.h>
#include <sys/uio.h>
#include <unistd.h>

#include "guard.h"   /* runtime-owned memory is not user memory (issue #13 item 5) */

#define OPS_SLOT 128
#define OPS_PAGE 4096u
#define OPS_ITER_MAGIC 0x75726E6762756669ull
#define OPS_ITER_DEST 0
#define OPS_ITER_SOURCE 1
#define OPS_ID_BITS 20

struct ops_seg {                 /* mirrors ops.py _Seg */
    uint64_t addr;
    uint64_t len;
    uint64_t checked;            /* 1: registered memory, known valid; 0: probe each page */
};

struct ops_rdesc {               /* mirrors ops.py _RDesc: one (descriptor, direction) */
    uint8_t desc[16];
    int32_t dir;
    int32_t err;                 /* 0 or -errno */
    uint64_t nseg;
    uint64_t segs;               /* struct ops_seg * */
};

struct ops_req {                 /* mirrors ops.py _NReq */
    uint64_t data;
    int32_t result;
    uint32_t live;
    uint64_t ndesc;
    uint64_t descs;              /* struct ops_rdesc * */
};

struct ops_tab {
    uint64_t base;               /* slab address; request i's data at base + 64 + i*128 */
    uint64_t nreq;
    struct ops_req *reqs;
};

struct ops_iter {
    uint64_t id;                 /* 0: free */
    struct ops_req *req;
    const struct ops_seg *segs;  /* NULL with nseg 1: the USER segment in `own` */
    struct ops_seg own;
    uint64_t nseg, seg, off;
    uint64_t cur_addr;
    uint32_t cur_len;
    int32_t dir, err;
    int32_t has_cur;
};

/* Python resolver for descriptors the SQE did not name: fills *out (err, nseg, segs). */
typedef int64_t (*ops_resolve_fn)(uint64_t data, uint64_t desc16, int64_t dir, uint64_t out);

static pthread_mutex_t ops_lock = PTHREAD_MUTEX_INITIALIZER;
static struct ops_tab **ops_tabs;        /* live tables, compact: [0, ops_ntabs) */
static uint64_t ops_ntabs, ops_tabs_cap;
static struct ops_iter *ops_iters;
static uint64_t ops_iter_cap, ops_iter_seq, ops_iter_hint;
static ops_resolve_fn ops_resolver;

uint64_t ops_tab_new(uint64_t base, uint64_t nreq)
{
    struct ops_tab *t = calloc(1, sizeof(*t));
    if (!t)
        return 0;
    t->reqs = calloc(nreq, sizeof(*t->reqs));
    if (!t->reqs) {
        free(t);
        return 0;
    }
    t->base = base;
    t->nreq = nreq;
    pthread_mutex_lock(&ops_lock);
    if (ops_ntabs == ops_tabs_cap) {
        uint64_t cap = ops_tabs_cap ? ops_tabs_cap * 2 : 16;
        struct ops_tab **n = realloc(ops_tabs, cap * sizeof(*n));
        if (!n) {
            pthread_mutex_unlock(&ops_lock);
            free(t->reqs);
            free(t);
            return 0;
        }
        ops_tabs = n;
        ops_tabs_cap = cap;
    }
    ops_tabs[ops_ntabs++] = t;
    pthread_mutex_unlock(&ops_lock);
    return (uint64_t)(uintptr_t)t;
}

void ops_tab_free(uint64_t handle)
{
    struct ops_tab *t = (void *)(uintptr_t)handle;
    pthread_mutex_lock(&ops_lock);
    for (uint64_t i = 0; i < ops_ntabs; i++)
        if (ops_tabs[i] == t) {
            ops_tabs[i] = ops_tabs[--ops_ntabs];
            break;
        }
    for (uint64_t i = 0; i < ops_iter_cap; i++)
        if (ops_iters[i].id && ops_iters[i].req >= t->reqs && ops_iters[i].req < t->reqs + t->nreq)
            ops_iters[i].id = 0;
    pthread_mutex_unlock(&ops_lock);
    free(t->reqs);
    free(t);
}

/* Address of request `idx`'s struct ops_req (Python sets data/live/descs, reads result). */
uint64_t ops_tab_req(uint64_t handle, uint64_t idx)
{
    struct ops_tab *t = (void *)(uintptr_t)handle;
    return idx < t->nreq ? (uint64_t)(uintptr_t)&t->reqs[idx] : 0;
}

void ops_set_resolver(uint64_t fn)
{
    ops_resolver = (ops_resolve_fn)(uintptr_t)fn;
}

/* caller holds ops_lock */
static struct ops_req *req_of(uint64_t data)
{
    for (uint64_t i = 0; i < ops_ntabs; i++) {
        struct ops_tab *t = ops_tabs[i];
        uint64_t off;
        if (data < t->base + 64)
            continue;
        off = data - t->base - 64;
        if (off % OPS_SLOT || off / OPS_SLOT >= t->nreq)
            continue;
        if (t->reqs[off / OPS_SLOT].live && t->reqs[off / OPS_SLOT].data == data)
            return &t->reqs[off / OPS_SLOT];
    }
    return NULL;
}

static int probe_read(uint64_t addr, void *buf, uint64_t n)
{
    struct iovec loc = { buf, n }, rem = { (void *)(uintptr_t)addr, n };
    if (!n)
        return 1;
    if (!addr)
        return 0;
    return process_vm_readv(getpid(), &loc, 1, &rem, 1, 0) == (ssize_t)n;
}

static int probe_write(uint64_t addr, const void *buf, uint64_t n)
{
    struct iovec loc = { (void *)buf, n }, rem = { (void *)(uintptr_t)addr, n };
    if (!n)
        return 1;
    if (!addr)
        return 0;
    return process_vm_writev(getpid(), &loc, 1, &rem, 1, 0) == (ssize_t)n;
}

/* void uring_bpf_set_result(struct uring_bpf_data *data, int res) */
uint64_t ops_set_result(uint64_t data, uint64_t res, uint64_t r3, uint64_t r4, uint64_t r5)
{
    struct ops_req *req;
    pthread_mutex_lock(&ops_lock);
    req = req_of(data);
    if (req)
        req->result = (int32_t)(uint32_t)res;
    pthread_mutex_unlock(&ops_lock);
    return 0;
}

/* Segments of a descriptor for `req`: the prep-time table, else the Python resolver.
 * Called without the lock; returns 0 or -errno, segs and nseg set on success. */
static int32_t resolve(uint64_t data, const uint8_t desc[16], int32_t dir,
                       const struct ops_seg **segs, uint64_t *nseg, struct ops_seg *scratch)
{
    struct ops_rdesc out = { .err = -EFAULT };
    struct ops_req *req;
    pthread_mutex_lock(&ops_lock);
    req = req_of(data);
    if (req) {
        const struct ops_rdesc *d = (const void *)(uintptr_t)req->descs;
        for (uint64_t i = 0; i < req->ndesc; i++)
            if (d[i].dir == dir && !memcmp(d[i].desc, desc, 16)) {
                *segs = (const void *)(uintptr_t)d[i].segs;
                *nseg = d[i].nseg;
                pthread_mutex_unlock(&ops_lock);
                return d[i].err;
            }
    }
    pthread_mutex_unlock(&ops_lock);
    if (!req)
        return -EINVAL;
    if (desc[0] == 0 /* IO_BPF_BUF_USER */ && desc[1] == 0 /* reserved */) {
        /* one unchecked segment: no table needed (a sub-range, an arena region...) */
        memcpy(&scratch->addr, desc + 8, 8);
        scratch->len = (uint64_t)desc[4] | (uint64_t)desc[5] << 8 | (uint64_t)desc[6] << 16 |
                       (uint64_t)desc[7] << 24;
        scratch->checked = 0;
        *segs = scratch;
        *nseg = 1;
        return 0;
    }
    if (!ops_resolver)
        return -EFAULT;
    ops_resolver(data, (uint64_t)(uintptr_t)desc, dir, (uint64_t)(uintptr_t)&out);
    *segs = (const void *)(uintptr_t)out.segs;
    *nseg = out.nseg;
    return out.err;
}

/* caller holds ops_lock; NULL when `it` is not a live iterator */
static struct ops_iter *iter_at(uint64_t it)
{
    const uint64_t *w = (const void *)(uintptr_t)it;
    uint64_t id, idx;
    if (!it || w[0] != OPS_ITER_MAGIC)
        return NULL;
    id = w[1];
    idx = id & ((1u << OPS_ID_BITS) - 1);
    if (!id || idx >= ops_iter_cap || ops_iters[idx].id != id)
        return NULL;
    return &ops_iters[idx];
}

/* caller holds ops_lock */
static struct ops_iter *iter_alloc(void)
{
    for (uint64_t k = 0; k < ops_iter_cap; k++) {
        uint64_t i = (ops_iter_hint + k) % ops_iter_cap;
        if (!ops_iters[i].id) {
            ops_iter_hint = i + 1;
            return &ops_iters[i];
        }
    }
    if (ops_iter_cap >= (1u << OPS_ID_BITS))
        return NULL;
    {
        uint64_t cap = ops_iter_cap ? ops_iter_cap * 2 : 64;
        struct ops_iter *n = realloc(ops_iters, cap * sizeof(*n));
        if (!n)
            return NULL;
        memset(n + ops_iter_cap, 0, (cap - ops_iter_cap) * sizeof(*n));
        ops_iters = n;
        ops_iter_hint = ops_iter_cap + 1;
        ops_iter_cap = cap;
        return &ops_iters[ops_iter_hint - 1];
    }
}

/* int bpf_iter_uring_buf_new(it, data, desc, direction): the error (if any) is returned
 * and kept, so `next` yields NULL; destroy is still required. */
uint64_t ops_iter_new(uint64_t it, uint64_t data, uint64_t descp, uint64_t direction, uint64_t r5)
{
    uint8_t desc[16];
    const struct ops_seg *segs = NULL;
    struct ops_seg scratch = { 0 };
    uint64_t nseg = 0;
    int32_t dir = (int32_t)(uint32_t)direction, err = 0;
    struct ops_req *req;
    struct ops_iter *st;
    uint64_t *w = (void *)(uintptr_t)it;

    memset(w, 0, 64);
    pthread_mutex_lock(&ops_lock);
    req = req_of(data);
    pthread_mutex_unlock(&ops_lock);
    if (!req || (dir != OPS_ITER_DEST && dir != OPS_ITER_SOURCE))
        err = -EINVAL;
    else if (!probe_read(descp, desc, 16))
        err = -EFAULT;
    else
        err = resolve(data, desc, dir, &segs, &nseg, &scratch);
    if (err)
        segs = NULL, nseg = 0;
    pthread_mutex_lock(&ops_lock);
    st = iter_alloc();
    if (!st) {
        pthread_mutex_unlock(&ops_lock);
        return (uint64_t)(int64_t)-ENOMEM;
    }
    memset(st, 0, sizeof(*st));
    st->id = ((++ops_iter_seq) << OPS_ID_BITS) | (uint64_t)(st - ops_iters);
    st->req = req;
    st->segs = segs == &scratch ? NULL : segs;
    st->own = scratch;
    st->nseg = nseg;
    st->dir = dir;
    st->err = err;
    w[0] = OPS_ITER_MAGIC;
    w[1] = st->id;
    pthread_mutex_unlock(&ops_lock);
    return (uint64_t)(int64_t)err;
}

/* int *bpf_iter_uring_buf_next(it): the next chunk (ends at page and segment boundaries);
 * unchecked (user) memory is probed (and for ITER_DEST written back) first. */
uint64_t ops_iter_next(uint64_t it, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    uint8_t page[1];
    struct ops_iter *st;
    pthread_mutex_lock(&ops_lock);
    st = iter_at(it);
    if (!st) {
        pthread_mutex_unlock(&ops_lock);
        return 0;
    }
    st->has_cur = 0;
    while (!st->err && (st->segs || st->nseg == 1) && st->seg < st->nseg) {
        const struct ops_seg *s = st->segs ? &st->segs[st->seg] : &st->own;
        uint64_t cur, count;
        if (st->off >= s->len) {
            st->seg++;
            st->off = 0;
            continue;
        }
        cur = s->addr + st->off;
        count = s->len - st->off;
        if (count > OPS_PAGE - cur % OPS_PAGE)
            count = OPS_PAGE - cur % OPS_PAGE;
        /* access rights are per page and a chunk never crosses one: probing one byte
         * (and, for ITER_DEST, writing it back) tells whether the whole chunk is usable */
        if (!s->checked && (ubpf_guard_overlaps(cur, count) || !probe_read(cur, page, 1) ||
                            (st->dir == OPS_ITER_DEST && !probe_write(cur, page, 1)))) {
            st->err = -EFAULT;
            break;
        }
        st->off += count;
        st->cur_addr = cur;
        st->cur_len = (uint32_t)count;
        st->has_cur = 1;
        *(int32_t *)(uintptr_t)(it + 16) = (int32_t)count;
        pthread_mutex_unlock(&ops_lock);
        return it + 16;
    }
    pthread_mutex_unlock(&ops_lock);
    return 0;
}

/* void bpf_iter_uring_buf_destroy(it) */
uint64_t ops_iter_destroy(uint64_t it, uint64_t r2, uint64_t r3, uint64_t r4, uint64_t r5)
{
    struct ops_iter *st;
    pthread_mutex_lock(&ops_lock);
    st = iter_at(it);
    if (st) {
        st->id = 0;
        memset((void *)(uintptr_t)it, 0, 24);
    }
    pthread_mutex_unlock(&ops_lock);
    return 0;
}

/* The chunk `next` handed out last (for the interpreter's region bookkeeping):
 * writes (addr, len, dir) to out[0..2]; returns 1, or 0 when there is none. */
uint64_t ops_iter_cur(uint64_t it, uint64_t out)
{
    struct ops_iter *st;
    uint64_t *o = (void *)(uintptr_t)out, ok = 0;
    pthread_mutex_lock(&ops_lock);
    st = iter_at(it);
    if (st && st->has_cur) {
        o[0] = st->cur_addr;
        o[1] = st->cur_len;
        o[2] = (uint64_t)(int64_t)st->dir;
        ok = 1;
    }
    pthread_mutex_unlock(&ops_lock);
    return ok;
}

/* Drop every iterator of the request at `data` (the callback returned without destroy). */
void ops_close_iters(uint64_t data)
{
    pthread_mutex_lock(&ops_lock);
    for (uint64_t i = 0; i < ops_iter_cap; i++)
        if (ops_iters[i].id && ops_iters[i].req && ops_iters[i].req->data == data)
            ops_iters[i].id = 0;
    pthread_mutex_unlock(&ops_lock);
}

static uint64_t make_dynptr(uint64_t it, uint64_t p, int writable)
{
    struct ops_iter *st;
    struct ops_dynptr *d = (void *)(uintptr_t)p;
    uint64_t ret = 0;
    memset(d, 0, sizeof(*d));
    pthread_mutex_lock(&ops_lock);
    st = iter_at(it);
    if (!st || !st->has_cur)
        ret = (uint64_t)(int64_t)-EINVAL;
    else if (writable && st->dir != OPS_ITER_DEST)
        ret = (uint64_t)(int64_t)-EPERM;
    else {
        d->data = st->cur_addr;
        d->size = st->cur_len;
        d->flags = DYNPTR_VALID | ((st->dir == OPS_ITER_DEST && writable) ? 0 : DYNPTR_RDONLY);
    }
    pthread_mutex_unlock(&ops_lock);
    return ret;
}

/* int bpf_uring_buf_dynptr[_rdwr](it, dynptr): a dynptr over the current chunk */
uint64_t ops_buf_dynptr(uint64_t it, uint64_t p, uint64_t r3, uint64_t r4, uint64_t r5)
{
    return make_dynptr(it, p, 0);
}

uint64_t ops_buf_dynptr_rdwr(uint64_t it, uint64_t p, uint64_t r3, uint64_t r4, uint64_t r5)
{
    return make_dynptr(it, p, 1);
}

/* __s64 uring_bpf_memcpy(data, dst, src) (v2): min(dst len, src len) bytes; the whole
 * source is read first (a fault there copies nothing), then the destination written. */
uint64_t ops_memcpy(uint64_t data, uint64_t dstp, uint64_t srcp, uint64_t r4, uint64_t r5)
{
    uint8_t dd[16], sd[16];
    const struct ops_seg *ds, *ss;
    struct ops_seg dscratch, sscratch;
    uint64_t dn, sn, dtot = 0, stot = 0, total, need, off;
    int32_t err;
    struct ops_req *req;
    uint8_t *blob;

    pthread_mutex_lock(&ops_lock);
    req = req_of(data);
    pthread_mutex_unlock(&ops_lock);
    if (!req)
        return (uint64_t)(int64_t)-EINVAL;
    if (!probe_read(dstp, dd, 16) || !probe_read(srcp, sd, 16))
        return (uint64_t)(int64_t)-EFAULT;
    err = resolve(data, dd, OPS_ITER_DEST, &ds, &dn, &dscratch);
    if (err)
        return (uint64_t)(int64_t)err;
    err = resolve(data, sd, OPS_ITER_SOURCE, &ss, &sn, &sscratch);
    if (err)
        return (uint64_t)(int64_t)err;
    for (uint64_t i = 0; i < dn; i++)
        dtot += ds[i].len;
    for (uint64_t i = 0; i < sn; i++)
        stot += ss[i].len;
    total = dtot < stot ? dtot : stot;
    blob = malloc(total ? total : 1);
    if (!blob)
        return (uint64_t)(int64_t)-ENOMEM;
    need = total;
    off = 0;
    for (uint64_t i = 0; i < sn && need; i++) {
        uint64_t take = ss[i].len < need ? ss[i].len : need;
        if (ubpf_guard_overlaps(ss[i].addr, take) || !probe_read(ss[i].addr, blob + off, take)) {
            free(blob);
            return (uint64_t)(int64_t)-EFAULT;
        }
        off += take;
        need -= take;
    }
    off = 0;
    for (uint64_t i = 0; i < dn && off < total; i++) {
        uint64_t take = ds[i].len < total - off ? ds[i].len : total - off;
        if (ubpf_guard_overlaps(ds[i].addr, take) || !probe_write(ds[i].addr, blob + off, take)) {
            free(blob);
            return (uint64_t)(int64_t)-EFAULT;
        }
        off += take;
    }
    free(blob);
    return total;
}

/* copy_from_user for the Python side (the SQE's descriptor array at prep): 1, or 0 on a
 * bad address; cheaper than building iovecs in ctypes for 16 bytes. */
uint64_t ops_read_user(uint64_t addr, uint64_t buf, uint64_t n)
{
    return probe_read(addr, (void *)(uintptr_t)buf, n);
}
