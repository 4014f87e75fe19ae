// SPDX-License-Identifier: MIT
/*
 * snbench peers through the kernel: a pipe, a unix stream socket pair, an
 * eventfd beside a shared buffer, and io_uring IORING_OP_MSG_RING beside a
 * shared buffer. Each is used the way such code usually is: the pipe and the
 * socket carry the bytes and their readers sleep in read(); the eventfd's
 * writer signals every send and its reader sleeps in read() when the buffer
 * is empty; the io_uring producer posts one MSG_RING completion per send
 * into the consumer's ring, whose consumer polls its completion queue.
 * For the sizes sweep, two more on a pipe: vmsplice (the producer's pages
 * spliced in, no copy on the send side) and uring_pipe (io_uring's
 * IORING_OP_WRITE and IORING_OP_READ).
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "snbench.h"

/* ---- byte streams: pipe and socket pair ---- */

struct stream_q {
	int rfd, wfd;
	unsigned int size;
	long pipe_bytes;		/* pipe: its buffer, F_GETPIPE_SZ */
};

/*
 * Gives pipe @fd a buffer of @want bytes (a page at least); without
 * CAP_SYS_RESOURCE, at most /proc/sys/fs/pipe-max-size (1 MiB by default)
 * when @want is above it. Returns the buffer's size.
 */
static long pipe_grow(int fd, long want)
{
	long max = 1 << 20;
	FILE *f;
	int err;

	if (want < 4096)
		want = 4096;
	if (fcntl(fd, F_SETPIPE_SZ, want) >= 0)
		return fcntl(fd, F_GETPIPE_SZ);
	err = errno;
	if (err == EPERM && (f = fopen("/proc/sys/fs/pipe-max-size", "r"))) {
		if (fscanf(f, "%ld", &max) != 1)
			max = 1 << 20;
		fclose(f);
	}
	if (err != EPERM || want <= max || fcntl(fd, F_SETPIPE_SZ, max) < 0)
		fprintf(stderr, "snbench: F_SETPIPE_SZ: %s\n", strerror(err));
	return fcntl(fd, F_GETPIPE_SZ);
}

/* A queue of @qsize bytes that starts with its struct stream_q. */
static void *stream_create(const struct snb_cfg *cfg, int sock, size_t qsize)
{
	struct stream_q *q = calloc(1, qsize);
	int fd[2];

	if (!q)
		return NULL;
	if (sock ? socketpair(AF_UNIX, SOCK_STREAM, 0, fd) : pipe(fd)) {
		perror("snbench: pipe/socketpair");
		free(q);
		return NULL;
	}
	q->rfd = fd[0];
	q->wfd = fd[1];
	q->size = cfg->msg_size;
	/* the pipe holds capacity * producers messages (a page at least);
	 * the sockets keep their default buffers */
	if (!sock)
		q->pipe_bytes = pipe_grow(q->wfd, (long)cfg->capacity *
					  cfg->producers * cfg->msg_size);
	return q;
}

static void *pipe_create(const struct snb_cfg *cfg)
{
	return stream_create(cfg, 0, sizeof(struct stream_q));
}

static void *sock_create(const struct snb_cfg *cfg)
{
	return stream_create(cfg, 1, sizeof(struct stream_q));
}

static void stream_shutdown(void *p)
{
	struct stream_q *q = p;

	/* readers see end of file */
	if (q->wfd >= 0) {
		close(q->wfd);
		q->wfd = -1;
	}
}

static void stream_destroy(void *p)
{
	struct stream_q *q = p;

	stream_shutdown(q);
	close(q->rfd);
	free(q);
}

/* A peer of this file: the handles are the queue itself, nothing to close. */
#define SYS_IMPL(name_, skip_, create_, destroy_, shutdown_, loops_)	\
	{								\
		.name = name_,						\
		.skip = skip_,						\
		.create = create_,					\
		.destroy = destroy_,					\
		.prod_open = snb_open_queue,				\
		.cons_open = snb_open_queue,				\
		.prod_close = snb_close_none,				\
		.cons_close = snb_close_none,				\
		.shutdown = shutdown_,					\
		.producer = loops_##_producer,				\
		.consumer = loops_##_consumer,				\
		.ping = loops_##_ping,					\
		.pong = loops_##_pong,					\
	}

