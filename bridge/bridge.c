/* SPDX-License-Identifier: MIT */
/*
 * A bridge: one thread that drains an egress channel to a peer and commits
 * the peer's messages to an ingress channel, exactly once across broken
 * links (the protocol: include/sn/bridge.h at the top, bridge/frame.h).
 *
 * Sender side, per egress lane: the consumer's head is the acknowledged
 * position (sn_consumer_advance_to() on each acknowledgement), its cursor
 * how far the bridge has read (sn_consumer_peek_lane()), and tx.sent the
 * next position to send, which goes back to the head on a gap, a new peer
 * incarnation or a timeout. Receiver side, per source lane: the next
 * sequence expected; a frame is committed from there or dropped.
 */
#include <errno.h>
#include <stddef.h>
#include <endian.h>
#include <pthread.h>
#include <sched.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>
#include <sn/bridge.h>

#include "frame.h"
#include "transport.h"

#define SNB_API __attribute__((visibility("default")))

/* Acknowledge at least every SNB_ACK_FRAMES frames, or SNB_ACK_NS after
 * the first unacknowledged delivery. */
#define SNB_ACK_FRAMES	8
#define SNB_ACK_NS	(500ULL * 1000)
/* The longest retransmission timeout (exponential backoff). */
#define SNB_RTO_MAX_NS	(2ULL * 1000000000ULL)
/* Frames received per loop iteration at most (fairness to sending). */
#define SNB_RECV_BUDGET	16

struct snb_tx {
	__u32 sent;		/* next position to send */
	__u32 hi;		/* past the highest position ever sent */
	__u32 gb_pos;		/* where the last go-back went */
	__u32 pad;
	__u64 gb_ns;		/* when */
	__u64 progress_ns;	/* the acknowledgement last moved */
	__u64 rto_ns;		/* doubles with each timeout, up to
				 * SNB_RTO_MAX_NS; back to rto on progress */
};

struct snb_rx {
	__u64 next;		/* the next sequence expected */
	int known;		/* next is set (first frame of this sender) */
	int gap;		/* dropped frames past next since the status */
};

/* A received data frame not yet wholly delivered (ingress full). */
struct snb_pending {
	int active;
	struct snb_frame f;
	__u32 host, lane, epoch, size, count, done;
	__u64 seq;
	const unsigned char *msgs;
};

struct sn_bridge {
	struct sn_bridge_opts o;
	const struct snb_transport_ops *ops;
	void *t;
	struct sn_consumer *cons;	/* egress */
	struct sn_producer *prod;	/* ingress */
	__u32 lanes;			/* egress lanes */
	__u32 size;			/* egress slot bytes */
	__u32 in_size;			/* ingress slot bytes */
	__u32 next_lane;
	__u64 inc;			/* ours */
	__u64 peer_inc;			/* the peer's, as last heard; 0 */
	__u64 retired[4];		/* the peer's earlier incarnations */
	__u32 nretired;
	__u64 src_inc;			/* the sender rx[] is about */
	struct snb_tx tx[SN_MAX_LANES];
	struct snb_rx rx[SN_MAX_LANES];
	struct snb_pending pend;
	__u64 heard_ns, status_ns, down_ns, ack_first_ns, created_ns;
	__u64 rto_ns;
	__u32 frames_unacked;		/* delivered since the last status */
	int ack_dirty;
	int status_now;
	int peer_stalled;
	int send_blocked;		/* the data channel refused a frame */
	pthread_t thread;
	int started;
	int stop;			/* atomic */
	int state;			/* atomic: enum sn_bridge_state */
	int error;			/* atomic */
	__u32 peer_host;		/* atomic */
	struct sn_bridge_stats st;	/* the counters (up to state): written
					 * by the thread (atomics) */
};

static __u64 snb_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* The thread is the only writer of the counters; others read them. */
#define SNB_ADD(b, field, n) \
	__atomic_store_n(&(b)->st.field, (b)->st.field + (n), __ATOMIC_RELAXED)
#define SNB_SET(b, field, v) \
	__atomic_store_n(&(b)->st.field, (v), __ATOMIC_RELAXED)
/* The counters are the __u64 words before state. */
#define SNB_COUNTERS	(offsetof(struct sn_bridge_stats, state) / sizeof(__u64))

static void snb_set_state(struct sn_bridge *b, int state)
{
	__atomic_store_n(&b->state, state, __ATOMIC_RELEASE);
}

