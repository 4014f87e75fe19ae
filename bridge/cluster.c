/* SPDX-License-Identifier: MIT */
/*
 * The pool across hosts: a local sn_pool, an egress channel and a bridge
 * toward every other host (include/sn/bridge.h, "The pool across hosts").
 *
 * A message travels as:
 *   egress slot   { __u64 key; struct snc_hdr; payload }  (fixed size)
 *   pool payload  { struct snc_hdr; payload }              (the pool adds
 *                                                           the key)
 * so the bridge that receives it submits slot + 8 as the pool payload, and
 * the cluster's handler strips the header into a struct
 * sn_cluster_envelope.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <sn/bridge.h>

#define SNC_API __attribute__((visibility("default")))

struct snc_hdr {
	__u32 host;		/* where it was submitted */
	__u32 len;		/* payload bytes */
};

/* A bridge's way into the local pool (its own submitter, on its thread). */
struct snc_link {
	struct sn_cluster *c;
	struct sn_submitter *sub;
};

/* Each worker's state, as the pool sees it. */
struct snc_worker {
	void *user;			/* what init made, or state_size */
	int own;			/* user is our state_size block */
	struct sn_cluster_envelope *env;	/* batch */
};

struct sn_cluster {
	struct sn_cluster_config cfg;
	struct sn_pool *pool;
	__u32 msg_size;			/* the users' largest payload */
	__u32 eslot;			/* egress slot bytes */
	struct sn_channel *egress[SN_CLUSTER_MAX_HOSTS];
	struct sn_bridge *bridge[SN_CLUSTER_MAX_HOSTS];
	struct snc_link link[SN_CLUSTER_MAX_HOSTS];
	struct snc_worker **ws;		/* per worker, freed with the cluster */
	unsigned int workers;
	int shut;
};

struct sn_cluster_submitter {
	struct sn_cluster *c;
	struct sn_submitter *local;
	struct sn_producer *p[SN_CLUSTER_MAX_HOSTS];
	unsigned char *buf;		/* header + payload for local submits */
};

/* ---- the pool's callbacks ---- */

static int snc_init(struct sn_worker *w, void *arg, void **state)
{
	struct sn_cluster *c = arg;
	const struct sn_pool_config *pc = &c->cfg.pool;
	struct snc_worker *ws = calloc(1, sizeof(*ws));
	int ret = 0;

	if (!ws)
		return -ENOMEM;
	ws->env = calloc(pc->batch ? pc->batch : 32, sizeof(*ws->env));
	if (!ws->env) {
		free(ws);
		return -ENOMEM;
	}
	if (pc->init) {
		ret = pc->init(w, pc->arg, &ws->user);
	} else if (pc->state_size) {
		ret = posix_memalign(&ws->user, 128, pc->state_size) ? -ENOMEM :
		      0;
		if (!ret) {
			memset(ws->user, 0, pc->state_size);
			ws->own = 1;
		}
	}
	if (ret) {
		free(ws->env);
		free(ws);
		return ret;
	}
	c->ws[sn_worker_id(w)] = ws;
	*state = ws;
	return 0;
}

static void snc_fini(struct sn_worker *w, void *state)
{
	struct sn_cluster *c = sn_worker_arg(w);
	struct snc_worker *ws = state;

	if (c->cfg.pool.fini)
		c->cfg.pool.fini(w, ws->user);
}

static void snc_tick(struct sn_worker *w, void *state)
{
	struct sn_cluster *c = sn_worker_arg(w);
	struct snc_worker *ws = state;

	c->cfg.pool.tick(w, ws->user);
}

static int snc_handle(struct sn_worker *w, void *state,
		      const struct sn_envelope *env, unsigned int n)
{
	struct sn_cluster *c = sn_worker_arg(w);
	struct snc_worker *ws = state;
	unsigned int i;

	for (i = 0; i < n; i++) {
		const struct snc_hdr *h = env[i].payload;
		struct sn_cluster_envelope *e = &ws->env[i];

		e->key = env[i].key;
		if (env[i].len < sizeof(*h) || h->len > env[i].len - sizeof(*h)) {
			e->host = SN_SOURCE_EXTERNAL;	/* not ours: empty */
			e->len = 0;
			e->payload = h;
			continue;
		}
		e->host = h->host;
		e->len = h->len;
		e->payload = h + 1;
	}
	return c->cfg.chandle(w, ws->user, ws->env, n);
}

/* ---- a bridge hands the peer's messages to the local pool ---- */

