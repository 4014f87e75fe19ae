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

/* A buffer's message of @len bytes at @p lies within one buffer of the
 * lane it is in (@bufs of @buf_size bytes after the lane's slots). */
static void check_buf(const void *p, uint32_t len, uint32_t bufs,
		      uint32_t buf_size)
{
	const unsigned char *c = p, *lane;
	uint64_t at;

	CHECK(c >= g_base + g_off.lane0 && c < g_base + g_off.map_size);
	at = (uint64_t)(c - g_base - g_off.lane0);
	lane = g_base + g_off.lane0 + at / g_off.lane_size * g_off.lane_size;
	CHECK(c >= lane + g_off.bufs);
	CHECK((uint64_t)(c - lane - g_off.bufs) % buf_size == 0);
	CHECK((uint64_t)(c - lane - g_off.bufs) / buf_size < bufs);
	CHECK(len <= buf_size);
}

/* A message handed out in place: in a buffer, or a record's slots. */
static void check_msg(const void *p, uint32_t len, uint32_t slots,
		      const struct sn_channel_info *info)
{
	const unsigned char *c = p;
	uint64_t at = (uint64_t)(c - g_base - g_off.lane0) % g_off.lane_size;

	if (info->bufs && at >= g_off.bufs)
		check_buf(p, len, info->bufs, info->buf_size);
	else if (info->flags & SN_CHANNEL_VARLEN)
		check_record(p, len, slots);
	else
		check_slot(p, len);
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
	unsigned int vb = take(&in, 1);
	unsigned int varlen = vb & 1 ? SN_CHANNEL_VARLEN : 0;
	struct sn_channel_opts o = {
		.size = sizeof(o), .type = type, .slots = slots,
		.slot_size = slot_size, .lanes = lanes,
		.flags = SN_BACKEND_MEMFD | varlen,
		/* buffers (varlen only): 1 to 4 of 64 to 256 bytes */
		.bufs = varlen && (vb & 2) ? (vb >> 2) % 4 + 1 : 0,
		.buf_size = varlen && (vb & 2) ? 64 * ((vb >> 4) % 4 + 1) : 0,
	};
	struct sn_buf held[4];
	unsigned int nheld = 0;
	uint32_t most;
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

	if (sn_channel_create(&ch, &o))
		return 0;
	sn_channel_layout(ch, &base, &g_off);
	g_base = base;
	CHECK(!sn_channel_info(ch, &info));
	CHECK(info.max_msg <= sizeof(buf) - 64);
	CHECK(info.bufs == o.bufs && info.buf_size == o.buf_size);
	/* the longest message a receive may see: a record, or a buffer's */
	most = info.max_msg > info.buf_size ? info.max_msg : info.buf_size;
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

		switch (op % 17) {
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
			r = sn_producer_reserve(pp, n, &pos);
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
				CHECK(!sn_producer_commit(pp, (uint32_t)(take(&in, 1) %
								 r + 1)));
			break;
		case 7:
			n = take(&in, 1) % 9 + 1;
			if (varlen) {	/* records: sn_consumer_peek_len (default) */
				CHECK(sn_consumer_peek(cc, n, &pos) == -EINVAL);
				break;
			}
			r = sn_consumer_peek(cc, n, &pos);
			CHECK(r == -EAGAIN || r == -EPIPE || (r > 0 && (uint32_t)r <= n &&
					       (uint32_t)r <= slots));
			for (k = 0; k < r; k++) {
				check_slot(sn_consumer_slot(cc, pos + k),
					   slot_size);
				memcpy(buf, sn_consumer_slot(cc, pos + k),
				       slot_size);
			}
			if (r > 0)
				CHECK(!sn_consumer_advance(cc, type == SN_RING_MPMC ?
						  (uint32_t)r :
						  take(&in, 1) % r + 1));
			break;
		case 8: {
			uint32_t len = 0;

			CHECK(!sn_channel_stats(ch, &st));
			CHECK(st.depth <= (uint64_t)slots * lanes);
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
				len = any_len(&in, info.max_msg);
				r = sn_send_len(pp, buf, len, 2000);
				CHECK(r != -EMSGSIZE || len > info.max_msg);
				break;
			default:
				r = sn_recv_len(cc, buf, sizeof(buf) - 64, &len,
						2000);
				CHECK(r || len <= most);
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

			r = sn_producer_reserve_len(pp, len, &w);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      (r == -EMSGSIZE && len > info.max_msg));
			if (r)
				break;
			if (varlen)
				check_record(w, len, slots);
			else
				check_slot(w, len);
			memset(w, 0x3c, len);
			CHECK(!sn_producer_commit_len(pp, len ? take(&in, 2) % (len + 1) :
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
				CHECK(len <= cap && len <= most);
			if (r == -EMSGSIZE)
				CHECK(len > cap && len <= most);
			for (k = r == 0 ? (int)len : 0; k < (int)sizeof(buf);
			     k++)
				CHECK(buf[k] == 0xa5);
			break;
		}
		default: { /* in place */
			const void *m;
			uint32_t len;

			r = sn_consumer_peek_len(cc, &m, &len);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE);
			if (r)
				break;
			CHECK(len <= most);
			check_msg(m, len, slots, &info);
			memcpy(buf, m, len);
			CHECK(sn_consumer_advance(cc, 2) == -EINVAL);
			CHECK(!sn_consumer_advance(cc, 1));
			break;
		}
		case 15: { /* buffers: a producer's get, send and drop */
			void *w;
			uint32_t idx, len = take(&in, 2) % (info.buf_size + 2);

			r = sn_buf_get(pp, &w, &idx);
			CHECK(r == 0 || r == -EAGAIN || (r == -EINVAL && !o.bufs));
			if (r)
				break;
			check_buf(w, info.buf_size, info.bufs, info.buf_size);
			memset(w, 0x77, info.buf_size);
			if (take(&in, 1) & 1) {
				CHECK(!sn_buf_drop(pp, idx));
				break;
			}
			r = sn_buf_send(pp, idx, len);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      (r == -EINVAL && len > info.buf_size));
			if (r)
				sn_buf_drop(pp, idx);
			break;
		}
		case 16: { /* buffers: a consumer's take and return, and the
			    * peer: a buffer record naming any buffer */
			struct sn_buf b;

			if (take(&in, 1) & 1) {
				uint32_t l = take(&in, 1) % lanes, at;
				unsigned char *lp = g_base + g_off.lane0 +
						    l * g_off.lane_size;
				uint32_t *ref;

				at = *(uint32_t *)(lp + g_off.prod_tail);
				ref = (uint32_t *)(slot_hdr(l, at, slots) + 1);
				__atomic_store_n(&ref[0], take(&in, 1) % 8,
						 __ATOMIC_RELAXED);
				__atomic_store_n(&ref[1], take(&in, 2) % 512,
						 __ATOMIC_RELAXED);
				__atomic_store_n(&slot_hdr(l, at, slots)->len,
						 SN_SLOT_BUF | 8,
						 __ATOMIC_RELAXED);
				__atomic_store_n(&slot_hdr(l, at, slots)->seq,
						 at + 1, __ATOMIC_RELEASE);
				break;
			}
			if (nheld && (take(&in, 1) & 1)) {
				k = (int)(take(&in, 1) % nheld);
				/* held by c[0], which took it, unless the
				 * peer scribbled over its ret word */
				r = sn_buf_put(c[0], &held[k]);
				CHECK(r == 0 || r == -EINVAL);
				held[k] = held[--nheld];
				break;
			}
			if (nheld == 4)
				break;
			r = sn_recv_buf(c[0], &b);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE ||
			      r == -ENOMSG || (r == -EINVAL && !o.bufs));
			if (r)
				break;
			check_buf(b.data, b.len, info.bufs, info.buf_size);
			memcpy(buf, b.data, b.len);
			held[nheld++] = b;
			break;
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
