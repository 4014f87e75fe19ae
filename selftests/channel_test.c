// SPDX-License-Identifier: MIT
/*
 * libsn channels: the API's contract and exactly-once, per-producer FIFO
 * delivery for every type. Memfd backend everywhere; the kernel backend too
 * where /dev/sn exists (the guests). SN_TEST_SCALE=N runs N% of the messages.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "channel_common.h"

#include "kselftest_harness.h"

/* Each mistake is -EINVAL, and sn_last_error() names the field. */
TEST(create_rejects_bad_geometry)
{
	static const struct {
		struct sn_channel_opts o;
		const char *why;	/* in what sn_last_error() says */
	} bad[] = {
		{ { .slots = 3 }, "slots 3: not a power of two" },
		{ { .slot_size = 12 }, "slot_size 12: not a multiple of 8" },
		{ { .type = SN_RING_SPSC, .lanes = 2 }, "lanes 2: an SPSC" },
		{ { .type = SN_RING_MPSC, .lanes = 65 }, "lanes 65: not in 1..64" },
		{ { .type = 4 }, "type 4: not SN_RING_SPSC" },
		{ { .flags = SN_BACKEND_MEMFD | SN_BACKEND_KERNEL },
		  "flags: SN_BACKEND_KERNEL and SN_BACKEND_MEMFD" },
		{ { .flags = 1U << 7 }, "flags 0x80: unknown bits 0x80" },
		{ { .type = SN_RING_MPMC, .slots = SN_CHANNEL_MAX_SLOTS * 2 },
		  "slots 2097152: not a power of two in 1..1048576" },
		{ { .flags = SN_CHANNEL_VARLEN, .slots = 1 },
		  "slots 1: not a power of two in 2.." },
		{ { .bufs = 1, .buf_size = 64 }, "bufs 1: buffers need" },
		{ { .flags = SN_CHANNEL_VARLEN, .bufs = 1, .buf_size = 96 },
		  "buf_size 96: not a multiple of 64" },
		{ { .buf_size = 64 }, "buf_size 64: set without bufs" },
		{ { .type = SN_RING_MPSC, .lanes = 64, .slots = 1 << 16,
		    .slot_size = 1024 }, "bytes of slots and buffers: above" },
	};
	struct sn_channel_opts o;
	struct sn_channel *ch;
	unsigned int i;

	for (i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		o = bad[i].o;
		o.size = sizeof(o);
		if (!(o.flags & (SN_BACKEND_KERNEL | (1U << 7))))
			o.flags |= SN_BACKEND_MEMFD;
		EXPECT_EQ(-EINVAL, sn_channel_create(&ch, &o));
		EXPECT_NE(NULL, strstr(sn_last_error(), bad[i].why))
			TH_LOG("case %u: \"%s\", wanted \"%s...\"", i,
			       sn_last_error(), bad[i].why);
	}
	/* a struct from before size was set, or none */
	o = (struct sn_channel_opts){ .size = 8, .type = SN_RING_SPSC };
	EXPECT_EQ(-EINVAL, sn_channel_create(&ch, &o));
	EXPECT_EQ(0, strncmp(sn_last_error(), "opts->size 8: below 32", 22));
	EXPECT_EQ(-EINVAL, sn_channel_create(&ch, NULL));
	EXPECT_STREQ("opts is NULL", sn_last_error());
	/* a newer, larger struct: taken while what we do not know is 0 */
	{
		struct {
			struct sn_channel_opts o;
			__u32 future[2];
		} big = { .o = { .size = sizeof(big),
				 .flags = SN_BACKEND_MEMFD } };

		ASSERT_EQ(0, sn_channel_create(&ch, &big.o));
		EXPECT_EQ(0, sn_channel_close(ch));
		big.future[1] = 1;
		EXPECT_EQ(-E2BIG, sn_channel_create(&ch, &big.o));
		EXPECT_NE(NULL, strstr(sn_last_error(), "byte 36 is set"));
		big.o.size = 1U << 20;
		EXPECT_EQ(-E2BIG, sn_channel_create(&ch, &big.o));
	}
	/* a success clears it */
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.flags = SN_BACKEND_MEMFD)));
	EXPECT_STREQ("", sn_last_error());
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* Fields left 0 take the documented defaults. */
TEST(create_defaults)
{
	long cpus = sysconf(_SC_NPROCESSORS_ONLN);
	struct sn_channel_info info;
	struct sn_channel *ch;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	EXPECT_EQ(SN_RING_SPSC, info.type);
	EXPECT_EQ(SN_CHANNEL_DEFAULT_SLOTS, info.slots);
	EXPECT_EQ(SN_CHANNEL_DEFAULT_SLOT_SIZE, info.slot_size);
	EXPECT_EQ(1, info.lanes);
	EXPECT_EQ(0, info.roles_enforced);
	EXPECT_EQ(0, sn_channel_close(ch));
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = SN_RING_MPMC, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	EXPECT_EQ(cpus > SN_MAX_LANES ? SN_MAX_LANES : cpus, info.lanes);
	EXPECT_EQ(0, sn_channel_close(ch));
}

