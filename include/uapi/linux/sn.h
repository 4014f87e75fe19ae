/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * sn: shared-nothing message rings that the kernel shares with userspace.
 *
 * This is the one ABI header of sn: the module (kmod/) and libsn (libsn/)
 * both build against it, and nothing else defines the ring format.
 *
 * The device: /dev/sn, a misc character device of mode SN_DEVICE_MODE.
 * Any user may open it: what a ring costs is charged to its creator
 * (RLIMIT_MEMLOCK unless CAP_IPC_LOCK, and the memory cgroup), not guarded
 * by file permissions.
 *
 * ioctls use the type byte SN_IOC_MAGIC (0xB9, unused in the kernel's
 * Documentation/userspace-api/ioctl/ioctl-number.rst). A command the module
 * does not know fails with ENOTTY. Structs passed to ioctls start with their
 * size as the caller knows it: a larger struct than the kernel knows is
 * accepted when its extra bytes are zero (else E2BIG), and never one larger
 * than a page (E2BIG, as openat2 does: the kernel neither scans nor clears
 * more than that); unknown flags and non-zero reserved fields fail with
 * EINVAL.
 *
 * A ring
 * ------
 * A ring is made of lanes. A lane is a single-producer ring of `slots`
 * fixed-size slots (a power of two) with a free-running 32-bit tail written
 * by its producer. SPSC rings have one lane; MPSC and MPMC rings have one
 * lane per producer (up to SN_MAX_LANES), so a producer never shares what it
 * writes with another producer: a malicious or dead producer can lose or
 * garble only its own lane, and consumers never wait on it (an empty or
 * stalled lane is skipped). Order is FIFO per producer.
 *
 * Consumers own the consumer region: one head per lane (SPSC, MPSC: written
 * by the one consumer; MPMC: claimed by consumers with compare-and-swap),
 * and for MPMC one release word per slot: a consumer that has read the slot
 * at position p stores p + slots into release[p & (slots - 1)], and the
 * producer writes position p only when release[p & (slots - 1)] == p. So a
 * consumer that dies holding a claimed slot stalls only that one lane's
 * producer (until recovery, see below), never another consumer.
 *
 * Indices are free-running __u32 counters; depth is (__s32)(tail - head),
 * clamped to [0, slots] by every reader. The kernel trusts nothing that
 * userspace can write: it reads each shared field once, masks every index
 * and clamps every difference. Garbage in a ring can only hurt that ring's
 * own users.
 *
 * Layout of the mapping (byte offsets returned in struct sn_offsets;
 * computed by sn_ring_layout() below, the one definition both sides use):
 *
 *   kpage      1 page, written by the kernel only: struct sn_kpage
 *   cons       consumer region: waiters, then per lane a head and consumer
 *              statistics, then (MPMC) SN_MAX_CLAIMS claim records and,
 *              page aligned, the release words
 *   lane i     at lane0 + i * lane_size: one page with the tail, the
 *              producer's waiting flag and producer statistics, then the
 *              slots (slots * stride bytes, page aligned; stride is
 *              slot_size, or in format 3 sn_slot_stride(slot_size): each
 *              slot then starts with a struct sn_slot, see below)
 *
 * Fields written by different parties sit SN_PAD bytes apart: a cache line
 * and its adjacent-line prefetch partner.
 *
 * Roles
 * -----
 * SN_IOC_CREATE returns a ring fd of role SN_ROLE_FULL: it may map every
 * page, writable except the kpage. SN_IOC_NARROW makes from it a
 * SN_ROLE_PRODUCER fd that owns one lane (it may map the kpage and the
 * consumer region read-only and its own lane writable, nothing else) or a
 * SN_ROLE_CONSUMER fd (the consumer region writable, the kpage and all
 * lanes read-only). SPSC and MPSC rings accept one consumer fd at a time,
 * MPMC rings SN_MAX_CLAIMS (each owns a claim record; a consumer fd may
 * narrow to another); a lane has one producer fd at a time. A mapping is writable only if this
 * fd may write every page in it; otherwise it is read-only for good
 * (VM_MAYWRITE cleared, so mprotect cannot lift it).
 *
 * mmap: MAP_SHARED only (MAP_PRIVATE: EINVAL), never PROT_EXEC (EPERM), the
 * range within the ring (EINVAL), PROT_WRITE only where allowed (EACCES), a
 * page the role may not read (EACCES). Mappings cannot grow (mremap: EFAULT).
 *
 * Sleeping and waking
 * -------------------
 * poll/epoll/io_uring on a ring fd: EPOLLIN when a lane the fd reads holds
 * a message; EPOLLOUT when a lane the fd writes has room (MPMC: its next
 * slot is released). A sleeper announces itself before sleeping and the
 * other side kicks only if it sees the announcement (Dekker). The fast
 * sides run for every message, the sleeper only when it sleeps, so the
 * sleeper pays for the ordering (an asymmetric Dekker, as membarrier(2)
 * and liburcu's memb flavour do):
 *
 *   producer: store tail with release (format 3: each slot's seq first);
 *             [P1]; load waiters and kpage->kflags; if waiters is non-zero
 *             and kflags has SN_KFLAG_NEED_WAKEUP, SN_IOC_KICK(CONSUMERS)
 *   consumer: store head (MPMC: release words) with release; [C1]; load
 *             the lane's waiting word and kflags; kick PRODUCERS likewise
 *   sleeper:  announce (consumer: atomic add 1 to cons waiters; producer:
 *             set its lane's waiting word); [W1] (consumer) or [W2]
 *             (producer); re-check the ring; sleep only if nothing is
 *             there; withdraw the announcement
 *
 * [P1] and [C1] are the ring's fence (kpage->fence, fixed at creation):
 * SN_FENCE_FULL: a full barrier, and [W1]/[W2] a full barrier: either the
 * sleeper sees the new index or the fast side sees the announcement.
 * SN_FENCE_ASYM: [P1]/[C1] are compiler barriers only, and [W1]/[W2] are a
 * heavy barrier H: a full barrier, then a full barrier run on every other
 * online CPU (an IPI; a CPU not running the fast side's task passes a
 * full barrier when it switches tasks), then a full barrier. A fast side's
 * "store index; load announcement" sits in program order around the point
 * where its CPU ran H's barrier (or switched tasks): if the store came
 * before it, the store is visible when H returns and the re-check sees it;
 * if the load came after it, the announcement, stored before H began, is
 * visible to it and the fast side kicks; if the store came before and the
 * load after, both. So never "the sleeper saw nothing and the fast side
 * saw no sleeper" (membarrier's scenarios A and B).
 * Who runs H: on an sn.ko ring, the kernel, in poll() of a caller that will
 * wait, after it joined the wait queue and before it reads the ring (the
 * [K1] step): that read is the re-check that counts, the caller's own
 * before poll() is only a shortcut, so a sleep stays one system call. A
 * sleeper that announces itself and then waits elsewhere (an io_uring or
 * epoll wait on fds registered earlier) calls SN_IOC_BARRIER (argument 0;
 * any role) between its announcement and its re-check: the ring's H. A
 * memfd ring (libsn without the module) is ASYM only when its creator
 * registered for membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED): every
 * process that skips the fences is registered, and a sleeper runs that
 * membarrier command as H. An sn.ko ring is ASYM when its creator asked
 * (SN_CREATE_ASYM; libsn does unless SN_FENCE=full is in its environment)
 * and the module parameter asym is 1 (the default); else FULL. On an ASYM
 * ring H costs one IPI round to every other online CPU per sleep, never
 * per message, and any user of the ring can cause it (poll(),
 * SN_IOC_BARRIER), as any process can with membarrier(2)'s global
 * command: sites whose isolated or nohz_full CPUs must not take IPIs set
 * asym=0, which makes every new ring FULL.
 *
 * A sleeper's poll() arms the ring on a per-CPU kernel thread (sn/N, the
 * ring's home CPU when online) that watches it and wakes sleepers as soon
 * as the ring moves, so the publisher makes no system call while
 * NEED_WAKEUP is clear. The thread keeps, per lane and in kernel memory,
 * the tail, the head and (MPMC) the producer's need (see "Records") and
 * whether the release words it needs say room, as it saw them last; a
 * moved tail wakes EPOLLIN sleepers, a moved head or room that appeared
 * EPOLLOUT sleepers. A thread that sees no progress for the module
 * parameter poll_idle_us runs a closing round: it sets NEED_WAKEUP on
 * each ring of a pass, runs one barrier [T1] for them all (H if one of
 * them is ASYM, else a full barrier; pairs with [P1] and [C1], the flag
 * playing the announcement), and looks at each once more; it sleeps only
 * if a whole round saw nothing move, and the next kick brings it back. A
 * ring that stops being watched for any other reason gets the same three
 * steps ([T2]). A kick or a re-poll (epoll, io_uring) of a ring that lost
 * its watcher arms it again. The module parameter poll_mode is off
 * (threads never watch: always kick), adaptive (the default) or always
 * (threads never idle while armed); max_armed_per_user bounds one user's
 * rings per thread (beyond it a ring is not watched and publishers kick).
 *
 * EPOLLOUT wakes and kicks carry no poll key: every sleeper re-polls, as
 * room is per lane and io_uring takes a keyed wake's events as its result.
 *
 * Dead peers
 * ----------
 * The kernel knows which fd owns which lane and which fds are consumers,
 * and acts when one is released (closed, or its process died):
 *
 * - A producer fd: its lane's bit leaves kpage->lanes_live at once (and
 *   enters lanes_dead when the releasing process was exiting, that is,
 *   died or exited without closing). What it committed stays readable in
 *   order; what it had reserved and not committed (its lane's
 *   sn_prod_stats.reserved, clamped to slots) is lost and counted in
 *   kpage->peers.reserved_lost. A new producer may claim the lane and
 *   continues from its tail. In format 3, what it committed past the
 *   tail (it died between its seq stores and its tail store) is committed:
 *   the kernel moves the tail past it when the fd goes.
 * - A consumer fd of an SPSC/MPSC ring: the consumer claim is free again.
 *   A new consumer continues from the heads: what the dead one peeked and
 *   did not release is delivered again (at least once), counted in
 *   kpage->peers.redelivered from lane 0's sn_cons_stats.peeked (written
 *   by the consumer, clamped to slots * lanes).
 * - A consumer fd of an MPMC ring owns one claim record (struct sn_claim,
 *   SN_IOC_INFO's claim) and keeps there the positions it claims:
 *
 *     consumer: store lane, pos = h, n = k, each with release [D7]
 *               (its last claim's release words and IDLE before them);
 *               store state INTENT with release [D1]; CAS the
 *               lane's head h -> h + k (acq_rel) [D2]; on success store
 *               state HELD, else IDLE (or the next INTENT); after
 *               storing the release words of [h, h + k) (release) store
 *               state IDLE with release [D3]
 *     kernel:   on the fd's release, for each position p of its record:
 *               skip p unless the head has passed it (acquire load [D4]
 *               pairs with [D2]) and release[p] == p; skip it if a record
 *               of a live consumer fd in state HELD covers p (acquire
 *               load of the state [D5] pairs with [D1]); if one in state
 *               INTENT covers p, look again later (that consumer is
 *               between [D1] and its HELD or IDLE store); read barrier
 *               [D6] (pairs with [D7]) between the records and the
 *               release words; else cmpxchg(release[p], p, p + slots)
 *               and count it
 *
 *   Whoever won the CAS that moved the head past p stored INTENT for p
 *   before [D2] and keeps a record covering p until after its release
 *   stores [D3]: a kernel that sees the head past p and no live record
 *   covering p knows p's owner is dead, or that its owner moved its record
 *   on to a later claim, in which case [D7]/[D6] make it see p released.
 *   The cmpxchg never undoes a release.
 *   The messages in recovered positions are lost, counted in
 *   kpage->peers.claims_lost (at most once): other consumers have moved
 *   past them, the dead consumer may have acted on them, and a redelivery
 *   would need a side queue outside the lane's order. A consumer that lies
 *   in its record can only lose messages of its own ring. A full-role fd
 *   owns no record: whoever consumes an MPMC ring through one (outside
 *   this protocol) may see positions it holds recovered under it; libsn
 *   consumes only through consumer fds, one per consumer.
 *
 * "Died" is the releasing task exiting (PF_EXITING) when the fd's last
 * reference goes; a last reference dropped elsewhere (an fd in flight in
 * SCM_RIGHTS, a forked child that still holds it) counts as a close, and
 * a fd a forked child still holds keeps its lane or claim alive until the
 * child closes it or execs (ring fds are O_CLOEXEC).
 *
 * A dead sleeper's announcement must not outlive it (publishers would go
 * on kicking): when a producer fd goes, the kernel clears its lane's
 * waiting word; when the consumer fd of an SPSC/MPSC ring goes, cons
 * waiters; an MPMC consumer sets its record's asleep after adding itself
 * to cons waiters and clears it before subtracting, and the kernel
 * subtracts one for a dead consumer whose record says asleep (a death
 * between the two steps leaks one count: publishers then kick at most
 * once per watch, never a lost wakeup).
 *
 * End of stream. SN_KFLAG_NO_PRODUCER is set once every producer fd has
 * gone, if one ever existed (or after SN_IOC_SHUTDOWN): a drained ring
 * then reads as ended (libsn: -EPIPE), and poll reports EPOLLHUP |
 * EPOLLRDHUP to consumer and full-role fds (with EPOLLIN while messages
 * remain, as a pipe does). SN_KFLAG_NO_CONSUMER is set once every consumer
 * fd has gone, if one ever existed: sends fail (libsn: -EPIPE) and poll
 * reports EPOLLERR to producer and full-role fds. A new producer or
 * consumer fd clears its flag. Both wake every sleeper of the ring. A ring
 * that never had a producer has not ended: producers may come later.
 *
 * Barriers
 * --------
 * Every labelled barrier of the protocols above, listed once (as
 * net/xdp/xsk_queue.h lists its A to D); each site in the code says "[X]
 * pairs with [Y]" and nothing more. H is the heavy barrier of "Sleeping
 * and waking" (sn.ko: sn_heavy_barrier() in kmod/sn_barrier.c; memfd:
 * membarrier(2), by sn_heavy_barrier() in libsn/wait.c). channel.h is
 * include/sn/channel.h.
 *
 *  label  pairs with      where (function, file)
 *                           orders: a | b, a before b
 *  [P1]   [W1] [T1] [T2]  sn__prod_ship(), channel.h
 *                           tail store with release (format 3: seq first) |
 *                           load of cons waiters and kflags; FULL: a full
 *                           barrier, ASYM: a compiler barrier
 *  [C1]   [W2] [T1] [T2]  sn__cons_done(), channel.h
 *                           head store (MPMC: the release words, then [D3])
 *                           with release | load of the lane's waiting word and
 *                           kflags; FULL: a full barrier, ASYM: a compiler
 *                           barrier
 *  [W1]   [P1]            sn_consumer_wait_until(), libsn/wait.c;
 *                         sn_worker_sleep(), libsn/pool.c
 *                           add 1 to cons waiters | re-check the ring; H (an
 *                           sn.ko ring: a full barrier there, H in the kernel:
 *                           [K1] or SN_IOC_BARRIER)
 *  [W2]   [C1]            sn_producer_wait_until(), libsn/wait.c
 *                           set the lane's waiting word | re-check the ring; H
 *                           as [W1]
 *  [K1]   [K2]            sn_ring_poll(), kmod/sn_file.c
 *                           join the wait queue | read the ring and kflags; H
 *                           for a caller that will wait (its [W1] or [W2], so
 *                           it also pairs with [P1] or [C1]), else a full
 *                           barrier. SN_IOC_BARRIER (sn_ring_ioctl(), same
 *                           file) runs the same H for a sleeper that waits
 *                           elsewhere
 *  [K2]   [K1]            sn_ring_wake(), kmod/sn_thread.c
 *                           what the thread read of the ring | its look at the
 *                           wait queue (wq_has_sleeper()'s full barrier)
 *  [T1]   [P1] [C1]       sn_flag_rings() for sn_thread_pass(),
 *                         kmod/sn_thread.c
 *                           NEED_WAKEUP on each ring of a closing pass | the
 *                           look at each; H if one of the rings is ASYM, else a
 *                           full barrier
 *  [T2]   [P1] [C1]       sn_flag_rings() for sn_unwatch_rings(),
 *                         kmod/sn_thread.c
 *                           NEED_WAKEUP on each ring that stops being watched |
 *                           its last look; H or a full barrier as [T1]
 *  [A1]   [A2]            sn_thread_add(), sn_unwatch_rings(), kmod/sn_thread.c
 *                           the ring joins or leaves a CPU's list | its arm_cpu
 *                           store (release)
 *  [A2]   [A1]            sn_thread_arm(), sn_thread_rearm(), sn_thread_kick(),
 *                         sn_thread_disarm(), kmod/sn_thread.c
 *                           arm_cpu load (acquire) | what that CPU's list says
 *                           of the ring
 *  [E1]   [E2]            sn_kflags_set(), kmod/sn_ring.c;
 *                         sn_memfd_update_flags(), libsn/backend_memfd.c
 *                           what came before an end flag (the last producer's
 *                           commits) | the flag's atomic or
 *  [E2]   [E1]            sn_consumer_poll_state(), libsn/wait.c
 *                           kflags load (acquire) | the re-check of the lanes
 *  [D7]   [D6]            sn__cons_take(), sn__cons_var_take(), channel.h
 *                           the last claim's release words and IDLE | each of
 *                           the record's lane, pos and n (release stores)
 *  [D1]   [D5]            sn__cons_take(), sn__cons_var_take(), channel.h
 *                           the record's lane, pos and n | state INTENT
 *                           (release)
 *  [D2]   [D4]            sn__cons_take(), sn__cons_var_take(), channel.h
 *                           the record and the tail read | the head CAS
 *                           (acq_rel) | the reads of the slots
 *  [D3]   [D5]            sn__cons_done(), channel.h
 *                           the release words | state IDLE (release)
 *  [D4]   [D2]            sn_recover_one(), kmod/sn_recover.c;
 *                         sn_memfd_recover(), libsn/backend_memfd.c
 *                           head load (acquire) | the live records
 *  [D5]   [D1] [D3]       sn_read_live(), kmod/sn_recover.c;
 *                         sn_memfd_recover(), libsn/backend_memfd.c
 *                           a record's state load (acquire) | its lane, pos and
 *                           n
 *  [D6]   [D7]            sn_recover_one(), kmod/sn_recover.c (smp_rmb());
 *                         sn_memfd_recover(), libsn/backend_memfd.c (acquire
 *                         loads)
 *                           the live records | the release words
 */
#ifndef _UAPI_LINUX_SN_H
#define _UAPI_LINUX_SN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SN_DEVICE_NAME	"sn"
#define SN_DEVICE_PATH	"/dev/sn"
#define SN_DEVICE_MODE	0666

#define SN_IOC_MAGIC	0xB9

/* Separation of fields written by different parties (two 64-byte lines). */
#define SN_PAD		128
/* Producer lanes per ring. */
#define SN_MAX_LANES	64
/*
 * The largest slots per lane and slot size the module accepts whatever its
 * parameters (max_slots and max_slot_size may only be set lower): with
 * SN_MAX_LANES they keep every size in a ring's layout far from overflow.
 */
#define SN_MAX_SLOTS		(1U << 24)
#define SN_MAX_SLOT_SIZE	(1U << 20)
/* MPMC consumer fds per ring: each owns one claim record. */
#define SN_MAX_CLAIMS	64
/* kpage magic: "sn" ring, format 2 (claim records, peer statistics) */
#define SN_KPAGE_MAGIC	0x736e0002
/* kpage magic of a ring created with SN_CREATE_FORMAT3 (slot headers) */
#define SN_KPAGE_MAGIC_FORMAT3	0x736e0003

enum sn_ring_type {
	SN_RING_SPSC = 1,
	SN_RING_MPSC = 2,
	SN_RING_MPMC = 3,
};

enum sn_role {
	SN_ROLE_FULL = 0,
	SN_ROLE_PRODUCER = 1,
	SN_ROLE_CONSUMER = 2,
};

/* struct sn_create flags */
#define SN_CREATE_HOME_CPU	(1U << 0)	/* home_cpu is given */
#define SN_CREATE_NUMA_NODE	(1U << 1)	/* numa_node is given */
/* format 3: every slot starts with a struct sn_slot (see "Format 3") */
#define SN_CREATE_FORMAT3	(1U << 2)
/*
 * the fast sides skip their fences, sleepers pay (SN_FENCE_ASYM; "Sleeping
 * and waking"), unless the module parameter asym is 0; else SN_FENCE_FULL
 */
#define SN_CREATE_ASYM		(1U << 3)
/*
 * format 3 with records of any length: a message may take several
 * consecutive slots (see "Records"); needs SN_CREATE_FORMAT3
 */
#define SN_CREATE_VARLEN	(1U << 4)
#define SN_CREATE_FLAGS		(SN_CREATE_HOME_CPU | SN_CREATE_NUMA_NODE | \
				 SN_CREATE_FORMAT3 | SN_CREATE_ASYM | \
				 SN_CREATE_VARLEN)

