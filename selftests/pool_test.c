// SPDX-License-Identifier: MIT
/*
 * libsn worker pool: partitioners (stability, balance over 10^6 keys,
 * movement on n -> n + 1), exactly-once and per-key FIFO delivery from
 * several submitting threads through ingress and mesh, both backpressure
 * policies, draining shutdown, affinity, idle CPU, a handler's own file
 * I/O on its worker's io_uring, every pool function from handlers, ticks
 * and outside threads during shutdown too, a shutdown that returns while
 * callbacks keep producing, per-key order across submitter reopens, batch
 * submission, the defaults, and the examples/wordcount program; records
 * (max_msg_size): payloads of every length through ingress and mesh,
 * lengths above the maximum refused, backpressure for a record larger
 * than the free room.
 * Memfd backend everywhere, the kernel backend too where /dev/sn exists.
 * SN_TEST_SCALE=N runs N% of the messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>

#include <sn/pool.h>

#include "channel_common.h"

#include "kselftest_harness.h"

/* 10^6 keys at full scale; the tolerances widen with the sampling noise
 * when SN_TEST_SCALE lowers the count (the mappings are deterministic). */
static unsigned long t_nkeys;

static double t_sqrt(double x)
{
	double r = x > 1 ? x : 1;
	int i;

	for (i = 0; i < 60; i++)
		r = (r + x / r) / 2;
	return r;
}

static void t_keys(void)
{
	t_nkeys = t_scaled(1000000);
	if (t_nkeys < 100000)
		t_nkeys = 100000;
}

/* How much wider than at 10^6 keys a noise-bound tolerance is. */
static double t_noise(void)
{
	return t_sqrt(1000000.0 / (double)t_nkeys);
}

static void t_sleep_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	nanosleep(&ts, NULL);
}

static unsigned int t_custom(__u64 key, unsigned int n, void *arg)
{
	(void)arg;
	return (unsigned int)((key >> 3) % n);
}

static struct sn_partitioner *t_part(unsigned int kind, unsigned int n)
{
	struct sn_partitioner_config cfg = { .kind = kind, .fn = t_custom };
	struct sn_partitioner *p = NULL;

	if (sn_partitioner_create(&p, &cfg, n))
		return NULL;
	return p;
}

static const char *t_kind_name(unsigned int kind)
{
	static const char *names[] = { "hash", "ring", "jump", "rr", "custom" };

	return kind <= SN_PART_CUSTOM ? names[kind] : "?";
}

TEST(partition_stable)
{
	static const unsigned int ns[] = { 1, 2, 3, 5, 8, 16, 100 };
	struct sn_partitioner_config bad = { .kind = SN_PART_CUSTOM };
	struct sn_partitioner *a, *b;
	unsigned int kind, i, x, first[3];
	__u64 key, cur = 0;

	for (kind = 0; kind <= SN_PART_CUSTOM; kind++) {
		if (kind == SN_PART_ROUND_ROBIN)
			continue;
		for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
			a = t_part(kind, ns[i]);
			b = t_part(kind, ns[i]);
			ASSERT_NE(NULL, a);
			ASSERT_NE(NULL, b);
			EXPECT_EQ(ns[i], sn_partitioner_buckets(a));
			for (key = 0; key < 20000; key++) {
				__u64 k = key * 0x9e3779b97f4a7c15ULL;

				x = sn_partition(a, k, NULL);
				ASSERT_LT(x, ns[i]);
				ASSERT_EQ(x, sn_partition(a, k, NULL));
				ASSERT_EQ(x, sn_partition(b, k, &cur));
			}
			sn_partitioner_destroy(a);
			sn_partitioner_destroy(b);
		}
	}
	/* the same mapping in every process: fixed values */
	a = t_part(SN_PART_HASH, 7);
	b = t_part(SN_PART_JUMP, 7);
	ASSERT_NE(NULL, a);
	ASSERT_NE(NULL, b);
	first[0] = sn_partition(a, 42, NULL);
	first[1] = sn_partition(b, 42, NULL);
	EXPECT_EQ(sn_reduce(sn_mix64(42), 7), first[0]);
	EXPECT_EQ(sn_jump_hash(sn_mix64(42), 7), first[1]);
	sn_partitioner_destroy(a);
	sn_partitioner_destroy(b);
	EXPECT_EQ(0, sn_jump_hash(12345, 1));
	EXPECT_EQ(0x5692161d100b05e5ULL, sn_mix64(1));

	/* round robin: the caller's cursor, whatever the key */
	a = t_part(SN_PART_ROUND_ROBIN, 3);
	ASSERT_NE(NULL, a);
	cur = 0;
	for (i = 0; i < 9; i++)
		EXPECT_EQ(i % 3, sn_partition(a, 777, &cur));
	sn_partitioner_destroy(a);

	EXPECT_EQ(-EINVAL, sn_partitioner_create(&a, &bad, 4));
	bad.kind = 99;
	EXPECT_EQ(-EINVAL, sn_partitioner_create(&a, &bad, 4));
	bad.kind = SN_PART_HASH;
	EXPECT_EQ(-EINVAL, sn_partitioner_create(&a, &bad, 0));
	bad.kind = SN_PART_RING;
	bad.vnodes = SN_RING_VNODES_MAX + 1;
	EXPECT_EQ(-EINVAL, sn_partitioner_create(&a, &bad, 4));
}

/* The largest deviation from the mean, in parts of the mean. */
static double t_maxdev(const struct sn_partitioner *p, unsigned int n)
{
	unsigned long *cnt = calloc(n, sizeof(*cnt));
	double mean = (double)t_nkeys / n, worst = 0, d;
	__u64 key, cur = 0;
	unsigned int i;

	for (key = 0; key < t_nkeys; key++)
		cnt[sn_partition(p, key, &cur)]++;
	for (i = 0; i < n; i++) {
		d = ((double)cnt[i] - mean) / mean;
		if (d < 0)
			d = -d;
		if (d > worst)
			worst = d;
	}
	free(cnt);
	return worst;
}

TEST(partition_balance)
{
	static const unsigned int ns[] = { 2, 3, 4, 8, 16, 32 };
	static const unsigned int kinds[] = { SN_PART_HASH, SN_PART_JUMP,
					      SN_PART_RING,
					      SN_PART_ROUND_ROBIN };
	unsigned int i, k;

	t_keys();
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		for (k = 0; k < 4; k++) {
			struct sn_partitioner *p = t_part(kinds[k], ns[i]);
			double dev;

			ASSERT_NE(NULL, p);
			dev = t_maxdev(p, ns[i]);
			TH_LOG("balance %s n=%u, %lu keys: max deviation %.2f%%",
			       t_kind_name(kinds[k]), ns[i], t_nkeys, dev * 100);
			if (kinds[k] == SN_PART_RING) {
				EXPECT_LE(dev * 100, SN_RING_BALANCE_PCT);
			} else if (kinds[k] == SN_PART_ROUND_ROBIN) {
				EXPECT_LE(dev * t_nkeys, ns[i]);
			} else {
				EXPECT_LT(dev, 0.02 * t_noise());
			}
			sn_partitioner_destroy(p);
		}
	}
}

TEST(partition_movement)
{
	static const unsigned int ns[] = { 1, 2, 3, 4, 7, 8, 16, 31 };
	static const unsigned int kinds[] = { SN_PART_HASH, SN_PART_JUMP,
					      SN_PART_RING };
	unsigned int i, k, n;
	__u64 key;

	t_keys();
	for (i = 0; i < sizeof(ns) / sizeof(ns[0]); i++) {
		n = ns[i];
		for (k = 0; k < 3; k++) {
			struct sn_partitioner *a = t_part(kinds[k], n);
			struct sn_partitioner *b = t_part(kinds[k], n + 1);
			unsigned long moved = 0, elsewhere = 0;
			double frac, ideal = 1.0 / (n + 1);

			ASSERT_NE(NULL, a);
			ASSERT_NE(NULL, b);
			for (key = 0; key < t_nkeys; key++) {
				unsigned int x = sn_partition(a, key, NULL);
				unsigned int y = sn_partition(b, key, NULL);

				if (x != y) {
					moved++;
					elsewhere += y != n;
				}
			}
			frac = (double)moved / t_nkeys;
			TH_LOG("movement %s %u->%u: %.4f of the keys (1/(n+1) = %.4f), %lu not to the new worker",
			       t_kind_name(kinds[k]), n, n + 1, frac, ideal,
			       elsewhere);
			if (kinds[k] == SN_PART_HASH) {
				EXPECT_LT(frac, 0.52);
				EXPECT_GT(frac, 0.48);
			} else if (kinds[k] == SN_PART_JUMP) {
				EXPECT_EQ(0, elsewhere);
				EXPECT_LT(frac, ideal * (1 + 0.05 * t_noise()));
				EXPECT_GT(frac, ideal * (1 - 0.05 * t_noise()));
			} else {
				EXPECT_EQ(0, elsewhere);
				EXPECT_LT(frac, ideal * 1.5);
				EXPECT_GT(frac, ideal * 0.5);
			}
			sn_partitioner_destroy(a);
			sn_partitioner_destroy(b);
		}
	}
}

/* ---- delivery ---- */

#define D_THREADS	3
#define D_KEYS		64
#define D_BACKLOG	4096

struct d_msg {
	__u32 thread;
	__u32 fwd;
	__u64 seq;
};

struct d_shared {
	struct sn_pool *pool;
	unsigned long msgs;		/* per thread */
	unsigned char *seen;		/* [thread][msgs]: 1 direct, +2 fwd */
	__u64 last[D_THREADS][D_KEYS];	/* next sequence expected + 1 */
	__u64 flast[D_THREADS][D_KEYS];
	__u64 fwd_sent;			/* by the handlers */
	__u64 eagain;			/* by the submitters */
	__u64 errors;
	char why[128];
};

static struct d_shared *D;

static void d_fail(const char *what, long v)
{
	if (__atomic_fetch_add(&D->errors, 1, __ATOMIC_RELAXED) == 0)
		snprintf(D->why, sizeof(D->why), "%s (%ld)", what, v);
}

#define R_MAX		3000	/* the records test's max_msg_size */

/* A worker's forwards that did not fit yet: FIFO, retried from tick. */
struct d_state {
	struct d_msg q[D_BACKLOG];
	__u64 key[D_BACKLOG];
	unsigned int head, tail;
	unsigned char buf[R_MAX];	/* what d_forward() may send from */
};

/* Sends backlog entry @i to @dest: the message itself, or (records test)
 * the payload it stands for. */
static int (*d_forward)(struct sn_worker *w, unsigned int dest,
			struct d_state *st, unsigned int i);

static int d_forward_msg(struct sn_worker *w, unsigned int dest,
			 struct d_state *st, unsigned int i)
{
	return sn_worker_send(w, dest, st->key[i], &st->q[i],
			      sizeof(st->q[i]));
}

static int d_init(struct sn_worker *w, void *arg, void **state)
{
	(void)w;
	(void)arg;
	*state = calloc(1, sizeof(struct d_state));
	return *state ? 0 : -ENOMEM;
}

static void d_fini(struct sn_worker *w, void *state)
{
	struct d_state *st = state;

	(void)w;
	if (st->head != st->tail)
		d_fail("backlog left at fini", (long)(st->tail - st->head));
	free(state);
}

static void d_flush(struct sn_worker *w, struct d_state *st)
{
	unsigned int dest = (sn_worker_id(w) + 1) %
			    sn_pool_workers(sn_worker_pool(w));

	while (st->head != st->tail) {
		unsigned int i = st->head % D_BACKLOG;

		if (d_forward(w, dest, st, i))
			return;
		st->head++;
		sn_worker_done(w, 1);
	}
}

/* Queues @m (forward set) for the next worker, held until sent. */
static void d_backlog(struct sn_worker *w, struct d_state *st,
		      struct d_msg m, __u64 key)
{
	unsigned int j = st->tail % D_BACKLOG;

	if (st->tail - st->head >= D_BACKLOG) {
		d_fail("backlog full", 0);
		return;
	}
	m.fwd = 1;
	st->q[j] = m;
	st->key[j] = key;
	st->tail++;
	sn_worker_hold(w, 1);
	__atomic_fetch_add(&D->fwd_sent, 1, __ATOMIC_RELAXED);
}

