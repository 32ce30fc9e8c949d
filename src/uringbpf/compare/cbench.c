/*
 * The C liburing column of `uringbpf compare` (and the echo client every echo server
 * is driven by). One program, one subcommand per workload; each prints one line of
 * JSON: {"ops":..,"bytes":..,"secs":..,"cpu":..,"enters":..,...}. Timing covers the
 * I/O loop only (ring set up before); "enters" counts the submit/wait calls we made
 * (each is at most one io_uring_enter). Compiled on the fly with cc -O2 -luring.
 *
 *   cbench nop K TOTAL
 *   cbench cp IN OUT CHUNK          IN "-" = stdin (a pipe: reads come back short)
 *   cbench cksum IN OUT BLOCK       prints the crc32c of every block too
 *   cbench echo PORT CONNS MSG      server: accept CONNS, recv -> send until EOF
 *   cbench client PORT CONNS MSG ROUNDS   blocking client, checks every echoed byte
 */
#include <liburing.h>
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

static unsigned long long enters;

static double now(clockid_t c)
{
	struct timespec ts;
	clock_gettime(c, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int submit_wait(struct io_uring *r, unsigned n)
{
	enters++;
	int ret = io_uring_submit_and_wait(r, n);
	if (ret < 0 && ret != -EINTR) {
		fprintf(stderr, "io_uring_submit_and_wait: %s\n", strerror(-ret));
		exit(2);
	}
	return ret;
}

static struct io_uring_cqe *wait_one(struct io_uring *r)
{
	struct io_uring_cqe *cqe;
	for (;;) {
		if (io_uring_peek_cqe(r, &cqe) == 0)
			return cqe;
		submit_wait(r, 1);
	}
}

static void report(const char *extra, unsigned long long ops, unsigned long long bytes,
		   double secs, double cpu)
{
	printf("{\"ops\": %llu, \"bytes\": %llu, \"secs\": %.9f, \"cpu\": %.9f, \"enters\": %llu%s}\n",
	       ops, bytes, secs, cpu, enters, extra ? extra : "");
}

static int nop(unsigned k, unsigned long total)
{
	struct io_uring ring;
	struct io_uring_cqe *cqe;
	unsigned long done = 0, issued = 0;
	unsigned head, n;
	if (io_uring_queue_init(64, &ring, 0) < 0)
		return 1;
	double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (unsigned i = 0; i < k; i++, issued++) {
		struct io_uring_sqe *s = io_uring_get_sqe(&ring);
		io_uring_prep_nop(s);
		io_uring_sqe_set_data64(s, i + 1);
	}
	while (done < total) {
		submit_wait(&ring, 1);
		n = 0;
		io_uring_for_each_cqe(&ring, head, cqe) {
			n++;
			if (cqe->res != 0)
				return 3;
			if (issued < total) {
				struct io_uring_sqe *s = io_uring_get_sqe(&ring);
				io_uring_prep_nop(s);
				io_uring_sqe_set_data64(s, cqe->user_data);
				issued++;
			}
		}
		io_uring_cq_advance(&ring, n);
		done += n;
	}
	report(NULL, done, 0, now(CLOCK_MONOTONIC) - t0, now(CLOCK_PROCESS_CPUTIME_ID) - c0);
	io_uring_queue_exit(&ring);
	return 0;
}

/* read (at the file position: works for pipes and files), write exactly what was
 * read, resume short writes, stop at EOF. One chunk in flight. */
static int cp(int in, int out, unsigned chunk)
{
	struct io_uring ring;
	char *buf = malloc(chunk);
	unsigned long long copied = 0, reads = 0, shorts = 0;
	if (!buf || io_uring_queue_init(8, &ring, 0) < 0)
		return 1;
	double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (;;) {
		io_uring_prep_read(io_uring_get_sqe(&ring), in, buf, chunk, -1);
		struct io_uring_cqe *cqe = wait_one(&ring);
		int got = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (got < 0) {
			fprintf(stderr, "read: %s\n", strerror(-got));
			return 4;
		}
		if (got == 0)
			break;
		reads++;
		shorts += (unsigned)got < chunk;
		int off = 0;
		while (off < got) {
			io_uring_prep_write(io_uring_get_sqe(&ring), out, buf + off, got - off, -1);
			cqe = wait_one(&ring);
			int w = cqe->res;
			io_uring_cqe_seen(&ring, cqe);
			if (w <= 0) {
				fprintf(stderr, "write: %s\n", strerror(-w));
				return 5;
			}
			off += w;
		}
		copied += got;
	}
	char extra[96];
	snprintf(extra, sizeof extra, ", \"reads\": %llu, \"short_reads\": %llu", reads, shorts);
	report(extra, reads, copied, now(CLOCK_MONOTONIC) - t0, now(CLOCK_PROCESS_CPUTIME_ID) - c0);
	return 0;
}

static uint32_t crc_table[256];

static void crc_init(void)
{
	for (uint32_t i = 0; i < 256; i++) {
		uint32_t c = i;
		for (int k = 0; k < 8; k++)
			c = c & 1 ? (c >> 1) ^ 0x82F63B78u : c >> 1;
		crc_table[i] = c;
	}
}

/* crc32c (Castagnoli), the same function as the BPF programs (bpf_crc32c semantics:
 * ~0 in, ~ out), byte-wise table: what a portable C program does without SSE4.2. */
static uint32_t crc32c(const unsigned char *p, size_t n)
{
	uint32_t c = 0xFFFFFFFFu;
	while (n--)
		c = crc_table[(c ^ *p++) & 0xFF] ^ (c >> 8);
	return c ^ 0xFFFFFFFFu;
}

/* per block: READ at its offset, crc32c in C, WRITE at the same offset */
static int cksum(int in, int out, unsigned block)
{
	struct io_uring ring;
	char *buf = malloc(block);
	unsigned long long off = 0, blocks = 0;
	if (!buf || io_uring_queue_init(8, &ring, 0) < 0)
		return 1;
	crc_init();
	size_t cap = 1024, len = 0;
	uint32_t *crcs = malloc(cap * sizeof *crcs);
	double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (;;) {
		io_uring_prep_read(io_uring_get_sqe(&ring), in, buf, block, off);
		struct io_uring_cqe *cqe = wait_one(&ring);
		int got = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (got < 0)
			return 4;
		if (got == 0)
			break;
		if (len == cap)
			crcs = realloc(crcs, (cap *= 2) * sizeof *crcs);
		crcs[len++] = crc32c((unsigned char *)buf, got);
		io_uring_prep_write(io_uring_get_sqe(&ring), out, buf, got, off);
		cqe = wait_one(&ring);
		int w = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		if (w != got)
			return 5;
		off += got;
		blocks++;
	}
	double secs = now(CLOCK_MONOTONIC) - t0, cpu = now(CLOCK_PROCESS_CPUTIME_ID) - c0;
	size_t sz = 32 + len * 12;
	char *extra = malloc(sz), *p = extra;
	p += sprintf(p, ", \"crcs\": [");
	for (size_t i = 0; i < len; i++)
		p += sprintf(p, "%s%u", i ? ", " : "", crcs[i]);
	sprintf(p, "]");
	report(extra, blocks, off, secs, cpu);
	return 0;
}

static int listen_on(int port)
{
	int s = socket(AF_INET, SOCK_STREAM, 0), one = 1;
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	setsockopt(s, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
	if (bind(s, (struct sockaddr *)&a, sizeof a) < 0 || listen(s, 128) < 0)
		return -1;
	return s;
}

/* server: accept CONNS connections, then per connection recv -> send (all of it) until
 * the peer closes; user_data = conn << 1 | (0 recv, 1 send) */
static int echo(int port, unsigned conns, unsigned msg)
{
	struct io_uring ring;
	int ls = listen_on(port);
	if (ls < 0 || io_uring_queue_init(2 * conns + 8, &ring, 0) < 0)
		return 1;
	printf("ready\n");
	fflush(stdout);
	int *fds = calloc(conns, sizeof *fds);
	unsigned *sent = calloc(conns, sizeof *sent), *have = calloc(conns, sizeof *have);
	char **bufs = calloc(conns, sizeof *bufs);
	for (unsigned i = 0; i < conns; i++) {
		fds[i] = accept(ls, NULL, NULL);
		int one = 1;
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		bufs[i] = malloc(msg);
	}
	double t0 = now(CLOCK_MONOTONIC), c0 = now(CLOCK_PROCESS_CPUTIME_ID);
	for (unsigned i = 0; i < conns; i++) {
		struct io_uring_sqe *s = io_uring_get_sqe(&ring);
		io_uring_prep_recv(s, fds[i], bufs[i], msg, 0);
		io_uring_sqe_set_data64(s, (uint64_t)i << 1);
	}
	unsigned open = conns;
	unsigned long long bytes = 0, ops = 0;
	while (open) {
		struct io_uring_cqe *cqe = wait_one(&ring);
		uint64_t ud = cqe->user_data;
		int res = cqe->res;
		io_uring_cqe_seen(&ring, cqe);
		unsigned c = ud >> 1;
		struct io_uring_sqe *s;
		if (res < 0)
			return 4;
		ops++;
		if (!(ud & 1)) {            /* recv done */
			if (res == 0) {
				open--;
				continue;
			}
			have[c] = res;
			sent[c] = 0;
			s = io_uring_get_sqe(&ring);
			io_uring_prep_send(s, fds[c], bufs[c], res, 0);
			io_uring_sqe_set_data64(s, ud | 1);
		} else {
			sent[c] += res;
			bytes += res;
			s = io_uring_get_sqe(&ring);
			if (sent[c] < have[c]) {
				io_uring_prep_send(s, fds[c], bufs[c] + sent[c], have[c] - sent[c], 0);
				io_uring_sqe_set_data64(s, ud);
			} else {
				io_uring_prep_recv(s, fds[c], bufs[c], msg, 0);
				io_uring_sqe_set_data64(s, ud & ~1ull);
			}
		}
	}
	report(NULL, ops, bytes, now(CLOCK_MONOTONIC) - t0, now(CLOCK_PROCESS_CPUTIME_ID) - c0);
	return 0;
}

static int read_full(int fd, char *p, unsigned n)
{
	while (n) {
		ssize_t r = read(fd, p, n);
		if (r <= 0)
			return -1;
		p += r;
		n -= r;
	}
	return 0;
}

/* client: CONNS connections; per round, each sends MSG bytes (a pattern depending on
 * connection and round) then reads MSG back and compares. Exit 6 on any difference. */
static int client(int port, unsigned conns, unsigned msg, unsigned rounds)
{
	struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(port),
				.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
	int *fds = calloc(conns, sizeof *fds);
	char *out = malloc(msg), *in = malloc(msg);
	for (unsigned i = 0; i < conns; i++) {
		fds[i] = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
		if (connect(fds[i], (struct sockaddr *)&a, sizeof a) < 0)
			return 1;
	}
	unsigned long long bad = 0;
	for (unsigned r = 0; r < rounds; r++) {
		for (unsigned i = 0; i < conns; i++) {
			for (unsigned b = 0; b < msg; b++)
				out[b] = (char)(b * 31 + i * 7 + r * 13);
			if (write(fds[i], out, msg) != (ssize_t)msg)
				return 2;
		}
		for (unsigned i = 0; i < conns; i++) {
			if (read_full(fds[i], in, msg) < 0)
				return 3;
			for (unsigned b = 0; b < msg; b++)
				bad += in[b] != (char)(b * 31 + i * 7 + r * 13);
		}
	}
	for (unsigned i = 0; i < conns; i++)
		close(fds[i]);
	printf("{\"bad\": %llu, \"bytes\": %llu}\n", bad, (unsigned long long)rounds * conns * msg);
	return bad ? 6 : 0;
}

int main(int argc, char **argv)
{
	if (argc >= 4 && !strcmp(argv[1], "nop"))
		return nop(atoi(argv[2]), strtoul(argv[3], NULL, 10));
	if (argc >= 5 && !strcmp(argv[1], "cp") ) {
		int in = strcmp(argv[2], "-") ? open(argv[2], O_RDONLY) : 0;
		int out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		return cp(in, out, atoi(argv[4]));
	}
	if (argc >= 5 && !strcmp(argv[1], "cksum")) {
		int in = open(argv[2], O_RDONLY), out = open(argv[3], O_WRONLY | O_CREAT | O_TRUNC, 0644);
		return cksum(in, out, atoi(argv[4]));
	}
	if (argc >= 5 && !strcmp(argv[1], "echo"))
		return echo(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]));
	if (argc >= 6 && !strcmp(argv[1], "client"))
		return client(atoi(argv[2]), atoi(argv[3]), atoi(argv[4]), atoi(argv[5]));
	fprintf(stderr, "usage: see the comment at the top of cbench.c\n");
	return 64;
}
