/*
 * uringbpf.uring._fastpath: the batch verbs of Ring.fast() as a CPython extension.
 *
 * Why an extension and not ctypes: a ctypes call costs about as much as the Python
 * code it would replace (argument conversion, a libffi frame); METH_FASTCALL functions
 * of a real extension cost one vectorcall. Each verb here handles a whole batch, so a
 * completion-driven loop pays a few Python calls per *batch* of completions, not per
 * CQE, and no per-CQE object is ever created (completions land in caller-owned arrays).
 *
 * The object reads and writes the ring memory the Ring already mapped (addresses passed
 * in by uring/fast.py), with liburing's ordering: SQ tail published with a release
 * store, CQ tail read with an acquire load, CQ head advanced with a release store.
 * It publishes each SQE as it is prepared (the kernel only reads the tail during
 * io_uring_enter), so there is no separate "flush" state to keep in sync with Ring.
 *
 * Built on first use by uringbpf.native (cc or zig cc, cached), with Python's include
 * directory added; loaded with importlib's ExtensionFileLoader. No setuptools.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <stdint.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#ifndef __NR_io_uring_enter
#define __NR_io_uring_enter 426
#endif
#ifndef __NR_io_uring_register
#define __NR_io_uring_register 427
#endif
#define ENTER_GETEVENTS 1u
#define ENTER_REGISTERED_RING 16u
#define REGISTER_RING_FDS 20
#define UNREGISTER_RING_FDS 21

struct rsrc_update {         /* struct io_uring_rsrc_update */
	uint32_t offset, resv;
	uint64_t data;
};
#define OP_NOP 0

struct sqe {                 /* struct io_uring_sqe, the fields we write */
	uint8_t opcode, flags;
	uint16_t ioprio;
	int32_t fd;
	uint64_t off, addr;
	uint32_t len, rw_flags;
	uint64_t user_data;
	uint8_t rest[24];
};

struct cqe {
	uint64_t user_data;
	int32_t res;
	uint32_t flags;
};

typedef struct {
	PyObject_HEAD
	PyObject *owner;             /* the Ring: keeps the mappings alive */
	PyObject *full_exc;          /* SubmissionQueueFull */
	int fd;                      /* what enter gets: the ring fd or its registered index */
	int ring_fd;
	unsigned enter_flags;        /* ENTER_REGISTERED_RING when the fd is registered */
	uint32_t *sq_head, *sq_tail, *sq_array;
	uint32_t sq_mask, sq_entries, sqe_size;
	char *sqes;
	uint32_t *cq_head, *cq_tail;
	uint32_t cq_mask, cqe_size;
	char *cqes;
	uint32_t unsubmitted;        /* published to the SQ tail, not yet passed to enter */
	unsigned long long enters;   /* io_uring_enter calls made by this object */
	int closed;                  /* close() ran (the ring may be unmapped): verbs raise */
} Fast;

#define REGISTER_USE_REGISTERED_RING (1u << 31)

/* Give the registered ring fd back. The table is per task, not per ring, so it is
 * released through the registered index itself (valid even if the ring fd was closed). */
static void unregister_ring(Fast *f)
{
	if (f->enter_flags & ENTER_REGISTERED_RING) {
		struct rsrc_update up = {.offset = (uint32_t)f->fd};
		syscall(__NR_io_uring_register, f->fd,
			UNREGISTER_RING_FDS | REGISTER_USE_REGISTERED_RING, &up, 1);
		f->enter_flags = 0;
		f->fd = f->ring_fd;
	}
}

#define CHECK_OPEN(f)                                                                  \
	do {                                                                           \
		if ((f)->closed) {                                                     \
			PyErr_SetString(PyExc_ValueError, "fast path is closed");        \
			return NULL;                                                   \
		}                                                                      \
	} while (0)

static inline uint32_t load_acquire(uint32_t *p) { return __atomic_load_n(p, __ATOMIC_ACQUIRE); }
static inline void store_release(uint32_t *p, uint32_t v) { __atomic_store_n(p, v, __ATOMIC_RELEASE); }

/* Claim the next SQE slot (zeroed), or NULL with SubmissionQueueFull set. */
static struct sqe *claim(Fast *f)
{
	uint32_t tail = *f->sq_tail;
	if (tail - load_acquire(f->sq_head) >= f->sq_entries) {
		PyErr_Format(f->full_exc, "all %u SQEs are queued; submit first", f->sq_entries);
		return NULL;
	}
	uint32_t idx = tail & f->sq_mask;
	struct sqe *s = (struct sqe *)(f->sqes + (size_t)idx * f->sqe_size);
	memset(s, 0, f->sqe_size);
	if (f->sq_array)
		f->sq_array[idx] = idx;
	return s;
}