static void snb_hdr(const struct sn_bridge *b, struct snb_hdr *h, int type,
		    __u32 size)
{
	h->magic = htole32(SNB_MAGIC);
	h->version = SNB_VERSION;
	h->type = (__u8)type;
	h->flags = 0;
	h->host = htole32(b->o.host);
	h->size = htole32(size);
	h->inc = htole64(b->inc);
	h->peer_inc = htole64(b->peer_inc);
}

/* ---- sender ---- */

static __u64 snb_head_seq(struct sn_bridge *b, __u32 lane, __u32 *head,
			  __u32 *cursor)
{
	sn_consumer_lane_state(b->cons, lane, cursor, head);
	return sn_consumer_seq(b->cons, lane, *head);
}

static void snb_go_back(struct sn_bridge *b, __u32 lane, __u32 to, __u64 now)
{
	struct snb_tx *tx = &b->tx[lane];

	if (tx->sent != to) {
		tx->sent = to;
		SNB_ADD(b, go_backs, 1);
	}
	tx->gb_pos = to;
	tx->gb_ns = now;
	tx->progress_ns = now;
}

/* The peer acknowledged @lane up to sequence @next (and saw a gap there
 * when @gap). */
static void snb_on_ack(struct sn_bridge *b, __u32 lane, __u64 next, int gap,
		       __u64 now)
{
	struct snb_tx *tx = &b->tx[lane];
	__u32 head, cursor, pos;
	__u64 hs = snb_head_seq(b, lane, &head, &cursor);

	if (next < hs || next - hs > tx->hi - head)
		return;		/* old news, or not something we sent */
	pos = head + (__u32)(next - hs);
	if (pos != head) {
		sn_consumer_advance_to(b->cons, lane, pos);
		SNB_ADD(b, msgs_acked, pos - head);
		SNB_ADD(b, unacked, -(__u64)(pos - head));
		tx->progress_ns = now;
		tx->rto_ns = b->rto_ns;
		if (tx->sent - head < pos - head)
			tx->sent = pos;
	}
	/* one go-back per gap: further reports of the same gap were sent
	 * before our resend reached the peer */
	if (gap && !(tx->gb_pos == pos && now - tx->gb_ns < b->rto_ns))
		snb_go_back(b, lane, pos, now);
}

/* The epoch of the messages from @pos, and how many of @k share it. */
static __u32 snb_epoch_run(struct sn_bridge *b, __u32 lane, __u32 pos,
			   __u32 *k)
{
	__u32 e = sn_consumer_epoch(b->cons, lane, pos), i;

	if (*k > 1 && sn_consumer_epoch(b->cons, lane, pos + *k - 1) != e) {
		for (i = 1; i < *k; i++)
			if (sn_consumer_epoch(b->cons, lane, pos + i) != e)
				break;
		*k = i;
	}
	return e;
}

/* Sends one frame of @lane if it has something to send: 1 sent, 0 nothing
 * or the transport is full. */
static int snb_send_lane(struct sn_bridge *b, __u32 lane, __u64 now)
{
	struct snb_tx *tx = &b->tx[lane];
	struct snb_frame f;
	struct snb_hdr *h;
	struct snb_data *d;
	__u32 head, cursor, pos, k, i, first;
	__u64 seq = snb_head_seq(b, lane, &head, &cursor);
	int r;

	if (cursor == tx->sent) {
		r = sn_consumer_peek_lane(b->cons, lane, b->o.frame_msgs, &pos);
		if (r <= 0)
			return 0;
		cursor = pos + (__u32)r;
	}
	k = cursor - tx->sent;
	if (k > b->o.frame_msgs)
		k = b->o.frame_msgs;
	pos = tx->sent;
	seq += pos - head;
	first = snb_epoch_run(b, lane, pos, &k);
	if (b->ops->frame_init(b->t, &f, sizeof(*h) + sizeof(*d) +
			       (size_t)k * b->size))
		return 0;
	h = (struct snb_hdr *)f.data;
	d = (struct snb_data *)(h + 1);
	snb_hdr(b, h, SNB_DATA, b->size);
	d->lane = htole32(lane);
	d->epoch = htole32(first);
	d->seq = htole64(seq);
	d->base = htole64(seq - (pos - head));
	d->count = htole32(k);
	d->pad = 0;
	for (i = 0; i < k; i++)
		memcpy((unsigned char *)(d + 1) + (size_t)i * b->size,
		       sn_consumer_lane_slot(b->cons, lane, pos + i), b->size);
	if (b->ops->send(b->t, SNB_CHAN_DATA, &f)) {
		b->ops->frame_free(b->t, &f);
		b->send_blocked = 1;
		return 0;
	}
	if (tx->sent == head)
		tx->progress_ns = now;
	tx->sent = pos + k;
	SNB_ADD(b, frames_sent, 1);
	/* head <= pos, hi <= cursor: what passes hi is sent the first time */
	if (pos + k - head > tx->hi - head) {
		__u32 fresh = pos + k - tx->hi;

		if (fresh > k)
			fresh = k;
		SNB_ADD(b, msgs_sent, fresh);
		SNB_ADD(b, msgs_resent, k - fresh);
		SNB_ADD(b, unacked, fresh);
		tx->hi = pos + k;
	} else {
		SNB_ADD(b, msgs_resent, k);
	}
	if (b->o.flags & SN_BRIDGE_NO_ACK) {
		/* the negative control: gone once sent */
		sn_consumer_advance_to(b->cons, lane, tx->sent);
		SNB_ADD(b, unacked, -(__u64)k);
	}
	return 1;
}

