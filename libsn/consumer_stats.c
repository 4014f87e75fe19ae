/* SPDX-License-Identifier: MIT */
/*
 * A consumer's statistics: the counts it keeps in its handle, published to
 * the ring's shared lines (sn_consumer_flush_stats(), and the inline
 * receive paths of include/sn/channel.h now and then).
 */
#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

/* SPSC/MPSC: the upper bits of @lane's received count (sn__cons_count). */
SN_API void sn__consumer_publish_lane(struct sn_consumer *c, __u32 lane)
{
	struct sn_cons_stats *cs = (struct sn_cons_stats *)
		((unsigned char *)c->stats + (__u64)lane * 2 * SN_PAD);

	if (c->flags & SN__VARLEN)	/* stored per message */
		return;
	__atomic_store_n(&cs->received,
			 sn_index64(sn_load64(&cs->received), c->head[lane]),
			 __ATOMIC_RELAXED);
}

/* MPMC consumers share the statistics line: add what is new, rarely. */
SN_API int sn__consumer_publish(struct sn_consumer *c)
{
	__u64 now[4] = { c->received, c->empty, c->sleeps, c->wakeups };
	__u64 *dst[4] = { &c->stats->received, &c->stats->empty,
			  &c->stats->sleeps, &c->stats->wakeups };
	int i;

	c->unpublished = 0;
	if (!(c->flags & SN__MPMC)) {
		__u32 lane;

		for (lane = 0; lane < c->lanes; lane++)
			sn__consumer_publish_lane(c, lane);
		return 0;
	}
	for (i = 0; i < 4; i++) {
		if (now[i] != c->pub[i])
			__atomic_fetch_add(dst[i], now[i] - c->pub[i],
					   __ATOMIC_RELAXED);
		c->pub[i] = now[i];
	}
	return 0;
}
