/* SPDX-License-Identifier: MIT */
/*
 * File copy driven by a Linux 7.1 loop_step: read a chunk, write exactly what the
 * read returned, repeat until reads return 0 -- with up to `depth` chunks in flight.
 *
 * This is what IOSQE_IO_LINK cannot do: a linked read->write pair must fix the write
 * length when it is queued, so a short read (a pipe, a socket, a signal, the tail of a
 * file) writes garbage or leaves a hole.  Here each completion decides the next
 * request: the write length is the read's result, a short write is resumed, and any
 * error stops the loop with the error recorded for the application.
 *
 * depth == 1 (the default): one request in flight, input read at offset -1 (the file
 * position), so in_fd may be a pipe or a socket; every read asks for a whole chunk.
 * Output is written at out_start + the copy's offset (out_start: the output's position
 * when the copy started, so what is already in the file stays, as with cp; ignored by
 * pipes and sockets).  Not at offset -1: a write cut short (RLIMIT_FSIZE, a full disk)
 * and resumed at -1 was seen to land at a stale position.
 *
 * depth > 1 (seekable input and output only; copy_fd checks): `depth` slots, each with
 * its own buffer at buf_addr + slot * chunk_size; slot s copies chunks s, s + depth,
 * s + 2 * depth, ... one at a time (read at in_start + the chunk's offset, written at
 * out_start + the chunk's offset; copy_fd then moves both file positions past the copy).  A short read is written and then the rest of the same chunk
 * is read again, so the copy is exact even if a read comes back short in the middle of
 * a file; a 0-byte read (end of file) ends the slot.  Every completion ready at a step is handled in that step, the
 * follow-up SQEs go to SQ_REWIND slots 0..n-1 and are submitted with ONE
 * bpf_io_uring_submit_sqes.  user_data = slot << 8 | op.
 */
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <io_uring/bpf_ops.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define UD_READ 1
#define UD_WRITE 2
#define UD_SLOT_SHIFT 8
#define MAX_DEPTH 8		/* a power of two: slot indexes are masked with it */

/* io_uring regions are whole pages: one page of the ring header is always there */
#define REGION_SIZE 4096

const volatile unsigned cq_head_offset;
const volatile unsigned cq_tail_offset;
const volatile unsigned cqes_offset;
const volatile unsigned cq_entries = 8;
const volatile unsigned sq_entries = 8;
const volatile int in_fd = -1;
const volatile int out_fd = -1;
const volatile __u64 buf_addr;		/* user address of depth * chunk_size bytes */
const volatile unsigned chunk_size = 4096;
const volatile unsigned depth = 1;	/* 1..MAX_DEPTH chunks in flight */
const volatile __u64 in_start;		/* input offset of byte 0 (depth > 1 only) */
const volatile __u64 out_start;		/* output offset of byte 0 */

__u64 copied;		/* bytes written so far */
__u64 reads, writes, short_reads, short_writes;
int error;		/* first negative result, 0 on success */
int done;		/* 1 once every slot read end of file */
/*
 * Requests submitted whose CQE this program has not consumed.  After an error stop,
 * other slots' requests may still be running on buffers the application owns: it must
 * wait for this many CQEs before freeing them (copy_fd does).
 */
__u32 pending;

static unsigned started, inflight;
/*
 * SQEs written in this step.  A volatile global, not a local: loaded back from memory it
 * is just "0..MAX_DEPTH-1" once masked, so the verifier need not follow every count
 * (a local counter is an exact value on each path and multiplies the paths to explore).
 */
static volatile unsigned nsqe;
static __u64 slot_pos[MAX_DEPTH];		/* output offset of the slot's chunk */
static __u32 slot_fill[MAX_DEPTH];		/* bytes of the chunk read so far */
static __u32 slot_wlo[MAX_DEPTH], slot_whi[MAX_DEPTH];	/* buffer range being written */

static __always_inline void fill_sqe(struct io_uring_sqe *sqe, __u8 op, int fd, __u64 addr,
				     __u32 len, __u64 off, __u64 ud)
{
	__builtin_memset(sqe, 0, sizeof(*sqe));
	sqe->opcode = op;
	sqe->fd = fd;
	sqe->addr = addr;
	sqe->len = len;
	sqe->off = off;
	sqe->user_data = ud;
}

/* read the rest of slot s's chunk (all of it when the chunk is new) */
static __always_inline void prep_read(struct io_uring_sqe *sqe, unsigned s, unsigned d,
				      unsigned chunk, __u64 addr)
{
	__u32 fill = slot_fill[s];
	__u64 off = d == 1 ? (__u64)-1 : in_start + slot_pos[s] + fill;

	reads++;
	fill_sqe(sqe, IORING_OP_READ, in_fd, addr + fill, chunk - fill, off,
		 ((__u64)s << UD_SLOT_SHIFT) | UD_READ);
}

static __always_inline void prep_write(struct io_uring_sqe *sqe, unsigned s, unsigned d,
				       __u64 addr)
{
	__u32 lo = slot_wlo[s];
	__u64 off = out_start + slot_pos[s] + lo;

	writes++;
	fill_sqe(sqe, IORING_OP_WRITE, out_fd, addr + lo, slot_whi[s] - lo, off,
		 ((__u64)s << UD_SLOT_SHIFT) | UD_WRITE);
}