static inline void publish(Fast *f)
{
	store_release(f->sq_tail, *f->sq_tail + 1);
	f->unsubmitted++;
}

static int enter(Fast *f, unsigned to_submit, unsigned wait_nr, unsigned flags)
{
	long r;
	Py_BEGIN_ALLOW_THREADS
	do {
		r = syscall(__NR_io_uring_enter, f->fd, to_submit, wait_nr, flags | f->enter_flags, NULL, 0);
	} while (r < 0 && errno == EINTR && !wait_nr);
	Py_END_ALLOW_THREADS
	f->enters++;
	if (r < 0) {
		if (errno == EINTR) {
			if (PyErr_CheckSignals() < 0)
				return -1;
			return 0;
		}
		PyErr_SetFromErrno(PyExc_OSError);
		return -1;
	}
	f->unsubmitted = (unsigned)r >= f->unsubmitted ? 0 : f->unsubmitted - (unsigned)r;
	return (int)r;
}

static int get_u64(PyObject *o, uint64_t *out)
{
	unsigned long long v = PyLong_AsUnsignedLongLongMask(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred())
		return -1;
	*out = v;
	return 0;
}

/* ---- verbs ---------------------------------------------------------------------- */

static PyObject *f_prep_nop(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	uint64_t ud = 0, flags = 0;
	if (n > 2) {
		PyErr_SetString(PyExc_TypeError, "prep_nop(user_data=0, flags=0)");
		return NULL;
	}
	if (n > 0 && get_u64(args[0], &ud) < 0)
		return NULL;
	if (n > 1 && get_u64(args[1], &flags) < 0)
		return NULL;
	struct sqe *s = claim(f);
	if (!s)
		return NULL;
	s->opcode = OP_NOP;
	s->flags = (uint8_t)flags;
	s->fd = -1;
	s->user_data = ud;
	publish(f);
	Py_RETURN_NONE;
}

/* prep_nops(user_datas, count=-1, flags=0): one NOP per 64-bit user_data of a buffer
 * (an array('Q'), the first `count` items; -1: all), so a loop re-arms from the array
 * reap() filled without slicing it. Stops with SubmissionQueueFull when the SQ is full
 * (the SQEs already prepared stay queued). Returns how many were prepared. */
static PyObject *f_prep_nops(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	Py_buffer view;
	uint64_t flags = 0;
	Py_ssize_t count = -1;
	if (n < 1 || n > 3) {
		PyErr_SetString(PyExc_TypeError, "prep_nops(user_datas, count=-1, flags=0)");
		return NULL;
	}
	if (n > 1 && (count = PyLong_AsSsize_t(args[1])) == -1 && PyErr_Occurred())
		return NULL;
	if (n > 2 && get_u64(args[2], &flags) < 0)
		return NULL;
	if (PyObject_GetBuffer(args[0], &view, PyBUF_SIMPLE) < 0)
		return NULL;
	Py_ssize_t have = view.len / 8, i;
	if (count < 0 || count > have)
		count = have;
	const uint64_t *uds = view.buf;
	for (i = 0; i < count; i++) {
		struct sqe *s = claim(f);
		if (!s)
			break;
		s->opcode = OP_NOP;
		s->flags = (uint8_t)flags;
		s->fd = -1;
		s->user_data = uds[i];
		publish(f);
	}
	PyBuffer_Release(&view);
	if (i < count)
		return NULL;
	return PyLong_FromSsize_t(count);
}

/* prep_rw(opcode, fd, addr, len, offset, user_data, flags=0): READ/WRITE/SEND/RECV/...
 * with a raw address: the caller keeps the memory alive until the CQE. */
static PyObject *f_prep_rw(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	uint64_t v[7] = {0};
	if (n < 6 || n > 7) {
		PyErr_SetString(PyExc_TypeError, "prep_rw(opcode, fd, addr, len, offset, user_data, flags=0)");
		return NULL;
	}
	for (Py_ssize_t i = 0; i < n; i++)
		if (get_u64(args[i], &v[i]) < 0)
			return NULL;
	if (v[0] > 255) {
		PyErr_SetString(PyExc_ValueError, "opcode out of range");
		return NULL;
	}
	struct sqe *s = claim(f);
	if (!s)
		return NULL;
	s->opcode = (uint8_t)v[0];
	s->fd = (int32_t)v[1];
	s->addr = v[2];
	s->len = (uint32_t)v[3];
	s->off = v[4];
	s->user_data = v[5];
	s->flags = (uint8_t)v[6];
	publish(f);
	Py_RETURN_NONE;
}

