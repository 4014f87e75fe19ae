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
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/moduleparam.h>
#include <linux/string.h>
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
		 "Wakeup threads: off (publishers always kick), adaptive (watch until idle), always (watch while armed)");

unsigned int sn_poll_idle_us = 1000;
module_param_named(poll_idle_us, sn_poll_idle_us, uint, 0644);
MODULE_PARM_DESC(poll_idle_us,
		 "Microseconds without progress before a wakeup thread sleeps (adaptive mode)");

unsigned int sn_max_slot_size = 65536;
module_param_named(max_slot_size, sn_max_slot_size, uint, 0644);
MODULE_PARM_DESC(max_slot_size, "Largest slot (message) size in bytes");

unsigned int sn_max_slots = 1U << 20;
module_param_named(max_slots, sn_max_slots, uint, 0644);
MODULE_PARM_DESC(max_slots, "Most slots per lane");

unsigned int sn_max_ring_mb = 1024;
module_param_named(max_ring_mb, sn_max_ring_mb, uint, 0644);
MODULE_PARM_DESC(max_ring_mb, "Most slot memory per ring, in MiB");

unsigned int sn_max_rings_per_user = 1024;
module_param_named(max_rings_per_user, sn_max_rings_per_user, uint, 0644);
MODULE_PARM_DESC(max_rings_per_user,
		 "Most live rings per user (CAP_SYS_RESOURCE is exempt)");

unsigned int sn_max_armed_per_user = 256;
module_param_named(max_armed_per_user, sn_max_armed_per_user, uint, 0644);
MODULE_PARM_DESC(max_armed_per_user,
		 "Most rings of one user that one wakeup thread watches (more: publishers kick)");

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
	ret = sn_ring_install_fd(ring, SN_ROLE_FULL, 0);
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
	BUILD_BUG_ON(sizeof(struct sn_info) != SN_INFO_SIZE_VER0);
	BUILD_BUG_ON(sizeof(struct sn_narrow) != SN_NARROW_SIZE_VER0);
	BUILD_BUG_ON(offsetof(struct sn_kpage, kflags) != SN_PAD);
	BUILD_BUG_ON(sizeof(struct sn_kpage) > PAGE_SIZE);

	ret = sn_threads_init();
	if (ret)
		return ret;
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
	return ret;
}

static void __exit sn_exit(void)
{
	misc_deregister(&sn_miscdev);
	sn_proc_exit();
	sn_threads_exit();
}

module_init(sn_init);
module_exit(sn_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("sn: shared-nothing message rings shared with userspace");
MODULE_AUTHOR("The sn authors");
