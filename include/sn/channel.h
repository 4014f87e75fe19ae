/* SPDX-License-Identifier: MIT */
/*
 * libsn channels: SPSC, MPSC and MPMC message channels over sn rings.
 *
 * A channel is one ring (include/uapi/linux/sn.h): lanes of fixed-size
 * slots, one lane per producer. Two backends share that ring format and
 * this header's inline hot path:
 *
 *   SN_BACKEND_KERNEL  the ring lives in sn.ko (/dev/sn); roles and lane
 *                      ownership are enforced by the kernel, sleepers poll()
 *                      the ring fd and are woken by SN_IOC_KICK.
 *   SN_BACKEND_MEMFD   the ring lives in a sealed memfd that libsn lays out
 *                      itself with sn_ring_layout(); for machines without
 *                      the module. Everything is writable by every attached
 *                      process; sleepers use futex(2) on the shared words.
 *
 * Usage: sn_channel_create() (or sn_channel_attach() on a ring fd received by
 * fork, or sn_channel_recv_fd() from a unix socket), then one sn_producer per
 * producing thread (sn_producer_open(): it owns one lane) and one sn_consumer
 * per consuming thread (sn_consumer_open(); one in all for SPSC and MPSC).
 * Threads may open and close handles of one channel concurrently; a handle is
 * used by one thread at a time; sn_channel_close() comes after every handle's
 * close.
 *
 * Hot path (static inline below): sn_try_send/sn_try_recv, the bursts, and
 * sn_producer_reserve/sn_producer_commit, sn_consumer_peek/
 * sn_consumer_advance. They make no system call unless the other side
 * announced it sleeps (then one kick), never read or write
 * outside the mapping whatever a peer writes into it (every index masked,
 * every difference clamped, geometry only from validated private copies),
 * and never loop unboundedly. A malicious peer can garble or lose messages
 * of the lanes it can write, nothing more. The blocking sn_send/sn_recv
 * honour their timeout.
 *
 * Every function returns a negative errno on failure unless documented
 * otherwise.
 *
 * Memfd backend notes: libsn writes the kpage itself. lanes_live and
 * claims_live are the claim bitmaps of producers and MPMC consumers,
 * reserved[0] holds the SPSC/MPSC consumer claim and what sn.ko keeps in
 * its own memory (whether a producer or a consumer ever existed, and
 * shutdown); lanes_dead, kflags and peers mean what they mean for sn.ko
 * (libsn/backend_memfd.c). The sleep words carry a wake
 * sequence in their upper 16 bits (bumped by the kicker before FUTEX_WAKE,
 * so that a wake between announce and FUTEX_WAIT is never lost); the count
 * or flag is in the lower 16 bits.
 *
 * Dead peers (the uapi header's "Dead peers" says what sn.ko does): a
 * producer or consumer may die at any point, by SIGKILL included.
 *  - End of stream: once every producer has gone (closed or died; one must
 *    have existed, or sn_channel_shutdown() was called) and the lanes this
 *    process reads are drained, receives return -EPIPE, and so do the
 *    waits. Once every consumer has gone (one must have existed), sends,
 *    reservations and sn_producer_wait() return -EPIPE until a new consumer
 *    opens; what is in the ring stays for it.
 *  - A dead producer's lane is free for a new producer, which continues
 *    from its tail; what it committed stays readable in order (a message
 *    whose slot it committed before it could store the tail included);
 *    what it reserved and did not commit is lost and counted
 *    (reserved_lost).
 *  - A dead SPSC/MPSC consumer frees the consumer claim; a new consumer
 *    continues from the heads: what the dead one peeked and did not
 *    release is delivered again (at least once; counted, redelivered).
 *  - A dead MPMC consumer's claimed, unreleased messages are released so
 *    the producers go on, and counted as lost (claims_lost: at most once).
 *    Each MPMC consumer handle owns a claim record, so at most
 *    SN_MAX_CLAIMS consumers are open at once (-EUSERS beyond).
 * Memfd backend: no kernel sees a death, so libsn finds dead peers itself
 * through open-file-description locks that each handle holds on its own
 * open file description of the memfd (fcntl F_OFD_SETLK: the kernel drops
 * them when the holder's last fd closes, at death too). A sleeper looks
 * for dead peers every 50 ms while it sleeps, and before it sleeps;
 * a non-blocking call sees a death only once someone looked (a sleeper,
 * an open, sn_channel_stats()). The memfd ring is writable by every
 * process that maps it, so these rules hold against crashes, not against
 * a peer that scribbles. Each handle keeps an fd of its own (the
 * description it reopens through /proc/self/fd: without /proc mounted,
 * handles fail to open with -ENOSYS). A forked child shares its parent's
 * descriptions until it execs: a handle then counts as alive while either
 * process lives (its sn_*_close() frees it at once all the same). The
 * kernel backend is alike: a forked child holds copies of its parent's
 * ring fds (O_CLOEXEC: until it execs), so the parent's death is seen once
 * the child closes them, exits or execs.
 */
#ifndef SN_CHANNEL_H
#define SN_CHANNEL_H

#include <errno.h>
#include <string.h>

#include <linux/sn.h>

#ifdef __cplusplus
extern "C" {
#endif

/*
 * Alignment and padding of the producer and consumer handles, so that two
 * handles used by different threads never share a cache line. Build with
 * -DSN_CACHE_LINE=128 on CPUs with 128-byte lines (or adjacent-line
 * prefetch). Field offsets do not depend on it: libsn and its users may use
 * different values; libsn always allocates handles on 128-byte boundaries.
 */
#ifndef SN_CACHE_LINE
#define SN_CACHE_LINE 64
#endif

/* Backends: flags of sn_channel_create() and values of sn_channel_backend().
 * Neither flag: the kernel backend when /dev/sn opens, else memfd. */
#define SN_BACKEND_KERNEL	(1U << 0)
#define SN_BACKEND_MEMFD	(1U << 1)
/*
 * sn_channel_create() flag: messages of any length up to
 * sn_channel_info().max_msg (records; the uapi header's "Records"):
 * slot_size is then the bytes of one slot, and a message of len bytes
 * takes sn_record_slots() consecutive slots (8 bytes of header included;
 * the slot's bytes are slot_size + 8 rounded up to a power of two). Send
 * and receive with the *_len calls; sn_try_send/sn_send send slot_size
 * bytes, sn_try_recv/sn_recv receive messages of at most slot_size bytes;
 * the bursts, sn_producer_reserve and sn_consumer_peek fail with -EINVAL.
 */
#define SN_CHANNEL_VARLEN	(1U << 2)
#define SN_CHANNEL_FLAGS	(SN_BACKEND_KERNEL | SN_BACKEND_MEMFD | \
				 SN_CHANNEL_VARLEN)

/* Timeouts of sn_send()/sn_recv()/sn_*_wait(), in nanoseconds. */
#define SN_NO_WAIT		0ULL
#define SN_WAIT_FOREVER		(~0ULL)

/* Geometry limits libsn creates (the module has its own, often the same). */
#define SN_CHANNEL_MAX_SLOTS		(1U << 20)
#define SN_CHANNEL_MAX_SLOT_SIZE	65536U
/* slot memory, slots * stride * lanes (stride: slot_size + its 8-byte
 * header, rounded up to 16, 32, 64 or a multiple of 64) */
#define SN_CHANNEL_MAX_BYTES		(1ULL << 30)

struct sn_channel;

/*
 * The binary interface (libsn.so.1, symbol version LIBSN_1 in
 * libsn/libsn.map). The hot path is inline, so programs compile in what
 * it reads: the layouts of struct sn_producer and struct sn_consumer below,
 * the SN__* handle flags, and the out-of-line helpers named sn__* are part
 * of libsn.so.1's ABI as much as the functions are. They change only with
 * a new soname; new functions come in a new version node. The ring format
 * itself is the uapi header's (include/uapi/linux/sn.h, its SN_FEAT_* bits
 * and struct sizes).
 */
#define SN_ABI_VERSION	1	/* the soname's number: libsn.so.1 */

/*
 * The full barrier of the sleep/wake protocol ([W1], [W2]; [P1] and [C1]
 * on SN_FENCE_FULL rings; the table of barriers is in
 * include/uapi/linux/sn.h).
 * ThreadSanitizer cannot model fences (GCC refuses them under
 * -fsanitize=thread): there, a sequentially consistent read-modify-write
 * of a private word, a full barrier on the hardware all the same.
 */
#if defined(__SANITIZE_THREAD__)
#define SN__FULL_BARRIER() do {						\
		int sn__d = 0;						\
		__atomic_fetch_add(&sn__d, 0, __ATOMIC_SEQ_CST);	\
	} while (0)
#else
#define SN__FULL_BARRIER() __atomic_thread_fence(__ATOMIC_SEQ_CST)
#endif

/*
 * [P1] and [C1]: a full barrier on SN_FENCE_FULL rings (SN__FENCE), a
 * compiler barrier on SN_FENCE_ASYM ones, whose sleepers pay instead (the
 * uapi header's "Sleeping and waking"). One predictable branch.
 */
#define SN__FAST_SIDE_BARRIER(flags) do {				\
		if ((flags) & SN__FENCE)				\
			SN__FULL_BARRIER();				\
		else							\
			__asm__ __volatile__("" ::: "memory");		\
	} while (0)

/* Internal handle flags. */
#define SN__MPMC	(1U << 0)
#define SN__MEMFD	(1U << 1)
#define SN__FENCE	(1U << 2)	/* the ring is SN_FENCE_FULL */
#define SN__VARLEN	(1U << 3)	/* records (SN_CHANNEL_VARLEN) */
/* peek_n in lane mode (sn_consumer_peek_lane()): the other receive calls
 * see a peek outstanding and return -EINVAL */
#define SN__PEEK_LANES	0x80000000U

/*
 * A producer: owns one lane. Transparent for the inline hot path; fields
 * are libsn's, read them only through functions. Allocated by libsn.
 */
