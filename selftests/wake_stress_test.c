// SPDX-License-Identifier: MIT
/*
 * Hunts lost wakeups: about a million sleep/wake cycles through libsn's
 * blocking calls (on the host; fewer in the guests), every wait a real
 * sleep (SN_SPINS=0 and SN_YIELDS=0, set before anything waits).
 *
 * Lockstep: the waking side acts once (a send, or a receive that makes
 * room), then waits until the sleeping side took what it acted for before
 * its next random gap. Its act thus lands at a random point of the
 * sleeper's way to sleep (try, announce, barrier, re-check, sleep), and a
 * lost wakeup is never rescued by a next act: the sleeper stays asleep.
 *
 *   consumer_sleeps   SPSC: the consumer sleeps in sn_recv(), the producer
 *                     wakes it (sn_try_send(); sn_send() when full)
 *   producer_sleeps   SPSC, 2 slots: the producer sleeps in sn_send() on a
 *                     full ring, the consumer's sn_recv() wakes it
 *   *_procs           the same in two forked processes (attached by fd)
 *   mpsc_consumer_sleeps  2 producers wake one consumer
 *   mpmc_consumer_sleeps  1 producer wakes 2 consumers
 *
 * Backends: memfd everywhere; where /dev/sn exists (the guests) the kernel
 * backend too, twice: poll_mode=off (every wake is the waker's kick) and
 * adaptive (the wakeup threads watch while the traffic lasts). Each in the
 * ASYM fence mode (the fast sides never fence) and, memfd and kernel/off,
 * in FULL mode (SN_FENCE=full). SN_TEST_SCALE=600 on the host runs about
 * a million cycles per backend; SN_STRESS_BACKENDS=kernel/off,... picks.
 *
 * A lost wakeup fails the case, seen either way:
 *  - timeout: a blocking call returns -ETIMEDOUT (2 s) though the other
 *    side waits for it to go on;
 *  - unwoken (memfd, kernel/off): UNWOKEN_MS after the waker's act had
 *    returned (its kick included), every sleeper is still asleep (state S
 *    in /proc, twice 1 ms apart) and has not taken it. A woken task is
 *    runnable until it runs, however late an emulated CPU runs it; a memfd
 *    sleeper would otherwise rescue itself at its next 50 ms slice (it
 *    looks for dead peers) and never time out. Not under kernel/adaptive,
 *    whose threads may wake late by design.
 * Also failed: any message lost, duplicated, garbled or out of order, and
 * fewer sleeps (sn_channel_stats: producers' and consumers') than a
 * quarter of the messages (an eighth with two producers, whose acts often
 * land while the consumer is awake for the other's): the run would not
 * have exercised sleeping. The first sleepers found asleep are described
 * (system call, wchan, the ring's sleep words, heads and tails).
 * Wakes 10 ms and more after the condition held are only reported.
 *
 * The waker's gaps: random, 0..20 us (one in four 0..1.25 us), widened
 * while under half of the messages cost a sleep (a slow sleeper: memfd in
 * an emulated guest looks for dead peers with system calls first).
 * A run that slept fewer times than required (and lost nothing) runs
 * again, twice at most, its gaps starting four times as wide as they grew.
 *
 * Size: per case and backend N messages and at most CASE_S seconds, both
 * scaled by SN_TEST_SCALE (percent; the guests run 25, the sanitizer
 * builds 20). Each case logs its counts per backend; the totals per
 * backend (messages, sleep/wake cycles, seconds) come last.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_common.h"

#include "kselftest_harness.h"

#define TIMEOUT_NS	(2000 * MS)
#define GAP_NS		20000ULL	/* the waker's gaps: 0..gap */
#define GAP_MAX_NS	(256 * GAP_NS)	/* widened at most to this */
#define ADAPT_ACTS	16		/* the gaps adapt this often */
#define UNWOKEN_MS	5
#define SLOW_MS		10		/* reported, never failed */
#define CASE_S		3		/* at most, per case and backend */
#define SLOT_SIZE	16
#define MAX_PRODUCERS	2
#define MAX_SLEEPERS	2

/* Who sleeps: the consumers (the producers wake them) or the producer. */
enum sleeper { CONSUMERS, PRODUCER };

/* A backend, and for the kernel's the wakeup threads' mode. */
struct backend {
	const char *name;
	unsigned int flags;
	const char *poll_mode;	/* kernel: sn.ko's poll_mode; memfd: NULL */
	int unwoken_check;	/* a sleeper left asleep is a lost wakeup */
	unsigned int fence;	/* the ring's SN_FENCE_* */
};

/*
 * Each backend in both fence modes: ASYM (senders and releasers skip the
 * full barrier, sleepers pay with sn.ko's IPIs or membarrier(2)) and FULL
 * (SN_FENCE=full in the environment when the channel is created).
 */
static const struct backend all_backends[] = {
	{ "memfd", SN_BACKEND_MEMFD, NULL, 1, SN_FENCE_ASYM },
	{ "memfd/full", SN_BACKEND_MEMFD, NULL, 1, SN_FENCE_FULL },
	{ "kernel/off", SN_BACKEND_KERNEL, "off", 1, SN_FENCE_ASYM },
	{ "kernel/adaptive", SN_BACKEND_KERNEL, "adaptive", 0, SN_FENCE_ASYM },
	{ "kernel/off/full", SN_BACKEND_KERNEL, "off", 1, SN_FENCE_FULL },
};
#define NBACKENDS (sizeof(all_backends) / sizeof(all_backends[0]))

