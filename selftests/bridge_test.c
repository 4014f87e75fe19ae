// SPDX-License-Identifier: MIT
/*
 * libsnbridge across two hosts (include/sn/bridge.h): two network
 * namespaces joined by a veth pair (selftests/netns.h), one process per
 * side:
 *
 *   A (ns a)  the egress channel (MPSC, one lane per producer thread), two
 *             producer threads and the bridge that dials B;
 *   B (ns b)  the ingress channel (SPSC) and the bridge that listens;
 *   C         forked by B before its bridge starts: the consumer of the
 *             ingress channel, a process of its own so that it can be
 *             stopped while B's bridge runs.
 *
 * Each message is 16 bytes: producer id, its sequence, and a checksum of
 * the two. C checks every message exactly once, in order per producer, and
 * a sum over all. The streams are disturbed mid-way: the link down, TCP
 * connections killed (ss -K), the consumer stopped, the remote bridge
 * killed. A negative control (SN_BRIDGE_NO_ACK) shows that the checker
 * sees loss.
 *
 * (The channels and bridges are made with the library in forked children;
 * tool_million runs the 10^6 stream through the sn-bridge tool instead,
 * build/sn-bridge, its producers and consumer processes of their own that
 * take their channel ends from its unix sockets.)
 *
 * Root only: not root is a failure, never a skip.
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sn/bridge.h>

#include "bridge_attach.h"
#include "netns.h"
#include "test_time.h"

#include "kselftest_harness.h"

#define MS	1000000ULL
#define SEC	1000000000ULL
#define SLOT	16
#define PRODS	2

struct msg {
	__u32 prod;
	__u32 seq;
	__u64 sum;
};

static __u64 msg_sum(__u32 prod, __u32 seq)
{
	return sn_mix64(((__u64)prod << 32 | seq) ^ 0x736e627269646765ULL);
}

enum mode {
	M_NONE,		/* just the stream */
	M_LINK,		/* the veth down 3 s */
	M_KILL,		/* ss -K several times */
	M_STOP,		/* SIGSTOP the consumer 2 s */
	M_KILLB,	/* SIGKILL the remote bridge (B) */
};

struct cfg {
	__u64 n;		/* messages in all; 0: until the end */
	__u64 hb_ns, dead_ns, give_up_ns;
	__u32 flags;		/* A's bridge flags */
	__u32 egress_slots, ingress_slots;
	__u32 rate;		/* messages per ms per producer; 0: no pacing */
	__u64 flush_ns;		/* A's flush timeout */
	int mode;
};

/* What A reports. */
struct a_res {
	int err;		/* 0, or the step that failed (below) */
	int rc;			/* its return value */
	int flush_rc;
	int prod_err;		/* a send that failed otherwise */
	__u64 sent[PRODS];
	__u64 timeouts[PRODS];	/* -ETIMEDOUT from sn_send(100 ms) */
	__u64 epipe_ns[PRODS];	/* when sn_send() said -EPIPE; 0: never */
	__u64 down_ns, failed_ns;	/* when the state was first seen so */
	int error;		/* stats.error once failed */
	struct sn_bridge_stats st;
};

/* What B reports. */
struct b_res {
	int err, rc;
	struct sn_bridge_stats st;
};

/* What C reports. */
struct c_res {
	int err, rc;
	__u64 received, dups, gaps, bad, sum;
	__u64 next[PRODS];	/* the sequence each producer is expected at */
	__u64 first[PRODS];	/* each producer's first sequence seen + 1 */
};

/* Shared by the parent and A, B, C (MAP_SHARED). */
struct sh {
	struct cfg cfg;
	char ns_a[32], ns_b[32];
	char connect[64], bind[64];
	int a_ready, b_ready, go;
	int stop_prod, stop_c, exit_a, exit_b;
	pid_t c_pid;
	__u64 sent[PRODS], timeouts[PRODS];
	__u64 received;
	int c_pipe;		/* C's write end (B's until it forks C) */
};

#define LOAD(x)		__atomic_load_n(&(x), __ATOMIC_ACQUIRE)
#define STORE(x, v)	__atomic_store_n(&(x), (v), __ATOMIC_RELEASE)

static void nap_ms(unsigned int ms)
{
	struct timespec ts = { ms / 1000, (long)(ms % 1000) * 1000000L };

	while (nanosleep(&ts, &ts) && errno == EINTR)
		;
}

/* Waits for *@flag within @ms: 0 or -1. */
static int wait_flag(const int *flag, unsigned int ms)
{
	__u64 end = t_now() + ms * MS;

	while (!__atomic_load_n(flag, __ATOMIC_ACQUIRE)) {
		if (t_now() > end)
			return -1;
		nap_ms(2);
	}
	return 0;
}

/* ---- C: the consumer ---- */

static int c_main(struct sh *sh, struct sn_channel *ch)
{
	struct c_res res = { 0 };
	struct sn_consumer *c;
	__u64 n = sh->cfg.n, idle_since = 0, end = t_now() + 28 * SEC;
	struct msg m;
	int r;

	r = sn_consumer_open(ch, &c);
	if (r) {
		res.err = 1;
		res.rc = r;
		goto out;
	}
	while (!n || res.received < n) {
		if (t_now() > end) {
			res.err = 2;
			break;
		}
		r = sn_recv(c, &m, 50 * MS);
		if (r == -ETIMEDOUT) {
			if (!LOAD(sh->stop_c))
				continue;
			if (!idle_since)
				idle_since = t_now();
			else if (t_now() - idle_since > 500 * MS)
				break;
			continue;
		}
		if (r) {
			res.err = 3;
			res.rc = r;
			break;
		}
		idle_since = 0;
		if (m.prod >= PRODS || m.sum != msg_sum(m.prod, m.seq)) {
			res.bad++;
			continue;
		}
		res.received++;
		res.sum += m.sum;
		if (!res.first[m.prod]) {
			/* a restarted B's C starts where the stream is */
			res.first[m.prod] = (__u64)m.seq + 1;
			res.next[m.prod] = m.seq;
		}
		if (m.seq < res.next[m.prod]) {
			res.dups++;
		} else {
			if (m.seq > res.next[m.prod])
				res.gaps++;
			res.next[m.prod] = (__u64)m.seq + 1;
		}
		if (!(res.received & 255))
			STORE(sh->received, res.received);
	}
	STORE(sh->received, res.received);
	sn_consumer_close(c);
out:
	nsx_report(sh->c_pipe, &res, sizeof(res));
	return 0;
}

/* ---- B: the listening bridge ---- */

static int b_main(void *arg, int wfd)
{
	struct sh *sh = arg;
	struct b_res res = { 0 };
	struct sn_bridge *b = NULL;
	struct sn_channel *ch;
	__u64 end = t_now() + 29 * SEC;
	pid_t c;
	int r;

	r = sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.slots = sh->cfg.ingress_slots, .slot_size = SLOT));
	if (r) {
		res.err = 1;
		res.rc = r;
		goto out;
	}
	c = fork();
	if (c == 0) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		close(wfd);
		_exit(c_main(sh, ch));
	}
	close(sh->c_pipe);
	STORE(sh->c_pid, c);
	r = sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.host = 2, .bind = sh->bind, .ingress = ch,
		.heartbeat_ns = sh->cfg.hb_ns, .dead_ns = sh->cfg.dead_ns));
	if (r) {
		res.err = 2;
		res.rc = r;
		fprintf(stderr, "# B: sn_bridge_create: %d (%s)\n", r,
			sn_last_error());
		goto out;
	}
	STORE(sh->b_ready, 1);
	while (!LOAD(sh->exit_b) && t_now() < end)
		nap_ms(5);
	sn_bridge_stats(b, &res.st);
