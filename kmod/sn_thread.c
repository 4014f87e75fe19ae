// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU wakeup threads (sn/N): they watch the rings that sleepers armed
 * and wake a sleeper as soon as its condition may hold, so a publisher
 * needs no system call while its ring is watched.
 *
 * What a thread watches. Per lane, in the ring's kernel memory (never in
 * the shared pages), the values it saw last: the tail (a consumer waits for
 * it to move), the head (an SPSC/MPSC producer waits for it) and, for MPMC,
 * the slots the producer needs (prod_need: varlen rings; else 1) and
 * whether their release words say room (an MPMC producer waits for that:
 * the word at the tail, and in a varlen ring the ones after it, which
 * consumers release in any order). Lanes are compared one by one, so no
 * lane can hide another's progress. A moved tail wakes EPOLLIN sleepers if
 * that lane holds a message; a moved head wakes EPOLLOUT sleepers if that
 * lane has room, and so does an MPMC lane that has room now where the
 * room, its tail or its need was different before. Wakes take the wait
 * queue's lock after wq_has_sleeper()'s barrier [K2], which pairs with [K1]
 * in sn_ring_poll() (kmod/sn_file.c): a sleeper either is on the queue when
 * the thread wakes it or sees what the thread saw.
 *
 * Rounds. A thread looks at its rings in passes of at most SN_PASS_LANES
 * lanes (a ring is never split), moving each looked-at ring from `todo` to
 * `done`; when `todo` is empty a round is complete and `done` becomes the
 * next round's `todo`. Between passes the thread drops its lock and may
 * reschedule, so no number of rings makes it hog its CPU.
 *
 * Going idle (adaptive mode), io_uring SQPOLL's protocol applied per ring:
 *
 *   thread:    after a round with no progress and poll_idle_us since the
 *              last, a closing round: per pass, set SN_KFLAG_NEED_WAKEUP
 *              on each ring; one barrier [T1] for them all; look at each.
 *              Sleep only after a whole closing round saw nothing move:
 *              then every ring on this thread, including any armed during
 *              the round (armed rings join `todo`), had its last look
 *              after its flag.
 *   publisher: store its index with release; [P1] ([C1] for a consumer
 *              that frees room); load the peer's waiting word and kflags;
 *              kick only if someone waits and NEED_WAKEUP is set.
 *
 * [T1] pairs with [P1] and [C1] (include/sn/channel.h; the table of
 * barriers is in include/uapi/linux/sn.h): either the thread sees the new
 * index or the publisher sees NEED_WAKEUP and kicks. [P1] and [C1] are full
 * barriers on SN_FENCE_FULL rings and compiler barriers on SN_FENCE_ASYM
 * ones, so [T1] is the ring's heavy barrier H (sn_barrier.c): the flag
 * plays the sleeper's announcement in the uapi header's argument. The
 * flag is cleared only by the ring's watching thread during a normal
 * round, which keeps looking at the ring afterwards. Whenever a ring stops
 * being watched (no sleepers for poll_idle_us, poll_mode=off, its CPU
 * parks with no other thread) the same three steps run first:
 * NEED_WAKEUP, the barrier [T2], a last look that wakes whoever can run.
 *
 * Arming. poll() of a sleeper arms the ring on its home CPU's thread (any
 * online one while home is offline); a kick or poll of a ring that lost its
 * watcher while sleepers wait arms it again (epoll and io_uring register
 * once). A ring armed away from home returns when home's thread unparks.
 * ring->arm_cpu changes only under the lock of the list the ring joins or
 * leaves; it is written with release after the list change and read with
 * acquire where read unlocked, so a CPU that sees -1 also sees the ring
 * off every list ([A1] pairs with [A2]). Moves between two threads' lists
 * (park, return home) hold sn_move_lock, so only one path ever takes two
 * CPU locks.
 *
 * Bounds, since any user may arm rings (/dev/sn is 0666): a ring costs at
 * most SN_MAX_LANES lanes' reads per look (an MPMC lane's room, up to
 * SN_NEED_SCAN + 1 release words, only while it is in question); one user
 * may have at most max_armed_per_user rings on one thread (more are not
 * watched: their publishers kick); a thread is a normal SCHED_OTHER task
 * that reschedules between passes; and home_cpu is limited to the
 * creator's allowed CPUs.
 * Rings are read only through the kernel's own mapping with the clamped
 * readers of sn_ring.c: nothing userspace writes can oops a thread or make
 * one pass unbounded.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/ktime.h>
