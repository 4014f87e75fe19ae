// SPDX-License-Identifier: MIT
/*
 * sn-bridge: one libsnbridge bridge (include/sn/bridge.h) from the command
 * line, as a media driver or a mirror maker runs: local programs get their
 * channel ends from unix sockets, the bridge carries the messages to the
 * peer host over ZeroMQ, exactly once.
 *
 *   sn-bridge --host ID (--bind EP | --connect EP) [--egress PATH]
 *             [--ingress PATH] [options]
 *
 * --egress PATH: the egress channel (MPSC, --lanes lanes), drained to the
 * peer. Each connection to the unix SOCK_SEQPACKET socket at PATH is sent
 * one producer end (sn_channel_send_fd(): SN_ROLE_PRODUCER of a free lane
 * where the backend enforces roles, else SN_ROLE_FULL) and closed; the
 * program attaches with sn_channel_recv_fd() and opens its producer.
 * --ingress PATH: the ingress channel (SPSC), where the peer's messages
 * land; each connection is sent the consumer end (SN_ROLE_CONSUMER, or
 * FULL). At least one of the two.
 *
 * stderr: "sn-bridge: ready: egress PATH, ingress PATH" once the sockets
 * listen and the bridge runs, then the peer's state changes ("peer 2 up",
 * "peer 2 down: silent for 512 ms", "failed: <strerror>"). stdout: the
 * bridge's counters (struct sn_bridge_stats) as one line of key=value
 * pairs every --stats seconds and at exit.
 *
 * SIGINT, SIGTERM: waits up to 5 s for the peer to acknowledge everything
 * committed to the egress channel (sn_bridge_flush()), prints the counters
 * and exits 0, or 1 when that timed out or the bridge had failed. The
 * bridge fails (--give-up) or cannot start: exit 1. Bad arguments: exit 2.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include <sn/bridge.h>
#include <sn/channel.h>

#define PROG		"sn-bridge"
#define FLUSH_NS	(5ULL * 1000000000ULL)	/* at SIGINT/SIGTERM */
#define TICK_MS		20			/* state polling */

static const char *const backend_names[] = { "auto", "kernel", "memfd" };

static void usage(int st)
{
	if (st) {
		fprintf(stderr, "usage: " PROG " --host ID (--bind EP | --connect EP) [--egress PATH] [--ingress PATH] [options]; " PROG " --help says more\n");
		exit(st);
	}
	printf("usage: " PROG " --host ID (--bind EP | --connect EP) [--egress PATH] [--ingress PATH] [options]\n"
	       "bridges sn channels to one peer host over ZeroMQ, exactly once across broken links\n"
	       "(libsnbridge). Local programs get their channel ends from unix SOCK_SEQPACKET sockets:\n"
	       "each connection to the egress socket is sent a producer of the egress channel, each\n"
	       "connection to the ingress socket its consumer (sn_channel_recv_fd()).\n"
	       "options (default):\n"
	       "  --host ID          this host's id, carried in every frame (required)\n"
	       "  --bind EP          listen at a ZeroMQ endpoint, e.g. tcp://10.0.0.1:7000, or\n"
	       "  --connect EP       dial the peer there: exactly one of the two (a tcp:// endpoint\n"
	       "                     takes its port and the next one, the control channel's)\n"
	       "  --egress PATH      unix socket handing out producers of the egress channel,\n"
	       "                     whose messages go to the peer (none)\n"
	       "  --ingress PATH     unix socket handing out the consumer of the ingress channel,\n"
	       "                     where the peer's messages land (none); at least one of the two\n"
	       "  --lanes N          egress lanes, i.e. local producers at a time, 1..%u (4)\n"
	       "  --slots N          slots per lane, a power of two (4096)\n"
	       "  --slot-size B      bytes per message, a multiple of 8, 8..%u (64)\n"
	       "  --heartbeat MS     heartbeat interval (100)\n"
	       "  --dead MS          silence that makes the peer down (5 heartbeats: 500)\n"
	       "  --give-up S        fail after the peer is down (or unheard since the start)\n"
	       "                     this long; 0: never (0)\n"
	       "  --frame N          most messages per frame (64); N x slot size <= %u MiB\n"
	       "  --cpu N            pin the bridge's thread to CPU N (not pinned)\n"
	       "  --stats S          print the counters every S seconds; 0: only at exit (0)\n"
	       "  --backend auto|kernel|memfd  the channels' backend (auto: kernel when /dev/sn\n"
	       "                     opens, else memfd)\n"
	       "  --version          prints \"" PROG " %s\"\n"
	       "  --help             this text\n"
	       "stderr: a \"ready\" line once the sockets listen, the peer's state changes;\n"
	       "stdout: the counters, one line of key=value pairs.\n"
	       "SIGINT/SIGTERM: flush (up to 5 s), print the counters, exit 0 (1: the flush timed out\n"
	       "or the bridge failed). Exit 1 when the bridge fails or cannot start, 2 for bad arguments.\n",
	       SN_MAX_LANES, SN_CHANNEL_MAX_SLOT_SIZE,
	       SN_BRIDGE_MAX_FRAME_BYTES >> 20, SN_VERSION);
	exit(0);
}