out:
	nsx_report(wfd, &res, sizeof(res));
	sn_bridge_destroy(b);
	return 0;
}

/* ---- A: the producers and the dialling bridge ---- */

struct prod {
	struct sh *sh;
	struct sn_channel *ch;
	struct a_res *res;
	__u32 id;
	volatile int done;
};

static void *prod_main(void *arg)
{
	struct prod *p = arg;
	struct sh *sh = p->sh;
	const struct cfg *cfg = &sh->cfg;
	__u64 per = cfg->n / PRODS, start = t_now(), i;
	__u64 end = start + 28 * SEC;
	struct sn_producer *pr;
	struct msg m;
	int r;

	r = sn_producer_open(p->ch, &pr);
	if (r) {
		p->res->prod_err = r;
		goto out;
	}
	for (i = 0; !per || i < per; i++) {
		m.prod = p->id;
		m.seq = (__u32)i;
		m.sum = msg_sum(m.prod, m.seq);
		for (;;) {
			r = sn_send(pr, &m, 100 * MS);
			if (r != -ETIMEDOUT)
				break;
			p->res->timeouts[p->id]++;
			STORE(sh->timeouts[p->id], p->res->timeouts[p->id]);
			if (LOAD(sh->stop_prod) || t_now() > end)
				break;
		}
		if (r == -EPIPE) {
			p->res->epipe_ns[p->id] = t_now();
			break;
		}
		if (r) {
			if (r != -ETIMEDOUT)
				p->res->prod_err = r;
			break;
		}
		p->res->sent[p->id] = i + 1;
		if (!(i & 63)) {
			STORE(sh->sent[p->id], i + 1);
			if (LOAD(sh->stop_prod))
				break;
			if (cfg->rate) {
				__u64 due = start + i * MS / cfg->rate;
				__u64 now = t_now();

				if (due > now)
					nap_ms((unsigned int)((due - now) / MS));
			}
		}
	}
	STORE(sh->sent[p->id], p->res->sent[p->id]);
	sn_producer_close(pr);
out:
	p->done = 1;
	return NULL;
}

static int a_main(void *arg, int wfd)
{
	struct sh *sh = arg;
	const struct cfg *cfg = &sh->cfg;
	struct prod prods[PRODS];
	pthread_t th[PRODS];
	struct a_res res = { 0 };
	struct sn_bridge *b = NULL;
	struct sn_bridge_stats st;
	struct sn_channel *ch;
	__u64 end = t_now() + 29 * SEC;
	int r, i, done, state;

	r = sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = SN_RING_MPSC, .lanes = PRODS,
		.slots = cfg->egress_slots, .slot_size = SLOT));
	if (r) {
		res.err = 1;
		res.rc = r;
		goto out;
	}
	r = sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.host = 1, .connect = sh->connect, .egress = ch,
		.heartbeat_ns = cfg->hb_ns, .dead_ns = cfg->dead_ns,
		.give_up_ns = cfg->give_up_ns, .flags = cfg->flags));
	if (r) {
		res.err = 2;
		res.rc = r;
		fprintf(stderr, "# A: sn_bridge_create: %d (%s)\n", r,
			sn_last_error());
		goto out;
	}
	r = sn_bridge_wait_up(b, 10 * SEC);
	if (r) {
		res.err = 3;
		res.rc = r;
		goto out;
	}
	STORE(sh->a_ready, 1);
	if (wait_flag(&sh->go, 10000)) {
		res.err = 4;
		goto out;
	}
	for (i = 0; i < PRODS; i++) {
		prods[i] = (struct prod){ .sh = sh, .ch = ch, .res = &res,
					  .id = (__u32)i };
		if (pthread_create(&th[i], NULL, prod_main, &prods[i])) {
			res.err = 5;
			goto out;
		}
	}
	/* watch the state while the producers run, and once after */
	do {
		for (done = 0, i = 0; i < PRODS; i++)
			done += prods[i].done;
		state = sn_bridge_state(b);
		if (state == SN_BRIDGE_DOWN && !res.down_ns)
			res.down_ns = t_now();
		if (state == SN_BRIDGE_FAILED && !res.failed_ns) {
			res.failed_ns = t_now();
			if (!sn_bridge_stats(b, &st))
				res.error = st.error;
		}
		if (done < PRODS)
			nap_ms(2);
	} while (done < PRODS && t_now() < end);
	if (done < PRODS) {
		STORE(sh->stop_prod, 1);
		res.err = 6;
	}
	for (i = 0; i < PRODS; i++)
		pthread_join(th[i], NULL);
	res.flush_rc = sn_bridge_flush(b, cfg->flush_ns);
	sn_bridge_stats(b, &res.st);
out:
	nsx_report(wfd, &res, sizeof(res));
	wait_flag(&sh->exit_a, 29000);
	sn_bridge_destroy(b);
	return 0;
}

/* ---- the parent ---- */

FIXTURE(br) {
	struct nsx n;
	struct sh *sh;
	pid_t a, b;
	int a_fd, b_fd, c_fd;
};

FIXTURE_SETUP(br)
{
	char why[256] = "";

	self->a = self->b = 0;
	self->a_fd = self->b_fd = self->c_fd = -1;
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	memset(self->sh, 0, sizeof(*self->sh));
	ASSERT_EQ(0, nsx_create(&self->n, why, sizeof(why)))
		TH_LOG("%s", why);
}

FIXTURE_TEARDOWN(br)
{
	if (self->sh && self->sh != MAP_FAILED && self->sh->c_pid > 0)
		kill(self->sh->c_pid, SIGKILL);
	if (self->a > 0) {
		kill(self->a, SIGKILL);
		nsx_wait(self->a, 2000);
	}
	if (self->b > 0) {
		kill(self->b, SIGKILL);
		nsx_wait(self->b, 2000);
	}
	nsx_destroy(&self->n);
}

/* Forks B (which forks C): 0 once its bridge listens, or a sentence in
 * @why. */
static int start_b(FIXTURE_DATA(br) *self, char *why, size_t whylen)
{
	struct sh *sh = self->sh;
	int p[2];

	if (pipe2(p, O_CLOEXEC))
		return snprintf(why, whylen, "pipe"), -1;
	sh->c_pipe = p[1];
	self->c_fd = p[0];
	self->b = nsx_fork(sh->ns_b, b_main, sh, &self->b_fd);
	close(p[1]);
	if (self->b < 0)
		return snprintf(why, whylen, "fork B"), -1;
	if (wait_flag(&sh->b_ready, 5000))
		return snprintf(why, whylen, "B's bridge not ready in 5 s"), -1;
	return 0;
}

/* Forks B (which forks C) and A, and lets the producers go. 0 or a
 * sentence in @why. */
