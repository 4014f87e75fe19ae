/* SPDX-License-Identifier: MIT */
/*
 * The shared-nothing worker pool (include/sn/pool.h).
 *
 * Channels: mesh[i * n + j] is the SPSC channel from worker i to worker j;
 * ingress[j] the MPSC channel of worker j, one lane per submitter slot.
 * Worker j's inbound consumers are in[0..n-1] (the mesh column j) and
 * in[n] (its ingress). Every channel is created and every handle opened by
 * sn_pool_create() before the threads start: the max_submitters submitter
 * slots own their producer handles for the pool's life, so a submitter
 * opened again continues its lanes (the per-thread order of pool.h).
 *
 * Locks: pool->lock guards only start-up and the shutdown state; no
 * function holds it while it waits for workers, and workers take it only
 * before their first message. Everything else is per-thread counters and
 * atomic flags.
 *
 * Counters: each worker and each submitter slot writes only its own
 * counters, on its own cache lines (atomic stores, read by anyone with
 * atomic loads). Shutdown detects quiescence from them with the counting
 * argument of termination detection: it reads every "done" counter
 * (handled, I/O completed, released) first and every "started" counter
 * (submitted, forwarded, I/O started, held) after; a message is counted
 * started before it is published and handled after its handler returned
 * (release stores, acquire loads), so done_read <= done(T) <= started(T)
 * <= started_read at the moment T between the two reads, and equality
 * means that at T every message had been handled and no handler or I/O
 * was in progress.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include <liburing.h>
#include <poll.h>

#include <sn/channel.h>
#include <sn/pool.h>

#include "internal.h"

#define SN_POOL_MAX_WORKERS	128U
#define SN_POOL_IDLE_SPINS	64
#define SN_POOL_IDLE_YIELDS	256	/* then yields, as sn_producer_wait()
					 * does: the CPU may be shared */
#define SN_POOL_LINE		128
#define SN_POOL_HELD_NS		1000000ULL	/* 1 ms */
#define SN_POOL_POLL_NS		50000L		/* shutdown's and open's poll */
#define SN_POOL_WAIT_SLICE	1000000ULL	/* a blocked submit re-checks
						 * intake this often */
#define SN_POOL_BACKENDS	(SN_BACKEND_KERNEL | SN_BACKEND_MEMFD)
#define SN_POOL_CHUNK		64U		/* sn_submit_batch() routes
						 * this many at a time */

/* What precedes the payload in every slot (every record: records). */
struct sn_msg_hdr {
	__u64 key;
	__u32 source;
	__u32 len;		/* fixed slots: the payload's; records: unused,
				 * their own length says it */
};

#define SN_HDR	((__u32)sizeof(struct sn_msg_hdr))

/* Messages of one lane a handler call reads in place: n slots from pos
 * holding k messages (fixed slots: n == k; records: padding and dropped
 * records among them). */
struct sn_seg {
	struct sn_consumer *c;
	__u32 lane, pos, n, k;
};

/* The pool's own requests on a worker's io_uring. */
struct sn_pool_io {
	struct sn_io io;
	struct sn_worker *w;
	int armed;
};

/* Written by the worker only; read by anyone. */
struct sn_worker_counts {
	__u64 handled;		/* "done" counters: release stores */
	__u64 io_done;
	__u64 released;
	__u64 io_started;	/* "started" counters */
	__u64 held;
	__u64 forwarded;
	__u64 forward_rejected;
	__u64 batches;
	__u64 idle_waits;
	__u64 ticks;
	__u64 io_completions;
	__u64 handler_errors;
};

struct sn_worker {
	struct sn_pool *pool;
	unsigned int id;
	int cpu;
	pthread_t thread;
	int started;		/* pthread_create succeeded */
	int efd;		/* the worker's eventfd */
	void *state;
	int own_state;		/* state is the pool's state_size block */
	int init_done;		/* init succeeded: fini is due */
	struct sn_consumer **in;	/* nin = n + 1 */
	struct sn_producer **out;	/* n */
	unsigned int nin, next_in;
	struct sn_envelope *env;	/* batch */
	struct sn_seg *seg;		/* batch: what env points into */
	struct io_uring ring;
	int ring_ok;
	struct sn_pool_io efd_io;
	__u64 efd_val;
	struct sn_pool_io *polls;	/* kernel backend: one per inbound */
	__u64 io_inflight;
	__u64 rr;			/* round-robin cursor of its sends */

	struct sn_worker_counts c __attribute__((aligned(SN_POOL_LINE)));
	/* memfd backend: 1 while the worker announced it sleeps on efd;
	 * written by producers too, so on a line of its own */
	__u32 sleeping __attribute__((aligned(SN_POOL_LINE)));
} __attribute__((aligned(SN_POOL_LINE)));

/*
 * A submitter slot: one lane of every ingress channel, for the pool's
 * life. The thread that holds it (state 1) is its only writer; the
 * acquire/release of state hands the private producer fields over.
 */
struct sn_submitter {
	struct sn_pool *pool;
	struct sn_producer **p;		/* n: one lane of each ingress */
	__u32 *cnt, *room;		/* n: sn_submit_batch()'s scratch */
	unsigned int *used;		/* n */
	__u64 rr;
	int nowait;			/* sn_try_submit(): never wait */
	/* read by shutdown, stats and openers */
	__u32 state __attribute__((aligned(SN_POOL_LINE)));	/* 1: open */
	__u32 active;			/* a submission in progress */
	uintptr_t owner;		/* the thread that opened it last */
	__u64 submitted;
	__u64 rejected;
} __attribute__((aligned(SN_POOL_LINE)));

enum { SN_POOL_RUNNING, SN_POOL_STOPPING, SN_POOL_SHUT };

struct sn_pool {
	struct sn_pool_config cfg;
	int *cpus;
	unsigned int n, slots, slot_size, msg_size, batch, lanes;
	unsigned int max_msg;		/* the longest payload: msg_size, or
					 * max_msg_size with records */
	int varlen;			/* records (max_msg > msg_size) */
	unsigned int entries;
	int backend;
	int hash;			/* the partitioner is SN_PART_HASH */
	struct sn_partitioner *part;
	struct sn_channel **mesh;	/* n * n */
	struct sn_channel **ingress;	/* n */
	struct sn_worker **w;
	struct sn_submitter **subs;	/* lanes */

	pthread_mutex_t lock;		/* start-up, the shutdown state */
	pthread_cond_t cond;
	unsigned int ready;		/* workers past their init */
	int start_err;
	int shut;			/* SN_POOL_*: written under lock */
	__u64 dropped;			/* set before shut turns SHUT */

	/* flags read by every thread, written once */
	int closing __attribute__((aligned(SN_POOL_LINE)));	/* intake */
	int stopping;			/* shutdown began */
	int done;			/* workers leave their loop */
};

/* The worker running on this thread (NULL on other threads). */
static __thread struct sn_worker *sn_self;
/* Its address names this thread for the submitter slots' owner. */
static __thread char sn_thread_tag;

static int sn_on_worker(const struct sn_pool *pool)
{
	return sn_self && sn_self->pool == pool;
}

static void sn_count(__u64 *ctr, __u64 add)
{
	/* the owner's own counter: plain read, atomic store */
	__atomic_store_n(ctr, *ctr + add, __ATOMIC_RELEASE);
}

static __u64 sn_load(const __u64 *ctr)
{
	return __atomic_load_n(ctr, __ATOMIC_ACQUIRE);
}

static void sn_pool_nap(void)
{
	struct timespec ts = { 0, SN_POOL_POLL_NS };

	nanosleep(&ts, NULL);
}

static void sn_efd_kick(int efd)
{
	__u64 one = 1;
	ssize_t r;

	do {
		r = write(efd, &one, sizeof(one));
	} while (r < 0 && errno == EINTR);
	/* EAGAIN: the counter is full, the worker is woken anyway */
}

/*
 * After publishing to @dw's inbound ring: the memfd backend's wakeup. The
 * publish's [P1] (sn__prod_ship()) comes between our tail store and this
 * load and pairs with [W1] in sn_worker_sleep(): the worker stores
 * `sleeping`, runs the ring's barrier (H on ASYM rings: the uapi header's
 * "Sleeping and waking"), re-checks the rings. One of us sees the other.
 * The swap makes one producer per sleep write.
 */
static void sn_pool_wake(struct sn_pool *pool, struct sn_worker *dw)
{
	if (pool->backend != SN_BACKEND_MEMFD)
		return;	/* kernel: the ring's own kick and wakeup threads */
	if (__atomic_load_n(&dw->sleeping, __ATOMIC_RELAXED) &&
	    __atomic_exchange_n(&dw->sleeping, 0, __ATOMIC_ACQ_REL))
		sn_efd_kick(dw->efd);
}