#include <linux/lockdep.h>
#include <linux/mutex.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/smpboot.h>
#include <linux/spinlock.h>

#include "sn.h"

struct sn_cpu {
	spinlock_t lock;		/* the lists, flags, ring->arm_cpu */
	struct list_head todo;		/* rings not yet looked at this round */
	struct list_head done;		/* rings looked at this round */
	bool idle;			/* asleep until armed or kicked */
	bool online;			/* thread running (not parked) */
	bool closing;			/* this round sets NEED_WAKEUP */
	bool moved;			/* progress seen this round */
	u64 last_progress_ns;
};

static DEFINE_PER_CPU(struct sn_cpu, sn_cpus);
static DEFINE_PER_CPU(struct task_struct *, sn_thread_task);

/* The per-CPU lists exist (sn_threads_init ran). */
static bool sn_threads_ready;

/* Serialises moves of rings between two threads' lists. */
static DEFINE_MUTEX(sn_move_lock);

/* Lanes looked at per pass, at most (a ring is never split). */
#define SN_PASS_LANES	512

/* A refused arm is retried by kicks at most this often. */
#define SN_REARM_NS	(10 * NSEC_PER_MSEC)

static u64 sn_now_ns(void)
{
	return ktime_get_ns();
}

/*
 * kflags has other writers (fd release: NO_PRODUCER, NO_CONSUMER), so the
 * flag changes atomically. Only the watching thread clears NEED_WAKEUP:
 * a plain read first keeps the line clean while the flag is already clear.
 */
static void sn_set_need_wakeup(struct sn_ring *ring)
{
	sn_kflags_set(ring, SN_KFLAG_NEED_WAKEUP);
}

static void sn_clear_need_wakeup(struct sn_ring *ring)
{
	if (READ_ONCE(ring->kpage->kflags) & SN_KFLAG_NEED_WAKEUP)
		sn_kflags_clear(ring, SN_KFLAG_NEED_WAKEUP);
}

/*
 * Wakes @ring's sleepers: EPOLLIN sleepers with that key (readable is true
 * for every fd that reads), EPOLLOUT sleepers without a key, so that each
 * re-polls: room is per lane, and io_uring takes a wake's key as the poll
 * result, so a keyed EPOLLOUT would complete another lane's producer poll.
 */
static void sn_ring_wake(struct sn_ring *ring, __poll_t events)
{
	/* [K2] pairs with [K1]: wq_has_sleeper()'s full barrier. */
	if (!wq_has_sleeper(&ring->wq))
		return;
	atomic64_inc(&ring->thread_wakes);
	if (events & EPOLLOUT)
		wake_up_interruptible(&ring->wq);
	else
		wake_up_interruptible_poll(&ring->wq, events);
}

/*
 * Looks at every lane of @ring against what @c's thread saw last (its
 * ring->seen[]) and wakes the side whose condition may now hold. Returns
 * true if anything moved.
 */
static bool sn_ring_watch(struct sn_cpu *c, struct sn_ring *ring)
	__must_hold(&c->lock)
{
	bool mpmc = ring->geo.type == SN_RING_MPMC, in = false, out = false;
	u32 lane, slots = ring->geo.slots;
	struct sn_lane_seen now, *seen;
	bool moved = false;
	s32 depth;

	lockdep_assert_held(&c->lock);
	for (lane = 0; lane < ring->geo.lanes; lane++) {
		seen = &ring->seen[lane];
		now.tail = sn_lane_tail(ring, lane);
		now.head = sn_lane_head(ring, lane);
		now.need = mpmc ? sn_lane_need(ring, lane) : 0;
		/*
		 * The release words from the tail only go from held to
		 * released while the tail stays: room seen for the same tail
		 * and need holds, and is not read again. A varlen producer
		 * waits for more than the word at the tail, so watching that
		 * one alone would miss a release after it that completes its
		 * room (and consumers do not kick a watched ring).
		 */
		if (!mpmc)
			now.room = 0;
		else if (seen->room && now.tail == seen->tail &&
			 now.need == seen->need)
			now.room = 1;
		else
			now.room = sn_lane_has_room_for(ring, lane, now.need);
		if (!memcmp(&now, seen, sizeof(now)))
			continue;
		moved = true;
		depth = clamp_t(s32, (s32)(now.tail - now.head), 0, slots);
		if (now.tail != seen->tail && depth > 0)
			in = true;
		if (mpmc)
			out |= now.room && (now.tail != seen->tail ||
					    now.need != seen->need ||
					    !seen->room);
		else
			out |= now.head != seen->head && depth < slots;
		*seen = now;
	}
	if (in)
		sn_ring_wake(ring, EPOLLIN | EPOLLRDNORM);
	if (out)
		sn_ring_wake(ring, EPOLLOUT | EPOLLWRNORM);
	return moved;
}