/* SN_IOC_CREATE on /dev/sn: returns a new ring fd (O_CLOEXEC). */
struct sn_create {
	__u32 size;		/* sizeof(struct sn_create) */
	__u32 type;		/* enum sn_ring_type */
	__u32 slot_size;	/* bytes per message: a multiple of 8, >= 8 */
	__u32 slots;		/* per lane: a power of two */
	__u32 lanes;		/* 1 for SPSC; 1..SN_MAX_LANES otherwise */
	__u32 flags;		/* SN_CREATE_* */
	__u32 home_cpu;		/* SN_CREATE_HOME_CPU: else 0, creator's CPU */
	__u32 numa_node;	/* SN_CREATE_NUMA_NODE: else 0, home's node */
	__u32 bufs;		/* arena buffers per lane (see "Buffers") */
	__u32 buf_size;		/* bytes per buffer; 0 without buffers */
	__u64 reserved[3];	/* zero */
};

/*
 * SN_IOC_CREATE fails with EINVAL for a bad type, a slot_size that is not a
 * multiple of 8 or above the module parameter max_slot_size, bufs above
 * SN_MAX_BUFS or without SN_CREATE_VARLEN, a buf_size that is not a
 * multiple of 64 in 64..SN_MAX_BUF_SIZE (0 without bufs), slots not a
 * power of two or above max_slots, lanes out of range, ring memory ((slots
 * * stride + bufs * buf_size) * lanes) above max_ring_mb,
 * SN_CREATE_VARLEN without SN_CREATE_FORMAT3 or with fewer than 2 slots,
 * and a home_cpu that is not a
 * possible CPU in the caller's allowed CPUs (sched_setaffinity, cpusets):
 * a ring's wakeup thread runs on its home CPU, so a caller may only choose
 * a CPU it may run on itself. Without SN_CREATE_HOME_CPU the home is the
 * CPU the caller runs on. ENOMEM when RLIMIT_MEMLOCK or memory runs out
 * (a ring larger than the machine's memory fails at once), EMFILE at
 * max_rings_per_user, E2BIG for a size above a page. The module parameters
 * are bounded (max_slots by SN_MAX_SLOTS, max_slot_size by
 * SN_MAX_SLOT_SIZE, max_ring_mb by 65536): a write outside a parameter's
 * range fails with EINVAL and keeps its value.
 */