/* Sends what the egress lanes hold, round robin, while the peer is known
 * and the transport takes it. */
static int snb_send_all(struct sn_bridge *b, __u64 now)
{
	int sent = 0, any = 1;
	__u32 i;

	if (!b->cons || !b->peer_inc)
		return 0;
	b->send_blocked = 0;
	while (any && !b->send_blocked && sent < 64) {
		any = 0;
		for (i = 0; i < b->lanes && !b->send_blocked; i++) {
			__u32 l = b->next_lane;

			b->next_lane = l + 1 < b->lanes ? l + 1 : 0;
			if (snb_send_lane(b, l, now)) {
				any = 1;
				sent++;
			}
		}
	}
	return sent;
}

/*
 * No acknowledgement for a lane's rto while frames are out, the peer is
 * heard and not stalled: they may be lost at the tail (no later frame shows
 * a gap). The timeout doubles each time it fires without progress, so that
 * a slow peer is not buried under resends of what it is still reading.
 */
static void snb_check_rto(struct sn_bridge *b, __u64 now)
{
	__u32 lane, head, cursor;

	if (!b->cons || b->peer_stalled || (b->o.flags & SN_BRIDGE_NO_ACK) ||
	    __atomic_load_n(&b->state, __ATOMIC_RELAXED) != SN_BRIDGE_UP)
		return;
	for (lane = 0; lane < b->lanes; lane++) {
		struct snb_tx *tx = &b->tx[lane];

		if (!tx->rto_ns)
			tx->rto_ns = b->rto_ns;
		sn_consumer_lane_state(b->cons, lane, &cursor, &head);
		if (tx->sent != head && now - tx->progress_ns > tx->rto_ns) {
			snb_go_back(b, lane, head, now);
			tx->rto_ns = 2 * tx->rto_ns < SNB_RTO_MAX_NS ?
				     2 * tx->rto_ns : SNB_RTO_MAX_NS;
		}
	}
}

/* The peer is heard again after silence: what we sent meanwhile may be
 * lost, and no gap may show it. Send again from its acknowledgements. */
static void snb_resync(struct sn_bridge *b, __u64 now)
{
	__u32 lane, head, cursor;

	if (!b->cons || (b->o.flags & SN_BRIDGE_NO_ACK))
		return;
	for (lane = 0; lane < b->lanes; lane++) {
		sn_consumer_lane_state(b->cons, lane, &cursor, &head);
		snb_go_back(b, lane, head, now);
		b->tx[lane].rto_ns = b->rto_ns;
	}
}

/* ---- receiver ---- */

static int snb_deliver_ingress(void *arg, __u32 host, __u32 lane,
			       __u32 epoch, __u64 seq, const void *msgs,
			       __u32 n, __u32 size)
{
	struct sn_bridge *b = arg;
	__u32 pos, i;
	int k;

	(void)host;
	(void)lane;
	(void)epoch;
	(void)seq;
	k = sn_producer_reserve(b->prod, n, &pos);
	if (k == -EAGAIN || k == -EPIPE)	/* full, or no consumer now */
		return 0;
	if (k < 0)
		return k;
	for (i = 0; i < (__u32)k; i++) {
		unsigned char *dst = sn_producer_slot(b->prod, pos + i);

		memcpy(dst, (const unsigned char *)msgs + (size_t)i * size,
		       size);
		if (size < b->in_size)
			memset(dst + size, 0, b->in_size - size);
	}
	sn_producer_commit(b->prod, (__u32)k);
	return k;
}

