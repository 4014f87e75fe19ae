// SPDX-License-Identifier: MIT
/*
 * snbench: libsn's channels against their peers, side by side in one run.
 *
 *   snbench                      the short suite (make bench)
 *   snbench message_passing [--type spsc|mpsc|mpmc] [--producers N]
 *           [--consumers N] [--msg-size B] [--batch N] [--capacity N]
 *           [--messages N]
 *   snbench pingpong [--msg-size B] [--messages N]
 *   snbench wakeup [--messages ROUNDS] [--gap-us US] [--poll-mode adaptive|always]
 *           sleeping-consumer wake latency: kthread, kick, futex, eventfd,
 *           pipe (see wakeup.c)
 *   snbench sizes [--sizes LIST] [--seconds S]
 *           msg/s and GB/s per message size, libsn copying and zero copy
 *           against pipe, socketpair, vmsplice, io_uring and memcpy (see
 *           sizes.c)
 *   snbench bridge [--sizes LIST]
 *           msg/s through two libsnbridge bridges over loopback TCP against
 *           bare ZeroMQ PUSH/PULL with the same batching (bench_bridge.c)
 *   common: --peers LIST|all|none, --repeat N, --json, --plot FILE.png,
 *           --cpus LIST, --quiet
 *   snbench --help               the scenarios, peers, options, defaults
 *   snbench --version            "snbench VERSION"
 *
 * Every measurement runs each implementation with the same threads on the
 * same CPUs and the same message count: one warm-up run (a tenth of the
 * messages, not counted), then --repeat timed runs. Throughput is the
 * median of the runs (spread: (max - min) / median); latency percentiles
 * come from TSC stamps carried in the messages (1 in 2^k sampled, pooled
 * over the timed runs; pingpong: every round trip, stamp to stamp, the
 * stamps the run's time comes from). The SPSC yardsticks bare_cached and
 * bare_seq (impl_bare.c) and the pingpong floors raw_line and raw_2line
 * (impl_raw.c) are never a "best peer". See README.md, "Benchmarks".
 */
#include <errno.h>
#include <getopt.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/utsname.h>
#include <time.h>
#include <unistd.h>

#include <sn/bridge.h>
#include <sn/channel.h>

#include "snbench.h"

static const struct snb_impl *const all_impls[] = {
	&snb_impl_sn, &snb_impl_bare_cached, &snb_impl_bare_seq,
	&snb_impl_rte, &snb_impl_ck, &snb_impl_pipe, &snb_impl_eventfd,
	&snb_impl_socketpair, &snb_impl_uring, &snb_impl_raw, &snb_impl_raw2,
#ifdef SNB_CXX_PEERS
	&snb_impl_boost, &snb_impl_aq,
#endif
};
#define NIMPLS (sizeof(all_impls) / sizeof(all_impls[0]))

static const char *const type_names[] = { "spsc", "mpsc", "mpmc" };

/*
 * The rows of the sizes sweep (snbench sizes), libsn's first: each with
 * the copies of the payload one message costs and what it does.
 */
static const struct {
	const struct snb_impl *im;
	unsigned int copies;
	const char *what;
} size_rows[] = {
	{ &snb_impl_sn_len, 2, "varlen SPSC channel (64 B slots), sn_try_send_len / sn_try_recv_len" },
	{ &snb_impl_sn_zc, 0, "the same channel zero copy: sn_producer_reserve_len / sn_producer_commit_len, sn_consumer_peek_len /\n"
			      "             sn_consumer_advance; header (seq, stamp, length) written and checked, payload untouched" },
	{ &snb_impl_sn_buf, 0, "the message in a buffer of the lane (sn_buf_get / sn_buf_send, sn_recv_buf /\n"
			       "             sn_buf_put); header written and checked, payload untouched" },
	{ &snb_impl_pipe, 2, "write / read, F_SETPIPE_SZ to the cell's buffer" },
	{ &snb_impl_socketpair, 2, "unix SOCK_STREAM write / read, framed by the cell's fixed size" },
	{ &snb_impl_vmsplice, 1, "vmsplice of the producer's pages into a pipe (no copy), read" },
	{ &snb_impl_uring_pipe, 2, "io_uring IORING_OP_WRITE / IORING_OP_READ on a pipe, 1 in flight a side" },
	{ &snb_impl_memcpy, 1, "yardstick: one thread copies each message into the cell's buffer" },
};
#define SIZE_ROWS (sizeof(size_rows) / sizeof(size_rows[0]))
#define SIZES_MAX 16

struct result {
	const char *scenario;
	const char *impl;
	struct snb_cfg cfg;
	unsigned int repeats;
	const char *skipped;		/* why, or NULL */
	int failed;
	double rate, rate_min, rate_max;	/* msg/s */
	double p50, p99, p999;			/* ns */
	double syscalls_per_msg;		/* < 0: unknown */
	int group;				/* results compared together */
	/* wakeup: counts over the timed runs, the row's setup */
	int wake;
	uint64_t sleeps, wakeups, kicks;
	struct snb_wake_cfg wcfg;
	/* worker_pool: the pool's size, msg/s over 1 worker's, the counts
	 * over the timed runs (handled == submitted, or the run failed) */
	int pool;
	unsigned int workers;
	double speedup;
	double channel_rate;		/* the SPSC channel's, same batch */
	double cpu_per_msg;		/* process CPU ns per message, timed
					 * runs (a busy machine's other work
					 * is not in it) */
	uint64_t submitted, handled;
	int shared_cpus;
	/* sizes: a row of the message-size sweep (group: one size) */
	int sizes;
	unsigned int max_msg_size;	/* the pool carries records (0: fixed
					 * slots) */
	/* bridge: a row of the bridge scenario (group: one size); the
	 * libsnbridge row's bridge counts over the timed runs, and zmq's
	 * msg/s beside it */
	int bridge;
	uint64_t frames, resent, go_backs, stalls;
	double zmq_rate;
};

static struct {
	int json, quiet;
	unsigned int repeat;
	const char *plot;
	int use[NIMPLS];
	int use_wake[SNB_WAKE_IMPLS];
	int use_size[SIZE_ROWS];
	unsigned int sizes[SIZES_MAX];	/* sizes: the message sizes */
	unsigned int nsizes;
	int sizes_set;			/* --sizes given (bridge: else 16,64K) */
	double seconds;			/* sizes: one timed run of a cell */
	int ncpus;
	int cpus[SNB_MAX_THREADS];
	int backend;
	int fence;			/* SN_FENCE_* of libsn's channels */
	char cpu_model[128];
	char kernel[128];
	int online;
} opt;

static struct result *results;
static size_t nresults, cap_results;
static int ngroups;
static unsigned int step, nsteps;

static void die(const char *msg)
{
	fprintf(stderr, "snbench: %s\n", msg);
	exit(2);
}

static struct result *new_result(void)
{
	if (nresults == cap_results) {
		cap_results = cap_results ? 2 * cap_results : 64;
		results = realloc(results, cap_results * sizeof(*results));
		if (!results)
			die("out of memory");
	}
	memset(&results[nresults], 0, sizeof(*results));
	return &results[nresults++];
}

static int cmp_u32(const void *a, const void *b)
{
	uint32_t x = *(const uint32_t *)a, y = *(const uint32_t *)b;

	return x < y ? -1 : x > y;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

/* The @q quantile (0..1) of sorted @v, nearest rank. */
/* CPU time of the whole process, ns. */
static double process_cpu_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static double quantile(const uint32_t *v, size_t n, double q)
{
	size_t i;

	if (!n)
		return 0;
	i = (size_t)(q * (double)n);
	if (i >= n)
		i = n - 1;
	return v[i];
}

static void progress(const char *what, const char *impl)
{
	if (opt.quiet)
		return;
	step++;
	if (isatty(2))
		fprintf(stderr, "\r\033[K[%u/%u] %s %s ", step, nsteps, what, impl);
	else
		fprintf(stderr, "snbench: [%u/%u] %s %s\n", step, nsteps, what,
			impl);
}

static void progress_done(void)
{
	if (!opt.quiet && isatty(2))
		fprintf(stderr, "\r\033[K");
}

/* Measures one implementation: warm-up, then the timed repeats. */
static void measure(const struct snb_impl *im, const char *scenario,
		    const struct snb_cfg *cfg0, int pingpong)
{
	struct result *res = new_result();
	double rates[64];
	uint32_t *lat = NULL;
	size_t nlat = 0;
	uint64_t sys = 0;
	int sys_known = 1;
	double cpu0;
	struct snb_cfg cfg = *cfg0, warm;
	struct snb_run run;
	unsigned int r;
	char what[160];

	res->scenario = scenario;
	res->impl = im->name;
	res->cfg = cfg;
	res->group = ngroups;
	res->repeats = opt.repeat;
	res->syscalls_per_msg = -1;
	res->skipped = im->skip ? im->skip(&cfg, pingpong) : NULL;
	snprintf(what, sizeof(what), "%s %s %uP/%uC %uB b%u", scenario,
		 type_names[cfg.type], cfg.producers, cfg.consumers,
		 cfg.msg_size, cfg.batch);
	if (res->skipped) {
		step++;
		return;
	}
	progress(what, im->name);
	warm = cfg;
	warm.messages = cfg.messages / 10 < 1000 ? 1000 : cfg.messages / 10;
	if (warm.messages > cfg.messages)
		warm.messages = cfg.messages;
	if ((pingpong ? snb_run_pp(im, &warm, &run) :
			snb_run_mp(im, &warm, &run))) {
		res->failed = 1;
		free(run.lat);
		return;
	}
	free(run.lat);
	cpu0 = process_cpu_ns();
	for (r = 0; r < opt.repeat; r++) {
		if (pingpong ? snb_run_pp(im, &cfg, &run) :
			       snb_run_mp(im, &cfg, &run)) {
			res->failed = 1;
			free(run.lat);
			free(lat);
			return;
		}
		/* pingpong: two messages per round trip */
		rates[r] = (double)run.received * (pingpong ? 2 : 1) /
			   run.seconds;
		lat = realloc(lat, (nlat + run.nlat + 1) * sizeof(*lat));
		if (!lat)
			die("out of memory");
		memcpy(lat + nlat, run.lat, run.nlat * sizeof(*lat));
		nlat += run.nlat;
		free(run.lat);
		if (run.lib_syscalls == UINT64_MAX)
			sys_known = 0;
		else
			sys += run.lib_syscalls;
	}
	res->cpu_per_msg = (process_cpu_ns() - cpu0) /
			   ((double)cfg.messages * opt.repeat);
	qsort(rates, opt.repeat, sizeof(rates[0]), cmp_double);
	res->rate = opt.repeat % 2 ? rates[opt.repeat / 2] :
		    (rates[opt.repeat / 2 - 1] + rates[opt.repeat / 2]) / 2;
	res->rate_min = rates[0];
	res->rate_max = rates[opt.repeat - 1];
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	/* pingpong: half the round trip */
	res->p50 = quantile(lat, nlat, 0.50) * snb_tsc_ns / (pingpong ? 2 : 1);
	res->p99 = quantile(lat, nlat, 0.99) * snb_tsc_ns / (pingpong ? 2 : 1);
	res->p999 = quantile(lat, nlat, 0.999) * snb_tsc_ns / (pingpong ? 2 : 1);
	if (sys_known)
		res->syscalls_per_msg = (double)sys /
			((double)cfg.messages * opt.repeat * (pingpong ? 2 : 1));
	free(lat);
}

static const struct result *group_sn(int group)
{
	size_t i;

	/* wakeup's reference is sn.ko's thread wake */
	for (i = 0; i < nresults; i++)
		if (results[i].group == group &&
		    !strcmp(results[i].impl,
			    results[i].wake ? "kthread" : "libsn") &&
		    !results[i].skipped && !results[i].failed)
			return &results[i];
	return NULL;
}

/* How many times better libsn is than @r (throughput, or pingpong p50). */
static double advantage(const struct result *r)
{
	const struct result *sn = group_sn(r->group);

	if (!sn || r->skipped || r->failed)
		return 0;
	if (!strcmp(r->scenario, "pingpong") || r->wake)
		return sn->p50 > 0 ? r->p50 / sn->p50 : 0;
	return r->rate > 0 ? sn->rate / r->rate : 0;
}

/* The yardsticks: the bare rings and the raw lines, never "peers". */
static int is_bare(const struct result *r)
{
	return !strncmp(r->impl, "bare_", 5);
}

static int is_yardstick(const struct result *r)
{
	return is_bare(r) || !strncmp(r->impl, "raw_", 4) ||
	       !strcmp(r->impl, "memcpy");
}

/*
 * "bare" in @group: the better of bare_cached and bare_seq (msg/s), both
 * measured in this run at the group's batch; message_passing only (NULL:
 * neither ran).
 */
static const struct result *group_bare(int group)
{
	const struct result *best = NULL;
	size_t i;

	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->group != group || !is_bare(r) || r->skipped ||
		    r->failed || strcmp(r->scenario, "message_passing") ||
		    r->rate <= 0)
			continue;
		if (!best || r->rate > best->rate)
			best = r;
	}
	return best;
}