#define SN_CREATE_SIZE_VER0	64

/* Where everything sits in a ring's mapping, in bytes. */
struct sn_offsets {
	/* regions, from the start of the mapping (mmap offset 0) */
	__u64 kpage;		/* struct sn_kpage, one page */
	__u64 cons;		/* consumer region */
	__u64 cons_size;
	__u64 lane0;		/* lane 0; lane i at lane0 + i * lane_size */
	__u64 lane_size;
	__u64 map_size;		/* the whole mapping */
	/* fields of the consumer region, from its start */
	__u32 cons_waiters;	/* __u32: consumers announced asleep */
	/* lane i's __u32 head at cons_lane + i * SN_PAD * 2 */
	__u32 cons_lane;
	/* lane i's struct sn_cons_stats at cons_stats + i * SN_PAD * 2 */
	__u32 cons_stats;
	/* MPMC: lane i's __u32 release[slots] at cons_release + i * slots * 4 */
	__u32 cons_release;
	/* MPMC: claim record i (struct sn_claim) at cons_claims + i * SN_PAD */
	__u32 cons_claims;
	/* fields of a lane, from its start */
	__u32 prod_tail;	/* __u32 */
	__u32 prod_waiting;	/* __u32: the producer announced asleep */
	__u32 prod_stats;	/* struct sn_prod_stats */
	__u32 slots;		/* slot 0; slot j at slots + j * stride */
	/* bytes per slot: slot_size, or sn_slot_stride() in format 3 */
	__u32 stride;
	/* varlen: __u32, the slots a waiting producer needs (see "Records") */
	__u32 prod_need;
	/* buffers: __u32 sent[bufs] in the lane's first page */
	__u32 prod_bufs;
	/* buffers: lane i's buffer j at lane0 + i * lane_size + bufs + j *
	 * buf_size, after the slots
	 */
	__u64 bufs;
	/* buffers: lane i's __u64 ret[bufs] at cons_bufs + i * bufs * 8 */
	__u64 cons_bufs;
};

