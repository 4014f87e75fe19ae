// SPDX-License-Identifier: GPL-2.0
/*
 * sn: shared-nothing message rings shared with userspace.
 *
 * This file registers /dev/sn, through which rings are made, and holds the
 * module's limits.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/build_bug.h>
#include <linux/err.h>
#include <linux/fs.h>
#include <linux/kstrtox.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
#include <linux/time64.h>
#include <linux/uaccess.h>

#include "sn.h"

static const char * const sn_poll_mode_names[] = {
	[SN_POLL_OFF] = "off",
	[SN_POLL_ADAPTIVE] = "adaptive",
	[SN_POLL_ALWAYS] = "always",
};

int sn_poll_mode = SN_POLL_ADAPTIVE;

static int sn_poll_mode_set(const char *val, const struct kernel_param *kp)
{
	int mode = sysfs_match_string(sn_poll_mode_names, val);

	if (mode < 0)
		return mode;
	WRITE_ONCE(sn_poll_mode, mode);
	if (mode == SN_POLL_OFF)
		sn_threads_mode_off();
	return 0;
}

static int sn_poll_mode_get(char *buf, const struct kernel_param *kp)
{
	return sysfs_emit(buf, "%s\n", sn_poll_mode_names[READ_ONCE(sn_poll_mode)]);
}

static const struct kernel_param_ops sn_poll_mode_ops = {
	.set = sn_poll_mode_set,
	.get = sn_poll_mode_get,
};

module_param_cb(poll_mode, &sn_poll_mode_ops, NULL, 0644);
MODULE_PARM_DESC(poll_mode,
		 "Wakeup threads: off (publishers always kick), adaptive (watch until idle), always (watch while armed) (string, default adaptive)");

/*
 * The numeric parameters, each bounded in its setter so that no value root
 * can write makes ring sizes wrap (see sn_check_create()): with these caps
 * slots * slot_size stays at most 2^44 (SN_MAX_SLOTS and SN_MAX_SLOT_SIZE,
 * the ABI's hard limits), a ring's slot memory at most 64 GiB and so its
 * whole mapping below SN_MAX_MAP_SIZE (sn_ring.c). The list walk of the
 * per-user limit and a wakeup thread's idle spin (10 s at most: longer is
 * what poll_mode=always is for) stay bounded too. A write
 * outside the range fails with EINVAL and leaves the value as it was.
 */
#define SN_POLL_IDLE_US_CAP		(10 * USEC_PER_SEC)
#define SN_MAX_RING_MB_CAP		65536
#define SN_MAX_RINGS_PER_USER_CAP	65536

struct sn_uint_param {
	unsigned int *val;
	unsigned int min;
	unsigned int max;
};

static int sn_uint_param_set(const char *val, const struct kernel_param *kp)
{
	const struct sn_uint_param *p = kp->arg;
	unsigned int v;
	int ret;

	ret = kstrtouint(val, 0, &v);
	if (ret)
		return ret;
	if (v < p->min || v > p->max)
		return -EINVAL;
	WRITE_ONCE(*p->val, v);
	return 0;
}

static int sn_uint_param_get(char *buf, const struct kernel_param *kp)
{
	const struct sn_uint_param *p = kp->arg;

	return sysfs_emit(buf, "%u\n", READ_ONCE(*p->val));
}

static const struct kernel_param_ops sn_uint_param_ops = {
	.set = sn_uint_param_set,
	.get = sn_uint_param_get,
};

unsigned int sn_poll_idle_us = 1000;
static struct sn_uint_param sn_poll_idle_us_param = {
	&sn_poll_idle_us, 0, SN_POLL_IDLE_US_CAP
};
module_param_cb(poll_idle_us, &sn_uint_param_ops, &sn_poll_idle_us_param,
		0644);
MODULE_PARM_DESC(poll_idle_us,
		 "Microseconds without progress before a wakeup thread sleeps in adaptive mode (uint, 0..10000000, default 1000)");

unsigned int sn_max_slot_size = 65536;
static struct sn_uint_param sn_max_slot_size_param = {
	&sn_max_slot_size, 8, SN_MAX_SLOT_SIZE
};
module_param_cb(max_slot_size, &sn_uint_param_ops, &sn_max_slot_size_param,
		0644);
MODULE_PARM_DESC(max_slot_size,
		 "Largest slot (message) size in bytes (uint, 8..1048576, default 65536)");

unsigned int sn_max_slots = 1U << 20;
static struct sn_uint_param sn_max_slots_param = {
	&sn_max_slots, 1, SN_MAX_SLOTS
};
module_param_cb(max_slots, &sn_uint_param_ops, &sn_max_slots_param, 0644);
MODULE_PARM_DESC(max_slots,
		 "Most slots per lane (uint, 1..16777216, default 1048576)");

