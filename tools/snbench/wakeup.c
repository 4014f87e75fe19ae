// SPDX-License-Identifier: MIT
/*
 * snbench wakeup: how long a sleeping consumer takes to run again after a
 * producer publishes, for five ways of waking it:
 *
 *   kthread  an sn.ko ring with poll_mode adaptive or always: the consumer
 *            sleeps in poll() on the ring fd, which arms the ring on its
 *            home CPU's sn/N thread; the producer publishes with plain
 *            stores and kicks only if it sees NEED_WAKEUP (it should not:
 *            a thread watches the ring), so the thread wakes the consumer
 *   kick     the same ring with poll_mode off: no thread watches, so the
 *            producer sees NEED_WAKEUP and kicks with ioctl(SN_IOC_KICK)
 *   futex    FUTEX_WAIT / FUTEX_WAKE on a shared word beside the message
 *   eventfd  the consumer's read() blocks; the producer's write() wakes it
 *   pipe     the message itself goes through the pipe
 *
 * One round: the consumer announces itself (a waiters word), full barrier,
 * re-checks, then sleeps. The producer waits until the consumer took the
 * previous message, announced itself and is asleep (state S in
 * /proc/self/task/TID/stat; kthread: and a thread watches the ring, i.e.
 * NEED_WAKEUP is clear, waiting at most 1 ms for that), then spins a random
 * gap of up to --gap-us, stamps the TSC and publishes. The consumer stamps
 * the TSC as soon as its sleep returns; the difference is the wake latency
 * of that round. Producer and consumer are pinned to different CPUs; the
 * ring's home CPU (where its sn/N thread polls) is a third CPU when there
 * is one, else the consumer's.
 *
 * The sn rows need /dev/sn (sn.ko) and a poll_mode they can set (root);
 * the module's poll_mode is restored afterwards (and on SIGINT/SIGTERM).
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/futex.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include <linux/sn.h>

#include "snbench.h"

#define WK_SLEEP_MS	2000		/* a sleep this long lost a wakeup */
#define WK_STALL_NS	(5ULL * 1000000000ULL)	/* a round that never ends */
#define WK_WATCH_NS	(1000ULL * 1000)	/* kthread: wait for a watcher */
#define WK_PARAM	"/sys/module/sn/parameters/poll_mode"
#define WK_STOP		(~0ULL)

const char *const snb_wake_names[SNB_WAKE_IMPLS] = {
	"kthread", "kick", "futex", "eventfd", "pipe",
};
enum { WK_KTHREAD, WK_KICK, WK_FUTEX, WK_EVENTFD, WK_PIPE };

/* The shared state of one run. */
struct wk {
	const struct snb_wake_cfg *cfg;
	unsigned int impl;
	/* consumer: rounds taken; its thread id; the announcement */
	_Alignas(128) _Atomic uint64_t done;
	_Atomic int tid;
	_Atomic uint32_t own_waiters;	/* futex, eventfd, pipe */
	_Alignas(128) _Atomic uint32_t *waiters;
	_Atomic int stop, failed;
	const char *why;
	/* counted by the consumer, the producer */
	uint64_t sleeps, wakeups, timeouts;
	_Alignas(128) uint64_t kicks;
	/* futex: messages published; futex, eventfd: the message */
	_Alignas(128) _Atomic uint32_t word;
	struct snb_msg slot;
	uint32_t seen;			/* consumer: words taken */
	int fd, efd, pfd[2];
	/* an sn.ko ring, mapped through its full fd */
	char *base;
	size_t map_size;
	_Atomic uint32_t *tail, *head, *kflags;
	char *slots;
	uint32_t mask, slot_size;
	uint32_t *lat;
	size_t nlat;
};

/* ---- sn.ko's poll_mode, set for a row and restored ---- */

static char saved_mode[32];		/* as found; "" before any change */

