// SPDX-License-Identifier: GPL-2.0
/*
 * Ring objects: checking what userspace asks for, allocating and accounting
 * the pages, and reading the shared fields without trusting them.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bug.h>
#include <linux/cpumask.h>
#include <linux/cred.h>
#include <linux/gfp.h>
#include <linux/lockdep.h>
#include <linux/log2.h>
#include <linux/minmax.h>
#include <linux/mm.h>
#include <linux/nodemask.h>
#include <linux/overflow.h>
#include <linux/pid.h>
#include <linux/sched.h>
#include <linux/sched/signal.h>
#include <linux/sched/user.h>
#include <linux/slab.h>
#include <linux/topology.h>
#include <linux/user_namespace.h>
#include <linux/vmalloc.h>

#include "sn.h"

/* Every live ring, for the listing and the per-user limit. */
LIST_HEAD(sn_rings);
/* Guards sn_rings; never taken under a ring's lock. */
DEFINE_MUTEX(sn_rings_lock);
static atomic64_t sn_next_id = ATOMIC64_INIT(0);

/*
 * The largest mapping: the parameters' caps keep slot memory at most 64 GiB
 * and so a mapping below 97 GiB (release words at most half the slots, one
 * page per lane). This bound keeps the page array below kvmalloc's INT_MAX
 * and the page count within vmap's unsigned int.
 */
#define SN_MAX_MAP_SIZE		(128ULL << 30)

/* The SN_GEO_* flags of a ring created with SN_CREATE_* @flags. */
static u32 sn_geo_flags(u32 flags)
{
	return (flags & SN_CREATE_FORMAT3 ? SN_GEO_FORMAT3 : 0) |
	       (flags & SN_CREATE_VARLEN ? SN_GEO_VARLEN : 0);
}

static int sn_check_create(const struct sn_create *p)
{
	u64 lane_bytes, ring_bytes;
	unsigned int i;
	u32 stride;

	if (p->flags & ~SN_CREATE_FLAGS)
		return -EINVAL;
	for (i = 0; i < ARRAY_SIZE(p->reserved); i++)
		if (p->reserved[i])
			return -EINVAL;
	if (p->type < SN_RING_SPSC || p->type > SN_RING_MPMC)
		return -EINVAL;
	/* The parameters are capped in their setters; these caps hold anyway. */
	if (p->slot_size < 8 || p->slot_size % 8 ||
	    p->slot_size > min(READ_ONCE(sn_max_slot_size), SN_MAX_SLOT_SIZE))
		return -EINVAL;
	if (!p->slots || !is_power_of_2(p->slots) ||
	    p->slots > min(READ_ONCE(sn_max_slots), SN_MAX_SLOTS))
		return -EINVAL;
	if (!p->lanes || p->lanes > SN_MAX_LANES ||
	    (p->type == SN_RING_SPSC && p->lanes != 1))
		return -EINVAL;
	/* varlen: a record and its terminator need two slots at least */
	if ((p->flags & SN_CREATE_VARLEN) &&
	    (!(p->flags & SN_CREATE_FORMAT3) || p->slots < 2))
		return -EINVAL;
	/* buffers: lane pages after the slots; sent[] fits the lane page */
	if (p->bufs > SN_MAX_BUFS ||
	    (p->bufs && !(p->flags & SN_CREATE_VARLEN)) ||
	    (p->bufs ? p->buf_size < 64 || p->buf_size % 64 ||
		       p->buf_size > SN_MAX_BUF_SIZE : p->buf_size))
		return -EINVAL;
	stride = sn_geo_stride(&(struct sn_geometry){
		.slot_size = p->slot_size,
		.flags = sn_geo_flags(p->flags),
	});
	if (check_mul_overflow((u64)p->slots, (u64)stride, &lane_bytes) ||
	    check_add_overflow(lane_bytes, (u64)p->bufs * p->buf_size,
			       &lane_bytes) ||
	    check_mul_overflow(lane_bytes, (u64)p->lanes, &ring_bytes) ||
	    ring_bytes > (u64)READ_ONCE(sn_max_ring_mb) << 20)
		return -EINVAL;
	/*
	 * The ring's wakeup thread runs on its home CPU: a caller may only
	 * choose a CPU it may run on itself, or it could put work on CPUs its
	 * affinity and cpuset keep it off.
	 */
	if (p->flags & SN_CREATE_HOME_CPU) {
		if (p->home_cpu >= nr_cpu_ids || !cpu_possible(p->home_cpu) ||
		    !cpumask_test_cpu(p->home_cpu, current->cpus_ptr))
			return -EINVAL;
	} else if (p->home_cpu) {
		return -EINVAL;
	}
	if (p->flags & SN_CREATE_NUMA_NODE) {
		if (p->numa_node >= MAX_NUMNODES ||
		    !node_state(p->numa_node, N_MEMORY))
			return -EINVAL;
	} else if (p->numa_node) {
		return -EINVAL;
	}
	return 0;
}

