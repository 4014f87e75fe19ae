// SPDX-License-Identifier: GPL-2.0
/*
 * Ring file descriptors: one anon inode file per fd role, with mmap of the
 * ring's pages under that role's rights, poll, and the ring ioctls.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/anon_inodes.h>
#include <linux/bitops.h>
#include <linux/file.h>
#include <linux/fs.h>
#include <linux/lockdep.h>
#include <linux/mm.h>
#include <linux/module.h>
#include <linux/poll.h>
#include <linux/sched.h>
#include <linux/slab.h>
#include <linux/uaccess.h>

#include "compat.h"
#include "sn.h"

static const struct file_operations sn_ring_fops;

enum sn_rights { SN_NONE, SN_READ, SN_WRITE };

/* What this fd may do with page @pg of the mapping. */
static enum sn_rights sn_page_rights(const struct sn_ring_file *rf,
				     unsigned long pg)
{
	const struct sn_ring *ring = rf->ring;
	unsigned long lane0 = ring->off.lane0 >> PAGE_SHIFT;
	unsigned long lane_pages = ring->off.lane_size >> PAGE_SHIFT;

	if (pg == ring->off.kpage >> PAGE_SHIFT)
		return SN_READ;
	if (pg < lane0)		/* the consumer region */
		return rf->role == SN_ROLE_PRODUCER ? SN_READ : SN_WRITE;
	switch (rf->role) {
	case SN_ROLE_FULL:
		return SN_WRITE;
	case SN_ROLE_CONSUMER:
		return SN_READ;
	default:
		return (pg - lane0) / lane_pages == rf->lane ? SN_WRITE : SN_NONE;
	}
}

static int sn_ring_mmap(struct file *file, struct vm_area_struct *vma)
{
	struct sn_ring_file *rf = file->private_data;
	struct sn_ring *ring = rf->ring;
	unsigned long npages = vma_pages(vma);
	unsigned long first = vma->vm_pgoff, pg;
	bool writable = true;
	enum sn_rights r;

	if (!(vma->vm_flags & VM_SHARED))
		return -EINVAL;
	if (vma->vm_flags & VM_EXEC)
		return -EPERM;
	if (first >= ring->nr_pages || npages > ring->nr_pages - first)
		return -EINVAL;
	for (pg = first; pg < first + npages; pg++) {
		r = sn_page_rights(rf, pg);
		if (r == SN_NONE)
			return -EACCES;
		if (r == SN_READ)
			writable = false;
	}
	if (!writable) {
		if (vma->vm_flags & VM_WRITE)
			return -EACCES;
		/* Read-only for good: mprotect cannot add PROT_WRITE. */
		sn_vm_flags_clear(vma, VM_MAYWRITE);
	}
	sn_vm_flags_clear(vma, VM_MAYEXEC);
	sn_vm_flags_set(vma, VM_DONTEXPAND | VM_DONTDUMP);
	/* The mapping holds a reference on each page it maps. */
	return vm_insert_pages(vma, vma->vm_start, ring->pages + first, &npages);
}

static bool sn_ring_writable(const struct sn_ring_file *rf)
{
	if (rf->role == SN_ROLE_PRODUCER)
		return sn_lane_has_room(rf->ring, rf->lane);
	return sn_ring_has_room(rf->ring);
}