/* @r's msg/s as a fraction of bare's in its group (0: not measured). */
static double vs_bare(const struct result *r)
{
	const struct result *b = group_bare(r->group);

	if (!b || r->skipped || r->failed || r->wake || r->pool)
		return 0;
	return r->rate / b->rate;
}

/* The fields every JSON result line starts with (the object left open). */
static void print_json_head(const struct result *r, const char *type,
			    int cpu0, int cpu1)
{
	const struct snb_cfg *c = &r->cfg;

	printf("{\"scenario\":\"%s\",\"impl\":\"%s\",\"type\":\"%s\","
	       "\"producers\":%u,\"consumers\":%u,\"msg_size\":%u,"
	       "\"batch\":%u,\"capacity\":%u,\"messages\":%llu,"
	       "\"repeats\":%u,\"backend\":\"%s\",\"fence\":\"%s\","
	       "\"cpus\":[%d,%d],"
	       "\"cpu_model\":\"%s\",\"online_cpus\":%d,\"kernel\":\"%s\"",
	       r->scenario, r->impl, type, c->producers, c->consumers,
	       c->msg_size, c->batch, c->capacity,
	       (unsigned long long)c->messages, r->repeats,
	       sn_backend_name(opt.backend), sn_fence_name(opt.fence), cpu0,
	       cpu1, opt.cpu_model, opt.online, opt.kernel);
}

/* Closes a JSON line of a row without numbers: "skipped" or "failed";
 * 1 when it did. */
static int print_json_unmeasured(const struct result *r)
{
	if (r->skipped)
		printf(",\"skipped\":\"%s\"}\n", r->skipped);
	else if (r->failed)
		printf(",\"failed\":true}\n");
	return r->skipped || r->failed;
}

static void print_json(const struct result *r)
{
	print_json_head(r, type_names[r->cfg.type], r->cfg.cpus[0],
			r->cfg.cpus[1]);
	if (r->wake) {
		printf(",\"gap_us\":%.3f", r->wcfg.gap_ns / 1e3);
		if (!strcmp(r->impl, "kthread") || !strcmp(r->impl, "kick"))
			printf(",\"poll_mode\":\"%s\",\"home_cpu\":%d",
			       strcmp(r->impl, "kick") ? r->wcfg.poll_mode :
			       "off", r->wcfg.home_cpu);
	}
	if (print_json_unmeasured(r))
		return;
	printf(",\"msgs_per_sec\":%.0f,\"msgs_per_sec_min\":%.0f,"
	       "\"msgs_per_sec_max\":%.0f,\"p50_ns\":%.1f,\"p99_ns\":%.1f,"
	       "\"p999_ns\":%.1f,\"sn_advantage\":%.4f",
	       r->rate, r->rate_min, r->rate_max, r->p50, r->p99, r->p999,
	       advantage(r));
	if (vs_bare(r) > 0) {
		const struct result *b = group_bare(r->group);

		printf(",\"bare_impl\":\"%s\",\"bare_msgs_per_sec\":%.0f,"
		       "\"vs_bare\":%.4f", b->impl, b->rate, vs_bare(r));
	}
	if (r->syscalls_per_msg >= 0)
		printf(",\"lib_syscalls_per_msg\":%.3g", r->syscalls_per_msg);
	if (r->wake)
		printf(",\"sleeps\":%llu,\"wakeups\":%llu,\"kicks\":%llu",
		       (unsigned long long)r->sleeps,
		       (unsigned long long)r->wakeups,
		       (unsigned long long)r->kicks);
	printf("}\n");
	fflush(stdout);
}

/*
 * A table row without numbers: "skipped" framed by @pre and @post, or
 * FAILED; the impl name padded to @width. Returns 1 when it printed one.
 */
static int print_unmeasured(const struct result *r, int width,
			    const char *pre, const char *post)
{
	if (r->skipped) {
		printf("  %-*s %s%s%s\n", width, r->impl, pre, r->skipped, post);
		return 1;
	}
	if (r->failed) {
		printf("  %-*s FAILED (see stderr)\n", width, r->impl);
		return 1;
	}
	return 0;
}

static void print_wake_head(const struct result *r);
static void print_wake_row(const struct result *r);
static void print_pool_json(const struct result *r);
static void print_pool_head(const struct result *r);
static void print_pool_row(const struct result *r);
static void print_sizes_json(const struct result *r);
static void print_sizes_head(const struct result *r);
static void print_sizes_row(const struct result *r);
static void print_bridge_json(const struct result *r);
static void print_bridge_head(const struct result *r);
static void print_bridge_row(const struct result *r);

/* How the scenarios with tables of their own print a row. */
struct printer {
	void (*json)(const struct result *r);
	void (*head)(const struct result *r);	/* before the first row */
	void (*row)(const struct result *r);
};
static const struct printer pool_printer = {
	print_pool_json, print_pool_head, print_pool_row
};
static const struct printer sizes_printer = {
	print_sizes_json, print_sizes_head, print_sizes_row
};
static const struct printer bridge_printer = {
	print_bridge_json, print_bridge_head, print_bridge_row
};

static void print_group(int group)
{
	const struct result *bare = group_bare(group);
	size_t i;
	int head = 0;

	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];
		const struct snb_cfg *c = &r->cfg;

		const struct printer *pr = r->sizes ? &sizes_printer :
					   r->pool ? &pool_printer :
					   r->bridge ? &bridge_printer : NULL;

		if (r->group != group)
			continue;
		if (pr) {
			if (opt.json) {
				pr->json(r);
			} else {
				if (!head++)
					pr->head(r);
				pr->row(r);
			}
			continue;
		}
		if (opt.json) {
			print_json(r);
			continue;
		}
		if (r->wake) {
			if (!head++)
				print_wake_head(r);
			print_wake_row(r);
			continue;
		}
		if (!head) {
			head = 1;
			if (!strcmp(r->scenario, "pingpong"))
				printf("\npingpong: round trips between CPUs %d and %d, %u B messages, %llu round trips x %u; latency is half the round trip\n",
				       c->cpus[0], c->cpus[1], c->msg_size,
				       (unsigned long long)c->messages,
				       r->repeats);
			else
				printf("\nmessage_passing %s: %u producer%s, %u consumer%s, %u B messages, batch %u, capacity %u, %llu messages x %u\n",
				       type_names[c->type], c->producers,
				       c->producers > 1 ? "s" : "",
				       c->consumers,
				       c->consumers > 1 ? "s" : "",
				       c->msg_size, c->batch, c->capacity,
				       (unsigned long long)c->messages,
				       r->repeats);
			printf("  %-11s %9s %7s %9s %9s %9s %8s", "impl",
			       "Mmsg/s", "spread", "p50 ns", "p99 ns",
			       "p99.9 ns", "sn adv");
			if (bare)
				printf(" %9s", "vs bare");
			printf("\n");
		}
		if (print_unmeasured(r, 11, "(not run: ", ")"))
			continue;
		printf("  %-11s %9.2f %6.1f%% %9.0f %9.0f %9.0f %7.2fx",
		       r->impl, r->rate / 1e6,
		       100 * (r->rate_max - r->rate_min) / r->rate, r->p50,
		       r->p99, r->p999, advantage(r));
		if (bare)
			printf(" %8.2fx", vs_bare(r));
		printf("\n");
	}
	if (bare && !opt.json)
		printf("  bare = %s, the better of bare_cached and bare_seq at batch %u in this run\n",
		       bare->impl, bare->cfg.batch);
	fflush(stdout);
}

static void run_group(const char *scenario, const struct snb_cfg *cfg,
		      int pingpong)
{
	size_t i;

	for (i = 0; i < NIMPLS; i++)
		if (opt.use[i] || i == 0)
			measure(all_impls[i], scenario, cfg, pingpong);
	progress_done();
	print_group(ngroups);
	ngroups++;
}

static unsigned int group_steps(void)
{
	unsigned int n = 0;
	size_t i;

	for (i = 0; i < NIMPLS; i++)
		n += opt.use[i] || i == 0;
	return n;
}

static void set_cpus(struct snb_cfg *cfg)
{
	int i;

	for (i = 0; i < SNB_MAX_THREADS; i++)
		cfg->cpus[i] = opt.cpus[i % opt.ncpus];
}

/* ---- wakeup: a sleeping consumer woken by a publish ---- */

