/* Native pieces of the kbuf design (src/uringbpf/designs/kbuf/).
 *
 * Two things must not run per byte in Python: the copy that "copy mode" does between a
 * request's pages and the server's buffer (the role ublk's driver plays with
 * copy_page_to_iter), and the crc32c that the stripe example's integrity log computes over
 * every write when no BPF engine is available. Both work on raw addresses, so the pages are
 * never turned into Python objects. And the per-op work of the emulated kernel side (the
 * buffer table's nodes and references, the fixed-SQE import, the CQ tokens) must not run
 * per op in Python: see the second half of this file.
 */
#define _GNU_SOURCE          /* process_vm_readv */
#include <stdint.h>
#include <stddef.h>
#include <string.h>

/* Copy n bytes between two native addresses; returns n (the byte count, like a read/write). */
uint64_t kbuf_copy(uint64_t dst, uint64_t src, uint64_t n)
{
    memmove((void *)(uintptr_t)dst, (const void *)(uintptr_t)src, (size_t)n);
    return n;
}

/* crc32c (Castagnoli, reflected polynomial 0x82F63B78), table-driven, 8 bytes per step
 * ("slicing by 8"). Tables are built on first use. */
static uint32_t crc_tab[8][256];
static int crc_ready;

static void crc_init(void)
{
    for (uint32_t i = 0; i < 256; i++) {
        uint32_t c = i;
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0x82F63B78u & (0u - (c & 1u)));
        crc_tab[0][i] = c;
    }
    for (uint32_t i = 0; i < 256; i++)
        for (int t = 1; t < 8; t++)
            crc_tab[t][i] = (crc_tab[t - 1][i] >> 8) ^ crc_tab[0][crc_tab[t - 1][i] & 0xff];
    crc_ready = 1;
}

/* Continue a crc32c: pass 0 to start; the result is already finalised (xor-out applied). */
uint32_t kbuf_crc32c(uint32_t crc, uint64_t addr, uint64_t n)
{
    const uint8_t *p = (const uint8_t *)(uintptr_t)addr;
    if (!crc_ready)
        crc_init();
    crc = ~crc;
    while (n && ((uintptr_t)p & 7)) {
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
        n--;
    }
    while (n >= 8) {
        uint64_t v;
        memcpy(&v, p, 8);
        v ^= crc;
        crc = crc_tab[7][v & 0xff] ^ crc_tab[6][(v >> 8) & 0xff] ^
              crc_tab[5][(v >> 16) & 0xff] ^ crc_tab[4][(v >> 24) & 0xff] ^
              crc_tab[3][(v >> 32) & 0xff] ^ crc_tab[2][(v >> 40) & 0xff] ^
              crc_tab[1][(v >> 48) & 0xff] ^ crc_tab[0][(v >> 56) & 0xff];
        p += 8;
        n -= 8;
    }
    while (n--)
        crc = (crc >> 8) ^ crc_tab[0][(crc ^ *p++) & 0xff];
    return ~crc;
}

/* ---------------------------------------------------------------------------------------
 * The emulated kernel side of kernel buffers, per batch instead of per op (#17).
 *
 * What the kernel does in C for a fixed-buffer op on a kernel buffer (io_find_buf_node,
 * io_import_fixed / io_import_reg_vec, the node reference held until the request is freed)
 * was Python per SQE and per CQE here, which is why zero copy cost more CPU than the copy
 * it saves. A `struct kb_ctx` holds, per buffer table: the node pool (address, length,
 * direction, references), each slot's node, and the tokens of ops whose CQE must be
 * post-processed. The Python table (table.py) stays the owner of registration and of the
 * release callbacks; it mirrors every slot change here (kb_slot_set) and asks this code for
 * references (kb_node_get/put), so there is one reference count, this one.
 *
 * Python calls these through ctypes.PyDLL: the GIL stays held, so a call is atomic with
 * respect to the other Python threads (the block-layer thread registers buffers too).
 * --------------------------------------------------------------------------------------- */
