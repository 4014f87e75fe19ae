// SPDX-License-Identifier: GPL-2.0
/*
 * Recovery of what a dead MPMC consumer claimed: the kernel half of the
 * claim record protocol in include/uapi/linux/sn.h ("Dead peers").
 *
 * When a consumer fd that owns a claim record is released, its record is
 * read once (state, lane, pos, n, each untrusted) and kept here as dying;
 * the record index stays reserved until its recovery is complete, so no
 * new fd can take it meanwhile. A pass looks at every dying record of the
 * ring, under ring->recover_lock (one recovery of a ring at a time):
 *
 *   for each position p of the record: skip p unless the lane's head has
 *   passed it (acquire load [D4] pairs with the consumers' head CAS [D2])
 *   and release[p] == p; skip it if a live record in state HELD covers p
 *   (acquire load of its state [D5] pairs with the consumer's INTENT store
 *   with release [D1]); if one in state INTENT covers p, the record is
 *   looked at again later; else cmpxchg(release[p], p, p + slots). The
 *   consumers' side is in include/sn/channel.h, the table of barriers in
 *   include/uapi/linux/sn.h.
 *
 * Why a head past p and no live record covering p means its owner died:
 * the consumer that won the head CAS past p stored INTENT for p before
 * [D2], and keeps a record covering p until after its release stores [D3].
 * The live records are read after the head and the live set is taken
 * after the head too, so the winner's record (or a later one of its fd,
 * which is ordered after its release of p) is seen. release[p] read before
 * a winner's release store only costs a failed cmpxchg: the cmpxchg never
 * undoes a release.
 *
 * A record that found a live INTENT is retried by a delayed work, 10 ms
 * and backing off to 1 s, that holds a ring reference while queued or
 * running: the ring cannot be freed under it, and when it drops the last
 * reference it frees the ring itself (a work may free its own item).
 * Module exit waits for every queued retry; a retry always completes once
 * the ring has no consumer fd left, since then no record is live.
 *
 * Bounds: a record covers at most slots positions; the live records are
 * read once per record pass, not per position, and cut it into segments
 * looked at once each (sn_recover_one()).
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/atomic.h>
#include <linux/bitmap.h>
#include <linux/bitops.h>
#include <linux/jiffies.h>
#include <linux/lockdep.h>
#include <linux/minmax.h>
#include <linux/mutex.h>
#include <linux/sched.h>
#include <linux/sort.h>
#include <linux/wait.h>
#include <linux/workqueue.h>

#include "sn.h"

#define SN_RECOVER_FIRST_MS	10
#define SN_RECOVER_MAX_MS	1000

static struct workqueue_struct *sn_recover_wq;
/* Queued retries: module exit waits for them. */
static atomic_t sn_recover_pending = ATOMIC_INIT(0);
static DECLARE_WAIT_QUEUE_HEAD(sn_recover_idle);

/*
 * Reads the records of live consumer fds (@live) that claim positions of
 * @lane within [@pos, @pos + @n) into ring->cover, as offsets from @pos;
 * returns how many. Each is read once, untrusted: n clamped to slots.
 */
static unsigned int sn_read_live(struct sn_ring *ring, u64 live, u32 lane,
				 u32 pos, u32 n)
	__must_hold(&ring->recover_lock)
{
	DECLARE_BITMAP(bits, SN_MAX_CLAIMS);
	struct sn_cover *c;
	struct sn_claim *rec;
	unsigned int nc = 0;
	u32 state, start;
	u64 end;
	int i;

	lockdep_assert_held(&ring->recover_lock);
	bitmap_from_u64(bits, live);
	for_each_set_bit(i, bits, SN_MAX_CLAIMS) {
		rec = sn_claim_rec(ring, i);
		/* [D5] pairs with [D1] and [D3]: the state, then the rest. */
		state = smp_load_acquire(&rec->state);
		if (state != SN_CLAIM_INTENT && state != SN_CLAIM_HELD)
			continue;
		if (READ_ONCE(rec->lane) != lane)
			continue;
		start = READ_ONCE(rec->pos) - pos;
		end = (u64)start + min(READ_ONCE(rec->n), ring->geo.slots);
		/*
		 * Both ranges are at most slots <= 2^24 long in a 2^32 space:
		 * they meet in one piece at most, either from start or,
		 * wrapping, from 0.
		 */
		c = &ring->cover[nc];
		c->state = state;
		if (start < n) {
			c->start = start;
			c->end = min_t(u64, end, n);
		} else if (end > BIT_ULL(32)) {
			c->start = 0;
			c->end = min_t(u64, end - BIT_ULL(32), n);
		} else {
			continue;
		}
		if (c->start < c->end)
			nc++;
	}
	return nc;
}