/* A bad value of option @what: says what was wanted, exits 2. */
static void bad_value(const char *what, const char *val, const char *want)
{
	fprintf(stderr, PROG ": %s %s: not %s\n", what, val, want);
	exit(2);
}

static void die2(const char *msg)
{
	fprintf(stderr, PROG ": %s\n", msg);
	exit(2);
}

/* A whole number of option @what from @lo to @hi, or exits 2. */
static unsigned long long whole(const char *s, const char *what,
				unsigned long long lo, unsigned long long hi)
{
	char want[96];
	char *end;
	unsigned long long v;

	errno = 0;
	v = strtoull(s, &end, 10);
	if (end == s || *end || errno || *s == '-' || v < lo || v > hi) {
		snprintf(want, sizeof(want), "a whole number from %llu to %llu",
			 lo, hi);
		bad_value(what, s, want);
	}
	return v;
}

/* A number (fractions allowed) of option @what from 0 to @hi, or exits 2. */
static double real(const char *s, const char *what, double hi)
{
	char want[96];
	char *end;
	double v = strtod(s, &end);

	if (end == s || *end || !(v >= 0 && v <= hi)) {
		snprintf(want, sizeof(want), "a number from 0 to %g", hi);
		bad_value(what, s, want);
	}
	return v;
}

static unsigned int one_of(const char *what, const char *val,
			   const char *const *names, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++)
		if (!strcmp(val, names[i]))
			return i;
	fprintf(stderr, PROG ": %s %s: not one of ", what, val);
	for (i = 0; i < n; i++)
		fprintf(stderr, "%s%s", i ? ", " : "", names[i]);
	fprintf(stderr, "\n");
	exit(2);
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

/* The error of a libsn/libsnbridge call: strerror, and sn_last_error()'s
 * sentence when it has one. */
static void say_err(const char *what, int err)
{
	const char *why = sn_last_error();

	fprintf(stderr, PROG ": %s: %s%s%s\n", what, strerror(-err),
		why && *why ? ": " : "", why && *why ? why : "");
}

/*
 * A listening unix SOCK_SEQPACKET socket at @path. A socket file already
 * there is unlinked when nobody listens on it (left by a process that
 * died); one that answers, or a file that is no socket, is left alone.
 * Returns the fd, or -1 (said on stderr).
 */
