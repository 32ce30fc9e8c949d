/*
 * uringbpf._aioreap: the per-operation hot spots of uringbpf.aio as a CPython extension:
 * the CQ reaping loop and the SQE preparation of read/write/recv/send.
 *
 * Why: AioRing wakes one asyncio future per CQE. In Python the loop over the CQ costs a
 * dozen bytecodes per CQE (index arithmetic, two memoryview reads, dict pops, a done()
 * call) on top of the set_result that wakes the task; here it is one C loop per batch.
 *
 * reap(cq_head, cq_tail, cqes, cq_mask, cqe_size, futs, keeps, others, late) -> n
 *   Walks the ready CQEs (tail read with an acquire load, like liburing) without
 *   advancing the head: the caller calls Ring.cq_advance(n), which also releases the
 *   buffers the Ring keeps for those requests. A CQE whose user_data is in ``futs``
 *   pops its future (and its entry in ``keeps``, if any) and sets the result; a future
 *   already done (its task was cancelled) gets nothing and (user_data, res) goes to
 *   ``late``. Every other CQE (streams' multishot recvs and sends, cancels, linked timeouts) is appended to
 *   ``others`` as (user_data, res, flags) for the Python side, in CQ order.
 *
 * prep_rw(layout, ring, op, fd, addr, len, off, op_flags, user_data) -> bool
 *   Ring.prep_rw without its Python cost (the Ring's version is about 1.3 us, most of an
 *   await's own share): claims the SQE at the Ring's ``_sqe_tail`` (False when the SQ
 *   is full: nothing was written), zeroes it, writes opcode/fd/off/addr/len/op flags/
 *   user_data and advances ``_sqe_tail``; the Ring publishes it in its next flush_sq().
 *   ``layout`` = (sq_head address, sqes address, sq_mask, sq_entries, sqe_size). A slot
 *   that still holds a keep-alive of the Ring's goes through Ring._drop_slot_keep, as
 *   Ring._next_slot does. Only for rings without SQ_REWIND (AioRing refuses those).
 *
 * Built on first use by uringbpf.native with Python's include directory; loaded with
 * importlib's ExtensionFileLoader (see uringbpf.aio._native).
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>
#include "uring_entries.h"

static PyObject *str_set_result;
static PyObject *str_sqe_tail;
static PyObject *str_slot_keep;
static PyObject *str_drop_slot_keep;
static PyObject *str_done;

static PyObject *reap(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 9) {
		PyErr_SetString(PyExc_TypeError, "reap() takes 9 arguments");
		return NULL;
	}
	unsigned long long ha = PyLong_AsUnsignedLongLong(args[0]);
	unsigned long long ta = PyLong_AsUnsignedLongLong(args[1]);
	unsigned long long ca = PyLong_AsUnsignedLongLong(args[2]);
	unsigned long mask = PyLong_AsUnsignedLong(args[3]);
	unsigned long size = PyLong_AsUnsignedLong(args[4]);
	if (PyErr_Occurred())
		return NULL;
	PyObject *futs = args[5], *keeps = args[6], *others = args[7], *late = args[8];
	if (!ha || !ta || !ca || (size != 16 && size != 32) || !PyDict_Check(futs) ||
	    !PyDict_Check(keeps) || !PyList_Check(others) || !PyList_Check(late)) {
		PyErr_SetString(PyExc_ValueError, "reap(): bad ring layout or containers");
		return NULL;
	}
	uint32_t head = *(uint32_t *)(uintptr_t)ha;
	uint32_t tail = __atomic_load_n((uint32_t *)(uintptr_t)ta, __ATOMIC_ACQUIRE);
	uint32_t n = tail - head;
	const char *cqes = (const char *)(uintptr_t)ca;
	for (uint32_t k = 0; k < n; k++) {
		const struct uringbpf_cqe *c = (const struct uringbpf_cqe *)(cqes + ((head + k) & mask) * size);
		PyObject *ud = PyLong_FromUnsignedLongLong(c->user_data);
		if (!ud)
			return NULL;
		PyObject *fut = PyDict_GetItemWithError(futs, ud);   /* borrowed */
		if (!fut) {
			if (PyErr_Occurred()) {
				Py_DECREF(ud);
				return NULL;
			}
			PyObject *t = Py_BuildValue("(NiI)", ud, (int)c->res, (unsigned)c->flags);
			if (!t || PyList_Append(others, t) < 0) {
				Py_XDECREF(t);
				return NULL;
			}
			Py_DECREF(t);
			continue;
		}
		Py_INCREF(fut);
		int bad = PyDict_DelItem(futs, ud) < 0;
		if (!bad && PyDict_GET_SIZE(keeps)) {
			/* the kernel is done with the buffer: drop its keep-alive */
			PyObject *keep = PyDict_GetItemWithError(keeps, ud);
			if (keep)
				bad = PyDict_DelItem(keeps, ud) < 0;
			else
				bad = PyErr_Occurred() != NULL;
		}
		PyObject *res = bad ? NULL : PyLong_FromLong(c->res);
		PyObject *r = NULL;
		if (res) {
			/* a future whose task was cancelled meanwhile is done: a late completion */
			PyObject *done = PyObject_CallMethodNoArgs(fut, str_done);
			if (done == Py_False)
				r = PyObject_CallMethodOneArg(fut, str_set_result, res);
			else if (done == Py_True) {
				PyObject *t = PyTuple_Pack(2, ud, res);
				if (t && PyList_Append(late, t) == 0)
					r = Py_None, Py_INCREF(r);
				Py_XDECREF(t);
			}
			Py_XDECREF(done);
			Py_DECREF(res);
		}
		Py_DECREF(fut);
		Py_DECREF(ud);
		if (!r)
			return NULL;
		Py_DECREF(r);
	}
	return PyLong_FromUnsignedLong(n);
}