static PyObject *f_submit(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	(void)args;
	if (n) {
		PyErr_SetString(PyExc_TypeError, "submit() takes no arguments");
		return NULL;
	}
	if (!f->unsubmitted)
		return PyLong_FromLong(0);
	int r = enter(f, f->unsubmitted, 0, 0);
	return r < 0 ? NULL : PyLong_FromLong(r);
}

static PyObject *f_submit_and_wait(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	long wait_nr = 1;
	if (n > 1) {
		PyErr_SetString(PyExc_TypeError, "submit_and_wait(wait_nr=1)");
		return NULL;
	}
	if (n == 1 && (wait_nr = PyLong_AsLong(args[0])) == -1 && PyErr_Occurred())
		return NULL;
	if (wait_nr < 0) {
		PyErr_SetString(PyExc_ValueError, "wait_nr must be >= 0");
		return NULL;
	}
	int r = enter(f, f->unsubmitted, (unsigned)wait_nr, wait_nr ? ENTER_GETEVENTS : 0);
	return r < 0 ? NULL : PyLong_FromLong(r);
}

/* Copy up to max ready CQEs into the caller's arrays, advance the CQ head. */
static Py_ssize_t reap_into(Fast *f, uint64_t *uds, int32_t *res, uint32_t *fl, Py_ssize_t max)
{
	uint32_t head = *f->cq_head, tail = load_acquire(f->cq_tail);
	Py_ssize_t k = 0;
	while (head != tail && k < max) {
		const struct cqe *c = (const struct cqe *)(f->cqes + (size_t)(head & f->cq_mask) * f->cqe_size);
		if (uds)
			uds[k] = c->user_data;
		if (res)
			res[k] = c->res;
		if (fl)
			fl[k] = c->flags;
		head++;
		k++;
	}
	if (k)
		store_release(f->cq_head, head);
	return k;
}

static int out_buffer(PyObject *o, Py_buffer *view, Py_ssize_t itemsize, const char *what)
{
	if (o == Py_None) {
		view->obj = NULL;
		view->buf = NULL;
		view->len = PY_SSIZE_T_MAX;
		return 0;
	}
	if (PyObject_GetBuffer(o, view, PyBUF_WRITABLE | PyBUF_ND | PyBUF_FORMAT) < 0)
		return -1;
	if (view->itemsize != itemsize) {
		PyBuffer_Release(view);
		PyErr_Format(PyExc_TypeError, "%s must hold %zd-byte items", what, itemsize);
		return -1;
	}
	return 0;
}

/* reap(user_datas, results=None, flags=None, wait_nr=0): if wait_nr, first submit what is
 * queued and wait for wait_nr CQEs (one io_uring_enter); then copy every ready CQE (up to
 * the arrays' length) into the arrays and advance the CQ head. Returns the count. */
static PyObject *f_reap(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	Py_buffer b[3];
	PyObject *none[3] = {Py_None, Py_None, Py_None};
	long wait_nr = 0;
	if (n < 1 || n > 4) {
		PyErr_SetString(PyExc_TypeError, "reap(user_datas, results=None, flags=None, wait_nr=0)");
		return NULL;
	}
	for (Py_ssize_t i = 0; i < 3 && i < n; i++)
		none[i] = args[i];
	if (n == 4 && (wait_nr = PyLong_AsLong(args[3])) == -1 && PyErr_Occurred())
		return NULL;
	if (wait_nr < 0) {
		PyErr_SetString(PyExc_ValueError, "wait_nr must be >= 0");
		return NULL;
	}
	static const Py_ssize_t sizes[3] = {8, 4, 4};
	static const char *names[3] = {"user_datas", "results", "flags"};
	int got = 0;
	for (; got < 3; got++)
		if (out_buffer(none[got], &b[got], sizes[got], names[got]) < 0)
			break;
	PyObject *ret = NULL;
	if (got == 3) {
		Py_ssize_t max = b[0].len / 8;
		if (b[1].len / 4 < max)
			max = b[1].len / 4;
		if (b[2].len / 4 < max)
			max = b[2].len / 4;
		if (wait_nr && enter(f, f->unsubmitted, (unsigned)wait_nr, ENTER_GETEVENTS) < 0)
			goto out;
		ret = PyLong_FromSsize_t(reap_into(f, b[0].buf, b[1].buf, b[2].buf, max));
	}
out:
	for (int i = 0; i < got; i++)
		if (b[i].obj)
			PyBuffer_Release(&b[i]);
	return ret;
}

