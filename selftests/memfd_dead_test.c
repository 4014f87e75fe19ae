// SPDX-License-Identifier: MIT
/*
 * libsn's memfd backend and dead peers: real processes killed with SIGKILL
 * at chosen points (the child says where it stands through a pipe), then
 * what the survivors see (include/sn/channel.h, "Dead peers"), and a chaos
 * run of SIGKILLs under traffic. SN_TEST_SCALE=N runs N% of the kills.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <sched.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_common.h"
/* SN_MEMFD_LIVENESS_NS: how often a memfd sleeper looks for dead peers */
#include "../libsn/internal.h"

#include "kselftest_harness.h"

#define M SN_BACKEND_MEMFD
/*
 * What a sleeper may take beyond a liveness period to see a death: 1 s on
 * a loaded 2-CPU box, more where SN_TEST_SCALE says the machine is slow
 * (emulated guests, sanitizers), never near the 10 s the sleeps ask.
 */
static __u64 t_slack(__u64 base)
{
	__u64 v = base * 100 / t_scaled(100);

	return v < base ? base : v > 5 * base ? 5 * base : v;
}

#define T_SLACK t_slack(1000 * MS)

/* Open fds of this process. */
static int fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

/* A child that tells the parent where it stands through a pipe. */
struct kid {
	pid_t pid;
	int rd;		/* parent's end */
	int wr;		/* child's end */
};

static int kid_start(struct kid *k)
{
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return -1;
	k->rd = p[0];
	k->wr = p[1];
	k->pid = fork();
	if (k->pid < 0)
		return -1;
	if (k->pid)
		close(k->wr);
	else
		close(k->rd);
	return 0;
}

/* Child: reports @v; a failure code makes the parent's kid_wait fail. */
static void kid_say(struct kid *k, char v)
{
	if (write(k->wr, &v, 1) != 1)
		_exit(99);
}

/* Parent: the child's next report, or 0 after 10 s or at its exit. */
static char kid_wait(struct kid *k)
{
	struct pollfd pfd = { .fd = k->rd, .events = POLLIN };
	char v = 0;

	if (poll(&pfd, 1, 10000) != 1 || read(k->rd, &v, 1) != 1)
		return 0;
	return v;
}

/* Parent: SIGKILL and reap. */
static int kid_kill(struct kid *k)
{
	int status;

	kill(k->pid, SIGKILL);
	close(k->rd);
	if (waitpid(k->pid, &status, 0) != k->pid)
		return -1;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : -1;
}

/* Parent: a clean exit with status 0. */
static int kid_reap(struct kid *k)
{
	int status;

	close(k->rd);
	if (waitpid(k->pid, &status, 0) != k->pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* Child: the channel as a process that knows only its fd. */
static struct sn_channel *kid_attach(struct sn_channel *ch)
{
	struct sn_channel *mine;

	if (sn_channel_attach(&mine, sn_channel_fd(ch), 0))
		_exit(98);
	return mine;
}

static void kid_sleep(void)
{
	for (;;)
		pause();
}

/* Kills @pid after @delay_ms from a thread, noting when. */
struct killer {
	pthread_t th;
	pid_t pid;
	unsigned int delay_ms;
	__u64 at;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep(k->delay_ms * 1000);
	k->at = t_now();
	kill(k->pid, SIGKILL);
	return NULL;
}

static void killer_start(struct killer *k, pid_t pid, unsigned int delay_ms)
{
	k->pid = pid;
	k->delay_ms = delay_ms;
	k->at = 0;
	pthread_create(&k->th, NULL, killer_main, k);
}

static void stats(struct sn_channel *ch, struct sn_channel_stats *st)
{
	memset(st, 0xff, sizeof(*st));
	if (sn_channel_stats(ch, st))
		memset(st, 0xff, sizeof(*st));
}

/* ---- the lock bytes ---- */

/* OFD locks need no file under them: the claims sit past map_size, the
 * file keeps its size, and another description sees them. */
TEST(lock_bytes_past_the_end)
{
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct sn_offsets off;
	struct stat st;
	void *base;
	char path[64];
	int fd, nfd = fd_count(), i;
	struct flock fl;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_MPSC, 8, 8, 4, M));
	ASSERT_EQ(0, sn_channel_layout(ch, &base, &off));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sn_channel_fd(ch));
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	/* the channel's, ours, and one per handle */
	EXPECT_EQ(nfd + 4, fd_count());
	for (i = 0; i < 130; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)off.map_size + i;
		fl.l_len = 1;
		ASSERT_EQ(0, fcntl(fd, F_OFD_GETLK, &fl));
		/* lane 0's producer and the consumer hold theirs */
		EXPECT_EQ(i == 0 || i == 128 ? F_WRLCK : F_UNLCK, fl.l_type)
			TH_LOG("byte %d", i);
	}
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ((off_t)off.map_size, st.st_size);
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_consumer_close(c));
	for (i = 0; i < 130; i++) {
		memset(&fl, 0, sizeof(fl));
		fl.l_type = F_WRLCK;
		fl.l_whence = SEEK_SET;
		fl.l_start = (off_t)off.map_size + i;
		fl.l_len = 1;
		ASSERT_EQ(0, fcntl(fd, F_OFD_GETLK, &fl));
		EXPECT_EQ(F_UNLCK, fl.l_type);
	}
	close(fd);
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
}

/* Without /proc a handle cannot have a description of its own: -ENOSYS,
 * not a handle without liveness. */
