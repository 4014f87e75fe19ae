/* SPDX-License-Identifier: MIT */
/*
 * Messages of any length (records): the parts of the hot path that stay
 * out of line, so that the fixed-size calls that lead to them keep their
 * code small (include/sn/channel.h).
 */
#include <errno.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

SN_API int sn__send_varlen(struct sn_producer *p, const void *msg)
{
	return sn_try_send_len(p, msg, p->slot_size);
}

SN_API int sn__recv_varlen(struct sn_consumer *c, void *msg)
{
	__u32 len;

	return sn_try_recv_len(c, msg, c->slot_size, &len);
}

SN_API int sn__advance_record(struct sn_consumer *c, __u32 n)
{
	if (n != 1 || !c->peek_n)
		return -EINVAL;
	c->peek_n = 0;
	sn__cons_buf_done(c, c->peek_lane, c->peek_buf, c->peek_pos);
	sn__cons_done(c, c->peek_lane, c->peek_pos, c->peek_slots);
	if (!(c->flags & SN__MPMC))
		__atomic_store_n(&c->stats->peeked, 0, __ATOMIC_RELAXED);
	sn__cons_var_count(c, c->peek_lane);
	return 0;
}
