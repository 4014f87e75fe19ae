/* SPDX-License-Identifier: MIT */
/*
 * libsnbridge: sn channels and pools across hosts, over ZeroMQ, exactly
 * once across broken links.
 *
 * A bridge links this host to one peer host. It drains an egress channel
 * (SPSC or MPSC, fixed-size slots; one lane per local producer, so each
 * producer's order holds) into frames sent to the peer, and commits the
 * peer's frames into an ingress channel (or hands them to a deliver
 * callback). One thread per bridge, pinned when asked, does all of it.
 *
 * Exactly once. ZeroMQ reconnects a broken TCP connection by itself and
 * silently loses what was in flight, so sn carries its own protocol over
 * it:
 *   - every frame says {source host, incarnation, lane, epoch, 64-bit
 *     sequence, count}; the sequence is the lane's position extended to
 *     64 bits (sn_consumer_seq()), so the egress ring is the retransmit
 *     buffer: a slot is released (sn_consumer_advance_to()) only once the
 *     peer acknowledged it;
 *   - the receiver commits in sequence order per lane, acknowledges
 *     cumulatively (the next sequence it expects, per lane) with every
 *     heartbeat and at least every 8 frames or 0.5 ms, and drops
 *     duplicates; every frame also carries the sender's acknowledged
 *     sequence, where a receiver with no state for the lane starts;
 *   - a gap (frames lost by a reconnect) makes the receiver drop what
 *     follows and acknowledge at once; the sender goes back to the
 *     acknowledged sequence and sends again from there (go-back-N). A
 *     sender that has heard no progress for two heartbeats (doubling with
 *     each timeout, up to 2 s) while the peer is heard and not
 *     backpressured goes back too, and so does one that hears its peer
 *     again after silence;
 *   - each side has an incarnation (a random 64-bit number per bridge):
 *     frames for another incarnation of the receiver are dropped, statuses
 *     of an incarnation its successor replaced are ignored, and a receiver
 *     that sees a new incarnation of its sender starts its lanes afresh. A
 *     restarted receiver gets again everything it had not acknowledged.
 * What exactly once covers: every message committed to the egress channel
 * while the bridge runs is committed to the ingress channel once, in lane
 * order, however often the connection breaks, as long as both bridge
 * processes live. Messages the peer acknowledged sit in its ingress
 * channel: if the peer process dies they die with it (sn keeps no disk
 * log); what it had not acknowledged is sent again to its next
 * incarnation. A sending bridge destroyed and created again over the same
 * egress channel starts from the acknowledged position: what the peer had
 * committed and not yet acknowledged then comes twice (at least once).
 *
 * Backpressure runs end to end: a full ingress channel stops the receiving
 * bridge reading frames, TCP's window and ZeroMQ's high-water marks fill,
 * the sending bridge stops draining and the egress lanes fill, so local
 * producers block or get -EAGAIN. Memory stays bounded by the rings and the
 * high-water marks: SN_BRIDGE_HWM data frames per socket and way, fewer
 * when this side's frames are large (so that they hold at most
 * SN_BRIDGE_HWM_BYTES); a frame from the peer is at most
 * SN_BRIDGE_MAX_FRAME_BYTES of messages (ZeroMQ drops the connection of a
 * peer that sends more); status frames are small (1000 per socket).
 *
 * Liveness: each side sends a heartbeat (which carries its
 * acknowledgements) every heartbeat_ns on a control socket apart from the
 * data, so a backpressured peer still proves it lives. Silence for dead_ns
 * makes the peer SN_BRIDGE_DOWN (reported by sn_bridge_state(), counted in
 * downs); the bridge keeps its state and resumes when the peer comes back.
 * With give_up_ns, a peer down that long (or never heard that long after
 * creation) fails the bridge. A failed bridge, whatever the cause, goes
 * silent (its peer sees it down) and closes its egress consumer and
 * ingress producer, so local producers get -EPIPE and the local consumer
 * -EPIPE once it drained the ingress channel; never unbounded queueing.
 *
 * The transport is internal (bridge/transport.h): two ZeroMQ DEALER
 * sockets, data and control. The control socket's endpoint is the data
 * endpoint with the next TCP port (tcp://10.0.0.1:7000 -> :7001), or with
 * "-ctl" appended for ipc:// and inproc:// endpoints.
 *
 * Latency: an idle bridge thread yields a few times, then waits in
 * zmq_poll() for frames, at most 1 ms at a time, and looks at the egress
 * lanes between waits: a message committed to an idle bridge leaves within
 * about a millisecond; under load, at once.
 *
 * Every function returns a negative errno on failure unless documented
 * otherwise; sn_last_error() says why where a sentence helps.
 */
