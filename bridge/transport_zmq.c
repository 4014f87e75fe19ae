/* SPDX-License-Identifier: MIT */
/*
 * The ZeroMQ transport: one DEALER socket per channel (PAIR does not
 * reconnect over TCP), each with its own queues and high-water marks, TCP
 * keepalives and a TCP user timeout so that a dead connection is closed and
 * dialled again, and ZMQ_IMMEDIATE on the dialling side so that nothing
 * queues for a peer that is not connected. Each channel has an I/O thread of
 * its own (ZMQ_AFFINITY).
 *
 * The control channel's endpoint is the data channel's with the next TCP
 * port (tcp://host:7000 -> tcp://host:7001), or with "-ctl" appended
 * (ipc://, inproc://).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>

#include "transport.h"

struct snb_zmq {
	void *ctx;
	void *sock[2];		/* enum snb_chan */
	char bound[2][512];	/* what we bound: unbound at close */
};

_Static_assert(sizeof(zmq_msg_t) <= sizeof(((struct snb_frame *)0)->priv),
	       "zmq_msg_t fits a frame's priv");

static int snb_zmq_err(void)
{
	return zmq_errno() ? -zmq_errno() : -EIO;
}

/* The control channel's endpoint in @out. */
static int snb_ctl_endpoint(const char *ep, char *out, size_t size)
{
	const char *colon;
	char *end;
	unsigned long port;

	if (!strncmp(ep, "tcp://", 6)) {
		colon = strrchr(ep + 6, ':');
		if (!colon)
			return -EINVAL;
		errno = 0;
		port = strtoul(colon + 1, &end, 10);
		if (errno || *end || end == colon + 1 || !port || port >= 65535)
			return -EINVAL;
		if ((size_t)snprintf(out, size, "%.*s:%lu", (int)(colon - ep),
				     ep, port + 1) >= size)
			return -ENAMETOOLONG;
		return 0;
	}
	if ((size_t)snprintf(out, size, "%s-ctl", ep) >= size)
		return -ENAMETOOLONG;
	return 0;
}

static int snb_zmq_setopt(void *s, int opt, int v)
{
	return zmq_setsockopt(s, opt, &v, sizeof(v)) ? snb_zmq_err() : 0;
}

static void snb_zmq_close(void *t)
{
	struct snb_zmq *z = t;
	int i;

	if (!z)
		return;
	for (i = 0; i < 2; i++) {
		if (!z->sock[i])
			continue;
		if (z->bound[i][0])
			zmq_unbind(z->sock[i], z->bound[i]);
		/* libzmq 4.3.4 leaves an ipc:// listener's file behind */
		if (!strncmp(z->bound[i], "ipc://", 6))
			unlink(z->bound[i] + 6);
		zmq_close(z->sock[i]);
	}
	if (z->ctx)
		zmq_ctx_term(z->ctx);
	free(z);
}

static int snb_zmq_open(void **t, const struct snb_link_opts *o)
{
	struct snb_zmq *z = calloc(1, sizeof(*z));
	char ctl[512];
	const char *ep[2] = { o->endpoint, ctl };
	int dead_ms;
	int i, ret;

	if (!z)
		return -ENOMEM;
	ret = snb_ctl_endpoint(o->endpoint, ctl, sizeof(ctl));
	if (ret)
		goto fail;
	/* TCP gives up on unacknowledged data after 10 dead times (each
	 * drop loses what was in flight, so not eagerly), at least 10 s */
	dead_ms = (int)(o->dead_ns / 1000000);
	if (dead_ms < 1000)
		dead_ms = 1000;
	z->ctx = zmq_ctx_new();
	if (!z->ctx) {
		ret = snb_zmq_err();
		goto fail;
	}
	/* an I/O thread per channel: acknowledgements and heartbeats never
	 * wait behind a busy data connection */
	if (zmq_ctx_set(z->ctx, ZMQ_IO_THREADS, 2)) {
		ret = snb_zmq_err();
		goto fail;
	}
	for (i = 0; i < 2; i++) {
		void *s = zmq_socket(z->ctx, ZMQ_DEALER);

		if (!s) {
			ret = snb_zmq_err();
			goto fail;
		}
		z->sock[i] = s;
		int hwm = i == SNB_CHAN_DATA ? o->hwm : 1000;
		/* No ZMTP heartbeats: libzmq 4.3.4 asserts (!_io_error,
		 * stream_engine_base.cpp) when one times out on a connection
		 * whose input a full receive queue stopped, which
		 * backpressure does (libzmq issues 3937, 4364, 4767). A dead
		 * connection is TCP's to find instead: keepalives when idle,
		 * TCP_USER_TIMEOUT (ZMQ_TCP_MAXRT) for unacknowledged data;
		 * ZeroMQ then dials again. The bridge's own heartbeats say
		 * whether the peer lives. */
		const int opt[][2] = {
			{ ZMQ_LINGER, 0 },
			{ ZMQ_SNDHWM, hwm },
			{ ZMQ_RCVHWM, hwm },
			{ ZMQ_RECONNECT_IVL, 50 },
			{ ZMQ_RECONNECT_IVL_MAX, 500 },
			{ ZMQ_IMMEDIATE, !o->bind },
			{ ZMQ_TCP_KEEPALIVE, 1 },
			{ ZMQ_TCP_KEEPALIVE_IDLE, 1 + dead_ms / 1000 },
			{ ZMQ_TCP_KEEPALIVE_INTVL, 1 },
			{ ZMQ_TCP_KEEPALIVE_CNT, 5 },
			{ ZMQ_TCP_MAXRT, 10 * dead_ms },
		};
		__u64 affinity = 1ULL << i;	/* I/O thread i */
		size_t k;

		for (k = 0; k < sizeof(opt) / sizeof(opt[0]); k++) {
			ret = snb_zmq_setopt(s, opt[k][0], opt[k][1]);
			if (ret)
				goto fail;
		}
		__s64 maxsize = (__s64)o->max_frame[i];

		if (zmq_setsockopt(s, ZMQ_MAXMSGSIZE, &maxsize,
				   sizeof(maxsize)) ||
		    zmq_setsockopt(s, ZMQ_AFFINITY, &affinity,
				   sizeof(affinity))) {
			ret = snb_zmq_err();
			goto fail;
		}
		if (o->bind && !zmq_bind(s, ep[i])) {
			size_t len = sizeof(z->bound[i]);

			/* the endpoint as bound (a wildcard resolved) */
			if (zmq_getsockopt(s, ZMQ_LAST_ENDPOINT, z->bound[i],
					   &len))
				z->bound[i][0] = 0;
			continue;
		}
		if (o->bind || zmq_connect(s, ep[i])) {
			ret = snb_zmq_err();
			/* ZeroMQ says ENOENT/EPROTONOSUPPORT/EINVAL for bad
			 * endpoints: one errno for the caller */
			if (ret == -ENOENT || ret == -EPROTONOSUPPORT ||
			    ret == -ENODEV)
				ret = -EINVAL;
			goto fail;
		}
	}
	*t = z;
	return 0;
fail:
	snb_zmq_close(z);
	return ret;
}

