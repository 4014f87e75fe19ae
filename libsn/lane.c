/* SPDX-License-Identifier: MIT */
/*
 * A lane changing owner: its tail moved past the slots that its last
 * producer committed and died before it published, by whoever owns the
 * lane now (a new producer, the memfd reaper).
 */
#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

__u32 sn_lane_commit_orphans(const struct sn_channel *ch, __u32 lane,
			     int *moved)
{
	unsigned char *l = sn_lane_ptr(ch, lane);
	__u32 *tail_p = (__u32 *)(l + ch->off.prod_tail);
	__u32 t0 = __atomic_load_n(tail_p, __ATOMIC_ACQUIRE), t = t0, n, len;
	__u32 slots = ch->geo.slots, shift = sn_log2(ch->off.stride);

	for (;;) {
		const struct sn_slot *s = (const void *)
			(l + ch->off.slots +
			 (__u64)(t & (slots - 1)) * ch->off.stride);

		/* acquire: pairs with the producer's release of seq, so that
		 * our release of the tail publishes the messages too */
		if (__atomic_load_n(&s->seq, __ATOMIC_ACQUIRE) != t + 1)
			break;
		len = __atomic_load_n(&s->len, __ATOMIC_RELAXED);
		n = !(ch->geo.flags & SN_GEO_VARLEN) ? 1 :
		    (len & SN_SLOT_BUF) && !ch->geo.bufs ? 0 :
		    sn_record_span(len, t & (slots - 1), slots, shift);
		if (!n || n > slots - (t - t0))	/* whole, valid, one lap */
			break;
		t += n;
	}
	*moved = t != t0 &&
		 __atomic_compare_exchange_n(tail_p, &t0, t, 0,
					     __ATOMIC_RELEASE,
					     __ATOMIC_ACQUIRE);
	return *moved ? t : __atomic_load_n(tail_p, __ATOMIC_ACQUIRE);
}
