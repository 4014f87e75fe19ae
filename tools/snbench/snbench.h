/* SPDX-License-Identifier: MIT */
/*
 * snbench: libsn against its peers, in one run, with the same pinning and
 * message counts. Shared definitions: the configuration of one run, its
 * result, the peers' interface and the hot loops every peer instantiates
 * with its own inline send/receive (so no peer pays an indirect call).
 */
#ifndef SNBENCH_H
#define SNBENCH_H

#include <stdatomic.h>
#include <stddef.h>
#include <stdint.h>

#define SNB_MAX_THREADS	64
#define SNB_MAX_BATCH	1024

enum snb_type { SNB_SPSC, SNB_MPSC, SNB_MPMC };

/* One message: what every peer carries, padded to msg_size bytes. */
struct snb_msg {
	uint64_t seq;		/* producer << 48 | sequence number */
	uint64_t stamp;		/* TSC at send for sampled messages, else 0 */
};
#define SNB_SEQ_MASK	((1ULL << 48) - 1)

/*
 * The header of a message of the sizes sweep's rows that write messages
 * in place (libsn_zc, vmsplice): struct snb_msg, then the message's
 * length, as much of it as the message holds (16 B: no length).
 */
struct snb_hdr {
	struct snb_msg m;
	uint64_t len;
};

/* The configuration of one message_passing or pingpong measurement. */
struct snb_cfg {
	enum snb_type type;
	unsigned int producers, consumers;
	unsigned int msg_size;		/* bytes, a multiple of 8, >= 16 */
	unsigned int batch;
	unsigned int capacity;		/* slots per producer */
	uint64_t messages;		/* per run, over all producers */
	unsigned int sample_shift;	/* stamp 1 message in 2^shift */
	int cpus[SNB_MAX_THREADS];	/* the CPU of thread i (producers first) */
};

/* What one run measured. */
struct snb_run {
	double seconds;
	uint64_t received;
	uint64_t lib_syscalls;		/* libsn: kicks + sleeps (stats) */
	uint32_t *lat;			/* latency samples, TSC ticks */
	size_t nlat;
};

/*
 * A peer. Message passing goes through an opaque queue with per-thread
 * handles; the hot loops are made by SNB_DEFINE_LOOPS. A peer that cannot
 * do a configuration says why in skip() (NULL: it can).
 */
struct snb_worker;
struct snb_impl {
	const char *name;
	const char *(*skip)(const struct snb_cfg *cfg, int pingpong);
	void *(*create)(const struct snb_cfg *cfg);
	void (*destroy)(void *q);
	void *(*prod_open)(void *q, unsigned int idx);
	void *(*cons_open)(void *q, unsigned int idx);
	void (*prod_close)(void *h);
	void (*cons_close)(void *h);
	/* unblocks consumers that sleep in the kernel (NULL: they spin) */
	void (*shutdown)(void *q);
	/* the lib's own syscalls in the run (NULL: not known) */
	uint64_t (*syscalls)(void *q);
	void (*producer)(struct snb_worker *w);
	void (*consumer)(struct snb_worker *w);
	void (*ping)(struct snb_worker *w);
	void (*pong)(struct snb_worker *w);
	/* pingpong runs both directions through one queue (raw_line) */
	int pp_one_queue;
};

/* The shared state of one run; each worker gets a pointer to it. */
struct snb_shared {
	const struct snb_cfg *cfg;
	atomic_uint ready;
	atomic_int go;
	atomic_int stop;
	atomic_int failed;
	uint64_t expected, expected_sum;	/* messages, their checksum */
	struct snb_worker *cons;		/* the consumers' workers */
	unsigned int ncons;
	const char *why;			/* what failed */
	uint64_t ref_ns, ref_tsc;		/* a moment on both clocks */
};

struct snb_worker {
	struct snb_shared *sh;
	void *h, *h2;			/* handles (pingpong: send, receive) */
	unsigned int id;
	int cpu;
	uint64_t count;			/* producer: messages to send */
	uint64_t t_start, t_end;	/* ns, CLOCK_MONOTONIC */
	uint64_t t_end_tsc;		/* TSC of the last receive (or 0) */
	uint64_t t_start_tsc;		/* pingpong: TSC of the first send */
	uint32_t *lat;
	size_t nlat, maxlat;
	/* consumer progress, read by the others on empty polls */
	_Alignas(128) _Atomic uint64_t received;
	uint64_t sum;
	char pad[128 - 16];
};

/* ---- timing (stats.c) ---- */
uint64_t snb_now_ns(void);
extern double snb_tsc_ns;		/* ns per TSC tick */
void snb_tsc_calibrate(void);