static int d_handle(struct sn_worker *w, void *state,
		    const struct sn_envelope *env, unsigned int n)
{
	struct d_state *st = state;
	unsigned int i, nw = sn_pool_workers(sn_worker_pool(w));
	unsigned int me = sn_worker_id(w);

	for (i = 0; i < n; i++) {
		struct d_msg m;
		__u64 k;

		if (env[i].len != sizeof(m)) {
			d_fail("length", env[i].len);
			continue;
		}
		memcpy(&m, env[i].payload, sizeof(m));
		k = env[i].key & 0xffffffffULL;
		if (m.thread >= D_THREADS || m.seq >= D->msgs ||
		    env[i].key != (((__u64)m.thread << 32) | m.seq % D_KEYS) ||
		    k >= D_KEYS) {
			d_fail("garbled", (long)m.seq);
			continue;
		}
		if (!m.fwd) {
			if (env[i].source != SN_SOURCE_EXTERNAL ||
			    (int)me != sn_pool_route(sn_worker_pool(w),
						     env[i].key))
				d_fail("wrong worker", me);
			/* per key FIFO: sequences strictly increase */
			if (m.seq + 1 <= D->last[m.thread][k])
				d_fail("out of order", (long)m.seq);
			D->last[m.thread][k] = m.seq + 1;
			if (__atomic_fetch_add(&D->seen[m.thread * D->msgs +
							 m.seq], 1,
					       __ATOMIC_RELAXED) & 1)
				d_fail("duplicate", (long)m.seq);
			if (m.seq % 4 == 0)
				d_backlog(w, st, m, env[i].key);
		} else {
			if (env[i].source != (me + nw - 1) % nw)
				d_fail("wrong source", (long)env[i].source);
			if (m.seq + 1 <= D->flast[m.thread][k])
				d_fail("forward out of order", (long)m.seq);
			D->flast[m.thread][k] = m.seq + 1;
			if (__atomic_fetch_add(&D->seen[m.thread * D->msgs +
							 m.seq], 2,
					       __ATOMIC_RELAXED) & 2)
				d_fail("forward duplicate", (long)m.seq);
		}
	}
	d_flush(w, st);
	return 0;
}

static void d_tick(struct sn_worker *w, void *state)
{
	d_flush(w, state);
}

static void *d_submitter(void *arg)
{
	unsigned int t = (unsigned int)(unsigned long)arg;
	struct sn_submitter *s;
	struct d_msg m = { .thread = t };
	__u64 deadline = t_now() + 20000 * MS;
	int r;

	if (sn_submitter_open(D->pool, &s)) {
		d_fail("sn_submitter_open", t);
		return NULL;
	}
	for (m.seq = 0; m.seq < D->msgs && !D->errors;) {
		r = sn_submit(s, ((__u64)t << 32) | m.seq % D_KEYS, &m,
			      sizeof(m));
		if (r == 0) {
			m.seq++;
		} else if (r == -EAGAIN) {
			__atomic_fetch_add(&D->eagain, 1, __ATOMIC_RELAXED);
			sched_yield();
			if (t_now() > deadline) {
				d_fail("submitter past the deadline", 0);
				break;
			}
		} else {
			d_fail("sn_submit", r);
		}
	}
	sn_submitter_close(s);
	return NULL;
}

static void d_run(struct __test_metadata *_metadata, unsigned int backend,
		  unsigned int part)
{
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	pthread_t th[D_THREADS];
	unsigned long t, j;

	D = calloc(1, sizeof(*D));
	ASSERT_NE(NULL, D);
	D->msgs = t_scaled(20000);
	D->seen = calloc(D_THREADS, D->msgs);
	ASSERT_NE(NULL, D->seen);
	d_forward = d_forward_msg;
	sn_pool_config_init(&cfg);
	cfg.workers = 3;
	cfg.queue_capacity = 64;
	cfg.batch = 16;
	cfg.msg_size = sizeof(struct d_msg);
	cfg.backend = backend;
	cfg.partitioner.kind = part;
	cfg.init = d_init;
	cfg.fini = d_fini;
	cfg.handle = d_handle;
	cfg.tick = d_tick;
	ASSERT_EQ(0, sn_pool_create(&D->pool, &cfg));
	EXPECT_EQ((int)backend, sn_pool_backend(D->pool));
	for (t = 0; t < D_THREADS; t++)
		pthread_create(&th[t], NULL, d_submitter, (void *)t);
	for (t = 0; t < D_THREADS; t++)
		pthread_join(th[t], NULL);
	ASSERT_EQ(0, sn_pool_shutdown(D->pool));
	ASSERT_EQ(0, sn_pool_stats(D->pool, &st));
	EXPECT_EQ(0, D->errors) TH_LOG("%s", D->why);
	for (j = 0; j < D_THREADS * D->msgs; j++) {
		unsigned char want = (j % D->msgs) % 4 == 0 ? 3 : 1;

		if (D->seen[j] != want) {
			EXPECT_EQ(want, D->seen[j]) TH_LOG("message %lu", j);
			break;
		}
	}
	TH_LOG("%s %s: submitted %llu rejected %llu forwarded %llu handled %llu dropped %llu",
	       sn_backend_name((int)backend), t_kind_name(part),
	       (unsigned long long)st.submitted,
	       (unsigned long long)st.rejected,
	       (unsigned long long)st.forwarded,
	       (unsigned long long)st.handled,
	       (unsigned long long)st.dropped);
	EXPECT_EQ(D_THREADS * D->msgs, st.submitted);
	EXPECT_EQ(D->eagain, st.rejected);
	EXPECT_EQ(D->fwd_sent, st.forwarded);
	EXPECT_EQ(st.submitted + st.forwarded, st.handled);
	EXPECT_EQ(0, st.dropped);
	EXPECT_EQ(0, sn_pool_destroy(D->pool));
	free(D->seen);
	free(D);
}

TEST(deliver_exactly_once_in_order)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		d_run(_metadata, flags[b], SN_PART_HASH);
		d_run(_metadata, flags[b], SN_PART_JUMP);
		d_run(_metadata, flags[b], SN_PART_RING);
	}
}

/* ---- backpressure ---- */

static int bp_gate, bp_in_handler;
static __u64 bp_handled;

static int bp_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	(void)w;
	(void)state;
	(void)env;
	__atomic_store_n(&bp_in_handler, 1, __ATOMIC_RELEASE);
	while (!__atomic_load_n(&bp_gate, __ATOMIC_ACQUIRE))
		t_sleep_ms(1);
	__atomic_fetch_add(&bp_handled, n, __ATOMIC_RELAXED);
	return 0;
}

static void *bp_opener(void *arg)
{
	t_sleep_ms((unsigned int)(unsigned long)arg);
	__atomic_store_n(&bp_gate, 1, __ATOMIC_RELEASE);
	return NULL;
}

/* One worker held in its handler by the gate (its message keeps its slot
 * meanwhile), @fill messages queued in its ingress lane (of 8 slots; with
 * @max, max_msg_size, records: as many as one @max message needs). */
static struct sn_pool *bp_start(struct __test_metadata *_metadata,
				unsigned int backend, unsigned int policy,
				__u64 timeout, struct sn_submitter **s,
				int fill, unsigned int max)
{
	struct sn_pool_config cfg;
	struct sn_pool *pool;
	__u64 v = 0;
	int i;

	bp_gate = 0;
	bp_in_handler = 0;
	bp_handled = 0;
	sn_pool_config_init(&cfg);
	cfg.workers = 1;
	cfg.queue_capacity = 8;
	cfg.batch = 4;
	cfg.msg_size = 8;
	cfg.max_msg_size = max;
	cfg.backpressure = policy;
	cfg.block_timeout_ns = timeout;
	cfg.backend = backend;
	cfg.handle = bp_handle;
	if (sn_pool_create(&pool, &cfg))
		return NULL;
	if (sn_submitter_open(pool, s))
		return NULL;
	EXPECT_EQ(0, sn_submit(*s, v, &v, 8));
	while (!__atomic_load_n(&bp_in_handler, __ATOMIC_ACQUIRE))
		t_sleep_ms(1);
	for (i = 0; i < fill; i++)
		EXPECT_EQ(0, sn_submit(*s, v, &v, 8));
	return pool;
}

/* The lane full: 7 queued, 1 being handled. */
static struct sn_pool *bp_fill(struct __test_metadata *_metadata,
			       unsigned int backend, unsigned int policy,
			       __u64 timeout, struct sn_submitter **s)
{
	return bp_start(_metadata, backend, policy, timeout, s, 7, 0);
}

/* The lane empty. */
static struct sn_pool *bp_fill_empty(struct __test_metadata *_metadata,
				     unsigned int backend, unsigned int policy,
				     __u64 timeout, struct sn_submitter **s)
{
	return bp_start(_metadata, backend, policy, timeout, s, 0, 0);
}

/* Closes @s, shuts the pool down and checks its counts: every message
 * submitted was handled. */
static void bp_end(struct __test_metadata *_metadata, struct sn_pool *pool,
		   struct sn_submitter *s, __u64 submitted, __u64 rejected)
{
	struct sn_pool_stats st;

	EXPECT_EQ(0, sn_submitter_close(s));
	EXPECT_EQ(0, sn_pool_shutdown(pool));
	EXPECT_EQ(0, sn_pool_stats(pool, &st));
	EXPECT_EQ(submitted, st.submitted);
	EXPECT_EQ(rejected, st.rejected);
	EXPECT_EQ(submitted, st.handled);
	EXPECT_EQ(0, sn_pool_destroy(pool));
}

/* A blocked submit of @len bytes goes in once the gate opens (100 ms). */
static void bp_wait_room(struct __test_metadata *_metadata,
			 struct sn_submitter *s, const void *payload,
			 __u32 len, unsigned int backend)
{
	pthread_t th;
	__u64 t0, el;

	pthread_create(&th, NULL, bp_opener, (void *)100UL);
	t0 = t_now();
	EXPECT_EQ(0, sn_submit(s, 1, payload, len));
	el = t_now() - t0;
	pthread_join(th, NULL);
	TH_LOG("%s: a blocked submit of %u bytes waited %llu ms for room",
	       sn_backend_name((int)backend), len,
	       (unsigned long long)(el / MS));
	EXPECT_GE(el, 80 * MS);
	EXPECT_LT(el, 2900 * MS);
}

TEST(backpressure_fail_and_block)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_submitter *s;
	struct sn_pool *pool;
	pthread_t th;
	__u64 v = 1, t0, el;

	for (b = 0; b < nb; b++) {
		/* fail: -EAGAIN at once, counted */
		pool = bp_fill(_metadata, flags[b], SN_BP_FAIL, 0, &s);
		ASSERT_NE(NULL, pool);
		t0 = t_now();
		EXPECT_EQ(-EAGAIN, sn_submit(s, v, &v, 8));
		EXPECT_EQ(-EAGAIN, sn_submit(s, v, &v, 8));
		EXPECT_LT(t_now() - t0, 50 * MS);
		EXPECT_EQ(-EINVAL, sn_submit(s, v, &v, 9));
		__atomic_store_n(&bp_gate, 1, __ATOMIC_RELEASE);
		bp_end(_metadata, pool, s, 8, 2);
		EXPECT_EQ(8, bp_handled);

		/* block: -ETIMEDOUT after the timeout */
		pool = bp_fill(_metadata, flags[b], SN_BP_BLOCK, 50 * MS, &s);
		ASSERT_NE(NULL, pool);
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_submit(s, v, &v, 8));
		el = t_now() - t0;
		EXPECT_GE(el, 45 * MS);
		EXPECT_LT(el, 2000 * MS);
		/* again, the worker let go only after the timeout */
		pthread_create(&th, NULL, bp_opener, (void *)100UL);
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_submit(s, v, &v, 8));
		pthread_join(th, NULL);
		bp_end(_metadata, pool, s, 8, 2);

		pool = bp_fill(_metadata, flags[b], SN_BP_BLOCK, 3000 * MS, &s);
		ASSERT_NE(NULL, pool);
		bp_wait_room(_metadata, s, &v, 8, flags[b]);
		bp_end(_metadata, pool, s, 9, 0);
	}
}