static int start(FIXTURE_DATA(br) *self, const struct cfg *cfg,
		 char *why, size_t whylen)
{
	struct sh *sh = self->sh;
	unsigned int port = 20000 + (unsigned int)getpid() % 20000;

	sh->cfg = *cfg;
	snprintf(sh->ns_a, sizeof(sh->ns_a), "%s", self->n.ns[0]);
	snprintf(sh->ns_b, sizeof(sh->ns_b), "%s", self->n.ns[1]);
	snprintf(sh->bind, sizeof(sh->bind), "tcp://%s:%u", self->n.addr[1],
		 port);
	snprintf(sh->connect, sizeof(sh->connect), "tcp://%s:%u",
		 self->n.addr[1], port);
	if (start_b(self, why, whylen))
		return -1;
	self->a = nsx_fork(sh->ns_a, a_main, sh, &self->a_fd);
	if (self->a < 0)
		return snprintf(why, whylen, "fork A"), -1;
	if (wait_flag(&sh->a_ready, 12000))
		return snprintf(why, whylen,
				"A's bridge not up in 12 s (wait_up)"), -1;
	STORE(sh->go, 1);
	return 0;
}

/* Waits until C received @n messages or @ms passed; 0 or -1. */
static int wait_received(struct sh *sh, __u64 n, unsigned int ms)
{
	__u64 end = t_now() + ms * MS;

	while (LOAD(sh->received) < n) {
		if (t_now() > end)
			return -1;
		nap_ms(1);
	}
	return 0;
}

struct results {
	struct a_res a;
	struct b_res b;
	struct c_res c;
	int ra, rb, rc;
};

/* Collects A's, C's and B's reports, in that order, and ends them. */
static void collect(FIXTURE_DATA(br) *self, struct results *r)
{
	struct sh *sh = self->sh;

	memset(r, 0, sizeof(*r));
	r->ra = nsx_collect(self->a_fd, &r->a, sizeof(r->a), 29000);
	STORE(sh->stop_c, 1);
	r->rc = nsx_collect(self->c_fd, &r->c, sizeof(r->c), 10000);
	STORE(sh->exit_b, 1);
	r->rb = nsx_collect(self->b_fd, &r->b, sizeof(r->b), 5000);
	STORE(sh->exit_a, 1);
	nsx_wait(self->a, 5000);
	nsx_wait(self->b, 5000);
	self->a = self->b = 0;
	close(self->a_fd);
	close(self->b_fd);
	close(self->c_fd);
	self->a_fd = self->b_fd = self->c_fd = -1;
}

static void print_stats(const char *who, const struct sn_bridge_stats *s)
{
	printf("# %s: state %s error %d sent %llu resent %llu acked %llu "
	       "unacked %llu delivered %llu dup %llu gap-frames %llu "
	       "go-backs %llu hb %llu/%llu downs %llu restarts %llu "
	       "stalls %llu\n", who, sn_bridge_state_name((int)s->state),
	       s->error, (unsigned long long)s->msgs_sent,
	       (unsigned long long)s->msgs_resent,
	       (unsigned long long)s->msgs_acked,
	       (unsigned long long)s->unacked,
	       (unsigned long long)s->msgs_delivered,
	       (unsigned long long)s->msgs_duplicate,
	       (unsigned long long)s->frames_gap,
	       (unsigned long long)s->go_backs,
	       (unsigned long long)s->heartbeats_sent,
	       (unsigned long long)s->heartbeats_received,
	       (unsigned long long)s->downs,
	       (unsigned long long)s->peer_restarts,
	       (unsigned long long)s->stalls);
}

static void print_results(const struct results *r)
{
	printf("# A: err %d rc %d flush %d prod_err %d sent %llu+%llu "
	       "timeouts %llu+%llu\n", r->a.err, r->a.rc, r->a.flush_rc,
	       r->a.prod_err, (unsigned long long)r->a.sent[0],
	       (unsigned long long)r->a.sent[1],
	       (unsigned long long)r->a.timeouts[0],
	       (unsigned long long)r->a.timeouts[1]);
	printf("# C: err %d rc %d received %llu dups %llu gaps %llu bad %llu\n",
	       r->c.err, r->c.rc, (unsigned long long)r->c.received,
	       (unsigned long long)r->c.dups, (unsigned long long)r->c.gaps,
	       (unsigned long long)r->c.bad);
	print_stats("A's bridge", &r->a.st);
	print_stats("B's bridge", &r->b.st);
}

static __u64 expected_sum(__u64 n)
{
	__u64 s = 0, i;
	__u32 p;

	for (p = 0; p < PRODS; p++)
		for (i = 0; i < n / PRODS; i++)
			s += msg_sum(p, (__u32)i);
	return s;
}

/* Every message exactly once, in order, the counters agree. */
#define CHECK_EXACTLY_ONCE(r, n) do {					\
		__u32 _p;						\
		ASSERT_EQ(0, (r)->ra) TH_LOG("no report from A");	\
		ASSERT_EQ(0, (r)->rc) TH_LOG("no report from C");	\
		ASSERT_EQ(0, (r)->rb) TH_LOG("no report from B");	\
		EXPECT_EQ(0, (r)->a.err) TH_LOG("A failed at %d: %d",	\
						(r)->a.err, (r)->a.rc);	\
		EXPECT_EQ(0, (r)->c.err) TH_LOG("C failed at %d: %d",	\
						(r)->c.err, (r)->c.rc);	\
		EXPECT_EQ(0, (r)->b.err) TH_LOG("B failed at %d: %d",	\
						(r)->b.err, (r)->b.rc);	\
		EXPECT_EQ(0, (r)->a.prod_err);				\
		EXPECT_EQ((n), (r)->a.sent[0] + (r)->a.sent[1]);	\
		EXPECT_EQ(0, (r)->a.flush_rc);				\
		EXPECT_EQ((n), (r)->c.received);			\
		EXPECT_EQ(0, (r)->c.dups);				\
		EXPECT_EQ(0, (r)->c.gaps);				\
		EXPECT_EQ(0, (r)->c.bad);				\
		for (_p = 0; _p < PRODS; _p++) {			\
			EXPECT_EQ((n) / PRODS, (r)->c.next[_p]);	\
			EXPECT_EQ(1, (r)->c.first[_p]);			\
		}							\
		EXPECT_EQ(expected_sum(n), (r)->c.sum);			\
		EXPECT_EQ((n), (r)->a.st.msgs_sent);			\
		EXPECT_EQ((n), (r)->a.st.msgs_acked);			\
		EXPECT_EQ(0, (r)->a.st.unacked);			\
		EXPECT_EQ((n), (r)->b.st.msgs_delivered);		\
	} while (0)

static const struct cfg base_cfg = {
	.egress_slots = 4096, .ingress_slots = 4096, .flush_ns = 10 * SEC,
};

/* (a) 10^6 messages, two producers, across the veth. */
TEST_F(br, million)
{
	struct cfg cfg = base_cfg;
	char why[128] = "";
	struct results r;
	__u64 t0;

	cfg.n = t_scaled(1000000) & ~1UL;
	t0 = t_now();
	ASSERT_EQ(0, start(self, &cfg, why, sizeof(why))) TH_LOG("%s", why);
	collect(self, &r);
	printf("# %llu messages in %llu ms\n", (unsigned long long)cfg.n,
	       (unsigned long long)((t_now() - t0) / MS));
	print_results(&r);
	CHECK_EXACTLY_ONCE(&r, cfg.n);
	EXPECT_EQ(1, r.b.st.peer_host);
	EXPECT_EQ(2, r.a.st.peer_host);
}

