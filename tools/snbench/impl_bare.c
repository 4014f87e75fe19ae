// SPDX-License-Identifier: MIT
/*
 * snbench: the yardstick. Two bare SPSC rings on plain memory, as small as
 * such a ring gets: no sleep protocol, no statistics, no shared-memory
 * format, no handles; the same message size, capacity and batch semantics
 * as every other row (a call sends or receives up to batch messages,
 * copying msg_size bytes each). What libsn's SPSC channel does beyond them
 * is what its figures "vs bare" measure.
 *
 *   bare_cached  cached indices (rigtorp's SPSCQueue): the producer's index
 *                and its copy of the consumer's on one 128-byte line, the
 *                consumer's index and its copy of the producer's on
 *                another; each side reloads the other's index only when
 *                its copy says full (empty)
 *   bare_seq     a sequence word in each slot: the producer writes the
 *                payload, then the slot's sequence (position + 1, release);
 *                the consumer polls the slot's sequence (acquire) and never
 *                reads the producer's index; the consumer's index goes back
 *                on its own line, which the producer reloads only when its
 *                cached copy says full
 *
 * SPSC only: MPSC and MPMC rows say they do not run.
 */
#include <stdlib.h>
#include <string.h>

#include <linux/sn.h>

#include "snbench.h"

static const char *bare_skip(const struct snb_cfg *cfg, int pingpong)
{
	(void)pingpong;
	if (cfg->type != SNB_SPSC || cfg->producers != 1 ||
	    cfg->consumers != 1)
		return "SPSC only (the bare yardstick)";
	if (cfg->capacity & (cfg->capacity - 1))
		return "capacity must be a power of two";
	return NULL;
}

static void *bare_open(void *q, unsigned int idx)
{
	(void)idx;
	return q;
}

static void bare_close(void *h)
{
	(void)h;
}

static unsigned char *bare_slots(size_t len)
{
	unsigned char *p = aligned_alloc(128, (len + 127) & ~(size_t)127);

	if (p)
		memset(p, 0, len);
	return p;
}

/* ---- bare_cached ---- */

struct bare_cached {
	/* the producer's line */
	_Alignas(128) _Atomic uint64_t tail;
	uint64_t head_cache;
	char pad0[128 - 16];
	/* the consumer's line */
	_Alignas(128) _Atomic uint64_t head;
	uint64_t tail_cache;
	char pad1[128 - 16];
	/* read only after create */
	_Alignas(128) unsigned char *slots;
	uint64_t mask;
	unsigned int size, cap;
	char pad2[128 - 24];
};

static void *bc_create(const struct snb_cfg *cfg)
{
	struct bare_cached *q = aligned_alloc(128, sizeof(*q));

	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->cap = cfg->capacity;
	q->mask = cfg->capacity - 1;
	q->size = cfg->msg_size;
	q->slots = bare_slots((size_t)cfg->capacity * cfg->msg_size);
	if (!q->slots) {
		free(q);
		return NULL;
	}
	return q;
}

static void bc_destroy(void *p)
{
	struct bare_cached *q = p;

	free(q->slots);
	free(q);
}

static inline int bc_send(void *h, const void *msgs, unsigned int n)
{
	struct bare_cached *q = h;
	uint64_t t = atomic_load_explicit(&q->tail, memory_order_relaxed);
	uint64_t room = q->cap - (t - q->head_cache), i, first;

	if (room < n) {
		q->head_cache = atomic_load_explicit(&q->head,
						     memory_order_acquire);
		room = q->cap - (t - q->head_cache);
		if (!room)
			return 0;
		if (n > room)
			n = (unsigned int)room;
	}
	i = t & q->mask;
	first = q->cap - i < n ? q->cap - i : n;
	memcpy(q->slots + i * q->size, msgs, first * q->size);
	if (first < n)
		memcpy(q->slots, (const unsigned char *)msgs + first * q->size,
		       (n - first) * q->size);
	atomic_store_explicit(&q->tail, t + n, memory_order_release);
	return (int)n;
}

static inline int bc_recv(void *h, void *msgs, unsigned int n)
{
	struct bare_cached *q = h;
	uint64_t hd = atomic_load_explicit(&q->head, memory_order_relaxed);
	uint64_t avail = q->tail_cache - hd, i, first;

	if (avail < n) {
		q->tail_cache = atomic_load_explicit(&q->tail,
						     memory_order_acquire);
		avail = q->tail_cache - hd;
		if (!avail)
			return 0;
		if (n > avail)
			n = (unsigned int)avail;
	}
	i = hd & q->mask;
	first = q->cap - i < n ? q->cap - i : n;
	memcpy(msgs, q->slots + i * q->size, first * q->size);
	if (first < n)
		memcpy((unsigned char *)msgs + first * q->size, q->slots,
		       (n - first) * q->size);
	atomic_store_explicit(&q->head, hd + n, memory_order_release);
	return (int)n;
}