/*
 * Flags every ring of @rings with NEED_WAKEUP and runs one barrier for all
 * of them: [T1] for a closing pass, [T2] for rings that stop being watched
 * (see the top). Every look at those rings after it is a closing look.
 */
static void sn_flag_rings(struct list_head *rings)
{
	struct sn_ring *ring;
	bool asym = false;

	list_for_each_entry(ring, rings, arm_node) {
		sn_set_need_wakeup(ring);
		asym |= ring->fence == SN_FENCE_ASYM;
	}
	/* [T1]/[T2] pairs with [P1] and [C1]: H if one is ASYM. */
	if (!list_empty(rings))
		sn_heavy_barrier(asym);
}

/*
 * The rings of @rings, taken off @c's lists, stop being watched:
 * NEED_WAKEUP, one barrier [T2] and a last look that wakes whoever can
 * run, then off the list.
 */
static void sn_unwatch_rings(struct sn_cpu *c, struct list_head *rings)
	__must_hold(&c->lock)
{
	struct sn_ring *ring, *tmp;

	lockdep_assert_held(&c->lock);
	/* [T2] pairs with [P1] and [C1]. */
	sn_flag_rings(rings);
	list_for_each_entry_safe(ring, tmp, rings, arm_node) {
		sn_ring_watch(c, ring);
		list_del_init(&ring->arm_node);
		/* [A1] pairs with [A2]: off the list before -1 is seen. */
		smp_store_release(&ring->arm_cpu, -1);
	}
}

/* Stops watching every ring of @c, which publishers kick from now on. */
static void sn_unwatch_all(struct sn_cpu *c)
	__must_hold(&c->lock)
{
	LIST_HEAD(rings);

	lockdep_assert_held(&c->lock);
	list_splice_init(&c->todo, &rings);
	list_splice_tail_init(&c->done, &rings);
	sn_unwatch_rings(c, &rings);
}

/* Brings @c's thread out of idle. */
static void sn_thread_unidle(struct sn_cpu *c)
	__must_hold(&c->lock)
{
	lockdep_assert_held(&c->lock);
	c->last_progress_ns = sn_now_ns();
	c->closing = false;
	WRITE_ONCE(c->idle, false);
}

static bool sn_cpu_has_rings(const struct sn_cpu *c)
{
	return !list_empty(&c->todo) || !list_empty(&c->done);
}

/*
 * One pass: up to SN_PASS_LANES lanes of rings from @c's todo list. A ring
 * without sleepers stays watched for an idle period more, so that a
 * consumer that wakes, drains and sleeps again finds it still watched and
 * its producer never sees NEED_WAKEUP in between.
 * The flags a pass sets (closing round, rings leaving) share one barrier.
 */