/* (b) the link down 3 s mid-stream. */
static void link_down(struct __test_metadata *_metadata,
		      FIXTURE_DATA(br) *self, __u64 hb, __u64 dead)
{
	struct cfg cfg = base_cfg;
	char why[128] = "";
	struct results r;

	cfg.n = t_scaled(200000) & ~1UL;
	cfg.hb_ns = hb;
	cfg.dead_ns = dead;
	cfg.rate = 50;	/* 100 messages per ms: about 2 s of stream */
	cfg.flush_ns = 15 * SEC;
	ASSERT_EQ(0, start(self, &cfg, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, wait_received(self->sh, cfg.n / 5, 10000));
	ASSERT_EQ(0, nsx_link(&self->n, 0, 0));
	nap_ms(3000);
	ASSERT_EQ(0, nsx_link(&self->n, 0, 1));
	printf("# link down at %llu received, up again at %llu\n",
	       (unsigned long long)cfg.n / 5,
	       (unsigned long long)LOAD(self->sh->received));
	collect(self, &r);
	print_results(&r);
	CHECK_EXACTLY_ONCE(&r, cfg.n);
	if (hb) {
		EXPECT_LE(1, r.a.st.downs);
		EXPECT_LE(1, r.b.st.downs);
	}
}

TEST_F(br, link_down_defaults)
{
	link_down(_metadata, self, 0, 0);
}

TEST_F(br, link_down_100ms_500ms)
{
	link_down(_metadata, self, 100 * MS, 500 * MS);
}

/*
 * (c) TCP connections killed mid-stream, on either side in turn, @kills
 * times 250 ms apart. Returns whether C saw loss (for the control).
 */
static int kill_run(struct __test_metadata *_metadata,
		    FIXTURE_DATA(br) *self, __u32 flags, int kills,
		    struct results *r)
{
	struct cfg cfg = base_cfg;
	char why[128] = "";
	int k, killed = 0;

	cfg.n = t_scaled(200000) & ~1UL;
	cfg.rate = 40;		/* about 2.5 s of stream */
	cfg.flags = flags;
	cfg.flush_ns = flags & SN_BRIDGE_NO_ACK ? 2 * SEC : 15 * SEC;
	if (start(self, &cfg, why, sizeof(why))) {
		TH_LOG("%s", why);
		return -1;
	}
	if (wait_received(self->sh, 1000, 10000)) {
		TH_LOG("nothing arrives");
		return -1;
	}
	for (k = 0; k < kills; k++) {
		if (LOAD(self->sh->received) >= cfg.n)
			break;
		killed += nsx_kill_tcp(&self->n, k & 1) == 0;
		nap_ms(250);
	}
	printf("# %d kills (%d by ss -K without error) before %llu of %llu\n",
	       k, killed, (unsigned long long)LOAD(self->sh->received),
	       (unsigned long long)cfg.n);
	collect(self, r);
	print_results(r);
	return r->c.received < cfg.n || r->c.gaps || r->c.dups;
}

TEST_F(br, conn_killed)
{
	struct results r;
	__u64 n = t_scaled(200000) & ~1UL;

	ASSERT_LE(0, kill_run(_metadata, self, 0, 6, &r));
	CHECK_EXACTLY_ONCE(&r, n);
}

/* The negative control: without acknowledgements killed connections
 * lose messages, and the checker sees it. */
TEST_F(br, conn_killed_no_ack_control)
{
	struct results r;
	int try, lost = 0;
	char why[256];

	for (try = 0; try < 3 && !lost; try++) {
		if (try) {
			/* a fresh pair of hosts for the next try */
			nsx_destroy(&self->n);
			memset(self->sh, 0, sizeof(*self->sh));
			ASSERT_EQ(0, nsx_create(&self->n, why, sizeof(why)))
				TH_LOG("%s", why);
		}
		lost = kill_run(_metadata, self, SN_BRIDGE_NO_ACK, 8, &r);
		ASSERT_LE(0, lost);
		printf("# try %d: %s\n", try, lost ? "loss detected" :
		       "nothing lost");
	}
	EXPECT_TRUE(lost) TH_LOG("SN_BRIDGE_NO_ACK lost nothing in 3 tries "
				 "of 8 kills: the checker or the kills are "
				 "toothless");
}

/* (d) the remote consumer stopped 2 s: producers block, memory bounded,
 * nothing lost. */
TEST_F(br, consumer_stopped)
{
	struct cfg cfg = base_cfg;
	struct sh *sh = self->sh;
	__u64 to0, to1;
	long rss_a0, rss_b0, rss_a1, rss_b1;
	char why[128] = "";
	struct results r;
	pid_t c;
	int i;

	/* small TCP buffers: backpressure reaches the producers quickly */
	for (i = 0; i < 2; i++) {
		ASSERT_EQ(0, nsx_sysctl(&self->n, i,
					"net.ipv4.tcp_rmem=4096 32768 131072"));
		ASSERT_EQ(0, nsx_sysctl(&self->n, i,
					"net.ipv4.tcp_wmem=4096 32768 131072"));
	}
	cfg.n = t_scaled(400000) & ~1UL;
	cfg.flush_ns = 15 * SEC;
	ASSERT_EQ(0, start(self, &cfg, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, wait_received(sh, cfg.n / 20, 10000));
	c = LOAD(sh->c_pid);
	ASSERT_LT(0, c);
	rss_a0 = nsx_rss_kb(self->a);
	rss_b0 = nsx_rss_kb(self->b);
	ASSERT_EQ(0, kill(c, SIGSTOP));
	nap_ms(500);	/* what is in flight settles */
	to0 = LOAD(sh->timeouts[0]) + LOAD(sh->timeouts[1]);
	nap_ms(1500);
	to1 = LOAD(sh->timeouts[0]) + LOAD(sh->timeouts[1]);
	rss_a1 = nsx_rss_kb(self->a);
	rss_b1 = nsx_rss_kb(self->b);
	ASSERT_EQ(0, kill(c, SIGCONT));
	printf("# stopped at %llu: timeouts %llu -> %llu; RSS A %ld -> %ld "
	       "kB, B %ld -> %ld kB\n", (unsigned long long)cfg.n / 20,
	       (unsigned long long)to0, (unsigned long long)to1, rss_a0,
	       rss_a1, rss_b0, rss_b1);
	collect(self, &r);
	print_results(&r);
	EXPECT_LT(to0, to1) TH_LOG("producers did not block while the "
				   "consumer was stopped");
	EXPECT_LT(rss_a1 - rss_a0, 64 * 1024);
	EXPECT_LT(rss_b1 - rss_b0, 64 * 1024);
	CHECK_EXACTLY_ONCE(&r, cfg.n);
	EXPECT_LE(1, r.b.st.stalls);
}

/* (e) the remote bridge killed: down within dead_ns, failed after
 * give_up_ns, then producers get -EPIPE; blocked (not queueing) before. */
TEST_F(br, remote_killed)
{
	struct cfg cfg = base_cfg;
	struct sh *sh = self->sh;
	char why[128] = "";
	struct results r;
	long rss0, rss1;
	__u64 t_kill;
	int i;

	cfg.n = 0;	/* until -EPIPE */
	cfg.hb_ns = 100 * MS;
	cfg.dead_ns = 500 * MS;
	cfg.give_up_ns = 2 * SEC;
	cfg.egress_slots = 1024;
	cfg.flush_ns = 1 * SEC;
	ASSERT_EQ(0, start(self, &cfg, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, wait_received(sh, 10000, 10000));
	rss0 = nsx_rss_kb(self->a);
	t_kill = t_now();
	ASSERT_EQ(0, kill(self->b, SIGKILL));
	nsx_wait(self->b, 2000);
	self->b = 0;
	/* A reports once both producers got -EPIPE (or gave up) */
	memset(&r, 0, sizeof(r));
	r.ra = nsx_collect(self->a_fd, &r.a, sizeof(r.a), 15000);
	rss1 = nsx_rss_kb(self->a);
	STORE(sh->exit_a, 1);
	STORE(sh->stop_prod, 1);
	ASSERT_EQ(0, r.ra) TH_LOG("no report from A");
	print_results(&r);
	printf("# down after %lld ms, failed after %lld ms, -EPIPE after "
	       "%lld/%lld ms; RSS %ld -> %ld kB\n",
	       r.a.down_ns ? (long long)(r.a.down_ns - t_kill) / 1000000 : -1,
	       r.a.failed_ns ? (long long)(r.a.failed_ns - t_kill) / 1000000 : -1,
	       r.a.epipe_ns[0] ? (long long)(r.a.epipe_ns[0] - t_kill) / 1000000 : -1,
	       r.a.epipe_ns[1] ? (long long)(r.a.epipe_ns[1] - t_kill) / 1000000 : -1,
	       rss0, rss1);
	EXPECT_EQ(0, r.a.err) TH_LOG("A failed at %d: %d", r.a.err, r.a.rc);
	ASSERT_NE(0, r.a.down_ns) TH_LOG("never seen down");
	EXPECT_GT(t_kill + 1500 * MS, r.a.down_ns);
	ASSERT_NE(0, r.a.failed_ns) TH_LOG("never failed");
	EXPECT_LT(t_kill + 2 * SEC, r.a.failed_ns);
	EXPECT_GT(t_kill + 4 * SEC, r.a.failed_ns);
	EXPECT_NE(0, r.a.error);
	EXPECT_EQ(SN_BRIDGE_FAILED, r.a.st.state);
	EXPECT_NE(0, r.a.flush_rc);
	for (i = 0; i < PRODS; i++) {
		ASSERT_NE(0, r.a.epipe_ns[i]) TH_LOG("producer %d: no -EPIPE", i);
		EXPECT_GT(r.a.failed_ns + 1500 * MS, r.a.epipe_ns[i]);
		EXPECT_LT(0, r.a.timeouts[i]) TH_LOG("producer %d never "
						     "blocked before give-up", i);
	}
	EXPECT_EQ(0, r.a.prod_err);
	EXPECT_LT(rss1 - rss0, 64 * 1024);
	nsx_wait(self->a, 5000);
	self->a = 0;
}

/* The remote bridge killed and started again (a new incarnation, a new
 * ingress channel): A resumes without give_up_ns, and the new consumer
 * gets every producer's stream from some point to its end, once, in
 * order (what the dead one had acknowledged died with it). */
TEST_F(br, remote_restarted)
{
	struct cfg cfg = base_cfg;
	struct sh *sh = self->sh;
	char why[128] = "";
	struct results r;
	__u64 before, start_at;
	int i;

	cfg.n = t_scaled(200000) & ~1UL;
	cfg.rate = 50;
	cfg.hb_ns = 100 * MS;
	cfg.dead_ns = 500 * MS;
	cfg.flush_ns = 15 * SEC;
	ASSERT_EQ(0, start(self, &cfg, why, sizeof(why))) TH_LOG("%s", why);
	ASSERT_EQ(0, wait_received(sh, cfg.n / 5, 10000));
	ASSERT_EQ(0, kill(self->b, SIGKILL));
	nsx_wait(self->b, 2000);
	before = LOAD(sh->received);
	close(self->b_fd);
	close(self->c_fd);
	STORE(sh->received, 0);
	STORE(sh->b_ready, 0);
	STORE(sh->c_pid, 0);
	nap_ms(1000);	/* A sees it down */
	ASSERT_EQ(0, start_b(self, why, sizeof(why))) TH_LOG("%s", why);
	collect(self, &r);
	print_results(&r);
	printf("# the first B's consumer got about %llu; the second starts "
	       "at %llu and %llu\n", (unsigned long long)before,
	       (unsigned long long)r.c.first[0] - 1,
	       (unsigned long long)r.c.first[1] - 1);
	ASSERT_EQ(0, r.ra);
	ASSERT_EQ(0, r.rc);
	ASSERT_EQ(0, r.rb);
	EXPECT_EQ(0, r.a.err) TH_LOG("A failed at %d: %d", r.a.err, r.a.rc);
	EXPECT_EQ(0, r.c.err) TH_LOG("C failed at %d: %d", r.c.err, r.c.rc);
	EXPECT_EQ(0, r.a.prod_err);
	EXPECT_EQ(cfg.n, r.a.sent[0] + r.a.sent[1]);
	EXPECT_EQ(0, r.a.flush_rc);
	EXPECT_EQ(0, r.c.dups);
	EXPECT_EQ(0, r.c.gaps);
	EXPECT_EQ(0, r.c.bad);
	for (start_at = 0, i = 0; i < PRODS; i++) {
		EXPECT_EQ(cfg.n / PRODS, r.c.next[i]);
		ASSERT_LT(0, r.c.first[i]);
		start_at += r.c.first[i] - 1;
	}
	/* Lost: at most what sat in the dead B's ingress channel (C
	 * publishes its count every 256). Again: at most what the dead B
	 * had delivered and not acknowledged yet (acks every 16 frames). */
	EXPECT_GE(before + 256 + cfg.ingress_slots, start_at);
	EXPECT_LE(before, start_at + 16 * SN_BRIDGE_FRAME_MSGS * 2);
	EXPECT_EQ(r.c.received, r.b.st.msgs_delivered);
	EXPECT_LE(1, r.a.st.peer_restarts);
	EXPECT_LE(1, r.a.st.downs);
	EXPECT_EQ(SN_BRIDGE_UP, r.a.st.state);
}

/* ---- the sn-bridge tool (tools/snbridge/) ---- */

/*
 * (a) again, through build/sn-bridge: the tool binds in ns b with an
 * ingress socket and dials from ns a with an egress socket (PRODS lanes).
 * PRODS producer processes in a take their ends from the egress socket
 * (prod_main()), one consumer process in b from the ingress socket
 * (c_main()). SIGTERM ends the sender (it flushes), then the receiver:
 * both exit 0 and print their counters, one key=value line on stdout.
 */

#define TOOL_KIDS	(PRODS + 1)	/* the producers, then the consumer */

/* A running sn-bridge: its pid, our ends of its stdout and stderr. */
/* What a producer or the consumer child gets (a copy, through fork). */
struct tool_kid {
	struct sh *sh;
	const char *path;	/* the unix socket to take its end from */
	__u32 id;
};

FIXTURE(tool) {
	struct nsx n;
	struct sh *sh;
	char dir[64], egress[96], ingress[96];
	struct bridge_proc br[2];		/* [0] A (sends), [1] B (receives) */
	pid_t kid[TOOL_KIDS];
	int kid_fd[TOOL_KIDS];
	pid_t owner;			/* the test's process */
};

FIXTURE_SETUP(tool)
{
	char why[256] = "";
	int i;

	self->owner = getpid();
	self->dir[0] = self->egress[0] = self->ingress[0] = 0;
	for (i = 0; i < 2; i++) {
		memset(&self->br[i], 0, sizeof(self->br[i]));
		self->br[i].out = self->br[i].err = -1;
	}
	for (i = 0; i < TOOL_KIDS; i++) {
		self->kid[i] = 0;
		self->kid_fd[i] = -1;
	}
	self->sh = mmap(NULL, sizeof(*self->sh), PROT_READ | PROT_WRITE,
			MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	ASSERT_NE(MAP_FAILED, self->sh);
	memset(self->sh, 0, sizeof(*self->sh));
	ASSERT_EQ(0, nsx_create(&self->n, why, sizeof(why)))
		TH_LOG("%s", why);
}

/*
 * A teardown "in the parent": this harness skips FIXTURE_TEARDOWN after a
 * failed ASSERT (its longjmp loses the fork's result), and the socket
 * folder must go on every path. It runs in the test's process or, after a
 * failed ASSERT, maybe in its parent: there the processes are dead or
 * dying already (PR_SET_PDEATHSIG) and the pids, fds and mapping are not
 * its own; what is in the filesystem is removed either way.
 */
FIXTURE_TEARDOWN_PARENT(tool)
{
	int i;

	if (self->owner != getpid())
		goto files;
	for (i = 0; i < TOOL_KIDS; i++) {
		if (self->kid[i] > 0) {
			kill(self->kid[i], SIGKILL);
			nsx_wait(self->kid[i], 2000);
		}
		if (self->kid_fd[i] >= 0)
			close(self->kid_fd[i]);
	}
	for (i = 0; i < 2; i++) {
		if (self->br[i].pid > 0) {
			kill(self->br[i].pid, SIGKILL);
			nsx_wait(self->br[i].pid, 2000);
		}
		if (self->br[i].out >= 0)
			close(self->br[i].out);
		if (self->br[i].err >= 0)
			close(self->br[i].err);
	}
	if (self->sh && self->sh != MAP_FAILED)
		munmap(self->sh, sizeof(*self->sh));
files:
	if (self->egress[0])
		unlink(self->egress);
	if (self->ingress[0])
		unlink(self->ingress);
	if (self->dir[0])
		rmdir(self->dir);
	nsx_destroy(&self->n);
}

/* $SNBRIDGE, else sn-bridge in the folder above this binary's
 * (build/bridge-tests/bridge_test: build/sn-bridge). 0, or -1 with the
 * path looked at in @buf. */
static int tool_path(char *buf, size_t len)
{
	const char *env = getenv("SNBRIDGE");
	char *slash;
	ssize_t n;

	if (env && *env) {
		snprintf(buf, len, "%s", env);
	} else {
		n = readlink("/proc/self/exe", buf, len - 16);
		if (n <= 0) {
			snprintf(buf, len, "/proc/self/exe unreadable: %s",
				 strerror(errno));
			return -1;
		}
		buf[n] = 0;
		slash = strrchr(buf, '/');
		strcpy(slash ? slash + 1 : buf, "../sn-bridge");
	}
	return access(buf, X_OK) ? -1 : 0;
}

struct tool_exec {
	const char *const *argv;
	int out, err;		/* the write ends for its stdout, stderr */
};

static int tool_exec_main(void *arg, int wfd)
{
	struct tool_exec *x = arg;

	(void)wfd;
	if (dup2(x->out, 1) < 0 || dup2(x->err, 2) < 0)
		return 121;
	execv(x->argv[0], (char *const *)x->argv);
	fprintf(stderr, "cannot run %s: %s\n", x->argv[0], strerror(errno));
	return 127;
}

/* Starts @argv in namespace @ns with its stdout and stderr piped to us
 * (it dies with us). 0 or -1. */
static int tool_spawn(struct bridge_proc *tp, const char *ns,
		      const char *const *argv)
{
	struct tool_exec x = { .argv = argv };
	int o[2], e[2];

	if (pipe2(o, O_CLOEXEC))
		return -1;
	if (pipe2(e, O_CLOEXEC)) {
		close(o[0]);
		close(o[1]);
		return -1;
	}
	x.out = o[1];
	x.err = e[1];
	tp->pid = nsx_fork(ns, tool_exec_main, &x, NULL);
	close(o[1]);
	close(e[1]);
	tp->out = o[0];
	tp->err = e[0];
	return tp->pid > 0 ? 0 : -1;
}

/* SIGTERM, then its exit status (nsx_wait(): -1 when it had to be
 * killed after @ms); its stdout into tp->outbuf, the rest of its stderr
 * into tp->errbuf. */
static int tool_stop(struct bridge_proc *tp, int ms)
{
	int st;

	kill(tp->pid, SIGTERM);
	st = nsx_wait(tp->pid, ms);
	tp->pid = 0;
	bridge_drain(tp->out, tp->outbuf, 0, sizeof(tp->outbuf));
	tp->errlen = bridge_drain(tp->err, tp->errbuf, tp->errlen,
				sizeof(tp->errbuf));
	close(tp->out);
	close(tp->err);
	tp->out = tp->err = -1;
	return st;
}

/* A producer process: prod_main() on a producer of the egress channel;
 * reports a struct a_res (err 1: no channel end from the socket). */
static int tool_prod_main(void *arg, int wfd)
{
	struct tool_kid *k = arg;
	struct a_res res = { 0 };
	struct sn_channel *ch;
	struct prod p;
	int r;

	r = bridge_attach(k->path, &ch);
	if (r) {
		res.err = 1;
		res.rc = r;
		goto out;
	}
	p = (struct prod){ .sh = k->sh, .ch = ch, .res = &res, .id = k->id };
	prod_main(&p);
	sn_channel_close(ch);
out:
	nsx_report(wfd, &res, sizeof(res));
	return 0;
}

/* The consumer process: c_main() on the ingress channel's consumer;
 * reports a struct c_res (err 4: no channel end from the socket). */
static int tool_cons_main(void *arg, int wfd)
{
	struct tool_kid *k = arg;
	struct c_res res = { 0 };
	struct sn_channel *ch;
	int r;

	r = bridge_attach(k->path, &ch);
	if (r) {
		res.err = 4;
		res.rc = r;
		nsx_report(wfd, &res, sizeof(res));
		return 0;
	}
	k->sh->c_pipe = wfd;
	c_main(k->sh, ch);
	sn_channel_close(ch);
	return 0;
}

/* Milliseconds from now to @end, at least 1. */
static int left_ms(__u64 end)
{
	__u64 now = t_now();

	return now + MS < end ? (int)((end - now) / MS) : 1;
}

TEST_F(tool, tool_million)
{
	struct sh *sh = self->sh;
	unsigned int port = 20000 + (unsigned int)getpid() % 20000;
	char bin[4096], ep[64], lanes[16], slot[16];
	struct tool_kid kid[TOOL_KIDS];
	struct a_res pr[PRODS];
	struct c_res cr;
	int rp[PRODS], rc, st_a, st_b, i;
	__u64 n = t_scaled(1000000) & ~1UL, t0, end;

	ASSERT_EQ(0, tool_path(bin, sizeof(bin)))
		TH_LOG("no sn-bridge at %s: build it (make build/sn-bridge) "
		       "or name it in $SNBRIDGE", bin);
	snprintf(self->dir, sizeof(self->dir), "/tmp/snb-tool-%d-XXXXXX",
		 (int)getpid());
	ASSERT_NE(NULL, mkdtemp(self->dir)) TH_LOG("mkdtemp: %s",
						    strerror(errno));
	snprintf(self->egress, sizeof(self->egress), "%s/egress", self->dir);
	snprintf(self->ingress, sizeof(self->ingress), "%s/ingress",
		 self->dir);
	snprintf(ep, sizeof(ep), "tcp://%s:%u", self->n.addr[1], port);
	snprintf(lanes, sizeof(lanes), "%d", PRODS);
	snprintf(slot, sizeof(slot), "%d", SLOT);
	sh->cfg = base_cfg;
	sh->cfg.n = n;
	/* --slot-size: the messages are SLOT bytes (the tool's default: 64) */
	{
		const char *argv_b[] = { bin, "--host", "2", "--bind", ep,
			"--ingress", self->ingress, "--slot-size", slot, NULL };
		const char *argv_a[] = { bin, "--host", "1", "--connect", ep,
			"--egress", self->egress, "--lanes", lanes,
			"--slot-size", slot, NULL };

		ASSERT_EQ(0, tool_spawn(&self->br[1], self->n.ns[1], argv_b));
		ASSERT_EQ(0, bridge_wait_err(&self->br[1],
					   "sn-bridge: ready: ingress ", 10000))
			TH_LOG("B's sn-bridge not ready in 10 s: %s",
			       self->br[1].errbuf);
		ASSERT_EQ(0, tool_spawn(&self->br[0], self->n.ns[0], argv_a));
		ASSERT_EQ(0, bridge_wait_err(&self->br[0],
					   "sn-bridge: ready: egress ", 10000))
			TH_LOG("A's sn-bridge not ready in 10 s: %s",
			       self->br[0].errbuf);
	}

	/* the consumer in b, the producers in a */
	t0 = t_now();
	end = t0 + 10 * SEC;
	for (i = 0; i < TOOL_KIDS; i++) {
		kid[i] = (struct tool_kid){ .sh = sh, .id = (__u32)i,
			.path = i < PRODS ? self->egress : self->ingress };
		self->kid[i] = nsx_fork(self->n.ns[i < PRODS ? 0 : 1],
					i < PRODS ? tool_prod_main :
						    tool_cons_main,
					&kid[i], &self->kid_fd[i]);
		ASSERT_LT(0, self->kid[i]) TH_LOG("fork: %s", strerror(errno));
	}
	memset(pr, 0, sizeof(pr));
	memset(&cr, 0, sizeof(cr));
	for (i = 0; i < PRODS; i++)
		rp[i] = nsx_collect(self->kid_fd[i], &pr[i], sizeof(pr[i]),
				    left_ms(end));
	rc = nsx_collect(self->kid_fd[PRODS], &cr, sizeof(cr), left_ms(end));
	if (rc || rp[0] || rp[1]) {
		/* stopped: their reports say how far they got */
		STORE(sh->stop_prod, 1);
		STORE(sh->stop_c, 1);
		for (i = 0; i < PRODS; i++)
			if (rp[i] == -ETIMEDOUT)
				nsx_collect(self->kid_fd[i], &pr[i],
					    sizeof(pr[i]), 1000);
		if (rc == -ETIMEDOUT)
			nsx_collect(self->kid_fd[PRODS], &cr, sizeof(cr),
				    1000);
	}
	printf("# sn-bridge: %llu messages in %llu ms\n",
	       (unsigned long long)cr.received,
	       (unsigned long long)((t_now() - t0) / MS));
	for (i = 0; i < PRODS; i++)
		printf("# producer %d: err %d rc %d prod_err %d sent %llu "
		       "timeouts %llu\n", i, pr[i].err, pr[i].rc,
		       pr[i].prod_err, (unsigned long long)pr[i].sent[i],
		       (unsigned long long)pr[i].timeouts[i]);
	printf("# C: err %d rc %d received %llu dups %llu gaps %llu bad %llu\n",
	       cr.err, cr.rc, (unsigned long long)cr.received,
	       (unsigned long long)cr.dups, (unsigned long long)cr.gaps,
	       (unsigned long long)cr.bad);
	/* they end once reported; 3 s for all, then SIGKILL */
	end = t_now() + 3 * SEC;
	for (i = 0; i < TOOL_KIDS; i++) {
		EXPECT_EQ(0, nsx_wait(self->kid[i], left_ms(end)));
		self->kid[i] = 0;
	}

	/* the sender first: its flush needs the peer */
	st_a = tool_stop(&self->br[0], 7000);
	st_b = tool_stop(&self->br[1], 2000);
	printf("# A's sn-bridge: %s", self->br[0].outbuf);
	printf("# B's sn-bridge: %s", self->br[1].outbuf);

	for (i = 0; i < PRODS; i++) {
		int r = rp[i];

		EXPECT_EQ(0, r) TH_LOG("no report from producer %d in 10 s "
				       "(%s)", i, strerror(-r));
	}
	EXPECT_EQ(0, rc) TH_LOG("no report from the consumer in 10 s (%s)",
				strerror(-rc));

	for (i = 0; i < PRODS; i++) {
		EXPECT_EQ(0, pr[i].err) TH_LOG("producer %d: no channel end "
					       "from %s: %s", i, self->egress,
					       strerror(-pr[i].rc));
		EXPECT_EQ(0, pr[i].prod_err) TH_LOG("producer %d: %s", i,
						    strerror(-pr[i].prod_err));
		EXPECT_EQ(0, pr[i].epipe_ns[i]);
		EXPECT_EQ(n / PRODS, pr[i].sent[i]);
	}
	EXPECT_EQ(0, cr.err) TH_LOG("C failed at %d: %d (%s)", cr.err, cr.rc,
				    strerror(-cr.rc));
	EXPECT_EQ(n, cr.received);
	EXPECT_EQ(0, cr.dups);
	EXPECT_EQ(0, cr.gaps);
	EXPECT_EQ(0, cr.bad);
	for (i = 0; i < PRODS; i++) {
		EXPECT_EQ(n / PRODS, cr.next[i]);
		EXPECT_EQ(1, cr.first[i]);
	}
	EXPECT_EQ(expected_sum(n), cr.sum);

	EXPECT_EQ(0, st_a) TH_LOG("A's sn-bridge exit %d: %s", st_a,
				  self->br[0].errbuf);
	EXPECT_EQ(0, st_b) TH_LOG("B's sn-bridge exit %d: %s", st_b,
				  self->br[1].errbuf);
	EXPECT_EQ((long long)n, bridge_stat(self->br[0].outbuf, "msgs_sent"))
		TH_LOG("A: %s", self->br[0].outbuf);
	EXPECT_EQ((long long)n, bridge_stat(self->br[0].outbuf, "msgs_acked"))
		TH_LOG("A: %s", self->br[0].outbuf);
	EXPECT_EQ(0, bridge_stat(self->br[0].outbuf, "unacked"))
		TH_LOG("A: %s", self->br[0].outbuf);
	EXPECT_EQ(2, bridge_stat(self->br[0].outbuf, "peer_host"))
		TH_LOG("A: %s", self->br[0].outbuf);
	EXPECT_EQ((long long)n,
		  bridge_stat(self->br[1].outbuf, "msgs_delivered"))
		TH_LOG("B: %s", self->br[1].outbuf);
	EXPECT_EQ(1, bridge_stat(self->br[1].outbuf, "peer_host"))
		TH_LOG("B: %s", self->br[1].outbuf);
}

/* ---- the API, no namespaces ---- */

/* Removes an ipc:// endpoint's files (the transport's control socket is
 * the endpoint's path with "-ctl"). */
static void unlink_ipc(const char *ep)
{
	char path[80];

	snprintf(path, sizeof(path), "%s", ep + strlen("ipc://"));
	unlink(path);
	snprintf(path, sizeof(path), "%s-ctl", ep + strlen("ipc://"));
	unlink(path);
}

TEST(create_errors)
{
	struct sn_channel *spsc, *mpmc, *var, *big;
	struct sn_bridge *b = NULL, *b2 = NULL;
	struct {
		struct sn_bridge_opts o;
		__u64 more[2];
	} ext;
	char ep[64];

	snprintf(ep, sizeof(ep), "ipc:///tmp/snb-api-%d", (int)getpid());
	ASSERT_EQ(0, sn_channel_create(&spsc, SN_CHANNEL_OPTS(.slot_size = 16)));
	ASSERT_EQ(0, sn_channel_create(&mpmc, SN_CHANNEL_OPTS(
		.type = SN_RING_MPMC, .lanes = 2, .slot_size = 16)));
	ASSERT_EQ(0, sn_channel_create(&var, SN_CHANNEL_OPTS(
		.flags = SN_CHANNEL_VARLEN, .slot_size = 16)));
	ASSERT_EQ(0, sn_channel_create(&big, SN_CHANNEL_OPTS(
		.slots = 16, .slot_size = 65536)));

	/* endpoints: none, both */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(.egress = spsc)));
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .connect = ep, .egress = spsc)));
	/* neither egress nor ingress, both ingress and deliver */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(.bind = ep)));
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .ingress = spsc,
		.deliver = (sn_bridge_deliver_fn)1)));
	/* channels of the wrong kind */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .egress = mpmc)));
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .ingress = mpmc)));
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .egress = var)));
	/* 65536 * 512 bytes a frame: above SN_BRIDGE_MAX_FRAME_BYTES */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .egress = big, .frame_msgs = 512)));
	/* flags */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = ep, .egress = spsc, .flags = 1U << 7)));
	/* a bad endpoint */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, SN_BRIDGE_OPTS(
		.bind = "tcp://no-port", .egress = spsc)));
	/* too small an opts */
	EXPECT_EQ(-EINVAL, sn_bridge_create(&b, &(struct sn_bridge_opts){
		.size = 8, .bind = ep, .egress = spsc }));
	EXPECT_EQ(NULL, b);

	/* a larger opts: unknown bytes set is -E2BIG, zero is fine */
	memset(&ext, 0, sizeof(ext));
	ext.o.size = sizeof(ext);
	ext.o.bind = ep;
	ext.o.egress = spsc;
	ext.more[1] = 1;
	EXPECT_EQ(-E2BIG, sn_bridge_create(&b, &ext.o));
	ext.more[1] = 0;
	ASSERT_EQ(0, sn_bridge_create(&b, &ext.o));
	EXPECT_NE(NULL, b);
	EXPECT_EQ(SN_BRIDGE_CONNECTING, sn_bridge_state(b));
	/* the egress consumer is taken */
	EXPECT_EQ(-EUSERS, sn_bridge_create(&b2, SN_BRIDGE_OPTS(
		.connect = ep, .egress = spsc)));
	EXPECT_EQ(-ETIMEDOUT, sn_bridge_wait_up(b, 50 * MS));
	EXPECT_EQ(0, sn_bridge_destroy(b));
	EXPECT_EQ(0, sn_bridge_destroy(NULL));

	sn_channel_close(spsc);
	sn_channel_close(mpmc);
	sn_channel_close(var);
	sn_channel_close(big);
	unlink_ipc(ep);
}

