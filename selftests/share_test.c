// SPDX-License-Identifier: MIT
/*
 * Sharing a channel with another process (include/sn/channel.h, "Sharing
 * with other processes"): an fd per role, sent over a unix socket and
 * attached by a forked child that knows only the socket. Kernel rings give
 * each role only what it allows; memfd rings refuse roles they cannot
 * enforce. Bad messages on the socket are -EPROTO and leak no fd.
 */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "channel_common.h"

#include "kselftest_harness.h"

#define N_MSGS	1000
#define SLOT	16

static int have_kernel(void)
{
	struct stat st;

	return stat(SN_DEVICE_PATH, &st) == 0;
}

/*
 * The child's side: receives a channel from @sock and, as @role, sends
 * N_MSGS messages (producer, full) or receives them (consumer). 0 when
 * everything it checked held, else the number of the check that failed.
 */
static int child(int sock, unsigned int role, int enforced)
{
	struct sn_channel_info info;
	unsigned char m[SLOT];
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel *ch;
	__u32 prod;
	__u64 seq, i;

	if (sn_channel_recv_fd(&ch, sock, 0))
		return 1;
	if (sn_channel_info(ch, &info) || info.role != role ||
	    (int)info.roles_enforced != enforced)
		return 2;
	if (role != SN_ROLE_CONSUMER) {
		/* only what the role allows */
		if (role == SN_ROLE_PRODUCER &&
		    sn_consumer_open(ch, &c) != -EPERM)
			return 3;
		if (sn_producer_open(ch, &p))
			return 4;
		for (i = 0; i < N_MSGS; i++) {
			t_fill(m, SLOT, 0, i);
			if (sn_send(p, m, 10000 * MS))
				return 5;
		}
		sn_producer_close(p);
	} else {
		if (enforced && sn_producer_open(ch, &p) != -EPERM)
			return 6;
		if (sn_consumer_open(ch, &c))
			return 7;
		for (i = 0; i < N_MSGS; i++)
			if (sn_recv(c, m, 10000 * MS) ||
			    t_check(m, SLOT, &prod, &seq) || seq != i)
				return 8;
		sn_consumer_close(c);
	}
	return sn_channel_close(ch) ? 9 : 0;
}

/* Forks child(); its end of a socketpair in *@sock. */
static pid_t fork_child(int *sock, unsigned int role, int enforced)
{
	int sv[2];
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv))
		return -1;
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(child(sv[1], role, enforced));
	}
	close(sv[1]);
	*sock = sv[0];
	return pid;
}

static int child_status(pid_t pid)
{
	int status;

	if (waitpid(pid, &status, 0) != pid)
		return -1;
	return WIFEXITED(status) ? WEXITSTATUS(status) : 100;
}

/* How many of the N_MSGS messages arrived whole and in order. */
static int recv_in_order(struct sn_consumer *c)
{
	unsigned char m[SLOT];
	__u32 prod;
	__u64 seq;
	int i;

	for (i = 0; i < N_MSGS; i++)
		if (sn_recv(c, m, 10000 * MS) || t_check(m, SLOT, &prod, &seq) ||
		    seq != (__u64)i)
			break;
	return i;
}

/* A producer in a child that received only its lane; we consume. */
TEST(kernel_producer_role)
{
	struct sn_consumer *c;
	struct sn_channel *ch;
	int sock, fds;
	pid_t pid;

	if (!have_kernel())
		SKIP(return, "no /dev/sn: the sn module is not loaded");
	fds = t_fd_count();
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = SN_RING_MPSC, .slots = 64, .slot_size = SLOT,
		.lanes = 2, .flags = SN_BACKEND_KERNEL)));
	pid = fork_child(&sock, SN_ROLE_PRODUCER, 1);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, sn_channel_send_fd(ch, sock, SN_ROLE_PRODUCER, 1));
	/* lane 1 is the child's now, even before it attaches */
	EXPECT_EQ(-EBUSY, sn_channel_share_fd(ch, SN_ROLE_PRODUCER, 1));
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(N_MSGS, recv_in_order(c));
	EXPECT_EQ(0, child_status(pid));
	EXPECT_EQ(0, sn_consumer_close(c));
	close(sock);
	EXPECT_EQ(0, sn_channel_close(ch));
	EXPECT_EQ(fds, t_fd_count());
}

