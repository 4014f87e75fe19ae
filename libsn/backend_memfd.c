/* SPDX-License-Identifier: MIT */
/*
 * The memfd backend: the same ring as sn.ko's, in a sealed memfd that libsn
 * lays out with sn_ring_layout() and whose kpage it writes itself. Nothing
 * is protected from the processes that share it; libsn trusts only what it
 * validated at attach time.
 */
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/futex.h>
#include <stdio.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

#define SN_MEMFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static struct sn_kpage *sn_kpage(const struct sn_channel *ch)
{
	return (struct sn_kpage *)(ch->base + ch->off.kpage);
}

/* Maps the whole memfd ring writable (every role may write it). */
static int sn_memfd_map(struct sn_channel *ch)
{
	int ret = sn_map_reserve(ch);

	if (ret)
		return ret;
	ret = sn_map_region(ch, 0, ch->off.map_size, PROT_READ | PROT_WRITE);
	if (ret)
		return ret;
	ch->readable = ~0ULL >> (64 - ch->geo.lanes);
	return 0;
}

int sn_memfd_create(struct sn_channel *ch)
{
	struct sn_kpage *kp;
	__u32 lane, pos;
	int ret;

	ch->backend = SN_BACKEND_MEMFD;
	ch->role = SN_ROLE_FULL;
	sn_ring_layout(&ch->geo, ch->page, &ch->off);
	ret = sn_offsets_check(&ch->geo, &ch->off, ch->page);
	if (ret)
		return ret;
	ch->fd = memfd_create("sn-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (ch->fd < 0)
		return -errno;
	/* sealed: no peer can shrink the file under our mapping (SIGBUS) */
	if (ftruncate(ch->fd, (off_t)ch->off.map_size) ||
	    fcntl(ch->fd, F_ADD_SEALS, SN_MEMFD_SEALS))
		return -errno;
	ret = sn_memfd_map(ch);
	if (ret)
		return ret;
	kp = sn_kpage(ch);
	if (ch->geo.type == SN_RING_MPMC) {
		/* position p of a lane may be written once release[p] == p */
		__u32 *rel = (__u32 *)(ch->base + ch->off.cons +
				       ch->off.cons_release);

		for (lane = 0; lane < ch->geo.lanes; lane++)
			for (pos = 0; pos < ch->geo.slots; pos++)
				rel[(__u64)lane * ch->geo.slots + pos] = pos;
	}
	kp->type = ch->geo.type;
	kp->slot_size = ch->geo.slot_size;
	kp->slots = ch->geo.slots;
	kp->lanes = ch->geo.lanes;
	kp->stride = ch->off.stride;
	kp->geo_flags = ch->geo.flags;
	kp->bufs = ch->geo.bufs;
	kp->buf_size = ch->geo.buf_size;
	/* ASYM only if we skip fences: we are registered for membarrier */
	kp->fence = sn_fence_process_asym() && !sn_fence_env_full() ?
		    SN_FENCE_ASYM : SN_FENCE_FULL;
	/* No kernel thread ever watches a memfd ring: kick every sleeper. */
	kp->kflags = SN_KFLAG_NEED_WAKEUP;
	/* the magic last: an attacher that sees it sees the rest */
	__atomic_store_n(&kp->magic, SN_KPAGE_MAGIC_FORMAT3, __ATOMIC_RELEASE);
	return 0;
}

int sn_memfd_attach(struct sn_channel *ch)
{
	struct sn_kpage kp;
	struct stat st;
	int seals, ret;

	if (fstat(ch->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	/* only a memfd sealed against shrinking is safe to map */
	seals = fcntl(ch->fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EINVAL;
	if (st.st_size < (off_t)ch->page ||
	    pread(ch->fd, &kp, sizeof(kp), 0) != (ssize_t)sizeof(kp))
		return -EINVAL;
	if (kp.magic == SN_KPAGE_MAGIC)
		return -EPROTONOSUPPORT;	/* format 2: an older libsn's */
	if (kp.magic != SN_KPAGE_MAGIC_FORMAT3)
		return -EINVAL;
	ch->geo.type = kp.type;
	ch->geo.slot_size = kp.slot_size;
	ch->geo.slots = kp.slots;
	ch->geo.lanes = kp.lanes;
	ch->geo.flags = SN_GEO_FORMAT3 | (kp.geo_flags & SN_GEO_VARLEN);
	ch->geo.bufs = kp.bufs;
	ch->geo.buf_size = kp.buf_size;
	if (sn_geometry_check(&ch->geo, SN_CHANNEL_MAX_BYTES))
		return -EINVAL;
	sn_ring_layout(&ch->geo, ch->page, &ch->off);
	if (sn_offsets_check(&ch->geo, &ch->off, ch->page) ||
	    (__u64)st.st_size != ch->off.map_size)
		return -EINVAL;
	ch->backend = SN_BACKEND_MEMFD;
	ch->role = SN_ROLE_FULL;
	ret = sn_memfd_map(ch);
	if (ret)
		return ret;
	return 0;
}


/*
 * Dead peers. No kernel sees a memfd peer die, so every claim is an
 * open-file-description lock (fcntl F_OFD_SETLK, a write lock on one byte)
 * taken through the handle's own open file description of the memfd: a
 * reopen of /proc/self/fd/N (a dup would share the description, and locks
 * of one description never conflict with each other). The kernel drops the
 * lock when the description's last fd closes, at the holder's death too.
 * The kpage's bitmaps mirror the locks for the hot path and for stats.
 *
 * Lock bytes, past the end of the file (a lock needs no data under it; the
 * seals keep the file from growing): at map_size +
 *   0 .. 63	lane i's producer
 *   64 .. 127	MPMC claim record j
 *   128	the SPSC/MPSC consumer
 *   129	the state lock: serialises every change of the bitmaps, of
 *		reserved[0] and of kflags (opens, closes, repairs, shutdown)
 * The channel's own fd (ch->fd, shared by every process that attached the
 * ring) never holds a lock, so F_OFD_GETLK through it sees every holder.
 *
 * Ordering. A claim takes its lock, then sets its bit; a clean close
 * clears its bit, then drops its lock. So a set bit whose lock anyone can
 * take belongs to a holder that died (the kernel released its lock at
 * exit, after the last store it made). A repairer therefore does not ask
 * whether the lock is free (F_OFD_GETLK answers only for a past instant):
 * it takes the lock itself, through its own description, and only then
 * looks at the bit. Holding the lock, no claim can set that bit and no
 * other repairer can reap it; the bit is cleared with one atomic
 * and-fetch, and only the repairer that saw it set counts the death.
 * Claims, closes and repairs also hold the state lock, so the flags are
 * computed from bitmaps nobody else changes meanwhile. What a dead holder
 * stored (its last tail, its record) is visible to the repairer: the
 * kernel released the holder's lock after the holder stopped, and the
 * repairer's lock came after that release.
 *
 * Opens, closes and sn_channel_shutdown() wait for the state lock
 * (F_OFD_SETLKW; the kernel drops it if its holder dies). A sleeper's
 * check never waits: when the lock is busy it looks again a slice later,
 * so no timeout is overrun by someone else's repair. A holder that is
 * stopped (SIGSTOP, a debugger) stalls opens and closes meanwhile, and so
 * does a forked child's copy of a description whose holder died holding
 * the lock (until the child exits or execs).
 *
 * Fork: a forked child inherits every description its parent had open
 * (libsn's are O_CLOEXEC, so an exec drops them). A handle's lock then
 * stays held while either process keeps the description: a dead parent's
 * handle looks alive while its child lives. A clean close unlocks
 * explicitly, so it frees the claim even if a child keeps a copy.
 */
/* kpage->reserved[0], the memfd ring's own state (libsn's; sn.ko keeps
 * these in kernel memory). Bit 0: an SPSC/MPSC consumer is attached.
 * HAD_PRODUCER / HAD_CONSUMER: one ever was (SN_KFLAG_NO_PRODUCER and
 * SN_KFLAG_NO_CONSUMER need it); SHUTDOWN: sn_channel_shutdown() was called.
 * Changed only under the state lock (below). */
#define SN_MEMFD_CONSUMER_CLAIM	(1ULL << 0)
#define SN_MEMFD_HAD_PRODUCER	(1ULL << 1)
#define SN_MEMFD_HAD_CONSUMER	(1ULL << 2)
#define SN_MEMFD_SHUTDOWN	(1ULL << 3)

#define SN_MEMFD_LOCK_LANE	0U
#define SN_MEMFD_LOCK_CLAIM	64U
#define SN_MEMFD_LOCK_CONSUMER	128U
#define SN_MEMFD_LOCK_STATE	129U

/* EINTR retries of a blocking lock before giving up (bounded) */
#define SN_MEMFD_EINTR_TRIES	1000

static __u64 sn_memfd_all_lanes(const struct sn_channel *ch)
{
	return ~0ULL >> (64 - ch->geo.lanes);
}

static __u32 *sn_memfd_waiters(const struct sn_channel *ch)
{
	return (__u32 *)(sn_cons_ptr(ch) + ch->off.cons_waiters);
}

static __u32 *sn_memfd_waiting(const struct sn_channel *ch, __u32 lane)
{
	return (__u32 *)(sn_lane_ptr(ch, lane) + ch->off.prod_waiting);
}

static __u32 *sn_memfd_head(const struct sn_channel *ch, __u32 lane)
{
	return (__u32 *)(sn_cons_ptr(ch) + ch->off.cons_lane +
			 lane * 2 * SN_PAD);
}

static struct sn_claim *sn_memfd_record(const struct sn_channel *ch, __u32 j)
{
	return (struct sn_claim *)(sn_cons_ptr(ch) + ch->off.cons_claims +
				   (__u64)j * SN_PAD);
}

static off_t sn_memfd_lock_off(const struct sn_channel *ch, __u32 which)
{
	return (off_t)(ch->off.map_size + which);
}

/*
 * A new open file description of the ring's memfd, for locks of our own.
 * -ENOSYS when /proc is not mounted (there is no other way to reopen an
 * fd; without it there would be no liveness).
 */
static int sn_memfd_reopen(const struct sn_channel *ch)
{
	char path[32];
	int fd, err;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", ch->fd);
	fd = open(path, O_RDWR | O_CLOEXEC);
	if (fd >= 0)
		return fd;
	err = errno;
	if (err == ENOENT && access("/proc/self/fd", F_OK))
		return -ENOSYS;
	return -err;
}

/*
 * F_OFD_SETLK(W) of byte @which through @fd: @type F_WRLCK or F_UNLCK.
 * 1: done; 0: another description holds it; < 0: an error.
 */
static int sn_memfd_lock(const struct sn_channel *ch, int fd, __u32 which,
			 short type, int wait)
{
	struct flock fl = {
		.l_type = type,
		.l_whence = SEEK_SET,
		.l_start = sn_memfd_lock_off(ch, which),
		.l_len = 1,
	};

	if (!fcntl(fd, wait ? F_OFD_SETLKW : F_OFD_SETLK, &fl))
		return 1;
	if (errno == EAGAIN || errno == EACCES)
		return 0;
	return -errno;
}

/* Drops every lock of @fd's description (a forked copy may keep it open). */
static void sn_memfd_unlock_all(int fd)
{
	struct flock fl = { .l_type = F_UNLCK, .l_whence = SEEK_SET };

	fcntl(fd, F_OFD_SETLK, &fl);
}

/* 1 when another description holds byte @which, 0 when none does, < 0. */
static int sn_memfd_held(const struct sn_channel *ch, __u32 which)
{
	struct flock fl = {
		.l_type = F_WRLCK,
		.l_whence = SEEK_SET,
		.l_start = sn_memfd_lock_off(ch, which),
		.l_len = 1,
	};

	if (fcntl(ch->fd, F_OFD_GETLK, &fl))
		return -errno;
	return fl.l_type != F_UNLCK;
}

/* The state lock, waiting for it (opens, closes, shutdown). 0 or -errno. */
static int sn_memfd_state_lock(const struct sn_channel *ch, int fd)
{
	int i, r = -EINTR;

	for (i = 0; i < SN_MEMFD_EINTR_TRIES && r == -EINTR; i++)
		r = sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_STATE, F_WRLCK, 1);
	return r == 1 ? 0 : r ? r : -EAGAIN;
}

static void sn_memfd_state_unlock(const struct sn_channel *ch, int fd)
{
	sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_STATE, F_UNLCK, 0);
}

void sn_memfd_wake(__u32 *word)
{
	__atomic_add_fetch(word, SN_MEMFD_WAKE_SEQ, __ATOMIC_SEQ_CST);
	syscall(SYS_futex, word, FUTEX_WAKE, INT_MAX, NULL, NULL, 0);
}

/* Wakes every sleeper of the ring: consumers and each lane's producer. */
static void sn_memfd_wake_all(const struct sn_channel *ch)
{
	__u32 lane;

	sn_memfd_wake(sn_memfd_waiters(ch));
	for (lane = 0; lane < ch->geo.lanes; lane++)
		sn_memfd_wake(sn_memfd_waiting(ch, lane));
}

/* Producers and consumers that hold a claim now (bitmaps). */
static __u64 sn_memfd_producers(const struct sn_channel *ch)
{
	return __atomic_load_n(&sn_kpage(ch)->lanes_live, __ATOMIC_ACQUIRE) &
	       sn_memfd_all_lanes(ch);
}

static __u64 sn_memfd_consumers(const struct sn_channel *ch)
{
	struct sn_kpage *kp = sn_kpage(ch);

	if (ch->geo.type == SN_RING_MPMC)
		return __atomic_load_n(&kp->claims_live, __ATOMIC_ACQUIRE);
	return __atomic_load_n(&kp->reserved[0], __ATOMIC_ACQUIRE) &
	       SN_MEMFD_CONSUMER_CLAIM;
}

#define SN_MEMFD_KFLAGS (SN_KFLAG_NEED_WAKEUP | SN_KFLAG_NO_PRODUCER | \
			 SN_KFLAG_NO_CONSUMER)

/* What kflags should say, from the bitmaps and reserved[0]. */
static __u32 sn_memfd_want_flags(const struct sn_channel *ch)
{
	const __u64 *r0p = &sn_kpage(ch)->reserved[0];
	__u64 r0 = __atomic_load_n(r0p, __ATOMIC_ACQUIRE);
	__u32 want = SN_KFLAG_NEED_WAKEUP;

	if (!sn_memfd_producers(ch) &&
	    (r0 & (SN_MEMFD_HAD_PRODUCER | SN_MEMFD_SHUTDOWN)))
		want |= SN_KFLAG_NO_PRODUCER;
	if (!sn_memfd_consumers(ch) && (r0 & SN_MEMFD_HAD_CONSUMER))
		want |= SN_KFLAG_NO_CONSUMER;
	return want;
}

/*
 * Under the state lock: brings kflags in line with the bitmaps; when it
 * sets NO_PRODUCER or NO_CONSUMER, wakes every sleeper and returns 1. The
 * flags are read-modify-written (sequentially consistent, so release; [E1]
 * pairs with [E2]):
 * everything the last producer committed (its own stores, or a dead one's,
 * ordered before by the lock the kernel released at its exit and we took)
 * is visible to a consumer that sees the flag with acquire and re-checks
 * the lanes.
 */
static int sn_memfd_update_flags(const struct sn_channel *ch)
{
	__u32 *kflags = &sn_kpage(ch)->kflags;
	__u32 want = sn_memfd_want_flags(ch);
	__u32 old = __atomic_load_n(kflags, __ATOMIC_ACQUIRE);
	__u32 set = want & ~old & SN_MEMFD_KFLAGS;
	__u32 clear = ~want & old & SN_MEMFD_KFLAGS;

	if (clear)
		__atomic_and_fetch(kflags, ~clear, __ATOMIC_SEQ_CST);
	if (set)
		__atomic_or_fetch(kflags, set, __ATOMIC_SEQ_CST);
	/* No consumer: none sleeps, whatever a dead one left counted. */
	if (!sn_memfd_consumers(ch))
		__atomic_and_fetch(sn_memfd_waiters(ch), ~SN_MEMFD_COUNT_MASK,
				   __ATOMIC_RELEASE);
	if (!(set & ~SN_KFLAG_NEED_WAKEUP))
		return 0;
	sn_memfd_wake_all(ch);
	return 1;
}

/*
 * Releases what dead MPMC record @j holds, by the uapi header's algorithm
 * ("Dead peers"); the caller holds the record's lock. Returns 1 when a live
 * record in INTENT covers one of its positions (that consumer may have just
 * won it: look again at the next check; nothing is done meanwhile), else 0
 * with the positions released in *@lost.
 */
static int sn_memfd_recover(const struct sn_channel *ch, __u32 j, __u64 *lost)
{
	struct sn_claim *rec = sn_memfd_record(ch, j), other[SN_MAX_CLAIMS];
	__u32 slots = ch->geo.slots, mask = slots - 1, state, lane, pos, n;
	__u32 h, i, k, no = 0, *rel;
	__u64 live;
	int pass;

	*lost = 0;
	/* [D5] pairs with [D1]: the fields the owner wrote before it */
	state = __atomic_load_n(&rec->state, __ATOMIC_ACQUIRE);
	if (state != SN_CLAIM_INTENT && state != SN_CLAIM_HELD)
		return 0;
	lane = __atomic_load_n(&rec->lane, __ATOMIC_RELAXED);
	pos = __atomic_load_n(&rec->pos, __ATOMIC_RELAXED);
	n = __atomic_load_n(&rec->n, __ATOMIC_RELAXED);
	if (lane >= ch->geo.lanes)
		return 0;	/* garbage: it can hold nothing */
	if (n > slots)
		n = slots;
	rel = (__u32 *)(sn_cons_ptr(ch) + ch->off.cons_release) +
	      (__u64)lane * slots;
	/* [D4] pairs with [D2], acquire: whoever moved the head past p had
	 * stored its INTENT for p before, so we see that record below. One
	 * load serves every position: the dead consumer's CAS, if any, came
	 * before its death and so before this load. */
	h = __atomic_load_n(sn_memfd_head(ch, lane), __ATOMIC_ACQUIRE);
	/* the live records (their lock is held) that claim in this lane;
	 * a dead record covers nothing: it is recovered in turn */
	live = __atomic_load_n(&sn_kpage(ch)->claims_live, __ATOMIC_ACQUIRE) &
	       ~(1ULL << j);
	while (live) {
		__u32 o = (__u32)__builtin_ctzll(live);
		struct sn_claim *r = sn_memfd_record(ch, o);

		live &= live - 1;
		/* only a record known free is skipped: an error counts as
		 * held, as the repair assumes for lanes */
		if (sn_memfd_held(ch, SN_MEMFD_LOCK_CLAIM + o) == 0)
			continue;
		/* acquire, each: [D5] (the state) pairs with [D1] and
		 * [D3], [D6] (lane, pos, n) with [D7]: a record that moved
		 * on comes with its last positions released */
		other[no].state = __atomic_load_n(&r->state, __ATOMIC_ACQUIRE);
		other[no].lane = __atomic_load_n(&r->lane, __ATOMIC_ACQUIRE);
		other[no].pos = __atomic_load_n(&r->pos, __ATOMIC_ACQUIRE);
		other[no].n = __atomic_load_n(&r->n, __ATOMIC_ACQUIRE);
		if (other[no].lane == lane &&
		    (other[no].state == SN_CLAIM_INTENT ||
		     other[no].state == SN_CLAIM_HELD))
			no++;
	}
	/* pass 0 decides whether to defer, pass 1 releases */
	for (pass = 0; pass < 2; pass++) {
		for (i = 0; i < n; i++) {
			__u32 p = pos + i, cover = SN_CLAIM_IDLE;

			if ((__s32)(h - p) <= 0)
				continue;	/* the head has not passed p */
			if (__atomic_load_n(&rel[p & mask],
					    __ATOMIC_ACQUIRE) != p)
				continue;	/* released already */
			for (k = 0; k < no && cover != SN_CLAIM_HELD; k++)
				if (p - other[k].pos < other[k].n)
					cover = other[k].state;
			if (cover == SN_CLAIM_HELD)
				continue;	/* a live consumer's */
			if (!pass) {
				if (cover == SN_CLAIM_INTENT)
					return 1;
				continue;
			}
			/* never undoes a release: only p -> p + slots */
			if (__atomic_compare_exchange_n(&rel[p & mask], &p,
							p + slots, 0,
							__ATOMIC_ACQ_REL,
							__ATOMIC_RELAXED))
				(*lost)++;
		}
	}
	return 0;
}

/* A producer of @lane died: count it and what it had reserved. */
static void sn_memfd_reap_producer(const struct sn_channel *ch, __u32 lane)
{
	struct sn_kpage *kp = sn_kpage(ch);
	struct sn_prod_stats *ps = (struct sn_prod_stats *)
		(sn_lane_ptr(ch, lane) + ch->off.prod_stats);
	__u64 resv = __atomic_exchange_n(&ps->reserved, 0, __ATOMIC_RELAXED);
	int moved;

	if (resv > ch->geo.slots)
		resv = ch->geo.slots;
	__atomic_fetch_add(&kp->peers.reserved_lost, resv, __ATOMIC_RELAXED);
	__atomic_fetch_add(&kp->peers.producers_died, 1, __ATOMIC_RELAXED);
	__atomic_fetch_or(&kp->lanes_dead, 1ULL << lane, __ATOMIC_RELAXED);
	/* it may have died asleep: no producer of the lane sleeps now */
	__atomic_and_fetch(sn_memfd_waiting(ch, lane), ~SN_MEMFD_COUNT_MASK,
			   __ATOMIC_RELEASE);
	/* what it committed past the tail, as sn.ko does */
	sn_lane_commit_orphans(ch, lane, &moved);
	if (moved)
		sn_memfd_wake((__u32 *)(sn_cons_ptr(ch) +
					ch->off.cons_waiters));
}

/*
 * MPMC record @j, whose lock the caller holds, is dead if its bit is set:
 * releases its positions, then frees it (unless it must wait). 1 if done.
 */
/*
 * The SPSC/MPSC consumer goes (closed or dead): what it peeked and did not
 * release comes again to the next one, counted as sn.ko counts it.
 */
static void sn_memfd_redelivered(const struct sn_channel *ch)
{
	struct sn_cons_stats *cs = (struct sn_cons_stats *)
		(sn_cons_ptr(ch) + ch->off.cons_stats);
	__u64 n = __atomic_exchange_n(&cs->peeked, 0, __ATOMIC_ACQ_REL);
	__u64 most = 0;
	__u32 lane;

	/* no more than the lanes hold: a consumer that died between its
	 * head and its peeked store released them (sn_consumer_advance()) */
	for (lane = 0; lane < ch->geo.lanes; lane++) {
		unsigned char *l = sn_lane_ptr(ch, lane);

		most += sn__clamp_depth(
			__atomic_load_n((__u32 *)(l + ch->off.prod_tail),
					__ATOMIC_ACQUIRE),
			__atomic_load_n((__u32 *)(sn_cons_ptr(ch) +
						  ch->off.cons_lane +
						  lane * 2 * SN_PAD),
					__ATOMIC_ACQUIRE),
			ch->geo.slots);
	}
	if (n)
		__atomic_fetch_add(&sn_kpage(ch)->peers.redelivered,
				   n < most ? n : most, __ATOMIC_RELAXED);
}

/*
 * A consumer goes (closed or dead; @claim its MPMC record, else
 * SN_CLAIM_NONE): returns the buffers it held, as sn.ko does (uapi
 * "Buffers").
 */
static void sn_memfd_reclaim_bufs(const struct sn_channel *ch, __u32 claim)
{
	__u64 *ret = (__u64 *)(sn_cons_ptr(ch) + ch->off.cons_bufs), v;
	__u32 lane, j, head;

	for (lane = 0; lane < ch->geo.lanes; lane++) {
		head = __atomic_load_n((__u32 *)(sn_cons_ptr(ch) +
						 ch->off.cons_lane +
						 lane * 2 * SN_PAD),
				       __ATOMIC_ACQUIRE);
		for (j = 0; j < ch->geo.bufs; j++, ret++) {
			v = __atomic_load_n(ret, __ATOMIC_ACQUIRE);
			if (sn_buf_orphaned(v, claim, head) &&
			    __atomic_compare_exchange_n(ret, &v,
							v & 0xffffffffULL, 0,
							__ATOMIC_RELEASE,
							__ATOMIC_RELAXED))
				__atomic_fetch_add(&sn_kpage(ch)->peers.
						   bufs_reclaimed, 1,
						   __ATOMIC_RELAXED);
		}
	}
}

/*
 * Takes back the count a consumer that died asleep left in cons waiters
 * (its record says asleep: uapi "Dead peers"), so publishers stop kicking.
 */
static void sn_memfd_unsleep(const struct sn_channel *ch, struct sn_claim *rec)
{
	__u32 *w = sn_memfd_waiters(ch);
	__u32 v = __atomic_load_n(w, __ATOMIC_RELAXED);
	int tries;

	if (!__atomic_exchange_n(&rec->asleep, 0, __ATOMIC_ACQ_REL))
		return;
	/* bounded: a scribbled word is left as it is */
	for (tries = 0; tries < 1000 && (v & SN_MEMFD_COUNT_MASK); tries++)
		if (__atomic_compare_exchange_n(w, &v, v - 1, 0,
						__ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED))
			return;
}

static int sn_memfd_reap_record(const struct sn_channel *ch, __u32 j)
{
	struct sn_kpage *kp = sn_kpage(ch);
	__u64 lost, old;

	if (!(sn_memfd_consumers(ch) & (1ULL << j)) ||
	    sn_memfd_recover(ch, j, &lost))
		return 0;
	sn_memfd_unsleep(ch, sn_memfd_record(ch, j));
	sn_memfd_reclaim_bufs(ch, j);
	/* ours now: idle before the bit is free */
	__atomic_store_n(&sn_memfd_record(ch, j)->state, SN_CLAIM_IDLE,
			 __ATOMIC_RELEASE);
	old = __atomic_fetch_and(&kp->claims_live, ~(1ULL << j),
				 __ATOMIC_ACQ_REL);
	if (!(old & (1ULL << j)))
		return 0;
	__atomic_fetch_add(&kp->peers.consumers_died, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&kp->peers.claims_lost, lost, __ATOMIC_RELAXED);
	__atomic_fetch_add(&kp->peers.claims_recovered, !!lost,
			   __ATOMIC_RELAXED);
	return 1;
}

/*
 * Under the state lock, through our own description @fd: reaps every claim
 * whose holder died (its lock is free, its bit set), then the flags.
 * Returns whether anything changed (and the sleepers were woken).
 */
static int sn_memfd_repair(const struct sn_channel *ch, int fd)
{
	struct sn_kpage *kp = sn_kpage(ch);
	__u64 bits = sn_memfd_producers(ch), old;
	int changed = 0;
	__u32 b;

	while (bits) {
		b = (__u32)__builtin_ctzll(bits);
		bits &= bits - 1;
		if (sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_LANE + b, F_WRLCK,
				  0) != 1)
			continue;	/* alive (or an error: assume so) */
		old = __atomic_fetch_and(&kp->lanes_live, ~(1ULL << b),
					 __ATOMIC_ACQ_REL);
		if (old & (1ULL << b)) {
			sn_memfd_reap_producer(ch, b);
			changed = 1;
		}
		sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_LANE + b, F_UNLCK, 0);
	}
	if (ch->geo.type != SN_RING_MPMC) {
		if (sn_memfd_consumers(ch) &&
		    sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_CONSUMER, F_WRLCK,
				  0) == 1) {
			old = __atomic_fetch_and(&kp->reserved[0],
						 ~SN_MEMFD_CONSUMER_CLAIM,
						 __ATOMIC_ACQ_REL);
			if (old & SN_MEMFD_CONSUMER_CLAIM) {
				sn_memfd_redelivered(ch);
				sn_memfd_reclaim_bufs(ch, SN_CLAIM_NONE);
				__atomic_fetch_add(&kp->peers.consumers_died, 1,
						   __ATOMIC_RELAXED);
				changed = 1;
			}
			sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_CONSUMER, F_UNLCK,
				      0);
		}
	} else {
		bits = sn_memfd_consumers(ch);
		while (bits) {
			b = (__u32)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_CLAIM + b,
					  F_WRLCK, 0) != 1)
				continue;
			if (sn_memfd_reap_record(ch, b))
				changed = 1;
			sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_CLAIM + b, F_UNLCK,
				      0);
		}
	}
	if (sn_memfd_update_flags(ch))
		return 1;
	if (changed)
		sn_memfd_wake_all(ch);	/* e.g. released positions */
	return changed;
}