/* Copies @len bytes; small ones inline (two overlapping moves), as the
 * per-message path would otherwise call memcpy for a few bytes. */
static inline void sn_copy_small(unsigned char *dst, const unsigned char *src,
				 __u32 len)
{
	if (len >= 8 && len <= 16) {
		__u64 a, b;

		memcpy(&a, src, 8);
		memcpy(&b, src + len - 8, 8);
		memcpy(dst, &a, 8);
		memcpy(dst + len - 8, &b, 8);
	} else if (len >= 4 && len < 8) {
		__u32 a, b;

		memcpy(&a, src, 4);
		memcpy(&b, src + len - 4, 4);
		memcpy(dst, &a, 4);
		memcpy(dst + len - 4, &b, 4);
	} else if (len) {
		memcpy(dst, src, len);
	}
}

/* Writes the header and the payload at @slot: the message's one copy. */
static inline void sn_fill_at(unsigned char *slot, __u64 key, __u32 source,
			      const void *payload, __u32 len)
{
	struct sn_msg_hdr h = { .key = key, .source = source, .len = len };

	memcpy(slot, &h, sizeof(h));
	sn_copy_small(slot + sizeof(h), payload, len);
}

static inline void sn_fill(struct sn_producer *p, __u32 pos, __u64 key,
			   __u32 source, const void *payload, __u32 len)
{
	sn_fill_at(sn_producer_slot(p, pos), key, source, payload, len);
}

/*
 * Room in @p's lane (to worker @dw) for one message of @len payload bytes:
 * a slot, or with records one record of header + payload (sn_producer_reserve_len(),
 * which on refusal leaves in p->need the slots sn_producer_wait() then
 * waits for). 0 with *@slot where to write it (sn_fill_at()), then
 * sn_msg_commit(); else why not (-EAGAIN: no room now).
 */
static inline int sn_msg_reserve(struct sn_pool *pool, struct sn_producer *p,
				 struct sn_worker *dw, __u32 len,
				 unsigned char **slot)
{
	__u32 pos, tail;
	void *buf;
	int r;

	if (!pool->varlen) {
		r = sn_producer_reserve(p, 1, &pos);
		if (r < 0)
			return r;
		*slot = sn_producer_slot(p, pos);
		return 0;
	}
	tail = p->tail;
	r = sn_producer_reserve_len(p, SN_HDR + len, &buf);
	if (!r)
		*slot = buf;
	else if (p->tail != tail)
		/* refused after publishing a padding record to the lane's
		 * end: the worker must wake to release it, else this record
		 * waits for room forever (memfd: the channel's own kick
		 * does not reach the pool's eventfd) */
		sn_pool_wake(pool, dw);
	return r;
}

/* Publishes the message sn_msg_reserve() gave room for. */
static inline void sn_msg_commit(const struct sn_pool *pool,
				 struct sn_producer *p, __u32 len)
{
	if (!pool->varlen)
		sn_producer_commit(p, 1);
	else
		sn_producer_commit_len(p, SN_HDR + len);
}

/* The worker of @key: the hash partitioner inline (the common case on
 * the per-message path), the others through sn_partition(). */
static inline unsigned int sn_pool_pick(const struct sn_pool *pool,
					__u64 key, __u64 *cursor)
{
	if (pool->hash)
		return sn_reduce(sn__mix64(key), pool->n);
	return sn_partition(pool->part, key, cursor);
}

/* ---- configuration ---- */

SN_API void sn_pool_config_init(struct sn_pool_config *cfg)
{
	if (!cfg)
		return;
	memset(cfg, 0, sizeof(*cfg));
	cfg->backpressure = SN_BP_BLOCK;
	cfg->block_timeout_ns = SN_POOL_BLOCK_TIMEOUT_NS;
	cfg->drain_timeout_ns = SN_POOL_DRAIN_TIMEOUT_NS;
	cfg->max_sleep_ns = SN_WAIT_FOREVER;
}

static unsigned int sn_pow2_up(unsigned int x)
{
	unsigned int p = 1;

	while (p < x && p < (1U << 31))
		p <<= 1;
	return p;
}

/* The CPUs to pin to: the configured list or the allowed ones. */
static int sn_pool_cpus(struct sn_pool *pool)
{
	const struct sn_pool_config *cfg = &pool->cfg;
	cpu_set_t set;
	unsigned int i, k = 0;
	int cpu;

	if (cfg->cpus && cfg->ncpus) {
		pool->cpus = calloc(cfg->ncpus, sizeof(int));
		if (!pool->cpus)
			return -ENOMEM;
		for (i = 0; i < cfg->ncpus; i++) {
			if (cfg->cpus[i] < 0 || cfg->cpus[i] >= CPU_SETSIZE)
				return -EINVAL;
			pool->cpus[i] = cfg->cpus[i];
		}
		k = cfg->ncpus;
	} else {
		if (sched_getaffinity(0, sizeof(set), &set))
			return -errno;
		pool->cpus = calloc(CPU_SETSIZE, sizeof(int));
		if (!pool->cpus)
			return -ENOMEM;
		for (cpu = 0; cpu < CPU_SETSIZE; cpu++)
			if (CPU_ISSET(cpu, &set))
				pool->cpus[k++] = cpu;
		if (!k)
			return -EINVAL;
	}
	for (i = 0; i < pool->n; i++)
		pool->w[i]->cpu = pool->cpus[i % k];
	return 0;
}

/* ---- the worker ---- */

static void sn_pool_internal_done(struct sn_worker *w, struct sn_io *io,
				  int res, unsigned int flags)
{
	struct sn_pool_io *pio = (struct sn_pool_io *)io;

	(void)w;
	/* a multishot poll ends without F_MORE (or with an error): re-arm */
	if (res < 0 || !(flags & IORING_CQE_F_MORE))
		pio->armed = 0;
}

static int sn_is_internal(const struct sn_io *io)
{
	return io->done == sn_pool_internal_done;
}

/* Runs the callbacks of every completion there is. */
static void sn_worker_reap(struct sn_worker *w)
{
	struct io_uring_cqe *cqe;
	unsigned int k = 0;

	while (k++ < 4096 && !io_uring_peek_cqe(&w->ring, &cqe)) {
		struct sn_io *io = (struct sn_io *)(uintptr_t)cqe->user_data;
		int res = cqe->res;
		unsigned int flags = cqe->flags;

		io_uring_cqe_seen(&w->ring, cqe);
		if (!io)
			continue;
		if (sn_is_internal(io)) {
			io->done(w, io, res, flags);
			continue;
		}
		sn_count(&w->c.io_completions, 1);
		io->done(w, io, res, flags);
		if (!(flags & IORING_CQE_F_MORE)) {
			if (w->io_inflight)
				w->io_inflight--;
			/* after the callback: what it started is counted */
			sn_count(&w->c.io_done, 1);
		}
	}
}

static void sn_worker_submit(struct sn_worker *w)
{
	if (io_uring_sq_ready(&w->ring))
		io_uring_submit(&w->ring);
}

/* Envelopes for the @k messages of @c's @lane from @pos, in place. */
static void sn_worker_envs(struct sn_worker *w, const struct sn_consumer *c,
			   __u32 lane, __u32 pos, __u32 k,
			   struct sn_envelope *env)
{
	__u32 msg_size = w->pool->msg_size, j;

	for (j = 0; j < k; j++) {
		const unsigned char *slot = (const unsigned char *)
			(sn__cons_hdr(c, lane, pos + j) + 1);
		struct sn_msg_hdr h;

		memcpy(&h, slot, sizeof(h));
		env[j].key = h.key;
		env[j].source = h.source;
		env[j].len = h.len <= msg_size ? h.len : msg_size;
		env[j].payload = slot + sizeof(h);
	}
}

/*
 * Records: envelopes for the records of @c's @lane from @pos, at most @max
 * messages, read in place without taking them (sn__cons_var_at()), so that
 * a lane's records of one batch are released at once after the handler,
 * as fixed slots are. Padding records are passed over (released with the
 * rest); bad records (a length the ring's geometry refuses, or one the
 * pool's producers never write: shorter than the header, a payload above
 * max_msg) are dropped, counted in the channel's bad_records, and never
 * reach the handler. One lap at most: a garbled seq cannot keep us here.
 * Returns the slots read (padding and dropped records included: they must
 * go back too, a producer may wait for them), *@k the messages.
 */
static __u32 sn_lane_records(const struct sn_worker *w, struct sn_consumer *c,
			     __u32 lane, __u32 pos, __u32 max,
			     struct sn_envelope *env, __u32 *k)
{
	__u32 span, m, n, len;

