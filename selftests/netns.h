/* SPDX-License-Identifier: MIT */
/*
 * Two hosts on one machine for the bridge tests: network namespaces
 * "snb-<pid>-a" and "snb-<pid>-b" joined by a veth pair (10.X.Y.1/24 in a,
 * 10.X.Y.2/24 in b, X.Y from the pid), each with lo up. Nothing is
 * addressed outside them. Code runs "on host a" in a forked child that
 * entered the namespace (nsx_fork()) before it creates anything that opens
 * sockets or threads. Children report to the parent over a pipe
 * (nsx_report()/nsx_collect(): one length-prefixed record each).
 *
 * Cleanup: nsx_destroy() (fixture teardown), and since a test killed by
 * the harness's timeout never gets there, every nsx_create() and the
 * exit of the process (a destructor) sweep namespaces "snb-<pid>-*" whose
 * pid is gone.
 *
 * Needs root, iproute2 (ip, ss with -K: CONFIG_INET_DIAG_DESTROY).
 */
#ifndef SN_SELFTESTS_NETNS_H
#define SN_SELFTESTS_NETNS_H

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#define NSX_RUN_DIR	"/run/netns"

struct nsx {
	char ns[2][32];		/* "snb-<pid>-a", "snb-<pid>-b" */
	char dev[2][16];	/* the veth ends, dev[i] in ns[i] */
	char addr[2][16];	/* "10.X.Y.1", "10.X.Y.2" */
	int created;
};

/* Runs a shell command line; its stdout goes to /dev/null (and stderr
 * unless @loud). Returns the exit status, or -1. */
static inline int nsx_sh(int loud, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));
static inline int nsx_sh(int loud, const char *fmt, ...)
{
	char cmd[512];
	va_list ap;
	int status, fd;
	pid_t pid;

	va_start(ap, fmt);
	vsnprintf(cmd, sizeof(cmd), fmt, ap);
	va_end(ap);
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		fd = open("/dev/null", O_WRONLY);
		if (fd >= 0) {
			dup2(fd, 1);
			if (!loud)
				dup2(fd, 2);
		}
		execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
		_exit(127);
	}
	while (waitpid(pid, &status, 0) < 0)
		if (errno != EINTR)
			return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : -1;
}

/* Removes namespaces snb-<pid>-* left by processes that are gone (a test
 * killed at its timeout), and those of @self_pid (a re-used pid). */
static inline void nsx_sweep(pid_t self_pid)
{
	DIR *d = opendir(NSX_RUN_DIR);
	struct dirent *e;
	char side;
	int pid;

	if (!d)
		return;
	while ((e = readdir(d))) {
		if (sscanf(e->d_name, "snb-%d-%c", &pid, &side) != 2)
			continue;
		if (pid != self_pid && (kill(pid, 0) == 0 || errno != ESRCH))
			continue;
		nsx_sh(0, "ip netns del %s", e->d_name);
	}
	closedir(d);
}

/* At the exit of every process that exits (the harness's main one at
 * the end): a test killed at its timeout leaves nothing behind. */
__attribute__((destructor)) static void nsx_sweep_at_exit(void)
{
	if (geteuid() == 0)
		nsx_sweep(0);
}

/*
 * Creates both namespaces and the veth pair. 0, or -1 with a sentence in
 * @why (the command that failed).
 */