static void sn_thread_pass(struct sn_cpu *c, u64 now, u64 idle_ns)
	__must_hold(&c->lock)
{
	int budget = SN_PASS_LANES;
	struct sn_ring *ring;
	LIST_HEAD(pass);
	LIST_HEAD(leaving);

	lockdep_assert_held(&c->lock);
	while (budget > 0 && !list_empty(&c->todo)) {
		ring = list_first_entry(&c->todo, struct sn_ring, arm_node);
		budget -= ring->geo.lanes;
		/*
		 * Unlocked check: a sleeper joins the queue before it arms,
		 * so one that joined after this read finds the ring armed or
		 * re-arms it; the last look of sn_unwatch_rings() covers the
		 * rest.
		 */
		if (waitqueue_active(&ring->wq)) {
			ring->sleeper_seen_ns = now;
		} else if (now - ring->sleeper_seen_ns > idle_ns) {
			list_move_tail(&ring->arm_node, &leaving);
			continue;
		}
		list_move_tail(&ring->arm_node, &pass);
		if (!c->closing)
			sn_clear_need_wakeup(ring);
	}
	/* [T1] pairs with [P1] and [C1]: a closing round (see the top). */
	if (c->closing)
		sn_flag_rings(&pass);
	sn_unwatch_rings(c, &leaving);
	list_for_each_entry(ring, &pass, arm_node)
		if (sn_ring_watch(c, ring))
			c->moved = true;
	list_splice_tail(&pass, &c->done);
}

/* A round is over: decide whether the next one closes, or sleep. */
static void sn_thread_round_end(struct sn_cpu *c, u64 now, u64 idle_ns)
	__must_hold(&c->lock)
{
	lockdep_assert_held(&c->lock);
	list_splice_tail_init(&c->done, &c->todo);
	if (c->moved) {
		c->last_progress_ns = now;
		c->closing = false;
	} else if (c->closing) {
		/* Every ring had NEED_WAKEUP, [T1] and a look: nothing moved. */
		c->closing = false;
		WRITE_ONCE(c->idle, true);
	} else if (READ_ONCE(sn_poll_mode) != SN_POLL_ALWAYS &&
		   now - c->last_progress_ns > idle_ns) {
		c->closing = true;
	}
	c->moved = false;
}

static int sn_thread_should_run(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);

	return !READ_ONCE(c->idle) && sn_cpu_has_rings(c);
}

static void sn_thread_fn(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);
	u64 idle_ns = (u64)READ_ONCE(sn_poll_idle_us) * NSEC_PER_USEC;
	u64 now;

	spin_lock(&c->lock);
	now = sn_now_ns();
	if (READ_ONCE(sn_poll_mode) == SN_POLL_OFF) {
		/* Switched off while watching: hand every ring back to kicks. */
		sn_unwatch_all(c);
	} else {
		sn_thread_pass(c, now, idle_ns);
		if (list_empty(&c->todo))
			sn_thread_round_end(c, now, idle_ns);
	}
	spin_unlock(&c->lock);
	cond_resched();
}

static void sn_thread_wake(unsigned int cpu)
{
	struct task_struct *t = per_cpu(sn_thread_task, cpu);

	if (t)
		wake_up_process(t);
}

/* The CPU to watch @ring: its home if that thread runs, else any that does. */
static int sn_pick_cpu(const struct sn_ring *ring)
{
	unsigned int cpu;

	if (ring->home_cpu < nr_cpu_ids &&
	    READ_ONCE(per_cpu_ptr(&sn_cpus, ring->home_cpu)->online))
		return ring->home_cpu;
	for_each_online_cpu(cpu)
		if (READ_ONCE(per_cpu_ptr(&sn_cpus, cpu)->online))
			return cpu;
	return -1;
}

/* Rings of @uid on @c's lists. */
static unsigned int sn_cpu_user_rings(const struct sn_cpu *c, kuid_t uid)
	__must_hold(&c->lock)
{
	const struct sn_ring *ring;
	unsigned int n = 0;

	lockdep_assert_held(&c->lock);
	list_for_each_entry(ring, &c->todo, arm_node)
		n += uid_eq(ring->uid, uid);
	list_for_each_entry(ring, &c->done, arm_node)
		n += uid_eq(ring->uid, uid);
	return n;
}

