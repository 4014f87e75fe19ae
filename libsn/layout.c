/* SPDX-License-Identifier: MIT */
/*
 * The ring's layout in this process: the geometry and offsets checked
 * before anything is mapped, the mapping itself (a reservation with a guard
 * page each side, then the ring fd's regions at their own offsets), and
 * where a lane and the consumer region lie in it. Used by the channel and
 * by both backends; calls nothing else of libsn's.
 */
#include <errno.h>
#include <sys/mman.h>

#include <linux/sn.h>

#include "internal.h"

int sn_geometry_check(const struct sn_geometry *g, __u64 max_bytes)
{
	if (g->type < SN_RING_SPSC || g->type > SN_RING_MPMC)
		return -EINVAL;
	if (g->slot_size < 8 || g->slot_size % 8 || g->slot_size > (1U << 24))
		return -EINVAL;
	if (!g->slots || (g->slots & (g->slots - 1)) || g->slots > (1U << 28))
		return -EINVAL;
	if (!g->lanes || g->lanes > SN_MAX_LANES ||
	    (g->type == SN_RING_SPSC && g->lanes != 1))
		return -EINVAL;
	/* slot memory as the module counts it (format 3: headers included);
	 * each factor is below 2^30: the product fits */
	/* varlen: a record and its terminator need two slots at least */
	if ((g->flags & SN_GEO_VARLEN) &&
	    (!(g->flags & SN_GEO_FORMAT3) || g->slots < 2))
		return -EINVAL;
	if (g->bufs > SN_MAX_BUFS || (g->bufs && !(g->flags & SN_GEO_VARLEN)) ||
	    (g->bufs ? g->buf_size < 64 || g->buf_size % 64 ||
		       g->buf_size > SN_MAX_BUF_SIZE : g->buf_size))
		return -EINVAL;
	if (((__u64)g->slots * sn_geo_stride(g) +
	     (__u64)g->bufs * g->buf_size) * g->lanes > max_bytes)
		return -EINVAL;
	return 0;
}

/* [off, off + len) inside [0, size), aligned to @align. */
static int sn_within(__u64 off, __u64 len, __u64 size, __u64 align)
{
	return !(off % align) && len <= size && off <= size - len;
}

/*
 * Checks offsets (from sn_ring_layout() or the kernel) against the geometry:
 * regions page aligned, in order and inside the map; every field inside its
 * region, aligned, and the lane's fields before its slots. After this, no
 * index libsn masks can reach outside the mapping.
 */
int sn_offsets_check(const struct sn_geometry *g, const struct sn_offsets *o,
		     size_t page)
{
	__u64 lanes_bytes, span = (__u64)(g->lanes - 1) * SN_PAD * 2;

	if (o->map_size > (1ULL << 46) || o->lane_size > o->map_size)
		return -EINVAL;
	lanes_bytes = o->lane_size * g->lanes;
	if (o->kpage % page || o->cons % page || o->cons_size % page ||
	    o->lane0 % page || o->lane_size % page || o->map_size % page)
		return -EINVAL;
	if (!sn_within(o->kpage, page, o->map_size, page) ||
	    o->kpage + page > o->cons ||
	    !sn_within(o->cons, o->cons_size, o->map_size, page) ||
	    o->cons + o->cons_size > o->lane0 ||
	    !sn_within(o->lane0, lanes_bytes, o->map_size, page))
		return -EINVAL;
	if (!sn_within(o->cons_waiters, 4, o->cons_size, 4) ||
	    !sn_within(o->cons_lane, span + 4, o->cons_size, 4) ||
	    !sn_within(o->cons_stats, span + sizeof(struct sn_cons_stats),
			o->cons_size, 8))
		return -EINVAL;
	if (g->type == SN_RING_MPMC &&
	    (!sn_within(o->cons_release, (__u64)g->lanes * g->slots * 4,
			o->cons_size, 4) ||
	     !sn_within(o->cons_claims, (__u64)SN_MAX_CLAIMS * SN_PAD,
			o->cons_size, 8)))
		return -EINVAL;
	if (o->stride != sn_geo_stride(g) ||
	    !sn_within(o->slots, (__u64)g->slots * o->stride, o->lane_size,
		       8) ||
	    !sn_within(o->prod_tail, 4, o->slots, 4) ||
	    !sn_within(o->prod_waiting, 4, o->slots, 4) ||
	    ((g->flags & SN_GEO_VARLEN) &&
	     !sn_within(o->prod_need, 4, o->slots, 4)) ||
	    (g->bufs &&
	     (!sn_within(o->prod_bufs, (__u64)g->bufs * 4, o->slots, 4) ||
	      o->bufs < o->slots + (__u64)g->slots * o->stride ||
	      !sn_within(o->bufs, (__u64)g->bufs * g->buf_size, o->lane_size,
			 64) ||
	      !sn_within(o->cons_bufs, (__u64)g->lanes * g->bufs * 8,
			 o->cons_size, 8))) ||
	    !sn_within(o->prod_stats, sizeof(struct sn_prod_stats), o->slots,
		       8))
		return -EINVAL;
	return 0;
}

/* Reserves map_size plus a guard page on each side, PROT_NONE. */
int sn_map_reserve(struct sn_channel *ch)
{
	void *p;

	ch->resv_size = ch->off.map_size + 2 * ch->page;
	p = mmap(NULL, ch->resv_size, PROT_NONE,
		 MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
	if (p == MAP_FAILED) {
		ch->resv = NULL;
		return -errno;
	}
	ch->resv = p;
	ch->base = (unsigned char *)p + ch->page;
	return 0;
}

/* Maps [off, off + len) of the ring fd at the same offset of the ring. */
int sn_map_region(struct sn_channel *ch, __u64 off, __u64 len, int prot)
{
	void *p;

	if (!len)
		return 0;
	p = mmap(ch->base + off, len, prot, MAP_SHARED | MAP_FIXED, ch->fd,
		 (off_t)off);
	return p == MAP_FAILED ? -errno : 0;
}

unsigned char *sn_lane_ptr(const struct sn_channel *ch, __u32 lane)
{
	return ch->base + ch->off.lane0 + lane * ch->off.lane_size;
}

unsigned char *sn_cons_ptr(const struct sn_channel *ch)
{
	return ch->base + ch->off.cons;
}
