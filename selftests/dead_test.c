// SPDX-License-Identifier: GPL-2.0
/*
 * Dead peers (include/uapi/linux/sn.h, "Dead peers"): producer and consumer
 * fds whose processes are killed with SIGKILL at chosen points, and what
 * sn.ko makes of them: lanes_live and lanes_dead, the peer statistics, the
 * end of stream (SN_KFLAG_NO_PRODUCER, EPOLLHUP) and of consumers
 * (SN_KFLAG_NO_CONSUMER, EPOLLERR), and the recovery of a dead MPMC
 * consumer's claim record, lying records included. Raw ioctls and mmaps
 * (raw_ring.h), no libsn. Runs in the guests with sn.ko loaded.
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdatomic.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include "kselftest_harness.h"
#include "need_module.h"
#include "raw_ring.h"

/* A sleeper must wake within this of its peer's death. */
#define WAKE_NS		1000000000ULL

static volatile struct sn_kpage *kpage_of(struct view *v)
{
	return (volatile struct sn_kpage *)(v->base + v->i.off.kpage);
}

static struct sn_claim *claim_of(struct view *v, __u32 idx)
{
	return (struct sn_claim *)(v->base + v->i.off.cons + v->i.off.cons_claims +
				   (__u64)idx * SN_PAD);
}

static _Atomic __u32 *state_of(struct sn_claim *c)
{
	return (_Atomic __u32 *)&c->state;
}

static _Atomic __u64 *reserved_of(struct view *v, __u32 lane)
{
	return (_Atomic __u64 *)(v->base + v->i.off.lane0 +
				 lane * v->i.off.lane_size + v->i.off.prod_stats +
				 offsetof(struct sn_prod_stats, reserved));
}

/* Publishes @n messages on @lane, numbered from the tail (no room check). */
static void produce(struct view *v, __u32 lane, __u32 n)
{
	for (__u32 k = 0; k < n; k++) {
		__u32 t = atomic_load(tail_of(v, lane));

		*slot_of(v, lane, t) = 1000 + t;
		atomic_store_explicit(tail_of(v, lane), t + 1,
				      memory_order_release);
	}
}

/*
 * MPMC: claims @n positions of @lane the way the header says, through
 * record @c: INTENT with release [D1], head CAS [D2], HELD. Returns the
 * first position, or -1 if the CAS lost.
 */
static long long claim(struct view *v, struct sn_claim *c, __u32 lane,
		       __u32 n)
{
	__u32 h = atomic_load(head_of(v, lane));

	c->lane = lane;
	c->pos = h;
	c->n = n;
	atomic_store_explicit(state_of(c), SN_CLAIM_INTENT, memory_order_release);
	if (!atomic_compare_exchange_strong_explicit(head_of(v, lane), &h, h + n,
						     memory_order_acq_rel,
						     memory_order_acquire)) {
		atomic_store_explicit(state_of(c), SN_CLAIM_IDLE,
				      memory_order_release);
		return -1;
	}
	atomic_store_explicit(state_of(c), SN_CLAIM_HELD, memory_order_release);
	return c->pos;
}

/* Releases what record @c holds, then IDLE [D3]. */
static void unclaim(struct view *v, struct sn_claim *c)
{
	for (__u32 k = 0; k < c->n; k++)
		atomic_store_explicit(release_of(v, c->lane, c->pos + k),
				      c->pos + k + v->i.slots,
				      memory_order_release);
	atomic_store_explicit(state_of(c), SN_CLAIM_IDLE, memory_order_release);
}

/* The record a child took: the bit of claims_live that was not in @before. */
static __u32 new_idx(struct view *v, __u64 before)
{
	__u64 now = kpage_of(v)->claims_live & ~before;

	return now ? (__u32)__builtin_ctzll(now) : SN_CLAIM_NONE;
}

/* poll_mask() with EPOLLRDHUP asked for (poll reports it only then). */
static short pmask(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT | POLLRDHUP };

	return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

static __u32 claim_idx(int fd)
{
	struct sn_info i;

	return info(fd, &i) ? SN_CLAIM_NONE - 1 : i.claim;
}

/*
 * Runs @fn in a child, which reports readiness through a pipe and then
 * waits to be killed. Returns its pid, or -1 if @fn failed.
 */
