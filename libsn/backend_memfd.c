/* SPDX-License-Identifier: MIT */
/*
 * The memfd backend: the same ring as sn.ko's, in a sealed memfd that libsn
 * lays out with sn_ring_layout() and whose kpage it writes itself. Nothing
 * is protected from the processes that share it; libsn trusts only what it
 * validated at attach time.
 */
#include <errno.h>
#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

#define SN_MEMFD_SEALS (F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL)

static struct sn_kpage *sn_kpage(struct sn_channel *ch)
{
	return (struct sn_kpage *)(ch->base + ch->off.kpage);
}

/* Maps the whole memfd ring writable (every role may write it). */
static int sn_memfd_map(struct sn_channel *ch)
{
	int ret = sn_map_reserve(ch);

	if (ret)
		return ret;
	ret = sn_map_region(ch, 0, ch->off.map_size, PROT_READ | PROT_WRITE);
	if (ret)
		return ret;
	ch->readable = ~0ULL >> (64 - ch->geo.lanes);
	return 0;
}

int sn_memfd_create(struct sn_channel *ch)
{
	struct sn_kpage *kp;
	__u32 lane, pos;
	int ret;

	ch->backend = SN_BACKEND_MEMFD;
	ch->role = SN_ROLE_FULL;
	sn_ring_layout(&ch->geo, ch->page, &ch->off);
	ret = sn_offsets_check(&ch->geo, &ch->off, ch->page);
	if (ret)
		return ret;
	ch->fd = memfd_create("sn-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
	if (ch->fd < 0)
		return -errno;
	/* sealed: no peer can shrink the file under our mapping (SIGBUS) */
	if (ftruncate(ch->fd, (off_t)ch->off.map_size) ||
	    fcntl(ch->fd, F_ADD_SEALS, SN_MEMFD_SEALS))
		return -errno;
	ret = sn_memfd_map(ch);
	if (ret)
		return ret;
	kp = sn_kpage(ch);
	if (ch->geo.type == SN_RING_MPMC) {
		/* position p of a lane may be written once release[p] == p */
		__u32 *rel = (__u32 *)(ch->base + ch->off.cons +
				       ch->off.cons_release);

		for (lane = 0; lane < ch->geo.lanes; lane++)
			for (pos = 0; pos < ch->geo.slots; pos++)
				rel[(__u64)lane * ch->geo.slots + pos] = pos;
	}
	kp->type = ch->geo.type;
	kp->slot_size = ch->geo.slot_size;
	kp->slots = ch->geo.slots;
	kp->lanes = ch->geo.lanes;
	/* No kernel thread ever watches a memfd ring: kick every sleeper. */
	kp->kflags = SN_KFLAG_NEED_WAKEUP;
	/* the magic last: an attacher that sees it sees the rest */
	__atomic_store_n(&kp->magic, SN_KPAGE_MAGIC, __ATOMIC_RELEASE);
	return 0;
}

int sn_memfd_attach(struct sn_channel *ch)
{
	struct sn_kpage kp;
	struct stat st;
	int seals, ret;

	if (fstat(ch->fd, &st))
		return -errno;
	if (!S_ISREG(st.st_mode))
		return -EINVAL;
	/* only a memfd sealed against shrinking is safe to map */
	seals = fcntl(ch->fd, F_GET_SEALS);
	if (seals < 0 || !(seals & F_SEAL_SHRINK))
		return -EINVAL;
	if (st.st_size < (off_t)ch->page ||
	    pread(ch->fd, &kp, sizeof(kp), 0) != (ssize_t)sizeof(kp))
		return -EINVAL;
	if (kp.magic != SN_KPAGE_MAGIC)
		return -EINVAL;
	ch->geo.type = kp.type;
	ch->geo.slot_size = kp.slot_size;
	ch->geo.slots = kp.slots;
	ch->geo.lanes = kp.lanes;
	if (sn_geometry_check(&ch->geo, SN_CHANNEL_MAX_BYTES))
		return -EINVAL;
	sn_ring_layout(&ch->geo, ch->page, &ch->off);
	if (sn_offsets_check(&ch->geo, &ch->off, ch->page) ||
	    (__u64)st.st_size != ch->off.map_size)
		return -EINVAL;
	ch->backend = SN_BACKEND_MEMFD;
	ch->role = SN_ROLE_FULL;
	ret = sn_memfd_map(ch);
	if (ret)
		return ret;
	return 0;
}

/* kpage->reserved[0] bit 0: an SPSC/MPSC consumer exists. */
#define SN_MEMFD_CONSUMER_CLAIM	1ULL

/* A free bit of *@map below @all, set atomically. Bounded: a peer
 * scribbling the bitmap makes this fail, not spin. */
static int sn_memfd_take_bit(__u64 *map, __u64 all, __u32 *bit)
{
	__u64 old = __atomic_load_n(map, __ATOMIC_RELAXED);
	int tries;

	for (tries = 0; tries < 1000; tries++) {
		__u64 free_bits = ~old & all;
		__u32 b;

		if (!free_bits)
			return -ENOSPC;
		b = (__u32)__builtin_ctzll(free_bits);
		if (__atomic_compare_exchange_n(map, &old, old | (1ULL << b),
						0, __ATOMIC_ACQ_REL,
						__ATOMIC_RELAXED)) {
			*bit = b;
			return 0;
		}
	}
	return -EBUSY;
}

int sn_memfd_claim_lane(struct sn_channel *ch, __u32 *lane, int *lockfd)
{
	*lockfd = -1;
	return sn_memfd_take_bit(&sn_kpage(ch)->lanes_live,
				 ~0ULL >> (64 - ch->geo.lanes), lane);
}

void sn_memfd_unclaim_lane(struct sn_channel *ch, __u32 lane, int lockfd)
{
	(void)lockfd;
	__atomic_and_fetch(&sn_kpage(ch)->lanes_live, ~(1ULL << lane),
			   __ATOMIC_RELEASE);
}

int sn_memfd_claim_consumer(struct sn_channel *ch, __u32 *claim, int *lockfd)
{
	struct sn_claim *rec;
	__u64 old;
	int ret;

	*lockfd = -1;
	if (ch->geo.type == SN_RING_MPMC) {
		ret = sn_memfd_take_bit(&sn_kpage(ch)->claims_live, ~0ULL,
					claim);
		if (ret)
			return ret;
		rec = (struct sn_claim *)(ch->base + ch->off.cons +
					  ch->off.cons_claims +
					  (__u64)*claim * SN_PAD);
		__atomic_store_n(&rec->state, SN_CLAIM_IDLE, __ATOMIC_RELEASE);
		return 0;
	}
	*claim = SN_CLAIM_NONE;
	old = __atomic_fetch_or(&sn_kpage(ch)->reserved[0],
				SN_MEMFD_CONSUMER_CLAIM, __ATOMIC_ACQ_REL);
	return old & SN_MEMFD_CONSUMER_CLAIM ? -EBUSY : 0;
}

void sn_memfd_unclaim_consumer(struct sn_channel *ch, __u32 claim, int lockfd)
{
	(void)lockfd;
	if (ch->geo.type == SN_RING_MPMC) {
		__atomic_and_fetch(&sn_kpage(ch)->claims_live, ~(1ULL << claim),
				   __ATOMIC_RELEASE);
		return;
	}
	__atomic_and_fetch(&sn_kpage(ch)->reserved[0],
			   ~SN_MEMFD_CONSUMER_CLAIM, __ATOMIC_RELEASE);
}

void sn_memfd_check_peers(const struct sn_channel *ch)
{
	(void)ch;
}

int sn_memfd_shutdown(struct sn_channel *ch)
{
	(void)ch;
	return -EOPNOTSUPP;
}
