/* SPDX-License-Identifier: GPL-2.0 */
/*
 * The selftests' raw view of sn rings: creating, narrowing and mapping them
 * through the ioctls of include/uapi/linux/sn.h alone (no libsn), a plain
 * SPSC protocol over lane 0, the /proc/sn/rings listing and module
 * parameters.
 */
#ifndef SN_SELFTESTS_RAW_RING_H
#define SN_SELFTESTS_RAW_RING_H

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stddef.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sn.h>

#include "test_time.h"

static inline int dev_fd(void)
{
	return open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);
}

static inline struct sn_create params(__u32 type, __u32 slot_size, __u32 slots,
			       __u32 lanes)
{
	struct sn_create p = {
		.size = sizeof(p), .type = type, .slot_size = slot_size,
		.slots = slots, .lanes = lanes,
	};
	return p;
}

/* A ring fd, or -errno. */
static inline int create(const struct sn_create *p)
{
	int dev = dev_fd(), fd;

	if (dev < 0)
		return -errno;
	fd = ioctl(dev, SN_IOC_CREATE, p);
	if (fd < 0)
		fd = -errno;
	close(dev);
	return fd;
}

static inline int create_simple(__u32 type, __u32 slot_size, __u32 slots, __u32 lanes)
{
	struct sn_create p = params(type, slot_size, slots, lanes);

	return create(&p);
}

static inline int info(int fd, struct sn_info *i)
{
	memset(i, 0, sizeof(*i));
	i->size = sizeof(*i);
	return ioctl(fd, SN_IOC_INFO, i) ? -errno : 0;
}

static inline int narrow(int fd, __u32 role, __u32 lane)
{
	struct sn_narrow n = { .size = sizeof(n), .role = role, .lane = lane };
	int ret = ioctl(fd, SN_IOC_NARROW, &n);

	return ret < 0 ? -errno : ret;
}

/* Maps [off, off + len) of a ring; MAP_FAILED with errno set on failure. */
static inline void *map(int fd, __u64 off, __u64 len, int prot)
{
	return mmap(NULL, len, prot, MAP_SHARED, fd, off);
}

/* A whole-ring view through a full fd, as the raw protocol uses it. */
struct view {
	struct sn_info i;
	char *base;
};

/* The kernel page read-only, everything after it writable, in one range. */
static inline int view_open(struct view *v, int fd)
{
	__u64 rest;

	if (info(fd, &v->i))
		return -1;
	v->base = map(fd, 0, v->i.off.map_size, PROT_READ);
	if (v->base == MAP_FAILED)
		return -1;
	rest = v->i.off.map_size - v->i.off.cons;
	if (mmap(v->base + v->i.off.cons, rest, PROT_READ | PROT_WRITE,
		 MAP_SHARED | MAP_FIXED, fd, v->i.off.cons) == MAP_FAILED)
		return -1;
	return 0;
}

static inline _Atomic __u32 *tail_of(struct view *v, __u32 lane)
{
	return (_Atomic __u32 *)(v->base + v->i.off.lane0 +
				 lane * v->i.off.lane_size + v->i.off.prod_tail);
}

static inline _Atomic __u32 *head_of(struct view *v, __u32 lane)
{
	return (_Atomic __u32 *)(v->base + v->i.off.cons + v->i.off.cons_lane +
				 lane * SN_PAD * 2);
}

static inline _Atomic __u32 *waiters_of(struct view *v)
{
	return (_Atomic __u32 *)(v->base + v->i.off.cons + v->i.off.cons_waiters);
}

static inline _Atomic __u32 *waiting_of(struct view *v, __u32 lane)
{
	return (_Atomic __u32 *)(v->base + v->i.off.lane0 +
				 lane * v->i.off.lane_size + v->i.off.prod_waiting);
}

/* MPMC: the release word of position @pos of @lane. */
static inline _Atomic __u32 *release_of(struct view *v, __u32 lane, __u32 pos)
{
	return (_Atomic __u32 *)(v->base + v->i.off.cons + v->i.off.cons_release +
				 ((__u64)lane * v->i.slots + (pos & (v->i.slots - 1))) * 4);
}

static inline __u32 kflags_of(struct view *v)
{
	return atomic_load((_Atomic __u32 *)(v->base + v->i.off.kpage +
					     offsetof(struct sn_kpage, kflags)));
}

static inline __u64 *slot_of(struct view *v, __u32 lane, __u32 pos)
{
	return (__u64 *)(v->base + v->i.off.lane0 + lane * v->i.off.lane_size +
			 v->i.off.slots +
			 (__u64)(pos & (v->i.slots - 1)) * v->i.slot_size);
}