#include <stdlib.h>
#include <errno.h>
#include <sys/uio.h>
#include <unistd.h>
#include "uring_entries.h"
#include "sqe.h"

#define KB_OP_NOP 0
#define KB_OP_READ_FIXED 4
#define KB_OP_WRITE_FIXED 5
#define KB_OP_URING_CMD 46
#define KB_OP_READV_FIXED 60
#define KB_OP_WRITEV_FIXED 61
#define KB_SQE_FIXED_FILE 1u
#define KB_SQE_IO_DRAIN 2u
#define KB_SQE_IO_LINK 4u
#define KB_SQE_IO_HARDLINK 8u
#define KB_SQE_ASYNC 16u
#define KB_SQE_CQE_SKIP_SUCCESS 64u
#define KB_NOP_KEEP (KB_SQE_IO_LINK | KB_SQE_IO_HARDLINK | KB_SQE_IO_DRAIN | KB_SQE_ASYNC | \
                     KB_SQE_CQE_SKIP_SUCCESS)
#define KB_DIR_DEST 1u
#define KB_DIR_SOURCE 2u
#define KB_TOKEN_BASE (0xFFFFull << 48)
#define KB_MAX_IOV 1024
#define KB_MAX_DIVERT 16

/* slot kinds as the submit path sees them */
#define KB_SLOT_PLAIN 0     /* empty and unpinned, or a user buffer: the kernel handles it */
#define KB_SLOT_KERNEL 1    /* a kernel (request) buffer: import here */
#define KB_SLOT_STALE 2     /* empty here but still pinned in the kernel's table: -EFAULT */

struct kb_iov { uint64_t base, len; };

/* A node id is its pool index | generation << 24 (a 32-bit generation, so ids do not
 * repeat in practice): a stale id (a node released and its index reused) is refused instead
 * of touching the new node's count. */
struct kb_node { uint64_t addr, len; uint32_t dir, used, gen, pad; int64_t refs; };
#define KB_NID_INDEX(id) ((uint32_t)((uint64_t)(id) & 0xFFFFFFu))
struct kb_pend {
    uint64_t user_data;
    int64_t nid;              /* node referenced until the CQE, or -1 */
    uint8_t skip, deferred, used, pad;
    struct kb_iov *iov;       /* translated iovecs of a vectored op (the kernel reads them) */
};

struct kb_ctx {
    uint32_t nr_slots;
    int64_t *slot_node;
    uint8_t *slot_kind;
    struct kb_node *nodes;
    uint32_t nr_nodes, cap_nodes;
    int32_t *free_nodes;
    uint32_t nr_free_nodes;
    struct kb_pend *pends;
    uint32_t cap_pends, nr_free_pends, inflight;
    int32_t *free_pends;
    /* the ring (kb_ring_attach) */
    uint8_t *sqes;
    uint32_t *sq_array;
    uint32_t sq_mask;
    uint32_t *cq_head, *cq_tail;
    uint32_t cq_mask;
    struct uringbpf_cqe *cqes;
    int32_t divert[KB_MAX_DIVERT];
    uint32_t nr_divert;
    uint64_t stat_import, stat_refused;
};

void kb_ctx_free(struct kb_ctx *c)
{
    if (!c)
        return;
    for (uint32_t i = 0; i < c->cap_pends; i++)
        free(c->pends[i].iov);
    free(c->slot_node); free(c->slot_kind); free(c->nodes); free(c->free_nodes);
    free(c->pends); free(c->free_pends);
    free(c);
}

struct kb_ctx *kb_ctx_new(uint32_t nr_slots)
{
    struct kb_ctx *c = calloc(1, sizeof(*c));
    if (!c)
        return NULL;
    c->nr_slots = nr_slots;
    c->slot_node = malloc(sizeof(int64_t) * (nr_slots ? nr_slots : 1));
    c->slot_kind = calloc(nr_slots ? nr_slots : 1, 1);
    if (!c->slot_node || !c->slot_kind) {
        kb_ctx_free(c);
        return NULL;
    }
    for (uint32_t i = 0; i < nr_slots; i++)
        c->slot_node[i] = -1;
    return c;
}