SEC("struct_ops.s/cp_loop_step")
int BPF_PROG(cp_loop_step, struct io_ring_ctx *ring, struct iou_loop_params *lp)
{
	struct io_uring_sqe *sqes;
	volatile __u32 *cq_head, *cq_tail;
	unsigned head_off, tail_off, cqes_base, mask, chunk, d, n, i, k, s, fill_limit;
	__u64 stride_extra;
	__u32 head, tail;
	__u64 base, addr;
	__u8 *hdr;

	sqes = (struct io_uring_sqe *)bpf_io_uring_get_region(ring, IOU_REGION_SQ, REGION_SIZE);
	hdr = bpf_io_uring_get_region(ring, IOU_REGION_CQ, REGION_SIZE);
	if (!sqes || !hdr) {
		error = -14; /* EFAULT */
		return IOU_LOOP_STOP;
	}
	/* read each .rodata value once (a volatile is reloaded at every use) and bound it */
	head_off = cq_head_offset;
	tail_off = cq_tail_offset;
	cqes_base = cqes_offset;
	mask = cq_entries - 1;
	chunk = chunk_size;
	base = buf_addr;
	d = depth;
	if (head_off > REGION_SIZE - 4 || tail_off > REGION_SIZE - 4 || d == 0 ||
	    d > MAX_DEPTH || d > sq_entries || d > cq_entries || chunk == 0) {
		error = -22; /* EINVAL */
		return IOU_LOOP_STOP;
	}
	/*
	 * Slot s copies chunks s, s + depth, s + 2 * depth, ...: a slot is done with its chunk
	 * once it holds fill_limit bytes and then moves pos + fill + stride_extra.  Depth 1
	 * moves on after every read (fill_limit 1), so pipes get whole-chunk reads.
	 */
	fill_limit = d == 1 ? 1 : chunk;
	stride_extra = (__u64)(d - 1) * chunk;
	cq_head = (volatile __u32 *)(hdr + head_off);
	cq_tail = (volatile __u32 *)(hdr + tail_off);
	head = *cq_head;

	if (!started) {
		started = 1;
		/* slot_fill[] starts at 0 (.bss): clang would turn zeroing it here into memset */
		for (i = 0; i < MAX_DEPTH && i < d; i++) {
			slot_pos[i] = (__u64)i * chunk;
			prep_read(&sqes[i], i, d, chunk, base + (__u64)i * chunk);
		}
		nsqe = i;
		inflight = i;
	} else {
		nsqe = 0;
		tail = *cq_tail;
		/* at most one request per slot is in flight: MAX_DEPTH bounds the CQEs */
		for (k = 0; k < MAX_DEPTH && head != tail; k++) {
			unsigned off = cqes_base + (head & mask) * sizeof(struct io_uring_cqe);
			struct io_uring_cqe *cqe;
			struct io_uring_sqe *sqe;
			__u64 ud;
			int res;

			if (off > REGION_SIZE - sizeof(struct io_uring_cqe)) {
				error = -22;
				return IOU_LOOP_STOP;
			}
			cqe = (struct io_uring_cqe *)(hdr + off);
			res = cqe->res;
			ud = cqe->user_data;
			head++;
			pending--;
			if (res < 0) {
				error = res;
				*cq_head = head;
				return IOU_LOOP_STOP;
			}
			s = (ud >> UD_SLOT_SHIFT) & (MAX_DEPTH - 1);
			addr = base + (__u64)s * chunk;
			sqe = &sqes[nsqe & (MAX_DEPTH - 1)];
			if ((ud & 0xff) == UD_READ) {
				__u32 fill = slot_fill[s];

				if (res == 0) {		/* end of file: this slot is done */
					inflight--;
					continue;
				}
				if ((unsigned)res < chunk - fill)
					short_reads++;
				slot_wlo[s] = fill;
				slot_whi[s] = fill + res;
				slot_fill[s] = fill + res;
				prep_write(sqe, s, d, addr);
			} else {
				if (res == 0) {
					error = -5; /* EIO: a write that makes no progress */
					*cq_head = head;
					return IOU_LOOP_STOP;
				}
				slot_wlo[s] += res;
				copied += res;
				if (slot_wlo[s] < slot_whi[s]) {
					short_writes++;
					prep_write(sqe, s, d, addr);
				} else {
					/*
					 * a finished chunk: the slot moves on to its next one,
					 * `depth` chunks further (depth 1: right after what it
					 * read, so every read asks for a whole chunk again)
					 */
					if (slot_fill[s] >= fill_limit) {
						slot_pos[s] += slot_fill[s] + stride_extra;
						slot_fill[s] = 0;
					}
					prep_read(sqe, s, d, chunk, addr);
				}
			}
			nsqe = nsqe + 1;
		}
		*cq_head = head;
	}
	n = nsqe;
	if (n) {
		int got = bpf_io_uring_submit_sqes(ring, n);

		if (got > 0)
			pending += got;
		if (got != (int)n) {
			error = -11; /* EAGAIN: the SQEs were not all consumed */
			return IOU_LOOP_STOP;
		}
	}
	if (!inflight) {
		done = 1;
		return IOU_LOOP_STOP;
	}
	/* completions already waiting: come straight back; else sleep until the next one */
	lp->cq_wait_idx = head + (head != *cq_tail ? 0 : 1);
	return IOU_LOOP_CONTINUE;
}

SEC(".struct_ops.link")
struct io_uring_bpf_ops cp_ops = {
	.loop_step = (void *)cp_loop_step,
};
