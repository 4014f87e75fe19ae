// SPDX-License-Identifier: MIT
/*
 * Dead peers through libsn: producers and consumers killed with SIGKILL at
 * chosen points, then a chaos run of many kills under traffic. Memfd
 * backend everywhere; the kernel backend too where /dev/sn exists (the
 * guests). SN_TEST_SCALE=N runs N% of the chaos run's kills.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_common.h"

#include "kselftest_harness.h"

/* Kills @pid after @ms milliseconds, from a thread. */
struct t_killer {
	pthread_t th;
	pid_t pid;
	unsigned int ms;
};

static void *t_killer_main(void *arg)
{
	struct t_killer *k = arg;

	usleep(k->ms * 1000);
	t_kill(k->pid);
	return NULL;
}

static void t_kill_later(struct t_killer *k, pid_t pid, unsigned int ms)
{
	k->pid = pid;
	k->ms = ms;
	pthread_create(&k->th, NULL, t_killer_main, k);
}

/* Child: a producer that sends 0..4 and reserves 3 slots it never commits. */
static int t_child_reserver(struct sn_channel *ch, void *arg)
{
	struct sn_producer *p;
	__u64 m[2] = { 0 };
	__u32 pos;

	(void)arg;
	if (sn_producer_open(ch, &p))
		return -1;
	for (m[0] = 0; m[0] < 5; m[0]++)
		if (sn_try_send(p, m))
			return -1;
	return sn_producer_reserve(p, 3, &pos) == 3 ? 0 : -1;
}

static int t_child_producer(struct sn_channel *ch, void *arg)
{
	struct sn_producer *p;

	(void)arg;
	return sn_producer_open(ch, &p);
}

static int t_child_consumer(struct sn_channel *ch, void *arg)
{
	struct sn_consumer *c;

	(void)arg;
	return sn_consumer_open(ch, &c);
}

/* Child: a consumer that peeks *(int *)arg messages and never releases. */
static int t_child_peeker(struct sn_channel *ch, void *arg)
{
	__u32 n = *(__u32 *)arg, pos;
	struct sn_consumer *c;

	if (sn_consumer_open(ch, &c))
		return -1;
	return sn_consumer_peek(c, n, &pos) == (int)n ? 0 : -1;
}

/* A dead producer: its commits stay, its reservation is counted lost, its
 * lane is free and the next producer continues from its tail. */
TEST(producer_killed_holding_reservation)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u64 m[2] = { 0 }, i;
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : 2;
		pid_t pid;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 16, .slot_size = 16, .lanes = lanes, .flags = flags[b])));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		pid = t_spawn(ch, t_child_reserver, NULL);
		ASSERT_LT(0, pid);
		ASSERT_EQ(0, t_kill(pid));
		for (i = 0; i < 5; i++) {
			ASSERT_EQ(0, sn_recv(c, m, 1000 * MS));
			EXPECT_EQ(i, m[0]);
		}
		/* drained, every producer gone: the end, long before 10 s */
		EXPECT_EQ(-EPIPE, sn_recv(c, m, 10000 * MS));
		EXPECT_EQ(-EPIPE, sn_try_recv(c, m));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(1, st.producers_died);
		EXPECT_EQ(3, st.reserved_lost);
		EXPECT_EQ(1, st.lanes_dead);
		EXPECT_EQ(0, st.lanes_live);
		EXPECT_EQ(1, st.ended);
		EXPECT_EQ(0, st.orphaned);
		/* the lane again, from its tail */
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		EXPECT_EQ(0, sn_producer_lane(p));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(0, st.ended);
		EXPECT_EQ(0, st.lanes_dead);
		m[0] = 42;
		EXPECT_EQ(0, sn_try_send(p, m));
		EXPECT_EQ(0, sn_try_recv(c, m));
		EXPECT_EQ(42, m[0]);
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, m));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* A consumer asleep when the last producer dies wakes with -EPIPE. */
TEST(sleeping_consumer_wakes_at_producer_death)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct t_killer k;
		struct sn_consumer *c;
		struct sn_channel *ch;
		__u64 m[2], t0;
		pid_t pid;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 16, .slot_size = 16, .lanes = 2, .flags = flags[b])));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		pid = t_spawn(ch, t_child_producer, NULL);
		ASSERT_LT(0, pid);
		t_kill_later(&k, pid, 200);
		t0 = t_now();
		EXPECT_EQ(-EPIPE, sn_recv(c, m, 10000 * MS));
		/* woken by the death, not by the timeout (memfd: within a
		 * liveness slice) */
		EXPECT_GT(3000 * MS, t_now() - t0);
		pthread_join(k.th, NULL);
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* A clean close ends the stream too, after what it sent; a ring that never
 * had a producer has not ended, unless its creator says so. */