/* for_each_cqe(fn): fn(user_data, res, flags) for every ready CQE, each CQE consumed
 * before its call (so fn may prepare new SQEs). Returns the count. */
static PyObject *f_for_each_cqe(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	if (n != 1) {
		PyErr_SetString(PyExc_TypeError, "for_each_cqe(fn)");
		return NULL;
	}
	PyObject *fn = args[0];
	Py_ssize_t k = 0;
	for (;;) {
		uint64_t ud;
		int32_t res;
		uint32_t fl;
		if (!reap_into(f, &ud, &res, &fl, 1))
			break;
		k++;
		PyObject *a[3] = {PyLong_FromUnsignedLongLong(ud), PyLong_FromLong(res), PyLong_FromUnsignedLong(fl)};
		PyObject *r = NULL;
		if (a[0] && a[1] && a[2])
			r = PyObject_Vectorcall(fn, a, 3, NULL);
		Py_XDECREF(a[0]);
		Py_XDECREF(a[1]);
		Py_XDECREF(a[2]);
		if (!r)
			return NULL;
		Py_DECREF(r);
	}
	return PyLong_FromSsize_t(k);
}

static PyObject *f_cq_ready(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	(void)args;
	(void)n;
	return PyLong_FromUnsignedLong(load_acquire(f->cq_tail) - *f->cq_head);
}

static PyObject *f_sq_space_left(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	CHECK_OPEN(f);
	(void)args;
	(void)n;
	return PyLong_FromUnsignedLong(f->sq_entries - (*f->sq_tail - load_acquire(f->sq_head)));
}

static PyObject *f_close(Fast *f, PyObject *const *args, Py_ssize_t n)
{
	(void)args;
	(void)n;
	unregister_ring(f);
	f->closed = 1;
	Py_RETURN_NONE;
}

static PyObject *f_get_enters(Fast *f, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLongLong(f->enters);
}

static PyObject *f_get_unsubmitted(Fast *f, void *c)
{
	(void)c;
	return PyLong_FromUnsignedLong(f->unsubmitted);
}

static PyMethodDef fast_methods[] = {
	{"prep_nop", (PyCFunction)(void (*)(void))f_prep_nop, METH_FASTCALL, "prep_nop(user_data=0, flags=0)"},
	{"prep_nops", (PyCFunction)(void (*)(void))f_prep_nops, METH_FASTCALL, "prep_nops(user_datas, count=-1, flags=0) -> n"},
	{"prep_rw", (PyCFunction)(void (*)(void))f_prep_rw, METH_FASTCALL, "prep_rw(opcode, fd, addr, len, offset, user_data, flags=0)"},
	{"submit", (PyCFunction)(void (*)(void))f_submit, METH_FASTCALL, "submit() -> consumed"},
	{"submit_and_wait", (PyCFunction)(void (*)(void))f_submit_and_wait, METH_FASTCALL, "submit_and_wait(wait_nr=1)"},
	{"reap", (PyCFunction)(void (*)(void))f_reap, METH_FASTCALL, "reap(user_datas, results=None, flags=None, wait_nr=0) -> n"},
	{"for_each_cqe", (PyCFunction)(void (*)(void))f_for_each_cqe, METH_FASTCALL, "for_each_cqe(fn) -> n"},
	{"cq_ready", (PyCFunction)(void (*)(void))f_cq_ready, METH_FASTCALL, "cq_ready() -> n"},
	{"sq_space_left", (PyCFunction)(void (*)(void))f_sq_space_left, METH_FASTCALL, "sq_space_left() -> n"},
	{"close", (PyCFunction)(void (*)(void))f_close, METH_FASTCALL, "close(): unregister the ring fd; every verb raises afterwards"},
	{NULL, NULL, 0, NULL},
};

static PyObject *f_get_registered(Fast *f, void *c)
{
	(void)c;
	return PyBool_FromLong(!!(f->enter_flags & ENTER_REGISTERED_RING));
}

static PyGetSetDef fast_getset[] = {
	{"registered", (getter)f_get_registered, NULL, "enters use a registered ring fd", NULL},
	{"enters", (getter)f_get_enters, NULL, "io_uring_enter calls made through this object", NULL},
	{"unsubmitted", (getter)f_get_unsubmitted, NULL, "SQEs published but not yet submitted", NULL},
	{NULL, NULL, NULL, NULL, NULL},
};

