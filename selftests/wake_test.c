// SPDX-License-Identifier: GPL-2.0
/*
 * Every way a sleeper can wait on an sn ring, woken in every state of the
 * wakeup threads. One test per sleep condition x way of sleeping; each runs
 * the states of poll_mode:
 *
 *   watched   adaptive (long idle) and always: a thread watches the ring
 *             (NEED_WAKEUP clear); the peer acts with plain stores and must
 *             not be asked to kick; the thread wakes the sleeper.
 *   idle      adaptive with a short idle: the thread went idle (NEED_WAKEUP
 *             set); the peer acts, sees the sleeper and kicks.
 *   off       no thread watches; the peer kicks.
 *
 * Conditions: a consumer on an empty SPSC, MPSC (4 lanes) and MPMC (4
 * lanes) ring, a producer on a full SPSC and MPSC lane (woken by the head)
 * and on a full MPMC lane (woken by the release word at its tail). Ways:
 * poll(2), epoll, an io_uring multishot poll, and libsn's blocking
 * sn_recv/sn_send. The sleeper must wake within 50 ms of the peer's act.
 * Runs in the guests with sn.ko loaded.
 */
#include <errno.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <sn/channel.h>

#include "kselftest_harness.h"
#include "need_module.h"
#include "raw_ring.h"

#define LANES		4
#define SLOTS		8
#define WAKE_MS		50
#define SLEEP_MS	5000

enum way { W_POLL, W_EPOLL, W_URING, W_LIBSN };
enum state { S_WATCHED_ADAPTIVE, S_WATCHED_ALWAYS, S_IDLE, S_OFF, S_COUNT };

static const char *const state_names[] = {
	"watched/adaptive", "watched/always", "idle/adaptive", "off",
};

/* One sleeper, one peer, one ring. */
struct wcase {
	__u32 type;
	bool consumer;		/* the sleeper consumes (else it produces) */
	__u32 lane;		/* the lane the peer or sleeper writes */
	enum way way;

	/* raw ways */
	int full_fd, role_fd;
	struct view v;
	/* libsn way */
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;

	pid_t tid;
	atomic_int announced;
	__u64 woke_ns;
	int result;		/* 0 woken, -ETIMEDOUT, -errno */
};

/* ---- raw peers: the protocol of include/uapi/linux/sn.h ---- */

static bool lane_readable(struct view *v)
{
	for (__u32 l = 0; l < v->i.lanes; l++)
		if (atomic_load(tail_of(v, l)) != atomic_load(head_of(v, l)))
			return true;
	return false;
}

static bool lane_has_room(struct view *v, __u32 lane)
{
	__u32 t = atomic_load(tail_of(v, lane));

	if (v->i.type == SN_RING_MPMC)
		return atomic_load(release_of(v, lane, t)) == t;
	return t - atomic_load(head_of(v, lane)) < v->i.slots;
}

/* Publishes one message on @lane (room is there). */
static void raw_publish(struct view *v, __u32 lane, __u64 m)
{
	__u32 t = atomic_load(tail_of(v, lane));

	*slot_of(v, lane, t) = m;
	atomic_store_explicit(tail_of(v, lane), t + 1, memory_order_release);
}

/* MPMC: claims the next position of @lane (there is one). */
static void raw_claim(struct view *v, __u32 lane)
{
	atomic_fetch_add(head_of(v, lane), 1);
}

/*
 * Consumes one message of @lane (there is one); MPMC: releases the slot of
 * the position raw_claim() took.
 */
static void raw_consume(struct view *v, __u32 lane)
{
	__u32 h = atomic_load(head_of(v, lane));

	if (v->i.type != SN_RING_MPMC) {
		atomic_store_explicit(head_of(v, lane), h + 1, memory_order_release);
		return;
	}
	h--;
	(void)*(volatile __u64 *)slot_of(v, lane, h);
	atomic_store_explicit(release_of(v, lane, h), h + v->i.slots,
			      memory_order_release);
}