struct sn_producer {
	/* written by the owning thread only */
	__u32 tail;		/* next position to write: the truth */
	__u32 limit;		/* positions before limit are known free */
	__u32 mask;		/* slots - 1 */
	__u32 slot_size;
	__u32 resv;		/* slots reserved and not committed */
	__u32 flags;		/* SN__* */
	__u32 wake_mask;	/* bits of cons waiters that count sleepers */
	__u32 lane;
	__u32 stride;		/* bytes per slot, header included */
	__u32 pad;
	unsigned char *slots;	/* slot 0 of the lane (its struct sn_slot) */
	__u32 *tail_p;		/* the lane's shared tail */
	const __u32 *head_p;	/* the consumers' head of the lane */
	const __u32 *release;	/* MPMC: the lane's release words; else NULL */
	__u32 *waiters_p;	/* cons waiters */
	__u32 *waiting_p;	/* the lane's producer waiting word */
	const __u32 *kflags_p;	/* kpage kflags: SN_KFLAG_NEED_WAKEUP */
	struct sn_prod_stats *stats;	/* the lane's statistics line */
	__u64 sent;		/* local copies of this lane's statistics
				 * (sent is published at refills) */
	__u64 full;
	__u64 sleeps;
	__u64 kicks;
	struct sn_channel *chan;
	int fd;			/* kernel: the lane's producer fd; memfd: its
				 * lock fd (see backend_memfd.c) */
	int own_fd;		/* fd is the handle's own (closed with it) */
	/* records (SN__VARLEN) */
	__u32 shift;		/* log2 of the stride */
	__u32 max_len;		/* sn_record_max(); fixed: slot_size */
	__u32 need;		/* slots the last refused send needed */
	__u32 resv_len;		/* sn_producer_reserve_len(): bytes reserved */
	__u32 *need_p;		/* the lane's prod_need word */
	/* buffers (uapi "Buffers") */
	__u32 bufs;
	__u32 buf_size;
	unsigned char *buf0;	/* the lane's buffer 0 */
	__u32 *sent_p;		/* the lane's sent[] words */
	const __u64 *ret_p;	/* the lane's ret[] words */
	__u32 buf_next;		/* where sn_buf_get() looks first */
	__u32 pad2;
	__u64 got[SN_MAX_BUFS / 64];	/* got by sn_buf_get(), not sent */
} __attribute__((aligned(SN_CACHE_LINE)));

/*
 * A consumer: reads every lane. SPSC/MPSC: the one consumer, whose heads
 * are the truth; MPMC: one of several, claiming positions by CAS.
 */
struct sn_consumer {
	__u32 mask;
	__u32 slot_size;
	__u32 lanes;
	__u32 next_lane;	/* round robin over the lanes */
	__u32 flags;		/* SN__* */
	__u32 wake_mask;	/* bits of a waiting word that flag a sleeper */
	__u32 peek_lane;	/* outstanding sn_consumer_peek(): lane, position, count */
	__u32 peek_pos;
	__u32 peek_n;
	__u32 off_tail;		/* field offsets within a lane */
	__u32 off_waiting;
	__u32 off_slots;
	__u32 stride;		/* bytes per slot, header included */
	unsigned char *lane0;	/* lane 0 */
	unsigned char *heads;	/* lane i's head at heads + i * 2 * SN_PAD */
	__u32 *release;		/* MPMC: lane i's words at release + i * slots */
	struct sn_claim *claim;	/* MPMC: our claim record */
	__u64 lane_size;
	__u32 *waiters_p;
	const __u32 *kflags_p;	/* kpage kflags: SN_KFLAG_NEED_WAKEUP */
	struct sn_cons_stats *stats;	/* lane 0's consumer statistics line */
	__u64 received;		/* local statistics */
	__u64 empty;
	__u64 sleeps;
	__u64 wakeups;
	__u64 kicks;		/* producers kicked (not in the shared stats) */
	__u64 pub[4];		/* MPMC: what is already published */
	__u32 unpublished;	/* MPMC: operations since the last publication */
	int fd;			/* kernel: the consumer fd; memfd: its lock fd */
	int own_fd;		/* fd is the handle's own (closed with it) */
	__u32 claim_idx;	/* MPMC: our claim record's index */
	struct sn_channel *chan;
	__u32 head[SN_MAX_LANES];	/* SPSC/MPSC: our heads, the truth;
					 * MPMC: the head ctail was read at */
	/* SPSC/MPSC: committed up to (slots' seq); MPMC: cached tails */
	__u32 ctail[SN_MAX_LANES];
	/* records (SN__VARLEN) */
	__u32 shift;		/* log2 of the stride */
	__u32 max_len;		/* sn_record_max(); fixed: slot_size */
	__u32 peek_slots;	/* slots of the record sn_consumer_peek_len() holds */
	__u32 bufs;		/* buffers per lane (uapi "Buffers") */
	__u64 bad;		/* bad records dropped (MPMC: unpublished) */
	__u64 off_bufs;		/* buffer 0 within a lane */
	__u32 buf_size;
	__u32 holder;		/* SN_BUF_HELD + our holder number */
	__u64 *ret;		/* lane i's ret words at ret + i * bufs */
	__u32 peek_buf;		/* the peeked record's buffer + 1, or 0 */
	__u32 pad3;
	/* LIBSN_1.1, lane mode (sn_consumer_peek_lane()): appended, so the
	 * fields above keep their offsets */
	__u32 cursor[SN_MAX_LANES];	/* read up to; head[] released up to */
	__u32 lanes_out;	/* lanes with cursor != head */
	__u32 pad4;
} __attribute__((aligned(SN_CACHE_LINE)));

/* Statistics of a channel, summed over what this process can read. */
struct sn_channel_stats {
	__u64 sent;		/* messages committed by producers */
	__u64 received;		/* messages released by consumers */
	__u64 send_errors;	/* send attempts refused: lane full */
	__u64 recv_empty;	/* receive attempts that found nothing */
	/* messages in the readable lanes now (SN_CHANNEL_VARLEN: the slots
	 * they take, as the indices count) */
	__u64 depth;
	__u64 sleeps;		/* producers' and consumers' sleeps */
	__u64 wakeups;		/* consumer sleeps that ended with a message */
	__u64 kicks;		/* producers' kicks of sleeping consumers */
	/* dead peers (see the top of this header) */
	__u64 lanes_live;	/* bit i: lane i has a producer */
	__u64 lanes_dead;	/* bit i: lane i's last producer died */
	__u64 producers_died;
	__u64 consumers_died;
	__u64 reserved_lost;	/* reserved, never committed, owner gone */
	__u64 claims_recovered;	/* MPMC: dead consumers' claims released */
	/* MPMC: messages in them (at most once; varlen: their slots) */
	__u64 claims_lost;
	__u64 redelivered;	/* SPSC/MPSC: peeked, unreleased, consumer gone */
	/* SN_CHANNEL_VARLEN: records a producer garbled, dropped by consumers
	 * with the rest of their lane's lap */
	__u64 bad_records;
	__u64 bufs_reclaimed;	/* buffers a departed consumer held, returned */
	__u32 ended;		/* no producer left (end of stream once drained) */
	__u32 orphaned;		/* no consumer left (sends fail with -EPIPE) */
};

/* What a channel is, for tools and tests. */
struct sn_channel_info {
	__u32 type;		/* enum sn_ring_type */
	__u32 slots;		/* per lane */
	__u32 slot_size;
	__u32 lanes;
	__u32 backend;		/* SN_BACKEND_KERNEL or SN_BACKEND_MEMFD */
	__u32 role;		/* enum sn_role of this channel's fd */
	__u32 lane;		/* SN_ROLE_PRODUCER: its lane */
	/* SN_FENCE_ASYM: sends and receives issue no full barrier, sleepers
	 * pay (kernel: sn.ko interrupts the CPUs; memfd: membarrier(2));
	 * SN_FENCE_FULL: every send and release issues one */
	__u32 fence;
	__u64 map_size;
	__u64 id;		/* kernel: the ring id; memfd: 0 */
	__u32 flags;		/* SN_CHANNEL_VARLEN */
	/* the longest message: slot_size, or with SN_CHANNEL_VARLEN all but
	 * one of a lane's slots, less the 8-byte header */
	__u32 max_msg;
	__u32 bufs;		/* buffers per lane (sn_buf_get()) */
	__u32 buf_size;
	/* 1: the kernel enforces @role (SN_BACKEND_KERNEL); 0: every
	 * process that maps the ring may write all of it (memfd) */
	__u32 roles_enforced;
};

/* ---- Channels (libsn/channel.c) ---- */

/*
 * What sn_channel_create() creates. Size-first, as the kernel's structs,
 * so it can grow: set @size to sizeof(struct sn_channel_opts) (the
 * SN_CHANNEL_OPTS() macro does); fields left 0 take their defaults. A
 * program built against an older, smaller struct gets the defaults for the
 * fields it lacks; one built against a newer, larger struct runs on an
 * older libsn only while the fields that libsn does not know are 0
 * (-E2BIG otherwise), so nothing asked for is silently left out.
 */
struct sn_channel_opts {
	__u32 size;		/* sizeof(struct sn_channel_opts) */
	__u32 type;		/* enum sn_ring_type; 0: SN_RING_SPSC */
	/* per lane: a power of two, 1..SN_CHANNEL_MAX_SLOTS (varlen: 2..);
	 * 0: SN_CHANNEL_DEFAULT_SLOTS */
	__u32 slots;
	/* bytes per message (varlen: per slot): a multiple of 8,
	 * 8..SN_CHANNEL_MAX_SLOT_SIZE; 0: SN_CHANNEL_DEFAULT_SLOT_SIZE */
	__u32 slot_size;
	/* the most producers at a time: 1 for SPSC, 1..SN_MAX_LANES; 0: 1
	 * for SPSC, else the online CPUs (at most SN_MAX_LANES) */
	__u32 lanes;
	/* SN_BACKEND_KERNEL or SN_BACKEND_MEMFD (neither: the kernel's when
	 * /dev/sn opens, else memfd), SN_CHANNEL_VARLEN */
	__u32 flags;
	/*
	 * Buffers for large messages passed without a copy (needs
	 * SN_CHANNEL_VARLEN): @bufs per lane, 1..SN_MAX_BUFS, of @buf_size
	 * bytes each, a multiple of 64 up to SN_MAX_BUF_SIZE (kernel rings:
	 * within the module's max_ring_mb). See sn_buf_get(). 0: none.
	 */
	__u32 bufs;
	__u32 buf_size;
};

#define SN_CHANNEL_OPTS_SIZE_VER0	32	/* libsn 1.0's */
#define SN_CHANNEL_DEFAULT_SLOTS	1024U
#define SN_CHANNEL_DEFAULT_SLOT_SIZE	64U

/*
 * A pointer to options with @size set and the given fields, the rest 0
 * (defaults), e.g. SN_CHANNEL_OPTS(.type = SN_RING_MPSC, .lanes = 4).
 * C only (a compound literal); C++ fills a struct sn_channel_opts.
 */
#define SN_CHANNEL_OPTS(...)						\
	(&(const struct sn_channel_opts){				\
		.size = sizeof(struct sn_channel_opts), __VA_ARGS__ })