static int read_mode(char *buf, size_t n)
{
	int fd = open(WK_PARAM, O_RDONLY | O_CLOEXEC);
	ssize_t r;

	if (fd < 0)
		return -1;
	r = read(fd, buf, n - 1);
	close(fd);
	if (r <= 0)
		return -1;
	buf[r] = 0;
	buf[strcspn(buf, "\n")] = 0;
	return 0;
}

static int write_mode(const char *mode)
{
	int fd = open(WK_PARAM, O_WRONLY | O_CLOEXEC), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, mode, strlen(mode)) == (ssize_t)strlen(mode);
	close(fd);
	return ok ? 0 : -1;
}

void snb_wake_restore(void)
{
	if (saved_mode[0] && write_mode(saved_mode))
		fprintf(stderr, "snbench: could not restore sn poll_mode=%s\n",
			saved_mode);
	saved_mode[0] = 0;
}

static void restore_on_signal(int sig)
{
	if (saved_mode[0])
		write_mode(saved_mode);
	signal(sig, SIG_DFL);
	raise(sig);
}

static const char *row_mode(unsigned int impl, const struct snb_wake_cfg *cfg)
{
	return impl == WK_KICK ? "off" : cfg->poll_mode;
}

static int set_mode(const char *mode)
{
	char cur[32];

	if (read_mode(cur, sizeof(cur)))
		return -1;
	if (!strcmp(cur, mode))
		return 0;
	if (!saved_mode[0]) {
		snprintf(saved_mode, sizeof(saved_mode), "%s", cur);
		signal(SIGINT, restore_on_signal);
		signal(SIGTERM, restore_on_signal);
	}
	return write_mode(mode);
}

const char *snb_wake_skip(unsigned int impl, const struct snb_wake_cfg *cfg)
{
	static char why[128];
	char cur[32];

	if (impl != WK_KTHREAD && impl != WK_KICK)
		return NULL;
	if (access(SN_DEVICE_PATH, F_OK))
		return SN_DEVICE_PATH " absent";
	if (read_mode(cur, sizeof(cur)))
		return "cannot read " WK_PARAM;
	if (strcmp(cur, row_mode(impl, cfg)) && access(WK_PARAM, W_OK)) {
		snprintf(why, sizeof(why),
			 "needs root to set sn poll_mode=%s (it is %s)",
			 row_mode(impl, cfg), cur);
		return why;
	}
	return NULL;
}

/* ---- the five ways ---- */

static void wk_fail(struct wk *w, const char *why)
{
	if (!atomic_exchange(&w->failed, 1))
		w->why = why;
	atomic_store(&w->stop, 1);
}

static int bench_sn_open(struct wk *w)
{
	struct sn_create p = {
		.size = sizeof(p), .type = SN_RING_SPSC,
		.slot_size = sizeof(struct snb_msg), .slots = 16, .lanes = 1,
		.flags = SN_CREATE_HOME_CPU,
		.home_cpu = (uint32_t)w->cfg->home_cpu,
	};
	struct sn_info i = { .size = sizeof(i) };
	int dev;

	if (set_mode(row_mode(w->impl, w->cfg))) {
		fprintf(stderr, "snbench: cannot set sn poll_mode=%s\n",
			row_mode(w->impl, w->cfg));
		return -1;
	}
	dev = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	if (dev < 0) {
		perror("snbench: " SN_DEVICE_PATH);
		return -1;
	}
	w->fd = ioctl(dev, SN_IOC_CREATE, &p);
	close(dev);
	if (w->fd < 0 || ioctl(w->fd, SN_IOC_INFO, &i)) {
		perror("snbench: sn ring");
		return -1;
	}
	if (!(i.features & SN_FEAT_KICK) ||
	    (w->impl == WK_KTHREAD && !(i.features & SN_FEAT_KTHREAD))) {
		fprintf(stderr, "snbench: this sn.ko has no %s\n",
			w->impl == WK_KTHREAD ? "wakeup threads" : "kick");
		return -1;
	}
	/* the kernel page read-only, the rest writable (a full fd) */
	w->map_size = i.off.map_size;
	w->base = mmap(NULL, w->map_size, PROT_READ, MAP_SHARED, w->fd, 0);
	if (w->base == MAP_FAILED ||
	    mmap(w->base + i.off.cons, w->map_size - i.off.cons,
		 PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, w->fd,
		 (off_t)i.off.cons) == MAP_FAILED) {
		perror("snbench: mmap sn ring");
		w->base = NULL;
		return -1;
	}
	w->kflags = (_Atomic uint32_t *)(w->base + i.off.kpage +
					 offsetof(struct sn_kpage, kflags));
	w->waiters = (_Atomic uint32_t *)(w->base + i.off.cons +
					  i.off.cons_waiters);
	w->head = (_Atomic uint32_t *)(w->base + i.off.cons + i.off.cons_lane);
	w->tail = (_Atomic uint32_t *)(w->base + i.off.lane0 + i.off.prod_tail);
	w->slots = w->base + i.off.lane0 + i.off.slots;
	w->mask = i.slots - 1;
	w->slot_size = i.slot_size;
	return 0;
}