static int listen_at(const char *path)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	struct stat st;
	int fd;

	if (strlen(path) >= sizeof(a.sun_path)) {
		fprintf(stderr, PROG ": %s: longer than a unix socket path may be (%zu bytes)\n",
			path, sizeof(a.sun_path) - 1);
		return -1;
	}
	strcpy(a.sun_path, path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0) {
		fprintf(stderr, PROG ": socket: %s\n", strerror(errno));
		return -1;
	}
	if (!lstat(path, &st)) {
		if (!S_ISSOCK(st.st_mode)) {
			fprintf(stderr, PROG ": %s: exists and is not a socket\n",
				path);
			goto fail;
		}
		if (!connect(fd, (struct sockaddr *)&a, sizeof(a))) {
			fprintf(stderr, PROG ": %s: another process listens there\n",
				path);
			goto fail;
		}
		/* stale: nobody accepts (ECONNREFUSED) */
		close(fd);
		unlink(path);
		fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
		if (fd < 0) {
			fprintf(stderr, PROG ": socket: %s\n", strerror(errno));
			return -1;
		}
	}
	if (bind(fd, (struct sockaddr *)&a, sizeof(a)) ||
	    listen(fd, 64)) {
		fprintf(stderr, PROG ": %s: %s\n", path, strerror(errno));
		goto fail;
	}
	return fd;
fail:
	close(fd);
	return -1;
}

/*
 * Serves one connection to a channel socket: sends the channel's @role end
 * (SN_ROLE_FULL where the backend cannot narrow) and closes it. A refusal
 * (every lane owned, the consumer taken) is said on stderr; the client
 * sees the connection close (sn_channel_recv_fd(): -ECONNRESET).
 */
static void serve(int lfd, struct sn_channel *ch, unsigned int role,
		  const char *what)
{
	struct sn_channel_info info;
	unsigned int lane;
	int fd, r;

	fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);
	if (fd < 0) {
		if (errno != EAGAIN && errno != EINTR &&
		    errno != ECONNABORTED)
			fprintf(stderr, PROG ": %s: accept: %s\n", what,
				strerror(errno));
		return;
	}
	sn_channel_info(ch, &info);
	if (!info.roles_enforced)
		role = SN_ROLE_FULL;
	lane = role == SN_ROLE_PRODUCER ? SN_LANE_ANY : 0;
	r = sn_channel_send_fd(ch, fd, role, lane);
	if (r)
		fprintf(stderr, PROG ": %s: cannot hand out the %s: %s\n", what,
			role == SN_ROLE_PRODUCER ? "producer (every lane owned?)" :
			role == SN_ROLE_CONSUMER ? "consumer (already taken?)" :
			"channel", strerror(-r));
	close(fd);
}

static void print_stats(const struct sn_bridge *b)
{
	struct sn_bridge_stats s;

	if (sn_bridge_stats(b, &s))
		return;
	printf("frames_sent=%llu msgs_sent=%llu msgs_resent=%llu msgs_acked=%llu "
	       "unacked=%llu frames_received=%llu msgs_delivered=%llu "
	       "msgs_duplicate=%llu frames_gap=%llu go_backs=%llu "
	       "heartbeats_sent=%llu heartbeats_received=%llu downs=%llu "
	       "peer_restarts=%llu stalls=%llu silence_ns=%llu state=%s "
	       "peer_host=%u error=%d\n",
	       (unsigned long long)s.frames_sent,
	       (unsigned long long)s.msgs_sent,
	       (unsigned long long)s.msgs_resent,
	       (unsigned long long)s.msgs_acked,
	       (unsigned long long)s.unacked,
	       (unsigned long long)s.frames_received,
	       (unsigned long long)s.msgs_delivered,
	       (unsigned long long)s.msgs_duplicate,
	       (unsigned long long)s.frames_gap,
	       (unsigned long long)s.go_backs,
	       (unsigned long long)s.heartbeats_sent,
	       (unsigned long long)s.heartbeats_received,
	       (unsigned long long)s.downs,
	       (unsigned long long)s.peer_restarts,
	       (unsigned long long)s.stalls,
	       (unsigned long long)s.silence_ns,
	       sn_bridge_state_name((int)s.state), s.peer_host, s.error);
	fflush(stdout);
}

/* What the last look saw, to report changes. */
struct seen {
	int state;
	uint64_t downs, restarts;
};

/*
 * Reports what changed since @sn: the peer up or down (a down and up
 * between two looks are both reported, by the downs counter), a restart
 * of the peer, the bridge failed. Returns 1 once the bridge failed.
 */