static __poll_t sn_ring_poll(struct file *file, poll_table *wait)
{
	struct sn_ring_file *rf = file->private_data;
	struct sn_ring *ring = rf->ring;
	__poll_t mask = 0;
	u32 kflags;

	poll_wait(file, &ring->wq, wait);
	atomic64_inc(&ring->polls);
	/*
	 * A caller about to sleep: have a wakeup thread watch the ring. An
	 * epoll or io_uring re-poll does not wait: it only re-arms a ring
	 * that lost its watcher while its registered sleepers wait.
	 */
	if (!poll_does_not_wait(wait))
		sn_thread_arm(ring);
	else
		sn_thread_rearm(ring);
	/*
	 * [K1] pairs with [K2]: our joining the wait queue before reading
	 * the ring, so a waking thread either finds us queued or we see what
	 * it saw. A kick's wake_up() takes the queue's lock: it finds us
	 * queued or ran before we joined, and then this read sees what was
	 * published before the kick. For a caller that will wait this is
	 * the ring's H, its [W1]/[W2] (pairs with [P1]/[C1]): this read is
	 * the re-check that counts.
	 */
	if (!poll_does_not_wait(wait))
		sn_ring_barrier(ring);
	else
		smp_mb();	/* [K1] for a re-poll: it will not sleep */
	/*
	 * The end flags are set before their keyless wake, which takes the
	 * wait queue's lock: a sleeper queued before it is woken, one queued
	 * after it reads the flag here.
	 */
	kflags = READ_ONCE(ring->kpage->kflags);
	if (rf->role != SN_ROLE_PRODUCER) {
		if (sn_ring_readable(ring))
			mask |= EPOLLIN | EPOLLRDNORM;
		/* As a pipe: hang-up, with EPOLLIN while messages remain. */
		if (kflags & SN_KFLAG_NO_PRODUCER)
			mask |= EPOLLHUP | EPOLLRDHUP;
	}
	if (rf->role != SN_ROLE_CONSUMER) {
		if (sn_ring_writable(rf))
			mask |= EPOLLOUT | EPOLLWRNORM;
		if (kflags & SN_KFLAG_NO_CONSUMER)
			mask |= EPOLLERR;
	}
	return mask;
}

static long sn_ring_info(struct sn_ring_file *rf, struct sn_info __user *uinfo)
{
	struct sn_ring *ring = rf->ring;
	struct sn_info info = {};
	u32 usize;
	int ret;

	if (get_user(usize, &uinfo->size))
		return -EFAULT;
	/* As for the structs we read: clear_user() of at most a page. */
	ret = sn_check_usize(usize, SN_INFO_SIZE_VER0);
	if (ret)
		return ret;
	info.size = min_t(u32, usize, sizeof(info));
	info.type = ring->geo.type;
	info.slot_size = ring->geo.slot_size;
	info.slots = ring->geo.slots;
	info.lanes = ring->geo.lanes;
	info.role = rf->role;
	info.lane = rf->role == SN_ROLE_PRODUCER ? rf->lane : 0;
	info.home_cpu = ring->home_cpu;
	info.numa_node = ring->numa_node;
	info.claim = rf->claim;
	info.id = ring->id;
	info.features = SN_FEAT_ROLES | SN_FEAT_KICK | SN_FEAT_KTHREAD |
			SN_FEAT_PEERS | SN_FEAT_ASYM | SN_FEAT_FORMAT3 |
			SN_FEAT_VARLEN | SN_FEAT_BUFS;
	info.off = ring->off;
	info.geo_flags = ring->geo.flags;
	info.bufs = ring->geo.bufs;
	info.buf_size = ring->geo.buf_size;
	if (copy_to_user(uinfo, &info, info.size))
		return -EFAULT;
	/* A newer caller's fields that we do not know read as zero. */
	if (usize > sizeof(info) &&
	    clear_user((char __user *)uinfo + sizeof(info), usize - sizeof(info)))
		return -EFAULT;
	return 0;
}

/*
 * Claims what role @role on @lane needs: a lane, the consumer claim or (MPMC)
 * a claim record, stored in @claim. sn_ring_unclaim() undoes it, given
 * *@cleared: the end flag (SN_KFLAG_NO_*) this claim cleared, or 0.
 */
