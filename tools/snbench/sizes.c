// SPDX-License-Identifier: MIT
/*
 * snbench sizes: the message-size sweep's own rows. One producer and one
 * consumer, one message per call, messages of one size per cell (main.c
 * runs the cells: 16 B to 1 MiB, each row through the harness of
 * message_passing, so every run checks count and checksum):
 *
 *   libsn     a varlen SPSC channel (SN_CHANNEL_VARLEN, 64-byte slots),
 *             sn_try_send_len() and sn_try_recv_len(), spinning on
 *             -EAGAIN: the message is copied in and copied out;
 *   libsn_zc  the same channel without the copies: the producer
 *             sn_producer_reserve_len()s the record, writes only the header
 *             (struct snb_hdr: sequence number, stamp, length) in place
 *             and sn_producer_commit_len()s it; the consumer sn_consumer_peek_len()s it,
 *             checks length, sequence and header and sn_consumer_advance()s it.
 *             The payload is never touched: that is what zero copy buys;
 *   libsn_buf the message in one of the lane's buffers (sn_channel_opts
 *             bufs): sn_buf_get(), header written in place, sn_buf_send();
 *             the consumer sn_recv_buf()s it, checks the header and
 *             sn_buf_put()s it back; zero copy, as libsn_zc;
 *   memcpy    the yardstick: one thread copies the message into the
 *             cell's buffer (snb_sizes_buffer() bytes, slot after slot,
 *             as a channel's send copies into its lane) and reads back
 *             its header; no second thread, no queue. The working set is
 *             the cell's: the source message and the buffer, so it is
 *             cache resident up to the LLC, as the channel's lane is.
 *             A copying queue makes this copy and one more: it cannot
 *             beat it; a zero-copy one should.
 *
 * The peers (pipe, socketpair, vmsplice, uring_pipe) are in impl_sys.c.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sn/channel.h>

#include "snbench.h"

#define SIZES_MIN_BUFFER	(256U << 10)

/*
 * Every row of a cell gets the same buffer: 4 messages, 256 KiB at least
 * (the pipe's F_SETPIPE_SZ, the channel's lane, memcpy's destination), a
 * power of two.
 */
size_t snb_sizes_buffer(unsigned int size)
{
	size_t want = 4 * (size_t)size, b = SIZES_MIN_BUFFER;

	while (b < want)
		b *= 2;
	return b;
}

/* ---- libsn: a varlen SPSC channel ---- */

#define SNL_SLOT_SIZE	56	/* + the 8-byte slot header: 64-byte slots */

/* A handle: the producer or the consumer, and the cell's message size. */
struct snl_h {
	void *end;
	unsigned int size;
};

static const char *snl_skip(const struct snb_cfg *cfg, int pingpong)
{
	if (pingpong || cfg->type != SNB_SPSC || cfg->batch != 1)
		return "SPSC message passing at batch 1 only (snbench sizes)";
	return NULL;
}

struct snl_q {
	struct sn_channel *ch;
	unsigned int size;
};

/* The lane: the cell's buffer in 64-byte slots, more when the record and
 * its terminator would not fit twice. */
static void *snl_create(const struct snb_cfg *cfg)
{
	unsigned int stride = sn_var_stride(SNL_SLOT_SIZE);
	size_t slots = snb_sizes_buffer(cfg->msg_size) / stride;
	size_t rec = sn_record_slots(cfg->msg_size, sn_log2(stride));
	struct sn_channel_info info;
	struct snl_q *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return NULL;
	while (slots < 2 * (rec + 1))
		slots *= 2;
	r = sn_channel_create(&q->ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = (unsigned int)slots, .slot_size = SNL_SLOT_SIZE, .lanes = 1, .flags = SN_CHANNEL_VARLEN));
	if (r) {
		fprintf(stderr, "snbench: sn_channel_create(%zu slots, varlen): %s\n",
			slots, strerror(-r));
		free(q);
		return NULL;
	}
	sn_channel_info(q->ch, &info);
	if (info.max_msg < cfg->msg_size) {
		fprintf(stderr, "snbench: a varlen lane of %zu slots takes %u B, not %u\n",
			slots, info.max_msg, cfg->msg_size);
		sn_channel_close(q->ch);
		free(q);
		return NULL;
	}
	q->size = cfg->msg_size;
	return q;
}