/* Charge RLIMIT_MEMLOCK as io_uring does, unless the caller may lock. */
static int sn_account(struct sn_ring *ring)
{
	unsigned long limit, cur, new;
	struct user_struct *user;

	if (capable(CAP_IPC_LOCK))
		return 0;
	user = get_uid(current_user());
	limit = rlimit(RLIMIT_MEMLOCK) >> PAGE_SHIFT;
	cur = atomic_long_read(&user->locked_vm);
	do {
		new = cur + ring->nr_pages;
		if (new > limit || new < cur) {
			free_uid(user);
			return -ENOMEM;
		}
	} while (!atomic_long_try_cmpxchg(&user->locked_vm, &cur, new));
	ring->user = user;
	ring->locked_pages = ring->nr_pages;
	return 0;
}

static void sn_unaccount(struct sn_ring *ring)
{
	if (!ring->user)
		return;
	atomic_long_sub(ring->locked_pages, &ring->user->locked_vm);
	free_uid(ring->user);
}

static void sn_free_pages(struct sn_ring *ring)
{
	unsigned long i;

	if (ring->vaddr)
		vunmap(ring->vaddr);
	if (!ring->pages)
		return;
	for (i = 0; i < ring->nr_pages; i++) {
		if (ring->pages[i])
			__free_page(ring->pages[i]);
		if (!(i % 1024))
			cond_resched();
	}
	kvfree(ring->pages);
}

/*
 * Zeroed pages on the ring's node, charged to the caller's memory cgroup.
 * A ring may be tens of GiB (when root raised max_ring_mb and needs no
 * RLIMIT_MEMLOCK): a ring larger than all memory fails at once, the rest
 * fail rather than invoke the OOM killer, and the loop reschedules and
 * stops for a fatal signal.
 */
static int sn_alloc_pages(struct sn_ring *ring)
{
	const gfp_t gfp = GFP_KERNEL_ACCOUNT | __GFP_RETRY_MAYFAIL |
			  __GFP_NOWARN;
	unsigned long i;

	if (ring->nr_pages > totalram_pages())
		return -ENOMEM;
	ring->pages = kvcalloc(ring->nr_pages, sizeof(*ring->pages), gfp);
	if (!ring->pages)
		return -ENOMEM;
	for (i = 0; i < ring->nr_pages; i++) {
		ring->pages[i] = alloc_pages_node(ring->numa_node,
						  gfp | __GFP_ZERO, 0);
		if (!ring->pages[i])
			return -ENOMEM;
		if (!(i % 1024)) {
			if (fatal_signal_pending(current))
				return -EINTR;
			cond_resched();
		}
	}
	/* nr_pages < 2^32: SN_MAX_MAP_SIZE bounds it. */
	ring->vaddr = vmap(ring->pages, ring->nr_pages, VM_MAP, PAGE_KERNEL);
	if (!ring->vaddr)
		return -ENOMEM;
	return 0;
}

