/* SPDX-License-Identifier: MIT */
/*
 * Helpers of the channel selftests: backend choice, message counts scaled
 * by SN_TEST_SCALE (a percentage, default 100; the TCG guests lower it),
 * and the exactly-once, per-producer FIFO delivery runner over threads or
 * forked processes.
 */
#ifndef SN_CHANNEL_COMMON_H
#define SN_CHANNEL_COMMON_H

#include <dirent.h>
#include <errno.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>
#include <sn/sn.h>

#include "test_time.h"

#define MS 1000000ULL

/* Open fds of this process (leak checks). */
static inline int t_fd_count(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *e;
	int n = 0;

	if (!d)
		return -1;
	while ((e = readdir(d)))
		n += e->d_name[0] != '.';
	closedir(d);
	return n - 1;	/* the directory's own fd */
}

/* The backends worth testing here: the automatic one, and memfd when the
 * automatic one is the kernel's. */
static inline int t_backends(unsigned int flags[2])
{
	struct stat st;

	flags[0] = SN_BACKEND_MEMFD;
	if (stat(SN_DEVICE_PATH, &st) != 0)
		return 1;
	flags[1] = SN_BACKEND_KERNEL;
	return 2;
}

/* A message: producer and sequence in the first 8 bytes, a pattern after. */
static inline void t_fill(unsigned char *m, __u32 size, __u32 prod, __u64 seq)
{
	__u64 head = ((__u64)prod << 48) | seq;
	__u32 k;

	memcpy(m, &head, 8);
	for (k = 8; k < size; k++)
		m[k] = (unsigned char)(seq * 7 + k + prod);
}

/* Returns 0 and the producer and sequence if the message is intact. */
static inline int t_check(const unsigned char *m, __u32 size, __u32 *prod,
			  __u64 *seq)
{
	__u64 head;
	__u32 k;

	memcpy(&head, m, 8);
	*prod = (__u32)(head >> 48);
	*seq = head & ((1ULL << 48) - 1);
	for (k = 8; k < size; k++)
		if (m[k] != (unsigned char)(*seq * 7 + k + *prod))
			return -1;
	return 0;
}

struct t_run {
	unsigned int type, slots, slot_size, producers, consumers, flags;
	unsigned long msgs;	/* per producer */
	int procs;		/* forked processes rather than threads */
};

/* Shared by every thread or process of one run (MAP_SHARED anonymous). */
struct t_shared {
	__u64 received;		/* in all */
	__u64 errors;
	__u32 opened;		/* producers open so far */
	char why[128];
	__u64 deadline;
	unsigned char seen[];	/* [producers][msgs] */
};

struct t_ctx {
	const struct t_run *run;
	struct t_shared *sh;
	struct sn_channel *ch;
	__u32 id;
};

static inline void t_fail(struct t_shared *sh, const char *what, long v)
{
	if (__atomic_fetch_add(&sh->errors, 1, __ATOMIC_RELAXED) == 0)
		snprintf(sh->why, sizeof(sh->why), "%s (%ld)", what, v);
}

/* Producer: single, burst and zero-copy sends in turn. */
static inline void t_produce(struct t_ctx *x, struct sn_producer *p)
{
	const struct t_run *r = x->run;
	unsigned char *buf = malloc((size_t)r->slot_size * 5);
	unsigned long seq = 0;
	__u32 pos;
	int n, i, k;

	while (seq < r->msgs && !x->sh->errors) {
		if (t_now() > x->sh->deadline) {
			t_fail(x->sh, "producer past the deadline", (long)seq);
			break;
		}
		switch (seq % 3) {
		case 0:
			t_fill(buf, r->slot_size, x->id, seq);
			n = sn_send(p, buf, 10 * MS);
			if (n == 0)
				seq++;
			else if (n != -ETIMEDOUT)
				t_fail(x->sh, "sn_send", n);
			break;
		case 1:
			k = (int)(r->msgs - seq < 5 ? r->msgs - seq : 5);
			for (i = 0; i < k; i++)
				t_fill(buf + (size_t)i * r->slot_size,
				       r->slot_size, x->id, seq + i);
			n = sn_send_burst(p, buf, (__u32)k);
			if (n > 0)
				seq += (unsigned long)n;
			else if (n == -EAGAIN)
				sn_producer_wait(p, 10 * MS);
			else
				t_fail(x->sh, "sn_send_burst", n);
			break;
		default:
			k = (int)(r->msgs - seq < 3 ? r->msgs - seq : 3);
			n = sn_producer_reserve(p, (__u32)k, &pos);
			if (n > 0) {
				for (i = 0; i < n; i++)
					t_fill(sn_producer_slot(p, pos + i),
					       r->slot_size, x->id, seq + i);
				if (sn_producer_commit(p, (__u32)n))
					t_fail(x->sh, "sn_producer_commit", n);
				seq += (unsigned long)n;
			} else if (n == -EAGAIN) {
				sn_producer_wait(p, 10 * MS);
			} else {
				t_fail(x->sh, "sn_producer_reserve", n);
			}
		}
	}
	free(buf);
}

