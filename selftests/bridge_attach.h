/* SPDX-License-Identifier: MIT */
/*
 * What the tests that run sn-bridge share: the process with its output
 * piped back, its stderr awaited, its counters line read, and a channel end
 * from one of its unix sockets, as a user's program gets it.
 */
#ifndef SN_BRIDGE_ATTACH_H
#define SN_BRIDGE_ATTACH_H

#include <errno.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/types.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sn/channel.h>

/* An sn-bridge process, its stdout and stderr piped to the test. */
struct bridge_proc {
	pid_t pid;
	int out, err;
	char outbuf[4096];	/* its stdout, once it ended */
	char errbuf[8192];	/* its stderr so far */
	size_t errlen;
};

/* Reads @bp's stderr until it holds @want or @ms pass: 0 or -1. */
static inline int bridge_wait_err(struct bridge_proc *bp, const char *want,
				  unsigned int ms)
{
	struct pollfd p = { .fd = bp->err, .events = POLLIN };
	struct timespec t0, t;
	long left;
	ssize_t r;

	clock_gettime(CLOCK_MONOTONIC, &t0);
	while (!strstr(bp->errbuf, want)) {
		clock_gettime(CLOCK_MONOTONIC, &t);
		left = (long)ms - ((t.tv_sec - t0.tv_sec) * 1000 +
				   (t.tv_nsec - t0.tv_nsec) / 1000000);
		if (left <= 0 || bp->errlen + 1 >= sizeof(bp->errbuf))
			return -1;
		r = poll(&p, 1, (int)left);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			return -1;
		r = read(bp->err, bp->errbuf + bp->errlen,
			 sizeof(bp->errbuf) - 1 - bp->errlen);
		if (r <= 0)
			return -1;
		bp->errlen += (size_t)r;
		bp->errbuf[bp->errlen] = 0;
	}
	return 0;
}

/* Everything left on @fd (until EOF) after @len bytes of @buf (@cap
 * bytes, NUL ended); returns the new length. */
static inline size_t bridge_drain(int fd, char *buf, size_t len, size_t cap)
{
	ssize_t r;

	while (len + 1 < cap) {
		r = read(fd, buf + len, cap - 1 - len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	buf[len] = 0;
	return len;
}

/* The value of @key in sn-bridge's counters line @line ("key=value ..."),
 * or -1. */
static inline long long bridge_stat(const char *line, const char *key)
{
	char k[64];
	const char *p;

	snprintf(k, sizeof(k), " %s=", key);
	if (!strncmp(line, k + 1, strlen(k + 1)))
		p = line + strlen(k + 1);	/* the first pair */
	else if ((p = strstr(line, k)))
		p += strlen(k);
	return p ? strtoll(p, NULL, 10) : -1;
}

/* A channel end from the sn-bridge socket at @path (SOCK_SEQPACKET): 0 or
 * a negative errno. */
static inline int bridge_attach(const char *path, struct sn_channel **ch)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, r;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		r = -errno;
		close(fd);
		return r;
	}
	r = sn_channel_recv_fd(ch, fd, 0);
	close(fd);
	return r;
}

#endif /* SN_BRIDGE_ATTACH_H */