SNB_DEFINE_LOOPS(bc, bc_send, bc_recv)

const struct snb_impl snb_impl_bare_cached = {
	.name = "bare_cached",
	.skip = bare_skip,
	.create = bc_create,
	.destroy = bc_destroy,
	.prod_open = bare_open,
	.cons_open = bare_open,
	.prod_close = bare_close,
	.cons_close = bare_close,
	.producer = bc_producer,
	.consumer = bc_consumer,
	.ping = bc_ping,
	.pong = bc_pong,
};

/* ---- bare_seq ---- */

struct bare_seq {
	/* the producer's line: its index, its copy of the consumer's */
	_Alignas(128) uint64_t tail;
	uint64_t head_cache;
	char pad0[128 - 16];
	/* the consumer's line: its index, read by the producer when full */
	_Alignas(128) _Atomic uint64_t head;
	char pad1[128 - 8];
	/* read only after create */
	_Alignas(128) unsigned char *slots;
	uint64_t mask;
	unsigned int size, stride, cap;
	char pad2[128 - 28];
};

static void *bs_create(const struct snb_cfg *cfg)
{
	struct bare_seq *q = aligned_alloc(128, sizeof(*q));

	if (!q)
		return NULL;
	memset(q, 0, sizeof(*q));
	q->cap = cfg->capacity;
	q->mask = cfg->capacity - 1;
	q->size = cfg->msg_size;
	/* a slot: the 8-byte sequence, then the payload, as libsn's format 3
	 * lays it out: 16, 32, 64 or k * 64 bytes */
	q->stride = sn_slot_stride(cfg->msg_size);
	/* every sequence 0: no slot holds position 0 + 1 yet */
	q->slots = bare_slots((size_t)cfg->capacity * q->stride);
	if (!q->slots) {
		free(q);
		return NULL;
	}
	return q;
}

static void bs_destroy(void *p)
{
	struct bare_seq *q = p;

	free(q->slots);
	free(q);
}

static inline int bs_send(void *h, const void *msgs, unsigned int n)
{
	struct bare_seq *q = h;
	uint64_t t = q->tail, room = q->cap - (t - q->head_cache);
	unsigned int i;

	if (room < n) {
		q->head_cache = atomic_load_explicit(&q->head,
						     memory_order_acquire);
		room = q->cap - (t - q->head_cache);
		if (!room)
			return 0;
		if (n > room)
			n = (unsigned int)room;
	}
	for (i = 0; i < n; i++) {
		unsigned char *s = q->slots + ((t + i) & q->mask) * q->stride;

		memcpy(s + 8, (const unsigned char *)msgs + (size_t)i * q->size,
		       q->size);
		__atomic_store_n((uint64_t *)(void *)s, t + i + 1,
				 __ATOMIC_RELEASE);
	}
	q->tail = t + n;
	return (int)n;
}

static inline int bs_recv(void *h, void *msgs, unsigned int n)
{
	struct bare_seq *q = h;
	uint64_t hd = atomic_load_explicit(&q->head, memory_order_relaxed);
	unsigned int i;

	for (i = 0; i < n; i++) {
		const unsigned char *s =
			q->slots + ((hd + i) & q->mask) * q->stride;

		if (__atomic_load_n((const uint64_t *)(const void *)s,
				    __ATOMIC_ACQUIRE) != hd + i + 1)
			break;
		memcpy((unsigned char *)msgs + (size_t)i * q->size, s + 8,
		       q->size);
	}
	if (i)
		atomic_store_explicit(&q->head, hd + i, memory_order_release);
	return (int)i;
}

SNB_DEFINE_LOOPS(bs, bs_send, bs_recv)

const struct snb_impl snb_impl_bare_seq = {
	.name = "bare_seq",
	.skip = bare_skip,
	.create = bs_create,
	.destroy = bs_destroy,
	.prod_open = bare_open,
	.cons_open = bare_open,
	.prod_close = bare_close,
	.cons_close = bare_close,
	.producer = bs_producer,
	.consumer = bs_consumer,
	.ping = bs_ping,
	.pong = bs_pong,
};