/* ---- records: payloads of any length (max_msg_size) ---- */

/*
 * The delivery test's machinery (D, its backlog, init, fini, flush) over a
 * pool of records: messages of every length from 0 to max_msg_size, each
 * (thread, key) stream handled by one worker, every other message of a
 * stream forwarded to the next worker. D->last and D->flast hold the next
 * sequence each stream expects (direct, forwarded): a message's length
 * and bytes follow from it, so FIFO, content and length are checked for
 * messages too short to carry a sequence.
 */
#define R_THREADS	2		/* <= D_THREADS */
#define R_KEYS		16		/* <= D_KEYS */
#define R_MSG		24		/* msg_size: one slot */

/* Message seq of thread t: its length (0, msg_size, msg_size + 1,
 * max_msg_size and others in between) and its bytes. */
static __u32 r_len(__u32 t, __u64 seq)
{
	__u64 h = sn_mix64(((__u64)t << 40) ^ seq);

	switch (seq % 8) {
	case 0:
		return R_MAX;
	case 1:
		return 0;
	case 2:
		return R_MSG;
	case 3:
		return R_MSG + 1;
	case 4:
		return (__u32)(h % (R_MSG + 1));
	default:
		return (__u32)(h % (R_MAX + 1));
	}
}

static unsigned char r_byte(__u32 t, __u64 seq, __u32 i)
{
	return (unsigned char)(seq * 131 + i * 7 + t * 17 + (i >> 8));
}

static void r_payload(unsigned char *buf, __u32 t, __u64 seq)
{
	__u32 i, len = r_len(t, seq);

	for (i = 0; i < len; i++)
		buf[i] = r_byte(t, seq, i);
}

static __u64 r_key(__u32 t, __u64 seq)
{
	return ((__u64)t << 32) | (seq % R_KEYS);
}

/* d_forward(): the payload made again from the entry's thread and seq. */
static int r_forward(struct sn_worker *w, unsigned int dest,
		     struct d_state *st, unsigned int i)
{
	__u32 t = st->q[i].thread;
	__u64 seq = st->q[i].seq;

	r_payload(st->buf, t, seq);
	return sn_worker_send(w, dest, r_key(t, seq), st->buf, r_len(t, seq));
}

static int r_handle(struct sn_worker *w, void *state,
		    const struct sn_envelope *env, unsigned int n)
{
	struct d_state *st = state;
	unsigned int i, nw = sn_pool_workers(sn_worker_pool(w));
	unsigned int me = sn_worker_id(w);

	for (i = 0; i < n; i++) {
		__u32 t = (__u32)(env[i].key >> 32), k, j, len;
		const unsigned char *p = env[i].payload;
		int fwd = env[i].source != SN_SOURCE_EXTERNAL;
		struct d_msg m = { .thread = t };
		__u64 *next;

		k = (__u32)(env[i].key & 0xffffffffU);
		if (t >= R_THREADS || k >= R_KEYS) {
			d_fail("garbled key", (long)k);
			continue;
		}
		/* FIFO per stream: the message is the stream's next one */
		next = fwd ? &D->flast[t][k] : &D->last[t][k];
		m.seq = *next;
		*next += fwd ? 2 * R_KEYS : R_KEYS;
		len = r_len(t, m.seq);
		if (m.seq >= D->msgs || env[i].len != len) {
			d_fail("length or order", (long)env[i].len);
			continue;
		}
		for (j = 0; j < len && p[j] == r_byte(t, m.seq, j); j++)
			;
		if (j < len || ((uintptr_t)p & 7)) {
			d_fail("content", (long)j);
			continue;
		}
		if (fwd) {
			if (env[i].source != (me + nw - 1) % nw)
				d_fail("wrong source", (long)env[i].source);
			continue;
		}
		if ((int)me != sn_pool_route(sn_worker_pool(w), env[i].key))
			d_fail("wrong worker", me);
		if ((m.seq / R_KEYS) % 2 == 0)
			d_backlog(w, st, m, env[i].key);
	}
	d_flush(w, st);
	return 0;
}

/* Thread 0 submits one at a time, thread 1 in batches of 8. */
static void *r_submitter(void *arg)
{
	__u32 t = (__u32)(unsigned long)arg;
	static unsigned char bufs[R_THREADS][8][R_MAX];
	struct sn_pool_msg m[8];
	struct sn_submitter *s;
	__u64 seq;
	int r, k;

	if (sn_submitter_open(D->pool, &s)) {
		d_fail("sn_submitter_open", t);
		return NULL;
	}
	for (seq = 0; seq < D->msgs && !D->errors;) {
		for (k = 0; k < (t ? 8 : 1) && seq + k < D->msgs; k++) {
			r_payload(bufs[t][k], t, seq + k);
			m[k].key = r_key(t, seq + k);
			m[k].payload = bufs[t][k];
			m[k].len = r_len(t, seq + k);
		}
		r = t ? sn_submit_batch(s, m, k) :
		    sn_submit(s, m[0].key, m[0].payload, m[0].len);
		if (r < 0) {
			d_fail("submit", r);
			break;
		}
		seq += t ? (__u64)r : 1;
	}
	sn_submitter_close(s);
	return NULL;
}

static void r_run(struct __test_metadata *_metadata, unsigned int backend)
{
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_worker_stats ws;
	pthread_t th[R_THREADS];
	unsigned long t, k;
	unsigned int i;

	D = calloc(1, sizeof(*D));
	ASSERT_NE(NULL, D);
	D->msgs = t_scaled(2000);
	for (t = 0; t < R_THREADS; t++)
		for (k = 0; k < R_KEYS; k++)
			D->last[t][k] = D->flast[t][k] = k;
	d_forward = r_forward;
	sn_pool_config_init(&cfg);
	cfg.workers = 3;
	cfg.queue_capacity = 256;	/* 16 KiB: 5 max_msg_size messages */
	cfg.batch = 8;
	cfg.msg_size = R_MSG;
	cfg.max_msg_size = R_MAX;
	cfg.backend = backend;
	cfg.init = d_init;
	cfg.fini = d_fini;
	cfg.handle = r_handle;
	cfg.tick = d_tick;
	ASSERT_EQ(0, sn_pool_create(&D->pool, &cfg));
	EXPECT_EQ((int)backend, sn_pool_backend(D->pool));
	for (t = 0; t < R_THREADS; t++)
		pthread_create(&th[t], NULL, r_submitter, (void *)t);
	for (t = 0; t < R_THREADS; t++)
		pthread_join(th[t], NULL);
	ASSERT_EQ(0, sn_pool_shutdown(D->pool));
	ASSERT_EQ(0, sn_pool_stats(D->pool, &st));
	EXPECT_EQ(0, D->errors) TH_LOG("%s", D->why);
	/* every stream got to its end: each message once */
	for (t = 0; t < R_THREADS; t++)
		for (k = 0; k < R_KEYS; k++) {
			EXPECT_LE(D->msgs, D->last[t][k]);
			EXPECT_GT(D->msgs + R_KEYS, D->last[t][k]);
			EXPECT_LE(D->msgs, D->flast[t][k]);
			EXPECT_GT(D->msgs + 2 * R_KEYS, D->flast[t][k]);
		}
	TH_LOG("%s: submitted %llu forwarded %llu handled %llu",
	       sn_backend_name((int)backend),
	       (unsigned long long)st.submitted,
	       (unsigned long long)st.forwarded,
	       (unsigned long long)st.handled);
	EXPECT_EQ(R_THREADS * D->msgs, st.submitted);
	EXPECT_EQ(0, st.rejected);
	EXPECT_EQ(D->fwd_sent, st.forwarded);
	EXPECT_EQ(st.submitted + st.forwarded, st.handled);
	EXPECT_EQ(0, st.dropped);
	/* the rings' received counts are exact: nothing left in them */
	for (i = 0; i < 3; i++) {
		EXPECT_EQ(0, sn_pool_worker_stats(D->pool, i, &ws));
		EXPECT_EQ(0, ws.depth);
	}
	EXPECT_EQ(0, sn_pool_destroy(D->pool));
	free(D);
}

TEST(records_mixed_sizes_ingress_and_forwarding)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++)
		r_run(_metadata, flags[b]);
}

/* A worker that forwards one message too long and one just long enough. */
static int rl_fwd_long, rl_fwd_max;

static int rl_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	static unsigned char buf[101];
	unsigned int i;

	(void)state;
	for (i = 0; i < n; i++)
		if (env[i].key == 7 && env[i].source == SN_SOURCE_EXTERNAL) {
			rl_fwd_long = sn_worker_send(w, 1, 8, buf, 101);
			rl_fwd_max = sn_worker_send(w, 1, 8, buf, 100);
		}
	return 0;
}

TEST(records_longer_than_max_are_refused)
{
	static unsigned char buf[101];
	struct sn_pool_msg m[3] = {
		{ .key = 1, .payload = buf, .len = 100 },
		{ .key = 2, .payload = buf, .len = 101 },
		{ .key = 3, .payload = buf, .len = 5 },
	};
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *s;
	struct sn_pool *pool;

	sn_pool_config_init(&cfg);
	cfg.workers = 2;
	cfg.msg_size = 8;
	cfg.handle = rl_handle;
	cfg.backend = SN_BACKEND_MEMFD;
	cfg.max_msg_size = 4;		/* below msg_size */
	EXPECT_EQ(-EINVAL, sn_pool_create(&pool, &cfg));
	cfg.max_msg_size = 1U << 30;	/* no record holds it */
	EXPECT_EQ(-EINVAL, sn_pool_create(&pool, &cfg));
	cfg.backend = SN_BACKEND_MEMFD | SN_CHANNEL_VARLEN;	/* not a backend */
	cfg.max_msg_size = 0;
	EXPECT_EQ(-EINVAL, sn_pool_create(&pool, &cfg));
	cfg.backend = SN_BACKEND_MEMFD;

	/* max_msg_size == msg_size: fixed slots, as today */
	cfg.max_msg_size = 8;
	ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
	ASSERT_EQ(0, sn_submitter_open(pool, &s));
	EXPECT_EQ(-EINVAL, sn_submit(s, 1, buf, 9));
	EXPECT_EQ(0, sn_submit(s, 1, buf, 8));
	EXPECT_EQ(0, sn_submitter_close(s));
	EXPECT_EQ(0, sn_pool_shutdown(pool));
	EXPECT_EQ(0, sn_pool_stats(pool, &st));
	EXPECT_EQ(1, st.submitted);
	EXPECT_EQ(0, st.rejected);
	EXPECT_EQ(0, sn_pool_destroy(pool));

	/* records up to 100 bytes, in lanes asked for 2 slots (enlarged so
	 * that one such message fits) */
	cfg.max_msg_size = 100;
	cfg.queue_capacity = 2;
	ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
	ASSERT_EQ(0, sn_submitter_open(pool, &s));
	EXPECT_EQ(-EINVAL, sn_submit(s, 1, buf, 101));
	EXPECT_EQ(-EINVAL, sn_submit_to(s, 0, 1, buf, 101));
	EXPECT_EQ(-EINVAL, sn_submit_batch(s, m + 1, 2));
	EXPECT_EQ(1, sn_submit_batch(s, m, 3));	/* the prefix before it */
	EXPECT_EQ(0, sn_submit_to(s, 0, 7, buf, 100));
	EXPECT_EQ(0, sn_submitter_close(s));
	EXPECT_EQ(0, sn_pool_shutdown(pool));
	EXPECT_EQ(0, sn_pool_stats(pool, &st));
	EXPECT_EQ(-EINVAL, rl_fwd_long);
	EXPECT_EQ(0, rl_fwd_max);
	EXPECT_EQ(2, st.submitted);
	EXPECT_EQ(0, st.rejected);
	EXPECT_EQ(1, st.forwarded);
	EXPECT_EQ(0, st.forward_rejected);
	EXPECT_EQ(3, st.handled);
	EXPECT_EQ(0, sn_pool_destroy(pool));
}

