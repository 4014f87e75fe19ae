// SPDX-License-Identifier: GPL-2.0
/*
 * Per-CPU wakeup threads (sn/N): they watch the rings that sleepers armed
 * and wake a sleeper as soon as its condition holds, so a publisher needs
 * no system call. io_uring SQPOLL's protocol:
 *
 *   thread:    after poll_idle_us without progress, set SN_KFLAG_NEED_WAKEUP
 *              on its rings; full barrier [T1]; look at every ring once more
 *              (waking whoever can run); sleep only if nothing moved.
 *   publisher: store its index with release; full barrier [P1]; load the
 *              peer's waiting word and kflags; kick only if someone waits
 *              and NEED_WAKEUP is set.
 *
 * [T1] pairs with [P1]: either the thread sees the new index or the
 * publisher sees NEED_WAKEUP and kicks. A ring nobody watches has
 * NEED_WAKEUP set (from creation, and again before a thread stops watching
 * it), so no wakeup is lost in any state.
 *
 * A ring is armed by poll() (sn_thread_arm) on its home CPU's thread, or
 * any online one; it is disarmed by its thread once its wait queue is
 * empty. Each thread guards its list with its own lock; ring->arm_cpu
 * changes only under the lock of the list the ring is on. Rings are read
 * only through the kernel's own mapping, with the clamped readers of
 * sn_ring.c, and each ring costs a bounded amount of work per pass, so
 * nothing userspace writes can make a thread spin forever or oops.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/cpu.h>
#include <linux/cpumask.h>
#include <linux/ktime.h>
#include <linux/percpu.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/smpboot.h>
#include <linux/spinlock.h>

#include "sn.h"

struct sn_cpu {
	spinlock_t lock;		/* armed, idle, online, ring->arm_cpu */
	struct list_head armed;		/* rings this thread watches */
	bool idle;			/* asleep until armed or kicked */
	bool online;			/* thread running (not parked) */
	u64 last_progress_ns;
};

static DEFINE_PER_CPU(struct sn_cpu, sn_cpus);
static DEFINE_PER_CPU(struct task_struct *, sn_thread_task);

/* The per-CPU lists exist (sn_threads_init ran). */
static bool sn_threads_ready;

/* Rings looked at per pass, at most: the rest wait for the next pass. */
#define SN_PASS_BUDGET	64

static u64 sn_now_ns(void)
{
	return ktime_get_ns();
}

/* A digest of every index of the ring: it changes when anything moves. */
static u32 sn_ring_digest(const struct sn_ring *ring)
{
	u32 lane, d = 0;

	for (lane = 0; lane < ring->geo.lanes; lane++)
		d = d * 31 + sn_lane_tail(ring, lane) * 7 +
		    sn_lane_head(ring, lane);
	return d;
}

static void sn_set_need_wakeup(struct sn_ring *ring)
{
	WRITE_ONCE(ring->kpage->kflags,
		   READ_ONCE(ring->kpage->kflags) | SN_KFLAG_NEED_WAKEUP);
}

/* Stops watching every ring of @c, which publishers kick from now on. */
static void sn_disarm_all(struct sn_cpu *c)
{
	struct sn_ring *ring;

	while (!list_empty(&c->armed)) {
		ring = list_first_entry(&c->armed, struct sn_ring, arm_node);
		sn_set_need_wakeup(ring);
		list_del_init(&ring->arm_node);
		WRITE_ONCE(ring->arm_cpu, -1);
	}
}

/* Wakes whoever can run now that the ring moved. Returns true if it moved. */
static bool sn_ring_watch(struct sn_ring *ring)
{
	u32 d = sn_ring_digest(ring);

	if (d == ring->seen_digest)
		return false;
	ring->seen_digest = d;
	if (sn_ring_readable(ring)) {
		atomic64_inc(&ring->thread_wakes);
		wake_up_interruptible_poll(&ring->wq, EPOLLIN | EPOLLRDNORM);
	}
	if (sn_ring_has_room(ring)) {
		atomic64_inc(&ring->thread_wakes);
		wake_up_interruptible_poll(&ring->wq, EPOLLOUT | EPOLLWRNORM);
	}
	return true;
}