static int snc_deliver(void *arg, __u32 host, __u32 lane, __u32 epoch,
		       __u64 seq, const void *msgs, __u32 n, __u32 size)
{
	struct snc_link *l = arg;
	struct sn_cluster *c = l->c;
	__u32 i;
	int ret;

	(void)host;
	(void)lane;
	(void)epoch;
	(void)seq;
	if (size != c->eslot)
		return -EMSGSIZE;	/* the hosts' configs differ */
	for (i = 0; i < n; i++) {
		const unsigned char *m = (const unsigned char *)msgs +
					 (size_t)i * size;
		struct snc_hdr h;
		__u64 key;

		/* frames may sit at any address: copy the fields out */
		memcpy(&key, m, sizeof(key));
		memcpy(&h, m + 8, sizeof(h));
		if (h.len > c->msg_size) {
			ret = -EPROTO;
		} else {
			ret = sn_try_submit(l->sub, key, m + 8,
					    (__u32)sizeof(h) + h.len);
		}
		if (ret == -EAGAIN)
			break;		/* the bridge offers the rest later */
		if (ret)
			return ret;
	}
	return (int)i;
}

/* ---- the API ---- */

static __u64 snc_mix_host(__u64 key)
{
	/* mixed twice: the local partitioners hash sn_mix64(key), and the
	 * host's choice must not correlate with the worker's */
	return sn_mix64(sn_mix64(key) ^ 0x9e3779b97f4a7c15ULL);
}

SNC_API __u32 sn_cluster_host(const struct sn_cluster *c, __u64 key)
{
	return sn_jump_hash(snc_mix_host(key), c->cfg.hosts);
}

SNC_API struct sn_pool *sn_cluster_pool(const struct sn_cluster *c)
{
	return c ? c->pool : NULL;
}

SNC_API struct sn_bridge *sn_cluster_bridge(const struct sn_cluster *c,
					    __u32 h)
{
	return c && h < c->cfg.hosts ? c->bridge[h] : NULL;
}

static int snc_config(struct sn_cluster *c, const struct sn_cluster_config *in)
{
	struct sn_cluster_config *cfg = &c->cfg;
	struct sn_pool_config *pc = &cfg->pool;
	__u32 h;

	if (!in || in->size != sizeof(*in))
		return -EINVAL;
	*cfg = *in;
	if (!cfg->hosts || cfg->hosts > SN_CLUSTER_MAX_HOSTS ||
	    cfg->self >= cfg->hosts || !cfg->chandle || pc->handle ||
	    (cfg->hosts > 1 && (!cfg->addrs || !cfg->base_port ||
				(__u64)cfg->base_port + 2 * cfg->hosts >
				65535)))
		return -EINVAL;
	for (h = 0; cfg->hosts > 1 && h < cfg->hosts; h++)
		if (!cfg->addrs[h])
			return -EINVAL;
	c->msg_size = pc->msg_size ? pc->msg_size : 48;
	if ((pc->max_msg_size && pc->max_msg_size != pc->msg_size) ||
	    c->msg_size > SN_CHANNEL_MAX_SLOT_SIZE - 16)
		return -EINVAL;
	if ((pc->max_submitters ? pc->max_submitters : 8) + cfg->hosts - 1 > 64)
		return -EINVAL;
	c->eslot = 16 + ((c->msg_size + 7) & ~7U);
	return 0;
}

static void snc_teardown(struct sn_cluster *c)
{
	__u32 h;
	unsigned int i;

	for (h = 0; h < c->cfg.hosts; h++) {
		sn_bridge_destroy(c->bridge[h]);
		c->bridge[h] = NULL;
		/* the bridge's thread is gone: its submitter is ours now */
		sn_submitter_close(c->link[h].sub);
		c->link[h].sub = NULL;
	}
	if (c->pool)
		sn_pool_destroy(c->pool);
	c->pool = NULL;
	for (h = 0; h < c->cfg.hosts; h++) {
		sn_channel_close(c->egress[h]);
		c->egress[h] = NULL;
	}
	for (i = 0; c->ws && i < c->workers; i++) {
		if (!c->ws[i])
			continue;
		if (c->ws[i]->own)
			free(c->ws[i]->user);
		free(c->ws[i]->env);
		free(c->ws[i]);
	}
	free(c->ws);
	c->ws = NULL;
}