static int sn_cmp_u32(const void *a, const void *b)
{
	u32 x = *(const u32 *)a, y = *(const u32 *)b;

	return x < y ? -1 : x > y;
}

/*
 * Publishes what a pass over dying record @claim did: @lost positions
 * recovered, and if @done the record is complete and its index free
 * again. One lock section for both: whoever reads the last count in the
 * kpage may take the index at once. Returns @done.
 */
static bool sn_recover_publish(struct sn_ring *ring, u32 claim, u64 lost,
			       bool done)
	__must_hold(&ring->recover_lock)
{
	struct sn_dying *d = &ring->dying[claim];

	spin_lock(&ring->lock);
	if (lost) {
		ring->peers.claims_lost += lost;
		if (!d->released)
			ring->peers.claims_recovered++;
		d->released = true;
	}
	if (done) {
		ring->claims_dying &= ~BIT_ULL(claim);
		ring->claims_read &= ~BIT_ULL(claim);
		ring->claims_owned &= ~BIT_ULL(claim);
	}
	if (lost || done)
		sn_ring_mirror_peers(ring);
	spin_unlock(&ring->lock);
	/*
	 * Keyless, as kicks: producers waiting for room re-poll. A wakeup
	 * thread watching the ring also sees the release word.
	 */
	if (lost)
		wake_up_interruptible(&ring->wq);
	return done;
}

/*
 * One pass over dying record @claim. Returns false if a live INTENT record
 * covered one of its positions: it must be looked at again. The live
 * records cut the record into at most 2 * SN_MAX_CLAIMS + 1 segments, each
 * covered by the same records throughout: one look per segment, then a
 * plain walk of its positions, so a pass costs O(n + SN_MAX_CLAIMS^2).
 */
static bool sn_recover_one(struct sn_ring *ring, u32 claim)
	__must_hold(&ring->recover_lock)
{
	struct sn_dying *d = &ring->dying[claim];
	u32 slots = ring->geo.slots, lane = d->rec.lane, n = d->rec.n;
	unsigned int nc, nb, k, j;
	bool held, intent, done = true;
	u32 head, off, p, *word;
	u64 lost = 0, live;

	lockdep_assert_held(&ring->recover_lock);
	if ((d->rec.state != SN_CLAIM_INTENT && d->rec.state != SN_CLAIM_HELD) ||
	    lane >= ring->geo.lanes)
		return sn_recover_publish(ring, claim, 0, true);
	/* [D4] pairs with [D2], whoever won the positions. */
	head = smp_load_acquire(sn_head_word(ring, lane));
	/* Taken after the head: the winner's fd existed before its CAS. */
	spin_lock(&ring->lock);
	live = ring->claims_owned & ~ring->claims_dying;
	spin_unlock(&ring->lock);
	nc = sn_read_live(ring, live, lane, d->rec.pos, n);
	/*
	 * [D6] pairs with [D7]: the live records before the release words.
	 * A consumer that moved its record on to its next claim stored the
	 * release words of the last one first (sn__cons_take() or
	 * sn__cons_var_take()), so a record read as no longer covering p
	 * comes with p released.
	 */
	smp_rmb();

	nb = 0;
	ring->bounds[nb++] = 0;
	ring->bounds[nb++] = n;
	for (j = 0; j < nc; j++) {
		ring->bounds[nb++] = ring->cover[j].start;
		ring->bounds[nb++] = ring->cover[j].end;
	}
	sort(ring->bounds, nb, sizeof(u32), sn_cmp_u32, NULL);

	for (k = 0; k + 1 < nb; k++) {
		if (ring->bounds[k] == ring->bounds[k + 1])
			continue;
		held = false;
		intent = false;
		for (j = 0; j < nc; j++) {
			if (ring->cover[j].start > ring->bounds[k] ||
			    ring->cover[j].end <= ring->bounds[k])
				continue;
			if (ring->cover[j].state == SN_CLAIM_HELD)
				held = true;
			else
				intent = true;
		}
		if (held)
			continue;
		for (off = ring->bounds[k]; off < ring->bounds[k + 1]; off++) {
			if (!(off % 4096))
				cond_resched();
			p = d->rec.pos + off;
			if ((s32)(head - p) <= 0)
				continue;
			word = sn_release_word(ring, lane, p);
			if (READ_ONCE(*word) != p)
				continue;
			if (intent)
				done = false;
			else if (cmpxchg(word, p, p + slots) == p)
				lost++;
		}
	}
	return sn_recover_publish(ring, claim, lost, done);
}