/*
 * The backends here: memfd, and the kernel's where /dev/sn exists; only
 * those named in SN_STRESS_BACKENDS (a comma-separated list) when it is
 * set, for a long hunt on one of them.
 */
static int have_backend(const struct backend *b)
{
	const char *only = getenv("SN_STRESS_BACKENDS");
	struct stat st;

	if (only) {
		size_t n = strlen(b->name);
		const char *p = only;

		while ((p = strstr(p, b->name)) &&
		       !((p == only || p[-1] == ',') &&
			 (p[n] == 0 || p[n] == ',')))
			p += n;
		if (!p)
			return 0;
	}
	return b->flags == SN_BACKEND_MEMFD || stat(SN_DEVICE_PATH, &st) == 0;
}

struct run {
	unsigned int type, slots, producers, consumers;
	enum sleeper sleeper;
	int procs;		/* forked processes rather than threads */
	unsigned long msgs;	/* per producer, at most */
	unsigned int sleep_div;	/* at least msgs / sleep_div sleeps */
	__u64 budget_ns;	/* producers stop sending after it */
	__u64 gap0_ns;		/* the wakers' first gaps: 0..gap0_ns */
	const struct backend *b;
};

/* Shared by every thread or process of one run (MAP_SHARED anonymous). */
struct shared {
	__u64 sent;		/* sends that returned, all producers */
	__u64 received;
	__u64 opened;		/* handles open so far */
	__u64 producers_done;
	__u64 sent_by[MAX_PRODUCERS];
	__u64 errors;
	__u64 recv_timeouts;
	__u64 send_timeouts;
	__u64 unwoken;		/* sleepers left asleep by a waker's act */
	__u64 slow;		/* wakes >= SLOW_MS after the condition held */
	__u64 max_lat_ns;
	__u64 sum_lat_ns, lats;
	__u64 gap_ns;		/* the wakers' gaps: 0..gap_ns */
	__u64 max_gap_ns;
	__u64 deadline;		/* a hang fails here */
	__u64 until;		/* the producers stop sending here */
	__u64 seed;
	__s32 sleeper_tid[MAX_SLEEPERS];	/* 0: not yet */
	/* each sleeper's blocking call: when the current (or last) began,
	 * when the last returned; what a lost wakeup's report says */
	__u64 call_t0[MAX_SLEEPERS], call_t1[MAX_SLEEPERS];
	char why[160];
	/* then seen[producers * msgs] (bytes) and stamp[producers * msgs]:
	 * CONSUMERS: when the send of a message returned (it was there, any
	 * kick done); PRODUCER: when its receive returned (its slot free
	 * again, any kick done). 0: not yet. */
};

struct ctx {
	const struct run *r;
	struct shared *sh;
	unsigned char *seen;
	__u64 *stamp;
	struct sn_channel *ch;
	__u32 id;		/* producer id / consumer index */
};

/* Totals per backend over the whole run, printed last (main's process). */
struct totals {
	__u64 msgs, sleeps, wakeups, kicks, ns, timeouts, unwoken;
};
static struct totals *totals;
static pid_t main_pid;

/* The first failure is the run's reason, said at once (a run that then
 * hangs still tells why). */
static void fail(struct shared *sh, const char *what, long v)
{
	if (__atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED) == 0) {
		snprintf(sh->why, sizeof(sh->why), "%s (%ld)", what, v);
		fprintf(stderr, "# failed: %s\n", sh->why);
	}
}

static int failed(const struct shared *sh)
{
	return __atomic_load_n(&sh->errors, __ATOMIC_RELAXED) != 0;
}

/*
 * A blocking call's retry loop goes on: nothing failed (the other side may
 * have stopped) and the run's deadline has not passed (fails it).
 */
static int retry(struct shared *sh, const char *what)
{
	if (failed(sh))
		return 0;
	if (t_now() > sh->deadline) {
		fail(sh, what, 0);
		return 0;
	}
	return 1;
}