static void print_wake_head(const struct result *r)
{
	const struct snb_wake_cfg *w = &r->wcfg;

	printf("\nwakeup: publish to sleeping consumer running; producer on CPU %d, consumer on CPU %d,\n"
	       "sn ring's home CPU %d (its sn/N thread), kthread row poll_mode=%s, kick row off;\n"
	       "%llu rounds x %u: the producer waits until the consumer sleeps, then a random 0-%.1f us\n"
	       "wakes/s: rounds per second, those waits included; vs kthread: row p50 / kthread p50\n",
	       w->prod_cpu, w->cons_cpu, w->home_cpu, w->poll_mode,
	       (unsigned long long)w->rounds, r->repeats, w->gap_ns / 1e3);
	printf("  %-9s %9s %7s %9s %9s %9s %8s %8s %8s %10s\n", "impl",
	       "wakes/s", "spread", "p50 ns", "p99 ns", "p99.9 ns", "sleeps",
	       "wakeups", "kicks", "vs kthread");
}

static void print_wake_row(const struct result *r)
{
	double adv = advantage(r);

	if (print_unmeasured(r, 9, "skipped: ", ""))
		return;
	printf("  %-9s %9.0f %6.1f%% %9.0f %9.0f %9.0f %8llu %8llu %8llu ",
	       r->impl, r->rate, 100 * (r->rate_max - r->rate_min) / r->rate,
	       r->p50, r->p99, r->p999, (unsigned long long)r->sleeps,
	       (unsigned long long)r->wakeups, (unsigned long long)r->kicks);
	if (adv > 0)
		printf("%9.2fx\n", adv);
	else
		printf("%10s\n", "-");
}

/* One wakeup row: a warm-up run, then the timed repeats. */
static void measure_wake(unsigned int impl, const struct snb_wake_cfg *wc,
			 const struct snb_cfg *cfg)
{
	struct result *res = new_result();
	struct snb_wake_cfg warm = *wc;
	struct snb_wake_run run;
	double rates[64];
	uint32_t *lat = NULL;
	size_t nlat = 0;
	unsigned int r;

	res->scenario = "wakeup";
	res->impl = snb_wake_names[impl];
	res->cfg = *cfg;
	res->group = ngroups;
	res->repeats = opt.repeat;
	res->syscalls_per_msg = -1;
	res->wake = 1;
	res->wcfg = *wc;
	res->skipped = snb_wake_skip(impl, wc);
	if (res->skipped) {
		step++;
		return;
	}
	progress("wakeup", res->impl);
	warm.rounds = wc->rounds / 10 < 100 ? 100 : wc->rounds / 10;
	if (warm.rounds > wc->rounds)
		warm.rounds = wc->rounds;
	if (snb_wake_run(impl, &warm, &run)) {
		res->failed = 1;
		return;
	}
	free(run.lat);
	for (r = 0; r < opt.repeat; r++) {
		if (snb_wake_run(impl, wc, &run)) {
			res->failed = 1;
			free(lat);
			return;
		}
		rates[r] = (double)run.rounds / run.seconds;
		lat = realloc(lat, (nlat + run.nlat + 1) * sizeof(*lat));
		if (!lat)
			die("out of memory");
		memcpy(lat + nlat, run.lat, run.nlat * sizeof(*lat));
		nlat += run.nlat;
		free(run.lat);
		res->sleeps += run.sleeps;
		res->wakeups += run.wakeups;
		res->kicks += run.kicks;
	}
	qsort(rates, opt.repeat, sizeof(rates[0]), cmp_double);
	res->rate = opt.repeat % 2 ? rates[opt.repeat / 2] :
		    (rates[opt.repeat / 2 - 1] + rates[opt.repeat / 2]) / 2;
	res->rate_min = rates[0];
	res->rate_max = rates[opt.repeat - 1];
	qsort(lat, nlat, sizeof(*lat), cmp_u32);
	res->p50 = quantile(lat, nlat, 0.50) * snb_tsc_ns;
	res->p99 = quantile(lat, nlat, 0.99) * snb_tsc_ns;
	res->p999 = quantile(lat, nlat, 0.999) * snb_tsc_ns;
	free(lat);
}

static void run_wakeup(const struct snb_cfg *cfg, unsigned int gap_ns,
		       const char *poll_mode)
{
	struct snb_wake_cfg wc = {
		.rounds = cfg->messages,
		.prod_cpu = opt.cpus[0],
		.cons_cpu = opt.cpus[1 % opt.ncpus],
		.home_cpu = opt.cpus[opt.ncpus >= 3 ? 2 : 1 % opt.ncpus],
		.gap_ns = gap_ns,
		.poll_mode = poll_mode,
	};
	unsigned int i;

	if (opt.ncpus < 2)
		fprintf(stderr, "snbench: wakeup: one CPU allowed: producer and consumer share it\n");
	nsteps = 0;
	for (i = 0; i < SNB_WAKE_IMPLS; i++)
		nsteps += opt.use_wake[i];
	for (i = 0; i < SNB_WAKE_IMPLS; i++)
		if (opt.use_wake[i])
			measure_wake(i, &wc, cfg);
	snb_wake_restore();
	progress_done();
	print_group(ngroups);
	ngroups++;
}

/* ---- the targets ---- */

static const struct result *find(const char *scenario, const char *impl,
				 enum snb_type type, unsigned int producers,
				 unsigned int batch)
{
	size_t i;

	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (!strcmp(r->scenario, scenario) && !strcmp(r->impl, impl) &&
		    (!strcmp(scenario, "pingpong") ||
		     (r->cfg.type == type && r->cfg.producers == producers &&
		      r->cfg.batch == batch)) &&
		    !r->skipped && !r->failed)
			return r;
	}
	return NULL;
}

/* The best peer's throughput in @group: queues only, no libsn row (libsn,
 * libsn_zc), no yardstick (bare_*, raw_*, memcpy). */
static const struct result *best_peer(int group)
{
	const struct result *best = NULL;
	size_t i;

	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->group != group || !strncmp(r->impl, "libsn", 5) ||
		    r->skipped || r->failed || is_yardstick(r))
			continue;
		if (!best || r->rate > best->rate)
			best = r;
	}
	return best;
}

#define TARGET_W 56

/* One target: its name, the ratio measured, met or MISSED. */
static void target(const char *what, double ratio, double need, int higher,
		   const char *detail)
{
	if (opt.json)
		return;
	if (ratio <= 0) {
		printf("  %-*s not measured in this run (%s)\n", TARGET_W, what,
		       detail);
		return;
	}
	printf("  %-*s %6.2fx  %s  (%s)\n", TARGET_W, what, ratio,
	       (higher ? ratio >= need : ratio <= need) ? "met   " : "MISSED",
	       detail);
}

/* libsn against the best peer and against bare, SPSC at @batch. */
static void spsc_targets(const char *name, unsigned int batch,
			 const char *peer, double need_peer)
{
	const struct result *sn, *p, *b;
	char what[96], d[160];

	sn = find("message_passing", "libsn", SNB_SPSC, 1, batch);
	p = !sn ? NULL : peer ? find("message_passing", peer, SNB_SPSC, 1, batch) :
	    best_peer(sn->group);
	snprintf(what, sizeof(what), "%s: libsn vs %s >= %gx", name,
		 peer ? peer : "best peer", need_peer);
	snprintf(d, sizeof(d), "%s%s", peer ? "" : "best peer ",
		 p ? p->impl : peer ? "not run" : "-");
	if (peer && p)
		snprintf(d, sizeof(d), "%.2f vs %.2f Mmsg/s", sn->rate / 1e6,
			 p->rate / 1e6);
	target(what, sn && p ? sn->rate / p->rate : 0, need_peer, 1, d);
	b = sn ? group_bare(sn->group) : NULL;
	snprintf(what, sizeof(what), "%s: libsn vs bare (batch %u) >= 0.5x",
		 name, batch);
	if (b)
		snprintf(d, sizeof(d), "bare = %s, %.2f vs %.2f Mmsg/s",
			 b->impl, sn->rate / 1e6, b->rate / 1e6);
	else
		snprintf(d, sizeof(d), "--peers without bare_cached, bare_seq");
	target(what, b ? sn->rate / b->rate : 0, 0.5, 1, d);
}

static void bridge_targets(void);

static void print_targets(void)
{
	const struct result *sn, *p;
	char d[160];
	double worst_sys = -1;
	size_t i;

	if (opt.json)
		return;
	printf("\ntargets, ratios from this run:\n");
	spsc_targets("SPSC single-message", 1, NULL, 3);
	spsc_targets("SPSC burst-32", 32, "rte_ring", 1.5);
	sn = find("pingpong", "libsn", SNB_SPSC, 1, 1);
	p = find("pingpong", "raw_2line", SNB_SPSC, 1, 1);
	if (sn && p)
		snprintf(d, sizeof(d), "p50 %.0f ns vs %.0f ns", sn->p50,
			 p->p50);
	else
		snprintf(d, sizeof(d), "--peers without raw_2line");
	target("pingpong p50 half round trip: libsn <= 1.15x raw_2line",
	       sn && p && p->p50 > 0 ? sn->p50 / p->p50 : 0, 1.15, 0, d);
	for (int t = SNB_MPSC; t <= SNB_MPMC; t++)
		for (unsigned int np = 1; np <= 2; np++) {
			char what[96];

			sn = find("message_passing", "libsn", t, np, 1);
			p = sn ? best_peer(sn->group) : NULL;
			snprintf(what, sizeof(what),
				 "%s %u producer%s: libsn vs best peer >= 1.5x",
				 t == SNB_MPSC ? "MPSC" : "MPMC", np,
				 np > 1 ? "s" : "");
			snprintf(d, sizeof(d), "best peer %s",
				 p ? p->impl : "-");
			target(what, p ? sn->rate / p->rate : 0, 1.5, 1, d);
		}
	for (i = 0; i < nresults; i++)
		if (!strcmp(results[i].impl, "libsn") && !results[i].skipped &&
		    !results[i].failed && results[i].syscalls_per_msg > worst_sys)
			worst_sys = results[i].syscalls_per_msg;
	if (worst_sys >= 0)
		printf("  %-*s %6.3g per 10^6 messages  %s  (libsn's kicks + sleeps, worst run)\n",
		       TARGET_W, "hot-path syscalls <= 1 per 10^6 messages",
		       worst_sys * 1e6, worst_sys * 1e6 <= 1 ? "met" : "MISSED");
	printf("  %-*s not in the suite: snbench worker_pool\n", TARGET_W,
	       "worker pool, 1 worker vs SPSC channel >= 0.5x");
	printf("  %-*s not in the suite: snbench worker_pool --workers 16\n",
	       TARGET_W, "worker pool, 16 workers vs 1 >= 14x on 16+ cores");
	printf("  %-*s not in the suite: snbench sizes\n", TARGET_W,
	       "sizes: 4 KiB copy, 64 KiB and 1 MiB zero-copy");
	bridge_targets();
}

/* ---- worker_pool: msg/s for 1, 2, 4, ... workers ---- */

/* One pool size: a warm-up run, then the timed repeats. @max_msg_size:
 * the pool's (records above msg_size). */