TEST(no_proc_no_handles)
{
	struct kid k;

	ASSERT_EQ(0, kid_start(&k));
	if (!k.pid) {
		struct sn_channel *ch;
		struct sn_producer *p;
		struct sn_consumer *c;

		/* a mount namespace of our own with /proc hidden */
		if (unshare(CLONE_NEWNS) &&
		    unshare(CLONE_NEWUSER | CLONE_NEWNS))
			_exit(10);
		if (mount(NULL, "/", NULL, MS_REC | MS_PRIVATE, NULL) ||
		    mount("none", "/proc", "tmpfs", 0, NULL))
			_exit(10);
		if (sn_channel_create(&ch, SN_RING_MPMC, 8, 8, 2, M))
			_exit(2);
		if (sn_producer_open(ch, &p) != -ENOSYS ||
		    sn_consumer_open(ch, &c) != -ENOSYS ||
		    sn_channel_shutdown(ch) != -ENOSYS)
			_exit(3);
		_exit(sn_channel_close(ch) ? 4 : 0);
	}
	switch (kid_reap(&k)) {
	case 0:
		break;
	case 10:
		SKIP(return, "cannot hide /proc here (no namespaces)");
	default:
		ASSERT_TRUE(0) TH_LOG("no -ENOSYS without /proc");
	}
}

/* ---- producers ---- */

/* Killed between sn_reserve and sn_commit: its commits arrive in order,
 * the reservation is counted lost, the lane is free again and a new
 * producer continues from its tail. */
TEST(producer_killed_holding_a_reservation)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	int nfd = fd_count(), t;

	for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_producer *p;
		struct sn_consumer *c;
		struct sn_channel *ch;
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : 2;
		__u64 m, i;
		struct kid k;

		ASSERT_EQ(0, sn_channel_create(&ch, types[t], 16, 8, lanes, M));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, kid_start(&k));
		if (!k.pid) {
			struct sn_channel *mine = kid_attach(ch);
			__u32 pos;

			if (sn_producer_open(mine, &p))
				_exit(2);
			for (m = 0; m < 5; m++)
				if (sn_send(p, &m, 0))
					_exit(3);
			if (sn_reserve(p, 3, &pos) != 3)
				_exit(4);
			for (i = 0; i < 3; i++)
				memset(sn_producer_slot(p, pos + i), 0xee, 8);
			kid_say(&k, 'r');
			kid_sleep();
		}
		ASSERT_EQ('r', kid_wait(&k));
		ASSERT_EQ(0, kid_kill(&k));
		stats(ch, &st);
		EXPECT_EQ(1, st.producers_died);
		EXPECT_EQ(3, st.reserved_lost);
		EXPECT_EQ(0, st.lanes_live);
		EXPECT_EQ(1, st.lanes_dead);
		EXPECT_EQ(1, st.ended);
		EXPECT_EQ(0, st.orphaned);
		EXPECT_EQ(5, st.depth);
		for (i = 0; i < 5; i++) {
			ASSERT_EQ(0, sn_recv(c, &m, 1000 * MS));
			EXPECT_EQ(i, m);
		}
		EXPECT_EQ(-EPIPE, sn_try_recv(c, &m));
		EXPECT_EQ(-EPIPE, sn_recv(c, &m, 1000 * MS));
		/* the lane again, from its tail */
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		EXPECT_EQ(0, sn_producer_lane(p));
		stats(ch, &st);
		EXPECT_EQ(1, st.lanes_live);
		EXPECT_EQ(0, st.lanes_dead);
		EXPECT_EQ(0, st.ended);
		m = 5;
		ASSERT_EQ(0, sn_send(p, &m, 0));
		ASSERT_EQ(0, sn_recv(c, &m, 1000 * MS));
		EXPECT_EQ(5, m);
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, &m));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(-EPIPE, sn_try_recv(c, &m));
		stats(ch, &st);
		EXPECT_EQ(1, st.producers_died);	/* a close is no death */
		EXPECT_EQ(3, st.reserved_lost);
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
	EXPECT_EQ(nfd, fd_count());
}

/* A consumer asleep in sn_recv(10 s) when the last producer dies returns
 * -EPIPE within about a liveness period; with another producer alive it
 * keeps sleeping. */
