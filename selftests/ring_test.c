// SPDX-License-Identifier: GPL-2.0
/*
 * sn.ko rings through the raw ABI (include/uapi/linux/sn.h): creation and
 * each bad parameter's errno, info, narrowing, mmap rights, sharing across
 * processes, poll/epoll/io_uring readiness, limits, the listing and who sees
 * what in it, home_cpu within the caller's CPUs, capped struct sizes and
 * module parameters, churn and a scribbling peer. Runs in the guests with
 * sn.ko loaded.
 */
#include <errno.h>
#include <fcntl.h>
#include <liburing.h>
#include <poll.h>
#include <pthread.h>
#include <sched.h>
#include <setjmp.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <linux/sn.h>

#include "kselftest_harness.h"
#include "need_module.h"
#include "raw_ring.h"

#define MPOL_F_NODE (1 << 0)
#define MPOL_F_ADDR (1 << 1)

/* 0 if writing to @addr kills a child with SIGSEGV. */
static int write_faults(void *addr)
{
	int status;
	pid_t pid = fork();

	if (pid == 0) {
		*(volatile char *)addr = 1;
		_exit(0);
	}
	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFSIGNALED(status) && WTERMSIG(status) == SIGSEGV ? 0 : 1;
}

TEST(create_bad_params)
{
	struct {
		const char *what;
		struct sn_create p;
		int err;
	} cases[] = {
		{ "type 0", params(0, 8, 16, 1), EINVAL },
		{ "type 4", params(4, 8, 16, 1), EINVAL },
		{ "slot_size 0", params(SN_RING_SPSC, 0, 16, 1), EINVAL },
		{ "slot_size 4", params(SN_RING_SPSC, 4, 16, 1), EINVAL },
		{ "slot_size 12", params(SN_RING_SPSC, 12, 16, 1), EINVAL },
		{ "slot_size huge", params(SN_RING_SPSC, 1U << 30, 1, 1), EINVAL },
		{ "slots 0", params(SN_RING_SPSC, 8, 0, 1), EINVAL },
		{ "slots 3", params(SN_RING_SPSC, 8, 3, 1), EINVAL },
		{ "slots 2^31", params(SN_RING_SPSC, 8, 1U << 31, 1), EINVAL },
		{ "ring too big", params(SN_RING_MPSC, 65536, 1U << 20, 64), EINVAL },
		{ "lanes 0", params(SN_RING_MPSC, 8, 16, 0), EINVAL },
		{ "spsc lanes 2", params(SN_RING_SPSC, 8, 16, 2), EINVAL },
		{ "lanes 65", params(SN_RING_MPMC, 8, 16, SN_MAX_LANES + 1), EINVAL },
	};
	struct sn_create p;
	char big[sizeof(p) + 8] = {};
	int dev = dev_fd();

	ASSERT_LE(0, dev);
	for (size_t i = 0; i < sizeof(cases) / sizeof(cases[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(dev, SN_IOC_CREATE, &cases[i].p))
			TH_LOG("%s", cases[i].what);
		EXPECT_EQ(cases[i].err, errno) TH_LOG("%s", cases[i].what);
	}

	p = params(SN_RING_SPSC, 8, 16, 1);
	p.flags = 1U << 7;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("unknown flag");
	p = params(SN_RING_SPSC, 8, 16, 1);
	p.home_cpu = 1;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("home_cpu without its flag");
	p.flags = SN_CREATE_HOME_CPU;
	p.home_cpu = 4096;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("home_cpu 4096");
	p = params(SN_RING_SPSC, 8, 16, 1);
	p.numa_node = 1;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("numa_node without its flag");
	p.flags = SN_CREATE_NUMA_NODE;
	p.numa_node = 4096;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("numa_node 4096");
	for (int r = 0; r < (int)ARRAY_SIZE(p.reserved); r++) {
		p = params(SN_RING_SPSC, 8, 16, 1);
		p.reserved[r] = 1;
		EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("reserved[%d]", r);
	}
	p = params(SN_RING_SPSC, 8, 16, 1);
	p.size = SN_CREATE_SIZE_VER0 - 4;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("size too small");

	/* A newer, larger struct: fine when the tail is zero, E2BIG if not. */
	p = params(SN_RING_SPSC, 8, 16, 1);
	p.size = sizeof(big);
	memcpy(big, &p, sizeof(p));
	int fd = create((struct sn_create *)big);

	EXPECT_LE(0, fd);
	close(fd);
	big[sizeof(p) + 3] = 1;
	EXPECT_EQ(-E2BIG, create((struct sn_create *)big));

	errno = 0;
	EXPECT_EQ(-1, ioctl(dev, SN_IOC_CREATE, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	/* Ring ioctls mean nothing on /dev/sn, and the reverse. */
	errno = 0;
	EXPECT_EQ(-1, ioctl(dev, SN_IOC_INFO, &p));
	EXPECT_EQ(ENOTTY, errno);
	fd = create_simple(SN_RING_SPSC, 8, 16, 1);
	ASSERT_LE(0, fd);
	p = params(SN_RING_SPSC, 8, 16, 1);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_CREATE, &p));
	EXPECT_EQ(ENOTTY, errno);
	close(fd);
	close(dev);
}

TEST(create_and_info)
{
	__u32 types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };

	for (int t = 0; t < 3; t++) {
		__u32 lanes = types[t] == SN_RING_SPSC ? 1 : 3;
		struct sn_geometry g = { types[t], 24, 64, lanes, 0, 0, 0 };
		struct sn_offsets want;
		struct sn_info i;
		int fd = create_simple(types[t], 24, 64, lanes);

		ASSERT_LE(0, fd);
		EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
		EXPECT_EQ(O_RDWR, fcntl(fd, F_GETFL) & O_ACCMODE);
		ASSERT_EQ(0, info(fd, &i));
		EXPECT_EQ(sizeof(i), i.size);
		EXPECT_EQ(types[t], i.type);
		EXPECT_EQ(24, i.slot_size);
		EXPECT_EQ(64, i.slots);
		EXPECT_EQ(lanes, i.lanes);
		EXPECT_EQ(SN_ROLE_FULL, i.role);
		EXPECT_LT(0, i.id);
		EXPECT_EQ(SN_FEAT_ROLES | SN_FEAT_KICK | SN_FEAT_KTHREAD |
			  SN_FEAT_PEERS | SN_FEAT_ASYM | SN_FEAT_FORMAT3 |
			  SN_FEAT_VARLEN | SN_FEAT_BUFS, i.features);
		EXPECT_EQ(0, i.geo_flags);
		EXPECT_EQ(0, i.bufs);
		EXPECT_EQ(0, i.buf_size);
		EXPECT_EQ(SN_CLAIM_NONE, i.claim);
		sn_ring_layout(&g, getpagesize(), &want);
		EXPECT_EQ(0, memcmp(&want, &i.off, sizeof(want)));

		/* The kernel page says the same, read-only. */
		struct sn_kpage *kp = map(fd, 0, getpagesize(), PROT_READ);

		ASSERT_NE(MAP_FAILED, kp);
		EXPECT_EQ(SN_KPAGE_MAGIC, kp->magic);
		EXPECT_EQ(types[t], kp->type);
		EXPECT_EQ(64, kp->slots);
		EXPECT_EQ(i.id, kp->id);
		EXPECT_EQ(24, kp->stride);
		EXPECT_EQ(24, i.off.stride);
		EXPECT_EQ(0, kp->geo_flags);
		EXPECT_EQ(SN_FENCE_FULL, kp->fence);
		munmap(kp, getpagesize());
		close(fd);
	}
}

/*
 * Format 3: slots carry a struct sn_slot, the stride and the kpage say so;
 * the fence is ASYM when asked (SN_CREATE_ASYM) while the module parameter
 * asym is 1 (the default), else FULL.
 */
TEST(create_format3)
{
	__u32 sizes[] = { 8, 16, 24, 56, 64, 120, 4096 };
	__u32 strides[] = { 16, 32, 32, 64, 128, 128, 4160 };

	for (unsigned int k = 0; k < 2 * ARRAY_SIZE(sizes); k++) {
		unsigned int z = k % ARRAY_SIZE(sizes);
		int full = k >= ARRAY_SIZE(sizes);
		struct sn_create p = params(SN_RING_MPMC, sizes[z], 64, 2);
		struct sn_geometry g = { SN_RING_MPMC, sizes[z], 64, 2,
					 SN_GEO_FORMAT3, 0, 0 };
		struct sn_offsets want;
		struct sn_kpage *kp;
		struct sn_info i;
		int fd;

		p.flags |= SN_CREATE_FORMAT3 | (full ? 0 : SN_CREATE_ASYM);
		fd = create(&p);
		ASSERT_LE(0, fd);
		ASSERT_EQ(0, info(fd, &i));
		EXPECT_EQ(strides[z], i.off.stride);
		EXPECT_EQ(strides[z], sn_slot_stride(sizes[z]));
		EXPECT_EQ(SN_GEO_FORMAT3, i.geo_flags);
		sn_ring_layout(&g, getpagesize(), &want);
		EXPECT_EQ(0, memcmp(&want, &i.off, sizeof(want)));
		EXPECT_EQ(0, i.off.lane_size % getpagesize());
		EXPECT_LE((__u64)64 * strides[z] + getpagesize(),
			  i.off.lane_size);
		kp = map(fd, 0, getpagesize(), PROT_READ);
		ASSERT_NE(MAP_FAILED, kp);
		EXPECT_EQ(SN_KPAGE_MAGIC_FORMAT3, kp->magic);
		EXPECT_EQ(strides[z], kp->stride);
		EXPECT_EQ(SN_GEO_FORMAT3, kp->geo_flags);
		EXPECT_EQ(full ? SN_FENCE_FULL : SN_FENCE_ASYM, kp->fence);
		munmap(kp, getpagesize());
		close(fd);
	}
	/* asym=0: every new ring is FULL, whatever its creator asked */
	{
		struct sn_create p = params(SN_RING_SPSC, 8, 64, 1);
		FILE *f = fopen("/sys/module/sn/parameters/asym", "w");
		struct sn_kpage *kp;
		int fd;

		ASSERT_NE(NULL, f);
		fputs("N", f);
		fclose(f);
		p.flags |= SN_CREATE_FORMAT3 | SN_CREATE_ASYM;
		fd = create(&p);
		f = fopen("/sys/module/sn/parameters/asym", "w");
		ASSERT_NE(NULL, f);
		fputs("Y", f);
		fclose(f);
		ASSERT_LE(0, fd);
		kp = map(fd, 0, getpagesize(), PROT_READ);
		ASSERT_NE(MAP_FAILED, kp);
		EXPECT_EQ(SN_FENCE_FULL, kp->fence);
		munmap(kp, getpagesize());
		close(fd);
	}
}

/* A varlen ring: format 3 with records of any length (uapi "Records"). */
static int varlen_ring(__u32 type, __u32 slot_size, __u32 slots,
			 __u32 lanes)
{
	struct sn_create p = params(type, slot_size, slots, lanes);

	p.flags = SN_CREATE_FORMAT3 | SN_CREATE_VARLEN;
	return create(&p);
}

/* Whether [a, a + alen) and [b, b + blen) share a byte. */
static bool overlap(__u32 a, __u32 alen, __u32 b, __u32 blen)
{
	return a < b + blen && b < a + alen;
}

/*
 * SN_CREATE_VARLEN: only with format 3; the stride is sn_var_stride(), a
 * power of two (so a record's slot count is a shift), and info, the
 * layout and the kpage all say varlen. The prod_need word sits in the
 * lane's first page, apart from every other producer field: the kernel
 * reads it for EPOLLOUT and must not take a tail or a statistic for it.
 */