unsigned int sn_max_ring_mb = 1024;
static struct sn_uint_param sn_max_ring_mb_param = {
	&sn_max_ring_mb, 1, SN_MAX_RING_MB_CAP
};
module_param_cb(max_ring_mb, &sn_uint_param_ops, &sn_max_ring_mb_param,
		0644);
MODULE_PARM_DESC(max_ring_mb,
		 "Most slot memory per ring, in MiB (uint, 1..65536, default 1024)");

unsigned int sn_max_rings_per_user = 1024;
static struct sn_uint_param sn_max_rings_per_user_param = {
	&sn_max_rings_per_user, 1, SN_MAX_RINGS_PER_USER_CAP
};
module_param_cb(max_rings_per_user, &sn_uint_param_ops,
		&sn_max_rings_per_user_param, 0644);
MODULE_PARM_DESC(max_rings_per_user,
		 "Most live rings per user, CAP_SYS_RESOURCE exempt (uint, 1..65536, default 1024)");

unsigned int sn_max_armed_per_user = 256;
static struct sn_uint_param sn_max_armed_per_user_param = {
	&sn_max_armed_per_user, 1, SN_MAX_RINGS_PER_USER_CAP
};
module_param_cb(max_armed_per_user, &sn_uint_param_ops,
		&sn_max_armed_per_user_param, 0644);
MODULE_PARM_DESC(max_armed_per_user,
		 "Most rings of one user that one wakeup thread watches, more: publishers kick (uint, 1..65536, default 256)");

static long sn_dev_create(struct sn_create __user *ucreate)
{
	struct sn_create p;
	struct sn_ring *ring;
	int ret;

	ret = sn_copy_struct_from_user(&p, sizeof(p), ucreate,
				       SN_CREATE_SIZE_VER0);
	if (ret)
		return ret;
	ring = sn_ring_create(&p);
	if (IS_ERR(ring))
		return PTR_ERR(ring);
	ret = sn_ring_install_fd(ring, SN_ROLE_FULL, 0, SN_CLAIM_NONE);
	if (ret < 0)
		sn_ring_put(ring);
	return ret;
}

static long sn_dev_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	switch (cmd) {
	case SN_IOC_CREATE:
		return sn_dev_create((struct sn_create __user *)arg);
	default:
		return -ENOTTY;
	}
}

static const struct file_operations sn_dev_fops = {
	/* An open /dev/sn pins the module: rmmod is refused, never a crash. */
	.owner		= THIS_MODULE,
	.open		= nonseekable_open,
	.llseek		= noop_llseek,
	.unlocked_ioctl	= sn_dev_ioctl,
	.compat_ioctl	= compat_ptr_ioctl,
};

static struct miscdevice sn_miscdev = {
	.minor	= MISC_DYNAMIC_MINOR,
	.name	= SN_DEVICE_NAME,
	.fops	= &sn_dev_fops,
	.mode	= SN_DEVICE_MODE,
};

static int __init sn_init(void)
{
	int ret;

	BUILD_BUG_ON(sizeof(struct sn_create) != SN_CREATE_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct sn_info) != SN_INFO_SIZE_VER1);
	BUILD_BUG_ON(sizeof(struct sn_narrow) != SN_NARROW_SIZE_VER0);
	BUILD_BUG_ON(offsetof(struct sn_kpage, kflags) != SN_PAD);
	BUILD_BUG_ON(sizeof(struct sn_kpage) > PAGE_SIZE);
	/* Lanes and claim records are kept in u64 bitmaps. */
	BUILD_BUG_ON(SN_MAX_LANES > 64 || SN_MAX_CLAIMS > 64);
	BUILD_BUG_ON(sizeof(struct sn_claim) > SN_PAD);

	ret = sn_recover_init();
	if (ret)
		return ret;
	ret = sn_threads_init();
	if (ret)
		goto err_recover;
	ret = sn_proc_init();
	if (ret)
		goto err_threads;
	ret = misc_register(&sn_miscdev);
	if (ret) {
		pr_err("cannot register /dev/%s: %d\n", SN_DEVICE_NAME, ret);
		goto err_proc;
	}
	return 0;
err_proc:
	sn_proc_exit();
err_threads:
	sn_threads_exit();
err_recover:
	sn_recover_exit();
	return ret;
}

static void __exit sn_exit(void)
{
	misc_deregister(&sn_miscdev);
	sn_proc_exit();
	/* Retries may free rings, which disarms them: before the threads. */
	sn_recover_exit();
	sn_threads_exit();
}

module_init(sn_init);
module_exit(sn_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("sn: shared-nothing message rings shared with userspace");
MODULE_AUTHOR("The sn authors");
/* The top-level Makefile's SN_VERSION, passed by kmod/Kbuild. */
MODULE_VERSION(SN_VERSION);
