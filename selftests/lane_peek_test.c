// SPDX-License-Identifier: MIT
/*
 * libsn 1.1's lanes by position (include/sn/channel.h): several peeks
 * outstanding per lane, release up to a position, lane mode refusing the
 * other receive calls, the 64-bit sequence across wraps, the epoch of a
 * position across producers, the lane of a plain peek; on both backends
 * (the kernel's in the guests).
 */
#include "channel_common.h"
#include "kselftest_harness.h"

FIXTURE(lp) {};
FIXTURE_VARIANT(lp) {
	unsigned int backend;
};
FIXTURE_VARIANT_ADD(lp, memfd) { SN_BACKEND_MEMFD };
FIXTURE_VARIANT_ADD(lp, kernel) { SN_BACKEND_KERNEL };

FIXTURE_SETUP(lp)
{
	struct stat st;

	if (variant->backend == SN_BACKEND_KERNEL &&
	    stat(SN_DEVICE_PATH, &st) != 0)
		SKIP(return, "no %s: sn.ko is not loaded (the guests run the kernel backend)",
		     SN_DEVICE_PATH);
}

FIXTURE_TEARDOWN(lp) {}

static void send_n(struct __test_metadata *_metadata, struct sn_producer *p,
		   __u64 first, unsigned int n)
{
	unsigned int i;

	for (i = 0; i < n; i++) {
		__u64 v = first + i;

		ASSERT_EQ(0, sn_try_send(p, &v));
	}
}

static __u64 at(const struct sn_consumer *c, __u32 lane, __u32 pos)
{
	__u64 v;

	memcpy(&v, sn_consumer_lane_slot(c, lane, pos), sizeof(v));
	return v;
}

TEST_F(lp, peeks_and_release_to)
{
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u32 pos, pos2, cur, head;
	__u64 v;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC,
		.slots = 16, .slot_size = 8, .lanes = 2, .flags = variant->backend)));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(-EAGAIN, sn_consumer_peek_lane(c, 0, 4, &pos));
	send_n(_metadata, p, 100, 10);
	/* two peeks outstanding, the second where the first ended */
	ASSERT_EQ(4, sn_consumer_peek_lane(c, 0, 4, &pos));
	ASSERT_EQ(4, sn_consumer_peek_lane(c, 0, 4, &pos2));
	ASSERT_EQ(pos + 4, pos2);
	EXPECT_EQ(100, at(c, 0, pos));
	EXPECT_EQ(107, at(c, 0, pos2 + 3));
	/* lane mode: the other receive calls see a peek outstanding */
	EXPECT_EQ(-EINVAL, sn_try_recv(c, &v));
	EXPECT_EQ(-EINVAL, sn_consumer_peek(c, 1, &pos2));
	EXPECT_EQ(-EINVAL, sn_consumer_advance(c, 1));
	EXPECT_EQ(-EINVAL, sn_consumer_peeked_lane(c));
	EXPECT_EQ(-EINVAL, sn_consumer_peek_lane(c, 2, 1, &pos2));
	EXPECT_EQ(-EINVAL, sn_consumer_peek_lane(c, 0, 0, &pos2));
	/* release part, then past the cursor: refused */
	ASSERT_EQ(0, sn_consumer_lane_state(c, 0, &cur, &head));
	EXPECT_EQ(pos + 8, cur);
	EXPECT_EQ(pos, head);
	ASSERT_EQ(0, sn_consumer_advance_to(c, 0, pos + 3));
	EXPECT_EQ(-EINVAL, sn_consumer_advance_to(c, 0, pos + 9));
	EXPECT_EQ(-EINVAL, sn_consumer_advance_to(c, 0, pos + 2));
	EXPECT_EQ(0, sn_consumer_advance_to(c, 0, pos + 3));	/* no-op */
	/* the released slots are the producer's again */
	send_n(_metadata, p, 110, 3);
	ASSERT_EQ(5, sn_consumer_peek_lane(c, 0, 8, &pos2));
	EXPECT_EQ(108, at(c, 0, pos2));
	EXPECT_EQ(112, at(c, 0, pos2 + 4));
	/* everything released: lane mode ends, plain receives work */
	ASSERT_EQ(0, sn_consumer_advance_to(c, 0, pos2 + 5));
	send_n(_metadata, p, 113, 1);
	ASSERT_EQ(0, sn_try_recv(c, &v));
	EXPECT_EQ(113, v);
	/* the lane of a plain peek */
	send_n(_metadata, p, 114, 1);
	ASSERT_EQ(1, sn_consumer_peek(c, 1, &pos));
	EXPECT_EQ(sn_producer_lane(p), sn_consumer_peeked_lane(c));
	ASSERT_EQ(0, sn_consumer_advance(c, 1));
	EXPECT_EQ(-EINVAL, sn_consumer_peeked_lane(c));
	sn_consumer_close(c);
	sn_producer_close(p);
	sn_channel_close(ch);
}