static void bench_sn_close(struct wk *w)
{
	if (w->base)
		munmap(w->base, w->map_size);
	if (w->fd >= 0)
		close(w->fd);
}

/* Producer: one message, then the protocol's kick check. */
static void bench_sn_publish(struct wk *w, const struct snb_msg *m)
{
	uint32_t t = atomic_load_explicit(w->tail, memory_order_relaxed);

	/* at most two messages in flight (the last round's and a stop) */
	memcpy(w->slots + (size_t)(t & w->mask) * w->slot_size, m, sizeof(*m));
	atomic_store_explicit(w->tail, t + 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);		/* [P1] */
	if (atomic_load_explicit(w->waiters, memory_order_relaxed) &&
	    (atomic_load_explicit(w->kflags, memory_order_relaxed) &
	     SN_KFLAG_NEED_WAKEUP)) {
		if (ioctl(w->fd, SN_IOC_KICK, SN_KICK_CONSUMERS))
			wk_fail(w, "SN_IOC_KICK");
		w->kicks++;
	}
}

static int bench_sn_take(struct wk *w, struct snb_msg *m)
{
	uint32_t h = atomic_load_explicit(w->head, memory_order_relaxed);

	if (atomic_load_explicit(w->tail, memory_order_acquire) == h)
		return 0;
	memcpy(m, w->slots + (size_t)(h & w->mask) * w->slot_size, sizeof(*m));
	atomic_store_explicit(w->head, h + 1, memory_order_release);
	return 1;
}

/* Consumer: sleeps in poll() until a message is there; stamps the wake. */
static void bench_sn_wait(struct wk *w, struct snb_msg *m, uint64_t *t)
{
	struct pollfd p = { .fd = w->fd, .events = POLLIN };
	int r;

	for (;;) {
		if (bench_sn_take(w, m)) {
			*t = snb_tsc();
			return;
		}
		atomic_fetch_add(w->waiters, 1);
		atomic_thread_fence(memory_order_seq_cst);	/* [W1] */
		if (bench_sn_take(w, m)) {
			*t = snb_tsc();
			atomic_fetch_sub(w->waiters, 1);
			return;
		}
		w->sleeps++;
		r = poll(&p, 1, WK_SLEEP_MS);
		*t = snb_tsc();
		atomic_fetch_sub(w->waiters, 1);
		if (r > 0)
			w->wakeups++;
		else if (r == 0)
			w->timeouts++;
		if (bench_sn_take(w, m))
			return;
		if (atomic_load(&w->stop)) {
			m->seq = WK_STOP;
			return;
		}
	}
}

/* kthread: a sleep is complete once a thread watches the ring. */
static void bench_sn_ready(struct wk *w)
{
	uint64_t end;

	if (w->impl != WK_KTHREAD)
		return;
	end = snb_now_ns() + WK_WATCH_NS;
	while ((atomic_load_explicit(w->kflags, memory_order_relaxed) &
		SN_KFLAG_NEED_WAKEUP) && snb_now_ns() < end)
		snb_relax();
}

