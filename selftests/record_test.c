// SPDX-License-Identifier: MIT
/*
 * Messages of any length (SN_CHANNEL_VARLEN; the uapi header's "Records"):
 * record boundaries as the lanes wrap, the length limits, exactly-once
 * in-order delivery under stress with sleeping producers, producers that
 * garble their own lane, and producers killed mid-stream. Each test runs
 * per backend and type (fixture variants); the kernel backend's SKIP on a
 * machine without /dev/sn (the guests load sn.ko and run them).
 * SN_TEST_SCALE=N runs N% of the stress messages.
 */
#include <errno.h>
#include <stddef.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_common.h"

#include "kselftest_harness.h"

/*
 * Small lanes: 64 slots of 64 bytes (slot_size 56 plus the 8-byte header
 * makes a power-of-two stride), so the longest message is 63 * 64 - 8
 * bytes and every few messages wrap the lane, most of them behind a
 * padding record.
 */
#define R_SLOTS		64U
#define R_SLOT_SIZE	56U
#define R_STRIDE	64U
#define R_SHIFT		6U
#define R_MAX		(63U * 64U - 8U)
/* receive buffers: the longest message and a poisoned tail */
#define R_BUF		(R_MAX + 64U)
#define R_POISON	0xa5

FIXTURE(rec) {};

FIXTURE_VARIANT(rec) {
	unsigned int backend;
	unsigned int type;
};

FIXTURE_VARIANT_ADD(rec, memfd_spsc) { SN_BACKEND_MEMFD, SN_RING_SPSC };
FIXTURE_VARIANT_ADD(rec, memfd_mpsc) { SN_BACKEND_MEMFD, SN_RING_MPSC };
FIXTURE_VARIANT_ADD(rec, memfd_mpmc) { SN_BACKEND_MEMFD, SN_RING_MPMC };
FIXTURE_VARIANT_ADD(rec, kernel_spsc) { SN_BACKEND_KERNEL, SN_RING_SPSC };
FIXTURE_VARIANT_ADD(rec, kernel_mpsc) { SN_BACKEND_KERNEL, SN_RING_MPSC };
FIXTURE_VARIANT_ADD(rec, kernel_mpmc) { SN_BACKEND_KERNEL, SN_RING_MPMC };

FIXTURE_SETUP(rec)
{
	struct stat st;

	if (variant->backend == SN_BACKEND_KERNEL &&
	    stat(SN_DEVICE_PATH, &st) != 0)
		SKIP(return, "no %s: sn.ko is not loaded (the guests run the kernel backend)",
		     SN_DEVICE_PATH);
}

FIXTURE_TEARDOWN(rec) {}

/* A channel of the variant's backend and type with the small lanes. */
static int rec_create(const FIXTURE_VARIANT(rec) *v, __u32 lanes,
		      unsigned int flags, struct sn_channel **ch)
{
	return sn_channel_create(ch, SN_CHANNEL_OPTS(.type = v->type, .slots = R_SLOTS, .slot_size = R_SLOT_SIZE, .lanes = v->type == SN_RING_SPSC ? 1 : lanes, .flags = v->backend | flags));
}

/* Bytes that differ with @seed at every offset (xorshift32). */
static void rec_pattern(unsigned char *m, __u32 len, __u32 seed)
{
	__u32 x = seed * 2654435761U | 1, k;

	for (k = 0; k < len; k++) {
		x ^= x << 13;
		x ^= x >> 17;
		x ^= x << 5;
		m[k] = (unsigned char)x;
	}
}

/*
 * The messages of the stress, scribble and kill tests: this header, then
 * rec_pattern() bytes. The length and a checksum inside make a message
 * that arrived cut short, overlong or mixed with another one's bytes fail
 * rec_check().
 */
struct rec_msg {
	__u32 seq;	/* per producer, from 0 */
	__u32 prod;
	__u32 len;	/* the whole message's, as sent */
	__u32 sum;	/* FNV-1a of seq, prod, len and the bytes after */
};

#define R_HDR	((__u32)sizeof(struct rec_msg))

static __u32 rec_fnv(__u32 h, const void *p, __u32 n)
{
	const unsigned char *b = p;
	__u32 k;

	for (k = 0; k < n; k++)
		h = (h ^ b[k]) * 16777619U;
	return h;
}

static __u32 rec_sum(const struct rec_msg *h, const unsigned char *m)
{
	return rec_fnv(rec_fnv(2166136261U, h, offsetof(struct rec_msg, sum)),
		       m + R_HDR, h->len - R_HDR);
}

static void rec_fill(unsigned char *m, __u32 len, __u32 prod, __u32 seq)
{
	struct rec_msg h = { .seq = seq, .prod = prod, .len = len };

	rec_pattern(m + R_HDR, len - R_HDR, seq ^ (prod << 24) ^ len);
	h.sum = rec_sum(&h, m);
	memcpy(m, &h, R_HDR);
}

/* 0 and the header in *@h when the message is intact. */
static int rec_check(const unsigned char *m, __u32 len, struct rec_msg *h)
{
	if (len < R_HDR)
		return -1;
	memcpy(h, m, R_HDR);
	return h->len == len && h->sum == rec_sum(h, m) ? 0 : -1;
}

/* A random stress length: the header to max_msg, the longest often. */
static __u32 rec_len(unsigned int *seed)
{
	__u32 r = (__u32)rand_r(seed);

	return r % 8 == 0 ? R_MAX : R_HDR + r % (R_MAX - R_HDR + 1);
}

/* Lane @lane's slot area in @ch's mapping: [*lo, *hi). */
static void rec_lane_slots(struct sn_channel *ch, __u32 lane,
			   const unsigned char **lo, const unsigned char **hi)
{
	struct sn_offsets off;
	void *base;

	sn_channel_layout(ch, &base, &off);
	*lo = (unsigned char *)base + off.lane0 + lane * off.lane_size +
	      off.slots;
	*hi = *lo + (__u64)R_SLOTS * off.stride;
}

/*
 * Whether a message the consumer hands out in place, @len bytes at @m, lies
 * in one lane's slots after a header: what a receive may read, whatever
 * the producer wrote. (A read past a lane lands in mapped memory, unseen
 * by ASan: this is the check that catches it.)
 */
static int rec_in_lane(struct sn_channel *ch, const void *m, __u32 len)
{
	const unsigned char *p = m, *lo, *hi;
	struct sn_channel_info info;
	__u32 l;

	sn_channel_info(ch, &info);
	for (l = 0; l < info.lanes; l++) {
		rec_lane_slots(ch, l, &lo, &hi);
		if (p >= lo + sizeof(struct sn_slot) && p <= hi)
			return ((p - lo) % R_STRIDE) == sizeof(struct sn_slot) &&
			       len <= (__u64)(hi - p);
	}
	return 0;
}

/* The header of position @pos's slot of @lane, written through @ch's own
 * mapping (the full role's: every lane writable), as a garbling producer
 * would. */
static struct sn_slot *rec_hdr(struct sn_channel *ch, __u32 lane, __u32 pos)
{
	const unsigned char *lo, *hi;

	rec_lane_slots(ch, lane, &lo, &hi);
	return (struct sn_slot *)(lo + (__u64)(pos & (R_SLOTS - 1)) * R_STRIDE);
}

