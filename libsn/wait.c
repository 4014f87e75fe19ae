/* SPDX-License-Identifier: MIT */
/*
 * Blocking and waking: spin, then yield, then sleep. Kernel backend: poll()
 * on the ring fd, woken by SN_IOC_KICK. Memfd backend: futex(2) on the same
 * shared words (shared futexes: the memfd is MAP_SHARED across processes);
 * the kicker bumps the word's wake sequence before FUTEX_WAKE, so a wake
 * that lands between the sleeper's announcement and its FUTEX_WAIT makes
 * FUTEX_WAIT return at once instead of being lost.
 *
 * The announcement protocol (include/uapi/linux/sn.h):
 *   consumer: add 1 to cons waiters; [W1]; re-check; sleep; subtract 1
 *   producer: set its lane's waiting word; [W2]; re-check; sleep; clear it
 * [W1] pairs with [P1] in sn__prod_ship() (include/sn/channel.h), [W2]
 * with [C1] in sn__cons_done(): each side stores its own word, then a
 * barrier, then loads the other's, so one of them sees the other. On FULL
 * rings both barriers are full barriers; on ASYM rings [P1]/[C1] are
 * compiler barriers and the sleeper's is the heavy barrier H (sn.ko's
 * poll() runs it; memfd: membarrier(2), sn_sleeper_barrier()).
 */
#include <errno.h>
#include <limits.h>
#include <linux/futex.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdlib.h>
#include <sys/ioctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

/*
 * Spins and yields before a sleep: SN_SPINS and SN_YIELDS in the
 * environment when libsn first waits (0 sleeps at once; tests use it to
 * make every wait a sleep), else these defaults.
 */
#define SN_SPINS_DEFAULT	1024
#define SN_YIELDS_DEFAULT	16

static int sn_wait_tunable(const char *name, int def)
{
	const char *v = getenv(name);
	char *end;
	long n;

	if (!v || !*v)
		return def;
	n = strtol(v, &end, 10);
	return *end || n < 0 || n > 1 << 24 ? def : (int)n;
}

/* The spins and yields before a sleep, read from the environment once. */
static void sn_wait_budget(int *spins, int *yields)
{
	static int budget[2] = { -1, -1 };
	int s = __atomic_load_n(&budget[0], __ATOMIC_RELAXED);
	int y = __atomic_load_n(&budget[1], __ATOMIC_RELAXED);

	if (s < 0 || y < 0) {
		s = sn_wait_tunable("SN_SPINS", SN_SPINS_DEFAULT);
		y = sn_wait_tunable("SN_YIELDS", SN_YIELDS_DEFAULT);
		__atomic_store_n(&budget[0], s, __ATOMIC_RELAXED);
		__atomic_store_n(&budget[1], y, __ATOMIC_RELAXED);
	}
	*spins = s;
	*yields = y;
}

/*
 * Time left until @deadline as a timespec, 0 if none; at most @slice_ns
 * (a memfd sleeper wakes to look for dead peers) and a day.
 */
static int sn_left(__u64 deadline, __u64 slice_ns, struct timespec *ts)
{
	__u64 now = sn_now_ns(), left;

	if (now >= deadline)
		return 0;
	left = deadline - now;
	if (left > slice_ns)
		left = slice_ns;
	if (left > 86400ULL * 1000000000ULL)
		left = 86400ULL * 1000000000ULL;
	ts->tv_sec = (time_t)(left / 1000000000ULL);
	ts->tv_nsec = (long)(left % 1000000000ULL);
	return 1;
}

/* Sleeps while *@word == @val, at most @ts. 0 or -EINTR. */
static int sn_futex_wait(__u32 *word, __u32 val, const struct timespec *ts)
{
	if (syscall(SYS_futex, word, FUTEX_WAIT, val, ts, NULL, 0) &&
	    errno == EINTR)
		return -EINTR;
	return 0;
}

/* Sleeps on the ring fd until @events, at most @ts. 0 or -errno. */
static int sn_poll(int fd, short events, const struct timespec *ts)
{
	struct pollfd pfd = { .fd = fd, .events = events };
	int r = ppoll(&pfd, 1, ts, NULL);

	if (r < 0)
		return -errno;
	if (r > 0 && (pfd.revents & POLLNVAL))
		return -EBADF;
	return 0;
}

/*
 * Any lane with a message, without claiming it: SPSC/MPSC by the slot at
 * the head (what sn__cons_take() reads), MPMC by the tail.
 */
