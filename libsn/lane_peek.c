/* SPDX-License-Identifier: MIT */
/*
 * Lanes by position (LIBSN_1.1): several outstanding peeks per lane, release
 * up to a position, the 64-bit sequence and the epoch of a position. For a
 * consumer whose slots are its retransmit buffer (the bridge).
 */
#include <errno.h>
#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

SN_API int sn_consumer_peeked_lane(const struct sn_consumer *c)
{
	if (!c || !c->peek_n || (c->peek_n & SN__PEEK_LANES))
		return -EINVAL;
	return (int)c->peek_lane;
}

static int sn_lane_mode_ok(const struct sn_consumer *c, __u32 lane)
{
	if (!c || lane >= c->lanes)
		return -EINVAL;
	if (c->flags & (SN__MPMC | SN__VARLEN))
		return -EOPNOTSUPP;
	return 0;
}

/* Outstanding messages of every lane, for the kernel's redelivered count
 * should we die (lane 0's peeked, as sn_consumer_peek() keeps it). */
static void sn_lane_mode_publish(struct sn_consumer *c)
{
	__u64 out = 0;
	__u32 lane;

	for (lane = 0; lane < c->lanes; lane++)
		out += c->cursor[lane] - c->head[lane];
	__atomic_store_n(&c->stats->peeked, out, __ATOMIC_RELAXED);
}

SN_API int sn_consumer_peek_lane(struct sn_consumer *c, __u32 lane, __u32 n,
				 __u32 *pos)
{
	__u32 h, d, l, room;
	int ret = sn_lane_mode_ok(c, lane);

	if (ret)
		return ret;
	if (!n || !pos || (c->peek_n && !(c->peek_n & SN__PEEK_LANES)))
		return -EINVAL;
	if (!c->peek_n) {	/* entering lane mode: cursors at the heads */
		for (l = 0; l < c->lanes; l++)
			c->cursor[l] = c->head[l];
		c->lanes_out = 0;
	}
	h = c->cursor[lane];
	room = c->mask + 1 - (h - c->head[lane]);	/* within one lap */
	/* ctail[] is committed up to, as far as we looked; behind the
	 * cursor only before the first look past the head */
	d = c->ctail[lane] - h;
	if (d > room)
		d = 0;
	if (d < n && d < room) {
		d += sn__cons_committed(c, lane, h + d, (n < room ? n : room) - d);
		c->ctail[lane] = h + d;
	}
	if (!d) {
		sn__cons_count(c, 0, 1);
		if (!c->peek_n)
			return sn__cons_empty(c);
		return -EAGAIN;
	}
	if (d > n)
		d = n;
	if (c->cursor[lane] == c->head[lane])
		c->lanes_out++;
	c->cursor[lane] = h + d;
	c->peek_n = SN__PEEK_LANES;
	sn_lane_mode_publish(c);
	*pos = h;
	return (int)d;
}

SN_API int sn_consumer_advance_to(struct sn_consumer *c, __u32 lane,
				  __u32 pos)
{
	__u32 h, n;
	int ret = sn_lane_mode_ok(c, lane);

	if (ret)
		return ret;
	if (!(c->peek_n & SN__PEEK_LANES))
		return -EINVAL;
	h = c->head[lane];
	n = pos - h;
	if (n > c->cursor[lane] - h)
		return -EINVAL;
	if (!n)
		return 0;
	sn__cons_done(c, lane, h, n);
	sn__cons_count(c, n, 0);
	if (pos == c->cursor[lane] && !--c->lanes_out)
		c->peek_n = 0;	/* every lane released: lane mode ends */
	sn_lane_mode_publish(c);
	return 0;
}

SN_API int sn_consumer_lane_state(const struct sn_consumer *c, __u32 lane,
				  __u32 *cursor, __u32 *head)
{
	int ret = sn_lane_mode_ok(c, lane);

	if (ret)
		return ret;
	if (head)
		*head = c->head[lane];
	if (cursor)
		*cursor = (c->peek_n & SN__PEEK_LANES) ? c->cursor[lane] :
			  c->head[lane];
	return 0;
}

SN_API __u64 sn_consumer_seq(const struct sn_consumer *c, __u32 lane,
			     __u32 pos)
{
	const struct sn_cons_stats *cs;

	if (sn_lane_mode_ok(c, lane))
		return 0;
	cs = (const struct sn_cons_stats *)
		((const unsigned char *)c->stats + (__u64)lane * 2 * SN_PAD);
	/* received holds the lane's head in 64 bits, published when the head
	 * crosses a multiple of 2^30 (sn__cons_done()), so within 2^31 of
	 * any position near the head */
	return sn_index64(sn_index64(sn_load64(&cs->received), c->head[lane]),
			  pos);
}

/* The epoch entries of @lane: {epoch, start} pairs (SN_LANE_EPOCHS_OFF,
 * include/uapi/linux/sn.h). */
static __u64 *sn_lane_epochs(unsigned char *lane)
{
	return (__u64 *)(lane + SN_LANE_EPOCHS_OFF);
}

SN_API __u32 sn_consumer_epoch(const struct sn_consumer *c, __u32 lane,
			       __u32 pos)
{
	const __u64 *w;
	__u64 at;
	__u32 i, best = 0, oldest = 0;

	if (sn_lane_mode_ok(c, lane))
		return 0;
	w = sn_lane_epochs(sn__cons_lane(c, lane));
	at = sn_consumer_seq(c, lane, pos);
	/* the largest recorded epoch that started at or before @pos */
	for (i = 0; i < SN_LANE_EPOCHS; i++) {
		__u64 e, start;

		/* acquire: pairs with the releases in sn_lane_new_epoch();
		 * the epoch again after the start: unchanged, the pair is
		 * one producer's */
		do {
			e = __atomic_load_n(&w[2 * i], __ATOMIC_ACQUIRE);
			start = __atomic_load_n(&w[2 * i + 1],
						__ATOMIC_ACQUIRE);
		} while (__atomic_load_n(&w[2 * i], __ATOMIC_ACQUIRE) != e);
		if (!e || e > 0xffffffffULL)
			continue;
		if (!oldest || e < oldest)
			oldest = (__u32)e;
		if (start <= at && e > best)
			best = (__u32)e;
	}
	/* before every recorded start: an older producer, at most the one
	 * before the oldest recorded */
	return best ? best : oldest ? oldest - 1 : 0;
}

void sn_lane_new_epoch(const struct sn_channel *ch, __u32 lane, __u64 start)
{
	__u64 *w = sn_lane_epochs(sn_lane_ptr(ch, lane)), e = 0, x;
	__u32 i;

	for (i = 0; i < SN_LANE_EPOCHS; i++) {
		x = __atomic_load_n(&w[2 * i], __ATOMIC_RELAXED);
		if (x > e && x <= 0xffffffffULL)
			e = x;
	}
	e++;
	i = (__u32)(e % SN_LANE_EPOCHS);
	/* release, start before epoch: pairs with the acquires in
	 * sn_consumer_epoch(); our messages' seq stores come after both */
	__atomic_store_n(&w[2 * i + 1], start, __ATOMIC_RELEASE);
	__atomic_store_n(&w[2 * i], e, __ATOMIC_RELEASE);
}
