// SPDX-License-Identifier: GPL-2.0
/*
 * sn: shared-nothing message rings shared with userspace.
 *
 * This file registers /dev/sn, the misc device through which rings are made.
 */
#define pr_fmt(fmt) KBUILD_MODNAME ": " fmt

#include <linux/fs.h>
#include <linux/miscdevice.h>
#include <linux/module.h>
#include <linux/sn.h>

static long sn_dev_ioctl(struct file *file, unsigned int cmd,
			 unsigned long arg)
{
	return -ENOTTY;
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

	ret = misc_register(&sn_miscdev);
	if (ret)
		pr_err("cannot register /dev/%s: %d\n", SN_DEVICE_NAME, ret);
	return ret;
}

static void __exit sn_exit(void)
{
	misc_deregister(&sn_miscdev);
}

module_init(sn_init);
module_exit(sn_exit);

MODULE_LICENSE("GPL");
MODULE_DESCRIPTION("sn: shared-nothing message rings shared with userspace");
MODULE_AUTHOR("The sn authors");