#ifndef SN_BRIDGE_H
#define SN_BRIDGE_H

#include <sn/channel.h>
#include <sn/pool.h>

#ifdef __cplusplus
extern "C" {
#endif

struct sn_bridge;

#define SN_BRIDGE_HEARTBEAT_NS	(100ULL * 1000000ULL)	/* 100 ms */
#define SN_BRIDGE_DEAD_BEATS	5	/* dead_ns default: 5 heartbeats */
#define SN_BRIDGE_FRAME_MSGS	64	/* frame_msgs default */
#define SN_BRIDGE_MAX_FRAME_BYTES (16U << 20)	/* frame_msgs * slot_size */
/* Frames queued per socket and way: SN_BRIDGE_HWM, or fewer so that they
 * hold at most SN_BRIDGE_HWM_BYTES (at least 2). */
#define SN_BRIDGE_HWM		64
#define SN_BRIDGE_HWM_BYTES	(16U << 20)

/* opts.flags */
#define SN_BRIDGE_PIN		(1U << 0)	/* pin the thread to opts.cpu */
/* Negative control for tests: release egress slots when sent, not when
 * acknowledged, and never go back. Loses what a broken link loses. */
#define SN_BRIDGE_NO_ACK	(1U << 1)
#define SN_BRIDGE_FLAGS		(SN_BRIDGE_PIN | SN_BRIDGE_NO_ACK)

/*
 * Takes up to @n messages of @size bytes each (@msgs, consecutive) that
 * came from lane @lane of host @host's egress channel, the first with
 * sequence @seq, written under lane epoch @epoch. Returns how many it took
 * (0..n; the bridge offers the rest again later, in order) or a negative
 * errno, which fails the bridge. Runs on the bridge's thread; must not
 * block long (heartbeats wait for it). @msgs may sit at any address (copy
 * fields out with memcpy).
 */
typedef int (*sn_bridge_deliver_fn)(void *arg, __u32 host, __u32 lane,
				    __u32 epoch, __u64 seq, const void *msgs,
				    __u32 n, __u32 size);

struct sn_bridge_opts {
	__u32 size;		/* sizeof(struct sn_bridge_opts) */
	__u32 host;		/* this host's id, carried in every frame */
	const char *bind;	/* listen here ("tcp://10.0.0.1:7000"), or */
	const char *connect;	/* dial here: exactly one of the two */
	struct sn_channel *egress;	/* drained to the peer, or NULL */
	struct sn_channel *ingress;	/* the peer's messages, or NULL */
	sn_bridge_deliver_fn deliver;	/* instead of ingress */
	void *deliver_arg;
	__u64 heartbeat_ns;	/* 0: SN_BRIDGE_HEARTBEAT_NS */
	__u64 dead_ns;		/* 0: SN_BRIDGE_DEAD_BEATS heartbeats */
	__u64 give_up_ns;	/* fail after down (or never heard) this
				 * long; 0: never */
	__u32 frame_msgs;	/* most messages per frame; 0: 64 */
	__u32 flags;		/* SN_BRIDGE_* */
	int cpu;		/* with SN_BRIDGE_PIN */
	__u32 pad;
};

#define SN_BRIDGE_OPTS_SIZE_VER0	96
#define SN_BRIDGE_OPTS(...)						\
	(&(const struct sn_bridge_opts){				\
		.size = sizeof(struct sn_bridge_opts), __VA_ARGS__ })

enum sn_bridge_state {
	SN_BRIDGE_CONNECTING = 0,	/* not heard from the peer yet */
	SN_BRIDGE_UP = 1,		/* heard within dead_ns */
	SN_BRIDGE_DOWN = 2,		/* silent for dead_ns; retrying */
	SN_BRIDGE_FAILED = 3,		/* gave up, or an error: see error */
};

struct sn_bridge_stats {
	__u64 frames_sent;	/* data frames sent (first time and again) */
	__u64 msgs_sent;	/* messages sent the first time */
	__u64 msgs_resent;	/* messages sent again (go-back-N) */
	__u64 msgs_acked;	/* messages the peer acknowledged */
	__u64 unacked;		/* sent, not acknowledged yet (now) */
	__u64 frames_received;	/* data frames received */
	__u64 msgs_delivered;	/* messages committed to ingress / deliver */
	__u64 msgs_duplicate;	/* messages received again, dropped */
	__u64 frames_gap;	/* frames dropped: sequence ahead of a gap */
	__u64 go_backs;		/* times the sender went back to the ack */
	__u64 heartbeats_sent;	/* status frames: heartbeats and the
				 * acknowledgements sent between them */
	__u64 heartbeats_received;
	__u64 downs;		/* times the peer was declared down */
	__u64 peer_restarts;	/* new incarnations of the peer seen */
	__u64 stalls;		/* times ingress had no room for a frame */
	__u64 silence_ns;	/* since the peer was last heard (now) */
	__u32 state;		/* enum sn_bridge_state */
	__u32 peer_host;	/* the peer's host id, once heard */
	int error;		/* why SN_BRIDGE_FAILED, else 0 */
	__u32 pad;
};

/*
 * Starts a bridge. Errors: -EINVAL (no endpoint or both, neither egress
 * nor ingress/deliver, both ingress and deliver, flags, a channel of the
 * wrong kind: MPMC or SN_CHANNEL_VARLEN, slot size times frame_msgs above
 * SN_BRIDGE_MAX_FRAME_BYTES), -E2BIG (a larger opts with unknown bytes
 * set), -EUSERS (the egress consumer or every ingress lane is taken),
 * what sn_producer_open() returns for the ingress channel (-EBUSY: its
 * lane is another's), what ZeroMQ returns (bad endpoint: -EINVAL, address
 * in use: -EADDRINUSE), what getrandom(2) does, -ENOMEM. The bridge opens
 * its own consumer of @egress and producer of @ingress; the channels must
 * outlive it.
 */
int sn_bridge_create(struct sn_bridge **out,
		     const struct sn_bridge_opts *opts);

/* Stops the thread and frees the bridge. Unacknowledged messages stay in
 * the egress channel: a consumer opened later gets them (see "exactly once
 * covers" at the top). NULL: 0. */
int sn_bridge_destroy(struct sn_bridge *b);

/* enum sn_bridge_state. Any thread. */
int sn_bridge_state(const struct sn_bridge *b);

/* Waits until the peer is heard (SN_BRIDGE_UP): 0, -ETIMEDOUT, or the
 * bridge's error once it failed. */
int sn_bridge_wait_up(struct sn_bridge *b, __u64 timeout_ns);

/*
 * Waits until the egress channel is empty, every message committed to it
 * acknowledged by the peer (with SN_BRIDGE_NO_ACK: sent): 0, -ETIMEDOUT, or
 * the bridge's error once it failed. Producers that go on sending keep it
 * waiting. Any thread.
 */
int sn_bridge_flush(struct sn_bridge *b, __u64 timeout_ns);

/* The counters, each read atomically (not one snapshot of them all: the
 * thread moves on while they are read). Any thread, never blocks. */
int sn_bridge_stats(const struct sn_bridge *b, struct sn_bridge_stats *st);

/* "connecting", "up", "down", "failed". */
const char *sn_bridge_state_name(int state);

/* ---- The pool across hosts (bridge/cluster.c) ---- */

/*
 * A cluster is one sn_pool per host and a bridge between every two hosts.
 * A key goes first to a host, by Lamping and Veach's jump consistent hash
 * (sn_cluster_host()), then on that host to the worker its pool's
 * partitioner picks: every host must run the same config (workers,
 * partitioner, message size). A message for another host goes through the
 * local egress channel to that host (one lane per cluster submitter), its
 * bridge submits it to the local pool there. A key's messages from one
 * submitter are handled on its (host, worker), in the order submitted.
 *
 * Links: hosts i < j share one bridge; host i binds
 * tcp://addrs[i]:(base_port + 2 * j) (and the next port, the bridge's
 * control channel) and host j connects there.
 *
 * Under a cluster the pool's callbacks get the cluster's state wrapper in
 * sn_worker_state() and the cluster in sn_worker_arg(): init gets the
 * config's pool.arg, and init, fini, tick and chandle get the state init
 * made (or the state_size block), as in a plain pool.
 */
struct sn_cluster;
struct sn_cluster_submitter;

/* What a cluster handler gets for each message. */
struct sn_cluster_envelope {
	__u64 key;
	__u32 host;		/* the host it was submitted on */
	__u32 len;		/* payload bytes */
	const void *payload;	/* 8-byte aligned */
};

struct sn_cluster_config {
	__u32 size;		/* sizeof(struct sn_cluster_config) */
	__u32 hosts;		/* 1..SN_CLUSTER_MAX_HOSTS */
	__u32 self;		/* this host's index */
	__u32 base_port;	/* see Links */
	const char *const *addrs;	/* addrs[h]: host h's address */
	__u64 heartbeat_ns;	/* the bridges' (sn_bridge_opts) */
	__u64 dead_ns;
	/* The local pool. Its handle is the cluster's: set chandle. Its
	 * msg_size is the largest cluster payload (fixed slots only:
	 * max_msg_size 0 or msg_size). */
	struct sn_pool_config pool;
	int (*chandle)(struct sn_worker *w, void *state,
		       const struct sn_cluster_envelope *env, unsigned int n);
	__u32 egress_slots;	/* per lane toward each host; 0: 4096 */
	__u32 pad;
};

#define SN_CLUSTER_MAX_HOSTS	64

/* Creates the pool and the bridges (hosts - 1 of them). Errors as
 * sn_pool_create() and sn_bridge_create(); -EINVAL for the config. */
int sn_cluster_create(struct sn_cluster **out,
		      const struct sn_cluster_config *cfg);

/* Waits until every bridge is up: 0 or -ETIMEDOUT. */
int sn_cluster_wait_up(struct sn_cluster *c, __u64 timeout_ns);

/* The host a key goes to, in [0, hosts). Any thread. */
__u32 sn_cluster_host(const struct sn_cluster *c, __u64 key);

/* The local pool. */
struct sn_pool *sn_cluster_pool(const struct sn_cluster *c);

/* The bridge to host @h (NULL for self or out of range). */
struct sn_bridge *sn_cluster_bridge(const struct sn_cluster *c, __u32 h);

/* A submitter: a local pool submitter and one egress lane per host. One
 * thread at a time. Errors as sn_submitter_open(). */
int sn_cluster_submitter_open(struct sn_cluster *c,
			      struct sn_cluster_submitter **out);
int sn_cluster_submitter_close(struct sn_cluster_submitter *s);

/*
 * Submits to the (host, worker) of @key. Waits for room as the local
 * pool's backpressure says (for a remote host: its egress lane, up to the
 * pool's block_timeout_ns). 0, -EAGAIN, -ETIMEDOUT, -ESHUTDOWN (the
 * cluster or its pool is shutting down), -EPIPE (the bridge to the key's
 * host failed: gave up on its peer), -EINVAL (@len above msg_size).
 */
int sn_cluster_submit(struct sn_cluster_submitter *s, __u64 key,
		      const void *payload, __u32 len);

/* Waits until every message submitted here for other hosts is handed to
 * their pools (acknowledged): 0, -ETIMEDOUT, or a bridge's error. */
int sn_cluster_flush(struct sn_cluster *c, __u64 timeout_ns);

/* Stops the bridges, then shuts the pool down (sn_pool_shutdown()). Flush
 * first, and let the peers flush, for nothing to be left behind. */
int sn_cluster_shutdown(struct sn_cluster *c);

/* Shuts down if running, frees everything. Submitters must be closed. */
int sn_cluster_destroy(struct sn_cluster *c);

#ifdef __cplusplus
}
#endif

#endif /* SN_BRIDGE_H */
