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

struct ops_ring;

struct ops_req {                 /* mirrors ops.py _NReq (the first five fields) */
    uint64_t data;
    int32_t result;
    uint32_t live;
    uint64_t ndesc;
    uint64_t descs;              /* struct ops_rdesc * */
    /* native submit path only (Python never reads these): */
    struct ops_ring *nring;      /* the ring whose ops_enter prepped it, NULL: Python path */
    void *allocs;                /* malloc'd descriptor tables/segments, freed on release */
    uint32_t slot, prepped, done, index;
    uint64_t user_data;
    uint8_t flags;
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
static void ops_pid_reset(void);

static void ops_register_atfork(void)
{
    pthread_atfork(NULL, NULL, ops_pid_reset);
}
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

/* Our pid for process_vm_readv/writev: getpid() is a syscall (glibc caches nothing), and
 * the probes run several times per operation; a forked child resets it (atfork). */
static pid_t ops_pid;

static void ops_pid_reset(void)
{
    ops_pid = 0;
}

static pid_t self_pid(void)
{
    static pthread_once_t once = PTHREAD_ONCE_INIT;
    pid_t p = __atomic_load_n(&ops_pid, __ATOMIC_RELAXED);
    if (!p) {
        pthread_once(&once, ops_register_atfork);
        p = getpid();
        __atomic_store_n(&ops_pid, p, __ATOMIC_RELAXED);
    }
    return p;
}

static int probe_read(uint64_t addr, void *buf, uint64_t n)
{
    struct iovec loc = { buf, n }, rem = { (void *)(uintptr_t)addr, n };
    if (!n)
        return 1;
    if (!addr)
        return 0;
    return process_vm_readv(self_pid(), &loc, 1, &rem, 1, 0) == (ssize_t)n;
}

static int probe_write(uint64_t addr, const void *buf, uint64_t n)
{
    struct iovec loc = { (void *)buf, n }, rem = { (void *)(uintptr_t)addr, n };
    if (!n)
        return 1;
    if (!addr)
        return 0;
    return process_vm_writev(self_pid(), &loc, 1, &rem, 1, 0) == (ssize_t)n;
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

static int32_t ops_native_resolve(struct ops_req *req, const uint8_t desc[16], int32_t dir,
                                  const struct ops_seg **segs, uint64_t *nseg,
                                  struct ops_seg *scratch);

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
    if (req->nring)              /* a request of the native path: resolved in C */
        return ops_native_resolve(req, desc, dir, segs, nseg, scratch);
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

/* ---------------------------------------------------------------------------------------
 * The native submit path (issue #17): designs/ops/__init__.py's enter hook, _Window and
 * OpsTable._prep/_issue/_fail/_finish in C, for rings whose ops programs all run as
 * (verified, unchecked) JIT code.  One `struct ops_ring` per OpsTable; Python calls
 * ops_enter() once per io_uring_enter and nothing per operation:
 *
 *   - every IORING_OP_BPF SQE of the window is prepped first (prep_fn through its native
 *     entry, the SQE's descriptors resolved into the request's table in C);
 *   - a chain that failed at prep becomes NOPs injecting -errno / -ECANCELED;
 *   - the SQEs before a BPF op go to the kernel followed by a sentinel NOP in its place;
 *     its CQE tells whether the chain reached the op (0) or broke (-ECANCELED); then
 *     issue_fn runs and the sentinel CQE is rewritten in place into the op's CQE;
 *   - the rest of the chain follows, or is cancelled when the op failed (LINK, not HARDLINK).
 *
 * Semantics are those of the Python _Window (the reference, used with the interpreter);
 * tests/designs/test_ops_native.py runs both on the same inputs.  Buffers the kernel-buffer
 * design owns (KFIXED) and registered buffers beyond OPS_NFIXED are looked up through one
 * Python callback (ops_set_lookup): the only way back into Python on this path.
 */
#include <sys/syscall.h>

#define OPS_OP_BPF 65
#define OPS_MAX_OPS 16
#define OPS_OP_SHIFT 24
#define OPS_NFIXED 1024
#define OPS_MAX_PREP_DESCS 16
#define OPS_UIO_MAXIOV 1024
#define OPS_SKIP_COMPLETE (-529)
#define OPS_TOKEN_BASE 0xB9E0000000000000ull
#define SQE_IO_DRAIN 2u
#define SQE_IO_LINK 4u
#define SQE_IO_HARDLINK 8u
#define SQE_CQE_SKIP_SUCCESS 64u
#define SQE_LINKS (SQE_IO_LINK | SQE_IO_HARDLINK)
#define ENTER_GETEVENTS 1u

enum { P_PREP, P_ISSUE, P_FAIL, P_CLEANUP, P_N };
enum { S_PREP, S_ISSUE, S_FAIL, S_CLEANUP, S_SENTINELS, S_N };

typedef uint64_t (*ops_entry_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
/* Python lookup: kind 1 = registered buffer `index` (FIXED/REG_VEC), 3 = KFIXED base for
 * direction `dir`; writes (addr, len) to out[0..1]; returns 0 or -errno. */
typedef int64_t (*ops_lookup_fn)(uint64_t table_id, int64_t kind, uint64_t index, int64_t dir,
                                 uint64_t out);

struct ops_nprog {
    uint64_t entry;              /* uint64_t (*)(r1..r5): JIT code through its gate, 0: none */
    uint64_t jctx;               /* its struct jitrt_ctx (error word first) */
    uint64_t saved[5];           /* first error of this enter: error, pc, addr, size, write */
    uint64_t nsaved;
};

struct ops_nslot {
    struct ops_nprog p[P_N];
    uint64_t cookie;             /* what data->ops holds (the Python slot's id) */
    uint32_t present, closing;
};

struct ops_ring {
    struct ops_tab *tab;
    int fd;
    uint32_t sq_mask, sq_entries, sqe_size, cq_mask, cq_entries, cqe_size;
    uint32_t *sq_head, *sq_tail, *sq_array, *cq_head, *cq_tail;
    uint8_t *sqes, *cqes;
    uint64_t args;               /* two u64: r1 of every callback */
    struct ops_nslot slots[OPS_MAX_OPS];
    uint64_t fixed[OPS_NFIXED][2];
    uint8_t fixed_set[OPS_NFIXED];
    uint32_t *freel, nfree;
    uint64_t token;
    uint64_t stats[S_N];
    uint64_t errors;             /* callbacks that stopped on an error since the last take */
    int64_t fatal;               /* -errno the Python wrapper raises as OSError, 0: none */
    uint64_t inflight[OPS_MAX_OPS]; /* per op id, prep to release (OpsSlot.inflight reads it) */
    uint64_t table_id;
};

static ops_lookup_fn ops_lookup;

void ops_set_lookup(uint64_t fn)
{
    ops_lookup = (ops_lookup_fn)(uintptr_t)fn;
}

static long sys_enter(int fd, uint32_t n, uint32_t mc, uint32_t flags)
{
    long r = syscall(__NR_io_uring_enter, fd, n, mc, flags, NULL, 0);
    return r < 0 ? -errno : r;
}

/* addresses: the ring's mmaps as uring.Ring exposes them (see OpsTable._native_ring) */
uint64_t ops_ring_new(uint64_t tab, uint64_t fd, uint64_t args, uint64_t table_id,
                      uint64_t sq_head, uint64_t sq_tail, uint64_t sq_array, uint64_t sqes,
                      uint64_t cq_head, uint64_t cq_tail, uint64_t cqes, uint64_t geometry)
{
    struct ops_ring *r = calloc(1, sizeof(*r));
    struct ops_tab *t = (void *)(uintptr_t)tab;
    const uint32_t *g = (const void *)(uintptr_t)geometry;  /* sq mask/entries/sqe size, cq ... */
    if (!r)
        return 0;
    r->freel = calloc(t->nreq, sizeof(*r->freel));
    if (!r->freel) {
        free(r);
        return 0;
    }
    for (uint64_t i = 0; i < t->nreq; i++)
        r->freel[r->nfree++] = (uint32_t)(t->nreq - 1 - i);
    r->tab = t;
    r->fd = (int)fd;
    r->args = args;
    r->table_id = table_id;
    r->sq_head = (void *)(uintptr_t)sq_head;
    r->sq_tail = (void *)(uintptr_t)sq_tail;
    r->sq_array = (void *)(uintptr_t)sq_array;
    r->sqes = (void *)(uintptr_t)sqes;
    r->cq_head = (void *)(uintptr_t)cq_head;
    r->cq_tail = (void *)(uintptr_t)cq_tail;
    r->cqes = (void *)(uintptr_t)cqes;
    r->sq_mask = g[0];
    r->sq_entries = g[1];
    r->sqe_size = g[2];
    r->cq_mask = g[3];
    r->cq_entries = g[4];
    r->cqe_size = g[5];
    return (uint64_t)(uintptr_t)r;
}

void ops_ring_free(uint64_t h)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    free(r->freel);
    free(r);
}

/* which: P_*; entry 0 removes the program */
void ops_ring_set_prog(uint64_t h, uint64_t op_id, uint64_t which, uint64_t entry, uint64_t jctx)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    r->slots[op_id].p[which].entry = entry;
    r->slots[op_id].p[which].jctx = jctx;
    r->slots[op_id].p[which].nsaved = 0;
}

void ops_ring_set_slot(uint64_t h, uint64_t op_id, uint64_t present, uint64_t closing,
                       uint64_t cookie)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    r->slots[op_id].present = (uint32_t)present;
    r->slots[op_id].closing = (uint32_t)closing;
    r->slots[op_id].cookie = cookie;
}

