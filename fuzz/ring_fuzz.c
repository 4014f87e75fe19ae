// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: libsn's producer and consumer paths over a ring whose
 * shared words the input scribbles between operations (memfd backend; the
 * input also plays the peer). Checks that nothing reaches outside the
 * mapping (guard pages, ASan, and the slot pointers' bounds) and that the
 * handles' own invariants hold whatever the ring says (a scribbled kflags
 * may end the stream: -EPIPE is an answer too). `make fuzz`.
 *
 * Half the rings are SN_CHANNEL_VARLEN (records): the input then also
 * writes record headers (any seq near the heads and tails, any len with
 * any flag bits, padding records anywhere) and sends and receives records
 * of any length, by copy and in place; every message handed out must lie
 * in one lane's slots, and no copy may exceed its buffer.
 */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

struct in {
	const uint8_t *d;
	size_t n;
};

static uint32_t take(struct in *in, unsigned int bytes)
{
	uint32_t v = 0;

	while (bytes--) {
		v <<= 8;
		if (in->n) {
			v |= *in->d++;
			in->n--;
		}
	}
	return v;
}

#define CHECK(x) do { if (!(x)) __builtin_trap(); } while (0)

static unsigned char *g_base;
static struct sn_offsets g_off;

static void check_slot(const void *p, uint32_t size)
{
	const unsigned char *c = p;

	CHECK(c >= g_base + g_off.lane0 &&
	      c + size <= g_base + g_off.map_size);
}

/* A message of @len bytes at @p lies after a slot header, within the
 * slots of one lane (@slots of them): what any record may span. */
static void check_record(const void *p, uint32_t len, uint32_t slots)
{
	const unsigned char *c = p, *lane;
	uint64_t at;

	CHECK(c >= g_base + g_off.lane0 && c < g_base + g_off.map_size);
	at = (uint64_t)(c - g_base - g_off.lane0);
	lane = g_base + g_off.lane0 + at / g_off.lane_size * g_off.lane_size;
	CHECK(c >= lane + g_off.slots + sizeof(struct sn_slot));
	CHECK((uint64_t)(c - lane - g_off.slots) % g_off.stride ==
	      sizeof(struct sn_slot));
	CHECK(c + len <= lane + g_off.slots + (uint64_t)slots * g_off.stride);
}

/* The header of slot @pos of @lane. */
static struct sn_slot *slot_hdr(uint32_t lane, uint32_t pos, uint32_t slots)
{
	return (struct sn_slot *)(g_base + g_off.lane0 +
				  lane * g_off.lane_size + g_off.slots +
				  (uint64_t)(pos & (slots - 1)) * g_off.stride);
}

/* A record length from the input: small, near the lane's size, the
 * largest, or any bits (flags included). */