TEST(create_varlen)
{
	__u32 sizes[] = { 8, 24, 40, 56, 120, 200 };
	__u32 strides[] = { 16, 32, 64, 64, 128, 256 };
	__u32 types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	struct sn_create p = params(SN_RING_SPSC, 8, 16, 1);
	__u32 page = getpagesize();

	p.flags = SN_CREATE_VARLEN;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("varlen without format 3");
	p.flags = SN_CREATE_VARLEN | SN_CREATE_ASYM;
	EXPECT_EQ(-EINVAL, create(&p)) TH_LOG("varlen, asym, no format 3");

	for (unsigned int k = 0; k < 3 * ARRAY_SIZE(sizes); k++) {
		unsigned int z = k % ARRAY_SIZE(sizes);
		__u32 type = types[k / ARRAY_SIZE(sizes)];
		__u32 lanes = type == SN_RING_SPSC ? 1 : 3;
		struct sn_geometry g = { type, sizes[z], 64, lanes,
					 SN_GEO_FORMAT3 | SN_GEO_VARLEN, 0, 0 };
		int fd = varlen_ring(type, sizes[z], 64, lanes);
		struct sn_offsets want;
		struct sn_kpage *kp;
		struct sn_info i;

		ASSERT_LE(0, fd) TH_LOG("type %u slot_size %u", type, sizes[z]);
		ASSERT_EQ(0, info(fd, &i));
		EXPECT_EQ(SN_GEO_FORMAT3 | SN_GEO_VARLEN, i.geo_flags);
		EXPECT_NE(0, i.features & SN_FEAT_VARLEN);
		EXPECT_NE(0, i.features & SN_FEAT_FORMAT3);
		EXPECT_EQ(sizes[z], i.slot_size);
		EXPECT_EQ(strides[z], i.off.stride) TH_LOG("slot_size %u",
							   sizes[z]);
		EXPECT_EQ(strides[z], sn_var_stride(sizes[z]));
		EXPECT_EQ(0, i.off.stride & (i.off.stride - 1));
		EXPECT_LE(sn_slot_stride(sizes[z]), i.off.stride);
		sn_ring_layout(&g, page, &want);
		EXPECT_EQ(0, memcmp(&want, &i.off, sizeof(want)));
		EXPECT_LE((__u64)64 * strides[z] + page, i.off.lane_size);

		/* prod_need: in the lane's first page, no other field's. */
		EXPECT_LE(i.off.prod_need + sizeof(__u32), i.off.slots);
		EXPECT_LE(i.off.slots, page);
		EXPECT_EQ(0, i.off.prod_need % sizeof(__u32));
		EXPECT_FALSE(overlap(i.off.prod_need, 4, i.off.prod_tail, 4));
		EXPECT_FALSE(overlap(i.off.prod_need, 4, i.off.prod_waiting, 4));
		EXPECT_FALSE(overlap(i.off.prod_need, 4, i.off.prod_stats,
				     sizeof(struct sn_prod_stats)));

		kp = map(fd, 0, page, PROT_READ);
		ASSERT_NE(MAP_FAILED, kp);
		EXPECT_EQ(SN_KPAGE_MAGIC_FORMAT3, kp->magic);
		EXPECT_EQ(SN_GEO_FORMAT3 | SN_GEO_VARLEN, kp->geo_flags);
		EXPECT_EQ(strides[z], kp->stride);
		EXPECT_EQ(sizes[z], kp->slot_size);
		munmap(kp, page);
		close(fd);
	}

	/*
	 * A caller of SN_INFO_SIZE_VER0 gets no geo_flags (the kernel writes
	 * only what it was given room for); the ring's kpage still says it.
	 */
	{
		char big[sizeof(struct sn_info) + 8];
		struct sn_info *i = (struct sn_info *)big;
		int fd = varlen_ring(SN_RING_SPSC, 8, 16, 1);

		ASSERT_LE(0, fd);
		memset(big, 0xff, sizeof(big));
		i->size = SN_INFO_SIZE_VER0;
		ASSERT_EQ(0, ioctl(fd, SN_IOC_INFO, i));
		EXPECT_EQ(SN_INFO_SIZE_VER0, i->size);
		EXPECT_EQ(16, i->off.stride);
		for (size_t b = SN_INFO_SIZE_VER0; b < sizeof(big); b++) {
			EXPECT_EQ((char)0xff, big[b]) TH_LOG("byte %zu", b);
		}
		close(fd);
	}
}

/* SN_IOC_BARRIER: the ring's heavy barrier, from any role; 0 argument. */
TEST(barrier_ioctl)
{
	for (int full = 0; full < 2; full++) {
		struct sn_create p = params(SN_RING_MPSC, 8, 16, 2);
		int fd, prod, cons;

		p.flags |= SN_CREATE_FORMAT3 | (full ? 0 : SN_CREATE_ASYM);
		fd = create(&p);
		ASSERT_LE(0, fd);
		prod = narrow(fd, SN_ROLE_PRODUCER, SN_LANE_ANY);
		cons = narrow(fd, SN_ROLE_CONSUMER, 0);
		ASSERT_LE(0, prod);
		ASSERT_LE(0, cons);
		for (int i = 0; i < 100; i++) {
			EXPECT_EQ(0, ioctl(fd, SN_IOC_BARRIER, 0));
			EXPECT_EQ(0, ioctl(prod, SN_IOC_BARRIER, 0));
			EXPECT_EQ(0, ioctl(cons, SN_IOC_BARRIER, 0));
		}
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, SN_IOC_BARRIER, 1));
		EXPECT_EQ(EINVAL, errno);
		close(cons);
		close(prod);
		close(fd);
	}
}

TEST(info_sizes)
{
	int fd = create_simple(SN_RING_SPSC, 8, 16, 1);
	char big[sizeof(struct sn_info) + 16];
	struct sn_info *i = (struct sn_info *)big;

	ASSERT_LE(0, fd);
	memset(big, 0xff, sizeof(big));
	i->size = SN_INFO_SIZE_VER0 - 8;
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_INFO, i));
	EXPECT_EQ(EINVAL, errno);
	i->size = sizeof(big);
	ASSERT_EQ(0, ioctl(fd, SN_IOC_INFO, i));
	EXPECT_EQ(sizeof(struct sn_info), i->size);
	for (size_t b = sizeof(struct sn_info); b < sizeof(big); b++) {
		EXPECT_EQ(0, big[b]);
	}
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_INFO, (void *)8));
	EXPECT_EQ(EFAULT, errno);
	close(fd);
}

TEST(home_cpu_and_node)
{
	struct sn_create p = params(SN_RING_SPSC, 8, 4096, 1);
	long ncpu = sysconf(_SC_NPROCESSORS_CONF);
	struct sn_info i;
	struct view v;
	char path[64];
	int node = -1, fd;

	if (ncpu < 2)
		SKIP(return, "one CPU: no second home to choose");
	p.flags = SN_CREATE_HOME_CPU;
	p.home_cpu = ncpu - 1;
	fd = create(&p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &i));
	EXPECT_EQ(ncpu - 1, i.home_cpu);
	/* The node is the home CPU's. */
	snprintf(path, sizeof(path), "/sys/devices/system/cpu/cpu%ld/node%u",
		 ncpu - 1, i.numa_node);
	EXPECT_EQ(0, access(path, F_OK)) TH_LOG("%s", path);
	close(fd);

	/* An explicit node places the pages there. */
	p.flags = SN_CREATE_NUMA_NODE;
	p.home_cpu = 0;
	p.numa_node = i.numa_node;
	fd = create(&p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	EXPECT_EQ(i.numa_node, v.i.numa_node);
	for (__u64 off = 0; off < v.i.off.map_size; off += getpagesize()) {
		ASSERT_EQ(0, syscall(__NR_get_mempolicy, &node, NULL, 0,
				     v.base + off, MPOL_F_NODE | MPOL_F_ADDR));
		EXPECT_EQ((int)i.numa_node, node) TH_LOG("page at %llu",
						       (unsigned long long)off);
	}
	close(fd);
}

TEST(mmap_rules)
{
	int fd = create_simple(SN_RING_SPSC, 8, 1024, 1);
	long pg = getpagesize();
	struct sn_info i;
	void *m, *r;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &i));
	m = map(fd, 0, i.off.map_size, PROT_READ);
	ASSERT_NE(MAP_FAILED, m);
	/* Contains the kernel page: read-only for good. */
	errno = 0;
	EXPECT_EQ(-1, mprotect(m, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, write_faults(m));
	/* Cannot grow, even when allowed to move. */
	errno = 0;
	r = mremap(m, i.off.map_size, i.off.map_size + pg, MREMAP_MAYMOVE);
	EXPECT_EQ(MAP_FAILED, r);
	EXPECT_EQ(EFAULT, errno);
	EXPECT_EQ(0, munmap(m, i.off.map_size));

	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(fd, 0, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno) TH_LOG("writable kernel page");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, mmap(NULL, pg, PROT_READ, MAP_PRIVATE, fd, pg));
	EXPECT_EQ(EINVAL, errno) TH_LOG("MAP_PRIVATE");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(fd, i.off.cons, pg, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EPERM, errno) TH_LOG("PROT_EXEC");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(fd, i.off.map_size, pg, PROT_READ));
	EXPECT_EQ(EINVAL, errno) TH_LOG("offset at the end");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(fd, pg, i.off.map_size, PROT_READ));
	EXPECT_EQ(EINVAL, errno) TH_LOG("length past the end");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(fd, 1ULL << 40, pg, PROT_READ));
	EXPECT_EQ(EINVAL, errno) TH_LOG("offset far out");

	/* Everything past the kernel page is writable for the full fd. */
	m = map(fd, i.off.cons, i.off.map_size - i.off.cons,
		PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	memset(m, 0x5a, i.off.map_size - i.off.cons);
	errno = 0;
	EXPECT_EQ(-1, mprotect(m, pg, PROT_READ | PROT_EXEC));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect PROT_EXEC");
	munmap(m, i.off.map_size - i.off.cons);
	close(fd);
}

TEST(narrow_roles)
{
	int fd = create_simple(SN_RING_MPSC, 8, 16, 3);
	int p[4], c, c2;
	struct sn_info i;
	struct sn_kpage *kp;
	struct sn_narrow n;

	ASSERT_LE(0, fd);
	kp = map(fd, 0, getpagesize(), PROT_READ);
	ASSERT_NE(MAP_FAILED, kp);
	EXPECT_EQ(0, kp->lanes_live);
	for (int l = 0; l < 3; l++) {
		p[l] = narrow(fd, SN_ROLE_PRODUCER, SN_LANE_ANY);
		ASSERT_LE(0, p[l]);
		ASSERT_EQ(0, info(p[l], &i));
		EXPECT_EQ(SN_ROLE_PRODUCER, i.role);
		EXPECT_EQ(l, i.lane);
		EXPECT_EQ(FD_CLOEXEC, fcntl(p[l], F_GETFD) & FD_CLOEXEC);
	}
	EXPECT_EQ(7, kp->lanes_live);
	EXPECT_EQ(-EUSERS, narrow(fd, SN_ROLE_PRODUCER, SN_LANE_ANY));
	EXPECT_EQ(-EBUSY, narrow(fd, SN_ROLE_PRODUCER, 1));
	EXPECT_EQ(-EINVAL, narrow(fd, SN_ROLE_PRODUCER, 3));
	close(p[1]);
	EXPECT_EQ(5, kp->lanes_live);
	p[1] = narrow(fd, SN_ROLE_PRODUCER, 1);
	EXPECT_LE(0, p[1]);

	c = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, c);
	ASSERT_EQ(0, info(c, &i));
	EXPECT_EQ(SN_ROLE_CONSUMER, i.role);
	EXPECT_EQ(-EBUSY, narrow(fd, SN_ROLE_CONSUMER, 0)) TH_LOG("MPSC: one consumer");
	EXPECT_EQ(-EINVAL, narrow(fd, SN_ROLE_CONSUMER, 1));
	EXPECT_EQ(-EINVAL, narrow(fd, SN_ROLE_FULL, 0));
	EXPECT_EQ(-EINVAL, narrow(fd, 7, 0));
	/* Only the full fd narrows (and an MPMC consumer fd, see below). */
	EXPECT_EQ(-EPERM, narrow(c, SN_ROLE_CONSUMER, 0));
	EXPECT_EQ(-EPERM, narrow(p[0], SN_ROLE_PRODUCER, SN_LANE_ANY));

	n = (struct sn_narrow){ .size = sizeof(n), .role = SN_ROLE_CONSUMER,
				.flags = 1 };
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_NARROW, &n));
	EXPECT_EQ(EINVAL, errno) TH_LOG("flags");
	n.flags = 0;
	n.reserved[1] = 1;
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_NARROW, &n));
	EXPECT_EQ(EINVAL, errno) TH_LOG("reserved");
	n.reserved[1] = 0;
	n.size = 8;
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_NARROW, &n));
	EXPECT_EQ(EINVAL, errno) TH_LOG("size");

	/* The claim lives with the fd, not the ring: closing the ring's full
	 * fd leaves the narrowed ones working.
	 */
	close(fd);
	ASSERT_EQ(0, info(p[0], &i));
	close(c);
	for (int l = 0; l < 3; l++)
		close(p[l]);
	munmap(kp, getpagesize());

	/* MPMC takes several consumers. */
	fd = create_simple(SN_RING_MPMC, 8, 16, 2);
	ASSERT_LE(0, fd);
	c = narrow(fd, SN_ROLE_CONSUMER, 0);
	c2 = narrow(fd, SN_ROLE_CONSUMER, 0);
	EXPECT_LE(0, c);
	EXPECT_LE(0, c2);
	/* An MPMC consumer fd narrows to another consumer fd, only. */
	EXPECT_EQ(-EPERM, narrow(c, SN_ROLE_PRODUCER, SN_LANE_ANY));
	int c3 = narrow(c, SN_ROLE_CONSUMER, 0);

	EXPECT_LE(0, c3);
	close(c3);
	close(c);
	close(c2);
	close(fd);
}