/* SPSC raw protocol: returns false when full / empty. */
static inline bool raw_send(struct view *v, __u64 msg)
{
	__u32 t = atomic_load_explicit(tail_of(v, 0), memory_order_relaxed);
	__u32 h = atomic_load_explicit(head_of(v, 0), memory_order_acquire);

	if (t - h >= v->i.slots)
		return false;
	*slot_of(v, 0, t) = msg;
	atomic_store_explicit(tail_of(v, 0), t + 1, memory_order_release);
	return true;
}

static inline bool raw_recv(struct view *v, __u64 *msg)
{
	__u32 h = atomic_load_explicit(head_of(v, 0), memory_order_relaxed);
	__u32 t = atomic_load_explicit(tail_of(v, 0), memory_order_acquire);

	if (t == h)
		return false;
	*msg = *slot_of(v, 0, h);
	atomic_store_explicit(head_of(v, 0), h + 1, memory_order_release);
	return true;
}

static inline short poll_mask(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLIN | POLLOUT };

	return poll(&p, 1, 0) < 0 ? -1 : p.revents;
}

/* The /proc/sn/rings line of ring @id, or an empty string. */
static inline void listing_line(__u64 id, char *out, size_t len)
{
	FILE *f = fopen("/proc/sn/rings", "r");
	char line[512];

	out[0] = 0;
	if (!f)
		return;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long lid;

		if (line[0] != '#' && sscanf(line, "%llu", &lid) == 1 &&
		    lid == id) {
			snprintf(out, len, "%s", line);
			break;
		}
	}
	fclose(f);
}

/*
 * Waits up to 10 s for @cond, checking every millisecond: emulated guests
 * on a loaded host stall for long moments, so no fixed sleep is enough.
 */
#define WAIT_FOR(cond)							\
	({								\
		__u64 _end = t_now() + 10000000000ULL;			\
		bool _ok;						\
		while (!(_ok = (cond)) && t_now() < _end)		\
			usleep(1000);					\
		_ok;							\
	})

/* Fields of a /proc/sn/rings line (1-based; kmod/sn_proc.c). */
#define F_KICKS		14
#define F_ARMED_CPU	19
#define F_THREAD_WAKES	20
#define F_NEED_WAKEUP	21
#define F_LANES_LIVE	22	/* hex */
#define F_LANES_DEAD	23	/* hex */
#define F_PRODUCERS_DIED 24
#define F_CONSUMERS_DIED 25
#define F_RESERVED_LOST	26
#define F_CLAIMS_RECOVERED 27
#define F_CLAIMS_LOST	28
#define F_ENDED		29
#define F_ORPHANED	30

/*
 * Field @field (1-based) of the ring's /proc/sn/rings line, or -1; decimal
 * or hex (0x...).
 */
static inline long long listing_field(__u64 id, int field)
{
	char line[512], *tok, *save;
	int n = 0;

	listing_line(id, line, sizeof(line));
	for (tok = strtok_r(line, " \n", &save); tok;
	     tok = strtok_r(NULL, " \n", &save))
		if (++n == field)
			return (long long)strtoull(tok, NULL, 0);
	return -1;
}

static inline int listing_count(void)
{
	FILE *f = fopen("/proc/sn/rings", "r");
	char line[512];
	int n = 0;

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (line[0] != '#')
			n++;
	fclose(f);
	return n;
}

static inline long read_long(const char *path)
{
	FILE *f = fopen(path, "r");
	long v = -1;

	if (f) {
		if (fscanf(f, "%ld", &v) != 1)
			v = -1;
		fclose(f);
	}
	return v;
}

static inline int write_str(const char *path, const char *s)
{
	int fd = open(path, O_WRONLY), ok;

	if (fd < 0)
		return -1;
	ok = write(fd, s, strlen(s)) == (ssize_t)strlen(s);
	close(fd);
	return ok ? 0 : -1;
}

/* Reads sn.ko's module parameter @name into @buf ("" if unreadable). */
static inline void get_param(const char *name, char *buf, size_t len)
{
	char path[128];
	FILE *f;

	snprintf(path, sizeof(path), "/sys/module/sn/parameters/%s", name);
	buf[0] = 0;
	f = fopen(path, "r");
	if (f) {
		if (!fgets(buf, (int)len, f))
			buf[0] = 0;
		fclose(f);
	}
}

/* Sets sn.ko's module parameter @name; 0 or -1. */
static inline int set_param(const char *name, const char *value)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/sn/parameters/%s", name);
	return write_str(path, value);
}

static inline __u64 xorshift(__u64 *s)
{
	*s ^= *s << 13;
	*s ^= *s >> 7;
	*s ^= *s << 17;
	return *s;
}

/* Runs @fn in a child that drops to user nobody; returns its exit code. */
static inline int as_nobody(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(100);
		_exit(fn(arg));
	}
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

#endif /* SN_SELFTESTS_RAW_RING_H */
