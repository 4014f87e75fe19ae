// SPDX-License-Identifier: MIT
/*
 * libsn's memfd backend and dead peers: real processes killed with SIGKILL
 * at chosen points (the child says where it stands through a pipe), then
 * what only the memfd backend has: its lock bytes, no /proc, a handle
 * shared by fork, concurrent opens and closes. The dead-peer cases both
 * backends share, and the chaos run, are peer_test's.
 */
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

static void stats(struct sn_channel *ch, struct sn_channel_stats *st)
{
	memset(st, 0xff, sizeof(*st));
	if (sn_channel_stats(ch, st))
		memset(st, 0xff, sizeof(*st));
}

/* ---- the lock bytes ---- */

/* OFD locks need no file under them: the claims sit past map_size, the
 * file keeps its size, and another description sees them. */
/* Who may lock byte @at of @fd's memfd: F_UNLCK, F_WRLCK (held), or -1. */
static int byte_lock(int fd, off_t at)
{
	struct flock fl = {
		.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = at, .l_len = 1,
	};

	return fcntl(fd, F_OFD_GETLK, &fl) ? -1 : fl.l_type;
}

TEST(lock_bytes_past_the_end)
{
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct sn_offsets off;
	struct stat st;
	void *base;
	char path[64];
	int fd, nfd = t_fd_count(), i;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 8, .slot_size = 8, .lanes = 4, .flags = M)));
	ASSERT_EQ(0, sn_channel_layout(ch, &base, &off));
	snprintf(path, sizeof(path), "/proc/self/fd/%d", sn_channel_fd(ch));
	fd = open(path, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	/* the channel's, ours, and one per handle */
	EXPECT_EQ(nfd + 4, t_fd_count());
	for (i = 0; i < 130; i++)
		/* lane 0's producer and the consumer hold theirs */
		EXPECT_EQ(i == 0 || i == 128 ? F_WRLCK : F_UNLCK,
			  byte_lock(fd, (off_t)off.map_size + i))
			TH_LOG("byte %d", i);
	ASSERT_EQ(0, fstat(fd, &st));
	EXPECT_EQ((off_t)off.map_size, st.st_size);
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_consumer_close(c));
	for (i = 0; i < 130; i++)
		EXPECT_EQ(F_UNLCK, byte_lock(fd, (off_t)off.map_size + i));
	close(fd);
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(nfd, t_fd_count());
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
		if (sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 8, .slot_size = 8, .lanes = 2, .flags = M)))
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

/* A forked child shares its parent's descriptions: the handle's lock
 * stays held, so the handle is alive while either process lives. */
TEST(fork_keeps_a_handle_alive)
{
	struct sn_channel_stats st;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct kid k;
	pid_t grandchild = 0;
	int status, nfd = t_fd_count();
	__u64 m;

	/* the grandchild becomes ours when its parent dies */
	ASSERT_EQ(0, prctl(PR_SET_CHILD_SUBREAPER, 1));
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 8, .slot_size = 8, .lanes = 2, .flags = M)));
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
	EXPECT_EQ(nfd, t_fd_count());
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
			if (r == -EUSERS)
				continue;
			if (r) {
				__atomic_fetch_add(&x->errors, 1, __ATOMIC_RELAXED);
				continue;
			}
			w = (__u32)sn_producer_lane(p);
		} else {
			r = sn_consumer_open(x->ch, &c);
			if (r == -EUSERS)
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
	int nfd = t_fd_count(), i;

	/* two lanes for four threads each: -EUSERS now and then */
	ASSERT_EQ(0, sn_channel_create(&x[0].ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 8, .slot_size = 8, .lanes = 2, .flags = M)));
	ASSERT_EQ(0, sn_channel_create(&x[1].ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 8, .slot_size = 8, .lanes = 2, .flags = M)));
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
	EXPECT_EQ(nfd, t_fd_count());
}

/* ---- consumers ---- */

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
	int nfd = t_fd_count();

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 4, .slot_size = 8, .lanes = 1, .flags = M)));
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
	EXPECT_EQ(nfd, t_fd_count());
}

TEST_HARNESS_MAIN