static __u64 rnd(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

static void spin_until(__u64 end)
{
	while (t_now() < end)
		;
}

/*
 * The waker's gap: busy for a random 0..gap_ns, one time in four
 * 0..gap_ns / 16 (more acts near the sleeper's announcement and re-check);
 * no system call, no yield.
 */
static void gap(struct ctx *x, __u64 *s)
{
	__u64 g = __atomic_load_n(&x->sh->gap_ns, __ATOMIC_RELAXED);
	__u64 r = rnd(s);

	spin_until(t_now() + (r >> 8) % ((r & 3 ? g : g / 16) + 1));
}

/*
 * The sleeper's jitter before its next call, one time in four 0..gap/13:
 * it shifts where a short gap lands (else the sleeper is always past its
 * try when the waker acts).
 */
static void jitter(struct ctx *x, __u64 *s)
{
	__u64 g = __atomic_load_n(&x->sh->gap_ns, __ATOMIC_RELAXED);
	__u64 r = rnd(s);

	if (!(r & 3))
		spin_until(t_now() + (r >> 8) % (g / 13 + 1));
}

/* What waker 0 saw when it last adapted the gaps. */
struct adapt {
	__u64 acts, sent, sleeps;
};

/*
 * Waker 0, every ADAPT_ACTS of its acts (often enough for a short run in
 * an emulated guest, where a sleeper's heavy barrier takes as long as
 * milliseconds of gap): widens the gaps while under half of the
 * messages (all wakers') cost a sleep, narrows them back (to GAP_NS)
 * above 85%.
 */
static void adapt_gap(struct ctx *x, struct adapt *a)
{
	struct sn_channel_stats st;
	__u64 g, dm, ds;

	if (x->id || ++a->acts % ADAPT_ACTS || sn_channel_stats(x->ch, &st))
		return;
	dm = st.sent - a->sent;
	ds = st.sleeps - a->sleeps;
	a->sent = st.sent;
	a->sleeps = st.sleeps;
	g = __atomic_load_n(&x->sh->gap_ns, __ATOMIC_RELAXED);
	if (ds * 2 < dm && g < GAP_MAX_NS)
		g *= 2;
	else if (ds * 100 > dm * 85 && g > GAP_NS)
		g /= 2;
	else
		return;
	__atomic_store_n(&x->sh->gap_ns, g, __ATOMIC_RELAXED);
	if (g > x->sh->max_gap_ns)
		x->sh->max_gap_ns = g;
}

static inline void cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* Task @tid sleeps interruptibly (state S: in poll or futex here). */
static int task_sleeps(pid_t tid)
{
	char path[80], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/stat", tid, tid);
	f = fopen(path, "r");
	if (!f)
		return 0;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* The first line of @tid's /proc file @what into @buf ("?" if none). */
static void proc_line(pid_t tid, const char *what, char *buf, int len)
{
	char path[80];
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/task/%d/%s", tid, tid, what);
	buf[0] = 0;
	f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, len, f))
			buf[0] = 0;
		fclose(f);
	}
	buf[strcspn(buf, "\n")] = 0;
	if (!buf[0])
		snprintf(buf, len, "?");
}

/* The shared words of the sleep/wake protocol, as this process sees them. */
static void ring_state(struct ctx *x)
{
	const struct sn_kpage *kp;
	struct sn_offsets off;
	unsigned char *b;
	char line[256];
	void *base;
	int len;
	__u32 l;

	if (sn_channel_layout(x->ch, &base, &off))
		return;
	b = base;
	kp = (const struct sn_kpage *)(b + off.kpage);
	len = snprintf(line, sizeof(line), "kflags 0x%x waiters 0x%x",
		       __atomic_load_n(&kp->kflags, __ATOMIC_RELAXED),
		       __atomic_load_n((__u32 *)(b + off.cons + off.cons_waiters),
				       __ATOMIC_RELAXED));
	for (l = 0; l < x->r->producers && len < (int)sizeof(line); l++) {
		unsigned char *lane = b + off.lane0 + l * off.lane_size;

		len += snprintf(line + len, sizeof(line) - len,
				"; lane %u head %u tail %u waiting 0x%x", l,
				__atomic_load_n((__u32 *)(b + off.cons + off.cons_lane +
							  l * SN_PAD * 2),
						__ATOMIC_RELAXED),
				__atomic_load_n((__u32 *)(lane + off.prod_tail),
						__ATOMIC_RELAXED),
				__atomic_load_n((__u32 *)(lane + off.prod_waiting),
						__ATOMIC_RELAXED));
	}
	fprintf(stderr, "# %s: %s; sent %llu received %llu\n", x->r->b->name,
		line, (unsigned long long)x->sh->sent,
		(unsigned long long)x->sh->received);
}

/*
 * Says where the sleepers sleep (a lost wakeup: in futex or ppoll), when
 * their calls began and last returned (from @act, when the waker's act had
 * returned), and what the waker waited for: *@word was @seen1 and @seen2 at
 * the two looks, @want wanted.
 */
static void where_asleep(struct ctx *x, __u64 act, __u64 seen1, __u64 seen2,
			 __u64 want)
{
	unsigned int n = x->r->sleeper == CONSUMERS ? x->r->consumers : 1, i;
	char sc[128], wchan[64];
	pid_t tid;

	for (i = 0; i < n; i++) {
		tid = __atomic_load_n(&x->sh->sleeper_tid[i], __ATOMIC_ACQUIRE);
		proc_line(tid, "syscall", sc, sizeof(sc));
		proc_line(tid, "wchan", wchan, sizeof(wchan));
		fprintf(stderr, "# %s: sleeper %d still asleep %d ms after the act: syscall %s, wchan %s; its call began %+.3f ms from the act, its last returned %+.3f ms\n",
			x->r->b->name, tid, UNWOKEN_MS, sc, wchan,
			((double)__atomic_load_n(&x->sh->call_t0[i], __ATOMIC_RELAXED) -
			 (double)act) / 1e6,
			((double)__atomic_load_n(&x->sh->call_t1[i], __ATOMIC_RELAXED) -
			 (double)act) / 1e6);
	}
	fprintf(stderr, "# %s: the waker wanted %llu, saw %llu and %llu at its two looks\n",
		x->r->b->name, (unsigned long long)want,
		(unsigned long long)seen1, (unsigned long long)seen2);
	ring_state(x);
}