/* MPMC: the release word of position @pos of @lane (masked). */
u32 *sn_release_word(const struct sn_ring *ring, u32 lane, u32 pos)
{
	u64 off = ring->off.cons + ring->off.cons_release +
		  ((u64)lane * ring->geo.slots + (pos & (ring->geo.slots - 1))) *
		  sizeof(u32);

	return (u32 *)(ring->vaddr + off);
}

/*
 * Everything in the shared pages but the id. Called before the ring is
 * listed, without sn_rings_lock: the release words of a large MPMC ring
 * number up to 2^30 and must not hold up every other user's create, close
 * and listing.
 */
static void sn_ring_init_shared(struct sn_ring *ring)
{
	struct sn_kpage *kp = ring->kpage;
	u32 lane, pos;

	kp->magic = ring->geo.flags & SN_GEO_FORMAT3 ? SN_KPAGE_MAGIC_FORMAT3 :
		    SN_KPAGE_MAGIC;
	kp->fence = ring->fence;
	kp->stride = ring->off.stride;
	kp->geo_flags = ring->geo.flags;
	kp->bufs = ring->geo.bufs;
	kp->buf_size = ring->geo.buf_size;
	kp->type = ring->geo.type;
	kp->slot_size = ring->geo.slot_size;
	kp->slots = ring->geo.slots;
	kp->lanes = ring->geo.lanes;
	/* No thread watches a new ring: publishers must kick sleepers. */
	kp->kflags = SN_KFLAG_NEED_WAKEUP;
	/* MPMC: position p of a lane may be written once release[p] == p. */
	if (ring->geo.type != SN_RING_MPMC)
		return;
	for (lane = 0; lane < ring->geo.lanes; lane++) {
		for (pos = 0; pos < ring->geo.slots; pos++) {
			*sn_release_word(ring, lane, pos) = pos;
			if (!(pos % 65536))
				cond_resched();
		}
	}
}

/* Rings of the current user. */
static unsigned int sn_user_rings(kuid_t uid)
	__must_hold(&sn_rings_lock)
{
	struct sn_ring *ring;
	unsigned int n = 0;

	lockdep_assert_held(&sn_rings_lock);
	list_for_each_entry(ring, &sn_rings, node)
		if (uid_eq(ring->uid, uid))
			n++;
	return n;
}

static void sn_ring_free(struct sn_ring *ring)
{
	sn_free_pages(ring);
	sn_unaccount(ring);
	put_pid(ring->owner);
	if (ring->user_ns)
		put_user_ns(ring->user_ns);
	kfree(ring);
}

struct sn_ring *sn_ring_create(const struct sn_create *p)
{
	struct sn_ring *ring;
	int ret;

	ret = sn_check_create(p);
	if (ret)
		return ERR_PTR(ret);
	ring = kzalloc(struct_size(ring, seen, p->lanes), GFP_KERNEL_ACCOUNT);
	if (!ring)
		return ERR_PTR(-ENOMEM);
	kref_init(&ring->ref);
	INIT_LIST_HEAD(&ring->node);
	INIT_LIST_HEAD(&ring->arm_node);
	ring->arm_cpu = -1;
	init_waitqueue_head(&ring->wq);
	spin_lock_init(&ring->lock);
	sn_recover_ring_init(ring);
	ring->geo.type = p->type;
	ring->geo.slot_size = p->slot_size;
	ring->geo.slots = p->slots;
	ring->geo.lanes = p->lanes;
	ring->geo.flags = sn_geo_flags(p->flags);
	ring->geo.bufs = p->bufs;
	ring->geo.buf_size = p->buf_size;
	/* Fixed for the ring's life: its publishers decide by it once. */
	ring->fence = READ_ONCE(sn_asym) && (p->flags & SN_CREATE_ASYM) ?
		      SN_FENCE_ASYM : SN_FENCE_FULL;
	sn_ring_layout(&ring->geo, PAGE_SIZE, &ring->off);
	if (ring->off.map_size > SN_MAX_MAP_SIZE) {
		ret = -EINVAL;
		goto err;
	}
	ring->nr_pages = ring->off.map_size >> PAGE_SHIFT;
	ring->home_cpu = p->flags & SN_CREATE_HOME_CPU ? p->home_cpu :
			 raw_smp_processor_id();
	ring->numa_node = p->flags & SN_CREATE_NUMA_NODE ? p->numa_node :
			  cpu_to_node(ring->home_cpu);
	if (ring->numa_node == NUMA_NO_NODE)
		ring->numa_node = numa_mem_id();
	ring->uid = current_uid();
	ring->user_ns = get_user_ns(current_user_ns());
	ring->owner = get_pid(task_tgid(current));

