// SPDX-License-Identifier: GPL-2.0
/*
 * /proc/sn/rings: every live ring, one per line, for tools such as snstat.
 *
 * procfs rather than debugfs: the listing is for every user's tools and
 * must exist wherever the module loads, while debugfs is root-only, often
 * unmounted and closed under lockdown.
 *
 * Format (documented for parsers; fields are separated by one space and new
 * fields are only ever appended): a header line starting with '#' naming
 * the fields, then per ring:
 *
 *   id type pid uid lanes slots slot_size depth home_cpu node producers
 *   consumers sleepers kicks polls sent received bytes armed_cpu
 *   thread_wakes need_wakeup lanes_live lanes_dead producers_died
 *   consumers_died reserved_lost claims_recovered claims_lost ended
 *   orphaned redelivered varlen bufs buf_size bufs_reclaimed
 *
 * depth counts slots: in a varlen ring (varlen 1) a message may take
 * several.
 *
 * Who sees which ring: a ring's counters and depth tell what its users do,
 * so the listing shows a ring only to a viewer whose user namespace is the
 * creator's or an ancestor of it, and who is either the creator's uid (as
 * its effective uid) or has CAP_SYS_ADMIN in its own user namespace. So a
 * user sees its own rings, a container's root those made inside the
 * container, CAP_SYS_ADMIN in the initial namespace every ring, and no one
 * the rings of a sibling container. The viewer is whoever opened the file,
 * with its credentials at open, as elsewhere in procfs: an fd passed on
 * shows no more than it showed the opener.
 *
 * type is spsc, mpsc or mpmc; pid is the creator's in the reader's pid
 * namespace (0 if not visible); uid is the creator's in the opener's user
 * namespace (the overflow uid if unmapped there); depth is the messages
 * queued over all lanes; producers is the number of lanes with a producer fd; sleepers, sent and
 * received come from the ring's shared pages and are hints; kicks and polls
 * are the kernel's own counts; bytes is the ring's memory; armed_cpu is the
 * CPU whose wakeup thread watches the ring, or -1; thread_wakes counts that
 * thread's wakeups; need_wakeup is 1 while publishers must kick.
 * lanes_live and lanes_dead are the kpage's bitmaps, in hex (0x...); the
 * counters after them are the kpage's peers (struct sn_peer_stats); ended
 * is 1 while SN_KFLAG_NO_PRODUCER is set, orphaned while
 * SN_KFLAG_NO_CONSUMER is.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/bitops.h>
#include <linux/capability.h>
#include <linux/cred.h>
#include <linux/lockdep.h>
#include <linux/pid.h>
#include <linux/pid_namespace.h>
#include <linux/proc_fs.h>
#include <linux/seq_file.h>
#include <linux/uidgid.h>
#include <linux/user_namespace.h>

#include "sn.h"

static const char *const sn_type_names[] = {
	[SN_RING_SPSC] = "spsc",
	[SN_RING_MPSC] = "mpsc",
	[SN_RING_MPMC] = "mpmc",
};

/* Whether @ns is @ancestor or one of its descendants. */
static bool sn_userns_within(const struct user_namespace *ns,
			     const struct user_namespace *ancestor)
{
	while (ns->level > ancestor->level)
		ns = ns->parent;
	return ns == ancestor;
}

static bool sn_ring_visible(struct seq_file *m, const struct sn_ring *ring)
{
	const struct cred *cred = m->file->f_cred;
	const bool *admin = m->private;

	if (!sn_userns_within(ring->user_ns, cred->user_ns))
		return false;
	return *admin || uid_eq(ring->uid, cred->euid);
}

/* The walk holds sn_rings_lock from start to stop, across show and next. */
static void *sn_rings_start(struct seq_file *m, loff_t *pos)
	__acquires(&sn_rings_lock)
{
	mutex_lock(&sn_rings_lock);
	__acquire(&sn_rings_lock);
	return seq_list_start_head(&sn_rings, *pos);
}

static void *sn_rings_next(struct seq_file *m, void *v, loff_t *pos)
	__must_hold(&sn_rings_lock)
{
	lockdep_assert_held(&sn_rings_lock);
	return seq_list_next(v, &sn_rings, pos);
}

static void sn_rings_stop(struct seq_file *m, void *v)
	__releases(&sn_rings_lock)
{
	__release(&sn_rings_lock);
	mutex_unlock(&sn_rings_lock);
}