/* Every sleeper is asleep. */
static int sleepers_asleep(struct ctx *x)
{
	unsigned int n = x->r->sleeper == CONSUMERS ? x->r->consumers : 1, i;
	pid_t tid;

	for (i = 0; i < n; i++) {
		tid = __atomic_load_n(&x->sh->sleeper_tid[i], __ATOMIC_ACQUIRE);
		if (tid <= 0 || !task_sleeps(tid))
			return 0;
	}
	return 1;
}

static int reached(struct ctx *x, const __u64 *word, __u64 want)
{
	return __atomic_load_n(word, __ATOMIC_ACQUIRE) >= want ||
	       (x->r->sleeper == PRODUCER &&
		__atomic_load_n(&x->sh->producers_done, __ATOMIC_ACQUIRE));
}

/*
 * The waker, its act returned: waits until *@word >= @want, the sleeper
 * took what it acted for (PRODUCER: or the producer has finished). Spins
 * a little, then yields (with more threads than CPUs the sleeper needs
 * one). From UNWOKEN_MS on it looks whether the sleepers still sleep: twice
 * in a row, 1 ms apart, with nothing taken in between, is a lost wakeup.
 */
static void wait_for(struct ctx *x, const __u64 *word, __u64 want)
{
	__u64 t0 = t_now(), next = t0 + UNWOKEN_MS * MS, now, seen = 0;
	unsigned int i = 0, asleep = 0;

	while (!reached(x, word, want)) {
		if (failed(x->sh))
			return;
		if (++i < 256) {
			cpu_relax();
			continue;
		}
		sched_yield();
		if (i & 63)
			continue;
		now = t_now();
		if (now > x->sh->deadline) {
			fail(x->sh, "the sleeper never took it", (long)want);
			return;
		}
		if (!x->r->b->unwoken_check || now < next)
			continue;
		next = now + MS;
		if (!sleepers_asleep(x) || reached(x, word, want)) {
			asleep = 0;
			continue;
		}
		if (++asleep == 1) {
			seen = __atomic_load_n(word, __ATOMIC_ACQUIRE);
		} else if (asleep == 2) {
			if (__atomic_fetch_add(&x->sh->unwoken, 1,
					       __ATOMIC_RELAXED) < 3)
				where_asleep(x, t0, seen,
					     __atomic_load_n(word,
							     __ATOMIC_ACQUIRE),
					     want);
			next = ~0ULL;	/* once per act */
		}
	}
}

/*
 * A sleeper's call returned at @t1: it had started at @t0, its condition
 * held from @since (0: unknown). Reported when slow.
 */
static void wake_latency(struct shared *sh, __u64 since, __u64 t0, __u64 t1)
{
	__u64 lat, max;

	if (!since)
		return;
	if (since < t0)
		since = t0;
	if (t1 <= since)
		return;
	lat = t1 - since;
	__atomic_fetch_add(&sh->sum_lat_ns, lat, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sh->lats, 1, __ATOMIC_RELAXED);
	max = __atomic_load_n(&sh->max_lat_ns, __ATOMIC_RELAXED);
	while (lat > max && !__atomic_compare_exchange_n(&sh->max_lat_ns, &max,
							 lat, 0, __ATOMIC_RELAXED,
							 __ATOMIC_RELAXED))
		;
	if (lat >= SLOW_MS * MS)
		__atomic_fetch_add(&sh->slow, 1, __ATOMIC_RELAXED);
}

static void wait_all_open(struct ctx *x)
{
	__u64 n = x->r->producers + x->r->consumers;

	__atomic_fetch_add(&x->sh->opened, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(&x->sh->opened, __ATOMIC_SEQ_CST) < n &&
	       !failed(x->sh)) {
		if (t_now() > x->sh->deadline) {
			fail(x->sh, "the handles never all opened", 0);
			return;
		}
		usleep(100);
	}
}

/* A sleeper's blocking call begins (@ret 0) or returns (@ret 1) at @t. */
static void sleeper_call(struct ctx *x, int ret, __u64 t)
{
	__atomic_store_n(ret ? &x->sh->call_t1[x->id] : &x->sh->call_t0[x->id],
			 t, __ATOMIC_RELAXED);
}

/* A sleeper says who it is (after wait_all_open()'s usleep). */
static void sleeper_register(struct ctx *x)
{
	__atomic_store_n(&x->sh->sleeper_tid[x->id],
			 (__s32)syscall(SYS_gettid), __ATOMIC_RELEASE);
}