/* Writes of a few messages are whole (a pipe's up to PIPE_BUF, a unix
 * stream socket's one skb), so readers see whole messages except when a
 * read stops inside a large write: then the rest is read at once. */
static inline int stream_send(void *h, const void *msgs, unsigned int n)
{
	struct stream_q *q = h;
	size_t len = (size_t)n * q->size, done = 0;

	while (done < len) {
		ssize_t r = write(q->wfd, (const char *)msgs + done, len - done);

		if (r < 0) {
			if (errno == EINTR)
				continue;
			return -1;
		}
		done += (size_t)r;
	}
	return (int)n;
}

static inline int stream_recv(void *h, void *msgs, unsigned int n)
{
	struct stream_q *q = h;
	ssize_t r = read(q->rfd, msgs, (size_t)n * q->size);
	size_t got, rest;

	if (r <= 0)
		return r < 0 && errno == EINTR ? 0 : -1;
	got = (size_t)r;
	rest = got % q->size;
	while (rest) {
		r = read(q->rfd, (char *)msgs + got, q->size - rest);
		if (r <= 0)
			return -1;
		got += (size_t)r;
		rest = got % q->size;
	}
	return (int)(got / q->size);
}

SNB_DEFINE_LOOPS(stream, stream_send, stream_recv)

const struct snb_impl snb_impl_pipe =
	SYS_IMPL("pipe", NULL, pipe_create, stream_destroy, stream_shutdown,
		 stream);

const struct snb_impl snb_impl_socketpair =
	SYS_IMPL("socketpair", NULL, sock_create, stream_destroy,
		 stream_shutdown, stream);

/* The sweep's peers (snbench sizes) carry one message per call. */
static const char *one_by_one(const struct snb_cfg *cfg, int pingpong)
{
	if (pingpong || cfg->type != SNB_SPSC || cfg->batch != 1)
		return "SPSC message passing at batch 1 only (snbench sizes)";
	return NULL;
}

/* ---- vmsplice: the producer's pages into a pipe, read() out ---- */

/*
 * The producer vmsplice()s each message from its own memory into a pipe:
 * the pipe takes references to its pages, no copy on the send side; the
 * consumer read()s it out (one copy, the stream consumer). A page in the
 * pipe is still the producer's, so it must not write it again before the
 * consumer has read it: message i goes to buffer i % nbuf, and nbuf is
 * more than the messages the pipe can hold. Spliced pages never merge,
 * so each message takes at least one of the pipe's page slots, one of k
 * pages k of them: when the producer comes back to a buffer, the pipe has
 * room for it only because what the buffer held was read.
 */
struct vms_q {
	struct stream_q s;		/* first: the stream consumer's */
	unsigned char *bufs;
	unsigned int nbuf;
};

static void *vms_create(const struct snb_cfg *cfg)
{
	struct vms_q *q = stream_create(cfg, 0, sizeof(*q));
	size_t pages = ((size_t)cfg->msg_size + 4095) / 4096, len;

	if (!q)
		return NULL;
	q->nbuf = (unsigned int)((size_t)q->s.pipe_bytes / 4096 / pages) + 2;
	len = ((size_t)q->nbuf * cfg->msg_size + 4095) & ~(size_t)4095;
	q->bufs = aligned_alloc(4096, len);
	if (!q->bufs) {
		stream_destroy(q);
		return NULL;
	}
	memset(q->bufs, 0, len);
	return q;
}

static void vms_destroy(void *p)
{
	struct vms_q *q = p;

	free(q->bufs);
	stream_destroy(q);
}