TEST(narrowed_mappings)
{
	int fd = create_simple(SN_RING_MPSC, 8, 1024, 2);
	long pg = getpagesize();
	struct sn_info i;
	int prod, cons;
	char *m;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &i));
	prod = narrow(fd, SN_ROLE_PRODUCER, 1);
	cons = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, prod);
	ASSERT_LE(0, cons);

	/* Producer: its lane writable, the consumer region read-only, the
	 * other lane not at all.
	 */
	__u64 lane1 = i.off.lane0 + i.off.lane_size;

	m = map(prod, lane1, i.off.lane_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 1;
	munmap(m, i.off.lane_size);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(prod, i.off.cons, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(prod, i.off.lane0, pg, PROT_READ));
	EXPECT_EQ(EACCES, errno) TH_LOG("another producer's lane");
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(prod, 0, i.off.map_size, PROT_READ));
	EXPECT_EQ(EACCES, errno) TH_LOG("the whole ring");
	m = map(prod, i.off.cons, i.off.cons_size, PROT_READ);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(0, write_faults(m));
	errno = 0;
	EXPECT_EQ(-1, mprotect(m, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno) TH_LOG("mprotect lifts read-only");
	EXPECT_EQ(0, write_faults(m));
	munmap(m, i.off.cons_size);

	/* Consumer: its region writable, every lane read-only. */
	m = map(cons, i.off.cons, i.off.cons_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, m);
	m[0] = 1;
	munmap(m, i.off.cons_size);
	errno = 0;
	EXPECT_EQ(MAP_FAILED, map(cons, i.off.lane0, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	m = map(cons, 0, i.off.map_size, PROT_READ);
	ASSERT_NE(MAP_FAILED, m);
	EXPECT_EQ(0, write_faults(m + i.off.lane0 + i.off.slots));
	errno = 0;
	EXPECT_EQ(-1, mprotect(m + i.off.lane0, pg, PROT_READ | PROT_WRITE));
	EXPECT_EQ(EACCES, errno);
	EXPECT_EQ(0, write_faults(m + i.off.lane0));
	munmap(m, i.off.map_size);
	close(prod);
	close(cons);
	close(fd);
}

#define XPROC_MSGS 100000

TEST(fork_sharing)
{
	int fd = create_simple(SN_RING_SPSC, 8, 64, 1);
	struct view v;
	int status;
	pid_t pid;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		for (__u64 n = 0; n < XPROC_MSGS; n++)
			while (!raw_send(&v, n * 7 + 1))
				sched_yield();
		_exit(0);
	}
	for (__u64 n = 0, m; n < XPROC_MSGS; n++) {
		while (!raw_recv(&v, &m))
			sched_yield();
		ASSERT_EQ(n * 7 + 1, m);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status) && WEXITSTATUS(status) == 0);
	close(fd);
}

static int send_fd(int sock, int fd)
{
	char byte = 0, cbuf[CMSG_SPACE(sizeof(int))] = {};
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c = CMSG_FIRSTHDR(&msg);

	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock)
{
	char byte, cbuf[CMSG_SPACE(sizeof(int))];
	struct iovec iov = { .iov_base = &byte, .iov_len = 1 };
	struct msghdr msg = { .msg_iov = &iov, .msg_iovlen = 1,
			      .msg_control = cbuf, .msg_controllen = sizeof(cbuf) };
	struct cmsghdr *c;
	int fd;

	if (recvmsg(sock, &msg, 0) != 1)
		return -1;
	c = CMSG_FIRSTHDR(&msg);
	if (!c || c->cmsg_type != SCM_RIGHTS)
		return -1;
	memcpy(&fd, CMSG_DATA(c), sizeof(int));
	return fd;
}

/*
 * A process that knows nothing of the ring but the producer fd it receives:
 * it learns the layout from SN_IOC_INFO, maps what its role allows and
 * sends XPROC_MSGS messages.
 */
static int remote_producer(int sock)
{
	int fd = recv_fd(sock);
	struct sn_info i;
	char *cons, *lane;

	if (fd < 0 || info(fd, &i) || i.role != SN_ROLE_PRODUCER)
		return 1;
	cons = map(fd, i.off.cons, i.off.cons_size, PROT_READ);
	lane = map(fd, i.off.lane0 + i.lane * i.off.lane_size, i.off.lane_size,
		   PROT_READ | PROT_WRITE);
	if (cons == MAP_FAILED || lane == MAP_FAILED)
		return 2;
	_Atomic __u32 *tail = (_Atomic __u32 *)(lane + i.off.prod_tail);
	_Atomic __u32 *head = (_Atomic __u32 *)(cons + i.off.cons_lane +
						i.lane * SN_PAD * 2);

	for (__u32 n = 0; n < XPROC_MSGS; n++) {
		while (n - atomic_load_explicit(head, memory_order_acquire) >=
		       i.slots)
			sched_yield();
		*(__u64 *)(lane + i.off.slots +
			   (__u64)(n & (i.slots - 1)) * i.slot_size) = ~(__u64)n;
		atomic_store_explicit(tail, n + 1, memory_order_release);
	}
	return 0;
}

TEST(scm_rights_sharing)
{
	int sv[2], fd, prod, status;
	struct view v;
	pid_t pid;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		close(sv[0]);
		_exit(remote_producer(sv[1]));
	}
	close(sv[1]);
	/* The ring exists only after the fork: the fd is all the child gets. */
	fd = create_simple(SN_RING_SPSC, 8, 32, 1);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	prod = narrow(fd, SN_ROLE_PRODUCER, 0);
	ASSERT_LE(0, prod);
	ASSERT_EQ(0, send_fd(sv[0], prod));
	close(prod);
	for (__u32 n = 0; n < XPROC_MSGS; n++) {
		__u64 m;

		while (!raw_recv(&v, &m))
			sched_yield();
		ASSERT_EQ(~(__u64)n, m);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(fd);
}

TEST(poll_readiness)
{
	int fd = create_simple(SN_RING_SPSC, 8, 2, 1);
	int prod, cons;
	struct view v;
	__u64 m;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	prod = narrow(fd, SN_ROLE_PRODUCER, 0);
	cons = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, prod);
	ASSERT_LE(0, cons);

	EXPECT_EQ(POLLOUT, poll_mask(fd));
	EXPECT_EQ(POLLOUT, poll_mask(prod));
	EXPECT_EQ(0, poll_mask(cons));
	ASSERT_TRUE(raw_send(&v, 1));
	EXPECT_EQ(POLLIN | POLLOUT, poll_mask(fd));
	EXPECT_EQ(POLLIN, poll_mask(cons));
	ASSERT_TRUE(raw_send(&v, 2));
	EXPECT_EQ(POLLIN, poll_mask(fd));
	EXPECT_EQ(0, poll_mask(prod)) TH_LOG("full");
	ASSERT_TRUE(raw_recv(&v, &m));
	EXPECT_EQ(POLLOUT, poll_mask(prod));
	ASSERT_TRUE(raw_recv(&v, &m));
	EXPECT_EQ(0, poll_mask(cons));

	/* epoll, both ways. */
	struct epoll_event ev = { .events = EPOLLIN }, out;
	int ep = epoll_create1(EPOLL_CLOEXEC);

	ASSERT_LE(0, ep);
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, cons, &ev));
	ev.events = EPOLLOUT;
	ASSERT_EQ(0, epoll_ctl(ep, EPOLL_CTL_ADD, prod, &ev));
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 0));
	EXPECT_EQ(EPOLLOUT, out.events);
	ASSERT_TRUE(raw_send(&v, 3));
	ASSERT_TRUE(raw_send(&v, 4));
	ASSERT_EQ(0, ioctl(prod, SN_IOC_KICK, SN_KICK_CONSUMERS));
	ASSERT_EQ(1, epoll_wait(ep, &out, 1, 1000));
	EXPECT_EQ(EPOLLIN, out.events);
	close(ep);

	/* io_uring POLL_ADD completes on a kick after a publish. */
	struct io_uring ring;
	struct io_uring_cqe *cqe;

	ASSERT_TRUE(raw_recv(&v, &m));
	ASSERT_TRUE(raw_recv(&v, &m));
	ASSERT_EQ(0, io_uring_queue_init(4, &ring, 0));
	io_uring_prep_poll_add(io_uring_get_sqe(&ring), cons, POLLIN);
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_EQ(-EAGAIN, io_uring_peek_cqe(&ring, &cqe)) TH_LOG("ready while empty");
	ASSERT_TRUE(raw_send(&v, 5));
	ASSERT_EQ(0, ioctl(prod, SN_IOC_KICK, SN_KICK_CONSUMERS));
	struct __kernel_timespec ts = { .tv_sec = 5 };

	ASSERT_EQ(0, io_uring_wait_cqe_timeout(&ring, &cqe, &ts));
	EXPECT_EQ(POLLIN, cqe->res & (POLLIN | POLLOUT));
	io_uring_cqe_seen(&ring, cqe);

	/* And the other way: a full lane, then the consumer makes room. */
	ASSERT_TRUE(raw_send(&v, 6));
	io_uring_prep_poll_add(io_uring_get_sqe(&ring), prod, POLLOUT);
	ASSERT_EQ(1, io_uring_submit(&ring));
	EXPECT_EQ(-EAGAIN, io_uring_peek_cqe(&ring, &cqe)) TH_LOG("room while full");
	ASSERT_TRUE(raw_recv(&v, &m));
	ASSERT_EQ(0, ioctl(cons, SN_IOC_KICK, SN_KICK_PRODUCERS));
	ASSERT_EQ(0, io_uring_wait_cqe_timeout(&ring, &cqe, &ts));
	EXPECT_EQ(POLLOUT, cqe->res & (POLLIN | POLLOUT));
	io_uring_cqe_seen(&ring, cqe);
	io_uring_queue_exit(&ring);
	close(prod);
	close(cons);
	close(fd);
}

