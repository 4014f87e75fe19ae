// SPDX-License-Identifier: MIT
/*
 * Buffers (the uapi header's "Buffers"): large messages passed by reference
 * to a buffer of the producer's lane.
 *
 * sn.ko through the raw ABI (skipped without /dev/sn): what SN_IOC_CREATE
 * accepts and charges, who may map the buffers, and what the kernel returns
 * when a consumer fd goes, garbage included. libsn on both backends (memfd
 * everywhere, the kernel's too where /dev/sn exists): round trips through
 * every receive call, exhaustion and backpressure, bad arguments, a
 * producer that scribbles buffer records, consumers and producers killed
 * while they hold buffers, and a stress run of mixed records and buffers
 * (SN_TEST_SCALE=N runs N% of its messages).
 */
#include <errno.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_common.h"
#include "raw_ring.h"

#include "kselftest_harness.h"

/* The kernel tests need the module; the host has none. */
#define NEED_MODULE()							\
	do {								\
		if (access(SN_DEVICE_PATH, F_OK))			\
			SKIP(return, "no " SN_DEVICE_PATH		\
			     ": the sn module is not loaded");		\
	} while (0)

static const __u32 types[3] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };

/* SPSC rings have one lane; two for the others, so lanes can differ. */
static __u32 lanes_of(__u32 type)
{
	return type == SN_RING_SPSC ? 1 : 2;
}

/* ---- sn.ko through the raw ABI ---- */

/* A varlen ring of 64 slots of 64 bytes (slot_size 56 and its header). */
static struct sn_create bparams(__u32 type, __u32 lanes, __u32 bufs,
				__u32 buf_size)
{
	struct sn_create p = params(type, 56, 64, lanes);

	p.flags = SN_CREATE_FORMAT3 | SN_CREATE_VARLEN;
	p.bufs = bufs;
	p.buf_size = buf_size;
	return p;
}

/* What sn_ring_layout() says a ring created with @p looks like. */
static void layout_of(const struct sn_create *p, struct sn_offsets *off)
{
	struct sn_geometry g = {
		p->type, p->slot_size, p->slots, p->lanes,
		SN_GEO_FORMAT3 | SN_GEO_VARLEN, p->bufs, p->buf_size,
	};

	sn_ring_layout(&g, (__u64)sysconf(_SC_PAGESIZE), off);
}

/* Lane @lane's ret[@j] in a mapping of the consumer region at @cons. */
static _Atomic __u64 *ret_at(char *cons, const struct sn_info *i, __u32 lane,
			     __u32 j)
{
	return (_Atomic __u64 *)(cons + i->off.cons_bufs +
				 ((__u64)lane * i->bufs + j) * 8);
}

static __u64 held(__u32 pos, __u32 holder)
{
	return sn_buf_tag(pos) | (__u64)holder << 32;
}

/* The kernel's count of buffers it returned (kpage peers.bufs_reclaimed). */
static __u64 raw_reclaimed(struct view *v)
{
	return atomic_load((_Atomic __u64 *)(v->base + v->i.off.kpage +
		offsetof(struct sn_kpage, peers.bufs_reclaimed)));
}

/* Buffer geometries that sn.ko and libsn both refuse with EINVAL. */
static const struct {
	const char *what;
	int fixed;		/* without varlen records */
	__u32 bufs, buf_size;
} bad_geo[] = {
	{ "bufs without VARLEN", 1, 4, 4096 },
	{ "bufs above SN_MAX_BUFS", 0, SN_MAX_BUFS + 1, 64 },
	{ "buf_size not a multiple of 64", 0, 4, 100 },
	{ "buf_size below 64", 0, 4, 32 },
	{ "buf_size 0 with bufs", 0, 4, 0 },
	{ "buf_size above SN_MAX_BUF_SIZE", 0, 1, SN_MAX_BUF_SIZE + 64 },
	{ "buf_size without bufs", 0, 0, 64 },
	/* 8 GiB: above max_ring_mb's default and SN_CHANNEL_MAX_BYTES */
	{ "too large", 0, SN_MAX_BUFS, SN_MAX_BUF_SIZE },
};

TEST(kernel_create_checks)
{
	char old[32];
	size_t k;
	int t;

	NEED_MODULE();
	for (k = 0; k < ARRAY_SIZE(bad_geo); k++) {
		struct sn_create p = bparams(SN_RING_MPSC, 2, bad_geo[k].bufs,
					     bad_geo[k].buf_size);

		if (bad_geo[k].fixed)
			p.flags = SN_CREATE_FORMAT3;
		EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("%s", bad_geo[k].what);
	}

	/* every type: what INFO and the kpage say, where things sit */
	for (t = 0; t < 3; t++) {
		struct sn_create p = bparams(types[t], lanes_of(types[t]), 5,
					     192);
		struct sn_offsets want;
		struct sn_kpage *kp;
		struct sn_info i;
		int fd = create(&p);

		ASSERT_LE(0, fd) TH_LOG("type %u", types[t]);
		ASSERT_EQ(0, info(fd, &i));
		EXPECT_EQ(5, i.bufs);
		EXPECT_EQ(192, i.buf_size);
		EXPECT_EQ(SN_GEO_FORMAT3 | SN_GEO_VARLEN, i.geo_flags);
		EXPECT_TRUE(i.features & SN_FEAT_BUFS);
		layout_of(&p, &want);
		EXPECT_EQ(0, memcmp(&want, &i.off, sizeof(want)))
			TH_LOG("type %u: offsets differ from sn_ring_layout()",
			       types[t]);
		/* the buffers follow the slots, sent[] in the lane page */
		EXPECT_LE(i.off.slots + 64ULL * i.off.stride, i.off.bufs);
		EXPECT_EQ(i.off.lane_size, i.off.bufs +
			  sn_align_up(5 * 192, sysconf(_SC_PAGESIZE)));
		kp = map(fd, 0, sysconf(_SC_PAGESIZE), PROT_READ);
		ASSERT_NE(MAP_FAILED, kp);
		EXPECT_EQ(5, kp->bufs);
		EXPECT_EQ(192, kp->buf_size);
		munmap(kp, sysconf(_SC_PAGESIZE));
		close(fd);
	}

	/*
	 * max_ring_mb counts the buffers: at 1 MiB, 64 slots of 64 bytes and
	 * 15 buffers of 64 KiB fit, 16 do not (a page of the creator's
	 * memory, not 16 MiB of it, decides).
	 */
	get_param("max_ring_mb", old, sizeof(old));
	if (!old[0] || set_param("max_ring_mb", "1"))
		SKIP(return, "cannot set max_ring_mb (not root?)");
	{
		struct sn_create p = bparams(SN_RING_SPSC, 1, 15, 64 << 10);
		int fd = create(&p);

		EXPECT_LE(0, fd) TH_LOG("15 x 64 KiB within 1 MiB: %d", fd);
		close(fd);
		p.bufs = 16;
		EXPECT_EQ(-EINVAL, create(&p));
		/* and the largest buffers, alone over the limit */
		p = bparams(SN_RING_SPSC, 1, 1, SN_MAX_BUF_SIZE);
		EXPECT_EQ(-EINVAL, create(&p));
	}
	EXPECT_EQ(0, set_param("max_ring_mb", old));
}

/*
 * Under 32 KiB of RLIMIT_MEMLOCK (8 pages): a 4-page ring fits, the same
 * ring with 16 pages of buffers does not: the charge includes them.
 */
static int memlock_child(void *arg)
{
	long page = sysconf(_SC_PAGESIZE);
	struct rlimit rl = { 8 * page, 8 * page };
	struct sn_create p = bparams(SN_RING_MPSC, 1, 0, 0);
	struct sn_offsets off;
	int fd;

	(void)arg;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 10;
	layout_of(&p, &off);
	if (off.map_size > (__u64)4 * page)
		return 11;
	fd = create(&p);
	if (fd < 0)
		return 12;
	close(fd);
	p = bparams(SN_RING_MPSC, 1, 16, page);
	if (create(&p) != -ENOMEM)
		return 13;
	/* one buffer more still fits: the refusal was the buffers' size */
	p.bufs = 1;
	fd = create(&p);
	if (fd < 0)
		return 14;
	close(fd);
	return 0;
}

TEST(kernel_memlock_counts_buffers)
{
	NEED_MODULE();
	EXPECT_EQ(0, as_nobody(memlock_child, NULL));
}