TEST(end_of_stream)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u64 m[2] = { 0 };

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 16, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		EXPECT_EQ(-ETIMEDOUT, sn_recv(c, m, 20 * MS));
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, m));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		m[0] = 1;
		EXPECT_EQ(0, sn_try_send(p, m));
		m[0] = 2;
		EXPECT_EQ(0, sn_try_send(p, m));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_recv(c, m, SN_NO_WAIT));
		EXPECT_EQ(1, m[0]);
		EXPECT_EQ(0, sn_recv(c, m, 1000 * MS));
		EXPECT_EQ(2, m[0]);
		EXPECT_EQ(-EPIPE, sn_recv(c, m, 1000 * MS));
		EXPECT_EQ(-EPIPE, sn_consumer_wait(c, 1000 * MS));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(0, st.producers_died);
		EXPECT_EQ(0, st.lanes_dead);
		EXPECT_EQ(1, st.ended);
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));

		/* never a producer, then the creator ends it */
		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 16, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, m));
		EXPECT_EQ(0, sn_channel_shutdown(ch));
		EXPECT_EQ(-EPIPE, sn_try_recv(c, m));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, m));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(-EPIPE, sn_try_recv(c, m));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* A producer blocked on a full ring whose consumer dies gets -EPIPE; a new
 * consumer gets everything, and sends work again. */
TEST(producer_sees_consumer_death)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct t_killer k;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u64 m[2] = { 0 }, i, t0;
		pid_t pid;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 4, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		pid = t_spawn(ch, t_child_consumer, NULL);
		ASSERT_LT(0, pid);
		for (m[0] = 0; m[0] < 4; m[0]++)
			ASSERT_EQ(0, sn_try_send(p, m));
		t_kill_later(&k, pid, 200);
		t0 = t_now();
		EXPECT_EQ(-EPIPE, sn_send(p, m, 10000 * MS));
		EXPECT_GT(3000 * MS, t_now() - t0);
		pthread_join(k.th, NULL);
		EXPECT_EQ(-EPIPE, sn_try_send(p, m));
		EXPECT_EQ(-EPIPE, sn_producer_wait(p, 10 * MS));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(1, st.orphaned);
		EXPECT_EQ(1, st.consumers_died);
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (i = 0; i < 4; i++) {
			ASSERT_EQ(0, sn_try_recv(c, m));
			EXPECT_EQ(i, m[0]);
		}
		EXPECT_EQ(0, sn_try_send(p, m));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* SPSC/MPSC: what a dead consumer peeked comes again (at least once). */
TEST(consumer_killed_holding_peek_redelivers)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u64 m[2] = { 0 }, i;
		__u32 two = 2;
		pid_t pid;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 8, .slot_size = 16, .lanes = 2, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		for (m[0] = 0; m[0] < 3; m[0]++)
			ASSERT_EQ(0, sn_try_send(p, m));
		pid = t_spawn(ch, t_child_peeker, &two);
		ASSERT_LT(0, pid);
		ASSERT_EQ(0, t_kill(pid));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (i = 0; i < 3; i++) {
			ASSERT_EQ(0, sn_try_recv(c, m));
			EXPECT_EQ(i, m[0]);
		}
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(2, st.redelivered);
		EXPECT_EQ(1, st.consumers_died);
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* MPMC: a dead consumer's claim is released (its messages counted lost),
 * so the producer blocked on it goes on. */
TEST(mpmc_consumer_killed_holding_claim)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u64 m[2] = { 0 }, i;
		__u32 two = 2;
		pid_t pid;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 4, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (m[0] = 0; m[0] < 4; m[0]++)
			ASSERT_EQ(0, sn_try_send(p, m));
		pid = t_spawn(ch, t_child_peeker, &two);
		ASSERT_LT(0, pid);
		EXPECT_EQ(-EAGAIN, sn_try_send(p, m));
		ASSERT_EQ(0, t_kill(pid));
		/* positions 0 and 1 come free */
		for (i = 4; i < 6; i++) {
			m[0] = i;
			ASSERT_EQ(0, sn_send(p, m, 5000 * MS));
		}
		for (i = 2; i < 6; i++) {
			ASSERT_EQ(0, sn_recv(c, m, 1000 * MS));
			EXPECT_EQ(i, m[0]);
		}
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(1, st.consumers_died);
		EXPECT_EQ(1, st.claims_recovered);
		EXPECT_EQ(2, st.claims_lost);
		EXPECT_EQ(0, st.orphaned);
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/*
 * A child asleep in a long receive (on an empty ring) or, @producer, a long
 * send (on a full ring); the parent sees it asleep in the ring's words.
 */