static void measure_pool(unsigned int workers, const struct snb_cfg *cfg,
			 unsigned int max_msg_size)
{
	struct result *res = new_result();
	struct snb_pool_cfg pc = {
		.workers = workers, .msg_size = cfg->msg_size,
		.max_msg_size = max_msg_size,
		.batch = cfg->batch, .capacity = cfg->capacity,
		.messages = cfg->messages, .cpus = opt.cpus,
		.ncpus = (unsigned int)opt.ncpus,
	};
	struct snb_pool_run run;
	double rates[64], cpu0;
	uint64_t sent = 0;
	unsigned int r;
	char what[64];

	res->scenario = "worker_pool";
	res->impl = "libsn";
	res->cfg = *cfg;
	/* what was sent: messages / workers per submitter */
	res->cfg.messages = cfg->messages / workers * workers;
	res->cfg.producers = res->cfg.consumers = workers;
	res->group = ngroups;
	res->repeats = opt.repeat;
	res->syscalls_per_msg = -1;
	res->pool = 1;
	res->workers = workers;
	res->max_msg_size = max_msg_size;
	snprintf(what, sizeof(what), "worker_pool %u workers%s", workers,
		 max_msg_size ? " records" : "");
	progress(what, "libsn");
	pc.messages = cfg->messages / 10 < 1000 * workers ?
		      1000 * workers : cfg->messages / 10;
	if (pc.messages > cfg->messages)
		pc.messages = cfg->messages;
	if (snb_pool_run(&pc, &run)) {
		res->failed = 1;
		return;
	}
	pc.messages = cfg->messages;
	cpu0 = process_cpu_ns();
	for (r = 0; r < opt.repeat; r++) {
		if (snb_pool_run(&pc, &run)) {
			res->failed = 1;
			return;
		}
		rates[r] = (double)run.handled / run.seconds;
		res->submitted += run.submitted;
		res->handled += run.handled;
		res->shared_cpus = run.shared_cpus;
		sent += run.sent;
	}
	/* pool creation and thread start are in it too: an upper bound */
	res->cpu_per_msg = (process_cpu_ns() - cpu0) / (double)sent;
	qsort(rates, opt.repeat, sizeof(rates[0]), cmp_double);
	res->rate = opt.repeat % 2 ? rates[opt.repeat / 2] :
		    (rates[opt.repeat / 2 - 1] + rates[opt.repeat / 2]) / 2;
	res->rate_min = rates[0];
	res->rate_max = rates[opt.repeat - 1];
}

/* The pool's msg/s over the channel's, and what a message costs each. */
static void pool_vs_channel(const struct result *ch, size_t first)
{
	size_t i;

	if (opt.json)
		return;
	if (!ch || ch->failed || ch->skipped || ch->rate <= 0) {
		printf("\npool vs SPSC channel: the channel was not measured\n");
		return;
	}
	printf("\npool vs SPSC channel, same batch (%u) and message size (%u B), this run: channel %.2f Mmsg/s, %.1f ns/msg,\n"
	       "%.1f CPU ns/msg (process CPU time over messages: both threads, spinning included; unlike msg/s, not\n"
	       "lowered by other work on the machine); CPU ratio: the channel's CPU ns/msg over the pool's\n",
	       ch->cfg.batch, ch->cfg.msg_size, ch->rate / 1e6,
	       1e9 / ch->rate, ch->cpu_per_msg);
	for (i = first; i < nresults; i++) {
		const struct result *r = &results[i];

		if (!r->pool || r->failed || r->rate <= 0)
			continue;
		printf("  %2u worker%s%s %6.2f Mmsg/s %7.1f ns/msg  %5.2fx the channel  %6.1f CPU ns/msg  CPU ratio %4.2fx",
		       r->workers, r->workers > 1 ? "s" : " ",
		       r->max_msg_size ? " records" : "", r->rate / 1e6,
		       1e9 / r->rate, r->rate / ch->rate, r->cpu_per_msg,
		       ch->cpu_per_msg / r->cpu_per_msg);
		if (r->workers == 1 && !r->max_msg_size)
			printf("  target worker pool, 1 worker vs SPSC channel >= 0.5x: %s",
			       r->rate >= 0.5 * ch->rate ? "met" : "MISSED");
		printf("\n");
	}
}

/* @records: with a max_msg_size, also 1 worker through records. */
static void run_worker_pool(const struct snb_cfg *cfg, unsigned int max,
			    unsigned int records)
{
	const struct result *one = NULL, *ch;
	struct snb_cfg cc = *cfg;
	size_t first, i;
	unsigned int w;

	if (cfg->messages < max)
		die("worker_pool: --messages below --workers");
	nsteps = 1;
	for (w = 1; w < max; w *= 2)
		nsteps++;
	nsteps += 1 + !!records;
	/* the yardstick: libsn's SPSC channel, same batch, size, CPUs */
	cc.type = SNB_SPSC;
	cc.producers = cc.consumers = 1;
	measure(&snb_impl_sn, "message_passing", &cc, 0);
	progress_done();
	/* JSON: the channel's rate is in each pool row, one row per size */
	if (!opt.json)
		print_group(ngroups);
	ngroups++;
	first = nresults;
	for (w = 1; w < max; w *= 2)
		measure_pool(w, cfg, 0);
	measure_pool(max, cfg, 0);
	/* the same traffic through records: what they cost */
	if (records)
		measure_pool(1, cfg, records);
	ch = &results[first - 1];	/* results may have moved */
	for (i = first; i < nresults; i++) {
		if (results[i].workers == 1 && !results[i].failed &&
		    !results[i].max_msg_size)
			one = &results[i];
		if (!ch->failed && !ch->skipped)
			results[i].channel_rate = ch->rate;
	}
	for (i = first; i < nresults; i++)
		if (one && !results[i].failed && one->rate > 0)
			results[i].speedup = results[i].rate / one->rate;
	progress_done();
	print_group(ngroups);
	ngroups++;
	pool_vs_channel(ch, first);
	if (opt.json)
		return;
	for (i = first; i < nresults; i++)
		if (results[i].workers == 16 && !results[i].max_msg_size)
			break;
	if (i < nresults && !results[i].failed && results[i].speedup > 0)
		printf("\ntarget worker pool, 16 workers vs 1 >= 14x on 16+ cores: %.2fx %s%s\n",
		       results[i].speedup,
		       results[i].speedup >= 14 ? "met" : "MISSED",
		       opt.online < 16 ? " (this machine has fewer than 16 CPUs online: not a fair test)" :
		       results[i].shared_cpus ? " (submitters share the workers' CPUs: fewer than 32 allowed)" : "");
	else
		printf("\ntarget worker pool, 16 workers vs 1 >= 14x on 16+ cores: not measured in this run (--workers 16 on a 16+ core machine)\n");
}

static void print_pool_head(const struct result *r)
{
	printf("\nworker_pool: libsn pool, %u B messages, batch %u, capacity %u per lane, hash partitioner,\n"
	       "block backpressure, workers pinned to CPUs in --cpus order, one submitter thread per worker\n"
	       "(pinned to the CPUs after the workers' when enough, else round robin over them);\n"
	       "%llu messages (at most, --messages) x %u; msg/s from releasing the submitters to the end of\n"
	       "sn_pool_shutdown() (every message handled); speedup: msg/s / 1 worker's msg/s; no latency\n",
	       r->cfg.msg_size, r->cfg.batch, r->cfg.capacity,
	       (unsigned long long)r->cfg.messages, r->repeats);
	printf("  %7s %9s %7s %8s %12s %12s %s\n", "workers", "Mmsg/s",
	       "spread", "speedup", "submitted", "handled", "submitters");
}

static void print_pool_row(const struct result *r)
{
	if (r->failed) {
		printf("  %7u FAILED (see stderr)\n", r->workers);
		return;
	}
	printf("  %7u %9.2f %6.1f%% %7.2fx %12llu %12llu %s", r->workers,
	       r->rate / 1e6, 100 * (r->rate_max - r->rate_min) / r->rate,
	       r->speedup, (unsigned long long)r->submitted,
	       (unsigned long long)r->handled,
	       r->shared_cpus ? "share the workers' CPUs" : "own CPUs");
	if (r->max_msg_size)
		printf(", records (max_msg_size %u)", r->max_msg_size);
	printf("\n");
}

/*
 * The usual fields, then workers, speedup and the counts; no latency
 * fields (p50_ns, p99_ns, p999_ns): the pool carries no stamps.
 */
static void print_pool_json(const struct result *r)
{
	print_json_head(r, "pool", opt.cpus[0], opt.cpus[1 % opt.ncpus]);
	printf(",\"workers\":%u,\"partitioner\":\"hash\","
	       "\"backpressure\":\"block\",\"submitters_share_cpus\":%s,"
	       "\"max_msg_size\":%u",
	       r->workers, r->shared_cpus ? "true" : "false",
	       r->max_msg_size);
	if (r->failed) {
		printf(",\"failed\":true}\n");
		return;
	}
	printf(",\"msgs_per_sec\":%.0f,\"msgs_per_sec_min\":%.0f,"
	       "\"msgs_per_sec_max\":%.0f,\"speedup\":%.4f,"
	       "\"channel_msgs_per_sec\":%.0f,\"vs_channel\":%.4f,"
	       "\"submitted\":%llu,\"handled\":%llu}\n",
	       r->rate, r->rate_min, r->rate_max, r->speedup,
	       r->channel_rate,
	       r->channel_rate > 0 ? r->rate / r->channel_rate : 0,
	       (unsigned long long)r->submitted,
	       (unsigned long long)r->handled);
	fflush(stdout);
}

/* ---- sizes: msg/s and GB/s for messages of 16 B to 1 MiB ---- */

/* @size as "16 B", "4 KiB", "1 MiB", in @buf (16 bytes). */
static const char *size_name(unsigned int size, char *buf)
{
	if (size >= (1U << 20) && !(size & ((1U << 20) - 1)))
		snprintf(buf, 16, "%u MiB", size >> 20);
	else if (size >= 1024 && !(size & 1023))
		snprintf(buf, 16, "%u KiB", size >> 10);
	else
		snprintf(buf, 16, "%u B", size);
	return buf;
}

/* The measured row @impl of the sweep's @size-byte cell, or NULL. */
static const struct result *size_cell(unsigned int size, const char *impl)
{
	size_t i;

	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->sizes && r->cfg.msg_size == size &&
		    !strcmp(r->impl, impl) && !r->skipped && !r->failed)
			return r;
	}
	return NULL;
}

static double gbps(const struct result *r)
{
	return r->rate * r->cfg.msg_size / 1e9;
}

/* @r's msg/s over @than's (0: either not measured). */
static double ratio(const struct result *r, const struct result *than)
{
	return r && than && !r->skipped && !r->failed && than->rate > 0 ?
	       r->rate / than->rate : 0;
}

static unsigned int size_copies(const char *impl)
{
	size_t i;

	for (i = 0; i < SIZE_ROWS; i++)
		if (!strcmp(size_rows[i].im->name, impl))
			return size_rows[i].copies;
	return 0;
}

