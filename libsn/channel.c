/* SPDX-License-Identifier: MIT */
/* Channels: create, attach, close, handles and statistics. */
#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>
#include <sn/sn.h>

#include "internal.h"

/* Handles sit on their own lines whatever SN_CACHE_LINE users pick. */
#define SN_HANDLE_ALIGN 128

void sn_channel_free(struct sn_channel *ch)
{
	if (!ch)
		return;
	if (ch->resv)
		munmap(ch->resv, ch->resv_size);
	if (ch->fd >= 0)
		close(ch->fd);
	free(ch);
}

/*
 * The ring's fence (kpage, mapped and written by sn.ko or the memfd's
 * creator) and whether this process's fast sides fence: on FULL rings, and
 * on ASYM memfd rings unless this process is registered for membarrier.
 */
static int sn_channel_fence(struct sn_channel *ch)
{
	const struct sn_kpage *kp = (const void *)(ch->base + ch->off.kpage);
	__u32 fence = __atomic_load_n(&kp->fence, __ATOMIC_RELAXED);

	ch->fence = fence == SN_FENCE_ASYM ? SN_FENCE_ASYM : SN_FENCE_FULL;
	ch->handle_flags = 0;
	if (ch->fence == SN_FENCE_FULL || sn_fence_env_full() ||
	    (ch->backend == SN_BACKEND_MEMFD && !sn_fence_process_asym()))
		ch->handle_flags = SN__FENCE;
	if (ch->fence == SN_FENCE_ASYM && ch->backend == SN_BACKEND_MEMFD &&
	    !sn_fence_memfd_attach_ok())
		return -EOPNOTSUPP;	/* we could not pay when we sleep */
	return 0;
}

static struct sn_channel *sn_channel_alloc(void)
{
	struct sn_channel *ch = calloc(1, sizeof(*ch));

	if (!ch)
		return NULL;
	ch->fd = -1;
	ch->page = (size_t)sysconf(_SC_PAGESIZE);
	return ch;
}

/* Online CPUs, at most SN_MAX_LANES: an MPSC/MPMC channel's default lanes. */
static __u32 sn_default_lanes(void)
{
	long n = sysconf(_SC_NPROCESSORS_ONLN);

	return n < 1 ? 1 : n > SN_MAX_LANES ? SN_MAX_LANES : (__u32)n;
}

/*
 * Says in sn_last_error() which of @o's fields (defaults applied in @g)
 * broke which rule; "" if none did.
 */
static void sn_create_why(const struct sn_channel_opts *o,
			  const struct sn_geometry *g)
{
	__u32 min_slots = o->flags & SN_CHANNEL_VARLEN ? 2 : 1;
	__u64 bytes;

	if (g->type < SN_RING_SPSC || g->type > SN_RING_MPMC)
		sn_why("type %u: not SN_RING_SPSC (1), SN_RING_MPSC (2) or SN_RING_MPMC (3)",
		       g->type);
	else if (g->slots < min_slots || g->slots > SN_CHANNEL_MAX_SLOTS ||
		 (g->slots & (g->slots - 1)))
		sn_why("slots %u: not a power of two in %u..%u", g->slots,
		       min_slots, SN_CHANNEL_MAX_SLOTS);
	else if (g->slot_size < 8 || g->slot_size % 8 ||
		 g->slot_size > SN_CHANNEL_MAX_SLOT_SIZE)
		sn_why("slot_size %u: not a multiple of 8 in 8..%u",
		       g->slot_size, SN_CHANNEL_MAX_SLOT_SIZE);
	else if (g->type == SN_RING_SPSC && g->lanes != 1)
		sn_why("lanes %u: an SPSC channel has 1 lane", g->lanes);
	else if (g->lanes > SN_MAX_LANES)
		sn_why("lanes %u: not in 1..%u", g->lanes, SN_MAX_LANES);
	else if (g->bufs && !(o->flags & SN_CHANNEL_VARLEN))
		sn_why("bufs %u: buffers need SN_CHANNEL_VARLEN", g->bufs);
	else if (g->bufs > SN_MAX_BUFS)
		sn_why("bufs %u: not in 0..%u", g->bufs, SN_MAX_BUFS);
	else if (g->bufs ? g->buf_size < 64 || g->buf_size % 64 ||
			   g->buf_size > SN_MAX_BUF_SIZE : g->buf_size)
		sn_why(g->bufs ? "buf_size %u: not a multiple of 64 in 64..%u" :
		       "buf_size %u: set without bufs", g->buf_size,
		       SN_MAX_BUF_SIZE);
	else if ((bytes = ((__u64)g->slots * sn_geo_stride(g) +
			   (__u64)g->bufs * g->buf_size) * g->lanes) >
		 SN_CHANNEL_MAX_BYTES)
		sn_why("%llu bytes of slots and buffers: above the %llu-byte limit (SN_CHANNEL_MAX_BYTES)",
		       (unsigned long long)bytes,
		       (unsigned long long)SN_CHANNEL_MAX_BYTES);
}

