// SPDX-License-Identifier: MIT
/*
 * snbench harness: threads pinned to CPUs, a common start, the run of one
 * message_passing or pingpong measurement, and timing helpers.
 */
#include <errno.h>
#include <pthread.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "snbench.h"

double snb_tsc_ns = 1.0;

uint64_t snb_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* TSC ticks per ns against CLOCK_MONOTONIC over 100 ms. */
void snb_tsc_calibrate(void)
{
	struct timespec d = { 0, 100 * 1000 * 1000 };
	uint64_t n0, t0, n1, t1;

	n0 = snb_now_ns();
	t0 = snb_tsc();
	nanosleep(&d, NULL);
	n1 = snb_now_ns();
	t1 = snb_tsc();
	snb_tsc_ns = (double)(n1 - n0) / (double)(t1 - t0);
}

void snb_yield(void)
{
	sched_yield();
}

int snb_pin(int cpu)
{
	cpu_set_t set;

	if (cpu < 0)
		return 0;
	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set) ? -errno : 0;
}

void *snb_buf_alloc(unsigned int size, unsigned int n)
{
	size_t len = ((size_t)size * n + 63) & ~(size_t)63;
	void *p = aligned_alloc(64, len ? len : 64);

	if (!p) {
		fprintf(stderr, "snbench: out of memory\n");
		exit(1);
	}
	return p;
}

void snb_buf_free(void *p)
{
	free(p);
}

void *snb_open_queue(void *q, unsigned int idx)
{
	(void)idx;
	return q;
}

void snb_close_none(void *h)
{
	(void)h;
}

void snb_start(struct snb_worker *w)
{
	if (snb_pin(w->cpu))
		fprintf(stderr, "snbench: cannot pin to CPU %d\n", w->cpu);
	atomic_fetch_add(&w->sh->ready, 1);
	while (!atomic_load_explicit(&w->sh->go, memory_order_acquire))
		sched_yield();
}

void snb_fail(struct snb_worker *w, const char *what)
{
	w->sh->why = what;
	atomic_store(&w->sh->failed, 1);
	atomic_store(&w->sh->stop, 1);
}

/* Every message arrived (or the run stops): the consumers may leave. */
int snb_all_received(struct snb_worker *w)
{
	struct snb_shared *sh = w->sh;
	uint64_t n = 0;
	unsigned int i;

	if (atomic_load_explicit(&sh->stop, memory_order_relaxed))
		return 1;
	for (i = 0; i < sh->ncons; i++)
		n += atomic_load_explicit(&sh->cons[i].received,
					  memory_order_relaxed);
	return n >= sh->expected;
}

struct snb_thread {
	pthread_t tid;
	void (*fn)(struct snb_worker *w);
	struct snb_worker *w;
};

static void *snb_thread_main(void *arg)
{
	struct snb_thread *t = arg;

	t->fn(t->w);
	return NULL;
}

static uint64_t snb_received(struct snb_shared *sh)
{
	uint64_t n = 0;
	unsigned int i;

	for (i = 0; i < sh->ncons; i++)
		n += atomic_load(&sh->cons[i].received);
	return n;
}

#define SNB_RUN_TIMEOUT_NS (120ULL * 1000000000ULL)

/*
 * Runs @nt threads: starts them together, joins the first @nfirst, waits
 * for every message (or failure/timeout), stops the rest.
 */
