/* SPDX-License-Identifier: GPL-2.0 */
/* What sn.ko's files share. */
#ifndef SN_KMOD_SN_H
#define SN_KMOD_SN_H

#include <linux/kref.h>
#include <linux/list.h>
#include <linux/mutex.h>
#include <linux/spinlock.h>
#include <linux/types.h>
#include <linux/uaccess.h>
#include <linux/wait.h>
#include <linux/workqueue.h>
#include <linux/sn.h>

struct pid;
struct user_namespace;
struct user_struct;

/* What a wakeup thread last saw of one lane (sn_thread.c). */
struct sn_lane_seen {
	u32 tail;
	u32 head;
	u32 need;			/* MPMC: sn_lane_need() */
	u32 room;			/* MPMC: sn_lane_has_room_for(need) */
};

/* A dead MPMC consumer's claim record, as read once at its release. */
struct sn_dying {
	struct sn_claim rec;
	bool released;			/* counted in claims_recovered */
};

/*
 * A ring: its pages, shared with userspace, and the kernel's own truth
 * about it. Nothing the kernel decides with is kept in the shared pages.
 */
struct sn_ring {
	struct kref ref;		/* one per ring file */
	struct list_head node;		/* in sn_rings, under sn_rings_lock */
	u64 id;
	struct sn_geometry geo;
	struct sn_offsets off;
	u32 home_cpu;
	u32 numa_node;
	u32 fence;			/* SN_FENCE_*, as in the kpage */

	struct page **pages;
	unsigned long nr_pages;
	char *vaddr;			/* the kernel's view of the mapping */
	struct sn_kpage *kpage;

	struct user_struct *user;	/* charged for locked_pages, or NULL */
	unsigned long locked_pages;
	kuid_t uid;
	struct user_namespace *user_ns;	/* the creator's, for the listing */
	struct pid *owner;		/* the creating process */

	wait_queue_head_t wq;		/* poll sleepers of both sides */
	spinlock_t lock;		/* the claims and peers below */
	u64 lanes_owned;		/* lanes with a producer fd */
	u64 lanes_dead;			/* lanes whose last producer died */
	u64 claims_owned;		/* MPMC records of an fd or dying */
	u64 claims_dying;		/* MPMC records being recovered */
	u64 claims_read;		/* dying records read into dying[] */
	u32 consumers;			/* consumer fds */
	bool had_producer;		/* a producer fd or a shutdown was */
	bool had_consumer;		/* a consumer fd was */
	struct sn_peer_stats peers;	/* mirrored to kpage->peers */

	/* Recovery of dead MPMC consumers' claims (sn_recover.c) */
	struct mutex recover_lock;	/* the fields below, one recovery */
	struct delayed_work recover_work; /* a retry; holds a ring ref */
	bool recover_queued;
	unsigned long recover_delay;	/* jiffies until the next retry */
	struct sn_dying dying[SN_MAX_CLAIMS];
	/* A record pass's view of the live records (sn_recover.c) */
	struct sn_cover {
		u32 start, end;		/* offsets into the dying record */
		u32 state;		/* SN_CLAIM_INTENT or SN_CLAIM_HELD */
	} cover[SN_MAX_CLAIMS];
	u32 bounds[2 * SN_MAX_CLAIMS + 2];

	atomic64_t kicks;
	atomic64_t polls;

	/* Watching by a wakeup thread (sn_thread.c) */
	struct list_head arm_node;	/* on that CPU's list */
	int arm_cpu;			/* whose list, or -1 */
	unsigned long arming;		/* bit 0: an arm in progress */
	u64 sleeper_seen_ns;		/* when a sleeper was last queued */
	u64 arm_refused_ns;		/* over max_armed_per_user, when */
	atomic64_t thread_wakes;
	struct sn_lane_seen seen[];	/* per lane, under its thread's lock */
};

/*
 * What one ring fd may do: its role and, for a producer, its lane; an MPMC
 * consumer's claim record (else SN_CLAIM_NONE).
 */
struct sn_ring_file {
	struct sn_ring *ring;
	enum sn_role role;
	u32 lane;
	u32 claim;
};

/*
 * The size a caller gives a size-first ABI struct: at least @ver0 bytes
 * (else EINVAL) and at most a page (else E2BIG, as openat2 does), so that
 * scanning or clearing the caller's tail stays short.
 */
