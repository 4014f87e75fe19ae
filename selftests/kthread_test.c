// SPDX-License-Identifier: GPL-2.0
/*
 * The per-CPU wakeup threads (sn/N): a sleeper woken with no producer
 * syscall, the NEED_WAKEUP path after the idle timeout, no lost wakeup over
 * many sleep/wake cycles in every poll_mode, CPU hotplug churn, idle cost,
 * a scribbled armed ring, and the threads' end at rmmod. Runs in the guests
 * with sn.ko loaded.
 */
#include <dirent.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <liburing.h>
#include <poll.h>
#include <sched.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <sn/channel.h>

#include "kselftest_harness.h"
#include "need_module.h"
#include "raw_ring.h"

/*
 * The two sides of the sleep protocol of include/uapi/linux/sn.h over lane
 * 0 of an SPSC ring, both able to sleep. Counts what a test wants to see.
 */
struct pair {
	struct view v;
	int fd;
	__u64 msgs;
	atomic_bool stop;	/* producer: send until set, then msgs = sent */
	atomic_ulong kicks, sleeps, timeouts, wrong;
	unsigned int gap_seed;
};

static void kick(struct pair *pr, unsigned long whom)
{
	if (ioctl(pr->fd, SN_IOC_KICK, whom) == 0)
		atomic_fetch_add(&pr->kicks, 1);
}

static void random_gap(unsigned int *seed)
{
	unsigned int r = rand_r(seed);

	if (r % 8 == 0)
		usleep(r % 50);
	else if (r % 8 == 1)
		sched_yield();
}

static void *producer(void *arg)
{
	struct pair *pr = arg;
	unsigned int seed = pr->gap_seed;
	__u64 n;

	for (n = 0; n < pr->msgs || pr->msgs == 0; n++) {
		if (pr->msgs == 0 && atomic_load(&pr->stop))
			break;
		while (!raw_send(&pr->v, n)) {
			atomic_store(waiting_of(&pr->v, 0), 1);
			atomic_thread_fence(memory_order_seq_cst);	/* [W2] */
			if (raw_send(&pr->v, n)) {
				atomic_store(waiting_of(&pr->v, 0), 0);
				break;
			}
			struct pollfd p = { .fd = pr->fd, .events = POLLOUT };

			atomic_fetch_add(&pr->sleeps, 1);
			if (poll(&p, 1, 5000) == 0)
				atomic_fetch_add(&pr->timeouts, 1);
			atomic_store(waiting_of(&pr->v, 0), 0);
		}
		atomic_thread_fence(memory_order_seq_cst);	/* [P1] */
		if (atomic_load(waiters_of(&pr->v)) &&
		    (kflags_of(&pr->v) & SN_KFLAG_NEED_WAKEUP))
			kick(pr, SN_KICK_CONSUMERS);
		random_gap(&seed);
	}
	/* Tell the consumer the total: an all-ones message ends the run. */
	while (!raw_send(&pr->v, ~0ULL))
		usleep(10);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(waiters_of(&pr->v)))
		kick(pr, SN_KICK_CONSUMERS);
	return (void *)(uintptr_t)n;
}

/* Receives in order until the end message; returns how many. */
static __u64 consumer(struct pair *pr)
{
	unsigned int seed = pr->gap_seed * 7 + 1;
	__u64 expect = 0, m;

	for (;;) {
		if (!raw_recv(&pr->v, &m)) {
			atomic_fetch_add(waiters_of(&pr->v), 1);
			atomic_thread_fence(memory_order_seq_cst);	/* [W1] */
			if (!raw_recv(&pr->v, &m)) {
				struct pollfd p = { .fd = pr->fd, .events = POLLIN };

				atomic_fetch_add(&pr->sleeps, 1);
				if (poll(&p, 1, 5000) == 0)
					atomic_fetch_add(&pr->timeouts, 1);
				atomic_fetch_sub(waiters_of(&pr->v), 1);
				continue;
			}
			atomic_fetch_sub(waiters_of(&pr->v), 1);
		}
		if (m == ~0ULL)
			return expect;
		if (m != expect)
			atomic_fetch_add(&pr->wrong, 1);
		expect = m + 1;
		atomic_thread_fence(memory_order_seq_cst);	/* [C1] */
		if (atomic_load(waiting_of(&pr->v, 0)) &&
		    (kflags_of(&pr->v) & SN_KFLAG_NEED_WAKEUP))
			kick(pr, SN_KICK_PRODUCERS);
		random_gap(&seed);
	}
}

static int pair_open(struct pair *pr, __u32 slots, int home_cpu)
{
	struct sn_create p = params(SN_RING_SPSC, 8, slots, 1);

	memset(pr, 0, sizeof(*pr));
	if (home_cpu >= 0) {
		p.flags = SN_CREATE_HOME_CPU;
		p.home_cpu = home_cpu;
	}
	pr->fd = create(&p);
	if (pr->fd < 0)
		return pr->fd;
	return view_open(&pr->v, pr->fd);
}

