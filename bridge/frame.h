/* SPDX-License-Identifier: MIT */
/*
 * The bridge's wire format: what two bridges say to each other, whatever
 * the transport. Little-endian on the wire.
 *
 * Every frame starts with struct snb_hdr. Frames may arrive at any address:
 * read the structs with memcpy. Two kinds:
 *   DATA    (the data channel) struct snb_data, then count messages of
 *           hdr.size bytes each: the messages at sequences seq .. seq +
 *           count - 1 of the sender's egress lane, all written under one
 *           epoch, and the sender's acknowledged sequence of the lane.
 *   STATUS  (the control channel) struct snb_status, then lanes entries
 *           of struct snb_ack: the heartbeat, which carries the
 *           receiver's cumulative acknowledgements (the next sequence it
 *           expects per lane of the sender incarnation src_inc) and says
 *           whether it is stalled (its ingress full) and where it saw gaps.
 */
#ifndef SN_BRIDGE_FRAME_H
#define SN_BRIDGE_FRAME_H

#include <linux/types.h>
#include <sn/bridge.h>

#define SNB_MAGIC	0x72426e53U	/* "SnBr" */
#define SNB_VERSION	1

enum snb_type {
	SNB_DATA = 1,
	SNB_STATUS = 2,
};

struct snb_hdr {
	__u32 magic;
	__u8 version;
	__u8 type;		/* enum snb_type */
	__u16 flags;		/* 0 */
	__u32 host;		/* the sender's host id */
	__u32 size;		/* DATA: bytes per message; STATUS: 0 */
	__u64 inc;		/* the sender's incarnation */
	__u64 peer_inc;		/* the incarnation it is for (DATA); 0 */
};

struct snb_data {
	__u32 lane;
	__u32 epoch;
	__u64 seq;		/* of the first message */
	__u64 base;		/* the sender's acknowledged sequence of the
				 * lane: where a receiver with no state for it
				 * starts, and past which it has nothing */
	__u32 count;
	__u32 pad;
};



#define SNB_ST_STALLED	(1U << 0)	/* the receiver's ingress is full */

struct snb_status {
	__u32 flags;		/* SNB_ST_* */
	__u32 lanes;		/* entries that follow */
	__u64 src_inc;		/* the sender incarnation they acknowledge */
};

#define SNB_ACK_GAP	(1U << 0)	/* frames past next were dropped */

struct snb_ack {
	__u32 lane;
	__u32 flags;		/* SNB_ACK_* */
	__u64 next;		/* the next sequence expected */
};

/* The largest frames a peer may send (ZMQ_MAXMSGSIZE). */
#define SNB_MAX_DATA_FRAME	(sizeof(struct snb_hdr) + \
				 sizeof(struct snb_data) + \
				 SN_BRIDGE_MAX_FRAME_BYTES)
#define SNB_MAX_CTL_FRAME	(sizeof(struct snb_hdr) + \
				 sizeof(struct snb_status) + \
				 SN_MAX_LANES * sizeof(struct snb_ack))

#endif /* SN_BRIDGE_FRAME_H */