static pid_t t_fork_sleeper(struct sn_channel *ch, int producer)
{
	struct sn_consumer *c;
	struct sn_producer *p;
	__u64 m[2] = { 0 };
	pid_t pid = fork();

	if (pid)
		return pid;
	if (producer) {
		if (sn_producer_open(ch, &p))
			_exit(1);
		while (sn_try_send(p, m) == 0)
			;
		sn_send(p, m, 60000 * MS);
	} else {
		if (sn_consumer_open(ch, &c))
			_exit(1);
		sn_recv(c, m, 60000 * MS);
	}
	_exit(1);
}

/* The count of a sleep word (memfd keeps a wake sequence above it). */
static __u32 t_count(const struct sn_channel *ch, const __u32 *word)
{
	__u32 v = __atomic_load_n(word, __ATOMIC_ACQUIRE);

	return sn_channel_backend(ch) == SN_BACKEND_MEMFD ? v & 0xffff : v;
}

/* Waits up to 5 s for *@word to count a sleeper. */
static int t_sleeps(const struct sn_channel *ch, const __u32 *word)
{
	__u64 t0 = t_now();

	while (!t_count(ch, word))
		if (t_now() - t0 > 5000 * MS)
			return 0;
		else
			usleep(1000);
	return 1;
}

/*
 * A peer that dies asleep leaves no announcement behind, so publishers do
 * not go on kicking for it: cons waiters (SPSC; MPMC with another consumer
 * alive) and the lane's waiting word come back to zero.
 */
TEST(dead_sleeper_leaves_no_announcement)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 2; t++) {
		struct sn_channel_stats st;
		struct sn_consumer *c = NULL;
		struct sn_producer *p = NULL;
		struct sn_channel *ch;
		struct sn_offsets off;
		__u32 *waiters, *waiting;
		void *base;
		pid_t pid;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 4, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_channel_layout(ch, &base, &off));
		waiters = (__u32 *)((char *)base + off.cons +
				    off.cons_waiters);
		waiting = (__u32 *)((char *)base + off.lane0 +
				    off.prod_waiting);
		if (types[t] == SN_RING_MPMC)	/* another one stays */
			ASSERT_EQ(0, sn_consumer_open(ch, &c));
		pid = t_fork_sleeper(ch, 0);
		ASSERT_LT(0, pid);
		ASSERT_EQ(1, t_sleeps(ch, waiters));
		ASSERT_EQ(0, t_kill(pid));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));	/* memfd looks */
		EXPECT_EQ(0, t_count(ch, waiters));

		if (!c)
			ASSERT_EQ(0, sn_consumer_open(ch, &c));
		pid = t_fork_sleeper(ch, 1);
		ASSERT_LT(0, pid);
		ASSERT_EQ(1, t_sleeps(ch, waiting));
		ASSERT_EQ(0, t_kill(pid));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(0, t_count(ch, waiting));
		/* and the next producer of the lane sleeps and wakes as ever */
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		EXPECT_EQ(-EAGAIN, sn_try_send(p, waiters));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* Two MPMC consumers that die together: both their claims come back. */
TEST(mpmc_consumers_die_together)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, round;

	for (b = 0; b < nb; b++) for (round = 0; round < 10; round++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u64 m[2] = { 0 };
		__u32 one = 1;
		pid_t a, z;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 2, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));	/* not orphaned */
		ASSERT_EQ(0, sn_try_send(p, m));
		ASSERT_EQ(0, sn_try_send(p, m));
		a = t_spawn(ch, t_child_peeker, &one);
		z = t_spawn(ch, t_child_peeker, &one);
		ASSERT_LT(0, a);
		ASSERT_LT(0, z);
		kill(a, SIGKILL);
		kill(z, SIGKILL);
		waitpid(a, NULL, 0);
		waitpid(z, NULL, 0);
		/* both positions come free (memfd: the sleeper looks) */
		EXPECT_EQ(0, sn_send(p, m, 5000 * MS));
		EXPECT_EQ(0, sn_send(p, m, 5000 * MS));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(2, st.claims_lost);
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* A producer open that fails (no fd left) does not revive an ended ring. */
TEST(failed_open_keeps_the_end)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct rlimit old, low;
		struct sn_consumer *c;
		struct sn_producer *p = NULL;
		struct sn_channel *ch;
		__u64 m[2];
		int lowest;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 4, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, sn_channel_shutdown(ch));
		EXPECT_EQ(-EPIPE, sn_try_recv(c, m));
		ASSERT_EQ(0, getrlimit(RLIMIT_NOFILE, &old));
		/* no fd number left: below the lowest free one, all taken */
		lowest = dup(0);
		ASSERT_LE(0, lowest);
		close(lowest);
		low = old;
		low.rlim_cur = (rlim_t)lowest;
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &low));
		EXPECT_EQ(-EMFILE, sn_producer_open(ch, &p));
		ASSERT_EQ(0, setrlimit(RLIMIT_NOFILE, &old));
		if (p)
			sn_producer_close(p);
		EXPECT_EQ(-EPIPE, sn_try_recv(c, m));
		EXPECT_EQ(-EPIPE, sn_recv(c, m, 1000 * MS));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* ---- chaos: many kills under traffic ---- */