TEST(sleeping_consumer_sees_the_producer_die)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	int nfd = fd_count(), t;

	for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_producer *p2 = NULL;
		struct sn_consumer *c;
		struct sn_channel *ch;
		struct killer kl;
		struct kid k;
		__u64 m, t0;

		ASSERT_EQ(0, sn_channel_create(&ch, types[t], 8, 8,
					       types[t] == SN_RING_SPSC ? 1 : 2,
					       M));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, kid_start(&k));
		if (!k.pid) {
			struct sn_channel *mine = kid_attach(ch);
			struct sn_producer *p;

			if (sn_producer_open(mine, &p))
				_exit(2);
			for (m = 0; m < 2; m++)
				if (sn_send(p, &m, 0))
					_exit(3);
			kid_say(&k, 'r');
			kid_sleep();
		}
		ASSERT_EQ('r', kid_wait(&k));
		ASSERT_EQ(0, sn_recv(c, &m, 1000 * MS));
		ASSERT_EQ(0, sn_recv(c, &m, 1000 * MS));
		if (types[t] != SN_RING_SPSC) {
			/* another producer: the death does not end the stream */
			ASSERT_EQ(0, sn_producer_open(ch, &p2));
			killer_start(&kl, k.pid, 100);
			EXPECT_EQ(-ETIMEDOUT, sn_recv(c, &m, 400 * MS));
			pthread_join(kl.th, NULL);
			stats(ch, &st);
			EXPECT_EQ(1, st.producers_died);
			EXPECT_EQ(0, st.ended);
			EXPECT_EQ(0, sn_producer_close(p2));
			EXPECT_EQ(-EPIPE, sn_try_recv(c, &m));
			EXPECT_EQ(0, kid_kill(&k));
		} else {
			killer_start(&kl, k.pid, 100);
			t0 = t_now();
			EXPECT_EQ(-EPIPE, sn_recv(c, &m, 10000 * MS));
			pthread_join(kl.th, NULL);
			EXPECT_GT(SN_MEMFD_LIVENESS_NS + T_SLACK,
				  t_now() - kl.at);
			EXPECT_LT(90 * MS, t_now() - t0);
			EXPECT_EQ(0, kid_kill(&k));
			stats(ch, &st);
			EXPECT_EQ(1, st.producers_died);
			EXPECT_EQ(1, st.ended);
		}
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
	/* MPSC and MPMC once more, the one producer dying */
	for (t = 1; t < 3; t++) {
		struct sn_consumer *c;
		struct sn_channel *ch;
		struct killer kl;
		struct kid k;
		__u64 m;

		ASSERT_EQ(0, sn_channel_create(&ch, types[t], 8, 8, 3, M));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, kid_start(&k));
		if (!k.pid) {
			struct sn_channel *mine = kid_attach(ch);
			struct sn_producer *p;

			if (sn_producer_open(mine, &p))
				_exit(2);
			kid_say(&k, 'r');
			kid_sleep();
		}
		ASSERT_EQ('r', kid_wait(&k));
		killer_start(&kl, k.pid, 100);
		EXPECT_EQ(-EPIPE, sn_recv(c, &m, 10000 * MS));
		pthread_join(kl.th, NULL);
		EXPECT_GT(SN_MEMFD_LIVENESS_NS + T_SLACK, t_now() - kl.at);
		EXPECT_EQ(0, kid_kill(&k));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
	EXPECT_EQ(nfd, fd_count());
}

/* The last producer closes: its messages first, then -EPIPE, for a
 * sleeper too; no death counted. */
TEST(clean_close_ends_the_stream)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	int nfd = fd_count(), t;

	for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_channel *ch;
		struct kid k;
		__u64 m, i, t0;

		ASSERT_EQ(0, sn_channel_create(&ch, types[t], 16, 8,
					       types[t] == SN_RING_SPSC ? 1 : 2,
					       M));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, kid_start(&k));
		if (!k.pid) {
			struct sn_channel *mine = kid_attach(ch);
			struct sn_producer *p;

			if (sn_producer_open(mine, &p))
				_exit(2);
			kid_say(&k, 'r');
			usleep(100000);	/* the parent sleeps in sn_recv */
			for (m = 0; m < 10; m++)
				if (sn_send(p, &m, 0))
					_exit(3);
			if (sn_producer_close(p) || sn_channel_close(mine))
				_exit(4);
			_exit(0);
		}
		ASSERT_EQ('r', kid_wait(&k));
		t0 = t_now();
		for (i = 0; i < 10; i++) {
			ASSERT_EQ(0, sn_recv(c, &m, 10000 * MS));
			EXPECT_EQ(i, m);
		}
		EXPECT_EQ(-EPIPE, sn_recv(c, &m, 10000 * MS));
		EXPECT_GT(2000 * MS, t_now() - t0);
		EXPECT_EQ(0, kid_reap(&k));
		stats(ch, &st);
		EXPECT_EQ(0, st.producers_died);
		EXPECT_EQ(0, st.lanes_dead);
		EXPECT_EQ(0, st.reserved_lost);
		EXPECT_EQ(1, st.ended);
		EXPECT_EQ(0, st.orphaned);
		EXPECT_EQ(0, sn_consumer_close(c));
		stats(ch, &st);
		EXPECT_EQ(1, st.orphaned);
		EXPECT_EQ(0, st.consumers_died);
		EXPECT_EQ(0, sn_channel_close(ch));
	}
	EXPECT_EQ(nfd, fd_count());
}

/* Never a producer: nothing has ended, producers may come later. */
TEST(no_producer_yet_is_not_the_end)
{
	struct sn_channel_stats st;
	struct sn_consumer *c;
	struct sn_channel *ch;
	__u64 m, t0;
	__u32 pos;
	int nfd = fd_count();

	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_MPSC, 8, 8, 2, M));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	EXPECT_EQ(-EAGAIN, sn_try_recv(c, &m));
	EXPECT_EQ(-EAGAIN, sn_peek(c, 1, &pos));
	t0 = t_now();
	EXPECT_EQ(-ETIMEDOUT, sn_recv(c, &m, 150 * MS));
	EXPECT_LE(150 * MS, t_now() - t0);
	EXPECT_EQ(-ETIMEDOUT, sn_consumer_wait(c, 60 * MS));
	stats(ch, &st);
	EXPECT_EQ(0, st.ended);
	EXPECT_EQ(0, st.orphaned);
	EXPECT_EQ(0, sn_consumer_close(c));
	/* and never a consumer: sends are not refused */
	stats(ch, &st);
	EXPECT_EQ(1, st.orphaned);
	EXPECT_EQ(0, sn_channel_close(ch));
	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_SPSC, 8, 8, 1, M));
	{
		struct sn_producer *p;

		ASSERT_EQ(0, sn_producer_open(ch, &p));
		m = 1;
		EXPECT_EQ(0, sn_send(p, &m, 0));
		stats(ch, &st);
		EXPECT_EQ(0, st.orphaned);
		EXPECT_EQ(0, sn_producer_close(p));
	}
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
}

/* sn_channel_shutdown ends a stream that never had a producer, wakes the
 * sleeper; a new producer continues, and its close ends it again. */