/*
 * Lane epochs: the line at SN_LANE_EPOCHS_OFF of each lane (a line no other
 * field uses) holds SN_LANE_EPOCHS entries of two __u64 words, {epoch,
 * start}, written by userspace and never read by the kernel. Each producer
 * that takes the lane writes entry epoch % SN_LANE_EPOCHS: first start, the
 * lane's tail as a 64-bit count (sn_index64() of its sent statistic), then
 * epoch, one more than the largest recorded (1 for the first producer),
 * both release stores before its first message. A consumer reads epoch,
 * start and epoch again (a changed epoch: the entry was being rewritten) and
 * knows the writer of each position at or after start. Hints like the
 * statistics: a producer can write only its own lane's.
 */
#define SN_LANE_EPOCHS_OFF	(3 * SN_PAD)
#define SN_LANE_EPOCHS		4

/* What became of dead peers (see "Dead peers"); counts only grow. */
struct sn_peer_stats {
	__u64 producers_died;	/* producer fds released by an exiting task */
	__u64 consumers_died;	/* consumer fds released by an exiting task */
	__u64 reserved_lost;	/* slots reserved, never committed, owner gone */
	/* MPMC: records of dead consumers that held positions the kernel
	 * released
	 */
	__u64 claims_recovered;
	__u64 claims_lost;	/* MPMC: messages in those positions */
	/* SPSC/MPSC: peeked and not released by a consumer that went */
	__u64 redelivered;
	/* buffers a consumer that went held, returned (see "Buffers") */
	__u64 bufs_reclaimed;
};