/* the registered-buffer mirror: n < 0 clears it, else entry n = (addr, len) or unset */
void ops_ring_set_fixed(uint64_t h, int64_t n, uint64_t addr, uint64_t len, uint64_t set)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    if (n < 0) {
        memset(r->fixed_set, 0, sizeof(r->fixed_set));
        return;
    }
    if (n < OPS_NFIXED) {
        r->fixed[n][0] = addr;
        r->fixed[n][1] = len;
        r->fixed_set[n] = (uint8_t)set;
    }
}

uint64_t ops_ring_stats(uint64_t h, uint64_t out)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    memcpy((void *)(uintptr_t)out, r->stats, sizeof(r->stats));
    return r->errors;
}

/* The first saved error of program (op_id, which) since the last call: 1 and out[0..4],
 * or 0.  Clears it. */
uint64_t ops_ring_take_error(uint64_t h, uint64_t op_id, uint64_t which, uint64_t out)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    struct ops_nprog *p = &r->slots[op_id].p[which];
    if (!p->nsaved)
        return 0;
    memcpy((void *)(uintptr_t)out, p->saved, sizeof(p->saved));
    p->nsaved = 0;
    return 1;
}

void ops_ring_clear_errors(uint64_t h)
{
    ((struct ops_ring *)(uintptr_t)h)->errors = 0;
}

