/*
 * The native engine of the 2021 "io_uring BPF requests" RFC (designs/requests.py).
 *
 * Same semantics as the Python engine, for rings whose programs are native code (JIT):
 * once the application enters, draining the kernel CQ, routing CQEs to their CQs,
 * waking parked requests, running programs and the helpers they call (queue SQE, emit
 * and reap CQEs) are all C: no Python runs per CQE.  Python keeps the SQE filter of the
 * application's submit path (it calls rq_filter() here), the registration, and the
 * decision of when to pump and when to block in io_uring_enter.
 *
 * Memory: the CQs are Python buffers laid out like the kernel CQ ring (we get their
 * addresses); requests live in one pool whose address Python adds to each program's
 * allowed regions, so the ctx pointer a program gets is valid in checked mode too.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include "guard.h"
#include "sqe.h"
#include <sys/uio.h>
#include <time.h>
#include <unistd.h>

#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif

#define RQ_OP_NOP 0
#define RQ_OP_READ 22
#define RQ_OP_BPF 66
#define RQ_OP_BPF_GATE 67
#define RQ_MAX_SLOTS 100
#define RQ_POOL 4096
#define RQ_TOKEN_BASE 0xB9F5000000000000ULL
#define RQ_TOKEN_MASK 0x0000FFFFFFFFFFFFULL
#define RQ_CQE_F_MORE (1u << 1)

#define SQE_FIXED_FILE (1u << 0)
#define SQE_IO_DRAIN (1u << 1)
#define SQE_IO_LINK (1u << 2)
#define SQE_IO_HARDLINK (1u << 3)
#define SQE_BUFFER_SELECT (1u << 5)
#define SQE_CQE_SKIP_SUCCESS (1u << 6)
#define SQE_LINK_FLAGS (SQE_IO_LINK | SQE_IO_HARDLINK | SQE_IO_DRAIN)
#define SETUP_IOPOLL 1u
#define SETUP_SQPOLL 2u

enum { ST_FREE = 0, ST_PENDING, ST_READY, ST_PARKED, ST_RUNNING };
enum { TAG_ROUTE = 1, TAG_BPF = 2, TAG_GATE = 3 };

struct rq_engine;

/* What a program's r1 points at: the RFC's io_uring_bpf_ctx, then our own fields. */
struct rq_req {
	uint64_t user_data; /* ctx->user_data */
	uint32_t wait_nr;   /* ctx->wait_nr */
	uint32_t wait_idx;  /* ctx->wait_idx */
	struct rq_engine *eng;
	uint64_t orig_user_data;
	uint32_t state;
	uint32_t cq_idx;
	int32_t slot;
	int32_t error;
	uint32_t skip_success;
	uint32_t want_nr, want_idx;
	uint32_t runs;
	int32_t next; /* queue / free-list link */
	uint64_t token; /* of the placeholder NOP while ST_PENDING before its CQE */
	int32_t gate_w; /* write end of the gate pipe holding linked successors, or -1 */
};

struct rq_cq {
	uint32_t *head, *tail, *overflow;
	uint8_t *cqes;
	uint32_t mask, entries;
	int keep_overflow;
	uint8_t *backlog; /* CQ 0's overflow list: a FIFO of CQEs */
	uint32_t bl_head, bl_count, bl_cap;
};

struct rq_tag {
	uint64_t token;    /* 0: empty, 1: deleted */
	uint64_t user_data;
	uint32_t cq_idx;
	int32_t req;
	uint32_t kind;
	int32_t fd;  /* TAG_GATE: the pipe's read end */
	void *buf;   /* TAG_GATE: what the READ fills */
};

struct rq_slot {
	uint64_t entry; /* uint64_t (*)(uint64_t ctx, ...) or 0 */
	uint64_t error_word; /* JIT error word address, or 0 */
	int sleepable;
};

struct rq_engine {
	int fd;
	uint32_t setup_flags;
	uint32_t cqe_size;
	/* kernel CQ */
	uint32_t *k_head, *k_tail;
	uint8_t *k_cqes;
	uint32_t k_mask;
	uint32_t k_seen; /* drained up to here (the head moves when Python says so) */
	/* kernel SQ, for iouring_queue_sqe */
	uint32_t *sq_head, *sq_tail, *sq_array;
	uint8_t *sqes;
	uint32_t sq_mask, sq_entries, sqe_size;
	uint32_t sq_queued; /* SQEs we put at the kernel tail since the last sync */
	uint32_t sq_unsubmitted; /* of those, not yet handed to io_uring_enter */
	/* CQs */
	uint32_t nr_cqs;
	struct rq_cq *cqs;
	/* programs */
	uint32_t nr_slots;
	int registered;
	struct rq_slot slots[RQ_MAX_SLOTS];
	/* requests */
	struct rq_req *pool;
	int32_t free_head;
	int32_t ready_head, ready_tail;
	int32_t parked_head;
	uint32_t live;
	int serialize;
	int32_t active; /* serialised: the request between first run and completion, or -1 */
	int32_t gate_for; /* the linked BPF SQE just filtered, whose gate may follow, or -1 */
	int32_t serial_head, serial_tail;
	/* tokens */
	struct rq_tag *tags;
	uint32_t tag_cap, tag_used, tag_fill;
	uint64_t next_token;
	int closed;
	int pumping;
	int32_t faulted_slot; /* last program whose error word was set, or -1 */
	uint64_t py_submit;   /* int64_t (*)(uint64_t sqe): the ring has other SQE filters */
	volatile uint32_t *stop; /* set by Python when a Ctrl-C was caught inside a callback */
	/* set by rq_request_close from a thread closing the ring while another one waits in
	 * rq_wait: the wait ends (-ECANCELED) within one wait slice, before anything is freed */
	uint32_t closing;
	uint64_t stats[6];    /* runs, completed, cancelled, kernel_cqes, faults, dropped */
};