static int sn_ring_claim(struct sn_ring *ring, enum sn_role role, u32 *lane,
			 u32 *claim, u32 *cleared)
{
	u32 flag = role == SN_ROLE_CONSUMER ? SN_KFLAG_NO_CONSUMER :
		   SN_KFLAG_NO_PRODUCER;
	struct sn_claim *rec;
	int ret = 0;

	*claim = SN_CLAIM_NONE;
	spin_lock(&ring->lock);
	*cleared = READ_ONCE(ring->kpage->kflags) & flag;
	if (role == SN_ROLE_CONSUMER) {
		if (ring->geo.type != SN_RING_MPMC) {
			if (ring->consumers)
				ret = -EBUSY;
		} else if (!~ring->claims_owned) {
			/* ffz() of all ones is undefined: all records taken. */
			ret = -EUSERS;
		} else {
			*claim = ffz(ring->claims_owned);
			ring->claims_owned |= BIT_ULL(*claim);
			/*
			 * A record holds nothing when its fd starts: whatever
			 * an earlier owner (recovered) or anyone left there.
			 */
			rec = sn_claim_rec(ring, *claim);
			WRITE_ONCE(rec->lane, 0);
			WRITE_ONCE(rec->pos, 0);
			WRITE_ONCE(rec->n, 0);
			WRITE_ONCE(rec->asleep, 0);
			WRITE_ONCE(rec->state, SN_CLAIM_IDLE);
		}
		if (!ret) {
			ring->consumers++;
			ring->had_consumer = true;
			sn_kflags_clear(ring, SN_KFLAG_NO_CONSUMER);
		}
	} else if (*lane == SN_LANE_ANY) {
		/* ffz() of all ones is undefined: 64 lanes, all taken. */
		if (~ring->lanes_owned)
			*lane = ffz(ring->lanes_owned);
		if (!~ring->lanes_owned || *lane >= ring->geo.lanes)
			ret = -EUSERS;
	} else if (ring->lanes_owned & BIT_ULL(*lane)) {
		ret = -EBUSY;
	}
	if (!ret && role == SN_ROLE_PRODUCER) {
		ring->lanes_owned |= BIT_ULL(*lane);
		ring->lanes_dead &= ~BIT_ULL(*lane);
		ring->had_producer = true;
		sn_kflags_clear(ring, SN_KFLAG_NO_PRODUCER);
	}
	if (!ret)
		sn_ring_mirror_peers(ring);
	spin_unlock(&ring->lock);
	return ret;
}

/*
 * A producer fd goes: what it reserved and never committed is lost. The
 * word is its own and untrusted: clamped, then cleared for the next one.
 * The caller still owns the lane.
 */
static void sn_ring_reserved_lost(struct sn_ring *ring, u32 lane)
	__must_hold(&ring->lock)
{
	u64 *word = sn_prod_reserved(ring, lane);
	u64 reserved = READ_ONCE(*word);

	lockdep_assert_held(&ring->lock);
	if (!reserved)
		return;
	ring->peers.reserved_lost += min_t(u64, reserved, ring->geo.slots);
	WRITE_ONCE(*word, 0);
}

/*
 * The SPSC/MPSC consumer fd goes: what it peeked and did not release comes
 * again to the next consumer. Untrusted as above.
 */
static void sn_ring_redelivered(struct sn_ring *ring)
	__must_hold(&ring->lock)
{
	u64 *word = sn_cons_peeked(ring);
	u64 peeked = READ_ONCE(*word), most = 0;
	u32 lane;

	lockdep_assert_held(&ring->lock);
	if (!peeked)
		return;
	/*
	 * No more than the lanes hold: a consumer that died between storing
	 * its head and clearing peeked had released them.
	 */
	for (lane = 0; lane < ring->geo.lanes; lane++)
		most += sn_lane_depth(ring, lane);
	ring->peers.redelivered += min_t(u64, peeked, most);
	WRITE_ONCE(*word, 0);
}

/*
 * Undoes sn_ring_claim(). @undo: the fd never existed (a failed narrow):
 * no death, the record freed at once, and @restore, the end flag the claim
 * cleared, set again if its side is still empty, or sleepers of an ended
 * ring would wait for a peer that never came. Otherwise the fd
 * was released, by an exiting task if @died; an MPMC record then stays
 * reserved as dying until sn_recover_claim() is done with it. Returns true
 * if an end of stream or of consumers was set: the caller wakes sleepers.
 */