/*
 * Creates a channel as @opts say and stores it in *@out. Errors: -EINVAL
 * (a field breaks its rule above, or the total of slots and buffers is
 * above SN_CHANNEL_MAX_BYTES, or sn.ko's limits for kernel rings;
 * sn_last_error() says which), -E2BIG (a field this libsn does not know
 * is set), -ENOENT (SN_BACKEND_KERNEL without the
 * module), or what open/ioctl/memfd_create/mmap return (-ENOMEM, -EPERM
 * for a memlock limit, ...).
 */
int sn_channel_create(struct sn_channel **out,
		      const struct sn_channel_opts *opts);

/*
 * Why the calling thread's last sn_channel_create(), sn_channel_attach()
 * or sn_channel_recv_fd() failed, as a sentence naming the argument and
 * the limit ("slots 1000: not a power of two in 1..1048576"); "" when its
 * errno says all there is. Valid until this thread's next such call,
 * sn_pool_create() included (it creates channels).
 */
const char *sn_last_error(void);

/*
 * Attaches to the ring behind @fd (a kernel ring fd of any role, or a libsn
 * memfd), which the caller keeps: libsn works on its own duplicate. The
 * backend is detected (SN_IOC_INFO succeeds: kernel; else a sealed memfd
 * whose kpage holds a valid ring of exactly the file's size), and the
 * mapping follows the fd's role (see sn_producer_open/sn_consumer_open).
 * @flags: 0. Errors: -EINVAL (not a ring, inconsistent geometry), -EBADF,
 * what mmap returns.
 */
int sn_channel_attach(struct sn_channel **out, int fd, unsigned int flags);

/*
 * Unmaps and frees @ch; its handles must be closed first (-EBUSY otherwise,
 * and nothing is done). NULL: 0.
 */
int sn_channel_close(struct sn_channel *ch);

/*
 * Ends the stream once no producer is open, whether or not one ever was:
 * consumers then read -EPIPE when drained (see "Dead peers" above). A new
 * producer may still open and continue. Needs the channel's creator fd
 * (kernel backend: full role; else -EPERM).
 */
int sn_channel_shutdown(struct sn_channel *ch);

/* The channel's own ring fd (to pass on by fork or SCM_RIGHTS). */
int sn_channel_fd(const struct sn_channel *ch);

/* ---- Sharing with other processes (libsn/share.c) ---- */

/*
 * A new fd (O_CLOEXEC; the caller closes it) that gives what @role allows,
 * for another process to sn_channel_attach():
 *   SN_ROLE_FULL      everything this channel's fd may do (a duplicate;
 *                     -EPERM unless this channel's fd is full-role);
 *   SN_ROLE_PRODUCER  one producer of lane @lane, or of a free lane with
 *                     SN_LANE_ANY: the fd owns that lane from now on, so
 *                     no producer of this process can take it (which
 *                     one: sn_channel_info().lane of a channel attached
 *                     to the fd);
 *   SN_ROLE_CONSUMER  the consumer (SPSC/MPSC: the one consumer, held by
 *                     the fd from now on; MPMC: one more claim record).
 * Kernel backend: sn.ko enforces the role (the fd maps writable only what
 * the role writes: sn_channel_info().roles_enforced is 1). Memfd backend:
 * every process that maps the memfd can write everything, so a producer or
 * consumer role cannot be given: -EOPNOTSUPP, never a full fd instead.
 * Errors: -EINVAL (@role, @lane), -EBUSY (that lane or the SPSC/MPSC
 * consumer is owned), -EUSERS (every lane, or every MPMC claim record, is
 * owned), -EPERM (this channel's fd may not narrow so: only full-role fds
 * narrow, and an MPMC consumer fd to another consumer), -EOPNOTSUPP.
 */
int sn_channel_share_fd(struct sn_channel *ch, unsigned int role,
			unsigned int lane);

/*
 * Sends the channel over the connected unix socket @sock: an fd made by
 * sn_channel_share_fd(@role, @lane) in SCM_RIGHTS, with a small header (a
 * magic number, the version, the role, the lane and the backend) in one
 * sendmsg(2). The fd is closed here once sent; in flight the socket holds
 * it (and the lane or consumer it owns). SOCK_SEQPACKET keeps one channel
 * per message; on SOCK_STREAM nothing else may be written between them
 * (the receiver reads the header's bytes exactly). Blocks as sendmsg(2)
 * does, never raises SIGPIPE, and returns -EINTR when a signal handler
 * interrupts it (nothing sent). 0, the errors of sn_channel_share_fd(), or
 * sendmsg's (-EPIPE, -EAGAIN on a non-blocking socket, ...); -EPROTO when
 * the socket took only part of the message.
 */
int sn_channel_send_fd(struct sn_channel *ch, int sock, unsigned int role,
		       unsigned int lane);

/*
 * Receives one channel sent with sn_channel_send_fd() from @sock and
 * attaches to it (sn_channel_attach()): its handles can do what the
 * sender's role allows (sn_channel_info() says the role and lane).
 * Credentials, pidfds and timestamps the socket adds are ignored (a pidfd
 * is closed). @flags: 0. Blocks as recvmsg(2) does (SO_RCVTIMEO bounds
 * it) and returns -EINTR when a signal handler interrupts it. Errors:
 * -ECONNRESET (stream and seqpacket sockets: the sender closed its end),
 * -EPROTO (the message is not a channel: no fd, more than one, a short or
 * unknown header, or an fd whose role, lane or backend differs from the
 * header's; every fd received is closed), sn_channel_attach()'s errors,
 * recvmsg's (-EAGAIN on a non-blocking socket, ...).
 */
int sn_channel_recv_fd(struct sn_channel **out, int sock,
		       unsigned int flags);

/* SN_BACKEND_KERNEL or SN_BACKEND_MEMFD. */
int sn_channel_backend(const struct sn_channel *ch);

/* "kernel" or "memfd" for a SN_BACKEND_* value; "?" otherwise. */
const char *sn_backend_name(int backend);

/* Fills *@info. */
int sn_channel_info(const struct sn_channel *ch, struct sn_channel_info *info);

/* "full" or "asym" for a SN_FENCE_* value (sn_channel_info.fence); "?". */
const char *sn_fence_name(int fence);

/*
 * The mapping and its layout (for tools and tests): *@base is the start of
 * the ring (offset 0), *@off where everything sits. Regions the fd's role
 * may not read are PROT_NONE.
 */
int sn_channel_layout(const struct sn_channel *ch, void **base,
		      struct sn_offsets *off);

/*
 * Reads the channel's statistics from the shared lines (producers' lines of
 * the lanes this process may read; MPMC consumers publish theirs every 256
 * operations, when they sleep and when they close).
 */
int sn_channel_stats(const struct sn_channel *ch, struct sn_channel_stats *st);

/* ---- Handles (libsn/channel.c) ---- */

/*
 * Opens a producer that owns one free lane. Kernel backend: on a full-role
 * fd it narrows to a new producer fd (SN_IOC_NARROW, SN_LANE_ANY) that it
 * keeps as the lane's ownership token; on a producer-role fd it uses that
 * fd's lane (one producer per such channel). Memfd: claims a lane in the
 * kpage's lanes_live bitmap and locks it (see "Dead peers"), after looking
 * for dead peers. The new producer continues from the lane's tail.
 * Errors: -EUSERS (every lane owned), -EBUSY, -EPERM (a consumer-role
 * fd), -ENOMEM, -ENOSYS (memfd: /proc is not mounted).
 */
int sn_producer_open(struct sn_channel *ch, struct sn_producer **out);

/* Gives the lane back and frees @p. NULL: 0. */
int sn_producer_close(struct sn_producer *p);

/* The lane @p owns. */
int sn_producer_lane(const struct sn_producer *p);

/*
 * Opens a consumer. SPSC/MPSC allow one at a time (-EBUSY): kernel backend
 * by narrowing to a consumer fd, memfd by the kpage's consumer claim. MPMC
 * allows SN_MAX_CLAIMS at once (-EUSERS beyond). Errors: -EBUSY, -EUSERS,
 * -EPERM (a producer-role fd), -ENOMEM, -ENOSYS (memfd: /proc is not
 * mounted).
 */
int sn_consumer_open(struct sn_channel *ch, struct sn_consumer **out);

/*
 * Publishes its statistics, gives the claim back and frees @c. NULL: 0. An
 * outstanding sn_consumer_peek() is advanced past first on an MPMC channel
 * (those messages count as received); on SPSC/MPSC it is not, and the next
 * consumer gets those messages again.
 */
int sn_consumer_close(struct sn_consumer *c);

/* Publishes an MPMC consumer's statistics now (else no-op). Returns 0. */
int sn_consumer_flush_stats(struct sn_consumer *c);

/* ---- Blocking and waking (libsn/wait.c) ---- */

/*
 * Waits until @p's lane has room: spins, then yields, then sleeps (kernel:
 * poll on the lane fd; memfd: futex on the lane's waiting word) for at most
 * @timeout_ns (SN_WAIT_FOREVER: no limit). Returns the room (> 0),
 * -ETIMEDOUT, -EPIPE when every consumer has gone, or -EINTR when a signal
 * interrupted the sleep. The spins and yields (1024 and 16) can be set by
 * the environment variables SN_SPINS and SN_YIELDS, read once when libsn
 * first waits (0: sleep at once).
 */
int sn_producer_wait(struct sn_producer *p, __u64 timeout_ns);

/*
 * Waits until a lane holds a message, as sn_producer_wait() (kernel: poll
 * on the consumer fd; memfd: futex on cons waiters). Returns 1 or -ETIMEDOUT
 * or -EINTR, or -EPIPE at the end of the stream (every producer gone and
 * the lanes drained).
 */
int sn_consumer_wait(struct sn_consumer *c, __u64 timeout_ns);

/*
 * Waiting for messages elsewhere than in sn_recv()/sn_consumer_wait(): in
 * the caller's epoll, poll or io_uring, beside its other fds (kernel
 * backend only: a memfd ring has no pollable fd, -EOPNOTSUPP).
 * sn_consumer_fd() is the fd to wait on for POLLIN. Producers kick that
 * fd only while a consumer is announced, so a sleep goes
 *   sn_consumer_sleep_begin(c): 0 -> wait on the fd (epoll_wait(),
 *       io_uring_wait_cqe(), ...), then sn_consumer_sleep_end(c);
 *   1 (a message came meanwhile) or -EPIPE (the stream ended): do not
 *       sleep (the announcement is already taken back).
 * sleep_begin announces the consumer and runs the sleeper's barrier (the
 * uapi header's [W1]; on SN_FENCE_ASYM rings SN_IOC_BARRIER, a system
 * call) before its last look. Every 0 must be followed by one
 * sleep_end, which takes the announcement back and counts the sleep.
 * Errors: -EINVAL, -EOPNOTSUPP (memfd), the barrier's errno.
 */