static void pair_close(struct pair *pr)
{
	munmap(pr->v.base, pr->v.i.off.map_size);
	close(pr->fd);
}

/* The pids of the sn/N threads; returns how many. */
static int sn_threads(int *pids, int max)
{
	DIR *d = opendir("/proc");
	struct dirent *e;
	char path[300], comm[32];
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)) && n < max) {
		FILE *f;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/comm", e->d_name);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strncmp(comm, "sn/", 3))
			pids[n++] = atoi(e->d_name);
		fclose(f);
	}
	closedir(d);
	return n;
}

/* utime + stime of @pid, in clock ticks. */
static long cpu_ticks(int pid)
{
	char path[64], buf[1024], *p;
	unsigned long ut, st;
	FILE *f;
	size_t len;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	len = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[len] = 0;
	p = strrchr(buf, ')');
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %lu %lu",
			 &ut, &st) != 2)
		return -1;
	return ut + st;
}

FIXTURE(kthread) {
	char mode[16];
	char idle[16];
	char armed[16];
};

FIXTURE_SETUP(kthread)
{
	get_param("poll_mode", self->mode, sizeof(self->mode));
	get_param("poll_idle_us", self->idle, sizeof(self->idle));
	get_param("max_armed_per_user", self->armed, sizeof(self->armed));
	ASSERT_NE(0, self->mode[0]);
	ASSERT_NE(0, self->idle[0]);
	ASSERT_NE(0, self->armed[0]);
}

FIXTURE_TEARDOWN(kthread)
{
	set_param("poll_mode", self->mode);
	set_param("poll_idle_us", self->idle);
	set_param("max_armed_per_user", self->armed);
}

TEST_F(kthread, one_thread_per_cpu)
{
	int pids[64];
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);

	EXPECT_EQ(cpus, sn_threads(pids, 64));
	EXPECT_EQ(0, write_str("/sys/module/sn/parameters/poll_mode", "bogus") == 0);
}

/* Allows exit and exit_group, kills the process on any other syscall. */
static int forbid_syscalls(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]), .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER, 0, &prog);
}

struct silent {
	struct pair *pr;
	atomic_int needed_kick;	/* the protocol asked for a syscall */
};

/* Under seccomp: publishes with plain stores only, then exits. */
static void *silent_producer(void *arg)
{
	struct silent *s = arg;
	struct pair *pr = s->pr;

	if (forbid_syscalls())
		return NULL;
	/* Start once a thread watches the ring (the consumer sleeps). */
	while (kflags_of(&pr->v) & SN_KFLAG_NEED_WAKEUP)
		__builtin_ia32_pause();
	for (__u64 n = 0; n <= pr->msgs; n++) {
		__u64 m = n == pr->msgs ? ~0ULL : n;

		while (!raw_send(&pr->v, m))
			__builtin_ia32_pause();
		atomic_thread_fence(memory_order_seq_cst);	/* [P1] */
		if (atomic_load(waiters_of(&pr->v)) &&
		    (kflags_of(&pr->v) & SN_KFLAG_NEED_WAKEUP)) {
			/* A kick would kill us: record that one was due. */
			atomic_store(&s->needed_kick, 1);
			break;
		}
	}
	syscall(__NR_exit, 0);
	return NULL;
}

TEST_F(kthread, sleeper_woken_without_producer_syscall)
{
	struct silent s = { 0 };
	struct pair pr;
	pthread_t t;
	__u64 got;

	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	/* The whole exchange stays inside one idle window. */
	ASSERT_EQ(0, set_param("poll_idle_us", "5000000"));
	ASSERT_EQ(0, pair_open(&pr, 16, -1));
	pr.msgs = t_scaled(20000);
	s.pr = &pr;
	ASSERT_EQ(0, pthread_create(&t, NULL, silent_producer, &s));
	got = consumer(&pr);
	pthread_join(t, NULL);
	EXPECT_EQ(0, atomic_load(&s.needed_kick));
	EXPECT_EQ(pr.msgs, got);
	EXPECT_EQ(0, pr.wrong);
	EXPECT_EQ(0, pr.timeouts);
	EXPECT_LT(0, pr.sleeps);
	EXPECT_EQ(0, listing_field(pr.v.i.id, F_KICKS));
	EXPECT_LT(0, listing_field(pr.v.i.id, F_THREAD_WAKES));
	TH_LOG("%llu messages, %lu sleeps, %lld thread wakeups, 0 syscalls",
	       (unsigned long long)got, pr.sleeps,
	       listing_field(pr.v.i.id, F_THREAD_WAKES));
	pair_close(&pr);
}

struct lib_pair {
	struct sn_producer *p;
	__u64 msgs;
	atomic_int started;
};