static int snb_threads(const struct snb_impl *im, void *q, void *q2,
		       struct snb_shared *sh, struct snb_thread *t,
		       unsigned int nt, unsigned int nfirst)
{
	struct timespec nap = { 0, 200 * 1000 };
	uint64_t deadline;
	unsigned int i;

	for (i = 0; i < nt; i++)
		if (pthread_create(&t[i].tid, NULL, snb_thread_main, &t[i])) {
			fprintf(stderr, "snbench: pthread_create failed\n");
			exit(1);
		}
	while (atomic_load(&sh->ready) < nt)
		sched_yield();
	sh->ref_ns = snb_now_ns();
	sh->ref_tsc = snb_tsc();
	atomic_store_explicit(&sh->go, 1, memory_order_release);
	for (i = 0; i < nfirst; i++)
		pthread_join(t[i].tid, NULL);
	deadline = snb_now_ns() + SNB_RUN_TIMEOUT_NS;
	while (!atomic_load(&sh->failed) && snb_received(sh) < sh->expected) {
		if (snb_now_ns() > deadline) {
			sh->why = "timeout";
			atomic_store(&sh->failed, 1);
			break;
		}
		nanosleep(&nap, NULL);
	}
	atomic_store(&sh->stop, 1);
	if (im->shutdown) {
		im->shutdown(q);
		if (q2)
			im->shutdown(q2);
	}
	for (i = nfirst; i < nt; i++)
		pthread_join(t[i].tid, NULL);
	return atomic_load(&sh->failed) ? -1 : 0;
}

static struct snb_worker *snb_workers(unsigned int n)
{
	struct snb_worker *w = aligned_alloc(128, sizeof(*w) * n);

	if (!w) {
		fprintf(stderr, "snbench: out of memory\n");
		exit(1);
	}
	memset(w, 0, sizeof(*w) * n);
	return w;
}

static uint32_t *snb_lat_alloc(size_t n)
{
	uint32_t *p = malloc(n * sizeof(*p) + 1);

	if (!p) {
		fprintf(stderr, "snbench: out of memory\n");
		exit(1);
	}
	return p;
}

int snb_run_mp(const struct snb_impl *im, const struct snb_cfg *cfg,
	       struct snb_run *run)
{
	unsigned int np = cfg->producers, nc = cfg->consumers, n = np + nc, i;
	struct snb_shared sh = { .cfg = cfg };
	struct snb_thread t[SNB_MAX_THREADS];
	struct snb_worker *w;
	uint64_t per, tmin = UINT64_MAX, tmax = 0;
	size_t maxlat;
	void *q;
	int ret;

	memset(run, 0, sizeof(*run));
	q = im->create(cfg);
	if (!q)
		return -1;
	w = snb_workers(n);
	sh.cons = w + np;
	sh.ncons = nc;
	sh.expected = cfg->messages;
	per = cfg->messages / np;
	maxlat = (size_t)(cfg->messages >> cfg->sample_shift) + 2 * np + 16;
	for (i = 0; i < n; i++) {
		w[i].sh = &sh;
		w[i].id = i;
		w[i].cpu = cfg->cpus[i];
		t[i].w = &w[i];
		if (i < np) {
			w[i].count = per + (i == 0 ? cfg->messages % np : 0);
			sh.expected_sum += w[i].count * (w[i].count - 1) / 2;
			w[i].h = im->prod_open(q, i);
			t[i].fn = im->producer;
		} else {
			w[i].h = im->cons_open(q, i - np);
			w[i].lat = snb_lat_alloc(maxlat);
			w[i].maxlat = maxlat;
			t[i].fn = im->consumer;
		}
		if (!w[i].h) {
			fprintf(stderr, "snbench: %s: cannot open a handle\n",
				im->name);
			exit(1);
		}
	}
	ret = snb_threads(im, q, NULL, &sh, t, n, np);
	run->lat = snb_lat_alloc(maxlat * nc);
	for (i = 0; i < n; i++) {
		if (i < np) {
			if (w[i].t_start < tmin)
				tmin = w[i].t_start;
		} else {
			if (w[i].t_end_tsc > sh.ref_tsc)
				w[i].t_end = sh.ref_ns + (uint64_t)
					((double)(w[i].t_end_tsc - sh.ref_tsc) *
					 snb_tsc_ns);
			if (w[i].t_end > tmax)
				tmax = w[i].t_end;
			run->received += w[i].received;
			memcpy(run->lat + run->nlat, w[i].lat,
			       w[i].nlat * sizeof(*w[i].lat));
			run->nlat += w[i].nlat;
			free(w[i].lat);
		}
	}
	if (!ret) {
		uint64_t sum = 0;

		for (i = np; i < n; i++)
			sum += w[i].sum;
		if (run->received != cfg->messages || sum != sh.expected_sum) {
			fprintf(stderr, "snbench: %s: %llu of %llu messages, checksum %s\n",
				im->name, (unsigned long long)run->received,
				(unsigned long long)cfg->messages,
				sum == sh.expected_sum ? "ok" : "WRONG");
			ret = -1;
		}
	} else {
		fprintf(stderr, "snbench: %s: %s failed\n", im->name,
			sh.why ? sh.why : "run");
	}
	run->seconds = tmax > tmin ? (double)(tmax - tmin) / 1e9 : 0;
	run->lib_syscalls = im->syscalls ? im->syscalls(q) : UINT64_MAX;
	for (i = 0; i < n; i++)
		(i < np ? im->prod_close : im->cons_close)(w[i].h);
	im->destroy(q);
	free(w);
	return ret;
}