/*
 * Buffers are lane pages: the lane's producer fd maps them writable, no
 * other producer fd may map them at all, consumer fds read-only; ret[] is
 * in the consumer region, which producers read only.
 */
TEST(kernel_page_rights)
{
	struct sn_create p = bparams(SN_RING_MPSC, 2, 4, 4096);
	long page = sysconf(_SC_PAGESIZE);
	struct sn_info i;
	__u64 lane0, lane1, blen;
	char *pl, *cb, *m;
	int fd, prod, cons;

	NEED_MODULE();
	fd = create(&p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &i));
	prod = narrow(fd, SN_ROLE_PRODUCER, 0);
	ASSERT_LE(0, prod);
	cons = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, cons);
	lane0 = i.off.lane0;
	lane1 = i.off.lane0 + i.off.lane_size;
	blen = i.off.lane_size - i.off.bufs;

	/* its own lane, buffers included, writable in one mapping */
	pl = map(prod, lane0, i.off.lane_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, pl);
	memset(pl + i.off.bufs + 3 * 4096, 0x5a, 4096);
	/* the other lane's buffers: neither written nor read */
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(prod, lane1 + i.off.bufs, blen,
				  PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(prod, lane1 + i.off.bufs, blen, PROT_READ));
	EXPECT_EQ(EACCES, errno);
	/* ret[] is the consumers' */
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(prod, i.off.cons, i.off.cons_size,
				  PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	m = map(prod, i.off.cons, i.off.cons_size, PROT_READ);
	EXPECT_NE(MAP_FAILED, m);
	if (m != MAP_FAILED)
		munmap(m, i.off.cons_size);

	/* a consumer reads every lane's buffers and writes none */
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(cons, lane0 + i.off.bufs, blen,
				  PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	cb = map(cons, lane0 + i.off.bufs, blen, PROT_READ);
	ASSERT_NE(MAP_FAILED, cb);
	EXPECT_EQ(0x5a, cb[3 * 4096]);
	EXPECT_EQ(0x5a, cb[4 * 4096 - 1]);
	EXPECT_EQ(0, cb[0]);
	/* read-only for good: mprotect cannot lift it */
	EXPECT_EQ(-1, mprotect(cb, page, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	munmap(cb, blen);
	m = map(cons, lane1 + i.off.bufs, blen, PROT_READ);
	EXPECT_NE(MAP_FAILED, m);
	if (m != MAP_FAILED)
		munmap(m, blen);
	/* and writes ret[]: the consumer region is its own */
	m = map(cons, i.off.cons, i.off.cons_size, PROT_READ | PROT_WRITE);
	EXPECT_NE(MAP_FAILED, m);
	if (m != MAP_FAILED) {
		*ret_at(m, &i, 1, 3) = held(7, SN_BUF_HELD);
		munmap(m, i.off.cons_size);
	}
	munmap(pl, i.off.lane_size);
	close(prod);
	close(cons);
	close(fd);
}

/*
 * A ret word a test writes, and when the kernel must return it: at the
 * close of the @back'th consumer fd (0: never).
 */
struct rword {
	__u32 lane, j;
	__u64 v;
	int back;
};

/*
 * The first of @n words that is not as it must be once @gone consumer
 * fds went (returned: the state cleared, the tag kept), or -1.
 */
static int words_differ(struct view *v, const struct rword *w, size_t n,
			int gone)
{
	size_t k;

	for (k = 0; k < n; k++) {
		__u64 now = *ret_at(v->base + v->i.off.cons, &v->i, w[k].lane,
				    w[k].j);
		int back = w[k].back && w[k].back <= gone;

		if (now != (back ? w[k].v & 0xffffffffULL : w[k].v)) {
			printf("# lane %u buffer %u: %#llx\n", w[k].lane,
			       w[k].j, (unsigned long long)now);
			return (int)k;
		}
	}
	return -1;
}

/*
 * The SPSC/MPSC consumer fd goes: the kernel returns exactly the held
 * buffers whose record its lane's head passed (the tag says the record's
 * position), wrapping positions included, keeps their tags, and counts
 * them; buffers held for records the head has not passed stay held (their
 * record comes again), returned ones and unused ones are left alone.
 */
TEST(kernel_reclaim_single_consumer)
{
	const __u32 h0 = 1000, h1 = 3;
	struct rword w[] = {
		{ 0, 0, held(h0 - 1, SN_BUF_HELD), 1 },
		{ 0, 1, held(h0 - 50, SN_BUF_HELD), 1 },
		{ 0, 2, held(h0, SN_BUF_HELD), 0 },
		{ 0, 3, held(h0 + 5, SN_BUF_HELD), 0 },
		{ 0, 4, held(h0 - 3, SN_BUF_RETURNED), 0 },
		{ 1, 0, held(0xfffffffdU, SN_BUF_HELD), 1 },	/* wrapped */
		{ 1, 1, held(h1, SN_BUF_HELD), 0 },
		{ 1, 2, held(h1 - 1, SN_BUF_HELD), 1 },
	};
	int t;

	NEED_MODULE();
	for (t = 0; t < 2; t++) {
		__u32 lanes = lanes_of(types[t]), lane, j;
		struct sn_create p = bparams(types[t], lanes, 8, 64);
		__u64 want_back = 0;
		struct sn_info ci;
		struct view v;
		size_t k;
		char *cm;
		int fd, cfd;

		fd = create(&p);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, view_open(&v, fd));
		cfd = narrow(fd, SN_ROLE_CONSUMER, 0);
		ASSERT_LE(0, cfd);
		ASSERT_EQ(0, info(cfd, &ci));
		/* as the consumer writes them: through its own fd */
		cm = map(cfd, ci.off.cons, ci.off.cons_size,
			 PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, cm);
		*(_Atomic __u32 *)(cm + ci.off.cons_lane) = h0;
		if (lanes > 1)
			*(_Atomic __u32 *)(cm + ci.off.cons_lane +
					   2 * SN_PAD) = h1;
		for (k = 0; k < ARRAY_SIZE(w); k++) {
			if (w[k].lane >= lanes)
				continue;
			*ret_at(cm, &ci, w[k].lane, w[k].j) = w[k].v;
			want_back += w[k].back;
		}
		/* the fd goes with its last reference, the mapping's too */
		munmap(cm, ci.off.cons_size);
		close(cfd);

		EXPECT_EQ(-1, words_differ(&v, w, lanes > 1 ? ARRAY_SIZE(w) :
					   5, 1))
			TH_LOG("type %u", types[t]);
		for (lane = 0; lane < lanes; lane++)
			for (j = 5; j < 8; j++)
				EXPECT_EQ(0, *ret_at(v.base + v.i.off.cons,
						     &v.i, lane, j));
		EXPECT_EQ(want_back, raw_reclaimed(&v));
		/* another consumer that goes holding nothing: no more */
		cfd = narrow(fd, SN_ROLE_CONSUMER, 0);
		ASSERT_LE(0, cfd);
		close(cfd);
		EXPECT_EQ(want_back, raw_reclaimed(&v));
		munmap(v.base, v.i.off.map_size);
		close(fd);
	}
}

/*
 * MPMC: a consumer fd that goes returns what its claim record's number
 * holds, on every lane, and nothing another consumer holds.
 */
TEST(kernel_reclaim_mpmc)
{
	struct sn_create p = bparams(SN_RING_MPMC, 2, 8, 64);
	struct sn_info ia, ib;
	struct view v;
	__u32 ha, hb;
	char *cm;
	int fd, a, b;

	NEED_MODULE();
	fd = create(&p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	a = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, a);
	b = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, b);
	ASSERT_EQ(0, info(a, &ia));
	ASSERT_EQ(0, info(b, &ib));
	ASSERT_GT(SN_MAX_CLAIMS, ia.claim);
	ASSERT_GT(SN_MAX_CLAIMS, ib.claim);
	ASSERT_NE(ia.claim, ib.claim);
	ha = SN_BUF_HELD + ia.claim;
	hb = SN_BUF_HELD + ib.claim;
	{
		/* a claim number nobody has: stays held whoever goes */
		__u32 hn = SN_BUF_HELD;

		while (hn == ha || hn == hb)
			hn++;
		struct rword w[] = {
			{ 0, 0, held(5, ha), 1 },
			{ 0, 1, held(6, hb), 2 },
			{ 0, 2, held(100000, ha), 1 },	/* not yet consumed */
			{ 0, 3, held(7, SN_BUF_RETURNED), 0 },
			{ 0, 4, held(8, hn), 0 },
			{ 1, 0, held(1, ha), 1 },
			{ 1, 7, held(2, hb), 2 },
		};
		size_t k;

		cm = map(a, ia.off.cons, ia.off.cons_size,
			 PROT_READ | PROT_WRITE);
		ASSERT_NE(MAP_FAILED, cm);
		for (k = 0; k < ARRAY_SIZE(w); k++)
			*ret_at(cm, &ia, w[k].lane, w[k].j) = w[k].v;
		munmap(cm, ia.off.cons_size);
		close(a);
		EXPECT_EQ(-1, words_differ(&v, w, ARRAY_SIZE(w), 1))
			TH_LOG("after a's close");
		EXPECT_EQ(3, raw_reclaimed(&v));
		close(b);
		EXPECT_EQ(-1, words_differ(&v, w, ARRAY_SIZE(w), 2))
			TH_LOG("after b's close");
		EXPECT_EQ(5, raw_reclaimed(&v));
	}
	munmap(v.base, v.i.off.map_size);
	close(fd);
}

/*
 * Garbage in every ret word and head of the largest arena (64 lanes of
 * SN_MAX_BUFS buffers): consumer fds come and go, the kernel changes only
 * what sn_buf_orphaned() says, only by clearing the state, and counts
 * exactly that; nothing crashes (the guest's kernel log stays clean).
 */
TEST(kernel_reclaim_garbage)
{
	__u64 seed = 0x9e3779b97f4a7c15ULL;
	int t;

	NEED_MODULE();
	for (t = 0; t < 3; t++) {
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : SN_MAX_LANES;
		struct sn_create p = bparams(types[t], lanes, SN_MAX_BUFS, 64);
		__u64 n = (__u64)lanes * SN_MAX_BUFS, k, *before;
		__u32 heads[SN_MAX_LANES];
		struct view v;
		int fd, round;

		fd = create(&p);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, view_open(&v, fd));
		before = calloc(n, sizeof(*before));
		ASSERT_NE(NULL, before);
		for (round = 0; round < 12; round++) {
			__u64 r0 = raw_reclaimed(&v), back = 0;
			struct sn_info ci;
			__u32 claim, lane;
			int cfd = narrow(fd, SN_ROLE_CONSUMER, 0);

			ASSERT_LE(0, cfd);
			ASSERT_EQ(0, info(cfd, &ci));
			claim = ci.claim;
			for (lane = 0; lane < lanes; lane++) {
				heads[lane] = (__u32)xorshift(&seed);
				if (types[t] != SN_RING_MPMC)
					atomic_store(head_of(&v, lane),
						     heads[lane]);
			}
			/* raw noise, and words shaped like real ones so
			 * that some are returned */
			for (k = 0; k < n; k++) {
				__u64 x = xorshift(&seed);

				switch (x & 3) {
				case 0:
					break;
				case 1:
					x = (__u32)(x >> 8) |
					    (__u64)(SN_BUF_HELD + claim) << 32;
					break;
				case 2:
					x = held(heads[k / SN_MAX_BUFS] -
						 (__u32)(x >> 40) % 64 + 32,
						 SN_BUF_HELD);
					break;
				default:
					x = (__u32)(x >> 8);
				}
				before[k] = x;
				ret_at(v.base + v.i.off.cons, &v.i, 0, 0)[k] =
					x;
			}
			close(cfd);
			for (k = 0; k < n; k++) {
				__u64 now = ret_at(v.base + v.i.off.cons, &v.i,
						   0, 0)[k];
				int orph = sn_buf_orphaned(before[k],
					types[t] == SN_RING_MPMC ? claim :
					SN_CLAIM_NONE, heads[k / SN_MAX_BUFS]);

				back += orph;
				if (now != (orph ? before[k] & 0xffffffffULL :
					    before[k])) {
					EXPECT_EQ(before[k], now)
						TH_LOG("type %u round %d word %llu",
						       types[t], round,
						       (unsigned long long)k);
					break;
				}
			}
			EXPECT_EQ(back, raw_reclaimed(&v) - r0)
				TH_LOG("type %u round %d", types[t], round);
			EXPECT_LT(0, back);
		}
		free(before);
		munmap(v.base, v.i.off.map_size);
		close(fd);
	}
}