/* Written by the kernel only; read-only in every mapping. */
struct sn_kpage {
	__u32 magic;		/* SN_KPAGE_MAGIC */
	__u32 type;
	__u32 slot_size;
	__u32 slots;
	__u32 lanes;
	__u32 pad0;
	__u64 id;		/* as in the system-wide listing */
	__u64 lanes_live;	/* bit i: lane i has a producer fd */
	__u64 lanes_dead;	/* bit i: lane i's last producer died with it */
	__u64 claims_live;	/* MPMC: bit i: record i has a consumer fd */
	__u32 fence;		/* SN_FENCE_*: fixed at creation */
	__u32 stride;		/* bytes per slot (struct sn_offsets) */
	__u32 geo_flags;	/* SN_GEO_* */
	__u32 bufs;		/* buffers per lane */
	__u32 buf_size;
	__u32 pad3;
	__u64 reserved[6];
	/* SN_PAD: what the kernel changes while the ring runs */
	__u32 kflags;		/* SN_KFLAG_* */
	__u32 pad1;
	struct sn_peer_stats peers;
};

/*
 * Statistics kept by each side in its own lines; hints, never trusted. In
 * format 3, sent is published at refills and (SPSC/MPSC) received per lane
 * when the lane's head crosses a multiple of 2^30 and at close: readers
 * extend the lane's tail and head with them (sn_index64()).
 */
struct sn_prod_stats {
	__u64 sent;
	__u64 full;		/* send attempts refused: lane full */
	__u64 sleeps;
	__u64 kicks;
	__u64 reserved;		/* slots reserved now, not yet committed */
};

struct sn_cons_stats {
	__u64 received;
	__u64 empty;		/* receive attempts that found nothing */
	__u64 sleeps;
	__u64 wakeups;
	__u64 peeked;		/* SPSC/MPSC: peeked now, not yet released */
	/* varlen: bad records dropped with the rest of their lap (SPSC/MPSC:
	 * per lane; MPMC: in lane 0's line)
	 */
	__u64 bad;
};

/* SN_IOC_INFO on a ring fd: what a process needs to map and use it. */
struct sn_info {
	__u32 size;		/* in: sizeof(struct sn_info) */
	__u32 type;
	__u32 slot_size;
	__u32 slots;
	__u32 lanes;
	__u32 role;		/* enum sn_role of this fd */
	__u32 lane;		/* SN_ROLE_PRODUCER: its lane; else 0 */
	__u32 home_cpu;
	__u32 numa_node;
	/* MPMC consumer fd: its claim record (0 to SN_MAX_CLAIMS - 1); else
	 * SN_CLAIM_NONE
	 */
	__u32 claim;
	__u64 id;
	__u64 features;		/* SN_FEAT_* */
	struct sn_offsets off;
	/* SN_INFO_SIZE_VER1 */
	__u32 geo_flags;	/* SN_GEO_* */
	__u32 bufs;		/* buffers per lane */
	__u32 buf_size;
	__u32 pad;
};

#define SN_INFO_SIZE_VER0	168
#define SN_INFO_SIZE_VER1	184

#define SN_FEAT_ROLES		(1ULL << 0)	/* SN_IOC_NARROW */
#define SN_FEAT_KICK		(1ULL << 1)	/* SN_IOC_KICK */
#define SN_FEAT_KTHREAD		(1ULL << 2)	/* wakeup threads, kflags */
#define SN_FEAT_PEERS		(1ULL << 3)	/* dead peers, SN_IOC_SHUTDOWN */
#define SN_FEAT_ASYM		(1ULL << 4)	/* SN_FENCE_ASYM rings */
#define SN_FEAT_FORMAT3		(1ULL << 5)	/* SN_CREATE_FORMAT3 */
#define SN_FEAT_VARLEN		(1ULL << 6)	/* SN_CREATE_VARLEN */
#define SN_FEAT_BUFS		(1ULL << 7)	/* bufs, buf_size */