static int snc_start_bridge(struct sn_cluster *c, __u32 h)
{
	const struct sn_cluster_config *cfg = &c->cfg;
	__u32 lo = cfg->self < h ? cfg->self : h;
	__u32 hi = cfg->self < h ? h : cfg->self;
	char ep[300];
	int ret;

	if ((size_t)snprintf(ep, sizeof(ep), "tcp://%s:%u", cfg->addrs[lo],
			     cfg->base_port + 2 * hi) >= sizeof(ep))
		return -ENAMETOOLONG;
	ret = sn_channel_create(&c->egress[h], SN_CHANNEL_OPTS(
		.type = SN_RING_MPSC,
		.slots = cfg->egress_slots ? cfg->egress_slots : 4096,
		.slot_size = c->eslot,
		.lanes = cfg->pool.max_submitters ? cfg->pool.max_submitters : 8,
		.flags = cfg->pool.backend));
	if (ret)
		return ret;
	c->link[h].c = c;
	/* the bridge's way into the pool, opened here: its thread must not
	 * wait for one, nor find them all taken */
	ret = sn_submitter_open(c->pool, &c->link[h].sub);
	if (ret)
		return ret;
	return sn_bridge_create(&c->bridge[h], SN_BRIDGE_OPTS(
		.host = cfg->self,
		.bind = cfg->self == lo ? ep : NULL,
		.connect = cfg->self == lo ? NULL : ep,
		.egress = c->egress[h],
		.deliver = snc_deliver,
		.deliver_arg = &c->link[h],
		.heartbeat_ns = cfg->heartbeat_ns,
		.dead_ns = cfg->dead_ns));
}

SNC_API int sn_cluster_create(struct sn_cluster **out,
			      const struct sn_cluster_config *cfg)
{
	struct sn_cluster *c = calloc(1, sizeof(*c));
	struct sn_pool_config pc;
	__u32 h;
	int ret;

	if (!c)
		return -ENOMEM;
	ret = out ? snc_config(c, cfg) : -EINVAL;
	if (ret)
		goto fail;
	pc = c->cfg.pool;
	pc.msg_size = c->msg_size + (__u32)sizeof(struct snc_hdr);
	pc.max_msg_size = 0;
	pc.max_submitters = (pc.max_submitters ? pc.max_submitters : 8) +
			    c->cfg.hosts - 1;
	pc.init = snc_init;
	pc.fini = snc_fini;
	pc.tick = c->cfg.pool.tick ? snc_tick : NULL;
	pc.handle = snc_handle;
	pc.state_size = 0;
	pc.arg = c;
	c->workers = pc.workers;
	if (!c->workers) {
		long n = sysconf(_SC_NPROCESSORS_ONLN);

		c->workers = n > 0 ? (unsigned int)n : 1;
	}
	pc.workers = c->workers;
	c->ws = calloc(c->workers, sizeof(*c->ws));
	if (!c->ws) {
		ret = -ENOMEM;
		goto fail;
	}
	ret = sn_pool_create(&c->pool, &pc);
	if (ret)
		goto fail;
	for (h = 0; h < c->cfg.hosts; h++) {
		if (h == c->cfg.self)
			continue;
		ret = snc_start_bridge(c, h);
		if (ret)
			goto fail;
	}
	*out = c;
	return 0;
fail:
	snc_teardown(c);
	free(c);
	return ret;
}

SNC_API int sn_cluster_wait_up(struct sn_cluster *c, __u64 timeout_ns)
{
	struct timespec t0;
	__u64 start, spent;
	__u32 h;
	int ret;

	if (!c)
		return -EINVAL;
	clock_gettime(CLOCK_MONOTONIC, &t0);
	start = (__u64)t0.tv_sec * 1000000000ULL + (__u64)t0.tv_nsec;
	for (h = 0; h < c->cfg.hosts; h++) {
		if (!c->bridge[h])
			continue;
		clock_gettime(CLOCK_MONOTONIC, &t0);
		spent = (__u64)t0.tv_sec * 1000000000ULL + (__u64)t0.tv_nsec -
			start;
		ret = sn_bridge_wait_up(c->bridge[h],
					timeout_ns == SN_WAIT_FOREVER ?
					timeout_ns : spent >= timeout_ns ? 0 :
					timeout_ns - spent);
		if (ret)
			return ret;
	}
	return 0;
}

SNC_API int sn_cluster_flush(struct sn_cluster *c, __u64 timeout_ns)
{
	__u32 h;
	int ret;

	if (!c)
		return -EINVAL;
	for (h = 0; h < c->cfg.hosts; h++) {
		if (!c->bridge[h])
			continue;
		ret = sn_bridge_flush(c->bridge[h], timeout_ns);
		if (ret)
			return ret;
	}
	return 0;
}