	for (span = 0, m = 0; m < max && span <= c->mask; span += n) {
		const unsigned char *msg;
		struct sn_msg_hdr h;

		n = sn__cons_var_at(c, lane, pos + span, &len);
		if (!n)
			break;
		if (len == SN_SLOT_PAD)
			continue;
		if (len < SN_HDR || len > SN_SLOT_LEN ||
		    len - SN_HDR > w->pool->max_msg) {
			sn__cons_bad(c, lane);
			continue;
		}
		msg = (const unsigned char *)(sn__cons_hdr(c, lane, pos + span) +
					      1);
		memcpy(&h, msg, sizeof(h));
		env[m].key = h.key;
		env[m].source = h.source;
		env[m].len = len - SN_HDR;
		env[m].payload = msg + SN_HDR;
		m++;
	}
	*k = m;
	return span;
}

/*
 * Gathers up to batch messages from the inbound rings (round robin over
 * rings and lanes, FIFO per lane) into w->env, where they lie, and the
 * lanes' segments into w->seg. Returns how many; *@nseg the segments
 * (with records, some may hold padding only).
 */
static unsigned int sn_worker_gather(struct sn_worker *w, unsigned int *nseg)
{
	struct sn_pool *pool = w->pool;
	unsigned int got = 0, ns = 0, k, l;
	__u32 pos, lane, n, m;

	for (k = 0; k < w->nin && got < pool->batch; k++) {
		struct sn_consumer *c = w->in[w->next_in];

		w->next_in = w->next_in + 1 < w->nin ? w->next_in + 1 : 0;
		for (l = 0; l < c->lanes && got < pool->batch; l++) {
			lane = c->next_lane;
			c->next_lane = lane + 1 < c->lanes ? lane + 1 : 0;
			if (!pool->varlen) {
				n = sn__cons_take(c, lane, pool->batch - got,
						  &pos);
				if (n)
					sn_worker_envs(w, c, lane, pos, n,
						       w->env + got);
				m = n;
			} else {
				pos = c->head[lane];
				n = sn_lane_records(w, c, lane, pos,
						    pool->batch - got,
						    w->env + got, &m);
			}
			if (!n)
				continue;
			w->seg[ns].c = c;
			w->seg[ns].lane = lane;
			w->seg[ns].pos = pos;
			w->seg[ns].n = n;
			w->seg[ns].k = m;
			ns++;
			got += m;
		}
	}
	*nseg = ns;
	return got;
}

/*
 * One batch: gathers messages and hands them to the handler where they
 * lie: the slots are given back after it returned, so nothing is copied.
 * The pool's rings are in-process, written only by its own producers.
 * Returns how many messages.
 */
static unsigned int sn_worker_batch(struct sn_worker *w)
{
	struct sn_pool *pool = w->pool;
	unsigned int got, nseg, i, j;

	got = sn_worker_gather(w, &nseg);
	if (!nseg)
		return 0;
	if (got && pool->cfg.handle(w, w->state, w->env, got) < 0)
		sn_count(&w->c.handler_errors, 1);
	for (i = 0; i < nseg; i++) {
		struct sn_seg *sg = &w->seg[i];

		sn__cons_done(sg->c, sg->lane, sg->pos, sg->n);
		if (!pool->varlen) {
			sn__cons_count(sg->c, sg->n, 0);
			continue;
		}
		/* records: the ring's received count is stored per message
		 * (its head counts slots), so each one adds its own */
		for (j = 0; j < sg->k; j++)
			sn__cons_var_count(sg->c, sg->lane);
	}
	if (!got)
		return 0;	/* only padding or bad records went */
	sn_count(&w->c.batches, 1);
	/* after the handler: whatever it forwarded is counted already */
	sn_count(&w->c.handled, got);
	return got;
}

/*
 * Any inbound ring holds a message (SPSC/MPSC: our heads are the truth).
 * Records too: tails and heads count slots there, and a producer stores
 * the tail after the record's seq, so tail != head says a record (or a
 * padding record, which the batch must release) is committed at the head,
 * as sn__cons_committed() there would; the tail is what the producers'
 * [P1] orders against our announcement.
 */
static int sn_worker_ready(const struct sn_worker *w)
{
	unsigned int i, lane;

	for (i = 0; i < w->nin; i++) {
		const struct sn_consumer *c = w->in[i];

		for (lane = 0; lane < c->lanes; lane++) {
			const __u32 *tail_p = (const __u32 *)
				(sn__cons_lane(c, lane) + c->off_tail);

			if (sn__clamp_depth(__atomic_load_n(tail_p,
							    __ATOMIC_ACQUIRE),
					    c->head[lane], c->mask + 1))
				return 1;
		}
	}
	return 0;
}

static struct io_uring_sqe *sn_worker_get_sqe(struct sn_worker *w)
{
	struct io_uring_sqe *sqe = io_uring_get_sqe(&w->ring);

	if (!sqe) {
		io_uring_submit(&w->ring);
		sqe = io_uring_get_sqe(&w->ring);
	}
	return sqe;
}

/* Arms what the worker sleeps on: the eventfd read, and with the kernel
 * backend a multishot poll on each inbound ring's consumer fd. */
static void sn_worker_arm(struct sn_worker *w)
{
	struct io_uring_sqe *sqe;
	unsigned int i;

	if (!w->efd_io.armed && (sqe = sn_worker_get_sqe(w))) {
		io_uring_prep_read(sqe, w->efd, &w->efd_val,
				   sizeof(w->efd_val), 0);
		io_uring_sqe_set_data(sqe, &w->efd_io);
		w->efd_io.armed = 1;
	}
	if (!w->polls)
		return;
	for (i = 0; i < w->nin; i++) {
		if (w->polls[i].armed || !(sqe = sn_worker_get_sqe(w)))
			continue;
		io_uring_prep_poll_multishot(sqe, w->in[i]->fd, POLLIN);
		io_uring_sqe_set_data(sqe, &w->polls[i]);
		w->polls[i].armed = 1;
	}
}

/* The sleep: announce, the rings' heavy barrier, re-check, wait in
 * io_uring. */
static void sn_worker_sleep(struct sn_worker *w)
{
	struct sn_pool *pool = w->pool;
	struct io_uring_cqe *cqe;
	struct __kernel_timespec ts;
	unsigned int i;
	__u64 nap;
	int kernel = pool->backend == SN_BACKEND_KERNEL, hb;

	sn_worker_arm(w);
	if (kernel) {
		for (i = 0; i < w->nin; i++)
			__atomic_add_fetch(w->in[i]->waiters_p, 1,
					   __ATOMIC_SEQ_CST);
	} else {
		__atomic_store_n(&w->sleeping, 1, __ATOMIC_SEQ_CST);
	}
	/* [W1] pairs with [P1]. One H covers every ring
	 * (it is a barrier on every CPU): that of the first ASYM ring, a
	 * full barrier if none is. Without it we must not sleep. */
	for (i = 0; i < w->nin && w->in[i]->chan->fence != SN_FENCE_ASYM; i++)
		;
	hb = sn_heavy_barrier(i < w->nin ? w->in[i]->chan : NULL);
	/* work held for later (sn_worker_hold()) is retried from tick: a
	 * worker holding some sleeps SN_POOL_HELD_NS at most */
	nap = pool->cfg.max_sleep_ns;	/* SN_NO_WAIT never gets here */
	if (w->c.held != w->c.released && nap > SN_POOL_HELD_NS)
		nap = SN_POOL_HELD_NS;
	if (!hb && !sn_worker_ready(w) && !io_uring_cq_ready(&w->ring) &&
	    !__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE)) {
		sn_count(&w->c.idle_waits, 1);
		if (nap != SN_WAIT_FOREVER) {
			ts.tv_sec = (long long)(nap / 1000000000ULL);
			ts.tv_nsec = (long long)(nap % 1000000000ULL);
			io_uring_submit_and_wait_timeout(&w->ring, &cqe, 1,
							 &ts, NULL);
		} else {
			io_uring_submit_and_wait(&w->ring, 1);
		}
	} else {
		sn_worker_submit(w);
	}
	if (kernel) {
		for (i = 0; i < w->nin; i++)
			__atomic_sub_fetch(w->in[i]->waiters_p, 1,
					   __ATOMIC_RELEASE);
	} else {
		__atomic_store_n(&w->sleeping, 0, __ATOMIC_RELEASE);
	}
	sn_worker_reap(w);
}