/* ---- libsn, both backends ---- */

/* A varlen channel of @slots slots of 64 bytes and @bufs x @buf_size. */
static int buf_channel(struct sn_channel **ch, __u32 type, __u32 slots,
		       __u32 bufs, __u32 buf_size, unsigned int backend)
{
	struct sn_channel_opts o = {
		.size = sizeof(o), .type = type, .slots = slots,
		.slot_size = 56, .lanes = lanes_of(type),
		.flags = backend | SN_CHANNEL_VARLEN,
		.bufs = bufs, .buf_size = buf_size,
	};

	return sn_channel_create(ch, &o);
}

/* Where buffer @j of @lane is in the channel's mapping. */
static const unsigned char *buf_addr(const struct sn_channel *ch, __u32 lane,
				     __u32 j)
{
	struct sn_channel_info ci;
	struct sn_offsets off;
	void *base;

	if (sn_channel_layout(ch, &base, &off) || sn_channel_info(ch, &ci))
		return NULL;
	return (const unsigned char *)base + off.lane0 + lane * off.lane_size +
	       off.bufs + (__u64)j * ci.buf_size;
}

static const struct sn_kpage *kpage_of(const struct sn_channel *ch)
{
	struct sn_offsets off;
	void *base;

	if (sn_channel_layout(ch, &base, &off))
		return NULL;
	return (const struct sn_kpage *)((char *)base + off.kpage);
}

/*
 * Buffers a departed consumer held that were returned (sn.ko or the memfd
 * reaper): in the kpage; struct sn_channel_stats has no field for it.
 */
static __u64 reclaimed(const struct sn_channel *ch)
{
	return __atomic_load_n(&kpage_of(ch)->peers.bufs_reclaimed,
			       __ATOMIC_RELAXED);
}

/* Closes the handles, then the channel; 0 when every close said 0. */
static int close_all(struct sn_producer *p, struct sn_consumer *c,
		     struct sn_channel *ch)
{
	int a = sn_producer_close(p), b = sn_consumer_close(c);

	return a | b | sn_channel_close(ch);
}

/* Gets a buffer and sends a t_fill()ed message of @len bytes in it. */
static int send_filled(struct sn_producer *p, __u32 len, __u64 seq,
		       __u32 *idx)
{
	void *buf;
	__u32 j;
	int r = sn_buf_get(p, &buf, &j);

	if (r)
		return r;
	t_fill(buf, len, (__u32)sn_producer_lane(p), seq);
	if (idx)
		*idx = j;
	return sn_buf_send(p, j, len);
}

/* 0 when @m holds the t_fill()ed message @seq of @lane, @len bytes. */
static int intact(const void *m, __u32 len, __u32 want_len, __u32 lane,
		  __u64 seq)
{
	__u32 prod;
	__u64 s;

	return len == want_len && !t_check(m, len, &prod, &s) &&
	       prod == lane && s == seq ? 0 : -1;
}

static const char *bname(unsigned int backend)
{
	return sn_backend_name(backend == SN_BACKEND_MEMFD ?
			       SN_BACKEND_MEMFD : SN_BACKEND_KERNEL);
}

/*
 * Every type, both backends: four buffers round after round (so each is
 * reused), received by sn_recv_buf() (all held at once, put back out of
 * order: each put frees exactly that buffer), by sn_consumer_peek_len() (in place,
 * in the buffer) and by sn_try_recv_len() (a copy; -EMSGSIZE keeps it);
 * small records between them stay records (-ENOMSG for sn_recv_buf()).
 */