SNC_API int sn_cluster_shutdown(struct sn_cluster *c)
{
	__u32 h;

	if (!c)
		return -EINVAL;
	if (c->shut)
		return 0;
	__atomic_store_n(&c->shut, 1, __ATOMIC_RELEASE);
	for (h = 0; h < c->cfg.hosts; h++) {
		sn_bridge_destroy(c->bridge[h]);
		c->bridge[h] = NULL;
		sn_submitter_close(c->link[h].sub);
		c->link[h].sub = NULL;
	}
	return sn_pool_shutdown(c->pool);
}

SNC_API int sn_cluster_destroy(struct sn_cluster *c)
{
	if (!c)
		return 0;
	sn_cluster_shutdown(c);
	snc_teardown(c);
	free(c);
	return 0;
}

SNC_API int sn_cluster_submitter_open(struct sn_cluster *c,
				      struct sn_cluster_submitter **out)
{
	struct sn_cluster_submitter *s;
	__u32 h;
	int ret;

	if (!c || !out)
		return -EINVAL;
	s = calloc(1, sizeof(*s));
	if (!s)
		return -ENOMEM;
	s->c = c;
	s->buf = malloc(sizeof(struct snc_hdr) + c->msg_size);
	ret = s->buf ? sn_submitter_open(c->pool, &s->local) : -ENOMEM;
	for (h = 0; !ret && h < c->cfg.hosts; h++)
		if (c->egress[h])
			ret = sn_producer_open(c->egress[h], &s->p[h]);
	if (ret) {
		sn_cluster_submitter_close(s);
		return ret;
	}
	*out = s;
	return 0;
}

SNC_API int sn_cluster_submitter_close(struct sn_cluster_submitter *s)
{
	__u32 h;

	if (!s)
		return 0;
	for (h = 0; h < SN_CLUSTER_MAX_HOSTS; h++)
		sn_producer_close(s->p[h]);
	sn_submitter_close(s->local);
	free(s->buf);
	free(s);
	return 0;
}

/* Waits for room in @p as the pool's backpressure says. */
static int snc_wait_room(struct sn_cluster *c, struct sn_producer *p,
			 struct timespec *deadline)
{
	const struct sn_pool_config *pc = &c->cfg.pool;
	struct timespec now;
	__u64 left;

	if (pc->backpressure != SN_BP_BLOCK || !pc->block_timeout_ns)
		return -EAGAIN;
	clock_gettime(CLOCK_MONOTONIC, &now);
	if (!deadline->tv_sec && !deadline->tv_nsec) {
		__u64 t = (__u64)now.tv_sec * 1000000000ULL +
			  (__u64)now.tv_nsec + pc->block_timeout_ns;

		deadline->tv_sec = (time_t)(t / 1000000000ULL);
		deadline->tv_nsec = (long)(t % 1000000000ULL);
	}
	if (now.tv_sec > deadline->tv_sec ||
	    (now.tv_sec == deadline->tv_sec && now.tv_nsec >= deadline->tv_nsec))
		return -ETIMEDOUT;
	left = (__u64)(deadline->tv_sec - now.tv_sec) * 1000000000ULL +
	       (__u64)deadline->tv_nsec - (__u64)now.tv_nsec;
	sn_producer_wait(p, left < 10000000ULL ? left : 10000000ULL);
	return 0;
}

SNC_API int sn_cluster_submit(struct sn_cluster_submitter *s, __u64 key,
			      const void *payload, __u32 len)
{
	struct sn_cluster *c;
	struct snc_hdr *h;
	struct sn_producer *p;
	struct timespec deadline = { 0, 0 };
	unsigned char *slot;
	__u32 host, pos;
	int r;

	if (!s || len > s->c->msg_size || (len && !payload))
		return -EINVAL;
	c = s->c;
	if (__atomic_load_n(&c->shut, __ATOMIC_ACQUIRE))
		return -ESHUTDOWN;
	host = sn_cluster_host(c, key);
	if (host == c->cfg.self) {
		h = (struct snc_hdr *)s->buf;
		h->host = c->cfg.self;
		h->len = len;
		if (len)
			memcpy(h + 1, payload, len);
		return sn_submit(s->local, key, h, (__u32)sizeof(*h) + len);
	}
	p = s->p[host];
	while ((r = sn_producer_reserve(p, 1, &pos)) == -EAGAIN) {
		r = snc_wait_room(c, p, &deadline);
		if (r)
			return r;
	}
	if (r < 0)
		return r;
	slot = sn_producer_slot(p, pos);
	memcpy(slot, &key, sizeof(key));
	h = (struct snc_hdr *)(slot + 8);
	h->host = c->cfg.self;
	h->len = len;
	if (len)
		memcpy(h + 1, payload, len);
	return sn_producer_commit(p, 1);
}