/*
 * One pass over (part of) this CPU's rings; the caller holds c->lock.
 * A ring without sleepers stays watched for an idle period more, so that a
 * consumer that wakes, drains and sleeps again finds it still watched and
 * its producer never sees NEED_WAKEUP in between.
 */
static bool sn_thread_pass(struct sn_cpu *c, bool clear_need, u64 now,
			   u64 idle_ns)
{
	struct sn_ring *ring, *tmp;
	bool progress = false;
	int budget = SN_PASS_BUDGET;

	list_for_each_entry_safe(ring, tmp, &c->armed, arm_node) {
		if (budget-- <= 0) {
			/* Start the next pass where this one stopped. */
			list_rotate_to_front(&ring->arm_node, &c->armed);
			break;
		}
		/*
		 * Unlocked check: a sleeper joins the queue before it arms
		 * (under this lock), so one that joined after this read
		 * re-arms the ring, and NEED_WAKEUP covers it meanwhile.
		 */
		if (waitqueue_active(&ring->wq)) {
			ring->sleeper_seen_ns = now;
		} else if (now - ring->sleeper_seen_ns > idle_ns) {
			/* Nobody sleeps: stop watching, producers kick again. */
			sn_set_need_wakeup(ring);
			list_del_init(&ring->arm_node);
			WRITE_ONCE(ring->arm_cpu, -1);
			continue;
		}
		if (clear_need &&
		    (READ_ONCE(ring->kpage->kflags) & SN_KFLAG_NEED_WAKEUP)) {
			WRITE_ONCE(ring->kpage->kflags,
				   READ_ONCE(ring->kpage->kflags) &
				   ~SN_KFLAG_NEED_WAKEUP);
			/* Watch from here on: read the ring after the clear. */
			smp_mb();
		}
		progress |= sn_ring_watch(ring);
	}
	return progress;
}

static int sn_thread_should_run(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);

	return !READ_ONCE(c->idle) && !list_empty(&c->armed);
}

static void sn_thread_fn(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);
	u64 idle_ns = (u64)READ_ONCE(sn_poll_idle_us) * NSEC_PER_USEC;
	struct sn_ring *ring;
	u64 now;

	spin_lock(&c->lock);
	now = sn_now_ns();
	if (READ_ONCE(sn_poll_mode) == SN_POLL_OFF) {
		/* Switched off while watching: hand every ring back to kicks. */
		sn_disarm_all(c);
	} else if (sn_thread_pass(c, true, now, idle_ns)) {
		c->last_progress_ns = now;
	} else if (READ_ONCE(sn_poll_mode) != SN_POLL_ALWAYS &&
		   now - c->last_progress_ns > idle_ns) {
		list_for_each_entry(ring, &c->armed, arm_node)
			sn_set_need_wakeup(ring);
		/* [T1] pairs with the publishers' [P1] (see the top). */
		smp_mb();
		if (sn_thread_pass(c, false, now, idle_ns))
			c->last_progress_ns = now;
		else
			WRITE_ONCE(c->idle, true);
	}
	spin_unlock(&c->lock);
	cond_resched();
}