static void snl_destroy(void *p)
{
	struct snl_q *q = p;

	sn_channel_close(q->ch);
	free(q);
}

static struct snl_h *snl_handle(void *end, unsigned int size)
{
	struct snl_h *h = malloc(sizeof(*h));

	if (h) {
		h->end = end;
		h->size = size;
	}
	return h;
}

static void *snl_prod_open(void *p, unsigned int idx)
{
	struct snl_q *q = p;
	struct sn_producer *prod;

	(void)idx;
	return sn_producer_open(q->ch, &prod) ? NULL :
	       snl_handle(prod, q->size);
}

static void *snl_cons_open(void *p, unsigned int idx)
{
	struct snl_q *q = p;
	struct sn_consumer *c;

	(void)idx;
	return sn_consumer_open(q->ch, &c) ? NULL : snl_handle(c, q->size);
}

static void snl_prod_close(void *p)
{
	struct snl_h *h = p;

	sn_producer_close(h->end);
	free(h);
}

static void snl_cons_close(void *p)
{
	struct snl_h *h = p;

	sn_consumer_close(h->end);
	free(h);
}

static uint64_t snl_syscalls(void *p)
{
	struct snl_q *q = p;
	struct sn_channel_stats st;

	if (sn_channel_stats(q->ch, &st))
		return UINT64_MAX;
	return st.kicks + st.sleeps;
}

/* libsn: copied in and out, one message a call (batch 1). */
static inline int snl_send(void *p, const void *msg, unsigned int n)
{
	struct snl_h *h = p;
	int r = sn_try_send_len(h->end, msg, h->size);

	(void)n;
	return !r ? 1 : r == -EAGAIN ? 0 : r;
}

static inline int snl_recv(void *p, void *msg, unsigned int n)
{
	struct snl_h *h = p;
	__u32 len = 0;
	int r = sn_try_recv_len(h->end, msg, h->size, &len);

	(void)n;
	if (!r)
		return len == h->size ? 1 : -EBADMSG;
	return r == -EAGAIN ? 0 : r;
}

static void snl_producer(struct snb_worker *w)
{
	snb_producer_loop(w, snl_send);
}

static void snl_consumer(struct snb_worker *w)
{
	snb_consumer_loop(w, snl_recv);
}

/* A libsn row of the sweep: its own producer and consumer. */
#define SNL_IMPL(name_, producer_, consumer_)				\
	{								\
		.name = name_,						\
		.skip = snl_skip,					\
		.create = snl_create,					\
		.destroy = snl_destroy,					\
		.prod_open = snl_prod_open,				\
		.cons_open = snl_cons_open,				\
		.prod_close = snl_prod_close,				\
		.cons_close = snl_cons_close,				\
		.syscalls = snl_syscalls,				\
		.producer = producer_,					\
		.consumer = consumer_,					\
	}

const struct snb_impl snb_impl_sn_len =
	SNL_IMPL("libsn", snl_producer, snl_consumer);

/* ---- libsn_zc: records written and read in place ---- */

static void snz_producer(struct snb_worker *w)
{
	struct snl_h *h = w->h;
	unsigned int spins = 0;
	uint64_t seq = 0;

	snb_start(w);
	w->t_start = snb_now_ns();
	while (seq < w->count) {
		void *buf;
		int r = sn_producer_reserve_len(h->end, h->size, &buf);

		if (r == -EAGAIN) {
			snb_backoff(&spins);
			continue;
		}
		if (!r) {
			snb_hdr_put(w, buf, seq, h->size);
			r = sn_producer_commit_len(h->end, h->size);
		}
		if (r) {
			snb_fail(w, "sn_producer_reserve_len/sn_producer_commit_len");
			break;
		}
		seq++;
		spins = 0;
	}
	w->t_end = snb_now_ns();
}

/* The record's header, copied out of the ring (@hd) before it is checked:
 * message @seq of @size bytes, length and all. */
