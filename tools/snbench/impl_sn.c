// SPDX-License-Identifier: MIT
/* snbench: libsn channels, through the inline hot path of <sn/channel.h>. */
#include <stdio.h>
#include <stdlib.h>

#include <sn/channel.h>

#include "snbench.h"

static const unsigned int bench_sn_types[] = {
	[SNB_SPSC] = SN_RING_SPSC,
	[SNB_MPSC] = SN_RING_MPSC,
	[SNB_MPMC] = SN_RING_MPMC,
};

int snb_backend(int *fence)
{
	struct sn_channel_info info;
	struct sn_channel *ch;

	if (sn_channel_create(&ch, SN_CHANNEL_OPTS(.slots = 8, .slot_size = 16)))
		return -1;
	sn_channel_info(ch, &info);
	sn_channel_close(ch);
	*fence = (int)info.fence;
	return (int)info.backend;
}

static const char *bench_sn_skip(const struct snb_cfg *cfg, int pingpong)
{
	(void)pingpong;
	if (cfg->capacity & (cfg->capacity - 1))
		return "capacity must be a power of two";
	if (cfg->producers > SN_MAX_LANES)
		return "too many producers";
	return NULL;
}

static void *bench_sn_create(const struct snb_cfg *cfg)
{
	struct sn_channel *ch;
	int r;

	r = sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = bench_sn_types[cfg->type],
		.slots = cfg->capacity,
		.slot_size = cfg->msg_size,
		.lanes = cfg->producers));
	if (r) {
		fprintf(stderr, "snbench: sn_channel_create: %s\n",
			sn_last_error());
		return NULL;
	}
	return ch;
}

static void bench_sn_destroy(void *q)
{
	sn_channel_close(q);
}

static void *bench_sn_prod_open(void *q, unsigned int idx)
{
	struct sn_producer *p;

	(void)idx;
	return sn_producer_open(q, &p) ? NULL : p;
}

static void *bench_sn_cons_open(void *q, unsigned int idx)
{
	struct sn_consumer *c;

	(void)idx;
	return sn_consumer_open(q, &c) ? NULL : c;
}

static void bench_sn_prod_close(void *h)
{
	sn_producer_close(h);
}

static void bench_sn_cons_close(void *h)
{
	sn_consumer_close(h);
}

static uint64_t bench_sn_syscalls(void *q)
{
	struct sn_channel_stats st;

	if (sn_channel_stats(q, &st))
		return UINT64_MAX;
	return st.kicks + st.sleeps;
}

static inline int bench_sn_send(void *h, const void *msgs, unsigned int n)
{
	int r;

	if (n == 1) {
		r = sn_try_send(h, msgs);
		if (!r)
			return 1;
	} else
		r = sn_send_burst(h, msgs, n);
	return r == -EAGAIN ? 0 : r;
}

static inline int bench_sn_recv(void *h, void *msgs, unsigned int n)
{
	int r;

	if (n == 1) {
		r = sn_try_recv(h, msgs);
		if (!r)
			return 1;
	} else
		r = sn_recv_burst(h, msgs, n);
	return r == -EAGAIN ? 0 : r;
}

SNB_DEFINE_LOOPS(bench_sn, bench_sn_send, bench_sn_recv)

const struct snb_impl snb_impl_sn = {
	.name = "libsn",
	.skip = bench_sn_skip,
	.create = bench_sn_create,
	.destroy = bench_sn_destroy,
	.prod_open = bench_sn_prod_open,
	.cons_open = bench_sn_cons_open,
	.prod_close = bench_sn_prod_close,
	.cons_close = bench_sn_cons_close,
	.syscalls = bench_sn_syscalls,
	.producer = bench_sn_producer,
	.consumer = bench_sn_consumer,
	.ping = bench_sn_ping,
	.pong = bench_sn_pong,
};