/* [P1] or [C1]: returns 1 if the peer had to kick (and did). */
static int raw_maybe_kick(struct wcase *w)
{
	struct view *v = &w->v;
	__u32 waiting;

	atomic_thread_fence(memory_order_seq_cst);
	waiting = w->consumer ? atomic_load(waiters_of(v)) :
		  atomic_load(waiting_of(v, w->lane));
	if (!waiting || !(kflags_of(v) & SN_KFLAG_NEED_WAKEUP))
		return 0;
	ioctl(w->full_fd, SN_IOC_KICK,
	      w->consumer ? SN_KICK_CONSUMERS : SN_KICK_PRODUCERS);
	return 1;
}

static bool sleeper_cond(struct wcase *w)
{
	return w->consumer ? lane_readable(&w->v) : lane_has_room(&w->v, w->lane);
}

/* ---- the sleeper ---- */

static int sleep_raw(struct wcase *w)
{
	short ev = w->consumer ? POLLIN : POLLOUT;
	struct epoll_event e = { .events = ev };
	struct __kernel_timespec ts = { .tv_sec = SLEEP_MS / 1000 };
	struct io_uring_cqe *cqe;
	struct io_uring ur;
	int epfd = -1, ret = 0;
	struct pollfd p;

	if (w->way == W_EPOLL) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0 || epoll_ctl(epfd, EPOLL_CTL_ADD, w->role_fd, &e))
			return -errno;
	} else if (w->way == W_URING && io_uring_queue_init(4, &ur, 0)) {
		return -ENOMEM;
	}
	/* Announce, [W1]/[W2], re-check, sleep. */
	if (w->consumer)
		atomic_fetch_add(waiters_of(&w->v), 1);
	else
		atomic_store(waiting_of(&w->v, w->lane), 1);
	atomic_thread_fence(memory_order_seq_cst);
	atomic_store(&w->announced, 1);
	if (sleeper_cond(w)) {
		ret = -EALREADY;
		goto out;
	}
	switch (w->way) {
	case W_POLL:
		p = (struct pollfd){ .fd = w->role_fd, .events = ev };
		ret = poll(&p, 1, SLEEP_MS);
		ret = ret == 0 ? -ETIMEDOUT : ret < 0 ? -errno : 0;
		break;
	case W_EPOLL:
		ret = epoll_wait(epfd, &e, 1, SLEEP_MS);
		ret = ret == 0 ? -ETIMEDOUT : ret < 0 ? -errno : 0;
		break;
	default:
		io_uring_prep_poll_multishot(io_uring_get_sqe(&ur), w->role_fd, ev);
		io_uring_submit(&ur);
		ret = io_uring_wait_cqe_timeout(&ur, &cqe, &ts);
		if (ret == -ETIME)
			ret = -ETIMEDOUT;
		else if (!ret)
			ret = cqe->res < 0 ? cqe->res : 0;
		break;
	}
out:
	w->woke_ns = t_now();
	if (w->consumer)
		atomic_fetch_sub(waiters_of(&w->v), 1);
	else
		atomic_store(waiting_of(&w->v, w->lane), 0);
	if (epfd >= 0)
		close(epfd);
	if (w->way == W_URING)
		io_uring_queue_exit(&ur);
	return ret;
}

static int sleep_libsn(struct wcase *w)
{
	__u64 m = 7;
	int ret;

	atomic_store(&w->announced, 1);
	ret = w->consumer ? sn_recv(w->c, &m, SLEEP_MS * 1000000ULL) :
	      sn_send(w->p, &m, SLEEP_MS * 1000000ULL);
	w->woke_ns = t_now();
	return ret;
}

static void *sleeper(void *arg)
{
	struct wcase *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	w->result = w->way == W_LIBSN ? sleep_libsn(w) : sleep_raw(w);
	return NULL;
}

/* The sleeper thread is in state S (blocked in the kernel). */
static bool task_sleeps(pid_t tid)
{
	char path[64], buf[256], *p;
	FILE *f;
	size_t n;

	snprintf(path, sizeof(path), "/proc/self/task/%d/stat", tid);
	f = fopen(path, "r");
	if (!f)
		return false;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' && p[2] == 'S';
}