static void *producer_main(void *arg)
{
	struct ctx *x = arg;
	const struct run *r = x->r;
	__u64 *stamp = x->stamp + (__u64)x->id * r->msgs;
	__u64 s = x->sh->seed * 2 + x->id * 0x9e3779b97f4a7c15ULL + 1;
	__u64 t0, t1;
	struct adapt ad = { 0 };
	unsigned char m[SLOT_SIZE];
	struct sn_producer *p;
	unsigned long seq;
	int n = 0;

	n = sn_producer_open(x->ch, &p);
	if (n) {
		fail(x->sh, "sn_producer_open", n);
		return NULL;
	}
	wait_all_open(x);
	if (r->sleeper == PRODUCER)
		sleeper_register(x);
	for (seq = 0; seq < r->msgs && !failed(x->sh); seq++) {
		t0 = t_now();
		if (t0 > x->sh->until)
			break;
		t_fill(m, SLOT_SIZE, x->id, seq);
		if (r->sleeper == CONSUMERS) {
			gap(x, &s);
			n = sn_try_send(p, m);
			while ((n == -EAGAIN || n == -ETIMEDOUT) &&
			       retry(x->sh, "send past the deadline")) {
				if (n == -ETIMEDOUT)
					__atomic_fetch_add(&x->sh->send_timeouts,
							   1, __ATOMIC_RELAXED);
				n = sn_send(p, m, TIMEOUT_NS);
			}
			if (n)
				break;
			__atomic_store_n(&stamp[seq], t_now(), __ATOMIC_RELEASE);
			/* every message sent so far taken (by any consumer)
			 * before the next gap */
			wait_for(x, &x->sh->received,
				 __atomic_add_fetch(&x->sh->sent, 1,
						    __ATOMIC_SEQ_CST));
			adapt_gap(x, &ad);
			continue;
		}
		jitter(x, &s);
		for (;;) {
			t0 = t_now();
			sleeper_call(x, 0, t0);
			n = sn_send(p, m, TIMEOUT_NS);
			t1 = t_now();
			sleeper_call(x, 1, t1);
			if (n != -ETIMEDOUT ||
			    !retry(x->sh, "send past the deadline"))
				break;
			__atomic_fetch_add(&x->sh->send_timeouts, 1,
					   __ATOMIC_RELAXED);
		}
		if (n)
			break;
		__atomic_fetch_add(&x->sh->sent, 1, __ATOMIC_RELEASE);
		/* the room for seq came with the receive of seq - slots */
		if (seq >= r->slots)
			wake_latency(x->sh, __atomic_load_n(&stamp[seq - r->slots],
							    __ATOMIC_ACQUIRE),
				     t0, t1);
	}
	if (n)
		fail(x->sh, "send", n);
	x->sh->sent_by[x->id] = seq;
	/* closed before it counts as done: the consumer's end of stream */
	sn_producer_close(p);
	__atomic_fetch_add(&x->sh->producers_done, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* A message arrived at @t1 through a call that started at @t0. */
static void got(struct ctx *x, const unsigned char *m, __u64 *last,
		__u64 t0, __u64 t1)
{
	const struct run *r = x->r;
	__u64 seq, i;
	__u32 prod;

	if (t_check(m, SLOT_SIZE, &prod, &seq) || prod >= r->producers ||
	    seq >= r->msgs) {
		fail(x->sh, "garbled message", (long)seq);
		return;
	}
	/* the one consumer sees each producer's sequence in order, each
	 * MPMC consumer an increasing subsequence */
	if (r->type != SN_RING_MPMC ? seq != last[prod] : seq < last[prod])
		fail(x->sh, "out of order", (long)seq);
	last[prod] = seq + 1;
	i = (__u64)prod * r->msgs + seq;
	if (__atomic_fetch_add(&x->seen[i], 1, __ATOMIC_RELAXED))
		fail(x->sh, "duplicate", (long)seq);
	if (r->sleeper == CONSUMERS)
		wake_latency(x->sh, __atomic_load_n(&x->stamp[i],
						    __ATOMIC_ACQUIRE), t0, t1);
	else
		__atomic_store_n(&x->stamp[i], t_now(), __ATOMIC_RELEASE);
	__atomic_fetch_add(&x->sh->received, 1, __ATOMIC_RELEASE);
}

/* Receives until the end of the stream (every producer closed). */
static void *consumer_main(void *arg)
{
	struct ctx *x = arg;
	const struct run *r = x->r;
	__u64 s = x->sh->seed * 3 + x->id * 0xbf58476d1ce4e5b9ULL + 7;
	__u64 last[MAX_PRODUCERS] = { 0 }, t0, t1;
	struct adapt ad = { 0 };
	unsigned char m[SLOT_SIZE];
	struct sn_consumer *c;
	int n;

	n = sn_consumer_open(x->ch, &c);
	if (n) {
		fail(x->sh, "sn_consumer_open", n);
		return NULL;
	}
	wait_all_open(x);
	if (r->sleeper == CONSUMERS)
		sleeper_register(x);
	while (!failed(x->sh)) {
		if (t_now() > x->sh->deadline) {
			fail(x->sh, "consumer past the deadline", 0);
			break;
		}
		if (r->sleeper == PRODUCER)
			gap(x, &s);
		else
			jitter(x, &s);
		t0 = t_now();
		if (r->sleeper == CONSUMERS)
			sleeper_call(x, 0, t0);
		n = sn_recv(c, m, TIMEOUT_NS);
		t1 = t_now();
		if (r->sleeper == CONSUMERS)
			sleeper_call(x, 1, t1);
		if (n == -EPIPE)
			break;
		if (n == -ETIMEDOUT) {
			__atomic_fetch_add(&x->sh->recv_timeouts, 1,
					   __ATOMIC_RELAXED);
			continue;
		}
		if (n) {
			fail(x->sh, "sn_recv", n);
			break;
		}
		got(x, m, last, t0, t1);
		if (r->sleeper == PRODUCER) {
			/* the producer filled the room again (or has
			 * finished) before the next gap */
			wait_for(x, &x->sh->sent,
				 __atomic_load_n(&x->sh->received,
						 __ATOMIC_RELAXED) + r->slots);
			adapt_gap(x, &ad);
		}
	}
	sn_consumer_close(c);
	return NULL;
}

/* sn.ko's module parameter @name into @buf ("" without the module). */
static void param_get(const char *name, char *buf, int len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/sn/parameters/%s", name);
	buf[0] = 0;
	f = fopen(path, "r");
	if (!f)
		return;
	if (!fgets(buf, len, f))
		buf[0] = 0;
	fclose(f);
	buf[strcspn(buf, "\n")] = 0;
}

static int param_set(const char *name, const char *val)
{
	char path[128];
	FILE *f;
	int ret;

	snprintf(path, sizeof(path), "/sys/module/sn/parameters/%s", name);
	f = fopen(path, "w");
	if (!f)
		return -1;
	ret = fputs(val, f) < 0;
	return fclose(f) || ret ? -1 : 0;
}

struct result {
	struct sn_channel_stats st;
	__u64 msgs, ns, recv_timeouts, send_timeouts, unwoken, slow;
	__u64 max_lat_ns, max_gap_ns, mean_lat_ns;
};

/*
 * One run on one backend: 0 when every message sent arrived exactly once
 * and in order (timeouts and unwoken sleepers are counted in @res, not
 * failed here), else -1 with the reason in @why.
 */
static int run_one(const struct run *r, struct result *res, char *why,
		   size_t whylen)
{
	__u64 cells = (__u64)r->producers * r->msgs;
	size_t size = sizeof(struct shared) + cells + 8 + cells * 8;
	unsigned int n = r->producers + r->consumers, i;
	struct ctx ctx[MAX_PRODUCERS + MAX_SLEEPERS];
	pthread_t th[MAX_PRODUCERS + MAX_SLEEPERS];
	pid_t pid[MAX_PRODUCERS + MAX_SLEEPERS];
	struct sn_channel *ch;
	struct shared *sh;
	unsigned char *seen;
	__u64 *stamp, j, t0;
	int ret, status;

	sh = mmap(NULL, size, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		snprintf(why, whylen, "mmap");
		return -1;
	}
	seen = (unsigned char *)(sh + 1);
	stamp = (__u64 *)(((uintptr_t)(seen + cells) + 7) & ~(uintptr_t)7);
	sh->seed = t_now() ^ ((__u64)getpid() << 32);
	sh->gap_ns = sh->max_gap_ns = r->gap0_ns;
	if (r->b->poll_mode && param_set("poll_mode", r->b->poll_mode)) {
		snprintf(why, whylen, "cannot set poll_mode=%s", r->b->poll_mode);
		munmap(sh, size);
		return -1;
	}
	if (r->b->fence == SN_FENCE_FULL)
		setenv("SN_FENCE", "full", 1);
	ret = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = r->type, .slots = r->slots, .slot_size = SLOT_SIZE, .lanes = r->producers, .flags = r->b->flags));
	unsetenv("SN_FENCE");
	if (ret) {
		snprintf(why, whylen, "sn_channel_create: %d", ret);
		munmap(sh, size);
		return -1;
	}
	{
		struct sn_channel_info info;

		/* ASYM needs membarrier (memfd): FULL is the honest answer
		 * where it is missing */
		if (sn_channel_info(ch, &info) ||
		    (info.fence != r->b->fence && (r->b->fence == SN_FENCE_FULL ||
						   r->b->flags != SN_BACKEND_MEMFD))) {
			snprintf(why, whylen, "fence %u, wanted %u", info.fence,
				 r->b->fence);
			sn_channel_close(ch);
			munmap(sh, size);
			return -1;
		}
	}
	t0 = t_now();
	sh->until = t0 + r->budget_ns;
	/* a hang fails instead of waiting for the harness */
	sh->deadline = sh->until + 120000 * MS;
	for (i = 0; i < n; i++) {
		int prod = i < r->producers;

		ctx[i] = (struct ctx){ .r = r, .sh = sh, .seen = seen,
				       .stamp = stamp, .ch = ch,
				       .id = prod ? i : i - r->producers };
		if (!r->procs) {
			if (pthread_create(&th[i], NULL, prod ? producer_main :
					   consumer_main, &ctx[i])) {
				fail(sh, "pthread_create", (long)i);
				n = i;
				break;
			}
			continue;
		}
		pid[i] = fork();
		if (pid[i] == 0) {
			/* a process that knows only the fd */
			struct sn_channel *mine;

			ret = sn_channel_attach(&mine, sn_channel_fd(ch), 0);
			if (ret) {
				fail(sh, "sn_channel_attach", ret);
				_exit(1);
			}
			ctx[i].ch = mine;
			if (prod)
				producer_main(&ctx[i]);
			else
				consumer_main(&ctx[i]);
			sn_channel_close(mine);
			_exit(0);
		}
		if (pid[i] < 0) {
			fail(sh, "fork", errno);
			n = i;
			break;
		}
	}
	for (i = 0; i < n; i++) {
		if (!r->procs)
			pthread_join(th[i], NULL);
		else if (waitpid(pid[i], &status, 0) != pid[i] ||
			 !WIFEXITED(status) || WEXITSTATUS(status))
			fail(sh, "a child failed", (long)i);
	}
	res->ns = t_now() - t0;
	res->msgs = 0;
	for (i = 0; i < r->producers; i++)
		res->msgs += sh->sent_by[i];
	for (j = 0; j < cells && !failed(sh); j++)
		if (seen[j] != (j % r->msgs < sh->sent_by[j / r->msgs]))
			fail(sh, seen[j] ? "duplicate or never sent" : "lost",
			     (long)j);
	ret = sn_channel_stats(ch, &res->st);
	if (ret)
		fail(sh, "sn_channel_stats", ret);
	else if (!failed(sh) && (res->st.sent != res->msgs ||
				 res->st.received != res->msgs ||
				 res->st.depth))
		fail(sh, "statistics", (long)res->st.received);
	res->recv_timeouts = sh->recv_timeouts;
	res->send_timeouts = sh->send_timeouts;
	res->unwoken = sh->unwoken;
	res->slow = sh->slow;
	res->max_lat_ns = sh->max_lat_ns;
	res->mean_lat_ns = sh->lats ? sh->sum_lat_ns / sh->lats : 0;
	res->max_gap_ns = sh->max_gap_ns;
	ret = failed(sh) ? -1 : 0;
	if (ret)
		snprintf(why, whylen, "%s", sh->why);
	sn_channel_close(ch);
	munmap(sh, size);
	return ret;
}

