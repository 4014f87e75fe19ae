/* SPDX-License-Identifier: MIT */
/*
 * Sharing a channel with another process: an fd for a role, and the
 * channel sent over a unix socket (SCM_RIGHTS) with a small header that
 * says what it is. The receiver attaches to what it got; its handles can
 * do what the fd's role allows, since sn.ko maps only that (memfd rings
 * have no roles: only SN_ROLE_FULL is shared, never silently less).
 */
#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

#define SN_SHARE_MAGIC		0x48436e53U	/* "SnCH" */
#define SN_SHARE_VERSION	1

/* What travels beside the fd. */
struct sn_share_msg {
	__u32 magic;
	__u16 version;
	__u16 role;		/* enum sn_role of the fd */
	__u32 backend;		/* SN_BACKEND_* */
	__u32 lane;		/* SN_ROLE_PRODUCER: its lane */
};

/* sn_channel_share_fd(), and in *@lane the producer's lane (else 0). */
static int sn_share(struct sn_channel *ch, unsigned int role, __u32 *lane)
{
	__u32 which = 0;
	int fd;

	if (!ch || role > SN_ROLE_CONSUMER ||
	    (role == SN_ROLE_PRODUCER && *lane != SN_LANE_ANY &&
	     *lane >= ch->geo.lanes))
		return -EINVAL;
	if (role == SN_ROLE_FULL) {
		if (ch->role != SN_ROLE_FULL)
			return -EPERM;	/* never more than we have */
		fd = fcntl(ch->fd, F_DUPFD_CLOEXEC, 0);
		fd = fd < 0 ? -errno : fd;
	} else if (ch->backend == SN_BACKEND_MEMFD) {
		fd = -EOPNOTSUPP;	/* no role can be enforced */
	} else {
		fd = sn_kernel_narrow(ch, role, *lane, &which);
	}
	*lane = role == SN_ROLE_PRODUCER ? which : 0;
	return fd;
}

SN_API int sn_channel_share_fd(struct sn_channel *ch, unsigned int role,
			       unsigned int lane)
{
	__u32 l = lane;

	return sn_share(ch, role, &l);
}

SN_API int sn_channel_send_fd(struct sn_channel *ch, int sock,
			      unsigned int role, unsigned int lane)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int))];
	} ctl;
	struct sn_share_msg m = {
		.magic = SN_SHARE_MAGIC,
		.version = SN_SHARE_VERSION,
		.backend = ch ? ch->backend : 0,
	};
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c;
	__u32 l = lane;
	int fd, ret = 0;
	ssize_t n;

	fd = sn_share(ch, role, &l);
	if (fd < 0)
		return fd;
	m.role = (__u16)role;
	m.lane = l;
	memset(&ctl, 0, sizeof(ctl));
	c = CMSG_FIRSTHDR(&mh);
	c->cmsg_level = SOL_SOCKET;
	c->cmsg_type = SCM_RIGHTS;
	c->cmsg_len = CMSG_LEN(sizeof(int));
	memcpy(CMSG_DATA(c), &fd, sizeof(int));
	do {
		n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != sizeof(m))
		ret = -EPROTO;	/* a datagram socket cut it short */
	/* in flight the socket holds its own reference (and the role) */
	close(fd);
	return ret;
}

/* Closes every fd a control message carried. */
static void sn_share_close_fds(struct msghdr *mh)
{
	struct cmsghdr *c;
	size_t i, n;
	int fd;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS)
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			close(fd);
		}
	}
}

SN_API int sn_channel_recv_fd(struct sn_channel **out, int sock,
			      unsigned int flags)
{
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(4 * sizeof(int))];
	} ctl;
	struct sn_share_msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	struct cmsghdr *c;
	int fd = -1, ret;
	ssize_t n;

	sn_why_clear();
	if (!out || flags)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	do {
		n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	} while (n < 0 && errno == EINTR);
	if (n < 0)
		return -errno;
	if (n == 0 && !mh.msg_controllen)
		return -ECONNRESET;	/* the sender closed its end */
	c = CMSG_FIRSTHDR(&mh);
	if (!(mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) &&
	    (size_t)n == sizeof(m) && m.magic == SN_SHARE_MAGIC &&
	    m.version == SN_SHARE_VERSION && c && !CMSG_NXTHDR(&mh, c) &&
	    c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS &&
	    c->cmsg_len == CMSG_LEN(sizeof(int)))
		memcpy(&fd, CMSG_DATA(c), sizeof(int));
	if (fd < 0) {
		sn_share_close_fds(&mh);
		sn_why("socket %d: the message is not a channel sent by sn_channel_send_fd() (%zd bytes, %s)",
		       sock, n, c ? "not one fd" : "no fd");
		return -EPROTO;
	}
	ret = sn_channel_attach(out, fd, 0);
	close(fd);		/* the channel keeps its own duplicate */
	if (!ret && ((*out)->backend != m.backend || (*out)->role != m.role)) {
		sn_channel_close(*out);
		*out = NULL;
		ret = -EPROTO;	/* not what the header said */
		sn_why("socket %d: the fd's role or backend is not what its header says",
		       sock);
	}
	return ret;
}