TEST(round_trip)
{
	const __u32 lens[4] = { 8, 4096, 100, 4095 };
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		unsigned char copy[4096], small[24];
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		struct sn_buf hb[4], none;
		__u64 seq = 0;
		__u32 idx, len, lane, i;
		const void *msg;
		void *buf;
		int round;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 16, 4, 4096, flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		lane = (__u32)sn_producer_lane(p);
		for (round = 0; round < 9; round++) {
			/* a small record first: not a buffer */
			t_fill(small, sizeof(small), lane, 1000 + round);
			ASSERT_EQ(0, sn_try_send_len(p, small, sizeof(small)));
			for (i = 0; i < 4; i++) {
				ASSERT_EQ(0, sn_buf_get(p, &buf, &idx));
				/* in the ring: zero copy */
				EXPECT_EQ(buf_addr(ch, lane, idx), buf);
				t_fill(buf, lens[i], lane, seq + i);
				ASSERT_EQ(0, sn_buf_send(p, idx, lens[i]));
			}
			/* all four in the ring */
			EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf, &idx));
			EXPECT_EQ(-ENOMSG, sn_recv_buf(c, &hb[0]));
			EXPECT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy),
						     &len));
			EXPECT_EQ(0, intact(copy, len, sizeof(small), lane,
					    1000 + round));
			switch (round % 3) {
			case 0:
				for (i = 0; i < 4; i++) {
					ASSERT_EQ(0, sn_recv_buf(c, &hb[i]));
					EXPECT_EQ(lane, hb[i].lane);
					EXPECT_EQ(buf_addr(ch, lane, hb[i].idx),
						  hb[i].data);
					EXPECT_EQ(0, intact(hb[i].data,
							    hb[i].len, lens[i],
							    lane, seq + i));
				}
				EXPECT_EQ(-EAGAIN, sn_recv_buf(c, &none));
				/* every record is gone, every buffer held */
				EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf, &idx));
				/* each put frees that one buffer, which the
				 * producer keeps so the next is the only one */
				for (i = 0; i < 4; i++) {
					__u32 k = (i * 3 + 2) % 4;

					EXPECT_EQ(0, sn_buf_put(c, &hb[k]));
					ASSERT_EQ(0, sn_buf_get(p, &buf, &idx));
					EXPECT_EQ(hb[k].idx, idx);
					EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf,
								      &idx));
				}
				for (i = 0; i < 4; i++)
					EXPECT_EQ(0, sn_buf_drop(p, hb[i].idx));
				break;
			case 1:
				for (i = 0; i < 4; i++) {
					ASSERT_EQ(0, sn_consumer_peek_len(c, &msg,
								 &len));
					EXPECT_EQ(0, intact(msg, len, lens[i],
							    lane, seq + i));
					EXPECT_LE(buf_addr(ch, lane, 0),
						  (const unsigned char *)msg);
					EXPECT_EQ(0, sn_consumer_advance(c, 1));
				}
				break;
			default:
				for (i = 0; i < 4; i++) {
					/* too small: it stays, its length
					 * said */
					EXPECT_EQ(-EMSGSIZE,
						  sn_try_recv_len(c, copy, 7,
								  &len));
					EXPECT_EQ(lens[i], len);
					ASSERT_EQ(0, sn_try_recv_len(c, copy,
						sizeof(copy), &len));
					EXPECT_EQ(0, intact(copy, len, lens[i],
							    lane, seq + i));
				}
			}
			EXPECT_EQ(-EAGAIN, sn_try_recv_len(c, copy,
							   sizeof(copy), &len));
			/* taken one way or another: all four free again */
			for (i = 0; i < 4; i++)
				EXPECT_EQ(0, sn_buf_get(p, &buf, &hb[i].idx))
					TH_LOG("%s type %u round %d buffer %u",
					       bname(flags[b]), types[t], round,
					       i);
			for (i = 0; i < 4; i++)
				EXPECT_EQ(0, sn_buf_drop(p, hb[i].idx));
			seq += 4;
		}
		EXPECT_EQ(0, sn_consumer_flush_stats(c));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(9 * 5, st.sent);
		EXPECT_EQ(9 * 5, st.received);
		EXPECT_EQ(0, st.depth);
		EXPECT_EQ(0, st.bad_records);
		EXPECT_EQ(0, reclaimed(ch));
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/*
 * Every buffer in flight or held: sn_buf_get() says -EAGAIN and the wait
 * times out, nothing is lost; a put, a copy or a drop brings a buffer back.
 */
TEST(exhaustion)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		unsigned char copy[256];
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		struct sn_buf x, y;
		__u32 i0, i1, idx, len, lane;
		void *buf;
		__u64 t0;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 8, 2, 256, flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		lane = (__u32)sn_producer_lane(p);
		ASSERT_EQ(0, sn_buf_get(p, &buf, &i0));
		ASSERT_EQ(0, sn_buf_get(p, &buf, &i1));
		EXPECT_NE(i0, i1);
		/* both got, none sent */
		EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf, &idx));
		EXPECT_EQ(-EAGAIN, sn_buf_get_wait(p, &buf, &idx, SN_NO_WAIT));
		t0 = t_now();
		EXPECT_EQ(-ETIMEDOUT, sn_buf_get_wait(p, &buf, &idx, 30 * MS));
		EXPECT_LE(30 * MS, t_now() - t0);
		/* a drop gives it back, once */
		EXPECT_EQ(0, sn_buf_drop(p, i0));
		EXPECT_EQ(-EINVAL, sn_buf_drop(p, i0));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, i0, 8));
		ASSERT_EQ(0, sn_buf_get(p, &buf, &idx));
		EXPECT_EQ(i0, idx);

		/* both sent: in the ring, still not the producer's */
		t_fill(buf, 256, lane, 0);
		EXPECT_EQ(-EINVAL, sn_buf_send(p, i0, 257));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, 2, 8));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, ~0U, 8));
		ASSERT_EQ(0, sn_buf_send(p, i0, 256));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, i0, 256));
		t_fill((void *)buf_addr(ch, lane, i1), 64, lane, 1);
		ASSERT_EQ(0, sn_buf_send(p, i1, 64));
		EXPECT_EQ(-ETIMEDOUT, sn_buf_get_wait(p, &buf, &idx, 20 * MS));
		/* one held, one copied out: only the copied one is free */
		ASSERT_EQ(0, sn_recv_buf(c, &x));
		EXPECT_EQ(0, intact(x.data, x.len, 256, lane, 0));
		EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf, &idx));
		ASSERT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy), &len));
		EXPECT_EQ(0, intact(copy, len, 64, lane, 1));
		ASSERT_EQ(0, sn_buf_get(p, &buf, &idx));
		EXPECT_EQ(i1, idx);
		EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf, &idx));
		/* a put of what is not ours, or not held any more: -EINVAL */
		y = x;
		y.tag++;
		EXPECT_EQ(-EINVAL, sn_buf_put(c, &y));
		y = x;
		y.idx = 2;
		EXPECT_EQ(-EINVAL, sn_buf_put(c, &y));
		y = x;
		y.lane = SN_MAX_LANES;
		EXPECT_EQ(-EINVAL, sn_buf_put(c, &y));
		y = x;
		y.idx = i1;	/* the producer's own */
		EXPECT_EQ(-EINVAL, sn_buf_put(c, &y));
		EXPECT_EQ(0, sn_buf_put(c, &x));
		EXPECT_EQ(-EINVAL, sn_buf_put(c, &x));	/* twice */
		ASSERT_EQ(0, sn_buf_get(p, &buf, &idx));
		EXPECT_EQ(i0, idx);
		EXPECT_EQ(0, sn_buf_drop(p, i0));
		EXPECT_EQ(0, sn_buf_drop(p, i1));
		EXPECT_EQ(-EAGAIN, sn_try_recv_len(c, copy, sizeof(copy),
						   &len));
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/*
 * No room in the ring: sn_buf_send() says -EAGAIN and the buffer stays the
 * producer's, to be sent once there is room; an outstanding reservation
 * refuses it too. When every consumer has gone the wait ends with -EPIPE.
 */