struct sleeper {
	struct view *v;
	int fd;
	int woke;	/* poll's return */
	__u64 msg;
};

/* The consumer's half of the sleep protocol in include/uapi/linux/sn.h. */
static void *consumer_sleep(void *arg)
{
	struct sleeper *s = arg;

	atomic_fetch_add(waiters_of(s->v), 1);
	atomic_thread_fence(memory_order_seq_cst);	/* [W1] */
	if (!raw_recv(s->v, &s->msg)) {
		struct pollfd p = { .fd = s->fd, .events = POLLIN };

		s->woke = poll(&p, 1, 10000);
		raw_recv(s->v, &s->msg);
	} else {
		s->woke = 1;
	}
	atomic_fetch_sub(waiters_of(s->v), 1);
	return NULL;
}

TEST(kick_wakes_sleeper)
{
	int fd = create_simple(SN_RING_SPSC, 8, 16, 1);
	struct sleeper s = { .msg = 0 };
	struct view v;
	pthread_t t;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	s.v = &v;
	s.fd = fd;
	ASSERT_EQ(0, pthread_create(&t, NULL, consumer_sleep, &s));
	usleep(100000);
	ASSERT_TRUE(raw_send(&v, 42));
	atomic_thread_fence(memory_order_seq_cst);	/* [P1] */
	if (atomic_load(waiters_of(&v)))
		ASSERT_EQ(0, ioctl(fd, SN_IOC_KICK, SN_KICK_CONSUMERS));
	pthread_join(t, NULL);
	EXPECT_EQ(1, s.woke);
	EXPECT_EQ(42, s.msg);
	close(fd);
}

TEST(kick_args)
{
	int fd = create_simple(SN_RING_MPSC, 8, 16, 2);
	int prod = narrow(fd, SN_ROLE_PRODUCER, SN_LANE_ANY);
	int cons = narrow(fd, SN_ROLE_CONSUMER, 0);

	ASSERT_LE(0, prod);
	ASSERT_LE(0, cons);
	EXPECT_EQ(0, ioctl(fd, SN_IOC_KICK, SN_KICK_CONSUMERS | SN_KICK_PRODUCERS));
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_KICK, 0));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(fd, SN_IOC_KICK, 4));
	EXPECT_EQ(EINVAL, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(prod, SN_IOC_KICK, SN_KICK_PRODUCERS));
	EXPECT_EQ(EPERM, errno);
	errno = 0;
	EXPECT_EQ(-1, ioctl(cons, SN_IOC_KICK, SN_KICK_CONSUMERS));
	EXPECT_EQ(EPERM, errno);
	EXPECT_EQ(0, ioctl(prod, SN_IOC_KICK, SN_KICK_CONSUMERS));
	EXPECT_EQ(0, ioctl(cons, SN_IOC_KICK, SN_KICK_PRODUCERS));
	close(prod);
	close(cons);
	close(fd);
}

static int memlock_child(void *arg)
{
	struct rlimit rl = { 64 << 10, 64 << 10 };
	int fd;

	(void)arg;
	if (setrlimit(RLIMIT_MEMLOCK, &rl))
		return 10;
	/* 16 pages of slots and more: over the 64 KiB limit. */
	fd = create_simple(SN_RING_SPSC, 64, 1024, 1);
	if (fd != -ENOMEM)
		return 11;
	/* Within it, again and again: every ring's charge is returned. */
	for (int n = 0; n < 200; n++) {
		fd = create_simple(SN_RING_SPSC, 8, 512, 1);
		if (fd < 0)
			return 12;
		close(fd);
	}
	/* Two live rings of 5 pages fit; a third of 7 more does not. */
	int a = create_simple(SN_RING_SPSC, 8, 1024, 1);
	int b = create_simple(SN_RING_SPSC, 8, 1024, 1);
	int c = create_simple(SN_RING_SPSC, 8, 2048, 1);

	if (a < 0 || b < 0 || c != -ENOMEM)
		return 13;
	return 0;
}

TEST(memlock_limit)
{
	EXPECT_EQ(0, as_nobody(memlock_child, NULL));
}

static int rings_limit_child(void *arg)
{
	int fds[4];

	(void)arg;
	for (int n = 0; n < 4; n++)
		if ((fds[n] = create_simple(SN_RING_SPSC, 8, 16, 1)) < 0)
			return 20 + n;
	return create_simple(SN_RING_SPSC, 8, 16, 1) == -EMFILE ? 0 : 30;
}

#define CG "/sys/fs/cgroup"

/* Ring pages are charged to the creator's memory cgroup. */
TEST(memcg_charged)
{
	char pid[32];
	int status;
	pid_t child;

	if (access(CG "/cgroup.controllers", F_OK) &&
	    mount("none", CG, "cgroup2", 0, NULL))
		SKIP(return, "cannot mount cgroup2: %s", strerror(errno));
	if (write_str(CG "/cgroup.subtree_control", "+memory"))
		SKIP(return, "no memory controller: %s", strerror(errno));
	rmdir(CG "/sn_test");
	ASSERT_EQ(0, mkdir(CG "/sn_test", 0755));
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		long before, after;
		int fd;

		snprintf(pid, sizeof(pid), "%d", getpid());
		if (write_str(CG "/sn_test/cgroup.procs", pid))
			_exit(1);
		before = read_long(CG "/sn_test/memory.current");
		fd = create_simple(SN_RING_SPSC, 4096, 1024, 1);	/* 4 MiB */
		after = read_long(CG "/sn_test/memory.current");
		if (fd < 0 || before < 0)
			_exit(2);
		_exit(after - before >= (4L << 20) ? 0 : 3);
	}
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	EXPECT_EQ(0, rmdir(CG "/sn_test"));
}

TEST(rings_per_user_limit)
{
	ASSERT_EQ(0, set_param("max_rings_per_user", "4"));
	EXPECT_EQ(0, as_nobody(rings_limit_child, NULL));
	ASSERT_EQ(0, set_param("max_rings_per_user", "1024"));
}

TEST(listing)
{
	struct sn_create p = params(SN_RING_MPSC, 16, 8, 2);
	char line[512], type[8];
	unsigned int pid, uid, lanes, slots, slot_size, depth, cpu, node, prods,
		     conss;
	unsigned long long id;
	struct view v;
	int fd, prod;

	p.flags = SN_CREATE_HOME_CPU;
	p.home_cpu = 0;
	fd = create(&p);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	prod = narrow(fd, SN_ROLE_PRODUCER, SN_LANE_ANY);
	ASSERT_LE(0, prod);
	/* Three messages queued in lane 0, two in lane 1. */
	atomic_store(tail_of(&v, 0), 3);
	atomic_store(tail_of(&v, 1), 2);

	FILE *f = fopen("/proc/sn/rings", "r");

	ASSERT_NE(NULL, f);
	ASSERT_NE(NULL, fgets(line, sizeof(line), f));
	EXPECT_EQ(0, strncmp(line, "# id type pid uid lanes slots slot_size depth home_cpu node producers consumers sleepers", 88));
	fclose(f);
	listing_line(v.i.id, line, sizeof(line));
	ASSERT_EQ(12, sscanf(line, "%llu %7s %u %u %u %u %u %u %u %u %u %u",
			     &id, type, &pid, &uid, &lanes, &slots, &slot_size,
			     &depth, &cpu, &node, &prods, &conss)) TH_LOG("%s", line);
	EXPECT_STREQ("mpsc", type);
	EXPECT_EQ(getpid(), pid);
	EXPECT_EQ(getuid(), uid);
	EXPECT_EQ(2, lanes);
	EXPECT_EQ(8, slots);
	EXPECT_EQ(16, slot_size);
	EXPECT_EQ(5, depth);
	EXPECT_EQ(0, cpu);
	EXPECT_EQ(v.i.numa_node, node);
	EXPECT_EQ(1, prods);
	EXPECT_EQ(0, conss);
	close(prod);
	close(fd);
	/* The mapping still holds the ring. */
	listing_line(v.i.id, line, sizeof(line));
	EXPECT_NE(0, line[0]);
	munmap(v.base, v.i.off.map_size);
	listing_line(v.i.id, line, sizeof(line));
	EXPECT_EQ(0, line[0]) TH_LOG("still listed: %s", line);
}

/* Runs @fn in a child as root; returns its exit code. */
static int in_child(int (*fn)(void *), void *arg)
{
	int status;
	pid_t pid = fork();

	if (pid == 0)
		_exit(fn(arg));
	if (pid < 0 || waitpid(pid, &status, 0) != pid || !WIFEXITED(status))
		return -1;
	return WEXITSTATUS(status);
}

static int pin_to(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	return sched_setaffinity(0, sizeof(set), &set);
}

static int create_home(int cpu, bool flag)
{
	struct sn_create p = params(SN_RING_SPSC, 8, 16, 1);

	if (flag) {
		p.flags = SN_CREATE_HOME_CPU;
		p.home_cpu = cpu;
	}
	return create(&p);
}

/* Pinned to CPU 0, then to CPU 1: home_cpu only within the mask. */
static int home_cpu_mask_child(void *arg)
{
	struct sn_info i;
	int fd;

	(void)arg;
	if (pin_to(0))
		return 10;
	if (create_home(1, true) != -EINVAL)
		return 11;
	fd = create_home(0, true);
	if (fd < 0)
		return 12;
	close(fd);
	/* No home given: the CPU it runs on, so within the mask too. */
	fd = create_home(0, false);
	if (fd < 0 || info(fd, &i) || i.home_cpu != 0)
		return 13;
	close(fd);
	if (pin_to(1))
		return 14;
	if (create_home(0, true) != -EINVAL)
		return 15;
	fd = create_home(1, true);
	if (fd < 0 || info(fd, &i) || i.home_cpu != 1)
		return 16;
	close(fd);
	return 0;
}

/* home_cpu outside the caller's allowed CPUs: EINVAL, for root too. */
TEST(home_cpu_outside_mask)
{
	if (sysconf(_SC_NPROCESSORS_ONLN) < 2)
		SKIP(return, "one CPU: no CPU outside the mask");
	EXPECT_EQ(0, in_child(home_cpu_mask_child, NULL));
	EXPECT_EQ(0, as_nobody(home_cpu_mask_child, NULL));
}

/*
 * A size field above a page: E2BIG before the kernel scans or clears
 * anything. The buffer is two pages, so an uncapped scan of 2 GiB would end
 * in EFAULT instead; a size of exactly a page with a zero tail is accepted.
 */