static void vms_producer(struct snb_worker *w)
{
	struct vms_q *q = w->h;
	unsigned int size = q->s.size, i = 0;
	uint64_t seq;

	snb_start(w);
	w->t_start = snb_now_ns();
	for (seq = 0; seq < w->count; seq++) {
		struct iovec iov = { q->bufs + (size_t)i * size, size };

		snb_hdr_put(w, iov.iov_base, seq, size);
		if (++i == q->nbuf)
			i = 0;
		while (iov.iov_len) {
			ssize_t r = vmsplice(q->s.wfd, &iov, 1, 0);

			if (r < 0 && errno == EINTR)
				continue;
			if (r < 0) {
				snb_fail(w, "vmsplice");
				goto out;
			}
			iov.iov_base = (char *)iov.iov_base + r;
			iov.iov_len -= (size_t)r;
		}
	}
out:
	w->t_end = snb_now_ns();
}

const struct snb_impl snb_impl_vmsplice = {
	.name = "vmsplice",
	.skip = one_by_one,
	.create = vms_create,
	.destroy = vms_destroy,
	.prod_open = snb_open_queue,
	.cons_open = snb_open_queue,
	.prod_close = snb_close_none,
	.cons_close = snb_close_none,
	.shutdown = stream_shutdown,
	.producer = vms_producer,
	.consumer = stream_consumer,
};

/* ---- io_uring IORING_OP_WRITE and IORING_OP_READ on a pipe ---- */

/*
 * The pipe's bytes through io_uring: the producer's ring submits a write
 * of the message and waits for its completion (again for the rest after a
 * short write), the consumer's ring a read of one message (again for the
 * rest after a short read). One request in flight per side, so the
 * messages stay in order; io_uring_submit_and_wait() is one syscall per
 * request, and a request the pipe cannot take yet waits in the kernel
 * (poll) as a blocking write() or read() would.
 */
struct urp_q {
	struct stream_q s;		/* first: stream_shutdown's */
	struct io_uring pring, cring;	/* the producer's, the consumer's */
};

static void *urp_create(const struct snb_cfg *cfg)
{
	struct urp_q *q = stream_create(cfg, 0, sizeof(*q));
	int r;

	if (!q)
		return NULL;
	r = io_uring_queue_init(4, &q->pring, 0);
	if (!r) {
		r = io_uring_queue_init(4, &q->cring, 0);
		if (r)
			io_uring_queue_exit(&q->pring);
	}
	if (r) {
		fprintf(stderr, "snbench: io_uring_queue_init: %s\n",
			strerror(-r));
		stream_destroy(q);
		return NULL;
	}
	return q;
}

static void urp_destroy(void *p)
{
	struct urp_q *q = p;

	io_uring_queue_exit(&q->cring);
	io_uring_queue_exit(&q->pring);
	stream_destroy(q);
}

/* Writes (@wr) or reads all @len bytes at @buf through @ring: 0 or -1. */
static inline int urp_io(struct io_uring *ring, int fd, char *buf, size_t len,
			 int wr)
{
	struct io_uring_cqe *cqe;
	size_t done = 0;

	while (done < len) {
		struct io_uring_sqe *sqe = io_uring_get_sqe(ring);
		int r;

		if (!sqe)
			return -1;
		if (wr)
			io_uring_prep_write(sqe, fd, buf + done,
					    (unsigned int)(len - done), -1);
		else
			io_uring_prep_read(sqe, fd, buf + done,
					   (unsigned int)(len - done), -1);
		do
			r = io_uring_submit_and_wait(ring, 1);
		while (r == -EINTR);
		if (r < 0)
			return -1;
		do
			r = io_uring_wait_cqe(ring, &cqe);
		while (r == -EINTR);
		if (r < 0)
			return -1;
		r = cqe->res;
		io_uring_cqe_seen(ring, cqe);
		if (r == -EINTR || r == -EAGAIN)
			continue;
		if (r <= 0)
			return -1;	/* an error, or end of file */
		done += (size_t)r;
	}
	return 0;
}

static inline int urp_send(void *h, const void *msgs, unsigned int n)
{
	struct urp_q *q = h;

	return urp_io(&q->pring, q->s.wfd, (char *)msgs, (size_t)n * q->s.size,
		      1) ? -1 : (int)n;
}

static inline int urp_recv(void *h, void *msgs, unsigned int n)
{
	struct urp_q *q = h;

	(void)n;
	return urp_io(&q->cring, q->s.rfd, msgs, q->s.size, 0) ? -1 : 1;
}