/*
 * Backpressure with records: a lane of 16 slots of 32 bytes (asked for 8:
 * a 232-byte message takes ceil((232 + 24) / 32) = 8 slots and the lane
 * one more), the worker held in its handler on slot 0, an 8-slot record at
 * 1..8. Another one needs 7 slots of padding to the lane's end and 8 + 1
 * from its start, more than the 7 free; a 1-slot message still fits.
 */
#define RB_BIG	232

TEST(records_backpressure_waits_for_the_record)
{
	static unsigned char big[RB_BIG];
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_submitter *s;
	struct sn_pool *pool;
	__u64 v = 1, t0, el;

	for (b = 0; b < nb; b++) {
		/* fail: -EAGAIN for the record, the small one goes in */
		pool = bp_start(_metadata, flags[b], SN_BP_FAIL, 0, &s, 0,
				RB_BIG);
		ASSERT_NE(NULL, pool);
		EXPECT_EQ(0, sn_submit(s, v, big, RB_BIG));
		EXPECT_EQ(-EAGAIN, sn_submit(s, v, big, RB_BIG));
		EXPECT_EQ(0, sn_submit(s, v, &v, 8));
		EXPECT_EQ(-EAGAIN, sn_submit(s, v, big, RB_BIG));
		EXPECT_EQ(-EINVAL, sn_submit(s, v, big, RB_BIG + 1));
		__atomic_store_n(&bp_gate, 1, __ATOMIC_RELEASE);
		bp_end(_metadata, pool, s, 3, 2);
		EXPECT_EQ(3, bp_handled);

		/* block: waits for the record's room, times out without */
		pool = bp_start(_metadata, flags[b], SN_BP_BLOCK, 50 * MS, &s,
				0, RB_BIG);
		ASSERT_NE(NULL, pool);
		EXPECT_EQ(0, sn_submit(s, v, big, RB_BIG));
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_submit(s, v, big, RB_BIG));
		el = t_now() - t0;
		EXPECT_GE(el, 45 * MS);
		EXPECT_LT(el, 2000 * MS);
		__atomic_store_n(&bp_gate, 1, __ATOMIC_RELEASE);
		bp_end(_metadata, pool, s, 2, 1);

		/* ... and goes in once the worker let go */
		pool = bp_start(_metadata, flags[b], SN_BP_BLOCK, 3000 * MS,
				&s, 0, RB_BIG);
		ASSERT_NE(NULL, pool);
		EXPECT_EQ(0, sn_submit(s, v, big, RB_BIG));
		EXPECT_EQ(0, sn_submit(s, v, &v, 8));
		bp_wait_room(_metadata, s, big, RB_BIG, flags[b]);
		bp_end(_metadata, pool, s, 4, 0);
	}
}

/* ---- shutdown ---- */

static __u64 sd_fini_handled, sd_finis;

struct sd_state {
	__u64 handled;
};

static int sd_init(struct sn_worker *w, void *arg, void **state)
{
	(void)w;
	(void)arg;
	*state = calloc(1, sizeof(struct sd_state));
	return *state ? 0 : -ENOMEM;
}

static void sd_fini(struct sn_worker *w, void *state)
{
	struct sd_state *st = state;

	(void)w;
	__atomic_fetch_add(&sd_fini_handled, st->handled, __ATOMIC_RELAXED);
	__atomic_fetch_add(&sd_finis, 1, __ATOMIC_RELAXED);
	free(st);
}

static int sd_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	struct sd_state *st = state;
	__u64 t0 = t_now();

	(void)w;
	(void)env;
	st->handled += n;
	/* slow enough that the rings are full when shutdown begins */
	while (t_now() - t0 < 2000ULL * n)
		;
	return 0;
}

static __u64 sd_total;

static void *sd_submitter(void *arg)
{
	struct sn_pool *pool = arg;
	struct sn_submitter *s;
	__u64 i, n = t_scaled(4000);

	if (sn_submitter_open(pool, &s))
		return NULL;
	for (i = 0; i < n; i++)
		if (!sn_submit(s, i, &i, sizeof(i)))
			__atomic_fetch_add(&sd_total, 1, __ATOMIC_RELAXED);
	sn_submitter_close(s);
	return NULL;
}

TEST(shutdown_drains_everything)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_worker_stats ws;
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *s;
	struct sn_pool *pool;
	pthread_t th[2];
	__u64 v = 0, depth;
	unsigned int i;

	for (b = 0; b < nb; b++) {
		sd_fini_handled = sd_finis = sd_total = 0;
		sn_pool_config_init(&cfg);
		cfg.workers = 2;
		cfg.queue_capacity = 1024;
		cfg.msg_size = 8;
		cfg.backpressure = SN_BP_BLOCK;
		cfg.backend = flags[b];
		cfg.init = sd_init;
		cfg.fini = sd_fini;
		cfg.handle = sd_handle;
		ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
		pthread_create(&th[0], NULL, sd_submitter, pool);
		pthread_create(&th[1], NULL, sd_submitter, pool);
		pthread_join(th[0], NULL);
		pthread_join(th[1], NULL);
		depth = 0;
		for (i = 0; i < 2; i++) {
			ASSERT_EQ(0, sn_pool_worker_stats(pool, i, &ws));
			depth += ws.depth;
		}
		TH_LOG("%s: %llu submitted, %llu still queued at shutdown",
		       sn_backend_name((int)flags[b]),
		       (unsigned long long)sd_total,
		       (unsigned long long)depth);
		ASSERT_EQ(0, sn_submitter_open(pool, &s));
		ASSERT_EQ(0, sn_pool_shutdown(pool));
		EXPECT_EQ(0, sn_pool_shutdown(pool));
		EXPECT_EQ(-ESHUTDOWN, sn_submit(s, v, &v, 8));
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(-ESHUTDOWN, sn_submitter_open(pool, &s));
		ASSERT_EQ(0, sn_pool_stats(pool, &st));
		EXPECT_EQ(2 * t_scaled(4000), sd_total);
		EXPECT_EQ(sd_total, st.submitted);
		EXPECT_EQ(sd_total, st.handled);
		EXPECT_EQ(1, st.rejected);
		EXPECT_EQ(0, st.dropped);
		EXPECT_EQ(2, sd_finis);
		EXPECT_EQ(sd_total, sd_fini_handled);
		for (i = 0; i < 2; i++) {
			ASSERT_EQ(0, sn_pool_worker_stats(pool, i, &ws));
			EXPECT_EQ(0, ws.depth);
			EXPECT_GE(ws.handled, ws.batches);
		}
		EXPECT_EQ(0, sn_pool_destroy(pool));
	}
}

/* ---- affinity ---- */

static int af_bad, af_seen[8];

static int af_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	unsigned int id = sn_worker_id(w);
	int want = sn_pool_worker_cpu(sn_worker_pool(w), id);
	int cpu = sched_getcpu();

	(void)state;
	(void)env;
	if (cpu != want)
		__atomic_fetch_add(&af_bad, 1, __ATOMIC_RELAXED);
	__atomic_fetch_add(&af_seen[id], (int)n, __ATOMIC_RELAXED);
	return 0;
}

static void af_tick(struct sn_worker *w, void *state)
{
	if (sched_getcpu() != sn_pool_worker_cpu(sn_worker_pool(w),
						 sn_worker_id(w)))
		__atomic_fetch_add(&af_bad, 1, __ATOMIC_RELAXED);
	(void)state;
}

static void af_run(struct __test_metadata *_metadata, unsigned int backend,
		   const int *cpus, unsigned int ncpus, const int *allowed,
		   int nallowed)
{
	struct sn_pool_config cfg;
	struct sn_submitter *s;
	struct sn_pool *pool;
	unsigned int i, k;
	__u64 v = 0;

	af_bad = 0;
	memset(af_seen, 0, sizeof(af_seen));
	sn_pool_config_init(&cfg);
	cfg.workers = 4;	/* more than this machine's 2 CPUs */
	cfg.affinity = 1;
	cfg.cpus = cpus;
	cfg.ncpus = ncpus;
	cfg.msg_size = 8;
	cfg.backend = backend;
	cfg.handle = af_handle;
	cfg.tick = af_tick;
	ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
	ASSERT_EQ(0, sn_submitter_open(pool, &s));
	for (i = 0; i < 4; i++) {
		int want = cpus ? cpus[i % ncpus] : allowed[i % nallowed];

		EXPECT_EQ(want, sn_pool_worker_cpu(pool, i));
		for (k = 0; k < 10; k++)
			EXPECT_EQ(0, sn_submit_to(s, i, k, &v, 8));
	}
	EXPECT_EQ(0, sn_submitter_close(s));
	EXPECT_EQ(0, sn_pool_destroy(pool));
	EXPECT_EQ(0, af_bad);
	for (i = 0; i < 4; i++)
		EXPECT_EQ(10, af_seen[i]);
}

TEST(affinity_pins_workers)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, allowed[CPU_SETSIZE], n = 0, cpu;
	cpu_set_t set;
	int one[1];

	ASSERT_EQ(0, sched_getaffinity(0, sizeof(set), &set));
	for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
		if (CPU_ISSET(cpu, &set))
			allowed[n++] = cpu;
	TH_LOG("%d CPUs allowed, 4 workers pinned modulo", n);
	one[0] = allowed[n - 1];
	for (b = 0; b < nb; b++) {
		af_run(_metadata, flags[b], NULL, 0, allowed, n);
		af_run(_metadata, flags[b], one, 1, allowed, n);
	}
}

/* ---- idle workers ---- */

static pthread_t idle_threads[8];
static __u64 idle_handled;

static int idle_init(struct sn_worker *w, void *arg, void **state)
{
	(void)arg;
	idle_threads[sn_worker_id(w)] = pthread_self();
	*state = NULL;
	return 0;
}

static int idle_handle(struct sn_worker *w, void *state,
		       const struct sn_envelope *env, unsigned int n)
{
	(void)w;
	(void)state;
	(void)env;
	__atomic_fetch_add(&idle_handled, n, __ATOMIC_RELAXED);
	return 0;
}

static __u64 t_thread_cpu_ns(pthread_t t)
{
	struct timespec ts;
	clockid_t cid;

	if (pthread_getcpuclockid(t, &cid) || clock_gettime(cid, &ts))
		return ~0ULL;
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

TEST(idle_workers_burn_no_cpu)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_worker_stats ws0[4], ws1[4];
	struct sn_pool_config cfg;
	struct sn_submitter *s;
	struct sn_pool *pool;
	__u64 cpu0[4], cpu1[4], v = 0, t0;
	unsigned int i;

	for (b = 0; b < nb; b++) {
		idle_handled = 0;
		sn_pool_config_init(&cfg);
		cfg.workers = 3;
		cfg.msg_size = 8;
		cfg.backend = flags[b];
		cfg.init = idle_init;
		cfg.handle = idle_handle;
		ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
		ASSERT_EQ(0, sn_submitter_open(pool, &s));
		for (i = 0; i < 3; i++)
			EXPECT_EQ(0, sn_submit_to(s, i, i, &v, 8));
		while (__atomic_load_n(&idle_handled, __ATOMIC_RELAXED) < 3)
			t_sleep_ms(1);
		t_sleep_ms(100);
		for (i = 0; i < 3; i++) {
			cpu0[i] = t_thread_cpu_ns(idle_threads[i]);
			sn_pool_worker_stats(pool, i, &ws0[i]);
		}
		t0 = t_now();
		t_sleep_ms(1000);
		for (i = 0; i < 3; i++) {
			cpu1[i] = t_thread_cpu_ns(idle_threads[i]);
			sn_pool_worker_stats(pool, i, &ws1[i]);
		}
		t0 = t_now() - t0;
		for (i = 0; i < 3; i++) {
			TH_LOG("%s worker %u: %llu us CPU in %llu ms idle, %llu idle waits",
			       sn_backend_name((int)flags[b]), i,
			       (unsigned long long)(cpu1[i] - cpu0[i]) / 1000,
			       (unsigned long long)(t0 / MS),
			       (unsigned long long)(ws1[i].idle_waits -
						    ws0[i].idle_waits));
			/* next to none: under 1 % of the interval */
			EXPECT_LT(cpu1[i] - cpu0[i], t0 / 100);
			EXPECT_LE(ws1[i].idle_waits - ws0[i].idle_waits, 5);
		}
		/* and they still wake for work */
		for (i = 0; i < 3; i++)
			EXPECT_EQ(0, sn_submit_to(s, i, i, &v, 8));
		while (__atomic_load_n(&idle_handled, __ATOMIC_RELAXED) < 6)
			t_sleep_ms(1);
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_destroy(pool));
	}
}