/* A new node with one reference (the table's): its id, or -1 when out of memory. */
int64_t kb_node_new(struct kb_ctx *c, uint64_t addr, uint64_t len, uint32_t dir)
{
    int32_t id;
    if (c->nr_free_nodes) {
        id = c->free_nodes[--c->nr_free_nodes];
    } else {
        if (c->nr_nodes == c->cap_nodes) {
            uint32_t cap = c->cap_nodes ? 2 * c->cap_nodes : 64;
            struct kb_node *n = realloc(c->nodes, cap * sizeof(*n));
            if (!n)
                return -1;
            c->nodes = n;
            int32_t *f = realloc(c->free_nodes, cap * sizeof(*f));
            if (!f)
                return -1;
            c->free_nodes = f;
            c->cap_nodes = cap;
        }
        id = (int32_t)c->nr_nodes++;
        c->nodes[id].gen = 0;
    }
    if ((uint32_t)id > 0xFFFFFFu)
        return -1;
    uint32_t gen = (c->nodes[id].gen + 1) & 0x7FFFFFFFu;
    c->nodes[id] = (struct kb_node){ addr, len, dir, 1, gen, 0, 1 };
    return (int64_t)id | (int64_t)gen << 24;
}

static int kb_node_ok(struct kb_ctx *c, int64_t id)
{
    uint32_t i = KB_NID_INDEX(id);
    return id >= 0 && i < c->nr_nodes && c->nodes[i].used &&
           c->nodes[i].gen == (uint64_t)id >> 24;
}

int64_t kb_node_refs(struct kb_ctx *c, int64_t id)
{
    return kb_node_ok(c, id) ? c->nodes[KB_NID_INDEX(id)].refs : -1;
}

int64_t kb_node_get(struct kb_ctx *c, int64_t id)
{
    if (!kb_node_ok(c, id))
        return -1;
    return ++c->nodes[KB_NID_INDEX(id)].refs;
}

/* Drop a reference; at zero the node is freed and 0 returned (the caller runs release). */
int64_t kb_node_put(struct kb_ctx *c, int64_t id)
{
    if (!kb_node_ok(c, id))
        return -1;
    uint32_t i = KB_NID_INDEX(id);
    int64_t r = --c->nodes[i].refs;
    if (r == 0) {
        c->nodes[i].used = 0;
        c->free_nodes[c->nr_free_nodes++] = (int32_t)i;
    }
    return r;
}

/* Mirror of a slot of the Python table: its kernel node (or -1) and kind. */
int kb_slot_set(struct kb_ctx *c, uint32_t index, int64_t nid, uint32_t kind)
{
    if (index >= c->nr_slots)
        return -EINVAL;
    c->slot_node[index] = nid;
    c->slot_kind[index] = (uint8_t)kind;
    return 0;
}

int kb_ring_attach(struct kb_ctx *c, uint64_t sqes, uint64_t sq_array, uint32_t sq_mask,
                   uint64_t cq_head, uint64_t cq_tail, uint32_t cq_mask, uint64_t cqes)
{
    c->sqes = (uint8_t *)(uintptr_t)sqes;
    c->sq_array = (uint32_t *)(uintptr_t)sq_array;
    c->sq_mask = sq_mask;
    c->cq_head = (uint32_t *)(uintptr_t)cq_head;
    c->cq_tail = (uint32_t *)(uintptr_t)cq_tail;
    c->cq_mask = cq_mask;
    c->cqes = (struct uringbpf_cqe *)(uintptr_t)cqes;
    return 0;
}

/* URING_CMD SQEs on this fd go to Python (the request source's command channel). */
int kb_divert_add(struct kb_ctx *c, int32_t fd)
{
    for (uint32_t i = 0; i < c->nr_divert; i++)
        if (c->divert[i] == fd)
            return 0;
    if (c->nr_divert == KB_MAX_DIVERT)
        return -ENOSPC;
    c->divert[c->nr_divert++] = fd;
    return 0;
}

