// SPDX-License-Identifier: MIT
/*
 * libsn channels: blocking (timeouts, sleepers woken), no system call on
 * the hot path (seccomp), and a peer scribbling every shared word it can
 * write. SN_TEST_SCALE=N runs N% of the messages.
 */
#include <errno.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <pthread.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <stdlib.h>
#include <unistd.h>

#include "channel_common.h"

#include "kselftest_harness.h"

#if defined(__SANITIZE_THREAD__) || defined(__SANITIZE_ADDRESS__)
#define T_SANITIZED 1
#else
#define T_SANITIZED 0
#endif

/* ---- timeouts and wakeups ---- */

TEST(timeouts)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_producer *p;
		struct sn_consumer *c;
		struct sn_channel *ch;
		__u64 m = 1, t0, dt;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 2, .slot_size = 8, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_recv(c, &m, 50 * MS));
		dt = t_now() - t0;
		EXPECT_LE(50 * MS, dt);
		EXPECT_GT(250 * MS, dt);
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_consumer_wait(c, 20 * MS));
		dt = t_now() - t0;
		EXPECT_LE(20 * MS, dt);
		EXPECT_GT(220 * MS, dt);
		ASSERT_EQ(0, sn_send(p, &m, 0));
		ASSERT_EQ(0, sn_send(p, &m, 0));
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_send(p, &m, 50 * MS));
		dt = t_now() - t0;
		EXPECT_LE(50 * MS, dt);
		EXPECT_GT(250 * MS, dt);
		EXPECT_EQ(-ETIMEDOUT, sn_producer_wait(p, 1));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

struct waker {
	struct sn_consumer *c;
	struct sn_producer *p;
	int ret;
	__u64 took;
};

static void *recv_long(void *arg)
{
	struct waker *w = arg;
	__u64 t0 = t_now(), m;

	w->ret = sn_recv(w->c, &m, 5000 * MS);
	w->took = t_now() - t0;
	return NULL;
}

static void *send_long(void *arg)
{
	struct waker *w = arg;
	__u64 t0 = t_now(), m = 9;

	w->ret = sn_send(w->p, &m, 5000 * MS);
	w->took = t_now() - t0;
	return NULL;
}

/* A sleeping consumer is woken by a send; a sleeping producer by a recv. */
TEST(sleepers_are_woken)
{
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_channel *ch;
		struct waker w = { 0 };
		pthread_t th;
		__u64 m = 1;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 1, .slot_size = 8, .lanes = types[t] == SN_RING_SPSC ? 1 : 3, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &w.p));
		ASSERT_EQ(0, sn_consumer_open(ch, &w.c));
		pthread_create(&th, NULL, recv_long, &w);
		usleep(100000);
		ASSERT_EQ(0, sn_send(w.p, &m, 0));
		pthread_join(th, NULL);
		EXPECT_EQ(0, w.ret);
		EXPECT_GT(2000 * MS, w.took);
		sn_consumer_flush_stats(w.c);
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_LE(1, st.sleeps);
		EXPECT_LE(1, st.wakeups);
		EXPECT_LE(1, st.kicks);

		ASSERT_EQ(0, sn_send(w.p, &m, 0));	/* full now */
		pthread_create(&th, NULL, send_long, &w);
		usleep(100000);
		ASSERT_EQ(0, sn_recv(w.c, &m, 0));
		pthread_join(th, NULL);
		EXPECT_EQ(0, w.ret);
		EXPECT_GT(2000 * MS, w.took);
		ASSERT_EQ(0, sn_recv(w.c, &m, 0));
		EXPECT_EQ(9, m);
		EXPECT_EQ(0, sn_consumer_close(w.c));
		EXPECT_EQ(0, sn_producer_close(w.p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* The same across processes: the sleeper attached from the fd. */
TEST(sleeper_in_another_process)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_producer *p;
		struct sn_channel *ch;
		int status;
		pid_t pid;
		__u64 m = 42;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 4, .slot_size = 8, .lanes = 2, .flags = flags[b])));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			struct sn_channel *mine;
			struct sn_consumer *c;
			__u64 t0, got = 0;

			if (sn_channel_attach(&mine, sn_channel_fd(ch), 0) ||
			    sn_consumer_open(mine, &c))
				_exit(2);
			t0 = t_now();
			if (sn_recv(c, &got, 5000 * MS) || got != 42)
				_exit(3);
			if (t_now() - t0 > 3000 * MS || t_now() - t0 < 50 * MS)
				_exit(4);
			sn_consumer_close(c);
			sn_channel_close(mine);
			_exit(0);
		}
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		usleep(150000);
		ASSERT_EQ(0, sn_send(p, &m, 0));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* ---- no system call on the hot path ---- */

