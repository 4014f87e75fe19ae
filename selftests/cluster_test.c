// SPDX-License-Identifier: MIT
/*
 * The pool across hosts (sn_cluster_*, include/sn/bridge.h): host 0 in one
 * network namespace, host 1 in another (selftests/netns.h), each a forked
 * process with a pool of two workers. Both submit messages over many keys,
 * each with a per-key sequence; the handlers record where each ran. Every
 * message is handled once, on the host sn_cluster_host() names and the
 * worker that host's sn_pool_route() names, in submission order per key
 * and submitting host; handled == submitted over both hosts.
 *
 * Root only: not root is a failure, never a skip.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include <sn/bridge.h>

#include "netns.h"
#include "test_time.h"

#include "kselftest_harness.h"

#define MS	1000000ULL
#define SEC	1000000000ULL
#define HOSTS	2
#define WORKERS	2
#define KEYS	500
#define MAX_PER_HOST 10000

struct payload {
	__u32 src;	/* submitting host */
	__u32 idx;	/* its message number */
	__u64 key;
	__u32 seq;	/* per key and submitting host */
	__u32 pad;
};

struct rec {
	__u32 handled;
	__u32 host;	/* where it ran */
	__u32 worker;
	__u32 env_host;	/* what the envelope said */
};

struct host_res {
	int err, rc;
	int flush_rc;
	__u32 submitted;
	struct sn_pool_stats pool;
	struct sn_bridge_stats br;
};

/* Shared by the parent and both hosts (MAP_SHARED). */
struct sh {
	char ns[HOSTS][32];
	char addr[HOSTS][16];
	__u32 base_port;
	__u32 per_host;		/* messages each host submits */
	int ready[HOSTS], flushed[HOSTS];
	__u32 pred_host[HOSTS][KEYS];	/* sn_cluster_host() on each host */
	int pred_worker[HOSTS][KEYS];	/* sn_pool_route() on each host */
	__u32 next_seq[HOSTS][KEYS];	/* by submitting host */
	__u64 order_bad, bad;
	struct rec rec[HOSTS][MAX_PER_HOST];
};

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static struct sh *g_sh;		/* each host process's view */
static __u32 g_self;		/* the host this process is */

static void nap_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Waits until flag[0] and flag[1] are set, at most @ms: 0 or -1. */
static int wait_both(const int *flag, unsigned int ms)
{
	__u64 end = t_now() + ms * MS;

	while (!__atomic_load_n(&flag[0], __ATOMIC_ACQUIRE) ||
	       !__atomic_load_n(&flag[1], __ATOMIC_ACQUIRE)) {
		if (t_now() > end)
			return -1;
		nap_ms(2);
	}
	return 0;
}

static __u64 key_of(__u32 k)
{
	return 0x1000 + (__u64)k * 0x9e3779b97f4a7c15ULL;
}

static int chandle(struct sn_worker *w, void *state,
		   const struct sn_cluster_envelope *env, unsigned int n)
{
	struct sh *sh = g_sh;
	unsigned int i;

	(void)state;
	for (i = 0; i < n; i++) {
		const struct payload *p = env[i].payload;
		struct rec *r;
		__u32 k;

		if (env[i].len != sizeof(*p) || p->src >= HOSTS ||
		    p->idx >= sh->per_host ||
		    (k = (__u32)((p->key - 0x1000) * 0xf1de83e19937733dULL)) >= KEYS ||
		    key_of(k) != env[i].key) {
			__atomic_fetch_add(&sh->bad, 1, __ATOMIC_RELAXED);
			continue;
		}
		r = &sh->rec[p->src][p->idx];
		__atomic_fetch_add(&r->handled, 1, __ATOMIC_RELAXED);
		r->host = g_self;
		r->worker = sn_worker_id(w);
		r->env_host = env[i].host;
		/* one worker per key when routing holds: its own order */
		if (sh->next_seq[p->src][k] != p->seq)
			__atomic_fetch_add(&sh->order_bad, 1, __ATOMIC_RELAXED);
		sh->next_seq[p->src][k] = p->seq + 1;
	}
	return 0;
}

