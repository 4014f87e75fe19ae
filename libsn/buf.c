/* SPDX-License-Identifier: MIT */
/*
 * Buffers: large messages passed by reference to a buffer of the
 * producer's lane (the uapi header's "Buffers"). Not the per-message hot
 * path of small messages: out of line.
 */
#include <errno.h>
#include <time.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

static int sn_buf_got(const struct sn_producer *p, __u32 j)
{
	return !!(p->got[j / 64] & (1ULL << (j % 64)));
}

static void sn_buf_mark(struct sn_producer *p, __u32 j, int got)
{
	if (got)
		p->got[j / 64] |= 1ULL << (j % 64);
	else
		p->got[j / 64] &= ~(1ULL << (j % 64));
}

/*
 * Whether the record of tag @tag of @p's lane was consumed: the head
 * passed it, or (MPMC) its release word moved on.
 */
static int sn_buf_consumed(const struct sn_producer *p, __u32 tag)
{
	__u32 slots = p->mask + 1, pos = tag - 1;

	/* acquire: pairs with the consumer's release of the record, which
	 * follows its mark of the buffer (sn_recv_buf()) */
	if (!(p->flags & SN__MPMC))
		return (__s32)(__atomic_load_n(p->head_p, __ATOMIC_ACQUIRE) -
			       pos) > 0;
	return (__s32)(__atomic_load_n(&p->release[pos & p->mask],
				       __ATOMIC_ACQUIRE) - pos) >= (__s32)slots;
}

/* Buffer @j is free (uapi "Buffers"). */
static int sn_buf_free(const struct sn_producer *p, __u32 j)
{
	__u32 sent = p->sent_p[j];
	/* the record first: if it was consumed, its taker's mark is seen */
	int consumed = sn_buf_consumed(p, sent);
	__u64 v = __atomic_load_n(&p->ret_p[j], __ATOMIC_ACQUIRE);

	if ((__u32)v == sent)
		return (__u32)(v >> 32) == SN_BUF_RETURNED;
	return consumed;
}

SN_API int sn_buf_get(struct sn_producer *p, void **buf, __u32 *idx)
{
	__u32 k, j;

	if (!p || !buf || !idx || !p->bufs)
		return -EINVAL;
	for (k = 0; k < p->bufs; k++) {
		j = p->buf_next + k < p->bufs ? p->buf_next + k :
		    p->buf_next + k - p->bufs;
		if (sn_buf_got(p, j) || !sn_buf_free(p, j))
			continue;
		sn_buf_mark(p, j, 1);
		p->buf_next = j + 1 < p->bufs ? j + 1 : 0;
		*idx = j;
		*buf = p->buf0 + (__u64)j * p->buf_size;
		return 0;
	}
	return -EAGAIN;
}

SN_API int sn_buf_get_wait(struct sn_producer *p, void **buf, __u32 *idx,
			   __u64 timeout_ns)
{
	__u64 start = sn_now_ns(), nap = 1000, looked = start;
	int r;

	for (;;) {
		r = sn_buf_get(p, buf, idx);
		if (r != -EAGAIN)
			return r;
		/* memfd: no kernel returns a dead consumer's buffers; look
		 * for dead peers as a sleeper does */
		if ((p->flags & SN__MEMFD) &&
		    sn_now_ns() - looked >= SN_MEMFD_LIVENESS_NS) {
			sn_memfd_check_peers(p->chan);
			looked = sn_now_ns();
			continue;
		}
		if (sn__prod_orphaned(p))
			return -EPIPE;
		if (timeout_ns != SN_WAIT_FOREVER &&
		    sn_now_ns() - start >= timeout_ns)
			return timeout_ns ? -ETIMEDOUT : -EAGAIN;
		sn_nap(&nap);
	}
}

SN_API int sn_buf_send(struct sn_producer *p, __u32 idx, __u32 len)
{
	struct sn_bufref *ref;
	int n;

	if (!p || idx >= p->bufs || !sn_buf_got(p, idx) || len > p->buf_size)
		return -EINVAL;
	n = sn__prod_len_check(p, sizeof(*ref));
	if (n < 0)
		return n;
	if (!sn__prod_len_fit(p, (__u32)n))
		return -EAGAIN;
	/* before the record's seq (release): a consumer that takes the
	 * record and a producer that sees it consumed agree on the tag */
	__atomic_store_n(&p->sent_p[idx], sn_buf_tag(p->tail),
			 __ATOMIC_RELAXED);
	ref = (struct sn_bufref *)(sn__prod_hdr(p, p->tail) + 1);
	ref->idx = idx;
	ref->len = len;
	sn_buf_mark(p, idx, 0);
	sn__prod_put_record(p, SN_SLOT_BUF | sizeof(*ref), (__u32)n);
	sn__prod_count_record(p);
	sn__prod_ship(p);
	return 0;
}

SN_API int sn_buf_drop(struct sn_producer *p, __u32 idx)
{
	if (!p || idx >= p->bufs || !sn_buf_got(p, idx))
		return -EINVAL;
	sn_buf_mark(p, idx, 0);
	return 0;
}

SN_API int sn_recv_buf(struct sn_consumer *c, struct sn_buf *b)
{
	struct sn__rec r = { 0, 0, 0, 0, 0 };
	__u32 lane = 0;
	int n;

	if (!c || !b || c->peek_n || !c->bufs)
		return -EINVAL;
	n = sn__cons_var_find(c, ~0U, SN__TAKE_BUF, &r, &lane);
	if (n == -ENOMSG)
		return n;
	if (n <= 0) {
		sn__cons_count(c, 0, 1);
		return sn__cons_empty(c);
	}
	/* held before the record goes: release pairs with the producer's
	 * acquire in sn_buf_free(), after its look at the record */
	__atomic_store_n(&c->ret[(__u64)lane * c->bufs + r.buf - 1],
			 sn_buf_tag(r.pos) | (__u64)c->holder << 32,
			 __ATOMIC_RELEASE);
	sn__cons_done(c, lane, r.pos, (__u32)n);
	sn__cons_var_count(c, lane);
	b->data = r.data;
	b->len = r.len;
	b->lane = lane;
	b->idx = r.buf - 1;
	b->tag = sn_buf_tag(r.pos);
	return 0;
}

SN_API int sn_buf_put(struct sn_consumer *c, const struct sn_buf *b)
{
	__u64 *ret;

	if (!c || !b || b->lane >= c->lanes || b->idx >= c->bufs)
		return -EINVAL;
	ret = &c->ret[(__u64)b->lane * c->bufs + b->idx];
	if (__atomic_load_n(ret, __ATOMIC_RELAXED) !=
	    (b->tag | (__u64)c->holder << 32))
		return -EINVAL;		/* not held by us (or returned) */
	/* release: our reads of the buffer before the producer reuses it */
	__atomic_store_n(ret, b->tag, __ATOMIC_RELEASE);
	return 0;
}