_Static_assert(sizeof(struct sn_channel_opts) == SN_CHANNEL_OPTS_SIZE_VER0,
	       "struct sn_channel_opts grows with a new SN_CHANNEL_OPTS_SIZE_VER*");

/*
 * The caller's options in *@o, as the kernel copies its size-first structs:
 * an older, smaller struct gets 0 (defaults) for what it lacks; a newer,
 * larger one is taken if what we do not know is all zero, else -E2BIG.
 */
static int sn_opts_copy(struct sn_channel_opts *o,
			const struct sn_channel_opts *user)
{
	const unsigned char *extra = (const unsigned char *)user + sizeof(*o);
	__u32 size = user->size, i;

	if (size < SN_CHANNEL_OPTS_SIZE_VER0) {
		sn_why("opts->size %u: below %u (sizeof(struct sn_channel_opts) of libsn 1.0; use SN_CHANNEL_OPTS())",
		       size, SN_CHANNEL_OPTS_SIZE_VER0);
		return -EINVAL;
	}
	/* no libsn's struct will be a page: a size that is, is garbage */
	if (size > 4096) {
		sn_why("opts->size %u: larger than any struct sn_channel_opts",
		       size);
		return -E2BIG;
	}
	for (i = 0; i + sizeof(*o) < size; i++) {
		if (extra[i]) {
			sn_why("opts: byte %zu is set, a field this libsn does not know (it knows %zu bytes)",
			       sizeof(*o) + i, sizeof(*o));
			return -E2BIG;
		}
	}
	memcpy(o, user, sizeof(*o));
	return 0;
}