#define C_MAXSEQ	4096	/* messages per producer process */
#define C_TIMEOUT	(200 * MS)	/* every blocking call's */
#define C_SLACK		(3000 * MS)	/* how late it may return */

struct c_shared {
	__u32 stop_producers;
	__u32 stop_consumers;
	__u64 errors;
	char why[128];
	__u64 committed[];	/* per producer id; then the counts */
};

struct c_run {
	unsigned int type, lanes, producers, consumers, ids;
	struct sn_channel *ch;
	struct c_shared *sh;
	unsigned char *count;	/* [ids][C_MAXSEQ] */
};

static void c_fail(struct c_shared *sh, const char *what, long v)
{
	if (__atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED) == 0)
		snprintf(sh->why, sizeof(sh->why), "%s (%ld)", what, v);
}

/* A blocking call that returned later than its timeout allows. */
static void c_timed(struct c_shared *sh, __u64 t0, const char *what)
{
	if (t_now() - t0 > C_TIMEOUT + C_SLACK)
		c_fail(sh, what, (long)((t_now() - t0) / MS));
}

/* Opens a handle, retrying while a dead holder's claim is not yet free. */
static int c_open(struct c_run *r, int producer, void **h)
{
	__u64 t0 = t_now();
	int ret;

	do {
		ret = producer ?
			sn_producer_open(r->ch, (struct sn_producer **)h) :
			sn_consumer_open(r->ch, (struct sn_consumer **)h);
		if (ret != -EBUSY && ret != -EUSERS)
			return ret;
		usleep(1000);
	} while (t_now() - t0 < C_TIMEOUT + C_SLACK);
	return ret;
}

static void c_producer(struct c_run *r, __u32 id)
{
	struct c_shared *sh = r->sh;
	struct sn_producer *p;
	unsigned char m[16];
	__u64 seq = 0, t0;
	__u32 pos;
	int n;

	n = c_open(r, 1, (void **)&p);
	if (n) {
		c_fail(sh, "producer open", n);
		return;
	}
	while (!__atomic_load_n(&sh->stop_producers, __ATOMIC_ACQUIRE) &&
	       seq < C_MAXSEQ) {
		t0 = t_now();
		if (seq & 1) {
			t_fill(m, 16, id, seq);
			n = sn_send(p, m, C_TIMEOUT);
			n = n ? n : 1;
		} else {
			n = sn_producer_reserve(p, 2, &pos);
			if (n > 0) {
				t_fill(sn_producer_slot(p, pos), 16, id, seq);
				if (n > 1)
					t_fill(sn_producer_slot(p, pos + 1),
					       16, id, seq + 1);
				sn_producer_commit(p, (__u32)n);
			} else if (n == -EAGAIN) {
				n = sn_producer_wait(p, C_TIMEOUT);
				n = n > 0 ? 0 : n;
			}
		}
		c_timed(sh, t0, "a producer blocked too long");
		if (n > 0) {
			seq += (__u64)n;
			/* after the commit: a kill between the two leaves
			 * one message more than recorded, never fewer */
			__atomic_store_n(&sh->committed[id], seq,
					 __ATOMIC_RELEASE);
		} else if (n == -EPIPE) {
			usleep(500);	/* no consumer this moment */
		} else if (n && n != -ETIMEDOUT) {
			c_fail(sh, "send", n);
		}
	}
	sn_producer_close(p);
}