SNB_DEFINE_LOOPS(urp, urp_send, urp_recv)

const struct snb_impl snb_impl_uring_pipe =
	SYS_IMPL("uring_pipe", one_by_one, urp_create, urp_destroy,
		 stream_shutdown, urp);

/* ---- a shared SPSC buffer for the notification peers ---- */

struct buf_q {
	_Alignas(128) _Atomic uint32_t tail;	/* producer's */
	uint32_t head_cache;
	_Alignas(128) _Atomic uint32_t head;	/* consumer's */
	uint32_t credits;		/* io_uring: announced, not taken */
	_Alignas(128) unsigned char *slots;
	uint32_t mask, size;
	int efd;
	_Atomic int shut;
	struct io_uring cring, pring;	/* io_uring: consumer's, producer's */
	unsigned int pending;		/* producer's MSG_RING not reaped */
};

static const char *spsc_only(const struct snb_cfg *cfg, int pingpong)
{
	if (!pingpong && cfg->type != SNB_SPSC)
		return "single producer, single consumer only";
	if (cfg->capacity & (cfg->capacity - 1))
		return "capacity must be a power of two";
	return NULL;
}

static struct buf_q *buf_create(const struct snb_cfg *cfg)
{
	struct buf_q *q = aligned_alloc(128, sizeof(*q));

	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->mask = cfg->capacity - 1;
	q->size = cfg->msg_size;
	q->efd = -1;
	q->slots = aligned_alloc(64, (size_t)cfg->capacity * cfg->msg_size);
	if (!q->slots) {
		free(q);
		return NULL;
	}
	return q;
}

static void buf_destroy(struct buf_q *q)
{
	free(q->slots);
	free(q);
}

/* Copies up to @n messages in; returns how many (0: full). */
static inline unsigned int buf_put(struct buf_q *q, const void *msgs,
				   unsigned int n)
{
	uint32_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint32_t room = q->mask + 1 - (t - q->head_cache), i;

	if (room < n) {
		q->head_cache = atomic_load_explicit(&q->head,
						     memory_order_acquire);
		room = q->mask + 1 - (t - q->head_cache);
	}
	if (n > room)
		n = room;
	for (i = 0; i < n; i++)
		memcpy(q->slots + (size_t)((t + i) & q->mask) * q->size,
		       (const char *)msgs + (size_t)i * q->size, q->size);
	atomic_store_explicit(&q->tail, t + n, memory_order_release);
	return n;
}

/* Copies out up to @n of the @avail messages known to be there. */
static inline unsigned int buf_get(struct buf_q *q, void *msgs,
				   unsigned int n, uint32_t avail)
{
	uint32_t h = atomic_load_explicit(&q->head, memory_order_relaxed), i;

	if (n > avail)
		n = avail;
	for (i = 0; i < n; i++)
		memcpy((char *)msgs + (size_t)i * q->size,
		       q->slots + (size_t)((h + i) & q->mask) * q->size,
		       q->size);
	atomic_store_explicit(&q->head, h + n, memory_order_release);
	return n;
}

/* ---- eventfd ---- */

static void *efd_create(const struct snb_cfg *cfg)
{
	struct buf_q *q = buf_create(cfg);

	if (!q)
		return NULL;
	q->efd = eventfd(0, 0);
	if (q->efd < 0) {
		perror("snbench: eventfd");
		buf_destroy(q);
		return NULL;
	}
	return q;
}

static void efd_destroy(void *p)
{
	struct buf_q *q = p;

	close(q->efd);
	buf_destroy(q);
}

static void efd_shutdown(void *p)
{
	struct buf_q *q = p;
	uint64_t one = 1;

	atomic_store(&q->shut, 1);
	if (write(q->efd, &one, sizeof(one)) < 0)
		perror("snbench: eventfd write");
}

static inline int efd_send(void *h, const void *msgs, unsigned int n)
{
	struct buf_q *q = h;
	uint64_t k = buf_put(q, msgs, n);

	if (k && write(q->efd, &k, sizeof(k)) != sizeof(k))
		return -1;
	return (int)k;
}