/* libsn's producer under seccomp: a kick would kill the process. */
static void *lib_producer(void *arg)
{
	struct lib_pair *lp = arg;

	if (forbid_syscalls())
		return NULL;
	atomic_store(&lp->started, 1);
	for (__u64 n = 0; n < lp->msgs; n++)
		while (sn_try_send(lp->p, &n) == -EAGAIN)
			__builtin_ia32_pause();
	syscall(__NR_exit, 0);
	return NULL;
}

/* libsn's blocking receive sleeps; the kernel threads wake it. */
TEST_F(kthread, libsn_blocking_recv_no_producer_syscall)
{
	struct sn_channel_stats st;
	struct lib_pair lp = { .msgs = t_scaled(20000) };
	struct sn_channel *ch;
	struct sn_consumer *c;
	pthread_t t;
	__u64 m, n;

	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("poll_idle_us", "5000000"));
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 16, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_KERNEL)));
	ASSERT_EQ(0, sn_producer_open(ch, &lp.p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	/* Sleep once first so that a thread watches before the producer
	 * starts: its first publish must not need a kick.
	 */
	EXPECT_EQ(-ETIMEDOUT, sn_recv(c, &m, 200000000ULL));
	ASSERT_EQ(0, pthread_create(&t, NULL, lib_producer, &lp));
	for (n = 0; n < lp.msgs; n++) {
		ASSERT_EQ(0, sn_recv(c, &m, 5000000000ULL)) TH_LOG("message %llu",
								 (unsigned long long)n);
		ASSERT_EQ(n, m);
	}
	pthread_join(t, NULL);
	ASSERT_EQ(0, sn_consumer_flush_stats(c));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ(lp.msgs, st.received);
	EXPECT_EQ(0, st.kicks);
	TH_LOG("%llu messages, %llu sleeps, %llu wakeups, %llu kicks",
	       (unsigned long long)st.received, (unsigned long long)st.sleeps,
	       (unsigned long long)st.wakeups, (unsigned long long)st.kicks);
	sn_consumer_close(c);
	sn_producer_close(lp.p);
	sn_channel_close(ch);
}

static void *sleep_once(void *arg)
{
	struct pair *pr = arg;

	return (void *)(uintptr_t)consumer(pr);
}

TEST_F(kthread, need_wakeup_after_idle)
{
	struct pair pr;
	pthread_t t;
	void *got;

	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("poll_idle_us", "1000"));
	ASSERT_EQ(0, pair_open(&pr, 16, -1));
	ASSERT_EQ(0, pthread_create(&t, NULL, sleep_once, &pr));
	/* The consumer sleeps, armed; with no traffic the thread goes idle. */
	EXPECT_TRUE(WAIT_FOR(listing_field(pr.v.i.id, F_ARMED_CPU) >= 0));
	usleep(100000);
	EXPECT_TRUE(WAIT_FOR(kflags_of(&pr.v) & SN_KFLAG_NEED_WAKEUP));
	EXPECT_EQ(1, atomic_load(waiters_of(&pr.v)));
	EXPECT_LE(0, listing_field(pr.v.i.id, F_ARMED_CPU));
	pr.msgs = 5;
	pr.gap_seed = 1;
	producer(&pr);
	pthread_join(t, &got);
	EXPECT_EQ(5, (uintptr_t)got);
	EXPECT_EQ(0, pr.timeouts);
	EXPECT_LE(1, pr.kicks);
	EXPECT_LE(1, listing_field(pr.v.i.id, F_KICKS));
	pair_close(&pr);
}

/* Turning the threads off while they watch hands the rings back to kicks. */
TEST_F(kthread, mode_off_while_armed)
{
	struct pair pr;
	pthread_t t;
	void *got;

	ASSERT_EQ(0, set_param("poll_mode", "always"));
	ASSERT_EQ(0, pair_open(&pr, 16, -1));
	ASSERT_EQ(0, pthread_create(&t, NULL, sleep_once, &pr));
	EXPECT_TRUE(WAIT_FOR(listing_field(pr.v.i.id, F_ARMED_CPU) >= 0 &&
			     !(kflags_of(&pr.v) & SN_KFLAG_NEED_WAKEUP)));
	ASSERT_EQ(0, set_param("poll_mode", "off"));
	EXPECT_TRUE(WAIT_FOR(listing_field(pr.v.i.id, F_ARMED_CPU) == -1));
	EXPECT_NE(0, kflags_of(&pr.v) & SN_KFLAG_NEED_WAKEUP);
	pr.msgs = 3;
	pr.gap_seed = 3;
	producer(&pr);
	pthread_join(t, &got);
	EXPECT_EQ(3, (uintptr_t)got);
	EXPECT_EQ(0, pr.timeouts);
	EXPECT_LE(1, pr.kicks);
	pair_close(&pr);
}