static int sn_rings_show(struct seq_file *m, void *v)
	__must_hold(&sn_rings_lock)
{
	struct sn_peer_stats peers;
	u64 sent, received, live, dead;
	u32 lane, depth = 0, kflags;
	struct sn_ring *ring;

	lockdep_assert_held(&sn_rings_lock);
	if (v == &sn_rings) {
		seq_puts(m, "# id type pid uid lanes slots slot_size depth home_cpu node producers consumers sleepers kicks polls sent received bytes armed_cpu thread_wakes need_wakeup lanes_live lanes_dead producers_died consumers_died reserved_lost claims_recovered claims_lost ended orphaned redelivered varlen bufs buf_size bufs_reclaimed\n");
		return 0;
	}
	ring = list_entry(v, struct sn_ring, node);
	if (!sn_ring_visible(m, ring))
		return SEQ_SKIP;
	for (lane = 0; lane < ring->geo.lanes; lane++)
		depth += sn_lane_depth(ring, lane);
	sn_ring_stats(ring, &sent, &received);
	spin_lock(&ring->lock);
	seq_printf(m, "%llu %s %d %u %u %u %u %u %u %u %u %u",
		   ring->id, sn_type_names[ring->geo.type],
		   pid_nr_ns(ring->owner, task_active_pid_ns(current)),
		   from_kuid_munged(seq_user_ns(m), ring->uid),
		   ring->geo.lanes, ring->geo.slots, ring->geo.slot_size,
		   depth, ring->home_cpu, ring->numa_node,
		   (u32)hweight64(ring->lanes_owned), ring->consumers);
	live = ring->lanes_owned;
	dead = ring->lanes_dead;
	peers = ring->peers;
	spin_unlock(&ring->lock);
	kflags = READ_ONCE(ring->kpage->kflags);
	seq_printf(m, " %u %lld %lld %llu %llu %llu %d %lld %u",
		   sn_ring_sleepers(ring), atomic64_read(&ring->kicks),
		   atomic64_read(&ring->polls), sent, received,
		   (u64)ring->nr_pages << PAGE_SHIFT, READ_ONCE(ring->arm_cpu),
		   atomic64_read(&ring->thread_wakes),
		   !!(kflags & SN_KFLAG_NEED_WAKEUP));
	seq_printf(m, " 0x%llx 0x%llx %llu %llu %llu %llu %llu %u %u %llu",
		   live, dead, peers.producers_died, peers.consumers_died,
		   peers.reserved_lost, peers.claims_recovered,
		   peers.claims_lost, !!(kflags & SN_KFLAG_NO_PRODUCER),
		   !!(kflags & SN_KFLAG_NO_CONSUMER), peers.redelivered);
	seq_printf(m, " %u %u %u %llu\n",
		   !!(ring->geo.flags & SN_GEO_VARLEN), ring->geo.bufs,
		   ring->geo.buf_size, peers.bufs_reclaimed);
	return 0;
}

static const struct seq_operations sn_rings_seq_ops = {
	.start	= sn_rings_start,
	.next	= sn_rings_next,
	.stop	= sn_rings_stop,
	.show	= sn_rings_show,
};

/* Decides, as the opener, whether it sees every ring of its namespaces. */
static int sn_rings_open(struct inode *inode, struct file *file)
{
	struct seq_file *m;
	bool *admin;
	int ret;

	ret = seq_open_private(file, &sn_rings_seq_ops, sizeof(*admin));
	if (ret)
		return ret;
	m = file->private_data;
	admin = m->private;
	/* noaudit: a plain user listing its own rings is not denied anything. */
	*admin = ns_capable_noaudit(current_user_ns(), CAP_SYS_ADMIN);
	return 0;
}

static const struct proc_ops sn_rings_proc_ops = {
	.proc_open	= sn_rings_open,
	.proc_read	= seq_read,
	.proc_lseek	= seq_lseek,
	.proc_release	= seq_release_private,
};

static struct proc_dir_entry *sn_proc_dir;

int sn_proc_init(void)
{
	sn_proc_dir = proc_mkdir("sn", NULL);
	if (!sn_proc_dir)
		return -ENOMEM;
	if (!proc_create("rings", 0444, sn_proc_dir, &sn_rings_proc_ops)) {
		proc_remove(sn_proc_dir);
		return -ENOMEM;
	}
	return 0;
}

void sn_proc_exit(void)
{
	proc_remove(sn_proc_dir);
}