static void print_sizes_head(const struct result *r)
{
	char b[16];

	printf("\nsizes %s: 1 producer (CPU %d), 1 consumer (CPU %d), one message a call, buffer %zu KiB,\n"
	       "%u timed runs of about %.2f s each (messages calibrated per row)\n",
	       size_name(r->cfg.msg_size, b), r->cfg.cpus[0], r->cfg.cpus[1],
	       snb_sizes_buffer(r->cfg.msg_size) >> 10, r->repeats,
	       opt.seconds);
	printf("  %-10s %6s %9s %8s %7s %12s %9s %10s\n", "impl", "copies",
	       "Mmsg/s", "GB/s", "spread", "vs best peer", "vs memcpy",
	       "messages");
}

static void print_sizes_row(const struct result *r)
{
	const struct result *p = best_peer(r->group);
	const struct result *m = size_cell(r->cfg.msg_size, "memcpy");

	if (print_unmeasured(r, 10, "(not run: ", ")"))
		return;
	printf("  %-10s %6u %9.3f %8.3f %6.1f%% ", r->impl,
	       size_copies(r->impl), r->rate / 1e6, gbps(r),
	       100 * (r->rate_max - r->rate_min) / r->rate);
	if (ratio(r, p) > 0)
		printf("%11.2fx ", ratio(r, p));
	else
		printf("%12s ", "-");
	if (ratio(r, m) > 0)
		printf("%8.2fx ", ratio(r, m));
	else
		printf("%9s ", "-");
	printf("%10llu\n", (unsigned long long)r->cfg.messages);
}

static void print_sizes_json(const struct result *r)
{
	const struct result *p = best_peer(r->group);
	const struct result *m = size_cell(r->cfg.msg_size, "memcpy");

	print_json_head(r, type_names[r->cfg.type], r->cfg.cpus[0],
			r->cfg.cpus[1]);
	printf(",\"buffer\":%zu,\"copies\":%u",
	       snb_sizes_buffer(r->cfg.msg_size), size_copies(r->impl));
	if (print_json_unmeasured(r))
		return;
	printf(",\"msgs_per_sec\":%.0f,\"msgs_per_sec_min\":%.0f,"
	       "\"msgs_per_sec_max\":%.0f,\"gb_per_sec\":%.4f",
	       r->rate, r->rate_min, r->rate_max, gbps(r));
	if (p)
		printf(",\"best_peer\":\"%s\",\"best_peer_gb_per_sec\":%.4f,"
		       "\"vs_best_peer\":%.4f", p->impl, gbps(p), ratio(r, p));
	if (m)
		printf(",\"memcpy_gb_per_sec\":%.4f,\"vs_memcpy\":%.4f",
		       gbps(m), ratio(r, m));
	printf("}\n");
	fflush(stdout);
}

/*
 * The messages of one timed run of about opt.seconds: runs of 64, 256,
 * 1024, ... messages until one takes 20 ms and carries 1024 messages or
 * 64 MiB (a warm-up too; a probe that a busy machine stalled does not
 * make the timed runs tiny). 0: @im skips the cell or a run failed
 * (measure() then says which).
 */
static uint64_t sizes_messages(const struct snb_impl *im,
			       const struct snb_cfg *cfg0)
{
	struct snb_cfg cfg = *cfg0;
	struct snb_run run;
	uint64_t n;

	if (im->skip && im->skip(&cfg, 0))
		return 0;
	for (n = 64;; n *= 4) {
		cfg.messages = n;
		if (snb_run_mp(im, &cfg, &run)) {
			free(run.lat);
			return 0;
		}
		free(run.lat);
		if ((run.seconds >= 0.02 &&
		     (n >= 1024 || n * cfg.msg_size >= (64ULL << 20))) ||
		    n >= (1ULL << 32))
			break;
	}
	n = (uint64_t)((double)n * opt.seconds / run.seconds);
	return n < 16 ? 16 : n;
}

/* The summary: GB/s of each size and the ratios the targets read. */
static void sizes_summary(void)
{
	unsigned int i;
	char b[16];

	printf("\nsizes, GB/s (10^9 bytes of messages a second) and ratios from this run; best peer: the\n"
	       "fastest of pipe, socketpair, vmsplice and uring_pipe at that size; copy: libsn, zc: libsn_zc\n");
	printf("  %-7s %8s %8s %8s %8s %-10s %9s %9s %9s\n", "size", "libsn",
	       "libsn_zc", "memcpy", "peer", "(best)", "copy/peer",
	       "zc/peer", "zc/memcpy");
	for (i = 0; i < opt.nsizes; i++) {
		unsigned int sz = opt.sizes[i];
		const struct result *c = size_cell(sz, "libsn");
		const struct result *z = size_cell(sz, "libsn_zc");
		const struct result *m = size_cell(sz, "memcpy");
		const struct result *p = c ? best_peer(c->group) :
					 z ? best_peer(z->group) : NULL;
		const struct result *cells[] = { c, z, m, p };
		double rs[] = { ratio(c, p), ratio(z, p), ratio(z, m) };

		printf("  %-7s", size_name(sz, b));
		for (size_t k = 0; k < 4; k++)
			if (cells[k])
				printf(" %8.3f", gbps(cells[k]));
			else
				printf(" %8s", "-");
		printf(" %-10s", p ? p->impl : "-");
		for (size_t k = 0; k < 3; k++)
			if (rs[k] > 0)
				printf(" %8.2fx", rs[k]);
			else
				printf(" %9s", "-");
		printf("\n");
	}
}

/* One target of the sweep: libsn row @impl at @size over @than (the best
 * peer, or the row named so) >= @need. */
static void sizes_target(unsigned int size, const char *impl,
			 const char *than, double need)
{
	const struct result *r = size_cell(size, impl), *t = NULL;
	char what[96], d[160], b[16];
	int peer = !strcmp(than, "best peer");

	if (r)
		t = peer ? best_peer(r->group) : size_cell(size, than);
	snprintf(what, sizeof(what), "sizes %s: %s vs %s %s %gx",
		 size_name(size, b), strcmp(impl, "libsn") ? "zero-copy" : "copy",
		 than, peer ? ">=" : "GB/s >", need);
	if (r && t)
		snprintf(d, sizeof(d), "%s%s, %.3f vs %.3f GB/s",
			 peer ? "best peer " : "", t->impl, gbps(r), gbps(t));
	else
		snprintf(d, sizeof(d), "%s", r ? "no peer measured" :
			 "not in --sizes or --peers");
	target(what, ratio(r, t), need, 1, d);
}

static void run_sizes(const struct snb_cfg *cfg0)
{
	struct snb_cfg cfg = *cfg0;
	unsigned int i, j;

	cfg.type = SNB_SPSC;
	cfg.producers = cfg.consumers = 1;
	cfg.batch = 1;
	nsteps = 0;
	for (j = 0; j < SIZE_ROWS; j++)
		nsteps += opt.use_size[j] * opt.nsizes;
	if (!opt.json) {
		printf("\nsizes: the rows (copies: of each message's bytes, per message)\n");
		for (j = 0; j < SIZE_ROWS; j++)
			if (opt.use_size[j])
				printf("  %-10s %u  %s\n", size_rows[j].im->name,
				       size_rows[j].copies, size_rows[j].what);
		printf("GB/s: msg/s x size; libsn_zc's counts bytes delivered in place, not bytes moved\n");
	}
	for (i = 0; i < opt.nsizes; i++) {
		cfg.msg_size = opt.sizes[i];
		cfg.capacity = (unsigned int)(snb_sizes_buffer(cfg.msg_size) /
					      cfg.msg_size);
		for (j = 0; j < SIZE_ROWS; j++) {
			const struct snb_impl *im = size_rows[j].im;

			if (!opt.use_size[j])
				continue;
			cfg.messages = cfg0->messages;
			if (!cfg.messages)
				cfg.messages = sizes_messages(im, &cfg);
			if (!cfg.messages)
				cfg.messages = 1000;
			measure(im, "sizes", &cfg, 0);
			results[nresults - 1].sizes = 1;
		}
		progress_done();
		print_group(ngroups);
		ngroups++;
	}
	if (opt.json)
		return;
	sizes_summary();
	printf("\ntargets, ratios from this run:\n");
	sizes_target(4096, "libsn", "best peer", 3);
	sizes_target(65536, "libsn_zc", "best peer", 10);
	sizes_target(65536, "libsn_zc", "memcpy", 1);
	sizes_target(1U << 20, "libsn_zc", "best peer", 10);
	sizes_target(1U << 20, "libsn_zc", "memcpy", 1);
}

/* ---- bridge: libsnbridge over loopback TCP against bare ZeroMQ ---- */

#define BRIDGE_BATCH	64		/* frame_msgs; zmq: per zmq message */
#define BRIDGE_SECONDS	0.3		/* a timed run, calibrated */

/* The bridge's sizes: --sizes when given (checked here), else 16, 64K. */
static void bridge_sizes(void)
{
	unsigned int i;

	if (!opt.sizes_set) {
		opt.sizes[0] = 16;
		opt.sizes[1] = 65536;
		opt.nsizes = 2;
		return;
	}
	for (i = 0; i < opt.nsizes; i++)
		if (opt.sizes[i] % 8 || opt.sizes[i] > SN_CHANNEL_MAX_SLOT_SIZE)
			die("bridge: --sizes: multiples of 8 from 16 to 64K (a channel's slot)");
}

static unsigned int bridge_steps(void)
{
	return SNB_BRIDGE_IMPLS * opt.nsizes;
}

/* Slots of each bridge channel: 4096 (sn-bridge's default), fewer for
 * large messages (16 MiB a channel at most, 4 frames at least). */
static unsigned int bridge_slots(unsigned int size)
{
	unsigned int slots = 4096;

	while (slots > 4 * BRIDGE_BATCH && (uint64_t)slots * size > (16U << 20))
		slots /= 2;
	return slots;
}

/* The target for @size (0: none). */
static double bridge_need(unsigned int size)
{
	return size == 16 ? 0.2 : size == 65536 ? 0.5 : 0;
}

/*
 * One row of the bridge scenario: the setup, a warm-up run that also
 * calibrates the messages of a timed run to about BRIDGE_SECONDS (unless
 * --messages), then the timed repeats.
 */