/* The shared tail of @lane, in slots. */
static __u32 *rec_tail_p(struct sn_channel *ch, __u32 lane)
{
	struct sn_offsets off;
	void *base;

	sn_channel_layout(ch, &base, &off);
	return (__u32 *)((unsigned char *)base + off.lane0 +
			 lane * off.lane_size + off.prod_tail);
}

/*
 * Receives one message, by copy (sn_recv_len) and in place (sn_consumer_peek_len,
 * then sn_consumer_advance) in turn, waiting at most @timeout; the in-place bytes
 * must lie in a lane (rec_in_lane) and are copied to @buf first. Returns
 * 0 with the header in *@h when the message is intact, 1 when it came
 * garbled, -EFAULT when it lay outside its lane, else the receive's error.
 */
static int rec_take(struct sn_channel *ch, struct sn_consumer *c,
		    unsigned char *buf, __u64 timeout, unsigned int *turn,
		    struct rec_msg *h)
{
	const void *m;
	__u32 len = 0;
	int r;

	if ((*turn)++ & 1) {
		r = sn_recv_len(c, buf, R_MAX, &len, timeout);
		if (r)
			return r;
	} else {
		r = sn_consumer_peek_len(c, &m, &len);
		if (r == -EAGAIN && timeout) {
			r = sn_consumer_wait(c, timeout);
			if (r < 0)
				return r;
			r = sn_consumer_peek_len(c, &m, &len);
		}
		if (r)
			return r;
		if (!rec_in_lane(ch, m, len)) {
			sn_consumer_advance(c, 1);
			return -EFAULT;
		}
		memcpy(buf, m, len);
		r = sn_consumer_advance(c, 1);
		if (r)
			return r;
	}
	return rec_check(buf, len, h) ? 1 : 0;
}

/*
 * At rest after a single-threaded run: @n messages sent and received (MPMC
 * consumers publish on flush), none left, none bad; then @c, @p and @ch
 * close.
 */
static void rec_end_exact(struct __test_metadata *_metadata,
			  struct sn_channel *ch, struct sn_producer *p,
			  struct sn_consumer *c, __u64 n)
{
	struct sn_channel_stats st;