TEST(backend_choice)
{
	struct sn_channel_info info;
	struct sn_channel *ch;
	struct stat st;
	int have = stat(SN_DEVICE_PATH, &st) == 0;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 4, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_MEMFD)));
	EXPECT_EQ(SN_BACKEND_MEMFD, sn_channel_backend(ch));
	EXPECT_STREQ("memfd", sn_backend_name(sn_channel_backend(ch)));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	EXPECT_EQ(SN_RING_SPSC, info.type);
	EXPECT_EQ(4, info.slots);
	EXPECT_EQ(8, info.slot_size);
	EXPECT_EQ(1, info.lanes);
	EXPECT_EQ(SN_ROLE_FULL, info.role);
	EXPECT_EQ(0, sn_channel_close(ch));

	/* automatic: the kernel's when the module is there */
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 4, .slot_size = 8, .lanes = 2, .flags = 0)));
	EXPECT_EQ(have ? SN_BACKEND_KERNEL : SN_BACKEND_MEMFD,
		  sn_channel_backend(ch));
	EXPECT_STREQ(have ? "kernel" : "memfd",
		     sn_backend_name(sn_channel_backend(ch)));
	EXPECT_EQ(0, sn_channel_close(ch));

	if (!have)
		EXPECT_EQ(-ENOENT, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 4, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_KERNEL)));
	EXPECT_STREQ("?", sn_backend_name(0));
}

/* Full, empty, partial zero-copy, statistics: exact on one thread. */
TEST(spsc_contract)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_channel_stats st;
		struct sn_channel *ch;
		struct sn_producer *p;
		struct sn_consumer *c, *c2;
		__u64 m[4] = { 0 }, out[4];
		__u32 pos;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 4, .slot_size = 16, .lanes = 1, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		EXPECT_EQ(-EBUSY, sn_consumer_open(ch, &c2));
		EXPECT_EQ(-EBUSY, sn_channel_close(ch));
		EXPECT_EQ(-EAGAIN, sn_try_recv(c, out));
		EXPECT_EQ(-EAGAIN, sn_recv(c, out, SN_NO_WAIT));
		EXPECT_EQ(-EAGAIN, sn_consumer_peek(c, 1, &pos));
		m[0] = 1;
		EXPECT_EQ(0, sn_try_send(p, m));
		m[0] = 2;
		m[2] = 3;
		EXPECT_EQ(2, sn_send_burst(p, m, 2));	/* 2, 3 */
		EXPECT_EQ(1, sn_producer_reserve(p, 5, &pos));
		EXPECT_EQ(-EINVAL, sn_producer_reserve(p, 1, &pos));
		EXPECT_EQ(-EINVAL, sn_try_send(p, m));
		memset(sn_producer_slot(p, pos), 0, 16);
		*(__u64 *)sn_producer_slot(p, pos) = 4;
		EXPECT_EQ(-EINVAL, sn_producer_commit(p, 2));
		EXPECT_EQ(0, sn_producer_commit(p, 1));
		EXPECT_EQ(-EAGAIN, sn_try_send(p, m));
		EXPECT_EQ(-EAGAIN, sn_send_burst(p, m, 2));
		EXPECT_EQ(-EAGAIN, sn_producer_reserve(p, 1, &pos));
		EXPECT_EQ(0, sn_send_burst(p, m, 0));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(4, st.sent);
		EXPECT_EQ(3, st.send_errors);
		EXPECT_EQ(4, st.depth);
		EXPECT_EQ(3, st.recv_empty);

		EXPECT_EQ(0, sn_try_recv(c, out));
		EXPECT_EQ(1, out[0]);
		EXPECT_EQ(3, sn_consumer_peek(c, 8, &pos));
		EXPECT_EQ(-EINVAL, sn_consumer_peek(c, 1, &pos));
		EXPECT_EQ(-EINVAL, sn_try_recv(c, out));
		EXPECT_EQ(2, *(const __u64 *)sn_consumer_slot(c, pos));
		EXPECT_EQ(0, sn_consumer_advance(c, 1));		/* 3, 4 stay */
		EXPECT_EQ(2, sn_recv_burst(c, out, 4));
		EXPECT_EQ(3, out[0]);
		EXPECT_EQ(4, out[2]);
		EXPECT_EQ(-EAGAIN, sn_recv_burst(c, out, 4));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(4, st.received);
		EXPECT_EQ(0, st.depth);
		EXPECT_EQ(4, st.recv_empty);

		EXPECT_EQ(0, sn_consumer_close(c));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));	/* continues */
		m[0] = 5;
		EXPECT_EQ(0, sn_send(p, m, 10 * MS));
		EXPECT_EQ(0, sn_recv(c, out, 10 * MS));
		EXPECT_EQ(5, out[0]);
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