/*
 * kpage->fence: what the fast sides of the sleep protocol do ("Sleeping
 * and waking"). FULL: a full barrier at [P1] and [C1]. ASYM: only a
 * compiler barrier there; the sleeper pays with a heavy barrier. Zero is
 * FULL, so that a ring of a module that predates ASYM reads as FULL.
 */
#define SN_FENCE_FULL		0
#define SN_FENCE_ASYM		1

/*
 * Format 3: slot j of a lane starts with this header, the message follows
 * it. The producer writes the message and len, then stores seq = the
 * position + 1 with release: the slot is committed (then it stores the
 * lane's tail with release, as in format 2, which is what the kernel
 * reads). A consumer that keeps up reads one line per message, the slot's,
 * never the producer's tail line: it takes position h when seq == h + 1
 * (acquire). Zeroed memory never reads as committed: seq 0 means position
 * 2^32 - 1, long after that slot's first write.
 */
struct sn_slot {
	__u32 seq;		/* position + 1, stored last (release) */
	__u32 len;		/* message bytes (SN_SLOT_LEN), SN_SLOT_PAD */
};

/*
 * Records (SN_CREATE_VARLEN). A message of len bytes takes
 * sn_record_slots(len) consecutive slots of its lane: the header of the
 * first, then the message, contiguous over the slots that follow (their own
 * headers are message bytes). The stride is a power of two
 * (sn_var_stride()). A record never crosses the end of the lane: where
 * the next record does not fit before it, the producer first commits a
 * padding record (len == SN_SLOT_PAD, no message) that covers the rest of
 * the lane, as Aeron's log buffers do; one mapping per lane, so the lane
 * needs no second mapping of its pages as BPF's ring buffer has, and a
 * record may be as long as the lane allows (sn_record_max()). A
 * fixed-size ring is the case where every record takes one slot and no
 * padding is ever needed.
 *
 * Commit. The producer writes the message and len, then (SPSC and MPSC)
 * stores seq = 0 in the slot after the record, then seq = the record's
 * position + 1 with release, then the tail past the record with release.
 * So a consumer at a record boundary h finds there 0 or h + 1, never the
 * bytes of an older record's message posing as h + 1: an SPSC or MPSC
 * producer needs the record's slots plus one free. MPMC consumers claim
 * by the tail, which moves only past whole records (no terminator: the
 * slot after the record may still be read by a slow consumer). So where
 * an MPMC producer died between its seq and tail stores, the walk that
 * commits its records ("Dead peers") could take bytes of an older
 * message that happen to read as the next position's header for one more
 * record: garbage in that dead producer's own lane only.
 *
 * Validation. Lengths are written by the producer, so nobody trusts them:
 * a reader reads len once and takes sn_record_span() of it, which is 0
 * for flags other than SN_SLOT_PAD, a padding record at slot 0 or a record
 * that would cross the end of the lane. A consumer that meets such a bad
 * record drops the rest of the lane's lap (libsn counts it), so that only
 * the lane a producer can write loses data. MPMC consumers also never take
 * a record beyond the tail.
 *
 * Statistics. In a varlen ring the tail and the heads count slots, not
 * messages: sent and received are stored by their sides per operation and
 * read as stored; the reserved and peeked words count records, and
 * peers.claims_lost counts slots.
 *
 * Sleeping producer. Before it announces itself, a producer stores in its
 * lane's prod_need word the slots it waits for (the record, a padding
 * record before it and the terminator); poll's EPOLLOUT for its fd then
 * means that many are free (clamped to 1..slots), so a woken producer
 * finds its room. MPMC: the release words from the tail are checked up to
 * SN_NEED_SCAN of them and the last needed one.
 */
#define SN_SLOT_PAD		(1U << 31)
#define SN_SLOT_BUF		(1U << 30)	/* the message is a sn_bufref */
#define SN_SLOT_LEN		0x3fffffffU	/* bits of the length */
#define SN_NEED_SCAN		256

/*
 * Buffers (an arena; sn_create bufs and buf_size, SN_CREATE_VARLEN only).
 * Each lane owns bufs buffers of buf_size bytes after its slots: they are
 * lane pages, so lane i's producer fd (and a full-role fd) may write them
 * and consumers read them, exactly as the lane's slots; a producer can
 * spoil only buffers of its own lane. Within its lane a producer can
 * still write a buffer it sent or a consumer holds: page rights are fixed
 * per fd, and taking pages away per message would cost a TLB shootdown
 * per message, so a consumer copies what it must validate. A large message travels as a record
 * of len SN_SLOT_BUF | sizeof(struct sn_bufref) that names a buffer of the
 * producer's lane; the consumer reads it in place and returns it, in any
 * order. Who owns a buffer is told by two words:
 *
 *   sent[j]  (lane page, producer) the tag (sn_buf_tag()) of the record
 *            that last carried buffer j, stored before that record's seq
 *   ret[j]   (consumer region, __u64) tag | state << 32: the tag of the
 *            record a consumer took it from, and SN_BUF_RETURNED or
 *            SN_BUF_HELD + holder (SPSC/MPSC: 0; MPMC: the claim record)
 *
 * Buffer j is free iff ret[j] is RETURNED with tag == sent[j] (zeroed
 * memory: every buffer free, as no record has tag 0), or the record of
 * sent[j] has been consumed (SPSC/MPSC: the head passed it; MPMC: its
 * release word moved on; the producer looks at that before it reads ret)
 * while ret[j]'s tag is not sent[j]: it was dropped (a bad record, a dead
 * MPMC consumer's recovered claim). A consumer that keeps the buffer past
 * the record stores ret[j] = tag | HELD (holder) with release before it
 * releases the record, and tag | RETURNED with release when it is done
 * with it; one that is done with it by then (it copied the message out,
 * or read it in place until the record's release) stores tag | RETURNED
 * before the release; a producer reads ret[j] with acquire.
 * So a buffer has
 * one owner at a time: its producer (free, or got and not sent), the ring
 * (sent, not yet taken), one consumer (held).
 * Validation: a consumer takes a buffer record only if its idx < bufs and
 * len <= buf_size (else it is a bad record); a producer trusts ret[] only
 * for the rule above. When a consumer fd is released, the kernel returns
 * what it held (counted in peers.bufs_reclaimed): SPSC/MPSC, every held
 * buffer whose record the head has passed (one not passed is delivered
 * again and taken again); MPMC, every buffer held by its claim record.
 */