	ret = sn_account(ring);
	if (ret)
		goto err;
	ret = sn_alloc_pages(ring);
	if (ret)
		goto err;
	ring->kpage = (struct sn_kpage *)(ring->vaddr + ring->off.kpage);
	sn_ring_init_shared(ring);

	mutex_lock(&sn_rings_lock);
	if (!capable(CAP_SYS_RESOURCE) &&
	    sn_user_rings(ring->uid) >= READ_ONCE(sn_max_rings_per_user)) {
		mutex_unlock(&sn_rings_lock);
		ret = -EMFILE;
		goto err;
	}
	/* Ids in listing order; no fd exists yet to map the kpage. */
	ring->id = atomic64_inc_return(&sn_next_id);
	ring->kpage->id = ring->id;
	list_add_tail(&ring->node, &sn_rings);
	mutex_unlock(&sn_rings_lock);
	return ring;
err:
	sn_ring_free(ring);
	return ERR_PTR(ret);
}

static void sn_ring_release(struct kref *ref)
{
	struct sn_ring *ring = container_of(ref, struct sn_ring, ref);

	/*
	 * A queued recovery holds a reference, so none is queued now; the
	 * last reference may be the recovery's own, dropped at its end.
	 */
	WARN_ON_ONCE(delayed_work_pending(&ring->recover_work));

	mutex_lock(&sn_rings_lock);
	list_del(&ring->node);
	mutex_unlock(&sn_rings_lock);
	sn_thread_disarm(ring);
	sn_ring_free(ring);
}

void sn_ring_put(struct sn_ring *ring)
{
	kref_put(&ring->ref, sn_ring_release);
}

/*
 * Readers of the shared fields. Userspace may write anything there at any
 * time: each field is read once, every index masked, every difference taken
 * signed and clamped. What they return are hints for poll and the listing.
 */
static u32 sn_shared_u32(const struct sn_ring *ring, u64 off)
{
	return READ_ONCE(*(u32 *)(ring->vaddr + off));
}

static u64 sn_shared_u64(const struct sn_ring *ring, u64 off)
{
	return READ_ONCE(*(u64 *)(ring->vaddr + off));
}

static u64 sn_lane_off(const struct sn_ring *ring, u32 lane)
{
	return ring->off.lane0 + (u64)lane * ring->off.lane_size;
}

static u64 sn_cons_lane_off(const struct sn_ring *ring, u32 lane)
{
	return ring->off.cons + (u64)lane * SN_PAD * 2;
}

/* The @lane's head word in the consumer region. */
u32 *sn_head_word(const struct sn_ring *ring, u32 lane)
{
	return (u32 *)(ring->vaddr + sn_cons_lane_off(ring, lane) +
		       ring->off.cons_lane);
}

/* MPMC: claim record @claim (below SN_MAX_CLAIMS). */
struct sn_claim *sn_claim_rec(const struct sn_ring *ring, u32 claim)
{
	return (struct sn_claim *)(ring->vaddr + ring->off.cons +
				   ring->off.cons_claims +
				   (u64)claim * SN_PAD);
}