/* One case on every backend here; @msgs per producer before scaling. */
static void run_case(struct __test_metadata *_metadata, struct run r,
		     unsigned long msgs)
{
	unsigned int bi;

	r.msgs = t_scaled(msgs);
	if (!r.sleep_div)
		r.sleep_div = 4;
	r.budget_ns = t_scaled(CASE_S * 1000) * MS;
	for (bi = 0; bi < NBACKENDS; bi++) {
		struct result res = { 0 };
		struct totals *tt = &totals[bi];
		unsigned int tries = 0;
		__u64 timeouts, need;
		char why[160];
		int ret;

		r.b = &all_backends[bi];
		if (!have_backend(r.b))
			continue;
		r.gap0_ns = GAP_NS;
again:
		ret = run_one(&r, &res, why, sizeof(why));
		timeouts = res.recv_timeouts + res.send_timeouts;
		TH_LOG("%-15s %7llu msgs%s %7llu sleeps (%3llu%%) %7llu wakeups %7llu kicks %6.2f s %6.1f us/msg, gap <= %llu us, wake %.0f us mean, %.2f ms max, %llu >= %d ms; timeouts %llu, unwoken %llu",
		       r.b->name, (unsigned long long)res.msgs,
		       res.msgs < (__u64)r.msgs * r.producers ? " (time)" : "",
		       (unsigned long long)res.st.sleeps,
		       (unsigned long long)(res.msgs ? res.st.sleeps * 100 /
					    res.msgs : 0),
		       (unsigned long long)res.st.wakeups,
		       (unsigned long long)res.st.kicks, res.ns / 1e9,
		       res.msgs ? res.ns / 1e3 / res.msgs : 0.0,
		       (unsigned long long)(res.max_gap_ns / 1000),
		       res.mean_lat_ns / 1e3, res.max_lat_ns / 1e6, (unsigned long long)res.slow,
		       SLOW_MS, (unsigned long long)timeouts,
		       (unsigned long long)res.unwoken);
		__atomic_fetch_add(&tt->msgs, res.msgs, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tt->sleeps, res.st.sleeps, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tt->wakeups, res.st.wakeups, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tt->kicks, res.st.kicks, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tt->ns, res.ns, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tt->timeouts, timeouts, __ATOMIC_RELAXED);
		__atomic_fetch_add(&tt->unwoken, res.unwoken, __ATOMIC_RELAXED);
		need = t_scaled(100) < 100 ? 1 : res.msgs / r.sleep_div;
		/*
		 * A clean run that slept too little proved little: again
		 * (twice at most), its gaps starting four times as wide as
		 * they had grown (a short run leaves them little time to).
		 */
		if (!ret && !timeouts && !res.unwoken && res.st.sleeps < need &&
		    ++tries <= 2) {
			r.gap0_ns = res.max_gap_ns * 4 < GAP_MAX_NS ?
				    res.max_gap_ns * 4 : GAP_MAX_NS;
			TH_LOG("%s: %llu sleeps, fewer than %llu: again, gaps from %llu us",
			       r.b->name, (unsigned long long)res.st.sleeps,
			       (unsigned long long)need,
			       (unsigned long long)(r.gap0_ns / 1000));
			memset(&res, 0, sizeof(res));
			goto again;
		}
		EXPECT_EQ(0, ret) TH_LOG("%s: %s", r.b->name, why);
		EXPECT_EQ(0, timeouts)
			TH_LOG("%s: lost wakeups: %llu receives and %llu sends timed out (%llu ms) while the other side waited for them",
			       r.b->name, (unsigned long long)res.recv_timeouts,
			       (unsigned long long)res.send_timeouts,
			       TIMEOUT_NS / MS);
		EXPECT_EQ(0, res.unwoken)
			TH_LOG("%s: lost wakeups: %llu times the sleepers still slept %d ms after the act that should have woken them",
			       r.b->name, (unsigned long long)res.unwoken,
			       UNWOKEN_MS);
		/*
		 * It slept: else it proved nothing. Scaled-down runs (the
		 * guests: emulated CPUs, where an ASYM sleeper's heavy
		 * barrier, IPIs to every vCPU, takes milliseconds, longer
		 * than the widest gap, so the waker's act mostly lands
		 * before the re-check, and a short run leaves the gaps no
		 * time to widen) need only to have slept; the log says how
		 * often.
		 */
		EXPECT_LE(need, res.st.sleeps)
			TH_LOG("%s: only %llu sleeps for %llu messages",
			       r.b->name, (unsigned long long)res.st.sleeps,
			       (unsigned long long)res.msgs);
		EXPECT_LT(0, res.msgs);
	}
}