/*
 * Something to repair: a claimed bit whose lock nobody holds, or kflags
 * out of line with the bitmaps. Lock-free: loads and F_OFD_GETLK only.
 */
static int sn_memfd_suspect(const struct sn_channel *ch)
{
	__u64 bits = sn_memfd_producers(ch);
	__u32 b, base = SN_MEMFD_LOCK_LANE;
	int round;

	for (round = 0; round < 2; round++) {
		while (bits) {
			b = (__u32)__builtin_ctzll(bits);
			bits &= bits - 1;
			if (!sn_memfd_held(ch, base + b))
				return 1;
		}
		bits = sn_memfd_consumers(ch);
		base = ch->geo.type == SN_RING_MPMC ? SN_MEMFD_LOCK_CLAIM :
						       SN_MEMFD_LOCK_CONSUMER;
	}
	return (__atomic_load_n(&sn_kpage(ch)->kflags, __ATOMIC_ACQUIRE) &
		SN_MEMFD_KFLAGS) != sn_memfd_want_flags(ch);
}

void sn_memfd_check_peers(const struct sn_channel *ch)
{
	int fd;

	if (!sn_memfd_suspect(ch))
		return;
	fd = sn_memfd_reopen(ch);
	if (fd < 0)
		return;
	/* Not waiting: whoever holds the state lock is opening (which
	 * repairs first), closing or repairing; a sleeper looks again at
	 * its next slice rather than sleep past its timeout here. */
	if (sn_memfd_lock(ch, fd, SN_MEMFD_LOCK_STATE, F_WRLCK, 0) == 1)
		sn_memfd_repair(ch, fd);
	close(fd);	/* drops the state lock */
}