/*
 * @msgs messages over an SPSC ring homed on @home (-1: the creator's CPU),
 * both sides sleeping and waking by the protocol; @mode NULL keeps the
 * current poll_mode.
 */
static void exchange_on(struct __test_metadata *_metadata, const char *mode,
			unsigned long msgs, int home)
{
	struct pair pr;
	pthread_t t;
	void *sent;
	__u64 got;
	__u64 t0 = t_now();

	if (mode) {
		ASSERT_EQ(0, set_param("poll_mode", mode));
	} else {
		mode = "as set";
	}
	ASSERT_EQ(0, pair_open(&pr, 4, home));
	pr.msgs = msgs;
	pr.gap_seed = 42;
	ASSERT_EQ(0, pthread_create(&t, NULL, producer, &pr));
	got = consumer(&pr);
	pthread_join(t, &sent);
	EXPECT_EQ(msgs, got) TH_LOG("mode %s", mode);
	EXPECT_EQ(msgs, (uintptr_t)sent);
	EXPECT_EQ(0, pr.wrong);
	EXPECT_EQ(0, pr.timeouts) TH_LOG("mode %s: a sleeper waited 5 s", mode);
	TH_LOG("%s: %lu msgs, %lu sleeps, %lu kicks, %lld thread wakeups, %llu ms",
	       mode, msgs, pr.sleeps, pr.kicks,
	       listing_field(pr.v.i.id, F_THREAD_WAKES),
	       (unsigned long long)(t_now() - t0) / 1000000);
	pair_close(&pr);
}

static void exchange(struct __test_metadata *_metadata, const char *mode,
		     unsigned long msgs)
{
	exchange_on(_metadata, mode, msgs, -1);
}

TEST_F_TIMEOUT(kthread, no_lost_wakeup, 900)
{
	unsigned long n = t_scaled(100000);

	ASSERT_EQ(0, set_param("poll_idle_us", "200"));
	exchange(_metadata, "off", n);
	exchange(_metadata, "adaptive", n);
	exchange(_metadata, "always", n);
}

static int cpu_online(int cpu, int on)
{
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", cpu);
	return write_str(path, on ? "1" : "0");
}

TEST_F_TIMEOUT(kthread, hotplug_churn, 900)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	struct pair pr[2];
	pthread_t t[2];
	void *sent;

	if (cpus < 2 || access("/sys/devices/system/cpu/cpu1/online", W_OK))
		SKIP(return, "no CPU that can go offline");
	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("poll_idle_us", "2000"));
	/* Two rings homed on CPUs that will go away. */
	for (int i = 0; i < 2; i++) {
		ASSERT_EQ(0, pair_open(&pr[i], 8, cpus - 1 - i));
		pr[i].gap_seed = i + 5;
		ASSERT_EQ(0, pthread_create(&t[i], NULL, producer, &pr[i]));
	}
	pthread_t c[2];

	for (int i = 0; i < 2; i++)
		ASSERT_EQ(0, pthread_create(&c[i], NULL, sleep_once, &pr[i]));
	for (int round = 0; round < 4; round++) {
		for (int cpu = 1; cpu < cpus; cpu++) {
			EXPECT_EQ(0, cpu_online(cpu, 0)) TH_LOG("offline %d", cpu);
		}
		usleep(20000);
		for (int cpu = 1; cpu < cpus; cpu++) {
			EXPECT_EQ(0, cpu_online(cpu, 1)) TH_LOG("online %d", cpu);
		}
		usleep(20000);
	}
	for (int i = 0; i < 2; i++) {
		void *got;

		atomic_store(&pr[i].stop, true);
		pthread_join(t[i], &sent);
		pthread_join(c[i], &got);
		EXPECT_EQ((uintptr_t)sent, (uintptr_t)got) TH_LOG("ring %d", i);
		EXPECT_LT(0, (uintptr_t)got);
		EXPECT_EQ(0, pr[i].wrong);
		EXPECT_EQ(0, pr[i].timeouts);
		TH_LOG("ring %d: %lu msgs, %lu sleeps, %lu kicks", i,
		       (unsigned long)(uintptr_t)got, pr[i].sleeps, pr[i].kicks);
		pair_close(&pr[i]);
	}
}

/* How many of the rings @ids CPU @cpu watches (-1: unwatched). */
static int armed_on(const __u64 *ids, int n, int cpu)
{
	int armed = 0;

	for (int i = 0; i < n; i++)
		armed += listing_field(ids[i], F_ARMED_CPU) == cpu;
	return armed;
}

/*
 * @n SPSC rings homed on @cpu, each registered in @epfd: epoll's entry on
 * the wait queue keeps a ring armed for as long as it stays registered.
 */
