// SPDX-License-Identifier: MIT
/*
 * snbench: the physical limit. Two threads on the same two CPUs bounce one
 * cache line: the pinger writes an odd value and waits for the next even
 * one, the ponger waits for the odd one and writes the next even one. A
 * round trip is two line transfers, the least any message round trip costs.
 */
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>

#include "snbench.h"

struct raw_line {
	_Alignas(128) _Atomic uint64_t v;
	char pad[120];
};

struct raw_arg {
	struct raw_line *line;
	const struct snb_cfg *cfg;
	atomic_int *ready;
	uint32_t *lat;
	uint64_t t0, t1;
};

static void raw_wait_start(struct raw_arg *a, int cpu)
{
	snb_pin(cpu);
	atomic_fetch_add(a->ready, 1);
	while (atomic_load(a->ready) < 2)
		sched_yield();
}

static void *raw_pong(void *p)
{
	struct raw_arg *a = p;
	uint64_t i;

	raw_wait_start(a, a->cfg->cpus[1]);
	for (i = 0; i < a->cfg->messages; i++) {
		while (atomic_load_explicit(&a->line->v, memory_order_acquire) !=
		       2 * i + 1)
			snb_relax();
		atomic_store_explicit(&a->line->v, 2 * i + 2,
				      memory_order_release);
	}
	return NULL;
}

static int raw_pingpong(const struct snb_cfg *cfg, struct snb_run *run)
{
	struct raw_line *line = aligned_alloc(128, sizeof(*line));
	atomic_int ready = 0;
	struct raw_arg a = { .line = line, .cfg = cfg, .ready = &ready };
	pthread_t tid;
	uint64_t i;

	if (!line)
		return -1;
	atomic_init(&line->v, 0);
	run->lat = malloc(cfg->messages * sizeof(uint32_t) + 1);
	if (!run->lat || pthread_create(&tid, NULL, raw_pong, &a)) {
		free(line);
		return -1;
	}
	raw_wait_start(&a, cfg->cpus[0]);
	a.t0 = snb_now_ns();
	for (i = 0; i < cfg->messages; i++) {
		uint64_t t = snb_tsc();

		atomic_store_explicit(&line->v, 2 * i + 1, memory_order_release);
		while (atomic_load_explicit(&line->v, memory_order_acquire) !=
		       2 * i + 2)
			snb_relax();
		run->lat[i] = (uint32_t)(snb_tsc() - t);
	}
	a.t1 = snb_now_ns();
	pthread_join(tid, NULL);
	run->nlat = cfg->messages;
	run->received = cfg->messages;
	run->seconds = (double)(a.t1 - a.t0) / 1e9;
	run->lib_syscalls = UINT64_MAX;
	free(line);
	return 0;
}

static const char *raw_skip(const struct snb_cfg *cfg, int pingpong)
{
	(void)cfg;
	return pingpong ? NULL : "pingpong only (it is no queue)";
}

const struct snb_impl snb_impl_raw = {
	.name = "raw_line",
	.skip = raw_skip,
	.pingpong = raw_pingpong,
};