void kb_divert_clear(struct kb_ctx *c) { c->nr_divert = 0; }

/* A token whose CQE kb_reap post-processes: TOKEN_BASE | index, or 0 when out of memory. */
uint64_t kb_pend_new(struct kb_ctx *c, uint64_t user_data, int64_t nid, uint32_t skip,
                     uint32_t deferred)
{
    int32_t id;
    if (!c->nr_free_pends) {
        uint32_t old = c->cap_pends, cap = old ? 2 * old : 64;
        struct kb_pend *p = realloc(c->pends, cap * sizeof(*p));
        if (!p)
            return 0;
        c->pends = p;
        int32_t *f = realloc(c->free_pends, cap * sizeof(*f));
        if (!f)
            return 0;
        c->free_pends = f;
        memset(p + old, 0, (cap - old) * sizeof(*p));
        for (uint32_t i = cap; i > old; i--)
            f[c->nr_free_pends++] = (int32_t)(i - 1);
        c->cap_pends = cap;
    }
    id = c->free_pends[--c->nr_free_pends];
    struct kb_pend *p = &c->pends[id];
    p->user_data = user_data;
    p->nid = nid;
    p->skip = (uint8_t)skip;
    p->deferred = (uint8_t)deferred;
    p->used = 1;
    if (nid >= 0)
        c->inflight++;
    return KB_TOKEN_BASE | (uint64_t)id;
}

static void kb_pend_free(struct kb_ctx *c, uint32_t id)
{
    struct kb_pend *p = &c->pends[id];
    p->used = 0;
    if (p->nid >= 0)
        c->inflight--;
    p->nid = -1;
    free(p->iov);
    p->iov = NULL;
    c->free_pends[c->nr_free_pends++] = (int32_t)id;
}

uint32_t kb_inflight(struct kb_ctx *c) { return c->inflight; }

/* io_import_fixed's checks on a kernel node: the address, or -EFAULT. No reference taken. */
static int64_t kb_check(struct kb_node *n, uint64_t off, uint64_t len, uint32_t ddir)
{
    if (len > n->len || off > n->len - len || !(n->dir & ddir))
        return -EFAULT;
    return (int64_t)(n->addr + off);
}

/* Rewrite an SQE as a NOP completing with res (0 gives a plain NOP's result), keeping the
 * given flags' link/drain/skip bits and user_data: the shared deny of native/sqe.h. */
static void kb_to_nop(struct uringbpf_sqe *s, int32_t res, uint32_t flags, uint64_t user_data)
{
    s->flags = (uint8_t)flags;
    s->user_data = user_data;
    uringbpf_deny_sqe((uint8_t *)s, sizeof(*s), res, (uint8_t)KB_NOP_KEEP);
}