static inline int nsx_create(struct nsx *n, char *why, size_t whylen)
{
	pid_t pid = getpid();
	unsigned int x = 100 + ((unsigned int)pid >> 8) % 150;
	unsigned int y = (unsigned int)pid & 255;
	int i;

	memset(n, 0, sizeof(*n));
	if (geteuid() != 0) {
		snprintf(why, whylen, "not root: the bridge tests need root "
			 "(network namespaces, veth, ss -K)");
		return -1;
	}
	nsx_sweep(pid);
	for (i = 0; i < 2; i++) {
		snprintf(n->ns[i], sizeof(n->ns[i]), "snb-%d-%c", (int)pid,
			 'a' + i);
		snprintf(n->dev[i], sizeof(n->dev[i]), "snb%d%c", (int)pid,
			 'a' + i);
		snprintf(n->addr[i], sizeof(n->addr[i]), "10.%u.%u.%d", x, y,
			 i + 1);
	}
	n->created = 1;
#define NSX_DO(...) do {						\
		if (nsx_sh(1, __VA_ARGS__)) {				\
			snprintf(why, whylen, "failed: " __VA_ARGS__);	\
			return -1;					\
		}							\
	} while (0)
	for (i = 0; i < 2; i++)
		NSX_DO("ip netns add %s", n->ns[i]);
	NSX_DO("ip link add %s netns %s type veth peer name %s netns %s",
	       n->dev[0], n->ns[0], n->dev[1], n->ns[1]);
	for (i = 0; i < 2; i++) {
		NSX_DO("ip -n %s link set lo up", n->ns[i]);
		NSX_DO("ip -n %s addr add %s/24 dev %s", n->ns[i], n->addr[i],
		       n->dev[i]);
		NSX_DO("ip -n %s link set %s up", n->ns[i], n->dev[i]);
	}
#undef NSX_DO
	return 0;
}

/* Removes both namespaces (the veth pair goes with them). Idempotent. */
static inline void nsx_destroy(struct nsx *n)
{
	int i;

	if (!n->created)
		return;
	for (i = 0; i < 2; i++)
		nsx_sh(0, "ip netns del %s", n->ns[i]);
	n->created = 0;
}

/* The calling thread (call it before any other thread exists) into @ns:
 * 0 or -errno. */
static inline int nsx_enter(const char *ns)
{
	char path[64];
	int fd, r = 0;

	snprintf(path, sizeof(path), NSX_RUN_DIR "/%s", ns);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return -errno;
	if (setns(fd, CLONE_NEWNET))
		r = -errno;
	close(fd);
	return r;
}

/* Host @i's veth down (@up 0) or up. The exit status of ip. */
static inline int nsx_link(const struct nsx *n, int i, int up)
{
	return nsx_sh(1, "ip -n %s link set %s %s", n->ns[i], n->dev[i],
		      up ? "up" : "down");
}

/* Kills (ss -K) the TCP sockets of namespace @i whose peer is the other
 * host's address. The exit status of ss. */
static inline int nsx_kill_tcp(const struct nsx *n, int i)
{
	return nsx_sh(0, "ip netns exec %s ss -K -t dst %s", n->ns[i],
		      n->addr[!i]);
}

/* The same, for the sockets of namespace @i on local or remote @port. */
static inline int nsx_kill_port(const struct nsx *n, int i, unsigned int port)
{
	return nsx_sh(0, "ip netns exec %s ss -K -t '( sport = :%u or dport = :%u )'",
		      n->ns[i], port, port);
}

/* A sysctl in namespace @i (e.g. small TCP buffers). Exit status. */
static inline int nsx_sysctl(const struct nsx *n, int i, const char *kv)
{
	return nsx_sh(1, "ip netns exec %s sysctl -qw '%s'", n->ns[i], kv);
}

/*
 * Forks a child that enters namespace @ns (NULL: stays) and returns
 * fn(@arg, its end of the report pipe) as its exit status; it dies with
 * the caller (PR_SET_PDEATHSIG). The pid, and the read end of the pipe in
 * *@rfd (-1 for none: pass rfd NULL). -1 on failure.
 */
static inline pid_t nsx_fork(const char *ns, int (*fn)(void *arg, int wfd),
			     void *arg, int *rfd)
{
	int p[2] = { -1, -1 };
	pid_t pid;

	if (rfd && pipe2(p, O_CLOEXEC))
		return -1;
	fflush(stdout);
	fflush(stderr);
	pid = fork();
	if (pid < 0)
		return -1;
	if (!pid) {
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		if (rfd)
			close(p[0]);
		if (ns && nsx_enter(ns)) {
			fprintf(stderr, "# cannot enter %s: %s\n", ns,
				strerror(errno));
			_exit(120);
		}
		_exit(fn(arg, rfd ? p[1] : -1));
	}
	if (rfd) {
		close(p[1]);
		*rfd = p[0];
	}
	return pid;
}