static int snb_zmq_frame_init(void *t, struct snb_frame *f, size_t len)
{
	zmq_msg_t *m = (zmq_msg_t *)f->priv;

	(void)t;
	if (zmq_msg_init_size(m, len))
		return snb_zmq_err();
	f->data = zmq_msg_data(m);
	f->len = len;
	return 0;
}

static void snb_zmq_frame_free(void *t, struct snb_frame *f)
{
	(void)t;
	zmq_msg_close((zmq_msg_t *)f->priv);
	f->data = NULL;
	f->len = 0;
}

static int snb_zmq_send(void *t, enum snb_chan ch, struct snb_frame *f)
{
	struct snb_zmq *z = t;

	if (zmq_msg_send((zmq_msg_t *)f->priv, z->sock[ch], ZMQ_DONTWAIT) < 0)
		return snb_zmq_err();
	f->data = NULL;
	f->len = 0;
	return 0;
}

static int snb_zmq_recv(void *t, enum snb_chan ch, struct snb_frame *f)
{
	struct snb_zmq *z = t;
	zmq_msg_t *m = (zmq_msg_t *)f->priv;
	int more;
	size_t sz = sizeof(more);

	zmq_msg_init(m);
	if (zmq_msg_recv(m, z->sock[ch], ZMQ_DONTWAIT) < 0) {
		int ret = snb_zmq_err();

		zmq_msg_close(m);
		return ret;
	}
	/* the bridge sends single-part messages: drop any further parts a
	 * stranger sent, so that the next recv starts a message */
	if (!zmq_getsockopt(z->sock[ch], ZMQ_RCVMORE, &more, &sz) && more) {
		zmq_msg_t extra;

		do {
			zmq_msg_init(&extra);
			zmq_msg_recv(&extra, z->sock[ch], ZMQ_DONTWAIT);
			zmq_msg_close(&extra);
			sz = sizeof(more);
		} while (!zmq_getsockopt(z->sock[ch], ZMQ_RCVMORE, &more,
					 &sz) && more);
		zmq_msg_close(m);
		return -EPROTO;
	}
	f->data = zmq_msg_data(m);
	f->len = zmq_msg_size(m);
	return 0;
}

static int snb_zmq_wait(void *t, unsigned int events, int timeout_ms)
{
	struct snb_zmq *z = t;
	zmq_pollitem_t it[2] = {
		{ .socket = z->sock[SNB_CHAN_DATA],
		  .events = (short)(((events & SNB_WAIT_DATA_IN) ? ZMQ_POLLIN : 0) |
			    ((events & SNB_WAIT_DATA_OUT) ? ZMQ_POLLOUT : 0)) },
		{ .socket = z->sock[SNB_CHAN_CTL],
		  .events = (events & SNB_WAIT_CTL_IN) ? ZMQ_POLLIN : 0 },
	};

	if (zmq_poll(it, 2, timeout_ms) < 0 && zmq_errno() != EINTR)
		return snb_zmq_err();
	return 0;
}

const struct snb_transport_ops snb_zmq_transport = {
	.name = "zeromq",
	.open = snb_zmq_open,
	.close = snb_zmq_close,
	.frame_init = snb_zmq_frame_init,
	.frame_free = snb_zmq_frame_free,
	.send = snb_zmq_send,
	.recv = snb_zmq_recv,
	.wait = snb_zmq_wait,
};
