// SPDX-License-Identifier: MIT
/* snbench: libsn channels, through the inline hot path of <sn/channel.h>. */
#include <stdio.h>
#include <stdlib.h>

#include <sn/channel.h>

#include "snbench.h"

static const unsigned int sn_types[] = {
	[SNB_SPSC] = SN_RING_SPSC,
	[SNB_MPSC] = SN_RING_MPSC,
	[SNB_MPMC] = SN_RING_MPMC,
};

int snb_backend(int *fence)
{
	struct sn_channel_info info;
	struct sn_channel *ch;

	if (sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 8, .slot_size = 16, .lanes = 1, .flags = 0)))
		return -1;
	sn_channel_info(ch, &info);
	sn_channel_close(ch);
	*fence = (int)info.fence;
	return (int)info.backend;
}

static const char *sn_skip(const struct snb_cfg *cfg, int pingpong)
{
	(void)pingpong;
	if (cfg->capacity & (cfg->capacity - 1))
		return "capacity must be a power of two";
	if (cfg->producers > SN_MAX_LANES)
		return "too many producers";
	return NULL;
}

static void *sn_create(const struct snb_cfg *cfg)
{
	struct sn_channel *ch;
	int r;

	r = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = sn_types[cfg->type], .slots = cfg->capacity, .slot_size = cfg->msg_size, .lanes = cfg->producers, .flags = 0));
	if (r) {
		fprintf(stderr, "snbench: sn_channel_create: %d\n", r);
		return NULL;
	}
	return ch;
}

static void sn_destroy(void *q)
{
	sn_channel_close(q);
}

static void *sn_prod_open(void *q, unsigned int idx)
{
	struct sn_producer *p;

	(void)idx;
	return sn_producer_open(q, &p) ? NULL : p;
}

static void *sn_cons_open(void *q, unsigned int idx)
{
	struct sn_consumer *c;

	(void)idx;
	return sn_consumer_open(q, &c) ? NULL : c;
}

static void sn_prod_close(void *h)
{
	sn_producer_close(h);
}

static void sn_cons_close(void *h)
{
	sn_consumer_close(h);
}

static uint64_t sn_syscalls(void *q)
{
	struct sn_channel_stats st;

	if (sn_channel_stats(q, &st))
		return UINT64_MAX;
	return st.kicks + st.sleeps;
}

static inline int sn_send_fn(void *h, const void *msgs, unsigned int n)
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

static inline int sn_recv_fn(void *h, void *msgs, unsigned int n)
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

SNB_DEFINE_LOOPS(sn, sn_send_fn, sn_recv_fn)

const struct snb_impl snb_impl_sn = {
	.name = "libsn",
	.skip = sn_skip,
	.create = sn_create,
	.destroy = sn_destroy,
	.prod_open = sn_prod_open,
	.cons_open = sn_cons_open,
	.prod_close = sn_prod_close,
	.cons_close = sn_cons_close,
	.syscalls = sn_syscalls,
	.producer = sn_producer,
	.consumer = sn_consumer,
	.ping = sn_ping,
	.pong = sn_pong,
};