static int report(const struct sn_bridge *b, struct seen *sn)
{
	struct sn_bridge_stats s;
	int st;

	if (sn_bridge_stats(b, &s))
		return 0;
	st = (int)s.state;
	if (s.downs > sn->downs && st != SN_BRIDGE_DOWN &&
	    sn->state != SN_BRIDGE_DOWN)
		fprintf(stderr, PROG ": peer %u down\n", s.peer_host);
	if (s.peer_restarts > sn->restarts)
		fprintf(stderr, PROG ": peer %u restarted (a new incarnation)\n",
			s.peer_host);
	if (st != sn->state || s.downs > sn->downs) {
		if (st == SN_BRIDGE_UP && (sn->state != SN_BRIDGE_UP ||
					  s.downs > sn->downs))
			fprintf(stderr, PROG ": peer %u up\n", s.peer_host);
		else if (st == SN_BRIDGE_DOWN && sn->state != SN_BRIDGE_DOWN)
			fprintf(stderr, PROG ": peer %u down: silent for %llu ms\n",
				s.peer_host,
				(unsigned long long)(s.silence_ns / 1000000));
		else if (st == SN_BRIDGE_FAILED)
			fprintf(stderr, PROG ": failed: %s\n",
				strerror(s.error < 0 ? -s.error :
					 s.error ? s.error : EIO));
	}
	sn->state = st;
	sn->downs = s.downs;
	sn->restarts = s.peer_restarts;
	return st == SN_BRIDGE_FAILED;
}