static pid_t spawn(int (*fn)(void *), void *arg)
{
	int pfd[2];
	pid_t pid;
	char c;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		int r;

		close(pfd[0]);
		r = fn(arg);
		if (r)
			_exit(r);
		if (write(pfd[1], "x", 1) != 1)
			_exit(99);
		for (;;)
			pause();
	}
	close(pfd[1]);
	if (pid < 0 || read(pfd[0], &c, 1) != 1) {
		close(pfd[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return -1;
	}
	close(pfd[0]);
	return pid;
}

/* SIGKILL and reap: the child's fds are released when waitpid returns. */
static void kill_wait(pid_t pid)
{
	kill(pid, SIGKILL);
	waitpid(pid, NULL, 0);
}

/* Kills a child after a delay, while the test sleeps in poll. */
struct killer {
	pid_t pid;
	unsigned int ms;
	__u64 at;
	pthread_t t;
};

static void *killer_fn(void *arg)
{
	struct killer *k = arg;

	usleep(k->ms * 1000);
	k->at = t_now();
	kill(k->pid, SIGKILL);
	return NULL;
}

static void killer_start(struct killer *k, pid_t pid, unsigned int ms)
{
	k->pid = pid;
	k->ms = ms;
	k->at = 0;
	pthread_create(&k->t, NULL, killer_fn, k);
}

/* Joins the killer and reaps; returns the ns from the kill to @woke. */
static __u64 killer_end(struct killer *k, __u64 woke)
{
	pthread_join(k->t, NULL);
	waitpid(k->pid, NULL, 0);
	return woke - k->at;
}

struct child {
	struct view *v;
	int full;
	__u32 role;
	__u32 lane;
	__u32 n;		/* messages or positions */
	__u64 reserved;
	int kind;		/* what the MPMC consumer writes in its record */
	int fd;			/* what it narrowed (in the child) */
	__u32 idx;		/* its claim record (in the child) */
};

static int producer_child(void *arg)
{
	struct child *c = arg;

	c->fd = narrow(c->full, SN_ROLE_PRODUCER, c->lane);
	if (c->fd < 0)
		return 10;
	produce(c->v, c->lane == SN_LANE_ANY ? 0 : c->lane, c->n);
	atomic_store(reserved_of(c->v, c->lane == SN_LANE_ANY ? 0 : c->lane),
		     c->reserved);
	return 0;
}

static int consumer_child(void *arg)
{
	struct child *c = arg;

	c->fd = narrow(c->full, SN_ROLE_CONSUMER, 0);
	return c->fd < 0 ? 11 : 0;
}

enum { K_HELD, K_STALE_INTENT, K_LIES };

/* An MPMC consumer that dies holding what @kind says. */
static int mpmc_child(void *arg)
{
	struct child *c = arg;
	struct sn_claim *r;

	c->fd = narrow(c->full, SN_ROLE_CONSUMER, 0);
	if (c->fd < 0)
		return 12;
	c->idx = claim_idx(c->fd);
	if (c->idx >= SN_MAX_CLAIMS)
		return 13;
	r = claim_of(c->v, c->idx);
	switch (c->kind) {
	case K_HELD:
		if (claim(c->v, r, c->lane, c->n) < 0)
			return 14;
		break;
	case K_STALE_INTENT:
		/* Read the head at 0, lost the CAS, died before IDLE. */
		r->lane = c->lane;
		r->pos = 0;
		r->n = c->n;
		atomic_store(state_of(r), SN_CLAIM_INTENT);
		break;
	default:
		break;
	}
	return 0;
}

/* Several records of lies from one dying process. */
static int liar_child(void *arg)
{
	static const struct sn_claim lies[] = {
		{ SN_CLAIM_HELD, 99, 0, 4, 0 },		/* lane out of range */
		{ SN_CLAIM_HELD, 1, 0, 0xffffffffU, 0 },	/* n huge */
		{ 7, 1, 0, 4, 0 },				/* garbage state */
		{ SN_CLAIM_HELD, 1, 0x7fffffffU, 8, 0 },	/* far ahead */
		{ SN_CLAIM_INTENT, 0xffffffffU, 0xfffffff0U, 0, 0 },
	};
	struct child *c = arg;

	for (unsigned int k = 0; k < sizeof(lies) / sizeof(lies[0]); k++) {
		int fd = narrow(c->full, SN_ROLE_CONSUMER, 0);
		__u32 idx = claim_idx(fd);

		if (fd < 0 || idx >= SN_MAX_CLAIMS)
			return 15;
		*claim_of(c->v, idx) = lies[k];
	}
	return 0;
}

static int ring_open(struct view *v, __u32 type, __u32 slots, __u32 lanes)
{
	int fd = create_simple(type, 8, slots, lanes);

	if (fd < 0 || view_open(v, fd))
		return -1;
	return fd;
}

static void ring_close(struct view *v, int fd)
{
	munmap(v->base, v->i.off.map_size);
	close(fd);
}

TEST(dead_producer)
{
	struct view v;
	int full = ring_open(&v, SN_RING_SPSC, 16, 1), prod, cons;
	struct child c;
	__u64 msg;
	pid_t pid;

	ASSERT_LE(0, full);
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	c = (struct child){ .v = &v, .full = full, .lane = SN_LANE_ANY,
			    .n = 3, .reserved = 3 };
	pid = spawn(producer_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(1, kpage_of(&v)->lanes_live);
	EXPECT_EQ(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	kill_wait(pid);

	EXPECT_EQ(0, kpage_of(&v)->lanes_live);
	EXPECT_EQ(1, kpage_of(&v)->lanes_dead);
	EXPECT_EQ(1, kpage_of(&v)->peers.producers_died);
	EXPECT_EQ(0, kpage_of(&v)->peers.consumers_died);
	EXPECT_EQ(3, kpage_of(&v)->peers.reserved_lost);
	EXPECT_EQ(0, atomic_load(reserved_of(&v, 0)));
	EXPECT_NE(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	EXPECT_EQ(1, listing_field(v.i.id, F_LANES_DEAD));
	EXPECT_EQ(0, listing_field(v.i.id, F_LANES_LIVE));
	EXPECT_EQ(1, listing_field(v.i.id, F_PRODUCERS_DIED));
	EXPECT_EQ(3, listing_field(v.i.id, F_RESERVED_LOST));
	EXPECT_EQ(1, listing_field(v.i.id, F_ENDED));
	EXPECT_EQ(0, listing_field(v.i.id, F_ORPHANED));

	/* What it committed is still there, in order. */
	for (__u32 k = 0; k < 3; k++) {
		ASSERT_TRUE(raw_recv(&v, &msg));
		EXPECT_EQ(1000 + k, msg);
	}
	EXPECT_FALSE(raw_recv(&v, &msg));

	/* The lane is free again and continues from its tail. */
	prod = narrow(full, SN_ROLE_PRODUCER, SN_LANE_ANY);
	ASSERT_LE(0, prod);
	EXPECT_EQ(1, kpage_of(&v)->lanes_live);
	EXPECT_EQ(0, kpage_of(&v)->lanes_dead);
	EXPECT_EQ(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	EXPECT_EQ(3, atomic_load(tail_of(&v, 0)));
	EXPECT_TRUE(raw_send(&v, 7));
	EXPECT_TRUE(raw_recv(&v, &msg));
	EXPECT_EQ(7, msg);
	close(prod);
	close(cons);
	ring_close(&v, full);
}

/*
 * Format 3: a producer that stored its slots' seq words and went before it
 * stored the tail committed them all the same: the kernel moves the tail
 * past them when the fd goes (up to the first slot not committed), so
 * poll, the listing and MPMC consumers see them.
 */
TEST(dead_producer_commits_past_tail)
{
	struct sn_create p = params(SN_RING_MPMC, 8, 16, 2);
	struct view v;
	int full, prod, cons;

	p.flags |= SN_CREATE_FORMAT3 | SN_CREATE_ASYM;
	full = create(&p);
	ASSERT_LE(0, full);
	ASSERT_EQ(0, view_open(&v, full));
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	prod = narrow(full, SN_ROLE_PRODUCER, 1);
	ASSERT_LE(0, cons);
	ASSERT_LE(0, prod);
	for (__u32 pos = 0; pos < 5; pos++) {
		struct sn_slot *s = (struct sn_slot *)
			(v.base + v.i.off.lane0 + v.i.off.lane_size +
			 v.i.off.slots + pos * v.i.off.stride);

		*(__u64 *)(s + 1) = 1000 + pos;
		s->len = 8;
		/* 0, 1, 2 committed; 3 not; 4 committed: beyond the gap */
		if (pos != 3)
			atomic_store((_Atomic __u32 *)&s->seq, pos + 1);
	}
	EXPECT_EQ(0, atomic_load(tail_of(&v, 1)));
	EXPECT_EQ(0, poll_mask(cons) & POLLIN);
	close(prod);
	EXPECT_EQ(3, atomic_load(tail_of(&v, 1)));
	EXPECT_EQ(0, atomic_load(tail_of(&v, 0)));
	EXPECT_NE(0, poll_mask(cons) & POLLIN);
	EXPECT_NE(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	/* a new producer of the lane goes on from there */
	prod = narrow(full, SN_ROLE_PRODUCER, 1);
	ASSERT_LE(0, prod);
	EXPECT_EQ(3, atomic_load(tail_of(&v, 1)));
	close(prod);
	EXPECT_EQ(3, atomic_load(tail_of(&v, 1)));
	close(cons);
	ring_close(&v, full);
}

TEST(clean_close_is_not_death)
{
	struct view v;
	int full = ring_open(&v, SN_RING_MPSC, 16, 2), prod;

	ASSERT_LE(0, full);
	prod = narrow(full, SN_ROLE_PRODUCER, 1);
	ASSERT_LE(0, prod);
	atomic_store(reserved_of(&v, 1), 2);
	close(prod);
	EXPECT_EQ(0, kpage_of(&v)->lanes_live);
	EXPECT_EQ(0, kpage_of(&v)->lanes_dead);
	EXPECT_EQ(0, kpage_of(&v)->peers.producers_died);
	/* Reserved and never committed is lost however the fd went. */
	EXPECT_EQ(2, kpage_of(&v)->peers.reserved_lost);
	/* Producers existed and all went: the stream ended. */
	EXPECT_NE(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	EXPECT_EQ(0, listing_field(v.i.id, F_PRODUCERS_DIED));
	ring_close(&v, full);
}

TEST(eos_wakes_poller)
{
	struct view v;
	int full = ring_open(&v, SN_RING_SPSC, 16, 1), cons;
	struct pollfd p;
	struct killer k;
	struct child c;
	__u64 msg, woke;
	pid_t pid;

	ASSERT_LE(0, full);
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	c = (struct child){ .v = &v, .full = full, .lane = 0 };
	pid = spawn(producer_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, poll_mask(cons));

	killer_start(&k, pid, 100);
	p = (struct pollfd){ .fd = cons, .events = POLLIN | POLLRDHUP };
	EXPECT_EQ(1, poll(&p, 1, 10000));
	woke = t_now();
	EXPECT_GT(WAKE_NS, killer_end(&k, woke));
	EXPECT_EQ(POLLHUP | POLLRDHUP, p.revents & (POLLHUP | POLLRDHUP));
	EXPECT_EQ(0, p.revents & POLLIN);
	/* The full fd reads too: it hangs up as well. */
	EXPECT_NE(0, pmask(full) & POLLHUP);

	/* With messages left, EPOLLIN as well, as a pipe. */
	c.n = 2;
	pid = spawn(producer_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	EXPECT_EQ(POLLIN, poll_mask(cons));
	kill_wait(pid);
	EXPECT_EQ(POLLIN | POLLHUP | POLLRDHUP, pmask(cons));
	EXPECT_TRUE(raw_recv(&v, &msg));
	EXPECT_TRUE(raw_recv(&v, &msg));
	EXPECT_EQ(POLLHUP | POLLRDHUP, pmask(cons));
	EXPECT_EQ(2, kpage_of(&v)->peers.producers_died);
	close(cons);
	ring_close(&v, full);
}

TEST(shutdown)
{
	struct view v;
	int full = ring_open(&v, SN_RING_MPSC, 16, 2), cons, prod;
	struct pollfd p;

	ASSERT_LE(0, full);
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	/* Never had a producer: not ended, producers may come later. */
	EXPECT_EQ(0, pmask(cons) & (POLLHUP | POLLRDHUP));
	EXPECT_EQ(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);

	prod = narrow(full, SN_ROLE_PRODUCER, 0);
	ASSERT_LE(0, prod);
	EXPECT_EQ(-1, ioctl(prod, SN_IOC_SHUTDOWN, SN_SHUT_PRODUCERS));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(cons, SN_IOC_SHUTDOWN, SN_SHUT_PRODUCERS));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(-1, ioctl(full, SN_IOC_SHUTDOWN, 0));
	EXPECT_EQ(EINVAL, errno);
	EXPECT_EQ(-1, ioctl(full, SN_IOC_SHUTDOWN, 2));
	EXPECT_EQ(EINVAL, errno);
	close(prod);
	/* Had one: ended when it went. */
	EXPECT_EQ(POLLHUP | POLLRDHUP, pmask(cons) & (POLLHUP | POLLRDHUP));
	ring_close(&v, full);
	close(cons);

	full = ring_open(&v, SN_RING_SPSC, 16, 1);
	ASSERT_LE(0, full);
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	EXPECT_EQ(0, poll_mask(cons));
	/* Shutdown with no producer ever: ended at once. */
	EXPECT_EQ(0, ioctl(full, SN_IOC_SHUTDOWN, SN_SHUT_PRODUCERS));
	EXPECT_NE(0, kflags_of(&v) & SN_KFLAG_NO_PRODUCER);
	p = (struct pollfd){ .fd = cons, .events = POLLIN | POLLRDHUP };
	EXPECT_EQ(1, poll(&p, 1, 1000));
	EXPECT_EQ(POLLHUP | POLLRDHUP, p.revents);
	EXPECT_EQ(1, listing_field(v.i.id, F_ENDED));
	/* A new producer clears it; its close ends the stream again. */
	prod = narrow(full, SN_ROLE_PRODUCER, 0);
	ASSERT_LE(0, prod);
	EXPECT_EQ(0, pmask(cons));
	EXPECT_EQ(0, listing_field(v.i.id, F_ENDED));
	close(prod);
	EXPECT_EQ(POLLHUP | POLLRDHUP, pmask(cons));
	EXPECT_EQ(0, kpage_of(&v)->peers.producers_died);
	close(cons);
	ring_close(&v, full);
}

TEST(no_consumer)
{
	struct view v;
	int full = ring_open(&v, SN_RING_SPSC, 4, 1), prod, cons;
	struct pollfd p;
	struct killer k;
	struct child c;
	pid_t pid;

	ASSERT_LE(0, full);
	prod = narrow(full, SN_ROLE_PRODUCER, 0);
	ASSERT_LE(0, prod);
	/* No consumer ever: not orphaned. */
	EXPECT_EQ(POLLOUT, poll_mask(prod));
	c = (struct child){ .v = &v, .full = full };
	pid = spawn(consumer_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(-EBUSY, narrow(full, SN_ROLE_CONSUMER, 0));
	/* Full lane: the producer sleeps until the consumer dies. */
	produce(&v, 0, 4);
	EXPECT_EQ(0, poll_mask(prod));
	killer_start(&k, pid, 100);
	p = (struct pollfd){ .fd = prod, .events = POLLOUT };
	EXPECT_EQ(1, poll(&p, 1, 10000));
	EXPECT_GT(WAKE_NS, killer_end(&k, t_now()));
	EXPECT_EQ(POLLERR, p.revents);
	EXPECT_NE(0, kflags_of(&v) & SN_KFLAG_NO_CONSUMER);
	EXPECT_NE(0, poll_mask(full) & POLLERR);
	EXPECT_EQ(1, kpage_of(&v)->peers.consumers_died);
	EXPECT_EQ(1, listing_field(v.i.id, F_ORPHANED));
	EXPECT_EQ(1, listing_field(v.i.id, F_CONSUMERS_DIED));

	/* The consumer claim is free again; a new consumer clears it. */
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	EXPECT_EQ(0, kflags_of(&v) & SN_KFLAG_NO_CONSUMER);
	EXPECT_EQ(0, poll_mask(prod));
	EXPECT_EQ(0, listing_field(v.i.id, F_ORPHANED));
	close(cons);
	EXPECT_EQ(POLLERR, poll_mask(prod));
	EXPECT_EQ(1, kpage_of(&v)->peers.consumers_died);
	close(prod);
	ring_close(&v, full);
}

/* An MPMC ring with lane 1 full (8 messages) and a producer fd on it. */
struct mpmc {
	struct view v;
	int full, prod;
};

static int mpmc_open(struct mpmc *m)
{
	m->full = ring_open(&m->v, SN_RING_MPMC, 8, 2);
	if (m->full < 0)
		return -1;
	m->prod = narrow(m->full, SN_ROLE_PRODUCER, 1);
	if (m->prod < 0)
		return -1;
	produce(&m->v, 1, 8);
	return 0;
}

static void mpmc_close(struct mpmc *m)
{
	close(m->prod);
	ring_close(&m->v, m->full);
}

static __u32 rel(struct mpmc *m, __u32 pos)
{
	return atomic_load(release_of(&m->v, 1, pos));
}

TEST(mpmc_dead_consumer)
{
	struct mpmc m;
	struct pollfd p;
	struct killer k;
	struct child c;
	int idle;
	pid_t pid;

	ASSERT_EQ(0, mpmc_open(&m));
	/* Another consumer lives on (idle): no NO_CONSUMER to confuse. */
	idle = narrow(m.full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, idle);
	EXPECT_EQ(0, claim_idx(idle));
	c = (struct child){ .v = &m.v, .full = m.full, .lane = 1, .n = 3,
			    .kind = K_HELD };
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(3, atomic_load(head_of(&m.v, 1)));
	EXPECT_EQ(3, kpage_of(&m.v)->claims_live);
	/* Lane full: position 8 needs release[0] == 8. */
	EXPECT_EQ(0, poll_mask(m.prod));

	killer_start(&k, pid, 100);
	p = (struct pollfd){ .fd = m.prod, .events = POLLOUT };
	EXPECT_EQ(1, poll(&p, 1, 10000));
	EXPECT_GT(WAKE_NS, killer_end(&k, t_now()));
	EXPECT_EQ(POLLOUT, p.revents);

	for (__u32 pos = 0; pos < 8; pos++)
		EXPECT_EQ(pos < 3 ? pos + 8 : pos, rel(&m, pos));
	EXPECT_EQ(3, kpage_of(&m.v)->peers.claims_lost);
	EXPECT_EQ(1, kpage_of(&m.v)->peers.claims_recovered);
	EXPECT_EQ(1, kpage_of(&m.v)->peers.consumers_died);
	EXPECT_EQ(1, kpage_of(&m.v)->claims_live);
	EXPECT_EQ(3, listing_field(m.v.i.id, F_CLAIMS_LOST));
	EXPECT_EQ(1, listing_field(m.v.i.id, F_CLAIMS_RECOVERED));
	EXPECT_EQ(1, listing_field(m.v.i.id, F_CONSUMERS_DIED));
	EXPECT_EQ(0, kflags_of(&m.v) & SN_KFLAG_NO_CONSUMER);
	close(idle);
	EXPECT_NE(0, kflags_of(&m.v) & SN_KFLAG_NO_CONSUMER);
	EXPECT_EQ(1, kpage_of(&m.v)->peers.consumers_died);
	mpmc_close(&m);
}

/* A stale INTENT of a lost CAS must not release a live consumer's HELD. */
TEST(mpmc_stale_intent)
{
	struct mpmc m;
	struct child c;
	__u32 dead;
	__u64 before;
	int cons;
	pid_t pid;

	ASSERT_EQ(0, mpmc_open(&m));
	cons = narrow(m.full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	struct sn_claim *mine = claim_of(&m.v, claim_idx(cons));

	c = (struct child){ .v = &m.v, .full = m.full, .lane = 1, .n = 3,
			    .kind = K_STALE_INTENT };
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, claim(&m.v, mine, 1, 3));
	kill_wait(pid);
	for (__u32 pos = 0; pos < 8; pos++)
		EXPECT_EQ(pos, rel(&m, pos));
	EXPECT_EQ(0, kpage_of(&m.v)->peers.claims_lost);
	EXPECT_EQ(1, kpage_of(&m.v)->peers.consumers_died);

	/* A dead record claiming HELD over the live one's: the same. */
	c.kind = K_HELD;
	c.n = 2;
	before = kpage_of(&m.v)->claims_live;
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(5, atomic_load(head_of(&m.v, 1)));
	dead = new_idx(&m.v, before);
	ASSERT_GT(SN_MAX_CLAIMS, dead);
	claim_of(&m.v, dead)->pos = 1;	/* its record lies */
	kill_wait(pid);
	/* [1, 3) is the live one's; the lie loses [3, 5) for good. */
	for (__u32 pos = 0; pos < 8; pos++)
		EXPECT_EQ(pos, rel(&m, pos));
	EXPECT_EQ(0, kpage_of(&m.v)->peers.claims_lost);

	unclaim(&m.v, mine);
	for (__u32 pos = 0; pos < 3; pos++)
		EXPECT_EQ(pos + 8, rel(&m, pos));
	close(cons);
	mpmc_close(&m);
}

TEST(mpmc_lying_records)
{
	struct mpmc m;
	struct child c;
	pid_t pid;

	ASSERT_EQ(0, mpmc_open(&m));
	c = (struct child){ .v = &m.v, .full = m.full };
	pid = spawn(liar_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(0x1f, kpage_of(&m.v)->claims_live);
	kill_wait(pid);
	for (__u32 pos = 0; pos < 8; pos++)
		EXPECT_EQ(pos, rel(&m, pos));
	for (__u32 pos = 0; pos < 8; pos++)
		EXPECT_EQ(pos, atomic_load(release_of(&m.v, 0, pos)));
	EXPECT_EQ(0, kpage_of(&m.v)->peers.claims_lost);
	EXPECT_EQ(0, kpage_of(&m.v)->peers.claims_recovered);
	EXPECT_EQ(5, kpage_of(&m.v)->peers.consumers_died);
	EXPECT_EQ(0, kpage_of(&m.v)->claims_live);

	/* Lies beside a real claim: only the real positions come back. */
	c = (struct child){ .v = &m.v, .full = m.full, .lane = 1, .n = 2,
			    .kind = K_HELD };
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	ASSERT_GT(SN_MAX_CLAIMS, new_idx(&m.v, 0));
	struct sn_claim *r = claim_of(&m.v, new_idx(&m.v, 0));

	r->n = 0xffffffffU;	/* clamped to slots: [0, 8), head at 2 */
	kill_wait(pid);
	for (__u32 pos = 0; pos < 8; pos++)
		EXPECT_EQ(pos < 2 ? pos + 8 : pos, rel(&m, pos));
	EXPECT_EQ(2, kpage_of(&m.v)->peers.claims_lost);
	mpmc_close(&m);
}

/* A live INTENT over a dead record's positions defers their recovery. */
TEST(mpmc_deferred)
{
	struct mpmc m;
	struct child c;
	int cons, other;
	__u64 before;
	__u32 dead;
	pid_t pid;

	ASSERT_EQ(0, mpmc_open(&m));
	cons = narrow(m.full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	struct sn_claim *mine = claim_of(&m.v, claim_idx(cons));

	c = (struct child){ .v = &m.v, .full = m.full, .lane = 1, .n = 3,
			    .kind = K_HELD };
	before = kpage_of(&m.v)->claims_live;
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	dead = new_idx(&m.v, before);
	ASSERT_GT(SN_MAX_CLAIMS, dead);
	/* The live one read a stale head 1 and is about to CAS [1, 4). */
	mine->lane = 1;
	mine->pos = 1;
	mine->n = 3;
	atomic_store(state_of(mine), SN_CLAIM_INTENT);
	kill_wait(pid);
	/* Position 0 is not covered: released now; 1 and 2 wait. */
	EXPECT_EQ(8, rel(&m, 0));
	EXPECT_EQ(1, rel(&m, 1));
	EXPECT_EQ(2, rel(&m, 2));
	EXPECT_EQ(1, kpage_of(&m.v)->peers.claims_lost);
	usleep(50000);
	EXPECT_EQ(1, rel(&m, 1));
	/* The dead one's index stays reserved meanwhile. */
	other = narrow(m.full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, other);
	EXPECT_NE(dead, claim_idx(other));
	EXPECT_EQ(0, kpage_of(&m.v)->claims_live & (1ULL << dead));
	close(other);

	/* Someone released 2 meanwhile: the kernel must not again. */
	atomic_store(release_of(&m.v, 1, 2), 2 + 8);
	/* The CAS lost (the head is at 3): IDLE. */
	atomic_store(state_of(mine), SN_CLAIM_IDLE);
	EXPECT_TRUE(WAIT_FOR(rel(&m, 1) == 9));
	EXPECT_TRUE(WAIT_FOR(kpage_of(&m.v)->peers.claims_lost == 2));
	EXPECT_EQ(10, rel(&m, 2));
	EXPECT_EQ(1, kpage_of(&m.v)->peers.claims_recovered);
	/* Recovered: its index may be handed out again, reset to IDLE. */
	claim_of(&m.v, dead)->state = SN_CLAIM_HELD;
	other = narrow(m.full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, other);
	EXPECT_EQ(dead, claim_idx(other));
	EXPECT_EQ(SN_CLAIM_IDLE, claim_of(&m.v, dead)->state);
	close(other);
	close(cons);
	mpmc_close(&m);
}

/* Positions that wrap 2^32, and a live record that starts before the dead. */
TEST(mpmc_wrap)
{
	const __u32 base = 0xfffffffcU;
	struct view v;
	int full = ring_open(&v, SN_RING_MPMC, 8, 2), prod, cons;
	struct child c;
	pid_t pid;

	ASSERT_LE(0, full);
	atomic_store(head_of(&v, 1), base);
	atomic_store(tail_of(&v, 1), base);
	for (__u32 k = 0; k < 8; k++)
		atomic_store(release_of(&v, 1, base + k), base + k);
	prod = narrow(full, SN_ROLE_PRODUCER, 1);
	ASSERT_LE(0, prod);
	produce(&v, 1, 8);
	EXPECT_EQ(4, atomic_load(tail_of(&v, 1)));
	cons = narrow(full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	struct sn_claim *mine = claim_of(&v, claim_idx(cons));

	ASSERT_EQ(base, claim(&v, mine, 1, 2));
	c = (struct child){ .v = &v, .full = full, .lane = 1, .n = 4,
			    .kind = K_HELD };
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	EXPECT_EQ(2, atomic_load(head_of(&v, 1)));
	/* The live record says it holds [base, base + 4): two of the dead's. */
	mine->n = 4;
	kill_wait(pid);
	EXPECT_EQ(base, atomic_load(release_of(&v, 1, base)));
	EXPECT_EQ(base + 1, atomic_load(release_of(&v, 1, base + 1)));
	EXPECT_EQ(base + 2, atomic_load(release_of(&v, 1, base + 2)));
	EXPECT_EQ(base + 3, atomic_load(release_of(&v, 1, base + 3)));
	EXPECT_EQ(0 + 8, atomic_load(release_of(&v, 1, 0)));
	EXPECT_EQ(1 + 8, atomic_load(release_of(&v, 1, 1)));
	EXPECT_EQ(2, kpage_of(&v)->peers.claims_lost);
	EXPECT_EQ(1, kpage_of(&v)->peers.claims_recovered);
	close(cons);
	close(prod);
	ring_close(&v, full);
}

/*
 * The protocol under fire: a producer and three consumers run the header's
 * MPMC protocol for real while consumers are SIGKILLed at random points
 * and replaced. A live consumer must never find a position it holds
 * released or overwritten (the kernel recovered only the dead ones'), and
 * the lane must keep flowing (no position of a dead one stays unreleased).
 */
struct stress {
	_Atomic __u64 produced;
	_Atomic __u64 consumed;
	_Atomic __u64 errors;
	_Atomic int stop;
};

static void stress_producer(struct view *v, struct stress *st)
{
	for (;;) {
		__u32 t = atomic_load_explicit(tail_of(v, 0), memory_order_relaxed);

		if (atomic_load_explicit(release_of(v, 0, t),
					 memory_order_acquire) != t) {
			sched_yield();
			continue;
		}
		*slot_of(v, 0, t) = t;
		atomic_store_explicit(tail_of(v, 0), t + 1, memory_order_release);
		atomic_fetch_add(&st->produced, 1);
	}
}

static void stress_consumer(struct view *v, struct stress *st, __u32 idx,
			    __u64 seed)
{
	struct sn_claim *r = claim_of(v, idx);

	for (;;) {
		__u32 h = atomic_load_explicit(head_of(v, 0), memory_order_acquire);
		__u32 t = atomic_load_explicit(tail_of(v, 0), memory_order_acquire);
		__u32 k = 1 + xorshift(&seed) % 4;

		if ((__s32)(t - h) <= 0) {
			sched_yield();
			continue;
		}
		if (k > t - h)
			k = t - h;
		r->lane = 0;
		r->pos = h;
		r->n = k;
		atomic_store_explicit(state_of(r), SN_CLAIM_INTENT,
				      memory_order_release);
		/* Linger in each state, so kills land in all of them. */
		if (xorshift(&seed) % 2)
			sched_yield();
		if (!atomic_compare_exchange_strong_explicit(head_of(v, 0), &h,
							     h + k,
							     memory_order_acq_rel,
							     memory_order_acquire)) {
			atomic_store_explicit(state_of(r), SN_CLAIM_IDLE,
					      memory_order_release);
			continue;
		}
		atomic_store_explicit(state_of(r), SN_CLAIM_HELD,
				      memory_order_release);
		if (xorshift(&seed) % 2)
			sched_yield();
		for (__u32 p = r->pos; p != r->pos + k; p++) {
			__u32 want = p;

			if (*(volatile __u64 *)slot_of(v, 0, p) != p)
				atomic_fetch_add(&st->errors, 1);
			if (!atomic_compare_exchange_strong_explicit(
					release_of(v, 0, p), &want,
					p + v->i.slots, memory_order_release,
					memory_order_relaxed))
				atomic_fetch_add(&st->errors, 1);
		}
		atomic_fetch_add(&st->consumed, k);
		atomic_store_explicit(state_of(r), SN_CLAIM_IDLE,
				      memory_order_release);
	}
}

/* A consumer that has its fd and record (so that its kill is a death). */
static pid_t stress_spawn_consumer(struct view *v, int full, struct stress *st,
				   __u64 seed)
{
	int pfd[2];
	pid_t pid;
	char c;

	if (pipe(pfd))
		return -1;
	pid = fork();
	if (pid == 0) {
		int fd = narrow(full, SN_ROLE_CONSUMER, 0);
		__u32 idx = claim_idx(fd);

		if (fd < 0 || idx >= SN_MAX_CLAIMS) {
			atomic_fetch_add(&st->errors, 1000);
			_exit(1);
		}
		if (write(pfd[1], "x", 1) != 1)
			_exit(1);
		stress_consumer(v, st, idx, seed);
	}
	close(pfd[1]);
	if (pid > 0 && read(pfd[0], &c, 1) != 1)
		atomic_fetch_add(&st->errors, 1000);
	close(pfd[0]);
	return pid;
}

TEST(mpmc_kill_stress)
{
	struct stress *st = mmap(NULL, sizeof(*st), PROT_READ | PROT_WRITE,
				 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	unsigned long rounds = t_scaled(80);
	struct view v;
	int full = ring_open(&v, SN_RING_MPMC, 16, 1);
	pid_t prod, cons[3];
	__u64 seed = 0x9e3779b97f4a7c15ULL, before;

	ASSERT_NE(MAP_FAILED, st);
	ASSERT_LE(0, full);
	prod = fork();
	if (prod == 0) {
		if (narrow(full, SN_ROLE_PRODUCER, 0) < 0)
			_exit(1);
		stress_producer(&v, st);
	}
	ASSERT_LT(0, prod);
	for (int k = 0; k < 3; k++)
		cons[k] = stress_spawn_consumer(&v, full, st, seed + k);
	for (unsigned long n = 0; n < rounds; n++) {
		int k = xorshift(&seed) % 3;

		usleep(1000 + xorshift(&seed) % 20000);
		kill_wait(cons[k]);
		cons[k] = stress_spawn_consumer(&v, full, st, xorshift(&seed));
	}
	/* Still flowing: nothing a dead one held stays held. */
	before = atomic_load(&st->consumed);
	EXPECT_TRUE(WAIT_FOR(atomic_load(&st->consumed) > before + 100));
	for (int k = 0; k < 3; k++)
		kill_wait(cons[k]);
	kill_wait(prod);
	EXPECT_EQ(0, atomic_load(&st->errors));
	EXPECT_LE(kpage_of(&v)->peers.claims_lost, rounds * 4 + 12);
	EXPECT_EQ(rounds + 3, kpage_of(&v)->peers.consumers_died);
	TH_LOG("%lu kills: %llu produced, %llu consumed, %llu lost in %llu records",
	       rounds, (unsigned long long)atomic_load(&st->produced),
	       (unsigned long long)atomic_load(&st->consumed),
	       (unsigned long long)kpage_of(&v)->peers.claims_lost,
	       (unsigned long long)kpage_of(&v)->peers.claims_recovered);
	ring_close(&v, full);
	munmap(st, sizeof(*st));
}

TEST(claim_records_limit)
{
	int fds[SN_MAX_CLAIMS], spsc, prod, extra;
	struct view v;
	int full = ring_open(&v, SN_RING_MPMC, 8, 1);
	__u64 seen = 0;

	ASSERT_LE(0, full);
	EXPECT_EQ(SN_CLAIM_NONE, claim_idx(full));
	for (int k = 0; k < SN_MAX_CLAIMS; k++) {
		/* Half narrowed from a consumer fd: each gets its own. */
		fds[k] = narrow(k % 2 ? fds[k - 1] : full, SN_ROLE_CONSUMER, 0);
		ASSERT_LE(0, fds[k]) TH_LOG("%d", k);
		__u32 idx = claim_idx(fds[k]);

		ASSERT_GT(SN_MAX_CLAIMS, idx);
		EXPECT_EQ(0, seen & (1ULL << idx));
		seen |= 1ULL << idx;
	}
	EXPECT_EQ(~0ULL, kpage_of(&v)->claims_live);
	EXPECT_EQ(-EUSERS, narrow(full, SN_ROLE_CONSUMER, 0));
	EXPECT_EQ(-EUSERS, narrow(fds[3], SN_ROLE_CONSUMER, 0));
	__u32 freed = claim_idx(fds[5]);

	close(fds[5]);
	EXPECT_EQ(0, kpage_of(&v)->claims_live & (1ULL << freed));
	fds[5] = narrow(fds[0], SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, fds[5]);
	EXPECT_EQ(freed, claim_idx(fds[5]));

	/* Consumer fds narrow to consumers only; producers not at all. */
	EXPECT_EQ(-EPERM, narrow(fds[0], SN_ROLE_PRODUCER, SN_LANE_ANY));
	EXPECT_EQ(-EPERM, narrow(fds[0], SN_ROLE_FULL, 0));
	prod = narrow(full, SN_ROLE_PRODUCER, SN_LANE_ANY);
	ASSERT_LE(0, prod);
	EXPECT_EQ(SN_CLAIM_NONE, claim_idx(prod));
	EXPECT_EQ(-EPERM, narrow(prod, SN_ROLE_CONSUMER, 0));
	EXPECT_EQ(-EPERM, narrow(prod, SN_ROLE_PRODUCER, SN_LANE_ANY));
	close(prod);
	for (int k = 0; k < SN_MAX_CLAIMS; k++)
		close(fds[k]);
	EXPECT_EQ(0, kpage_of(&v)->claims_live);
	ring_close(&v, full);

	/* SPSC/MPSC consumer fds do not narrow, and own no record. */
	spsc = create_simple(SN_RING_MPSC, 8, 8, 2);
	ASSERT_LE(0, spsc);
	extra = narrow(spsc, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, extra);
	EXPECT_EQ(SN_CLAIM_NONE, claim_idx(extra));
	EXPECT_EQ(-EPERM, narrow(extra, SN_ROLE_CONSUMER, 0));
	close(extra);
	close(spsc);
}

/*
 * A ring whose recovery was deferred still goes, charge and all, once its
 * fds are closed: the retry's reference is dropped.
 */
static int memory_child(void *arg)
{
	struct rlimit rl;
	struct mpmc m;
	struct child c;
	int cons, again;
	__u64 bytes;
	pid_t pid;

	(void)arg;
	if (listing_count() != 0)
		return 20;
	if (mpmc_open(&m))
		return 21;
	bytes = m.v.i.off.map_size;
	/* Room for this ring and not another. */
	rl.rlim_cur = rl.rlim_max = bytes + bytes / 2;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 22;
	if (create_simple(SN_RING_MPMC, 8, 8, 2) != -ENOMEM)
		return 23;
	cons = narrow(m.full, SN_ROLE_CONSUMER, 0);
	if (cons < 0)
		return 24;
	struct sn_claim *mine = claim_of(&m.v, claim_idx(cons));

	c = (struct child){ .v = &m.v, .full = m.full, .lane = 1, .n = 3,
			    .kind = K_HELD };
	pid = spawn(mpmc_child, &c);
	if (pid < 0)
		return 25;
	mine->lane = 1;
	mine->pos = 0;
	mine->n = 8;
	atomic_store(state_of(mine), SN_CLAIM_INTENT);
	kill_wait(pid);
	if (rel(&m, 0) != 0)
		return 26;	/* deferred */
	close(cons);
	mpmc_close(&m);
	/* No live record is left: the retry completes and frees the ring. */
	if (!WAIT_FOR(listing_count() == 0))
		return 27;
	/* Unlisted first, uncharged just after (by the retry's work). */
	if (!WAIT_FOR((again = create_simple(SN_RING_MPMC, 8, 8, 2)) >= 0))
		return 28;
	close(again);
	return 0;
}

TEST(memory_returned)
{
	int before = listing_count();

	EXPECT_EQ(0, as_nobody(memory_child, NULL));
	EXPECT_EQ(before, listing_count());
}

/*
 * rmmod while a retry is queued (it holds a ring, not the module): module
 * exit waits for it, and it frees the ring. Then the module loads again.
 */
TEST(rmmod_with_retry_queued)
{
	const char *ko = getenv("SN_KO");
	struct mpmc m;
	struct child c;
	int cons, fd;
	pid_t pid;

	if (!ko)
		SKIP(return, "SN_KO is not set: cannot reload the module");
	ASSERT_EQ(0, mpmc_open(&m));
	cons = narrow(m.full, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	struct sn_claim *mine = claim_of(&m.v, claim_idx(cons));

	c = (struct child){ .v = &m.v, .full = m.full, .lane = 1, .n = 3,
			    .kind = K_HELD };
	pid = spawn(mpmc_child, &c);
	ASSERT_LT(0, pid);
	mine->lane = 1;
	mine->pos = 0;
	mine->n = 8;
	atomic_store(state_of(mine), SN_CLAIM_INTENT);
	kill_wait(pid);
	/* Deferred: the retries back off meanwhile. */
	usleep(300000);
	EXPECT_EQ(0, rel(&m, 0));
	close(cons);
	mpmc_close(&m);
	ASSERT_EQ(0, syscall(__NR_delete_module, "sn", O_NONBLOCK));
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, syscall(__NR_finit_module, fd, "", 0));
	close(fd);
	EXPECT_EQ(0, listing_count());
}

TEST_HARNESS_MAIN