TEST(shutdown_ends_without_a_producer)
{
	struct sn_channel_stats st;
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel *ch, *other;
	struct kid k;
	__u64 m, t0;
	int nfd = fd_count();

	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_MPMC, 8, 8, 2, M));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(0, kid_start(&k));
	if (!k.pid) {
		struct sn_channel *mine = kid_attach(ch);

		usleep(100000);
		_exit(sn_channel_shutdown(mine) ? 2 : 0);
	}
	t0 = t_now();
	EXPECT_EQ(-EPIPE, sn_recv(c, &m, 10000 * MS));
	EXPECT_GT(2000 * MS, t_now() - t0);
	EXPECT_EQ(0, kid_reap(&k));
	stats(ch, &st);
	EXPECT_EQ(1, st.ended);
	EXPECT_EQ(-EPIPE, sn_try_recv(c, &m));
	ASSERT_EQ(0, sn_channel_attach(&other, sn_channel_fd(ch), 0));
	ASSERT_EQ(0, sn_producer_open(other, &p));
	stats(ch, &st);
	EXPECT_EQ(0, st.ended);
	m = 7;
	EXPECT_EQ(0, sn_send(p, &m, 0));
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_recv(c, &m, 1000 * MS));
	EXPECT_EQ(7, m);
	EXPECT_EQ(-EPIPE, sn_try_recv(c, &m));
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_channel_close(other));
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
}

/* A forked child shares its parent's descriptions: the handle's lock
 * stays held, so the handle is alive while either process lives. */
TEST(fork_keeps_a_handle_alive)
{
	struct sn_channel_stats st;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct kid k;
	pid_t grandchild = 0;
	int status, nfd = fd_count();
	__u64 m;

	/* the grandchild becomes ours when its parent dies */
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_MPSC, 8, 8, 2, M));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(0, kid_start(&k));
	if (!k.pid) {
		struct sn_channel *mine = kid_attach(ch);
		struct sn_producer *p;
		pid_t g;

		m = 1;
		if (sn_producer_open(mine, &p) || sn_send(p, &m, 0))
			_exit(2);
		g = fork();
		if (g < 0)
			_exit(3);
		if (g == 0)
			kid_sleep();	/* keeps the description, no handle */
		kid_say(&k, 'r');
		if (write(k.wr, &g, sizeof(g)) != sizeof(g))
			_exit(4);
		kid_sleep();
	}
	ASSERT_EQ('r', kid_wait(&k));
	ASSERT_EQ(sizeof(grandchild), read(k.rd, &grandchild,
					   sizeof(grandchild)));
	ASSERT_EQ(0, kid_kill(&k));
	stats(ch, &st);
	EXPECT_EQ(0, st.producers_died);
	EXPECT_EQ(1, st.lanes_live);
	EXPECT_EQ(0, st.ended);
	EXPECT_EQ(0, sn_recv(c, &m, 1000 * MS));
	EXPECT_EQ(-ETIMEDOUT, sn_recv(c, &m, 100 * MS));
	kill(grandchild, SIGKILL);
	ASSERT_EQ(grandchild, waitpid(grandchild, &status, 0));
	stats(ch, &st);
	EXPECT_EQ(1, st.producers_died);
	EXPECT_EQ(0, st.lanes_live);
	EXPECT_EQ(1, st.ended);
	EXPECT_EQ(-EPIPE, sn_recv(c, &m, 1000 * MS));
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
}

/* Threads of one process open and close handles at once: each handle's
 * own description keeps them apart (a lane or a record is never given
 * twice), and nothing is left claimed or open. */
struct churn {
	struct sn_channel *ch;
	__u32 owners[2][SN_MAX_CLAIMS];	/* holders: [0] records, [1] lanes */
	__u64 errors, opens;
};

static void *churn_main(void *arg)
{
	struct churn *x = arg;
	int i, r;

	for (i = 0; i < 300; i++) {
		struct sn_producer *p;
		struct sn_consumer *c;
		__u32 w;

		if (i & 1) {
			r = sn_producer_open(x->ch, &p);
			if (r == -ENOSPC)
				continue;
			if (r) {
				__atomic_fetch_add(&x->errors, 1, __ATOMIC_RELAXED);
				continue;
			}
			w = (__u32)sn_producer_lane(p);
		} else {
			r = sn_consumer_open(x->ch, &c);
			if (r == -ENOSPC)
				continue;
			if (r) {
				__atomic_fetch_add(&x->errors, 1, __ATOMIC_RELAXED);
				continue;
			}
			w = c->claim_idx;
		}
		if (__atomic_fetch_add(&x->owners[i & 1][w], 1,
				       __ATOMIC_RELAXED))
			__atomic_fetch_add(&x->errors, 1, __ATOMIC_RELAXED);
		__atomic_fetch_add(&x->opens, 1, __ATOMIC_RELAXED);
		sched_yield();
		__atomic_fetch_sub(&x->owners[i & 1][w], 1, __ATOMIC_RELAXED);
		if (i & 1)
			sn_producer_close(p);
		else
			sn_consumer_close(c);
	}
	return NULL;
}