static void snb_close_channels(struct sn_bridge *b)
{
	/* our consumer gone, producers get -EPIPE; our producer gone, the
	 * consumer gets -EPIPE once it drained */
	if (b->cons) {
		sn_consumer_close(b->cons);
		b->cons = NULL;
	}
	if (b->prod) {
		sn_producer_close(b->prod);
		b->prod = NULL;
	}
}

/* On the thread: the bridge fails for good. It goes silent (the peer sees
 * it down) and lets go of its channels (local peers see the end). */
static void snb_fail(struct sn_bridge *b, int err)
{
	if (!__atomic_load_n(&b->error, __ATOMIC_RELAXED))
		__atomic_store_n(&b->error, err, __ATOMIC_RELAXED);
	snb_set_state(b, SN_BRIDGE_FAILED);
	if (b->pend.active) {
		b->ops->frame_free(b->t, &b->pend.f);
		b->pend.active = 0;
	}
	snb_close_channels(b);
}

/* Delivers what the pending frame still holds: 1 when it is done. */
static int snb_deliver_pending(struct sn_bridge *b, __u64 now)
{
	struct snb_pending *p = &b->pend;
	sn_bridge_deliver_fn fn = b->o.deliver ? b->o.deliver :
				  snb_deliver_ingress;
	void *arg = b->o.deliver ? b->o.deliver_arg : b;
	int k;

	while (p->done < p->count) {
		k = fn(arg, p->host, p->lane, p->epoch, p->seq + p->done,
		       p->msgs + (size_t)p->done * p->size,
		       p->count - p->done, p->size);
		if (k < 0) {
			snb_fail(b, k);
			return 0;
		}
		if (!k)
			return 0;
		if ((__u32)k > p->count - p->done)
			k = (int)(p->count - p->done);
		p->done += (__u32)k;
		b->rx[p->lane].next += (__u32)k;
		SNB_ADD(b, msgs_delivered, (__u32)k);
		if (!b->ack_dirty)
			b->ack_first_ns = now;
		b->ack_dirty = 1;
	}
	b->ops->frame_free(b->t, &p->f);
	p->active = 0;
	b->frames_unacked++;
	return 1;
}

/* Copies the header of @f into @h (and @len bytes of body after it into
 * @body): 1 when it is a frame of @type, 0 otherwise. Frames may sit at
 * any address, so the structs are copied out. */
static int snb_parse(const struct snb_frame *f, int type, struct snb_hdr *h,
		     void *body, size_t len)
{
	if (f->len < sizeof(*h) + len)
		return 0;
	memcpy(h, f->data, sizeof(*h));
	memcpy(body, f->data + sizeof(*h), len);
	return le32toh(h->magic) == SNB_MAGIC && h->version == SNB_VERSION &&
	       h->type == type;
}

/* A data frame in b->pend.f: delivers it, or keeps it pending, or frees
 * it. */
static void snb_on_data(struct sn_bridge *b, __u64 now)
{
	struct snb_pending *p = &b->pend;
	struct snb_hdr h;
	struct snb_data d;
	struct snb_rx *rx;
	__u32 lane, count, size, skip;
	__u64 seq, base, inc;

	if (!snb_parse(&p->f, SNB_DATA, &h, &d, sizeof(d)))
		goto drop;
	lane = le32toh(d.lane);
	count = le32toh(d.count);
	size = le32toh(h.size);
	seq = le64toh(d.seq);
	base = le64toh(d.base);
	inc = le64toh(h.inc);
	if (lane >= SN_MAX_LANES || !count || !size || base > seq ||
	    (p->f.len - sizeof(h) - sizeof(d)) / size < count)
		goto drop;
	if (le64toh(h.peer_inc) != b->inc)
		goto gap;	/* for an earlier incarnation of ours */
	b->heard_ns = now;
	__atomic_store_n(&b->peer_host, le32toh(h.host), __ATOMIC_RELAXED);
	SNB_ADD(b, frames_received, 1);
	if (!b->o.deliver && size > b->in_size) {
		b->ops->frame_free(b->t, &p->f);
		snb_fail(b, -EMSGSIZE);	/* the peer's slots are larger */
		return;
	}
	if (inc != b->src_inc) {	/* a new sender: its lanes afresh */
		memset(b->rx, 0, sizeof(b->rx));
		b->src_inc = inc;
	}
	rx = &b->rx[lane];
	/* the sender holds nothing before base: a lane new to us starts
	 * there, and one behind it (the sender released what an earlier
	 * incarnation of ours acknowledged) moves up */
	if (!rx->known || base > rx->next) {
		rx->next = base;
		rx->known = 1;
	}
	if (seq > rx->next) {
		if (!rx->gap)
			b->status_now = 1;
		rx->gap = 1;
		goto gap;
	}
	if (rx->next - seq >= count) {
		SNB_ADD(b, msgs_duplicate, count);
		goto drop;
	}
	skip = (__u32)(rx->next - seq);
	SNB_ADD(b, msgs_duplicate, skip);
	p->active = 1;
	p->host = le32toh(h.host);
	p->lane = lane;
	p->epoch = le32toh(d.epoch);
	p->size = size;
	p->count = count;
	p->done = skip;
	p->seq = seq;
	p->msgs = p->f.data + sizeof(h) + sizeof(d);
	if (!snb_deliver_pending(b, now) && p->active)
		SNB_ADD(b, stalls, 1);
	return;
gap:
	SNB_ADD(b, frames_gap, 1);
drop:
	b->ops->frame_free(b->t, &p->f);
}