static int futex(_Atomic uint32_t *uaddr, int op, uint32_t val,
		 const struct timespec *ts)
{
	return (int)syscall(SYS_futex, uaddr, op, val, ts, NULL, 0);
}

static int futex_open(struct wk *w)
{
	w->waiters = &w->own_waiters;
	return 0;
}

static void futex_publish(struct wk *w, const struct snb_msg *m)
{
	w->slot = *m;
	atomic_store_explicit(&w->word, atomic_load_explicit(&w->word,
		memory_order_relaxed) + 1, memory_order_release);
	atomic_thread_fence(memory_order_seq_cst);		/* [P1] */
	if (atomic_load_explicit(w->waiters, memory_order_relaxed)) {
		if (futex(&w->word, FUTEX_WAKE_PRIVATE, 1, NULL) < 0)
			wk_fail(w, "FUTEX_WAKE");
		w->kicks++;
	}
}

static int futex_take(struct wk *w, struct snb_msg *m)
{
	if (atomic_load_explicit(&w->word, memory_order_acquire) == w->seen)
		return 0;
	*m = w->slot;
	w->seen++;
	return 1;
}

static void futex_wait(struct wk *w, struct snb_msg *m, uint64_t *t)
{
	struct timespec ts = { WK_SLEEP_MS / 1000, 0 };
	int r;

	for (;;) {
		if (futex_take(w, m)) {
			*t = snb_tsc();
			return;
		}
		atomic_store(w->waiters, 1);
		atomic_thread_fence(memory_order_seq_cst);	/* [W1] */
		if (futex_take(w, m)) {
			*t = snb_tsc();
			atomic_store(w->waiters, 0);
			return;
		}
		w->sleeps++;
		r = futex(&w->word, FUTEX_WAIT_PRIVATE, w->seen, &ts);
		*t = snb_tsc();
		atomic_store(w->waiters, 0);
		if (!r)
			w->wakeups++;
		else if (errno == ETIMEDOUT)
			w->timeouts++;
		if (futex_take(w, m))
			return;
		if (atomic_load(&w->stop)) {
			m->seq = WK_STOP;
			return;
		}
	}
}

static int efd_open(struct wk *w)
{
	w->waiters = &w->own_waiters;
	w->efd = eventfd(0, EFD_CLOEXEC);
	if (w->efd < 0) {
		perror("snbench: eventfd");
		return -1;
	}
	return 0;
}

static void efd_publish(struct wk *w, const struct snb_msg *m)
{
	uint64_t one = 1;

	w->slot = *m;
	atomic_thread_fence(memory_order_release);
	if (write(w->efd, &one, sizeof(one)) != sizeof(one))
		wk_fail(w, "eventfd write");
	w->kicks++;
}

static void efd_wait(struct wk *w, struct snb_msg *m, uint64_t *t)
{
	uint64_t cnt;
	ssize_t r;

	atomic_store(w->waiters, 1);
	w->sleeps++;
	r = read(w->efd, &cnt, sizeof(cnt));
	*t = snb_tsc();
	atomic_store(w->waiters, 0);
	atomic_thread_fence(memory_order_acquire);
	if (r != sizeof(cnt)) {
		wk_fail(w, "eventfd read");
		m->seq = WK_STOP;
		return;
	}
	w->wakeups++;
	*m = w->slot;
}

static int pipe_open(struct wk *w)
{
	w->waiters = &w->own_waiters;
	if (pipe2(w->pfd, O_CLOEXEC)) {
		perror("snbench: pipe");
		return -1;
	}
	return 0;
}

static void pipe_publish(struct wk *w, const struct snb_msg *m)
{
	if (write(w->pfd[1], m, sizeof(*m)) != sizeof(*m))
		wk_fail(w, "pipe write");
	w->kicks++;
}