static bool sn_ring_unclaim(struct sn_ring *ring, enum sn_role role, u32 lane,
			    u32 claim, bool died, bool undo, u32 restore)
{
	bool wake = false;

	spin_lock(&ring->lock);
	if (restore && (role == SN_ROLE_CONSUMER ? ring->consumers == 1 :
			ring->lanes_owned == BIT_ULL(lane))) {
		sn_kflags_set(ring, restore);
		wake = true;
	}
	if (role == SN_ROLE_CONSUMER) {
		ring->consumers--;
		if (died)
			ring->peers.consumers_died++;
		if (claim != SN_CLAIM_NONE) {
			if (undo)
				ring->claims_owned &= ~BIT_ULL(claim);
			else
				ring->claims_dying |= BIT_ULL(claim);
		}
		if (!undo && !ring->consumers && ring->had_consumer) {
			sn_kflags_set(ring, SN_KFLAG_NO_CONSUMER);
			wake = true;
		}
		if (!undo && ring->geo.type != SN_RING_MPMC)
			sn_ring_redelivered(ring);
		if (!undo && ring->geo.bufs)
			sn_ring_reclaim_bufs(ring, claim);
		/* its record is still reserved (dying): no one else writes it */
		if (!undo)
			sn_ring_forget_sleeper(ring, SN_LANE_ANY,
					       ring->geo.type != SN_RING_MPMC &&
					       !ring->consumers,
					       claim != SN_CLAIM_NONE ?
					       sn_claim_rec(ring, claim) : NULL);
	} else if (role == SN_ROLE_PRODUCER) {
		if (!undo) {
			sn_ring_reserved_lost(ring, lane);
			sn_ring_forget_sleeper(ring, lane, false, NULL);
		}
		ring->lanes_owned &= ~BIT_ULL(lane);
		if (died) {
			ring->lanes_dead |= BIT_ULL(lane);
			ring->peers.producers_died++;
		}
		if (!undo && !ring->lanes_owned && ring->had_producer) {
			sn_kflags_set(ring, SN_KFLAG_NO_PRODUCER);
			wake = true;
		}
	}
	sn_ring_mirror_peers(ring);
	spin_unlock(&ring->lock);
	return wake;
}

/*
 * A full fd narrows to a producer or consumer fd; an MPMC consumer fd to
 * another consumer fd, so that each consumer has its own claim record.
 */
static long sn_ring_narrow(struct sn_ring_file *rf,
			   struct sn_narrow __user *unarrow)
{
	struct sn_ring *ring = rf->ring;
	struct sn_narrow n;
	u32 claim, cleared;
	int ret;

	if (rf->role != SN_ROLE_FULL &&
	    (rf->role != SN_ROLE_CONSUMER || ring->geo.type != SN_RING_MPMC))
		return -EPERM;
	ret = sn_copy_struct_from_user(&n, sizeof(n), unarrow,
				       SN_NARROW_SIZE_VER0);
	if (ret)
		return ret;
	if (n.flags || n.reserved[0] || n.reserved[1])
		return -EINVAL;
	switch (n.role) {
	case SN_ROLE_PRODUCER:
		if (rf->role != SN_ROLE_FULL)
			return -EPERM;
		if (n.lane != SN_LANE_ANY && n.lane >= ring->geo.lanes)
			return -EINVAL;
		break;
	case SN_ROLE_CONSUMER:
		if (n.lane)
			return -EINVAL;
		break;
	default:
		return rf->role == SN_ROLE_FULL ? -EINVAL : -EPERM;
	}
	ret = sn_ring_claim(ring, n.role, &n.lane, &claim, &cleared);
	if (ret)
		return ret;
	kref_get(&ring->ref);
	ret = sn_ring_install_fd(ring, n.role, n.lane, claim);
	if (ret < 0) {
		if (sn_ring_unclaim(ring, n.role, n.lane, claim, false, true,
				    cleared))
			wake_up_interruptible(&ring->wq);
		sn_ring_put(ring);
	}
	return ret;
}

/*
 * SN_SHUT_PRODUCERS: the stream ends once no producer fd is open, even if
 * none ever was.
 */
static long sn_ring_shutdown(struct sn_ring_file *rf, unsigned long how)
{
	struct sn_ring *ring = rf->ring;
	bool wake = false;

	if (how != SN_SHUT_PRODUCERS)
		return -EINVAL;
	if (rf->role != SN_ROLE_FULL)
		return -EPERM;
	spin_lock(&ring->lock);
	ring->had_producer = true;
	if (!ring->lanes_owned) {
		sn_kflags_set(ring, SN_KFLAG_NO_PRODUCER);
		wake = true;
	}
	spin_unlock(&ring->lock);
	/* Keyless, as kicks: every sleeper re-polls and sees the end. */
	if (wake)
		wake_up_interruptible(&ring->wq);
	return 0;
}