/*
 * Every dying record of @ring, once (a complete record's index is freed by
 * sn_recover_publish()). Returns true if some remain.
 */
static bool sn_recover_pass(struct sn_ring *ring)
	__must_hold(&ring->recover_lock)
{
	DECLARE_BITMAP(dying, SN_MAX_CLAIMS);
	bool pending = false;
	int i;

	lockdep_assert_held(&ring->recover_lock);
	/*
	 * Only records read by their sn_recover_claim(): one whose fd was just
	 * released waits for its own call, which reads it first.
	 */
	spin_lock(&ring->lock);
	bitmap_from_u64(dying, ring->claims_dying & ring->claims_read);
	spin_unlock(&ring->lock);
	for_each_set_bit(i, dying, SN_MAX_CLAIMS)
		if (!sn_recover_one(ring, i))
			pending = true;
	return pending;
}

/* Queues a retry; the caller holds a reference. */
static void sn_recover_queue(struct sn_ring *ring)
	__must_hold(&ring->recover_lock)
{
	lockdep_assert_held(&ring->recover_lock);
	if (ring->recover_queued)
		return;
	ring->recover_queued = true;
	ring->recover_delay = msecs_to_jiffies(SN_RECOVER_FIRST_MS);
	kref_get(&ring->ref);
	atomic_inc(&sn_recover_pending);
	queue_delayed_work(sn_recover_wq, &ring->recover_work,
			   ring->recover_delay);
}

static void sn_recover_work(struct work_struct *work)
{
	struct sn_ring *ring = container_of(to_delayed_work(work),
					    struct sn_ring, recover_work);
	bool pending;

	mutex_lock(&ring->recover_lock);
	pending = sn_recover_pass(ring);
	if (pending) {
		/* Still queued: the reference stays with the work. */
		ring->recover_delay = min(ring->recover_delay * 2,
					  msecs_to_jiffies(SN_RECOVER_MAX_MS));
		queue_delayed_work(sn_recover_wq, &ring->recover_work,
				   ring->recover_delay);
	} else {
		ring->recover_queued = false;
	}
	mutex_unlock(&ring->recover_lock);
	if (pending)
		return;
	/* May free the ring, this work included: touch neither after. */
	sn_ring_put(ring);
	if (atomic_dec_and_test(&sn_recover_pending))
		wake_up(&sn_recover_idle);
}

/*
 * The consumer fd that owned record @claim of @ring was released (its
 * index is in claims_dying): read the record once and recover what it
 * holds, now or by a retry. The caller holds a ring reference.
 */
void sn_recover_claim(struct sn_ring *ring, u32 claim)
{
	struct sn_claim *rec = sn_claim_rec(ring, claim);
	struct sn_dying *d = &ring->dying[claim];

	mutex_lock(&ring->recover_lock);
	d->rec.state = READ_ONCE(rec->state);
	d->rec.lane = READ_ONCE(rec->lane);
	d->rec.pos = READ_ONCE(rec->pos);
	d->rec.n = clamp(READ_ONCE(rec->n), 1U, ring->geo.slots);
	d->released = false;
	spin_lock(&ring->lock);
	ring->claims_read |= BIT_ULL(claim);
	spin_unlock(&ring->lock);
	if (sn_recover_pass(ring))
		sn_recover_queue(ring);
	mutex_unlock(&ring->recover_lock);
}

void sn_recover_ring_init(struct sn_ring *ring)
{
	mutex_init(&ring->recover_lock);
	INIT_DELAYED_WORK(&ring->recover_work, sn_recover_work);
}

int sn_recover_init(void)
{
	sn_recover_wq = alloc_workqueue("sn_recover", WQ_UNBOUND, 0);
	return sn_recover_wq ? 0 : -ENOMEM;
}

/* No ring fd is left: every queued retry completes at its next run. */
void sn_recover_exit(void)
{
	wait_event(sn_recover_idle, !atomic_read(&sn_recover_pending));
	destroy_workqueue(sn_recover_wq);
}
