// SPDX-License-Identifier: MIT
/*
 * The bridge's protocol against what the wire may bring (bridge/frame.h):
 * a fake peer's frames to a real bridge, and bridges over an egress channel
 * that carried messages before them. Over ipc:// endpoints, no namespaces.
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zmq.h>
#include <sn/bridge.h>

#include "../bridge/frame.h"
#include "kselftest_harness.h"

#define SEC 1000000000ULL

/* A fake sending peer: its data and control sockets dialled to @ep. */
struct fake {
	void *ctx, *data, *ctl;
	__u64 b_inc;		/* the bridge's incarnation, from its status */
	__u64 acked;		/* lane 0's next, from its status */
	int gap;
};

static void fake_open(struct fake *f, const char *ep)
{
	char ctl[160];

	snprintf(ctl, sizeof(ctl), "%s-ctl", ep);
	f->ctx = zmq_ctx_new();
	f->data = zmq_socket(f->ctx, ZMQ_DEALER);
	f->ctl = zmq_socket(f->ctx, ZMQ_DEALER);
	zmq_connect(f->data, ep);
	zmq_connect(f->ctl, ctl);
}

static void fake_close(struct fake *f)
{
	int zero = 0;

	zmq_setsockopt(f->data, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_setsockopt(f->ctl, ZMQ_LINGER, &zero, sizeof(zero));
	zmq_close(f->data);
	zmq_close(f->ctl);
	zmq_ctx_term(f->ctx);
}

/* Reads the bridge's status frames for up to @ms. */
static void fake_status(struct fake *f, int ms)
{
	zmq_pollitem_t it = { .socket = f->ctl, .events = ZMQ_POLLIN };
	unsigned char buf[4096];
	struct snb_hdr h;
	struct snb_status s;
	struct snb_ack a;

	while (zmq_poll(&it, 1, ms) > 0) {
		int n = zmq_recv(f->ctl, buf, sizeof(buf), 0);

		ms = 20;
		if (n < (int)(sizeof(h) + sizeof(s)))
			continue;
		memcpy(&h, buf, sizeof(h));
		memcpy(&s, buf + sizeof(h), sizeof(s));
		f->b_inc = h.inc;
		if (s.lanes && n >= (int)(sizeof(h) + sizeof(s) + sizeof(a))) {
			memcpy(&a, buf + sizeof(h) + sizeof(s), sizeof(a));
			f->acked = a.next;
			f->gap |= !!(a.flags & SNB_ACK_GAP);
		}
	}
}

/* Sends lane 0's messages [seq, seq + count) of @size bytes, each its
 * sequence, the sender's acknowledged sequence being @base. */
static void fake_data(struct fake *f, __u64 peer_inc, __u32 size, __u64 base,
		      __u64 seq, __u32 count)
{
	static unsigned char buf[1 << 16];
	struct snb_hdr h = { .magic = SNB_MAGIC, .version = SNB_VERSION,
			     .type = SNB_DATA, .host = 7, .size = size,
			     .inc = 0x1111, .peer_inc = peer_inc };
	struct snb_data d = { .lane = 0, .epoch = 1, .seq = seq, .base = base,
			      .count = count };
	__u32 i;

	memset(buf, 0, sizeof(buf));
	memcpy(buf, &h, sizeof(h));
	memcpy(buf + sizeof(h), &d, sizeof(d));
	for (i = 0; i < count; i++) {
		__u64 v = seq + i;

		memcpy(buf + sizeof(h) + sizeof(d) + (size_t)i * size, &v, 8);
	}
	zmq_send(f->data, buf, sizeof(h) + sizeof(d) + (size_t)count * size, 0);
}

/* Reads statuses until the bridge delivered @n (or 5 s went by). */
static void fake_until(struct fake *f, struct sn_bridge *b, __u64 n)
{
	struct sn_bridge_stats st;
	int i;

	for (i = 0; i < 250; i++) {
		fake_status(f, 20);
		if (!sn_bridge_stats(b, &st) && st.msgs_delivered >= n &&
		    f->acked >= n)
			return;
	}
}

static void endpoint(char *ep, size_t len, const char *tag)
{
	snprintf(ep, len, "ipc:///tmp/sn-wire-%d-%s", (int)getpid(), tag);
}

/* A real receiving bridge (host 2) on an ingress channel of 1024 slots of
 * 16 bytes, and the fake peer connected to it, having heard its status. */
FIXTURE(receiver) {
	struct sn_channel *in;
	struct sn_bridge *b;
	struct fake f;
};

FIXTURE_SETUP(receiver)
{
	char ep[96];

	endpoint(ep, sizeof(ep), _metadata->name);
	ASSERT_EQ(0, sn_channel_create(&self->in, SN_CHANNEL_OPTS(
		.slot_size = 16, .slots = 1024, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_bridge_create(&self->b, SN_BRIDGE_OPTS(.host = 2,
		.bind = ep, .ingress = self->in)));
	fake_open(&self->f, ep);
	fake_status(&self->f, 1000);
	ASSERT_NE(0, self->f.b_inc);
}

FIXTURE_TEARDOWN(receiver)
{
	fake_close(&self->f);
	sn_bridge_destroy(self->b);
	sn_channel_close(self->in);
}

/* A receiver new to a lane starts at the sender's base, not at the first
 * frame it happens to get: frames lost before it are a gap, not skipped. */
TEST_F(receiver, fresh_starts_at_base)
{
	struct sn_bridge *b = self->b;
	struct sn_bridge_stats st;
	struct fake *f = &self->f;
	int i;

	/* messages 0..63 lost on the way; 64..127 arrive first */
	fake_data(f, f->b_inc, 16, 0, 64, 64);
	for (i = 0; i < 250 && !f->gap; i++)
		fake_status(f, 20);
	ASSERT_EQ(0, sn_bridge_stats(b, &st));
	EXPECT_EQ(0, st.msgs_delivered);
	EXPECT_EQ(1, st.frames_gap);
	EXPECT_EQ(0, f->acked);
	EXPECT_EQ(1, f->gap);
	/* the resend from the base is taken, then the rest */
	fake_data(f, f->b_inc, 16, 0, 0, 64);
	fake_data(f, f->b_inc, 16, 0, 64, 64);
	fake_until(f, b, 128);
	ASSERT_EQ(0, sn_bridge_stats(b, &st));
	EXPECT_EQ(128, st.msgs_delivered);
	EXPECT_EQ(128, f->acked);
}

/* A frame for another incarnation, whatever it holds, is dropped: a
 * stranger cannot fail the bridge. */
TEST_F(receiver, stranger_frames_dropped)
{
	struct sn_bridge *b = self->b;
	struct sn_bridge_stats st;
	struct fake *f = &self->f;
	int i;

	fake_data(f, f->b_inc + 1, 1024, 0, 0, 1);	/* too large, stale */
	fake_data(f, f->b_inc, 16, 5, 3, 1);		/* base past seq */
	fake_status(f, 300);
	ASSERT_EQ(0, sn_bridge_stats(b, &st));
	EXPECT_EQ(SN_BRIDGE_CONNECTING, st.state);	/* not heard: a stranger */
	EXPECT_EQ(0, st.error);
	EXPECT_EQ(0, st.msgs_delivered);
	/* from the peer itself, slots larger than ours fail the bridge */
	fake_data(f, f->b_inc, 1024, 0, 0, 1);
	for (i = 0; i < 250 && sn_bridge_state(b) != SN_BRIDGE_FAILED; i++)
		fake_status(f, 20);
	ASSERT_EQ(0, sn_bridge_stats(b, &st));
	EXPECT_EQ(SN_BRIDGE_FAILED, st.state);
	EXPECT_EQ(-EMSGSIZE, st.error);
}

/* An egress channel that carried 1000 messages before the bridge: the
 * bridge sends only what came after, counts each once, and so does the
 * negative control (SN_BRIDGE_NO_ACK). */
static void used_channel(struct __test_metadata *_metadata, unsigned int flags,
			 const char *tag)
{
	struct sn_channel *eg, *in;
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_bridge *a, *b;
	struct sn_bridge_stats sa, sb;
	char ep[96];
	__u64 v[2] = { 0, 0 }, want = 0;	/* a 16-byte slot */
	int i;

	endpoint(ep, sizeof(ep), tag);
	ASSERT_EQ(0, sn_channel_create(&eg, SN_CHANNEL_OPTS(.slot_size = 16,
		.slots = 256, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_channel_create(&in, SN_CHANNEL_OPTS(.slot_size = 16,
		.slots = 4096, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_producer_open(eg, &p));
	ASSERT_EQ(0, sn_consumer_open(eg, &c));
	for (i = 0; i < 1000; i++) {
		v[0] = 1000000 + i;
		ASSERT_EQ(0, sn_send(p, v, SEC));
		ASSERT_EQ(0, sn_recv(c, v, SEC));
	}
	sn_consumer_close(c);
	ASSERT_EQ(0, sn_bridge_create(&a, SN_BRIDGE_OPTS(.host = 1, .bind = ep,
		.egress = eg, .flags = flags)));
	ASSERT_EQ(0, sn_bridge_create(&b, SN_BRIDGE_OPTS(.host = 2,
		.connect = ep, .ingress = in)));
	ASSERT_EQ(0, sn_bridge_wait_up(a, 5 * SEC));
	for (i = 0; i < 100; i++) {
		v[0] = i;
		ASSERT_EQ(0, sn_send(p, v, 5 * SEC));
	}
	ASSERT_EQ(0, sn_bridge_flush(a, 5 * SEC));
	ASSERT_EQ(0, sn_consumer_open(in, &c));
	while (want < 100 && sn_recv(c, v, 2 * SEC) == 0) {
		EXPECT_EQ(want, v[0]);
		want++;
	}
	EXPECT_EQ(100, want);
	EXPECT_EQ(-ETIMEDOUT, sn_recv(c, v, 100 * 1000000ULL));
	ASSERT_EQ(0, sn_bridge_stats(a, &sa));
	ASSERT_EQ(0, sn_bridge_stats(b, &sb));
	EXPECT_EQ(100, sa.msgs_sent);
	EXPECT_EQ(flags ? 0 : 100, sa.msgs_acked);
	EXPECT_EQ(0, sa.unacked);
	EXPECT_EQ(100, sb.msgs_delivered);
	/* a slow run (sanitizers) may time out and send again: the
	 * receiver drops each as a duplicate */
	EXPECT_EQ(sa.msgs_resent, sb.msgs_duplicate);
	sn_consumer_close(c);
	sn_producer_close(p);
	sn_bridge_destroy(a);
	sn_bridge_destroy(b);
	sn_channel_close(eg);
	sn_channel_close(in);
}

TEST(used_channel_acked)
{
	used_channel(_metadata, 0, "used-ack");
}

TEST(used_channel_no_ack)
{
	used_channel(_metadata, SN_BRIDGE_NO_ACK, "used-noack");
}

/* Never heard, a bridge with give_up_ns fails anyway: its producers get
 * -EPIPE, never an endless wait. */
TEST(give_up_unheard_peer)
{
	struct sn_channel *eg;
	struct sn_producer *p;
	struct sn_bridge *a;
	char ep[96];
	__u64 v[2] = { 1, 0 };
	int r, i;

	endpoint(ep, sizeof(ep), "nobody");
	ASSERT_EQ(0, sn_channel_create(&eg, SN_CHANNEL_OPTS(.slot_size = 16,
		.slots = 4, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_producer_open(eg, &p));
	ASSERT_EQ(0, sn_bridge_create(&a, SN_BRIDGE_OPTS(.host = 1,
		.connect = ep, .egress = eg, .give_up_ns = SEC / 2)));
	EXPECT_EQ(SN_BRIDGE_CONNECTING, sn_bridge_state(a));
	EXPECT_EQ(-EHOSTDOWN, sn_bridge_wait_up(a, 3 * SEC));
	EXPECT_EQ(SN_BRIDGE_FAILED, sn_bridge_state(a));
	for (i = 0, r = 0; i < 10 && r != -EPIPE; i++)
		r = sn_send(p, v, SEC / 10);
	EXPECT_EQ(-EPIPE, r);
	sn_producer_close(p);
	sn_bridge_destroy(a);
	sn_channel_close(eg);
}

TEST_HARNESS_MAIN