static int seccomp_exit_only(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, arch)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 0, 5),
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit, 2, 0),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_exit_group, 1, 0),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_KILL_PROCESS),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

struct spin {
	struct sn_producer *p;
	struct sn_consumer *c;
	__u64 msgs;		/* per producer */
	__u64 total;		/* for the consumers, in all */
	__u32 id;
	__u32 nthreads;
	__u32 *ready;		/* threads that installed their filter */
	__u64 *taken;		/* consumers: received in all */
	__u64 *bad;
};

static void spin_start(struct spin *s)
{
	if (seccomp_exit_only())
		__atomic_fetch_add(s->bad, 1, __ATOMIC_RELAXED);
	/* from here on, only exit: wait for the others by spinning */
	__atomic_fetch_add(s->ready, 1, __ATOMIC_SEQ_CST);
	while (__atomic_load_n(s->ready, __ATOMIC_SEQ_CST) < s->nthreads)
		;
}

static void *spin_producer(void *arg)
{
	struct spin *s = arg;
	__u64 seq = 0, m[4];
	__u32 pos;
	int n, i;

	spin_start(s);
	while (seq < s->msgs) {
		switch (seq % 3) {
		case 0:
			m[0] = ((__u64)s->id << 48) | seq;
			if (!sn_try_send(s->p, m))
				seq++;
			break;
		case 1:
			for (i = 0; i < 4; i++)
				m[i] = ((__u64)s->id << 48) | (seq + i);
			n = sn_send_burst(s->p, m, s->msgs - seq < 4 ?
					  (__u32)(s->msgs - seq) : 4);
			if (n > 0)
				seq += (__u64)n;
			break;
		default:
			n = sn_producer_reserve(s->p, 1, &pos);
			if (n == 1) {
				*(__u64 *)sn_producer_slot(s->p, pos) =
					((__u64)s->id << 48) | seq;
				sn_producer_commit(s->p, 1);
				seq++;
			}
		}
	}
	syscall(SYS_exit, 0);	/* no TLS teardown: it may make syscalls */
	return NULL;
}

static void *spin_consumer(void *arg)
{
	struct spin *s = arg;
	__u64 last[4] = { 0 }, m[4], turn = 0;
	__u32 pos;
	int n, i;

	spin_start(s);
	while (__atomic_load_n(s->taken, __ATOMIC_RELAXED) < s->total) {
		n = 0;
		switch (turn++ % 3) {
		case 0:
			n = sn_try_recv(s->c, m) ? 0 : 1;
			break;
		case 1:
			n = sn_recv_burst(s->c, m, 4);
			break;
		default:
			n = sn_consumer_peek(s->c, 2, &pos);
			for (i = 0; i < n; i++)
				m[i] = *(const __u64 *)sn_consumer_slot(s->c,
									pos + i);
			if (n > 0)
				sn_consumer_advance(s->c, (__u32)n);
		}
		for (i = 0; i < n; i++) {
			__u32 prod = (__u32)(m[i] >> 48);
			__u64 seq = m[i] & 0xffffffffffffULL;

			if (prod >= 4 || seq < last[prod])
				__atomic_fetch_add(s->bad, 1, __ATOMIC_RELAXED);
			else
				last[prod] = seq + 1;
		}
		if (n > 0)
			__atomic_fetch_add(s->taken, (__u64)n,
					   __ATOMIC_RELAXED);
	}
	syscall(SYS_exit, 0);
	return NULL;
}