/* Puts unwatched @ring on @cpu's thread. Returns true if it did. */
static bool sn_thread_add(struct sn_ring *ring, int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);
	bool added = false;

	spin_lock(&c->lock);
	if (!c->online)
		goto out;
	if (sn_cpu_user_rings(c, ring->uid) >=
	    READ_ONCE(sn_max_armed_per_user)) {
		/* Not watched: NEED_WAKEUP stays set, publishers kick. */
		WRITE_ONCE(ring->arm_refused_ns, sn_now_ns());
		goto out;
	}
	ring->sleeper_seen_ns = sn_now_ns();
	list_add_tail(&ring->arm_node, &c->todo);
	/* [A1] pairs with [A2]: on the list before its CPU is seen. */
	smp_store_release(&ring->arm_cpu, cpu);
	sn_thread_unidle(c);
	added = true;
out:
	spin_unlock(&c->lock);
	return added;
}

/* Called by poll() for a sleeper, after it joined the ring's wait queue. */
void sn_thread_arm(struct sn_ring *ring)
{
	int cpu;

	if (READ_ONCE(sn_poll_mode) == SN_POLL_OFF)
		return;
	/* [A2] pairs with [A1]. */
	if (smp_load_acquire(&ring->arm_cpu) >= 0) {
		sn_thread_kick(ring);
		return;
	}
	/* One armer at a time; a loser's sleeper is covered meanwhile by
	 * NEED_WAKEUP, which stays set until a thread watches the ring.
	 */
	if (test_and_set_bit_lock(0, &ring->arming))
		return;
	/* [A2] pairs with [A1]: a ring seen unlisted is off every list. */
	cpu = smp_load_acquire(&ring->arm_cpu) < 0 ? sn_pick_cpu(ring) : -1;
	if (cpu >= 0 && !sn_thread_add(ring, cpu))
		cpu = -1;
	clear_bit_unlock(0, &ring->arming);
	/* The thread may be asleep with an empty list: start it. */
	if (cpu >= 0)
		sn_thread_wake(cpu);
}

/*
 * A ring whose sleepers wait unwatched (it lost its watcher, or was never
 * armed by this path): arm it again. Sleepers registered once by epoll or
 * io_uring never call poll() to arm it themselves.
 */
void sn_thread_rearm(struct sn_ring *ring)
{
	u64 refused;

	/* [A2] pairs with [A1]. */
	if (smp_load_acquire(&ring->arm_cpu) >= 0)
		return;
	/* Unlocked: a sleeper joining later arms the ring by its poll(). */
	if (!waitqueue_active(&ring->wq))
		return;
	refused = READ_ONCE(ring->arm_refused_ns);
	if (refused && sn_now_ns() - refused < SN_REARM_NS)
		return;
	sn_thread_arm(ring);
}

/* Brings the thread watching @ring out of idle (a kick, a new sleeper). */
void sn_thread_kick(struct sn_ring *ring)
{
	/* [A2] pairs with [A1]; the CPU is checked again under its lock. */
	int cpu = smp_load_acquire(&ring->arm_cpu);
	struct sn_cpu *c;
	bool wake = false;

	if (cpu < 0) {
		sn_thread_rearm(ring);
		return;
	}
	c = per_cpu_ptr(&sn_cpus, cpu);
	spin_lock(&c->lock);
	if (ring->arm_cpu == cpu && c->idle) {
		sn_thread_unidle(c);
		wake = true;
	}
	spin_unlock(&c->lock);
	if (wake)
		sn_thread_wake(cpu);
}

/* Before @ring is freed: no thread may still hold it. */
void sn_thread_disarm(struct sn_ring *ring)
{
	struct sn_cpu *c;
	int cpu;

	for (;;) {
		/* [A2] pairs with [A1]: -1 means off every list. */
		cpu = smp_load_acquire(&ring->arm_cpu);
		if (cpu < 0)
			return;
		c = per_cpu_ptr(&sn_cpus, cpu);
		spin_lock(&c->lock);
		if (ring->arm_cpu == cpu) {
			list_del_init(&ring->arm_node);
			WRITE_ONCE(ring->arm_cpu, -1);
			spin_unlock(&c->lock);
			return;
		}
		/* Moved by a CPU going down or up meanwhile: follow it. */
		spin_unlock(&c->lock);
	}
}

/*
 * Moves the rings of @from's lists homed at @home (any if -1) to @to's
 * todo list. Whichever thread owns a ring keeps looking at it, so a ring
 * with NEED_WAKEUP clear is watched throughout; the new thread is brought
 * out of idle.
 */