static int u64_arg(PyObject *o, uint64_t *out, const char *what)
{
	unsigned long long v = PyLong_AsUnsignedLongLong(o);
	if (v == (unsigned long long)-1 && PyErr_Occurred()) {
		PyErr_Clear();
		PyErr_Format(PyExc_ValueError, "%s must fit in 64 bits", what);
		return -1;
	}
	*out = v;
	return 0;
}

static PyObject *prep_rw(PyObject *mod, PyObject *const *args, Py_ssize_t nargs)
{
	if (nargs != 9 || !PyTuple_Check(args[0]) || PyTuple_GET_SIZE(args[0]) != 5) {
		PyErr_SetString(PyExc_TypeError, "prep_rw(layout, ring, op, fd, addr, len, off, "
				"op_flags, user_data)");
		return NULL;
	}
	PyObject *layout = args[0], *ring = args[1];
	unsigned long long head_a = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(layout, 0));
	unsigned long long sqes_a = PyLong_AsUnsignedLongLong(PyTuple_GET_ITEM(layout, 1));
	unsigned long mask = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(layout, 2));
	unsigned long entries = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(layout, 3));
	unsigned long size = PyLong_AsUnsignedLong(PyTuple_GET_ITEM(layout, 4));
	if (PyErr_Occurred())
		return NULL;
	if (!head_a || !sqes_a || (size != 64 && size != 128) || !entries || mask != entries - 1) {
		PyErr_SetString(PyExc_ValueError, "prep_rw(): inconsistent ring layout");
		return NULL;
	}
	long op = PyLong_AsLong(args[2]);
	long fd = PyLong_AsLong(args[3]);
	if (PyErr_Occurred())
		return NULL;
	if (op < 0 || op > 0xFF) {
		PyErr_Format(PyExc_ValueError, "opcode %ld out of range", op);
		return NULL;
	}
	if (fd < -(1L << 31) || fd >= (1L << 31)) {
		PyErr_Format(PyExc_ValueError, "fd %ld out of range", fd);
		return NULL;
	}
	uint64_t addr, off, ud, len, opf;
	if (u64_arg(args[4], &addr, "addr") || u64_arg(args[5], &len, "length") ||
	    u64_arg(args[8], &ud, "user_data"))
		return NULL;
	if (len > 0xFFFFFFFFu) {
		PyErr_SetString(PyExc_ValueError, "length must fit in 32 bits");
		return NULL;
	}
	long long o = PyLong_AsLongLong(args[6]);
	if (o == -1 && PyErr_Occurred()) {       /* beyond s64: must still fit a u64 */
		PyErr_Clear();
		if (u64_arg(args[6], &off, "offset"))
			return NULL;
	} else if (o == -1) {
		off = UINT64_MAX;                    /* the file position */
	} else if (o < 0) {
		PyErr_SetString(PyExc_ValueError, "offset must be >= 0 (or -1: the file position)");
		return NULL;
	} else {
		off = (uint64_t)o;
	}
	/* op flags: the low 32 bits, as Ring.prep_rw stores them (msg_flags may be negative) */
	opf = (uint64_t)PyLong_AsUnsignedLongLongMask(args[7]);
	if (PyErr_Occurred())
		return NULL;

	PyObject *tail_o = PyObject_GetAttr(ring, str_sqe_tail);
	if (!tail_o)
		return NULL;
	uint32_t t = (uint32_t)PyLong_AsUnsignedLong(tail_o);
	Py_DECREF(tail_o);
	if (PyErr_Occurred())
		return NULL;
	uint32_t head = __atomic_load_n((uint32_t *)(uintptr_t)head_a, __ATOMIC_ACQUIRE);
	if ((uint32_t)(t - head) >= entries)
		Py_RETURN_FALSE;
	uint32_t idx = t & mask;
	PyObject *keep = PyObject_GetAttr(ring, str_slot_keep);
	if (!keep)
		return NULL;
	Py_ssize_t nkeep = PyDict_Check(keep) ? PyDict_GET_SIZE(keep) : 1;
	Py_DECREF(keep);
	if (nkeep) {
		PyObject *i = PyLong_FromUnsignedLong(idx);
		PyObject *r = i ? PyObject_CallMethodOneArg(ring, str_drop_slot_keep, i) : NULL;
		Py_XDECREF(i);
		if (!r)
			return NULL;
		Py_DECREF(r);
	}
	PyObject *nt = PyLong_FromUnsignedLong((uint32_t)(t + 1));
	if (!nt || PyObject_SetAttr(ring, str_sqe_tail, nt) < 0) {
		Py_XDECREF(nt);
		return NULL;
	}
	Py_DECREF(nt);
	char *slot = (char *)(uintptr_t)sqes_a + (size_t)idx * size;
	memset(slot, 0, size);
	struct uringbpf_sqe *s = (struct uringbpf_sqe *)slot;
	s->opcode = (uint8_t)op;
	s->fd = (int32_t)fd;
	s->off = off;
	s->addr = addr;
	s->len = (uint32_t)len;
	s->op_flags = (uint32_t)opf;
	s->user_data = ud;
	Py_RETURN_TRUE;
}

static PyMethodDef methods[] = {
	{"prep_rw", (PyCFunction)(void (*)(void))prep_rw, METH_FASTCALL,
	 "prep_rw(layout, ring, op, fd, addr, len, off, op_flags, user_data) -> bool"},
	{"reap", (PyCFunction)(void (*)(void))reap, METH_FASTCALL,
	 "reap(cq_head, cq_tail, cqes, cq_mask, cqe_size, futs, keeps, others, late) -> n"},
	{NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
	PyModuleDef_HEAD_INIT, "_aioreap", "CQ reaping for uringbpf.aio.", -1, methods,
	NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__aioreap(void)
{
	str_set_result = PyUnicode_InternFromString("set_result");
	str_done = PyUnicode_InternFromString("done");
	str_sqe_tail = PyUnicode_InternFromString("_sqe_tail");
	str_slot_keep = PyUnicode_InternFromString("_slot_keep");
	str_drop_slot_keep = PyUnicode_InternFromString("_drop_slot_keep");
	if (!str_set_result || !str_done || !str_sqe_tail || !str_slot_keep || !str_drop_slot_keep)
		return NULL;
	return PyModule_Create(&module);
}