TEST(send_without_room)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		unsigned char copy[512], small[8] = { 0 };
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		__u32 idx, idx2, len, lane, n = 0, k;
		struct sn_buf x;
		void *buf, *r;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 8, 2, 512, flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		lane = (__u32)sn_producer_lane(p);
		while (sn_try_send_len(p, small, sizeof(small)) == 0)
			n++;
		ASSERT_LT(0, n);
		ASSERT_EQ(0, sn_buf_get(p, &buf, &idx));
		t_fill(buf, 512, lane, 7);
		EXPECT_EQ(-EAGAIN, sn_buf_send(p, idx, 512));
		EXPECT_EQ(-EAGAIN, sn_buf_send(p, idx, 512));
		/* one record out makes room for it */
		ASSERT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy), &len));
		EXPECT_EQ(0, sn_buf_send(p, idx, 512));
		/* a reservation outstanding: not now */
		for (k = 1; k < n; k++)
			ASSERT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy),
						     &len));
		ASSERT_EQ(0, sn_buf_get(p, &buf, &idx2));
		t_fill(buf, 8, lane, 8);
		ASSERT_EQ(0, sn_producer_reserve_len(p, 8, &r));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, idx2, 8));
		memcpy(r, small, 8);
		ASSERT_EQ(0, sn_producer_commit_len(p, 8));
		EXPECT_EQ(0, sn_buf_send(p, idx2, 8));
		/* in order, nothing lost */
		ASSERT_EQ(0, sn_recv_buf(c, &x));
		EXPECT_EQ(0, intact(x.data, x.len, 512, lane, 7));
		EXPECT_EQ(0, sn_buf_put(c, &x));
		ASSERT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy), &len));
		EXPECT_EQ(8, len);
		ASSERT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy), &len));
		EXPECT_EQ(0, intact(copy, len, 8, lane, 8));
		EXPECT_EQ(-EAGAIN, sn_try_recv_len(c, copy, sizeof(copy),
						   &len));
		/* both in the ring, then no consumer: the wait ends */
		ASSERT_EQ(0, send_filled(p, 16, 9, NULL));
		ASSERT_EQ(0, send_filled(p, 16, 10, NULL));
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(-EPIPE, sn_buf_get_wait(p, &buf, &idx, 5000 * MS));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* The calls' contract on what is not a buffer, or no buffers at all. */
TEST(bad_arguments)
{
	struct sn_channel_opts o = {
		.size = sizeof(o), .type = SN_RING_MPSC, .slots = 16,
		.slot_size = 56, .lanes = 2,
		.flags = SN_BACKEND_MEMFD | SN_CHANNEL_VARLEN,
		.bufs = 4, .buf_size = 128,
	};
	unsigned int flags[2];
	int nb = t_backends(flags), b;
	struct sn_channel *ch;
	size_t k;

	for (k = 0; k < ARRAY_SIZE(bad_geo); k++) {
		struct sn_channel_opts q = o;

		if (bad_geo[k].fixed)
			q.flags = SN_BACKEND_MEMFD;
		q.bufs = bad_geo[k].bufs;
		q.buf_size = bad_geo[k].buf_size;
		EXPECT_EQ(-EINVAL, sn_channel_create(&ch, &q))
			TH_LOG("%s", bad_geo[k].what);
	}
	o.size = sizeof(o) - 4;
	EXPECT_EQ(-EINVAL, sn_channel_create(&ch, &o));
	o.size = sizeof(o);
	EXPECT_EQ(-EINVAL, sn_channel_create(&ch, NULL));
	EXPECT_EQ(-EINVAL, sn_channel_create(NULL, &o));

	for (b = 0; b < nb; b++) {
		struct sn_channel_info ci;
		struct sn_consumer *c;
		struct sn_producer *p;
		const void *msg;
		struct sn_buf x;
		__u32 idx, len;
		void *buf;

		/* a varlen channel without buffers */
		ASSERT_EQ(0, buf_channel(&ch, SN_RING_MPSC, 16, 0, 0,
					 flags[b]));
		ASSERT_EQ(0, sn_channel_info(ch, &ci));
		EXPECT_EQ(0, ci.bufs);
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		EXPECT_EQ(-EINVAL, sn_buf_get(p, &buf, &idx));
		EXPECT_EQ(-EINVAL, sn_buf_get_wait(p, &buf, &idx, 10 * MS));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, 0, 8));
		EXPECT_EQ(-EINVAL, sn_buf_drop(p, 0));
		EXPECT_EQ(-EINVAL, sn_recv_buf(c, &x));
		memset(&x, 0, sizeof(x));
		EXPECT_EQ(-EINVAL, sn_buf_put(c, &x));
		EXPECT_EQ(0, close_all(p, c, ch));

		o.flags = flags[b] | SN_CHANNEL_VARLEN;
		ASSERT_EQ(0, sn_channel_create(&ch, &o));
		ASSERT_EQ(0, sn_channel_info(ch, &ci));
		EXPECT_EQ(4, ci.bufs);
		EXPECT_EQ(128, ci.buf_size);
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		EXPECT_EQ(-EINVAL, sn_buf_get(NULL, &buf, &idx));
		EXPECT_EQ(-EINVAL, sn_buf_get(p, NULL, &idx));
		EXPECT_EQ(-EINVAL, sn_buf_get(p, &buf, NULL));
		EXPECT_EQ(-EINVAL, sn_buf_send(NULL, 0, 8));
		EXPECT_EQ(-EINVAL, sn_buf_drop(NULL, 0));
		EXPECT_EQ(-EINVAL, sn_recv_buf(NULL, &x));
		EXPECT_EQ(-EINVAL, sn_recv_buf(c, NULL));
		EXPECT_EQ(-EINVAL, sn_buf_put(NULL, &x));
		EXPECT_EQ(-EINVAL, sn_buf_put(c, NULL));
		/* idx not got */
		EXPECT_EQ(-EINVAL, sn_buf_send(p, 0, 8));
		EXPECT_EQ(-EINVAL, sn_buf_send(p, 4, 8));
		/* a peek outstanding: no sn_recv_buf() */
		ASSERT_EQ(0, send_filled(p, 128, 0, NULL));
		ASSERT_EQ(0, send_filled(p, 128, 1, NULL));
		ASSERT_EQ(0, sn_consumer_peek_len(c, &msg, &len));
		EXPECT_EQ(-EINVAL, sn_recv_buf(c, &x));
		EXPECT_EQ(0, sn_consumer_advance(c, 1));
		ASSERT_EQ(0, sn_recv_buf(c, &x));
		EXPECT_EQ(0, intact(x.data, x.len, 128, 0, 1));
		/* the producer's mark is not the consumer's: no double use */
		EXPECT_EQ(-EINVAL, sn_buf_drop(p, x.idx));
		EXPECT_EQ(0, sn_buf_put(c, &x));
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/* Puts @hb after @ms milliseconds, from a thread. */
struct putter {
	pthread_t th;
	struct sn_consumer *c;
	struct sn_buf hb;
	unsigned int ms;
	int ret;
};

static void *putter_main(void *arg)
{
	struct putter *u = arg;

	usleep(u->ms * 1000);
	u->ret = sn_buf_put(u->c, &u->hb);
	return NULL;
}

/* A producer waiting for a buffer gets the one a consumer puts. */
TEST(get_wait_sees_put)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		struct putter u;
		__u32 idx;
		void *buf;
		__u64 t0;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 8, 1, 64, flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, send_filled(p, 64, 0, NULL));
		ASSERT_EQ(0, sn_recv_buf(c, &u.hb));
		EXPECT_EQ(-EAGAIN, sn_buf_get(p, &buf, &idx));
		u.c = c;
		u.ms = 50;
		ASSERT_EQ(0, pthread_create(&u.th, NULL, putter_main, &u));
		t0 = t_now();
		EXPECT_EQ(0, sn_buf_get_wait(p, &buf, &idx, 10000 * MS));
		EXPECT_LE(40 * MS, t_now() - t0);
		pthread_join(u.th, NULL);
		EXPECT_EQ(0, u.ret);
		EXPECT_EQ(u.hb.idx, idx);
		EXPECT_EQ(0, sn_buf_drop(p, idx));
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/* ---- a scribbling producer ---- */

/*
 * Commits by hand at the tail of @lane a buffer record whose header says
 * @hdr_len and whose reference says @idx and @len, as a producer that
 * ignores the rules would (SPSC/MPSC: the terminator after it).
 */
static void scribble(struct sn_channel *ch, __u32 lane, __u32 hdr_len,
		     __u32 idx, __u32 len)
{
	struct sn_channel_info ci;
	struct sn_offsets off;
	unsigned char *l;
	struct sn_slot *s;
	__u32 *tail, t;
	void *base;

	sn_channel_layout(ch, &base, &off);
	sn_channel_info(ch, &ci);
	l = (unsigned char *)base + off.lane0 + lane * off.lane_size;
	tail = (__u32 *)(l + off.prod_tail);
	t = __atomic_load_n(tail, __ATOMIC_RELAXED);
	s = (struct sn_slot *)(l + off.slots +
			       (__u64)(t & (ci.slots - 1)) * off.stride);
	s->len = hdr_len;
	((struct sn_bufref *)(s + 1))->idx = idx;
	((struct sn_bufref *)(s + 1))->len = len;
	if (ci.type != SN_RING_MPMC)
		((struct sn_slot *)((unsigned char *)s + off.stride))->seq = 0;
	__atomic_store_n(&s->seq, t + 1, __ATOMIC_RELEASE);
	__atomic_store_n(tail, t + 1, __ATOMIC_RELEASE);
}