struct sn_bufref {
	__u32 idx;		/* buffer of the record's lane: < bufs */
	__u32 len;		/* message bytes in it: <= buf_size */
};

#define SN_BUF_RETURNED		0U
#define SN_BUF_HELD		1U	/* + holder */

/*
 * The tag of a buffer record at position @pos: pos + 1, never 0 (position
 * 2^32 - 1 shares tag 1 with position 0; a tag names its record's position
 * as tag - 1, late by one at worst).
 */
static inline __u32 sn_buf_tag(__u32 pos)
{
	return pos + 1 ? pos + 1 : 1;
}

#define SN_MAX_BUFS		512
#define SN_MAX_BUF_SIZE		(16U << 20)

#define SN_CLAIM_NONE		0xffffffffU

/*
 * Whether a consumer that went, @claim its MPMC claim record (else
 * SN_CLAIM_NONE: the SPSC/MPSC consumer, its lane's head @head), held the
 * buffer whose ret word reads @ret and nobody else will return it.
 */
static inline int sn_buf_orphaned(__u64 ret, __u32 claim, __u32 head)
{
	__u32 tag = (__u32)ret, state = (__u32)(ret >> 32);

	if (state == SN_BUF_RETURNED)
		return 0;
	if (claim != SN_CLAIM_NONE)
		return state == SN_BUF_HELD + claim;
	return (__s32)(head - (tag - 1)) > 0;
}

/*
 * An MPMC consumer's claim record, in the consumer region; written by its
 * consumer only, read by the kernel when the consumer's fd is released.
 */
struct sn_claim {
	__u32 state;		/* SN_CLAIM_* */
	__u32 lane;
	__u32 pos;		/* first position claimed */
	__u32 n;		/* positions claimed from pos */
	__u32 asleep;		/* 1 while counted in cons waiters */
};

#define SN_CLAIM_IDLE		0	/* holds nothing */
#define SN_CLAIM_INTENT		1	/* about to CAS head pos -> pos + n */
#define SN_CLAIM_HELD		2	/* won [pos, pos + n), not released */

/*
 * kpage->kflags. NEED_WAKEUP: no kernel thread watches the ring right now,
 * so a publisher that sees a sleeper must kick. Set at creation; cleared
 * while a wakeup thread watches the ring.
 */
#define SN_KFLAG_NEED_WAKEUP	(1U << 0)
/*
 * Every producer fd has gone (one existed, or SN_IOC_SHUTDOWN): end of
 * stream once drained. Cleared by a new producer fd.
 */
#define SN_KFLAG_NO_PRODUCER	(1U << 1)
/*
 * Every consumer fd has gone (one existed): sends fail with EPIPE.
 * Cleared by a new consumer fd.
 */
#define SN_KFLAG_NO_CONSUMER	(1U << 2)

#define SN_LANE_ANY		0xffffffffU

/*
 * SN_IOC_NARROW on a SN_ROLE_FULL ring fd: returns a new fd (O_CLOEXEC).
 * Also on a SN_ROLE_CONSUMER fd of an MPMC ring, for another consumer fd
 * (each MPMC consumer owns a claim record); else EPERM.
 */
struct sn_narrow {
	__u32 size;		/* sizeof(struct sn_narrow) */
	__u32 role;		/* SN_ROLE_PRODUCER or SN_ROLE_CONSUMER */
	__u32 lane;		/* producer: a lane or SN_LANE_ANY; else 0 */
	__u32 flags;		/* none yet: 0 */
	__u64 reserved[2];
};

#define SN_NARROW_SIZE_VER0	32

/* SN_IOC_KICK argument: whom to wake */
#define SN_KICK_CONSUMERS	(1U << 0)
#define SN_KICK_PRODUCERS	(1U << 1)

/*
 * SN_IOC_SHUTDOWN argument, on a SN_ROLE_FULL fd (else EPERM):
 * SN_SHUT_PRODUCERS ends the stream as soon as no producer fd is open,
 * whether or not one ever was (SN_KFLAG_NO_PRODUCER).
 */
#define SN_SHUT_PRODUCERS	(1U << 0)

#define SN_IOC_CREATE	_IOW(SN_IOC_MAGIC, 0x01, struct sn_create)
#define SN_IOC_INFO	_IOWR(SN_IOC_MAGIC, 0x02, struct sn_info)
#define SN_IOC_NARROW	_IOW(SN_IOC_MAGIC, 0x03, struct sn_narrow)
#define SN_IOC_KICK	_IO(SN_IOC_MAGIC, 0x04)
#define SN_IOC_SHUTDOWN	_IO(SN_IOC_MAGIC, 0x05)
#define SN_IOC_BARRIER	_IO(SN_IOC_MAGIC, 0x06)

/* Geometry of a ring, as created. */
struct sn_geometry {
	__u32 type;
	__u32 slot_size;
	__u32 slots;
	__u32 lanes;
	__u32 flags;		/* SN_GEO_* */
	__u32 bufs;		/* buffers per lane, 0..SN_MAX_BUFS */
	__u32 buf_size;		/* a multiple of 64 */
};

/* struct sn_geometry flags */
#define SN_GEO_FORMAT3		(1U << 0)	/* slots start with sn_slot */
#define SN_GEO_VARLEN		(1U << 1)	/* records of any length */

static inline __u64 sn_align_up(__u64 x, __u64 a)
{
	return (x + a - 1) & ~(a - 1);
}

/*
 * Format 3's bytes per slot for @slot_size bytes of message: header and
 * message rounded up to 16, 32 or 64 (a slot never straddles two cache
 * lines), or to a multiple of 64 above that.
 */