static void spin_run(struct __test_metadata *_metadata, unsigned int type,
		     unsigned int np, unsigned int nc, __u64 msgs)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct spin s[8];
		pthread_t th[8];
		struct sn_channel_stats st;
		struct sn_channel *ch;
		__u32 ready = 0, i;
		__u64 taken = 0, bad = 0;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = type, .slots = 256, .slot_size = 8, .lanes = np, .flags = flags[b])));
		for (i = 0; i < np + nc; i++) {
			s[i] = (struct spin){ .msgs = msgs, .total = msgs * np,
					      .id = i, .nthreads = np + nc,
					      .ready = &ready, .taken = &taken,
					      .bad = &bad };
			if (i < np) {
				ASSERT_EQ(0, sn_producer_open(ch, &s[i].p));
			} else {
				ASSERT_EQ(0, sn_consumer_open(ch, &s[i].c));
			}
		}
		for (i = 0; i < np + nc; i++)
			ASSERT_EQ(0, pthread_create(&th[i], NULL, i < np ?
						    spin_producer :
						    spin_consumer, &s[i]));
		for (i = 0; i < np + nc; i++)
			pthread_join(th[i], NULL);
		EXPECT_EQ(0, bad);
		EXPECT_EQ(msgs * np, taken);
		for (i = np; i < np + nc; i++)
			sn_consumer_close(s[i].c);
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(msgs * np, st.sent);
		EXPECT_EQ(msgs * np, st.received);
		EXPECT_EQ(0, st.kicks);
		for (i = 0; i < np; i++)
			sn_producer_close(s[i].p);
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

TEST(no_syscall_spsc)
{
	if (T_SANITIZED)
		SKIP(return, "sanitizer runtimes make their own syscalls");
	spin_run(_metadata, SN_RING_SPSC, 1, 1, t_scaled(1000000));
}

TEST(no_syscall_mpsc_mpmc)
{
	if (T_SANITIZED)
		SKIP(return, "sanitizer runtimes make their own syscalls");
	/* more spinning threads than the 2 CPUs of a build machine: few */
	spin_run(_metadata, SN_RING_MPSC, 2, 1, t_scaled(20000));
	spin_run(_metadata, SN_RING_MPMC, 2, 2, t_scaled(20000));
}

/* ---- a malicious peer ---- */

struct scribble {
	unsigned char *base;
	struct sn_offsets off;
	__u32 lanes, slots;
	int memfd;
	volatile int stop;
	__u64 writes;
};