TEST(lanes_are_owned)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_producer *p[3];
		struct sn_consumer *c[3];
		struct sn_channel *ch;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 2, .slot_size = 8, .lanes = 2, .flags = flags[b])));
		ASSERT_EQ(0, sn_producer_open(ch, &p[0]));
		ASSERT_EQ(0, sn_producer_open(ch, &p[1]));
		EXPECT_NE(sn_producer_lane(p[0]), sn_producer_lane(p[1]));
		EXPECT_EQ(-EUSERS, sn_producer_open(ch, &p[2]));
		EXPECT_EQ(0, sn_producer_close(p[0]));
		ASSERT_EQ(0, sn_producer_open(ch, &p[2]));
		/* MPMC: any number of consumers */
		ASSERT_EQ(0, sn_consumer_open(ch, &c[0]));
		ASSERT_EQ(0, sn_consumer_open(ch, &c[1]));
		ASSERT_EQ(0, sn_consumer_open(ch, &c[2]));
		EXPECT_EQ(0, sn_consumer_close(c[0]));
		EXPECT_EQ(0, sn_consumer_close(c[1]));
		EXPECT_EQ(0, sn_consumer_close(c[2]));
		EXPECT_EQ(0, sn_producer_close(p[1]));
		EXPECT_EQ(0, sn_producer_close(p[2]));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* MPMC zero-copy: claimed slots go to one consumer; release takes all. */
