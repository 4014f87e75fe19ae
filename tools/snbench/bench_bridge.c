// SPDX-License-Identifier: MIT
/*
 * snbench bridge: throughput across hosts through libsnbridge, in one
 * process over loopback, against bare ZeroMQ carrying the same payload.
 *
 * libsnbridge row: producer thread -> egress channel (MPSC, 1 lane) ->
 * bridge A -> tcp://127.0.0.1 -> bridge B -> ingress channel (SPSC) ->
 * consumer (the calling thread). Both bridges run their own thread (and
 * ZeroMQ its I/O threads); frame_msgs is the batch (64).
 *
 * zmq row: producer thread -> PUSH -> tcp://127.0.0.1 -> PULL -> consumer,
 * one ZeroMQ context a side as the two bridges have, the high-water marks
 * the bridge's (SN_BRIDGE_HWM messages each way).
 *
 * Like with like: the bridge sends frames of frame_msgs (64) messages, so
 * the zmq row packs the same 64 messages into one ZeroMQ message, at every
 * message size: 1 KiB ZeroMQ messages for 16 B, 4 MiB for 64 KiB (one
 * 64 KiB ZeroMQ message per message would compare the bridge's batching
 * with none; at 64 KiB the per-message cost is small either way). Each
 * side touches the payload alike: the producers write each message's
 * sequence number and copy the batch in once (sn_send_burst() into the
 * ring; zmq_send() into a new ZeroMQ message), the consumers read every
 * message's sequence number in place (sn_consumer_peek() /
 * sn_consumer_advance(); zmq_msg_recv()) and check the order, which fails
 * the run when broken. What the bridge adds on top: the copies from the
 * egress ring into a frame and from a frame into the ingress ring, its
 * protocol (sequences, acknowledgements) and the rings' flow control.
 *
 * Nothing is pinned: with the bridge's and ZeroMQ's threads there are more
 * busy threads than a small machine has CPUs, and the OS places them best.
 * Without SNBENCH_BRIDGE (snbench-static: no static libzmq) the rows say
 * they are not in this build.
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "snbench.h"

const char *const snb_bridge_names[SNB_BRIDGE_IMPLS] = {
	"libsnbridge", "zmq",
};

#ifndef SNBENCH_BRIDGE

const char *snb_bridge_skip(void)
{
	return "not in this build (snbench-static has no libzmq): run build/snbench";
}

void *snb_bridge_open(unsigned int impl, const struct snb_bridge_cfg *cfg)
{
	(void)impl;
	(void)cfg;
	return NULL;
}

int snb_bridge_run(void *ctx, uint64_t messages, struct snb_bridge_run *run)
{
	(void)ctx;
	(void)messages;
	(void)run;
	return -ENOSYS;
}

void snb_bridge_close(void *ctx)
{
	(void)ctx;
}

#else /* SNBENCH_BRIDGE */

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <zmq.h>

#include <sn/bridge.h>
#include <sn/channel.h>

#define BR_UP_NS	(10ULL * 1000000000ULL)	/* bridges up within */
#define BR_STALL_NS	(20ULL * 1000000000ULL)	/* no progress this long:
						 * the run fails */
#define BR_WAIT_NS	(100ULL * 1000000ULL)	/* one wait of a side */

struct br_ctx {
	unsigned int impl;
	struct snb_bridge_cfg cfg;
	/* libsnbridge */
	struct sn_channel *eg, *in;
	struct sn_bridge *a, *b;
	struct sn_producer *p;
	struct sn_consumer *c;
	/* zmq */
	void *zctx[2], *push, *pull;
	/* a run */
	uint64_t messages;
	atomic_int go, stop;
	int perr;			/* the producer's error */
	unsigned char *pbuf;		/* the producer's batch */
};

const char *snb_bridge_skip(void)
{
	return NULL;
}

/* A TCP port of 127.0.0.1 free a moment ago and the next one too (a
 * bridge's control channel takes it), or -1. */