TEST(threads_open_and_close)
{
	struct sn_channel_stats st;
	struct churn x[2] = { 0 };
	pthread_t th[8];
	int nfd = fd_count(), i;

	/* two lanes for four threads each: -ENOSPC now and then */
	ASSERT_EQ(0, sn_channel_create(&x[0].ch, SN_RING_MPMC, 8, 8, 2, M));
	ASSERT_EQ(0, sn_channel_create(&x[1].ch, SN_RING_MPMC, 8, 8, 2, M));
	for (i = 0; i < 8; i++)
		pthread_create(&th[i], NULL, churn_main, &x[i & 1]);
	for (i = 0; i < 8; i++)
		pthread_join(th[i], NULL);
	for (i = 0; i < 2; i++) {
		EXPECT_EQ(0, x[i].errors);
		EXPECT_LT(100, x[i].opens);
		stats(x[i].ch, &st);
		EXPECT_EQ(0, st.lanes_live);
		EXPECT_EQ(0, st.producers_died);
		EXPECT_EQ(0, st.consumers_died);
		EXPECT_EQ(1, st.ended);
		EXPECT_EQ(1, st.orphaned);
		EXPECT_EQ(0, sn_channel_close(x[i].ch));
	}
	EXPECT_EQ(nfd, fd_count());
}

/* ---- consumers ---- */

/* An SPSC/MPSC consumer killed holding a peek: the next consumer opens at
 * once and gets the unreleased messages again. */
TEST(single_consumer_killed_holding_a_peek)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC };
	int nfd = fd_count(), t;

	for (t = 0; t < 2; t++) {
		struct sn_channel_stats st;
		struct sn_producer *p;
		struct sn_consumer *c;
		struct sn_channel *ch;
		struct kid k;
		__u64 m, i;

		ASSERT_EQ(0, sn_channel_create(&ch, types[t], 8, 8, 1, M));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		for (m = 0; m < 5; m++)
			ASSERT_EQ(0, sn_send(p, &m, 0));
		ASSERT_EQ(0, kid_start(&k));
		if (!k.pid) {
			struct sn_channel *mine = kid_attach(ch);
			__u32 pos;

			if (sn_consumer_open(mine, &c))
				_exit(2);
			if (sn_recv(c, &m, 0) || m != 0)	/* released */
				_exit(3);
			if (sn_peek(c, 3, &pos) != 3)
				_exit(4);
			kid_say(&k, 'r');
			kid_sleep();
		}
		ASSERT_EQ('r', kid_wait(&k));
		EXPECT_EQ(-EBUSY, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, kid_kill(&k));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (i = 1; i < 5; i++) {
			ASSERT_EQ(0, sn_recv(c, &m, 1000 * MS));
			EXPECT_EQ(i, m);
		}
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, &m));
		stats(ch, &st);
		EXPECT_EQ(1, st.consumers_died);
		EXPECT_EQ(0, st.producers_died);
		EXPECT_EQ(0, st.claims_lost);
		EXPECT_EQ(0, st.orphaned);
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
	EXPECT_EQ(nfd, fd_count());
}

/* A producer asleep on a full ring whose consumer is killed returns
 * -EPIPE; a new consumer gets what is in the ring and sends go on. */
TEST(sleeping_producer_sees_the_consumer_die)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	int nfd = fd_count(), t;

	for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_producer *p;
		struct sn_consumer *c;
		struct sn_channel *ch;
		struct killer kl;
		struct kid k;
		__u64 m, i;

		ASSERT_EQ(0, sn_channel_create(&ch, types[t], 4, 8, 1, M));
		ASSERT_EQ(0, kid_start(&k));
		if (!k.pid) {
			struct sn_channel *mine = kid_attach(ch);

			if (sn_consumer_open(mine, &c))
				_exit(2);
			kid_say(&k, 'r');
			kid_sleep();
		}
		ASSERT_EQ('r', kid_wait(&k));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		for (m = 0; m < 4; m++)
			ASSERT_EQ(0, sn_send(p, &m, 0));
		killer_start(&kl, k.pid, 100);
		EXPECT_EQ(-EPIPE, sn_send(p, &m, 10000 * MS));
		pthread_join(kl.th, NULL);
		EXPECT_GT(SN_MEMFD_LIVENESS_NS + T_SLACK, t_now() - kl.at);
		EXPECT_EQ(0, kid_kill(&k));
		stats(ch, &st);
		EXPECT_EQ(1, st.consumers_died);
		EXPECT_EQ(1, st.orphaned);
		EXPECT_EQ(0, st.ended);
		EXPECT_EQ(-EPIPE, sn_try_send(p, &m));
		EXPECT_EQ(-EPIPE, sn_producer_wait(p, 10 * MS));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		stats(ch, &st);
		EXPECT_EQ(0, st.orphaned);
		for (i = 0; i < 4; i++) {
			ASSERT_EQ(0, sn_recv(c, &m, 1000 * MS));
			EXPECT_EQ(i, m);
		}
		m = 4;
		EXPECT_EQ(0, sn_send(p, &m, 1000 * MS));
		EXPECT_EQ(0, sn_recv(c, &m, 1000 * MS));
		EXPECT_EQ(4, m);
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
	EXPECT_EQ(nfd, fd_count());
}

/* An MPMC consumer killed between claim and release: the producer blocked
 * on those positions goes on after a check, they are counted lost, and
 * the other consumer goes on unaffected. */