/* ---- a handler's own I/O on the worker's io_uring ---- */

#define IO_CHUNK 4096

struct io_state {
	struct sn_io io;	/* the reads */
	struct sn_io pace;	/* a short io_uring timeout between reads */
	struct __kernel_timespec ts;
	int fd;
	__u64 off, size, sum, chunks;
	int reading, finished, error;
	__u64 handled_while_reading;
	unsigned char buf[IO_CHUNK];
};

static struct io_state *IO;
static const char *io_path;

static unsigned char io_byte(__u64 off)
{
	return (unsigned char)(off * 131 + (off >> 12));
}

static void io_next(struct sn_worker *w, struct io_state *st)
{
	struct io_uring_sqe *sqe = sn_worker_sqe(w, &st->io);

	if (!sqe) {
		st->error = 1;
		st->finished = 1;
		return;
	}
	io_uring_prep_read(sqe, st->fd, st->buf, IO_CHUNK, st->off);
}

/* The pause is over: read the next chunk. */
static void io_paced(struct sn_worker *w, struct sn_io *io, int res,
		     unsigned int flags)
{
	(void)io;
	(void)res;
	(void)flags;
	io_next(w, IO);
}

static void io_done(struct sn_worker *w, struct sn_io *io, int res,
		    unsigned int flags)
{
	struct io_state *st = (struct io_state *)io;
	struct io_uring_sqe *sqe;
	int i;

	(void)flags;
	if (res < 0) {
		st->error = res;
		goto finish;
	}
	if (res == 0)
		goto finish;
	for (i = 0; i < res; i++)
		if (st->buf[i] != io_byte(st->off + (__u64)i))
			st->error = 1;
	st->off += (__u64)res;
	st->chunks++;
	/* a paced reader: 200 us between chunks, messages meanwhile */
	sqe = sn_worker_sqe(w, &st->pace);
	if (!sqe) {
		st->error = 1;
		goto finish;
	}
	st->ts.tv_sec = 0;
	st->ts.tv_nsec = 200000;
	io_uring_prep_timeout(sqe, &st->ts, 0, 0);
	return;
finish:
	st->reading = 0;
	close(st->fd);
	__atomic_store_n(&st->finished, 1, __ATOMIC_RELEASE);
}

static int io_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	struct io_state *st = IO;

	(void)state;
	if (sn_worker_id(w) != 0)
		return 0;
	if (st->reading)
		st->handled_while_reading += n;
	if (env[0].key == 1 && !st->reading && !st->finished) {
		st->fd = open(io_path, O_RDONLY | O_CLOEXEC);
		if (st->fd < 0) {
			st->error = -errno;
			__atomic_store_n(&st->finished, 1, __ATOMIC_RELEASE);
			return -1;
		}
		st->reading = 1;
		st->io.done = io_done;
		st->pace.done = io_paced;
		io_next(w, st);
	}
	return 0;
}

TEST(handler_reads_file_through_worker_uring)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, fd;
	char path[] = "/tmp/sn_pool_io_XXXXXX";
	unsigned char *data;
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *s;
	struct sn_pool *pool;
	__u64 size = 256 * 1024, i, sent;

	fd = mkstemp(path);
	ASSERT_LE(0, fd);
	data = malloc(size);
	ASSERT_NE(NULL, data);
	for (i = 0; i < size; i++)
		data[i] = io_byte(i);
	ASSERT_EQ((ssize_t)size, write(fd, data, size));
	close(fd);
	free(data);
	io_path = path;

	for (b = 0; b < nb; b++) {
		IO = calloc(1, sizeof(*IO));
		ASSERT_NE(NULL, IO);
		sn_pool_config_init(&cfg);
		cfg.workers = 2;
		cfg.msg_size = 8;
		cfg.batch = 4;
		cfg.backpressure = SN_BP_BLOCK;
		cfg.backend = flags[b];
		cfg.handle = io_handle;
		ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
		ASSERT_EQ(0, sn_submitter_open(pool, &s));
		EXPECT_EQ(0, sn_submit_to(s, 0, 1, &i, 8));
		/* messages keep arriving while the handler's reads run */
		for (sent = 0; !__atomic_load_n(&IO->finished,
						 __ATOMIC_ACQUIRE); sent++)
			EXPECT_EQ(0, sn_submit_to(s, (unsigned int)(sent & 1),
						  2, &sent, 8));
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_shutdown(pool));
		ASSERT_EQ(0, sn_pool_stats(pool, &st));
		TH_LOG("%s: %llu chunks read, %llu messages handled meanwhile, %llu sent",
		       sn_backend_name((int)flags[b]),
		       (unsigned long long)IO->chunks,
		       (unsigned long long)IO->handled_while_reading,
		       (unsigned long long)sent);
		EXPECT_EQ(0, IO->error);
		EXPECT_EQ(size, IO->off);
		EXPECT_EQ(size / IO_CHUNK, IO->chunks);
		/* reads, the final one at EOF, and the pauses */
		EXPECT_EQ(2 * IO->chunks + 1, st.io_completions);
		EXPECT_GT(IO->handled_while_reading, 0);
		EXPECT_EQ(sent + 1, st.submitted);
		EXPECT_EQ(st.submitted, st.handled);
		EXPECT_EQ(0, sn_pool_destroy(pool));
		free(IO);
	}
	unlink(path);
}

/* ---- API contract ---- */

static int nop_handle(struct sn_worker *w, void *state,
		      const struct sn_envelope *env, unsigned int n)
{
	(void)w;
	(void)state;
	(void)env;
	(void)n;
	return 0;
}

static int fail_init(struct sn_worker *w, void *arg, void **state)
{
	(void)arg;
	*state = NULL;
	return sn_worker_id(w) == 1 ? -ENOTRECOVERABLE : 0;
}

TEST(config_contract)
{
	struct sn_pool_config cfg;
	struct sn_submitter *s[3];
	struct sn_pool *pool;

	sn_pool_config_init(&cfg);
	EXPECT_EQ(-EINVAL, sn_pool_create(&pool, &cfg));	/* no handler */
	cfg.handle = nop_handle;
	cfg.backpressure = 7;
	EXPECT_EQ(-EINVAL, sn_pool_create(&pool, &cfg));
	cfg.backpressure = SN_BP_FAIL;
	cfg.backend = SN_BACKEND_MEMFD;
	cfg.workers = 3;
	cfg.init = fail_init;
	EXPECT_EQ(-ENOTRECOVERABLE, sn_pool_create(&pool, &cfg));
	cfg.init = NULL;
	cfg.workers = 0;	/* the online CPUs */
	cfg.max_submitters = 2;
	ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
	EXPECT_EQ(sysconf(_SC_NPROCESSORS_ONLN), sn_pool_workers(pool));
	EXPECT_EQ(-1, sn_pool_worker_cpu(pool, 0));
	EXPECT_EQ(0, sn_submitter_open(pool, &s[0]));
	EXPECT_EQ(0, sn_submitter_open(pool, &s[1]));
	EXPECT_EQ(-EUSERS, sn_submitter_open(pool, &s[2]));
	EXPECT_EQ(0, sn_submitter_close(s[1]));
	EXPECT_EQ(0, sn_submitter_open(pool, &s[1]));
	EXPECT_EQ(-EINVAL, sn_submit_to(s[0], 999, 0, NULL, 0));
	EXPECT_EQ(0, sn_submit(s[0], 5, NULL, 0));
	EXPECT_EQ(-EBUSY, sn_pool_destroy(pool));
	EXPECT_EQ(0, sn_submitter_close(s[0]));
	EXPECT_EQ(0, sn_submitter_close(s[1]));
	EXPECT_EQ(0, sn_pool_destroy(pool));
	EXPECT_EQ(0, sn_pool_destroy(NULL));
}

/* ---- every function from every thread, during shutdown too ---- */

/*
 * The probe: every pool function a worker may call, with what pool.h says
 * it returns there. Handlers, ticks (running and stopping) and an outside
 * thread during sn_pool_shutdown() run it; the counts prove each ran.
 */
#define AT_WORKERS	2

struct at_shared {
	struct sn_pool *pool;
	struct sn_pool *init_pool;	/* sn_worker_pool() seen by init */
	unsigned int backend;
	__u64 probes[2][2];		/* [handler, tick][running, stopping] */
	int nested_done[2];		/* a pool created from a handler, tick */
	__u64 held_since;		/* the stopping tick's hold (ns) */
	int holding;
	int stop_seen;
	__u64 errors;
	char why[160];
};

static struct at_shared *AT;

/* A worker's state: its I/O and a submitter of its own, open throughout. */
struct at_wstate {
	struct sn_io io;
	struct sn_submitter *own;
};

static void at_fail(const char *what, long v, int line)
{
	if (__atomic_fetch_add(&AT->errors, 1, __ATOMIC_RELAXED) == 0)
		snprintf(AT->why, sizeof(AT->why), "line %d: %s (%ld)", line,
			 what, v);
}

#define AT_CHECK(cond, v) do {						\
		if (!(cond))						\
			at_fail(#cond, (long)(v), __LINE__);		\
	} while (0)

static void at_nop_done(struct sn_worker *w, struct sn_io *io, int res,
			unsigned int flags)
{
	(void)w;
	(void)io;
	(void)flags;
	AT_CHECK(res == 0, res);
}

static void at_nested_locked(void)
{
	struct sn_pool_config cfg;
	struct sn_submitter *s;
	struct sn_pool *p;
	__u64 v = 7;
	int r;

	sn_pool_config_init(&cfg);
	cfg.workers = 1;
	cfg.msg_size = 8;
	cfg.backend = AT->backend;
	cfg.handle = nop_handle;
	r = sn_pool_create(&p, &cfg);
	AT_CHECK(r == 0, r);
	if (r)
		return;
	AT_CHECK(sn_submitter_open(p, &s) == 0, 0);
	AT_CHECK(sn_submit(s, v, &v, 8) == 0, 0);
	AT_CHECK(sn_submitter_close(s) == 0, 0);
	AT_CHECK(sn_pool_destroy(p) == 0, 0);
}

/*
 * A pool created and destroyed from inside a worker. One at a time: the
 * io_uring rings are mapped by raw system calls TSan does not see, so a
 * ring mapped where a concurrently destroyed one was would look racy.
 */
static pthread_mutex_t at_nested_lock = PTHREAD_MUTEX_INITIALIZER;

static void at_nested(void)
{
	pthread_mutex_lock(&at_nested_lock);
	at_nested_locked();
	pthread_mutex_unlock(&at_nested_lock);
}

/* Every "any thread" function; @worker: called from a worker of AT. */
static void at_probe_any(struct sn_pool *pool, int worker, int stopping,
			 struct sn_submitter *own)
{
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_worker_stats ws;
	struct sn_submitter *s = NULL;
	struct sn_pool_msg m[3];
	__u64 v = 1;
	int r, route;