/* The SPSC/MPSC consumer's sn_cons_stats.peeked word (lane 0's line). */
u64 *sn_cons_peeked(const struct sn_ring *ring)
{
	return (u64 *)(ring->vaddr + sn_cons_lane_off(ring, 0) +
		       ring->off.cons_stats +
		       offsetof(struct sn_cons_stats, peeked));
}

/* The sn_prod_stats.reserved word of @lane. */
u64 *sn_prod_reserved(const struct sn_ring *ring, u32 lane)
{
	return (u64 *)(ring->vaddr + sn_lane_off(ring, lane) +
		       ring->off.prod_stats +
		       offsetof(struct sn_prod_stats, reserved));
}

/*
 * A sleeper that went with its fd leaves no announcement behind, or
 * publishers would go on kicking for it (uapi "Dead peers"). @lane's
 * producer waiting word; with @consumers_gone (no consumer fd is left of
 * an SPSC/MPSC ring) cons waiters; with @asleep_rec, an MPMC record that
 * says its consumer was counted in cons waiters, one count. The words are
 * userspace's: a count is taken back only while it is positive.
 */
void sn_ring_forget_sleeper(struct sn_ring *ring, u32 lane, bool consumers_gone,
			    struct sn_claim *asleep_rec)
{
	atomic_t *waiters = (atomic_t *)(ring->vaddr + ring->off.cons +
					 ring->off.cons_waiters);

	if (lane != SN_LANE_ANY)
		WRITE_ONCE(*(u32 *)(ring->vaddr + sn_lane_off(ring, lane) +
				    ring->off.prod_waiting), 0);
	if (consumers_gone)
		atomic_set(waiters, 0);
	if (asleep_rec && xchg(&asleep_rec->asleep, 0) == 1)
		atomic_dec_if_positive(waiters);
}

/*
 * kpage->kflags has several writers (wakeup threads, fd release, ioctls):
 * every change is an atomic read-modify-write of just its bits.
 */
void sn_kflags_set(struct sn_ring *ring, u32 bits)
{
	/*
	 * [E1] pairs with [E2] (sn_consumer_poll_state(), libsn/wait.c):
	 * what happened before a flag (the last producer's commits) is
	 * visible to whoever sees the flag.
	 */
	smp_mb__before_atomic();
	atomic_or(bits, (atomic_t *)&ring->kpage->kflags);
}

void sn_kflags_clear(struct sn_ring *ring, u32 bits)
{
	atomic_andnot(bits, (atomic_t *)&ring->kpage->kflags);
}

/* Copies the kernel's truth (under ring->lock) to the kpage. */
void sn_ring_mirror_peers(struct sn_ring *ring)
	__must_hold(&ring->lock)
{
	struct sn_kpage *kp = ring->kpage;

	lockdep_assert_held(&ring->lock);
	WRITE_ONCE(kp->lanes_live, ring->lanes_owned);
	WRITE_ONCE(kp->lanes_dead, ring->lanes_dead);
	WRITE_ONCE(kp->claims_live, ring->claims_owned & ~ring->claims_dying);
	WRITE_ONCE(kp->peers.producers_died, ring->peers.producers_died);
	WRITE_ONCE(kp->peers.consumers_died, ring->peers.consumers_died);
	WRITE_ONCE(kp->peers.reserved_lost, ring->peers.reserved_lost);
	WRITE_ONCE(kp->peers.claims_recovered, ring->peers.claims_recovered);
	WRITE_ONCE(kp->peers.claims_lost, ring->peers.claims_lost);
	WRITE_ONCE(kp->peers.redelivered, ring->peers.redelivered);
	WRITE_ONCE(kp->peers.bufs_reclaimed, ring->peers.bufs_reclaimed);
}

u32 sn_lane_tail(const struct sn_ring *ring, u32 lane)
{
	return sn_shared_u32(ring, sn_lane_off(ring, lane) + ring->off.prod_tail);
}

/*
 * The slots of the committed record at position @t of @lane, read from its
 * header (seq acquired, len read once): 0 if none is committed there or
 * its length is not valid (sn_record_span()). Fixed-size rings: 1.
 */