	ASSERT_EQ(0, sn_consumer_flush_stats(c));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ(n, st.sent);
	EXPECT_EQ(n, st.received);
	EXPECT_EQ(0, st.depth);
	EXPECT_EQ(0, st.bad_records);
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* Sleeps at once when a wait finds nothing (read by libsn at its first
 * wait in this process): the stress runs mean to exercise the sleeps. */
static void rec_sleep_at_once(void)
{
	setenv("SN_SPINS", "0", 1);
	setenv("SN_YIELDS", "0", 1);
}

/* ---- 1. record boundaries as the lane wraps ---- */

/*
 * One thread, one lane: every length from 0 to max_msg, sent and received
 * at once, in three ways in turn: sn_try_send_len and sn_try_recv_len into
 * a buffer of exactly the length; sn_try_send_len and sn_consumer_peek_len; and
 * sn_producer_reserve_len of more than is then committed with sn_producer_commit_len. Each
 * message arrives whole with its length and nothing beyond it is written;
 * after every send the tail is where a model of records and padding
 * records puts it (the lane wraps some two thousand times), including
 * the sends refused on an empty lane because a padding record and the
 * record after it do not fit together; the statistics count messages,
 * not slots.
 */
TEST_F_TIMEOUT(rec, boundaries_under_wrap, 120)
{
	unsigned char *msg = malloc(R_BUF), *out = malloc(R_BUF), *buf;
	struct sn_channel_info info;
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u32 term = variant->type != SN_RING_MPMC;
	__u32 len, got, resv, cap, idx, n, pad, tail = 0, pads = 0;
	__u32 refused = 0;
	const void *m = NULL;

	ASSERT_NE(NULL, msg);
	ASSERT_NE(NULL, out);
	ASSERT_EQ(0, rec_create(variant, 1, SN_CHANNEL_VARLEN, &ch));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	EXPECT_EQ(SN_CHANNEL_VARLEN, info.flags);
	EXPECT_EQ(sn_record_max(R_SLOTS, R_SHIFT), info.max_msg);
	ASSERT_EQ(R_MAX, info.max_msg);
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	for (len = 0; len <= R_MAX; len++) {
		rec_pattern(msg, len, len + 1);
		/* reserve up to 300 bytes more than is then committed: the
		 * padding follows the reserved size, the record the
		 * committed one */
		resv = len % 3 != 2 ? len :
		       len + len % 300 < R_MAX ? len + len % 300 : R_MAX;
		/* the model: a record that would cross the lane's end comes
		 * after a padding record to it; when the two (and SPSC/MPSC's
		 * terminator) exceed the lane, the padding is committed and
		 * the send refused until the consumer has passed it */
		idx = tail & (R_SLOTS - 1);
		n = (__u32)sn_record_slots(resv, R_SHIFT);
		pad = idx + n > R_SLOTS ? R_SLOTS - idx : 0;
		if (pad) {
			pads++;
			tail += pad;
		}
		if (pad + n + term > R_SLOTS) {
			ASSERT_EQ(-EAGAIN, len % 3 == 2 ?
				  sn_producer_reserve_len(p, resv, (void **)&buf) :
				  sn_try_send_len(p, msg, len))
				TH_LOG("len %u", len);
			ASSERT_EQ(tail, p->tail) TH_LOG("len %u", len);
			/* no message, but the padding is gone */
			ASSERT_EQ(-EAGAIN, sn_try_recv_len(c, out, R_BUF, &got));
			refused++;
		}
		if (len % 3 == 2) {
			ASSERT_EQ(0, sn_producer_reserve_len(p, resv, (void **)&buf))
				TH_LOG("len %u", len);
			ASSERT_EQ(0, (unsigned long)buf % 8);
			ASSERT_TRUE(rec_in_lane(ch, buf, resv));
			memcpy(buf, msg, len);
			ASSERT_EQ(-EINVAL, sn_producer_commit_len(p, resv + 1));
			ASSERT_EQ(0, sn_producer_commit_len(p, len)) TH_LOG("len %u", len);
		} else {
			ASSERT_EQ(0, sn_try_send_len(p, msg, len))
				TH_LOG("len %u", len);
		}
		tail += (__u32)sn_record_slots(len, R_SHIFT);
		ASSERT_EQ(tail, p->tail) TH_LOG("len %u", len);

		if (len % 3 == 1) {
			ASSERT_EQ(0, sn_consumer_peek_len(c, &m, &got)) TH_LOG("len %u", len);
			ASSERT_EQ(len, got);
			ASSERT_TRUE(rec_in_lane(ch, m, got)) TH_LOG("len %u", len);
			ASSERT_EQ(0, memcmp(m, msg, len)) TH_LOG("len %u", len);
			EXPECT_EQ(-EINVAL, sn_consumer_advance(c, 2));
			ASSERT_EQ(0, sn_consumer_advance(c, 1));
		} else {
			/* a buffer of exactly the length, or of any */
			cap = len % 2 ? len : R_BUF;
			memset(out, R_POISON, R_BUF);
			got = ~0U;
			ASSERT_EQ(0, sn_try_recv_len(c, out, cap, &got))
				TH_LOG("len %u", len);
			ASSERT_EQ(len, got);
			ASSERT_EQ(0, memcmp(out, msg, len)) TH_LOG("len %u", len);
			ASSERT_EQ(R_POISON, out[len]) TH_LOG("len %u", len);
		}
		ASSERT_EQ(-EAGAIN, sn_try_recv_len(c, out, R_BUF, &got));
	}
	/* the lane's own tail (slots) is where the model put it */
	EXPECT_EQ(tail, __atomic_load_n(rec_tail_p(ch, 0), __ATOMIC_RELAXED));
	EXPECT_EQ(tail, p->tail);
	EXPECT_LT(1000, tail / R_SLOTS);
	EXPECT_LT(100, pads);
	EXPECT_LT(100, refused);
	rec_end_exact(_metadata, ch, p, c, R_MAX + 1);
	free(msg);
	free(out);
}

/* ---- 2. lengths: -EMSGSIZE, fixed-size channels, calls that do not apply ---- */

/*
 * A varlen channel: a message above max_msg is refused; one longer than a
 * receive's buffer stays where it is (-EMSGSIZE, its length said), for
 * this consumer and (MPMC) another, until a buffer large enough takes it;
 * the fixed-size calls that cannot carry a record fail with -EINVAL, and
 * sn_try_send/sn_try_recv carry slot_size bytes.
 */
TEST_F(rec, varlen_limits)
{
	unsigned char *msg = malloc(R_BUF), *out = malloc(R_BUF);
	struct sn_consumer *c, *c2 = NULL, *cb;
	struct sn_channel_stats st;
	struct sn_channel *ch;
	struct sn_producer *p;
	const void *m = NULL;
	__u32 len, pos;
	void *buf;

	ASSERT_NE(NULL, msg);
	ASSERT_NE(NULL, out);
	ASSERT_EQ(0, rec_create(variant, 1, SN_CHANNEL_VARLEN, &ch));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	if (variant->type == SN_RING_MPMC)
		ASSERT_EQ(0, sn_consumer_open(ch, &c2));
	cb = c2 ? c2 : c;

	EXPECT_EQ(-EMSGSIZE, sn_try_send_len(p, msg, R_MAX + 1));
	EXPECT_EQ(-EMSGSIZE, sn_try_send_len(p, msg, ~0U));
	EXPECT_EQ(-EMSGSIZE, sn_send_len(p, msg, R_MAX + 1, 10 * MS));
	EXPECT_EQ(-EMSGSIZE, sn_producer_reserve_len(p, R_MAX + 1, &buf));
	EXPECT_EQ(-EAGAIN, sn_try_recv_len(c, out, R_BUF, &len));
	EXPECT_EQ(-ETIMEDOUT, sn_recv_len(c, out, R_BUF, &len, 10 * MS));

	/* the longest message fills the lane: 63 slots (SPSC and MPSC keep
	 * the 64th for the terminator; MPMC has one slot left, too few for
	 * a 100-byte message) */
	rec_pattern(msg, R_MAX, 1);
	ASSERT_EQ(0, sn_try_send_len(p, msg, R_MAX));
	EXPECT_EQ(-EAGAIN, sn_try_send_len(p, msg, 100));
	EXPECT_EQ(-EAGAIN, sn_producer_reserve_len(p, 100, &buf));
	EXPECT_EQ(-ETIMEDOUT, sn_send_len(p, msg, 100, 10 * MS));

	len = 0;
	EXPECT_EQ(-EMSGSIZE, sn_try_recv_len(c, out, R_MAX - 1, &len));
	EXPECT_EQ(R_MAX, len);
	len = 0;
	EXPECT_EQ(-EMSGSIZE, sn_try_recv_len(c, out, 0, &len));
	EXPECT_EQ(R_MAX, len);
	len = 0;
	EXPECT_EQ(-EMSGSIZE, sn_recv_len(c, out, 8, &len, 10 * MS));
	EXPECT_EQ(R_MAX, len);
	/* sn_try_recv's buffer is slot_size bytes */
	EXPECT_EQ(-EMSGSIZE, sn_try_recv(c, out));
	EXPECT_EQ(-EMSGSIZE, sn_recv(c, out, 10 * MS));
	if (c2) {
		len = 0;
		EXPECT_EQ(-EMSGSIZE, sn_try_recv_len(c2, out, 16, &len));
		EXPECT_EQ(R_MAX, len);
		/* the refusals left no claim behind: the first consumer
		 * still gets it */
		EXPECT_EQ(-EMSGSIZE, sn_try_recv_len(c, out, 16, &len));
	}
	ASSERT_EQ(0, sn_consumer_flush_stats(c));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ(1, st.sent);
	EXPECT_EQ(0, st.received);
	/* depth counts slots in varlen rings: the record's, and a padding
	 * record's before it if one was needed */
	EXPECT_LE(sn_record_slots(R_MAX, 6), st.depth);
	EXPECT_GE(R_SLOTS, st.depth);
	/* the other consumer (MPMC), with room enough */
	memset(out, R_POISON, R_BUF);
	ASSERT_EQ(0, sn_try_recv_len(cb, out, R_MAX, &len));
	EXPECT_EQ(R_MAX, len);
	EXPECT_EQ(0, memcmp(out, msg, R_MAX));
	EXPECT_EQ(R_POISON, out[R_MAX]);
	EXPECT_EQ(-EAGAIN, sn_try_recv_len(c, out, R_BUF, &len));

	/* the calls of fixed-size messages that cannot carry a record */
	EXPECT_EQ(-EINVAL, sn_send_burst(p, msg, 1));
	EXPECT_EQ(-EINVAL, sn_producer_reserve(p, 1, &pos));
	EXPECT_EQ(-EINVAL, sn_producer_commit(p, 1));
	EXPECT_EQ(-EINVAL, sn_recv_burst(c, out, 1));
	/* (sn_consumer_peek: varlen_peek_refused) */
	EXPECT_EQ(-EINVAL, sn_consumer_advance(c, 1));	/* nothing peeked */
	EXPECT_EQ(-EINVAL, sn_producer_commit_len(p, 0));	/* nothing reserved */

	/* sn_try_send and sn_send: slot_size bytes; sn_try_recv and
	 * sn_recv take them */
	rec_pattern(msg, R_SLOT_SIZE, 2);
	ASSERT_EQ(0, sn_try_send(p, msg));
	ASSERT_EQ(0, sn_send(p, msg, 10 * MS));
	ASSERT_EQ(0, sn_consumer_peek_len(c, &m, &len));
	EXPECT_EQ(R_SLOT_SIZE, len);
	EXPECT_EQ(0, memcmp(m, msg, R_SLOT_SIZE));
	/* one record at a time, released whole */
	EXPECT_EQ(-EINVAL, sn_consumer_peek_len(c, &m, &len));
	EXPECT_EQ(-EINVAL, sn_try_recv_len(c, out, R_BUF, &len));
	EXPECT_EQ(-EINVAL, sn_consumer_advance(c, 2));
	EXPECT_EQ(0, sn_consumer_advance(c, 1));
	EXPECT_EQ(-EINVAL, sn_consumer_advance(c, 1));
	memset(out, R_POISON, R_BUF);
	ASSERT_EQ(0, sn_try_recv(c, out));
	EXPECT_EQ(0, memcmp(out, msg, R_SLOT_SIZE));
	EXPECT_EQ(R_POISON, out[R_SLOT_SIZE]);
	ASSERT_EQ(0, sn_try_send(p, msg));
	ASSERT_EQ(0, sn_recv(c, out, 10 * MS));
	EXPECT_EQ(0, memcmp(out, msg, R_SLOT_SIZE));

	/* a reservation outstanding: no other send; the commit may not
	 * exceed it, and it stays */
	ASSERT_EQ(0, sn_producer_reserve_len(p, 300, &buf));
	EXPECT_EQ(-EINVAL, sn_try_send_len(p, msg, 8));
	EXPECT_EQ(-EINVAL, sn_try_send(p, msg));
	EXPECT_EQ(-EINVAL, sn_producer_reserve_len(p, 8, &buf));
	EXPECT_EQ(-EINVAL, sn_producer_commit_len(p, 301));
	memcpy(buf, msg, 20);
	EXPECT_EQ(0, sn_producer_commit_len(p, 20));
	ASSERT_EQ(0, sn_try_recv_len(c, out, R_BUF, &len));
	EXPECT_EQ(20, len);
	EXPECT_EQ(0, memcmp(out, msg, 20));

	if (c2)
		EXPECT_EQ(0, sn_consumer_close(c2));
	rec_end_exact(_metadata, ch, p, c, 5);
	free(msg);
	free(out);
}

/*
 * sn_consumer_peek() on a varlen channel must fail with -EINVAL (channel.h: "the
 * bursts, sn_producer_reserve and sn_consumer_peek fail with -EINVAL"), the consumer's
 * position untouched: a slot of a record is no message.
 *
 * KNOWN BUG (libsn, reported; this test fails until it is fixed): sn_consumer_peek()
 * has no SN__VARLEN check. SPSC/MPSC: sn__cons_take() trusts the cached
 * ctail[], which varlen receives never update, so it "peeks" a slot even of
 * an empty lane; MPMC: it claims the record's first slot alone, leaving the
 * head inside the record. The sn_consumer_advance() that follows releases the slot
 * count of the last sn_consumer_peek_len() record (peek_slots) and counts a message
 * received: the head skips past the next record (lost) or lands inside it.
 */
TEST_F(rec, varlen_peek_refused)
{
	unsigned char msg[100], out[R_SLOT_SIZE + 100];
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	const void *m = NULL;
	__u32 len, pos;
	int r;

	ASSERT_EQ(0, rec_create(variant, 1, SN_CHANNEL_VARLEN, &ch));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	rec_pattern(msg, sizeof(msg), 1);
	ASSERT_EQ(0, sn_try_send_len(p, msg, sizeof(msg)));
	ASSERT_EQ(0, sn_consumer_peek_len(c, &m, &len));
	ASSERT_EQ(0, sn_consumer_advance(c, 1));
	/* SPSC/MPSC refuse it on the empty lane too; MPMC's claims need a
	 * message there */
	if (variant->type != SN_RING_MPMC) {
		r = sn_consumer_peek(c, 1, &pos);
		EXPECT_EQ(-EINVAL, r);
		if (r > 0)
			sn_consumer_advance(c, (__u32)r);
	}
	rec_pattern(msg, sizeof(msg), 2);
	ASSERT_EQ(0, sn_try_send_len(p, msg, sizeof(msg)));
	r = sn_consumer_peek(c, 1, &pos);
	EXPECT_EQ(-EINVAL, r);
	if (r > 0)
		sn_consumer_advance(c, (__u32)r);
	/* the second message, whole, and nothing else */
	EXPECT_EQ(0, sn_try_recv_len(c, out, sizeof(out), &len));
	EXPECT_EQ(sizeof(msg), len);
	EXPECT_EQ(0, memcmp(out, msg, sizeof(msg)));
	rec_end_exact(_metadata, ch, p, c, 2);
}

/*
 * The smallest lanes: a channel that accepts SN_CHANNEL_VARLEN with one
 * slot per lane must carry a message of its max_msg in an empty lane (or
 * refuse to be created), and a blocking send must keep its timeout.
 *
 * KNOWN BUG (libsn, and sn.ko creates the same ring; reported; this test
 * fails on SPSC and MPSC until it is fixed): with one slot, max_msg is 0
 * (sn_record_max()), but a record of 0 bytes takes the slot and SPSC/MPSC
 * need one more for the terminator, so nothing ever fits: sn_try_send_len
 * says -EAGAIN on an empty lane, and sn_send_len spins forever, past its
 * timeout (sn__send_wait() retries as long as sn_producer_wait() reports
 * p->need, clamped to the lane's one slot, free; it never looks at the
 * deadline itself). The send runs in a child, killed after 2 s.
 */
TEST_F(rec, one_slot_lane)
{
	struct sn_channel_info info;
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	unsigned char msg[8] = { 0 };
	int status = 0, r, i;
	__u32 len;
	pid_t pid;

	r = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = variant->type, .slots = 1, .slot_size = R_SLOT_SIZE, .lanes = 1, .flags = variant->backend | SN_CHANNEL_VARLEN));
	if (r == -EINVAL)
		return;		/* refused: as good */
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	EXPECT_EQ(0, sn_try_send_len(p, msg, info.max_msg))
		TH_LOG("max_msg %u", info.max_msg);
	len = ~0U;
	EXPECT_EQ(0, sn_try_recv_len(c, msg, sizeof(msg), &len));
	EXPECT_EQ(info.max_msg, len);
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		/* room or not, the send returns within its 10 ms */
		r = sn_send_len(p, msg, info.max_msg, 10 * MS);
		_exit(r == 0 || r == -ETIMEDOUT ? 0 : 1);
	}
	for (i = 0; i < 200 && waitpid(pid, &status, WNOHANG) == 0; i++)
		usleep(10000);
	if (i == 200) {
		kill(pid, SIGKILL);
		waitpid(pid, &status, 0);
	}
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("sn_send_len with a 10 ms timeout: %s",
		       i == 200 ? "still running after 2 s" : "failed");
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_channel_close(ch));
}