static int sn_worker_setup(struct sn_worker *w)
{
	static const unsigned int flags[] = {
		IORING_SETUP_SINGLE_ISSUER | IORING_SETUP_COOP_TASKRUN |
		IORING_SETUP_TASKRUN_FLAG,
		IORING_SETUP_COOP_TASKRUN,
		0,
	};
	struct sn_pool *pool = w->pool;
	unsigned int i;
	int ret = -EINVAL;

	for (i = 0; i < sizeof(flags) / sizeof(flags[0]); i++) {
		ret = io_uring_queue_init(pool->entries, &w->ring, flags[i]);
		if (ret != -EINVAL)
			break;
	}
	if (ret)
		return ret;
	w->ring_ok = 1;
	if (pool->cfg.init) {
		ret = pool->cfg.init(w, pool->cfg.arg, &w->state);
		if (ret)
			return ret;
	} else if (pool->cfg.state_size) {
		/* its own block: a shared-nothing pool shares no default */
		if (posix_memalign(&w->state, SN_POOL_LINE,
				   pool->cfg.state_size))
			return -ENOMEM;
		memset(w->state, 0, pool->cfg.state_size);
		w->own_state = 1;
	}
	w->init_done = 1;
	return 0;
}

static void *sn_worker_main(void *arg)
{
	struct sn_worker *w = arg;
	struct sn_pool *pool = w->pool;
	unsigned int got, spins = 0;
	int ret;

	sn_self = w;
	ret = sn_worker_setup(w);
	pthread_mutex_lock(&pool->lock);
	if (ret && !pool->start_err)
		pool->start_err = ret;
	pool->ready++;
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	if (ret)
		goto out;

	/* done is checked on every iteration, busy or not: shutdown step 4
	 * must not wait for rings that callbacks keep filling */
	while (!__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE)) {
		got = sn_worker_batch(w);
		if (w->io_inflight || io_uring_cq_ready(&w->ring))
			sn_worker_reap(w);
		if (pool->cfg.tick)
			pool->cfg.tick(w, w->state);
		sn_count(&w->c.ticks, 1);
		sn_worker_submit(w);
		if (got) {
			spins = 0;
			continue;
		}
		if (++spins < SN_POOL_IDLE_SPINS) {
			sn_cpu_relax();
			continue;
		}
		/* max_sleep_ns SN_NO_WAIT: a polling worker, never asleep */
		if (spins < SN_POOL_IDLE_SPINS + SN_POOL_IDLE_YIELDS ||
		    pool->cfg.max_sleep_ns == SN_NO_WAIT) {
			sched_yield();
			continue;
		}
		spins = 0;
		sn_worker_sleep(w);
	}
	if (pool->cfg.fini)
		pool->cfg.fini(w, w->state);
out:
	if (w->ring_ok) {
		io_uring_queue_exit(&w->ring);
		w->ring_ok = 0;
	}
	sn_self = NULL;
	return NULL;
}

/* ---- pool life ---- */

static void sn_submitter_free(struct sn_pool *pool, struct sn_submitter *s)
{
	unsigned int i;

	for (i = 0; s->p && i < pool->n; i++)
		sn_producer_close(s->p[i]);
	free(s->p);
	free(s->cnt);
	free(s->room);
	free(s->used);
	free(s);
}

static void sn_pool_free(struct sn_pool *pool)
{
	unsigned int i, j, n = pool->n;

	for (i = 0; pool->subs && i < pool->lanes; i++)
		if (pool->subs[i])
			sn_submitter_free(pool, pool->subs[i]);
	for (i = 0; pool->w && i < n; i++) {
		struct sn_worker *w = pool->w[i];

		if (!w)
			continue;
		for (j = 0; w->in && j < w->nin; j++)
			sn_consumer_close(w->in[j]);
		for (j = 0; w->out && j < n; j++)
			sn_producer_close(w->out[j]);
		if (w->efd >= 0)
			close(w->efd);
		if (w->own_state)
			free(w->state);
		free(w->in);
		free(w->out);
		free(w->seg);
		free(w->env);
		free(w->polls);
		free(w);
	}
	for (i = 0; pool->mesh && i < n * n; i++)
		sn_channel_close(pool->mesh[i]);
	for (i = 0; pool->ingress && i < n; i++)
		sn_channel_close(pool->ingress[i]);
	free(pool->subs);
	free(pool->mesh);
	free(pool->ingress);
	free(pool->w);
	free(pool->cpus);
	sn_partitioner_destroy(pool->part);
	pthread_mutex_destroy(&pool->lock);
	pthread_cond_destroy(&pool->cond);
	free(pool);
}

static int sn_pool_channel(struct sn_pool *pool, struct sn_channel **out,
			   unsigned int type, unsigned int lanes)
{
	struct sn_channel_info info;
	int ret = sn_channel_create(out, SN_CHANNEL_OPTS(
		.type = type,
		.slots = pool->slots,
		.slot_size = pool->slot_size,
		.lanes = lanes,
		.flags = (unsigned int)pool->backend |
			 (pool->varlen ? SN_CHANNEL_VARLEN : 0)));

	if (!ret && !pool->backend)
		pool->backend = sn_channel_backend(*out);
	/* records: the lanes were sized for the longest message; the ring's
	 * own word is the one that counts (a send never sees -EMSGSIZE) */
	if (!ret && pool->varlen &&
	    (sn_channel_info(*out, &info) ||
	     info.max_msg < SN_HDR + pool->max_msg))
		ret = -EINVAL;
	return ret;
}

static int sn_pool_build(struct sn_pool *pool)
{
	unsigned int i, j, n = pool->n;
	int ret;

	pool->w = calloc(n, sizeof(*pool->w));
	pool->mesh = calloc((size_t)n * n, sizeof(*pool->mesh));
	pool->ingress = calloc(n, sizeof(*pool->ingress));
	if (!pool->w || !pool->mesh || !pool->ingress)
		return -ENOMEM;
	for (i = 0; i < n; i++) {
		struct sn_worker *w;

		if (posix_memalign((void **)&w, SN_POOL_LINE, sizeof(*w)))
			return -ENOMEM;
		memset(w, 0, sizeof(*w));
		pool->w[i] = w;
		w->pool = pool;
		w->id = i;
		w->cpu = -1;
		w->nin = n + 1;
		w->efd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
		if (w->efd < 0)
			return -errno;
		w->efd_io.io.done = sn_pool_internal_done;
		w->efd_io.w = w;
		w->in = calloc(w->nin, sizeof(*w->in));
		w->out = calloc(n, sizeof(*w->out));
		/* records: a lane may also give padding only, so up to a
		 * segment per inbound lane besides */
		w->seg = calloc(pool->batch + (pool->varlen ?
					       n + pool->lanes : 0),
				sizeof(*w->seg));
		w->env = calloc(pool->batch, sizeof(*w->env));
		if (!w->in || !w->out || !w->seg || !w->env)
			return -ENOMEM;
	}
	for (i = 0; i < n; i++) {
		for (j = 0; j < n; j++) {
			struct sn_channel **ch = &pool->mesh[i * n + j];

			ret = sn_pool_channel(pool, ch, SN_RING_SPSC, 1);
			if (!ret)
				ret = sn_producer_open(*ch, &pool->w[i]->out[j]);
			if (!ret)
				ret = sn_consumer_open(*ch, &pool->w[j]->in[i]);
			if (ret)
				return ret;
		}
		ret = sn_pool_channel(pool, &pool->ingress[i], SN_RING_MPSC,
				      pool->lanes);
		if (!ret)
			ret = sn_consumer_open(pool->ingress[i],
					       &pool->w[i]->in[n]);
		if (ret)
			return ret;
	}
	/* the submitter slots, each with its lanes for the pool's life */
	pool->subs = calloc(pool->lanes, sizeof(*pool->subs));
	if (!pool->subs)
		return -ENOMEM;
	for (i = 0; i < pool->lanes; i++) {
		struct sn_submitter *s;

		if (posix_memalign((void **)&s, SN_POOL_LINE, sizeof(*s)))
			return -ENOMEM;
		memset(s, 0, sizeof(*s));
		pool->subs[i] = s;
		s->pool = pool;
		s->p = calloc(n, sizeof(*s->p));
		s->cnt = calloc(n, sizeof(*s->cnt));
		s->room = calloc(n, sizeof(*s->room));
		s->used = calloc(n, sizeof(*s->used));
		if (!s->p || !s->cnt || !s->room || !s->used)
			return -ENOMEM;
		for (j = 0; j < n; j++) {
			ret = sn_producer_open(pool->ingress[j], &s->p[j]);
			if (ret)
				return ret;
		}
	}
	if (pool->backend == SN_BACKEND_KERNEL) {
		for (i = 0; i < n; i++) {
			struct sn_worker *w = pool->w[i];

			w->polls = calloc(w->nin, sizeof(*w->polls));
			if (!w->polls)
				return -ENOMEM;
			for (j = 0; j < w->nin; j++) {
				w->polls[j].io.done = sn_pool_internal_done;
				w->polls[j].w = w;
			}
		}
	}
	if (pool->cfg.affinity)
		return sn_pool_cpus(pool);
	return 0;
}