static int snz_valid(const struct snb_hdr *hd, __u32 len, uint64_t seq,
		     unsigned int size)
{
	if (len != size || (hd->m.seq & SNB_SEQ_MASK) != seq)
		return 0;
	return size < sizeof(*hd) || hd->len == size;
}

/*
 * Takes the next message in place from @end: copies its header (at most
 * sizeof(*hd) bytes) into @hd and its length into *@len, gives the message
 * back. 0, -EAGAIN, or an error.
 */
typedef int (*snz_take_fn)(void *end, struct snb_hdr *hd, __u32 *len);

/* A zero-copy consumer: takes with @take, checks each header (@what). */
static void snz_consume(struct snb_worker *w, snz_take_fn take,
			const char *what)
{
	struct snl_h *h = w->h;
	unsigned int spins = 0;
	uint64_t seq = 0;

	snb_start(w);
	for (;;) {
		struct snb_hdr hd = { { 0, 0 }, 0 };
		__u32 len = 0;
		int r = take(h->end, &hd, &len);

		if (!r) {
			if (!snz_valid(&hd, len, seq, h->size)) {
				snb_fail(w, what);
				break;
			}
			snb_consume(w, (const unsigned char *)&hd, 1,
				    sizeof(hd));
			seq++;
			spins = 0;
			if (seq >= w->sh->expected) {
				w->t_end = snb_now_ns();
				break;
			}
			continue;
		}
		if (snb_all_received(w))
			break;
		if (r != -EAGAIN) {
			snb_fail(w, what);
			break;
		}
		snb_backoff(&spins);
	}
}

static int snz_take(void *end, struct snb_hdr *hd, __u32 *len)
{
	const void *msg = NULL;
	int r = sn_consumer_peek_len(end, &msg, len);

	if (!r) {
		memcpy(hd, msg, *len < sizeof(*hd) ? *len : sizeof(*hd));
		sn_consumer_advance(end, 1);
	}
	return r;
}

static void snz_consumer(struct snb_worker *w)
{
	snz_consume(w, snz_take, "sn_consumer_peek_len: zero-copy record");
}

const struct snb_impl snb_impl_sn_zc =
	SNL_IMPL("libsn_zc", snz_producer, snz_consumer);

/* ---- libsn_buf: the message in a buffer of the lane, passed by reference ---- */

/*
 * The same lane size for the records (each an 8-byte reference), and the
 * cell's buffer in buffers of the message's size (64-byte multiples): as
 * many as fit, 4 to SN_MAX_BUFS.
 */
static void *snbuf_create(const struct snb_cfg *cfg)
{
	unsigned int buf_size = (cfg->msg_size + 63) & ~63U;
	size_t bufs = snb_sizes_buffer(cfg->msg_size) / buf_size;
	struct sn_channel_opts o = {
		.size = sizeof(o),
		.type = SN_RING_SPSC,
		.slots = 1024,
		.slot_size = SNL_SLOT_SIZE,
		.lanes = 1,
		.flags = SN_CHANNEL_VARLEN,
	};
	struct snl_q *q = calloc(1, sizeof(*q));
	int r;

	if (!q)
		return NULL;
	o.bufs = (unsigned int)(bufs < 4 ? 4 : bufs > SN_MAX_BUFS ?
				SN_MAX_BUFS : bufs);
	o.buf_size = buf_size;
	r = sn_channel_create(&q->ch, &o);
	if (r) {
		fprintf(stderr, "snbench: sn_channel_create(%u bufs of %u B): %s\n",
			o.bufs, buf_size, strerror(-r));
		free(q);
		return NULL;
	}
	q->size = cfg->msg_size;
	return q;
}