TEST(mpmc_consumer_killed_holding_a_peek)
{
	struct sn_channel_stats st;
	struct sn_producer *p;
	struct sn_consumer *c2;
	struct sn_channel *ch;
	struct killer kl;
	struct kid k;
	__u64 m;
	int nfd = fd_count();

	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_MPMC, 4, 8, 1, M));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c2));
	for (m = 0; m < 3; m++)
		ASSERT_EQ(0, sn_send(p, &m, 0));
	ASSERT_EQ(0, kid_start(&k));
	if (!k.pid) {
		struct sn_channel *mine = kid_attach(ch);
		struct sn_consumer *c;
		__u32 pos;

		if (sn_consumer_open(mine, &c))
			_exit(2);
		if (sn_peek(c, 3, &pos) != 3 || pos != 0)
			_exit(3);
		kid_say(&k, 'r');
		kid_sleep();
	}
	ASSERT_EQ('r', kid_wait(&k));
	m = 3;
	ASSERT_EQ(0, sn_send(p, &m, 0));	/* the last free slot */
	m = 4;
	EXPECT_EQ(-EAGAIN, sn_try_send(p, &m));	/* position 0 is held */
	killer_start(&kl, k.pid, 100);
	EXPECT_EQ(0, sn_send(p, &m, 10000 * MS));
	pthread_join(kl.th, NULL);
	EXPECT_GT(SN_MEMFD_LIVENESS_NS + T_SLACK, t_now() - kl.at);
	EXPECT_EQ(0, kid_kill(&k));
	stats(ch, &st);
	EXPECT_EQ(1, st.consumers_died);
	EXPECT_EQ(1, st.claims_recovered);
	EXPECT_EQ(3, st.claims_lost);
	EXPECT_EQ(0, st.orphaned);
	EXPECT_EQ(0, st.ended);
	/* the other consumer: what the dead one did not claim, once */
	EXPECT_EQ(0, sn_recv(c2, &m, 1000 * MS));
	EXPECT_EQ(3, m);
	EXPECT_EQ(0, sn_recv(c2, &m, 1000 * MS));
	EXPECT_EQ(4, m);
	EXPECT_EQ(-EAGAIN, sn_try_recv(c2, &m));
	/* the lane is whole: a full lap more */
	for (m = 5; m < 9; m++)
		EXPECT_EQ(0, sn_send(p, &m, 1000 * MS));
	for (m = 5; m < 9; m++) {
		__u64 got = 0;

		EXPECT_EQ(0, sn_recv(c2, &got, 1000 * MS));
		EXPECT_EQ(m, got);
	}
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(-EPIPE, sn_try_recv(c2, &m));
	EXPECT_EQ(0, sn_consumer_close(c2));
	stats(ch, &st);
	EXPECT_EQ(1, st.orphaned);
	EXPECT_EQ(1, st.consumers_died);	/* closes are no deaths */
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
}

/* The last MPMC consumer dies: producers are orphaned (-EPIPE), and a
 * record in INTENT of a consumer killed before its CAS loses nothing. */
TEST(mpmc_last_consumer_killed)
{
	struct sn_channel_stats st;
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct kid k;
	__u64 m;
	int nfd = fd_count();

	ASSERT_EQ(0, sn_channel_create(&ch, SN_RING_MPMC, 4, 8, 1, M));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	for (m = 0; m < 2; m++)
		ASSERT_EQ(0, sn_send(p, &m, 0));
	ASSERT_EQ(0, kid_start(&k));
	if (!k.pid) {
		struct sn_channel *mine = kid_attach(ch);
		struct sn_offsets off;
		struct sn_claim *rec;
		void *base;

		if (sn_consumer_open(mine, &c) ||
		    sn_channel_layout(mine, &base, &off))
			_exit(2);
		/* as sn__cons_take right before its CAS [D2] */
		rec = (struct sn_claim *)((unsigned char *)base + off.cons +
					  off.cons_claims +
					  (__u64)c->claim_idx * SN_PAD);
		rec->lane = 0;
		rec->pos = 0;
		rec->n = 2;
		__atomic_store_n(&rec->state, SN_CLAIM_INTENT,
				 __ATOMIC_RELEASE);
		kid_say(&k, 'r');
		kid_sleep();
	}
	ASSERT_EQ('r', kid_wait(&k));
	ASSERT_EQ(0, kid_kill(&k));
	stats(ch, &st);
	EXPECT_EQ(1, st.consumers_died);
	EXPECT_EQ(0, st.claims_recovered);
	EXPECT_EQ(0, st.claims_lost);
	EXPECT_EQ(1, st.orphaned);
	EXPECT_EQ(-EPIPE, sn_try_send(p, &m));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	for (m = 0; m < 2; m++) {
		__u64 got = 9;

		EXPECT_EQ(0, sn_recv(c, &got, 1000 * MS));
		EXPECT_EQ(m, got);
	}
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
}

/* ---- chaos ---- */

#define CH_IDS		4096	/* producer processes per run, at most */
#define CH_MSGS		2048	/* messages per producer process */
#define CH_PEEK		4	/* the most a consumer peeks at once */
#define CH_TIMEOUT	(20 * MS)
/* a survivor's call past its timeout by more than this is a failure */
#define CH_LATE		t_slack(1000 * MS)

struct chaos {
	volatile int stop;	/* producers finish; consumers drain */
	__u32 next_id;
	__u64 errors;
	char why[128];
	__u64 worst;		/* the longest overrun of a timeout */
	__u64 dups;
	__u32 committed[CH_IDS];	/* what each producer saw committed */
	unsigned char seen[CH_IDS][CH_MSGS];
};

static void ch_fail(struct chaos *x, const char *what, long v)
{
	if (__atomic_fetch_add(&x->errors, 1, __ATOMIC_RELAXED) == 0)
		snprintf(x->why, sizeof(x->why), "%s (%ld)", what, v);
}

static void ch_time(struct chaos *x, __u64 t0, __u64 timeout)
{
	__u64 dt = t_now() - t0, late = dt > timeout ? dt - timeout : 0, w;

	w = __atomic_load_n(&x->worst, __ATOMIC_RELAXED);
	while (late > w &&
	       !__atomic_compare_exchange_n(&x->worst, &w, late, 0,
					    __ATOMIC_RELAXED, __ATOMIC_RELAXED))
		;
	if (late > CH_LATE)
		ch_fail(x, "a call past its timeout (ms)", (long)(late / MS));
}