/* Import one fixed op on a kernel buffer; returns 0 or -errno (the SQE untouched then). */
static int kb_import(struct kb_ctx *c, struct uringbpf_sqe *s, uint32_t ddir, int vectored)
{
    uint32_t index = s->buf_index;
    int kernel = c->slot_kind[index] == KB_SLOT_KERNEL && kb_node_ok(c, c->slot_node[index]);
    int64_t nid = kernel ? c->slot_node[index] : -1;
    struct kb_node *n = kernel ? &c->nodes[KB_NID_INDEX(nid)] : NULL;
    struct kb_iov *iov = NULL;
    uint64_t addr;
    if (vectored) {
        /* io_import_reg_vec's order: the iovec count, the copy of the iovecs, then each
         * range against the node (an empty slot fails the first one: -EFAULT) */
        uint32_t nr = s->len;
        if (nr == 0 || nr > KB_MAX_IOV)
            return -EINVAL;
        iov = malloc(nr * sizeof(*iov));
        if (!iov)
            return -ENOMEM;
        /* copy_from_user: a wild iovec pointer is -EFAULT, never a crash */
        struct iovec loc = { iov, nr * sizeof(*iov) }, rem = { (void *)(uintptr_t)s->addr,
                                                              nr * sizeof(*iov) };
        if (!s->addr || process_vm_readv(getpid(), &loc, 1, &rem, 1, 0) !=
                (ssize_t)(nr * sizeof(*iov))) {
            free(iov);
            return -EFAULT;
        }
        for (uint32_t i = 0; i < nr; i++) {
            int64_t a = n ? kb_check(n, iov[i].base, iov[i].len, ddir) : -EFAULT;
            if (a < 0) {
                free(iov);
                return (int)a;
            }
            iov[i].base = (uint64_t)a;
        }
        addr = (uint64_t)(uintptr_t)iov;
    } else {
        int64_t a = n ? kb_check(n, s->addr, s->len, ddir) : -EFAULT;
        if (a < 0)
            return (int)a;
        addr = (uint64_t)a;
    }
    uint64_t token = kb_pend_new(c, s->user_data, nid, !!(s->flags & KB_SQE_CQE_SKIP_SUCCESS), 0);
    if (!token) {
        free(iov);
        return -ENOMEM;
    }
    n->refs++;                                   /* held until the CQE */
    c->pends[token & 0xFFFFFFFFu].iov = iov;
    s->addr = addr;
    s->flags &= (uint8_t)~KB_SQE_CQE_SKIP_SUCCESS;   /* the token's CQE must come back */
    s->user_data = token;
    return 0;
}

/* The submit path over SQ positions [from, to): publish each in the SQ array and apply the
 * kernel-buffer rules to fixed ops. Stops at a URING_CMD for a diverted fd (Python's) and
 * returns its position; returns `to` when done. */
uint32_t kb_scan(struct kb_ctx *c, uint32_t from, uint32_t to)
{
    for (uint32_t pos = from; pos != to; pos++) {
        uint32_t idx = pos & c->sq_mask;
        struct uringbpf_sqe *s = (struct uringbpf_sqe *)(c->sqes + (size_t)idx * 64);
        c->sq_array[idx] = idx;
        uint32_t ddir;
        switch (s->opcode) {
        case KB_OP_URING_CMD:
            if (!(s->flags & KB_SQE_FIXED_FILE))
                for (uint32_t i = 0; i < c->nr_divert; i++)
                    if (c->divert[i] == s->fd)
                        return pos;
            continue;
        case KB_OP_READ_FIXED: case KB_OP_READV_FIXED: ddir = KB_DIR_DEST; break;
        case KB_OP_WRITE_FIXED: case KB_OP_WRITEV_FIXED: ddir = KB_DIR_SOURCE; break;
        default: continue;
        }
        if (s->buf_index >= c->nr_slots || c->slot_kind[s->buf_index] == KB_SLOT_PLAIN)
            continue;
        uint32_t flags = s->flags;
        uint64_t ud = s->user_data;
        int err = kb_import(c, s, ddir, s->opcode >= KB_OP_READV_FIXED);
        if (err) {
            c->stat_refused++;
            kb_to_nop(s, err, flags, ud);
        } else {
            c->stat_import++;
        }
    }
    return to;
}

uint64_t kb_stat(struct kb_ctx *c, uint32_t which)
{
    return which == 0 ? c->stat_import : c->stat_refused;
}

/* Record kinds kb_reap writes, 5 int64 each: kind, user_data, res, flags, value. */
#define KB_REC_CQE 0        /* a completion for the application */
#define KB_REC_DEFERRED 1   /* value = token: Python runs the deferred command; flags' bit
                             * 32 set when the SQE had CQE_SKIP_SUCCESS */
#define KB_REC_RELEASE 2    /* value = node id whose last reference went: run its release */

/* Reap the CQ: tokens of imported ops drop their node reference and get the application's
 * user_data back (a success of a CQE_SKIP_SUCCESS op is dropped). Returns the number of
 * records written (at most max - 1 CQEs are consumed, so a release record always fits). */