TEST(struct_size_caps)
{
	const __u32 sizes[] = { 0x80000000U, 0xffffffffU,
				(__u32)getpagesize() + 8 };
	size_t pg = getpagesize();
	char *buf = mmap(NULL, 2 * pg, PROT_READ | PROT_WRITE,
			 MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	struct sn_create *c = (struct sn_create *)buf;
	struct sn_narrow *n = (struct sn_narrow *)buf;
	struct sn_info *i = (struct sn_info *)buf;
	int dev = dev_fd(), fd, nfd;

	ASSERT_NE(MAP_FAILED, buf);
	ASSERT_LE(0, dev);
	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		memset(buf, 0, 2 * pg);
		*c = params(SN_RING_SPSC, 8, 16, 1);
		c->size = sizes[k];
		errno = 0;
		EXPECT_EQ(-1, ioctl(dev, SN_IOC_CREATE, c)) TH_LOG("%#x", sizes[k]);
		EXPECT_EQ(E2BIG, errno) TH_LOG("CREATE size %#x", sizes[k]);
	}
	memset(buf, 0, 2 * pg);
	*c = params(SN_RING_SPSC, 8, 16, 1);
	c->size = pg;
	fd = ioctl(dev, SN_IOC_CREATE, c);
	ASSERT_LE(0, fd);

	for (size_t k = 0; k < sizeof(sizes) / sizeof(sizes[0]); k++) {
		memset(buf, 0, 2 * pg);
		n->size = sizes[k];
		n->role = SN_ROLE_PRODUCER;
		n->lane = SN_LANE_ANY;
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, SN_IOC_NARROW, n));
		EXPECT_EQ(E2BIG, errno) TH_LOG("NARROW size %#x", sizes[k]);

		/* INFO refuses before writing: the buffer keeps its bytes. */
		memset(buf, 0xa5, 2 * pg);
		i->size = sizes[k];
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, SN_IOC_INFO, i));
		EXPECT_EQ(E2BIG, errno) TH_LOG("INFO size %#x", sizes[k]);
		EXPECT_EQ(sizes[k], i->size);
		size_t written = 0;

		for (size_t b = sizeof(i->size); b < 2 * pg; b++)
			written += (unsigned char)buf[b] != 0xa5;
		EXPECT_EQ(0, written) TH_LOG("INFO size %#x", sizes[k]);
	}
	memset(buf, 0, 2 * pg);
	n->size = pg;
	n->role = SN_ROLE_PRODUCER;
	n->lane = SN_LANE_ANY;
	nfd = ioctl(fd, SN_IOC_NARROW, n);
	EXPECT_LE(0, nfd);
	close(nfd);
	memset(buf, 0xa5, 2 * pg);
	i->size = pg;
	ASSERT_EQ(0, ioctl(fd, SN_IOC_INFO, i));
	EXPECT_EQ(sizeof(*i), i->size);
	EXPECT_EQ(0, (unsigned char)buf[pg - 1]);
	EXPECT_EQ(0xa5, (unsigned char)buf[pg]);
	close(fd);
	close(dev);
	munmap(buf, 2 * pg);
}

/* Writes @value to parameter @name: 0 or the write's errno. */
static int param_write_errno(const char *name, const char *value)
{
	char path[128];
	int fd, ret = 0;

	snprintf(path, sizeof(path), "/sys/module/sn/parameters/%s", name);
	fd = open(path, O_WRONLY);
	if (fd < 0)
		return errno;
	if (write(fd, value, strlen(value)) != (ssize_t)strlen(value))
		ret = errno ? errno : EIO;
	close(fd);
	return ret;
}

static long param_value(const char *name)
{
	char path[128];

	snprintf(path, sizeof(path), "/sys/module/sn/parameters/%s", name);
	return read_long(path);
}

static const struct {
	const char *name;
	long min, max;
} sn_param_range[] = {
	{ "max_slots", 1, 1L << 24 },
	{ "max_slot_size", 8, 1L << 20 },
	{ "max_ring_mb", 1, 65536 },
	{ "max_rings_per_user", 1, 65536 },
	{ "poll_idle_us", 0, 10000000 },
};

/*
 * Every numeric parameter refuses values outside its range (EINVAL; a
 * number beyond 32 bits ERANGE) and keeps its value; its bounds are
 * accepted. Each is restored.
 */
TEST(param_caps)
{
	const size_t n = sizeof(sn_param_range) / sizeof(sn_param_range[0]);

	for (size_t k = 0; k < n; k++) {
		const char *name = sn_param_range[k].name;
		long old = param_value(name);
		char v[32];

		ASSERT_LE(0, old) TH_LOG("%s", name);
		snprintf(v, sizeof(v), "%ld", sn_param_range[k].max + 1);
		EXPECT_EQ(EINVAL, param_write_errno(name, v)) TH_LOG("%s=%s", name, v);
		EXPECT_EQ(old, param_value(name)) TH_LOG("%s", name);
		EXPECT_EQ(EINVAL, param_write_errno(name, "2147483648"))
			TH_LOG("%s", name);
		EXPECT_EQ(EINVAL, param_write_errno(name, "4294967295"))
			TH_LOG("%s", name);
		EXPECT_EQ(ERANGE, param_write_errno(name, "4294967296"))
			TH_LOG("%s", name);
		EXPECT_EQ(EINVAL, param_write_errno(name, "-1")) TH_LOG("%s", name);
		EXPECT_EQ(EINVAL, param_write_errno(name, "many"))
			TH_LOG("%s", name);
		if (sn_param_range[k].min > 0) {
			snprintf(v, sizeof(v), "%ld", sn_param_range[k].min - 1);
			EXPECT_EQ(EINVAL, param_write_errno(name, v))
				TH_LOG("%s=%s", name, v);
		}
		EXPECT_EQ(old, param_value(name)) TH_LOG("%s", name);
		snprintf(v, sizeof(v), "%ld", sn_param_range[k].max);
		EXPECT_EQ(0, param_write_errno(name, v)) TH_LOG("%s=%s", name, v);
		EXPECT_EQ(sn_param_range[k].max, param_value(name)) TH_LOG("%s", name);
		snprintf(v, sizeof(v), "%ld", sn_param_range[k].min);
		EXPECT_EQ(0, param_write_errno(name, v)) TH_LOG("%s=%s", name, v);
		EXPECT_EQ(sn_param_range[k].min, param_value(name)) TH_LOG("%s", name);
		snprintf(v, sizeof(v), "%ld", old);
		ASSERT_EQ(0, param_write_errno(name, v)) TH_LOG("%s", name);
		EXPECT_EQ(old, param_value(name));
	}
}

/*
 * With the size parameters at their caps, the largest geometries either
 * work or fail cleanly (EINVAL above the caps, ENOMEM beyond the guest's
 * memory), and a large ring that does work has every lane where the layout
 * says: the kernel's reads of the last lane and the last release word see
 * what userspace wrote there.
 */
TEST(largest_geometry)
{
	static const char *const names[] = { "max_slots", "max_slot_size",
					     "max_ring_mb" };
	const struct {
		const char *what;
		struct sn_create p;
		int err;	/* 0: any clean outcome */
	} cases[] = {
		{ "the old wrap", params(SN_RING_MPMC, 1U << 27, 1U << 31, 64),
		  EINVAL },
		{ "slots over the cap", params(SN_RING_SPSC, 8, 1U << 25, 1),
		  EINVAL },
		{ "slot_size over the cap", params(SN_RING_SPSC, 2U << 20, 1, 1),
		  EINVAL },
		{ "2^50 bytes", params(SN_RING_MPMC, 1U << 20, 1U << 24, 64),
		  EINVAL },
		{ "128 GiB", params(SN_RING_MPSC, 1U << 20, 1U << 16, 2),
		  EINVAL },
		{ "64 GiB", params(SN_RING_MPSC, 1U << 20, 1U << 16, 1), 0 },
		{ "8 GiB of MPMC slots, 4 GiB release words",
		  params(SN_RING_MPMC, 8, 1U << 24, 64), 0 },
	};
	long old[3];
	struct view v;
	int fd;

	for (int k = 0; k < 3; k++) {
		old[k] = param_value(names[k]);
		ASSERT_LE(0, old[k]);
	}
	ASSERT_EQ(0, set_param("max_slots", "16777216"));
	ASSERT_EQ(0, set_param("max_slot_size", "1048576"));
	ASSERT_EQ(0, set_param("max_ring_mb", "65536"));

	for (size_t k = 0; k < sizeof(cases) / sizeof(cases[0]); k++) {
		fd = create(&cases[k].p);
		if (cases[k].err) {
			EXPECT_EQ(-cases[k].err, fd) TH_LOG("%s", cases[k].what);
		} else if (fd < 0) {
			EXPECT_TRUE(fd == -ENOMEM || fd == -EINVAL)
				TH_LOG("%s: %s", cases[k].what, strerror(-fd));
		} else {
			struct sn_info i;

			EXPECT_EQ(0, info(fd, &i));
		}
		if (fd >= 0)
			close(fd);
	}

	/* 64 lanes of 2^16 slots, 32 MiB of slots: lane 63 and its words. */
	fd = create_simple(SN_RING_MPMC, 8, 1U << 16, 64);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	{
		struct sn_geometry g = { SN_RING_MPMC, 8, 1U << 16, 64, 0, 0, 0 };
		struct sn_offsets want;
		__u32 *rel = (__u32 *)(v.base + v.i.off.cons +
				       v.i.off.cons_release);

		sn_ring_layout(&g, getpagesize(), &want);
		EXPECT_EQ(0, memcmp(&want, &v.i.off, sizeof(want)));
		for (__u32 lane = 0; lane < 64; lane += 63)
			for (__u32 pos = 0; pos < (1U << 16); pos += 4095)
				EXPECT_EQ(pos, rel[lane * (1U << 16) + pos]);
		/* The kernel reads lane 63 where userspace writes it. */
		char line[512];
		unsigned int depth;
		int prod = narrow(fd, SN_ROLE_PRODUCER, 63);

		ASSERT_LE(0, prod);
		atomic_store(tail_of(&v, 63), 5);
		listing_line(v.i.id, line, sizeof(line));
		ASSERT_EQ(1, sscanf(line, "%*u %*s %*u %*u %*u %*u %*u %u",
				    &depth)) TH_LOG("%s", line);
		EXPECT_EQ(5, depth);
		EXPECT_EQ(POLLOUT, poll_mask(prod) & POLLOUT);
		rel[63 * (1U << 16) + 5] = 0;	/* slot 5 not released */
		EXPECT_EQ(0, poll_mask(prod) & POLLOUT);
		rel[63 * (1U << 16) + 5] = 5;
		EXPECT_EQ(POLLOUT, poll_mask(prod) & POLLOUT);
		*slot_of(&v, 63, (1U << 16) - 1) = 42;
		EXPECT_EQ(42, *slot_of(&v, 63, (1U << 16) - 1));
		close(prod);
	}
	munmap(v.base, v.i.off.map_size);
	close(fd);

	for (int k = 0; k < 3; k++) {
		char val[32];

		snprintf(val, sizeof(val), "%ld", old[k]);
		EXPECT_EQ(0, set_param(names[k], val));
	}
}

/* Fields of ring @id's listing line: 0, or -1 if the reader does not see it. */
static int listed(__u64 id, unsigned int *pid, unsigned int *uid)
{
	char line[512];

	listing_line(id, line, sizeof(line));
	if (!line[0] ||
	    sscanf(line, "%*u %*s %u %u", pid, uid) != 2)
		return -1;
	return 0;
}

struct listing_ids {
	__u64 root_id;
	int to_parent;		/* write end: what the child reports */
	int from_parent;	/* read end: the parent is done looking */
};

/* Made by nobody: sees its own ring (pid, uid its own), none of root's. */
static int listing_nobody_child(void *arg)
{
	struct listing_ids *ids = arg;
	unsigned int pid, uid;
	struct sn_info i;
	char c;
	int fd;

	fd = create_simple(SN_RING_MPSC, 8, 16, 2);
	if (fd < 0 || info(fd, &i))
		return 10;
	if (listed(ids->root_id, &pid, &uid) != -1)
		return 11;
	if (listed(i.id, &pid, &uid) || pid != (unsigned int)getpid() ||
	    uid != 65534)
		return 12;
	if (listing_count() != 1)
		return 13;
	if (write(ids->to_parent, &i.id, sizeof(i.id)) != sizeof(i.id) ||
	    read(ids->from_parent, &c, 1) != 1)
		return 14;
	close(fd);
	return 0;
}

/*
 * The listing shows a ring only to its creator's uid (and root): nobody
 * sees its own ring, not root's; root sees nobody's, with uid 65534.
 */