/* The pipe protocol: one record, its length first. */
#define NSX_MAGIC	0x736e6278U	/* "snbx" */

static inline int nsx_write_all(int fd, const void *buf, size_t len)
{
	const char *c = buf;
	ssize_t w;

	while (len) {
		w = write(fd, c, len);
		if (w < 0 && errno == EINTR)
			continue;
		if (w <= 0)
			return -1;
		c += w;
		len -= (size_t)w;
	}
	return 0;
}

/* The child's side: sends @len bytes of @rec. 0 or -1. */
static inline int nsx_report(int wfd, const void *rec, unsigned int len)
{
	unsigned int hdr[2] = { NSX_MAGIC, len };

	if (nsx_write_all(wfd, hdr, sizeof(hdr)))
		return -1;
	return nsx_write_all(wfd, rec, len);
}

/* Reads exactly @len bytes from @fd before the monotonic @deadline_ms. */
static inline int nsx_read_until(int fd, void *buf, size_t len,
				 long long deadline_ms)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	struct timespec ts;
	char *c = buf;
	long long now;
	ssize_t r;

	while (len) {
		clock_gettime(CLOCK_MONOTONIC, &ts);
		now = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
		if (now >= deadline_ms)
			return -ETIMEDOUT;
		r = poll(&pfd, 1, (int)(deadline_ms - now));
		if (r < 0 && errno == EINTR)
			continue;
		if (r <= 0)
			continue;
		r = read(fd, c, len);
		if (r < 0 && errno == EINTR)
			continue;
		if (r == 0)
			return -EPIPE;
		if (r < 0)
			return -errno;
		c += r;
		len -= (size_t)r;
	}
	return 0;
}

/*
 * The parent's side: the child's record into @rec (@len bytes) within
 * @timeout_ms. 0, -ETIMEDOUT, -EPIPE (the child ended without one),
 * -EPROTO (another length).
 */
static inline int nsx_collect(int rfd, void *rec, unsigned int len,
			      int timeout_ms)
{
	struct timespec ts;
	unsigned int hdr[2];
	long long deadline;
	int r;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	deadline = ts.tv_sec * 1000LL + ts.tv_nsec / 1000000 + timeout_ms;
	r = nsx_read_until(rfd, hdr, sizeof(hdr), deadline);
	if (r)
		return r;
	if (hdr[0] != NSX_MAGIC || hdr[1] != len)
		return -EPROTO;
	return nsx_read_until(rfd, rec, len, deadline);
}

/*
 * Waits for child @pid at most @timeout_ms, then SIGKILLs it. Its exit
 * status; 128 + signal when killed by one; -1 when it had to be killed
 * for the timeout or is not ours.
 */
static inline int nsx_wait(pid_t pid, int timeout_ms)
{
	int status, waited = 0;
	pid_t r;

	if (pid <= 0)
		return -1;
	for (;;) {
		r = waitpid(pid, &status, WNOHANG);
		if (r == pid)
			break;
		if (r < 0)
			return -1;
		if (waited >= timeout_ms) {
			kill(pid, SIGKILL);
			waitpid(pid, &status, 0);
			return -1;
		}
		usleep(5000);
		waited += 5;
	}
	if (WIFEXITED(status))
		return WEXITSTATUS(status);
	return 128 + WTERMSIG(status);
}

/* VmRSS of @pid in KiB, or -1. */
static inline long nsx_rss_kb(pid_t pid)
{
	char path[64], line[256];
	long kb = -1;
	FILE *f;

	snprintf(path, sizeof(path), "/proc/%d/status", (int)pid);
	f = fopen(path, "r");
	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f))
		if (sscanf(line, "VmRSS: %ld kB", &kb) == 1)
			break;
	fclose(f);
	return kb;
}

#endif /* SN_SELFTESTS_NETNS_H */