static void snbuf_producer(struct snb_worker *w)
{
	struct snl_h *h = w->h;
	unsigned int spins = 0;
	uint64_t seq = 0;
	void *buf = NULL;
	__u32 idx = 0;
	int got = 0;

	snb_start(w);
	w->t_start = snb_now_ns();
	while (seq < w->count) {
		int r = got ? 0 : sn_buf_get(h->end, &buf, &idx);

		if (!r && !got) {
			snb_hdr_put(w, buf, seq, h->size);
			got = 1;
		}
		if (!r)
			r = sn_buf_send(h->end, idx, h->size);
		if (r == -EAGAIN) {
			snb_backoff(&spins);
			continue;
		}
		if (r) {
			snb_fail(w, "sn_buf_get/sn_buf_send");
			break;
		}
		got = 0;
		seq++;
		spins = 0;
	}
	w->t_end = snb_now_ns();
}

static int snbuf_take(void *end, struct snb_hdr *hd, __u32 *len)
{
	struct sn_buf b;
	int r = sn_recv_buf(end, &b);

	if (!r) {
		memcpy(hd, b.data, b.len < sizeof(*hd) ? b.len : sizeof(*hd));
		*len = b.len;
		sn_buf_put(end, &b);
	}
	return r;
}

static void snbuf_consumer(struct snb_worker *w)
{
	snz_consume(w, snbuf_take, "sn_recv_buf: buffer message");
}

const struct snb_impl snb_impl_sn_buf = {
	.name = "libsn_buf",
	.skip = snl_skip,
	.create = snbuf_create,
	.destroy = snl_destroy,
	.prod_open = snl_prod_open,
	.cons_open = snl_cons_open,
	.prod_close = snl_prod_close,
	.cons_close = snl_cons_close,
	.syscalls = snl_syscalls,
	.producer = snbuf_producer,
	.consumer = snbuf_consumer,
};

/* ---- memcpy: one thread, the copy a channel's send makes ---- */

struct mc_q {
	unsigned char *src, *dst;
	size_t n;			/* messages dst holds */
	unsigned int size;
};

static void *mc_create(const struct snb_cfg *cfg)
{
	struct mc_q *q = calloc(1, sizeof(*q));
	size_t dst = snb_sizes_buffer(cfg->msg_size);

	if (!q)
		return NULL;
	q->size = cfg->msg_size;
	q->n = dst / cfg->msg_size;
	q->src = snb_buf_alloc(cfg->msg_size, 1);
	q->dst = snb_buf_alloc(cfg->msg_size, (unsigned int)q->n);
	/* every page touched before the timed loop */
	memset(q->src, 0, cfg->msg_size);
	memset(q->dst, 0, q->n * cfg->msg_size);
	return q;
}

static void mc_destroy(void *p)
{
	struct mc_q *q = p;

	snb_buf_free(q->src);
	snb_buf_free(q->dst);
	free(q);
}

/*
 * The producer's thread does it all: message seq's header into src, src
 * copied to the next message of dst, the header read back from dst and
 * counted as the consumer counts it; then it hands the consumer's worker
 * the count, checksum and end time, as if it had received them.
 */
static void mc_producer(struct snb_worker *w)
{
	struct mc_q *q = w->h;
	struct snb_worker *c = &w->sh->cons[0];
	uint64_t seq, sum = 0;
	size_t i = 0;

	snb_start(w);
	w->t_start = snb_now_ns();
	for (seq = 0; seq < w->count; seq++) {
		unsigned char *d = q->dst + i * q->size;

		snb_hdr_put(w, q->src, seq, q->size);
		memcpy(d, q->src, q->size);
		__asm__ __volatile__("" ::: "memory");
		sum += ((const struct snb_msg *)d)->seq & SNB_SEQ_MASK;
		if (++i == q->n)
			i = 0;
	}
	w->t_end = c->t_end = snb_now_ns();
	c->sum = sum;
	atomic_store(&c->received, seq);
}

/* The consumer's thread only starts with the producer's, then leaves. */
static void mc_consumer(struct snb_worker *w)
{
	snb_start(w);
}

const struct snb_impl snb_impl_memcpy = {
	.name = "memcpy",
	.skip = snl_skip,
	.create = mc_create,
	.destroy = mc_destroy,
	.prod_open = snb_open_queue,
	.cons_open = snb_open_queue,
	.prod_close = snb_close_none,
	.cons_close = snb_close_none,
	.producer = mc_producer,
	.consumer = mc_consumer,
};