	sn_pool_config_init(&cfg);
	AT_CHECK(cfg.backpressure == SN_BP_BLOCK, cfg.backpressure);
	AT_CHECK(sn_pool_workers(pool) == AT_WORKERS, 0);
	AT_CHECK(sn_pool_backend(pool) == (int)AT->backend, 0);
	AT_CHECK(sn_pool_worker_cpu(pool, 1) == -1, 0);
	route = sn_pool_route(pool, 12345);
	AT_CHECK(route >= 0 && route < AT_WORKERS, route);
	AT_CHECK(sn_pool_stats(pool, &st) == 0, 0);
	AT_CHECK(sn_pool_worker_stats(pool, 1, &ws) == 0, 0);
	AT_CHECK(sn_pool_worker_stats(pool, 2, &ws) == -EINVAL, 0);
	if (worker) {
		/* shutdown is not done while a worker runs */
		AT_CHECK(sn_pool_worker_state(pool, 0) == NULL, 0);
		AT_CHECK(st.dropped == 0, st.dropped);
		AT_CHECK(sn_pool_shutdown(pool) == -EDEADLK, 0);
		AT_CHECK(sn_pool_destroy(pool) == -EDEADLK, 0);
	}
	m[0].key = 1;
	m[1].key = 2;
	m[2].key = 3;
	m[0].payload = m[1].payload = m[2].payload = &v;
	m[0].len = m[1].len = m[2].len = 8;
	if (stopping) {
		/* intake stopped: a submitter opened before refuses all */
		AT_CHECK(sn_submit(own, v, &v, 8) == -ESHUTDOWN, 0);
		AT_CHECK(sn_submit_to(own, 0, v, &v, 8) == -ESHUTDOWN, 0);
		AT_CHECK(sn_submit_batch(own, m, 3) == -ESHUTDOWN, 0);
	}
	r = sn_submitter_open(pool, &s);
	/* stopping may turn true meanwhile, never back */
	AT_CHECK(r == -ESHUTDOWN || (!stopping && r == 0), r);
	if (r)
		return;
	/* a worker never waits for room: 0 or -EAGAIN, never -ETIMEDOUT */
	r = sn_submit(s, v, &v, 8);
	AT_CHECK(r == 0 || (worker && r == -EAGAIN) || r == -ESHUTDOWN, r);
	r = sn_submit_to(s, 1, v, &v, 8);
	AT_CHECK(r == 0 || (worker && r == -EAGAIN) || r == -ESHUTDOWN, r);
	r = sn_submit_batch(s, m, 3);
	AT_CHECK((r >= 0 && r <= 3) || (worker && r == -EAGAIN) ||
		 r == -ESHUTDOWN, r);
	AT_CHECK(sn_submitter_close(s) == 0, 0);
}

/* The worker-only functions, from a handler or tick of worker @w. */
static void at_probe_worker(struct sn_worker *w, int tick)
{
	struct sn_pool *pool = sn_worker_pool(w);
	unsigned int me = sn_worker_id(w);
	int stopping = sn_worker_stopping(w), r;
	struct at_wstate *ws = sn_worker_state(w);
	struct sn_io *io = &ws->io;
	struct io_uring_sqe *sqe;
	__u64 v = 2;

	AT_CHECK(pool == __atomic_load_n(&AT->init_pool, __ATOMIC_RELAXED), 0);
	AT_CHECK(me < AT_WORKERS, me);
	AT_CHECK(sn_worker_arg(w) == AT, 0);
	AT_CHECK(ws != NULL, 0);
	AT_CHECK(sn_worker_uring(w) != NULL, 0);
	/* forwards: only from handlers while running, so this ends */
	if (!tick && !stopping) {
		r = sn_worker_send(w, 1 - me, 1ULL << 40, &v, 8);
		AT_CHECK(r == 0 || r == -EAGAIN, r);
		r = sn_worker_route(w, 1ULL << 41, &v, 8);
		AT_CHECK(r == 0 || r == -EAGAIN, r);
	}
	AT_CHECK(sn_worker_send(w, 9, 0, &v, 8) == -EINVAL, 0);
	sn_worker_hold(w, 2);
	sn_worker_done(w, 2);
	if (!io->done) {
		io->done = at_nop_done;
		sqe = sn_worker_sqe(w, io);
		AT_CHECK(sqe != NULL, 0);
		if (sqe)
			io_uring_prep_nop(sqe);
	}
	at_probe_any(pool, 1, stopping, ws->own);
	__atomic_fetch_add(&AT->probes[tick][stopping], 1, __ATOMIC_RELAXED);
	if (!__atomic_exchange_n(&AT->nested_done[tick], 1, __ATOMIC_RELAXED))
		at_nested();
}

static int at_init(struct sn_worker *w, void *arg, void **state)
{
	(void)w;
	AT_CHECK(arg == AT, 0);
	/* AT->pool is set only once sn_pool_create() returned */
	__atomic_store_n(&AT->init_pool, sn_worker_pool(w), __ATOMIC_RELAXED);
	struct at_wstate *ws = calloc(1, sizeof(*ws));

	if (!ws || sn_submitter_open(sn_worker_pool(w), &ws->own)) {
		free(ws);
		return -ENOMEM;
	}
	*state = ws;
	return 0;
}

static void at_fini(struct sn_worker *w, void *state)
{
	struct at_wstate *ws = state;

	(void)w;
	AT_CHECK(sn_submitter_close(ws->own) == 0, 0);
	free(ws);
}

static int at_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	(void)state;
	(void)env;
	(void)n;
	at_probe_worker(w, 0);
	return 0;
}

static void at_tick(struct sn_worker *w, void *state)
{
	(void)state;
	if (sn_worker_stopping(w) && sn_worker_id(w) == 0) {
		/* keep shutdown busy a while (step 3) for the outside probe */
		if (!AT->holding && !AT->held_since) {
			sn_worker_hold(w, 1);
			AT->holding = 1;
			AT->held_since = t_now();
			__atomic_store_n(&AT->stop_seen, 1, __ATOMIC_RELEASE);
		} else if (AT->holding && t_now() - AT->held_since > 300 * MS) {
			sn_worker_done(w, 1);
			AT->holding = 0;
		}
	}
	/* every 64th tick: ticks are many */
	if (sn_worker_stopping(w) ||
	    !(__atomic_load_n(&AT->probes[1][0], __ATOMIC_RELAXED) & 63) ||
	    (t_now() & 63) == 0)
		at_probe_worker(w, 1);
}

static void *at_outside(void *arg)
{
	struct sn_submitter *s = arg;
	__u64 v = 3;

	while (!__atomic_load_n(&AT->stop_seen, __ATOMIC_ACQUIRE))
		t_sleep_ms(1);
	/* shutdown is in step 3 now (the tick holds an item) */
	at_probe_any(AT->pool, 0, 1, s);
	AT_CHECK(sn_pool_worker_state(AT->pool, 0) == NULL, 0);
	AT_CHECK(sn_submit(s, v, &v, 8) == -ESHUTDOWN, 0);
	AT_CHECK(sn_submitter_close(s) == 0, 0);
	at_nested();	/* another pool, created and destroyed meanwhile */
	/* a second shutdown waits for the first to finish */
	AT_CHECK(sn_pool_shutdown(AT->pool) == 0, 0);
	AT_CHECK(sn_pool_worker_state(AT->pool, 0) != NULL, 0);
	return NULL;
}

TEST(every_function_from_handler_tick_outside_and_during_shutdown)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *s, *late;
	pthread_t th;
	__u64 v = 0, i, t0, el;

	for (b = 0; b < nb; b++) {
		AT = calloc(1, sizeof(*AT));
		ASSERT_NE(NULL, AT);
		AT->backend = flags[b];
		sn_pool_config_init(&cfg);
		cfg.workers = AT_WORKERS;
		cfg.msg_size = 8;
		cfg.queue_capacity = 64;
		cfg.max_submitters = 8;
		cfg.backend = flags[b];
		cfg.init = at_init;
		cfg.fini = at_fini;
		cfg.handle = at_handle;
		cfg.tick = at_tick;
		cfg.arg = AT;
		ASSERT_EQ(0, sn_pool_create(&AT->pool, &cfg));
		EXPECT_EQ(AT->pool, AT->init_pool);
		ASSERT_EQ(0, sn_submitter_open(AT->pool, &s));
		ASSERT_EQ(0, sn_submitter_open(AT->pool, &late));
		/* outside, running */
		at_probe_any(AT->pool, 0, 0, NULL);
		for (i = 0; i < 200; i++)
			EXPECT_EQ(0, sn_submit(s, i, &v, 8));
		while (!__atomic_load_n(&AT->probes[0][0], __ATOMIC_RELAXED) ||
		       !__atomic_load_n(&AT->nested_done[1], __ATOMIC_RELAXED))
			t_sleep_ms(1);
		t_sleep_ms(20);
		EXPECT_EQ(0, sn_submitter_close(s));
		pthread_create(&th, NULL, at_outside, late);
		t0 = t_now();
		ASSERT_EQ(0, sn_pool_shutdown(AT->pool));
		el = t_now() - t0;
		pthread_join(th, NULL);
		ASSERT_EQ(0, sn_pool_stats(AT->pool, &st));
		TH_LOG("%s: probes handler %llu/%llu tick %llu/%llu (running/stopping), shutdown %llu ms, submitted %llu forwarded %llu handled %llu dropped %llu rejected %llu",
		       sn_backend_name((int)flags[b]),
		       (unsigned long long)AT->probes[0][0],
		       (unsigned long long)AT->probes[0][1],
		       (unsigned long long)AT->probes[1][0],
		       (unsigned long long)AT->probes[1][1],
		       (unsigned long long)(el / MS),
		       (unsigned long long)st.submitted,
		       (unsigned long long)st.forwarded,
		       (unsigned long long)st.handled,
		       (unsigned long long)st.dropped,
		       (unsigned long long)st.rejected);
		EXPECT_EQ(0, AT->errors) TH_LOG("%s", AT->why);
		EXPECT_LT(0, AT->probes[0][0]);
		EXPECT_LT(0, AT->probes[1][0]);
		EXPECT_LT(0, AT->probes[1][1]);
		EXPECT_EQ(0, AT->holding);	/* released before step 4 */
		EXPECT_EQ(st.submitted + st.forwarded, st.handled + st.dropped);
		EXPECT_EQ(0, st.dropped);
		for (i = 0; i < AT_WORKERS; i++)
			EXPECT_NE(NULL, sn_pool_worker_state(AT->pool,
							     (unsigned int)i));
		EXPECT_EQ(NULL, sn_pool_worker_state(AT->pool, AT_WORKERS));
		EXPECT_EQ(0, sn_pool_destroy(AT->pool));
		free(AT);
	}
}

/* ---- shutdown returns in bounded time whatever callbacks do ---- */

#define LV_BOUND_MS	8000ULL		/* drain timeout + generous slack */

struct lv_state {
	struct sn_submitter *s;		/* a worker's own submitter */
	int sent_after_stop;
};

static int lv_mode;			/* 0: produce forever; 1: once */
static __u64 lv_after_stop;

static int lv_init(struct sn_worker *w, void *arg, void **state)
{
	struct lv_state *st = calloc(1, sizeof(*st));

	(void)arg;
	if (!st)
		return -ENOMEM;
	/* a submitter opened from a worker, used from its callbacks */
	if (sn_submitter_open(sn_worker_pool(w), &st->s)) {
		free(st);
		return -ENOSPC;
	}
	*state = st;
	return 0;
}

static void lv_fini(struct sn_worker *w, void *state)
{
	struct lv_state *st = state;

	(void)w;
	sn_submitter_close(st->s);
	free(st);
}

/* Calls every pool function callable from here, then produces. */
static void lv_everything(struct sn_worker *w, struct lv_state *st)
{
	struct sn_pool *pool = sn_worker_pool(w);
	struct sn_pool_stats ps;
	struct sn_worker_stats ws;
	struct sn_submitter *s2;
	struct sn_pool_msg m = { .key = 5, .len = 0 };
	__u64 v = 9;

	sn_pool_stats(pool, &ps);
	sn_pool_worker_stats(pool, sn_worker_id(w), &ws);
	sn_pool_route(pool, v);
	sn_pool_workers(pool);
	sn_pool_backend(pool);
	sn_pool_worker_cpu(pool, 0);
	sn_pool_worker_state(pool, 0);
	sn_pool_shutdown(pool);		/* -EDEADLK */
	sn_pool_destroy(pool);		/* -EDEADLK */
	if (!sn_submitter_open(pool, &s2))
		sn_submitter_close(s2);
	sn_submit(st->s, v, &v, 8);
	sn_submit_to(st->s, 0, v, &v, 8);
	sn_submit_batch(st->s, &m, 1);
	sn_worker_hold(w, 1);
	sn_worker_done(w, 1);
}