TEST(state_names)
{
	EXPECT_STREQ("connecting", sn_bridge_state_name(SN_BRIDGE_CONNECTING));
	EXPECT_STREQ("up", sn_bridge_state_name(SN_BRIDGE_UP));
	EXPECT_STREQ("down", sn_bridge_state_name(SN_BRIDGE_DOWN));
	EXPECT_STREQ("failed", sn_bridge_state_name(SN_BRIDGE_FAILED));
	EXPECT_NE(NULL, sn_bridge_state_name(42));
	EXPECT_NE(NULL, sn_bridge_state_name(-1));
}

/* Two bridges in one process over ipc://, the receiver a deliver
 * callback: host, lane, consecutive sequences, every message once. */
struct dlv {
	__u64 next[PRODS];
	__u64 got, bad;
	__u32 host;
};

static int deliver(void *arg, __u32 host, __u32 lane, __u32 epoch, __u64 seq,
		   const void *msgs, __u32 n, __u32 size)
{
	struct dlv *d = arg;
	const struct msg *m = msgs;
	__u32 i;

	(void)epoch;
	if (lane >= PRODS || size != SLOT) {
		__atomic_fetch_add(&d->bad, n, __ATOMIC_RELAXED);
		return (int)n;
	}
	d->host = host;
	for (i = 0; i < n; i++) {
		if (seq + i != d->next[lane] ||
		    m[i].sum != msg_sum(m[i].prod, m[i].seq))
			d->bad++;
		else
			d->next[lane]++;
	}
	__atomic_fetch_add(&d->got, n, __ATOMIC_RELEASE);
	return (int)n;
}