static inline __u32 sn_slot_stride(__u32 slot_size)
{
	__u32 s = slot_size + (__u32)sizeof(struct sn_slot);

	if (s <= 16)
		return 16;
	if (s <= 32)
		return 32;
	return (__u32)sn_align_up(s, 64);
}

/*
 * A varlen ring's bytes per slot: sn_slot_stride() rounded up to a power
 * of two, so that a record's slot count is a shift.
 */
static inline __u32 sn_var_stride(__u32 slot_size)
{
	__u32 s = sn_slot_stride(slot_size);

	while (s & (s - 1))
		s += s & -s;
	return s;
}

/* log2 of a power of two @x. */
static inline __u32 sn_log2(__u32 x)
{
	__u32 n = 0;

	while (x > 1) {
		x >>= 1;
		n++;
	}
	return n;
}

/* Slots a record of @len message bytes takes (1 << @shift bytes each). */
static inline __u64 sn_record_slots(__u64 len, __u32 shift)
{
	return (len + sizeof(struct sn_slot) + (1ULL << shift) - 1) >> shift;
}

/*
 * The longest message of a varlen lane of @slots slots of 1 << @shift
 * bytes: all but one slot (SPSC and MPSC keep one for the terminator;
 * MPMC the same, so that every type takes the same messages), header
 * excluded, within SN_SLOT_LEN.
 */
static inline __u32 sn_record_max(__u32 slots, __u32 shift)
{
	__u64 m = ((__u64)(slots - 1) << shift);

	if (m <= sizeof(struct sn_slot))
		return 0;
	m -= sizeof(struct sn_slot);
	return m > SN_SLOT_LEN ? SN_SLOT_LEN : (__u32)m;
}

/*
 * The slots taken by the record whose header says @len, at slot @idx
 * (0..slots - 1) of a varlen lane of @slots slots of 1 << @shift bytes;
 * 0 when it is no valid record there: unknown flags, a padding record at
 * slot 0, a buffer record of another length, a message above
 * sn_record_max(), or a record crossing the lane end. Everything that
 * reads a record's length goes through this (and refuses buffer records
 * in a ring without buffers).
 */
static inline __u32 sn_record_span(__u32 len, __u32 idx, __u32 slots,
				   __u32 shift)
{
	__u64 n;

	if (idx >= slots)
		return 0;
	if (len == SN_SLOT_PAD)
		return idx ? slots - idx : 0;
	if (len == (SN_SLOT_BUF | sizeof(struct sn_bufref)))
		len = sizeof(struct sn_bufref);
	if (len > sn_record_max(slots, shift))
		return 0;
	n = sn_record_slots(len, shift);
	return n <= slots - idx ? (__u32)n : 0;
}

/* Bytes per slot of a ring of geometry @g (struct sn_offsets' stride). */
static inline __u32 sn_geo_stride(const struct sn_geometry *g)
{
	if (g->flags & SN_GEO_VARLEN)
		return sn_var_stride(g->slot_size);
	if (g->flags & SN_GEO_FORMAT3)
		return sn_slot_stride(g->slot_size);
	return g->slot_size;
}

/*
 * Extends a free-running 32-bit index @idx to 64 bits with @pub, a 64-bit
 * count of the same index published less than 2^31 steps away from it,
 * behind or (read in the other order) ahead: format 3's sent and received
 * statistics, which their sides publish now and then and readers extend
 * from the tail or the head.
 */
static inline __u64 sn_index64(__u64 pub, __u32 idx)
{
	return pub + (__u64)(__s64)(__s32)(idx - (__u32)pub);
}

/*
 * The ring layout, from its geometry and the page size. Both the kernel and
 * libsn's memfd backend call this; nothing else decides where things sit.
 * The caller has checked the geometry: slots a power of two, slot_size a
 * multiple of 8, lanes 1 to SN_MAX_LANES, bufs at most SN_MAX_BUFS, and
 * (slots * stride + bufs * buf_size) * lanes below 2^56 (the kernel allows
 * at most max_ring_mb, 2^36 bytes). Then nothing here overflows: the
 * release words take below 2^40 bytes, sent[] ends within the lane's first
 * page (4 * SN_PAD + 4 * SN_MAX_BUFS bytes), and
 * map_size fits a __u64 (below 2^52 for the kernel's rings); the __u32
 * offsets stay within the first lane page or, for cons_claims and
 * cons_release, 24.25 KiB rounded up to a page.
 */
static inline void sn_ring_layout(const struct sn_geometry *g, __u64 page_size,
				  struct sn_offsets *off)
{
	__u64 cons_bytes;

	off->stride = sn_geo_stride(g);
	off->cons_waiters = 0;
	off->cons_lane = 2 * SN_PAD;
	off->cons_stats = 3 * SN_PAD;
	cons_bytes = off->cons_lane + (__u64)g->lanes * SN_PAD * 2;
	if (g->type == SN_RING_MPMC) {
		off->cons_claims = (__u32)cons_bytes;
		cons_bytes += (__u64)SN_MAX_CLAIMS * SN_PAD;
		off->cons_release = (__u32)sn_align_up(cons_bytes, page_size);
		cons_bytes = off->cons_release +
			     (__u64)g->lanes * g->slots * sizeof(__u32);
	} else {
		off->cons_claims = 0;
		off->cons_release = 0;
	}
	off->cons_bufs = sn_align_up(cons_bytes, 8);
	cons_bytes = off->cons_bufs + (__u64)g->lanes * g->bufs * 8;
	off->prod_tail = 0;
	off->prod_waiting = SN_PAD;
	off->prod_stats = 2 * SN_PAD;
	off->prod_need = SN_PAD + sizeof(__u32);
	off->prod_bufs = 4 * SN_PAD;
	off->slots = (__u32)page_size;

	off->kpage = 0;
	off->cons = page_size;
	off->cons_size = sn_align_up(cons_bytes, page_size);
	off->lane0 = off->cons + off->cons_size;
	off->bufs = page_size +
		sn_align_up((__u64)g->slots * off->stride, page_size);
	off->lane_size = off->bufs +
		sn_align_up((__u64)g->bufs * g->buf_size, page_size);
	off->map_size = off->lane0 + g->lanes * off->lane_size;
}

#endif /* _UAPI_LINUX_SN_H */