static unsigned int sn_move_rings(struct sn_cpu *from, struct sn_cpu *to,
				  int to_cpu, int home)
	__must_hold(&sn_move_lock) __must_hold(&from->lock)
	__must_hold(&to->lock)
{
	struct list_head *lists[] = { &from->todo, &from->done };
	struct sn_ring *ring, *tmp;
	unsigned int i, n = 0;

	lockdep_assert_held(&sn_move_lock);
	lockdep_assert_held(&from->lock);
	lockdep_assert_held(&to->lock);
	for (i = 0; i < ARRAY_SIZE(lists); i++) {
		list_for_each_entry_safe(ring, tmp, lists[i], arm_node) {
			if (home >= 0 && ring->home_cpu != home)
				continue;
			list_move_tail(&ring->arm_node, &to->todo);
			WRITE_ONCE(ring->arm_cpu, to_cpu);
			n++;
		}
	}
	if (n)
		sn_thread_unidle(to);
	return n;
}

/*
 * @cpu's thread runs (module load, or the CPU came back): rings homed here
 * and armed elsewhere meanwhile come home.
 */
static void sn_thread_setup(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu), *o;
	unsigned int other;

	mutex_lock(&sn_move_lock);
	spin_lock(&c->lock);
	WRITE_ONCE(c->online, true);
	spin_unlock(&c->lock);
	for_each_possible_cpu(other) {
		if (other == cpu)
			continue;
		o = per_cpu_ptr(&sn_cpus, other);
		spin_lock(&o->lock);
		spin_lock_nested(&c->lock, SINGLE_DEPTH_NESTING);
		sn_move_rings(o, c, cpu, cpu);
		spin_unlock(&c->lock);
		spin_unlock(&o->lock);
	}
	mutex_unlock(&sn_move_lock);
}

/*
 * @cpu goes offline: hand its rings to another CPU's thread, which keeps
 * watching them; with no other thread, stop watching them (last look
 * included).
 */
static void sn_thread_park(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu), *t;
	unsigned int other;
	int target = -1;

	mutex_lock(&sn_move_lock);
	spin_lock(&c->lock);
	WRITE_ONCE(c->online, false);
	for_each_online_cpu(other) {
		if (other != cpu &&
		    READ_ONCE(per_cpu_ptr(&sn_cpus, other)->online)) {
			target = other;
			break;
		}
	}
	if (target >= 0) {
		t = per_cpu_ptr(&sn_cpus, target);
		spin_lock_nested(&t->lock, SINGLE_DEPTH_NESTING);
		if (!sn_move_rings(c, t, target, -1))
			target = -1;
		spin_unlock(&t->lock);
	} else {
		sn_unwatch_all(c);
	}
	spin_unlock(&c->lock);
	mutex_unlock(&sn_move_lock);
	if (target >= 0)
		sn_thread_wake(target);
}

static struct smp_hotplug_thread sn_threads = {
	.store			= &sn_thread_task,
	.thread_should_run	= sn_thread_should_run,
	.thread_fn		= sn_thread_fn,
	.thread_comm		= "sn/%u",
	.setup			= sn_thread_setup,
	.park			= sn_thread_park,
	.unpark			= sn_thread_setup,
};

/*
 * poll_mode was set to off: stop watching every ring now, from the writer's
 * context, rather than waiting for each thread to notice (a thread also
 * unwatches anything armed concurrently, on its next pass).
 */
void sn_threads_mode_off(void)
{
	unsigned int cpu;

	/* Also called for poll_mode=off given at load, before init. */
	if (!READ_ONCE(sn_threads_ready))
		return;
	for_each_possible_cpu(cpu) {
		struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);

		spin_lock(&c->lock);
		sn_unwatch_all(c);
		spin_unlock(&c->lock);
	}
}

int sn_threads_init(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);

		spin_lock_init(&c->lock);
		INIT_LIST_HEAD(&c->todo);
		INIT_LIST_HEAD(&c->done);
	}
	WRITE_ONCE(sn_threads_ready, true);
	return smpboot_register_percpu_thread(&sn_threads);
}

void sn_threads_exit(void)
{
	smpboot_unregister_percpu_thread(&sn_threads);
}