SN_API int sn_channel_create(struct sn_channel **out,
			     const struct sn_channel_opts *opts)
{
	struct sn_channel_opts opt, *o = &opt;
	struct sn_geometry g = { 0 };
	struct sn_channel *ch;
	unsigned int flags;
	int devfd = -1, ret;

	sn_why_clear();
	if (!out || !opts) {
		sn_why("%s is NULL", out ? "opts" : "out");
		return -EINVAL;
	}
	ret = sn_opts_copy(o, opts);
	if (ret)
		return ret;
	flags = o->flags;
	if (flags & ~SN_CHANNEL_FLAGS) {
		sn_why("flags 0x%x: unknown bits 0x%x", flags,
		       flags & ~SN_CHANNEL_FLAGS);
		return -EINVAL;
	}
	if ((flags & (SN_BACKEND_KERNEL | SN_BACKEND_MEMFD)) ==
	    (SN_BACKEND_KERNEL | SN_BACKEND_MEMFD)) {
		sn_why("flags: SN_BACKEND_KERNEL and SN_BACKEND_MEMFD both");
		return -EINVAL;
	}
	g.type = o->type ? o->type : SN_RING_SPSC;
	g.slots = o->slots ? o->slots : SN_CHANNEL_DEFAULT_SLOTS;
	g.slot_size = o->slot_size ? o->slot_size : SN_CHANNEL_DEFAULT_SLOT_SIZE;
	g.lanes = o->lanes ? o->lanes :
		  g.type == SN_RING_SPSC ? 1 : sn_default_lanes();
	g.flags = SN_GEO_FORMAT3 |
		  (flags & SN_CHANNEL_VARLEN ? SN_GEO_VARLEN : 0);
	g.bufs = o->bufs;
	g.buf_size = o->buf_size;
	if (sn_geometry_check(&g, SN_CHANNEL_MAX_BYTES) ||
	    g.slots > SN_CHANNEL_MAX_SLOTS ||
	    g.slot_size > SN_CHANNEL_MAX_SLOT_SIZE) {
		sn_create_why(o, &g);
		return -EINVAL;
	}
	ch = sn_channel_alloc();
	if (!ch)
		return -ENOMEM;
	ch->geo = g;
	if (!(flags & SN_BACKEND_MEMFD)) {
		devfd = sn_device_open();
		if (devfd < 0 && (flags & SN_BACKEND_KERNEL)) {
			sn_why("SN_BACKEND_KERNEL: cannot open %s (is sn.ko loaded?)",
			       SN_DEVICE_PATH);
			free(ch);
			return devfd;
		}
	}
	if (devfd >= 0) {
		ret = sn_kernel_create(ch, devfd);
		close(devfd);
		if (ret == -EINVAL)
			sn_why("sn.ko refused the ring: above its limits (max_ring_mb and the others in /sys/module/sn/parameters) or a feature it lacks (an older module)");
	} else {
		ret = sn_memfd_create(ch);
	}
	if (!ret)
		ret = sn_channel_fence(ch);
	if (ret) {
		sn_channel_free(ch);
		return ret;
	}
	*out = ch;
	return 0;
}

SN_API int sn_channel_attach(struct sn_channel **out, int fd,
			     unsigned int flags)
{
	struct sn_channel *ch;
	int ret;

	sn_why_clear();
	if (!out || flags) {
		sn_why(out ? "flags 0x%x: none are defined" : "out is NULL",
		       flags);
		return -EINVAL;
	}
	if (fd < 0)
		return -EBADF;
	ch = sn_channel_alloc();
	if (!ch)
		return -ENOMEM;
	ch->fd = fcntl(fd, F_DUPFD_CLOEXEC, 0);
	if (ch->fd < 0) {
		ret = -errno;
		free(ch);
		return ret;
	}
	ret = sn_kernel_attach(ch);
	if (ret == 0)
		ret = sn_memfd_attach(ch);
	else if (ret > 0)
		ret = 0;
	if (ret == -EINVAL && !*sn_last_error())
		sn_why("fd %d: neither an sn.ko ring fd nor a sealed libsn memfd holding a valid ring",
		       fd);
	if (!ret)
		ret = sn_channel_fence(ch);
	if (ret) {
		sn_channel_free(ch);
		return ret;
	}
	*out = ch;
	return 0;
}

SN_API int sn_channel_close(struct sn_channel *ch)
{
	if (!ch)
		return 0;
	if (__atomic_load_n(&ch->handles, __ATOMIC_ACQUIRE))
		return -EBUSY;
	sn_channel_free(ch);
	return 0;
}

SN_API int sn_channel_shutdown(struct sn_channel *ch)
{
	if (!ch)
		return -EINVAL;
	if (ch->backend == SN_BACKEND_MEMFD)
		return sn_memfd_shutdown(ch);
	if (ch->role != SN_ROLE_FULL)
		return -EPERM;
	return ioctl(ch->fd, SN_IOC_SHUTDOWN, SN_SHUT_PRODUCERS) ? -errno : 0;
}

SN_API int sn_channel_fd(const struct sn_channel *ch)
{
	return ch ? ch->fd : -EINVAL;
}

SN_API int sn_channel_backend(const struct sn_channel *ch)
{
	return ch ? (int)ch->backend : -EINVAL;
}

SN_API const char *sn_backend_name(int backend)
{
	switch (backend) {
	case SN_BACKEND_KERNEL:
		return "kernel";
	case SN_BACKEND_MEMFD:
		return "memfd";
	default:
		return "?";
	}
}