/* --- per-request memory ------------------------------------------------------------- */
struct ops_alloc {
    struct ops_alloc *next;
    uint64_t pad;
};

static void *req_alloc(struct ops_req *req, size_t n)
{
    struct ops_alloc *a = calloc(1, sizeof(*a) + n);
    if (!a)
        return NULL;
    a->next = req->allocs;
    req->allocs = a;
    return a + 1;
}

static void req_free_allocs(struct ops_req *req)
{
    struct ops_alloc *a = req->allocs;
    while (a) {
        struct ops_alloc *n = a->next;
        free(a);
        a = n;
    }
    req->allocs = NULL;
}

static int32_t reg_lookup(struct ops_ring *r, int kind, uint32_t index, int32_t dir,
                          uint64_t *addr, uint64_t *len)
{
    uint64_t out[2] = { 0, 0 };
    int32_t err;
    if (kind == 1 && index < OPS_NFIXED) {
        if (!r->fixed_set[index])
            return -EFAULT;
        *addr = r->fixed[index][0];
        *len = r->fixed[index][1];
        return 0;
    }
    if (!ops_lookup)
        return -EFAULT;
    err = (int32_t)ops_lookup(r->table_id, kind, index, dir, (uint64_t)(uintptr_t)out);
    *addr = out[0];
    *len = out[1];
    return err;
}

static int32_t read_iovecs(struct ops_req *req, uint64_t addr, uint32_t nr,
                           struct ops_seg **out)
{
    uint64_t *raw;
    struct ops_seg *segs;
    if (nr > OPS_UIO_MAXIOV)
        return -EINVAL;
    raw = malloc(16 * (size_t)nr + 1);
    segs = req_alloc(req, sizeof(*segs) * (nr ? nr : 1));
    if (!raw || !segs) {
        free(raw);
        return -ENOMEM;
    }
    if (!probe_read(addr, raw, 16 * (uint64_t)nr)) {
        free(raw);
        return -EFAULT;
    }
    for (uint32_t i = 0; i < nr; i++) {
        segs[i].addr = raw[2 * i];
        segs[i].len = raw[2 * i + 1];
        segs[i].checked = 0;
    }
    free(raw);
    *out = segs;
    return 0;
}