static uint32_t any_len(struct in *in, uint32_t max)
{
	uint32_t v = take(in, 2);

	switch (take(in, 1) % 6) {
	case 0:
		return v % 64;
	case 1:
		return max - v % 16;
	case 2:
		return max + v % 16;
	case 3:
		return v % (max + 1);
	case 4:
		return SN_SLOT_PAD | (v % 4 ? 0 : v);
	default:
		return take(in, 4);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned int type = take(&in, 1) % 3 + 1;
	unsigned int slots = 1U << (take(&in, 1) % 5);
	unsigned int slot_size = 8 * (take(&in, 1) % 4 + 1);
	unsigned int lanes = type == SN_RING_SPSC ? 1 : take(&in, 1) % 3 + 1;
	unsigned int ncons = type == SN_RING_MPMC ? 2 : 1, i;
	unsigned int varlen = take(&in, 1) & 1 ? SN_CHANNEL_VARLEN : 0;
	struct sn_producer *p[3] = { 0 };
	struct sn_consumer *c[2] = { 0 };
	struct sn_channel_stats st;
	struct sn_channel_info info;
	struct sn_channel *ch, *other;
	/* the longest record (16 slots of up to 64 bytes), then a guard
	 * that no receive may write */
	unsigned char buf[16 * 64 + 64];
	void *base;
	int ops = 0;

	if (sn_channel_create(&ch, type, slots, slot_size, lanes,
			      SN_BACKEND_MEMFD | varlen))
		return 0;
	sn_channel_layout(ch, &base, &g_off);
	g_base = base;
	CHECK(!sn_channel_info(ch, &info));
	CHECK(info.max_msg <= sizeof(buf) - 64);
	for (i = 0; i < lanes; i++)
		CHECK(!sn_producer_open(ch, &p[i]));
	for (i = 0; i < ncons; i++)
		CHECK(!sn_consumer_open(ch, &c[i]));
	memset(buf, 0x5a, sizeof(buf));

	while (in.n && ops++ < 4096) {
		uint32_t op = take(&in, 1), pos = 0, n;
		struct sn_producer *pp = p[(op >> 4) % lanes];
		struct sn_consumer *cc = c[(op >> 4) % ncons];
		int r, k;

		switch (op % 15) {
		case 0:	/* the peer: any word of the mapping, kpage included */
		case 1: {
			uint64_t off = (take(&in, 3) % g_off.map_size) & ~3ULL;

			__atomic_store_n((uint32_t *)(g_base + off),
					 take(&in, 4), __ATOMIC_RELAXED);
			break;
		}
		case 2:	/* varlen: slot_size bytes, above max_msg in 1-slot lanes */
			r = sn_try_send(pp, buf);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      (varlen && r == -EMSGSIZE &&
			       slot_size > info.max_msg));
			break;
		case 3:
			r = sn_try_recv(cc, buf);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      (varlen && r == -EMSGSIZE));
			break;
		case 4:
			n = take(&in, 1) % 9;
			r = sn_send_burst(pp, buf, n);
			CHECK(varlen ? r == -EINVAL :
			      r == -EAGAIN || r == -EPIPE || (r >= 0 && (uint32_t)r <= n));
			break;
		case 5:
			n = take(&in, 1) % 9;
			r = sn_recv_burst(cc, buf, n);
			CHECK(varlen ? r == -EINVAL :
			      r == -EAGAIN || r == -EPIPE || (r >= 0 && (uint32_t)r <= n));
			break;
		case 6:
			n = take(&in, 1) % 9 + 1;
			r = sn_reserve(pp, n, &pos);
			CHECK(varlen ? r == -EINVAL :
			      r == -EAGAIN || r == -EPIPE || (r > 0 && (uint32_t)r <= n &&
					       (uint32_t)r <= slots));
			for (k = 0; k < r; k++) {
				check_slot(sn_producer_slot(pp, pos + k),
					   slot_size);
				memset(sn_producer_slot(pp, pos + k), k,
				       slot_size);
			}
			if (r > 0)
				CHECK(!sn_commit(pp, (uint32_t)(take(&in, 1) %
								 r + 1)));
			break;
		case 7:
			/* varlen: sn_peek() does not refuse records yet (a
			 * known libsn bug, selftests/record_test.c's
			 * varlen_peek_refused): sn_peek_len (case 14) instead */
			if (varlen)
				break;
			n = take(&in, 1) % 9 + 1;
			r = sn_peek(cc, n, &pos);
			CHECK(r == -EAGAIN || r == -EPIPE || (r > 0 && (uint32_t)r <= n &&
					       (uint32_t)r <= slots));
			for (k = 0; k < r; k++) {
				check_slot(sn_consumer_slot(cc, pos + k),
					   slot_size);
				memcpy(buf, sn_consumer_slot(cc, pos + k),
				       slot_size);
			}
			if (r > 0)
				CHECK(!sn_release(cc, type == SN_RING_MPMC ?
						  (uint32_t)r :
						  take(&in, 1) % r + 1));
			break;
		case 8: {
			uint32_t len = 0;

			CHECK(!sn_channel_stats(ch, &st));
			/* varlen rings count depth in messages from the
			 * sides' statistics, which the input may scribble */
			CHECK(varlen || st.depth <= (uint64_t)slots * lanes);
			if (!(op & 0x80))
				break;
			switch (op & 0x60) {
			case 0x00:
				r = sn_send(pp, buf, 2000);
				break;
			case 0x20:
				r = sn_recv(cc, buf, 2000);
				break;
			case 0x40:
				/* a one-slot varlen SPSC/MPSC lane takes no
				 * record, and sn_send_len() then spins past
				 * its timeout (a known libsn bug: record_test's
				 * one_slot_lane) */
				if (varlen && slots == 1 &&
				    type != SN_RING_MPMC) {
					r = 0;
					break;
				}
				len = any_len(&in, info.max_msg);
				r = sn_send_len(pp, buf, len, 2000);
				CHECK(r != -EMSGSIZE || len > info.max_msg);
				break;
			default:
				r = sn_recv_len(cc, buf, sizeof(buf) - 64, &len,
						2000);
				CHECK(r || len <= sizeof(buf) - 64);
			}
			CHECK(r == 0 || r == -ETIMEDOUT || r == -EPIPE ||
			      r == -EMSGSIZE);
			break;
		}
		case 9: /* attach, as a process given the fd would */
			if (!sn_channel_attach(&other, sn_channel_fd(ch), 0)) {
				struct sn_producer *q;

				if (!sn_producer_open(other, &q))
					sn_producer_close(q);
				CHECK(!sn_channel_close(other));
			}
			break;
		case 10: { /* the peer: a record header near a head or a tail */
			uint32_t l = take(&in, 1) % lanes, at, seq;
			unsigned char *lp = g_base + g_off.lane0 +
					    l * g_off.lane_size;

			at = take(&in, 1) & 1 ?
			     *(uint32_t *)(lp + g_off.prod_tail) :
			     *(uint32_t *)(g_base + g_off.cons + g_off.cons_lane +
					   l * 2 * SN_PAD);
			at += (uint32_t)(int8_t)take(&in, 1);
			switch (take(&in, 1) % 4) {
			case 0:
				seq = at + 1;	/* committed, as it seems */
				break;
			case 1:
				seq = at + 1 + slots;	/* a lap ahead */
				break;
			case 2:
				seq = 0;	/* a terminator */
				break;
			default:
				seq = take(&in, 4);
			}
			__atomic_store_n(&slot_hdr(l, at, slots)->len,
					 any_len(&in, info.max_msg),
					 __ATOMIC_RELAXED);
			__atomic_store_n(&slot_hdr(l, at, slots)->seq, seq,
					 __ATOMIC_RELEASE);
			break;
		}
		case 11: { /* any length, fixed-size rings included */
			uint32_t len = any_len(&in, info.max_msg);

			r = sn_try_send_len(pp, buf, len);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      (r == -EMSGSIZE && len > info.max_msg));
			CHECK(r == -EMSGSIZE || len <= info.max_msg);
			break;
		}
		case 12: {
			uint32_t len = any_len(&in, info.max_msg);
			void *w;

			r = sn_reserve_len(pp, len, &w);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      (r == -EMSGSIZE && len > info.max_msg));
			if (r)
				break;
			if (varlen)
				check_record(w, len, slots);
			else
				check_slot(w, len);
			memset(w, 0x3c, len);
			CHECK(!sn_commit_len(pp, len ? take(&in, 2) % (len + 1) :
					     0));
			break;
		}
		case 13: { /* a receive buffer of any size: nothing past it */
			uint32_t cap = take(&in, 2) % (sizeof(buf) + 1), len = ~0U;

			memset(buf, 0xa5, sizeof(buf));
			r = sn_try_recv_len(cc, buf, cap, &len);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      r == -EMSGSIZE ||
			      (r == -EINVAL && !varlen && cap < slot_size));
			if (r == 0)
				CHECK(len <= cap && len <= info.max_msg);
			if (r == -EMSGSIZE)
				CHECK(len > cap && len <= info.max_msg);
			for (k = r == 0 ? (int)len : 0; k < (int)sizeof(buf);
			     k++)
				CHECK(buf[k] == 0xa5);
			break;
		}
		default: { /* in place */
			const void *m;
			uint32_t len;

			r = sn_peek_len(cc, &m, &len);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE);
			if (r)
				break;
			CHECK(len <= info.max_msg);
			if (varlen)
				check_record(m, len, slots);
			else
				check_slot(m, len);
			memcpy(buf, m, len);
			CHECK(sn_release(cc, 2) == -EINVAL);
			CHECK(!sn_release(cc, 1));
		}
		}
		for (i = 0; i < lanes; i++)
			CHECK(p[i]->limit - p[i]->tail <= slots);
	}
	for (i = 0; i < lanes; i++)
		sn_producer_close(p[i]);
	for (i = 0; i < ncons; i++)
		sn_consumer_close(c[i]);
	CHECK(!sn_channel_close(ch));
	return 0;
}