SN_API int sn_channel_info(const struct sn_channel *ch,
			   struct sn_channel_info *info)
{
	if (!ch || !info)
		return -EINVAL;
	memset(info, 0, sizeof(*info));
	info->type = ch->geo.type;
	info->slots = ch->geo.slots;
	info->slot_size = ch->geo.slot_size;
	info->lanes = ch->geo.lanes;
	info->backend = ch->backend;
	info->role = ch->role;
	info->lane = ch->lane;
	info->fence = ch->fence;
	info->map_size = ch->off.map_size;
	info->id = ch->id;
	info->flags = ch->geo.flags & SN_GEO_VARLEN ? SN_CHANNEL_VARLEN : 0;
	info->max_msg = sn_channel_max_msg(ch);
	info->bufs = ch->geo.bufs;
	info->buf_size = ch->geo.buf_size;
	info->roles_enforced = ch->backend == SN_BACKEND_KERNEL;
	return 0;
}

__u32 sn_channel_max_msg(const struct sn_channel *ch)
{
	if (!(ch->geo.flags & SN_GEO_VARLEN))
		return ch->geo.slot_size;
	return sn_record_max(ch->geo.slots, sn_log2(ch->off.stride));
}

SN_API int sn_channel_layout(const struct sn_channel *ch, void **base,
			     struct sn_offsets *off)
{
	if (!ch || !base || !off)
		return -EINVAL;
	*base = ch->base;
	*off = ch->off;
	return 0;
}

/* The kernel page's kflags: NEED_WAKEUP says a sleeper needs a kick. */
static const __u32 *sn_kflags_ptr(const struct sn_channel *ch)
{
	return (const __u32 *)(ch->base + ch->off.kpage +
			       offsetof(struct sn_kpage, kflags));
}

SN_API int sn_channel_stats(const struct sn_channel *ch,
			    struct sn_channel_stats *st)
{
	const struct sn_kpage *kp;
	__u32 lane, kflags;
	int varlen;

	if (!ch || !st)
		return -EINVAL;
	varlen = !!(ch->geo.flags & SN_GEO_VARLEN);
	if (ch->backend == SN_BACKEND_MEMFD)
		sn_memfd_check_peers(ch);
	memset(st, 0, sizeof(*st));
	kp = (const struct sn_kpage *)(ch->base + ch->off.kpage);
	st->lanes_live = sn_load64(&kp->lanes_live);
	st->lanes_dead = sn_load64(&kp->lanes_dead);
	st->producers_died = sn_load64(&kp->peers.producers_died);
	st->consumers_died = sn_load64(&kp->peers.consumers_died);
	st->reserved_lost = sn_load64(&kp->peers.reserved_lost);
	st->claims_recovered = sn_load64(&kp->peers.claims_recovered);
	st->claims_lost = sn_load64(&kp->peers.claims_lost);
	st->redelivered = sn_load64(&kp->peers.redelivered);
	st->bufs_reclaimed = sn_load64(&kp->peers.bufs_reclaimed);
	kflags = __atomic_load_n(sn_kflags_ptr(ch), __ATOMIC_RELAXED);
	st->ended = !!(kflags & SN_KFLAG_NO_PRODUCER);
	st->orphaned = !!(kflags & SN_KFLAG_NO_CONSUMER);
	for (lane = 0; lane < ch->geo.lanes; lane++) {
		const struct sn_cons_stats *cs = (const void *)
			(sn_cons_ptr(ch) + ch->off.cons_stats +
			 lane * 2 * SN_PAD);
		const __u32 *head = (const void *)
			(sn_cons_ptr(ch) + ch->off.cons_lane +
			 lane * 2 * SN_PAD);

		__u64 recv = sn_load64(&cs->received);

		/* SPSC/MPSC: derived from the head (sn__cons_count()), but
		 * in varlen rings, whose heads count slots */
		if (ch->geo.type != SN_RING_MPMC && !varlen)
			recv = sn_index64(recv, __atomic_load_n(head,
							__ATOMIC_RELAXED));
		st->received += recv;
		st->bad_records += sn_load64(&cs->bad);
		st->recv_empty += sn_load64(&cs->empty);
		st->sleeps += sn_load64(&cs->sleeps);
		st->wakeups += sn_load64(&cs->wakeups);
		if (ch->readable & (1ULL << lane)) {
			unsigned char *l = sn_lane_ptr(ch, lane);
			const struct sn_prod_stats *ps =
				(const void *)(l + ch->off.prod_stats);
			__u32 t = __atomic_load_n((__u32 *)(l +
							   ch->off.prod_tail),
						  __ATOMIC_RELAXED);
			__u64 sent = sn_load64(&ps->sent);

			if (!varlen)
				sent = sn_index64(sent, t);
			st->sent += sent;
			st->send_errors += sn_load64(&ps->full);
			st->sleeps += sn_load64(&ps->sleeps);
			st->kicks += sn_load64(&ps->kicks);
			st->depth += sn__clamp_depth(t, __atomic_load_n(head,
							__ATOMIC_RELAXED),
						     ch->geo.slots);
		}
	}
	return 0;
}