static int snb_recv_data(struct sn_bridge *b, __u64 now)
{
	int n = 0;

	if (b->pend.active && !snb_deliver_pending(b, now))
		return 0;
	while (n < SNB_RECV_BUDGET && !b->pend.active &&
	       (b->prod || b->o.deliver) &&
	       __atomic_load_n(&b->state, __ATOMIC_RELAXED) !=
	       SN_BRIDGE_FAILED &&
	       !b->ops->recv(b->t, SNB_CHAN_DATA, &b->pend.f)) {
		snb_on_data(b, now);
		n++;
	}
	return n;
}

/* ---- control: status (heartbeat and acknowledgements) ---- */

static void snb_send_status(struct sn_bridge *b, __u64 now)
{
	struct snb_frame f;
	struct snb_hdr *h;
	struct snb_status *s;
	struct snb_ack *a;
	__u32 lane, n = 0;

	for (lane = 0; lane < SN_MAX_LANES; lane++)
		n += b->rx[lane].known;
	if (b->ops->frame_init(b->t, &f, sizeof(*h) + sizeof(*s) +
			       n * sizeof(*a)))
		return;
	h = (struct snb_hdr *)f.data;
	s = (struct snb_status *)(h + 1);
	a = (struct snb_ack *)(s + 1);
	snb_hdr(b, h, SNB_STATUS, 0);
	s->flags = htole32(b->pend.active ? SNB_ST_STALLED : 0);
	s->lanes = htole32(n);
	s->src_inc = htole64(b->src_inc);
	for (lane = 0; lane < SN_MAX_LANES; lane++) {
		struct snb_rx *rx = &b->rx[lane];

		if (!rx->known)
			continue;
		a->lane = htole32(lane);
		a->flags = htole32(rx->gap ? SNB_ACK_GAP : 0);
		a->next = htole64(rx->next);
		a++;
	}
	if (b->ops->send(b->t, SNB_CHAN_CTL, &f)) {
		b->ops->frame_free(b->t, &f);
		return;
	}
	for (lane = 0; lane < SN_MAX_LANES; lane++)
		b->rx[lane].gap = 0;
	b->status_ns = now;
	b->status_now = 0;
	b->ack_dirty = 0;
	b->frames_unacked = 0;
	SNB_ADD(b, heartbeats_sent, 1);
}

/* @inc is an incarnation of the peer that another has replaced. */
static int snb_retired(const struct sn_bridge *b, __u64 inc)
{
	__u32 i;

	for (i = 0; i < b->nretired && i < 4; i++)
		if (b->retired[i] == inc)
			return 1;
	return 0;
}