static void measure_bridge(unsigned int impl, const struct snb_cfg *cfg0,
			   unsigned int size)
{
	struct result *res = new_result();
	struct snb_bridge_cfg bc = {
		.msg_size = size, .batch = BRIDGE_BATCH,
		.slots = bridge_slots(size),
	};
	struct snb_bridge_run run;
	double rates[64];
	uint64_t n;
	unsigned int r;
	char what[64], b[16];
	void *ctx;

	res->scenario = "bridge";
	res->impl = snb_bridge_names[impl];
	res->cfg = *cfg0;
	res->cfg.type = SNB_MPSC;
	res->cfg.producers = res->cfg.consumers = 1;
	res->cfg.msg_size = size;
	res->cfg.batch = BRIDGE_BATCH;
	res->cfg.capacity = bc.slots;
	res->group = ngroups;
	res->repeats = opt.repeat;
	res->syscalls_per_msg = -1;
	res->bridge = 1;
	res->skipped = snb_bridge_skip();
	if (res->skipped) {
		step++;
		return;
	}
	snprintf(what, sizeof(what), "bridge %s", size_name(size, b));
	progress(what, res->impl);
	ctx = snb_bridge_open(impl, &bc);
	if (!ctx) {
		res->failed = 1;
		return;
	}
	/* warm-up: a tenth of --messages, else about 32 MiB or 250000 */
	n = cfg0->messages ? cfg0->messages / 10 :
	    (32ULL << 20) / size < 250000 ? (32ULL << 20) / size : 250000;
	if (n < 1000)
		n = 1000;
	if (cfg0->messages && n > cfg0->messages)
		n = cfg0->messages;
	if (snb_bridge_run(ctx, n, &run))
		goto fail;
	n = cfg0->messages ? cfg0->messages :
	    (uint64_t)((double)n * BRIDGE_SECONDS / run.seconds);
	if (n < 1000)
		n = 1000;
	res->cfg.messages = n;
	for (r = 0; r < opt.repeat; r++) {
		if (snb_bridge_run(ctx, n, &run))
			goto fail;
		rates[r] = (double)run.received / run.seconds;
		res->frames += run.frames;
		res->resent += run.resent;
		res->go_backs += run.go_backs;
		res->stalls += run.stalls;
	}
	snb_bridge_close(ctx);
	qsort(rates, opt.repeat, sizeof(rates[0]), cmp_double);
	res->rate = opt.repeat % 2 ? rates[opt.repeat / 2] :
		    (rates[opt.repeat / 2 - 1] + rates[opt.repeat / 2]) / 2;
	res->rate_min = rates[0];
	res->rate_max = rates[opt.repeat - 1];
	return;
fail:
	snb_bridge_close(ctx);
	res->failed = 1;
}

/* The measured row @impl of the bridge's @size, or NULL. */
static const struct result *bridge_cell(unsigned int size, const char *impl)
{
	size_t i;

	for (i = 0; i < nresults; i++) {
		const struct result *r = &results[i];

		if (r->bridge && r->cfg.msg_size == size &&
		    !strcmp(r->impl, impl) && !r->skipped && !r->failed)
			return r;
	}
	return NULL;
}

/* libsnbridge's msg/s over zmq's at @r's size (0: either not measured). */
static double bridge_ratio(const struct result *r)
{
	const struct result *s = bridge_cell(r->cfg.msg_size, "libsnbridge");

	return s && s->zmq_rate > 0 ? s->rate / s->zmq_rate : 0;
}

static void print_bridge_head(const struct result *r)
{
	char b[16];

	printf("\nbridge %s: producer -> egress MPSC channel -> bridge A -> tcp://127.0.0.1 -> bridge B ->\n"
	       "ingress SPSC channel -> consumer, one process, threads not pinned; batch %u (frame_msgs),\n"
	       "%u slots a channel; zmq: PUSH -> tcp://127.0.0.1 -> PULL, %u messages per ZeroMQ message,\n"
	       "HWM %u; %llu messages x %u (--messages, else calibrated to about %.1f s a run)\n",
	       size_name(r->cfg.msg_size, b), r->cfg.batch, r->cfg.capacity,
	       r->cfg.batch, SN_BRIDGE_HWM,
	       (unsigned long long)r->cfg.messages, r->repeats, BRIDGE_SECONDS);
	printf("  %-11s %9s %7s %8s %9s %8s %8s %8s\n", "impl", "Mmsg/s",
	       "spread", "GB/s", "frames", "resent", "stalls", "vs zmq");
}

static void print_bridge_row(const struct result *r)
{
	if (print_unmeasured(r, 11, "(not run: ", ")"))
		return;
	printf("  %-11s %9.3f %6.1f%% %8.3f ", r->impl, r->rate / 1e6,
	       100 * (r->rate_max - r->rate_min) / r->rate, gbps(r));
	if (!strcmp(r->impl, "libsnbridge"))
		printf("%9llu %8llu %8llu ", (unsigned long long)r->frames,
		       (unsigned long long)r->resent,
		       (unsigned long long)r->stalls);
	else
		printf("%9s %8s %8s ", "-", "-", "-");
	if (bridge_ratio(r) > 0)
		printf("%7.2fx\n", strcmp(r->impl, "zmq") ? bridge_ratio(r) : 1.0);
	else
		printf("%8s\n", "-");
}

/*
 * The usual fields (cpus: -1, not pinned), GB/s, and on the libsnbridge
 * row the bridge's counts, zmq's msg/s, the ratio and its target; no
 * latency fields (none is measured).
 */
static void print_bridge_json(const struct result *r)
{
	double need = bridge_need(r->cfg.msg_size), ratio = bridge_ratio(r);

	print_json_head(r, type_names[r->cfg.type], -1, -1);
	printf(",\"frame_msgs\":%u,\"msgs_per_zmq_msg\":%u", r->cfg.batch,
	       r->cfg.batch);
	if (print_json_unmeasured(r))
		return;
	printf(",\"msgs_per_sec\":%.0f,\"msgs_per_sec_min\":%.0f,"
	       "\"msgs_per_sec_max\":%.0f,\"gb_per_sec\":%.4f",
	       r->rate, r->rate_min, r->rate_max, gbps(r));
	if (!strcmp(r->impl, "libsnbridge")) {
		printf(",\"frames_sent\":%llu,\"msgs_resent\":%llu,"
		       "\"go_backs\":%llu,\"stalls\":%llu",
		       (unsigned long long)r->frames,
		       (unsigned long long)r->resent,
		       (unsigned long long)r->go_backs,
		       (unsigned long long)r->stalls);
		if (ratio > 0) {
			printf(",\"zmq_msgs_per_sec\":%.0f,\"vs_zmq\":%.4f",
			       r->zmq_rate, ratio);
			if (need > 0)
				printf(",\"target\":%.2f,\"target_met\":%s", need,
				       ratio >= need ? "true" : "false");
		}
	}
	printf("}\n");
	fflush(stdout);
}

/* The bridge's targets, each measured or said not to be. */
static void bridge_targets(void)
{
	static const unsigned int sizes[] = { 16, 65536 };
	size_t i;

	for (i = 0; i < 2; i++) {
		const struct result *s = bridge_cell(sizes[i], "libsnbridge");
		const struct result *z = bridge_cell(sizes[i], "zmq");
		char what[96], d[160], b[16];

		snprintf(what, sizeof(what), "bridge %s: libsnbridge vs zmq >= %gx",
			 size_name(sizes[i], b), bridge_need(sizes[i]));
		if (s && z)
			snprintf(d, sizeof(d), "%.3f vs %.3f Mmsg/s, batch %u",
				 s->rate / 1e6, z->rate / 1e6, s->cfg.batch);
		else
			snprintf(d, sizeof(d), "%s", snb_bridge_skip() ?
				 snb_bridge_skip() : "not in --sizes, or failed");
		target(what, s && z ? s->rate / z->rate : 0,
		       bridge_need(sizes[i]), 1, d);
	}
}

/* The bridge scenario: each size a group, libsnbridge and zmq; @alone:
 * run as its own scenario (then its targets follow). */
static void run_bridge(const struct snb_cfg *cfg, int alone)
{
	unsigned int i, j;

	if (alone)
		nsteps = bridge_steps();
	for (i = 0; i < opt.nsizes; i++) {
		size_t first = nresults;

		for (j = 0; j < SNB_BRIDGE_IMPLS; j++)
			measure_bridge(j, cfg, opt.sizes[i]);
		/* zmq's msg/s on the libsnbridge row */
		if (!results[first].skipped && !results[first].failed &&
		    !results[first + 1].skipped && !results[first + 1].failed)
			results[first].zmq_rate = results[first + 1].rate;
		progress_done();
		print_group(ngroups);
		ngroups++;
	}
	if (alone && !opt.json) {
		printf("\ntargets, ratios from this run:\n");
		bridge_targets();
	}
}

/* --sizes: a list of byte counts, K and M binary (4K = 4096). */
static void parse_sizes(const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok, *end;

	opt.nsizes = 0;
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		unsigned long long v = strtoull(tok, &end, 0);

		if (*end == 'k' || *end == 'K')
			v <<= 10, end++;
		else if (*end == 'm' || *end == 'M')
			v <<= 20, end++;
		if (*end || v < 16 || v > (16U << 20))
			die("--sizes: byte counts from 16 to 16M (K, M: 1024, 1048576)");
		if (opt.nsizes == SIZES_MAX)
			die("--sizes: at most 16 sizes");
		opt.sizes[opt.nsizes++] = (unsigned int)v;
	}
	free(copy);
	if (!opt.nsizes)
		die("--sizes: empty list");
}

/* ---- machine ---- */

static void machine(void)
{
	FILE *f = fopen("/proc/cpuinfo", "r");
	char line[512];
	struct utsname u;
	cpu_set_t set;
	int i;

	strcpy(opt.cpu_model, "unknown");
	while (f && fgets(line, sizeof(line), f)) {
		char *c = strchr(line, ':');

		if (!strncmp(line, "model name", 10) && c) {
			c += 2;
			c[strcspn(c, "\n")] = 0;
			/* keep it JSON-safe */
			for (char *s = c; *s; s++)
				if (*s == '"' || *s == '\\')
					*s = ' ';
			snprintf(opt.cpu_model, sizeof(opt.cpu_model), "%s", c);
			break;
		}
	}
	if (f)
		fclose(f);
	uname(&u);
	snprintf(opt.kernel, sizeof(opt.kernel), "%s", u.release);
	opt.online = (int)sysconf(_SC_NPROCESSORS_ONLN);
	if (!opt.ncpus) {
		if (sched_getaffinity(0, sizeof(set), &set))
			die("sched_getaffinity failed");
		for (i = 0; i < CPU_SETSIZE && opt.ncpus < SNB_MAX_THREADS; i++)
			if (CPU_ISSET(i, &set))
				opt.cpus[opt.ncpus++] = i;
	}
	opt.backend = snb_backend(&opt.fence);
	if (opt.backend < 0)
		die("libsn cannot create a channel");
}