static void pipe_wait(struct wk *w, struct snb_msg *m, uint64_t *t)
{
	ssize_t r;

	atomic_store(w->waiters, 1);
	w->sleeps++;
	r = read(w->pfd[0], m, sizeof(*m));
	*t = snb_tsc();
	atomic_store(w->waiters, 0);
	if (r != sizeof(*m)) {
		wk_fail(w, "pipe read");
		m->seq = WK_STOP;
		return;
	}
	w->wakeups++;
}

static void sys_close(struct wk *w)
{
	if (w->efd >= 0)
		close(w->efd);
	if (w->pfd[0] >= 0) {
		close(w->pfd[0]);
		close(w->pfd[1]);
	}
}

/* Each way in full (no inlining matters next to microseconds of wake). */
static const struct {
	int (*open)(struct wk *w);
	void (*close)(struct wk *w);
	void (*publish)(struct wk *w, const struct snb_msg *m);
	void (*wait)(struct wk *w, struct snb_msg *m, uint64_t *t);
	void (*ready)(struct wk *w);
} ops[SNB_WAKE_IMPLS] = {
	[WK_KTHREAD] = { bench_sn_open, bench_sn_close, bench_sn_publish,
			 bench_sn_wait, bench_sn_ready },
	[WK_KICK] = { bench_sn_open, bench_sn_close, bench_sn_publish,
		      bench_sn_wait, bench_sn_ready },
	[WK_FUTEX] = { futex_open, sys_close, futex_publish, futex_wait, NULL },
	[WK_EVENTFD] = { efd_open, sys_close, efd_publish, efd_wait, NULL },
	[WK_PIPE] = { pipe_open, sys_close, pipe_publish, pipe_wait, NULL },
};

/* ---- one run ---- */

static void *wk_consumer(void *arg)
{
	struct wk *w = arg;
	struct snb_msg m;
	uint64_t k, t;

	if (snb_pin(w->cfg->cons_cpu))
		fprintf(stderr, "snbench: cannot pin to CPU %d\n",
			w->cfg->cons_cpu);
	atomic_store(&w->tid, (int)syscall(SYS_gettid));
	for (k = 0; k < w->cfg->rounds; k++) {
		ops[w->impl].wait(w, &m, &t);
		if (m.seq == WK_STOP)
			break;
		if (m.seq != k) {
			wk_fail(w, "a message out of order");
			break;
		}
		/* the TSC is the same clock on every CPU (constant_tsc) */
		t = t > m.stamp ? t - m.stamp : 0;
		w->lat[w->nlat++] = t > UINT32_MAX ? UINT32_MAX : (uint32_t)t;
		atomic_store_explicit(&w->done, k + 1, memory_order_release);
	}
	return NULL;
}

/* The consumer's scheduler state (R, S, ...) or 0. */
static char task_state(int fd)
{
	char buf[256], *p;
	ssize_t r = pread(fd, buf, sizeof(buf) - 1, 0);

	if (r <= 0)
		return 0;
	buf[r] = 0;
	p = strrchr(buf, ')');
	return p && p[1] == ' ' ? p[2] : 0;
}

/* Waits until the consumer took @k messages and sleeps for the next. */
static int wait_asleep(struct wk *w, uint64_t k, int statfd)
{
	uint64_t end = snb_now_ns() + WK_STALL_NS;
	unsigned int n = 0;

	while (atomic_load_explicit(&w->done, memory_order_acquire) != k ||
	       !atomic_load_explicit(w->waiters, memory_order_relaxed) ||
	       task_state(statfd) != 'S') {
		if (atomic_load_explicit(&w->stop, memory_order_relaxed))
			return -1;
		if (++n % 64 == 0 && snb_now_ns() > end) {
			wk_fail(w, atomic_load(&w->done) == k ?
				"the consumer did not go to sleep" :
				"the consumer did not wake (lost wakeup)");
			return -1;
		}
		snb_relax();
	}
	return 0;
}