/*
 * Under the state lock: takes a free bit of *@map below @all whose lock
 * (@lock0 + bit) we can take through @fd; sets it. -EUSERS when no bit is
 * free, -EBUSY when the free bits' locks are held (a live holder whose bit
 * a peer scribbled away).
 */
static int sn_memfd_take(const struct sn_channel *ch, int fd, __u64 *map,
			 __u64 all, __u32 lock0, __u32 *bit)
{
	__u64 free_bits = ~__atomic_load_n(map, __ATOMIC_ACQUIRE) & all;
	int busy = 0, r;
	__u32 b;

	while (free_bits) {
		b = (__u32)__builtin_ctzll(free_bits);
		free_bits &= free_bits - 1;
		/* the lock first, then the bit (see "Ordering" above) */
		r = sn_memfd_lock(ch, fd, lock0 + b, F_WRLCK, 0);
		if (r < 0)
			return r;
		if (!r) {
			busy = 1;
			continue;
		}
		if (lock0 == SN_MEMFD_LOCK_CLAIM)	/* MPMC records */
			__atomic_store_n(&sn_memfd_record(ch, b)->state,
					 SN_CLAIM_IDLE, __ATOMIC_RELEASE);
		__atomic_fetch_or(map, 1ULL << b, __ATOMIC_ACQ_REL);
		*bit = b;
		return 0;
	}
	return busy ? -EBUSY : -EUSERS;
}