/* designs/ops resolve_desc() in C: segments of a descriptor for `dir`, memory from `req` */
static int32_t ndesc_resolve(struct ops_ring *r, struct ops_req *req, const uint8_t *desc,
                             int32_t dir, struct ops_seg **segs, uint64_t *nseg)
{
    uint8_t type = desc[0];
    uint16_t index;
    uint32_t length;
    uint64_t addr, base, blen;
    struct ops_seg *s;
    int32_t err;

    memcpy(&index, desc + 2, 2);
    memcpy(&length, desc + 4, 4);
    memcpy(&addr, desc + 8, 8);
    *nseg = 0;
    if (desc[1])
        return -EINVAL;
    switch (type) {
    case 0: /* USER */
    case 2: /* VEC */
        if (type == 2) {
            err = read_iovecs(req, addr, length, segs);
            if (!err)
                *nseg = length;
            return err;
        }
        s = req_alloc(req, sizeof(*s));
        if (!s)
            return -ENOMEM;
        s->addr = addr;
        s->len = length;
        *segs = s;
        *nseg = 1;
        return 0;
    case 1: /* FIXED */
        err = reg_lookup(r, 1, index, dir, &base, &blen);
        if (err || addr < base || addr + length > base + blen)
            return -EFAULT;
        s = req_alloc(req, sizeof(*s));
        if (!s)
            return -ENOMEM;
        s->addr = addr;
        s->len = length;
        s->checked = 1;
        *segs = s;
        *nseg = 1;
        return 0;
    case 4: /* REG_VEC */
        if (reg_lookup(r, 1, index, dir, &base, &blen))
            return -EFAULT;
        err = read_iovecs(req, addr, length, segs);
        if (err)
            return err;
        for (uint32_t i = 0; i < length; i++) {
            if ((*segs)[i].addr < base || (*segs)[i].addr + (*segs)[i].len > base + blen)
                return -EFAULT;
            (*segs)[i].checked = 1;
        }
        *nseg = length;
        return 0;
    case 3: /* KFIXED: the kbuf design's table (Python), else a registered buffer */
        err = reg_lookup(r, 3, index, dir, &base, &blen);
        if (err || addr + length > blen)
            return -EFAULT;
        s = req_alloc(req, sizeof(*s));
        if (!s)
            return -ENOMEM;
        s->addr = base + addr;
        s->len = length;
        s->checked = 1;
        *segs = s;
        *nseg = 1;
        return 0;
    }
    return -EINVAL;
}

/* resolve() for a native request whose descriptor the SQE did not name */
static int32_t ops_native_resolve(struct ops_req *req, const uint8_t desc[16], int32_t dir,
                                  const struct ops_seg **segs, uint64_t *nseg,
                                  struct ops_seg *scratch)
{
    struct ops_seg *s = NULL;
    int32_t err = ndesc_resolve(req->nring, req, desc, dir, &s, nseg);
    *segs = err ? NULL : s;
    (void)scratch;
    return err;
}

/* _prep_descs: the SQE's descriptors, both directions, into the request's table */
static void nprep_descs(struct ops_ring *r, struct ops_req *req, const uint8_t *sqe)
{
    uint64_t addr;
    uint32_t count;
    uint8_t raw[16 * OPS_MAX_PREP_DESCS];
    struct ops_rdesc *tab;

    memcpy(&addr, sqe + 16, 8);
    memcpy(&count, sqe + 24, 4);
    if (!addr || !count || count > OPS_MAX_PREP_DESCS || !probe_read(addr, raw, 16 * count))
        return;
    tab = req_alloc(req, sizeof(*tab) * 2 * count);
    if (!tab)
        return;
    for (uint32_t i = 0; i < count; i++) {
        for (int d = 0; d < 2; d++) {
            struct ops_rdesc *rd = &tab[2 * i + d];
            struct ops_seg *segs = NULL;
            memcpy(rd->desc, raw + 16 * i, 16);
            rd->dir = d ? OPS_ITER_SOURCE : OPS_ITER_DEST;
            if (d && raw[16 * i] != 3) {          /* only KFIXED checks a direction */
                rd->err = tab[2 * i].err;
                rd->nseg = tab[2 * i].nseg;
                rd->segs = tab[2 * i].segs;
                continue;
            }
            rd->err = ndesc_resolve(r, req, raw + 16 * i, rd->dir, &segs, &rd->nseg);
            rd->segs = rd->err ? 0 : (uint64_t)(uintptr_t)segs;
            if (rd->err)
                rd->nseg = 0;
        }
    }
    req->descs = (uint64_t)(uintptr_t)tab;
    req->ndesc = 2 * count;
}