/* The consumer in a child; we produce. SPSC: the consumer is its. */
TEST(kernel_consumer_role)
{
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel *ch;
	unsigned char m[SLOT];
	int sock;
	__u64 i;
	pid_t pid;

	if (!have_kernel())
		SKIP(return, "no /dev/sn: the sn module is not loaded");
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.slots = 64, .slot_size = SLOT,
		.flags = SN_BACKEND_KERNEL)));
	pid = fork_child(&sock, SN_ROLE_CONSUMER, 1);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, sn_channel_send_fd(ch, sock, SN_ROLE_CONSUMER, 0));
	EXPECT_EQ(-EBUSY, sn_consumer_open(ch, &c));
	ASSERT_EQ(0, sn_producer_open(ch, &p));
	for (i = 0; i < N_MSGS; i++) {
		t_fill(m, SLOT, 0, i);
		ASSERT_EQ(0, sn_send(p, m, 10000 * MS));
	}
	EXPECT_EQ(0, child_status(pid));
	EXPECT_EQ(0, sn_producer_close(p));
	close(sock);
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* Lanes and roles handed out: errnos that say what happened. */
TEST(kernel_share_errors)
{
	struct sn_channel *ch, *prod;
	int a, b, fd;

	if (!have_kernel())
		SKIP(return, "no /dev/sn: the sn module is not loaded");
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = SN_RING_MPSC, .lanes = 2, .flags = SN_BACKEND_KERNEL)));
	EXPECT_EQ(-EINVAL, sn_channel_share_fd(ch, SN_ROLE_PRODUCER, 2));
	EXPECT_EQ(-EINVAL, sn_channel_share_fd(ch, 7, 0));
	a = sn_channel_share_fd(ch, SN_ROLE_PRODUCER, SN_LANE_ANY);
	ASSERT_LE(0, a);
	b = sn_channel_share_fd(ch, SN_ROLE_PRODUCER, SN_LANE_ANY);
	ASSERT_LE(0, b);
	EXPECT_EQ(-EUSERS, sn_channel_share_fd(ch, SN_ROLE_PRODUCER,
					       SN_LANE_ANY));
	/* a producer-role channel gives no more than it has */
	ASSERT_EQ(0, sn_channel_attach(&prod, a, 0));
	EXPECT_EQ(-EPERM, sn_channel_share_fd(prod, SN_ROLE_FULL, 0));
	EXPECT_EQ(-EPERM, sn_channel_share_fd(prod, SN_ROLE_CONSUMER, 0));
	EXPECT_EQ(0, sn_channel_close(prod));
	close(a);
	close(b);
	/* a lane comes back when its last fd closes */
	fd = sn_channel_share_fd(ch, SN_ROLE_PRODUCER, 0);
	EXPECT_LE(0, fd);
	close(fd);
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* Memfd: no role can be enforced, so only the full channel is shared. */
TEST(memfd_full_only)
{
	struct sn_channel_info info;
	struct sn_consumer *c;
	struct sn_channel *ch;
	int sock, fd;
	pid_t pid;

	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.type = SN_RING_MPSC, .slots = 64, .slot_size = SLOT,
		.lanes = 2, .flags = SN_BACKEND_MEMFD)));
	ASSERT_EQ(0, sn_channel_info(ch, &info));
	EXPECT_EQ(0, info.roles_enforced);
	EXPECT_EQ(-EOPNOTSUPP, sn_channel_share_fd(ch, SN_ROLE_PRODUCER, 0));
	EXPECT_EQ(-EOPNOTSUPP, sn_channel_share_fd(ch, SN_ROLE_CONSUMER, 0));
	EXPECT_EQ(-EOPNOTSUPP, sn_channel_send_fd(ch, 0, SN_ROLE_PRODUCER,
						  SN_LANE_ANY));
	fd = sn_channel_share_fd(ch, SN_ROLE_FULL, 0);
	ASSERT_LE(0, fd);
	close(fd);

	/* the child gets the full channel and opens a producer on it */
	pid = fork_child(&sock, SN_ROLE_FULL, 0);
	ASSERT_LT(0, pid);
	ASSERT_EQ(0, sn_consumer_open(ch, &c));
	ASSERT_EQ(0, sn_channel_send_fd(ch, sock, SN_ROLE_FULL, 0));
	ASSERT_EQ(N_MSGS, recv_in_order(c));
	EXPECT_EQ(0, child_status(pid));
	EXPECT_EQ(0, sn_consumer_close(c));
	close(sock);
	EXPECT_EQ(0, sn_channel_close(ch));
}

/*
 * A receiver whose socket adds credentials (SO_PASSCRED), over a
 * SOCK_SEQPACKET socket: still one channel per message, nothing leaked.
 */