/*
 * Opens a claim: our own description, the state lock, a repair (an open
 * looks for dead peers, so a dead holder's claim is free again), then a bit
 * and its lock. @had: the reserved[0] bit that remembers a producer or a
 * consumer existed.
 */
static int sn_memfd_claim(struct sn_channel *ch, __u64 *map, __u64 all,
			  __u32 lock0, __u64 had, __u32 *bit, int *lockfd)
{
	struct sn_kpage *kp = sn_kpage(ch);
	int fd, ret;

	*lockfd = -1;
	fd = sn_memfd_reopen(ch);
	if (fd < 0)
		return fd;
	ret = sn_memfd_state_lock(ch, fd);
	if (!ret) {
		sn_memfd_repair(ch, fd);
		ret = sn_memfd_take(ch, fd, map, all, lock0, bit);
		if (!ret) {
			if (lock0 == SN_MEMFD_LOCK_LANE)
				__atomic_fetch_and(&kp->lanes_dead,
						   ~(1ULL << *bit),
						   __ATOMIC_RELAXED);
			__atomic_fetch_or(&kp->reserved[0], had,
					  __ATOMIC_RELEASE);
			sn_memfd_update_flags(ch);
		}
		sn_memfd_state_unlock(ch, fd);
	}
	if (ret) {
		close(fd);
		return ret;
	}
	*lockfd = fd;
	return 0;
}

