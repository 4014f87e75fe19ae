// SPDX-License-Identifier: MIT
/*
 * libFuzzer target: libsn's producer and consumer paths over a ring whose
 * shared words the input scribbles between operations (memfd backend; the
 * input also plays the peer). Checks that nothing reaches outside the
 * mapping (guard pages, ASan, and the slot pointers' bounds) and that the
 * handles' own invariants hold whatever the ring says (a scribbled kflags
 * may end the stream: -EPIPE is an answer too). `make fuzz`.
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

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct in in = { data, size };
	unsigned int type = take(&in, 1) % 3 + 1;
	unsigned int slots = 1U << (take(&in, 1) % 5);
	unsigned int slot_size = 8 * (take(&in, 1) % 4 + 1);
	unsigned int lanes = type == SN_RING_SPSC ? 1 : take(&in, 1) % 3 + 1;
	unsigned int ncons = type == SN_RING_MPMC ? 2 : 1, i;
	struct sn_producer *p[3] = { 0 };
	struct sn_consumer *c[2] = { 0 };
	struct sn_channel_stats st;
	struct sn_channel *ch, *other;
	unsigned char buf[8 * 32];
	void *base;
	int ops = 0;

	if (sn_channel_create(&ch, type, slots, slot_size, lanes,
			      SN_BACKEND_MEMFD))
		return 0;
	sn_channel_layout(ch, &base, &g_off);
	g_base = base;
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

		switch (op % 10) {
		case 0:	/* the peer: any word of the mapping, kpage included */
		case 1: {
			uint64_t off = (take(&in, 3) % g_off.map_size) & ~3ULL;

			__atomic_store_n((uint32_t *)(g_base + off),
					 take(&in, 4), __ATOMIC_RELAXED);
			break;
		}
		case 2:
			r = sn_try_send(pp, buf);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE);
			break;
		case 3:
			r = sn_try_recv(cc, buf);
			CHECK(r == 0 || r == -EAGAIN || r == -EPIPE);
			break;
		case 4:
			n = take(&in, 1) % 9;
			r = sn_send_burst(pp, buf, n);
			CHECK(r == -EAGAIN || r == -EPIPE || (r >= 0 && (uint32_t)r <= n));
			break;
		case 5:
			n = take(&in, 1) % 9;
			r = sn_recv_burst(cc, buf, n);
			CHECK(r == -EAGAIN || r == -EPIPE || (r >= 0 && (uint32_t)r <= n));
			break;
		case 6:
			n = take(&in, 1) % 9 + 1;
			r = sn_reserve(pp, n, &pos);
			CHECK(r == -EAGAIN || r == -EPIPE || (r > 0 && (uint32_t)r <= n &&
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
		case 8:
			CHECK(!sn_channel_stats(ch, &st));
			CHECK(st.depth <= (uint64_t)slots * lanes);
			if (op & 0x80) {
				r = (op & 0x40) ? sn_send(pp, buf, 2000) :
						  sn_recv(cc, buf, 2000);
				CHECK(r == 0 || r == -ETIMEDOUT || r == -EPIPE);
			}
			break;
		default: /* attach, as a process given the fd would */
			if (!sn_channel_attach(&other, sn_channel_fd(ch), 0)) {
				struct sn_producer *q;

				if (!sn_producer_open(other, &q))
					sn_producer_close(q);
				CHECK(!sn_channel_close(other));
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
