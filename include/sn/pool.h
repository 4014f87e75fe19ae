/* SPDX-License-Identifier: MIT */
/*
 * libsn worker pool: shared-nothing workers over sn channels.
 *
 * A pool runs N workers, each a thread (pinned to a CPU when asked) that
 * owns its state and is the only one to touch it. Messages reach a worker
 * in two ways, and no ring is ever shared by more than two threads except
 * through its lanes:
 *
 *   mesh     an N x N grid of SPSC channels (Seastar's design): worker i
 *            sends to worker j through channel [i][j], of which it is the
 *            one producer and j the one consumer (i == j included).
 *   ingress  one MPSC channel per worker for threads outside the pool.
 *            Outside threads submit through a struct sn_submitter
 *            (sn_submitter_open()): one lane of every worker's ingress
 *            channel, used by one thread at a time. There are
 *            max_submitters lanes; their producer handles are opened with
 *            the pool, so opening and closing a submitter makes no system
 *            call unless an open waits (sn_submitter_open()).
 *
 * Every message carries an envelope: its source (a worker index or
 * SN_SOURCE_EXTERNAL), a 64-bit key and up to max_msg_size payload bytes
 * (msg_size unless configured longer). A worker handles messages in
 * batches: it gathers up to `batch` messages from its inbound channels
 * (round robin over them, FIFO per lane), calls the handler once with
 * their envelopes (pointing into the rings, no copy), then calls the tick
 * callback; tick runs on every loop iteration, with or without messages.
 *
 * Message sizes. Each message is a 16-byte header (key, source, length)
 * and its payload, written once, from the sender's payload into the ring;
 * the handler reads it there.
 *
 *   fixed slots  (max_msg_size 0 or msg_size, the default) every message
 *                takes one slot of 16 + msg_size bytes (rounded up to 8,
 *                plus the ring's 8-byte slot header, rounded up to 16, 32,
 *                64 or a multiple of 64), whatever its length. The fastest:
 *                sn_submit_batch() reserves and publishes each lane's share
 *                of a chunk at once.
 *   records      (max_msg_size above msg_size) the channels are created
 *                with SN_CHANNEL_VARLEN (sn/channel.h): a message takes
 *                as many consecutive slots as its header and payload need.
 *                A slot is S bytes, S the power of two at or above the
 *                fixed slot's bytes, so a message of up to msg_size payload
 *                bytes takes one slot, a longer one ceil((len + 24) / S).
 *                Costs: a record that does not fit before the end of its
 *                lane leaves the rest of the lane as padding (at most its
 *                own slots less one); every message is reserved and
 *                published on its own (sn_submit_batch() too: one publish
 *                per message); the consumer checks each record's length and
 *                counts each message in the ring's statistics. Pick msg_size
 *                as the common payload and max_msg_size as the longest.
 *
 * Order: messages of one submitter (or one worker) to one worker are
 * handled in the order sent. Messages of one key go to one worker (every
 * partitioner but round robin), so the messages of one key that one thread
 * submits are handled in the order submitted, also when the thread closes
 * its submitter and opens another in between: a closed submitter whose
 * lanes still hold messages stays reserved to the thread that closed it,
 * whose next sn_submitter_open() gets it back, until its lanes drained.
 * (A thread that keeps two submitters open at once has order per
 * submitter.)
 *
 * Idle workers burn no CPU: one with nothing to do spins briefly, then
 * yields the CPU a while (as sn_producer_wait()), then sleeps (unless
 * max_sleep_ns is SN_NO_WAIT: then it polls, yielding). Each worker
 * has its own io_uring instance; one about to sleep announces it, issues
 * a full barrier, checks every inbound ring once more and only then waits
 * in io_uring_submit_and_wait() (the protocol of include/uapi/linux/sn.h):
 *
 *   kernel backend  the worker keeps a multishot poll (IORING_POLL_ADD_MULTI)
 *                   on the consumer fd of each inbound ring; its announcement
 *                   is the ring's cons waiters word, so producers kick
 *                   (SN_IOC_KICK) only while no sn.ko wakeup thread watches
 *                   the ring, and the poll arms those threads.
 *   memfd backend   a memfd is not pollable (a regular file always reads as
 *                   ready), so the worker waits on an eventfd of its own,
 *                   read through the same io_uring. Its announcement is a
 *                   per-worker word of the pool; a pool producer, after
 *                   publishing ([P1] in sn__prod_ship(), <sn/channel.h>,
 *                   pairs with [W1], the ring's heavy barrier the worker
 *                   runs before it sleeps, in sn_worker_sleep()), swaps
 *                   the word to 0 and writes the eventfd if it was set:
 *                   one eventfd write per sleep, none while it works.
 *
 * The eventfd also carries the pool's own wakeups (shutdown) with either
 * backend. Handlers and ticks may submit their own I/O on the worker's
 * io_uring (sn_worker_uring(), sn_worker_sqe()), so one loop serves
 * messages and I/O: every SQE on that ring carries a struct sn_io * as its
 * user_data and the pool calls its done() callback for each completion.
 *
 * Shutdown (sn_pool_shutdown()) holds no lock while it waits, so every
 * function documented as callable from a worker works during it:
 *   1. intake stops: from then on sn_submit*() and sn_submitter_open()
 *      fail with -ESHUTDOWN (a submit waiting for room too) and
 *      sn_worker_stopping() is true (a callback that sees it true sees
 *      intake stopped); shutdown waits for the submissions in progress
 *      to finish;
 *   2. the workers go on, however long that takes, until every message
 *      queued at that moment is handled, and each worker has marked done
 *      (sn_worker_done()) and completed (I/O) as many items as it had
 *      held and started by then;
 *   3. then they go on for at most drain_timeout_ns more, until the pool
 *      is quiescent: what callbacks sent meanwhile is handled too;
 *   4. the workers finish the loop iteration they are in (a send from then
 *      on fails with -ESHUTDOWN), call fini and exit; the pool joins them.
 * So shutdown returns in bounded time whatever callbacks produce after
 * sn_worker_stopping() turned true, as long as each callback returns and
 * what was held before is released. Counts add up: submitted + forwarded
 * == handled + dropped, where dropped is what step 4 left in the rings: 0
 * when the pool became quiescent within step 3.
 *
 * Threads: each function's comment says from which threads it may be
 * called. "Any thread" includes the pool's workers (handlers, ticks, I/O
 * callbacks, init, fini) and holds during sn_pool_shutdown() too.
 *
 * Timeouts follow the channels' convention (sn/channel.h): nanoseconds,
 * SN_NO_WAIT (0) does not wait, SN_WAIT_FOREVER waits without limit.
 *
 * Every function returns a negative errno on failure unless documented
 * otherwise.
 */