/*
 * Closes a claim: clears the bit, then drops the lock (see "Ordering").
 * Without the state lock (it could not be had) the flags are left to the
 * next check, which sees them out of line.
 */
static void sn_memfd_unclaim(struct sn_channel *ch, __u64 *map, __u64 bit,
			     int lockfd)
{
	int locked = lockfd >= 0 && !sn_memfd_state_lock(ch, lockfd);

	__atomic_fetch_and(map, ~bit, __ATOMIC_RELEASE);
	if (locked)
		sn_memfd_update_flags(ch);
	if (lockfd >= 0) {
		sn_memfd_unlock_all(lockfd);
		close(lockfd);
	}
}

int sn_memfd_claim_lane(struct sn_channel *ch, __u32 *lane, int *lockfd)
{
	return sn_memfd_claim(ch, &sn_kpage(ch)->lanes_live,
			      sn_memfd_all_lanes(ch), SN_MEMFD_LOCK_LANE,
			      SN_MEMFD_HAD_PRODUCER, lane, lockfd);
}

void sn_memfd_unclaim_lane(struct sn_channel *ch, __u32 lane, int lockfd)
{
	sn_memfd_unclaim(ch, &sn_kpage(ch)->lanes_live, 1ULL << lane, lockfd);
}

int sn_memfd_claim_consumer(struct sn_channel *ch, __u32 *claim, int *lockfd)
{
	struct sn_kpage *kp = sn_kpage(ch);
	__u32 bit;
	int ret;

	if (ch->geo.type == SN_RING_MPMC)
		return sn_memfd_claim(ch, &kp->claims_live, ~0ULL,
				      SN_MEMFD_LOCK_CLAIM,
				      SN_MEMFD_HAD_CONSUMER, claim, lockfd);
	*claim = SN_CLAIM_NONE;
	ret = sn_memfd_claim(ch, &kp->reserved[0], SN_MEMFD_CONSUMER_CLAIM,
			     SN_MEMFD_LOCK_CONSUMER, SN_MEMFD_HAD_CONSUMER,
			     &bit, lockfd);
	return ret == -EUSERS ? -EBUSY : ret;
}

void sn_memfd_unclaim_consumer(struct sn_channel *ch, __u32 claim, int lockfd)
{
	struct sn_kpage *kp = sn_kpage(ch);

	if (ch->geo.type == SN_RING_MPMC) {
		sn_memfd_reclaim_bufs(ch, claim);
		sn_memfd_unclaim(ch, &kp->claims_live, 1ULL << claim, lockfd);
		return;
	}
	sn_memfd_redelivered(ch);
	sn_memfd_reclaim_bufs(ch, SN_CLAIM_NONE);
	sn_memfd_unclaim(ch, &kp->reserved[0], SN_MEMFD_CONSUMER_CLAIM, lockfd);
}

int sn_memfd_shutdown(struct sn_channel *ch)
{
	int fd = sn_memfd_reopen(ch), ret;

	if (fd < 0)
		return fd;
	ret = sn_memfd_state_lock(ch, fd);
	if (!ret) {
		__atomic_fetch_or(&sn_kpage(ch)->reserved[0], SN_MEMFD_SHUTDOWN,
				  __ATOMIC_RELEASE);
		sn_memfd_update_flags(ch);
	}
	close(fd);
	return ret;
}