/*
 * A record naming a buffer beyond the arena, too long a message, the wrong
 * header length, or a buffer where the channel has none: every receive
 * call drops it as a bad record (counted) and reads nothing outside the
 * ring (an index of 2^32 - 1 would be gigabytes away); the messages of
 * the other lane arrive intact.
 */
TEST(scribbled_records)
{
	const __u32 bref = SN_SLOT_BUF | sizeof(struct sn_bufref);
	struct {
		const char *what;
		__u32 hdr_len, idx, len, bufs;
	} bad[] = {
		{ "idx == bufs", bref, 2, 8, 2 },
		{ "idx 2^32 - 1", bref, ~0U, 8, 2 },
		{ "len > buf_size", bref, 0, 257, 2 },
		{ "len 2^32 - 1", bref, 1, ~0U, 2 },
		{ "header length 16", SN_SLOT_BUF | 16, 0, 8, 2 },
		{ "no buffers", bref, 0, 8, 0 },
	};
	unsigned int flags[2];
	int nb = t_backends(flags), b, t, mode;
	size_t k;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++)
	for (k = 0; k < ARRAY_SIZE(bad); k++) for (mode = 0; mode < 3; mode++) {
		__u32 multi = types[t] != SN_RING_SPSC, len, got = 0;
		unsigned char copy[512];
		struct sn_channel_stats st;
		struct sn_producer *p0, *p1 = NULL;
		struct sn_consumer *c;
		struct sn_channel *ch;
		const void *msg;
		struct sn_buf x;
		int r, tries;

		if (mode == 0 && !bad[k].bufs)
			continue;	/* sn_recv_buf() needs buffers */
		ASSERT_EQ(0, buf_channel(&ch, types[t], 16, bad[k].bufs,
					 bad[k].bufs ? 256 : 0, flags[b]));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		if (multi) {
			/* lane 1's producer stays; lane 0 is left to us */
			ASSERT_EQ(0, sn_producer_open(ch, &p0));
			ASSERT_EQ(0, sn_producer_open(ch, &p1));
			ASSERT_EQ(1, sn_producer_lane(p1));
			EXPECT_EQ(0, sn_producer_close(p0));
		}
		scribble(ch, 0, bad[k].hdr_len, bad[k].idx, bad[k].len);
		if (p1) {
			t_fill(copy, 24, 1, 0);
			ASSERT_EQ(0, sn_try_send_len(p1, copy, 24));
			if (bad[k].bufs)
				ASSERT_EQ(0, send_filled(p1, 256, 1, NULL));
		}
		/* until lane 1 is drained; a few more looks for the end */
		for (tries = 0; tries < 8; tries++) {
			switch (mode) {
			case 0:
				r = sn_recv_buf(c, &x);
				if (!r) {
					EXPECT_EQ(0, intact(x.data, x.len, 256,
							    1, got));
					EXPECT_EQ(0, sn_buf_put(c, &x));
					break;
				}
				if (r != -ENOMSG)
					break;
				/* fall through - a record, not a buffer */
			case 2:
				r = sn_try_recv_len(c, copy, sizeof(copy),
						    &len);
				if (!r)
					EXPECT_EQ(0, intact(copy, len,
							    got ? 256 : 24, 1,
							    got));
				break;
			default:
				r = sn_consumer_peek_len(c, &msg, &len);
				if (!r) {
					EXPECT_EQ(0, intact(msg, len,
							    got ? 256 : 24, 1,
							    got));
					EXPECT_EQ(0, sn_consumer_advance(c, 1));
				}
			}
			if (!r)
				got++;
			else
				EXPECT_EQ(-EAGAIN, r)
					TH_LOG("%s %s type %u mode %d",
					       bname(flags[b]), bad[k].what,
					       types[t], mode);
		}
		EXPECT_EQ(p1 ? 1 + !!bad[k].bufs : 0, got)
			TH_LOG("%s %s type %u mode %d", bname(flags[b]),
			       bad[k].what, types[t], mode);
		EXPECT_EQ(0, sn_consumer_flush_stats(c));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(1, st.bad_records)
			TH_LOG("%s %s type %u mode %d", bname(flags[b]),
			       bad[k].what, types[t], mode);
		EXPECT_EQ(0, reclaimed(ch));
		EXPECT_EQ(0, close_all(p1, c, ch));
	}
}

/* ---- dead peers holding buffers ---- */

/*
 * A forked child's work on the channel, attached by its fd alone (as a
 * process given the fd would): @fn with @arg, run by t_spawn().
 */
struct attached {
	t_child_fn fn;
	void *arg;
};

static int run_attached(struct sn_channel *ch, void *arg)
{
	const struct attached *a = arg;
	struct sn_channel *mine;

	if (sn_channel_attach(&mine, sn_channel_fd(ch), 0))
		return -1;
	return a->fn(mine, a->arg);
}

/* t_spawn() of a child that attaches first. */
static pid_t spawn(struct sn_channel *ch, t_child_fn fn, void *arg)
{
	struct attached a = { fn, arg };

	return t_spawn(ch, run_attached, &a);
}

/*
 * Waits up to 10 s for @n buffers to have been reclaimed. The memfd
 * backend has no kernel to see a death: sn_channel_stats() runs its
 * liveness check, as a sleeper or an open would.
 */
static int await_reclaimed(struct sn_channel *ch, __u64 n)
{
	struct sn_channel_stats st;

	return WAIT_FOR((sn_channel_stats(ch, &st), reclaimed(ch) >= n)) &&
	       reclaimed(ch) == n ? 0 : -1;
}

/* Child: a consumer that takes *(int *)arg buffers and holds them. */
static int child_holder(struct sn_channel *ch, void *arg)
{
	struct sn_consumer *c;
	struct sn_buf x;
	int i;

	if (sn_consumer_open(ch, &c))
		return -1;
	for (i = 0; i < *(int *)arg; i++)
		if (sn_recv_buf(c, &x) || x.idx != (__u32)i)
			return -1;
	return 0;
}

/* Gets every free buffer; returns a bit per buffer got. */
static __u64 get_all(struct sn_producer *p)
{
	__u64 got = 0;
	__u32 idx;
	void *buf;

	while (!sn_buf_get(p, &buf, &idx))
		got |= 1ULL << idx;
	return got;
}

/*
 * SPSC/MPSC: the consumer dies holding three buffers of four: those three
 * come back (counted), the fourth, never taken, stays in the ring for the
 * next consumer, which gets it once.
 */