static __u64 xorshift(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* A producer process: a fresh id, up to CH_MSGS messages, then a clean
 * close (unless killed first). A message is its id and sequence. */
static void ch_producer(struct sn_channel *ch, struct chaos *x)
{
	__u32 id = __atomic_fetch_add(&x->next_id, 1, __ATOMIC_RELAXED);
	struct sn_producer *p;
	__u64 rnd = (__u64)getpid() * 0x9e3779b97f4a7c15ULL | 1, t0;
	__u32 seq = 0, pos, i;
	int n, nfd = fd_count();

	if (id >= CH_IDS)
		_exit(0);
	n = sn_producer_open(ch, &p);
	if (n) {
		ch_fail(x, "sn_producer_open", n);
		_exit(1);
	}
	while (seq < CH_MSGS && !x->stop) {
		__u64 m[CH_PEEK];
		__u32 k = 1 + (__u32)(xorshift(&rnd) % 3);

		if (k > CH_MSGS - seq)
			k = CH_MSGS - seq;
		t0 = t_now();
		if (xorshift(&rnd) & 1) {
			m[0] = (__u64)id << 32 | seq;
			n = sn_send(p, m, CH_TIMEOUT);
			ch_time(x, t0, CH_TIMEOUT);
			if (!n)
				n = 1;
		} else {
			n = sn_reserve(p, k, &pos);
			for (i = 0; n > 0 && i < (__u32)n; i++) {
				m[0] = (__u64)id << 32 | (seq + i);
				memcpy(sn_producer_slot(p, pos + i), m, 8);
			}
			/* now and then a kill may find a reservation */
			if (n > 0 && !(xorshift(&rnd) % 16))
				usleep((useconds_t)(xorshift(&rnd) % 500));
			if (n > 0 && sn_commit(p, (__u32)n))
				ch_fail(x, "sn_commit", n);
			if (n == -EAGAIN) {
				n = sn_producer_wait(p, CH_TIMEOUT);
				ch_time(x, t0, CH_TIMEOUT);
				continue;
			}
		}
		if (n > 0) {
			seq += (__u32)n;
			/* after the commit: a kill between loses only the
			 * record, never a message we claim was sent */
			__atomic_store_n(&x->committed[id], seq,
					 __ATOMIC_RELAXED);
		} else if (n == -EPIPE) {
			usleep(1000);	/* no consumer now: one will come */
		} else if (n != -ETIMEDOUT) {
			ch_fail(x, "send", n);
		}
	}
	sn_producer_close(p);
	if (fd_count() != nfd)
		ch_fail(x, "producer fds leak", fd_count() - nfd);
	_exit(0);
}

/* A consumer process: peeks, records, releases (a kill between records
 * what the next consumer may get again); per producer, in order. */
static void ch_consumer(struct sn_channel *ch, struct chaos *x, int mpmc)
{
	static __u32 last[CH_IDS];
	struct sn_consumer *c;
	__u64 rnd = (__u64)getpid() * 0x9e3779b97f4a7c15ULL | 1, t0, m;
	__u32 pos, i, id, seq;
	int n, nfd = fd_count();

	n = sn_consumer_open(ch, &c);
	if (n) {
		ch_fail(x, "sn_consumer_open", n);
		_exit(1);
	}
	for (;;) {
		n = sn_peek(c, CH_PEEK, &pos);
		if (n == -EAGAIN) {
			t0 = t_now();
			n = sn_consumer_wait(c, CH_TIMEOUT);
			ch_time(x, t0, CH_TIMEOUT);
			if (n != -EPIPE)
				continue;
		}
		if (n == -EPIPE) {
			if (x->stop)
				break;	/* every producer gone, drained */
			usleep(1000);	/* between a kill and a respawn */
			continue;
		}
		if (n < 0) {
			ch_fail(x, "sn_peek", n);
			break;
		}
		for (i = 0; i < (__u32)n; i++) {
			memcpy(&m, sn_consumer_slot(c, pos + i), 8);
			id = (__u32)(m >> 32);
			seq = (__u32)m;
			if (id >= CH_IDS || seq >= CH_MSGS) {
				ch_fail(x, "garbled", (long)m);
				continue;
			}
			/* in order per producer within one consumer */
			if (seq + 1 <= last[id])
				ch_fail(x, "out of order", (long)seq);
			last[id] = seq + 1;
			if (__atomic_fetch_add(&x->seen[id][seq], 1,
					       __ATOMIC_RELAXED)) {
				__atomic_fetch_add(&x->dups, 1,
						   __ATOMIC_RELAXED);
				if (mpmc)
					ch_fail(x, "MPMC duplicate", (long)m);
			}
		}
		/* now and then a kill may find a peek */
		if (!(xorshift(&rnd) % 16))
			usleep((useconds_t)(xorshift(&rnd) % 500));
		if (sn_release(c, (__u32)n))
			ch_fail(x, "sn_release", n);
	}
	sn_consumer_close(c);
	if (fd_count() != nfd)
		ch_fail(x, "consumer fds leak", fd_count() - nfd);
	_exit(0);
}

static pid_t ch_spawn(struct sn_channel *ch, struct chaos *x, int producer,
		      int mpmc)
{
	pid_t pid = fork();

	if (pid == 0) {
		struct sn_channel *mine;
		int r = sn_channel_attach(&mine, sn_channel_fd(ch), 0);

		if (r) {
			ch_fail(x, "sn_channel_attach", r);
			_exit(1);
		}
		if (producer)
			ch_producer(mine, x);
		ch_consumer(mine, x, mpmc);
	}
	return pid;
}

/* Reaps @pid; a child's own failure is in x->errors. */
static void ch_reap(struct chaos *x, pid_t pid, int killed)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		ch_fail(x, "waitpid", errno);
	else if (!killed && !(WIFEXITED(status) && !WEXITSTATUS(status)))
		ch_fail(x, "a child failed", status);
}