/*
 * Message @seq of producer @prod arrived (valid): checks its order against
 * @last and that it came once, and counts it.
 */
static inline void t_arrived(struct t_ctx *x, __u32 prod, __u64 seq,
			     __u64 *last)
{
	const struct t_run *r = x->run;

	/* FIFO per producer: the one consumer sees every sequence in order,
	 * each MPMC consumer an increasing subsequence */
	if (r->type != SN_RING_MPMC ? seq != last[prod] : seq < last[prod])
		t_fail(x->sh, "out of order", (long)seq);
	last[prod] = seq + 1;
	if (__atomic_fetch_add(&x->sh->seen[prod * r->msgs + seq], 1,
			       __ATOMIC_RELAXED))
		t_fail(x->sh, "duplicate", (long)seq);
	__atomic_fetch_add(&x->sh->received, 1, __ATOMIC_RELAXED);
}

static inline void t_got(struct t_ctx *x, const unsigned char *m, __u64 *last)
{
	const struct t_run *r = x->run;
	__u32 prod;
	__u64 seq;

	if (t_check(m, r->slot_size, &prod, &seq) || prod >= r->producers ||
	    seq >= r->msgs) {
		t_fail(x->sh, "garbled message", (long)seq);
		return;
	}
	t_arrived(x, prod, seq, last);
}

/*
 * Whether a consumer goes on: fewer than @total messages came, no error,
 * and the run's deadline has not passed (else it fails the run).
 */
static inline int t_consuming(struct t_ctx *x, __u64 total)
{
	if (__atomic_load_n(&x->sh->received, __ATOMIC_RELAXED) >= total ||
	    x->sh->errors)
		return 0;
	if (t_now() > x->sh->deadline) {
		t_fail(x->sh, "consumer past the deadline", 0);
		return 0;
	}
	return 1;
}

/* Consumer: single, burst and zero-copy receives in turn, until all came
 * or the stream ended (-EPIPE: MPMC peers may hold the last messages). */
static inline void t_consume(struct t_ctx *x, struct sn_consumer *c)
{
	const struct t_run *r = x->run;
	__u64 total = (__u64)r->msgs * r->producers;
	__u64 last[SN_MAX_LANES] = { 0 };
	unsigned char *buf = malloc((size_t)r->slot_size * 4);
	unsigned long turn = 0;
	__u32 pos;
	int n, i;

	while (t_consuming(x, total)) {
		switch (turn++ % 3) {
		case 0:
			n = sn_recv(c, buf, 5 * MS);
			if (n == 0)
				t_got(x, buf, last);
			else if (n == -EPIPE)
				goto ended;
			else if (n != -ETIMEDOUT)
				t_fail(x->sh, "sn_recv", n);
			break;
		case 1:
			n = sn_recv_burst(c, buf, 4);
			for (i = 0; i < n; i++)
				t_got(x, buf + (size_t)i * r->slot_size, last);
			if (n == -EAGAIN)
				sn_consumer_wait(c, 5 * MS);
			else if (n == -EPIPE)
				goto ended;
			else if (n < 0)
				t_fail(x->sh, "sn_recv_burst", n);
			break;
		default:
			n = sn_consumer_peek(c, 3, &pos);
			for (i = 0; i < n; i++) {
				memcpy(buf, sn_consumer_slot(c, pos + i),
				       r->slot_size);
				t_got(x, buf, last);
			}
			if (n > 0 && sn_consumer_advance(c, (__u32)n))
				t_fail(x->sh, "sn_consumer_advance", n);
			else if (n == -EAGAIN)
				sn_consumer_wait(c, 5 * MS);
			else if (n == -EPIPE)
				goto ended;
			else if (n < 0)
				t_fail(x->sh, "sn_consumer_peek", n);
		}
	}
ended:
	free(buf);
}

static inline void *t_producer_main(void *arg)
{
	struct t_ctx *x = arg;
	struct sn_producer *p;
	int ret = sn_producer_open(x->ch, &p);

	if (ret) {
		t_fail(x->sh, "sn_producer_open", ret);
		return NULL;
	}
	/* every producer opens before any sends: the stream ends (-EPIPE)
	 * once every producer that opened has gone */
	__atomic_fetch_add(&x->sh->opened, 1, __ATOMIC_RELAXED);
	while (__atomic_load_n(&x->sh->opened, __ATOMIC_RELAXED) <
	       x->run->producers && !x->sh->errors) {
		if (t_now() > x->sh->deadline) {
			t_fail(x->sh, "producers never all opened", 0);
			break;
		}
		usleep(100);
	}
	t_produce(x, p);
	sn_producer_close(p);
	return NULL;
}

