// SPDX-License-Identifier: MIT
/*
 * snbench worker_pool: libsn's worker pool (include/sn/pool.h), throughput
 * for one pool size. A pool of w pinned workers (hash partitioner, block
 * backpressure), one submitter thread per worker, each submitting messages
 * / w keyed messages in sn_submit_batch() calls of --batch messages. The
 * keys are picked so that every submitter sends the same number of
 * messages to every worker (each worker gets an even share); the handler
 * counts messages and sums their payload sequence numbers in the worker's
 * own state (state_size: no shared atomics), read after shutdown with
 * sn_pool_worker_state().
 *
 * With cfg->max_msg_size above msg_size the pool carries records
 * (pool.h's "Message sizes"): the same messages, to weigh what records
 * cost against fixed slots.
 *
 * The clock runs from releasing the submitters to sn_pool_shutdown()
 * returning, i.e. until every message was handled. Pool creation, thread
 * start and submitter opening are outside it. A run fails unless the
 * pool's handled == submitted == what the submitters sent, the handlers'
 * own counts and checksums agree, and nothing was rejected or dropped.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sn/pool.h>

#include "snbench.h"

#define POOL_KEYS	64		/* distinct keys per worker (a power
					 * of two) */
#define POOL_TIMEOUT_NS	(10ULL * 1000000000ULL)	/* a blocked submit */

/* One worker's counts: its own state block, touched by it alone. */
struct pool_wstate {
	uint64_t handled;
	uint64_t sum;
};

struct pool_shared {
	atomic_uint ready;
	atomic_int go;
	unsigned int workers;
	unsigned int msg_size;
	unsigned int batch;		/* messages per sn_submit_batch() */
	const uint64_t *keys;		/* [worker][POOL_KEYS] */
};

struct pool_sub {
	pthread_t thread;
	struct pool_shared *sh;
	struct sn_submitter *s;
	unsigned int id;
	int cpu;
	uint64_t count;
	int err;
};

static int pool_handle(struct sn_worker *w, void *state,
		       const struct sn_envelope *env, unsigned int n)
{
	struct pool_wstate *s = state;
	uint64_t sum = 0;
	unsigned int i;

	(void)w;
	for (i = 0; i < n; i++)
		sum += *(const uint64_t *)env[i].payload;
	s->sum += sum;
	s->handled += n;
	return 0;
}

static void *pool_submitter(void *arg)
{
	struct pool_sub *sb = arg;
	struct pool_shared *sh = sb->sh;
	unsigned int w = sh->workers, b = sh->batch, k, r0;
	struct sn_pool_msg *m = calloc(b, sizeof(*m));
	/* the payloads side by side, as a channel producer's messages */
	size_t stride = (sh->msg_size + 7) & ~(size_t)7;
	size_t bytes = ((size_t)b * stride + 63) & ~(size_t)63;
	unsigned char *buf = aligned_alloc(64, bytes);
	uint64_t i, q;

	if (!m || !buf)
		sb->err = -ENOMEM;
	else
		memset(buf, 0, bytes);
	if (sb->cpu >= 0 && snb_pin(sb->cpu))
		sb->err = -EINVAL;
	atomic_fetch_add(&sh->ready, 1);
	while (!atomic_load_explicit(&sh->go, memory_order_acquire))
		snb_relax();
	/* batches of --batch messages, one sn_submit_batch() each; message
	 * seq goes to worker (seq + id) % w with key (seq / w) % POOL_KEYS
	 * of that worker's, counted without divisions (every submitter
	 * spreads evenly) */
	for (i = 0, q = 0, r0 = 0; !sb->err && i < sb->count; i += k) {
		int r;

		for (k = 0; k < b && i + k < sb->count; k++) {
			uint64_t seq = i + k;
			unsigned int dest = r0 + sb->id < w ? r0 + sb->id :
					    r0 + sb->id - w;

			memcpy(buf + (size_t)k * stride, &seq, sizeof(seq));
			m[k].key = sh->keys[(size_t)dest * POOL_KEYS +
					    (q & (POOL_KEYS - 1))];
			m[k].payload = buf + (size_t)k * stride;
			m[k].len = sh->msg_size;
			if (++r0 == w) {
				r0 = 0;
				q++;
			}
		}
		r = sn_submit_batch(sb->s, m, k);
		if (r != (int)k)
			sb->err = r < 0 ? r : -EAGAIN;
	}
	free(m);
	free(buf);
	return NULL;
}

/* POOL_KEYS keys per worker, each routed to it by the pool's partitioner. */
static int pool_keys(struct sn_pool *pool, unsigned int w, uint64_t *keys)
{
	unsigned int *have = calloc(w, sizeof(*have)), full = 0;
	uint64_t k;
	int r = 0;

	if (!have)
		return -ENOMEM;
	for (k = 1; full < w; k++) {
		int d;

		if (k > 100000000ULL) {
			r = -ERANGE;
			break;
		}
		d = sn_pool_route(pool, k);
		if (d < 0 || (unsigned int)d >= w) {
			r = d < 0 ? d : -ERANGE;
			break;
		}
		if (have[d] < POOL_KEYS) {
			keys[(size_t)d * POOL_KEYS + have[d]++] = k;
			full += have[d] == POOL_KEYS;
		}
	}
	free(have);
	return r;
}