static void *sn_handle_alloc(size_t size)
{
	size_t sz = (size + SN_HANDLE_ALIGN - 1) & ~(size_t)(SN_HANDLE_ALIGN - 1);
	void *p = aligned_alloc(SN_HANDLE_ALIGN, sz);

	if (p)
		memset(p, 0, sz);
	return p;
}

/* Memfd sleep words keep a wake sequence above the count. */
static __u32 sn_wake_mask(const struct sn_channel *ch)
{
	return ch->backend == SN_BACKEND_MEMFD ? SN_MEMFD_COUNT_MASK : ~0U;
}

SN_API int sn_producer_open(struct sn_channel *ch, struct sn_producer **out)
{
	struct sn_producer *p;
	int fd = -1, own = 0, ret, moved;
	__u32 lane = 0;
	unsigned char *l;

	if (!ch || !out)
		return -EINVAL;
	if (ch->role == SN_ROLE_CONSUMER)
		return -EPERM;
	p = sn_handle_alloc(sizeof(*p));
	if (!p)
		return -ENOMEM;
	if (ch->backend == SN_BACKEND_MEMFD) {
		ret = sn_memfd_claim_lane(ch, &lane, &fd);
	} else if (ch->role == SN_ROLE_PRODUCER) {
		ret = __atomic_exchange_n(&ch->fd_producer, 1,
					  __ATOMIC_ACQ_REL) ? -EBUSY : 0;
		lane = ch->lane;
		fd = ch->fd;
	} else {
		ret = sn_kernel_narrow(ch, SN_ROLE_PRODUCER, SN_LANE_ANY, &lane);
		fd = ret;
		own = 1;
		ret = ret < 0 ? ret : 0;
	}
	if (ret) {
		free(p);
		return ret;
	}
	l = sn_lane_ptr(ch, lane);
	p->mask = ch->geo.slots - 1;
	p->slot_size = ch->geo.slot_size;
	p->stride = ch->off.stride;
	p->flags = (ch->geo.type == SN_RING_MPMC ? SN__MPMC : 0) |
		   (ch->backend == SN_BACKEND_MEMFD ? SN__MEMFD : 0) |
		   ch->handle_flags;
	p->wake_mask = sn_wake_mask(ch);
	p->lane = lane;
	p->slots = l + ch->off.slots;
	p->tail_p = (__u32 *)(l + ch->off.prod_tail);
	p->head_p = (const __u32 *)(sn_cons_ptr(ch) + ch->off.cons_lane +
				    lane * 2 * SN_PAD);
	p->release = ch->geo.type == SN_RING_MPMC ?
		(const __u32 *)(sn_cons_ptr(ch) + ch->off.cons_release) +
			(__u64)lane * ch->geo.slots : NULL;
	p->waiters_p = (__u32 *)(sn_cons_ptr(ch) + ch->off.cons_waiters);
	p->waiting_p = (__u32 *)(l + ch->off.prod_waiting);
	p->kflags_p = sn_kflags_ptr(ch);
	p->stats = (struct sn_prod_stats *)(l + ch->off.prod_stats);
	p->shift = sn_log2(ch->off.stride);
	p->max_len = sn_channel_max_msg(ch);
	p->need = 1;
	p->need_p = (__u32 *)(l + ch->off.prod_need);
	p->bufs = ch->geo.bufs;
	p->buf_size = ch->geo.buf_size;
	p->buf0 = l + ch->off.bufs;
	p->sent_p = (__u32 *)(l + ch->off.prod_bufs);
	p->ret_p = (const __u64 *)(sn_cons_ptr(ch) + ch->off.cons_bufs) +
		   (__u64)lane * ch->geo.bufs;
	if (ch->geo.flags & SN_GEO_VARLEN)
		p->flags |= SN__VARLEN;
	/* continue where the lane's last owner stopped */
	p->tail = sn_lane_commit_orphans(ch, lane, &moved);
	p->limit = p->tail;
	p->sent = sn_load64(&p->stats->sent);
	if (!(p->flags & SN__VARLEN))
		p->sent = sn_index64(p->sent, p->tail);
	sn_lane_new_epoch(ch, lane, (p->flags & SN__VARLEN) ? p->tail :
				    p->sent);
	p->full = sn_load64(&p->stats->full);
	p->sleeps = sn_load64(&p->stats->sleeps);
	p->kicks = sn_load64(&p->stats->kicks);
	p->chan = ch;
	p->fd = fd;
	p->own_fd = own;
	__atomic_add_fetch(&ch->handles, 1, __ATOMIC_RELEASE);
	*out = p;
	return 0;
}