static int lv_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	unsigned int i, nw = sn_pool_workers(sn_worker_pool(w));
	__u64 v = 1;

	lv_everything(w, state);
	/* mode 0: every message goes on to the next worker, forever */
	for (i = 0; lv_mode == 0 && i < n; i++)
		sn_worker_send(w, (sn_worker_id(w) + 1) % nw, env[i].key, &v,
			       8);
	return 0;
}

static void lv_tick(struct sn_worker *w, void *state)
{
	struct lv_state *st = state;
	__u64 v = 2;

	if (!sn_worker_stopping(w))
		return;
	lv_everything(w, st);
	if (lv_mode == 0) {
		/* forwards on every iteration after stopping */
		if (!sn_worker_route(w, v++, &v, 8))
			__atomic_fetch_add(&lv_after_stop, 1,
					   __ATOMIC_RELAXED);
	} else if (!st->sent_after_stop) {
		/* sends once after stopping */
		st->sent_after_stop = 1;
		if (!sn_worker_send(w, 0, 77, &v, 8))
			__atomic_fetch_add(&lv_after_stop, 1,
					   __ATOMIC_RELAXED);
	}
}

TEST(shutdown_liveness_callbacks_keep_producing)
{
	static const __u64 drains[] = { 50 * MS, SN_POOL_DRAIN_TIMEOUT_NS,
					SN_NO_WAIT };
	unsigned int flags[2];
	int nb = t_backends(flags), b, mode;
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *s;
	struct sn_pool *pool;
	unsigned int d;
	__u64 v = 0, i, t0, el;

	for (b = 0; b < nb; b++)
		for (mode = 0; mode < 2; mode++)
			for (d = 0; d < 3; d++) {
				lv_mode = mode;
				lv_after_stop = 0;
				sn_pool_config_init(&cfg);
				cfg.workers = 2;
				cfg.msg_size = 8;
				cfg.queue_capacity = 64;
				cfg.backend = flags[b];
				cfg.drain_timeout_ns = drains[d];
				cfg.init = lv_init;
				cfg.fini = lv_fini;
				cfg.handle = lv_handle;
				cfg.tick = lv_tick;
				ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
				ASSERT_EQ(0, sn_submitter_open(pool, &s));
				for (i = 0; i < 100; i++)
					EXPECT_EQ(0, sn_submit(s, i, &v, 8));
				EXPECT_EQ(0, sn_submitter_close(s));
				t0 = t_now();
				ASSERT_EQ(0, sn_pool_shutdown(pool));
				el = t_now() - t0;
				ASSERT_EQ(0, sn_pool_stats(pool, &st));
				TH_LOG("%s %s, drain %llu ms: shutdown %llu ms, %llu sent after stopping, submitted %llu forwarded %llu handled %llu dropped %llu",
				       sn_backend_name((int)flags[b]),
				       mode ? "send once" : "forever",
				       (unsigned long long)(drains[d] / MS),
				       (unsigned long long)(el / MS),
				       (unsigned long long)lv_after_stop,
				       (unsigned long long)st.submitted,
				       (unsigned long long)st.forwarded,
				       (unsigned long long)st.handled,
				       (unsigned long long)st.dropped);
				EXPECT_LT(el, drains[d] + LV_BOUND_MS * MS);
				if (drains[d] != SN_NO_WAIT)
					EXPECT_LT(0, lv_after_stop);
				EXPECT_EQ(st.submitted + st.forwarded,
					  st.handled + st.dropped);
				/* what was in the pool at the stop is
				 * handled: the 100 messages and their kin */
				EXPECT_LE(100, st.handled);
				/* one send after stopping, with a drain
				 * timeout to handle it: nothing dropped */
				if (mode == 1 && drains[d] != SN_NO_WAIT)
					EXPECT_EQ(0, st.dropped);
				EXPECT_EQ(0, sn_pool_destroy(pool));
			}
}

/* ---- per-key order per thread across close and reopen ---- */

#define RO_THREADS	3
#define RO_KEYS		16

static struct sn_pool *ro_pool;
static __u64 ro_next[RO_THREADS][RO_KEYS];	/* handler: next expected */
static __u64 ro_bad, ro_msgs, ro_reopens, ro_errors;

static int ro_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	unsigned int i;
	__u64 t0 = t_now();

	(void)w;
	(void)state;
	for (i = 0; i < n; i++) {
		__u64 seq, t = env[i].key >> 32, k = env[i].key & 0xffff;

		memcpy(&seq, env[i].payload, sizeof(seq));
		if (t >= RO_THREADS || k >= RO_KEYS) {
			ro_errors++;
			continue;
		}
		/* a key's messages are handled by one worker: no race */
		if (seq != ro_next[t][k])
			__atomic_fetch_add(&ro_bad, 1, __ATOMIC_RELAXED);
		ro_next[t][k] = seq + 1;
	}
	/* slow enough that lanes hold messages when submitters close */
	while (t_now() - t0 < 300ULL * n)
		;
	return 0;
}

static void *ro_thread(void *arg)
{
	unsigned int t = (unsigned int)(unsigned long)arg, burst;
	__u64 seq[RO_KEYS] = { 0 }, sent = 0, rnd = t + 1;
	struct sn_submitter *s;

	while (sent < ro_msgs) {
		if (sn_submitter_open(ro_pool, &s)) {
			__atomic_fetch_add(&ro_errors, 1, __ATOMIC_RELAXED);
			return NULL;
		}
		rnd = rnd * 6364136223846793005ULL + 1442695040888963407ULL;
		for (burst = 1 + (unsigned int)(rnd >> 58);
		     burst && sent < ro_msgs; burst--, sent++) {
			unsigned int k = (unsigned int)(sent % RO_KEYS);
			__u64 key = ((__u64)t << 32) | k;

			if (sn_submit(s, key, &seq[k], 8)) {
				__atomic_fetch_add(&ro_errors, 1,
						   __ATOMIC_RELAXED);
				break;
			}
			seq[k]++;
		}
		sn_submitter_close(s);
		__atomic_fetch_add(&ro_reopens, 1, __ATOMIC_RELAXED);
	}
	return NULL;
}

TEST(key_order_per_thread_across_submitter_reopen)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	pthread_t th[RO_THREADS];
	unsigned long t;

	for (b = 0; b < nb; b++) {
		memset(ro_next, 0, sizeof(ro_next));
		ro_bad = ro_reopens = ro_errors = 0;
		/* 400 000 messages at full scale, as the report */
		ro_msgs = t_scaled(400000) / RO_THREADS;
		sn_pool_config_init(&cfg);
		cfg.workers = 2;
		cfg.msg_size = 8;
		cfg.queue_capacity = 256;
		/* one spare lane: a reopen could take another thread's */
		cfg.max_submitters = RO_THREADS + 1;
		cfg.backend = flags[b];
		cfg.handle = ro_handle;
		ASSERT_EQ(0, sn_pool_create(&ro_pool, &cfg));
		for (t = 0; t < RO_THREADS; t++)
			pthread_create(&th[t], NULL, ro_thread, (void *)t);
		for (t = 0; t < RO_THREADS; t++)
			pthread_join(th[t], NULL);
		ASSERT_EQ(0, sn_pool_shutdown(ro_pool));
		ASSERT_EQ(0, sn_pool_stats(ro_pool, &st));
		TH_LOG("%s: %llu messages, %llu submitter reopens, %llu out of key order",
		       sn_backend_name((int)flags[b]),
		       (unsigned long long)st.handled,
		       (unsigned long long)ro_reopens,
		       (unsigned long long)ro_bad);
		EXPECT_EQ(0, ro_errors);
		EXPECT_EQ(0, ro_bad);
		EXPECT_EQ(RO_THREADS * ro_msgs, st.handled);
		EXPECT_EQ(st.submitted, st.handled);
		EXPECT_EQ(0, sn_pool_destroy(ro_pool));
	}
}

/* ---- batch submission ---- */

#define BA_THREADS	2
#define BA_KEYS		32

static struct sn_pool *ba_pool;
static __u64 ba_next[BA_THREADS][BA_KEYS], ba_bad, ba_msgs, ba_calls;
static unsigned char *ba_seen;

static int ba_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	unsigned int i;

	(void)state;
	for (i = 0; i < n; i++) {
		__u64 seq, t = env[i].key >> 32, k = env[i].key & 0xffff;

		memcpy(&seq, env[i].payload, sizeof(seq));
		if (t >= BA_THREADS || k >= BA_KEYS || seq >= ba_msgs ||
		    env[i].len != 8 ||
		    sn_pool_route(sn_worker_pool(w), env[i].key) !=
		    (int)sn_worker_id(w)) {
			__atomic_fetch_add(&ba_bad, 1, __ATOMIC_RELAXED);
			continue;
		}
		if (seq < ba_next[t][k])
			__atomic_fetch_add(&ba_bad, 1, __ATOMIC_RELAXED);
		ba_next[t][k] = seq + 1;
		if (__atomic_fetch_add(&ba_seen[t * ba_msgs + seq], 1,
				       __ATOMIC_RELAXED))
			__atomic_fetch_add(&ba_bad, 1, __ATOMIC_RELAXED);
	}
	return 0;
}

static void *ba_thread(void *arg)
{
	unsigned int t = (unsigned int)(unsigned long)arg, k, j;
	struct sn_pool_msg m[200];
	__u64 seqs[200], sent = 0;
	struct sn_submitter *s;
	int r;

	if (sn_submitter_open(ba_pool, &s)) {
		__atomic_fetch_add(&ba_bad, 1, __ATOMIC_RELAXED);
		return NULL;
	}
	/* batch sizes 1..200: below, at and across the routing chunk */
	for (k = 1; sent < ba_msgs; k = k % 200 + 1) {
		for (j = 0; j < k && sent + j < ba_msgs; j++) {
			seqs[j] = sent + j;
			m[j].key = ((__u64)t << 32) | (seqs[j] % BA_KEYS);
			m[j].payload = &seqs[j];
			m[j].len = 8;
		}
		r = sn_submit_batch(s, m, j);
		if (r != (int)j) {
			__atomic_fetch_add(&ba_bad, 1, __ATOMIC_RELAXED);
			break;
		}
		sent += j;
		__atomic_fetch_add(&ba_calls, 1, __ATOMIC_RELAXED);
	}
	sn_submitter_close(s);
	return NULL;
}