/* --- callbacks ------------------------------------------------------------------------ */
static int32_t ncall(struct ops_ring *r, uint32_t op_id, int which, uint64_t a, uint64_t b)
{
    struct ops_nprog *p = &r->slots[op_id].p[which];
    uint64_t *args = (void *)(uintptr_t)r->args, ret;
    volatile uint64_t *jc = (volatile uint64_t *)(uintptr_t)p->jctx;
    args[0] = a;
    args[1] = b;
    ret = ((ops_entry_fn)(uintptr_t)p->entry)(r->args, 0, 0, 0, 0);
    if (jc && jc[0]) {
        /* the program stopped on a runtime error: keep it for Python (take_error),
         * clear the context as LoadedProgram.reset() does, and fail the callback */
        if (!p->nsaved) {
            for (int i = 0; i < 5; i++)
                p->saved[i] = jc[i];
            p->nsaved = 1;
        }
        for (int i = 0; i < 5; i++)
            jc[i] = 0;
        jc[5] = jc[7];                           /* sp = stack_hi */
        r->errors++;
        return -EFAULT;
    }
    return (int32_t)(uint32_t)ret;
}

static void nrelease(struct ops_ring *r, struct ops_req *req)
{
    pthread_mutex_lock(&ops_lock);
    req->live = 0;
    req->ndesc = 0;
    req->descs = 0;
    pthread_mutex_unlock(&ops_lock);
    req_free_allocs(req);
    req->nring = NULL;
    __atomic_fetch_sub(&r->inflight[req->slot], 1, __ATOMIC_RELEASE);
    r->freel[r->nfree++] = req->index;
}

static void nfail(struct ops_ring *r, struct ops_req *req)
{
    if (r->slots[req->slot].p[P_FAIL].entry) {
        r->stats[S_FAIL]++;
        ncall(r, req->slot, P_FAIL, req->data, 0);
        ops_close_iters(req->data);
    }
}

static void nfinish(struct ops_ring *r, struct ops_req *req)
{
    if (req->done)
        return;
    req->done = 1;
    if (req->prepped && r->slots[req->slot].p[P_CLEANUP].entry) {
        r->stats[S_CLEANUP]++;
        ncall(r, req->slot, P_CLEANUP, req->data, 0);
        ops_close_iters(req->data);
    }
    nrelease(r, req);
}

static void ncancel(struct ops_ring *r, struct ops_req *req)
{
    req->result = -ECANCELED;
    nfail(r, req);
    nfinish(r, req);
}

static int32_t nissue(struct ops_ring *r, struct ops_req *req)
{
    int32_t ret = 0;
    r->stats[S_ISSUE]++;
    if (r->slots[req->slot].p[P_ISSUE].entry)
        ret = ncall(r, req->slot, P_ISSUE, req->data, 0);
    ops_close_iters(req->data);
    if (ret == OPS_SKIP_COMPLETE || ret > 0)
        ret = -EINVAL;
    if (ret < 0) {
        req->result = ret;
        nfail(r, req);
    }
    return req->result;
}

/* OpsTable._prep: the request, or NULL and *err */
static struct ops_req *nprep(struct ops_ring *r, const uint8_t *sqe, int32_t *err)
{
    uint32_t opf, op_id, idx;
    uint64_t data, ud;
    struct ops_nslot *slot;
    struct ops_req *req;
    int32_t ret;

    memcpy(&opf, sqe + 28, 4);
    memcpy(&ud, sqe + 32, 8);
    op_id = opf >> OPS_OP_SHIFT;
    if (op_id >= OPS_MAX_OPS) {
        *err = -EINVAL;
        return NULL;
    }
    slot = &r->slots[op_id];
    if (!slot->present || slot->closing || !slot->p[P_PREP].entry) {
        *err = -EOPNOTSUPP;
        return NULL;
    }
    if (!r->nfree) {
        *err = -ENOMEM;
        return NULL;
    }
    idx = r->freel[--r->nfree];
    __atomic_fetch_add(&r->inflight[op_id], 1, __ATOMIC_RELEASE);
    req = &r->tab->reqs[idx];
    data = r->tab->base + 64 + (uint64_t)idx * OPS_SLOT;
    memset((void *)(uintptr_t)data, 0, 64);
    memcpy((void *)(uintptr_t)(data + 64), sqe, 64);
    memcpy((void *)(uintptr_t)data, &data, 8);
    memcpy((void *)(uintptr_t)(data + 8), &slot->cookie, 8);
    memcpy((void *)(uintptr_t)(data + 16), &opf, 4);
    req->nring = r;
    req->allocs = NULL;
    req->slot = op_id;
    req->index = idx;
    req->prepped = req->done = 0;
    req->user_data = ud;
    req->flags = sqe[1];
    req->ndesc = 0;
    req->descs = 0;
    nprep_descs(r, req, sqe);
    pthread_mutex_lock(&ops_lock);
    req->data = data;
    req->result = 0;
    req->live = 1;
    pthread_mutex_unlock(&ops_lock);
    r->stats[S_PREP]++;
    ret = ncall(r, op_id, P_PREP, data, data + 64);
    if (ret) {
        nrelease(r, req);
        *err = ret < 0 ? ret : -EINVAL;
        return NULL;
    }
    req->prepped = 1;
    return req;
}