static void print_machine(void)
{
	if (opt.json)
		return;
	printf("snbench %s: libsn against its peers, same CPUs and message counts\n",
	       SN_VERSION);
	printf("machine: %s, %d CPUs online, Linux %s, TSC %.2f GHz\n",
	       opt.cpu_model, opt.online, opt.kernel, 1 / snb_tsc_ns);
	printf("libsn backend: %s (%s)\n", sn_backend_name(opt.backend),
	       opt.backend == SN_BACKEND_KERNEL ? "/dev/sn, sn.ko loaded" :
	       "/dev/sn absent: sealed memfd rings, same ring format and inline hot path");
	printf("libsn fence: %s (%s)\n", sn_fence_name(opt.fence),
	       opt.fence == SN_FENCE_ASYM ?
	       "no barrier per message: sleepers pay, by IPIs (sn.ko) or membarrier(2)" :
	       "a full barrier per send and release: membarrier unavailable, asym=0 or SN_FENCE=full");
	{
		double load = 0;
		FILE *f = fopen("/proc/loadavg", "r");

		if (f && fscanf(f, "%lf", &load) == 1 &&
		    load > 0.5 * opt.online)
			printf("WARNING: the machine is busy (load average %.2f on %d CPUs): other work shares these CPUs, expect noisy numbers and a wide spread\n",
			       load, opt.online);
		if (f)
			fclose(f);
	}
	printf("threads pinned round robin to CPUs");
	for (int i = 0; i < opt.ncpus; i++)
		printf("%s%d", i ? "," : " ", opt.cpus[i]);
	printf("; Mmsg/s: median of the timed runs; spread: (max-min)/median;\n"
	       "latency: TSC stamps carried in 1 of 2^k messages (message_passing: under\n"
	       "full load, so it includes queueing; pingpong: every round trip, stamp to\n"
	       "stamp, so the mean half round trip is 1 / msg/s); sn adv: libsn msg/s /\n"
	       "peer msg/s (pingpong: peer p50 / libsn p50), > 1: libsn is better; vs bare\n"
	       "(SPSC): msg/s / bare's, bare = the better of bare_cached and bare_seq, two\n"
	       "minimal SPSC rings (no sleeping, no stats) at the same batch in this run\n");
}

/* ---- plot ---- */

static void plot(const char *png)
{
	char dat[] = "/tmp/snbench-XXXXXX";
	FILE *f, *g;
	int fd, g_n = 0, has[NIMPLS] = { 0 };
	size_t i, j, ncols = 0;

	if (system("command -v gnuplot >/dev/null 2>&1")) {
		if (geteuid() == 0) {
			fprintf(stderr, "snbench: gnuplot missing: installing gnuplot-nox (apt-get)\n");
			if (system("DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends gnuplot-nox >/dev/null"))
				die("apt-get install gnuplot-nox failed");
		} else {
			die("--plot needs gnuplot: as root run: apt-get install gnuplot-nox");
		}
	}
	fd = mkstemp(dat);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		die("cannot write the plot data");
	/* one row per group, one column per implementation: msg/s (M) */
	/* the implementations measured at least once */
	for (j = 0; j < NIMPLS; j++)
		for (i = 0; i < nresults && !has[j]; i++)
			has[j] = !strcmp(results[i].impl, all_impls[j]->name) &&
				 !results[i].skipped && !results[i].failed;
	fprintf(f, "group");
	for (j = 0; j < NIMPLS; j++)
		if (has[j]) {
			fprintf(f, " %s", all_impls[j]->name);
			ncols++;
		}
	fprintf(f, "\n");
	for (int grp = 0; grp < ngroups; grp++) {
		const struct result *first = NULL;

		for (i = 0; i < nresults && !first; i++)
			if (results[i].group == grp)
				first = &results[i];
		if (!first || first->bridge)
			continue;
		if (!strcmp(first->scenario, "pingpong"))
			fprintf(f, "\"pingpong\\n(1000/p50ns)\"");
		else
			fprintf(f, "\"%s %uP/%uC\\nb%u %uB\"",
				type_names[first->cfg.type],
				first->cfg.producers, first->cfg.consumers,
				first->cfg.batch, first->cfg.msg_size);
		for (j = 0; j < NIMPLS; j++) {
			const struct result *r = NULL;

			if (!has[j])
				continue;
			for (i = 0; i < nresults; i++)
				if (results[i].group == grp &&
				    !strcmp(results[i].impl, all_impls[j]->name))
					r = &results[i];
			if (!r || r->skipped || r->failed)
				fprintf(f, " ?");
			else if (!strcmp(r->scenario, "pingpong"))
				fprintf(f, " %.4f", r->p50 > 0 ? 1000 / r->p50 : 0);
			else
				fprintf(f, " %.4f", r->rate / 1e6);
		}
		fprintf(f, "\n");
		g_n++;
	}
	fclose(f);
	g = popen("gnuplot", "w");
	if (!g)
		die("cannot run gnuplot");
	fprintf(g, "set terminal pngcairo size 1400,700 noenhanced\n"
		"set output '%s'\n"
		"set title 'snbench: libsn (%s backend) and peers, %s, %d CPUs; higher is better'\n"
		"set style data histograms\nset style histogram clustered gap 1\n"
		"set style fill solid border -1\nset logscale y\n"
		"set ylabel 'million messages/s (pingpong: 1000 / half round trip ns)'\n"
		"set key outside right\nset grid ytics\nset datafile missing '?'\n"
		"set bmargin 5\n"
		"plot for [c=2:%zu] '%s' using c:xtic(1) title columnheader(c)\n",
		png, sn_backend_name(opt.backend), opt.cpu_model, opt.online,
		ncols + 1, dat);
	if (pclose(g))
		fprintf(stderr, "snbench: gnuplot failed (pngcairo terminal missing?)\n");
	else if (!opt.json)
		printf("\nplot: %s (%d groups)\n", png, g_n);
	unlink(dat);
}

/* ---- options ---- */

/*
 * --peers: sets use[i] for each of the @n rows @names[i] in @list ("all",
 * "none", or names separated by commas), and use[0], the reference row,
 * always; an unknown name ends the run.
 */
/* @val, a value of option @what, is none of @names (@n): says so, lists
 * them, exits 2. @also: other values that are valid, or "". */
static void not_one_of(const char *what, const char *val,
		       const char *const *names, size_t n, const char *also)
{
	size_t i;

	fprintf(stderr, "snbench: %s %s: not one of %s", what, val, also);
	for (i = 0; i < n; i++)
		fprintf(stderr, "%s%s", i || *also ? ", " : "", names[i]);
	fprintf(stderr, "\n");
	exit(2);
}

/* The index of @val in @names, or not_one_of(). */
static size_t one_of(const char *what, const char *val,
		     const char *const *names, size_t n)
{
	size_t i;

	for (i = 0; i < n; i++)
		if (!strcmp(val, names[i]))
			return i;
	not_one_of(what, val, names, n, "");
	return 0;
}

static void pick_rows(const char *list, const char *const *names, size_t n,
		      int *use)
{
	char *copy, *save = NULL, *tok;
	size_t i;

	for (i = 0; i < n; i++)
		use[i] = !i || !strcmp(list, "all");
	if (!strcmp(list, "none") || !strcmp(list, "all"))
		return;
	copy = strdup(list);
	for (tok = strtok_r(copy, ",", &save); tok;
	     tok = strtok_r(NULL, ",", &save)) {
		for (i = 0; i < n; i++)
			if (!strcmp(tok, names[i]))
				break;
		if (i == n)
			not_one_of("--peers", tok, names + 1, n - 1,
				   "all, none");
		use[i] = 1;
	}
	free(copy);
}

static void use_peers(const char *list)
{
	const char *names[NIMPLS];
	size_t i;

	for (i = 0; i < NIMPLS; i++)
		names[i] = all_impls[i]->name;
	pick_rows(list, names, NIMPLS, opt.use);
}

static void use_size_peers(const char *list)
{
	const char *names[SIZE_ROWS];
	size_t i;

	for (i = 0; i < SIZE_ROWS; i++)
		names[i] = size_rows[i].im->name;
	pick_rows(list, names, SIZE_ROWS, opt.use_size);
}

static void parse_cpus(const char *s)
{
	char *copy = strdup(s), *save = NULL, *tok;

	opt.ncpus = 0;
	for (tok = strtok_r(copy, ",", &save); tok && opt.ncpus < SNB_MAX_THREADS;
	     tok = strtok_r(NULL, ",", &save))
		opt.cpus[opt.ncpus++] = atoi(tok);
	free(copy);
	if (!opt.ncpus)
		die("--cpus: empty list");
}

static unsigned long long num(const char *s, const char *what)
{
	char *end;
	unsigned long long v = strtoull(s, &end, 0);

	if (*end == 'k' || *end == 'K')
		v *= 1000, end++;
	else if (*end == 'm' || *end == 'M')
		v *= 1000000, end++;
	if (*end || !v || *s == '-') {
		fprintf(stderr, "snbench: %s %s: not a whole number above 0 "
			"(k, m: times 10^3, 10^6)\n", what, s);
		exit(2);
	}
	return v;
}

/* A number of option @what from @lo to @hi, or exits 2 saying why. */
static double real(const char *s, const char *what, double lo, double hi)
{
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= lo && v <= hi)) {
		fprintf(stderr, "snbench: %s %s: not a number from %g to %g\n",
			what, s, lo, hi);
		exit(2);
	}
	return v;
}

static const char *const scenario_names[] = {
	"suite", "message_passing", "pingpong", "wakeup", "worker_pool",
	"sizes", "bridge",
};
static const char *const poll_modes[] = { "adaptive", "always" };

/* names[1..n-1] of @names (names[0], libsn's row, always runs). */
static void list_names(FILE *f, const char *const *names, size_t n)
{
	size_t i;

	for (i = 1; i < n; i++)
		fprintf(f, "%s%s", i > 1 ? ", " : "", names[i]);
}