static inline int sn_check_usize(u32 usize, size_t ver0)
{
	if (usize < ver0)
		return -EINVAL;
	if (usize > PAGE_SIZE)
		return -E2BIG;
	return 0;
}

/*
 * Copies a size-first ABI struct from userspace: a size sn_check_usize()
 * accepts; a longer struct than ours only if its tail is zero (else E2BIG).
 */
static inline int sn_copy_struct_from_user(void *dst, size_t ksize,
					   const void __user *src, size_t ver0)
{
	u32 usize;
	int ret;

	if (get_user(usize, (const u32 __user *)src))
		return -EFAULT;
	ret = sn_check_usize(usize, ver0);
	if (ret)
		return ret;
	return copy_struct_from_user(dst, ksize, src, usize);
}

extern struct list_head sn_rings;
extern struct mutex sn_rings_lock;

enum sn_poll_mode { SN_POLL_OFF, SN_POLL_ADAPTIVE, SN_POLL_ALWAYS };

/* module parameters (sn_main.c) */
extern int sn_poll_mode;
extern unsigned int sn_poll_idle_us;
extern unsigned int sn_max_slot_size;
extern unsigned int sn_max_slots;
extern unsigned int sn_max_ring_mb;
extern unsigned int sn_max_rings_per_user;
extern unsigned int sn_max_armed_per_user;

/* sn_ring.c */
struct sn_ring *sn_ring_create(const struct sn_create *p);
void sn_ring_put(struct sn_ring *ring);
u32 sn_lane_tail(const struct sn_ring *ring, u32 lane);
u32 sn_lane_head(const struct sn_ring *ring, u32 lane);
bool sn_lane_commit_orphans(struct sn_ring *ring, u32 lane);
u32 sn_lane_release(const struct sn_ring *ring, u32 lane, u32 pos);
u32 sn_lane_depth(const struct sn_ring *ring, u32 lane);
u32 sn_lane_need(const struct sn_ring *ring, u32 lane);
bool sn_lane_has_room_for(const struct sn_ring *ring, u32 lane, u32 need);
bool sn_lane_has_room(const struct sn_ring *ring, u32 lane);
bool sn_ring_readable(const struct sn_ring *ring);
bool sn_ring_has_room(const struct sn_ring *ring);
u32 sn_ring_sleepers(const struct sn_ring *ring);
void sn_ring_stats(const struct sn_ring *ring, u64 *sent, u64 *received);
u32 *sn_head_word(const struct sn_ring *ring, u32 lane);
u32 *sn_release_word(const struct sn_ring *ring, u32 lane, u32 pos);
void sn_ring_reclaim_bufs(struct sn_ring *ring, u32 claim)
	__must_hold(&ring->lock);
struct sn_claim *sn_claim_rec(const struct sn_ring *ring, u32 claim);
u64 *sn_prod_reserved(const struct sn_ring *ring, u32 lane);
u64 *sn_cons_peeked(const struct sn_ring *ring);
void sn_ring_forget_sleeper(struct sn_ring *ring, u32 lane, bool consumers_gone,
			    struct sn_claim *asleep_rec);
void sn_kflags_set(struct sn_ring *ring, u32 bits);
void sn_kflags_clear(struct sn_ring *ring, u32 bits);
void sn_ring_mirror_peers(struct sn_ring *ring) __must_hold(&ring->lock);

/* sn_file.c */
int sn_ring_install_fd(struct sn_ring *ring, enum sn_role role, u32 lane,
		       u32 claim);

/* sn_recover.c */
int sn_recover_init(void);
void sn_recover_exit(void);
void sn_recover_ring_init(struct sn_ring *ring);
void sn_recover_claim(struct sn_ring *ring, u32 claim);

/* sn_thread.c */
int sn_threads_init(void);
void sn_threads_exit(void);
void sn_threads_mode_off(void);
void sn_thread_arm(struct sn_ring *ring);
void sn_thread_kick(struct sn_ring *ring);
void sn_thread_rearm(struct sn_ring *ring);
void sn_thread_disarm(struct sn_ring *ring);

/* sn_barrier.c */
extern bool sn_asym;
void sn_heavy_barrier(bool asym);

/* The heavy barrier H that @ring's sleepers owe its publishers. */
static inline void sn_ring_barrier(const struct sn_ring *ring)
{
	sn_heavy_barrier(ring->fence == SN_FENCE_ASYM);
}

/* sn_proc.c */
int sn_proc_init(void);
void sn_proc_exit(void);

#endif /* SN_KMOD_SN_H */