static u32 sn_lane_record_at(const struct sn_ring *ring, u64 lane_off, u32 t)
{
	u32 mask = ring->geo.slots - 1, len;
	const struct sn_slot *s;

	s = (const struct sn_slot *)(ring->vaddr + lane_off + ring->off.slots +
				     (u64)(t & mask) * ring->off.stride);
	/*
	 * acquire: pairs with the producer's release of seq, so a release
	 * of the tail past it publishes the message too
	 */
	if (smp_load_acquire(&s->seq) != t + 1)
		return 0;
	if (!(ring->geo.flags & SN_GEO_VARLEN))
		return 1;
	len = READ_ONCE(s->len);
	if ((len & SN_SLOT_BUF) && !ring->geo.bufs)
		return 0;	/* a buffer record where there are none */
	return sn_record_span(len, t & mask, ring->geo.slots,
			      ilog2(ring->off.stride));
}

/*
 * Format 3: a producer that dies between storing its records' seq words
 * and the tail leaves committed messages past the tail, which the kernel's
 * readers and MPMC consumers go by. Called while the dying producer fd
 * still owns @lane: moves the tail past them (at most a lap, each header
 * read once, a record only whole and valid) and returns true if it did. A
 * full-role fd writing the tail meanwhile wins: the tail moves only from
 * the value read.
 */
bool sn_lane_commit_orphans(struct sn_ring *ring, u32 lane)
{
	u64 lane_off = sn_lane_off(ring, lane);
	u32 *tailp = (u32 *)(ring->vaddr + lane_off + ring->off.prod_tail);
	u32 t0 = READ_ONCE(*tailp), t = t0, n, walked = 0;

	if (!(ring->geo.flags & SN_GEO_FORMAT3))
		return false;
	while ((n = sn_lane_record_at(ring, lane_off, t)) &&
	       n <= ring->geo.slots - (t - t0)) {
		t += n;
		walked++;
		if (!(walked % 4096))
			cond_resched();
	}
	/* release: the messages before the tail, as the producer's own */
	return t != t0 && cmpxchg_release(tailp, t0, t) == t0;
}

/*
 * A consumer fd goes (uapi "Buffers"): returns the buffers it held, @claim
 * its MPMC claim record, else SN_CLAIM_NONE (the SPSC/MPSC consumer: the
 * buffers whose records the head passed). Every word is userspace's: read
 * once, and cmpxchg'd only from the value read (peers under ring->lock);
 * at most SN_MAX_LANES * SN_MAX_BUFS words.
 */
void sn_ring_reclaim_bufs(struct sn_ring *ring, u32 claim)
	__must_hold(&ring->lock)
{
	u32 lane, j;
	u64 *ret, v;

	lockdep_assert_held(&ring->lock);
	for (lane = 0; lane < ring->geo.lanes; lane++) {
		u32 head = sn_lane_head(ring, lane);

		ret = (u64 *)(ring->vaddr + ring->off.cons + ring->off.cons_bufs +
			      (u64)lane * ring->geo.bufs * sizeof(u64));
		for (j = 0; j < ring->geo.bufs; j++) {
			v = READ_ONCE(ret[j]);
			if (!sn_buf_orphaned(v, claim, head))
				continue;
			/* release: as the consumer's own return */
			if (cmpxchg_release(&ret[j], v, v & U32_MAX) == v)
				ring->peers.bufs_reclaimed++;
		}
	}
}

u32 sn_lane_head(const struct sn_ring *ring, u32 lane)
{
	return sn_shared_u32(ring, sn_cons_lane_off(ring, lane) +
			     ring->off.cons_lane);
}

u32 sn_lane_depth(const struct sn_ring *ring, u32 lane)
{
	u32 tail = sn_lane_tail(ring, lane);
	u32 head = sn_lane_head(ring, lane);
	s32 depth = (s32)(tail - head);

	return clamp_t(s32, depth, 0, ring->geo.slots);
}