static int arm_rings(int *fds, __u64 *ids, int n, int cpu, int epfd)
{
	for (int i = 0; i < n; i++) {
		struct sn_create p = params(SN_RING_SPSC, 8, 8, 1);
		struct epoll_event e = { .events = EPOLLIN };
		struct sn_info in;

		p.flags = SN_CREATE_HOME_CPU;
		p.home_cpu = cpu;
		fds[i] = create(&p);
		if (fds[i] < 0)
			return fds[i];
		if (info(fds[i], &in) || epoll_ctl(epfd, EPOLL_CTL_ADD, fds[i], &e))
			return -errno;
		ids[i] = in.id;
	}
	return 0;
}

static void close_all(int *fds, int n)
{
	for (int i = 0; i < n; i++)
		close(fds[i]);
}

/*
 * Over 64 and over 200 armed rings on one thread: the closing round must
 * cover all of them, so a ring with traffic through idle transitions never
 * loses a wakeup.
 */
TEST_F_TIMEOUT(kthread, many_armed_rings, 900)
{
	static const int counts[] = { 70, 210 };
	static int fds[210];
	static __u64 ids[210];

	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("poll_idle_us", "200"));
	for (unsigned int c = 0; c < 2; c++) {
		int n = counts[c], epfd = epoll_create1(EPOLL_CLOEXEC);

		ASSERT_LE(0, epfd);
		ASSERT_EQ(0, arm_rings(fds, ids, n, 0, epfd));
		EXPECT_TRUE(WAIT_FOR(armed_on(ids, n, 0) == n))
			TH_LOG("%d of %d rings armed on CPU 0", armed_on(ids, n, 0), n);
		exchange_on(_metadata, NULL, t_scaled(40000), 0);
		close_all(fds, n);
		close(epfd);
	}
}

/* One user's rings on one thread are bounded; the rest work by kicks. */
TEST_F(kthread, armed_limit_per_user)
{
	int fds[8], epfd = epoll_create1(EPOLL_CLOEXEC);
	__u64 ids[8];

	ASSERT_LE(0, epfd);
	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("max_armed_per_user", "4"));
	ASSERT_EQ(0, arm_rings(fds, ids, 8, 0, epfd));
	EXPECT_TRUE(WAIT_FOR(armed_on(ids, 8, 0) == 4));
	usleep(50000);
	EXPECT_EQ(4, armed_on(ids, 8, 0));
	EXPECT_EQ(4, armed_on(ids, 8, -1));
	for (int i = 0; i < 8; i++)
		if (listing_field(ids[i], F_ARMED_CPU) < 0)
			EXPECT_EQ(1, listing_field(ids[i], F_NEED_WAKEUP));
	/* A ring over the limit still carries traffic, by kicks. */
	exchange_on(_metadata, NULL, t_scaled(4000), 0);
	close_all(fds, 8);
	close(epfd);
}

struct registered {
	int fd, epfd;
	struct view *v;
	struct io_uring *ur;	/* else epoll */
	atomic_int woken;
};

/* A consumer that sleeps once through epoll or io_uring. */
static void *sleep_registered(void *arg)
{
	struct registered *r = arg;
	struct epoll_event e;

	atomic_fetch_add(waiters_of(r->v), 1);
	atomic_thread_fence(memory_order_seq_cst);	/* [W1] */
	if (r->ur) {
		struct __kernel_timespec ts = { .tv_sec = 5 };
		struct io_uring_cqe *cqe;

		if (!io_uring_wait_cqe_timeout(r->ur, &cqe, &ts)) {
			atomic_store(&r->woken, 1);
			io_uring_cqe_seen(r->ur, cqe);
		}
	} else if (epoll_wait(r->epfd, &e, 1, 5000) == 1) {
		atomic_store(&r->woken, 1);
	}
	atomic_fetch_sub(waiters_of(r->v), 1);
	return NULL;
}

/* Publishes one message by the protocol; returns 1 if it kicked. */
static int publish_one(struct pair *pr, __u64 m)
{
	if (!raw_send(&pr->v, m))
		return -1;
	atomic_thread_fence(memory_order_seq_cst);	/* [P1] */
	if (atomic_load(waiters_of(&pr->v)) &&
	    (kflags_of(&pr->v) & SN_KFLAG_NEED_WAKEUP)) {
		ioctl(pr->fd, SN_IOC_KICK, SN_KICK_CONSUMERS);
		return 1;
	}
	return 0;
}

/*
 * epoll and io_uring register once: after poll_mode off and on again their
 * ring has no watcher; the first kick arms it again, and from then on the
 * producer publishes without a system call.
 */
