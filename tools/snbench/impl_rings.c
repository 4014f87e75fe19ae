// SPDX-License-Identifier: MIT
/*
 * snbench peers: DPDK rte_ring (elem API on plain memory, no EAL) and
 * Concurrency Kit ck_ring (typed rings, one type per message size: it
 * copies whole structs). Both hold the same number of messages as libsn's
 * lanes together (capacity * producers); ck_ring holds one fewer.
 */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <rte_ring.h>
#include <rte_ring_elem.h>
#include <ck_ring.h>

#include "snbench.h"

/* ---- rte_ring ---- */

struct rte_q {
	struct rte_ring *r;
	unsigned int esize;
} __attribute__((aligned(64)));

static const char *rte_skip(const struct snb_cfg *cfg, int pingpong)
{
	(void)pingpong;
	if ((cfg->capacity * cfg->producers) & (cfg->capacity * cfg->producers - 1))
		return "capacity * producers must be a power of two";
	return NULL;
}

static void *rte_create(const struct snb_cfg *cfg)
{
	unsigned int count = cfg->capacity * cfg->producers;
	unsigned int flags = RING_F_EXACT_SZ;
	struct rte_q *q = aligned_alloc(64, sizeof(*q));
	/* RING_F_EXACT_SZ: count usable slots in a ring of the next power
	 * of two above count */
	ssize_t sz = rte_ring_get_memsize_elem(cfg->msg_size, 2 * count);

	if (!q || sz < 0)
		return NULL;
	if (cfg->type == SNB_SPSC)
		flags |= RING_F_SP_ENQ;
	if (cfg->type != SNB_MPMC)
		flags |= RING_F_SC_DEQ;
	q->esize = cfg->msg_size;
	q->r = aligned_alloc(RTE_CACHE_LINE_SIZE,
			     ((size_t)sz + RTE_CACHE_LINE_SIZE - 1) &
			     ~(size_t)(RTE_CACHE_LINE_SIZE - 1));
	if (!q->r || rte_ring_init(q->r, "snbench", count, flags)) {
		fprintf(stderr, "snbench: rte_ring_init failed\n");
		free(q->r);
		free(q);
		return NULL;
	}
	return q;
}

static void rte_destroy(void *q)
{
	free(((struct rte_q *)q)->r);
	free(q);
}

static void *rte_open(void *q, unsigned int idx)
{
	(void)idx;
	return q;
}

static void rte_close(void *h)
{
	(void)h;
}

static inline int rte_send(void *h, const void *msgs, unsigned int n)
{
	struct rte_q *q = h;

	return (int)rte_ring_enqueue_burst_elem(q->r, msgs, q->esize, n, NULL);
}

static inline int rte_recv(void *h, void *msgs, unsigned int n)
{
	struct rte_q *q = h;

	return (int)rte_ring_dequeue_burst_elem(q->r, msgs, q->esize, n, NULL);
}

SNB_DEFINE_LOOPS(rte, rte_send, rte_recv)

const struct snb_impl snb_impl_rte = {
	.name = "rte_ring",
	.skip = rte_skip,
	.create = rte_create,
	.destroy = rte_destroy,
	.prod_open = rte_open,
	.cons_open = rte_open,
	.prod_close = rte_close,
	.cons_close = rte_close,
	.producer = rte_producer,
	.consumer = rte_consumer,
	.ping = rte_ping,
	.pong = rte_pong,
};

/* ---- ck_ring ---- */

struct ck_q {
	struct ck_ring ring;
	void *buf;
} __attribute__((aligned(CK_MD_CACHELINE)));

