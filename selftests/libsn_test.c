// SPDX-License-Identifier: MIT
/* libsn's basic entry points. Runs on the host and in the guests. */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/sn.h>

#include "kselftest_harness.h"

TEST(version)
{
	unsigned int major, minor, patch;
	char end;

	ASSERT_EQ(3, sscanf(sn_version(), "%u.%u.%u%c", &major, &minor,
			    &patch, &end));
}

TEST(device_open)
{
	struct stat st;
	int fd = sn_device_open();

	if (stat(SN_DEVICE_PATH, &st) != 0) {
		/* No module: a clear error, nothing opened. */
		EXPECT_EQ(-ENOENT, fd);
		return;
	}
	ASSERT_LE(0, fd);
	EXPECT_EQ(O_RDWR, fcntl(fd, F_GETFL) & O_ACCMODE);
	EXPECT_EQ(FD_CLOEXEC, fcntl(fd, F_GETFD) & FD_CLOEXEC);
	EXPECT_EQ(0, close(fd));
}

TEST_HARNESS_MAIN