static inline uint64_t snb_tsc(void)
{
	uint32_t lo, hi;

	__asm__ __volatile__("rdtsc" : "=a"(lo), "=d"(hi));
	return (uint64_t)hi << 32 | lo;
}

static inline void snb_relax(void)
{
	__asm__ __volatile__("pause" ::: "memory");
}

/* Waits a little when a queue is full or empty: spins, then yields. */
void snb_yield(void);
static inline void snb_backoff(unsigned int *spins)
{
	if (++*spins < 128) {
		snb_relax();
	} else {
		*spins = 0;
		snb_yield();
	}
}

/* ---- harness (harness.c) ---- */
void snb_start(struct snb_worker *w);	/* pins, waits for go */
int snb_all_received(struct snb_worker *w);
void snb_fail(struct snb_worker *w, const char *what);
int snb_run_mp(const struct snb_impl *im, const struct snb_cfg *cfg,
	       struct snb_run *run);
int snb_run_pp(const struct snb_impl *im, const struct snb_cfg *cfg,
	       struct snb_run *run);
int snb_pin(int cpu);
void *snb_buf_alloc(unsigned int size, unsigned int n);
void snb_buf_free(void *p);
/* prod_open/cons_open of a peer whose handles are the queue itself, and
 * prod_close/cons_close with nothing to close */
void *snb_open_queue(void *q, unsigned int idx);
void snb_close_none(void *h);

/* ---- the peers ---- */
extern const struct snb_impl snb_impl_sn, snb_impl_rte, snb_impl_ck,
	snb_impl_pipe, snb_impl_eventfd, snb_impl_socketpair,
	snb_impl_uring, snb_impl_raw, snb_impl_raw2, snb_impl_bare_cached,
	snb_impl_bare_seq;
/* the sizes sweep's rows: libsn's records (sizes.c), vmsplice and
 * uring_pipe (impl_sys.c); one SPSC producer and consumer, batch 1 */
extern const struct snb_impl snb_impl_sn_len, snb_impl_sn_zc, snb_impl_sn_buf,
	snb_impl_memcpy, snb_impl_vmsplice, snb_impl_uring_pipe;
/* The bytes a sweep cell's queue holds for @size-byte messages. */
size_t snb_sizes_buffer(unsigned int size);
#ifdef SNB_CXX_PEERS
extern const struct snb_impl snb_impl_boost, snb_impl_aq;
#endif
int snb_backend(int *fence);			/* SN_BACKEND_* libsn would use */

/*
 * The hot loops. send(h, msgs, n) returns how many of n it sent (0: full,
 * < 0: error); recv(h, msgs, n) how many it received (0: empty, < 0: the
 * queue was shut down or failed). Both are inlined into the loops.
 */
typedef int (*snb_send_fn)(void *h, const void *msgs, unsigned int n);
typedef int (*snb_recv_fn)(void *h, void *msgs, unsigned int n);

#define SNB_INLINE static inline __attribute__((always_inline))

SNB_INLINE void snb_producer_loop(struct snb_worker *w, snb_send_fn send)
{
	const struct snb_cfg *cfg = w->sh->cfg;
	unsigned int size = cfg->msg_size, batch = cfg->batch, spins = 0;
	uint64_t smask = (1ULL << cfg->sample_shift) - 1, seq = 0;
	uint64_t tag = (uint64_t)w->id << 48;
	_Alignas(64) unsigned char buf[SNB_MAX_BATCH * 64];
	unsigned char *msgs = buf;
	unsigned char *heap = NULL;

	if ((size_t)size * batch > sizeof(buf)) {
		heap = snb_buf_alloc(size, batch);
		msgs = heap;
	}
	__builtin_memset(msgs, 0, (size_t)size * batch);
	snb_start(w);
	w->t_start = snb_now_ns();
	while (seq < w->count) {
		unsigned int k = batch, sent = 0, i;

		if (w->count - seq < k)
			k = (unsigned int)(w->count - seq);
		for (i = 0; i < k; i++) {
			struct snb_msg *m = (struct snb_msg *)(msgs + (size_t)i * size);

			m->seq = tag | (seq + i);
			m->stamp = ((seq + i) & smask) ? 0 : snb_tsc();
		}
		while (sent < k) {
			int r = send(w->h, msgs + (size_t)sent * size, k - sent);

			if (r > 0) {
				sent += (unsigned int)r;
				spins = 0;
			} else if (r < 0) {
				snb_fail(w, "send");
				goto out;
			} else {
				snb_backoff(&spins);
			}
		}
		seq += k;
	}
out:
	w->t_end = snb_now_ns();
	snb_buf_free(heap);
}

/* Writes message @seq's header at @msg (@size bytes, as much as fits),
 * stamped as snb_producer_loop stamps. */