static inline int efd_recv(void *h, void *msgs, unsigned int n)
{
	struct buf_q *q = h;
	uint32_t avail;
	uint64_t cnt;

	for (;;) {
		avail = atomic_load_explicit(&q->tail, memory_order_acquire) -
			atomic_load_explicit(&q->head, memory_order_relaxed);
		if (avail)
			return (int)buf_get(q, msgs, n, avail);
		if (atomic_load_explicit(&q->shut, memory_order_relaxed))
			return -1;
		/* empty: sleep until the producer signals */
		if (read(q->efd, &cnt, sizeof(cnt)) != sizeof(cnt) &&
		    errno != EINTR)
			return -1;
	}
}

SNB_DEFINE_LOOPS(efd, efd_send, efd_recv)

const struct snb_impl snb_impl_eventfd =
	SYS_IMPL("eventfd", spsc_only, efd_create, efd_destroy, efd_shutdown,
		 efd);

/* ---- io_uring IORING_OP_MSG_RING ---- */

static void *uring_create(const struct snb_cfg *cfg)
{
	struct io_uring_params p = { .flags = IORING_SETUP_CQSIZE };
	struct buf_q *q = buf_create(cfg);
	int r;

	if (!q)
		return NULL;
	/* every completion announces at least one buffered message */
	p.cq_entries = cfg->capacity < 8 ? 8 : cfg->capacity;
	r = io_uring_queue_init_params(8, &q->cring, &p);
	if (!r) {
		memset(&p, 0, sizeof(p));
		p.flags = IORING_SETUP_CQSIZE;
		p.cq_entries = 4 * 64;
		r = io_uring_queue_init_params(64, &q->pring, &p);
		if (r)
			io_uring_queue_exit(&q->cring);
	}
	if (r) {
		fprintf(stderr, "snbench: io_uring_queue_init: %s\n",
			strerror(-r));
		buf_destroy(q);
		return NULL;
	}
	return q;
}

static void uring_destroy(void *p)
{
	struct buf_q *q = p;

	io_uring_queue_exit(&q->pring);
	io_uring_queue_exit(&q->cring);
	buf_destroy(q);
}

/* Reaps the producer's own completions of its MSG_RING operations. */
static inline int uring_reap(struct buf_q *q)
{
	struct io_uring_cqe *cqes[64];
	unsigned int k, i;

	while ((k = io_uring_peek_batch_cqe(&q->pring, cqes, 64))) {
		for (i = 0; i < k; i++)
			if (cqes[i]->res < 0) {
				fprintf(stderr, "snbench: MSG_RING: %s\n",
					strerror(-cqes[i]->res));
				return -1;
			}
		io_uring_cq_advance(&q->pring, k);
		q->pending -= k;
	}
	return 0;
}

static inline int uring_send(void *h, const void *msgs, unsigned int n)
{
	struct buf_q *q = h;
	struct io_uring_sqe *sqe;
	unsigned int k;

	if (q->pending >= 64 && uring_reap(q))
		return -1;
	k = buf_put(q, msgs, n);
	if (!k)
		return 0;
	sqe = io_uring_get_sqe(&q->pring);
	if (!sqe)
		return -1;
	io_uring_prep_msg_ring(sqe, q->cring.ring_fd, k, 0, 0);
	if (io_uring_submit(&q->pring) != 1)
		return -1;
	q->pending++;
	return (int)k;
}

static inline int uring_recv(void *h, void *msgs, unsigned int n)
{
	struct buf_q *q = h;
	struct io_uring_cqe *cqe;
	unsigned int k;

	/* the completions announce the messages: take the credits */
	while (q->credits < n && !io_uring_peek_cqe(&q->cring, &cqe)) {
		q->credits += (uint32_t)cqe->res;
		io_uring_cqe_seen(&q->cring, cqe);
	}
	if (!q->credits)
		return 0;
	k = buf_get(q, msgs, n, q->credits);
	q->credits -= k;
	return (int)k;
}

SNB_DEFINE_LOOPS(uring, uring_send, uring_recv)

const struct snb_impl snb_impl_uring =
	SYS_IMPL("io_uring", spsc_only, uring_create, uring_destroy, NULL,
		 uring);