static void chaos_run(struct __test_metadata *_metadata, unsigned int type,
		      unsigned long kills)
{
	unsigned int np = type == SN_RING_SPSC ? 1 : 3;
	unsigned int nc = type == SN_RING_MPMC ? 3 : 1, i;
	unsigned long done = 0, pkills = 0, ckills = 0;
	pid_t prod[3], cons[3];
	struct sn_channel_stats st;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct chaos *x;
	__u64 rnd = 0x2545f4914f6cdd1dULL ^ type, missing = 0, committed = 0;
	__u32 id, seq;
	int status, nfd = fd_count(), mpmc = type == SN_RING_MPMC;

	x = mmap(NULL, sizeof(*x), PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, x);
	ASSERT_EQ(0, sn_channel_create(&ch, type, 8, 8, np, M));
	for (i = 0; i < np; i++)
		prod[i] = ch_spawn(ch, x, 1, mpmc);
	for (i = 0; i < nc; i++)
		cons[i] = ch_spawn(ch, x, 0, mpmc);
	while (done < kills && !x->errors &&
	       __atomic_load_n(&x->next_id, __ATOMIC_RELAXED) < CH_IDS - np) {
		__u64 r = xorshift(&rnd);
		pid_t *victim;
		int producer = (r >> 8) % (np + nc) < np;

		/* a random moment: right after a spawn (in the open) too */
		usleep((useconds_t)((r >> 16) % 4000));
		victim = producer ? &prod[(r >> 32) % np] :
				    &cons[(r >> 32) % nc];
		/* a producer may have finished: replace it */
		for (i = 0; i < np; i++)
			if (waitpid(prod[i], &status, WNOHANG) == prod[i]) {
				if (!WIFEXITED(status) || WEXITSTATUS(status))
					ch_fail(x, "a producer failed", status);
				prod[i] = ch_spawn(ch, x, 1, mpmc);
			}
		kill(*victim, SIGKILL);
		ch_reap(x, *victim, 1);
		*victim = ch_spawn(ch, x, producer, mpmc);
		done++;
		pkills += producer;
		ckills += !producer;
	}
	/* the end: producers finish, then consumers drain to -EPIPE */
	x->stop = 1;
	for (i = 0; i < np; i++)
		ch_reap(x, prod[i], 0);
	for (i = 0; i < nc; i++)
		ch_reap(x, cons[i], 0);
	ASSERT_EQ(0, x->errors) TH_LOG("%s", x->why);
	/* nothing left for a new consumer, and it opens */
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	{
		__u64 m;

		EXPECT_EQ(-EPIPE, sn_try_recv(c, &m));
	}
	EXPECT_EQ(0, sn_consumer_close(c));
	stats(ch, &st);
	for (id = 0; id < CH_IDS && id < x->next_id; id++) {
		committed += x->committed[id];
		for (seq = 0; seq < x->committed[id]; seq++)
			missing += !x->seen[id][seq];
	}
	if (mpmc) {
		EXPECT_EQ(0, x->dups);
		/* at most once; lost only what dead consumers held */
		EXPECT_GE(st.claims_lost, missing);
		EXPECT_GE(ckills, st.consumers_died);
	} else {
		EXPECT_EQ(0, missing);
		EXPECT_GE(ckills * CH_PEEK, x->dups);
		EXPECT_EQ(0, st.claims_lost);
	}
	EXPECT_GE(pkills, st.producers_died);
	EXPECT_LT(0, st.producers_died);
	EXPECT_LT(0, st.consumers_died);
	EXPECT_EQ(0, st.lanes_live);
	EXPECT_EQ(1, st.ended);
	EXPECT_EQ(1, st.orphaned);
	EXPECT_EQ(0, st.depth);
	EXPECT_GT(CH_LATE, x->worst);
	TH_LOG("%s: %lu kills (%lu producers, %lu consumers), %u producer "
	       "processes, %llu committed, %llu again, %llu lost (%llu "
	       "claims), %llu reserved lost, died %llu/%llu, worst overrun %llu ms",
	       type == SN_RING_SPSC ? "SPSC" : mpmc ? "MPMC" : "MPSC",
	       done, pkills, ckills, x->next_id, (unsigned long long)committed,
	       (unsigned long long)x->dups, (unsigned long long)missing,
	       (unsigned long long)st.claims_lost,
	       (unsigned long long)st.reserved_lost,
	       (unsigned long long)st.producers_died,
	       (unsigned long long)st.consumers_died,
	       (unsigned long long)(x->worst / MS));
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, fd_count());
	munmap(x, sizeof(*x));
}

FIXTURE(chaos) {};
FIXTURE_SETUP(chaos) {}
FIXTURE_TEARDOWN(chaos) {}

TEST_F_TIMEOUT(chaos, spsc, 300) { chaos_run(_metadata, SN_RING_SPSC, t_scaled(1000)); }
TEST_F_TIMEOUT(chaos, mpsc, 300) { chaos_run(_metadata, SN_RING_MPSC, t_scaled(1000)); }
TEST_F_TIMEOUT(chaos, mpmc, 300) { chaos_run(_metadata, SN_RING_MPMC, t_scaled(1000)); }

TEST_HARNESS_MAIN