/* --- the window ----------------------------------------------------------------------- */
struct witem {
    uint8_t sqe[128];
    uint8_t bpf, flags;
    uint64_t ud;
    uint32_t chain;
    struct ops_req *req;
};

struct window {
    struct ops_ring *r;
    struct witem *it;
    uint32_t n, head, pos, orig_tail;
};

static void make_nop(const struct ops_ring *r, uint8_t *sqe, uint64_t ud, uint8_t flags,
                     int inject, int32_t res)
{
    memset(sqe, 0, r->sqe_size);
    sqe[0] = 0;                                /* IORING_OP_NOP */
    sqe[1] = flags;
    memset(sqe + 4, 0xff, 4);                  /* fd = -1 */
    if (inject) {
        uint32_t nop_flags = 1;                /* IORING_NOP_INJECT_RESULT */
        memcpy(sqe + 24, &res, 4);
        memcpy(sqe + 28, &nop_flags, 4);
    }
    memcpy(sqe + 32, &ud, 8);
}

static void wcancel_item(struct window *w, uint32_t j, int silent, int32_t res)
{
    struct witem *it = &w->it[j];
    if (it->bpf && it->req)
        ncancel(w->r, it->req);
    it->req = NULL;
    it->bpf = 0;
    if (silent)
        make_nop(w->r, it->sqe, it->ud, SQE_CQE_SKIP_SUCCESS, 0, 0);
    else
        make_nop(w->r, it->sqe, it->ud, 0, 1, res);
    it->flags = 0;
}

/* push `cnt` SQEs; 0, or the -errno / -EAGAIN that aborts the window */
static long wpush(struct window *w, uint8_t *const *sqes, uint32_t cnt, uint32_t mc, uint32_t fl)
{
    struct ops_ring *r = w->r;
    long ret;
    for (uint32_t k = 0; k < cnt; k++) {
        uint32_t p = (w->pos + k) & r->sq_mask;
        memcpy(r->sqes + (size_t)p * r->sqe_size, sqes[k], r->sqe_size);
        if (r->sq_array)
            r->sq_array[p] = p;
    }
    __atomic_store_n(r->sq_tail, w->pos + cnt, __ATOMIC_RELEASE);
    ret = sys_enter(r->fd, cnt, mc, fl);
    w->pos += ret > 0 ? (uint32_t)ret : 0;
    if (ret != (long)cnt) {
        __atomic_store_n(r->sq_tail, w->pos, __ATOMIC_RELEASE);
        return ret < 0 ? ret : -EAGAIN;
    }
    return 0;
}

struct skip_ent {
    uint64_t tok, ud;
    uint8_t flags, live;
};

/* _wait_token: 1 and *cqe (the sentinel's CQE in the CQ), 0 = silent, < 0 fatal -errno */
static int wwait(struct ops_ring *r, uint64_t token, struct skip_ent *skip, uint32_t nskip,
                 uint8_t **cqe_out)
{
    uint32_t seen = 0;
    int have_seen = 0;
    for (;;) {
        uint32_t head = __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
        uint32_t tail = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE);
        uint32_t pos = have_seen ? seen : head, ready;
        int silent = 0;
        long ret;
        while (pos != tail) {
            uint8_t *c = r->cqes + (size_t)(pos & r->cq_mask) * r->cqe_size;
            uint64_t ud;
            memcpy(&ud, c, 8);
            if (ud == token) {
                *cqe_out = c;
                return 1;
            }
            for (uint32_t k = 0; k < nskip; k++)
                if (skip[k].live && skip[k].tok == ud) {
                    skip[k].live = 0;
                    memcpy(c, &skip[k].ud, 8);
                    if ((skip[k].flags & SQE_IO_LINK) && !(skip[k].flags & SQE_IO_HARDLINK))
                        silent = 1;
                    break;
                }
            pos++;
        }
        seen = tail;
        have_seen = 1;
        if (silent)
            return 0;
        ready = tail - head;
        if (ready >= r->cq_entries)
            return -EBUSY;
        ret = sys_enter(r->fd, 0, ready + 1, ENTER_GETEVENTS);
        if (ret < 0 && ret != -EINTR)
            return (int)ret;
    }
}