static void c_consumer(struct c_run *r)
{
	struct c_shared *sh = r->sh;
	__u64 *last = calloc(r->ids, sizeof(*last)), seq, t0;
	struct sn_consumer *c;
	__u32 pos, prod;
	int n, i;

	n = c_open(r, 0, (void **)&c);
	if (n || !last) {
		c_fail(sh, "consumer open", n);
		return;
	}
	for (;;) {
		n = sn_consumer_peek(c, 4, &pos);
		for (i = 0; i < n; i++) {
			if (t_check(sn_consumer_slot(c, pos + (__u32)i), 16,
				    &prod, &seq) || prod >= r->ids ||
			    seq >= C_MAXSEQ) {
				c_fail(sh, "garbled", (long)seq);
				continue;
			}
			/* each consumer sees a producer's messages in order */
			if (seq < last[prod])
				c_fail(sh, "out of order", (long)seq);
			last[prod] = seq + 1;
			/* counted before the release: a kill in between
			 * delivers it again (SPSC/MPSC) or counts it lost
			 * (MPMC) */
			__atomic_fetch_add(&r->count[prod * C_MAXSEQ + seq], 1,
					   __ATOMIC_RELAXED);
		}
		if (n > 0) {
			sn_consumer_advance(c, (__u32)n);
			continue;
		}
		if (n == -EAGAIN) {
			t0 = t_now();
			n = sn_consumer_wait(c, C_TIMEOUT);
			c_timed(sh, t0, "a consumer blocked too long");
			if (n == 1 || n == -ETIMEDOUT || n == -EPIPE)
				continue;
		}
		if (n != -EPIPE) {
			c_fail(sh, "receive", n);
			break;
		}
		if (__atomic_load_n(&sh->stop_consumers, __ATOMIC_ACQUIRE))
			break;
		usleep(500);	/* no producer this moment */
	}
	sn_consumer_close(c);
	free(last);
}

/* Whether /proc/sn/rings lists ring @id (the kernel backend's rings). */
static int c_listed(__u64 id)
{
	FILE *f = fopen("/proc/sn/rings", "r");
	char line[512];
	int found = 0;

	while (f && fgets(line, sizeof(line), f))
		found |= line[0] != '#' && strtoull(line, NULL, 10) == id;
	if (f)
		fclose(f);
	return found;
}

static pid_t c_start(struct c_run *r, int producer, __u32 id)
{
	pid_t pid = fork();

	if (pid == 0) {
		if (producer)
			c_producer(r, id);
		else
			c_consumer(r);
		_exit(0);
	}
	return pid;
}

/* Waits for @pid at most @ns; kills it if it does not end. */
static int c_reap(pid_t pid, __u64 ns)
{
	__u64 t0 = t_now();
	int status;

	while (t_now() - t0 < ns) {
		if (waitpid(pid, &status, WNOHANG) == pid)
			return WIFEXITED(status) && !WEXITSTATUS(status) ? 0 : -1;
		usleep(2000);
	}
	kill(pid, SIGKILL);
	waitpid(pid, &status, 0);
	return -1;
}