/*
 * A fixed-size channel carries a length too: up to slot_size bytes in one
 * slot, the receiver learns it (copy and in place); a longer message is
 * -EMSGSIZE, a receive buffer below slot_size -EINVAL.
 */
TEST_F(rec, fixed_size_lengths)
{
	static const __u32 lens[] = { 0, 1, 7, 8, 55, 56 };
	unsigned char msg[R_SLOT_SIZE + 8], out[R_SLOT_SIZE + 8];
	struct sn_channel_info info;
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	const void *m = NULL;
	__u32 i, len;
	void *buf;

	ASSERT_EQ(0, rec_create(variant, 1, 0, &ch));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	EXPECT_EQ(0, info.flags);
	EXPECT_EQ(R_SLOT_SIZE, info.max_msg);
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	EXPECT_EQ(-EMSGSIZE, sn_try_send_len(p, msg, R_SLOT_SIZE + 1));
	EXPECT_EQ(-EMSGSIZE, sn_send_len(p, msg, R_SLOT_SIZE + 1, 10 * MS));
	EXPECT_EQ(-EMSGSIZE, sn_producer_reserve_len(p, R_SLOT_SIZE + 1, &buf));
	for (i = 0; i < 6; i++) {
		rec_pattern(msg, lens[i], i);
		ASSERT_EQ(0, sn_try_send_len(p, msg, lens[i]));
	}
	ASSERT_EQ(0, sn_producer_reserve_len(p, 40, &buf));
	rec_pattern(msg, 20, 6);
	memcpy(buf, msg, 20);
	EXPECT_EQ(-EINVAL, sn_producer_commit_len(p, 41));
	ASSERT_EQ(0, sn_producer_commit_len(p, 20));
	EXPECT_EQ(-EINVAL, sn_try_recv_len(c, out, R_SLOT_SIZE - 1, &len));
	for (i = 0; i < 7; i++) {
		__u32 want = i < 6 ? lens[i] : 20;

		rec_pattern(msg, want, i);
		if (i % 2) {
			ASSERT_EQ(0, sn_consumer_peek_len(c, &m, &len));
			EXPECT_EQ(want, len);
			EXPECT_EQ(0, memcmp(m, msg, want));
			ASSERT_EQ(0, sn_consumer_advance(c, 1));
		} else {
			memset(out, R_POISON, sizeof(out));
			ASSERT_EQ(0, sn_try_recv_len(c, out, R_SLOT_SIZE, &len));
			EXPECT_EQ(want, len);
			EXPECT_EQ(0, memcmp(out, msg, want));
			EXPECT_EQ(R_POISON, out[want]);
		}
	}
	EXPECT_EQ(-EAGAIN, sn_try_recv_len(c, out, R_SLOT_SIZE, &len));
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* ---- 3. exactly once and in order under stress ---- */

/*
 * Producer threads send random lengths up to max_msg (sn_send_len, and
 * sn_producer_reserve_len/sn_producer_commit_len in turn) into lanes that hold one or two of
 * them, so a record often needs more slots than are free and its producer
 * sleeps on them (prod_need); consumers receive by copy and in place.
 * Shared state and failure reports are channel_common.h's t_shared.
 */
struct rec_stress {
	struct t_shared *sh;
	struct sn_channel *ch;
	void *h;		/* the thread's producer or consumer */
	__u32 id;		/* producer: its number */
	__u32 msgs;		/* per producer */
	__u32 producers;
	int single;		/* one consumer: every sequence in order */
};

static void *rec_producer_main(void *arg)
{
	struct rec_stress *x = arg;
	struct sn_producer *p = x->h;
	unsigned char *msg = malloc(R_BUF);
	unsigned int seed = x->id * 77 + 1;
	__u32 seq = 0, len = rec_len(&seed);
	void *buf;
	int r;

	while (msg && seq < x->msgs && !x->sh->errors) {
		if (t_now() > x->sh->deadline) {
			t_fail(x->sh, "producer past the deadline", seq);
			break;
		}
		if (seq % 2) {
			r = sn_producer_reserve_len(p, len + (R_MAX - len) / 2, &buf);
			if (r == 0) {
				rec_fill(buf, len, x->id, seq);
				r = sn_producer_commit_len(p, len);
			} else if (r == -EAGAIN) {
				/* wait for the slots the record needs */
				r = sn_producer_wait(p, 10 * MS);
				if (r > 0)
					r = -ETIMEDOUT;	/* try again */
			}
		} else {
			rec_fill(msg, len, x->id, seq);
			r = sn_send_len(p, msg, len, 10 * MS);
		}
		if (r == 0) {
			seq++;
			len = rec_len(&seed);
		} else if (r != -ETIMEDOUT) {
			t_fail(x->sh, "send", r);
		}
	}
	free(msg);
	return NULL;
}

static void *rec_consumer_main(void *arg)
{
	struct rec_stress *x = arg;
	__u64 total = (__u64)x->msgs * x->producers;
	unsigned char *buf = malloc(R_BUF);
	__u32 next[SN_MAX_LANES] = { 0 };
	unsigned int turn = 0;
	struct rec_msg h;
	int r;

	while (buf && __atomic_load_n(&x->sh->received, __ATOMIC_RELAXED) <
	       total && !x->sh->errors) {
		if (t_now() > x->sh->deadline) {
			t_fail(x->sh, "consumer past the deadline", 0);
			break;
		}
		r = rec_take(x->ch, x->h, buf, 10 * MS, &turn, &h);
		if (r == -ETIMEDOUT || r == -EAGAIN)
			continue;
		if (r == -EPIPE)	/* MPMC: the other consumer got the rest */
			break;
		if (r || h.prod >= x->producers || h.seq >= x->msgs) {
			t_fail(x->sh, r ? "receive" : "garbled", r ? r : 1);
			break;
		}
		/* FIFO per producer: the one consumer sees every sequence,
		 * each MPMC consumer an increasing subsequence */
		if (x->single ? h.seq != next[h.prod] : h.seq < next[h.prod])
			t_fail(x->sh, "out of order", h.seq);
		next[h.prod] = h.seq + 1;
		if (__atomic_fetch_add(&x->sh->seen[h.prod * x->msgs + h.seq],
				       1, __ATOMIC_RELAXED))
			t_fail(x->sh, "duplicate", h.seq);
		__atomic_fetch_add(&x->sh->received, 1, __ATOMIC_RELAXED);
	}
	free(buf);
	return NULL;
}

TEST_F_TIMEOUT(rec, stress_exactly_once, 300)
{
	__u32 np = variant->type == SN_RING_SPSC ? 1 : 3;
	__u32 nc = variant->type == SN_RING_MPMC ? 2 : 1;
	__u32 msgs = (__u32)t_scaled(1500), i;
	struct rec_stress x[3 + 2];
	pthread_t th[3 + 2];
	struct sn_channel_stats st;
	struct sn_channel *ch;
	struct sn_offsets off;
	struct t_shared *sh;
	__u64 psleeps = 0, j;
	void *base;

	rec_sleep_at_once();
	sh = calloc(1, sizeof(*sh) + (size_t)np * msgs);
	ASSERT_NE(NULL, sh);
	sh->deadline = t_now() + 240000 * MS;
	ASSERT_EQ(0, rec_create(variant, np, SN_CHANNEL_VARLEN, &ch));
	/* every handle opens before any thread runs: the stream cannot end
	 * (-EPIPE) before every producer has sent */
	for (i = 0; i < np + nc; i++) {
		x[i] = (struct rec_stress){ .sh = sh, .ch = ch, .id = i,
					    .msgs = msgs, .producers = np,
					    .single = nc == 1 };
		if (i < np) {
			ASSERT_EQ(0, sn_producer_open(ch, (struct sn_producer **)
						      &x[i].h));
		} else {
			ASSERT_EQ(0, sn_consumer_open(ch, (struct sn_consumer **)
						      &x[i].h));
		}
	}
	for (i = 0; i < np + nc; i++)
		ASSERT_EQ(0, pthread_create(&th[i], NULL, i < np ?
					    rec_producer_main :
					    rec_consumer_main, &x[i]));
	for (i = 0; i < np; i++) {
		pthread_join(th[i], NULL);
		sn_producer_close(x[i].h);
	}
	for (i = np; i < np + nc; i++) {
		pthread_join(th[i], NULL);
		sn_consumer_close(x[i].h);	/* MPMC: publishes its counts */
	}
	ASSERT_EQ(0, sh->errors) TH_LOG("%s", sh->why);
	for (j = 0; j < (__u64)np * msgs; j++)
		ASSERT_EQ(1, sh->seen[j]) TH_LOG("message %llu of producer %llu",
						(unsigned long long)(j % msgs),
						(unsigned long long)(j / msgs));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ((__u64)np * msgs, st.sent);
	EXPECT_EQ((__u64)np * msgs, st.received);
	EXPECT_EQ(0, st.depth);
	EXPECT_EQ(0, st.bad_records);
	/* the producers did sleep: records waited for slots to drain */
	ASSERT_EQ(0, sn_channel_layout(ch, &base, &off));
	for (i = 0; i < np; i++)
		psleeps += ((struct sn_prod_stats *)((unsigned char *)base +
			off.lane0 + i * off.lane_size + off.prod_stats))->sleeps;
	EXPECT_LT(0, psleeps);
	EXPECT_LT(0, st.send_errors);
	EXPECT_EQ(0, sn_channel_close(ch));
	free(sh);
}

/* ---- 4. a producer that garbles its own lane ---- */

/* What the garbling producer writes over one of its records' header. */
enum rec_garble {
	G_FLAGS,	/* len with a flag bit that means nothing */
	G_PADLEN,	/* a padding record with length bits */
	G_CROSS,	/* a length that crosses the lane's end */
	G_TOOBIG,	/* max_msg + 1 */
	G_ALLBITS,	/* SN_SLOT_LEN */
	G_PAD0,		/* a padding record at slot 0 */
	G_SEQ,		/* a seq that is not the position's */
	G_AHEAD,	/* the slot at the tail committed, with a bad len */
	G_KINDS
};

static const char *const rec_garble_name[G_KINDS] = {
	"flag bits", "padding with a length", "crossing the lane end",
	"max_msg + 1", "SN_SLOT_LEN", "padding at slot 0", "seq",
	"a bad record at the tail",
};

/* One lane's messages as they arrived. */
struct rec_log {
	__u32 n;
	__u32 seq[64];
};

/*
 * Receives what is there (by copy and in place in turn) into the logs of
 * producers 0 and 1. 0, or -1 on anything but intact messages of theirs.
 */
static int rec_drain(struct sn_channel *ch, struct sn_consumer *c,
		     unsigned char *buf, unsigned int *turn,
		     struct rec_log *log)
{
	struct rec_msg h;
	int r;

	while ((r = rec_take(ch, c, buf, 0, turn, &h)) == 0) {
		if (h.prod > 1 || log[h.prod].n == 64)
			return -1;
		log[h.prod].seq[log[h.prod].n++] = h.seq;
	}
	return r == -EAGAIN ? 0 : -1;
}

/*
 * Producer 0 commits six 200-byte records (4 slots each) and producer 1
 * (MPSC, MPMC: another lane) six more; the first one's header is then
 * garbled (@g) before anything is received, and both producers go on with
 * 40 more, each received as it comes. The consumer must hand out only
 * intact messages and drop the garbled record with what follows it in its
 * lap: SPSC and MPSC up to the lap's end (the producer's records up to
 * there included: the head has moved past them), MPMC what was committed
 * of the lap (MPMC consumers read the tail). A garbled seq makes an
 * SPSC/MPSC lane look uncommitted from there: it stalls, nothing is lost
 * as bad. A bad record past the tail is nothing to MPMC consumers, and
 * the producer's next record overwrites it. The other lane loses nothing.
 */
static void rec_garble_run(struct __test_metadata *_metadata,
			   const FIXTURE_VARIANT(rec) *variant,
			   enum rec_garble g)
{
	int single = variant->type != SN_RING_MPMC;
	__u32 lanes = variant->type == SN_RING_SPSC ? 1 : 2;
	unsigned char msg[200], *buf = malloc(R_BUF);
	__u32 pos[64], sent[2] = { 0 }, i, j, k, l, la = 0;
	struct rec_log log[2] = { { 0 } };
	struct sn_channel_stats st;
	struct sn_producer *p[2];
	struct sn_consumer *c;
	struct sn_channel *ch;
	unsigned int turn = 0;
	struct sn_slot *s;
	__u64 bad;
	int stalled = 0;

	ASSERT_NE(NULL, buf);
	ASSERT_EQ(0, rec_create(variant, lanes, SN_CHANNEL_VARLEN, &ch));
	for (l = 0; l < lanes; l++)
		ASSERT_EQ(0, sn_producer_open(ch, &p[l]));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	la = (__u32)sn_producer_lane(p[0]);
	for (i = 0; i < 6; i++) {
		for (l = 0; l < lanes; l++) {
			rec_fill(msg, sizeof(msg), l, i);
			ASSERT_EQ(0, sn_try_send_len(p[l], msg, sizeof(msg)));
			sent[l]++;
		}
		pos[i] = p[0]->tail - 4;
	}
	ASSERT_EQ(24, p[0]->tail);
	j = g == G_PAD0 ? 0 : g == G_AHEAD ? 6 : 2;
	s = rec_hdr(ch, la, g == G_AHEAD ? 24 : pos[j]);
	switch (g) {
	case G_FLAGS:
		s->len = sizeof(msg) | (1U << 30);
		break;
	case G_PADLEN:
		s->len = SN_SLOT_PAD | sizeof(msg);
		break;
	case G_CROSS:	/* 57 slots from slot 8 */
		s->len = (R_SLOTS - (pos[j] & (R_SLOTS - 1))) * R_STRIDE;
		break;
	case G_TOOBIG:
		s->len = R_MAX + 1;
		break;
	case G_ALLBITS:
		s->len = SN_SLOT_LEN;
		break;
	case G_PAD0:
		s->len = SN_SLOT_PAD;
		break;
	case G_SEQ:
		s->seq = pos[j] + 1 + 0x10000;
		break;
	default:
		s->len = 5 | (1U << 30);
		s->seq = 24 + 1;
	}
	ASSERT_EQ(0, rec_drain(ch, c, buf, &turn, log));
	for (i = 6; i < 46; i++) {
		for (l = 0; l < lanes; l++) {
			int r;

			if (l == 0 && stalled)
				continue;
			rec_fill(msg, sizeof(msg), l, i);
			r = sn_try_send_len(p[l], msg, sizeof(msg));
			if (r == -EAGAIN && l == 0 && g == G_SEQ && single) {
				stalled = 1;	/* the lane filled up */
				continue;
			}
			ASSERT_EQ(0, r) TH_LOG("producer %u message %u", l, i);
			sent[l]++;
			if (l == 0 && i < 64)
				pos[i] = p[0]->tail - 4;
		}
		ASSERT_EQ(0, rec_drain(ch, c, buf, &turn, log))
			TH_LOG("%s: a bad message", rec_garble_name[g]);
	}

	/* where the loss ends: k, the first of producer 0's later messages
	 * to arrive */
	if (g == G_SEQ && single) {
		k = sent[0];
		bad = 0;
		EXPECT_TRUE(stalled);
	} else if (g == G_AHEAD && !single) {
		k = j;
		bad = 0;
	} else if (!single) {
		k = 6;
		bad = 1;
	} else {
		__u32 lap_end = ((g == G_AHEAD ? 24 : pos[j]) | (R_SLOTS - 1)) + 1;

		for (k = j; k < sent[0] && pos[k] < lap_end; k++)
			;
		bad = 1;
	}
	/* producer 0: [0, j) then [k, sent), intact and in order */
	ASSERT_EQ(j + sent[0] - k, log[0].n) TH_LOG("%s", rec_garble_name[g]);
	for (i = 0; i < log[0].n; i++)
		ASSERT_EQ(i < j ? i : k + i - j, log[0].seq[i])
			TH_LOG("%s: message %u", rec_garble_name[g], i);
	/* producer 1: everything */
	if (lanes == 2) {
		ASSERT_EQ(sent[1], log[1].n);
		for (i = 0; i < log[1].n; i++)
			ASSERT_EQ(i, log[1].seq[i]);
	}
	ASSERT_EQ(0, sn_consumer_flush_stats(c));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ(bad, st.bad_records) TH_LOG("%s", rec_garble_name[g]);
	EXPECT_EQ(sent[0] + sent[1], st.sent);
	EXPECT_EQ(log[0].n + log[1].n, st.received);
	EXPECT_EQ(0, sn_consumer_close(c));
	for (l = 0; l < lanes; l++)
		EXPECT_EQ(0, sn_producer_close(p[l]));
	EXPECT_EQ(0, sn_channel_close(ch));
	free(buf);
}

TEST_F(rec, garbled_headers)
{
	int g;

	for (g = 0; g < G_KINDS; g++)
		rec_garble_run(_metadata, variant, g);
}

/* One byte from @fd within 10 s: what a child reports; 0 if none came. */
static char rec_hear(int fd)
{
	struct pollfd pfd = { .fd = fd, .events = POLLIN };
	char v = 0;

	if (poll(&pfd, 1, 10000) != 1 || read(fd, &v, 1) != 1)
		return 0;
	return v;
}

/* The scribbling child's side of scribbler_child (it exits, never
 * returns): its messages are producer 1's. */
static void rec_scribbler(struct sn_channel *ch, int up, int down, __u32 iters)
{
	unsigned char *msg = malloc(R_BUF), *lane;
	unsigned int seed = (unsigned int)getpid();
	struct sn_producer *p;
	struct sn_offsets off;
	__u32 i, len, last = 0;
	void *base;
	int r;

	if (!msg || sn_producer_open(ch, &p) ||
	    sn_channel_layout(ch, &base, &off))
		_exit(2);
	lane = (unsigned char *)base + off.lane0 +
	       (__u32)sn_producer_lane(p) * off.lane_size;
	/* first a bad record the parent is sure to meet: the third one */
	for (i = 0; i < 3; i++) {
		rec_fill(msg, 100, 1, i);
		if (sn_try_send_len(p, msg, 100))
			_exit(3);
	}
	rec_hdr(ch, (__u32)sn_producer_lane(p), p->tail - 2)->len = 1U << 29;
	if (write(up, "r", 1) != 1 || rec_hear(down) != 'g')
		_exit(4);
	/* then sends, each followed by a scribble of any word of the lane
	 * (tail, waiting word, prod_need, statistics, slots) or of the
	 * header of the record just sent, with anything */
	for (i = 3; i < iters; i++) {
		len = rec_len(&seed);
		rec_fill(msg, len, 1, i);
		r = sn_send_len(p, msg, len, 2 * MS);
		if (r == 0)
			last = p->tail - (__u32)sn_record_slots(len, R_SHIFT);
		else if (r != -ETIMEDOUT)
			break;
		/* seq rarely: SPSC/MPSC consumers take a wrong seq for a
		 * record not yet committed, and the lane stalls for good */
		switch (rand_r(&seed) % 32) {
		case 0 ... 7:
			__atomic_store_n((__u32 *)(lane + ((__u64)rand_r(&seed) %
				(off.lane_size / 4)) * 4), (__u32)rand_r(&seed) *
				2654435761U, __ATOMIC_RELAXED);
			break;
		case 8 ... 15:
			__atomic_store_n(&rec_hdr(ch, (__u32)sn_producer_lane(p),
						  last)->len,
					 (__u32)rand_r(&seed) << (rand_r(&seed) % 24),
					 __ATOMIC_RELAXED);
			break;
		case 16:
			__atomic_store_n(&rec_hdr(ch, (__u32)sn_producer_lane(p),
						  last)->seq,
					 last + 1 + (__u32)rand_r(&seed) % 3 *
					 R_SLOTS - R_SLOTS, __ATOMIC_RELAXED);
			break;
		}
	}
	sn_producer_close(p);
	_exit(0);
}

struct rec_clean {
	struct t_shared *sh;
	struct sn_producer *p;
	__u32 msgs;
};

/* The well-behaved producer 0 of scribbler_child, in a thread. */
static void *rec_clean_main(void *arg)
{
	struct rec_clean *x = arg;
	unsigned char *msg = malloc(R_BUF);
	unsigned int seed = 5;
	__u32 seq = 0, len = rec_len(&seed);
	int r;

	while (msg && seq < x->msgs && !x->sh->errors) {
		if (t_now() > x->sh->deadline) {
			t_fail(x->sh, "clean producer past the deadline", seq);
			break;
		}
		rec_fill(msg, len, 0, seq);
		r = sn_send_len(x->p, msg, len, 10 * MS);
		if (r == 0) {
			seq++;
			len = rec_len(&seed);
		} else if (r != -ETIMEDOUT) {
			t_fail(x->sh, "clean send", r);
		}
	}
	free(msg);
	return NULL;
}

/*
 * A forked producer scribbles over its own lane at random while it sends
 * and the parent consumes (MPSC and MPMC: beside a well-behaved producer
 * in the parent). The parent must neither crash nor read outside a lane,
 * must count the garbled records it dropped, must hand out the scribbler's
 * intact messages in order (garbled ones may come: they are its to
 * garble), and must get every message of the other lane, in order.
 */
TEST_F_TIMEOUT(rec, scribbler_child, 120)
{
	__u32 lanes = variant->type == SN_RING_SPSC ? 1 : 2;
	__u32 clean_msgs = lanes == 2 ? (__u32)t_scaled(600) : 0;
	__u32 next0 = 0, next1 = 0, garbled = 0, intact1 = 0, replayed = 0;
	unsigned char *buf = malloc(R_BUF);
	struct rec_clean cl = { 0 };
	struct sn_channel_stats st;
	struct sn_consumer *c;
	struct sn_channel *ch;
	struct t_shared *sh;
	unsigned int turn = 0;
	int up[2], down[2], status = -1, r, done = 0;
	struct rec_msg h;
	pthread_t th;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	sh = calloc(1, sizeof(*sh));
	ASSERT_NE(NULL, sh);
	sh->deadline = t_now() + 60000 * MS;
	ASSERT_EQ(0, rec_create(variant, lanes, SN_CHANNEL_VARLEN, &ch));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0)
		rec_scribbler(ch, up[1], down[0], (__u32)t_scaled(1000));
	ASSERT_EQ('r', rec_hear(up[0]));
	/* the first two, then the garbled third: dropped and counted */
	for (r = 0; r < 2; r++) {
		ASSERT_EQ(0, rec_take(ch, c, buf, 1000 * MS, &turn, &h));
		EXPECT_EQ(1, h.prod);
		EXPECT_EQ(next1++, h.seq);
	}
	EXPECT_EQ(-EAGAIN, rec_take(ch, c, buf, 0, &turn, &h));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ(1, st.bad_records);
	next1 = 3;
	if (lanes == 2) {
		cl = (struct rec_clean){ .sh = sh, .msgs = clean_msgs };
		ASSERT_EQ(0, sn_producer_open(ch, &cl.p));
		ASSERT_EQ(0, pthread_create(&th, NULL, rec_clean_main, &cl));
	}
	ASSERT_EQ(1, write(down[1], "g", 1));
	while (!done || next0 < clean_msgs) {
		if (t_now() > sh->deadline) {
			t_fail(sh, "consumer past the deadline", next0);
			break;
		}
		if (!done && waitpid(pid, &status, WNOHANG) == pid)
			done = 1;
		r = rec_take(ch, c, buf, 10 * MS, &turn, &h);
		if (r == 1) {
			garbled++;
		} else if (r == 0 && h.prod == 0) {
			if (h.seq != next0)
				t_fail(sh, "the clean lane out of order", h.seq);
			next0 = h.seq + 1;
		} else if (r == 0 && h.prod == 1) {
			/* in order unless it forged a seq: then an old record
			 * of its lane may pose as a new one (its own lane's
			 * messages are the scribbler's to garble) */
			replayed += h.seq < next1;
			next1 = h.seq + 1;
			intact1++;
		} else if (r == 0 || (r < 0 && r != -EAGAIN &&
				      r != -ETIMEDOUT && r != -EPIPE)) {
			t_fail(sh, "receive", r);
		}
		if (sh->errors)
			break;
	}
	if (lanes == 2) {
		pthread_join(th, NULL);
		EXPECT_EQ(0, sn_producer_close(cl.p));
	}
	if (!done)
		waitpid(pid, &status, 0);
	EXPECT_EQ(0, sh->errors) TH_LOG("%s", sh->why);
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0)
		TH_LOG("scribbler status %#x", status);
	EXPECT_EQ(clean_msgs, next0);
	ASSERT_EQ(0, sn_consumer_flush_stats(c));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_LE(1, st.bad_records);
	TH_LOG("scribbler: %u intact (%u replayed), %u garbled, %llu bad records dropped",
	       intact1, replayed, garbled, (unsigned long long)st.bad_records);
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_channel_close(ch));
	close(up[0]);
	close(up[1]);
	close(down[0]);
	close(down[1]);
	free(sh);
	free(buf);
}