int sn_consumer_fd(const struct sn_consumer *c);
int sn_consumer_sleep_begin(struct sn_consumer *c);
void sn_consumer_sleep_end(struct sn_consumer *c);

/* Wakes sleeping consumers / the lane's producer (the inline code calls
 * these only when the other side announced a sleep). Return 0 or -errno. */
int sn_producer_kick(struct sn_producer *p);
int sn_consumer_kick(struct sn_consumer *c, __u32 lane);

/* ---- Inline hot path ---- */

static inline __u32 sn__clamp_depth(__u32 tail, __u32 head, __u32 slots)
{
	__s32 d = (__s32)(tail - head);

	if (d < 0)
		return 0;
	return (__u32)d > slots ? slots : (__u32)d;
}

/* Recomputes how far @p may write; returns the room. */
static inline __u32 sn__prod_refill(struct sn_producer *p)
{
	__u32 t = p->tail, slots = p->mask + 1, n = 0;

	if (!(p->flags & SN__MPMC)) {
		/* acquire: pairs with the release store of the head in
		 * sn__cons_done(), so the consumer is done with those slots */
		__u32 h = __atomic_load_n(p->head_p, __ATOMIC_ACQUIRE);

		n = slots - sn__clamp_depth(t, h, slots);
	} else {
		/* position t + n is free once release[] says so; acquire
		 * pairs with the consumer's release store in sn__cons_done() */
		while (n < slots &&
		       __atomic_load_n(&p->release[(t + n) & p->mask],
				       __ATOMIC_ACQUIRE) == t + n)
			n++;
	}
	p->limit = t + n;
	/* sent is derived from the tail (sn_index64()); publishing its
	 * upper bits once per refill keeps it exact */
	__atomic_store_n(&p->stats->sent, p->sent, __ATOMIC_RELAXED);
	return n;
}

/* Every consumer has gone (kernel flag; see "Dead peers" above). */
static inline int sn__prod_orphaned(const struct sn_producer *p)
{
	return __atomic_load_n(p->kflags_p, __ATOMIC_RELAXED) &
	       SN_KFLAG_NO_CONSUMER;
}

/* The room known without reading shared memory, else refreshed. */
static inline __u32 sn__prod_room(struct sn_producer *p)
{
	__u32 room = p->limit - p->tail;

	return room ? room : sn__prod_refill(p);
}

/* The header of position @pos's slot in @p's lane (masked). */
static inline struct sn_slot *sn__prod_hdr(const struct sn_producer *p,
					   __u32 pos)
{
	return (struct sn_slot *)(p->slots + (__u64)(pos & p->mask) * p->stride);
}

/*
 * The message of position @pos of @p's lane (from sn_producer_reserve()),
 * slot_size bytes, 8-byte aligned. Always inside the lane: the position is
 * masked.
 */
static inline void *sn_producer_slot(const struct sn_producer *p, __u32 pos)
{
	return sn__prod_hdr(p, pos) + 1;
}

/*
 * memcpy with the size the compiler sees for the common message sizes, so
 * a 16-byte message is two moves, not a call. The empty asm hides which
 * object the pointers point into: the cases other than the message's size
 * are unreachable, but GCC would warn that they overrun the caller's
 * buffer (-Warray-bounds).
 */
static inline void sn__copy(void *dst, const void *src, __u32 size)
{
	__asm__("" : "+r"(dst), "+r"(src));
	switch (size) {
	case 8:
		memcpy(dst, src, 8);
		break;
	case 16:
		memcpy(dst, src, 16);
		break;
	case 24:
		memcpy(dst, src, 24);
		break;
	case 32:
		memcpy(dst, src, 32);
		break;
	case 48:
		memcpy(dst, src, 48);
		break;
	case 56:
		memcpy(dst, src, 56);
		break;
	case 64:
		memcpy(dst, src, 64);
		break;
	case 120:
		memcpy(dst, src, 120);
		break;
	default:
		memcpy(dst, src, size);
	}
}

static inline void sn__prod_full(struct sn_producer *p)
{
	p->full++;
	__atomic_store_n(&p->stats->full, p->full, __ATOMIC_RELAXED);
}

/*
 * Stores the tail (p->tail) and kicks a sleeping consumer: what every
 * publication ends with.
 */
static inline void sn__prod_ship(struct sn_producer *p)
{
	/* release: the slots before the tail, which the kernel and MPMC
	 * consumers read (pairs with their acquire loads) */
	__atomic_store_n(p->tail_p, p->tail, __ATOMIC_RELEASE);
	/* [P1] pairs with [W1] and [T1]/[T2]: the sleeper sees the new
	 * tail or we see its announcement */
	SN__FAST_SIDE_BARRIER(p->flags);
	/* A sleeper needs our kick only while no kernel thread watches the
	 * ring (NEED_WAKEUP; always set by the memfd backend). */
	if ((__atomic_load_n(p->waiters_p, __ATOMIC_RELAXED) & p->wake_mask) &&
	    (__atomic_load_n(p->kflags_p, __ATOMIC_RELAXED) &
	     SN_KFLAG_NEED_WAKEUP))
		sn_producer_kick(p);
}

/*
 * Publishes @n written slots of @len bytes each (fixed-size channels) and
 * kicks a sleeping consumer.
 */
static inline void sn__prod_publish(struct sn_producer *p, __u32 n,
				    __u32 len)
{
	__u32 i, t = p->tail;

	for (i = 0; i < n; i++) {
		struct sn_slot *s = sn__prod_hdr(p, t + i);

		__atomic_store_n(&s->len, len, __ATOMIC_RELAXED);
		/* release: the message and len before seq (pairs with the
		 * consumer's acquire load of seq in sn__cons_committed()) */
		__atomic_store_n(&s->seq, t + i + 1, __ATOMIC_RELEASE);
	}
	p->tail = t + n;
	p->sent += n;
	sn__prod_ship(p);
}

/*
 * How many of @n messages the lane takes with @room free slots: -EAGAIN
 * (and the full path taken) when none, else n capped at @room and INT_MAX.
 */
static inline int sn__prod_take(struct sn_producer *p, __u32 n, __u32 room)
{
	if (!room) {
		sn__prod_full(p);
		return -EAGAIN;
	}
	if (n > room)
		n = room;
	if (n > (__u32)0x7fffffff)
		n = 0x7fffffff;
	return (int)n;
}

/*
 * Reserves up to @n consecutive positions of @p's lane for zero-copy
 * filling: stores the first in *@pos (fill sn_producer_slot(p, *pos + i)
 * for i below the result), then sn_producer_commit(). Returns how many (1..n),
 * -EAGAIN when the lane is full, -EPIPE when every consumer has gone,
 * -EINVAL when @n is 0, a reservation is outstanding or the channel is
 * SN_CHANNEL_VARLEN (sn_producer_reserve_len()). The lane's statistics line
 * says how many are reserved: if the producer dies before committing, they are
 * counted as lost.
 */
static inline int sn_producer_reserve(struct sn_producer *p, __u32 n,
				      __u32 *pos)
{
	int r;

	if (!n || p->resv || (p->flags & SN__VARLEN))
		return -EINVAL;
	if (sn__prod_orphaned(p))
		return -EPIPE;
	r = sn__prod_take(p, n, sn__prod_room(p));
	if (r < 0)
		return r;
	p->resv = (__u32)r;
	__atomic_store_n(&p->stats->reserved, (__u64)r, __ATOMIC_RELAXED);
	*pos = p->tail;
	return r;
}

/*
 * Publishes the first @n (1..reserved) reserved slots; the rest of the
 * reservation is dropped. Returns 0 or -EINVAL (also on SN_CHANNEL_VARLEN
 * channels: sn_producer_commit_len()).
 */
static inline int sn_producer_commit(struct sn_producer *p, __u32 n)
{
	if (!n || n > p->resv || (p->flags & SN__VARLEN))
		return -EINVAL;
	p->resv = 0;
	__atomic_store_n(&p->stats->reserved, 0, __ATOMIC_RELAXED);
	sn__prod_publish(p, n, p->slot_size);
	return 0;
}

/* Out of line: sn_try_send() and sn_try_recv() of varlen channels (kept
 * out of the fixed-size hot path's code). */
int sn__send_varlen(struct sn_producer *p, const void *msg);
int sn__recv_varlen(struct sn_consumer *c, void *msg);

/* Sends one message of slot_size bytes from @msg. 0, -EAGAIN (full),
 * -EPIPE (every consumer has gone), -EINVAL (a reservation is
 * outstanding). */
static inline int sn_try_send(struct sn_producer *p, const void *msg)
{
	/* one test for both rare cases */
	if (p->resv | (p->flags & SN__VARLEN))
		return p->resv ? -EINVAL : sn__send_varlen(p, msg);
	if (sn__prod_orphaned(p))
		return -EPIPE;
	if (!sn__prod_room(p)) {
		sn__prod_full(p);
		return -EAGAIN;
	}
	sn__copy(sn_producer_slot(p, p->tail), msg, p->slot_size);
	sn__prod_publish(p, 1, p->slot_size);
	return 0;
}

/*
 * Sends as many of the @n messages at @msgs (n * slot_size bytes) as fit.
 * Returns how many (1..n), 0 when @n is 0, -EAGAIN when none fit, -EPIPE
 * (every consumer has gone), -EINVAL (also on SN_CHANNEL_VARLEN channels).
 */
static inline int sn_send_burst(struct sn_producer *p, const void *msgs,
				__u32 n)
{
	const unsigned char *src = (const unsigned char *)msgs;
	__u32 room, i;
	int r;

	if (p->resv | (p->flags & SN__VARLEN))
		return -EINVAL;
	if (!n)
		return 0;
	if (sn__prod_orphaned(p))
		return -EPIPE;
	room = sn__prod_room(p);
	if (room < n)
		room = sn__prod_refill(p);
	r = sn__prod_take(p, n, room);
	if (r < 0)
		return r;
	n = (__u32)r;
	for (i = 0; i < n; i++)
		sn__copy(sn_producer_slot(p, p->tail + i),
			 src + (__u64)i * p->slot_size, p->slot_size);
	sn__prod_publish(p, n, p->slot_size);
	return (int)n;
}

/* ---- Messages of any length (records; SN_CHANNEL_VARLEN) ---- */

/*
 * Varlen: commits at the tail the record of @n slots whose message is
 * written, its header saying @len. SPSC/MPSC store the terminator first, a
 * zero seq in the slot after the record (the uapi header's "Records").
 */