TEST(recv_with_credentials_seqpacket)
{
	struct sn_channel_info info;
	struct sn_channel *ch, *got;
	int sv[2], one = 1, fds, i;

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_SEQPACKET, 0, sv));
	ASSERT_EQ(0, setsockopt(sv[1], SOL_SOCKET, SO_PASSCRED, &one,
				sizeof(one)));
	ASSERT_EQ(0, sn_channel_create(&ch, SN_CHANNEL_OPTS(
		.slots = 16, .flags = SN_BACKEND_MEMFD)));
	fds = t_fd_count();
	for (i = 0; i < 3; i++)
		ASSERT_EQ(0, sn_channel_send_fd(ch, sv[0], SN_ROLE_FULL, 0));
	for (i = 0; i < 3; i++) {
		ASSERT_EQ(0, sn_channel_recv_fd(&got, sv[1], 0));
		ASSERT_EQ(0, sn_channel_info(got, &info));
		EXPECT_EQ(16, info.slots);
		EXPECT_EQ(0, sn_channel_close(got));
	}
	EXPECT_EQ(fds, t_fd_count());
	close(sv[0]);
	EXPECT_EQ(-ECONNRESET, sn_channel_recv_fd(&got, sv[1], 0));
	close(sv[1]);
	EXPECT_EQ(0, sn_channel_close(ch));
}

/* What is not a channel on the socket: -EPROTO, and every fd closed. */
TEST(recv_rejects_garbage)
{
	struct {
		__u32 magic;
		__u16 version, role;
		__u32 backend, lane;
	} hdr = { 0x48436e53U, 1, SN_ROLE_FULL, SN_BACKEND_KERNEL, 0 };
	char cbuf[CMSG_SPACE(2 * sizeof(int))];
	struct iovec iov = { &hdr, sizeof(hdr) };
	struct msghdr mh = { .msg_iov = &iov, .msg_iovlen = 1 };
	struct sn_channel *ch = NULL;
	struct cmsghdr *cm;
	int sv[2], fds, nul[2];

	ASSERT_EQ(0, socketpair(AF_UNIX, SOCK_STREAM, 0, sv));
	fds = t_fd_count();
	/* bytes without an fd */
	ASSERT_EQ(5, write(sv[0], "hello", 5));
	EXPECT_EQ(-EPROTO, sn_channel_recv_fd(&ch, sv[1], 0));
	EXPECT_NE(NULL, strstr(sn_last_error(), "not a channel"));
	/* the header with two fds */
	nul[0] = open("/dev/null", O_RDONLY);
	nul[1] = open("/dev/null", O_RDONLY);
	mh.msg_control = cbuf;
	mh.msg_controllen = sizeof(cbuf);
	cm = CMSG_FIRSTHDR(&mh);
	cm->cmsg_level = SOL_SOCKET;
	cm->cmsg_type = SCM_RIGHTS;
	cm->cmsg_len = CMSG_LEN(2 * sizeof(int));
	memcpy(CMSG_DATA(cm), nul, sizeof(nul));
	ASSERT_EQ((ssize_t)sizeof(hdr), sendmsg(sv[0], &mh, 0));
	close(nul[0]);
	close(nul[1]);
	EXPECT_EQ(-EPROTO, sn_channel_recv_fd(&ch, sv[1], 0));
	/* the header with one fd that is no ring */
	nul[0] = open("/dev/null", O_RDONLY);
	cm->cmsg_len = CMSG_LEN(sizeof(int));
	mh.msg_controllen = CMSG_SPACE(sizeof(int));
	memcpy(CMSG_DATA(cm), nul, sizeof(int));
	ASSERT_EQ((ssize_t)sizeof(hdr), sendmsg(sv[0], &mh, 0));
	close(nul[0]);
	EXPECT_EQ(-EINVAL, sn_channel_recv_fd(&ch, sv[1], 0));
	EXPECT_EQ(NULL, ch);
	/* a wrong magic with an fd */
	hdr.magic = 0;
	nul[0] = open("/dev/null", O_RDONLY);
	memcpy(CMSG_DATA(cm), nul, sizeof(int));
	ASSERT_EQ((ssize_t)sizeof(hdr), sendmsg(sv[0], &mh, 0));
	close(nul[0]);
	EXPECT_EQ(-EPROTO, sn_channel_recv_fd(&ch, sv[1], 0));
	EXPECT_EQ(fds, t_fd_count());
	/* the sender went away */
	close(sv[0]);
	EXPECT_EQ(-ECONNRESET, sn_channel_recv_fd(&ch, sv[1], 0));
	EXPECT_EQ(-EINVAL, sn_channel_recv_fd(&ch, sv[1], 1));
	EXPECT_EQ(-EINVAL, sn_channel_recv_fd(NULL, sv[1], 0));
	close(sv[1]);
}

TEST_HARNESS_MAIN
