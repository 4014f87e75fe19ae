/* SPDX-License-Identifier: MIT */
/* The sn character device. */
#include <errno.h>
#include <fcntl.h>

#include <linux/sn.h>
#include <sn/sn.h>

#include "internal.h"

SN_API const char *sn_version(void)
{
	return SN_VERSION;
}

SN_API int sn_device_open(void)
{
	int fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	return fd < 0 ? -errno : fd;
}