TEST(listing_per_user)
{
	struct listing_ids ids;
	int up[2], down[2], fd, status;
	unsigned int pid, uid;
	struct sn_info i;
	__u64 id;
	pid_t child;

	fd = create_simple(SN_RING_SPSC, 8, 16, 1);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &i));
	ids.root_id = i.id;
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	ids.to_parent = up[1];
	ids.from_parent = down[0];
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(100);
		_exit(listing_nobody_child(&ids));
	}
	close(up[1]);
	if (read(up[0], &id, sizeof(id)) == sizeof(id)) {
		EXPECT_EQ(0, listed(id, &pid, &uid));
		EXPECT_EQ(child, pid);
		EXPECT_EQ(65534, uid);
	}
	EXPECT_EQ(0, listed(ids.root_id, &pid, &uid));
	EXPECT_EQ(1, write(down[1], "x", 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
	close(up[0]);
	close(down[0]);
	close(down[1]);
	close(fd);
}

static int write_file(const char *path, const char *s)
{
	return write_str(path, s) ? 10 : 0;
}

/*
 * The child of listing_userns: nobody, then new user and pid namespaces
 * (uid 65534 mapped to itself); its child, pid 1 there, makes a ring.
 */
static int listing_userns_child(void *arg)
{
	struct listing_ids *ids = arg;
	int status;
	pid_t gc;

	if (setgid(65534) || setuid(65534))
		return 100;
	/* setuid made us non-dumpable: /proc/self would be root's. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		return 101;
	if (unshare(CLONE_NEWUSER | CLONE_NEWPID))
		return KSFT_SKIP;
	if (write_file("/proc/self/uid_map", "65534 65534 1"))
		return 102;
	gc = fork();
	if (gc < 0)
		return 103;
	if (gc == 0) {
		if (getpid() != 1)
			_exit(104);
		_exit(listing_nobody_child(ids));
	}
	/* The grandchild's pid as the parent sees it, after its id. */
	if (waitpid(gc, &status, 0) != gc || !WIFEXITED(status))
		return 105;
	return WEXITSTATUS(status);
}

/*
 * In a new user namespace as a non-root uid: none of root's rings, its own
 * ring listed with its pid in its pid namespace (1); root sees that ring
 * with the pid in the initial namespace.
 */
TEST(listing_userns)
{
	struct listing_ids ids;
	int up[2], down[2], fd, status;
	unsigned int pid, uid;
	struct sn_info i;
	__u64 id;
	pid_t child;

	/* A kernel may be built without either. */
	if (access("/proc/self/ns/user", F_OK) ||
	    access("/proc/self/ns/pid", F_OK))
		SKIP(return, "kernel without CONFIG_USER_NS or CONFIG_PID_NS");
	fd = create_simple(SN_RING_SPSC, 8, 16, 1);
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, info(fd, &i));
	ids.root_id = i.id;
	ASSERT_EQ(0, pipe(up));
	ASSERT_EQ(0, pipe(down));
	ids.to_parent = up[1];
	ids.from_parent = down[0];
	child = fork();
	ASSERT_LE(0, child);
	if (child == 0)
		_exit(listing_userns_child(&ids));
	close(up[1]);
	if (read(up[0], &id, sizeof(id)) == sizeof(id)) {
		EXPECT_EQ(0, listed(id, &pid, &uid));
		/* Not pid 1 here: the grandchild's pid in our namespace. */
		EXPECT_NE(1, pid);
		EXPECT_NE(0, pid);
		EXPECT_EQ(65534, uid);
	}
	EXPECT_EQ(1, write(down[1], "x", 1));
	ASSERT_EQ(child, waitpid(child, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	if (WEXITSTATUS(status) == KSFT_SKIP)
		SKIP(goto out, "unprivileged user namespaces are disabled");
	EXPECT_EQ(0, WEXITSTATUS(status));
out:
	close(up[0]);
	close(down[0]);
	close(down[1]);
	close(fd);
}

TEST(create_map_close_cycles)
{
	int before = listing_count();

	for (int n = 0; n < 1000; n++) {
		__u32 type = 1 + n % 3;
		int fd = create_simple(type, 8 << (n % 3), 16 << (n % 4),
				       type == SN_RING_SPSC ? 1 : 1 + n % 4);
		struct view v;

		ASSERT_LE(0, fd) TH_LOG("cycle %d", n);
		ASSERT_EQ(0, view_open(&v, fd));
		v.base[v.i.off.lane0 + v.i.off.slots] = 1;
		if (n % 2) {
			int p = narrow(fd, SN_ROLE_PRODUCER, SN_LANE_ANY);

			ASSERT_LE(0, p);
			close(p);
		}
		munmap(v.base, v.i.off.map_size);
		close(fd);
	}
	EXPECT_EQ(before, listing_count());
}

static void *churn(void *arg)
{
	long bad = 0;

	(void)arg;
	for (int n = 0; n < 200; n++) {
		int fd = create_simple(SN_RING_MPMC, 8, 64, 2);
		struct view v;

		if (fd < 0 || view_open(&v, fd)) {
			bad++;
			continue;
		}
		int c = narrow(fd, SN_ROLE_CONSUMER, 0);

		if (c < 0)
			bad++;
		poll_mask(fd);
		close(c);
		close(fd);
		munmap(v.base, v.i.off.map_size);
	}
	return (void *)bad;
}

TEST(concurrent_create_close)
{
	pthread_t t[4];
	int before = listing_count();
	void *bad;

	for (int n = 0; n < 4; n++)
		ASSERT_EQ(0, pthread_create(&t[n], NULL, churn, NULL));
	for (int n = 0; n < 4; n++) {
		pthread_join(t[n], &bad);
		EXPECT_EQ(NULL, bad);
	}
	EXPECT_EQ(before, listing_count());
}

/*
 * A peer writes random values into every byte it may write (consumer region
 * and lanes) while the kernel polls the ring and lists it, and an honest
 * consumer keeps reading through the same garbage. Nothing may happen but
 * garbage messages: no kernel report (the runner scans the log), no hang.
 */
TEST(scribbler)
{
	int fd = create_simple(SN_RING_MPMC, 8, 16, 4);
	struct view v;
	pid_t pid;
	int status;
	char line[512];

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	pid = fork();
	ASSERT_LE(0, pid);
	if (pid == 0) {
		__u64 s = 0x9e3779b97f4a7c15ULL;
		__u64 *w = (__u64 *)(v.base + v.i.off.cons);
		size_t words = (v.i.off.map_size - v.i.off.cons) / 8;
		struct timespec end, now;

		clock_gettime(CLOCK_MONOTONIC, &end);
		end.tv_sec += 2;
		do {
			for (int k = 0; k < 4096; k++)
				w[xorshift(&s) % words] = xorshift(&s);
			/* Sometimes the fields the kernel reads, exactly. */
			atomic_store(tail_of(&v, xorshift(&s) % 4), xorshift(&s));
			atomic_store(head_of(&v, xorshift(&s) % 4), xorshift(&s));
			clock_gettime(CLOCK_MONOTONIC, &now);
		} while (now.tv_sec < end.tv_sec ||
			 (now.tv_sec == end.tv_sec && now.tv_nsec < end.tv_nsec));
		_exit(0);
	}
	int cons = narrow(fd, SN_ROLE_CONSUMER, 0);

	ASSERT_LE(0, cons);
	for (int n = 0; n < 2000; n++) {
		struct pollfd p = { .fd = cons, .events = POLLIN };

		ASSERT_LE(0, poll(&p, 1, 0));
		EXPECT_EQ(0, poll_mask(fd) & ~(POLLIN | POLLOUT));
		if (n % 100 == 0) {
			listing_line(v.i.id, line, sizeof(line));
			EXPECT_NE(0, line[0]);
		}
		ioctl(fd, SN_IOC_KICK, SN_KICK_CONSUMERS | SN_KICK_PRODUCERS);
	}
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	/* Depth in the listing stays within what the ring can hold. */
	unsigned int depth;
	char type[8];

	listing_line(v.i.id, line, sizeof(line));
	ASSERT_EQ(2, sscanf(line, "%*u %7s %*u %*u %*u %*u %*u %u", type, &depth));
	EXPECT_GE(4 * 16, depth);
	close(cons);
	close(fd);
}

/*
 * Varlen rings' records (uapi "Records"): what a producer leaves past its
 * tail, the room it waits for, and garbage in the headers.
 */

/* The header of position @pos (masked) of the lane mapped at @lane. */
static struct sn_slot *var_slot(const struct sn_info *i, char *lane, __u32 pos)
{
	return (struct sn_slot *)(lane + i->off.slots +
				  (__u64)(pos & (i->slots - 1)) * i->off.stride);
}

static _Atomic __u32 *var_word(char *lane, __u32 off)
{
	return (_Atomic __u32 *)(lane + off);
}

/* A header as a producer writes it: @seq is pos + 1 when committed. */
struct var_rec {
	__u32 pos;
	__u32 seq;
	__u32 len;
};

/*
 * Writes @n headers into the lane mapped at @lane, in order, as a producer
 * commits a record: the message (only where the length is a valid record
 * there: the rest would leave the lane), the len, then seq with release.
 * A later entry may land inside an earlier record's message: that is
 * message bytes that look like a header.
 */
static void var_write(const struct sn_info *i, char *lane,
		      const struct var_rec *r, unsigned int n)
{
	__u32 shift = sn_log2(i->off.stride);

	for (unsigned int k = 0; k < n; k++) {
		struct sn_slot *s = var_slot(i, lane, r[k].pos);
		__u32 idx = r[k].pos & (i->slots - 1);

		if (r[k].len <= SN_SLOT_LEN &&
		    sn_record_span(r[k].len, idx, i->slots, shift))
			memset(s + 1, 0xa0 + k, r[k].len);
		s->len = r[k].len;
		atomic_store_explicit((_Atomic __u32 *)&s->seq, r[k].seq,
				      memory_order_release);
	}
}

/*
 * One dead producer on lane 1 of a fresh MPSC varlen ring of 32 slots of
 * 16 bytes (slot_size 8): tail and head start at @start, the producer fd
 * writes @r through its own mapping of its lane and goes without storing
 * the tail. Returns the tail the kernel left.
 */
static __u32 var_orphans(struct __test_metadata *_metadata, __u32 start,
			 const struct var_rec *r, unsigned int n)
{
	int fd = varlen_ring(SN_RING_MPSC, 8, 32, 2), prod;
	struct view v;
	char *lane;
	__u32 tail;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	ASSERT_EQ(16, v.i.off.stride);
	atomic_store(tail_of(&v, 1), start);
	atomic_store(head_of(&v, 1), start);
	prod = narrow(fd, SN_ROLE_PRODUCER, 1);
	ASSERT_LE(0, prod);
	lane = map(prod, v.i.off.lane0 + v.i.off.lane_size, v.i.off.lane_size,
		   PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, lane);
	var_write(&v.i, lane, r, n);
	EXPECT_EQ(start, atomic_load(tail_of(&v, 1)));
	/* The mapping holds the file too: the fd goes with the last of both. */
	munmap(lane, v.i.off.lane_size);
	close(prod);
	tail = atomic_load(tail_of(&v, 1));
	/* Lane 0 had no producer: nothing of it moves. */
	EXPECT_EQ(0, atomic_load(tail_of(&v, 0)));
	munmap(v.base, v.i.off.map_size);
	close(fd);
	return tail;
}

/*
 * A varlen producer that stored its records' headers and went before its
 * tail store committed them all the same, and only whole, valid records:
 * the kernel moves the tail record by record (sn_record_span() of each
 * len, read once) and stops at the first header that is not the record
 * at its position, a bad length, or a record that would cross the lane
 * end. Stride 16, 32 slots: a record of len bytes takes
 * (len + 8 + 15) / 16 slots, at most 31 (len 488).
 */
TEST(varlen_orphans_commit_whole_records)
{
	/* 1, 3, 1, 13, 7 slots, then padding over the last 7: a lap. */
	const struct var_rec lap[] = {
		{ 0, 1, 8 }, { 1, 2, 40 }, { 4, 5, 0 }, { 5, 6, 200 },
		{ 18, 19, 100 }, { 25, 26, SN_SLOT_PAD },
	};
	/* From 20, over the lane end: padding at 30, records at slot 0. */
	const struct var_rec wrap[] = {
		{ 20, 21, 8 }, { 21, 22, 40 }, { 24, 25, 0 }, { 25, 26, 60 },
		{ 30, 31, SN_SLOT_PAD }, { 32, 33, 100 }, { 39, 40, 24 },
		{ 41, 0, 0 },	/* the terminator */
	};
	/* Inside the record at 1 (slots 1-3), message bytes like a header. */
	const struct var_rec inner[] = {
		{ 0, 1, 8 }, { 1, 2, 40 }, { 2, 3, 8 }, { 3, 4, 8 },
		{ 4, 5, 24 },
	};
	/* The longest message (31 slots) at slot 0, then at slot 1. */
	const struct var_rec longest[] = { { 0, 1, 488 }, { 31, 32, 8 } };
	const struct var_rec longest_at_1[] = { { 0, 1, 8 }, { 1, 2, 488 } };
	const struct {
		const char *what;
		__u32 start;
		struct var_rec r[8];
		unsigned int n;
		__u32 want;
	} stops[] = {
		/* a length with flag bits stops the walk before it */
		{ "len 1<<30", 0, { { 0, 1, 8 }, { 1, 2, 1U << 30 },
				    { 2, 3, 8 } }, 3, 1 },
		{ "len 1<<30 | 8", 0, { { 0, 1, 8 }, { 1, 2, (1U << 30) | 8 },
					{ 2, 3, 8 } }, 3, 1 },
		{ "pad | 8", 0, { { 0, 1, 24 }, { 2, 3, SN_SLOT_PAD | 8 },
				  { 3, 4, 8 } }, 3, 2 },
		{ "len ~0", 0, { { 0, 1, 8 }, { 1, 2, 0xffffffff } }, 2, 1 },
		{ "len SN_SLOT_LEN", 0, { { 0, 1, 8 }, { 1, 2, SN_SLOT_LEN } },
		  2, 1 },
		{ "len max + 1", 0, { { 0, 1, 489 } }, 1, 0 },
		/* 7 slots from slot 26: one past the lane end */
		{ "crosses the end", 0, { { 0, 1, 8 }, { 1, 2, 376 },
					  { 25, 26, 8 }, { 26, 27, 100 } },
		  4, 26 },
		/* the longest message fits at slots 0 and 1, not at 2 */
		{ "longest at 2", 0, { { 0, 1, 8 }, { 1, 2, 0 },
				       { 2, 3, 488 } }, 3, 2 },
		/* a padding record at slot 0 is no record */
		{ "pad at slot 0", 32, { { 32, 33, SN_SLOT_PAD },
					 { 33, 34, 8 } }, 2, 32 },
		/* a seq that is not the position + 1 */
		{ "seq pos", 0, { { 0, 1, 8 }, { 1, 2, 40 }, { 4, 4, 8 },
				  { 5, 6, 8 } }, 4, 4 },
		{ "seq pos + 2", 0, { { 0, 1, 8 }, { 1, 2, 40 }, { 4, 6, 8 },
				      { 5, 6, 8 } }, 4, 4 },
		{ "seq a lap ago", 64, { { 64, 65, 8 }, { 65, 34, 8 } }, 2, 65 },
		{ "seq 0", 0, { { 0, 1, 8 }, { 1, 0, 8 } }, 2, 1 },
		{ "nothing", 7, { { 8, 9, 8 } }, 1, 7 },
	};

	EXPECT_EQ(32, var_orphans(_metadata, 0, lap, ARRAY_SIZE(lap)));
	EXPECT_EQ(41, var_orphans(_metadata, 20, wrap, ARRAY_SIZE(wrap)));
	EXPECT_EQ(6, var_orphans(_metadata, 0, inner, ARRAY_SIZE(inner)));
	EXPECT_EQ(32, var_orphans(_metadata, 0, longest, ARRAY_SIZE(longest)));
	EXPECT_EQ(32, var_orphans(_metadata, 0, longest_at_1,
				  ARRAY_SIZE(longest_at_1)));
	/* The same lap from near the end of the index space. */
	{
		struct var_rec hi[ARRAY_SIZE(lap)];
		__u32 base = 0xffffffe0;

		for (unsigned int k = 0; k < ARRAY_SIZE(lap); k++) {
			hi[k] = lap[k];
			hi[k].pos += base;
			hi[k].seq += base;
		}
		EXPECT_EQ(base + 32, var_orphans(_metadata, base, hi,
						 ARRAY_SIZE(hi)));
	}
	for (unsigned int k = 0; k < ARRAY_SIZE(stops); k++) {
		EXPECT_EQ(stops[k].want,
			  var_orphans(_metadata, stops[k].start, stops[k].r,
				      stops[k].n)) TH_LOG("%s", stops[k].what);
	}
}

/* POLLOUT of @fd, not waiting. */
static bool pollout(int fd)
{
	struct pollfd p = { .fd = fd, .events = POLLOUT };

	return poll(&p, 1, 0) == 1 && (p.revents & POLLOUT);
}

/*
 * Makes @k of the @lane's slots free from its tail at @base. SPSC/MPSC:
 * the head @k short of a full lane. MPMC, where room is the release words:
 * positions [base, base + k) released by the consumers (release[p] == p),
 * the rest of the lap still held (release[p] == p - slots: the last lap's
 * position, not released yet).
 */
static void var_room(struct view *v, __u32 lane, __u32 base, __u32 k)
{
	__u32 slots = v->i.slots;

	if (v->i.type != SN_RING_MPMC) {
		atomic_store(head_of(v, lane), base - (slots - k));
		atomic_store(tail_of(v, lane), base);
		return;
	}
	atomic_store(head_of(v, lane), base);
	atomic_store(tail_of(v, lane), base);
	for (__u32 p = base; p != base + slots; p++)
		atomic_store(release_of(v, lane, p),
			     p - base < k ? p : p - slots);
}

/*
 * A sleeping varlen producer stores in its lane's prod_need the slots it
 * waits for: its fd's POLLOUT then means that many are free (clamped to
 * 1..slots), not just one, so a woken producer finds room for its record.
 */
static void var_need(struct __test_metadata *_metadata, __u32 type)
{
	const __u32 slots = 16, lanes = type == SN_RING_SPSC ? 1 : 2;
	const __u32 lane = lanes - 1, base = 0xfffffff8;
	const __u32 ks[] = { 0, 1, 5, 15, 16 };
	int fd = varlen_ring(type, 8, slots, lanes), prod;
	_Atomic __u32 *need;
	struct view v;
	char *mine;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	prod = narrow(fd, SN_ROLE_PRODUCER, lane);
	ASSERT_LE(0, prod);
	/* The producer writes its need in its own lane, through its fd. */
	mine = map(prod, v.i.off.lane0 + lane * v.i.off.lane_size,
		   v.i.off.lane_size, PROT_READ | PROT_WRITE);
	ASSERT_NE(MAP_FAILED, mine);
	need = var_word(mine, v.i.off.prod_need);

	for (unsigned int x = 0; x < ARRAY_SIZE(ks); x++) {
		__u32 k = ks[x];

		var_room(&v, lane, base, k);
		if (k < slots) {
			atomic_store(need, k + 1);
			EXPECT_FALSE(pollout(prod)) TH_LOG("need %u of %u", k + 1, k);
		}
		if (k) {
			atomic_store(need, k);
			EXPECT_TRUE(pollout(prod)) TH_LOG("need %u of %u", k, k);
			atomic_store(need, 1);
			EXPECT_TRUE(pollout(prod)) TH_LOG("need 1 of %u", k);
		}
		/* 0 is 1: a producer that asks for nothing needs one slot */
		atomic_store(need, 0);
		EXPECT_EQ(k >= 1, pollout(prod)) TH_LOG("need 0 of %u", k);
		/* above the lane: clamped to slots, an empty lane will do */
		atomic_store(need, slots + 1);
		EXPECT_EQ(k == slots, pollout(prod)) TH_LOG("need %u of %u",
							    slots + 1, k);
		atomic_store(need, 0xffffffff);
		EXPECT_EQ(k == slots, pollout(prod)) TH_LOG("need ~0 of %u", k);
	}

	/* The consumers make room: one more slot, and the need is met. */
	var_room(&v, lane, base, 5);
	atomic_store(need, 6);
	EXPECT_FALSE(pollout(prod));
	if (type == SN_RING_MPMC) {
		/* a consumer read position p a lap ago: release[p] = p + slots */
		__u32 p = base + 5 - slots;

		atomic_store(release_of(&v, lane, p), p + slots);
	} else {
		atomic_fetch_add(head_of(&v, lane), 1);
	}
	EXPECT_TRUE(pollout(prod));
	atomic_store(need, 7);
	EXPECT_FALSE(pollout(prod));

	if (type == SN_RING_MPMC) {
		/*
		 * Consumers release out of order: a position still held inside
		 * the need, the first or the last needed, is no room.
		 */
		var_room(&v, lane, base, slots);
		atomic_store(need, 10);
		EXPECT_TRUE(pollout(prod));
		for (__u32 h = 0; h < 10; h++) {
			__u32 p = base + h;

			atomic_store(release_of(&v, lane, p), p - slots);
			EXPECT_FALSE(pollout(prod)) TH_LOG("held %u", h);
			atomic_store(release_of(&v, lane, p), p);
		}
		/* past the need, a held position does not matter */
		atomic_store(release_of(&v, lane, base + 10), base + 10 - slots);
		EXPECT_TRUE(pollout(prod));
	}

	/* Another lane's need is not this producer's. */
	if (lanes > 1) {
		var_room(&v, lane, base, 3);
		atomic_store(need, 3);
		atomic_store((_Atomic __u32 *)(v.base + v.i.off.lane0 +
					       v.i.off.prod_need), slots);
		EXPECT_TRUE(pollout(prod));
	}
	munmap(mine, v.i.off.lane_size);
	close(prod);
	munmap(v.base, v.i.off.map_size);
	close(fd);
}

TEST(varlen_pollout_needs_room)
{
	var_need(_metadata, SN_RING_SPSC);
	var_need(_metadata, SN_RING_MPSC);
	var_need(_metadata, SN_RING_MPMC);
}

/*
 * The MPMC check is bounded (poll may run in atomic context): the first
 * SN_NEED_SCAN release words from the tail and the last needed one.
 */
TEST(varlen_pollout_mpmc_long_need)
{
	const __u32 slots = 1024, need_n = 600;
	int fd = varlen_ring(SN_RING_MPMC, 8, slots, 1), prod;
	_Atomic __u32 *need;
	struct view v;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	prod = narrow(fd, SN_ROLE_PRODUCER, 0);
	ASSERT_LE(0, prod);
	need = var_word(v.base + v.i.off.lane0, v.i.off.prod_need);
	var_room(&v, 0, 100, slots);
	atomic_store(need, need_n);
	EXPECT_TRUE(pollout(prod));
	{
		const __u32 held[] = { 0, 1, SN_NEED_SCAN - 1, need_n - 1 };

		for (unsigned int x = 0; x < ARRAY_SIZE(held); x++) {
			__u32 p = 100 + held[x];

			atomic_store(release_of(&v, 0, p), p - slots);
			EXPECT_FALSE(pollout(prod)) TH_LOG("held %u", held[x]);
			atomic_store(release_of(&v, 0, p), p);
		}
	}
	EXPECT_TRUE(pollout(prod));
	atomic_store(need, 0xffffffff);
	EXPECT_TRUE(pollout(prod));
	atomic_store(release_of(&v, 0, 100 + slots - 1), 100 - 1);
	EXPECT_FALSE(pollout(prod)) TH_LOG("the last of a lap held");
	close(prod);
	munmap(v.base, v.i.off.map_size);
	close(fd);
}

struct var_sleeper {
	int fd;
	int ret;
	short revents;
	__u64 done;	/* t_now() when poll() returned */
};

/* A producer asleep in poll() for POLLOUT, up to 10 s. */
static void *var_sleep(void *arg)
{
	struct var_sleeper *s = arg;
	struct pollfd p = { .fd = s->fd, .events = POLLOUT };

	s->ret = poll(&p, 1, 10000);
	s->done = t_now();
	s->revents = p.revents;
	return NULL;
}

/*
 * A varlen producer asleep for several slots is woken by whichever
 * release completes its room, the last one needed or one in the middle,
 * while a wakeup thread watches the ring (poll_mode=always: NEED_WAKEUP
 * stays clear, so the consumer, as the protocol says, does not kick).
 */
static void var_sleeper_case(struct __test_metadata *_metadata, __u32 type,
			     __u32 last)
{
	const __u32 slots = 16, need = 4;
	int fd = varlen_ring(type, 8, slots, 1), prod, cons;
	struct var_sleeper s;
	struct view v;
	pthread_t t;
	__u64 freed;

	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	prod = narrow(fd, SN_ROLE_PRODUCER, 0);
	cons = narrow(fd, SN_ROLE_CONSUMER, 0);
	ASSERT_LE(0, prod);
	ASSERT_LE(0, cons);
	var_room(&v, 0, 0, slots);
	if (type == SN_RING_MPMC) {
		/* all released but position @last of the need */
		atomic_store(release_of(&v, 0, last), last - slots);
	} else {
		/* one slot short */
		atomic_store(head_of(&v, 0), need - 1 - slots);
	}
	atomic_store(var_word(v.base + v.i.off.lane0, v.i.off.prod_need), need);
	ASSERT_FALSE(pollout(prod));

	/* The producer announces itself ([W2] is in its poll) and sleeps. */
	atomic_store(waiting_of(&v, 0), 1);
	s.fd = prod;
	s.ret = -2;
	ASSERT_EQ(0, pthread_create(&t, NULL, var_sleep, &s));
	/* Watched: the thread cleared NEED_WAKEUP and has looked a while. */
	ASSERT_TRUE(WAIT_FOR(!(kflags_of(&v) & SN_KFLAG_NEED_WAKEUP)));
	usleep(50000);
	EXPECT_EQ(-2, s.ret) TH_LOG("woken without room");

	/* The consumer makes the room, then kicks only if it must ([C1]);
	 * the clock first: the sleeper may be done before we look again */
	freed = t_now();
	if (type == SN_RING_MPMC)
		atomic_store(release_of(&v, 0, last), last);
	else
		atomic_fetch_add(head_of(&v, 0), 1);
	atomic_thread_fence(memory_order_seq_cst);
	if (atomic_load(waiting_of(&v, 0)) &&
	    (kflags_of(&v) & SN_KFLAG_NEED_WAKEUP))
		ioctl(cons, SN_IOC_KICK, SN_KICK_PRODUCERS);
	pthread_join(t, NULL);
	EXPECT_EQ(1, s.ret);
	EXPECT_NE(0, s.revents & POLLOUT);
	/* woken, not ready at poll()'s last look after its timeout */
	EXPECT_GT(5000000000ULL, s.done - freed)
		TH_LOG("type %u, position %u: no wakeup", type, last);
	atomic_store(waiting_of(&v, 0), 0);
	close(cons);
	close(prod);
	munmap(v.base, v.i.off.map_size);
	close(fd);
}

TEST(varlen_sleeper_woken_by_room)
{
	char mode[32];

	get_param("poll_mode", mode, sizeof(mode));
	ASSERT_EQ(0, set_param("poll_mode", "always"));
	var_sleeper_case(_metadata, SN_RING_SPSC, 0);
	var_sleeper_case(_metadata, SN_RING_MPSC, 0);
	/* the last needed position, one in the middle, the first */
	var_sleeper_case(_metadata, SN_RING_MPMC, 3);
	var_sleeper_case(_metadata, SN_RING_MPMC, 1);
	var_sleeper_case(_metadata, SN_RING_MPMC, 0);
	set_param("poll_mode", mode);
}

/* A length to scribble: garbage, flags, the edges, sometimes valid. */
static __u32 var_bad_len(__u64 *s, __u32 slots, __u32 shift)
{
	__u32 max = sn_record_max(slots, shift);

	switch (xorshift(s) % 10) {
	case 0: return 0xffffffff;
	case 1: return SN_SLOT_PAD;
	case 2: return SN_SLOT_PAD | (__u32)(xorshift(s) % 64);
	case 3: return (1U << 30) | (__u32)(xorshift(s) % 64);
	case 4: return SN_SLOT_LEN;
	case 5: return max;
	case 6: return max + 1;
	case 7: return (__u32)(xorshift(s) % 256);
	default: return (__u32)xorshift(s);
	}
}

/*
 * Garbage in every header of @lane from its tail on: mostly seq =
 * position + 1, so that the kernel's walk goes on to read the length, and
 * a padding record at slot 0 when the tail is there.
 */
static void var_scribble_lane(struct view *v, __u32 lane, __u64 *s)
{
	char *base = v->base + v->i.off.lane0 + lane * v->i.off.lane_size;
	__u32 shift = sn_log2(v->i.off.stride), slots = v->i.slots;
	__u32 t = (__u32)xorshift(s), h;

	if (xorshift(s) % 3 == 0)
		t &= ~(slots - 1);
	atomic_store(tail_of(v, lane), t);
	/* a head within a lap of the tail, or anywhere */
	h = xorshift(s) % 2 ? t - (__u32)(xorshift(s) % slots) :
	    (__u32)xorshift(s);
	atomic_store(head_of(v, lane), h);
	atomic_store(var_word(base, v->i.off.prod_need), (__u32)xorshift(s));
	for (__u32 pos = t; pos != t + slots; pos++) {
		struct sn_slot *h = var_slot(&v->i, base, pos);

		h->len = (pos & (slots - 1)) == 0 && xorshift(s) % 2 ?
			 SN_SLOT_PAD : var_bad_len(s, slots, shift);
		h->seq = xorshift(s) % 8 ? pos + 1 : (__u32)xorshift(s);
		if (v->i.type == SN_RING_MPMC)
			atomic_store(release_of(v, lane, pos),
				     xorshift(s) % 2 ? pos : (__u32)xorshift(s));
	}
}

/* The listing has the ring, its depth within what its lanes hold. */
static void var_listing_sane(struct __test_metadata *_metadata,
			     struct view *v)
{
	char line[512], type[8];
	unsigned int depth;

	listing_line(v->i.id, line, sizeof(line));
	ASSERT_EQ(2, sscanf(line, "%*u %7s %*u %*u %*u %*u %*u %u", type,
			    &depth)) TH_LOG("%s", line);
	EXPECT_GE(v->i.lanes * v->i.slots, depth);
	EXPECT_LE(0, listing_count());
}

/*
 * A full-role fd writes garbage into every header, the tails, heads,
 * release words and prod_need, then producer fds go (the kernel walks the
 * garbage for orphans) while poll, the listing and info look at it; then
 * a peer scribbles on while producers come and go. Nothing happens but
 * garbage: a dead producer's tail moves at most a lap, ioctls keep
 * working, and the runner finds no kernel report in the log.
 */
TEST(varlen_scribbled_lengths_are_harmless)
{
	const __u32 types[] = { SN_RING_SPSC, SN_RING_MPSC, SN_RING_MPMC };
	__u64 s = 0x2545f4914f6cdd1dULL;

	for (unsigned int x = 0; x < ARRAY_SIZE(types); x++) {
		__u32 type = types[x], lanes = type == SN_RING_SPSC ? 1 : 3;
		int fd = varlen_ring(type, 24, 64, lanes), cons;
		int prod[3];
		__u32 t0[3];
		struct sn_info i;
		struct view v;
		pid_t pid;
		int status;

		ASSERT_LE(0, fd);
		ASSERT_EQ(0, view_open(&v, fd));
		cons = narrow(fd, SN_ROLE_CONSUMER, 0);
		ASSERT_LE(0, cons);
		for (int round = 0; round < 100; round++) {
			for (__u32 l = 0; l < lanes; l++) {
				prod[l] = narrow(fd, SN_ROLE_PRODUCER, l);
				ASSERT_LE(0, prod[l]) TH_LOG("round %d", round);
				var_scribble_lane(&v, l, &s);
				t0[l] = atomic_load(tail_of(&v, l));
			}
			for (__u32 l = 0; l < lanes; l++)
				EXPECT_EQ(0, poll_mask(prod[l]) & ~POLLOUT);
			EXPECT_EQ(0, poll_mask(cons) & ~POLLIN);
			EXPECT_EQ(0, poll_mask(fd) & ~(POLLIN | POLLOUT));
			for (__u32 l = 0; l < lanes; l++) {
				close(prod[l]);
				EXPECT_GE(v.i.slots,
					  atomic_load(tail_of(&v, l)) - t0[l])
					TH_LOG("round %d lane %u", round, l);
			}
			EXPECT_NE(0, poll_mask(cons) & POLLHUP);
			var_listing_sane(_metadata, &v);
			ASSERT_EQ(0, info(fd, &i));
			EXPECT_EQ(SN_GEO_FORMAT3 | SN_GEO_VARLEN, i.geo_flags);
			EXPECT_EQ(0, ioctl(fd, SN_IOC_KICK,
					   SN_KICK_CONSUMERS | SN_KICK_PRODUCERS));
		}

		/* And while a peer scribbles on, through the same mapping. */
		pid = fork();
		ASSERT_LE(0, pid);
		if (pid == 0) {
			__u64 end = t_now() + 1000000000ULL;

			while (t_now() < end)
				for (__u32 l = 0; l < lanes; l++)
					var_scribble_lane(&v, l, &s);
			_exit(0);
		}
		for (int n = 0; n < 300; n++) {
			__u32 l = n % lanes;
			int p = narrow(fd, SN_ROLE_PRODUCER, l);

			ASSERT_LE(0, p) TH_LOG("narrow %d", n);
			EXPECT_EQ(0, poll_mask(p) & ~POLLOUT);
			EXPECT_EQ(0, poll_mask(fd) & ~(POLLIN | POLLOUT | POLLHUP));
			close(p);
			if (n % 50 == 0) {
				var_listing_sane(_metadata, &v);
				ASSERT_EQ(0, info(cons, &i));
			}
		}
		ASSERT_EQ(pid, waitpid(pid, &status, 0));
		EXPECT_TRUE(WIFEXITED(status));
		EXPECT_EQ(0, WEXITSTATUS(status));
		ASSERT_EQ(0, info(fd, &i));
		EXPECT_EQ(v.i.id, i.id);
		close(cons);
		munmap(v.base, v.i.off.map_size);
		close(fd);
	}
}

static int delete_module(const char *name, unsigned int flags)
{
	return syscall(__NR_delete_module, name, flags);
}

TEST(rmmod_refused_while_ring_lives)
{
	const char *ko = getenv("SN_KO");
	int fd = create_simple(SN_RING_SPSC, 8, 16, 1), mfd;
	struct view v;

	if (!ko)
		SKIP(close(fd); return, "SN_KO is not set: cannot reload the module");
	ASSERT_LE(0, fd);
	ASSERT_EQ(0, view_open(&v, fd));
	errno = 0;
	EXPECT_EQ(-1, delete_module("sn", O_NONBLOCK)) TH_LOG("ring fd open");
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(fd);
	errno = 0;
	EXPECT_EQ(-1, delete_module("sn", O_NONBLOCK)) TH_LOG("mapping alive");
	EXPECT_EQ(EWOULDBLOCK, errno);
	v.base[v.i.off.lane0 + v.i.off.slots] = 7;
	munmap(v.base, v.i.off.map_size);
	ASSERT_EQ(0, delete_module("sn", O_NONBLOCK)) TH_LOG("%s", strerror(errno));
	mfd = open(ko, O_RDONLY | O_CLOEXEC);
	ASSERT_LE(0, mfd);
	ASSERT_EQ(0, syscall(__NR_finit_module, mfd, "", 0));
	close(mfd);
}

TEST_HARNESS_MAIN