int32_t kb_reap(struct kb_ctx *c, int64_t *out, int32_t max)
{
    uint32_t head = *c->cq_head;
    uint32_t tail = __atomic_load_n(c->cq_tail, __ATOMIC_ACQUIRE);
    int32_t n = 0;
    while (head != tail && n + 2 <= max) {
        struct uringbpf_cqe *q = &c->cqes[head & c->cq_mask];
        uint64_t ud = q->user_data;
        int64_t res = q->res;
        uint64_t flags = q->flags;
        head++;
        int64_t *r = out + 5 * n;
        if (ud >= KB_TOKEN_BASE && (ud & 0xFFFFFFFFFFFFull) < c->cap_pends &&
                c->pends[ud & 0xFFFFFFFFFFFFull].used) {
            uint32_t id = (uint32_t)(ud & 0xFFFFFFFFFFFFull);
            struct kb_pend *p = &c->pends[id];
            if (p->deferred) {
                r[0] = KB_REC_DEFERRED; r[1] = (int64_t)p->user_data; r[2] = res;
                r[3] = (int64_t)(flags | ((uint64_t)p->skip << 32)); r[4] = (int64_t)ud;
                n++;
                kb_pend_free(c, id);
                continue;
            }
            int64_t nid = p->nid;
            uint64_t app = p->user_data;
            int skip = p->skip;
            kb_pend_free(c, id);
            if (nid >= 0 && kb_node_put(c, nid) == 0) {
                r[0] = KB_REC_RELEASE; r[1] = 0; r[2] = 0; r[3] = 0; r[4] = nid;
                n++;
                r += 5;
            }
            if (skip && res >= 0)
                continue;
            ud = app;
        }
        r[0] = KB_REC_CQE; r[1] = (int64_t)ud; r[2] = res; r[3] = (int64_t)flags; r[4] = 0;
        n++;
    }
    __atomic_store_n(c->cq_head, head, __ATOMIC_RELEASE);
    return n;
}

/* Ring teardown: forget every pending token, dropping the node references of in-flight
 * ops; writes the ids of nodes whose last reference went (at most max) and returns how many. */
int32_t kb_pend_drain(struct kb_ctx *c, int64_t *released, int32_t max)
{
    int32_t n = 0;
    for (uint32_t i = 0; i < c->cap_pends; i++) {
        if (!c->pends[i].used)
            continue;
        int64_t nid = c->pends[i].nid;
        kb_pend_free(c, i);
        if (nid >= 0 && kb_node_put(c, nid) == 0 && n < max)
            released[n++] = nid;
    }
    return n;
}

/* The SQE at SQ position pos becomes a NOP completing with res (0: plain NOP) with the
 * given flags (only the link/drain/skip ones kept) and user_data: deny_sqe in one call. */
void kb_nop(struct kb_ctx *c, uint32_t pos, int32_t res, uint32_t flags, uint64_t user_data)
{
    kb_to_nop((struct uringbpf_sqe *)(c->sqes + (size_t)(pos & c->sq_mask) * 64), res, flags,
              user_data);
}

/* Registration and unregistration of a kernel buffer in one call each (the Python table
 * has checked the index and the slot): a node with the table's reference in slot `index`;
 * kb_slot_drop empties the slot (kind: PLAIN, or STALE while the kernel's slot is still
 * pinned) and drops the table's reference, returning the references left (0: release). */
int64_t kb_slot_install(struct kb_ctx *c, uint32_t index, uint64_t addr, uint64_t len,
                        uint32_t dir)
{
    if (index >= c->nr_slots)
        return -1;
    int64_t nid = kb_node_new(c, addr, len, dir);
    if (nid >= 0) {
        c->slot_node[index] = nid;
        c->slot_kind[index] = KB_SLOT_KERNEL;
    }
    return nid;
}

int64_t kb_slot_drop(struct kb_ctx *c, uint32_t index, uint32_t kind, int64_t nid)
{
    if (index >= c->nr_slots)
        return -1;
    c->slot_node[index] = -1;
    c->slot_kind[index] = (uint8_t)kind;
    return kb_node_put(c, nid);
}