static inline void *t_consumer_main(void *arg)
{
	struct t_ctx *x = arg;
	struct sn_consumer *c;
	int ret = sn_consumer_open(x->ch, &c);

	if (ret) {
		t_fail(x->sh, "sn_consumer_open", ret);
		return NULL;
	}
	t_consume(x, c);
	sn_consumer_close(c);
	return NULL;
}

/*
 * One run: returns 0 when every message arrived exactly once and in order,
 * else -1 with the reason in @why.
 */
static inline int t_deliver(const struct t_run *r, char *why, size_t whylen)
{
	size_t shsize = sizeof(struct t_shared) + r->producers * r->msgs;
	unsigned int n = r->producers + r->consumers, i;
	struct t_ctx ctx[8 + 8];
	pthread_t th[8 + 8];
	struct sn_channel_stats st;
	struct sn_channel *ch;
	struct t_shared *sh;
	pid_t pid[8 + 8];
	int ret, status, bad = 0;
	__u64 j;

	sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
		  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
	if (sh == MAP_FAILED) {
		snprintf(why, whylen, "mmap");
		return -1;
	}
	sh->deadline = t_now() + 60000 * MS;
	ret = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = r->type, .slots = r->slots, .slot_size = r->slot_size, .lanes = r->producers, .flags = r->flags));
	if (ret) {
		snprintf(why, whylen, "sn_channel_create: %d", ret);
		munmap(sh, shsize);
		return -1;
	}
	for (i = 0; i < n; i++) {
		ctx[i] = (struct t_ctx){ .run = r, .sh = sh, .ch = ch,
					 .id = i < r->producers ? i : 0 };
		if (!r->procs) {
			pthread_create(&th[i], NULL, i < r->producers ?
				       t_producer_main : t_consumer_main,
				       &ctx[i]);
			continue;
		}
		pid[i] = fork();
		if (pid[i] == 0) {
			/* a process that knows only the fd */
			struct sn_channel *mine;

			ret = sn_channel_attach(&mine, sn_channel_fd(ch), 0);
			if (ret) {
				t_fail(sh, "sn_channel_attach", ret);
				_exit(1);
			}
			ctx[i].ch = mine;
			if (i < r->producers)
				t_producer_main(&ctx[i]);
			else
				t_consumer_main(&ctx[i]);
			sn_channel_close(mine);
			_exit(0);
		}
	}
	for (i = 0; i < n; i++) {
		if (!r->procs)
			pthread_join(th[i], NULL);
		else if (waitpid(pid[i], &status, 0) != pid[i] ||
			 !WIFEXITED(status) || WEXITSTATUS(status))
			bad = 1;
	}
	if (bad)
		t_fail(sh, "a child failed", 0);
	for (j = 0; j < (__u64)r->producers * r->msgs && !sh->errors; j++)
		if (sh->seen[j] != 1)
			t_fail(sh, "lost", (long)j);
	if (!sh->errors && !sn_channel_stats(ch, &st) &&
	    (st.sent != (__u64)r->producers * r->msgs ||
	     st.received != st.sent || st.depth))
		t_fail(sh, "statistics", (long)st.received);
	ret = sh->errors ? -1 : 0;
	if (ret)
		snprintf(why, whylen, "%s", sh->why);
	sn_channel_close(ch);
	munmap(sh, shsize);
	return ret;
}

/* ---- children that die holding something (dead-peer tests) ---- */

#include <signal.h>

/* What a child does once forked; it then reports ready and waits. */
typedef int (*t_child_fn)(struct sn_channel *ch, void *arg);

/*
 * Forks a child that runs @fn on @ch and, if it returns 0, writes one byte
 * to say it is ready and sleeps until killed. Returns its pid once ready,
 * or -1 when it failed.
 */
static inline pid_t t_spawn(struct sn_channel *ch, t_child_fn fn, void *arg)
{
	int fds[2];
	char b;
	pid_t pid;

	if (pipe(fds))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(fds[0]);
		if (fn(ch, arg))
			_exit(1);
		if (write(fds[1], "r", 1) != 1)
			_exit(1);
		for (;;)
			pause();
	}
	close(fds[1]);
	if (pid < 0 || read(fds[0], &b, 1) != 1) {
		close(fds[0]);
		if (pid > 0)
			waitpid(pid, NULL, 0);
		return -1;
	}
	close(fds[0]);
	return pid;
}

/* SIGKILLs the child @pid and reaps it: 0 if it died of that. */
static inline int t_kill(pid_t pid)
{
	int status;

	if (kill(pid, SIGKILL) || waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL ? 0 : -1;
}

#endif /* SN_CHANNEL_COMMON_H */