/* ---- setting up one case ---- */

static int wcase_open(struct wcase *w)
{
	__u32 lanes = w->type == SN_RING_SPSC ? 1 : LANES;
	int ret;

	w->full_fd = w->role_fd = -1;
	w->ch = NULL;
	if (w->way == W_LIBSN) {
		ret = sn_channel_create(&w->ch, SN_CHANNEL_OPTS(.type = w->type, .slots = SLOTS, .slot_size = 8, .lanes = lanes, .flags = SN_BACKEND_KERNEL));
		if (ret)
			return ret;
		ret = sn_producer_open(w->ch, &w->p);
		if (!ret)
			ret = sn_consumer_open(w->ch, &w->c);
		if (ret)
			return ret;
		w->lane = (__u32)sn_producer_lane(w->p);
		w->full_fd = sn_channel_fd(w->ch);
		return view_open(&w->v, w->full_fd) ? -errno : 0;
	}
	w->full_fd = create_simple(w->type, 8, SLOTS, lanes);
	if (w->full_fd < 0)
		return w->full_fd;
	if (view_open(&w->v, w->full_fd))
		return -errno;
	w->role_fd = narrow(w->full_fd, w->consumer ? SN_ROLE_CONSUMER :
			    SN_ROLE_PRODUCER, w->consumer ? 0 : w->lane);
	return w->role_fd < 0 ? w->role_fd : 0;
}

static void wcase_close(struct wcase *w)
{
	if (w->v.base)
		munmap(w->v.base, w->v.i.off.map_size);
	w->v.base = NULL;
	if (w->ch) {
		sn_consumer_close(w->c);
		sn_producer_close(w->p);
		sn_channel_close(w->ch);
		return;
	}
	if (w->role_fd >= 0)
		close(w->role_fd);
	if (w->full_fd >= 0)
		close(w->full_fd);
}

/* Makes the sleeper's condition false: a producer sleeper's lane full. */
static void fill_lane(struct wcase *w)
{
	__u64 m = 1;

	if (w->consumer)
		return;
	if (w->way == W_LIBSN) {
		while (sn_try_send(w->p, &m) == 0)
			;
		return;
	}
	while (lane_has_room(&w->v, w->lane))
		raw_publish(&w->v, w->lane, m);
}

/*
 * Before the act: an MPMC consumer claims the slot the sleeping producer
 * waits for, and releases it only in the act, long after: the thread must
 * see the release itself, not only the claim.
 */
static void peer_prepare(struct wcase *w)
{
	__u32 pos;

	if (w->consumer || w->type != SN_RING_MPMC)
		return;
	if (w->way == W_LIBSN)
		sn_consumer_peek(w->c, 1, &pos);
	else
		raw_claim(&w->v, w->lane);
	usleep(20000);
}

/* The peer's act; returns 1 if it had to kick. */
static int peer_act(struct wcase *w)
{
	__u64 m = 9;
	__u64 kicks;

	if (w->way == W_LIBSN) {
		if (w->consumer) {
			kicks = w->p->kicks;
			sn_try_send(w->p, &m);
			return w->p->kicks != kicks;
		}
		kicks = w->c->kicks;
		if (w->type == SN_RING_MPMC)
			sn_consumer_advance(w->c, 1);
		else
			sn_try_recv(w->c, &m);
		return w->c->kicks != kicks;
	}
	if (w->consumer)
		raw_publish(&w->v, w->lane, m);
	else
		raw_consume(&w->v, w->lane);
	return raw_maybe_kick(w);
}

static int set_state(enum state s)
{
	switch (s) {
	case S_WATCHED_ADAPTIVE:
		return set_param("poll_mode", "adaptive") ||
		       set_param("poll_idle_us", "5000000");
	case S_WATCHED_ALWAYS:
		return set_param("poll_mode", "always");
	case S_IDLE:
		return set_param("poll_mode", "adaptive") ||
		       set_param("poll_idle_us", "1000");
	default:
		return set_param("poll_mode", "off");
	}
}