/* Wakes @cpu's thread out of idle; the caller holds c->lock. */
static void sn_thread_unidle(struct sn_cpu *c)
{
	c->last_progress_ns = sn_now_ns();
	WRITE_ONCE(c->idle, false);
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

/* Called by poll() for a sleeper, after it joined the ring's wait queue. */
void sn_thread_arm(struct sn_ring *ring)
{
	struct sn_cpu *c;
	bool added = false;
	int cpu;

	if (READ_ONCE(sn_poll_mode) == SN_POLL_OFF)
		return;
	if (READ_ONCE(ring->arm_cpu) >= 0) {
		sn_thread_kick(ring);
		return;
	}
	/* One armer at a time; a loser's sleeper is covered meanwhile by
	 * NEED_WAKEUP, which stays set until a thread watches the ring.
	 */
	if (test_and_set_bit_lock(0, &ring->arming))
		return;
	cpu = READ_ONCE(ring->arm_cpu) < 0 ? sn_pick_cpu(ring) : -1;
	if (cpu >= 0) {
		c = per_cpu_ptr(&sn_cpus, cpu);
		spin_lock(&c->lock);
		if (c->online) {
			ring->sleeper_seen_ns = sn_now_ns();
			list_add_tail(&ring->arm_node, &c->armed);
			WRITE_ONCE(ring->arm_cpu, cpu);
			sn_thread_unidle(c);
			added = true;
		}
		spin_unlock(&c->lock);
	}
	clear_bit_unlock(0, &ring->arming);
	/* The thread may be asleep with an empty list: start it. */
	if (added)
		sn_thread_wake(cpu);
}

/* Brings the thread watching @ring out of idle (a kick, a new sleeper). */
void sn_thread_kick(struct sn_ring *ring)
{
	int cpu = READ_ONCE(ring->arm_cpu);
	struct sn_cpu *c;
	bool wake = false;

	if (cpu < 0)
		return;
	c = per_cpu_ptr(&sn_cpus, cpu);
	spin_lock(&c->lock);
	if (READ_ONCE(ring->arm_cpu) == cpu && c->idle) {
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
		cpu = READ_ONCE(ring->arm_cpu);
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
		/* Moved by a CPU going down meanwhile: follow it. */
		spin_unlock(&c->lock);
	}
}

static void sn_thread_setup(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);

	spin_lock(&c->lock);
	WRITE_ONCE(c->online, true);
	spin_unlock(&c->lock);
}

/*
 * @cpu goes offline: hand its rings to another CPU's thread. They get
 * NEED_WAKEUP first, so publishers kick until the new thread watches them;
 * no wakeup is lost. CPU hotplug is serialized: only one CPU parks at a
 * time, so taking a second CPU's lock here cannot deadlock.
 */
static void sn_thread_park(unsigned int cpu)
{
	struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu), *t = NULL;
	struct sn_ring *ring;
	unsigned int other;
	int target = -1;

	spin_lock(&c->lock);
	WRITE_ONCE(c->online, false);
	for_each_online_cpu(other) {
		if (other != cpu &&
		    READ_ONCE(per_cpu_ptr(&sn_cpus, other)->online)) {
			target = other;
			break;
		}
	}
	list_for_each_entry(ring, &c->armed, arm_node)
		sn_set_need_wakeup(ring);
	if (target >= 0 && !list_empty(&c->armed)) {
		t = per_cpu_ptr(&sn_cpus, target);
		spin_lock_nested(&t->lock, SINGLE_DEPTH_NESTING);
		list_for_each_entry(ring, &c->armed, arm_node)
			WRITE_ONCE(ring->arm_cpu, target);
		list_splice_tail_init(&c->armed, &t->armed);
		sn_thread_unidle(t);
		spin_unlock(&t->lock);
	} else {
		/* No other thread runs: nobody watches, publishers kick. */
		sn_disarm_all(c);
	}
	spin_unlock(&c->lock);
	if (t)
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
 * disarms anything armed concurrently, on its next pass).
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
		sn_disarm_all(c);
		spin_unlock(&c->lock);
	}
}

int sn_threads_init(void)
{
	unsigned int cpu;

	for_each_possible_cpu(cpu) {
		struct sn_cpu *c = per_cpu_ptr(&sn_cpus, cpu);

		spin_lock_init(&c->lock);
		INIT_LIST_HEAD(&c->armed);
	}
	WRITE_ONCE(sn_threads_ready, true);
	return smpboot_register_percpu_thread(&sn_threads);
}

void sn_threads_exit(void)
{
	smpboot_unregister_percpu_thread(&sn_threads);
}