static void snb_on_status(struct sn_bridge *b, const struct snb_frame *f,
			  __u64 now)
{
	struct snb_hdr h;
	struct snb_status s;
	struct snb_ack a;
	const unsigned char *at;
	__u64 inc;
	__u32 n, i, lane, head, cursor;

	if (!snb_parse(f, SNB_STATUS, &h, &s, sizeof(s)))
		return;
	n = le32toh(s.lanes);
	inc = le64toh(h.inc);
	/* a status that an earlier incarnation sent before it died may come
	 * after its successor's: only the newest peer speaks */
	if (n > SN_MAX_LANES || !inc || snb_retired(b, inc) ||
	    (f->len - sizeof(h) - sizeof(s)) / sizeof(a) < n)
		return;
	b->heard_ns = now;
	SNB_ADD(b, heartbeats_received, 1);
	__atomic_store_n(&b->peer_host, le32toh(h.host), __ATOMIC_RELAXED);
	if (inc != b->peer_inc) {
		/* a new peer: it has none of what we sent; from the acks */
		if (b->peer_inc) {
			SNB_ADD(b, peer_restarts, 1);
			b->retired[b->nretired++ % 4] = b->peer_inc;
		}
		b->peer_inc = inc;
		b->status_now = 1;
		for (lane = 0; b->cons && lane < b->lanes; lane++) {
			sn_consumer_lane_state(b->cons, lane, &cursor, &head);
			if (!(b->o.flags & SN_BRIDGE_NO_ACK))
				snb_go_back(b, lane, head, now);
		}
	}
	b->peer_stalled = !!(le32toh(s.flags) & SNB_ST_STALLED);
	if (!b->cons || le64toh(s.src_inc) != b->inc ||
	    (b->o.flags & SN_BRIDGE_NO_ACK))
		return;
	at = f->data + sizeof(h) + sizeof(s);
	for (i = 0; i < n; i++, at += sizeof(a)) {
		memcpy(&a, at, sizeof(a));
		lane = le32toh(a.lane);
		if (lane < b->lanes)
			snb_on_ack(b, lane, le64toh(a.next),
				   !!(le32toh(a.flags) & SNB_ACK_GAP), now);
	}
}

static int snb_recv_ctl(struct sn_bridge *b, __u64 now)
{
	struct snb_frame f;
	int n = 0;

	/* a budget: a flood of status frames must not starve the rest */
	while (n < 4 * SNB_RECV_BUDGET &&
	       !b->ops->recv(b->t, SNB_CHAN_CTL, &f)) {
		snb_on_status(b, &f, now);
		b->ops->frame_free(b->t, &f);
		n++;
	}
	return n;
}

/* ---- liveness ---- */

static void snb_liveness(struct sn_bridge *b, __u64 now)
{
	int state = __atomic_load_n(&b->state, __ATOMIC_RELAXED);

	if (state == SN_BRIDGE_FAILED)
		return;
	if (b->heard_ns && now - b->heard_ns <= b->o.dead_ns) {
		if (state == SN_BRIDGE_DOWN)
			snb_resync(b, now);
		if (state != SN_BRIDGE_UP)
			snb_set_state(b, SN_BRIDGE_UP);
		return;
	}
	if (state == SN_BRIDGE_UP) {
		snb_set_state(b, SN_BRIDGE_DOWN);
		SNB_ADD(b, downs, 1);
		b->down_ns = now;
	}
	/* down since it went silent, or since we started if it never
	 * spoke */
	if (b->o.give_up_ns &&
	    now - (b->down_ns ? b->down_ns : b->created_ns) > b->o.give_up_ns)
		snb_fail(b, -EHOSTDOWN);
}

static void *snb_thread(void *arg)
{
	struct sn_bridge *b = arg;
	unsigned int idle = 0;

	if (b->o.flags & SN_BRIDGE_PIN) {
		cpu_set_t set;

		CPU_ZERO(&set);
		CPU_SET(b->o.cpu, &set);
		pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	}
	while (!__atomic_load_n(&b->stop, __ATOMIC_ACQUIRE)) {
		__u64 now = snb_now();
		int work = 0, failed;
		unsigned int ev = SNB_WAIT_CTL_IN;

		work += snb_recv_ctl(b, now);
		failed = __atomic_load_n(&b->state, __ATOMIC_RELAXED) ==
			 SN_BRIDGE_FAILED;
		if (!failed) {
			if (b->prod || b->o.deliver)
				work += snb_recv_data(b, now);
			work += snb_send_all(b, now);
			snb_check_rto(b, now);
		}
		/* a failed bridge is silent: its peer sees it down */
		if (!failed &&
		    (b->status_now || now - b->status_ns >= b->o.heartbeat_ns ||
		     (b->ack_dirty && (b->frames_unacked >= SNB_ACK_FRAMES ||
				       now - b->ack_first_ns >= SNB_ACK_NS))))
			snb_send_status(b, now);
		snb_liveness(b, now);
		SNB_SET(b, silence_ns, b->heard_ns ? now - b->heard_ns : 0);
		if (work) {
			idle = 0;
			continue;
		}
		/* nothing moved: yield a few times (a producer may be about
		 * to commit), then wait in the transport for a frame, at most
		 * a millisecond (egress channels are polled) */
		if (++idle < 8) {
			sched_yield();
			continue;
		}
		if (!b->pend.active && (b->prod || b->o.deliver))
			ev |= SNB_WAIT_DATA_IN;
		if (b->send_blocked)
			ev |= SNB_WAIT_DATA_OUT;
		b->ops->wait(b->t, ev, 1);
	}
	return NULL;
}