/* ---- 5. a producer killed mid-stream ---- */

/* The killed producer: opens, says so, sends producer 0's messages from
 * @seq on until it dies (by copy and zero-copy in turn). */
static void rec_doomed(struct sn_channel *ch, int up, __u32 seq)
{
	unsigned char *msg = malloc(R_BUF);
	unsigned int seed = seq + 3;
	struct sn_producer *p;
	__u32 len;
	void *buf;
	int r;

	if (!msg || sn_producer_open(ch, &p) || write(up, "r", 1) != 1)
		_exit(2);
	for (;;) {
		len = rec_len(&seed);
		if (seq % 2) {
			rec_fill(msg, len, 0, seq);
			r = sn_send_len(p, msg, len, 1000 * MS);
		} else {
			r = sn_producer_reserve_len(p, len, &buf);
			if (r == 0) {
				rec_fill(buf, len, 0, seq);
				r = sn_producer_commit_len(p, len);
			} else if (r == -EAGAIN) {
				sn_producer_wait(p, 1000 * MS);
				continue;
			}
		}
		if (r == 0)
			seq++;
		else if (r != -ETIMEDOUT)
			_exit(3);
	}
}

/*
 * A forked producer is SIGKILLed while it sends (the parent receiving all
 * along), four times. What it committed arrives whole and in order, its
 * last record included when it got as far as the seq (SPSC/MPSC read seq;
 * MPMC once the kernel or the next producer's open moves the tail past
 * it); a new producer in the parent continues the lane; nothing garbled,
 * no bad record.
 */