static void wabort_cancel(struct window *w)
{
    for (uint32_t j = 0; j < w->n; j++)
        if (w->it[j].bpf && w->it[j].req && !w->it[j].req->done) {
            ncancel(w->r, w->it[j].req);
            w->it[j].req = NULL;
        }
}

/* io_uring_enter for an IORING_SETUP_BPF_EXT ring: >= 0 or -errno like the syscall;
 * r->fatal set (and -1 returned) for what the Python path raises as OSError. */
int64_t ops_enter(uint64_t h, uint64_t to_submit, uint64_t min_complete, uint64_t flags)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    struct window w = { .r = r };
    uint32_t head, tail, n, i = 0, cid = 0;
    int any = 0, waited = 0;
    long ret = 0;
    uint8_t **batch = NULL;
    struct skip_ent *skip = NULL;
    int32_t *errs = NULL;

    r->fatal = 0;
    if (!to_submit)
        return sys_enter(r->fd, 0, (uint32_t)min_complete, (uint32_t)flags);
    head = __atomic_load_n(r->sq_head, __ATOMIC_ACQUIRE);
    tail = *r->sq_tail;
    n = tail - head;
    if (to_submit < n)
        n = (uint32_t)to_submit;
    for (uint32_t k = 0; k < n && !any; k++) {
        uint32_t p = (head + k) & r->sq_mask;
        uint32_t slot = r->sq_array ? r->sq_array[p] : p;
        any = slot < r->sq_entries && r->sqes[(size_t)slot * r->sqe_size] == OPS_OP_BPF;
    }
    if (!any)
        return sys_enter(r->fd, (uint32_t)to_submit, (uint32_t)min_complete, (uint32_t)flags);

    w.it = calloc(n, sizeof(*w.it));
    batch = calloc(n + 1, sizeof(*batch));
    skip = calloc(n + 1, sizeof(*skip));
    errs = calloc(n, sizeof(*errs));
    if (!w.it || !batch || !skip || !errs) {
        r->fatal = -ENOMEM;
        ret = -1;
        goto out;
    }
    w.n = n;
    w.head = w.pos = head;
    w.orig_tail = tail;
    for (uint32_t k = 0; k < n; k++) {
        uint32_t p = (head + k) & r->sq_mask;
        uint32_t slot = r->sq_array ? r->sq_array[p] : p;
        struct witem *it = &w.it[k];
        memcpy(it->sqe, r->sqes + (size_t)(slot % r->sq_entries) * r->sqe_size, r->sqe_size);
        it->bpf = it->sqe[0] == OPS_OP_BPF;
        it->flags = it->sqe[1];
        memcpy(&it->ud, it->sqe + 32, 8);
        it->chain = cid;
        if (!(it->flags & SQE_LINKS))
            cid++;
    }
    /* _prep_all */
    {
        int failed = 0;
        for (uint32_t k = 0; k < n; k++) {
            if (!w.it[k].bpf)
                continue;
            w.it[k].req = nprep(r, w.it[k].sqe, &errs[k]);
            failed |= !w.it[k].req;
        }
        if (failed) {
            /* every member of a chain with a failed prep completes at once: the failed
             * op with its own -errno, the others with -ECANCELED (no links left) */
            uint8_t *bad = calloc(n, 1);
            if (!bad) {
                r->fatal = -ENOMEM;
                wabort_cancel(&w);
                ret = -1;
                goto out;
            }
            for (uint32_t k = 0; k < n; k++)
                if (w.it[k].bpf && !w.it[k].req)
                    bad[w.it[k].chain] = 1;
            for (uint32_t j = 0; j < n; j++)
                if (bad[w.it[j].chain])
                    wcancel_item(&w, j, 0, errs[j] ? errs[j] : -ECANCELED);
            free(bad);
        }
    }
    while (i < n) {
        uint32_t b = n, nb = 0, nskip = 0;
        uint64_t token;
        uint8_t sentinel[128], *cqe = NULL;
        struct ops_req *req;
        int state;
        for (uint32_t j = i; j < n; j++)
            if (w.it[j].bpf) {
                b = j;
                break;
            }
        if (b == n) {
            for (uint32_t j = i; j < n; j++)
                batch[nb++] = w.it[j].sqe;
            waited = 1;
            ret = wpush(&w, batch, nb, (uint32_t)min_complete, (uint32_t)flags);
            if (ret)
                goto abort;
            break;
        }
        req = w.it[b].req;
        token = OPS_TOKEN_BASE | ++r->token;
        make_nop(r, sentinel, token, req->flags & SQE_IO_DRAIN, 0, 0);
        for (uint32_t j = i; j < b; j++) {
            struct witem *it = &w.it[j];
            if ((it->flags & SQE_CQE_SKIP_SUCCESS) && it->chain == w.it[b].chain) {
                uint64_t tok = OPS_TOKEN_BASE | ++r->token;
                skip[nskip].tok = tok;
                skip[nskip].ud = it->ud;
                skip[nskip].flags = it->flags;
                skip[nskip].live = 1;
                nskip++;
                memcpy(it->sqe + 32, &tok, 8);
            }
            batch[nb++] = it->sqe;
        }
        batch[nb++] = sentinel;
        r->stats[S_SENTINELS]++;
        {
            /* submit and wait in one io_uring_enter: at least one CQE more than the CQ
             * holds now is certain (the sentinel's, or a failed member's when the chain is
             * cancelled silently); wwait() enters again if the sentinel is not there yet */
            uint32_t ready = __atomic_load_n(r->cq_tail, __ATOMIC_ACQUIRE) -
                             __atomic_load_n(r->cq_head, __ATOMIC_ACQUIRE);
            ret = ready < r->cq_entries ? wpush(&w, batch, nb, ready + 1, ENTER_GETEVENTS)
                                        : wpush(&w, batch, nb, 0, 0);
        }
        if (ret)
            goto abort;
        state = wwait(r, token, skip, nskip, &cqe);
        if (state < 0) {
            r->fatal = state;
            wabort_cancel(&w);
            ret = -1;
            goto out;
        }
        if (state == 0) {
            ncancel(r, req);
            w.it[b].req = NULL;
            for (uint32_t j = b + 1; j < n; j++)
                if (w.it[j].chain == w.it[b].chain)
                    wcancel_item(&w, j, 1, 0);
        } else {
            int32_t res;
            int32_t cres;
            memcpy(&cres, cqe + 8, 4);
            if (cres == -ECANCELED) {
                memcpy(cqe, &req->user_data, 8);
                ncancel(r, req);
                w.it[b].req = NULL;
                for (uint32_t j = b + 1; j < n; j++)
                    if (w.it[j].chain == w.it[b].chain)
                        wcancel_item(&w, j, 0, -ECANCELED);
            } else {
                uint32_t zero = 0;
                res = nissue(r, req);
                memcpy(cqe + 8, &res, 4);
                memcpy(cqe + 12, &zero, 4);
                memcpy(cqe, &req->user_data, 8);
                nfinish(r, req);
                w.it[b].req = NULL;
                if (res < 0 && (req->flags & SQE_IO_LINK) && !(req->flags & SQE_IO_HARDLINK))
                    for (uint32_t j = b + 1; j < n; j++)
                        if (w.it[j].chain == w.it[b].chain)
                            wcancel_item(&w, j, 0, -ECANCELED);
            }
        }
        w.it[b].bpf = 0;
        i = b + 1;
    }
    if (!waited && (flags & ENTER_GETEVENTS) && min_complete)
        sys_enter(r->fd, 0, (uint32_t)min_complete, (uint32_t)flags);
    if (w.orig_tail != w.pos)
        __atomic_store_n(r->sq_tail, w.orig_tail, __ATOMIC_RELEASE);
    ret = (long)(uint32_t)(w.pos - w.head);
    goto out;
abort:
    wabort_cancel(&w);
    {
        uint32_t consumed = w.pos - w.head;
        ret = consumed ? (long)consumed : ret;
    }
out:
    free(w.it);
    free(batch);
    free(skip);
    free(errs);
    return ret;
}

/* &r->errors: two int64 the Python wrapper reads after each ops_enter (errors, fatal) */
uint64_t ops_ring_status(uint64_t h)
{
    struct ops_ring *r = (void *)(uintptr_t)h;
    return (uint64_t)(uintptr_t)&r->errors;
}