SNB_INLINE void snb_hdr_put(const struct snb_worker *w, void *msg,
			    uint64_t seq, unsigned int size)
{
	uint64_t smask = (1ULL << w->sh->cfg->sample_shift) - 1;
	struct snb_hdr h = {
		{ (uint64_t)w->id << 48 | seq, (seq & smask) ? 0 : snb_tsc() },
		size,
	};

	__builtin_memcpy(msg, &h, size < sizeof(h) ? size : sizeof(h));
}

/* Accounts for @k received messages: the checksum and latency samples. */
SNB_INLINE void snb_consume(struct snb_worker *w, const unsigned char *msgs,
			    unsigned int k, unsigned int size)
{
	uint64_t now = 0, sum = 0;
	unsigned int i;

	for (i = 0; i < k; i++) {
		const struct snb_msg *m =
			(const struct snb_msg *)(msgs + (size_t)i * size);

		sum += m->seq & SNB_SEQ_MASK;
		if (m->stamp) {
			if (!now)
				now = snb_tsc();
			if (w->nlat < w->maxlat)
				w->lat[w->nlat++] = (uint32_t)(now - m->stamp);
		}
	}
	w->sum += sum;
	atomic_store_explicit(&w->received,
			      atomic_load_explicit(&w->received,
						   memory_order_relaxed) + k,
			      memory_order_relaxed);
}

SNB_INLINE void snb_consumer_loop(struct snb_worker *w, snb_recv_fn recv)
{
	const struct snb_cfg *cfg = w->sh->cfg;
	unsigned int size = cfg->msg_size, batch = cfg->batch, spins = 0;
	_Alignas(64) unsigned char buf[SNB_MAX_BATCH * 64];
	unsigned char *msgs = buf;
	unsigned char *heap = NULL;

	if ((size_t)size * batch > sizeof(buf)) {
		heap = snb_buf_alloc(size, batch);
		msgs = heap;
	}
	snb_start(w);
	for (;;) {
		int r = recv(w->h, msgs, batch);

		if (r > 0) {
			snb_consume(w, msgs, (unsigned int)r, size);
			spins = 0;
			/* when the last message came: no clock per message
			 * for a lone consumer, the TSC for several */
			if (w->sh->ncons == 1) {
				if (atomic_load_explicit(&w->received,
							 memory_order_relaxed) >=
				    w->sh->expected) {
					w->t_end = snb_now_ns();
					break;
				}
			} else {
				w->t_end_tsc = snb_tsc();
			}
			continue;
		}
		if (snb_all_received(w))
			break;
		if (r < 0) {
			snb_fail(w, "receive");
			break;
		}
		snb_backoff(&spins);
	}
	snb_buf_free(heap);
}

/*
 * Pingpong: the pinger stamps the TSC once per round trip, when the reply
 * arrives; a round trip's latency is the time from the previous stamp to
 * this one, so the samples cover the whole timed loop (the loop's own work
 * included) and add up to its time, from which the throughput comes: the
 * mean half round trip is 1 / msg/s. The ponger echoes. Receiving spins
 * on an empty queue (peers whose receive sleeps in the kernel sleep there).
 */
SNB_INLINE void snb_ping_loop(struct snb_worker *w, snb_send_fn send,
			      snb_recv_fn recv)
{
	_Alignas(64) unsigned char msg[4096];
	uint64_t i, prev, now;

	__builtin_memset(msg, 0, sizeof(msg));
	snb_start(w);
	w->t_start = snb_now_ns();
	prev = w->t_start_tsc = snb_tsc();
	for (i = 0; i < w->count; i++) {
		int r;

		((struct snb_msg *)msg)->seq = i;
		while ((r = send(w->h, msg, 1)) == 0)
			snb_relax();
		if (r < 0)
			goto fail;
		while ((r = recv(w->h2, msg, 1)) == 0)
			snb_relax();
		if (r < 0)
			goto fail;
		if (((struct snb_msg *)msg)->seq != i)
			goto fail;
		now = snb_tsc();
		if (w->nlat < w->maxlat)
			w->lat[w->nlat++] = now - prev > UINT32_MAX ?
					    UINT32_MAX : (uint32_t)(now - prev);
		prev = now;
	}
	w->t_end_tsc = prev;
	w->t_end = snb_now_ns();
	atomic_store(&w->received, w->count);
	return;
fail:
	snb_fail(w, "pingpong");
}