static inline void sn__prod_put_record(struct sn_producer *p, __u32 len,
				       __u32 n)
{
	__u32 t = p->tail;
	struct sn_slot *s = sn__prod_hdr(p, t);

	__atomic_store_n(&s->len, len, __ATOMIC_RELAXED);
	if (!(p->flags & SN__MPMC))
		__atomic_store_n(&sn__prod_hdr(p, t + n)->seq, 0,
				 __ATOMIC_RELAXED);
	/* release: the message, len and terminator before seq (pairs with
	 * the consumer's acquire load of seq in sn__cons_var_take()) */
	__atomic_store_n(&s->seq, t + 1, __ATOMIC_RELEASE);
	p->tail = t + n;
}

/* Varlen: one message more, stored as sent (the tail counts slots). */
static inline void sn__prod_count_record(struct sn_producer *p)
{
	p->sent++;
	__atomic_store_n(&p->stats->sent, p->sent, __ATOMIC_RELAXED);
}

/*
 * Varlen: whether a record of @n slots fits at the tail, after a padding
 * record to the lane end where it would cross it (committed as soon as it
 * fits, even if the record does not yet). When not, p->need says how many
 * free slots to wait for.
 */
static inline int sn__prod_var_fit(struct sn_producer *p, __u32 n)
{
	__u32 slots = p->mask + 1, idx = p->tail & p->mask;
	__u32 term = !(p->flags & SN__MPMC);
	__u32 pad = idx + n > slots ? slots - idx : 0;
	__u32 room = sn__prod_room(p);

	if (room < pad + n + term)
		room = sn__prod_refill(p);
	if (pad && room >= pad + term) {
		sn__prod_put_record(p, SN_SLOT_PAD, pad);
		sn__prod_ship(p);
		room -= pad;
		pad = 0;
	}
	if (room >= pad + n + term) {
		p->need = 1;	/* what a later wait waits for, by default */
		return 1;
	}
	/* a padding record and a record longer than what follows it fit one
	 * after the other, each once the lane has drained enough */
	p->need = pad + n + term < slots ? pad + n + term : slots;
	return 0;
}

/*
 * The checks every *_len send makes: the slots a message of @len bytes
 * takes (fixed-size channels: 1), or -EINVAL, -EMSGSIZE, -EPIPE.
 */
static inline int sn__prod_len_check(struct sn_producer *p, __u32 len)
{
	if (p->resv)
		return -EINVAL;
	if (len > p->max_len)
		return -EMSGSIZE;
	if (sn__prod_orphaned(p))
		return -EPIPE;
	if (!(p->flags & SN__VARLEN))
		return 1;
	return (int)sn_record_slots(len, p->shift);
}

/* Whether @n slots fit now; if not, counts a refusal. */
static inline int sn__prod_len_fit(struct sn_producer *p, __u32 n)
{
	int fit = p->flags & SN__VARLEN ? sn__prod_var_fit(p, n) :
		  !!sn__prod_room(p);

	if (!fit)
		sn__prod_full(p);
	return fit;
}

/* Publishes the message of @len bytes written at the tail (@n slots). */
static inline void sn__prod_len_publish(struct sn_producer *p, __u32 len,
					__u32 n)
{
	if (!(p->flags & SN__VARLEN)) {
		sn__prod_publish(p, 1, len);
		return;
	}
	sn__prod_put_record(p, len, n);
	sn__prod_count_record(p);
	sn__prod_ship(p);
}

/*
 * Sends one message of @len bytes from @msg, on any channel: up to
 * slot_size bytes on a fixed-size one (one slot; the receiver learns the
 * length), up to sn_channel_info().max_msg with SN_CHANNEL_VARLEN. 0,
 * -EAGAIN (no room), -EPIPE (every consumer has gone), -EMSGSIZE (too
 * long for the channel), -EINVAL (a reservation is outstanding). On a
 * varlen channel a refused send may still have published a padding record
 * (the tail moved; a consumer's ordinary wakeup covers it, a consumer that
 * sleeps on a signal of the caller's own needs that signal).
 */
static inline int sn_try_send_len(struct sn_producer *p, const void *msg,
				  __u32 len)
{
	int n = sn__prod_len_check(p, len);

	if (n < 0)
		return n;
	if (!sn__prod_len_fit(p, (__u32)n))
		return -EAGAIN;
	memcpy(sn__prod_hdr(p, p->tail) + 1, msg, len);
	sn__prod_len_publish(p, len, (__u32)n);
	return 0;
}

/*
 * Reserves room for one message of up to @len bytes and stores in *@buf where
 * to write it, in the ring (zero copy: @len bytes, 8-byte aligned, contiguous),
 * then sn_producer_commit_len(). Errors as sn_try_send_len(). The lane's
 * statistics line counts the reservation: if the producer dies before
 * committing, the message is counted as lost.
 */
static inline int sn_producer_reserve_len(struct sn_producer *p, __u32 len,
					  void **buf)
{
	int n = sn__prod_len_check(p, len);

	if (n < 0)
		return n;
	if (!sn__prod_len_fit(p, (__u32)n))
		return -EAGAIN;
	p->resv = (__u32)n;
	p->resv_len = len;
	__atomic_store_n(&p->stats->reserved, 1, __ATOMIC_RELAXED);
	*buf = sn__prod_hdr(p, p->tail) + 1;
	return 0;
}

/*
 * Publishes the message reserved with sn_producer_reserve_len(), @len bytes (at
 * most the reserved length). 0, or -EINVAL (nothing reserved, @len too
 * long: the reservation stays).
 */
static inline int sn_producer_commit_len(struct sn_producer *p, __u32 len)
{
	if (!p->resv || len > p->resv_len)
		return -EINVAL;
	p->resv = 0;
	__atomic_store_n(&p->stats->reserved, 0, __ATOMIC_RELAXED);
	sn__prod_len_publish(p, len, p->flags & SN__VARLEN ?
			     (__u32)sn_record_slots(len, p->shift) : 1);
	return 0;
}

static inline __u32 *sn__cons_head_p(const struct sn_consumer *c, __u32 lane)
{
	return (__u32 *)(c->heads + (__u64)lane * 2 * SN_PAD);
}

static inline unsigned char *sn__cons_lane(const struct sn_consumer *c,
					   __u32 lane)
{
	return c->lane0 + lane * c->lane_size;
}

/* The header of position @pos's slot in @lane (masked). */
static inline const struct sn_slot *sn__cons_hdr(const struct sn_consumer *c,
						 __u32 lane, __u32 pos)
{
	return (const struct sn_slot *)(sn__cons_lane(c, lane) + c->off_slots +
					(__u64)(pos & c->mask) * c->stride);
}

/*
 * How many positions from @h of @lane are committed, up to @n (at most
 * slots): the slots' seq words, one line per message, not the tail's.
 */
static inline __u32 sn__cons_committed(const struct sn_consumer *c,
				       __u32 lane, __u32 h, __u32 n)
{
	__u32 d = 0;

	if (n > c->mask + 1)
		n = c->mask + 1;
	/* acquire: pairs with the producer's release store of seq, so the
	 * message is visible */
	while (d < n && __atomic_load_n(&sn__cons_hdr(c, lane, h + d)->seq,
					__ATOMIC_ACQUIRE) == h + d + 1)
		d++;
	return d;
}

/*
 * How many messages are ready in @lane, up to @n (SPSC/MPSC); for MPMC,
 * claims them. Stores the first position in *@pos. 0 if none.
 */