static int host_main(void *arg, int wfd)
{
	struct sh *sh = arg;
	const char *addrs[HOSTS];
	struct host_res res = { 0 };
	struct sn_cluster_config cfg;
	struct sn_cluster_submitter *s = NULL;
	struct sn_cluster *c = NULL;
	struct sn_bridge *b;
	__u32 seq[KEYS] = { 0 };
	struct payload p;
	__u32 i, k;
	int r, h;

	g_sh = sh;
	for (h = 0; h < HOSTS; h++)
		addrs[h] = sh->addr[h];
	memset(&cfg, 0, sizeof(cfg));
	cfg.size = sizeof(cfg);
	cfg.hosts = HOSTS;
	cfg.self = g_self;
	cfg.base_port = sh->base_port;
	cfg.addrs = addrs;
	sn_pool_config_init(&cfg.pool);
	cfg.pool.workers = WORKERS;
	cfg.pool.msg_size = sizeof(struct payload);
	cfg.pool.block_timeout_ns = 10 * SEC;
	cfg.chandle = chandle;
	r = sn_cluster_create(&c, &cfg);
	if (r) {
		res.err = 1;
		res.rc = r;
		fprintf(stderr, "# host %u: sn_cluster_create: %d (%s)\n",
			g_self, r, sn_last_error());
		goto out;
	}
	r = sn_cluster_wait_up(c, 10 * SEC);
	if (r) {
		res.err = 2;
		res.rc = r;
		goto out;
	}
	for (k = 0; k < KEYS; k++) {
		sh->pred_host[g_self][k] = sn_cluster_host(c, key_of(k));
		sh->pred_worker[g_self][k] =
			sn_pool_route(sn_cluster_pool(c), key_of(k));
	}
	STORE(sh->ready[g_self], 1);
	if (wait_both(sh->ready, 10000)) {
		res.err = 3;
		goto out;
	}
	r = sn_cluster_submitter_open(c, &s);
	if (r) {
		res.err = 4;
		res.rc = r;
		goto out;
	}
	for (i = 0; i < sh->per_host; i++) {
		k = (i * 37 + g_self * 101) % KEYS;
		p = (struct payload){ .src = g_self, .idx = i,
				      .key = key_of(k), .seq = seq[k]++ };
		r = sn_cluster_submit(s, p.key, &p, sizeof(p));
		if (r) {
			res.err = 5;
			res.rc = r;
			break;
		}
		res.submitted++;
	}
	sn_cluster_submitter_close(s);
	res.flush_rc = sn_cluster_flush(c, 15 * SEC);
	STORE(sh->flushed[g_self], 1);
	if (wait_both(sh->flushed, 20000) && !res.err)
		res.err = 6;
	b = sn_cluster_bridge(c, !g_self);
	if (b)
		sn_bridge_stats(b, &res.br);
	else if (!res.err)
		res.err = 7;
	r = sn_cluster_shutdown(c);
	if (r && !res.err) {
		res.err = 8;
		res.rc = r;
	}
	sn_pool_stats(sn_cluster_pool(c), &res.pool);
out:
	nsx_report(wfd, &res, sizeof(res));
	sn_cluster_destroy(c);
	return 0;
}

static int host0(void *arg, int wfd)
{
	g_self = 0;
	return host_main(arg, wfd);
}

static int host1(void *arg, int wfd)
{
	g_self = 1;
	return host_main(arg, wfd);
}

FIXTURE(cl) {
	struct nsx n;
	struct sh *sh;
	pid_t pid[HOSTS];
	int fd[HOSTS];
};

FIXTURE_SETUP(cl)
{
	char why[256] = "";

	self->pid[0] = self->pid[1] = 0;
	self->fd[0] = self->fd[1] = -1;
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	memset(self->sh, 0, sizeof(*self->sh));
	ASSERT_EQ(0, nsx_create(&self->n, why, sizeof(why)))
		TH_LOG("%s", why);
}

FIXTURE_TEARDOWN(cl)
{
	int h;

	for (h = 0; h < HOSTS; h++) {
		if (self->pid[h] > 0) {
			kill(self->pid[h], SIGKILL);
			nsx_wait(self->pid[h], 2000);
		}
		if (self->fd[h] >= 0)
			close(self->fd[h]);
	}
	nsx_destroy(&self->n);
}

