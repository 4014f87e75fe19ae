/* SPDX-License-Identifier: GPL-2.0 WITH Linux-syscall-note */
/*
 * sn: shared-nothing message rings that the kernel shares with userspace.
 *
 * This is the one ABI header of sn: the module (kmod/) and libsn (libsn/)
 * both build against it, and nothing else defines the ABI.
 *
 * The device: /dev/sn, a misc character device of mode SN_DEVICE_MODE.
 * Any user may open it: what a ring costs is charged to its creator
 * (RLIMIT_MEMLOCK and the memory cgroup), not guarded by file permissions.
 *
 * ioctls use the type byte SN_IOC_MAGIC (0xB9, unused in the kernel's
 * Documentation/userspace-api/ioctl/ioctl-number.rst). A command the module
 * does not know fails with ENOTTY.
 */
#ifndef _UAPI_LINUX_SN_H
#define _UAPI_LINUX_SN_H

#include <linux/ioctl.h>
#include <linux/types.h>

#define SN_DEVICE_NAME	"sn"
#define SN_DEVICE_PATH	"/dev/sn"
#define SN_DEVICE_MODE	0666

#define SN_IOC_MAGIC	0xB9

#endif /* _UAPI_LINUX_SN_H */