TEST(mpmc_peek_claims)
{
	struct sn_consumer *c1, *c2;
	struct sn_producer *p;
	struct sn_channel *ch;
	__u64 m = 7, out;
	__u32 pos, pos2;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPMC, .slots = 2, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	ASSERT_EQ(0, sn_consumer_open(ch, &c1));
	ASSERT_EQ(0, sn_consumer_open(ch, &c2));
	EXPECT_EQ(0, sn_try_send(p, &m));
	EXPECT_EQ(0, sn_try_send(p, &m));
	EXPECT_EQ(-EAGAIN, sn_try_send(p, &m));
	EXPECT_EQ(2, sn_consumer_peek(c1, 2, &pos));
	EXPECT_EQ(-EAGAIN, sn_consumer_peek(c2, 1, &pos2));
	EXPECT_EQ(-EAGAIN, sn_try_send(p, &m));	/* not released yet */
	EXPECT_EQ(-EINVAL, sn_consumer_advance(c1, 1));
	EXPECT_EQ(0, sn_consumer_advance(c1, 2));
	EXPECT_EQ(0, sn_try_send(p, &m));
	EXPECT_EQ(0, sn_try_recv(c2, &out));
	EXPECT_EQ(7, out);
	EXPECT_EQ(0, sn_consumer_close(c1));
	EXPECT_EQ(0, sn_consumer_close(c2));
	EXPECT_EQ(0, sn_producer_close(p));
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* Free-running indices across 2^32: start every lane just below it. */
/*
 * Makes @ch, new and without handles (16 slots per lane), look like a ring
 * whose lanes have carried @start messages each: tails, heads and MPMC
 * release words at @start, and with @stats their published counts too
 * (sent, and SPSC/MPSC received), as the sides would have left them.
 */
static int ring_at(struct sn_channel *ch, __u32 start, int stats)
{
	struct sn_channel_info info;
	struct sn_offsets off;
	unsigned char *base;
	__u32 l, x;
	void *vb;

	if (sn_channel_layout(ch, &vb, &off) || sn_channel_info(ch, &info) ||
	    info.slots != 16)
		return -1;
	base = vb;
	for (l = 0; l < info.lanes; l++) {
		unsigned char *lane = base + off.lane0 + l * off.lane_size;

		*(__u32 *)(lane + off.prod_tail) = start;
		*(__u32 *)(base + off.cons + off.cons_lane + l * 2 * SN_PAD) =
			start;
		if (stats) {
			((struct sn_prod_stats *)(lane + off.prod_stats))->sent =
				start;
			if (info.type != SN_RING_MPMC)
				((struct sn_cons_stats *)(base + off.cons +
					off.cons_stats + l * 2 * SN_PAD))->
					received = start;
		}
		for (x = start; info.type == SN_RING_MPMC && x != start + 16; x++)
			((__u32 *)(base + off.cons +
				   off.cons_release))[l * 16 + (x & 15)] = x;
	}
	return 0;
}

TEST(index_wraparound)
{
	const __u32 start = 0xffffff00U;
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_producer *p;
		struct sn_consumer *c;
		struct sn_channel *ch;
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : 2;
		__u64 i, m, out;

		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 16, .slot_size = 8, .lanes = lanes, .flags = flags[b])));
		ASSERT_EQ(0, ring_at(ch, start, 0));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (i = 0, m = 0; i < 400; i++) {
			__u64 k = i % 3 + 1, j;

			for (j = 0; j < k; j++, m++)
				ASSERT_EQ(0, sn_try_send(p, &m));
			for (j = k; j > 0; j--) {
				ASSERT_EQ(0, sn_try_recv(c, &out));
				EXPECT_EQ(m - j, out);
			}
			EXPECT_EQ(-EAGAIN, sn_try_recv(c, &out));
		}
		EXPECT_EQ(start + (__u32)m, p->tail);
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/*
 * Statistics are derived from the tail and the head with their upper bits
 * published now and then: at rest they are exact, across both half-wraps
 * of the 32-bit indices, after any mix of single, burst, zero-copy and
 * partial operations, on every type and backend.
 */
TEST(stats_exact_at_rest)
{
	const __u32 starts[] = { 0, 0x7fffff00U, 0xffffff00U };
	unsigned int types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t, z;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) for (z = 0; z < 3; z++) {
		struct sn_producer *p[2];
		struct sn_consumer *c;
		struct sn_channel *ch;
		struct sn_channel_stats st0, st;
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : 2, l, x, start;
		__u64 sent = 0, recvd = 0, m[8] = { 0 }, i;
		unsigned int seed = 7 + t * 3 + z;
		__u32 pos;
		int r;

		start = starts[z];
		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = types[t], .slots = 16, .slot_size = 8, .lanes = lanes, .flags = flags[b])));
		ASSERT_EQ(0, ring_at(ch, start, 1));
		ASSERT_EQ(0, sn_channel_stats(ch, &st0));
		for (l = 0; l < lanes; l++)
			ASSERT_EQ(0, sn_producer_open(ch, &p[l]));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (i = 0; i < 3000; i++) {
			struct sn_producer *pp = p[rand_r(&seed) % lanes];
			unsigned int op = (unsigned int)rand_r(&seed) % 6;
			__u32 n = (__u32)rand_r(&seed) % 8 + 1;

			switch (op) {
			case 0:
				sent += sn_try_send(pp, m) == 0;
				break;
			case 1:
				r = sn_send_burst(pp, m, n);
				sent += r > 0 ? (__u64)r : 0;
				break;
			case 2:
				r = sn_producer_reserve(pp, n, &pos);
				if (r > 0) {
					x = (__u32)rand_r(&seed) % (__u32)r + 1;
					ASSERT_EQ(0, sn_producer_commit(pp, x));
					sent += x;
				}
				break;
			case 3:
				recvd += sn_try_recv(c, m) == 0;
				break;
			case 4:
				r = sn_recv_burst(c, m, n);
				recvd += r > 0 ? (__u64)r : 0;
				break;
			default:
				r = sn_consumer_peek(c, n, &pos);
				if (r > 0) {
					x = types[t] == SN_RING_MPMC ? (__u32)r :
					    (__u32)rand_r(&seed) % (__u32)r + 1;
					ASSERT_EQ(0, sn_consumer_advance(c, x));
					recvd += x;
				}
			}
		}
		/* at rest: MPMC consumers publish on flush (and close) */
		ASSERT_EQ(0, sn_consumer_flush_stats(c));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(sent, st.sent - st0.sent);
		EXPECT_EQ(recvd, st.received - st0.received);
		EXPECT_EQ(sent - recvd, st.depth);
		EXPECT_LT(0, recvd);
		EXPECT_EQ(0, sn_consumer_close(c));
		for (l = 0; l < lanes; l++)
			EXPECT_EQ(0, sn_producer_close(p[l]));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(sent, st.sent - st0.sent);
		EXPECT_EQ(recvd, st.received - st0.received);
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