TEST_F(cl, keyed_two_hosts)
{
	struct sh *sh = self->sh;
	struct host_res res[HOSTS];
	__u64 handled = 0, local = 0, wrong_host = 0, wrong_worker = 0;
	__u64 not_once = 0, env_wrong = 0;
	__u32 h, i, k, used[HOSTS] = { 0 };
	int rr[HOSTS];

	sh->per_host = (__u32)t_scaled(MAX_PER_HOST);
	if (sh->per_host > MAX_PER_HOST)
		sh->per_host = MAX_PER_HOST;
	sh->base_port = 30000 + (__u32)getpid() % 20000;
	for (h = 0; h < HOSTS; h++) {
		snprintf(sh->ns[h], sizeof(sh->ns[h]), "%s", self->n.ns[h]);
		snprintf(sh->addr[h], sizeof(sh->addr[h]), "%s",
			 self->n.addr[h]);
	}
	self->pid[0] = nsx_fork(sh->ns[0], host0, sh, &self->fd[0]);
	ASSERT_LT(0, self->pid[0]);
	self->pid[1] = nsx_fork(sh->ns[1], host1, sh, &self->fd[1]);
	ASSERT_LT(0, self->pid[1]);
	for (h = 0; h < HOSTS; h++)
		rr[h] = nsx_collect(self->fd[h], &res[h], sizeof(res[h]),
				    28000);
	for (h = 0; h < HOSTS; h++) {
		ASSERT_EQ(0, rr[h]) TH_LOG("no report from host %u", h);
		printf("# host %u: err %d rc %d flush %d submitted %u; pool "
		       "submitted %llu handled %llu dropped %llu; bridge sent "
		       "%llu acked %llu delivered %llu resent %llu downs %llu\n",
		       h, res[h].err, res[h].rc, res[h].flush_rc,
		       res[h].submitted,
		       (unsigned long long)res[h].pool.submitted,
		       (unsigned long long)res[h].pool.handled,
		       (unsigned long long)res[h].pool.dropped,
		       (unsigned long long)res[h].br.msgs_sent,
		       (unsigned long long)res[h].br.msgs_acked,
		       (unsigned long long)res[h].br.msgs_delivered,
		       (unsigned long long)res[h].br.msgs_resent,
		       (unsigned long long)res[h].br.downs);
	}
	for (h = 0; h < HOSTS; h++) {
		EXPECT_EQ(0, res[h].err) TH_LOG("host %u failed at %d: %d", h,
						res[h].err, res[h].rc);
		EXPECT_EQ(0, res[h].flush_rc);
		EXPECT_EQ(sh->per_host, res[h].submitted);
		EXPECT_EQ(0, res[h].pool.dropped);
		handled += res[h].pool.handled;
	}
	EXPECT_EQ(2ULL * sh->per_host, handled);
	/* both hosts agree where each key goes */
	for (k = 0; k < KEYS; k++) {
		EXPECT_EQ(sh->pred_host[0][k], sh->pred_host[1][k]);
		if (sh->pred_host[0][k] < HOSTS)
			used[sh->pred_host[0][k]]++;
	}
	EXPECT_LT(0, used[0]);
	EXPECT_LT(0, used[1]);
	for (h = 0; h < HOSTS; h++)
		for (i = 0; i < sh->per_host; i++) {
			const struct rec *r = &sh->rec[h][i];
			__u32 ph;

			k = (i * 37 + h * 101) % KEYS;
			ph = sh->pred_host[h][k];
			not_once += r->handled != 1;
			if (r->handled != 1)
				continue;
			local += r->host == h;
			wrong_host += r->host != ph;
			if (ph < HOSTS)
				wrong_worker += (int)r->worker !=
						sh->pred_worker[ph][k];
			env_wrong += r->env_host != h;
		}
	printf("# %llu handled on the submitting host, %llu on the other\n",
	       (unsigned long long)local,
	       (unsigned long long)(2ULL * sh->per_host - local));
	EXPECT_EQ(0, not_once) TH_LOG("messages not handled exactly once");
	EXPECT_EQ(0, wrong_host);
	EXPECT_EQ(0, wrong_worker);
	EXPECT_EQ(0, env_wrong) TH_LOG("envelope's host is not the submitter");
	EXPECT_EQ(0, sh->order_bad) TH_LOG("per-key order broken");
	EXPECT_EQ(0, sh->bad) TH_LOG("garbled messages");
	for (h = 0; h < HOSTS; h++) {
		nsx_wait(self->pid[h], 5000);
		self->pid[h] = 0;
	}
}

TEST_HARNESS_MAIN