static void sn_pool_kick_all(struct sn_pool *pool)
{
	unsigned int i;

	for (i = 0; i < pool->n; i++)
		if (pool->w[i]->started)
			sn_efd_kick(pool->w[i]->efd);
}

static void sn_pool_join(struct sn_pool *pool)
{
	unsigned int i;

	__atomic_store_n(&pool->done, 1, __ATOMIC_SEQ_CST);
	sn_pool_kick_all(pool);
	for (i = 0; i < pool->n; i++) {
		if (!pool->w[i]->started)
			continue;
		pthread_join(pool->w[i]->thread, NULL);
		pool->w[i]->started = 0;
	}
}

static int sn_pool_start(struct sn_pool *pool)
{
	pthread_attr_t attr;
	cpu_set_t set;
	unsigned int i, started = 0;
	int ret = 0;

	for (i = 0; i < pool->n && !ret; i++) {
		struct sn_worker *w = pool->w[i];

		pthread_attr_init(&attr);
		if (w->cpu >= 0) {
			CPU_ZERO(&set);
			CPU_SET(w->cpu, &set);
			ret = -pthread_attr_setaffinity_np(&attr, sizeof(set),
							   &set);
		}
		if (!ret)
			ret = -pthread_create(&w->thread, &attr,
					      sn_worker_main, w);
		pthread_attr_destroy(&attr);
		if (!ret) {
			w->started = 1;
			started++;
		}
	}
	pthread_mutex_lock(&pool->lock);
	while (pool->ready < started)
		pthread_cond_wait(&pool->cond, &pool->lock);
	if (!ret)
		ret = pool->start_err;
	pthread_mutex_unlock(&pool->lock);
	return ret;
}

/*
 * The longest payload, and with records (@max above msg_size) lanes that
 * hold at least one such message: its record (header included) and the
 * terminator slot, sn_record_max(). A msg_size message takes one slot:
 * slot_size holds it with its header, and a record's stride is at least
 * that plus the slot header. -EINVAL when @max is below msg_size or no
 * lane of SN_CHANNEL_MAX_SLOTS can hold it.
 */
static int sn_pool_records(struct sn_pool *pool, unsigned int max)
{
	__u32 shift;
	__u64 need;

	pool->max_msg = max ? max : pool->msg_size;
	if (pool->max_msg < pool->msg_size ||
	    pool->max_msg > SN_SLOT_LEN - SN_HDR)
		return -EINVAL;
	pool->varlen = pool->max_msg > pool->msg_size;
	if (!pool->varlen)
		return 0;
	shift = sn_log2(sn_var_stride(pool->slot_size));
	need = sn_record_slots(SN_HDR + pool->max_msg, shift) + 1;
	if (need > SN_CHANNEL_MAX_SLOTS)
		return -EINVAL;
	if (pool->slots < need)
		pool->slots = sn_pow2_up((unsigned int)need);
	return 0;
}

SN_API int sn_pool_create(struct sn_pool **out, const struct sn_pool_config *cfg)
{
	struct sn_pool *pool;
	long online;
	int ret;

	if (!out || !cfg || !cfg->handle ||
	    cfg->backpressure > SN_BP_BLOCK || cfg->max_submitters > 64 ||
	    /* a backend, not other channel flags: records are the pool's
	     * to choose (max_msg_size) */
	    (cfg->backend & ~SN_POOL_BACKENDS) ||
	    cfg->backend == SN_POOL_BACKENDS ||
	    cfg->msg_size > SN_CHANNEL_MAX_SLOT_SIZE - 64 ||
	    cfg->queue_capacity > SN_CHANNEL_MAX_SLOTS ||
	    cfg->workers > SN_POOL_MAX_WORKERS || cfg->batch > 65536 ||
	    (cfg->affinity && cfg->cpus && !cfg->ncpus))
		return -EINVAL;
	pool = calloc(1, sizeof(*pool));
	if (!pool)
		return -ENOMEM;
	pool->cfg = *cfg;
	pool->cfg.cpus = NULL;
	pthread_mutex_init(&pool->lock, NULL);
	pthread_cond_init(&pool->cond, NULL);
	online = sysconf(_SC_NPROCESSORS_ONLN);
	pool->n = cfg->workers ? cfg->workers :
		  (unsigned int)(online > 0 ? (online < SN_POOL_MAX_WORKERS ?
					       online : SN_POOL_MAX_WORKERS) : 1);
	pool->msg_size = cfg->msg_size ? cfg->msg_size : 48;
	pool->slot_size = (unsigned int)sn_align_up(sizeof(struct sn_msg_hdr) +
						    pool->msg_size, 8);
	pool->slots = sn_pow2_up(cfg->queue_capacity ? cfg->queue_capacity :
				 1024);
	pool->batch = cfg->batch ? cfg->batch : 32;
	pool->lanes = cfg->max_submitters ? cfg->max_submitters : 8;
	pool->entries = sn_pow2_up(cfg->uring_entries ? cfg->uring_entries : 64);
	while (pool->entries < 2 * (pool->n + 2) && pool->entries < 4096)
		pool->entries <<= 1;
	pool->backend = (int)cfg->backend;
	ret = sn_pool_records(pool, cfg->max_msg_size);
	if (!ret)
		ret = sn_partitioner_create(&pool->part, &cfg->partitioner,
					    pool->n);
	pool->hash = cfg->partitioner.kind == SN_PART_HASH;
	if (!ret) {
		if (cfg->affinity && cfg->cpus)
			pool->cfg.cpus = cfg->cpus;	/* for sn_pool_cpus */
		ret = sn_pool_build(pool);
		pool->cfg.cpus = NULL;
		pool->cfg.ncpus = 0;
	}
	if (!ret)
		ret = sn_pool_start(pool);
	if (ret) {
		if (pool->w)
			sn_pool_join(pool);
		sn_pool_free(pool);
		return ret;
	}
	*out = pool;
	return 0;
}

/* Sums of the "done" and the "started" counters (see the top). */
static __u64 sn_pool_done_sum(const struct sn_pool *pool)
{
	__u64 s = 0;
	unsigned int i;

	for (i = 0; i < pool->n; i++)
		s += sn_load(&pool->w[i]->c.handled) +
		     sn_load(&pool->w[i]->c.io_done) +
		     sn_load(&pool->w[i]->c.released);
	return s;
}

static __u64 sn_pool_submitted(const struct sn_pool *pool)
{
	__u64 sum = 0;
	unsigned int i;

	for (i = 0; i < pool->lanes; i++)
		sum += sn_load(&pool->subs[i]->submitted);
	return sum;
}

static __u64 sn_pool_started_sum(const struct sn_pool *pool)
{
	__u64 sum = sn_pool_submitted(pool);
	unsigned int i;

	for (i = 0; i < pool->n; i++)
		sum += sn_load(&pool->w[i]->c.forwarded) +
		       sn_load(&pool->w[i]->c.io_started) +
		       sn_load(&pool->w[i]->c.held);
	return sum;
}

/* Quiescent (see the top); *@done gets the done sum read. */
static int sn_pool_quiet(const struct sn_pool *pool, __u64 *done)
{
	*done = sn_pool_done_sum(pool);
	return *done == sn_pool_started_sum(pool);
}

/*
 * What was in the pool when intake stopped (step 2): each inbound lane's
 * tail then (rings are FIFO, and a worker moves a lane's head past a
 * message only after its handler returned: once the head passed that
 * tail, those messages were handled), and each worker's held and I/O
 * counts.
 */
struct sn_lane_mark {
	const __u32 *tail_p, *head_p;
	__u32 tail;
};

struct sn_pool_marks {
	struct sn_lane_mark *lane;
	unsigned int nlanes;
	__u64 *held, *io;		/* n */
};

static void sn_pool_marks_free(struct sn_pool_marks *m)
{
	free(m->lane);
	free(m->held);
	free(m->io);
}

static int sn_pool_marks_take(const struct sn_pool *pool,
			      struct sn_pool_marks *m)
{
	unsigned int i, k, l, max = 0;