/* Saves and restores sn.ko's wakeup thread parameters (the guests). */
FIXTURE(stress) {
	char mode[16];
	char idle[16];
};

FIXTURE_SETUP(stress)
{
	param_get("poll_mode", self->mode, sizeof(self->mode));
	param_get("poll_idle_us", self->idle, sizeof(self->idle));
}

FIXTURE_TEARDOWN(stress)
{
	if (self->mode[0])
		param_set("poll_mode", self->mode);
	if (self->idle[0])
		param_set("poll_idle_us", self->idle);
}

/* Messages per producer, before SN_TEST_SCALE. */
#define N_SPSC		300000UL
#define N_PROCS		150000UL
#define N_MULTI		100000UL

TEST_F_TIMEOUT(stress, consumer_sleeps, 900)
{
	run_case(_metadata, (struct run){ .type = SN_RING_SPSC, .slots = 64,
			     .producers = 1, .consumers = 1,
			     .sleeper = CONSUMERS }, N_SPSC);
}

TEST_F_TIMEOUT(stress, producer_sleeps, 900)
{
	run_case(_metadata, (struct run){ .type = SN_RING_SPSC, .slots = 2,
			     .producers = 1, .consumers = 1,
			     .sleeper = PRODUCER }, N_SPSC);
}

TEST_F_TIMEOUT(stress, consumer_sleeps_procs, 900)
{
	run_case(_metadata, (struct run){ .type = SN_RING_SPSC, .slots = 64,
			     .producers = 1, .consumers = 1,
			     .sleeper = CONSUMERS, .procs = 1 }, N_PROCS);
}