static __u64 xorshift(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Random values, and plausible ones near the current indices. */
static void *scribble_main(void *arg)
{
	struct scribble *s = arg;
	__u64 rnd = 0x9e3779b97f4a7c15ULL;
	__u64 lanes_bytes = s->off.lane_size * s->lanes;

	while (!s->stop) {
		__u64 r = xorshift(&rnd), v = xorshift(&rnd);
		__u32 *w;

		switch (r % 4) {
		case 0:		/* anywhere in the consumer region */
			w = (__u32 *)(s->base + s->off.cons +
				      ((r >> 8) % s->off.cons_size & ~3ULL));
			break;
		case 1:		/* anywhere in the lanes */
			w = (__u32 *)(s->base + s->off.lane0 +
				      ((r >> 8) % lanes_bytes & ~3ULL));
			break;
		case 2: {	/* an index, close to what it was */
			__u32 lane = (__u32)(r >> 8) % s->lanes;

			w = (r >> 16) & 1 ?
				(__u32 *)(s->base + s->off.lane0 +
					  lane * s->off.lane_size +
					  s->off.prod_tail) :
				(__u32 *)(s->base + s->off.cons +
					  s->off.cons_lane + lane * 2 * SN_PAD);
			v = __atomic_load_n(w, __ATOMIC_RELAXED) +
			    (__u32)((v % (4 * s->slots + 1))) - 2 * s->slots;
			break;
		}
		default:	/* the sleep words and (memfd) the kpage */
			if (s->memfd && (r >> 8) % 4 == 0)
				w = (__u32 *)(s->base +
					      ((r >> 12) % 4096 & ~3ULL));
			else if ((r >> 8) & 1)
				w = (__u32 *)(s->base + s->off.cons +
					      s->off.cons_waiters);
			else
				w = (__u32 *)(s->base + s->off.lane0 +
					      (__u32)(r >> 16) % s->lanes *
					      s->off.lane_size +
					      s->off.prod_waiting);
			if ((r >> 40) & 1)
				v &= 0x1ffff;	/* small: looks like a flag */
		}
		__atomic_store_n(w, (__u32)v, __ATOMIC_RELAXED);
		s->writes++;
	}
	return NULL;
}

struct victim {
	struct sn_producer *p;
	struct sn_consumer *c;
	__u32 slot_size;
	volatile int *stop;
	__u64 worst;		/* the longest call beyond its timeout */
	__u64 ops;
};

static void victim_time(struct victim *v, __u64 t0, __u64 timeout)
{
	__u64 dt = t_now() - t0;

	if (dt > timeout && dt - timeout > v->worst)
		v->worst = dt - timeout;
	v->ops++;
}

static void *victim_producer(void *arg)
{
	struct victim *v = arg;
	unsigned char buf[4 * 64] = { 0 };
	__u32 pos;
	__u64 t0;
	int n, i;

	while (!*v->stop) {
		t0 = t_now();
		switch (v->ops % 4) {
		case 0:
			sn_send(v->p, buf, 2 * MS);
			break;
		case 1:
			sn_send_burst(v->p, buf, 4);
			break;
		case 2:
			n = sn_producer_reserve(v->p, 3, &pos);
			for (i = 0; i < n; i++)
				memset(sn_producer_slot(v->p, pos + i), 0xab,
				       v->slot_size);
			if (n > 0)
				sn_producer_commit(v->p, (__u32)n);
			break;
		default:
			sn_producer_wait(v->p, 1 * MS);
		}
		victim_time(v, t0, 2 * MS);
	}
	return NULL;
}

static void *victim_consumer(void *arg)
{
	struct victim *v = arg;
	unsigned char buf[4 * 64], sink = 0;
	__u32 pos;
	__u64 t0;
	int n, i;

	while (!*v->stop) {
		t0 = t_now();
		switch (v->ops % 4) {
		case 0:
			sn_recv(v->c, buf, 2 * MS);
			break;
		case 1:
			sn_recv_burst(v->c, buf, 4);
			break;
		case 2:
			n = sn_consumer_peek(v->c, 3, &pos);
			for (i = 0; i < n; i++)
				sink ^= *(const unsigned char *)
					sn_consumer_slot(v->c, pos + i);
			if (n > 0)
				sn_consumer_advance(v->c, (__u32)n);
			break;
		default:
			sn_consumer_wait(v->c, 1 * MS);
		}
		victim_time(v, t0, 2 * MS);
	}
	buf[0] = sink;
	return NULL;
}

TEST(scribbler)
{
#if defined(__SANITIZE_THREAD__)
	/* the scribbled slots are read with memcpy: races by design */
	SKIP(return, "races by design; runs in the other builds");
#endif
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct scribble s = { 0 };
		struct victim v[4] = { 0 };
		struct sn_channel *ch;
		pthread_t th[5];
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : 2, i;
		int nv = types[t] == SN_RING_MPMC ? 4 : 1 + (int)lanes;
		void *base;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 8, .slot_size = 64, .lanes = lanes, .flags = flags[b])));
		ASSERT_EQ(0, sn_channel_layout(ch, &base, &s.off));
		s.base = base;
		s.lanes = lanes;
		s.slots = 8;
		s.memfd = sn_channel_backend(ch) == SN_BACKEND_MEMFD;
		for (i = 0; i < (__u32)nv; i++) {
			v[i].slot_size = 64;
			v[i].stop = &s.stop;
			if (i < lanes) {
				ASSERT_EQ(0, sn_producer_open(ch, &v[i].p));
			} else {
				ASSERT_EQ(0, sn_consumer_open(ch, &v[i].c));
			}
		}
		pthread_create(&th[4], NULL, scribble_main, &s);
		for (i = 0; i < (__u32)nv; i++)
			pthread_create(&th[i], NULL, v[i].p ? victim_producer :
				       victim_consumer, &v[i]);
		usleep(t_scaled(300) * 1000);
		s.stop = 1;
		for (i = 0; i < (__u32)nv; i++)
			pthread_join(th[i], NULL);
		pthread_join(th[4], NULL);
		EXPECT_LT(0, s.writes);
		for (i = 0; i < (__u32)nv; i++) {
			EXPECT_LT(0, v[i].ops);
			/* timeouts honoured (slack for a loaded 2-CPU box) */
			EXPECT_GT(500 * MS, v[i].worst);
		}
		EXPECT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_GE(8 * lanes, st.depth);
		for (i = 0; i < (__u32)nv; i++) {
			sn_producer_close(v[i].p);
			sn_consumer_close(v[i].c);
		}
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* ---- without membarrier(2): the FULL fence, or a refused attach ---- */