TEST_F(kthread, rearm_after_mode_cycle)
{
	for (int way = 0; way < 2; way++) {
		struct registered r = { 0 };
		struct epoll_event e = { .events = EPOLLIN };
		struct io_uring ur;
		struct pair pr;
		pthread_t t;
		__u64 m;

		ASSERT_EQ(0, set_param("poll_mode", "always"));
		ASSERT_EQ(0, pair_open(&pr, 8, -1));
		r.v = &pr.v;
		if (way) {
			ASSERT_EQ(0, io_uring_queue_init(4, &ur, 0));
			io_uring_prep_poll_multishot(io_uring_get_sqe(&ur), pr.fd, POLLIN);
			ASSERT_EQ(1, io_uring_submit(&ur));
			r.ur = &ur;
		} else {
			r.epfd = epoll_create1(EPOLL_CLOEXEC);
			ASSERT_EQ(0, epoll_ctl(r.epfd, EPOLL_CTL_ADD, pr.fd, &e));
		}
		EXPECT_TRUE(WAIT_FOR(listing_field(pr.v.i.id, F_ARMED_CPU) >= 0));
		ASSERT_EQ(0, set_param("poll_mode", "off"));
		ASSERT_EQ(0, set_param("poll_mode", "always"));
		EXPECT_EQ(-1, listing_field(pr.v.i.id, F_ARMED_CPU));
		EXPECT_NE(0, kflags_of(&pr.v) & SN_KFLAG_NEED_WAKEUP);
		/* Sleep; the publish must kick, and the kick re-arms. */
		ASSERT_EQ(0, pthread_create(&t, NULL, sleep_registered, &r));
		EXPECT_TRUE(WAIT_FOR(atomic_load(waiters_of(&pr.v)) == 1));
		usleep(20000);
		EXPECT_EQ(1, publish_one(&pr, 1)) TH_LOG("way %d", way);
		pthread_join(t, NULL);
		EXPECT_EQ(1, atomic_load(&r.woken)) TH_LOG("way %d", way);
		EXPECT_TRUE(raw_recv(&pr.v, &m));
		EXPECT_TRUE(WAIT_FOR(listing_field(pr.v.i.id, F_ARMED_CPU) >= 0 &&
				     !(kflags_of(&pr.v) & SN_KFLAG_NEED_WAKEUP)))
			TH_LOG("way %d: not armed again", way);
		/* Both the kick and the thread may have completed the poll. */
		if (way) {
			struct io_uring_cqe *cqe;

			while (!io_uring_peek_cqe(&ur, &cqe))
				io_uring_cqe_seen(&ur, cqe);
		}
		/* Watched again: no kick, still woken. */
		atomic_store(&r.woken, 0);
		ASSERT_EQ(0, pthread_create(&t, NULL, sleep_registered, &r));
		EXPECT_TRUE(WAIT_FOR(atomic_load(waiters_of(&pr.v)) == 1));
		usleep(20000);
		EXPECT_EQ(0, publish_one(&pr, 2)) TH_LOG("way %d", way);
		pthread_join(t, NULL);
		EXPECT_EQ(1, atomic_load(&r.woken)) TH_LOG("way %d", way);
		if (way)
			io_uring_queue_exit(&ur);
		else
			close(r.epfd);
		pair_close(&pr);
	}
}

struct churner {
	atomic_bool stop;
	unsigned long switches;
};

static void *churn_modes(void *arg)
{
	static const char *const modes[] = { "off", "adaptive", "always", "adaptive" };
	struct churner *ch = arg;

	while (!atomic_load(&ch->stop)) {
		set_param("poll_mode", modes[ch->switches++ % 4]);
		usleep(3000);
	}
	return NULL;
}

/* poll_mode flipping under traffic loses nothing. */
TEST_F_TIMEOUT(kthread, mode_switch_churn, 900)
{
	struct churner ch = { 0 };
	pthread_t t;

	ASSERT_EQ(0, set_param("poll_idle_us", "300"));
	ASSERT_EQ(0, pthread_create(&t, NULL, churn_modes, &ch));
	exchange_on(_metadata, NULL, t_scaled(40000), -1);
	atomic_store(&ch.stop, true);
	pthread_join(t, NULL);
	TH_LOG("%lu mode switches", ch.switches);
	EXPECT_LT(10, ch.switches);
}