TEST_F_TIMEOUT(rec, producer_killed_mid_stream, 120)
{
	unsigned char *buf = malloc(R_BUF), msg[300];
	struct sn_channel_stats st;
	struct sn_consumer *c;
	struct sn_producer *q;
	struct sn_channel *ch;
	unsigned int turn = 0;
	__u32 next = 0, round, i, until;
	int up[2], status, r;
	struct rec_msg h;
	__u64 t0;
	pid_t pid;

	ASSERT_NE(NULL, buf);
	/* one lane, so that each new producer continues the dead one's */
	ASSERT_EQ(0, rec_create(variant, 1, SN_CHANNEL_VARLEN, &ch));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	for (round = 0; round < 4; round++) {
		ASSERT_EQ(0, pipe(up));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0)
			rec_doomed(ch, up[1], next);
		ASSERT_EQ('r', rec_hear(up[0]));
		close(up[0]);
		close(up[1]);
		/* receive a while, then kill it in full flow */
		until = next + 10 + round * 7;
		t0 = t_now();
		while (next < until && t_now() - t0 < 5000 * MS) {
			r = rec_take(ch, c, buf, 10 * MS, &turn, &h);
			if (r == -ETIMEDOUT || r == -EAGAIN)
				continue;
			ASSERT_EQ(0, r) TH_LOG("round %u after %u", round, next);
			ASSERT_EQ(0, h.prod);
			ASSERT_EQ(next, h.seq);
			next++;
		}
		ASSERT_EQ(until, next) TH_LOG("round %u: the producer stalled",
					      round);
		ASSERT_EQ(0, kill(pid, SIGKILL));
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		ASSERT_TRUE(WIFSIGNALED(status)) TH_LOG("status %#x", status);
		/* the lane's next producer: it continues after what the
		 * dead one committed (its open commits what the dead one
		 * left past the tail) */
		ASSERT_EQ(0, sn_producer_open(ch, &q));
		while ((r = rec_take(ch, c, buf, 0, &turn, &h)) == 0) {
			ASSERT_EQ(0, h.prod);
			ASSERT_EQ(next, h.seq);
			next++;
		}
		ASSERT_EQ(-EAGAIN, r) TH_LOG("round %u after %u", round, next);
		for (i = 0; i < 5; i++) {
			rec_fill(msg, sizeof(msg) - i * 50, 0, next + i);
			ASSERT_EQ(0, sn_send_len(q, msg, sizeof(msg) - i * 50,
						 1000 * MS));
		}
		EXPECT_EQ(0, sn_producer_close(q));
		for (i = 0; i < 5; i++) {
			ASSERT_EQ(0, rec_take(ch, c, buf, 1000 * MS, &turn, &h));
			ASSERT_EQ(next, h.seq);
			next++;
		}
	}
	ASSERT_EQ(0, sn_consumer_flush_stats(c));
	ASSERT_EQ(0, sn_channel_stats(ch, &st));
	EXPECT_EQ(0, st.bad_records);
	EXPECT_EQ(next, st.received);
	EXPECT_EQ(4, st.producers_died);
	EXPECT_EQ(0, st.depth);
	EXPECT_EQ(0, sn_consumer_close(c));
	EXPECT_EQ(0, sn_channel_close(ch));
	free(buf);
}

TEST_HARNESS_MAIN