/* ---- the API ---- */

static int snb_check_channel(struct sn_channel *ch, __u32 *slot_size,
			     __u32 *lanes)
{
	struct sn_channel_info info;
	int ret = sn_channel_info(ch, &info);

	if (ret)
		return ret;
	if (info.type == SN_RING_MPMC || (info.flags & SN_CHANNEL_VARLEN))
		return -EINVAL;
	*slot_size = info.slot_size;
	*lanes = info.lanes;
	return 0;
}

static int snb_opts(struct sn_bridge_opts *o, const struct sn_bridge_opts *in)
{
	size_t i;

	if (!in || in->size < SN_BRIDGE_OPTS_SIZE_VER0)
		return -EINVAL;
	if (in->size > sizeof(*o)) {
		if (in->size > 4096)
			return -E2BIG;
		for (i = sizeof(*o); i < in->size; i++)
			if (((const unsigned char *)in)[i])
				return -E2BIG;
	}
	memcpy(o, in, sizeof(*o));
	o->size = sizeof(*o);
	if (!o->heartbeat_ns)
		o->heartbeat_ns = SN_BRIDGE_HEARTBEAT_NS;
	if (!o->dead_ns)
		o->dead_ns = SN_BRIDGE_DEAD_BEATS * o->heartbeat_ns;
	if (!o->frame_msgs)
		o->frame_msgs = SN_BRIDGE_FRAME_MSGS;
	if (!o->bind == !o->connect || (o->flags & ~SN_BRIDGE_FLAGS) ||
	    (!o->egress && !o->ingress && !o->deliver) ||
	    (o->ingress && o->deliver) || o->dead_ns < o->heartbeat_ns ||
	    ((o->flags & SN_BRIDGE_PIN) && (o->cpu < 0 || o->cpu >= CPU_SETSIZE)))
		return -EINVAL;
	return 0;
}

/* Frames queued per socket and way: SN_BRIDGE_HWM, fewer when they would
 * pass SN_BRIDGE_HWM_BYTES (large messages), at least 2. */
static int snb_hwm(const struct sn_bridge *b)
{
	__u64 frame = (__u64)b->o.frame_msgs *
		      (b->size > b->in_size ? b->size : b->in_size);
	__u64 n = frame ? SN_BRIDGE_HWM_BYTES / frame : SN_BRIDGE_HWM;

	return n < 2 ? 2 : n > SN_BRIDGE_HWM ? SN_BRIDGE_HWM : (int)n;
}

SNB_API int sn_bridge_create(struct sn_bridge **out,
			     const struct sn_bridge_opts *opts)
{
	struct sn_bridge *b;
	struct snb_link_opts lo;
	__u32 lanes = 0, lane;
	int ret;

	if (!out)
		return -EINVAL;
	b = calloc(1, sizeof(*b));
	if (!b)
		return -ENOMEM;
	ret = snb_opts(&b->o, opts);
	if (ret)
		goto fail;
	b->ops = &snb_zmq_transport;
	if (b->o.egress) {
		ret = snb_check_channel(b->o.egress, &b->size, &b->lanes);
		if (!ret && (__u64)b->size * b->o.frame_msgs >
			    SN_BRIDGE_MAX_FRAME_BYTES)
			ret = -EINVAL;
		if (ret)
			goto fail;
	}
	if (b->o.ingress) {
		ret = snb_check_channel(b->o.ingress, &b->in_size, &lanes);
		if (ret)
			goto fail;
	}
	do {
		if (getrandom(&b->inc, sizeof(b->inc), 0) != sizeof(b->inc) &&
		    errno != EINTR) {
			ret = errno ? -errno : -EIO;
			goto fail;
		}
	} while (!b->inc);
	b->rto_ns = 2 * b->o.heartbeat_ns;
	if (b->o.egress) {
		ret = sn_consumer_open(b->o.egress, &b->cons);
		if (ret == -EBUSY)
			ret = -EUSERS;
		if (ret)
			goto fail;
	}
	if (b->o.ingress) {
		ret = sn_producer_open(b->o.ingress, &b->prod);
		if (ret)
			goto fail;
	}
	for (lane = 0; b->cons && lane < b->lanes; lane++) {
		__u32 head, cursor;

		/* a used channel: its lanes start where they are */
		sn_consumer_lane_state(b->cons, lane, &cursor, &head);
		b->tx[lane].sent = head;
		b->tx[lane].hi = head;
	}
	lo = (struct snb_link_opts){
		.endpoint = b->o.bind ? b->o.bind : b->o.connect,
		.bind = !!b->o.bind,
		.heartbeat_ns = b->o.heartbeat_ns,
		.dead_ns = b->o.dead_ns,
		.hwm = snb_hwm(b),
		.max_frame = { SNB_MAX_DATA_FRAME, SNB_MAX_CTL_FRAME },
	};
	b->created_ns = snb_now();
	ret = b->ops->open(&b->t, &lo);
	if (ret)
		goto fail;
	ret = -pthread_create(&b->thread, NULL, snb_thread, b);
	if (ret)
		goto fail;
	b->started = 1;
	*out = b;
	return 0;
fail:
	if (b->t)
		b->ops->close(b->t);
	snb_close_channels(b);
	free(b);
	return ret;
}