/* Rings armed away from home while it is offline go back when it returns. */
TEST_F_TIMEOUT(kthread, rings_return_home, 900)
{
	long cpus = sysconf(_SC_NPROCESSORS_CONF);
	int home = (int)cpus - 1, fds[2], epfd;
	struct pair pr;
	pthread_t t, c;
	void *sent, *got;
	__u64 ids[2];
	char path[64];

	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%d/online", home);
	if (cpus < 2 || access(path, W_OK))
		SKIP(return, "no CPU that can go offline");
	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("poll_idle_us", "2000"));
	epfd = epoll_create1(EPOLL_CLOEXEC);
	ASSERT_EQ(0, arm_rings(fds, ids, 2, home, epfd));
	EXPECT_TRUE(WAIT_FOR(armed_on(ids, 2, home) == 2));
	/* Traffic on a ring of the same home throughout. */
	ASSERT_EQ(0, pair_open(&pr, 8, home));
	pr.gap_seed = 11;
	ASSERT_EQ(0, pthread_create(&t, NULL, producer, &pr));
	ASSERT_EQ(0, pthread_create(&c, NULL, sleep_once, &pr));
	for (int round = 0; round < 3; round++) {
		ASSERT_EQ(0, cpu_online(home, 0));
		EXPECT_TRUE(WAIT_FOR(armed_on(ids, 2, home) == 0 &&
				     listing_field(ids[0], F_ARMED_CPU) >= 0 &&
				     listing_field(ids[1], F_ARMED_CPU) >= 0))
			TH_LOG("round %d: not moved off CPU %d", round, home);
		usleep(20000);
		ASSERT_EQ(0, cpu_online(home, 1));
		EXPECT_TRUE(WAIT_FOR(armed_on(ids, 2, home) == 2))
			TH_LOG("round %d: not back on CPU %d", round, home);
		usleep(20000);
	}
	atomic_store(&pr.stop, true);
	pthread_join(t, &sent);
	pthread_join(c, &got);
	EXPECT_EQ((uintptr_t)sent, (uintptr_t)got);
	EXPECT_EQ(0, pr.wrong);
	EXPECT_EQ(0, pr.timeouts);
	pair_close(&pr);
	close_all(fds, 2);
	close(epfd);
}

/* What the attacker of unprivileged_attacker reports. */
struct attack {
	int home_err;		/* creating with home_cpu outside its CPUs */
	int rings;		/* MPMC rings of 64 lanes it could create */
	int create_err;		/* why it could create no more */
	int armed;		/* of them watched by CPU 0's thread */
};

#define ATTACK_RINGS	64

/*
 * As user nobody, limited to CPU 0: asks for home_cpu 1, creates as many
 * 64-lane rings homed on CPU 0 as it may, has them all watched (epoll),
 * reports, then scribbles every tail of every lane for @ms.
 */
static int attacker(int report, int ms)
{
	static struct view v[ATTACK_RINGS];
	struct sn_create p = params(SN_RING_MPMC, 8, 8, SN_MAX_LANES);
	struct attack a = { 0 };
	int epfd = epoll_create1(EPOLL_CLOEXEC);
	cpu_set_t set;
	__u64 seed = 77, end;

	CPU_ZERO(&set);
	CPU_SET(0, &set);
	if (epfd < 0 || setgid(65534) || setuid(65534) ||
	    sched_setaffinity(0, sizeof(set), &set))
		return 1;
	p.flags = SN_CREATE_HOME_CPU;
	p.home_cpu = 1;
	a.home_err = create(&p);
	if (a.home_err >= 0)
		close(a.home_err);
	p.home_cpu = 0;
	for (a.rings = 0; a.rings < ATTACK_RINGS; a.rings++) {
		struct epoll_event e = { .events = EPOLLIN };
		int fd = create(&p);

		if (fd < 0) {
			a.create_err = fd;
			break;
		}
		if (view_open(&v[a.rings], fd) ||
		    epoll_ctl(epfd, EPOLL_CTL_ADD, fd, &e))
			return 2;
	}
	usleep(100000);
	for (int i = 0; i < a.rings; i++)
		a.armed += listing_field(v[i].i.id, F_ARMED_CPU) == 0;
	if (write(report, &a, sizeof(a)) != sizeof(a))
		return 3;
	end = t_now() + (__u64)ms * 1000000;
	while (t_now() < end)
		for (int i = 0; i < a.rings; i++)
			for (__u32 l = 0; l < SN_MAX_LANES; l++)
				atomic_store(tail_of(&v[i], l), (__u32)xorshift(&seed));
	return 0;
}

/* The pid of CPU @cpu's wakeup thread, or -1. */
static int sn_thread_of(int cpu)
{
	int pids[64], n = sn_threads(pids, 64);
	char path[64], comm[32], want[16];

	snprintf(want, sizeof(want), "sn/%d\n", cpu);
	for (int i = 0; i < n; i++) {
		FILE *f;

		snprintf(path, sizeof(path), "/proc/%d/comm", pids[i]);
		f = fopen(path, "r");
		if (!f)
			continue;
		if (fgets(comm, sizeof(comm), f) && !strcmp(comm, want)) {
			fclose(f);
			return pids[i];
		}
		fclose(f);
	}
	return -1;
}

/*
 * An unprivileged user turns the threads against others: home_cpu outside
 * its CPUs is refused, what it may arm on one thread is bounded, and a
 * victim's ring on the same thread keeps working while the attacker
 * scribbles. The thread's CPU time during the attack is logged.
 */