int main(int argc, char **argv)
{
	static const struct option lo[] = {
		{ "host", 1, 0, 'H' }, { "bind", 1, 0, 'b' },
		{ "connect", 1, 0, 'c' }, { "egress", 1, 0, 'e' },
		{ "ingress", 1, 0, 'i' }, { "lanes", 1, 0, 'l' },
		{ "slots", 1, 0, 's' }, { "slot-size", 1, 0, 'z' },
		{ "heartbeat", 1, 0, 'B' }, { "dead", 1, 0, 'D' },
		{ "give-up", 1, 0, 'G' }, { "frame", 1, 0, 'f' },
		{ "cpu", 1, 0, 'C' }, { "stats", 1, 0, 'S' },
		{ "backend", 1, 0, 'k' }, { "version", 0, 0, 'V' },
		{ "help", 0, 0, 'h' }, { 0, 0, 0, 0 }
	};
	const char *bind_ep = NULL, *connect_ep = NULL;
	const char *egress_path = NULL, *ingress_path = NULL;
	unsigned int lanes = 4, slots = 4096, slot_size = 64, frame = 64;
	unsigned int backend = 0, host = 0;
	int have_host = 0, cpu = -1, c, efd = -1, ifd = -1, sfd;
	double heartbeat_ms = 100, dead_ms = 0, give_up_s = 0, stats_s = 0;
	struct sn_channel *egress = NULL, *ingress = NULL;
	struct sn_bridge *b = NULL;
	struct sn_bridge_opts o;
	struct seen seen = { SN_BRIDGE_CONNECTING, 0, 0 };
	uint64_t next_stats = 0;
	unsigned int bflags;
	sigset_t sigs;
	int r, status = 0;

	while ((c = getopt_long(argc, argv, "h", lo, NULL)) != -1) {
		switch (c) {
		case 'H':
			host = (unsigned int)whole(optarg, "--host", 0, UINT32_MAX);
			have_host = 1;
			break;
		case 'b': bind_ep = optarg; break;
		case 'c': connect_ep = optarg; break;
		case 'e': egress_path = optarg; break;
		case 'i': ingress_path = optarg; break;
		case 'l':
			lanes = (unsigned int)whole(optarg, "--lanes", 1,
						    SN_MAX_LANES);
			break;
		case 's':
			slots = (unsigned int)whole(optarg, "--slots", 1,
						    SN_CHANNEL_MAX_SLOTS);
			if (slots & (slots - 1))
				bad_value("--slots", optarg, "a power of two");
			break;
		case 'z':
			slot_size = (unsigned int)whole(optarg, "--slot-size", 8,
							SN_CHANNEL_MAX_SLOT_SIZE);
			if (slot_size % 8)
				bad_value("--slot-size", optarg, "a multiple of 8");
			break;
		case 'B':
			heartbeat_ms = real(optarg, "--heartbeat", 3600e3);
			if (!(heartbeat_ms > 0))
				bad_value("--heartbeat", optarg,
					  "a number of milliseconds above 0");
			break;
		case 'D':
			dead_ms = real(optarg, "--dead", 86400e3);
			if (!(dead_ms > 0))
				bad_value("--dead", optarg,
					  "a number of milliseconds above 0");
			break;
		case 'G': give_up_s = real(optarg, "--give-up", 86400 * 365); break;
		case 'f':
			frame = (unsigned int)whole(optarg, "--frame", 1,
						    SN_BRIDGE_MAX_FRAME_BYTES / 8);
			break;
		case 'C': cpu = (int)whole(optarg, "--cpu", 0, CPU_SETSIZE - 1); break;
		case 'S': stats_s = real(optarg, "--stats", 86400); break;
		case 'k':
			backend = one_of("--backend", optarg, backend_names, 3);
			break;
		case 'V':
			printf(PROG " %s\n", SN_VERSION);
			return 0;
		case 'h': usage(0); break;
		default: usage(2);
		}
	}
	if (optind < argc) {
		fprintf(stderr, PROG ": %s: unexpected argument\n", argv[optind]);
		usage(2);
	}
	if (!have_host)
		die2("--host ID is required");
	if (!bind_ep == !connect_ep)
		die2("exactly one of --bind EP and --connect EP");
	if (!egress_path && !ingress_path)
		die2("at least one of --egress PATH and --ingress PATH");
	if (egress_path && ingress_path && !strcmp(egress_path, ingress_path))
		die2("--egress and --ingress name the same path");
	if ((unsigned long long)frame * slot_size > SN_BRIDGE_MAX_FRAME_BYTES) {
		fprintf(stderr, PROG ": --frame %u: %u messages of %u bytes exceed a frame's %u MiB\n",
			frame, frame, slot_size, SN_BRIDGE_MAX_FRAME_BYTES >> 20);
		exit(2);
	}
	if (!dead_ms)
		dead_ms = SN_BRIDGE_DEAD_BEATS * heartbeat_ms;
	if (dead_ms <= heartbeat_ms) {
		fprintf(stderr, PROG ": --dead %g: not above --heartbeat (%g ms)\n",
			dead_ms, heartbeat_ms);
		exit(2);
	}

	bflags = backend == 1 ? SN_BACKEND_KERNEL :
		 backend == 2 ? SN_BACKEND_MEMFD : 0;
	signal(SIGPIPE, SIG_IGN);
	sigemptyset(&sigs);
	sigaddset(&sigs, SIGINT);
	sigaddset(&sigs, SIGTERM);
	/* before the bridge's thread starts, so that it inherits the mask
	 * and the signals come to the signalfd */
	sigprocmask(SIG_BLOCK, &sigs, NULL);
	sfd = signalfd(-1, &sigs, SFD_CLOEXEC | SFD_NONBLOCK);
	if (sfd < 0) {
		fprintf(stderr, PROG ": signalfd: %s\n", strerror(errno));
		return 1;
	}

	if (egress_path) {
		r = sn_channel_create(&egress, SN_CHANNEL_OPTS(
			.type = SN_RING_MPSC, .lanes = lanes, .slots = slots,
			.slot_size = slot_size, .flags = bflags));
		if (r) {
			say_err("egress channel", r);
			return r == -EINVAL ? 2 : 1;
		}
	}
	if (ingress_path) {
		r = sn_channel_create(&ingress, SN_CHANNEL_OPTS(
			.type = SN_RING_SPSC, .slots = slots,
			.slot_size = slot_size, .flags = bflags));
		if (r) {
			say_err("ingress channel", r);
			status = r == -EINVAL ? 2 : 1;
			goto out;
		}
	}
	memset(&o, 0, sizeof(o));
	o.size = sizeof(o);
	o.host = host;
	o.bind = bind_ep;
	o.connect = connect_ep;
	o.egress = egress;
	o.ingress = ingress;
	o.heartbeat_ns = (uint64_t)(heartbeat_ms * 1e6);
	o.dead_ns = (uint64_t)(dead_ms * 1e6);
	o.give_up_ns = (uint64_t)(give_up_s * 1e9);
	o.frame_msgs = frame;
	if (cpu >= 0) {
		o.flags |= SN_BRIDGE_PIN;
		o.cpu = cpu;
	}
	r = sn_bridge_create(&b, &o);
	if (r) {
		char what[256];

		snprintf(what, sizeof(what), "%s %s",
			 bind_ep ? "--bind" : "--connect",
			 bind_ep ? bind_ep : connect_ep);
		say_err(what, r);
		/* the arguments were checked: what it refuses is the endpoint */
		status = r == -EINVAL ? 2 : 1;
		b = NULL;
		goto out;
	}
	if (egress_path && (efd = listen_at(egress_path)) < 0) {
		status = 1;
		goto out;
	}
	if (ingress_path && (ifd = listen_at(ingress_path)) < 0) {
		status = 1;
		goto out;
	}
	fprintf(stderr, PROG ": ready:%s%s%s%s%s\n",
		egress_path ? " egress " : "", egress_path ? egress_path : "",
		egress_path && ingress_path ? "," : "",
		ingress_path ? " ingress " : "", ingress_path ? ingress_path : "");
	if (stats_s > 0)
		next_stats = now_ns() + (uint64_t)(stats_s * 1e9);
	for (;;) {
		struct pollfd p[3] = {
			{ .fd = sfd, .events = POLLIN },
			{ .fd = efd, .events = POLLIN },
			{ .fd = ifd, .events = POLLIN },
		};
		struct signalfd_siginfo si;

		if (poll(p, 3, TICK_MS) < 0 && errno != EINTR) {
			fprintf(stderr, PROG ": poll: %s\n", strerror(errno));
			status = 1;
			break;
		}
		if (p[1].revents & POLLIN)
			serve(efd, egress, SN_ROLE_PRODUCER, egress_path);
		if (p[2].revents & POLLIN)
			serve(ifd, ingress, SN_ROLE_CONSUMER, ingress_path);
		if (report(b, &seen)) {
			status = 1;
			break;
		}
		if (next_stats && now_ns() >= next_stats) {
			print_stats(b);
			next_stats += (uint64_t)(stats_s * 1e9);
			if (next_stats < now_ns())
				next_stats = now_ns() + (uint64_t)(stats_s * 1e9);
		}
		if ((p[0].revents & POLLIN) &&
		    read(sfd, &si, sizeof(si)) == (ssize_t)sizeof(si)) {
			fprintf(stderr, PROG ": %s: flushing\n",
				strsignal((int)si.ssi_signo));
			r = sn_bridge_flush(b, FLUSH_NS);
			if (r == -ETIMEDOUT) {
				fprintf(stderr, PROG ": flush: the peer acknowledged not everything within 5 s\n");
				status = 1;
			} else if (r) {
				report(b, &seen);
				fprintf(stderr, PROG ": flush: %s\n", strerror(-r));
				status = 1;
			}
			break;
		}
	}
	print_stats(b);
out:
	if (efd >= 0) {
		close(efd);
		unlink(egress_path);
	}
	if (ifd >= 0) {
		close(ifd);
		unlink(ingress_path);
	}
	r = sn_bridge_destroy(b);
	if (r)
		fprintf(stderr, PROG ": destroy: %s\n", strerror(-r));
	sn_channel_close(ingress);
	sn_channel_close(egress);
	close(sfd);
	return status;
}