/* MPMC: the release word of position @pos of @lane. */
u32 sn_lane_release(const struct sn_ring *ring, u32 lane, u32 pos)
{
	return READ_ONCE(*sn_release_word(ring, lane, pos));
}

/*
 * Varlen: the slots @lane's waiting producer said it needs (uapi
 * "Records"), 1..slots; fixed-size rings: 1.
 */
u32 sn_lane_need(const struct sn_ring *ring, u32 lane)
{
	u32 need;

	if (!(ring->geo.flags & SN_GEO_VARLEN))
		return 1;
	need = sn_shared_u32(ring, sn_lane_off(ring, lane) +
			     ring->off.prod_need);
	return clamp_t(u32, need, 1, ring->geo.slots);
}

/* Whether @lane has room for @need slots (1..slots, sn_lane_need()). */
bool sn_lane_has_room_for(const struct sn_ring *ring, u32 lane, u32 need)
{
	u32 tail, i;

	if (ring->geo.type != SN_RING_MPMC)
		return ring->geo.slots - sn_lane_depth(ring, lane) >= need;
	/* bounded: poll may run in atomic context (io_uring's wakeups) */
	tail = sn_lane_tail(ring, lane);
	for (i = 0; i < need && i < SN_NEED_SCAN; i++)
		if (sn_lane_release(ring, lane, tail + i) != tail + i)
			return false;
	return sn_lane_release(ring, lane, tail + need - 1) == tail + need - 1;
}

bool sn_lane_has_room(const struct sn_ring *ring, u32 lane)
{
	return sn_lane_has_room_for(ring, lane, sn_lane_need(ring, lane));
}

bool sn_ring_readable(const struct sn_ring *ring)
{
	u32 lane;

	for (lane = 0; lane < ring->geo.lanes; lane++)
		if (sn_lane_depth(ring, lane))
			return true;
	return false;
}

bool sn_ring_has_room(const struct sn_ring *ring)
{
	u32 lane;

	for (lane = 0; lane < ring->geo.lanes; lane++)
		if (sn_lane_has_room(ring, lane))
			return true;
	return false;
}

/* Announced sleepers: consumers (clamped) plus producers waiting. */
u32 sn_ring_sleepers(const struct sn_ring *ring)
{
	u32 n = min_t(u32, sn_shared_u32(ring, ring->off.cons +
					 ring->off.cons_waiters), U16_MAX);
	u32 lane;

	for (lane = 0; lane < ring->geo.lanes; lane++)
		if (sn_shared_u32(ring, sn_lane_off(ring, lane) +
				  ring->off.prod_waiting))
			n++;
	return n;
}

/*
 * Totals of the sides' own statistics: hints, as the sides keep them. In
 * format 3 the sides publish sent and (SPSC/MPSC) received only now and
 * then; the tail and the head give the rest (sn_index64()). Varlen rings'
 * sides store them per operation.
 */
void sn_ring_stats(const struct sn_ring *ring, u64 *sent, u64 *received)
{
	/* varlen: the indices count slots, the statistics messages */
	bool fmt3 = (ring->geo.flags & (SN_GEO_FORMAT3 | SN_GEO_VARLEN)) ==
		    SN_GEO_FORMAT3;
	u32 lane;
	u64 s, r;

	*sent = 0;
	*received = 0;
	for (lane = 0; lane < ring->geo.lanes; lane++) {
		s = sn_shared_u64(ring, sn_lane_off(ring, lane) +
				  ring->off.prod_stats +
				  offsetof(struct sn_prod_stats, sent));
		r = sn_shared_u64(ring, sn_cons_lane_off(ring, lane) +
				  ring->off.cons_stats +
				  offsetof(struct sn_cons_stats, received));
		if (fmt3) {
			s = sn_index64(s, sn_lane_tail(ring, lane));
			if (ring->geo.type != SN_RING_MPMC)
				r = sn_index64(r, sn_lane_head(ring, lane));
		}
		*sent += s;
		*received += r;
	}
}