static int br_ports(void)
{
	int tries;

	for (tries = 0; tries < 50; tries++) {
		struct sockaddr_in a = { .sin_family = AF_INET };
		socklen_t len = sizeof(a);
		int fd = socket(AF_INET, SOCK_STREAM, 0);
		int fd2 = socket(AF_INET, SOCK_STREAM, 0), port = -1;

		a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
		if (fd >= 0 && fd2 >= 0 &&
		    !bind(fd, (struct sockaddr *)&a, sizeof(a)) &&
		    !getsockname(fd, (struct sockaddr *)&a, &len) &&
		    ntohs(a.sin_port) < 65535) {
			port = ntohs(a.sin_port);
			a.sin_port = htons((uint16_t)(port + 1));
			if (bind(fd2, (struct sockaddr *)&a, sizeof(a)))
				port = -1;
		}
		if (fd >= 0)
			close(fd);
		if (fd2 >= 0)
			close(fd2);
		if (port > 0)
			return port;
	}
	return -1;
}

static void br_err(const char *what, int err)
{
	const char *why = sn_last_error();

	fprintf(stderr, "snbench: bridge: %s: %s%s%s\n", what, strerror(-err),
		*why ? ": " : "", why);
}

static int br_open_sn(struct br_ctx *x)
{
	const struct snb_bridge_cfg *c = &x->cfg;
	char ep[64];
	int r, tries;

	r = sn_channel_create(&x->eg, SN_CHANNEL_OPTS(.type = SN_RING_MPSC,
		.lanes = 1, .slots = c->slots, .slot_size = c->msg_size));
	if (r) {
		br_err("egress channel", r);
		return r;
	}
	r = sn_channel_create(&x->in, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
		.slots = c->slots, .slot_size = c->msg_size));
	if (r) {
		br_err("ingress channel", r);
		return r;
	}
	/* the port pair may be taken between the look and the bind */
	for (tries = 0; tries < 5; tries++) {
		snprintf(ep, sizeof(ep), "tcp://127.0.0.1:%d", br_ports());
		r = sn_bridge_create(&x->a, SN_BRIDGE_OPTS(.host = 1,
			.bind = ep, .egress = x->eg, .frame_msgs = c->batch));
		if (r != -EADDRINUSE)
			break;
	}
	if (r) {
		br_err("bridge A (bind)", r);
		return r;
	}
	r = sn_bridge_create(&x->b, SN_BRIDGE_OPTS(.host = 2, .connect = ep,
		.ingress = x->in, .frame_msgs = c->batch));
	if (r) {
		br_err("bridge B (connect)", r);
		return r;
	}
	if ((r = sn_bridge_wait_up(x->a, BR_UP_NS)) ||
	    (r = sn_bridge_wait_up(x->b, BR_UP_NS))) {
		br_err("bridges up", r);
		return r;
	}
	if ((r = sn_producer_open(x->eg, &x->p)) ||
	    (r = sn_consumer_open(x->in, &x->c))) {
		br_err("handles", r);
		return r;
	}
	return 0;
}

static int br_zmq_err(const char *what)
{
	int e = errno;

	fprintf(stderr, "snbench: bridge: zmq %s: %s\n", what, zmq_strerror(e));
	return -e;
}