static void c_chaos(struct __test_metadata *_metadata, unsigned int type,
		   unsigned int flags, unsigned int kills)
{
	struct c_run r = { .type = type };
	unsigned int k, i, next_id, ckills = 0;
	struct sn_channel_stats st;
	struct sn_channel_info info;
	pid_t prod[4], cons[2];
	__u64 missing = 0, dups = 0, seq, done;
	size_t shsize;
	int nfd = t_fd_count();

	r.producers = type == SN_RING_SPSC ? 1 : 3;
	r.lanes = type == SN_RING_SPSC ? 1 : 4;
	r.consumers = type == SN_RING_MPMC ? 2 : 1;
	r.ids = kills + r.producers;
	shsize = sizeof(*r.sh) + r.ids * sizeof(__u64) +
		 (size_t)r.ids * C_MAXSEQ;
	r.sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
		    MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, r.sh);
	r.count = (unsigned char *)&r.sh->committed[r.ids];
	ASSERT_EQ(0, sn_channel_create(&r.ch, SN_CHANNEL_OPTS(.type = type, .slots = 64, .slot_size = 16, .lanes = r.lanes, .flags = flags)));
	srand(type * 7919 + flags);
	for (i = 0; i < r.producers; i++)
		prod[i] = c_start(&r, 1, i);
	next_id = r.producers;
	for (i = 0; i < r.consumers; i++)
		cons[i] = c_start(&r, 0, 0);
	for (k = 0; k < kills && !r.sh->errors; k++) {
		pid_t *victim;
		int producer = rand() % 2;

		usleep((unsigned int)(rand() % 3000));
		i = (unsigned int)rand() % (producer ? r.producers :
					    r.consumers);
		victim = producer ? &prod[i] : &cons[i];
		kill(*victim, SIGKILL);
		waitpid(*victim, NULL, 0);
		ckills += !producer;
		*victim = producer ? c_start(&r, 1, next_id++) :
			  c_start(&r, 0, 0);
	}
	/* the end: producers finish and close, consumers drain to -EPIPE */
	__atomic_store_n(&r.sh->stop_producers, 1, __ATOMIC_RELEASE);
	for (i = 0; i < r.producers; i++)
		EXPECT_EQ(0, c_reap(prod[i], 10000 * MS));
	__atomic_store_n(&r.sh->stop_consumers, 1, __ATOMIC_RELEASE);
	for (i = 0; i < r.consumers; i++)
		EXPECT_EQ(0, c_reap(cons[i], 10000 * MS));
	EXPECT_EQ(0, r.sh->errors) {
		TH_LOG("%s", r.sh->why);
	}
	ASSERT_EQ(0, sn_channel_stats(r.ch, &st));
	EXPECT_EQ(0, st.depth);
	EXPECT_EQ(0, st.lanes_live);
	EXPECT_EQ(1, st.ended);
	for (i = 0, done = 0; i < next_id; i++) {
		done += r.sh->committed[i];
		for (seq = 0; seq < C_MAXSEQ; seq++) {
			unsigned char n = r.count[i * C_MAXSEQ + seq];

			missing += seq < r.sh->committed[i] && !n;
			dups += n > 1 ? n - 1U : 0;
		}
	}
	TH_LOG("%u kills (%u consumers), %llu committed, %llu missing, %llu duplicates, %llu redelivered, %llu lost in claims, %llu reserved lost",
	       kills, ckills, (unsigned long long)done,
	       (unsigned long long)missing, (unsigned long long)dups,
	       (unsigned long long)st.redelivered,
	       (unsigned long long)st.claims_lost,
	       (unsigned long long)st.reserved_lost);
	if (type == SN_RING_MPMC) {
		/* at most once: lost only in a dead consumer's claim */
		EXPECT_EQ(0, dups);
		EXPECT_GE(st.claims_lost, missing);
	} else {
		/* at least once: again only what a dead consumer peeked */
		EXPECT_EQ(0, missing);
		EXPECT_EQ(0, st.claims_lost);
		EXPECT_GE(st.redelivered, dups);
		EXPECT_GE(ckills * 4ULL, st.redelivered);
	}
	EXPECT_LT(0, done);
	ASSERT_EQ(0, sn_channel_info(r.ch, &info));
	EXPECT_EQ(0, sn_channel_close(r.ch));
	/* every fd gone: the ring is freed (and its memory uncharged) */
	EXPECT_EQ(nfd, t_fd_count());
	if (info.backend == SN_BACKEND_KERNEL)
		EXPECT_EQ(0, c_listed(info.id));
	munmap(r.sh, shsize);
}

FIXTURE(chaos) {
};

FIXTURE_VARIANT(chaos) {
	unsigned int type;
};

FIXTURE_VARIANT_ADD(chaos, spsc) { .type = SN_RING_SPSC };
FIXTURE_VARIANT_ADD(chaos, mpsc) { .type = SN_RING_MPSC };
FIXTURE_VARIANT_ADD(chaos, mpmc) { .type = SN_RING_MPMC };

FIXTURE_SETUP(chaos)
{
}

FIXTURE_TEARDOWN(chaos)
{
}

/* 1000 kills per type and backend at full scale. */
TEST_F_TIMEOUT(chaos, kill9, 600)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++)
		c_chaos(_metadata, variant->type, flags[b],
			(unsigned int)t_scaled(1000));
}

TEST_HARNESS_MAIN