/* Makes membarrier(2) fail with ENOSYS, as a container's filter may. */
static int seccomp_no_membarrier(void)
{
	struct sock_filter f[] = {
		BPF_STMT(BPF_LD | BPF_W | BPF_ABS,
			 offsetof(struct seccomp_data, nr)),
		BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_membarrier, 0, 1),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ERRNO | ENOSYS),
		BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
	};
	struct sock_fprog prog = { .len = sizeof(f) / sizeof(f[0]),
				   .filter = f };

	if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0))
		return -1;
	return prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &prog);
}

/*
 * The exec'd child of fence_without_membarrier (a fresh libsn: its fence
 * is decided once per process), before the harness's main: 99 if a memfd
 * channel it creates is FULL and works, sleeps included, and attaching
 * the parent's ASYM ring (fd SN_NOMB_FD, or -1 when the parent's was FULL)
 * is refused; else the step that failed.
 */
__attribute__((constructor)) static void nomb_child(void)
{
	const char *env = getenv("SN_NOMB_FD");
	struct sn_channel_info info;
	struct sn_channel *ch, *other;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u64 m = 42, out = 0;
	int fd;

	if (!env)
		return;
	fd = atoi(env);
	if (sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 8, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_MEMFD)))
		_exit(10);
	if (sn_channel_info(ch, &info) || info.fence != SN_FENCE_FULL)
		_exit(11);
	if (sn_producer_open(ch, &p) || sn_consumer_open(ch, &c))
		_exit(12);
	if (sn_recv(c, &out, 20 * MS) != -ETIMEDOUT)	/* a real sleep */
		_exit(13);
	if (sn_send(p, &m, SN_NO_WAIT) || sn_recv(c, &out, 1000 * MS) ||
	    out != 42)
		_exit(14);
	sn_consumer_close(c);
	sn_producer_close(p);
	sn_channel_close(ch);
	if (fd >= 0 && sn_channel_attach(&other, fd, 0) != -EOPNOTSUPP)
		_exit(15);
	_exit(99);	/* not 0: a child that ran the harness is no pass */
}

TEST(fence_without_membarrier)
{
	struct sn_channel_info info;
	struct sn_channel *ch;
	int status, fd = -1;
	char arg[16];
	pid_t pid;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 8, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	if (info.fence == SN_FENCE_ASYM) {
		fd = fcntl(sn_channel_fd(ch), F_DUPFD, 100);	/* no CLOEXEC */
		ASSERT_LE(0, fd);
	} else {
		TH_LOG("this kernel has no membarrier: the refused attach is not tried");
	}
	snprintf(arg, sizeof(arg), "%d", fd);
	pid = fork();
	ASSERT_LE(0, pid);
	if (!pid) {
		char *argv[] = { "fence_child", NULL };

		setenv("SN_NOMB_FD", arg, 1);
		if (seccomp_no_membarrier())
			_exit(2);
		execv("/proc/self/exe", argv);
		_exit(3);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(99, WEXITSTATUS(status))
		TH_LOG("the child failed at step %d", WEXITSTATUS(status));
	if (fd >= 0)
		close(fd);
	EXPECT_EQ(0, sn_channel_close(ch));
}

TEST_HARNESS_MAIN