SNB_INLINE void snb_pong_loop(struct snb_worker *w, snb_send_fn send,
			      snb_recv_fn recv)
{
	_Alignas(64) unsigned char msg[4096];
	uint64_t i;
	int r;

	snb_start(w);
	for (i = 0; i < w->count; i++) {
		while ((r = recv(w->h2, msg, 1)) == 0)
			if (atomic_load_explicit(&w->sh->failed,
						 memory_order_relaxed))
				return;
		if (r < 0)
			break;
		while ((r = send(w->h, msg, 1)) == 0)
			snb_relax();
		if (r < 0)
			break;
	}
	if (i < w->count)
		snb_fail(w, "pong");
}

#define SNB_DEFINE_LOOPS(pfx, send, recv)				\
	static void pfx##_producer(struct snb_worker *w)		\
	{ snb_producer_loop(w, send); }					\
	static void pfx##_consumer(struct snb_worker *w)		\
	{ snb_consumer_loop(w, recv); }					\
	static void pfx##_ping(struct snb_worker *w)			\
	{ snb_ping_loop(w, send, recv); }				\
	static void pfx##_pong(struct snb_worker *w)			\
	{ snb_pong_loop(w, send, recv); }

/* ---- the wakeup scenario (wakeup.c) ---- */
#define SNB_WAKE_IMPLS	5
extern const char *const snb_wake_names[SNB_WAKE_IMPLS];

struct snb_wake_cfg {
	uint64_t rounds;		/* sleep/wake cycles per run */
	int prod_cpu, cons_cpu;
	int home_cpu;			/* the sn ring's (its sn/N thread) */
	unsigned int gap_ns;		/* the producer's random gap, at most */
	const char *poll_mode;		/* kthread row: adaptive or always */
};

struct snb_wake_run {
	double seconds;
	uint64_t rounds, sleeps, wakeups, kicks;
	uint32_t *lat;			/* publish to run, TSC ticks */
	size_t nlat;
};

/* Why row @impl cannot run here, or NULL. */
const char *snb_wake_skip(unsigned int impl, const struct snb_wake_cfg *cfg);
int snb_wake_run(unsigned int impl, const struct snb_wake_cfg *cfg,
		 struct snb_wake_run *run);
/* Puts sn.ko's poll_mode back as the first change found it. */
void snb_wake_restore(void);

/* ---- the worker_pool scenario (pool.c) ---- */
struct snb_pool_cfg {
	unsigned int workers;		/* the pool's, and as many submitters */
	unsigned int msg_size, batch, capacity;
	unsigned int max_msg_size;	/* the pool's: above msg_size, records
					 * (the same msg_size messages through
					 * them); 0: fixed slots */
	uint64_t messages;		/* over all submitters: messages / workers each */
	const int *cpus;		/* workers on cpus[0..workers-1], the
					 * submitters after them when there are
					 * enough, else round robin */
	unsigned int ncpus;
};

struct snb_pool_run {
	double seconds;			/* release of the submitters to the end
					 * of sn_pool_shutdown() */
	uint64_t sent;			/* what the submitters sent */
	uint64_t submitted, handled;	/* sn_pool_stats() */
	uint64_t counted;		/* the handlers' own counts, summed */
	int backend;			/* sn_pool_backend() */
	int shared_cpus;		/* submitters share the workers' CPUs */
};

/* One timed run of a pool; 0, or a negative errno (said on stderr). */
int snb_pool_run(const struct snb_pool_cfg *cfg, struct snb_pool_run *run);

/* ---- the bridge scenario (bench_bridge.c) ---- */
enum { SNB_BRIDGE_SN, SNB_BRIDGE_ZMQ, SNB_BRIDGE_IMPLS };
extern const char *const snb_bridge_names[SNB_BRIDGE_IMPLS];

struct snb_bridge_cfg {
	unsigned int msg_size;		/* a multiple of 8, 16..65536 */
	unsigned int batch;		/* frame_msgs; zmq: messages per zmq message */
	unsigned int slots;		/* of each channel (libsnbridge) */
};

struct snb_bridge_run {
	double seconds;			/* release of the producer to the last
					 * message received */
	uint64_t received;
	/* libsnbridge: bridge A's frames_sent, msgs_resent, go_backs and
	 * bridge B's stalls over the run */
	uint64_t frames, resent, go_backs, stalls;
};

/* Why the rows cannot run in this build (no libzmq), or NULL. */
const char *snb_bridge_skip(void);
/* A row's setup (the channels, bridges up; the zmq sockets connected),
 * kept over its runs; NULL when it failed (said on stderr). */
void *snb_bridge_open(unsigned int impl, const struct snb_bridge_cfg *cfg);
/* One run of @messages; 0, or a negative errno (said on stderr). */
int snb_bridge_run(void *ctx, uint64_t messages, struct snb_bridge_run *run);
void snb_bridge_close(void *ctx);

#endif /* SNBENCH_H */