	for (i = 0; i < pool->n; i++)
		for (k = 0; k < pool->w[i]->nin; k++)
			max += pool->w[i]->in[k]->lanes;
	memset(m, 0, sizeof(*m));
	m->lane = calloc(max, sizeof(*m->lane));
	m->held = calloc(pool->n, sizeof(*m->held));
	m->io = calloc(pool->n, sizeof(*m->io));
	if (!m->lane || !m->held || !m->io) {
		sn_pool_marks_free(m);
		return -ENOMEM;
	}
	for (i = 0; i < pool->n; i++) {
		const struct sn_worker *w = pool->w[i];

		for (k = 0; k < w->nin; k++) {
			const struct sn_consumer *c = w->in[k];

			for (l = 0; l < c->lanes; l++) {
				struct sn_lane_mark *lm = &m->lane[m->nlanes++];

				lm->tail_p = (const __u32 *)
					(sn__cons_lane(c, l) + c->off_tail);
				lm->head_p = sn__cons_head_p(c, l);
				lm->tail = __atomic_load_n(lm->tail_p,
							   __ATOMIC_ACQUIRE);
			}
		}
		m->held[i] = sn_load(&w->c.held);
		m->io[i] = sn_load(&w->c.io_started);
	}
	return 0;
}

/* Everything marked is done (taken, released, completed). */
static int sn_pool_marks_done(const struct sn_pool *pool,
			      const struct sn_pool_marks *m)
{
	unsigned int i;

	for (i = 0; i < m->nlanes; i++)
		if ((__s32)(__atomic_load_n(m->lane[i].head_p,
					    __ATOMIC_ACQUIRE) -
			    m->lane[i].tail) < 0)
			return 0;
	for (i = 0; i < pool->n; i++)
		if (sn_load(&pool->w[i]->c.released) < m->held[i] ||
		    sn_load(&pool->w[i]->c.io_done) < m->io[i])
			return 0;
	return 1;
}

/* Steps 1 to 4 of pool.h; no lock held (callbacks may call anything). */
static void sn_pool_stop(struct sn_pool *pool)
{
	__u64 start, done, deadline, msgs, handled = 0;
	struct sn_pool_marks marks;
	unsigned int i;
	int marked;

	/* 1. stop intake: a submitter announces itself (active, seq_cst),
	 * then checks closing (seq_cst); we set closing, then wait out every
	 * announced submission (a Dekker pair: one sees the other) */
	__atomic_store_n(&pool->closing, 1, __ATOMIC_SEQ_CST);
	/* after closing: a callback that sees stopping sees intake closed */
	__atomic_store_n(&pool->stopping, 1, __ATOMIC_SEQ_CST);
	for (i = 0; i < pool->lanes; i++)
		while (__atomic_load_n(&pool->subs[i]->active, __ATOMIC_SEQ_CST))
			sched_yield();
	sn_pool_kick_all(pool);	/* ticks see sn_worker_stopping() */
	/* 2. what is in the pool now (the workers make progress as long
	 * as callbacks return); without memory for the marks, until the
	 * done count at least reaches the started count of now */
	start = sn_pool_started_sum(pool);
	marked = !sn_pool_marks_take(pool, &marks);
	while (!sn_pool_quiet(pool, &done) &&
	       (marked ? !sn_pool_marks_done(pool, &marks) : done < start))
		sn_pool_nap();
	if (marked)
		sn_pool_marks_free(&marks);
	/* 3. what callbacks produced since: a bounded while */
	deadline = sn_deadline(pool->cfg.drain_timeout_ns);
	while (!sn_pool_quiet(pool, &done) && sn_now_ns() < deadline)
		sn_pool_nap();
	/* 4. stop and join; what is left in the rings is dropped */
	sn_pool_join(pool);
	msgs = sn_pool_submitted(pool);
	for (i = 0; i < pool->n; i++) {
		msgs += sn_load(&pool->w[i]->c.forwarded);
		handled += sn_load(&pool->w[i]->c.handled);
	}
	__atomic_store_n(&pool->dropped, msgs > handled ? msgs - handled : 0,
			 __ATOMIC_RELEASE);
}

SN_API int sn_pool_shutdown(struct sn_pool *pool)
{
	int first;

	if (!pool)
		return -EINVAL;
	if (sn_on_worker(pool))
		return -EDEADLK;
	/* the lock only decides who stops the pool; others wait for it */
	pthread_mutex_lock(&pool->lock);
	/* atomic: sn_pool_stats() reads it without the lock */
	first = __atomic_load_n(&pool->shut, __ATOMIC_RELAXED) ==
		SN_POOL_RUNNING;
	if (first)
		__atomic_store_n(&pool->shut, SN_POOL_STOPPING,
				 __ATOMIC_RELAXED);
	while (!first && __atomic_load_n(&pool->shut, __ATOMIC_RELAXED) !=
	       SN_POOL_SHUT)
		pthread_cond_wait(&pool->cond, &pool->lock);
	pthread_mutex_unlock(&pool->lock);
	if (!first)
		return 0;
	sn_pool_stop(pool);
	pthread_mutex_lock(&pool->lock);
	__atomic_store_n(&pool->shut, SN_POOL_SHUT, __ATOMIC_RELEASE);
	pthread_cond_broadcast(&pool->cond);
	pthread_mutex_unlock(&pool->lock);
	return 0;
}

SN_API int sn_pool_destroy(struct sn_pool *pool)
{
	unsigned int i;
	int ret;

	if (!pool)
		return 0;
	if (sn_on_worker(pool))
		return -EDEADLK;
	for (i = 0; i < pool->lanes; i++)
		if (__atomic_load_n(&pool->subs[i]->state, __ATOMIC_ACQUIRE))
			return -EBUSY;
	ret = sn_pool_shutdown(pool);
	if (ret)
		return ret;
	sn_pool_free(pool);
	return 0;
}

SN_API unsigned int sn_pool_workers(const struct sn_pool *pool)
{
	return pool ? pool->n : 0;
}

SN_API int sn_pool_backend(const struct sn_pool *pool)
{
	return pool ? pool->backend : -EINVAL;
}

SN_API int sn_pool_worker_cpu(const struct sn_pool *pool, unsigned int i)
{
	if (!pool || i >= pool->n)
		return -EINVAL;
	return pool->w[i]->cpu;
}

SN_API int sn_pool_route(const struct sn_pool *pool, __u64 key)
{
	if (!pool || pool->cfg.partitioner.kind == SN_PART_ROUND_ROBIN)
		return -EINVAL;
	return (int)sn_partition(pool->part, key, NULL);
}

static int sn_pool_is_shut(const struct sn_pool *pool)
{
	return __atomic_load_n(&pool->shut, __ATOMIC_ACQUIRE) == SN_POOL_SHUT;
}