TEST_F(lp, seq_across_wraps)
{
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u32 pos, round;
	__u64 want = 0;
	int k;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
		.slots = 8, .slot_size = 8, .flags = variant->backend)));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	for (round = 0; round < 100; round++) {
		send_n(_metadata, p, want, 8);
		k = sn_consumer_peek_lane(c, 0, 8, &pos);
		ASSERT_EQ(8, k);
		/* the sequence counts every message the lane carried */
		EXPECT_EQ(want, sn_consumer_seq(c, 0, pos));
		EXPECT_EQ(want + 7, sn_consumer_seq(c, 0, pos + 7));
		EXPECT_EQ(want + 7, at(c, 0, pos + 7));
		ASSERT_EQ(0, sn_consumer_advance_to(c, 0, pos + 8));
		want += 8;
	}
	sn_consumer_close(c);
	sn_producer_close(p);
	sn_channel_close(ch);
}

TEST_F(lp, epochs_follow_producers)
{
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u32 pos, i;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC,
		.slots = 64, .slot_size = 8, .lanes = 1, .flags = variant->backend)));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	/* five producers in turn on the one lane, 2 messages each */
	for (i = 0; i < 5; i++) {
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		send_n(_metadata, p, i, 2);
		sn_producer_close(p);
	}
	ASSERT_EQ(10, sn_consumer_peek_lane(c, 0, 64, &pos));
	/* the last SN_LANE_EPOCHS producers are exact */
	for (i = 5 - SN_LANE_EPOCHS; i < 5; i++) {
		EXPECT_EQ(i + 1, sn_consumer_epoch(c, 0, pos + 2 * i));
		EXPECT_EQ(i + 1, sn_consumer_epoch(c, 0, pos + 2 * i + 1));
	}
	/* older: the newest its writer can have */
	EXPECT_EQ(5 - SN_LANE_EPOCHS, sn_consumer_epoch(c, 0, pos));
	ASSERT_EQ(0, sn_consumer_advance_to(c, 0, pos + 10));
	sn_consumer_close(c);
	sn_channel_close(ch);
}

TEST_F(lp, refused_kinds)
{
	struct sn_channel *ch;
	struct sn_consumer *c;
	__u32 pos;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC,
		.slots = 8, .slot_size = 8, .lanes = 1, .flags = variant->backend)));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	EXPECT_EQ(-EOPNOTSUPP, sn_consumer_peek_lane(c, 0, 1, &pos));
	EXPECT_EQ(-EOPNOTSUPP, sn_consumer_advance_to(c, 0, 0));
	EXPECT_EQ(0, sn_consumer_seq(c, 0, 0));
	sn_consumer_close(c);
	sn_channel_close(ch);
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
		.slots = 8, .slot_size = 8, .flags = variant->backend | SN_CHANNEL_VARLEN)));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	EXPECT_EQ(-EOPNOTSUPP, sn_consumer_peek_lane(c, 0, 1, &pos));
	sn_consumer_close(c);
	sn_channel_close(ch);
}

/* A consumer that closes in lane mode leaves the unreleased messages: the
 * next one gets them. */
TEST_F(lp, close_leaves_unreleased)
{
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u32 pos;
	__u64 v;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
		.slots = 8, .slot_size = 8, .flags = variant->backend)));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	send_n(_metadata, p, 7, 4);
	ASSERT_EQ(4, sn_consumer_peek_lane(c, 0, 4, &pos));
	ASSERT_EQ(0, sn_consumer_advance_to(c, 0, pos + 1));
	sn_consumer_close(c);
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(0, sn_try_recv(c, &v));
	EXPECT_EQ(8, v);
	sn_consumer_close(c);
	sn_producer_close(p);
	sn_channel_close(ch);
}

TEST_HARNESS_MAIN
