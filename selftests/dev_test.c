// SPDX-License-Identifier: GPL-2.0
/*
 * /dev/sn itself: the node, open and close, unknown ioctls, and module
 * unload and reload. Runs in the guests with sn.ko loaded; SN_KO names the
 * module file for the reload test.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <linux/sn.h>

#include "kselftest_harness.h"
#include "need_module.h"

#define MISC_MAJOR 10

static int delete_module(const char *name, unsigned int flags)
{
	return syscall(__NR_delete_module, name, flags);
}

static int load_module(const char *path)
{
	int fd = open(path, O_RDONLY | O_CLOEXEC);
	int ret;

	if (fd < 0)
		return -1;
	ret = syscall(__NR_finit_module, fd, "", 0);
	close(fd);
	return ret;
}

/* The module's reference count from sysfs, or -1. */
static int module_refcnt(void)
{
	FILE *f = fopen("/sys/module/sn/refcnt", "r");
	int n = -1;

	if (!f)
		return -1;
	if (fscanf(f, "%d", &n) != 1)
		n = -1;
	fclose(f);
	return n;
}

TEST(device_node)
{
	struct stat st;
	unsigned int maj, min;
	FILE *f;

	ASSERT_EQ(0, stat(SN_DEVICE_PATH, &st));
	EXPECT_TRUE(S_ISCHR(st.st_mode));
	EXPECT_EQ(SN_DEVICE_MODE, st.st_mode & 07777);
	EXPECT_EQ(MISC_MAJOR, major(st.st_rdev));

	/* The node is the one the misc core registered. */
	f = fopen("/sys/class/misc/" SN_DEVICE_NAME "/dev", "r");
	ASSERT_NE(NULL, f);
	ASSERT_EQ(2, fscanf(f, "%u:%u", &maj, &min));
	fclose(f);
	EXPECT_EQ(maj, major(st.st_rdev));
	EXPECT_EQ(min, minor(st.st_rdev));
}

TEST(open_close)
{
	int fd, flags;

	fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	ASSERT_LE(0, fd);
	flags = fcntl(fd, F_GETFL);
	EXPECT_EQ(O_RDWR, flags & O_ACCMODE);
	/* Nothing to seek in: the device refuses positioning. */
	EXPECT_EQ(-1, lseek(fd, 1, SEEK_SET));
	EXPECT_EQ(0, close(fd));

	/* Mode 0666: an unprivileged user opens it too. */
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0) {
		if (setgid(65534) || setuid(65534))
			_exit(2);
		fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);
		_exit(fd >= 0 && close(fd) == 0 ? 0 : 1);
	}
	int status;

	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	EXPECT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

TEST(unknown_ioctl)
{
	/* Commands the VFS does not intercept, so they reach the module. */
	const unsigned long cmds[] = {
		0,
		_IO(SN_IOC_MAGIC, 0),
		_IO(SN_IOC_MAGIC, 0xff),
		_IOWR(SN_IOC_MAGIC, 0x7f, __u64),
		_IOR('x', 1, int),
		~0UL,
	};
	int fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++) {
		errno = 0;
		EXPECT_EQ(-1, ioctl(fd, cmds[i], 0UL)) TH_LOG("cmd %#lx", cmds[i]);
		EXPECT_EQ(ENOTTY, errno) TH_LOG("cmd %#lx", cmds[i]);
	}
	close(fd);
}

TEST(rmmod_refused_while_open)
{
	int fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);

	ASSERT_LE(0, fd);
	EXPECT_LE(1, module_refcnt());
	errno = 0;
	EXPECT_EQ(-1, delete_module(SN_DEVICE_NAME, O_NONBLOCK));
	EXPECT_EQ(EWOULDBLOCK, errno);
	close(fd);
	/* Still loaded and usable. */
	fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);
	EXPECT_LE(0, fd);
	close(fd);
}

TEST(reload_cycles)
{
	const char *ko = getenv("SN_KO");
	struct stat st;

	if (!ko)
		SKIP(return, "SN_KO is not set: no module file to reload");
	for (int i = 0; i < 10; i++) {
		ASSERT_EQ(0, module_refcnt()) TH_LOG("cycle %d", i);
		ASSERT_EQ(0, delete_module(SN_DEVICE_NAME, O_NONBLOCK))
			TH_LOG("cycle %d: rmmod: %s", i, strerror(errno));
		EXPECT_EQ(-1, stat(SN_DEVICE_PATH, &st));
		EXPECT_EQ(ENOENT, errno);
		ASSERT_EQ(0, load_module(ko))
			TH_LOG("cycle %d: insmod %s: %s", i, ko, strerror(errno));
		ASSERT_EQ(0, stat(SN_DEVICE_PATH, &st));
		int fd = open(SN_DEVICE_PATH, O_RDWR | O_CLOEXEC);

		ASSERT_LE(0, fd);
		close(fd);
	}
}

TEST_HARNESS_MAIN