TEST(submit_batch_routes_orders_and_takes_a_prefix)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_pool_config cfg;
	struct sn_pool_stats st;
	struct sn_submitter *s;
	struct sn_pool_msg m[20];
	pthread_t th[BA_THREADS], op;
	struct sn_pool *pool;
	__u64 v = 5, j;
	unsigned long t;

	for (b = 0; b < nb; b++) {
		/* routing, per-key order, exactly once, from two threads */
		memset(ba_next, 0, sizeof(ba_next));
		ba_bad = ba_calls = 0;
		ba_msgs = t_scaled(200000);
		ba_seen = calloc(BA_THREADS, ba_msgs);
		ASSERT_NE(NULL, ba_seen);
		sn_pool_config_init(&cfg);
		cfg.workers = 3;
		cfg.msg_size = 8;
		cfg.queue_capacity = 64;	/* batches wait for room */
		cfg.backend = flags[b];
		cfg.handle = ba_handle;
		ASSERT_EQ(0, sn_pool_create(&ba_pool, &cfg));
		for (t = 0; t < BA_THREADS; t++)
			pthread_create(&th[t], NULL, ba_thread, (void *)t);
		for (t = 0; t < BA_THREADS; t++)
			pthread_join(th[t], NULL);
		ASSERT_EQ(0, sn_pool_shutdown(ba_pool));
		ASSERT_EQ(0, sn_pool_stats(ba_pool, &st));
		TH_LOG("%s: %llu messages in %llu batches",
		       sn_backend_name((int)flags[b]),
		       (unsigned long long)st.handled,
		       (unsigned long long)ba_calls);
		EXPECT_EQ(0, ba_bad);
		EXPECT_EQ(BA_THREADS * ba_msgs, st.submitted);
		EXPECT_EQ(st.submitted, st.handled);
		EXPECT_EQ(0, st.rejected);
		for (j = 0; j < BA_THREADS * ba_msgs; j++)
			if (ba_seen[j] != 1) {
				EXPECT_EQ(1, ba_seen[j]);
				break;
			}
		EXPECT_EQ(0, sn_pool_destroy(ba_pool));
		free(ba_seen);

		for (j = 0; j < 20; j++) {
			m[j].key = j;
			m[j].payload = &v;
			m[j].len = 8;
		}
		/* a prefix: 7 free slots, 20 messages, SN_BP_FAIL */
		pool = bp_fill_empty(_metadata, flags[b], SN_BP_FAIL, 0, &s);
		ASSERT_NE(NULL, pool);
		EXPECT_EQ(7, sn_submit_batch(s, m, 20));
		EXPECT_EQ(-EAGAIN, sn_submit_batch(s, m, 20));
		EXPECT_EQ(0, sn_submit_batch(s, m, 0));
		EXPECT_EQ(-EINVAL, sn_submit_batch(s, NULL, 1));
		__atomic_store_n(&bp_gate, 1, __ATOMIC_RELEASE);
		/* a bad length ends the prefix there, uncounted */
		m[3].len = 9;
		while (sn_pool_stats(pool, &st), st.handled < 8)
			t_sleep_ms(1);
		EXPECT_EQ(3, sn_submit_batch(s, m, 20));
		EXPECT_EQ(-EINVAL, sn_submit_batch(s, m + 3, 17));
		m[3].len = 8;
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_shutdown(pool));
		EXPECT_EQ(0, sn_pool_stats(pool, &st));
		EXPECT_EQ(1 + 7 + 3, st.submitted);
		EXPECT_EQ(13 + 20, st.rejected);
		EXPECT_EQ(st.submitted, st.handled);
		EXPECT_EQ(0, sn_pool_destroy(pool));

		/* the default (block): a batch larger than the lane waits
		 * for room and is taken whole */
		pool = bp_fill_empty(_metadata, flags[b], SN_BP_BLOCK,
				     SN_POOL_BLOCK_TIMEOUT_NS, &s);
		ASSERT_NE(NULL, pool);
		pthread_create(&op, NULL, bp_opener, (void *)50UL);
		EXPECT_EQ(20, sn_submit_batch(s, m, 20));
		pthread_join(op, NULL);
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_shutdown(pool));
		/* after shutdown: -ESHUTDOWN, every message counted */
		EXPECT_EQ(0, sn_pool_stats(pool, &st));
		EXPECT_EQ(21, st.submitted);
		EXPECT_EQ(21, st.handled);
		EXPECT_EQ(0, st.rejected);
		EXPECT_EQ(0, sn_pool_destroy(pool));
	}
}

/* ---- defaults ---- */

struct df_state {
	__u64 handled;
	__u64 first;		/* what the block held at the first message */
	void *self;
};

static void *df_states[4];

static int df_handle(struct sn_worker *w, void *state,
		     const struct sn_envelope *env, unsigned int n)
{
	struct df_state *st = state;

	(void)env;
	if (!st->self) {
		st->first = st->handled | (__u64)(uintptr_t)st->self;
		st->self = st;
		df_states[sn_worker_id(w)] = st;
	}
	if (sn_worker_arg(w) == state)
		st->first |= 1ULL << 63;	/* arg is never the state */
	st->handled += n;
	return 0;
}

static int df_null_handle(struct sn_worker *w, void *state,
			  const struct sn_envelope *env, unsigned int n)
{
	(void)env;
	(void)n;
	if (state)
		df_states[sn_worker_id(w)] = state;
	return 0;
}

TEST(defaults_own_state_block_and_one_timeout_convention)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, arg;
	struct sn_pool_config cfg;
	struct sn_submitter *s;
	struct sn_pool *pool;
	pthread_t th;
	__u64 v = 0, t0, el, total;
	unsigned int i;

	sn_pool_config_init(&cfg);
	EXPECT_EQ(SN_BP_BLOCK, cfg.backpressure);
	EXPECT_EQ(SN_POOL_BLOCK_TIMEOUT_NS, cfg.block_timeout_ns);
	EXPECT_EQ(SN_POOL_DRAIN_TIMEOUT_NS, cfg.drain_timeout_ns);
	EXPECT_EQ(NULL, cfg.init);
	EXPECT_EQ(0, cfg.state_size);
	for (b = 0; b < nb; b++) {
		/* init NULL: each worker its own zeroed block */
		memset(df_states, 0, sizeof(df_states));
		sn_pool_config_init(&cfg);
		cfg.workers = 3;
		cfg.msg_size = 8;
		cfg.backend = flags[b];
		cfg.state_size = sizeof(struct df_state);
		cfg.handle = df_handle;
		cfg.arg = &arg;
		ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
		ASSERT_EQ(0, sn_submitter_open(pool, &s));
		for (i = 0; i < 3 * 50; i++)
			EXPECT_EQ(0, sn_submit_to(s, i % 3, i, &v, 8));
		EXPECT_EQ(NULL, sn_pool_worker_state(pool, 0));
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_shutdown(pool));
		total = 0;
		for (i = 0; i < 3; i++) {
			struct df_state *st = sn_pool_worker_state(pool, i);

			ASSERT_NE(NULL, st);
			EXPECT_EQ(df_states[i], st);
			EXPECT_EQ(0, (uintptr_t)st % 128);
			EXPECT_EQ(0, st->first);	/* zeroed, own */
			EXPECT_EQ(50, st->handled);
			total += st->handled;
			if (i)
				EXPECT_NE(df_states[i - 1], st);
		}
		EXPECT_EQ(150, total);
		EXPECT_EQ(NULL, sn_pool_worker_state(pool, 3));
		EXPECT_EQ(0, sn_pool_destroy(pool));

		/* no init, no state_size: NULL state, never arg */
		memset(df_states, 0, sizeof(df_states));
		cfg.state_size = 0;
		cfg.handle = df_null_handle;
		ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
		ASSERT_EQ(0, sn_submitter_open(pool, &s));
		for (i = 0; i < 3; i++)
			EXPECT_EQ(0, sn_submit_to(s, i, i, &v, 8));
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_destroy(pool));
		for (i = 0; i < 3; i++)
			EXPECT_EQ(NULL, df_states[i]);

		/* the default blocks for room (lane full, worker busy) */
		pool = bp_fill(_metadata, flags[b], SN_BP_BLOCK,
			       SN_POOL_BLOCK_TIMEOUT_NS, &s);
		ASSERT_NE(NULL, pool);
		pthread_create(&th, NULL, bp_opener, (void *)100UL);
		t0 = t_now();
		EXPECT_EQ(0, sn_submit(s, v, &v, 8));
		el = t_now() - t0;
		pthread_join(th, NULL);
		EXPECT_GE(el, 80 * MS);
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_destroy(pool));

		/* SN_NO_WAIT: as the channels, does not wait: -EAGAIN */
		pool = bp_fill(_metadata, flags[b], SN_BP_BLOCK, SN_NO_WAIT,
			       &s);
		ASSERT_NE(NULL, pool);
		EXPECT_EQ(-EAGAIN, sn_submit(s, v, &v, 8));
		__atomic_store_n(&bp_gate, 1, __ATOMIC_RELEASE);
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_destroy(pool));

		/* SN_WAIT_FOREVER: waits as long as it takes */
		pool = bp_fill(_metadata, flags[b], SN_BP_BLOCK,
			       SN_WAIT_FOREVER, &s);
		ASSERT_NE(NULL, pool);
		pthread_create(&th, NULL, bp_opener, (void *)100UL);
		EXPECT_EQ(0, sn_submit(s, v, &v, 8));
		pthread_join(th, NULL);
		EXPECT_EQ(0, sn_submitter_close(s));
		EXPECT_EQ(0, sn_pool_destroy(pool));
	}
}

/* max_sleep_ns, the channels' convention too: a period, forever, never. */
TEST(max_sleep_follows_the_timeout_convention)
{
	static const __u64 sleeps[] = { 20 * MS, SN_WAIT_FOREVER, SN_NO_WAIT };
	struct sn_worker_stats a, b;
	struct sn_pool_config cfg;
	struct sn_pool *pool;
	unsigned int i;

	sn_pool_config_init(&cfg);
	EXPECT_EQ(SN_WAIT_FOREVER, cfg.max_sleep_ns);
	for (i = 0; i < 3; i++) {
		sn_pool_config_init(&cfg);
		cfg.workers = 1;
		cfg.msg_size = 8;
		cfg.handle = nop_handle;
		cfg.max_sleep_ns = sleeps[i];
		ASSERT_EQ(0, sn_pool_create(&pool, &cfg));
		t_sleep_ms(100);
		ASSERT_EQ(0, sn_pool_worker_stats(pool, 0, &a));
		t_sleep_ms(500);
		ASSERT_EQ(0, sn_pool_worker_stats(pool, 0, &b));
		TH_LOG("max_sleep_ns %llu: %llu ticks, %llu idle waits in 500 ms",
		       (unsigned long long)sleeps[i],
		       (unsigned long long)(b.ticks - a.ticks),
		       (unsigned long long)(b.idle_waits - a.idle_waits));
		if (i == 0) {
			/* wakes to tick about every 20 ms (fewer on a
			 * busy machine: it yields a while before a sleep) */
			EXPECT_LE(2, b.idle_waits - a.idle_waits);
			EXPECT_GE(60, b.idle_waits - a.idle_waits);
		} else if (i == 1) {
			/* sleeps until there is work */
			EXPECT_GE(2, b.idle_waits - a.idle_waits);
		} else {
			/* never sleeps, keeps ticking */
			EXPECT_EQ(0, b.idle_waits);
			EXPECT_LT(10, b.ticks - a.ticks);
		}
		EXPECT_EQ(0, sn_pool_destroy(pool));
	}
}

/* ---- the example ---- */

TEST(example_wordcount)
{
	char exe[PATH_MAX], prog[PATH_MAX + 32], text[] = "/tmp/sn_wc_XXXXXX";
	char cmd[2 * PATH_MAX + 64], line[256];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	unsigned int i, k, seen = 0;
	FILE *f, *out;
	int fd, ok_total = 0;

	ASSERT_LT(0, len);
	exe[len] = 0;
	snprintf(prog, sizeof(prog), "%s/../examples/wordcount", dirname(exe));
	if (access(prog, X_OK))
		SKIP(return, "examples/wordcount not built (make examples)");
	fd = mkstemp(text);
	ASSERT_LE(0, fd);
	f = fdopen(fd, "w");
	ASSERT_NE(NULL, f);
	/* word<i> appears i times, "the" 500 times, in a mixed order */
	for (k = 0; k < 500; k++) {
		fprintf(f, "The, the;\n");
		for (i = 1; i <= 40; i++)
			if (k < i)
				fprintf(f, " word%u", i);
		fputc(k % 7 ? ' ' : '\n', f);
	}
	fclose(f);
	/* 500 + 500 "the" */
	snprintf(cmd, sizeof(cmd), "%s -w 3 -n 5 %s", prog, text);
	out = popen(cmd, "r");
	ASSERT_NE(NULL, out);
	while (fgets(line, sizeof(line), out)) {
		unsigned long cnt;
		char word[64];

		fprintf(stderr, "# wordcount: %s", line);
		if (!strncmp(line, "total ", 6)) {
			unsigned long words, distinct;

			if (sscanf(line, "total %lu words, %lu distinct",
				   &words, &distinct) == 2 &&
			    words == 1000 + 40 * 41 / 2 && distinct == 41)
				ok_total = 1;
			continue;
		}
		if (sscanf(line, "%lu %63s", &cnt, word) != 2)
			continue;
		if (!strcmp(word, "the")) {
			EXPECT_EQ(1000, cnt);
			seen++;
		} else if (!strcmp(word, "word40")) {
			EXPECT_EQ(40, cnt);
			seen++;
		} else if (!strcmp(word, "word39")) {
			EXPECT_EQ(39, cnt);
			seen++;
		}
	}
	EXPECT_EQ(0, pclose(out));
	EXPECT_EQ(3, seen);
	EXPECT_EQ(1, ok_total);
	unlink(text);
}

TEST_HARNESS_MAIN