#ifndef SN_POOL_H
#define SN_POOL_H

#include <stddef.h>

#include <linux/types.h>

#include <sn/channel.h>

#ifdef __cplusplus
extern "C" {
#endif

struct io_uring;
struct io_uring_sqe;
struct sn_pool;
struct sn_worker;
struct sn_submitter;
struct sn_partitioner;

/* ---- Partitioners (libsn/partition.c) ---- */

/*
 * Which worker a key goes to. Balance is over many distinct keys; movement
 * is the fraction of keys whose worker changes when n workers become n + 1.
 *
 * SN_PART_HASH    sn_mix64(key) reduced to [0, n) by multiply-shift
 *                 ((h * n) >> 64). O(1), no memory. Balance: within
 *                 sampling noise of even (10^6 keys, n <= 64: every worker
 *                 within 2 % of the mean). Movement: about 1/2 of the keys
 *                 (range reduction keeps a key only where [i/n, (i+1)/n)
 *                 and [i/(n+1), (i+1)/(n+1)) overlap; modulo would move
 *                 n/(n+1)). For fixed-size pools.
 * SN_PART_RING    consistent-hash ring: each worker places `vnodes` points
 *                 (default 150) at sn_mix64() of (seed, worker, vnode); a
 *                 key goes to the first point at or after sn_mix64(key).
 *                 O(log(n * vnodes)), n * vnodes * 16 bytes. Balance: load
 *                 std-dev about 1/sqrt(vnodes) (8 % at 150); with 150 vnodes
 *                 and n <= 32 every worker is within SN_RING_BALANCE_PCT
 *                 (30 %) of the mean. Movement: only keys that land on the
 *                 new worker's points move, about 1/(n+1), all of them to
 *                 the new worker.
 * SN_PART_JUMP    Lamping and Veach's jump consistent hash of sn_mix64(key).
 *                 O(log n), no memory. Balance: as SN_PART_HASH. Movement:
 *                 exactly the keys that go to the new worker, 1/(n+1) in
 *                 expectation. Workers can only be added or removed at the
 *                 end.
 * SN_PART_ROUND_ROBIN  ignores the key: each sender (submitter or worker)
 *                 cycles through the workers. Perfect balance of messages,
 *                 no key affinity, so no per-key order across workers;
 *                 movement is meaningless.
 * SN_PART_CUSTOM  the caller's fn(key, n, arg), which must return a value
 *                 below n (others are reduced modulo n) and be thread-safe.
 */
enum sn_part_kind {
	SN_PART_HASH = 0,
	SN_PART_RING = 1,
	SN_PART_JUMP = 2,
	SN_PART_ROUND_ROBIN = 3,
	SN_PART_CUSTOM = 4,
};

#define SN_RING_VNODES_DEFAULT	150U
#define SN_RING_VNODES_MAX	4096U
/* The ring's documented balance bound at the default vnodes, n <= 32. */
#define SN_RING_BALANCE_PCT	30U

typedef unsigned int (*sn_partition_fn)(__u64 key, unsigned int n, void *arg);

struct sn_partitioner_config {
	unsigned int kind;	/* enum sn_part_kind */
	unsigned int vnodes;	/* SN_PART_RING: 0 means the default 150 */
	__u64 seed;		/* SN_PART_RING: where the points go */
	sn_partition_fn fn;	/* SN_PART_CUSTOM */
	void *arg;		/* its argument */
};

/* splitmix64's finaliser: a bijective 64-bit mixer. */
__u64 sn_mix64(__u64 x);

/* Multiply-shift range reduction: (h * n) >> 64, in [0, n) for n > 0. */
static inline __u32 sn_reduce(__u64 h, __u32 n)
{
	__extension__ typedef unsigned __int128 sn__u128;

	return (__u32)(((sn__u128)h * n) >> 64);
}

/* Jump consistent hash of @key (as given, not mixed) into [0, n); n > 0. */
__u32 sn_jump_hash(__u64 key, __u32 n);

/*
 * Creates a partitioner of @cfg->kind over @n buckets (1..65536).
 * Immutable afterwards: sn_partition() may be called from any thread.
 * Errors: -EINVAL (kind, n, vnodes, a missing fn), -ENOMEM.
 */
int sn_partitioner_create(struct sn_partitioner **out,
			  const struct sn_partitioner_config *cfg,
			  unsigned int n);

/* Frees @p. NULL is fine. */
void sn_partitioner_destroy(struct sn_partitioner *p);

/* The number of buckets of @p. */
unsigned int sn_partitioner_buckets(const struct sn_partitioner *p);

/*
 * The bucket of @key, in [0, n). @cursor is the caller's own round-robin
 * counter (SN_PART_ROUND_ROBIN reads and advances it; the others ignore
 * it; NULL makes round robin use the key as the counter).
 */
unsigned int sn_partition(const struct sn_partitioner *p, __u64 key,
			  __u64 *cursor);

/* ---- Messages ---- */

#define SN_SOURCE_EXTERNAL	0xffffffffU

/* What a handler gets for each message; valid during the handler call. */
struct sn_envelope {
	__u64 key;
	__u32 source;		/* sending worker, or SN_SOURCE_EXTERNAL */
	__u32 len;		/* payload bytes, <= max_msg_size */
	const void *payload;	/* 8-byte aligned */
};

/* One message of sn_submit_batch(). */
struct sn_pool_msg {
	__u64 key;
	const void *payload;	/* len bytes (NULL when len is 0) */
	__u32 len;		/* <= max_msg_size */
	__u32 pad;
};

/*
 * An I/O of a worker's io_uring: set done, embed it in your own struct
 * (container_of) and get the SQE with sn_worker_sqe(). done() runs on the
 * worker's thread for each completion (multishot requests complete more
 * than once: IORING_CQE_F_MORE in @cqe_flags says another will follow).
 */
struct sn_io {
	void (*done)(struct sn_worker *w, struct sn_io *io, int res,
		     unsigned int cqe_flags);
};

/* ---- Pool configuration ---- */

/* What a submit does when the worker's ingress lane is full. */
enum sn_backpressure {
	SN_BP_FAIL = 0,		/* -EAGAIN at once */
	SN_BP_BLOCK = 1,	/* wait up to block_timeout_ns for room:
				 * -ETIMEDOUT (SN_NO_WAIT: -EAGAIN at once) */
};

/* The defaults sn_pool_config_init() sets. */
#define SN_POOL_BLOCK_TIMEOUT_NS	(10ULL * 1000000000ULL)	/* 10 s */
#define SN_POOL_DRAIN_TIMEOUT_NS	(1000000000ULL)		/* 1 s */

struct sn_pool_config {
	unsigned int workers;		/* 0: the online CPUs */
	int affinity;			/* pin worker i to a CPU */
	const int *cpus;		/* with affinity: pin worker i to
					 * cpus[i % ncpus]; NULL: the CPUs this
					 * process may run on, i modulo their
					 * count */
	unsigned int ncpus;
	unsigned int queue_capacity;	/* slots per lane (rounded up to a
					 * power of two); 0: 1024. Handlers
					 * read messages in place: a batch
					 * keeps its slots until the handler
					 * returns. With records the slots
					 * are S bytes (see "Message sizes"
					 * at the top): capacity is
					 * queue_capacity msg_size messages,
					 * fewer longer ones; a lane is made
					 * larger (a power of two) where it
					 * could not hold one max_msg_size
					 * message and one slot more, so
					 * that every message fits an empty
					 * lane */
	unsigned int msg_size;		/* payload bytes a slot holds (fixed
					 * slots: the longest payload); 0: 48 */
	unsigned int max_msg_size;	/* the longest payload: 0 or msg_size
					 * for fixed slots; above msg_size,
					 * records of any length up to it
					 * (at most 2^30 - 17, and lanes of
					 * at most SN_CHANNEL_MAX_SLOTS and
					 * SN_CHANNEL_MAX_BYTES); below:
					 * -EINVAL. Every channel's lanes
					 * hold one such message: mind the
					 * n * n + n channels' memory */
	unsigned int batch;		/* most messages per handler call;
					 * 0: 32 */
	unsigned int max_submitters;	/* ingress lanes, 1..64; 0: 8 */
	unsigned int backpressure;	/* enum sn_backpressure; default
					 * SN_BP_BLOCK */
	__u64 block_timeout_ns;		/* SN_BP_BLOCK: the longest a submit
					 * waits for room; default
					 * SN_POOL_BLOCK_TIMEOUT_NS */
	__u64 drain_timeout_ns;		/* shutdown step 3 (see the top);
					 * default SN_POOL_DRAIN_TIMEOUT_NS */
	struct sn_partitioner_config partitioner;	/* default: HASH */
	unsigned int backend;		/* SN_BACKEND_* for the channels;
					 * 0: automatic (sn/channel.h) */
	unsigned int uring_entries;	/* each worker's io_uring SQ; 0: 64 */
	__u64 max_sleep_ns;		/* the longest an idle worker sleeps
					 * before it ticks again; default
					 * SN_WAIT_FOREVER (until work);
					 * SN_NO_WAIT: it never sleeps (polls,
					 * yielding the CPU) */
	size_t state_size;		/* without init: bytes of each worker's
					 * own state, zeroed, 128-byte aligned,
					 * freed by sn_pool_destroy(); 0: the
					 * state is NULL */

	/* Callbacks, all on the worker's own thread. */
	/* Builds the worker's state in *@state before any message; non-zero
	 * fails sn_pool_create() with that value. NULL: each worker's state
	 * is its own block of state_size bytes (never shared, never arg). */
	int (*init)(struct sn_worker *w, void *arg, void **state);
	/* After the last message; frees what init allocated, or leaves the
	 * state for sn_pool_worker_state(). */
	void (*fini)(struct sn_worker *w, void *state);
	/* Handles @n (1..batch) messages; a negative return counts an error
	 * in the worker's statistics, the messages count as handled anyway.
	 * Required. */
	int (*handle)(struct sn_worker *w, void *state,
		      const struct sn_envelope *env, unsigned int n);
	/* Every loop iteration, after the batch if any. */
	void (*tick)(struct sn_worker *w, void *state);
	void *arg;			/* init's argument, sn_worker_arg() */
};

/*
 * Fills @cfg with the defaults: SN_BP_BLOCK with SN_POOL_BLOCK_TIMEOUT_NS,
 * SN_POOL_DRAIN_TIMEOUT_NS, max_sleep_ns SN_WAIT_FOREVER, every other
 * field 0 (see the fields). Start from it: a field set otherwise means
 * what its value says (a zeroed config has SN_BP_FAIL, a drain timeout of
 * SN_NO_WAIT and workers that never sleep). Any thread.
 */
void sn_pool_config_init(struct sn_pool_config *cfg);

/* ---- The pool (libsn/pool.c) ---- */

/*
 * Creates the channels, starts the workers and returns once each ran its
 * init. Errors: -EINVAL (no handler, geometry, CPUs the process may not
 * use, partitioner), what init returned, what channel creation, io_uring
 * setup or pthread_create return. Any thread (a worker creates a pool of
 * its own).
 */
int sn_pool_create(struct sn_pool **out, const struct sn_pool_config *cfg);

/*
 * Graceful shutdown, the four steps at the top; returns once the workers
 * are joined. Idempotent: a second caller, concurrent or later, waits for
 * the first to finish and returns 0. Any thread but the pool's own
 * workers: from one of them it returns -EDEADLK and does nothing (it
 * cannot join itself).
 */
int sn_pool_shutdown(struct sn_pool *pool);

/*
 * Shuts down if still running, then frees everything. Every submitter
 * must be closed first (-EBUSY otherwise, nothing done). From a worker:
 * -EDEADLK, nothing done. Call it once no other call on the pool is in
 * progress or will follow. NULL: 0.
 */
int sn_pool_destroy(struct sn_pool *pool);

/* The number of workers. Any thread. */
unsigned int sn_pool_workers(const struct sn_pool *pool);

/* SN_BACKEND_KERNEL or SN_BACKEND_MEMFD: what the channels use. Any
 * thread. */
int sn_pool_backend(const struct sn_pool *pool);

/* The CPU worker @i is pinned to, or -1 without affinity. Any thread. */
int sn_pool_worker_cpu(const struct sn_pool *pool, unsigned int i);

/* The worker @key goes to (as sn_submit() routes it; round robin: -EINVAL
 * since it depends on the sender). Any thread. */
int sn_pool_route(const struct sn_pool *pool, __u64 key);

struct sn_pool_stats {
	__u64 submitted;	/* accepted from submitters */
	__u64 rejected;		/* refused: full, timed out, shut down */
	__u64 forwarded;	/* sent worker to worker over the mesh */
	__u64 forward_rejected;	/* mesh sends refused (-EAGAIN, -ESHUTDOWN) */
	__u64 handled;		/* passed to handlers */
	__u64 dropped;		/* left in the rings by shutdown step 4 */
	__u64 io_completions;	/* CQEs of the handlers' own I/O */
};

/* Sums over the workers and submitters (closed ones included); exact once
 * the pool is shut down (dropped is 0 until then). Any thread, never
 * blocks. */
int sn_pool_stats(const struct sn_pool *pool, struct sn_pool_stats *st);

struct sn_worker_stats {
	__u64 handled;		/* messages handled */
	__u64 batches;		/* handler calls */
	__u64 depth;		/* messages waiting in its inbound rings */
	__u64 idle_waits;	/* times it slept in io_uring */
	__u64 ticks;		/* loop iterations */
	__u64 forwarded;	/* mesh messages it sent */
	__u64 io_completions;	/* its handlers' I/O completions */
	__u64 handler_errors;	/* negative returns of the handler */
	int cpu;		/* pinned to, or -1 */
	int pad;
};

/* Worker @i's statistics. Any thread, never blocks. */
int sn_pool_worker_stats(const struct sn_pool *pool, unsigned int i,
			 struct sn_worker_stats *st);

/*
 * Worker @i's state as the worker left it, once sn_pool_shutdown() has
 * returned (NULL before, and for @i out of range): how to collect each
 * worker's result. A state_size block stays valid until sn_pool_destroy();
 * an init's state is the caller's (valid unless fini freed it). Any
 * thread.
 */
void *sn_pool_worker_state(const struct sn_pool *pool, unsigned int i);

/* ---- Submitters (libsn/pool.c) ---- */

/*
 * Opens a submitter: one lane of every worker's ingress channel, used by
 * one thread at a time. A thread gets back the lanes it closed while they
 * still hold its messages (see Order at the top); lanes another thread
 * closed that way are given out once drained, waiting for that as a
 * submit waits for room (backpressure, block_timeout_ns; never on a
 * worker of this pool). Errors: -EUSERS (every lane open, or still
 * reserved), -ESHUTDOWN (intake stopped), -EINVAL. Any thread.
 */
int sn_submitter_open(struct sn_pool *pool, struct sn_submitter **out);

/* Gives the lanes back (its counts stay in the pool's); never waits.
 * NULL: 0. The thread using @s. */
int sn_submitter_close(struct sn_submitter *s);

/*
 * Sends @len (<= max_msg_size) bytes of @payload with @key to the worker
 * the partitioner picks. When the worker's lane has no room for it (with
 * records: for its slots, which may be more than one) it waits as
 * `backpressure` says, except on a worker thread of this pool, which
 * never waits (a worker waiting for room that only workers make could
 * wait for itself): -EAGAIN there. Returns 0, or counts a rejection and
 * returns -EAGAIN (full, SN_BP_FAIL or no wait), -ETIMEDOUT (SN_BP_BLOCK),
 * -ESHUTDOWN (intake stopped); -EINVAL (@len, @payload) is not counted.
 * From the thread using @s (any thread, a worker included).
 */
int sn_submit(struct sn_submitter *s, __u64 key, const void *payload,
	      __u32 len);

/*
 * As sn_submit(), but never waits: -EAGAIN when the worker's lane has no
 * room, not counted as rejected (the caller tries again). The other errors
 * as sn_submit(). (LIBSN_1.1)
 */
int sn_try_submit(struct sn_submitter *s, __u64 key, const void *payload,
		  __u32 len);

/* As sn_submit(), to worker @worker whatever the key. */
int sn_submit_to(struct sn_submitter *s, unsigned int worker, __u64 key,
		 const void *payload, __u32 len);

/*
 * Submits @n messages in one call: each to the worker its key routes to
 * (as sn_submit()), routed in chunks of up to 64 messages with one publish
 * (and at most one wakeup) per worker's lane per chunk (with records: one
 * publish per message). Takes a prefix, in
 * order: returns n, or how many were taken (1..n-1) when the next one was
 * refused, or a negative errno (as sn_submit()) when the first was; it
 * waits as sn_submit() does. Refused messages count as rejected, each one.
 * A message with a bad length ends the prefix there (-EINVAL when first,
 * not counted). From the thread using @s (any thread, a worker included).
 */
int sn_submit_batch(struct sn_submitter *s, const struct sn_pool_msg *msgs,
		    unsigned int n);

/* ---- Inside a worker: from its own callbacks (handler, tick, init,
 * fini, I/O callbacks) only ---- */

unsigned int sn_worker_id(const struct sn_worker *w);
struct sn_pool *sn_worker_pool(const struct sn_worker *w);
void *sn_worker_state(const struct sn_worker *w);
/* The config's arg: shared by every worker, so read-only or thread-safe. */
void *sn_worker_arg(const struct sn_worker *w);

/* True once sn_pool_shutdown() began: new work should stop appearing. */
int sn_worker_stopping(const struct sn_worker *w);

/*
 * Sends to worker @dest over the mesh (SPSC channel [self][dest]). Never
 * blocks (two workers waiting on each other's full rings would deadlock):
 * -EAGAIN when the ring has no room for the message (retry from a later
 * tick, or drop), or
 * -ESHUTDOWN from shutdown step 4 on; both counted as forward_rejected.
 * -EINVAL: @dest or @len out of range.
 */
int sn_worker_send(struct sn_worker *w, unsigned int dest, __u64 key,
		   const void *payload, __u32 len);

/* sn_worker_send() to the worker the pool's partitioner picks for @key. */
int sn_worker_route(struct sn_worker *w, __u64 key, const void *payload,
		    __u32 len);

/*
 * Work the worker keeps for later (a backlog of sends that did not fit, a
 * timer's pending job): sn_worker_hold() when it takes n items on, then
 * sn_worker_done() once they are done (after the sends they cause).
 * Shutdown counts held items as work in progress and keeps the worker
 * running (ticking) until they are done (step 2; step 3 for at most
 * drain_timeout_ns); a worker
 * holding items sleeps 1 ms at most, so its tick retries them.
 */
void sn_worker_hold(struct sn_worker *w, unsigned int n);
void sn_worker_done(struct sn_worker *w, unsigned int n);

/*
 * The worker's io_uring, for handlers' own I/O. Every SQE on it must have
 * a struct sn_io * as user_data (or be fetched with sn_worker_sqe()); the
 * pool submits pending SQEs on each loop iteration.
 */
struct io_uring *sn_worker_uring(struct sn_worker *w);

/*
 * An SQE of the worker's io_uring with user_data set to @io (submitting
 * what is queued when the SQ is full); NULL if none can be had. The pool
 * counts the request in flight until its last completion (one without
 * IORING_CQE_F_MORE) and shutdown waits for it (steps 2 and 3; requests
 * still in flight at step 4 are cancelled with the ring, unreported).
 */
struct io_uring_sqe *sn_worker_sqe(struct sn_worker *w, struct sn_io *io);

#ifdef __cplusplus
}
#endif

#endif /* SN_POOL_H */