static int memfd_with(const void *kpage, size_t kplen, off_t size, int seal)
{
	int fd = memfd_create("t", MFD_ALLOW_SEALING);

	if (fd < 0 || ftruncate(fd, size) ||
	    pwrite(fd, kpage, kplen, 0) != (ssize_t)kplen)
		return -1;
	if (seal)
		fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW);
	return fd;
}

TEST(attach_validates)
{
	struct sn_channel *ch, *a;
	struct sn_geometry g = { SN_RING_MPSC, 16, 8, 2, SN_GEO_FORMAT3, 0, 0 };
	struct sn_offsets off;
	struct sn_kpage kp = { .magic = SN_KPAGE_MAGIC_FORMAT3,
			       .type = SN_RING_MPSC,
			       .slot_size = 16, .slots = 8, .lanes = 2 };
	long page = sysconf(_SC_PAGESIZE);
	int pfd[2], fd;

	sn_ring_layout(&g, (__u64)page, &off);
	/* a good one */
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size, 1);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, sn_channel_attach(&a, fd, 0));
	EXPECT_EQ(SN_BACKEND_MEMFD, sn_channel_backend(a));
	EXPECT_EQ(0, sn_channel_close(a));
	close(fd);
	/* not sealed against shrinking */
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size, 0);
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, fd, 0));
	close(fd);
	/* the size disagrees with the geometry */
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size + page, 1);
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, fd, 0));
	close(fd);
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size - page, 1);
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, fd, 0));
	close(fd);
	/* bad geometry or magic */
	kp.slots = 6;
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size, 1);
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, fd, 0));
	close(fd);
	kp.slots = 8;
	kp.lanes = 100;
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size, 1);
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, fd, 0));
	close(fd);
	kp.lanes = 2;
	kp.magic = 0;
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size, 1);
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, fd, 0));
	close(fd);
	/* format 2 (an older libsn's ring): a clear "not this protocol" */
	kp.magic = SN_KPAGE_MAGIC;
	fd = memfd_with(&kp, sizeof(kp), (off_t)off.map_size, 1);
	EXPECT_EQ(-EPROTONOSUPPORT, sn_channel_attach(&a, fd, 0));
	close(fd);
	/* not a ring at all */
	ASSERT_EQ(0, pipe(pfd));
	EXPECT_EQ(-EINVAL, sn_channel_attach(&a, pfd[0], 0));
	close(pfd[0]);
	close(pfd[1]);
	EXPECT_EQ(-EBADF, sn_channel_attach(&a, -1, 0));
	/* attaching dups: the caller's fd stays its own */
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 4, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_channel_attach(&a, sn_channel_fd(ch), 0));
	EXPECT_NE(sn_channel_fd(ch), sn_channel_fd(a));
	EXPECT_EQ(0, sn_channel_close(a));
	EXPECT_LE(0, fcntl(sn_channel_fd(ch), F_GETFD));
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* A ring fd passed by SCM_RIGHTS to a process that knows nothing else. */
TEST(attach_by_scm_rights)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b;

	for (b = 0; b < nb; b++) {
		struct sn_channel_stats st;
		struct sn_channel *ch;
		struct sn_consumer *c;
		int sv[2], status;
		__u64 out;
		pid_t pid;

		ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
		ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .slots = 8, .slot_size = 8, .lanes = 4, .flags = flags[b])));
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, byte;
			struct iovec iov = { &byte, 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
					     .msg_control = cbuf,
					     .msg_controllen = sizeof(cbuf) };
			struct sn_channel *mine;
			struct sn_producer *p;
			int fd;
			__u64 i;

			if (recvmsg(sv[1], &mh, 0) != 1)
				_exit(2);
			memcpy(&fd, CMSG_DATA(CMSG_FIRSTHDR(&mh)), sizeof(fd));
			if (sn_channel_attach(&mine, fd, 0) ||
			    sn_producer_open(mine, &p))
				_exit(3);
			for (i = 0; i < 100; i++)
				if (sn_send(p, &i, 1000 * MS))
					_exit(4);
			sn_producer_close(p);
			sn_channel_close(mine);
			_exit(0);
		} else {
			char cbuf[CMSG_SPACE(sizeof(int))] = { 0 }, byte = 0;
			struct iovec iov = { &byte, 1 };
			struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1,
					     .msg_control = cbuf,
					     .msg_controllen = sizeof(cbuf) };
			struct cmsghdr *cm = CMSG_FIRSTHDR(&mh);
			int fd = sn_channel_fd(ch);
			__u64 i;

			cm->cmsg_level = SOL_SOCKET;
			cm->cmsg_type = SCM_RIGHTS;
			cm->cmsg_len = CMSG_LEN(sizeof(int));
			memcpy(CMSG_DATA(cm), &fd, sizeof(fd));
			ASSERT_EQ(1, sendmsg(sv[0], &mh, 0));
			ASSERT_EQ(0, sn_consumer_open(ch, &c));
			for (i = 0; i < 100; i++) {
				ASSERT_EQ(0, sn_recv(c, &out, 2000 * MS));
				EXPECT_EQ(i, out);
			}
			ASSERT_EQ(pid, waitpid(pid, &status, 0));
			EXPECT_EQ(0, WEXITSTATUS(status));
			ASSERT_EQ(0, sn_channel_stats(ch, &st));
			EXPECT_EQ(100, st.sent);	/* the child's line */
			EXPECT_EQ(100, st.received);
			EXPECT_EQ(0, sn_consumer_close(c));
		}
		close(sv[0]);
		close(sv[1]);
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* Capacities 1, 2 and larger; slot sizes 8 to 136 (in turn). */
static const unsigned int caps[] = { 1, 2, 16, 256 };
static const unsigned int sizes[] = { 8, 24, 64, 136 };