TEST_F_TIMEOUT(stress, producer_sleeps_procs, 900)
{
	run_case(_metadata, (struct run){ .type = SN_RING_SPSC, .slots = 2,
			     .producers = 1, .consumers = 1,
			     .sleeper = PRODUCER, .procs = 1 }, N_PROCS);
}

TEST_F_TIMEOUT(stress, mpsc_consumer_sleeps, 900)
{
	run_case(_metadata, (struct run){ .type = SN_RING_MPSC, .slots = 64,
			     .producers = 2, .consumers = 1,
			     .sleeper = CONSUMERS, .sleep_div = 8 }, N_MULTI);
}

TEST_F_TIMEOUT(stress, mpmc_consumer_sleeps, 900)
{
	run_case(_metadata, (struct run){ .type = SN_RING_MPMC, .slots = 64,
			     .producers = 1, .consumers = 2,
			     .sleeper = CONSUMERS }, N_MULTI);
}

static void print_totals(void)
{
	unsigned int bi;

	if (getpid() != main_pid)
		return;
	for (bi = 0; bi < NBACKENDS; bi++) {
		const struct totals *t = &totals[bi];

		if (!t->msgs)
			continue;
		printf("# totals %s: %llu messages, %llu sleep/wake cycles (%llu consumer wakeups, %llu producer kicks) in %.1f s (%.1f us/cycle); %llu timeouts, %llu unwoken\n",
		       all_backends[bi].name, (unsigned long long)t->msgs,
		       (unsigned long long)t->sleeps,
		       (unsigned long long)t->wakeups,
		       (unsigned long long)t->kicks, t->ns / 1e9,
		       t->sleeps ? t->ns / 1e3 / t->sleeps : 0.0,
		       (unsigned long long)t->timeouts,
		       (unsigned long long)t->unwoken);
	}
	fflush(stdout);
}

int main(int argc, char **argv)
{
	/* every wait a sleep: libsn reads these when it first waits */
	setenv("SN_SPINS", "0", 1);
	setenv("SN_YIELDS", "0", 1);
	totals = mmap(NULL, sizeof(*totals) * NBACKENDS, PROT_READ | PROT_WRITE,
		      MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (totals == MAP_FAILED)
		return 1;
	main_pid = getpid();
	atexit(print_totals);
	return test_harness_run(argc, argv);
}