/* A message type per size, and ck's typed functions for it. */
#define CK_TYPE(N)							\
	struct ckm##N { unsigned char b[N]; };				\
	CK_RING_PROTOTYPE(ckm##N, ckm##N)
CK_TYPE(16)
CK_TYPE(32)
CK_TYPE(64)
CK_TYPE(128)
CK_TYPE(256)

/* ck_ring has no burst: a batch is a loop of single operations. */
#define CK_MODE(N, mode, enq, deq)					\
static inline int ck_send_##mode##N(void *h, const void *msgs,		\
				    unsigned int n)			\
{									\
	struct ck_q *q = h;						\
	const struct ckm##N *m = msgs;					\
	unsigned int i;							\
									\
	for (i = 0; i < n; i++)						\
		if (!enq##_ckm##N(&q->ring, q->buf, (struct ckm##N *)&m[i])) \
			break;						\
	return (int)i;							\
}									\
static inline int ck_recv_##mode##N(void *h, void *msgs, unsigned int n) \
{									\
	struct ck_q *q = h;						\
	struct ckm##N *m = msgs;					\
	unsigned int i;							\
									\
	for (i = 0; i < n; i++)						\
		if (!deq##_ckm##N(&q->ring, q->buf, &m[i]))		\
			break;						\
	return (int)i;							\
}									\
SNB_DEFINE_LOOPS(ck_##mode##N, ck_send_##mode##N, ck_recv_##mode##N)

#define CK_SIZE(N)							\
	CK_MODE(N, spsc, ck_ring_enqueue_spsc, ck_ring_dequeue_spsc)	\
	CK_MODE(N, mpsc, ck_ring_enqueue_mpsc, ck_ring_dequeue_mpsc)	\
	CK_MODE(N, mpmc, ck_ring_enqueue_mpmc, ck_ring_dequeue_mpmc)
CK_SIZE(16)
CK_SIZE(32)
CK_SIZE(64)
CK_SIZE(128)
CK_SIZE(256)

struct ck_loops {
	unsigned int size;
	enum snb_type type;
	void (*fn[4])(struct snb_worker *w);
};

#define CK_ENTRY(N, mode, t)						\
	{ N, t, { ck_##mode##N##_producer, ck_##mode##N##_consumer,	\
		  ck_##mode##N##_ping, ck_##mode##N##_pong } }
#define CK_ENTRIES(N)							\
	CK_ENTRY(N, spsc, SNB_SPSC), CK_ENTRY(N, mpsc, SNB_MPSC),	\
	CK_ENTRY(N, mpmc, SNB_MPMC)

static const struct ck_loops ck_loops[] = {
	CK_ENTRIES(16), CK_ENTRIES(32), CK_ENTRIES(64), CK_ENTRIES(128),
	CK_ENTRIES(256),
};

static void ck_dispatch(struct snb_worker *w, int which)
{
	const struct snb_cfg *cfg = w->sh->cfg;
	size_t i;

	for (i = 0; i < sizeof(ck_loops) / sizeof(ck_loops[0]); i++)
		if (ck_loops[i].size == cfg->msg_size &&
		    ck_loops[i].type == cfg->type) {
			ck_loops[i].fn[which](w);
			return;
		}
	snb_fail(w, "ck_ring: no such message size");
}

static void ck_producer(struct snb_worker *w) { ck_dispatch(w, 0); }
static void ck_consumer(struct snb_worker *w) { ck_dispatch(w, 1); }
static void ck_ping(struct snb_worker *w) { ck_dispatch(w, 2); }
static void ck_pong(struct snb_worker *w) { ck_dispatch(w, 3); }

static const char *ck_skip(const struct snb_cfg *cfg, int pingpong)
{
	unsigned int s = cfg->msg_size;

	(void)pingpong;
	if (s != 16 && s != 32 && s != 64 && s != 128 && s != 256)
		return "ck_ring runs with msg sizes 16, 32, 64, 128, 256";
	if ((cfg->capacity * cfg->producers) & (cfg->capacity * cfg->producers - 1))
		return "capacity * producers must be a power of two";
	return NULL;
}

static void *ck_create(const struct snb_cfg *cfg)
{
	unsigned int count = cfg->capacity * cfg->producers;
	struct ck_q *q = aligned_alloc(CK_MD_CACHELINE, sizeof(*q));

	if (!q)
		return NULL;
	ck_ring_init(&q->ring, count);
	q->buf = aligned_alloc(64, (size_t)count * cfg->msg_size);
	if (!q->buf) {
		free(q);
		return NULL;
	}
	return q;
}

static void ck_destroy(void *q)
{
	free(((struct ck_q *)q)->buf);
	free(q);
}

const struct snb_impl snb_impl_ck = {
	.name = "ck_ring",
	.skip = ck_skip,
	.create = ck_create,
	.destroy = ck_destroy,
	.prod_open = rte_open,
	.cons_open = rte_open,
	.prod_close = rte_close,
	.cons_close = rte_close,
	.producer = ck_producer,
	.consumer = ck_consumer,
	.ping = ck_ping,
	.pong = ck_pong,
};