static inline uint32_t ld(const uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void st(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* ------------------------------------------------------------------ CQs */
static int cq_post(struct rq_cq *cq, uint32_t cqe_size, const uint8_t *cqe)
{
	uint32_t tail = *cq->tail;

	if (cq->bl_count || tail - ld(cq->head) >= cq->entries) {
		if (!cq->keep_overflow) {
			st(cq->overflow, *cq->overflow + 1);
			return -ENOMEM;
		}
		if (cq->bl_count == cq->bl_cap) {
			uint32_t cap = cq->bl_cap ? cq->bl_cap * 2 : 64, i;
			uint8_t *nb = malloc((size_t)cap * cqe_size);
			if (!nb)
				return -ENOMEM;
			for (i = 0; i < cq->bl_count; i++)
				memcpy(nb + (size_t)i * cqe_size,
				       cq->backlog + (size_t)((cq->bl_head + i) % cq->bl_cap) * cqe_size,
				       cqe_size);
			free(cq->backlog);
			cq->backlog = nb;
			cq->bl_cap = cap;
			cq->bl_head = 0;
		}
		memcpy(cq->backlog + (size_t)((cq->bl_head + cq->bl_count) % cq->bl_cap) * cqe_size,
		       cqe, cqe_size);
		cq->bl_count++;
		return 0;
	}
	memcpy(cq->cqes + (size_t)(tail & cq->mask) * cqe_size, cqe, cqe_size);
	st(cq->tail, tail + 1);
	return 0;
}

static void cq_flush(struct rq_cq *cq, uint32_t cqe_size)
{
	while (cq->bl_count && *cq->tail - ld(cq->head) < cq->entries) {
		uint32_t tail = *cq->tail;
		memcpy(cq->cqes + (size_t)(tail & cq->mask) * cqe_size,
		       cq->backlog + (size_t)cq->bl_head * cqe_size, cqe_size);
		st(cq->tail, tail + 1);
		cq->bl_head = (cq->bl_head + 1) % cq->bl_cap;
		cq->bl_count--;
	}
}

static int post3(struct rq_engine *e, uint32_t idx, uint64_t ud, int32_t res, uint32_t flags)
{
	uint8_t cqe[32] = {0};

	memcpy(cqe, &ud, 8);
	memcpy(cqe + 8, &res, 4);
	memcpy(cqe + 12, &flags, 4);
	return cq_post(&e->cqs[idx], e->cqe_size, cqe);
}

static inline uint32_t cq_ready(const struct rq_cq *cq) { return ld(cq->tail) - ld(cq->head); }

/* ------------------------------------------------------------------ tokens */
static uint32_t tag_hash(uint64_t token, uint32_t cap) { return (uint32_t)((token * 0x9E3779B97F4A7C15ULL) >> 32) & (cap - 1); }

static struct rq_tag *tag_find(struct rq_engine *e, uint64_t token)
{
	uint32_t i = tag_hash(token, e->tag_cap), n;

	for (n = 0; n < e->tag_cap; n++, i = (i + 1) & (e->tag_cap - 1)) {
		struct rq_tag *t = &e->tags[i];
		if (t->token == token)
			return t;
		if (t->token == 0)
			return NULL;
	}
	return NULL;
}

static int tag_grow(struct rq_engine *e)
{
	struct rq_tag *old = e->tags;
	uint32_t oldcap = e->tag_cap, i, cap = oldcap * 2;

	if (e->tag_used * 2 < oldcap)
		cap = oldcap; /* only tombstones: rehash at the same size */
	e->tags = calloc(cap, sizeof(*e->tags));
	if (!e->tags) {
		e->tags = old;
		return -ENOMEM;
	}
	e->tag_cap = cap;
	e->tag_fill = e->tag_used;
	for (i = 0; i < oldcap; i++) {
		if (old[i].token > 1) {
			uint32_t j = tag_hash(old[i].token, cap);
			while (e->tags[j].token)
				j = (j + 1) & (cap - 1);
			e->tags[j] = old[i];
		}
	}
	free(old);
	return 0;
}

static uint64_t tag_add(struct rq_engine *e, uint32_t kind, uint64_t ud, uint32_t cq_idx, int32_t req)
{
	uint64_t token;
	uint32_t i;

	if ((e->tag_fill + 1) * 4 >= e->tag_cap * 3 && tag_grow(e))
		return 0;
	do {
		token = RQ_TOKEN_BASE | (e->next_token++ & RQ_TOKEN_MASK);
	} while (tag_find(e, token));
	i = tag_hash(token, e->tag_cap);
	while (e->tags[i].token > 1)
		i = (i + 1) & (e->tag_cap - 1);
	if (e->tags[i].token == 0)
		e->tag_fill++;
	e->tags[i] = (struct rq_tag){token, ud, cq_idx, req, kind, -1, NULL};
	e->tag_used++;
	return token;
}

static void tag_del(struct rq_engine *e, struct rq_tag *t)
{
	t->token = 1;
	e->tag_used--;
}

/* ------------------------------------------------------------------ requests */
static int32_t req_alloc(struct rq_engine *e)
{
	int32_t i = e->free_head;

	if (i < 0)
		return -1;
	e->free_head = e->pool[i].next;
	memset(&e->pool[i], 0, sizeof(e->pool[i]));
	e->pool[i].eng = e;
	e->pool[i].next = -1;
	e->pool[i].gate_w = -1;
	e->live++;
	return i;
}

static void push_ready(struct rq_engine *e, int32_t i)
{
	e->pool[i].state = ST_READY;
	e->pool[i].next = -1;
	if (e->ready_tail >= 0)
		e->pool[e->ready_tail].next = i;
	else
		e->ready_head = i;
	e->ready_tail = i;
}

static void make_ready(struct rq_engine *e, int32_t i)
{
	if (e->serialize && e->active >= 0 && e->active != i) {
		e->pool[i].state = ST_PENDING;
		e->pool[i].next = -1;
		if (e->serial_tail >= 0)
			e->pool[e->serial_tail].next = i;
		else
			e->serial_head = i;
		e->serial_tail = i;
		return;
	}
	if (e->serialize)
		e->active = i;
	push_ready(e, i);
}

static void unlink_from(struct rq_engine *e, int32_t *head, int32_t *tail, int32_t i)
{
	int32_t prev = -1, cur = *head;

	while (cur >= 0 && cur != i) {
		prev = cur;
		cur = e->pool[cur].next;
	}
	if (cur < 0)
		return;
	if (prev >= 0)
		e->pool[prev].next = e->pool[i].next;
	else
		*head = e->pool[i].next;
	if (tail && *tail == i)
		*tail = prev;
}

static void finish(struct rq_engine *e, int32_t i, int32_t res)
{
	struct rq_req *r = &e->pool[i];

	if (r->state == ST_FREE)
		return;
	if (r->token) { /* its placeholder NOP is still in the kernel: forget it */
		struct rq_tag *t = tag_find(e, r->token);
		if (t && t->req == i)
			t->req = -1; /* its CQE will be dropped when it comes */
		r->token = 0;
	}
	if (r->state == ST_READY)
		unlink_from(e, &e->ready_head, &e->ready_tail, i);
	else if (r->state == ST_PARKED)
		unlink_from(e, &e->parked_head, NULL, i);
	else if (r->state == ST_PENDING)
		unlink_from(e, &e->serial_head, &e->serial_tail, i);
	if (!e->closed && !(r->skip_success && res >= 0))
		post3(e, r->cq_idx, r->orig_user_data, res, 0);
	if (r->gate_w >= 0) { /* 2 bytes: a full read; 1 byte: short, the chain breaks */
		ssize_t w = write(r->gate_w, res >= 0 ? "ok" : "x", res >= 0 ? 2 : 1);
		(void)w;
		close(r->gate_w);
		r->gate_w = -1;
	}
	r->state = ST_FREE;
	r->next = e->free_head;
	e->free_head = i;
	e->live--;
	e->stats[1]++;
	if (e->active == i) {
		e->active = -1;
		if (e->serial_head >= 0) {
			int32_t n = e->serial_head;
			e->serial_head = e->pool[n].next;
			if (e->serial_head < 0)
				e->serial_tail = -1;
			e->active = n;
			push_ready(e, n);
		}
	}
}

/* ------------------------------------------------------------------ submit path */
static int no_cq_idx(uint8_t op, const uint8_t *sqe)
{
	uint64_t attr_mask;

	switch (op) {
	case 46: case 64:          /* URING_CMD, URING_CMD128 */
	case 41: case 42: case 43: case 44: /* FSETXATTR SETXATTR FGETXATTR GETXATTR */
		return 1;
	case 1: case 2: case 4: case 5: case 22: case 23: case 60: case 61: /* read/write family */
		memcpy(&attr_mask, sqe + 56, 8);
		return attr_mask != 0;
	}
	return 0;
}

/* The RFC's io_init_req + io_bpf_prep checks; the SQE becomes a NOP carrying a token. */
static int accept_bpf(struct rq_engine *e, uint8_t *sqe)
{
	uint64_t ud, addr, off, token;
	uint32_t len, op_flags;
	uint16_t idx, ioprio;
	uint8_t flags = sqe[1];
	int32_t err = 0, i;

	e->gate_for = -1;
	memcpy(&ud, sqe + 32, 8);
	memcpy(&idx, sqe + 48, 2);
	memcpy(&ioprio, sqe + 2, 2);
	memcpy(&off, sqe + 8, 8);
	memcpy(&addr, sqe + 16, 8);
	memcpy(&len, sqe + 24, 4);
	memcpy(&op_flags, sqe + 28, 4);
	if (idx >= e->nr_cqs)
		return -EINVAL;
	if (e->setup_flags & (SETUP_IOPOLL | SETUP_SQPOLL))
		err = -EINVAL;
	else if (flags & (SQE_FIXED_FILE | SQE_BUFFER_SELECT))
		err = -EINVAL;
	else if (ioprio || len || op_flags || addr)
		err = -EINVAL;
	else if (!e->registered || off >= e->nr_slots || !e->slots[off].entry)
		err = -EFAULT;
	i = req_alloc(e);
	if (i < 0)
		return -ENOMEM;
	e->pool[i].orig_user_data = ud;
	e->pool[i].cq_idx = idx;
	e->pool[i].slot = err ? -1 : (int32_t)off;
	e->pool[i].error = err;
	e->pool[i].skip_success = !!(flags & SQE_CQE_SKIP_SUCCESS);
	e->pool[i].state = ST_PENDING;
	token = tag_add(e, TAG_BPF, ud, idx, i);
	if (!token) {
		e->pool[i].state = ST_FREE;
		e->pool[i].next = e->free_head;
		e->free_head = i;
		e->live--;
		return -ENOMEM;
	}
	e->pool[i].token = token;
	memset(sqe, 0, 64);
	sqe[0] = RQ_OP_NOP;
	sqe[1] = flags & SQE_LINK_FLAGS;
	*(int32_t *)(sqe + 4) = -1;
	memcpy(sqe + 32, &token, 8);
	e->gate_for = (flags & (SQE_IO_LINK | SQE_IO_HARDLINK)) ? i : -1;
	return 0;
}

/* The gate after a linked BPF SQE: a 2-byte READ of a fresh pipe that finish() writes. */
static int accept_gate(struct rq_engine *e, uint8_t *sqe, int32_t req)
{
	uint64_t ud, token, off = ~0ULL, addr;
	uint32_t len = 2;
	uint8_t flags = sqe[1] & SQE_LINK_FLAGS;
	struct rq_tag *t;
	int fds[2];
	void *buf;

	if (req < 0 || e->pool[req].state == ST_FREE)
		return -EINVAL;
	buf = calloc(1, 8);
	if (!buf)
		return -ENOMEM;
	if (pipe2(fds, O_CLOEXEC)) {
		free(buf);
		return -errno;
	}
	memcpy(&ud, sqe + 32, 8);
	token = tag_add(e, TAG_GATE, ud, 0, req);
	if (!token) {
		close(fds[0]), close(fds[1]), free(buf);
		return -ENOMEM;
	}
	t = tag_find(e, token);
	t->fd = fds[0];
	t->buf = buf;
	e->pool[req].gate_w = fds[1];
	addr = (uint64_t)(uintptr_t)buf;
	memset(sqe, 0, 64);
	sqe[0] = RQ_OP_READ;
	sqe[1] = flags;
	memcpy(sqe + 4, &fds[0], 4);
	memcpy(sqe + 8, &off, 8);
	memcpy(sqe + 16, &addr, 8);
	memcpy(sqe + 24, &len, 4);
	memcpy(sqe + 32, &token, 8);
	return 0;
}

/* Make cancel/remove SQEs find a request whose user_data we replaced by a token; an
 * ASYNC_CANCEL aimed at a started BPF request cancels it and becomes a NOP.  */
static int retarget(struct rq_engine *e, uint8_t op, uint8_t *sqe)
{
	uint64_t target, ud;
	uint32_t cflags, i;

	memcpy(&target, sqe + 16, 8);
	if (op == 14) {
		memcpy(&cflags, sqe + 28, 4);
		if (cflags & (2u | 4u | 32u)) /* CANCEL_FD | CANCEL_ANY | CANCEL_OP */
			return 0;
		for (i = 0; i < RQ_POOL; i++) {
			struct rq_req *r = &e->pool[i];
			/* started: ready, parked, running, or queued behind a serialised one */
			int started = r->state >= ST_READY || (r->state == ST_PENDING && !r->token);
			if (started && r->orig_user_data == target) {
				uint8_t keep = sqe[1] & (SQE_LINK_FLAGS | SQE_CQE_SKIP_SUCCESS);
				finish(e, (int32_t)i, -ECANCELED);
				e->stats[2]++;
				memcpy(&ud, sqe + 32, 8);
				memset(sqe, 0, 64);
				sqe[1] = keep;
				*(int32_t *)(sqe + 4) = -1;
				memcpy(sqe + 32, &ud, 8);
				return 1;
			}
		}
	}
	for (i = 0; i < e->tag_cap; i++) {
		struct rq_tag *t = &e->tags[i];
		if (t->token > 1 && t->kind == TAG_ROUTE && t->user_data == target) {
			memcpy(sqe + 16, &t->token, 8);
			break;
		}
	}
	return 0;
}

int rq_filter(struct rq_engine *e, uint64_t sqe_addr)
{
	uint8_t *sqe = (uint8_t *)(uintptr_t)sqe_addr;
	uint8_t op = sqe[0];
	uint16_t idx;
	uint64_t ud, token;

	int32_t gate_for;

	if (e->closed)
		return 0;
	if (op == RQ_OP_BPF)
		return accept_bpf(e, sqe);
	gate_for = e->gate_for;
	e->gate_for = -1;
	if (op == RQ_OP_BPF_GATE)
		return accept_gate(e, sqe, gate_for);
	if ((op == 14 || op == 12 || op == 7) && retarget(e, op, sqe))
		return 0;
	if (no_cq_idx(op, sqe))
		return 0;
	memcpy(&idx, sqe + 48, 2);
	if (!idx)
		return 0;
	memset(sqe + 48, 0, 2);
	if (idx >= e->nr_cqs)
		return -EINVAL;
	memcpy(&ud, sqe + 32, 8);
	token = tag_add(e, TAG_ROUTE, ud, idx, -1);
	if (!token)
		return -ENOMEM;
	memcpy(sqe + 32, &token, 8);
	return 0;
}

/* ------------------------------------------------------------------ completion path */
static uint32_t drain_kernel(struct rq_engine *e)
{
	uint32_t tail = ld(e->k_tail), n = 0;

	while (e->k_seen != tail) {
		uint8_t *cqe = e->k_cqes + (size_t)(e->k_seen & e->k_mask) * e->cqe_size;
		uint64_t ud;
		int32_t res;
		uint32_t flags;
		struct rq_tag *t;

		memcpy(&ud, cqe, 8);
		memcpy(&res, cqe + 8, 4);
		memcpy(&flags, cqe + 12, 4);
		t = (ud & ~RQ_TOKEN_MASK) == RQ_TOKEN_BASE ? tag_find(e, ud) : NULL;
		if (!t) {
			cq_post(&e->cqs[0], e->cqe_size, cqe);
		} else {
			uint32_t kind = t->kind, cq_idx = t->cq_idx;
			int32_t req = t->req;
			memcpy(cqe, &t->user_data, 8); /* the ring's keep-alive bookkeeping sees it */
			if (kind == TAG_ROUTE) {
				if (!(flags & RQ_CQE_F_MORE))
					tag_del(e, t);
				if (cq_post(&e->cqs[cq_idx], e->cqe_size, cqe))
					e->stats[5]++;
			} else if (kind == TAG_GATE) { /* never seen by the application */
				close(t->fd);
				free(t->buf);
				tag_del(e, t);
			} else {
				struct rq_req *r = req >= 0 ? &e->pool[req] : NULL;
				tag_del(e, t);
				if (r)
					r->token = 0;
				if (r && r->state == ST_PENDING) {
					if (res < 0)
						finish(e, req, res);
					else if (r->error)
						finish(e, req, r->error);
					else
						make_ready(e, req);
				}
			}
		}
		e->k_seen++;
		n++;
	}
	e->stats[3] += n;
	return n;
}

static void wake_parked(struct rq_engine *e)
{
	int32_t prev = -1, i = e->parked_head;

	while (i >= 0) {
		struct rq_req *r = &e->pool[i];
		int32_t next = r->next;
		if (cq_ready(&e->cqs[r->want_idx]) >= r->want_nr) {
			if (prev >= 0)
				e->pool[prev].next = next;
			else
				e->parked_head = next;
			push_ready(e, i);
		} else {
			prev = i;
		}
		i = next;
	}
}

/* Hand the SQEs programs queued during a run to the kernel in one io_uring_enter.  A
 * program cannot tell the difference from one enter per SQE: CQEs reach the CQs it
 * reads only between runs.  SQEs the kernel does not take stay queued for the next. */
static void flush_sq(struct rq_engine *e)
{
	uint32_t n = e->sq_unsubmitted;
	long ret;

	if (!n)
		return;
	ret = syscall(__NR_io_uring_enter, e->fd, n, 0, 0, NULL, 0);
	if (ret > 0)
		e->sq_unsubmitted -= (uint32_t)ret < n ? (uint32_t)ret : n;
}

typedef uint64_t (*rq_prog_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);

static void run_one(struct rq_engine *e, int32_t i)
{
	struct rq_req *r = &e->pool[i];
	struct rq_slot *s = &e->slots[r->slot];
	uint64_t *err = (uint64_t *)(uintptr_t)s->error_word;

	r->user_data = r->orig_user_data; /* a fresh context for every run */
	r->wait_nr = 0;
	r->wait_idx = 0;
	r->state = ST_RUNNING;
	r->runs++;
	e->stats[0]++;
	if (err)
		*err = 0;
	((rq_prog_fn)(uintptr_t)s->entry)((uint64_t)(uintptr_t)r, 0, 0, 0, 0);
	flush_sq(e);
	if (r->state != ST_RUNNING) /* cancelled from inside */
		return;
	if (e->stop && *e->stop) { /* Ctrl-C inside the run: not lost, it runs again */
		r->state = ST_READY;
		r->next = e->ready_head;
		e->ready_head = i;
		if (e->ready_tail < 0)
			e->ready_tail = i;
		return;
	}
	if (err && *err) {
		e->faulted_slot = r->slot;
		e->stats[4]++;
		finish(e, i, -EFAULT);
		return;
	}
	if (!r->wait_nr) {
		finish(e, i, 0);
	} else if (r->wait_idx >= e->nr_cqs) {
		finish(e, i, -EINVAL);
	} else {
		r->want_nr = r->wait_nr;
		r->want_idx = r->wait_idx;
		int32_t *link = &e->parked_head; /* FIFO, so wake-ups go in parking order */
		while (*link >= 0)
			link = &e->pool[*link].next;
		r->state = ST_PARKED;
		r->next = -1;
		*link = i;
	}
}

/* Drain, wake, run at most `budget` programs.  Returns the number of runs, or -1 when a
 * program faulted (rq_faulted_slot() says which; its request completed with -EFAULT). */
int rq_pump(struct rq_engine *e, uint32_t budget, int advance_head)
{
	uint32_t runs = 0;
	int faulted = 0;

	if (e->closed || e->pumping)
		return 0;
	e->pumping = 1;
	e->faulted_slot = -1;
	for (;;) {
		drain_kernel(e);
		if (advance_head)
			st(e->k_head, e->k_seen);
		wake_parked(e);
		if (e->ready_head < 0 || runs >= budget)
			break;
		{
			int32_t i = e->ready_head;
			e->ready_head = e->pool[i].next;
			if (e->ready_head < 0)
				e->ready_tail = -1;
			run_one(e, i);
			runs++;
			if (e->faulted_slot >= 0) {
				faulted = 1;
				break;
			}
			if (e->stop && *e->stop)
				break;
		}
	}
	e->pumping = 0;
	return faulted ? -1 : (int)runs;
}

/*
 * Wait until CQ `cq_idx` holds `nr` CQEs, running programs meanwhile, without returning
 * to Python per CQE: pump, then block in io_uring_enter for as many kernel CQEs as the
 * closest waiter (the caller or a parked request) still needs.  Returns 0, -ETIME after
 * `timeout_ns` (< 0: none), -EINTR on a signal, -EAGAIN when `budget` runs were used
 * (the caller checks signals and calls again), -1 when a program faulted.
 */
struct rq_timespec { int64_t tv_sec, tv_nsec; };
struct rq_getevents_arg { uint64_t sigmask; uint32_t sigmask_sz, min_wait_usec; uint64_t ts; };

#define RQ_WAIT_SLICE_NS 50000000LL

int rq_wait(struct rq_engine *e, uint32_t cq_idx, uint32_t nr, uint32_t budget, int64_t timeout_ns)
{
	uint32_t used = 0;
	struct timespec now;
	int64_t deadline = -1;

	if (cq_idx >= e->nr_cqs)
		return -EINVAL;
	if (timeout_ns >= 0) {
		clock_gettime(CLOCK_MONOTONIC, &now);
		deadline = now.tv_sec * 1000000000LL + now.tv_nsec + timeout_ns;
	}
	for (;;) {
		int runs, sliced = 0;
		uint32_t need, have;
		int32_t i;
		long ret;

		if (__atomic_load_n(&e->closing, __ATOMIC_SEQ_CST))
			return -ECANCELED;
		runs = rq_pump(e, budget - used, 1);
		if (runs < 0)
			return -1;
		if (e->stop && *e->stop)
			return -EINTR;
		used += (uint32_t)runs;
		have = cq_ready(&e->cqs[cq_idx]);
		if (have >= nr)
			return 0;
		if (e->ready_head >= 0) {
			if (used >= budget)
				return -EAGAIN;
			continue;
		}
		need = nr - have;
		for (i = e->parked_head; i >= 0; i = e->pool[i].next) {
			uint32_t h = cq_ready(&e->cqs[e->pool[i].want_idx]);
			uint32_t n = e->pool[i].want_nr > h ? e->pool[i].want_nr - h : 1;
			if (n < need)
				need = n;
		}
		{
			/* waits in slices (RQ_WAIT_SLICE_NS): a close from another thread must be
			 * seen by a wait that no CQE would ever end */
			struct rq_timespec ts;
			struct rq_getevents_arg arg = {0};
			int64_t left = RQ_WAIT_SLICE_NS;
			sliced = 1;
			if (deadline >= 0) {
				clock_gettime(CLOCK_MONOTONIC, &now);
				left = deadline - (now.tv_sec * 1000000000LL + now.tv_nsec);
				if (left <= 0)
					return -ETIME;
				if (left > RQ_WAIT_SLICE_NS)
					left = RQ_WAIT_SLICE_NS;
				else
					sliced = 0;
			}
			ts.tv_sec = left / 1000000000LL;
			ts.tv_nsec = left % 1000000000LL;
			arg.ts = (uint64_t)(uintptr_t)&ts;
			ret = syscall(__NR_io_uring_enter, e->fd, 0, need, 1u | 8u /* EXT_ARG */,
				      &arg, sizeof(arg));
		}
		if (ret < 0 && errno == EINTR)
			return -EINTR;
		if (ret < 0 && errno != ETIME && errno != EAGAIN && errno != EBUSY)
			return -errno;
		/* a slice ended: back to Python, which runs the handlers of signals that
		 * arrived outside the syscall (they did not interrupt it), then waits again */
		if (ret < 0 && errno == ETIME && sliced)
			return -EAGAIN;
	}
}

/* ------------------------------------------------------------------ helpers */
static inline struct rq_req *req_of(uint64_t ctx)
{
	struct rq_req *r = (struct rq_req *)(uintptr_t)ctx;

	if (!r || r->state != ST_RUNNING || !r->eng)
		return NULL;
	return r;
}

/* A ctx of the Python engine has the same size with eng == NULL: the helper then runs
 * the Python implementation (so JIT code bound to these twins works with both engines). */
typedef uint64_t (*rq_helper_fn)(uint64_t, uint64_t, uint64_t, uint64_t, uint64_t);
static rq_helper_fn py_fallback[3];

void rq_set_py_fallback(uint32_t which, uint64_t fn)
{
	if (which < 3)
		py_fallback[which] = (rq_helper_fn)(uintptr_t)fn;
}

#define FALLBACK(which, ctx, a, b, c, d)                                                  \
	do {                                                                               \
		const struct rq_req *raw_ = (const struct rq_req *)(uintptr_t)(ctx);       \
		if (raw_ && !raw_->eng && py_fallback[which])                              \
			return py_fallback[which](ctx, a, b, c, d);                        \
	} while (0)

uint64_t rq_h_queue_sqe(uint64_t ctx, uint64_t sqe_ptr, uint64_t len, uint64_t r4, uint64_t r5)
{
	struct rq_req *r = req_of(ctx);
	struct rq_engine *e;
	uint32_t head, tail, slot;
	uint8_t *dst;
	int f;

	if (!r)
		FALLBACK(0, ctx, sqe_ptr, len, r4, r5);
	if (!r || (uint32_t)len != 64)
		return (uint64_t)(int64_t)-EINVAL;
	e = r->eng;
	if (!e->slots[r->slot].sleepable)
		return (uint64_t)(int64_t)-EINVAL;
	if (e->py_submit) /* other designs filter SQEs in Python: go through the ring */
		return (uint64_t)((int64_t (*)(uint64_t))(uintptr_t)e->py_submit)(sqe_ptr);
	head = ld(e->sq_head);
	tail = *e->sq_tail;
	if (tail - head >= e->sq_entries) {
		flush_sq(e);
		head = ld(e->sq_head);
		if (tail - head >= e->sq_entries)
			return (uint64_t)(int64_t)-EAGAIN;
	}
	slot = tail & e->sq_mask;
	dst = e->sqes + (size_t)slot * e->sqe_size;
	memset(dst, 0, e->sqe_size);
	memcpy(dst, (const void *)(uintptr_t)sqe_ptr, 64);
	f = ubpf_guard_sqe(dst); /* names runtime-owned memory: -EFAULT (guard.h) */
	if (!f)
		f = rq_filter(e, (uint64_t)(uintptr_t)dst);
	if (f) /* fail it in the kernel with its own user_data, like the ring's deny path */
		uringbpf_deny_sqe(dst, e->sqe_size, (int32_t)f, SQE_LINK_FLAGS);  /* native/sqe.h */
	if (e->sq_array)
		e->sq_array[slot] = slot;
	st(e->sq_tail, tail + 1);
	e->sq_unsubmitted++;  /* submitted when the run ends (flush_sq) */
	e->sq_queued++;
	return 1;
}

uint64_t rq_h_emit_cqe(uint64_t ctx, uint64_t cq_idx, uint64_t ud, uint64_t res, uint64_t flags)
{
	struct rq_req *r = req_of(ctx);
	struct rq_engine *e;
	struct rq_cq *cq;

	if (!r)
		FALLBACK(1, ctx, cq_idx, ud, res, flags);
	if (!r)
		return (uint64_t)(int64_t)-EINVAL;
	e = r->eng;
	if ((uint32_t)cq_idx >= e->nr_cqs)
		return (uint64_t)(int64_t)-EINVAL;
	cq = &e->cqs[(uint32_t)cq_idx];
	if (!cq->keep_overflow && (cq->bl_count || cq_ready(cq) >= cq->entries))
		return (uint64_t)(int64_t)-ENOMEM;
	return (uint64_t)(int64_t)post3(e, (uint32_t)cq_idx, ud, (int32_t)res, (uint32_t)flags);
}

uint64_t rq_h_reap_cqe(uint64_t ctx, uint64_t cq_idx, uint64_t out, uint64_t len, uint64_t r5)
{
	struct rq_req *r = req_of(ctx);
	struct rq_engine *e;
	struct rq_cq *cq;
	uint32_t head;
	int64_t ret = -EINVAL;

	if (!r)
		FALLBACK(2, ctx, cq_idx, out, len, r5);
	len = (uint32_t)len;
	if (r && len == 16 && (uint32_t)cq_idx < r->eng->nr_cqs) {
		e = r->eng;
		cq = &e->cqs[(uint32_t)cq_idx];
		head = *cq->head;
		if (ld(cq->tail) == head) {
			ret = -ENOENT;
		} else {
			memcpy((void *)(uintptr_t)out, cq->cqes + (size_t)(head & cq->mask) * e->cqe_size, 16);
			st(cq->head, head + 1);
			cq_flush(cq, e->cqe_size);
			return 0;
		}
	}
	if (out && len)
		memset((void *)(uintptr_t)out, 0, len);
	return (uint64_t)ret;
}

uint64_t rq_h_copy_to_user(uint64_t uptr, uint64_t src, uint64_t size, uint64_t r4, uint64_t r5)
{
	struct iovec local = {(void *)(uintptr_t)src, (uint32_t)size};
	struct iovec remote = {(void *)(uintptr_t)uptr, (uint32_t)size};

	(void)r4, (void)r5;
	if (!(uint32_t)size)
		return 0;
	if (!uptr || ubpf_guard_overlaps(uptr, (uint32_t)size)) /* runtime memory: guard.h */
		return (uint64_t)(int64_t)-EFAULT;
	if (process_vm_writev(getpid(), &local, 1, &remote, 1, 0) != (ssize_t)(uint32_t)size)
		return (uint64_t)(int64_t)-EFAULT;
	return 0;
}

/* ------------------------------------------------------------------ set-up and control */
struct rq_cq_desc { /* one CQ as Python describes it */
	uint64_t addr;
	uint32_t entries;
	uint32_t keep_overflow;
};

struct rq_engine *rq_create(int fd, uint32_t setup_flags, uint32_t cqe_size,
			    const uint32_t *cq_off /* head tail ring_mask ring_entries overflow cqes */,
			    uint32_t nr_cqs, const struct rq_cq_desc *cqs,
			    uint64_t k_head, uint64_t k_tail, uint64_t k_cqes, uint32_t k_mask,
			    uint64_t sq_head, uint64_t sq_tail, uint64_t sq_array, uint64_t sqes,
			    uint32_t sq_entries, uint32_t sqe_size, int serialize)
{
	struct rq_engine *e = calloc(1, sizeof(*e));
	uint32_t i;

	if (!e)
		return NULL;
	e->fd = fd;
	e->setup_flags = setup_flags;
	e->cqe_size = cqe_size;
	e->k_head = (uint32_t *)(uintptr_t)k_head;
	e->k_tail = (uint32_t *)(uintptr_t)k_tail;
	e->k_cqes = (uint8_t *)(uintptr_t)k_cqes;
	e->k_mask = k_mask;
	e->k_seen = ld(e->k_head);
	e->sq_head = (uint32_t *)(uintptr_t)sq_head;
	e->sq_tail = (uint32_t *)(uintptr_t)sq_tail;
	e->sq_array = (uint32_t *)(uintptr_t)sq_array;
	e->sqes = (uint8_t *)(uintptr_t)sqes;
	e->sq_entries = sq_entries;
	e->sq_mask = sq_entries - 1;
	e->sqe_size = sqe_size;
	e->nr_cqs = nr_cqs;
	e->serialize = serialize;
	e->active = -1;
	e->gate_for = -1;
	e->serial_head = e->serial_tail = -1;
	e->ready_head = e->ready_tail = -1;
	e->parked_head = -1;
	e->faulted_slot = -1;
	e->next_token = 1;
	e->cqs = calloc(nr_cqs, sizeof(*e->cqs));
	e->pool = calloc(RQ_POOL, sizeof(*e->pool));
	e->tag_cap = 256;
	e->tags = calloc(e->tag_cap, sizeof(*e->tags));
	if (!e->cqs || !e->pool || !e->tags) {
		free(e->cqs), free(e->pool), free(e->tags), free(e);
		return NULL;
	}
	for (i = 0; i < RQ_POOL; i++)
		e->pool[i].next = i + 1 < RQ_POOL ? (int32_t)i + 1 : -1;
	e->free_head = 0;
	for (i = 0; i < nr_cqs; i++) {
		uint8_t *base = (uint8_t *)(uintptr_t)cqs[i].addr;
		struct rq_cq *cq = &e->cqs[i];
		cq->head = (uint32_t *)(base + cq_off[0]);
		cq->tail = (uint32_t *)(base + cq_off[1]);
		cq->overflow = (uint32_t *)(base + cq_off[4]);
		cq->cqes = base + cq_off[5];
		cq->entries = cqs[i].entries;
		cq->mask = cqs[i].entries - 1;
		cq->keep_overflow = cqs[i].keep_overflow;
	}
	return e;
}

void rq_set_py_submit(struct rq_engine *e, uint64_t fn) { e->py_submit = fn; }
void rq_set_stop(struct rq_engine *e, uint64_t flag) { e->stop = (volatile uint32_t *)(uintptr_t)flag; }

uint64_t rq_pool_addr(struct rq_engine *e) { return (uint64_t)(uintptr_t)e->pool; }
uint64_t rq_pool_size(void) { return (uint64_t)RQ_POOL * sizeof(struct rq_req); }
uint64_t rq_req_size(void) { return sizeof(struct rq_req); }

int rq_set_slots(struct rq_engine *e, uint32_t nr, const uint64_t *entries,
		 const uint64_t *error_words, const int32_t *sleepable)
{
	uint32_t i;

	if (nr > RQ_MAX_SLOTS)
		return -EINVAL;
	memset(e->slots, 0, sizeof(e->slots));
	for (i = 0; i < nr; i++) {
		e->slots[i].entry = entries[i];
		e->slots[i].error_word = error_words[i];
		e->slots[i].sleepable = sleepable[i];
	}
	e->nr_slots = nr;
	e->registered = nr > 0;
	return 0;
}

/* Complete every live request with `res` (post = 0: nothing is posted). */
int rq_cancel_all(struct rq_engine *e, int32_t res, int post)
{
	uint32_t i;
	int n = 0;
	int closed = e->closed;

	if (!post)
		e->closed = 1;
	for (i = 0; i < RQ_POOL; i++) {
		if (e->pool[i].state != ST_FREE) {
			finish(e, (int32_t)i, res);
			n++;
		}
	}
	e->stats[2] += n;
	e->closed = closed;
	return n;
}

/* Another thread is about to close the ring: end any rq_wait (see `closing`). */
void rq_request_close(struct rq_engine *e)
{
	__atomic_store_n(&e->closing, 1, __ATOMIC_SEQ_CST);
}

void rq_close(struct rq_engine *e)
{
	rq_cancel_all(e, -ECANCELED, 0);
	e->closed = 1;
}

void rq_destroy(struct rq_engine *e)
{
	uint32_t i;

	if (!e)
		return;
	for (i = 0; i < e->nr_cqs; i++)
		free(e->cqs[i].backlog);
	for (i = 0; i < e->tag_cap; i++) /* gate buffers stay: the kernel may still write them */
		if (e->tags[i].token > 1 && e->tags[i].kind == TAG_GATE)
			close(e->tags[i].fd);
	free(e->cqs);
	free(e->pool);
	free(e->tags);
	free(e);
}

void rq_cq_flush(struct rq_engine *e, uint32_t idx)
{
	if (idx < e->nr_cqs)
		cq_flush(&e->cqs[idx], e->cqe_size);
}

uint32_t rq_backlog(struct rq_engine *e, uint32_t idx) { return idx < e->nr_cqs ? e->cqs[idx].bl_count : 0; }
uint32_t rq_kernel_seen(struct rq_engine *e) { return e->k_seen; }
int32_t rq_faulted_slot(struct rq_engine *e) { return e->faulted_slot; }
int32_t rq_ready_count(struct rq_engine *e) { return e->ready_head >= 0; }
uint32_t rq_live(struct rq_engine *e) { return e->live; }
uint32_t rq_tags(struct rq_engine *e) { return e->tag_used; }
uint32_t rq_take_sq_queued(struct rq_engine *e) { uint32_t n = e->sq_queued; e->sq_queued = 0; return n; }

uint32_t rq_parked_count(struct rq_engine *e)
{
	uint32_t n = 0;
	int32_t i;

	for (i = e->parked_head; i >= 0; i = e->pool[i].next)
		n++;
	return n;
}

void rq_stats(struct rq_engine *e, uint64_t *out)
{
	memcpy(out, e->stats, sizeof(e->stats));
}

int rq_emit(struct rq_engine *e, uint32_t idx, uint64_t ud, int32_t res, uint32_t flags)
{
	if (idx >= e->nr_cqs)
		return -EINVAL;
	return post3(e, idx, ud, res, flags);
}