int snb_pool_run(const struct snb_pool_cfg *cfg, struct snb_pool_run *run)
{
	unsigned int w = cfg->workers, i, started = 0;
	struct sn_pool_config pc;
	struct sn_pool_stats st;
	struct sn_pool *pool = NULL;
	struct pool_sub *subs = NULL;
	struct pool_shared sh;
	uint64_t *keys = NULL, per = cfg->messages / w, t0 = 0, t1, sum = 0;
	int r;

	memset(run, 0, sizeof(*run));
	memset(&sh, 0, sizeof(sh));
	if (!w || w > SNB_MAX_THREADS || !per)
		return -EINVAL;
	subs = calloc(w, sizeof(*subs));
	keys = calloc((size_t)w * POOL_KEYS, sizeof(*keys));
	if (!subs || !keys) {
		r = -ENOMEM;
		goto out;
	}

	sn_pool_config_init(&pc);
	pc.workers = w;
	pc.affinity = 1;
	pc.cpus = cfg->cpus;
	pc.ncpus = cfg->ncpus;
	pc.queue_capacity = cfg->capacity;
	pc.msg_size = cfg->msg_size;
	pc.max_msg_size = cfg->max_msg_size;
	pc.batch = cfg->batch;
	pc.max_submitters = w;
	pc.backpressure = SN_BP_BLOCK;
	pc.block_timeout_ns = POOL_TIMEOUT_NS;
	pc.partitioner.kind = SN_PART_HASH;
	pc.state_size = sizeof(struct pool_wstate);	/* each worker's own */
	pc.handle = pool_handle;
	r = sn_pool_create(&pool, &pc);
	if (r) {
		fprintf(stderr, "snbench: worker_pool: sn_pool_create(%u workers): %s\n",
			w, strerror(-r));
		pool = NULL;
		goto out;
	}
	run->backend = sn_pool_backend(pool);
	r = pool_keys(pool, w, keys);
	if (r) {
		fprintf(stderr, "snbench: worker_pool: cannot spread keys: %s\n",
			strerror(-r));
		goto out;
	}

	sh.workers = w;
	sh.msg_size = cfg->msg_size;
	sh.batch = cfg->batch ? cfg->batch : 1;
	sh.keys = keys;
	/* submitters on the CPUs after the workers', else round robin */
	run->shared_cpus = cfg->ncpus < 2 * w;
	for (i = 0; i < w; i++) {
		struct pool_sub *sb = &subs[i];

		sb->sh = &sh;
		sb->id = i;
		sb->count = per;
		sb->cpu = !cfg->ncpus ? -1 :
			  cfg->cpus[run->shared_cpus ? i % cfg->ncpus : w + i];
		r = sn_submitter_open(pool, &sb->s);
		if (r) {
			fprintf(stderr, "snbench: worker_pool: sn_submitter_open: %s\n",
				strerror(-r));
			goto stop;
		}
	}
	for (i = 0; i < w; i++) {
		r = -pthread_create(&subs[i].thread, NULL, pool_submitter,
				    &subs[i]);
		if (r) {
			fprintf(stderr, "snbench: worker_pool: pthread_create: %s\n",
				strerror(-r));
			break;
		}
		started++;
	}
	while (atomic_load(&sh.ready) < started)
		snb_relax();
	t0 = snb_now_ns();
	atomic_store_explicit(&sh.go, 1, memory_order_release);
	for (i = 0; i < started; i++)
		pthread_join(subs[i].thread, NULL);
stop:
	{
		int rs = sn_pool_shutdown(pool);

		t1 = snb_now_ns();
		if (rs && !r) {
			fprintf(stderr, "snbench: worker_pool: sn_pool_shutdown: %s\n",
				strerror(-rs));
			r = rs;
		}
	}
	if (r)
		goto out;
	for (i = 0; i < w; i++)
		if (subs[i].err) {
			fprintf(stderr, "snbench: worker_pool: submitter %u: %s\n",
				i, strerror(subs[i].err < 0 ? -subs[i].err :
					    subs[i].err));
			r = -EIO;
			goto out;
		}
	r = sn_pool_stats(pool, &st);
	if (r)
		goto out;
	run->seconds = (double)(t1 - t0) / 1e9;
	run->sent = per * w;
	run->submitted = st.submitted;
	run->handled = st.handled;
	for (i = 0; i < w; i++) {
		const struct pool_wstate *ws = sn_pool_worker_state(pool, i);

		run->counted += ws->handled;
		sum += ws->sum;
	}
	/* each submitter sent sequence numbers 0..per-1 */
	if (st.handled != st.submitted || st.submitted != run->sent ||
	    run->counted != run->sent || st.rejected || st.dropped ||
	    sum != (uint64_t)w * (per * (per - 1) / 2)) {
		fprintf(stderr, "snbench: worker_pool: %u workers: sent %llu, submitted %llu, handled %llu, counted by handlers %llu, rejected %llu, dropped %llu, checksum %s\n",
			w, (unsigned long long)run->sent,
			(unsigned long long)st.submitted,
			(unsigned long long)st.handled,
			(unsigned long long)run->counted,
			(unsigned long long)st.rejected,
			(unsigned long long)st.dropped,
			sum == (uint64_t)w * (per * (per - 1) / 2) ? "ok" :
			"WRONG");
		r = -EIO;
	}
out:
	if (subs)
		for (i = 0; i < w; i++)
			sn_submitter_close(subs[i].s);
	if (pool)
		sn_pool_destroy(pool);
	free(keys);
	free(subs);
	return r;
}