/*
 * Pingpong: the pinger sends on q1 and receives on q2, the ponger the other
 * way round (one queue for both when the peer says so: raw_line). Handles
 * are opened with index 0 on the pinger's side, 1 on the ponger's. The run
 * takes its time from the pinger's first and last TSC stamps, the very
 * stamps its latency samples are the differences of.
 */
int snb_run_pp(const struct snb_impl *im, const struct snb_cfg *cfg,
	       struct snb_run *run)
{
	struct snb_shared sh = { .cfg = cfg };
	struct snb_thread t[2];
	struct snb_worker *w;
	void *q1, *q2;
	int ret;

	memset(run, 0, sizeof(*run));
	q1 = im->create(cfg);
	q2 = im->pp_one_queue ? q1 : im->create(cfg);
	if (!q1 || !q2)
		return -1;
	w = snb_workers(2);
	sh.cons = w;		/* the pinger counts the round trips */
	sh.ncons = 1;
	sh.expected = cfg->messages;
	w[0].h = im->prod_open(q1, 0);
	w[0].h2 = im->cons_open(q2, 0);
	w[1].h = im->prod_open(q2, 1);
	w[1].h2 = im->cons_open(q1, 1);
	if (!w[0].h || !w[0].h2 || !w[1].h || !w[1].h2) {
		fprintf(stderr, "snbench: %s: cannot open a handle\n", im->name);
		exit(1);
	}
	for (int i = 0; i < 2; i++) {
		w[i].sh = &sh;
		w[i].id = (unsigned int)i;
		w[i].cpu = cfg->cpus[i];
		w[i].count = cfg->messages;
		t[i].w = &w[i];
	}
	/* every round trip is a sample: no page of them first touched in
	 * the timed loop */
	w[0].lat = snb_lat_alloc(cfg->messages);
	memset(w[0].lat, 0, cfg->messages * sizeof(*w[0].lat));
	w[0].maxlat = cfg->messages;
	t[0].fn = im->ping;
	t[1].fn = im->pong;
	ret = snb_threads(im, q1, q2 == q1 ? NULL : q2, &sh, t, 2, 1);
	if (ret)
		fprintf(stderr, "snbench: %s: pingpong: %s failed\n", im->name,
			sh.why ? sh.why : "run");
	run->seconds = (double)(w[0].t_end_tsc - w[0].t_start_tsc) *
		       snb_tsc_ns / 1e9;
	run->received = w[0].received;
	run->lat = w[0].lat;
	run->nlat = w[0].nlat;
	run->lib_syscalls = UINT64_MAX;
	if (im->syscalls)
		run->lib_syscalls = im->syscalls(q1) +
				    (q2 == q1 ? 0 : im->syscalls(q2));
	im->prod_close(w[0].h);
	im->cons_close(w[0].h2);
	im->prod_close(w[1].h);
	im->cons_close(w[1].h2);
	im->destroy(q1);
	if (q2 != q1)
		im->destroy(q2);
	free(w);
	return ret;
}