static int sn_consumer_ready(struct sn_consumer *c)
{
	__u32 lane, slots = c->mask + 1, h;

	for (lane = 0; lane < c->lanes; lane++) {
		const __u32 *tail_p = (const __u32 *)(sn__cons_lane(c, lane) +
						      c->off_tail);

		if (!(c->flags & SN__MPMC)) {
			if (sn__cons_committed(c, lane, c->head[lane], 1))
				return 1;
			continue;
		}
		h = __atomic_load_n(sn__cons_head_p(c, lane), __ATOMIC_RELAXED);
		if (sn__clamp_depth(__atomic_load_n(tail_p, __ATOMIC_ACQUIRE),
				    h, slots))
			return 1;
	}
	return 0;
}

/*
 * The heavy barrier a sleeper owes an ASYM ring's fast sides, between its
 * announcement and its re-check ([W1], [W2]; the uapi header's "Sleeping
 * and waking"). Kernel rings: sn.ko runs it in poll(), after which the
 * re-check that counts is poll's own; here a full barrier orders our
 * shortcut re-check. Memfd: membarrier(2); its failure (a seccomp filter
 * installed after attach) leaves no safe sleep: -EOPNOTSUPP.
 */
static int sn_sleeper_barrier(const struct sn_channel *ch, __u32 flags)
{
	if (!(flags & SN__MEMFD)) {
		SN__FULL_BARRIER();
		return 0;
	}
	return sn_heavy_barrier(ch);
}

int sn_heavy_barrier(const struct sn_channel *ch)
{
	SN__FULL_BARRIER();
	if (!ch || ch->fence != SN_FENCE_ASYM)
		return 0;
	if (ch->backend == SN_BACKEND_KERNEL)
		return ioctl(ch->fd, SN_IOC_BARRIER, 0) ? -errno : 0;
	return sn_fence_memfd_heavy() ? -EOPNOTSUPP : 0;
}

/*
 * A message is ready (1), the stream has ended and the lanes are drained
 * (-EPIPE), or neither (0).
 */
static int sn_consumer_poll_state(struct sn_consumer *c)
{
	if (sn_consumer_ready(c))
		return 1;
	/* [E2] pairs with [E1]: the flag, set after the last producer
	 * went, before the re-check, which sees its commits */
	if (!(__atomic_load_n(c->kflags_p, __ATOMIC_ACQUIRE) &
	      SN_KFLAG_NO_PRODUCER))
		return 0;
	return sn_consumer_ready(c) ? 1 : -EPIPE;
}

SN_API int sn__consumer_ended(struct sn_consumer *c)
{
	return sn_consumer_poll_state(c) < 0 ? -EPIPE : -EAGAIN;
}

/*
 * Memfd: sleeps on @word, announced with value @v, until a kick, @deadline,
 * or @woken(@arg) says the wait is over; looks for dead peers every
 * SN_MEMFD_LIVENESS_NS (no kernel wakes a sleeper when a peer dies). The
 * announcement stays for the whole sleep: a kick between two slices
 * changes the word, so the next FUTEX_WAIT returns at once. 0 or -EINTR.
 */
static int sn_memfd_sleep(const struct sn_channel *ch, __u32 *word, __u32 v,
			  __u64 deadline, int (*woken)(void *), void *arg)
{
	struct timespec ts;
	int ret;

	while (sn_left(deadline, SN_MEMFD_LIVENESS_NS, &ts)) {
		ret = sn_futex_wait(word, v, &ts);
		if (ret || woken(arg))
			return ret;
		sn_memfd_check_peers(ch);
		/* the word before the re-check: a kick after it changes it */
		v = __atomic_load_n(word, __ATOMIC_SEQ_CST);
		if (woken(arg))
			return 0;
	}
	return 0;
}

static int sn_consumer_woken(void *c)
{
	return sn_consumer_poll_state(c) != 0;
}

/* Room for what the producer waits for: p->need slots (1 but for a
 * record that did not fit). */
static __u32 sn_producer_room(struct sn_producer *p)
{
	__u32 room = sn__prod_refill(p);

	return room >= p->need ? room : 0;
}

static int sn_producer_woken(void *arg)
{
	struct sn_producer *p = arg;

	return sn__prod_orphaned(p) || sn_producer_room(p);
}

static void sn_producer_count_sleep(struct sn_producer *p)
{
	p->sleeps++;
	__atomic_store_n(&p->stats->sleeps, p->sleeps, __ATOMIC_RELAXED);
}

static void sn_consumer_count_sleep(struct sn_consumer *c, int woken)
{
	c->sleeps++;
	c->wakeups += !!woken;
	if (c->flags & SN__MPMC) {
		sn__consumer_publish(c);
		return;
	}
	__atomic_store_n(&c->stats->sleeps, c->sleeps, __ATOMIC_RELAXED);
	__atomic_store_n(&c->stats->wakeups, c->wakeups, __ATOMIC_RELAXED);
}