static void deliver_all(struct __test_metadata *_metadata, unsigned int type,
			int procs)
{
	unsigned int flags[2], np, nc, ci, k = 0;
	int nb = t_backends(flags), b;
	unsigned int maxp = type == SN_RING_SPSC ? 1 : 4;
	unsigned int maxc = type == SN_RING_MPMC ? 4 : 1;
	char why[160];

	for (b = 0; b < nb; b++)
	for (np = 1; np <= maxp; np++)
	for (nc = 1; nc <= maxc; nc++)
	for (ci = 0; ci < 4; ci++, k++) {
		struct t_run r = {
			.type = type, .slots = caps[ci],
			.slot_size = sizes[(ci + np + nc) % 4],
			.producers = np, .consumers = nc, .flags = flags[b],
			.msgs = t_scaled(type == SN_RING_MPMC ? 600 : 1500),
			.procs = procs,
		};

		if (t_deliver(&r, why, sizeof(why)))
			ASSERT_TRUE(0) TH_LOG("%s type %u %uP/%uC slots %u size %u: %s",
				sn_backend_name(flags[b] == SN_BACKEND_KERNEL ?
						SN_BACKEND_KERNEL :
						SN_BACKEND_MEMFD),
				type, np, nc, r.slots, r.slot_size, why);
	}
}

/*
 * The delivery matrix forks up to eight processes per case: under an
 * emulated CPU and a debug kernel that takes minutes, not the harness's
 * default 30 s, so these run in a fixture with a longer timeout.
 */
FIXTURE(deliver) {};
FIXTURE_SETUP(deliver) {}
FIXTURE_TEARDOWN(deliver) {}

TEST_F_TIMEOUT(deliver, spsc_threads, 600) { deliver_all(_metadata, SN_RING_SPSC, 0); }
TEST_F_TIMEOUT(deliver, spsc_procs, 600) { deliver_all(_metadata, SN_RING_SPSC, 1); }
TEST_F_TIMEOUT(deliver, mpsc_threads, 600) { deliver_all(_metadata, SN_RING_MPSC, 0); }
TEST_F_TIMEOUT(deliver, mpsc_procs, 600) { deliver_all(_metadata, SN_RING_MPSC, 1); }
TEST_F_TIMEOUT(deliver, mpmc_threads, 600) { deliver_all(_metadata, SN_RING_MPMC, 0); }
TEST_F_TIMEOUT(deliver, mpmc_procs, 600) { deliver_all(_metadata, SN_RING_MPMC, 1); }

TEST_HARNESS_MAIN