static void fast_dealloc(Fast *f)
{
	unregister_ring(f);
	Py_XDECREF(f->owner);
	Py_XDECREF(f->full_exc);
	Py_TYPE(f)->tp_free((PyObject *)f);
}

/* Fast(owner, full_exc, fd, sq_head, sq_tail, sq_array, sq_mask, sq_entries, sqes,
 *      sqe_size, cq_head, cq_tail, cq_mask, cqes, cqe_size): addresses as ints. */
static PyObject *fast_new(PyTypeObject *type, PyObject *args, PyObject *kw)
{
	PyObject *owner, *exc;
	int fd;
	unsigned long long sqh, sqt, sqa, sqes, cqh, cqt, cqes;
	unsigned sq_mask, sq_entries, sqe_size, cq_mask, cqe_size;
	if (kw && PyDict_GET_SIZE(kw)) {
		PyErr_SetString(PyExc_TypeError, "Fast() takes positional arguments only");
		return NULL;
	}
	if (!PyArg_ParseTuple(args, "OOiKKKIIKIKKIKI", &owner, &exc, &fd, &sqh, &sqt, &sqa, &sq_mask,
			      &sq_entries, &sqes, &sqe_size, &cqh, &cqt, &cq_mask, &cqes, &cqe_size))
		return NULL;
	if (!sqh || !sqt || !sqes || !cqh || !cqt || !cqes || (sqe_size != 64 && sqe_size != 128) ||
	    (cqe_size != 16 && cqe_size != 32) || !sq_entries || sq_mask != sq_entries - 1) {
		PyErr_SetString(PyExc_ValueError, "Fast(): inconsistent ring layout");
		return NULL;
	}
	Fast *f = (Fast *)type->tp_alloc(type, 0);
	if (!f)
		return NULL;
	Py_INCREF(owner);
	Py_INCREF(exc);
	f->owner = owner;
	f->full_exc = exc;
	f->fd = f->ring_fd = fd;
	/* Like liburing's io_uring_register_ring_fd(): enter by registered index, which
	 * spares the kernel an fdget/fdput per io_uring_enter (an atomic pair once the
	 * process has threads). Refused (old kernel, table full): plain fd, same semantics. */
	struct rsrc_update up = {.offset = (uint32_t)-1, .data = (uint64_t)fd};
	if (syscall(__NR_io_uring_register, fd, REGISTER_RING_FDS, &up, 1) == 1) {
		f->fd = (int)up.offset;
		f->enter_flags = ENTER_REGISTERED_RING;
	}
	f->sq_head = (uint32_t *)(uintptr_t)sqh;
	f->sq_tail = (uint32_t *)(uintptr_t)sqt;
	f->sq_array = (uint32_t *)(uintptr_t)sqa;
	f->sq_mask = sq_mask;
	f->sq_entries = sq_entries;
	f->sqes = (char *)(uintptr_t)sqes;
	f->sqe_size = sqe_size;
	f->cq_head = (uint32_t *)(uintptr_t)cqh;
	f->cq_tail = (uint32_t *)(uintptr_t)cqt;
	f->cq_mask = cq_mask;
	f->cqes = (char *)(uintptr_t)cqes;
	f->cqe_size = cqe_size;
	/* SQEs the Ring published but never passed to enter are ours to submit now */
	f->unsubmitted = *f->sq_tail - load_acquire(f->sq_head);
	return (PyObject *)f;
}

static PyTypeObject FastType = {
	PyVarObject_HEAD_INIT(NULL, 0)
	.tp_name = "uringbpf.uring._fastpath.Fast",
	.tp_basicsize = sizeof(Fast),
	.tp_flags = Py_TPFLAGS_DEFAULT,
	.tp_doc = "Batch verbs over one Ring's memory (use Ring.fast()).",
	.tp_new = fast_new,
	.tp_dealloc = (destructor)fast_dealloc,
	.tp_methods = fast_methods,
	.tp_getset = fast_getset,
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_fastpath", "Ring batch verbs (uringbpf.uring.fast).", -1, NULL,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__fastpath(void)
{
	if (PyType_Ready(&FastType) < 0)
		return NULL;
	PyObject *m = PyModule_Create(&module);
	if (!m)
		return NULL;
	Py_INCREF(&FastType);
	if (PyModule_AddObject(m, "Fast", (PyObject *)&FastType) < 0) {
		Py_DECREF(&FastType);
		Py_DECREF(m);
		return NULL;
	}
	return m;
}
