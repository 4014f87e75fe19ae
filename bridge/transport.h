/* SPDX-License-Identifier: MIT */
/*
 * The bridge's transport, behind a small interface so that another (UCX
 * for RDMA NICs, say) can sit beside ZeroMQ: two message channels to one
 * peer, data and control, each delivering whole frames in order while a
 * connection lasts and possibly losing frames when it breaks (the bridge's
 * protocol, bridge.c, makes up for that). Sends and receives never block;
 * wait() does.
 */
#ifndef SN_BRIDGE_TRANSPORT_H
#define SN_BRIDGE_TRANSPORT_H

#include <stddef.h>
#include <linux/types.h>

enum snb_chan {
	SNB_CHAN_DATA = 0,
	SNB_CHAN_CTL = 1,
};

/* A frame buffer the transport owns (ZeroMQ: a zmq_msg_t in priv). */
struct snb_frame {
	unsigned char *data;
	size_t len;
	unsigned char priv[64] __attribute__((aligned(8)));
};

struct snb_link_opts {
	const char *endpoint;	/* the data channel's; the transport derives
				 * the control channel's */
	int bind;		/* listen (1) or dial (0) */
	__u64 heartbeat_ns;	/* the transport's own keepalive, if any */
	__u64 dead_ns;
	int hwm;		/* data frames queued per channel and way */
	size_t max_frame[2];	/* per channel: longer frames are refused */
};

/* wait() events */
#define SNB_WAIT_DATA_IN	(1U << 0)
#define SNB_WAIT_DATA_OUT	(1U << 1)
#define SNB_WAIT_CTL_IN		(1U << 2)

struct snb_transport_ops {
	const char *name;
	/* 0 or a negative errno; *@t is the transport's state */
	int (*open)(void **t, const struct snb_link_opts *o);
	void (*close)(void *t);
	/* an empty frame of @len bytes to fill and send */
	int (*frame_init)(void *t, struct snb_frame *f, size_t len);
	void (*frame_free)(void *t, struct snb_frame *f);
	/* 0: sent, and @f is the transport's again; -EAGAIN: queue full,
	 * @f is still the caller's */
	int (*send)(void *t, enum snb_chan ch, struct snb_frame *f);
	/* 0: @f holds a frame (frame_free() it); -EAGAIN: none */
	int (*recv)(void *t, enum snb_chan ch, struct snb_frame *f);
	/* waits up to @timeout_ms for one of @events (SNB_WAIT_*): 0 */
	int (*wait)(void *t, unsigned int events, int timeout_ms);
};

extern const struct snb_transport_ops snb_zmq_transport;

#endif /* SN_BRIDGE_TRANSPORT_H */
