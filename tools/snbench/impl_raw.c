// SPDX-License-Identifier: MIT
/*
 * snbench: the physical limit of a pingpong, through the same ping and
 * pong loops as every queue (snbench.h): a "message" is the sequence
 * number alone, stored into a cache line; nothing else moves.
 *
 *   raw_line   one line for both directions: the pinger writes 2s + 1,
 *              the ponger answers 2s + 2 on the same line. Each side both
 *              reads and writes the line: two transfers a round trip, the
 *              least any round trip costs
 *   raw_2line  one line per direction, each written by one side only (the
 *              pinger's s + 1 on one, the ponger's on the other): what a
 *              pingpong over two queues cannot beat, since a queue's data
 *              goes one way and its consumer never writes the producer's
 *              line. The fair floor for a queue's pingpong
 *
 * Pingpong only: neither is a queue (a send overwrites the line).
 */
#include <stdlib.h>
#include <string.h>

#include "snbench.h"

struct raw_q {
	_Alignas(128) _Atomic uint64_t v;
	char pad[120];
};

/*
 * A handle: the line and, for raw_line, the side (0: the pinger's, whose
 * values are odd; 1: the ponger's, even). The receiving side remembers the
 * last value it took. Each on a line of its own: the two receivers write
 * theirs in every round trip.
 */
struct raw_h {
	_Alignas(128) struct raw_q *q;
	unsigned int side;
	uint64_t last;
	char pad[128 - 24];
};

static const char *raw_skip(const struct snb_cfg *cfg, int pingpong)
{
	(void)cfg;
	return pingpong ? NULL : "pingpong only (it is no queue)";
}

static void *raw_create(const struct snb_cfg *cfg)
{
	struct raw_q *q = aligned_alloc(128, sizeof(*q));

	(void)cfg;
	if (q)
		atomic_init(&q->v, 0);
	return q;
}

static void raw_destroy(void *q)
{
	free(q);
}

static void *raw_open(void *q, unsigned int side)
{
	struct raw_h *h = aligned_alloc(128, sizeof(*h));

	if (h) {
		memset(h, 0, sizeof(*h));
		h->q = q;
		h->side = side;
	}
	return h;
}

static void raw_close(void *h)
{
	free(h);
}

/* raw_line: the pinger stores 2s + 1, the ponger 2s + 2. */
static inline int line_send(void *p, const void *msgs, unsigned int n)
{
	struct raw_h *h = p;
	uint64_t s = ((const struct snb_msg *)msgs)->seq;

	(void)n;
	atomic_store_explicit(&h->q->v, 2 * s + 1 + h->side,
			      memory_order_release);
	return 1;
}

/* Takes the other side's next value: the pinger (side 0) the ponger's
 * even ones, the ponger (side 1) the pinger's odd ones. */
static inline int line_recv(void *p, void *msgs, unsigned int n)
{
	struct raw_h *h = p;
	uint64_t v = atomic_load_explicit(&h->q->v, memory_order_acquire);

	(void)n;
	if (v == h->last || (v & 1) != h->side)
		return 0;
	h->last = v;
	((struct snb_msg *)msgs)->seq = (v - 1) >> 1;
	return 1;
}

/* raw_2line: each direction's own line, s + 1 on it. */
static inline int line2_send(void *p, const void *msgs, unsigned int n)
{
	struct raw_h *h = p;

	(void)n;
	atomic_store_explicit(&h->q->v, ((const struct snb_msg *)msgs)->seq + 1,
			      memory_order_release);
	return 1;
}

static inline int line2_recv(void *p, void *msgs, unsigned int n)
{
	struct raw_h *h = p;
	uint64_t v = atomic_load_explicit(&h->q->v, memory_order_acquire);

	(void)n;
	if (v == h->last)
		return 0;
	h->last = v;
	((struct snb_msg *)msgs)->seq = v - 1;
	return 1;
}

SNB_DEFINE_LOOPS(line, line_send, line_recv)
SNB_DEFINE_LOOPS(line2, line2_send, line2_recv)

const struct snb_impl snb_impl_raw = {
	.name = "raw_line",
	.skip = raw_skip,
	.create = raw_create,
	.destroy = raw_destroy,
	.prod_open = raw_open,
	.cons_open = raw_open,
	.prod_close = raw_close,
	.cons_close = raw_close,
	.producer = line_producer,
	.consumer = line_consumer,
	.ping = line_ping,
	.pong = line_pong,
	.pp_one_queue = 1,
};

const struct snb_impl snb_impl_raw2 = {
	.name = "raw_2line",
	.skip = raw_skip,
	.create = raw_create,
	.destroy = raw_destroy,
	.prod_open = raw_open,
	.cons_open = raw_open,
	.prod_close = raw_close,
	.cons_close = raw_close,
	.producer = line2_producer,
	.consumer = line2_consumer,
	.ping = line2_ping,
	.pong = line2_pong,
};