/*
 * One sleep and wake in state @s; returns how long the sleeper took to
 * wake after the peer's act, in ms.
 */
static __u64 one_case(struct __test_metadata *_metadata, __u32 type,
		      bool consumer, enum way way, int s)
{
	struct wcase w = { .type = type, .consumer = consumer, .way = way,
			   .lane = type == SN_RING_SPSC ? 0 : 2,
			   .full_fd = -1, .role_fd = -1 };
	bool watched = s == S_WATCHED_ADAPTIVE || s == S_WATCHED_ALWAYS;
	__u64 t0, tkicks;
	pthread_t t;
	int kicked;

	if (set_state(s) || wcase_open(&w)) {
		EXPECT_TRUE(false) TH_LOG("%s: setting up failed", state_names[s]);
		wcase_close(&w);
		return ~0ULL;
	}
	fill_lane(&w);
	if (pthread_create(&t, NULL, sleeper, &w)) {
		wcase_close(&w);
		return ~0ULL;
	}
	/* Asleep in the kernel, announced, in the state wanted. */
	EXPECT_TRUE(WAIT_FOR(atomic_load(&w.announced) && w.tid &&
			     task_sleeps(w.tid)));
	if (watched) {
		EXPECT_TRUE(WAIT_FOR(listing_field(w.v.i.id, F_ARMED_CPU) >= 0 &&
				     !(kflags_of(&w.v) & SN_KFLAG_NEED_WAKEUP)))
			TH_LOG("%s: never watched", state_names[s]);
	} else {
		EXPECT_TRUE(WAIT_FOR(kflags_of(&w.v) & SN_KFLAG_NEED_WAKEUP));
	}
	/* Let the libsn sleeper's spin and yield phases pass. */
	usleep(20000);
	EXPECT_TRUE(task_sleeps(w.tid));
	tkicks = listing_field(w.v.i.id, F_KICKS);
	peer_prepare(&w);
	t0 = t_now();
	kicked = peer_act(&w);
	pthread_join(t, NULL);
	EXPECT_EQ(0, w.result) TH_LOG("%s: sleeper returned %d",
				      state_names[s], w.result);
	if (watched) {
		EXPECT_EQ(0, kicked) TH_LOG("%s: the peer had to kick",
					    state_names[s]);
		EXPECT_EQ(tkicks, listing_field(w.v.i.id, F_KICKS));
	} else {
		EXPECT_EQ(1, kicked) TH_LOG("%s: no kick", state_names[s]);
	}
	wcase_close(&w);
	return w.woke_ns > t0 ? (w.woke_ns - t0) / 1000000 : 0;
}

/*
 * Every state for one condition and way. A wake slower than WAKE_MS but
 * well before the sleeper's own timeout is retried once and logged: an
 * emulated guest on a loaded 2-core host stalls for tens of ms at times. A
 * lost wakeup shows as the timeout (5 s) and fails at once.
 */
static void run_case(struct __test_metadata *_metadata, __u32 type,
		     bool consumer, enum way way)
{
	__u64 woke_ms[S_COUNT] = { 0 };

	for (int s = 0; s < S_COUNT; s++) {
		__u64 ms = one_case(_metadata, type, consumer, way, s);

		if (ms >= WAKE_MS && ms < 1000) {
			TH_LOG("%s: woke after %llu ms, once more", state_names[s],
			       (unsigned long long)ms);
			ms = one_case(_metadata, type, consumer, way, s);
		}
		woke_ms[s] = ms;
		EXPECT_GT(WAKE_MS, ms) TH_LOG("%s: woke after %llu ms",
					      state_names[s], (unsigned long long)ms);
	}
	TH_LOG("woken after (ms): %s %llu, %s %llu, %s %llu, %s %llu",
	       state_names[0], (unsigned long long)woke_ms[0],
	       state_names[1], (unsigned long long)woke_ms[1],
	       state_names[2], (unsigned long long)woke_ms[2],
	       state_names[3], (unsigned long long)woke_ms[3]);
}