static inline __u32 sn__cons_take(struct sn_consumer *c, __u32 lane, __u32 n,
				  __u32 *pos)
{
	__u32 slots = c->mask + 1, h, d, tries;
	const __u32 *tail_p = (const __u32 *)(sn__cons_lane(c, lane) +
					      c->off_tail);

	if (!(c->flags & SN__MPMC)) {
		h = c->head[lane];
		d = c->ctail[lane] - h;
		if (!d) {
			d = sn__cons_committed(c, lane, h, n);
			c->ctail[lane] = h + d;
		}
		*pos = h;
		return d < n ? d : n;
	}
	/* MPMC: claim [h, h + n) by CAS; bounded, a peer may keep moving it.
	 * The cached tail is trusted only while the head is inside the window
	 * [head[lane], ctail[lane]) it was read for. */
	h = __atomic_load_n(sn__cons_head_p(c, lane), __ATOMIC_RELAXED);
	for (tries = 0; tries < 64; tries++) {
		__u32 base = c->head[lane], k;

		if (h - base < c->ctail[lane] - base) {
			d = c->ctail[lane] - h;
		} else {
			d = sn__clamp_depth(__atomic_load_n(tail_p,
							    __ATOMIC_ACQUIRE),
					    h, slots);
			c->head[lane] = h;
			c->ctail[lane] = h + d;
			if (!d)
				break;
		}
		k = d < n ? d : n;
		/* the claim record first, so that the kernel can release
		 * what we claim if we die holding it. [D7] pairs with [D6]:
		 * our last claim's slot reads, release words and IDLE
		 * before each field, so a recoverer that sees the record
		 * moved on sees those positions released. (Release stores,
		 * not a fence: plain stores on x86, and ThreadSanitizer
		 * cannot model fences.) */
		__atomic_store_n(&c->claim->lane, lane, __ATOMIC_RELEASE);
		__atomic_store_n(&c->claim->pos, h, __ATOMIC_RELEASE);
		__atomic_store_n(&c->claim->n, k, __ATOMIC_RELEASE);
		/* [D1] pairs with [D5]: the fields before the state */
		__atomic_store_n(&c->claim->state, SN_CLAIM_INTENT,
				 __ATOMIC_RELEASE);
		/* [D2] pairs with [D4]: acq_rel, our record and the tail
		 * we read before the claim, the claim before our reads of
		 * the slots */
		if (__atomic_compare_exchange_n(sn__cons_head_p(c, lane), &h,
						h + k, 0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			__atomic_store_n(&c->claim->state, SN_CLAIM_HELD,
					 __ATOMIC_RELAXED);
			*pos = h;
			return k;
		}
	}
	__atomic_store_n(&c->claim->state, SN_CLAIM_IDLE, __ATOMIC_RELEASE);
	return 0;
}

/* Publishes the MPMC consumer's statistics every 256 operations. */
int sn__consumer_publish(struct sn_consumer *c);

/*
 * SPSC/MPSC: received is derived from the heads (sn_index64()); the one
 * consumer publishes a lane's upper bits when its head crosses a multiple
 * of 2^30, and at close.
 */
void sn__consumer_publish_lane(struct sn_consumer *c, __u32 lane);

static inline void sn__cons_count(struct sn_consumer *c, __u32 received,
				  __u32 empty)
{
	c->received += received;
	c->empty += empty;
	if (!(c->flags & SN__MPMC)) {
		/* the one consumer owns the line: a plain store, and only
		 * when a receive found nothing */
		if (empty)
			__atomic_store_n(&c->stats->empty, c->empty,
					 __ATOMIC_RELAXED);
	} else if (++c->unpublished >= 256) {
		sn__consumer_publish(c);
	}
}

/* Finds ready messages (up to @n) in one lane, round robin. */
static inline __u32 sn__cons_find(struct sn_consumer *c, __u32 n, __u32 *pos,
				  __u32 *lane)
{
	__u32 i, k;

	for (i = 0; i < c->lanes; i++) {
		__u32 l = c->next_lane;

		c->next_lane = l + 1 < c->lanes ? l + 1 : 0;
		k = sn__cons_take(c, l, n, pos);
		if (k) {
			*lane = l;
			return k;
		}
	}
	return 0;
}

/* Gives back @n slots of @lane from @pos and kicks a sleeping producer. */
static inline void sn__cons_done(struct sn_consumer *c, __u32 lane, __u32 pos,
				 __u32 n)
{
	__u32 *wp = (__u32 *)(sn__cons_lane(c, lane) + c->off_waiting);
	__u32 i;

	if (!(c->flags & SN__MPMC)) {
		c->head[lane] = pos + n;
		/* release: our reads of the slots before the head (pairs
		 * with the producer's acquire load in sn__prod_refill) */
		__atomic_store_n(sn__cons_head_p(c, lane), pos + n,
				 __ATOMIC_RELEASE);
		if (((pos ^ (pos + n)) & 0x40000000U) &&
		    !(c->flags & SN__VARLEN))
			sn__consumer_publish_lane(c, lane);
	} else {
		__u32 *rel = c->release + (__u64)lane * (c->mask + 1);

		for (i = 0; i < n; i++)
			__atomic_store_n(&rel[(pos + i) & c->mask],
					 pos + i + c->mask + 1,
					 __ATOMIC_RELEASE);
		/* [D3] pairs with [D5]: the release words before the
		 * record lets go */
		__atomic_store_n(&c->claim->state, SN_CLAIM_IDLE,
				 __ATOMIC_RELEASE);
	}
	/* [C1] pairs with [W2] and [T1]/[T2]: the producer sees the room
	 * or we see its waiting flag */
	SN__FAST_SIDE_BARRIER(c->flags);
	if ((__atomic_load_n(wp, __ATOMIC_RELAXED) & c->wake_mask) &&
	    (__atomic_load_n(c->kflags_p, __ATOMIC_RELAXED) &
	     SN_KFLAG_NEED_WAKEUP))
		sn_consumer_kick(c, lane);
}

/* Out of line: -EPIPE when the ring has ended and is drained, else -EAGAIN. */
int sn__consumer_ended(struct sn_consumer *c);

/* What a receive that found nothing returns: -EAGAIN, or -EPIPE at the
 * end of the stream (a flag the kernel sets; checked only here). */
static inline int sn__cons_empty(struct sn_consumer *c)
{
	if (!(__atomic_load_n(c->kflags_p, __ATOMIC_RELAXED) &
	      SN_KFLAG_NO_PRODUCER))
		return -EAGAIN;
	return sn__consumer_ended(c);
}

/* The slot of position @pos in the lane of the outstanding
 * sn_consumer_peek(). */
static inline const void *sn_consumer_slot(const struct sn_consumer *c,
					   __u32 pos)
{
	return sn__cons_hdr(c, c->peek_lane, pos) + 1;
}

/*
 * Peeks at up to @n consecutive messages of one lane (lanes are visited round
 * robin): stores the first position in *@pos (read them with
 * sn_consumer_slot(c, *pos + i)), then sn_consumer_advance(). MPMC: the
 * messages are claimed, no other consumer gets them. Returns how many (1..n),
 * -EAGAIN when every lane is empty, -EPIPE when besides every producer has gone
 * (end of stream), -EINVAL when @n is 0, a peek is outstanding or the channel
 * is SN_CHANNEL_VARLEN (sn_consumer_peek_len()). A peer may change a slot while
 * it is read: copy what you validate.
 */
static inline int sn_consumer_peek(struct sn_consumer *c, __u32 n, __u32 *pos)
{
	__u32 lane = 0, k;

	if (!n || c->peek_n || (c->flags & SN__VARLEN))
		return -EINVAL;
	if (n > (__u32)0x7fffffff)
		n = 0x7fffffff;
	k = sn__cons_find(c, n, pos, &lane);
	if (!k) {
		sn__cons_count(c, 0, 1);
		return sn__cons_empty(c);
	}
	c->peek_lane = lane;
	c->peek_pos = *pos;
	c->peek_n = k;
	/* the one consumer's line: what comes again if we go now */
	if (!(c->flags & SN__MPMC))
		__atomic_store_n(&c->stats->peeked, k, __ATOMIC_RELAXED);
	return (int)k;
}

/* Out of line: sn_consumer_advance() of the record sn_consumer_peek_len()
 * holds. */
int sn__advance_record(struct sn_consumer *c, __u32 n);

/*
 * Releases the first @n peeked messages (SPSC/MPSC: 1..peeked, the rest stay in
 * the ring; MPMC: exactly the peeked count; after sn_consumer_peek_len(): 1). 0
 * or -EINVAL.
 */
static inline int sn_consumer_advance(struct sn_consumer *c, __u32 n)
{
	if (c->flags & SN__VARLEN)
		return sn__advance_record(c, n);
	if (!n || n > c->peek_n || (c->peek_n & SN__PEEK_LANES) ||
	    ((c->flags & SN__MPMC) && n != c->peek_n))
		return -EINVAL;
	c->peek_n = 0;
	sn__cons_done(c, c->peek_lane, c->peek_pos, n);
	/* after the head: a death between the two stores leaves peeked
	 * over messages released, which the reaper clamps to what the
	 * lanes hold, never a redelivery it does not count */
	if (!(c->flags & SN__MPMC))
		__atomic_store_n(&c->stats->peeked, 0, __ATOMIC_RELAXED);
	sn__cons_count(c, n, 0);
	return 0;
}

/*
 * The lane of the outstanding sn_consumer_peek() or sn_consumer_peek_len():
 * 0..lanes-1, or -EINVAL when none is outstanding. (LIBSN_1.1)
 */
int sn_consumer_peeked_lane(const struct sn_consumer *c);

/*
 * Lanes by position (LIBSN_1.1), for a consumer that keeps what it read until
 * someone else confirms it: a bridge releases a slot only when its peer
 * acknowledged the message, so the ring is its retransmit buffer.
 *
 * Each lane has a read position (the cursor) ahead of its head: peeks of a
 * lane continue at the cursor, several may be outstanding, and
 * sn_consumer_advance_to() releases the lane up to a position at or before
 * the cursor. Positions are the lane's free-running __u32 indices;
 * sn_consumer_seq() extends one to the lane's 64-bit sequence, which counts
 * every message the lane ever carried and never wraps.
 *
 * SPSC and MPSC channels with fixed-size slots (-EOPNOTSUPP for MPMC and
 * SN_CHANNEL_VARLEN). From the first sn_consumer_peek_lane() until every
 * lane is released up to its cursor the consumer is in lane mode: the other
 * receive calls return -EINVAL, as with a peek outstanding. A consumer that
 * closes or dies in lane mode leaves what it had not released in the ring
 * (the next consumer gets it again, counted as redelivered).
 */

/*
 * Peeks at up to @n messages of @lane from its cursor, stores the first
 * position in *@pos (read them with sn_consumer_lane_slot(c, lane, *pos + i))
 * and moves the cursor past them. Returns how many (1..n), -EAGAIN when the
 * lane has nothing past its cursor, -EPIPE when besides every producer has
 * gone and every lane is drained (released to its tail: in lane mode, with
 * peeks outstanding, -EAGAIN), -EINVAL (@lane, @n 0, a plain peek
 * outstanding), -EOPNOTSUPP.
 */
int sn_consumer_peek_lane(struct sn_consumer *c, __u32 lane, __u32 n,
			  __u32 *pos);

/*
 * Releases @lane's messages before @pos, which must lie from its head to its
 * cursor: 0, or -EINVAL (nothing changed).
 */
int sn_consumer_advance_to(struct sn_consumer *c, __u32 lane, __u32 pos);

/* @lane's read cursor and head (its first unreleased position): 0, -EINVAL
 * (@lane), -EOPNOTSUPP (as sn_consumer_peek_lane()). */
int sn_consumer_lane_state(const struct sn_consumer *c, __u32 lane,
			   __u32 *cursor, __u32 *head);

/* The message at @pos of @lane, a position from its head to its cursor. */
static inline const void *sn_consumer_lane_slot(const struct sn_consumer *c,
						__u32 lane, __u32 pos)
{
	return sn__cons_hdr(c, lane, pos) + 1;
}

/*
 * The 64-bit sequence of position @pos of @lane (a position within 2^30 of
 * the lane's head): the count of messages the lane carried before it, from
 * the channel's creation, across producers and consumers. SPSC/MPSC with
 * fixed-size slots; 0 otherwise.
 */
__u64 sn_consumer_seq(const struct sn_consumer *c, __u32 lane, __u32 pos);

/*
 * The epoch of the producer that wrote position @pos of @lane (a position
 * within 2^30 of the lane's head): 1 for the lane's first producer, one more
 * each time a new producer takes the lane (sn_producer_open(), in any
 * process), 0 for a position no producer has written. Exact while at most
 * SN_LANE_EPOCHS - 1 producers took the lane after the one that wrote @pos;
 * for an older position, the epoch before the oldest recorded (the newest
 * its writer can have). SPSC/MPSC with fixed-size slots; 0 otherwise.
 * Producers write the epochs in their lane's shared memory, so they are as
 * trustworthy as the messages they label.
 */
__u32 sn_consumer_epoch(const struct sn_consumer *c, __u32 lane, __u32 pos);

/*
 * Receives up to @n messages into @msgs (n * slot_size bytes), from as
 * many lanes as needed. Returns how many (1..n), 0 when @n is 0, -EAGAIN
 * when every lane is empty, -EPIPE at the end of the stream (see
 * sn_consumer_peek),
 * -EINVAL when a peek is outstanding (and on SN_CHANNEL_VARLEN channels).
 */
static inline int sn_recv_burst(struct sn_consumer *c, void *msgs, __u32 n)
{
	unsigned char *dst = (unsigned char *)msgs;
	__u32 got = 0, lane = 0, pos = 0, k, i, pass;

	if (c->peek_n | (c->flags & SN__VARLEN))
		return -EINVAL;
	if (!n)
		return 0;
	if (n > (__u32)0x7fffffff)
		n = 0x7fffffff;
	for (pass = 0; got < n && pass < c->lanes; pass++) {
		k = sn__cons_find(c, n - got, &pos, &lane);
		if (!k)
			break;
		for (i = 0; i < k; i++)
			sn__copy(dst + (__u64)(got + i) * c->slot_size,
				 sn__cons_hdr(c, lane, pos + i) + 1,
				 c->slot_size);
		sn__cons_done(c, lane, pos, k);
		got += k;
	}
	sn__cons_count(c, got, !got);
	return got ? (int)got : sn__cons_empty(c);
}

/* Receives one message into @msg (slot_size bytes). 0, -EAGAIN, -EPIPE,
 * -EINVAL; on SN_CHANNEL_VARLEN channels messages of up to slot_size
 * bytes (-EMSGSIZE for a longer one, which stays: sn_try_recv_len()). */
static inline int sn_try_recv(struct sn_consumer *c, void *msg)
{
	__u32 lane = 0, pos = 0;

	if (c->peek_n | (c->flags & SN__VARLEN))
		return c->peek_n ? -EINVAL : sn__recv_varlen(c, msg);
	if (!sn__cons_find(c, 1, &pos, &lane)) {
		sn__cons_count(c, 0, 1);
		return sn__cons_empty(c);
	}
	sn__copy(msg, sn__cons_hdr(c, lane, pos) + 1, c->slot_size);
	sn__cons_done(c, lane, pos, 1);
	sn__cons_count(c, 1, 0);
	return 0;
}

/* Varlen: a bad record dropped from @lane, counted in its line. */
static inline void sn__cons_bad(struct sn_consumer *c, __u32 lane)
{
	struct sn_cons_stats *cs = (struct sn_cons_stats *)
		((unsigned char *)c->stats +
		 (c->flags & SN__MPMC ? 0 : (__u64)lane * 2 * SN_PAD));

	c->bad++;
	__atomic_fetch_add(&cs->bad, 1, __ATOMIC_RELAXED);
}

/* Varlen: one message more received from @lane (the head counts slots). */
static inline void sn__cons_var_count(struct sn_consumer *c, __u32 lane)
{
	struct sn_cons_stats *cs = (struct sn_cons_stats *)
		((unsigned char *)c->stats + (__u64)lane * 2 * SN_PAD);

	if (!(c->flags & SN__MPMC))
		__atomic_store_n(&cs->received,
				 __atomic_load_n(&cs->received,
						 __ATOMIC_RELAXED) + 1,
				 __ATOMIC_RELAXED);
	sn__cons_count(c, 1, 0);
}

/*
 * SPSC/MPSC varlen: the record at position @h of @lane, without taking it:
 * its slots and *@len, its header's length; 0 when none is committed
 * there. A padding record (*@len SN_SLOT_PAD) and a bad one (*@len ~0U)
 * span the rest of the lap: whoever takes them drops them (a bad one
 * counted). A buffer record (SN_SLOT_BUF) needs sn__cons_resolve().
 */
static inline __u32 sn__cons_var_at(const struct sn_consumer *c, __u32 lane,
				    __u32 h, __u32 *len)
{
	__u32 slots = c->mask + 1, idx = h & c->mask, l, n;

	if (!sn__cons_committed(c, lane, h, 1))
		return 0;
	l = __atomic_load_n(&sn__cons_hdr(c, lane, h)->len, __ATOMIC_RELAXED);
	n = sn_record_span(l, idx, slots, c->shift);
	if ((l & SN_SLOT_BUF) && !c->bufs)
		n = 0;		/* a buffer record where there are none */
	*len = n ? l : ~0U;
	return n ? n : slots - idx;
}

/*
 * A load of a record header's word (or a buffer reference's) that may race
 * with the producer's plain writes: an MPMC consumer reads the header at
 * its head before it claims the record, and with a stale head that slot
 * may be being rewritten for a later lap. Those values are then dropped
 * (the claim's CAS on the head fails), as a seqlock reader drops a torn
 * read, and the message itself is ordered by the tail's acquire and the
 * claim, not by this load. ThreadSanitizer, which would report the
 * intended race, does not instrument it.
 */
#if defined(__SANITIZE_THREAD__)
__attribute__((no_sanitize("thread")))
#endif
static inline __u32 sn__racy_load(const __u32 *p)
{
	return __atomic_load_n(p, __ATOMIC_RELAXED);
}

/* A record a consumer took: where its message is and how long it is. */
struct sn__rec {
	const void *data;	/* in the slots, or in the buffer */
	__u32 pos;		/* the record's position */
	__u32 slots;		/* slots it spans */
	__u32 len;		/* message bytes */
	__u32 buf;		/* a buffer record: its buffer + 1; else 0 */
};

/* Buffer @j of @lane (uapi "Buffers"). */
static inline const unsigned char *sn__cons_buf(const struct sn_consumer *c,
						__u32 lane, __u32 j)
{
	return sn__cons_lane(c, lane) + c->off_bufs + (__u64)j * c->buf_size;
}

/*
 * Fills @r for the valid record at @h of @lane spanning @n slots, its
 * header's length @l: the message in place, or the buffer a buffer record
 * names, whose index and length are checked (each read once). 0 when the
 * reference is bad.
 */
static inline int sn__cons_resolve(const struct sn_consumer *c, __u32 lane,
				   __u32 h, __u32 l, __u32 n,
				   struct sn__rec *r)
{
	const __u32 *m = (const __u32 *)(sn__cons_hdr(c, lane, h) + 1);
	__u32 j, bl;

	r->pos = h;
	r->slots = n;
	r->buf = 0;
	r->data = m;
	r->len = l;
	if (!(l & SN_SLOT_BUF))
		return 1;
	j = sn__racy_load(&m[0]);
	bl = sn__racy_load(&m[1]);
	if (j >= c->bufs || bl > c->buf_size)
		return 0;
	r->buf = j + 1;
	r->len = bl;
	r->data = sn__cons_buf(c, lane, j);
	return 1;
}

/*
 * A buffer record at @pos of @lane is done with (copied out, or read in
 * place until its release): its buffer is returned before the record is
 * released, also over the mark of a consumer that died holding it from an
 * earlier delivery of the same record (release: our reads first).
 */
static inline void sn__cons_buf_done(struct sn_consumer *c, __u32 lane,
				     __u32 buf, __u32 pos)
{
	if (buf)
		__atomic_store_n(&c->ret[(__u64)lane * c->bufs + buf - 1],
				 (__u64)sn_buf_tag(pos), __ATOMIC_RELEASE);
}

/* What sn__cons_var_take() takes: any record, or buffer records only. */
#define SN__TAKE_ANY	0
#define SN__TAKE_BUF	1

/*
 * Varlen: takes the next record of @lane, after a padding record and
 * after dropping the rest of the lap at a bad one (uapi "Records").
 * SPSC/MPSC read the seq at the head; MPMC claim the record by the tail,
 * unless it is refused: -EMSGSIZE when its message is longer than @cap,
 * -ENOMSG when @what is SN__TAKE_BUF and it is no buffer record (it stays;
 * r->len says how long it is). Returns the record's slots with @r filled,
 * 0 when there is none.
 */
static inline int sn__cons_var_take(struct sn_consumer *c, __u32 lane,
				    __u32 cap, int what, struct sn__rec *r)
{
	__u32 slots = c->mask + 1, h, l = 0, n, idx, d, skips = 0, tries;
	const __u32 *tail_p = (const __u32 *)(sn__cons_lane(c, lane) +
					      c->off_tail);
	int err = 0;

	if (!(c->flags & SN__MPMC)) {
		for (;;) {
			h = c->head[lane];
			n = sn__cons_var_at(c, lane, h, &l);
			if (!n)
				return 0;
			if (l != SN_SLOT_PAD && l != ~0U &&
			    sn__cons_resolve(c, lane, h, l, n, r)) {
				if (what == SN__TAKE_BUF && !r->buf)
					return -ENOMSG;
				return r->len > cap ? -EMSGSIZE : (int)n;
			}
			if (l != SN_SLOT_PAD)
				sn__cons_bad(c, lane);
			sn__cons_done(c, lane, h, slots - (h & c->mask));
			if (++skips == 2)	/* two in a row: a bad lane */
				return 0;
		}
	}
	h = __atomic_load_n(sn__cons_head_p(c, lane), __ATOMIC_RELAXED);
	for (tries = 0; tries < 64 && !err; tries++) {
		d = sn__clamp_depth(__atomic_load_n(tail_p, __ATOMIC_ACQUIRE),
				    h, slots);
		if (!d)
			break;
		idx = h & c->mask;
		l = ~0U;
		n = 0;
		/* below the tail (acquired above: the records before it are
		 * visible) a record's seq is h + 1 unless the head moved on
		 * (our h is stale) or the producer garbled it */
		if (sn__racy_load(&sn__cons_hdr(c, lane, h)->seq) == h + 1) {
			l = sn__racy_load(&sn__cons_hdr(c, lane, h)->len);
			n = sn_record_span(l, idx, slots, c->shift);
		} else if (__atomic_load_n(sn__cons_head_p(c, lane),
					   __ATOMIC_RELAXED) != h) {
			h = __atomic_load_n(sn__cons_head_p(c, lane),
					    __ATOMIC_RELAXED);
			continue;
		}
		if (n && n <= d && l != SN_SLOT_PAD &&
		    !((l & SN_SLOT_BUF) && !c->bufs) &&
		    sn__cons_resolve(c, lane, h, l, n, r)) {
			if (what == SN__TAKE_BUF && !r->buf)
				err = -ENOMSG;
			else if (r->len > cap)
				err = -EMSGSIZE;
			if (err)
				break;
		} else if (l != SN_SLOT_PAD || !n || n > d) {
			/* bad: drop what is committed of the lap */
			n = d < slots - idx ? d : slots - idx;
			l = ~0U;
		}
		/* the claim record first, as in sn__cons_take(): [D7]
		 * pairs with [D6], [D1] with [D5], [D2] with [D4] */
		__atomic_store_n(&c->claim->lane, lane, __ATOMIC_RELEASE);
		__atomic_store_n(&c->claim->pos, h, __ATOMIC_RELEASE);
		__atomic_store_n(&c->claim->n, n, __ATOMIC_RELEASE);
		__atomic_store_n(&c->claim->state, SN_CLAIM_INTENT,
				 __ATOMIC_RELEASE);
		if (!__atomic_compare_exchange_n(sn__cons_head_p(c, lane), &h,
						 h + n, 0, __ATOMIC_ACQ_REL,
						 __ATOMIC_RELAXED))
			continue;
		__atomic_store_n(&c->claim->state, SN_CLAIM_HELD,
				 __ATOMIC_RELAXED);
		if (l != SN_SLOT_PAD && l != ~0U)
			return (int)n;
		if (l == ~0U)
			sn__cons_bad(c, lane);
		sn__cons_done(c, lane, h, n);
		h += n;
		if (++skips == 2)
			return 0;
	}
	__atomic_store_n(&c->claim->state, SN_CLAIM_IDLE, __ATOMIC_RELEASE);
	return err;
}

/* Varlen: the next record of any lane, round robin (sn__cons_var_take). */
static inline int sn__cons_var_find(struct sn_consumer *c, __u32 cap,
				    int what, struct sn__rec *r, __u32 *lane)
{
	__u32 i;
	int n;

	for (i = 0; i < c->lanes; i++) {
		__u32 l = c->next_lane;

		c->next_lane = l + 1 < c->lanes ? l + 1 : 0;
		n = sn__cons_var_take(c, l, cap, what, r);
		if (n < 0)
			c->next_lane = l;	/* the same message next */
		if (n) {
			*lane = l;
			return n;
		}
	}
	return 0;
}

/* Fixed-size channels: the length a message's header says, clamped. */
static inline __u32 sn__cons_fixed_len(const struct sn_consumer *c,
				       __u32 lane, __u32 pos)
{
	__u32 l = __atomic_load_n(&sn__cons_hdr(c, lane, pos)->len,
				  __ATOMIC_RELAXED);

	return l < c->slot_size ? l : c->slot_size;
}

/*
 * Receives one message into @buf (@cap bytes) and stores its length in
 * *@len, on any channel (on fixed-size ones @cap must be at least
 * slot_size, else -EINVAL); a buffer's message is copied and the buffer
 * returned. 0, -EAGAIN, -EPIPE (as sn_try_recv()), -EMSGSIZE when the
 * next message is longer than @cap: it stays in the ring and *@len says
 * its length.
 */
static inline int sn_try_recv_len(struct sn_consumer *c, void *buf,
				  __u32 cap, __u32 *len)
{
	struct sn__rec r = { 0, 0, 0, 0, 0 };
	__u32 lane = 0;
	int n;

	if (c->peek_n)
		return -EINVAL;
	if (!(c->flags & SN__VARLEN)) {
		if (cap < c->slot_size)
			return -EINVAL;
		n = (int)sn__cons_find(c, 1, &r.pos, &lane);
		if (n) {
			r.len = sn__cons_fixed_len(c, lane, r.pos);
			r.data = sn__cons_hdr(c, lane, r.pos) + 1;
			r.slots = 1;
		}
	} else {
		n = sn__cons_var_find(c, cap, SN__TAKE_ANY, &r, &lane);
		if (n == -EMSGSIZE) {
			*len = r.len;
			return n;
		}
	}
	if (!n) {
		sn__cons_count(c, 0, 1);
		return sn__cons_empty(c);
	}
	memcpy(buf, r.data, r.len);
	sn__cons_buf_done(c, lane, r.buf, r.pos);
	sn__cons_done(c, lane, r.pos, r.slots);
	if (c->flags & SN__VARLEN)
		sn__cons_var_count(c, lane);
	else
		sn__cons_count(c, 1, 0);
	*len = r.len;
	return 0;
}

/*
 * Peeks at one message in place, on any channel (a buffer's message where
 * it is in the buffer): stores where it is in *@msg and its length in
 * *@len; then sn_consumer_advance(c, 1). MPMC: claimed. 0, -EAGAIN, -EPIPE,
 * -EINVAL (a peek is outstanding). A peer may change the message while it
 * is read: copy what you validate.
 */
static inline int sn_consumer_peek_len(struct sn_consumer *c,
				       const void **msg, __u32 *len)
{
	struct sn__rec r = { 0, 0, 0, 0, 0 };
	__u32 lane = 0, pos = 0;
	int n;

	if (!(c->flags & SN__VARLEN)) {
		n = sn_consumer_peek(c, 1, &pos);
		if (n < 0)
			return n;
		*msg = sn_consumer_slot(c, pos);
		*len = sn__cons_fixed_len(c, c->peek_lane, pos);
		return 0;
	}
	if (c->peek_n)
		return -EINVAL;
	n = sn__cons_var_find(c, ~0U, SN__TAKE_ANY, &r, &lane);
	if (n <= 0) {
		sn__cons_count(c, 0, 1);
		return sn__cons_empty(c);
	}
	c->peek_lane = lane;
	c->peek_pos = r.pos;
	c->peek_n = 1;
	c->peek_slots = (__u32)n;
	c->peek_buf = r.buf;
	if (!(c->flags & SN__MPMC))
		__atomic_store_n(&c->stats->peeked, 1, __ATOMIC_RELAXED);
	*msg = r.data;
	*len = r.len;
	return 0;
}


/* ---- Buffers: large messages without a copy (libsn/buf.c) ---- */

/*
 * A channel created with buffers (sn_channel_opts.bufs) gives each lane bufs
 * buffers of buf_size bytes in the ring (the uapi header's "Buffers"). A
 * producer takes a free buffer of its lane, fills it in place and sends it: the
 * message is a small record naming the buffer, and the buffer belongs to the
 * ring until a consumer takes it. The consumers' ordinary calls see it as a
 * message of the buffer's length: sn_try_recv_len() copies it out,
 * sn_consumer_peek_len() shows it in place until sn_consumer_advance();
 * sn_recv_buf() takes the buffer itself, to be read in place for as long as the
 * consumer likes and returned with sn_buf_put(), in any order. Only the lane's
 * producer fd (and full-role fds) can write its buffers (kernel backend; memfd:
 * every process that maps the ring), so a buffer a producer sent can change
 * only if that producer writes it again: a consumer copies what it validates.
 * The buffers of a consumer that goes come back as the uapi header says: kernel
 * backend, when its fd is released (a consumer opened on a channel attached
 * through a consumer-role fd uses that fd: when the channel closes); memfd, at
 * its close or once its death is seen.
 */

/*
 * A free buffer of @p's lane, the producer's until sn_buf_send() or
 * sn_buf_drop(): stores its index in *@idx and where it is in *@buf
 * (buf_size bytes, 64-byte aligned). -EAGAIN when every buffer is in the
 * ring or held by a consumer, -EINVAL when the channel has no buffers.
 */
int sn_buf_get(struct sn_producer *p, void **buf, __u32 *idx);

/*
 * As sn_buf_get(), waiting at most @timeout_ns for a buffer to come back
 * (SN_NO_WAIT, SN_WAIT_FOREVER). The wait polls, sleeping up to a
 * millisecond between looks: a consumer's return kicks no one (memfd: it
 * looks for dead consumers every 50 ms, as sleepers do).
 * -ETIMEDOUT, -EPIPE (every consumer has gone), -EINVAL.
 */
int sn_buf_get_wait(struct sn_producer *p, void **buf, __u32 *idx,
		    __u64 timeout_ns);

/*
 * Sends buffer @idx (from sn_buf_get()) holding a message of @len bytes
 * (at most buf_size). 0; -EAGAIN (no room in the ring: the buffer stays
 * the producer's), -EPIPE, -EINVAL (not a buffer the producer holds, @len,
 * a reservation outstanding).
 */
int sn_buf_send(struct sn_producer *p, __u32 idx, __u32 len);

/* Gives back buffer @idx got and not sent. 0 or -EINVAL. */
int sn_buf_drop(struct sn_producer *p, __u32 idx);

/* A buffer a consumer holds (sn_recv_buf()). */
struct sn_buf {
	const void *data;	/* the message, in the buffer */
	__u32 len;		/* its bytes */
	__u32 lane;		/* which buffer, for sn_buf_put() */
	__u32 idx;
	__u32 tag;
};

/*
 * Takes the next message if it is a buffer: fills @b and releases the message's
 * record, so that the ring moves on while the consumer holds the buffer;
 * sn_buf_put() returns it. 0, -EAGAIN, -EPIPE (as sn_try_recv()), -ENOMSG when
 * the next message is not a buffer (it stays: receive it with sn_try_recv_len()
 * or sn_consumer_peek_len()), -EINVAL (a peek is outstanding, no buffers).
 */
int sn_recv_buf(struct sn_consumer *c, struct sn_buf *b);

/* Returns a buffer sn_recv_buf() gave. 0 or -EINVAL. */
int sn_buf_put(struct sn_consumer *c, const struct sn_buf *b);

/* Out of line parts of sn_send()/sn_recv() and their *_len forms. */
int sn__send_wait(struct sn_producer *p, const void *msg, __u32 len,
		  __u64 timeout_ns);
int sn__recv_wait(struct sn_consumer *c, void *buf, __u32 cap, __u32 *len,
		  __u64 timeout_ns);

/*
 * Sends one message, waiting for room at most @timeout_ns (SN_NO_WAIT: as
 * sn_try_send; SN_WAIT_FOREVER). 0, -ETIMEDOUT, -EINTR, -EPIPE, -EINVAL;
 * -EAGAIN only for SN_NO_WAIT.
 */
static inline int sn_send(struct sn_producer *p, const void *msg,
			  __u64 timeout_ns)
{
	int r = sn_try_send(p, msg);

	if (r != -EAGAIN || !timeout_ns)
		return r;
	return sn__send_wait(p, msg, p->slot_size, timeout_ns);
}

/* Receives one message, waiting at most @timeout_ns; as sn_send(). */
static inline int sn_recv(struct sn_consumer *c, void *msg, __u64 timeout_ns)
{
	__u32 len;
	int r = sn_try_recv(c, msg);

	if (r != -EAGAIN || !timeout_ns)
		return r;
	return sn__recv_wait(c, msg, c->slot_size, &len, timeout_ns);
}

/* sn_try_send_len(), waiting for room at most @timeout_ns; as sn_send(). */
static inline int sn_send_len(struct sn_producer *p, const void *msg,
			      __u32 len, __u64 timeout_ns)
{
	int r = sn_try_send_len(p, msg, len);

	if (r != -EAGAIN || !timeout_ns)
		return r;
	return sn__send_wait(p, msg, len, timeout_ns);
}

/* sn_try_recv_len(), waiting at most @timeout_ns; as sn_recv(). */
static inline int sn_recv_len(struct sn_consumer *c, void *buf, __u32 cap,
			      __u32 *len, __u64 timeout_ns)
{
	int r = sn_try_recv_len(c, buf, cap, len);

	if (r != -EAGAIN || !timeout_ns)
		return r;
	return sn__recv_wait(c, buf, cap, len, timeout_ns);
}

#ifdef __cplusplus
}
#endif

#endif /* SN_CHANNEL_H */
