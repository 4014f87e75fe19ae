/* SPDX-License-Identifier: MIT */
/* What libsn's own sources share and its users never see. */
#ifndef SN_LIBSN_INTERNAL_H
#define SN_LIBSN_INTERNAL_H

#include <stddef.h>
#include <time.h>

#include <linux/sn.h>

/* libsn builds with -fvisibility=hidden; only SN_API symbols are exported. */
#define SN_API __attribute__((visibility("default")))

/* A shared 64-bit counter, read relaxed (statistics). */
static inline __u64 sn_load64(const __u64 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* A spinning thread's pause: lets the sibling hyperthread (x86) run. */
static inline void sn_cpu_relax(void)
{
#if defined(__x86_64__) || defined(__i386__)
	__builtin_ia32_pause();
#elif defined(__aarch64__)
	__asm__ __volatile__("yield" ::: "memory");
#else
	__asm__ __volatile__("" ::: "memory");
#endif
}

/* CLOCK_MONOTONIC in nanoseconds. */
static inline __u64 sn_now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

/* A backoff's sleep: *@nap ns (start it at 1 us), then twice as long next
 * time, up to 1 ms. */
static inline void sn_nap(__u64 *nap)
{
	struct timespec ts = { 0, (long)*nap };

	nanosleep(&ts, NULL);
	if (*nap < 1000000)
		*nap *= 2;
}

/* now + @timeout_ns, saturated: SN_WAIT_FOREVER (~0) and huge ones never
 * end (~0). */
static inline __u64 sn_deadline(__u64 timeout_ns)
{
	__u64 now = sn_now_ns();

	return timeout_ns > ~0ULL - now ? ~0ULL : now + timeout_ns;
}

/* splitmix64's finaliser (sn_mix64()), inline for the pool's hot path. */
static inline __u64 sn__mix64(__u64 x)
{
	x ^= x >> 30;
	x *= 0xbf58476d1ce4e5b9ULL;
	x ^= x >> 27;
	x *= 0x94d049bb133111ebULL;
	x ^= x >> 31;
	return x;
}

/* Memfd backend: the sleep words' wake sequence (upper 16 bits) and the
 * count or flag (lower 16 bits); see include/sn/channel.h. */
#define SN_MEMFD_WAKE_SEQ	0x10000U
#define SN_MEMFD_COUNT_MASK	0xffffU
/* Memfd backend: how often a sleeper looks for dead peers. */
#define SN_MEMFD_LIVENESS_NS	50000000ULL

struct sn_channel {
	int fd;			/* our ring fd (a duplicate when attached) */
	unsigned int backend;	/* SN_BACKEND_* */
	__u32 role;		/* enum sn_role of fd (memfd: FULL) */
	__u32 lane;		/* SN_ROLE_PRODUCER: the fd's lane */
	__u64 id;
	struct sn_geometry geo;
	struct sn_offsets off;	/* validated */
	size_t page;
	unsigned char *base;	/* offset 0 of the ring */
	void *resv;		/* the reservation: a guard page each side */
	size_t resv_size;
	__u64 readable;		/* lanes this process may read */
	int handles;		/* open producers and consumers */
	int fd_producer;	/* producer-role fd: its one producer is open */
	int fd_consumers;	/* consumer-role fd: consumers open on it */
	__u32 fence;		/* SN_FENCE_* of the ring */
	__u32 handle_flags;	/* SN__FENCE when our fast sides fence */
};

/* error.c: what sn_last_error() says (printf-style), or nothing */
void sn_why(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void sn_why_clear(void);

/* layout.c: calls nothing else of libsn's */
int sn_geometry_check(const struct sn_geometry *g, __u64 max_bytes);
int sn_offsets_check(const struct sn_geometry *g, const struct sn_offsets *o,
		     size_t page);
int sn_map_reserve(struct sn_channel *ch);
int sn_map_region(struct sn_channel *ch, __u64 off, __u64 len, int prot);
/* lane @lane and the consumer region in the mapping */
unsigned char *sn_lane_ptr(const struct sn_channel *ch, __u32 lane);
/* A new producer took @lane at @start (its tail as a 64-bit count):
 * record its epoch (lane_peek.c). */
void sn_lane_new_epoch(const struct sn_channel *ch, __u32 lane, __u64 start);
unsigned char *sn_cons_ptr(const struct sn_channel *ch);

/* channel.c */
void sn_channel_free(struct sn_channel *ch);
/* the longest message: slot_size, or sn_record_max() of a varlen ring */
__u32 sn_channel_max_msg(const struct sn_channel *ch);

/* lane.c */
/*
 * @lane's tail, moved first past the slots its last producer committed
 * (seq) and died before it stored the tail (*@moved: 1 then). Called by
 * whoever owns the lane now: a new producer, the memfd reaper.
 */
__u32 sn_lane_commit_orphans(const struct sn_channel *ch, __u32 lane,
			     int *moved);

/*
 * backend_memfd.c. Claims are open-file-description locks taken through a
 * private open file description of the memfd (*lockfd, kept by the handle
 * and closed by the unclaim), so the kernel drops them when their holder
 * dies; the kpage's bitmaps and kflags mirror them for the hot path.
 */
int sn_memfd_create(struct sn_channel *ch);
int sn_memfd_attach(struct sn_channel *ch);
int sn_memfd_claim_lane(struct sn_channel *ch, __u32 *lane, int *lockfd);
void sn_memfd_unclaim_lane(struct sn_channel *ch, __u32 lane, int lockfd);
/* SPSC/MPSC: the consumer claim; MPMC: a claim record, stored in *claim */
int sn_memfd_claim_consumer(struct sn_channel *ch, __u32 *claim, int *lockfd);
void sn_memfd_unclaim_consumer(struct sn_channel *ch, __u32 claim, int lockfd);
/*
 * Looks for peers that died holding a lane, the consumer claim or a claim
 * record: repairs the kpage (lanes_live, lanes_dead, kflags, peers),
 * recovers a dead MPMC consumer's claims as sn.ko does, and wakes the
 * sleepers a death concerns. Bounded; a few system calls.
 */
void sn_memfd_check_peers(const struct sn_channel *ch);
/* sn_channel_shutdown() for a memfd ring */
int sn_memfd_shutdown(struct sn_channel *ch);
/* Memfd: bumps a sleep word's wake sequence, wakes its sleepers. */
void sn_memfd_wake(__u32 *word);

/* backend_kernel.c */
int sn_kernel_create(struct sn_channel *ch, int devfd);
/* 1: a kernel ring, attached; 0: not a kernel ring fd; < 0: an error. */
int sn_kernel_attach(struct sn_channel *ch);
int sn_kernel_narrow(struct sn_channel *ch, __u32 role, __u32 lane,
		     __u32 *which);

/* fence.c */
/* 1: this process is registered, its fast sides may skip fences */
int sn_fence_process_asym(void);
/* 1: this process can run the memfd heavy barrier */
int sn_fence_memfd_attach_ok(void);
/* membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): 0 or -errno */
int sn_fence_memfd_heavy(void);
/* SN_FENCE=full in the environment */
int sn_fence_env_full(void);

/* wait.c */
/*
 * The heavy barrier H that a sleeper on @ch owes its fast sides between
 * its announcement and its re-check, for sleeps outside the ring fd's
 * poll() (the pool's io_uring wait): SN_IOC_BARRIER or membarrier(2) on
 * ASYM rings, a full barrier on FULL ones (and for NULL). 0 or -errno.
 */
int sn_heavy_barrier(const struct sn_channel *ch);

#endif /* SN_LIBSN_INTERNAL_H */