struct saved_params {
	char mode[16];
	char idle[16];
};

static void save_params(struct saved_params *p)
{
	get_param("poll_mode", p->mode, sizeof(p->mode));
	get_param("poll_idle_us", p->idle, sizeof(p->idle));
}

static void restore_params(const struct saved_params *p)
{
	set_param("poll_mode", p->mode);
	set_param("poll_idle_us", p->idle);
}

FIXTURE(wake) {
	struct saved_params saved;
};

FIXTURE_VARIANT(wake) {
	__u32 type;
	bool consumer;
	enum way way;
};

#define WAKE_VARIANT(name, t, c, w)					\
	FIXTURE_VARIANT_ADD(wake, name) {				\
		.type = t, .consumer = c, .way = w,			\
	}

WAKE_VARIANT(spsc_consumer_poll, SN_RING_SPSC, true, W_POLL);
WAKE_VARIANT(spsc_consumer_epoll, SN_RING_SPSC, true, W_EPOLL);
WAKE_VARIANT(spsc_consumer_uring, SN_RING_SPSC, true, W_URING);
WAKE_VARIANT(spsc_consumer_libsn, SN_RING_SPSC, true, W_LIBSN);
WAKE_VARIANT(mpsc_consumer_poll, SN_RING_MPSC, true, W_POLL);
WAKE_VARIANT(mpsc_consumer_epoll, SN_RING_MPSC, true, W_EPOLL);
WAKE_VARIANT(mpsc_consumer_uring, SN_RING_MPSC, true, W_URING);
WAKE_VARIANT(mpsc_consumer_libsn, SN_RING_MPSC, true, W_LIBSN);
WAKE_VARIANT(mpmc_consumer_poll, SN_RING_MPMC, true, W_POLL);
WAKE_VARIANT(mpmc_consumer_epoll, SN_RING_MPMC, true, W_EPOLL);
WAKE_VARIANT(mpmc_consumer_uring, SN_RING_MPMC, true, W_URING);
WAKE_VARIANT(mpmc_consumer_libsn, SN_RING_MPMC, true, W_LIBSN);
WAKE_VARIANT(spsc_producer_poll, SN_RING_SPSC, false, W_POLL);
WAKE_VARIANT(spsc_producer_epoll, SN_RING_SPSC, false, W_EPOLL);
WAKE_VARIANT(spsc_producer_uring, SN_RING_SPSC, false, W_URING);
WAKE_VARIANT(spsc_producer_libsn, SN_RING_SPSC, false, W_LIBSN);
WAKE_VARIANT(mpsc_producer_poll, SN_RING_MPSC, false, W_POLL);
WAKE_VARIANT(mpsc_producer_epoll, SN_RING_MPSC, false, W_EPOLL);
WAKE_VARIANT(mpsc_producer_uring, SN_RING_MPSC, false, W_URING);
WAKE_VARIANT(mpsc_producer_libsn, SN_RING_MPSC, false, W_LIBSN);
WAKE_VARIANT(mpmc_producer_poll, SN_RING_MPMC, false, W_POLL);
WAKE_VARIANT(mpmc_producer_epoll, SN_RING_MPMC, false, W_EPOLL);
WAKE_VARIANT(mpmc_producer_uring, SN_RING_MPMC, false, W_URING);
WAKE_VARIANT(mpmc_producer_libsn, SN_RING_MPMC, false, W_LIBSN);

FIXTURE_SETUP(wake)
{
	save_params(&self->saved);
	ASSERT_NE(0, self->saved.mode[0]);
}

FIXTURE_TEARDOWN(wake)
{
	restore_params(&self->saved);
}

TEST_F(wake, every_state)
{
	run_case(_metadata, variant->type, variant->consumer, variant->way);
}