static int sn_producer_wait_until(struct sn_producer *p, __u64 deadline)
{
	__u64 nap = 1000;
	struct timespec ts;
	__u32 room, v = 1;
	int i, ret, spins, yields;

	sn_wait_budget(&spins, &yields);
	for (i = 0; i < spins; i++) {
		if (sn__prod_orphaned(p))
			return -EPIPE;
		room = sn_producer_room(p);
		if (room)
			return (int)(room > INT_MAX ? INT_MAX : room);
		sn_cpu_relax();
	}
	for (i = 0; i < yields; i++) {
		sched_yield();
		room = sn_producer_room(p);
		if (room)
			return (int)(room > INT_MAX ? INT_MAX : room);
		if (sn_now_ns() >= deadline)
			return -ETIMEDOUT;
	}
	for (;;) {
		if (p->flags & SN__MEMFD)
			sn_memfd_check_peers(p->chan);
		if (sn__prod_orphaned(p))
			return -EPIPE;
		if (!sn_left(deadline, ~0ULL, &ts))
			return -ETIMEDOUT;
		/* what poll()'s EPOLLOUT waits for (uapi "Records") */
		__atomic_store_n(p->need_p, p->need, __ATOMIC_RELAXED);
		if (p->flags & SN__MEMFD)
			v = __atomic_or_fetch(p->waiting_p, 1, __ATOMIC_SEQ_CST);
		else
			__atomic_store_n(p->waiting_p, 1, __ATOMIC_SEQ_CST);
		/* [W2] pairs with [C1] in sn__cons_done() */
		ret = sn_sleeper_barrier(p->chan, p->flags);
		room = sn_producer_room(p);
		if (!room && !ret) {
			sn_producer_count_sleep(p);
			if (p->flags & SN__MEMFD)
				ret = sn_memfd_sleep(p->chan, p->waiting_p, v,
						     deadline, sn_producer_woken,
						     p);
			else
				ret = sn_poll(p->fd, POLLOUT, &ts);
		}
		if (p->flags & SN__MEMFD)
			__atomic_and_fetch(p->waiting_p, ~SN_MEMFD_COUNT_MASK,
					   __ATOMIC_RELEASE);
		else
			__atomic_store_n(p->waiting_p, 0, __ATOMIC_RELEASE);
		room = sn_producer_room(p);
		if (room)
			return (int)(room > INT_MAX ? INT_MAX : room);
		if (ret)
			return ret;
		/* sn.ko checks at most SN_NEED_SCAN + 1 of an MPMC record's
		 * release words: a poll that said room where a slow consumer
		 * still holds one would spin; back off, 1 us to 1 ms */
		if (!(p->flags & SN__MEMFD) && p->need > SN_NEED_SCAN)
			sn_nap(&nap);
	}
}

/*
 * A consumer about to sleep says so: cons waiters + 1 (returned, the memfd
 * futex's value), then its claim record's asleep, after the count, so that
 * recovery never takes back a count we did not add (uapi "Dead peers").
 */
static __u32 sn_consumer_announce(struct sn_consumer *c)
{
	__u32 v = __atomic_add_fetch(c->waiters_p, 1, __ATOMIC_SEQ_CST);

	if (c->claim)
		__atomic_store_n(&c->claim->asleep, 1, __ATOMIC_RELAXED);
	return v;
}

/* Takes the announcement back. */
static void sn_consumer_unannounce(struct sn_consumer *c)
{
	if (c->claim)
		__atomic_store_n(&c->claim->asleep, 0, __ATOMIC_RELEASE);
	__atomic_sub_fetch(c->waiters_p, 1, __ATOMIC_RELEASE);
}