static int br_open_zmq(struct br_ctx *x)
{
	int hwm = SN_BRIDGE_HWM, zero = 0, tmo = 1000;
	char ep[256];
	size_t len = sizeof(ep);

	x->zctx[0] = zmq_ctx_new();
	x->zctx[1] = zmq_ctx_new();
	if (!x->zctx[0] || !x->zctx[1])
		return br_zmq_err("context");
	x->push = zmq_socket(x->zctx[0], ZMQ_PUSH);
	x->pull = zmq_socket(x->zctx[1], ZMQ_PULL);
	if (!x->push || !x->pull)
		return br_zmq_err("socket");
	if (zmq_setsockopt(x->push, ZMQ_SNDHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(x->pull, ZMQ_RCVHWM, &hwm, sizeof(hwm)) ||
	    zmq_setsockopt(x->push, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    zmq_setsockopt(x->pull, ZMQ_LINGER, &zero, sizeof(zero)) ||
	    /* both sides wake every second to see whether the run failed */
	    zmq_setsockopt(x->push, ZMQ_SNDTIMEO, &tmo, sizeof(tmo)) ||
	    zmq_setsockopt(x->pull, ZMQ_RCVTIMEO, &tmo, sizeof(tmo)))
		return br_zmq_err("setsockopt");
	if (zmq_bind(x->push, "tcp://127.0.0.1:*") ||
	    zmq_getsockopt(x->push, ZMQ_LAST_ENDPOINT, ep, &len))
		return br_zmq_err("bind");
	if (zmq_connect(x->pull, ep))
		return br_zmq_err("connect");
	return 0;
}

void snb_bridge_close(void *ctx)
{
	struct br_ctx *x = ctx;

	if (!x)
		return;
	sn_producer_close(x->p);
	sn_consumer_close(x->c);
	sn_bridge_destroy(x->b);
	sn_bridge_destroy(x->a);
	sn_channel_close(x->in);
	sn_channel_close(x->eg);
	if (x->push)
		zmq_close(x->push);
	if (x->pull)
		zmq_close(x->pull);
	for (int i = 0; i < 2; i++)
		if (x->zctx[i])
			zmq_ctx_term(x->zctx[i]);
	snb_buf_free(x->pbuf);
	free(x);
}

void *snb_bridge_open(unsigned int impl, const struct snb_bridge_cfg *cfg)
{
	struct br_ctx *x = calloc(1, sizeof(*x));

	if (!x)
		return NULL;
	x->impl = impl;
	x->cfg = *cfg;
	x->pbuf = snb_buf_alloc(cfg->msg_size, cfg->batch);
	if (!x->pbuf || (impl == SNB_BRIDGE_SN ? br_open_sn(x) :
			 br_open_zmq(x))) {
		snb_bridge_close(x);
		return NULL;
	}
	memset(x->pbuf, 0, (size_t)cfg->msg_size * cfg->batch);
	return x;
}

/* The producer: batches of cfg.batch messages, each stamped with its
 * sequence number, copied in with one call a batch. */
static void *br_producer(void *arg)
{
	struct br_ctx *x = arg;
	unsigned int size = x->cfg.msg_size, batch = x->cfg.batch;
	uint64_t seq = 0;

	while (!atomic_load(&x->go))
		snb_relax();
	while (seq < x->messages && !atomic_load(&x->stop)) {
		unsigned int k = batch, i, sent = 0;

		if (x->messages - seq < k)
			k = (unsigned int)(x->messages - seq);
		for (i = 0; i < k; i++) {
			uint64_t s = seq + i;

			memcpy(x->pbuf + (size_t)i * size, &s, sizeof(s));
		}
		if (x->impl == SNB_BRIDGE_ZMQ) {
			if (zmq_send(x->push, x->pbuf, (size_t)k * size, 0) < 0) {
				if (errno == EAGAIN || errno == EINTR)
					continue;	/* the same batch again */
				x->perr = -errno;
				break;
			}
			seq += k;
			continue;
		}
		while (sent < k && !atomic_load(&x->stop)) {
			int r = sn_send_burst(x->p, x->pbuf + (size_t)sent * size,
					      k - sent);

			if (r > 0) {
				sent += (unsigned int)r;
				continue;
			}
			if (r == -EAGAIN)
				r = sn_producer_wait(x->p, BR_WAIT_NS);
			if (r < 0 && r != -ETIMEDOUT && r != -EINTR) {
				x->perr = r;
				goto out;
			}
		}
		seq += k;
	}
out:
	return NULL;
}

/* The consumer (the caller's thread): every message in order; returns
 * how many arrived, *@err the first error (a gap: -EBADMSG). */
static uint64_t br_consume(struct br_ctx *x, int *err)
{
	unsigned int size = x->cfg.msg_size;
	uint64_t got = 0, last = snb_now_ns(), s;

	*err = 0;
	while (got < x->messages) {
		const unsigned char *m;
		unsigned int n, i;
		zmq_msg_t zm;
		__u32 pos = 0;
		int r;

		if (x->perr) {
			*err = x->perr;
			break;
		}
		if (x->impl == SNB_BRIDGE_ZMQ) {
			zmq_msg_init(&zm);
			r = zmq_msg_recv(&zm, x->pull, 0);
			if (r < 0) {
				zmq_msg_close(&zm);
				r = errno == EAGAIN || errno == EINTR ? 0 : -errno;
			} else if ((size_t)r % size) {
				zmq_msg_close(&zm);
				r = -EBADMSG;
			} else {
				n = (unsigned int)((size_t)r / size);
				m = zmq_msg_data(&zm);
				for (i = 0; i < n; i++) {
					memcpy(&s, m + (size_t)i * size, sizeof(s));
					if (s != got + i)
						break;
				}
				zmq_msg_close(&zm);
				r = i < n ? -EBADMSG : (int)n;
			}
		} else {
			r = sn_consumer_peek(x->c, x->cfg.batch, &pos);
			if (r > 0) {
				n = (unsigned int)r;
				for (i = 0; i < n; i++) {
					m = sn_consumer_slot(x->c, pos + i);
					memcpy(&s, m, sizeof(s));
					if (s != got + i)
						break;
				}
				sn_consumer_advance(x->c, n);
				r = i < n ? -EBADMSG : (int)n;
			} else if (r == -EAGAIN) {
				r = sn_consumer_wait(x->c, BR_WAIT_NS);
				r = r == -ETIMEDOUT || r == -EINTR || r > 0 ? 0 : r;
			}
		}
		if (r < 0) {
			*err = r;
			break;
		}
		if (r > 0) {
			got += (uint64_t)r;
			last = snb_now_ns();
		} else if (snb_now_ns() - last > BR_STALL_NS) {
			*err = -ETIMEDOUT;
			break;
		}
	}
	return got;
}

int snb_bridge_run(void *ctx, uint64_t messages, struct snb_bridge_run *run)
{
	struct br_ctx *x = ctx;
	struct sn_bridge_stats a0, a1, b0, b1;
	uint64_t t0, t1;
	pthread_t t;
	int err;

	memset(run, 0, sizeof(*run));
	x->messages = messages;
	x->perr = 0;
	atomic_store(&x->go, 0);
	atomic_store(&x->stop, 0);
	if (x->a) {
		sn_bridge_stats(x->a, &a0);
		sn_bridge_stats(x->b, &b0);
	}
	if (pthread_create(&t, NULL, br_producer, x))
		return -EAGAIN;
	t0 = snb_now_ns();
	atomic_store(&x->go, 1);
	run->received = br_consume(x, &err);
	t1 = snb_now_ns();
	atomic_store(&x->stop, 1);
	pthread_join(t, NULL);
	run->seconds = (double)(t1 - t0) / 1e9;
	if (x->a) {
		sn_bridge_stats(x->a, &a1);
		sn_bridge_stats(x->b, &b1);
		run->frames = a1.frames_sent - a0.frames_sent;
		run->resent = a1.msgs_resent - a0.msgs_resent;
		run->go_backs = a1.go_backs - a0.go_backs;
		run->stalls = b1.stalls - b0.stalls;
	}
	if (err)
		fprintf(stderr, "snbench: bridge: %s %u B: %llu of %llu messages: %s\n",
			snb_bridge_names[x->impl], x->cfg.msg_size,
			(unsigned long long)run->received,
			(unsigned long long)messages,
			err == -EBADMSG ? "out of order" : strerror(-err));
	return err;
}

#endif /* SNBENCH_BRIDGE */