static void usage(int st)
{
	FILE *f = st ? stderr : stdout;
	const char *names[NIMPLS > SIZE_ROWS ? NIMPLS : SIZE_ROWS];
	size_t i;

	if (st) {
		fprintf(f, "usage: snbench [SCENARIO] [options]; snbench --help lists them\n");
		exit(st);
	}
	fprintf(f,
		"usage: snbench [SCENARIO] [options]\n"
		"scenarios (default: suite):\n"
		"  suite            the short suite of make bench: SPSC single messages and bursts of 32,\n"
		"                   MPSC and MPMC with 1 and 2 producers, pingpong, then the targets\n"
		"  message_passing  producers stream messages to consumers as fast as the queue takes them\n"
		"  pingpong         one message bounced between two CPUs over two SPSC queues\n"
		"  wakeup           sleeping-consumer wake latency (the sn rows need /dev/sn and root)\n"
		"  worker_pool      libsn's worker pool, msg/s for 1, 2, 4, ... --workers workers\n"
		"  sizes            msg/s and GB/s per message size, libsn copying and zero copy\n"
		"  bridge           msg/s through two libsnbridge bridges over loopback TCP at batch 64,\n"
		"                   against bare ZeroMQ PUSH/PULL with 64 messages per ZeroMQ message\n"
		"                   (build/snbench only: snbench-static has no libzmq)\n"
		"peers (--peers LIST|all|none; libsn's row always runs):\n"
		"  suite, message_passing, pingpong: ");
	for (i = 0; i < NIMPLS; i++)
		names[i] = all_impls[i]->name;
	list_names(f, names, NIMPLS);
	fprintf(f, "\n    (bare_* and raw_* are yardsticks, never the best peer; eventfd and\n"
		"    io_uring run SPSC only, raw_* pingpong only)\n  wakeup: ");
	list_names(f, snb_wake_names, SNB_WAKE_IMPLS);
	fprintf(f, " (kthread, libsn's row, always runs)\n  sizes: ");
	for (i = 0; i < SIZE_ROWS; i++)
		names[i] = size_rows[i].im->name;
	list_names(f, names, SIZE_ROWS);
	fprintf(f, "\n"
		"options (default):\n"
		"  --type spsc|mpsc|mpmc    ring type (spsc)\n"
		"  --producers N            (1)\n"
		"  --consumers N            (1; the suite's MPMC rows: 2)\n"
		"  --msg-size BYTES         16..4096, a multiple of 8 (16)\n"
		"  --batch N                messages per send/receive call, at most 1024 (1;\n"
		"                           worker_pool: 32)\n"
		"  --capacity SLOTS         per producer; worker_pool: per ingress lane (1024)\n"
		"  --messages N             per run (message_passing, worker_pool: 1000000; pingpong:\n"
		"                           100000 round trips; suite: 250000, its pingpong 50000;\n"
		"                           wakeup: 10000 rounds; sizes: calibrated per row)\n"
		"  --repeat N               timed runs after one warm-up, at most 64 (3)\n"
		"  --peers LIST|all|none    (all)\n"
		"  --cpus LIST              CPUs to pin to, round robin (every allowed CPU)\n"
		"  --sample-shift K         stamp 1 message in 2^K, 0..30 (6)\n"
		"  --json                   one JSON object per result per line (off: a table)\n"
		"  --plot FILE.png          a chart with gnuplot (none)\n"
		"  --quiet                  no progress on stderr (off)\n"
		"  --version                prints \"snbench %s\"\n"
		"  --help                   this text\n"
		"  wakeup:\n"
		"  --gap-us US              the producer's random gap after the consumer sleeps (10)\n"
		"  --poll-mode adaptive|always  the kthread row's sn poll_mode (always)\n"
		"  worker_pool:\n"
		"  --workers N              at most 64 (the online CPUs, at most 64)\n"
		"  --max-msg-size BYTES     also 1 worker whose pool carries records up to BYTES (none)\n"
		"  sizes:\n"
		"  --sizes LIST             16 B..16M; K, M: 1024, 1048576 (16,256,4K,64K,1M)\n"
		"  --seconds S              one timed run of a cell, up to 60 (0.1)\n"
		"  bridge (also in the suite):\n"
		"  --sizes LIST             message sizes, multiples of 8 from 16 to 64K (16,64K)\n"
		"  --messages N             per timed run (calibrated to about 0.3 s a run)\n", SN_VERSION);
	exit(st);
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "type", 1, 0, 't' }, { "producers", 1, 0, 'p' },
		{ "consumers", 1, 0, 'c' }, { "msg-size", 1, 0, 's' },
		{ "batch", 1, 0, 'b' }, { "capacity", 1, 0, 'C' },
		{ "messages", 1, 0, 'n' }, { "repeat", 1, 0, 'r' },
		{ "peers", 1, 0, 'P' }, { "json", 0, 0, 'j' },
		{ "plot", 1, 0, 'g' }, { "cpus", 1, 0, 'u' },
		{ "quiet", 0, 0, 'q' }, { "workers", 1, 0, 'w' },
		{ "sample-shift", 1, 0, 'k' }, { "help", 0, 0, 'h' },
		{ "gap-us", 1, 0, 'G' }, { "poll-mode", 1, 0, 'M' },
		{ "sizes", 1, 0, 'S' }, { "seconds", 1, 0, 'T' },
		{ "max-msg-size", 1, 0, 'X' }, { "version", 0, 0, 'V' },
		{ 0, 0, 0, 0 }
	};
	struct snb_cfg cfg = {
		.type = SNB_SPSC, .producers = 1, .consumers = 1,
		.msg_size = 16, .batch = 1, .capacity = 1024,
		.sample_shift = 6,
	};
	const char *scenario = "suite", *peers = "all", *poll_mode = "always";
	unsigned int gap_ns = 10000;
	int c, workers = 0, batch_set = 0;
	unsigned int records = 0;

	opt.repeat = 3;
	opt.seconds = 0.1;
	parse_sizes("16,256,4K,64K,1M");
	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 't':
			cfg.type = (enum snb_type)one_of("--type", optarg,
							 type_names, 3);
			break;
		case 'p': cfg.producers = (unsigned int)num(optarg, "--producers"); break;
		case 'c': cfg.consumers = (unsigned int)num(optarg, "--consumers"); break;
		case 's': cfg.msg_size = (unsigned int)num(optarg, "--msg-size"); break;
		case 'b':
			cfg.batch = (unsigned int)num(optarg, "--batch");
			batch_set = 1;
			break;
		case 'C': cfg.capacity = (unsigned int)num(optarg, "--capacity"); break;
		case 'n': cfg.messages = num(optarg, "--messages"); break;
		case 'r': opt.repeat = (unsigned int)num(optarg, "--repeat"); break;
		case 'P': peers = optarg; break;
		case 'j': opt.json = 1; break;
		case 'g': opt.plot = optarg; break;
		case 'u': parse_cpus(optarg); break;
		case 'q': opt.quiet = 1; break;
		case 'w': workers = (int)num(optarg, "--workers"); break;
		case 'k':
			cfg.sample_shift = (unsigned int)real(optarg,
						"--sample-shift", 0, 30);
			break;
		case 'X': records = (unsigned int)num(optarg, "--max-msg-size"); break;
		case 'G':
			gap_ns = (unsigned int)(real(optarg, "--gap-us", 0,
						     1e6) * 1000);
			break;
		case 'M':
			poll_mode = poll_modes[one_of("--poll-mode", optarg,
						      poll_modes, 2)];
			break;
		case 'S':
			parse_sizes(optarg);
			opt.sizes_set = 1;
			break;
		case 'T':
			opt.seconds = real(optarg, "--seconds", 0, 60);
			if (!(opt.seconds > 0))
				die("--seconds: more than 0, at most 60");
			break;
		case 'h': usage(0); break;
		case 'V':
			printf("snbench %s\n", SN_VERSION);
			return 0;
		default: usage(2);
		}
	}
	if (optind < argc)
		scenario = scenario_names[one_of("scenario", argv[optind++],
			scenario_names, sizeof(scenario_names) /
					sizeof(scenario_names[0]))];
	if (optind < argc)
		usage(2);
	if (!strcmp(scenario, "wakeup"))
		pick_rows(peers, snb_wake_names, SNB_WAKE_IMPLS, opt.use_wake);
	else if (!strcmp(scenario, "sizes"))
		use_size_peers(peers);
	else
		use_peers(peers);
	if (opt.plot && !strcmp(scenario, "wakeup"))
		die("--plot draws the throughput groups: not wakeup");
	if (cfg.msg_size < 16 || cfg.msg_size % 8 || cfg.msg_size > 4096)
		die("--msg-size: a multiple of 8 from 16 to 4096");
	if (cfg.batch > SNB_MAX_BATCH)
		die("--batch: at most 1024");
	if (opt.repeat > 64)
		die("--repeat: at most 64");
	if (cfg.sample_shift > 30)
		die("--sample-shift: at most 30");
	if (cfg.type == SNB_SPSC && cfg.producers != 1)
		die("spsc has one producer");
	if (cfg.type != SNB_MPMC && cfg.consumers != 1)
		die("spsc and mpsc have one consumer");
	if (cfg.producers + cfg.consumers > SNB_MAX_THREADS)
		die("too many threads");
	if (cfg.producers >= (1U << 16))
		die("too many producers");

	if (opt.plot && (!strcmp(scenario, "worker_pool") ||
			 !strcmp(scenario, "sizes") || !strcmp(scenario, "bridge")))
		die("--plot draws the peers' groups: not worker_pool, sizes or bridge");
	if (!strcmp(scenario, "suite") || !strcmp(scenario, "bridge"))
		bridge_sizes();
	if (workers > SNB_MAX_THREADS)
		die("--workers: at most 64");
	snb_tsc_calibrate();
	machine();
	set_cpus(&cfg);
	print_machine();
	if (!strcmp(scenario, "message_passing")) {
		if (!cfg.messages)
			cfg.messages = 1000000;
		nsteps = group_steps();
		run_group("message_passing", &cfg, 0);
	} else if (!strcmp(scenario, "pingpong")) {
		if (!cfg.messages)
			cfg.messages = 100000;
		nsteps = group_steps();
		run_group("pingpong", &cfg, 1);
	} else if (!strcmp(scenario, "wakeup")) {
		/* msg_size: the 16-byte stamp each wake carries */
		cfg.msg_size = sizeof(struct snb_msg);
		cfg.capacity = 16;	/* the sn ring's slots */
		if (!cfg.messages)
			cfg.messages = 10000;
		run_wakeup(&cfg, gap_ns, poll_mode);
	} else if (!strcmp(scenario, "worker_pool")) {
		if (!batch_set)
			cfg.batch = 32;
		if (!cfg.messages)
			cfg.messages = 1000000;
		if (!workers)
			workers = opt.online < 1 ? 1 :
				  opt.online > SNB_MAX_THREADS ?
				  SNB_MAX_THREADS : opt.online;
		if (records && records <= cfg.msg_size)
			die("worker_pool: --max-msg-size must exceed --msg-size");
		run_worker_pool(&cfg, (unsigned int)workers, records);
	} else if (!strcmp(scenario, "sizes")) {
		run_sizes(&cfg);
	} else if (!strcmp(scenario, "bridge")) {
		run_bridge(&cfg, 1);
	} else if (!strcmp(scenario, "suite")) {
		/* the short suite: at most 2 minutes on a 2-core machine */
		struct snb_cfg s = cfg;
		uint64_t n = cfg.messages ? cfg.messages : 250000;

		nsteps = 7 * group_steps() + bridge_steps();
		s.messages = n;
		s.type = SNB_SPSC;
		run_group("message_passing", &s, 0);
		s.batch = 32;
		run_group("message_passing", &s, 0);
		s.batch = cfg.batch;
		for (int t = SNB_MPSC; t <= SNB_MPMC; t++)
			for (unsigned int np = 1; np <= 2; np++) {
				s.type = t;
				s.producers = np;
				s.consumers = t == SNB_MPMC ? 2 : 1;
				run_group("message_passing", &s, 0);
			}
		s = cfg;
		s.messages = cfg.messages ? cfg.messages : 50000;
		run_group("pingpong", &s, 1);
		/* the bridge at its own sizes and batch; --messages applies */
		run_bridge(&cfg, 0);
		print_targets();
		if (!opt.json)
			printf("\nnot in the suite: worker_pool (snbench worker_pool); wake latency: snbench wakeup;\n"
			       "message sizes 16 B to 1 MiB: snbench sizes\n");
	}
	if (opt.plot)
		plot(opt.plot);
	for (size_t i = 0; i < nresults; i++)
		if (results[i].failed)
			return 1;
	return 0;
}