TEST(ipc_deliver)
{
	struct sn_bridge *tx = NULL, *rx = NULL;
	struct sn_producer *p[PRODS];
	struct sn_bridge_stats st;
	struct sn_channel *ch;
	struct dlv d;
	const __u64 n = 20000;
	char ep[64];
	struct msg m;
	__u64 i, end;
	int k;

	memset(&d, 0, sizeof(d));
	snprintf(ep, sizeof(ep), "ipc:///tmp/snb-dlv-%d", (int)getpid());
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = SN_RING_MPSC, .lanes = PRODS, .slots = 1024,
		.slot_size = SLOT)));
	ASSERT_EQ(0, sn_bridge_create(&rx, SN_BRIDGE_OPTS(
		.host = 8, .bind = ep, .deliver = deliver, .deliver_arg = &d)));
	ASSERT_EQ(0, sn_bridge_create(&tx, SN_BRIDGE_OPTS(
		.host = 7, .connect = ep, .egress = ch)));
	ASSERT_EQ(0, sn_bridge_wait_up(tx, 5 * SEC));
	for (k = 0; k < PRODS; k++)
		ASSERT_EQ(0, sn_producer_open(ch, &p[k]));
	for (i = 0; i < n; i++) {
		k = (int)(i & 1);
		m.prod = (__u32)sn_producer_lane(p[k]);
		m.seq = (__u32)(i / 2);
		m.sum = msg_sum(m.prod, m.seq);
		ASSERT_EQ(0, sn_send(p[k], &m, 5 * SEC));
	}
	ASSERT_EQ(0, sn_bridge_flush(tx, 10 * SEC));
	end = t_now() + 5 * SEC;
	while (__atomic_load_n(&d.got, __ATOMIC_ACQUIRE) < n && t_now() < end)
		nap_ms(1);
	EXPECT_EQ(n, d.got);
	EXPECT_EQ(0, d.bad);
	EXPECT_EQ(7, d.host);
	EXPECT_EQ(n / 2, d.next[0]);
	EXPECT_EQ(n / 2, d.next[1]);
	ASSERT_EQ(0, sn_bridge_stats(tx, &st));
	EXPECT_EQ(n, st.msgs_sent);
	EXPECT_EQ(n, st.msgs_acked);
	EXPECT_EQ(8, st.peer_host);
	EXPECT_EQ(SN_BRIDGE_UP, st.state);
	ASSERT_EQ(0, sn_bridge_stats(rx, &st));
	EXPECT_EQ(n, st.msgs_delivered);
	for (k = 0; k < PRODS; k++)
		sn_producer_close(p[k]);
	EXPECT_EQ(0, sn_bridge_destroy(tx));
	EXPECT_EQ(0, sn_bridge_destroy(rx));
	sn_channel_close(ch);
	unlink_ipc(ep);
}

TEST_HARNESS_MAIN