TEST(dead_consumer_holding)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t, three = 3;

	for (b = 0; b < nb; b++) for (t = 0; t < 2; t++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		struct sn_buf x;
		__u32 i;
		pid_t pid;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 16, 4, 256, flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		for (i = 0; i < 4; i++)
			ASSERT_EQ(0, send_filled(p, 200, i, NULL));
		pid = spawn(ch, child_holder, &three);
		ASSERT_LT(0, pid);
		EXPECT_EQ(0, get_all(p));
		ASSERT_EQ(0, t_kill(pid));
		EXPECT_EQ(0, await_reclaimed(ch, 3))
			TH_LOG("%s type %u: %llu reclaimed", bname(flags[b]),
			       types[t], (unsigned long long)reclaimed(ch));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(1, st.consumers_died);
		EXPECT_EQ(0x7, get_all(p));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		ASSERT_EQ(0, sn_recv_buf(c, &x));
		EXPECT_EQ(3, x.idx);
		EXPECT_EQ(0, intact(x.data, x.len, 200, 0, 3));
		EXPECT_EQ(-EAGAIN, sn_recv_buf(c, &x));
		EXPECT_EQ(0, get_all(p));
		/* a clean close returns what it holds too */
		EXPECT_EQ(0, sn_consumer_close(c));
		EXPECT_EQ(4, reclaimed(ch));
		EXPECT_EQ(0x8, get_all(p));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* MPMC: of two consumers, the dead one's buffers come back, not the
 * live one's. */
TEST(dead_mpmc_consumer_holding)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, two = 2;

	for (b = 0; b < nb; b++) {
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		struct sn_buf x[2];
		__u32 i;
		pid_t pid;

		ASSERT_EQ(0, buf_channel(&ch, SN_RING_MPMC, 16, 4, 256,
					 flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		for (i = 0; i < 4; i++)
			ASSERT_EQ(0, send_filled(p, 100, i, NULL));
		/* the child takes 0 and 1, we 2 and 3 */
		pid = spawn(ch, child_holder, &two);
		ASSERT_LT(0, pid);
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		for (i = 0; i < 2; i++) {
			ASSERT_EQ(0, sn_recv_buf(c, &x[i]));
			EXPECT_EQ(2 + i, x[i].idx);
			EXPECT_EQ(0, intact(x[i].data, x[i].len, 100, 0,
					    2 + i));
		}
		ASSERT_EQ(0, t_kill(pid));
		EXPECT_EQ(0, await_reclaimed(ch, 2))
			TH_LOG("%s: %llu reclaimed", bname(flags[b]),
			       (unsigned long long)reclaimed(ch));
		EXPECT_EQ(0x3, get_all(p));
		/* ours are still ours, readable */
		EXPECT_EQ(0, intact(x[1].data, x[1].len, 100, 0, 3));
		EXPECT_EQ(0, sn_buf_put(c, &x[1]));
		EXPECT_EQ(0x8, get_all(p));
		EXPECT_EQ(0, sn_buf_put(c, &x[0]));
		EXPECT_EQ(0x4, get_all(p));
		EXPECT_EQ(2, reclaimed(ch));
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/*
 * Child: a consumer that dies inside sn_recv_buf(), between marking the
 * buffer of the record at lane 0's head held and releasing that record:
 * the mark is stored by hand through the layout, as the call stores it.
 */
static int child_half_taken(struct sn_channel *ch, void *arg)
{
	struct sn_consumer *c;
	struct sn_offsets off;
	const struct sn_slot *s;
	unsigned char *base;
	__u32 head, slots = *(__u32 *)arg;

	if (sn_consumer_open(ch, &c) ||
	    sn_channel_layout(ch, (void **)&base, &off))
		return -1;
	head = *(__u32 *)(base + off.cons + off.cons_lane);
	s = (const struct sn_slot *)(base + off.lane0 + off.slots +
				     (__u64)(head & (slots - 1)) * off.stride);
	if (s->seq != head + 1 || !(s->len & SN_SLOT_BUF))
		return -1;
	__atomic_store_n((__u64 *)(base + off.cons + off.cons_bufs) +
			 ((const struct sn_bufref *)(s + 1))->idx,
			 held(head, SN_BUF_HELD), __ATOMIC_RELEASE);
	return 0;
}

/*
 * SPSC/MPSC: a consumer that died between marking a buffer held and
 * releasing its record leaves the record to be delivered again (the
 * kernel keeps the mark: the head has not passed it). Whichever call
 * takes it then, the buffer must come back once the record is consumed
 * and nobody holds it: sn_recv_buf() and a put overwrite the stale mark,
 * and sn_try_recv_len() and sn_consumer_peek_len(), which take the buffer without
 * holding it, must return it over that mark (sn__cons_buf_done()), or the
 * producer would see it held (tag == sent, state HELD) for as long as the
 * new consumer lives.
 */
TEST(redelivered_buffer_taken_without_holding)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t, mode;
	__u32 slots = 16;

	for (b = 0; b < nb; b++) for (t = 0; t < 2; t++)
	for (mode = 0; mode < 3; mode++) {
		unsigned char copy[256];
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		const void *msg;
		struct sn_buf x;
		__u32 idx, len;
		pid_t pid;

		ASSERT_EQ(0, buf_channel(&ch, types[t], slots, 1, 256,
					 flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, send_filled(p, 256, 0, &idx));
		pid = spawn(ch, child_half_taken, &slots);
		ASSERT_LT(0, pid);
		ASSERT_EQ(0, t_kill(pid));
		/* the open reaps the dead one (memfd); nothing to return */
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		EXPECT_EQ(0, reclaimed(ch));
		switch (mode) {
		case 0:
			ASSERT_EQ(0, sn_recv_buf(c, &x));
			EXPECT_EQ(0, intact(x.data, x.len, 256, 0, 0));
			EXPECT_EQ(0, sn_buf_put(c, &x));
			break;
		case 1:
			ASSERT_EQ(0, sn_try_recv_len(c, copy, sizeof(copy),
						     &len));
			EXPECT_EQ(0, intact(copy, len, 256, 0, 0));
			break;
		default:
			ASSERT_EQ(0, sn_consumer_peek_len(c, &msg, &len));
			EXPECT_EQ(0, intact(msg, len, 256, 0, 0));
			EXPECT_EQ(0, sn_consumer_advance(c, 1));
		}
		EXPECT_EQ(0x1, get_all(p))
			TH_LOG("%s type %u, taken by %s: the buffer stays held "
			       "by the dead consumer's mark", bname(flags[b]),
			       types[t], mode == 1 ? "sn_try_recv_len" :
			       mode ? "sn_consumer_peek_len" : "sn_recv_buf");
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/* Kills @pid after @ms milliseconds, from a thread. */
struct killer {
	pthread_t th;
	pid_t pid;
	unsigned int ms;
	int ret;
};

static void *killer_main(void *arg)
{
	struct killer *k = arg;

	usleep(k->ms * 1000);
	k->ret = t_kill(k->pid);
	return NULL;
}

/*
 * A producer waiting in sn_buf_get_wait() for buffers that a consumer
 * holds when that consumer dies: the wait must end with a buffer. sn.ko
 * returns them when the fd goes; the memfd backend only when someone runs
 * its liveness check, which this wait must then do itself.
 */
TEST(get_wait_sees_dead_consumer)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t, two = 2;

	/* SPSC/MPSC share the single consumer's reaping, MPMC has its own */
	for (b = 0; b < nb; b++) for (t = 0; t < 3; t += 2) {
		struct sn_producer *p;
		struct sn_channel *ch;
		struct killer k;
		__u32 idx;
		void *buf;
		__u64 t0;
		int r;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 16, 2, 256, flags[b]));
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		ASSERT_EQ(0, send_filled(p, 64, 0, NULL));
		ASSERT_EQ(0, send_filled(p, 64, 1, NULL));
		k.pid = spawn(ch, child_holder, &two);
		ASSERT_LT(0, k.pid);
		k.ms = 100;
		ASSERT_EQ(0, pthread_create(&k.th, NULL, killer_main, &k));
		t0 = t_now();
		r = sn_buf_get_wait(p, &buf, &idx, 2000 * MS);
		pthread_join(k.th, NULL);
		EXPECT_EQ(0, k.ret);
		EXPECT_EQ(0, r)
			TH_LOG("%s type %u: a dead consumer's buffers never "
			       "came back to a waiting producer (%.0f ms)",
			       bname(flags[b]), types[t],
			       (t_now() - t0) / 1e6);
		if (!r)
			EXPECT_EQ(0, sn_buf_drop(p, idx));
		EXPECT_EQ(0, sn_producer_close(p));
		EXPECT_EQ(0, sn_channel_close(ch));
	}
}

/* Child: a producer that gets every buffer and sends only buffer 0. */
static int child_getter(struct sn_channel *ch, void *arg)
{
	struct sn_producer *p;
	__u32 idx;

	(void)arg;
	if (sn_producer_open(ch, &p) || sn_producer_lane(p) != 0)
		return -1;
	if (send_filled(p, 128, 0, &idx) || idx)
		return -1;
	return get_all(p) == 0xe ? 0 : -1;
}

/*
 * A producer dies with three buffers got and never sent: the lane's next
 * producer gets them all; the one it sent is the consumer's until put.
 */
TEST(dead_producer_holding)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 0; t < 3; t++) {
		struct sn_channel_stats st;
		struct sn_consumer *c;
		struct sn_producer *p;
		struct sn_channel *ch;
		struct sn_buf x;
		pid_t pid;

		ASSERT_EQ(0, buf_channel(&ch, types[t], 16, 4, 128, flags[b]));
		ASSERT_EQ(0, sn_consumer_open(ch, &c));
		pid = spawn(ch, child_getter, NULL);
		ASSERT_LT(0, pid);
		ASSERT_EQ(0, t_kill(pid));
		ASSERT_EQ(0, sn_recv_buf(c, &x));
		EXPECT_EQ(0, x.idx);
		EXPECT_EQ(0, intact(x.data, x.len, 128, 0, 0));
		/* the open looks for dead peers (memfd); sn.ko freed the
		 * lane when the fd went */
		ASSERT_EQ(0, sn_producer_open(ch, &p));
		EXPECT_EQ(0, sn_producer_lane(p));
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(1, st.producers_died);
		EXPECT_EQ(0xe, get_all(p));
		EXPECT_EQ(0, sn_buf_put(c, &x));
		EXPECT_EQ(0x1, get_all(p));
		EXPECT_EQ(0, reclaimed(ch));
		EXPECT_EQ(0, close_all(p, c, ch));
	}
}

/* ---- stress: records and buffers mixed ---- */

#define STRESS_BUF_SIZE 2048

/* Message @seq of producer @prod: a record or a buffer, and its length. */
static int stress_is_buf(__u64 seq)
{
	return seq % 3 != 0;
}

static __u32 stress_len(__u32 prod, __u64 seq)
{
	if (!stress_is_buf(seq))
		return 8 + (__u32)(seq * 13 + prod * 7) % 200;
	return 8 + (__u32)(seq * 977 + prod * 131) % (STRESS_BUF_SIZE - 7);
}

static void stress_produce(struct t_ctx *x, struct sn_producer *p)
{
	unsigned char small[256];
	__u32 prod = (__u32)sn_producer_lane(p), idx = 0, len;
	int have = 0, r;
	void *buf = NULL;
	__u64 seq = 0;

	while (seq < x->run->msgs && !x->sh->errors) {
		if (t_now() > x->sh->deadline) {
			t_fail(x->sh, "producer past the deadline", (long)seq);
			break;
		}
		len = stress_len(prod, seq);
		if (!stress_is_buf(seq)) {
			t_fill(small, len, prod, seq);
			r = sn_try_send_len(p, small, len);
		} else {
			if (!have) {
				r = sn_buf_get_wait(p, &buf, &idx, 10 * MS);
				if (r == -ETIMEDOUT)
					continue;
				if (r) {
					t_fail(x->sh, "sn_buf_get_wait", r);
					break;
				}
				have = 1;
				t_fill(buf, len, prod, seq);
			}
			/* -EAGAIN keeps the buffer ours: sent next time */
			r = sn_buf_send(p, idx, len);
			if (!r)
				have = 0;
		}
		if (!r)
			seq++;
		else if (r == -EAGAIN)
			sn_producer_wait(p, 10 * MS);
		else
			t_fail(x->sh, "send", r);
	}
}

static void stress_got(struct t_ctx *x, const void *m, __u32 len,
		       __u64 *last, int is_buf)
{
	const struct t_run *r = x->run;
	__u32 prod;
	__u64 seq;

	if (t_check(m, len, &prod, &seq) || prod >= r->producers ||
	    seq >= r->msgs || len != stress_len(prod, seq) ||
	    (is_buf >= 0 && is_buf != stress_is_buf(seq))) {
		t_fail(x->sh, "garbled message", (long)seq);
		return;
	}
	t_arrived(x, prod, seq, last);
}

/* Puts back what @c holds, last taken first (out of order). */
static void stress_put_all(struct t_ctx *x, struct sn_consumer *c,
			   struct sn_buf *hb, int *n)
{
	while (*n > 0) {
		/* still intact while held: nobody reused it */
		if (t_check(hb[*n - 1].data, hb[*n - 1].len,
			    &(__u32){ 0 }, &(__u64){ 0 }))
			t_fail(x->sh, "a held buffer changed", *n);
		if (sn_buf_put(c, &hb[--*n]))
			t_fail(x->sh, "sn_buf_put", *n);
	}
}

/* Consumer: sn_recv_buf() (holding up to three), sn_consumer_peek_len() and
 * sn_try_recv_len() in turn. */
static void stress_consume(struct t_ctx *x, struct sn_consumer *c)
{
	const struct t_run *r = x->run;
	__u64 total = (__u64)r->msgs * r->producers;
	__u64 last[SN_MAX_LANES] = { 0 };
	unsigned char *copy = malloc(STRESS_BUF_SIZE);
	unsigned long turn = 0;
	struct sn_buf hb[3];
	const void *msg;
	int n, held = 0;
	__u32 len;

	while (t_consuming(x, total)) {
		switch (turn++ % 3) {
		case 0:
			n = sn_recv_buf(c, &hb[held]);
			if (!n) {
				stress_got(x, hb[held].data, hb[held].len,
					   last, 1);
				if (++held == 3)
					stress_put_all(x, c, hb, &held);
				break;
			}
			if (n != -ENOMSG)
				break;
			/* fall through - a record, not a buffer */
		case 1:
			n = sn_try_recv_len(c, copy, STRESS_BUF_SIZE, &len);
			if (!n)
				stress_got(x, copy, len, last, -1);
			break;
		default:
			n = sn_consumer_peek_len(c, &msg, &len);
			if (!n) {
				stress_got(x, msg, len, last, -1);
				if (sn_consumer_advance(c, 1))
					t_fail(x->sh, "sn_consumer_advance", 0);
			}
		}
		if (n == -EAGAIN) {
			/* nothing now: give the buffers back before waiting,
			 * or producers may wait on us */
			stress_put_all(x, c, hb, &held);
			sn_consumer_wait(c, 5 * MS);
		} else if (n == -EPIPE) {
			break;
		} else if (n && n != -ENOMSG) {
			t_fail(x->sh, "receive", n);
		}
	}
	stress_put_all(x, c, hb, &held);
	free(copy);
}

/* A producer (the first ids) or a consumer of the stress run. */
static void *stress_main(void *arg)
{
	struct t_ctx *x = arg;
	int prod = x->id < x->run->producers, ret;
	struct sn_producer *p = NULL;
	struct sn_consumer *c = NULL;

	ret = prod ? sn_producer_open(x->ch, &p) : sn_consumer_open(x->ch, &c);
	if (ret) {
		t_fail(x->sh, "open", ret);
		return NULL;
	}
	if (prod)
		stress_produce(x, p);
	else
		stress_consume(x, c);
	sn_producer_close(p);
	sn_consumer_close(c);
	return NULL;
}

/*
 * Two producers, one consumer (MPSC) or two (MPMC), threads: two of three
 * messages are buffers of up to 2 KiB, the rest records; every message
 * arrives exactly once, in order per producer, its content intact.
 */
TEST(stress)
{
	unsigned int flags[2];
	int nb = t_backends(flags), b, t;

	for (b = 0; b < nb; b++) for (t = 1; t < 3; t++) {
		struct t_run run = {
			.type = types[t], .producers = 2,
			.consumers = types[t] == SN_RING_MPMC ? 2 : 1,
			.msgs = t_scaled(3000),
		};
		size_t shsize = sizeof(struct t_shared) + 2 * run.msgs;
		struct sn_channel_stats st;
		struct t_ctx ctx[4];
		pthread_t th[4];
		struct t_shared *sh;
		struct sn_channel *ch;
		unsigned int i, n = run.producers + run.consumers;
		__u64 j;

		sh = mmap(NULL, shsize, PROT_READ | PROT_WRITE,
			  MAP_SHARED | MAP_ANONYMOUS, -1, 0);
		ASSERT_NE(MAP_FAILED, sh);
		sh->deadline = t_now() + 30000 * MS;
		ASSERT_EQ(0, buf_channel(&ch, types[t], 64, 8,
					 STRESS_BUF_SIZE, flags[b]));
		for (i = 0; i < n; i++) {
			ctx[i] = (struct t_ctx){ .run = &run, .sh = sh,
						 .ch = ch, .id = i };
			ASSERT_EQ(0, pthread_create(&th[i], NULL, stress_main,
						    &ctx[i]));
		}
		for (i = 0; i < n; i++)
			pthread_join(th[i], NULL);
		for (j = 0; j < 2 * run.msgs && !sh->errors; j++)
			if (sh->seen[j] != 1)
				t_fail(sh, "lost", (long)j);
		EXPECT_EQ(0, sh->errors)
			TH_LOG("%s type %u: %s", bname(flags[b]), types[t],
			       sh->why);
		ASSERT_EQ(0, sn_channel_stats(ch, &st));
		EXPECT_EQ(2 * run.msgs, st.sent);
		EXPECT_EQ(2 * run.msgs, st.received);
		EXPECT_EQ(0, st.bad_records);
		EXPECT_EQ(0, reclaimed(ch));
		EXPECT_EQ(0, sn_channel_close(ch));
		munmap(sh, shsize);
	}
}

TEST_HARNESS_MAIN