static long sn_ring_kick(struct sn_ring_file *rf, unsigned long whom)
{
	struct sn_ring *ring = rf->ring;

	if (!whom || whom & ~(unsigned long)(SN_KICK_CONSUMERS |
					     SN_KICK_PRODUCERS))
		return -EINVAL;
	if ((rf->role == SN_ROLE_PRODUCER && whom != SN_KICK_CONSUMERS) ||
	    (rf->role == SN_ROLE_CONSUMER && whom != SN_KICK_PRODUCERS))
		return -EPERM;
	atomic64_inc(&ring->kicks);
	/*
	 * The thread went idle or the ring lost its watcher (why the kick
	 * came): have one watch again.
	 */
	sn_thread_kick(ring);
	/*
	 * No key: every sleeper re-polls. A kick is the kicker's word, not a
	 * fact about the ring, and io_uring would take a keyed wake's events
	 * as the poll result.
	 */
	wake_up_interruptible(&ring->wq);
	return 0;
}

static long sn_ring_ioctl(struct file *file, unsigned int cmd,
			  unsigned long arg)
{
	struct sn_ring_file *rf = file->private_data;

	switch (cmd) {
	case SN_IOC_INFO:
		return sn_ring_info(rf, (struct sn_info __user *)arg);
	case SN_IOC_NARROW:
		return sn_ring_narrow(rf, (struct sn_narrow __user *)arg);
	case SN_IOC_KICK:
		return sn_ring_kick(rf, arg);
	case SN_IOC_SHUTDOWN:
		return sn_ring_shutdown(rf, arg);
	case SN_IOC_BARRIER:
		if (arg)
			return -EINVAL;
		/*
		 * [W1]/[W2] pairs with [P1]/[C1]: the ring's H for a sleeper
		 * that waits elsewhere than poll()
		 */
		sn_ring_barrier(rf->ring);
		return 0;
	default:
		return -ENOTTY;
	}
}

static int sn_ring_file_release(struct inode *inode, struct file *file)
{
	struct sn_ring_file *rf = file->private_data;
	struct sn_ring *ring = rf->ring;
	/*
	 * The last reference of a task that dies, or exits without closing,
	 * goes in its exit (exit_mm, exit_files), with PF_EXITING set.
	 */
	bool died = current->flags & PF_EXITING;
	bool wake = false;

	/* Before the lane is free (and the stream may end): its messages. */
	if (rf->role == SN_ROLE_PRODUCER)
		wake = sn_lane_commit_orphans(ring, rf->lane);
	wake |= sn_ring_unclaim(ring, rf->role, rf->lane, rf->claim, died,
				false, 0);
	/* Recovered positions first: a woken producer finds its room. */
	if (rf->claim != SN_CLAIM_NONE)
		sn_recover_claim(ring, rf->claim);
	/*
	 * Keyless, as kicks: a consumer asleep on an ended ring or a producer
	 * on an orphaned one re-polls and sees it.
	 */
	if (wake)
		wake_up_interruptible(&ring->wq);
	sn_ring_put(ring);
	kfree(rf);
	return 0;
}

static const struct file_operations sn_ring_fops = {
	.owner		= THIS_MODULE,
	.release	= sn_ring_file_release,
	.mmap		= sn_ring_mmap,
	.poll		= sn_ring_poll,
	.llseek		= noop_llseek,
	.unlocked_ioctl	= sn_ring_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

/*
 * A new fd of @role on @ring, taking over one ring reference (dropped by
 * the caller on failure) and, for a narrowed fd, the caller's claim.
 * Installed last, once nothing can fail.
 */
int sn_ring_install_fd(struct sn_ring *ring, enum sn_role role, u32 lane,
		       u32 claim)
{
	struct sn_ring_file *rf;
	struct file *file;
	int fd;

	rf = kzalloc(sizeof(*rf), GFP_KERNEL_ACCOUNT);
	if (!rf)
		return -ENOMEM;
	rf->ring = ring;
	rf->role = role;
	rf->lane = lane;
	rf->claim = claim;
	fd = get_unused_fd_flags(O_CLOEXEC);
	if (fd < 0) {
		kfree(rf);
		return fd;
	}
	file = anon_inode_getfile("[sn-ring]", &sn_ring_fops, rf,
				  O_RDWR | O_CLOEXEC);
	if (IS_ERR(file)) {
		put_unused_fd(fd);
		kfree(rf);
		return PTR_ERR(file);
	}
	fd_install(fd, file);
	return fd;
}