static uint64_t xorshift(uint64_t *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

int snb_wake_run(unsigned int impl, const struct snb_wake_cfg *cfg,
		 struct snb_wake_run *run)
{
	struct wk *w = aligned_alloc(128, sizeof(*w));
	uint64_t k, seed = 0x9e3779b97f4a7c15ULL ^ snb_tsc(), t0, t1;
	uint64_t gap_ticks = (uint64_t)((double)cfg->gap_ns / snb_tsc_ns);
	struct snb_msg m = { 0 };
	char path[64];
	pthread_t tid;
	cpu_set_t was;
	int statfd = -1, ret = -1, pinned = 0;

	memset(run, 0, sizeof(*run));
	if (!w)
		return -1;
	memset(w, 0, sizeof(*w));
	w->cfg = cfg;
	w->impl = impl;
	w->fd = w->efd = w->pfd[0] = w->pfd[1] = -1;
	w->lat = malloc(cfg->rounds * sizeof(*w->lat) + 1);
	if (!w->lat || ops[impl].open(w))
		goto out;
	/* this thread produces: pinned for the run, then as it was */
	pinned = !sched_getaffinity(0, sizeof(was), &was);
	if (snb_pin(cfg->prod_cpu))
		fprintf(stderr, "snbench: cannot pin to CPU %d\n", cfg->prod_cpu);
	if (pthread_create(&tid, NULL, wk_consumer, w)) {
		fprintf(stderr, "snbench: pthread_create failed\n");
		goto out;
	}
	while (!atomic_load(&w->tid))
		sched_yield();
	snprintf(path, sizeof(path), "/proc/self/task/%d/stat",
		 atomic_load(&w->tid));
	statfd = open(path, O_RDONLY | O_CLOEXEC);
	if (statfd < 0) {
		perror("snbench: consumer's stat");
		wk_fail(w, "no /proc");
	}
	t0 = snb_now_ns();
	for (k = 0; k < cfg->rounds && statfd >= 0; k++) {
		uint64_t until;

		if (wait_asleep(w, k, statfd))
			break;
		if (ops[impl].ready)
			ops[impl].ready(w);
		until = snb_tsc() + (gap_ticks ? xorshift(&seed) % (gap_ticks + 1) : 0);
		while (snb_tsc() < until)
			snb_relax();
		m.seq = k;
		m.stamp = snb_tsc();
		ops[impl].publish(w, &m);
	}
	/* the last round taken, or the consumer told to stop */
	if (!atomic_load(&w->stop)) {
		uint64_t end = snb_now_ns() + WK_STALL_NS;

		while (atomic_load(&w->done) < cfg->rounds &&
		       !atomic_load(&w->stop))
			if (snb_now_ns() > end)
				wk_fail(w, "the consumer did not wake (lost wakeup)");
			else
				sched_yield();
	}
	t1 = snb_now_ns();
	if (atomic_load(&w->stop)) {
		m.seq = WK_STOP;
		ops[impl].publish(w, &m);
	}
	pthread_join(tid, NULL);
	if (w->timeouts && !w->failed)
		wk_fail(w, "a sleep timed out with a message published (lost wakeup)");
	if (w->failed) {
		fprintf(stderr, "snbench: wakeup %s: %s\n", snb_wake_names[impl],
			w->why);
		goto out;
	}
	run->seconds = (double)(t1 - t0) / 1e9;
	run->rounds = cfg->rounds;
	run->sleeps = w->sleeps;
	run->wakeups = w->wakeups;
	run->kicks = w->kicks;
	run->lat = w->lat;
	run->nlat = w->nlat;
	w->lat = NULL;
	ret = 0;
out:
	if (pinned)
		sched_setaffinity(0, sizeof(was), &was);
	if (statfd >= 0)
		close(statfd);
	ops[impl].close(w);
	free(w->lat);
	free(w);
	return ret;
}