/* A CQE within @ms, or NULL. */
static struct io_uring_cqe *cqe_within(struct io_uring *ur, int ms)
{
	struct __kernel_timespec ts = { .tv_nsec = ms * 1000000LL };
	struct io_uring_cqe *cqe;

	return io_uring_wait_cqe_timeout(ur, &cqe, &ts) ? NULL : cqe;
}

/*
 * io_uring takes a wake's key as the poll result: another lane's room, a
 * kick with nothing to read or no room must not complete a poll.
 */
FIXTURE(uring) {
	struct saved_params saved;
};

FIXTURE_SETUP(uring)
{
	save_params(&self->saved);
}

FIXTURE_TEARDOWN(uring)
{
	restore_params(&self->saved);
}

TEST_F(uring, no_false_readiness)
{
	struct wcase w = { .type = SN_RING_MPSC, .way = W_URING, .lane = 2 };
	struct io_uring_cqe *cqe;
	struct io_uring ur;
	int cons;

	ASSERT_EQ(0, set_param("poll_mode", "always"));
	ASSERT_EQ(0, wcase_open(&w));
	cons = narrow(w.full_fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	ASSERT_EQ(0, io_uring_queue_init(4, &ur, 0));
	/* Lane 0 and the sleeper's lane 2 full. */
	w.lane = 0;
	fill_lane(&w);
	w.lane = 2;
	fill_lane(&w);
	io_uring_prep_poll_multishot(io_uring_get_sqe(&ur), w.role_fd, POLLOUT);
	ASSERT_EQ(1, io_uring_submit(&ur));
	EXPECT_TRUE(WAIT_FOR(listing_field(w.v.i.id, F_ARMED_CPU) >= 0 &&
			     !(kflags_of(&w.v) & SN_KFLAG_NEED_WAKEUP)));
	EXPECT_EQ(NULL, cqe_within(&ur, 50)) TH_LOG("ready while full");
	raw_consume(&w.v, 0);	/* room in lane 0, watched */
	EXPECT_EQ(NULL, cqe_within(&ur, 100)) TH_LOG("lane 0's room completed lane 2's poll");
	EXPECT_EQ(0, ioctl(cons, SN_IOC_KICK, SN_KICK_PRODUCERS));
	EXPECT_EQ(NULL, cqe_within(&ur, 100)) TH_LOG("a kick completed a full lane's poll");
	raw_consume(&w.v, 2);
	cqe = cqe_within(&ur, 2000);
	ASSERT_NE(NULL, cqe) TH_LOG("lane 2's room did not complete its poll");
	EXPECT_TRUE(cqe->res & POLLOUT);
	io_uring_cqe_seen(&ur, cqe);
	io_uring_queue_exit(&ur);

	/* A consumer's poll on an empty ring, kicked by a producer. */
	ASSERT_EQ(0, io_uring_queue_init(4, &ur, 0));
	close(w.role_fd);
	w.role_fd = narrow(w.full_fd, SN_ROLE_PRODUCER, 1);
	ASSERT_LE(0, w.role_fd);
	for (__u32 l = 0; l < LANES; l++)
		while (atomic_load(head_of(&w.v, l)) != atomic_load(tail_of(&w.v, l)))
			raw_consume(&w.v, l);
	io_uring_prep_poll_multishot(io_uring_get_sqe(&ur), cons, POLLIN);
	ASSERT_EQ(1, io_uring_submit(&ur));
	EXPECT_EQ(0, ioctl(w.role_fd, SN_IOC_KICK, SN_KICK_CONSUMERS));
	EXPECT_EQ(NULL, cqe_within(&ur, 100)) TH_LOG("a kick completed an empty ring's poll");
	raw_publish(&w.v, 1, 5);
	cqe = cqe_within(&ur, 2000);
	ASSERT_NE(NULL, cqe) TH_LOG("a message did not complete the poll");
	EXPECT_TRUE(cqe->res & POLLIN);
	io_uring_queue_exit(&ur);
	close(cons);
	wcase_close(&w);
}

TEST_HARNESS_MAIN