SN_API int sn_pool_stats(const struct sn_pool *pool, struct sn_pool_stats *st)
{
	unsigned int i;

	if (!pool || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	for (i = 0; i < pool->lanes; i++) {
		st->submitted += sn_load(&pool->subs[i]->submitted);
		st->rejected += sn_load(&pool->subs[i]->rejected);
	}
	for (i = 0; i < pool->n; i++) {
		const struct sn_worker_counts *c = &pool->w[i]->c;

		st->forwarded += sn_load(&c->forwarded);
		st->forward_rejected += sn_load(&c->forward_rejected);
		st->handled += sn_load(&c->handled);
		st->io_completions += sn_load(&c->io_completions);
	}
	if (sn_pool_is_shut(pool))
		st->dropped = sn_load(&pool->dropped);
	return 0;
}

SN_API int sn_pool_worker_stats(const struct sn_pool *pool, unsigned int i,
				struct sn_worker_stats *st)
{
	const struct sn_worker *w;
	struct sn_channel_stats cs;
	unsigned int j;

	if (!pool || !st || i >= pool->n)
		return -EINVAL;
	w = pool->w[i];
	memset(st, 0, sizeof(*st));
	st->handled = sn_load(&w->c.handled);
	st->batches = sn_load(&w->c.batches);
	st->idle_waits = sn_load(&w->c.idle_waits);
	st->ticks = sn_load(&w->c.ticks);
	st->forwarded = sn_load(&w->c.forwarded);
	st->io_completions = sn_load(&w->c.io_completions);
	st->handler_errors = sn_load(&w->c.handler_errors);
	st->cpu = w->cpu;
	for (j = 0; j < pool->n; j++)
		if (!sn_channel_stats(pool->mesh[j * pool->n + i], &cs))
			st->depth += cs.depth;
	if (!sn_channel_stats(pool->ingress[i], &cs))
		st->depth += cs.depth;
	return 0;
}

SN_API void *sn_pool_worker_state(const struct sn_pool *pool, unsigned int i)
{
	/* after the join: the worker's writes happen before it */
	if (!pool || i >= pool->n || !sn_pool_is_shut(pool))
		return NULL;
	return pool->w[i]->state;
}

/* ---- submitters ---- */

/* Every lane of @s was read by its worker: no message of it is queued. */
static int sn_submitter_drained(const struct sn_submitter *s)
{
	const struct sn_pool *pool = s->pool;
	unsigned int i;

	for (i = 0; i < pool->n; i++) {
		const struct sn_producer *p = s->p[i];
		const struct sn_consumer *c = pool->w[i]->in[pool->n];

		if (__atomic_load_n(p->tail_p, __ATOMIC_ACQUIRE) !=
		    __atomic_load_n(sn__cons_head_p(c, p->lane),
				    __ATOMIC_ACQUIRE))
			return 0;
	}
	return 1;
}

static int sn_submitter_claim(struct sn_submitter *s)
{
	__u32 free_state = 0;

	/* acquire: the last holder's producer fields are ours now */
	return __atomic_compare_exchange_n(&s->state, &free_state, 1, 0,
					   __ATOMIC_ACQ_REL, __ATOMIC_RELAXED);
}

/*
 * Claims a slot for thread @me: its own first (it continues its lanes),
 * then one that is drained or was never used. 0 with *@out set, -EUSERS
 * when none is free, -EAGAIN when the free ones still hold messages of
 * the threads that closed them.
 */
static int sn_submitter_pick(struct sn_pool *pool, uintptr_t me,
			     struct sn_submitter **out)
{
	unsigned int i, pass;
	int any = 0;

	for (pass = 0; pass < 2; pass++)
		for (i = 0; i < pool->lanes; i++) {
			struct sn_submitter *s = pool->subs[i];
			uintptr_t owner;

			if (__atomic_load_n(&s->state, __ATOMIC_ACQUIRE))
				continue;
			any = 1;
			owner = __atomic_load_n(&s->owner, __ATOMIC_ACQUIRE);
			if (pass == 0 ? owner != me :
			    owner && !sn_submitter_drained(s))
				continue;
			if (sn_submitter_claim(s)) {
				*out = s;
				return 0;
			}
		}
	return any ? -EAGAIN : -EUSERS;
}

SN_API int sn_submitter_open(struct sn_pool *pool, struct sn_submitter **out)
{
	uintptr_t me = (uintptr_t)&sn_thread_tag;
	__u64 deadline = 0;
	int ret, wait;

	if (!pool || !out)
		return -EINVAL;
	/* waits only as a submit would (backpressure), never on a worker */
	wait = pool->cfg.backpressure == SN_BP_BLOCK &&
	       pool->cfg.block_timeout_ns && !sn_on_worker(pool);
	for (;;) {
		if (__atomic_load_n(&pool->closing, __ATOMIC_ACQUIRE))
			return -ESHUTDOWN;
		ret = sn_submitter_pick(pool, me, out);
		if (ret != -EAGAIN)
			break;
		if (!deadline)
			deadline = sn_deadline(pool->cfg.block_timeout_ns);
		if (!wait || sn_now_ns() >= deadline)
			return -EUSERS;
		sn_pool_nap();
	}
	if (ret)
		return ret;
	__atomic_store_n(&(*out)->owner, me, __ATOMIC_RELEASE);
	return 0;
}

SN_API int sn_submitter_close(struct sn_submitter *s)
{
	if (!s)
		return 0;
	/* release: hands the producer fields to the next holder; the lanes
	 * stay the owner's while they hold its messages (pick) */
	__atomic_store_n(&s->state, 0, __ATOMIC_RELEASE);
	return 0;
}

/* Announces a submission, then checks intake (see sn_pool_stop). */
static int sn_submit_begin(struct sn_submitter *s)
{
	__atomic_store_n(&s->active, 1, __ATOMIC_SEQ_CST);
	if (__atomic_load_n(&s->pool->closing, __ATOMIC_SEQ_CST))
		return -ESHUTDOWN;
	return 0;
}

static int sn_submit_end(struct sn_submitter *s, __u64 rejected, int ret)
{
	if (rejected)
		sn_count(&s->rejected, rejected);
	__atomic_store_n(&s->active, 0, __ATOMIC_RELEASE);
	return ret;
}

/*
 * @p is full: waits for room as backpressure says, in slices that re-check
 * intake. 0: try again; else why the message is refused.
 */
static int sn_submit_wait(struct sn_submitter *s, struct sn_producer *p,
			  __u64 *deadline)
{
	struct sn_pool *pool = s->pool;
	__u64 now, slice;
	int r;

	if (s->nowait)		/* sn_try_submit(): a gone worker is final */
		return sn__prod_orphaned(p) ? -EPIPE : -EAGAIN;
	if (pool->cfg.backpressure != SN_BP_BLOCK ||
	    !pool->cfg.block_timeout_ns || sn_on_worker(pool))
		return -EAGAIN;
	if (!*deadline)
		*deadline = sn_deadline(pool->cfg.block_timeout_ns);
	now = sn_now_ns();
	if (now >= *deadline)
		return -ETIMEDOUT;
	if (__atomic_load_n(&pool->closing, __ATOMIC_ACQUIRE))
		return -ESHUTDOWN;
	slice = *deadline - now < SN_POOL_WAIT_SLICE ? *deadline - now :
		SN_POOL_WAIT_SLICE;
	r = sn_producer_wait(p, slice);
	if (r < 0 && r != -EINTR && r != -ETIMEDOUT)
		return r;
	return 0;
}

/*
 * Sends one message to @worker's lane, waiting for room as backpressure
 * says: 0, or why it was refused. Between sn_submit_begin() and
 * sn_submit_end().
 */
static int sn_submit_one(struct sn_submitter *s, unsigned int worker,
			 __u64 key, const void *payload, __u32 len)
{
	struct sn_pool *pool = s->pool;
	struct sn_producer *p = s->p[worker];
	unsigned char *slot;
	__u64 deadline = 0;
	int ret;

	while (sn_msg_reserve(pool, p, pool->w[worker], len, &slot) < 0) {
		ret = sn_submit_wait(s, p, &deadline);
		if (ret)
			return ret;
	}
	sn_fill_at(slot, key, SN_SOURCE_EXTERNAL, payload, len);
	/* counted before it is published (see the top) */
	sn_count(&s->submitted, 1);
	sn_msg_commit(pool, p, len);
	sn_pool_wake(pool, pool->w[worker]);
	return 0;
}

SN_API int sn_submit_to(struct sn_submitter *s, unsigned int worker,
			__u64 key, const void *payload, __u32 len)
{
	int ret;

	if (!s || worker >= s->pool->n || len > s->pool->max_msg ||
	    (len && !payload))
		return -EINVAL;
	ret = sn_submit_begin(s);
	if (!ret)
		ret = sn_submit_one(s, worker, key, payload, len);
	return sn_submit_end(s, !!ret, ret);
}

SN_API int sn_submit(struct sn_submitter *s, __u64 key, const void *payload,
		     __u32 len)
{
	if (!s)
		return -EINVAL;
	return sn_submit_to(s, sn_pool_pick(s->pool, key, &s->rr), key,
			    payload, len);
}

SN_API int sn_try_submit(struct sn_submitter *s, __u64 key,
			 const void *payload, __u32 len)
{
	unsigned int worker;
	int ret;

	if (!s || len > s->pool->max_msg || (len && !payload))
		return -EINVAL;
	worker = sn_pool_pick(s->pool, key, &s->rr);
	ret = sn_submit_begin(s);
	if (!ret) {
		s->nowait = 1;
		ret = sn_submit_one(s, worker, key, payload, len);
		s->nowait = 0;
	}
	/* a full lane is the caller's to retry, not a refusal */
	return sn_submit_end(s, ret && ret != -EAGAIN, ret);
}

/*
 * The room of @p's lane (@refresh: re-read from the ring), none when its
 * worker's consumer has gone: the wait then says why (-EPIPE).
 */
static __u32 sn_lane_room(struct sn_producer *p, int refresh)
{
	if (sn__prod_orphaned(p))
		return 0;
	return refresh ? sn__prod_refill(p) : sn__prod_room(p);
}

/*
 * How many of the @k routed messages fit, from the front, in the room of
 * their lanes; s->cnt[] gets the count per destination (listed in
 * s->used[0..*nused)).
 */
static unsigned int sn_batch_fit(struct sn_submitter *s, const __u16 *dst,
				 unsigned int k, unsigned int *nused)
{
	unsigned int j, nu = 0;

	for (j = 0; j < k; j++) {
		unsigned int d = dst[j];
		struct sn_producer *p = s->p[d];

		if (!s->cnt[d]) {
			s->used[nu++] = d;
			s->room[d] = sn_lane_room(p, 0);
		}
		if (s->cnt[d] == s->room[d]) {
			s->room[d] = sn_lane_room(p, 1);
			if (s->cnt[d] >= s->room[d])
				break;
		}
		s->cnt[d]++;
	}
	*nused = nu;
	return j;
}

/*
 * One pass for the common case: counts the @k routed messages per lane
 * and returns k when each lane has room for its count; else 0 with the
 * counts cleared (sn_batch_fit() then takes the prefix that fits).
 */
static unsigned int sn_batch_fit_all(struct sn_submitter *s,
				     const __u16 *dst, unsigned int k,
				     unsigned int *nused)
{
	unsigned int j, nu = 0, ok = 1;

	for (j = 0; j < k; j++)
		if (!s->cnt[dst[j]]++)
			s->used[nu++] = dst[j];
	for (j = 0; j < nu; j++) {
		unsigned int d = s->used[j];
		struct sn_producer *p = s->p[d];

		if (s->cnt[d] > sn_lane_room(p, 0) &&
		    s->cnt[d] > sn_lane_room(p, 1))
			ok = 0;
	}
	if (!ok) {
		for (j = 0; j < nu; j++)
			s->cnt[s->used[j]] = 0;
		return 0;
	}
	*nused = nu;
	return k;
}

/* Writes the first @k routed messages and publishes each lane once. */
static void sn_batch_send(struct sn_submitter *s, const struct sn_pool_msg *m,
			  const __u16 *dst, unsigned int k, unsigned int nused)
{
	struct sn_pool *pool = s->pool;
	unsigned int j;
	__u32 pos = 0;

	if (nused == 1) {
		/* one lane (one worker, or key-affine batches): the position
		 * in a register, not through s->room[] */
		unsigned int d = s->used[0];
		struct sn_producer *p = s->p[d];

		if (sn_producer_reserve(p, k, &pos) <= 0)
			return;	/* not reached: room was checked */
		for (j = 0; j < k; j++)
			sn_fill(p, pos + j, m[j].key, SN_SOURCE_EXTERNAL,
				m[j].payload, m[j].len);
		sn_count(&s->submitted, k);
		sn_producer_commit(p, k);
		sn_pool_wake(pool, pool->w[d]);
		s->cnt[d] = 0;
		return;
	}
	for (j = 0; j < nused; j++) {
		unsigned int d = s->used[j];

		/* room was checked: this takes exactly cnt[d] */
		if (s->cnt[d] && sn_producer_reserve(s->p[d], s->cnt[d], &pos) > 0)
			s->room[d] = pos;	/* the next position to fill */
	}
	for (j = 0; j < k; j++) {
		unsigned int d = dst[j];

		sn_fill(s->p[d], s->room[d]++, m[j].key, SN_SOURCE_EXTERNAL,
			m[j].payload, m[j].len);
	}
	sn_count(&s->submitted, k);
	for (j = 0; j < nused; j++) {
		unsigned int d = s->used[j];

		if (s->cnt[d]) {
			sn_producer_commit(s->p[d], s->cnt[d]);
			sn_pool_wake(pool, pool->w[d]);
		}
		s->cnt[d] = 0;
	}
}

/*
 * Records: sn_submit_batch()'s prefix, one message at a time, each
 * reserved and committed on its own (sn_producer_reserve_len() takes one record a
 * time: a lane's records of a chunk cannot be reserved together as slots
 * are). Returns how many were taken; *@ret why the next one was refused,
 * *@bad 1 when it has a bad length.
 */
static unsigned int sn_batch_records(struct sn_submitter *s,
				     const struct sn_pool_msg *msgs,
				     unsigned int n, int *ret, int *bad)
{
	struct sn_pool *pool = s->pool;
	unsigned int done;

	for (done = 0; done < n; done++) {
		const struct sn_pool_msg *m = msgs + done;

		if (m->len > pool->max_msg || (m->len && !m->payload)) {
			*bad = 1;
			break;
		}
		*ret = sn_submit_one(s, sn_pool_pick(pool, m->key, &s->rr),
				     m->key, m->payload, m->len);
		if (*ret)
			break;
	}
	return done;
}

SN_API int sn_submit_batch(struct sn_submitter *s,
			   const struct sn_pool_msg *msgs, unsigned int n)
{
	__u16 dst[SN_POOL_CHUNK];
	struct sn_pool *pool;
	unsigned int done = 0, k, j, fit, nused;
	__u64 deadline = 0;
	int ret, bad = 0;

	if (!s || (n && !msgs))
		return -EINVAL;
	if (!n)
		return 0;
	pool = s->pool;
	ret = sn_submit_begin(s);
	if (!ret && pool->varlen)
		done = sn_batch_records(s, msgs, n, &ret, &bad);
	while (!ret && done < n && !bad) {
		const struct sn_pool_msg *m = msgs + done;

		k = n - done < SN_POOL_CHUNK ? n - done : SN_POOL_CHUNK;
		for (j = 0; j < k; j++) {
			if (m[j].len > pool->max_msg ||
			    (m[j].len && !m[j].payload)) {
				bad = 1;
				break;
			}
			dst[j] = (__u16)sn_pool_pick(pool, m[j].key, &s->rr);
		}
		k = j;
		/* the common case: every lane has room for its share */
		fit = sn_batch_fit_all(s, dst, k, &nused);
		if (fit) {
			sn_batch_send(s, m, dst, fit, nused);
			done += fit;
			continue;
		}
		/* else the chunk as room allows, waiting as sn_submit() */
		for (j = 0; j < k && !ret;) {
			fit = sn_batch_fit(s, dst + j, k - j, &nused);
			if (fit) {
				sn_batch_send(s, m + j, dst + j, fit, nused);
				j += fit;
				done += fit;
				deadline = 0;
				continue;
			}
			for (fit = 0; fit < nused; fit++)
				s->cnt[s->used[fit]] = 0;
			ret = sn_submit_wait(s, s->p[dst[j]], &deadline);
		}
	}
	if (ret)
		return sn_submit_end(s, n - done, done ? (int)done : ret);
	if (bad && !done)
		return sn_submit_end(s, 0, -EINVAL);
	return sn_submit_end(s, 0, (int)done);
}

/* ---- inside a worker ---- */

SN_API unsigned int sn_worker_id(const struct sn_worker *w)
{
	return w->id;
}

SN_API struct sn_pool *sn_worker_pool(const struct sn_worker *w)
{
	return w->pool;
}

SN_API void *sn_worker_state(const struct sn_worker *w)
{
	return w->state;
}

SN_API void *sn_worker_arg(const struct sn_worker *w)
{
	return w->pool->cfg.arg;
}

SN_API int sn_worker_stopping(const struct sn_worker *w)
{
	return __atomic_load_n(&w->pool->stopping, __ATOMIC_ACQUIRE);
}

SN_API int sn_worker_send(struct sn_worker *w, unsigned int dest, __u64 key,
			  const void *payload, __u32 len)
{
	struct sn_pool *pool;
	struct sn_producer *p;
	unsigned char *slot;

	if (!w || dest >= w->pool->n || len > w->pool->max_msg ||
	    (len && !payload))
		return -EINVAL;
	pool = w->pool;
	if (__atomic_load_n(&pool->done, __ATOMIC_ACQUIRE)) {
		sn_count(&w->c.forward_rejected, 1);
		return -ESHUTDOWN;
	}
	p = w->out[dest];
	if (sn_msg_reserve(pool, p, pool->w[dest], len, &slot) < 0) {
		sn_count(&w->c.forward_rejected, 1);
		return -EAGAIN;
	}
	sn_fill_at(slot, key, w->id, payload, len);
	sn_count(&w->c.forwarded, 1);
	sn_msg_commit(pool, p, len);
	sn_pool_wake(pool, pool->w[dest]);
	return 0;
}

SN_API int sn_worker_route(struct sn_worker *w, __u64 key, const void *payload,
			   __u32 len)
{
	if (!w)
		return -EINVAL;
	return sn_worker_send(w, sn_pool_pick(w->pool, key, &w->rr), key,
			      payload, len);
}

SN_API void sn_worker_hold(struct sn_worker *w, unsigned int n)
{
	if (w && n)
		sn_count(&w->c.held, n);
}

SN_API void sn_worker_done(struct sn_worker *w, unsigned int n)
{
	if (w && n)
		sn_count(&w->c.released, n);
}

SN_API struct io_uring *sn_worker_uring(struct sn_worker *w)
{
	return w ? &w->ring : NULL;
}

SN_API struct io_uring_sqe *sn_worker_sqe(struct sn_worker *w, struct sn_io *io)
{
	struct io_uring_sqe *sqe;

	if (!w || !io || !io->done)
		return NULL;
	sqe = sn_worker_get_sqe(w);
	if (!sqe)
		return NULL;
	io_uring_sqe_set_data(sqe, io);
	w->io_inflight++;
	sn_count(&w->c.io_started, 1);
	return sqe;
}