TEST_F_TIMEOUT(kthread, unprivileged_attacker, 900)
{
	int pipefd[2], status, thread = sn_thread_of(0);
	struct attack a;
	long t0, t1, hz = sysconf(_SC_CLK_TCK);
	pid_t pid;

	ASSERT_LT(0, thread);
	ASSERT_EQ(0, set_param("poll_mode", "adaptive"));
	ASSERT_EQ(0, set_param("poll_idle_us", "1000"));
	ASSERT_EQ(0, set_param("max_armed_per_user", "8"));
	ASSERT_EQ(0, pipe(pipefd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(pipefd[0]);
		_exit(attacker(pipefd[1], 2000));
	}
	close(pipefd[1]);
	ASSERT_EQ(sizeof(a), read(pipefd[0], &a, sizeof(a)));
	t0 = cpu_ticks(thread);
	/* A victim on the same thread, meanwhile. */
	exchange_on(_metadata, NULL, t_scaled(8000), 0);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	t1 = cpu_ticks(thread);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	EXPECT_EQ(-EINVAL, a.home_err);
	EXPECT_LT(0, a.rings);
	EXPECT_GE(8, a.armed);
	TH_LOG("attacker: home_cpu 1 -> %d, %d rings of 64 lanes (then %d), %d watched; sn/0 used %ld of %ld ticks in the attack",
	       a.home_err, a.rings, a.create_err, a.armed, t1 - t0, 2 * hz);
	close(pipefd[0]);
}

TEST_F(kthread, idle_threads_use_no_cpu)
{
	int pids[64], n = sn_threads(pids, 64);
	long before = 0, after = 0;

	ASSERT_LT(0, n);
	/* Nothing armed: every ring of the earlier tests is closed. */
	usleep(200000);
	for (int i = 0; i < n; i++)
		before += cpu_ticks(pids[i]);
	sleep(2);
	for (int i = 0; i < n; i++)
		after += cpu_ticks(pids[i]);
	EXPECT_GE(1, after - before) TH_LOG("%ld ticks in 2 s", after - before);
}

struct armed_sleeper {
	int fd;
	struct view *v;
	__u64 slept_ms;
};

static void *sleep_on_garbage(void *arg)
{
	struct armed_sleeper *a = arg;
	struct pollfd p = { .fd = a->fd, .events = POLLIN };
	__u64 t0 = t_now();

	atomic_fetch_add(waiters_of(a->v), 1);
	poll(&p, 1, 3000);
	a->slept_ms = (t_now() - t0) / 1000000;
	return NULL;
}

TEST_F(kthread, scribbled_armed_ring)
{
	struct sn_create p = params(SN_RING_MPMC, 8, 16, 4);
	struct armed_sleeper a;
	struct view bad;
	struct pair good;
	pthread_t t, c;
	void *got;
	pid_t pid;
	int status;

	ASSERT_EQ(0, set_param("poll_mode", "always"));
	p.flags = SN_CREATE_HOME_CPU;
	a.fd = create(&p);
	ASSERT_LE(0, a.fd);
	ASSERT_EQ(0, view_open(&bad, a.fd));
	a.v = &bad;
	ASSERT_EQ(0, pthread_create(&t, NULL, sleep_on_garbage, &a));
	usleep(100000);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		__u64 s = 12345, *w = (__u64 *)(bad.base + bad.i.off.cons);
		size_t words = (bad.i.off.map_size - bad.i.off.cons) / 8;
		__u64 end = t_now() + 1000000000ULL;

		while (t_now() < end)
			for (int k = 0; k < 1024; k++)
				w[xorshift(&s) % words] = xorshift(&s);
		_exit(0);
	}
	/* A healthy ring on the same thread keeps working meanwhile. */
	ASSERT_EQ(0, pair_open(&good, 8, 0));
	good.msgs = t_scaled(20000);
	good.gap_seed = 9;
	ASSERT_EQ(0, pthread_create(&c, NULL, sleep_once, &good));
	producer(&good);
	pthread_join(c, &got);
	EXPECT_EQ(good.msgs, (uintptr_t)got);
	EXPECT_EQ(0, good.timeouts);
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	pthread_join(t, NULL);
	/* Woken by garbage or timed out: never held past the timeout. */
	EXPECT_GE(3000 + 1000, a.slept_ms);
	pair_close(&good);
	munmap(bad.base, bad.i.off.map_size);
	close(a.fd);
}

TEST_F(kthread, rmmod_stops_threads)
{
	const char *ko = getenv("SN_KO");
	int pids[64], fd;

	if (!ko)
		SKIP(return, "SN_KO is not set: cannot reload the module");
	ASSERT_LT(0, sn_threads(pids, 64));
	ASSERT_EQ(0, syscall(__NR_delete_module, "sn", O_NONBLOCK));
	EXPECT_EQ(0, sn_threads(pids, 64));
	fd = open(ko, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, syscall(__NR_finit_module, fd, "", 0));
	close(fd);
	EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), sn_threads(pids, 64));
}

TEST_HARNESS_MAIN