SNB_API int sn_bridge_destroy(struct sn_bridge *b)
{
	if (!b)
		return 0;
	if (b->started) {
		__atomic_store_n(&b->stop, 1, __ATOMIC_RELEASE);
		pthread_join(b->thread, NULL);
	}
	if (b->pend.active)
		b->ops->frame_free(b->t, &b->pend.f);
	b->ops->close(b->t);
	snb_close_channels(b);
	free(b);
	return 0;
}

SNB_API int sn_bridge_state(const struct sn_bridge *b)
{
	if (!b)
		return -EINVAL;
	return __atomic_load_n(&b->state, __ATOMIC_ACQUIRE);
}

SNB_API const char *sn_bridge_state_name(int state)
{
	static const char *const names[] = { "connecting", "up", "down",
					     "failed" };

	return state >= 0 && state < 4 ? names[state] : "unknown";
}

static int snb_error(const struct sn_bridge *b)
{
	int e = __atomic_load_n(&b->error, __ATOMIC_RELAXED);

	return e ? e : -EIO;
}

/* Polls @done every 200 us until it holds, the bridge failed, or the
 * timeout. */
static int snb_wait(struct sn_bridge *b, __u64 timeout_ns,
		    int (*done)(struct sn_bridge *b))
{
	__u64 end = timeout_ns == SN_WAIT_FOREVER ? ~0ULL :
		    snb_now() + timeout_ns;
	const struct timespec nap = { 0, 200 * 1000 };

	for (;;) {
		if (done(b))
			return 0;
		if (sn_bridge_state(b) == SN_BRIDGE_FAILED)
			return snb_error(b);
		if (snb_now() >= end)
			return -ETIMEDOUT;
		nanosleep(&nap, NULL);
	}
}

static int snb_is_up(struct sn_bridge *b)
{
	return sn_bridge_state(b) == SN_BRIDGE_UP;
}

static int snb_is_flushed(struct sn_bridge *b)
{
	struct sn_channel_stats st;

	/* the bridge's heads are its acknowledgements: an empty egress
	 * channel has every message acknowledged */
	if (sn_channel_stats(b->o.egress, &st))
		return 0;
	return st.depth == 0;
}

SNB_API int sn_bridge_wait_up(struct sn_bridge *b, __u64 timeout_ns)
{
	if (!b)
		return -EINVAL;
	return snb_wait(b, timeout_ns, snb_is_up);
}

SNB_API int sn_bridge_flush(struct sn_bridge *b, __u64 timeout_ns)
{
	if (!b)
		return -EINVAL;
	if (!b->o.egress)
		return 0;
	return snb_wait(b, timeout_ns, snb_is_flushed);
}

SNB_API int sn_bridge_stats(const struct sn_bridge *b,
			    struct sn_bridge_stats *st)
{
	const __u64 *src;
	__u64 *dst;
	size_t i;

	if (!b || !st)
		return -EINVAL;
	memset(st, 0, sizeof(*st));
	src = (const __u64 *)&b->st;
	dst = (__u64 *)st;
	for (i = 0; i < SNB_COUNTERS; i++)
		dst[i] = __atomic_load_n(&src[i], __ATOMIC_RELAXED);
	st->state = (__u32)sn_bridge_state(b);
	st->peer_host = __atomic_load_n(&b->peer_host, __ATOMIC_RELAXED);
	st->error = __atomic_load_n(&b->error, __ATOMIC_RELAXED);
	return 0;
}

_Static_assert(sizeof(struct sn_bridge_opts) == SN_BRIDGE_OPTS_SIZE_VER0,
	       "SN_BRIDGE_OPTS_SIZE_VER0 is libsnbridge 1.0's size");
_Static_assert(offsetof(struct sn_bridge_stats, state) % sizeof(__u64) == 0,
	       "the counters copy word by word");