static int sn_consumer_wait_until(struct sn_consumer *c, __u64 deadline)
{
	struct timespec ts;
	__u32 v;
	int i, ret, ready, spins, yields;

	sn_wait_budget(&spins, &yields);
	for (i = 0; i < spins; i++) {
		ready = sn_consumer_poll_state(c);
		if (ready)
			return ready;
		sn_cpu_relax();
	}
	for (i = 0; i < yields; i++) {
		sched_yield();
		ready = sn_consumer_poll_state(c);
		if (ready)
			return ready;
		if (sn_now_ns() >= deadline)
			return -ETIMEDOUT;
	}
	for (;;) {
		if (c->flags & SN__MEMFD)
			sn_memfd_check_peers(c->chan);
		if (!sn_left(deadline, ~0ULL, &ts))
			return -ETIMEDOUT;
		v = sn_consumer_announce(c);
		/* [W1] pairs with [P1] in sn__prod_ship() */
		ret = sn_sleeper_barrier(c->chan, c->flags);
		ready = sn_consumer_poll_state(c);
		if (!ready && !ret) {
			if (c->flags & SN__MEMFD)
				ret = sn_memfd_sleep(c->chan, c->waiters_p, v,
						     deadline, sn_consumer_woken,
						     c);
			else
				ret = sn_poll(c->fd, POLLIN, &ts);
		}
		sn_consumer_unannounce(c);
		if (ready)
			return ready;
		ready = sn_consumer_poll_state(c);
		sn_consumer_count_sleep(c, ready > 0);
		if (ready)
			return ready;
		if (ret)
			return ret;
	}
}

SN_API int sn_consumer_fd(const struct sn_consumer *c)
{
	if (!c)
		return -EINVAL;
	return c->flags & SN__MEMFD ? -EOPNOTSUPP : c->fd;
}

/*
 * sn_consumer_wait_until()'s announcement and re-check, for a sleep in the
 * caller's epoll or io_uring: the heavy barrier runs here (SN_IOC_BARRIER),
 * since a poll() the caller set up earlier will not run it again.
 */
SN_API int sn_consumer_sleep_begin(struct sn_consumer *c)
{
	int ret, ready;

	if (!c)
		return -EINVAL;
	if (c->flags & SN__MEMFD)
		return -EOPNOTSUPP;
	sn_consumer_announce(c);
	/* [W1] pairs with [P1] in sn__prod_ship() */
	ret = sn_heavy_barrier(c->chan);
	ready = sn_consumer_poll_state(c);
	if (ret || ready) {
		sn_consumer_unannounce(c);	/* no sleep: not counted */
		return ret ? ret : ready;
	}
	return 0;
}

SN_API void sn_consumer_sleep_end(struct sn_consumer *c)
{
	if (!c || (c->flags & SN__MEMFD))
		return;
	sn_consumer_unannounce(c);
	sn_consumer_count_sleep(c, sn_consumer_poll_state(c) > 0);
}

SN_API int sn_producer_wait(struct sn_producer *p, __u64 timeout_ns)
{
	if (!p)
		return -EINVAL;
	return sn_producer_wait_until(p, sn_deadline(timeout_ns));
}

SN_API int sn_consumer_wait(struct sn_consumer *c, __u64 timeout_ns)
{
	if (!c)
		return -EINVAL;
	return sn_consumer_wait_until(c, sn_deadline(timeout_ns));
}

SN_API int sn__send_wait(struct sn_producer *p, const void *msg, __u32 len,
			 __u64 timeout_ns)
{
	__u64 deadline = sn_deadline(timeout_ns);
	int r;

	for (;;) {
		r = sn_producer_wait_until(p, deadline);
		if (r < 0)
			return r;
		r = sn_try_send_len(p, msg, len);
		if (r != -EAGAIN)
			return r;
		if (sn_now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

SN_API int sn__recv_wait(struct sn_consumer *c, void *buf, __u32 cap,
			 __u32 *len, __u64 timeout_ns)
{
	__u64 deadline = sn_deadline(timeout_ns);
	int r;

	for (;;) {
		r = sn_consumer_wait_until(c, deadline);
		if (r < 0)
			return r;
		/* MPMC: another consumer may take it first; wait again */
		r = sn_try_recv_len(c, buf, cap, len);
		if (r != -EAGAIN)
			return r;
		if (sn_now_ns() >= deadline)
			return -ETIMEDOUT;
	}
}

SN_API int sn_producer_kick(struct sn_producer *p)
{
	p->kicks++;
	__atomic_store_n(&p->stats->kicks, p->kicks, __ATOMIC_RELAXED);
	if (p->flags & SN__MEMFD) {
		sn_memfd_wake(p->waiters_p);
		return 0;
	}
	return ioctl(p->fd, SN_IOC_KICK, SN_KICK_CONSUMERS) ? -errno : 0;
}

SN_API int sn_consumer_kick(struct sn_consumer *c, __u32 lane)
{
	__u32 *wp;

	if (lane >= c->lanes)
		return -EINVAL;
	c->kicks++;
	if (c->flags & SN__MEMFD) {
		wp = (__u32 *)(sn__cons_lane(c, lane) + c->off_waiting);
		sn_memfd_wake(wp);
		return 0;
	}
	return ioctl(c->fd, SN_IOC_KICK, SN_KICK_PRODUCERS) ? -errno : 0;
}