SN_API int sn_producer_close(struct sn_producer *p)
{
	struct sn_channel *ch;

	if (!p)
		return 0;
	ch = p->chan;
	/* a clean close drops its reservation: nothing is lost */
	p->resv = 0;
	__atomic_store_n(&p->stats->reserved, 0, __ATOMIC_RELAXED);
	if (ch->backend == SN_BACKEND_MEMFD) {
		__atomic_and_fetch(p->waiting_p, ~SN_MEMFD_COUNT_MASK,
				   __ATOMIC_RELEASE);
		sn_memfd_unclaim_lane(ch, p->lane, p->fd);
	} else if (p->own_fd) {
		close(p->fd);
	} else {
		__atomic_store_n(&ch->fd_producer, 0, __ATOMIC_RELEASE);
	}
	__atomic_sub_fetch(&ch->handles, 1, __ATOMIC_RELEASE);
	free(p);
	return 0;
}

SN_API int sn_producer_lane(const struct sn_producer *p)
{
	return p ? (int)p->lane : -EINVAL;
}

SN_API int sn_consumer_open(struct sn_channel *ch, struct sn_consumer **out)
{
	struct sn_consumer *c;
	int fd = -1, own = 0, ret = 0;
	int single = ch && ch->geo.type != SN_RING_MPMC;
	__u32 lane, claim = SN_CLAIM_NONE;

	if (!ch || !out)
		return -EINVAL;
	if (ch->role == SN_ROLE_PRODUCER)
		return -EPERM;
	c = sn_handle_alloc(sizeof(*c));
	if (!c)
		return -ENOMEM;
	if (ch->backend == SN_BACKEND_MEMFD) {
		ret = sn_memfd_claim_consumer(ch, &claim, &fd);
	} else if (ch->role == SN_ROLE_CONSUMER && single) {
		int none = 0;

		if (!__atomic_compare_exchange_n(&ch->fd_consumers, &none, 1,
						 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			ret = -EBUSY;
		fd = ch->fd;
	} else {
		/* MPMC: a consumer fd of our own, for its claim record */
		ret = sn_kernel_narrow(ch, SN_ROLE_CONSUMER, 0, &claim);
		fd = ret;
		own = 1;
		ret = ret < 0 ? ret : 0;
	}
	if (!ret && !single && claim >= SN_MAX_CLAIMS) {
		ret = -EINVAL;	/* an MPMC consumer without its record */
		if (own)
			close(fd);
	}
	if (ret) {
		free(c);
		return ret;
	}
	c->mask = ch->geo.slots - 1;
	c->slot_size = ch->geo.slot_size;
	c->stride = ch->off.stride;
	c->lanes = ch->geo.lanes;
	c->flags = (ch->geo.type == SN_RING_MPMC ? SN__MPMC : 0) |
		   (ch->backend == SN_BACKEND_MEMFD ? SN__MEMFD : 0) |
		   ch->handle_flags;
	c->wake_mask = sn_wake_mask(ch);
	c->off_tail = ch->off.prod_tail;
	c->off_waiting = ch->off.prod_waiting;
	c->off_slots = ch->off.slots;
	c->lane0 = ch->base + ch->off.lane0;
	c->heads = sn_cons_ptr(ch) + ch->off.cons_lane;
	c->release = ch->geo.type == SN_RING_MPMC ?
		(__u32 *)(sn_cons_ptr(ch) + ch->off.cons_release) : NULL;
	c->claim = single ? NULL : (struct sn_claim *)(sn_cons_ptr(ch) +
		ch->off.cons_claims + (__u64)claim * SN_PAD);
	c->lane_size = ch->off.lane_size;
	c->waiters_p = (__u32 *)(sn_cons_ptr(ch) + ch->off.cons_waiters);
	c->kflags_p = sn_kflags_ptr(ch);
	c->stats = (struct sn_cons_stats *)(sn_cons_ptr(ch) +
					    ch->off.cons_stats);
	c->shift = sn_log2(ch->off.stride);
	c->max_len = sn_channel_max_msg(ch);
	if (ch->geo.flags & SN_GEO_VARLEN)
		c->flags |= SN__VARLEN;
	c->bufs = ch->geo.bufs;
	c->buf_size = ch->geo.buf_size;
	c->off_bufs = ch->off.bufs;
	c->ret = (__u64 *)(sn_cons_ptr(ch) + ch->off.cons_bufs);
	c->holder = SN_BUF_HELD + (single ? 0 : claim);
	if (single) {
		/* the one consumer continues the heads and the counts */
		for (lane = 0; lane < c->lanes; lane++) {
			c->head[lane] = __atomic_load_n(sn__cons_head_p(c, lane),
							__ATOMIC_ACQUIRE);
			c->ctail[lane] = c->head[lane];
		}
		c->empty = sn_load64(&c->stats->empty);
		c->sleeps = sn_load64(&c->stats->sleeps);
		c->wakeups = sn_load64(&c->stats->wakeups);
	}
	c->claim_idx = claim;
	c->chan = ch;
	c->fd = fd;
	c->own_fd = own;
	__atomic_add_fetch(&ch->handles, 1, __ATOMIC_RELEASE);
	*out = c;
	return 0;
}

SN_API int sn_consumer_flush_stats(struct sn_consumer *c)
{
	if (!c)
		return -EINVAL;
	return sn__consumer_publish(c);
}

SN_API int sn_consumer_close(struct sn_consumer *c)
{
	struct sn_channel *ch;

	if (!c)
		return 0;
	ch = c->chan;
	if (c->peek_n && (c->flags & SN__MPMC))
		sn_consumer_advance(c, c->peek_n);	/* never strand claimed slots */
	sn__consumer_publish(c);
	if (ch->backend == SN_BACKEND_MEMFD) {
		sn_memfd_unclaim_consumer(ch, c->claim_idx, c->fd);
	} else if (c->own_fd) {
		close(c->fd);
	} else {
		__atomic_sub_fetch(&ch->fd_consumers, 1, __ATOMIC_RELEASE);
	}
	__atomic_sub_fetch(&ch->handles, 1, __ATOMIC_RELEASE);
	free(c);
	return 0;
}
