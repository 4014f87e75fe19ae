/* SPDX-License-Identifier: MIT */
/*
 * Sharing a channel with another process: an fd for a role, and the
 * channel sent over a unix socket (SCM_RIGHTS) with a small header that
 * says what it is. The receiver attaches to what it got; its handles can
 * do what the fd's role allows, since sn.ko maps only that (memfd rings
 * have no roles: only SN_ROLE_FULL is shared, never silently more).
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
	n = sendmsg(sock, &mh, MSG_NOSIGNAL);
	if (n < 0)
		ret = -errno;
	else if ((size_t)n != sizeof(m))
		ret = -EPROTO;	/* cut short: the receiver cannot parse it */
	/* in flight the socket holds its own reference (and the role) */
	close(fd);
	return ret;
}

#ifndef SCM_PIDFD
#define SCM_PIDFD	0x04	/* Linux 6.5: SO_PASSPIDFD */
#endif

/*
 * Takes from @mh's control messages the one fd an SCM_RIGHTS message
 * carried alone (-1 if there is none, or more) and closes every other fd
 * they carried (SCM_RIGHTS, and a pidfd with SO_PASSPIDFD). Other control
 * messages (credentials with SO_PASSCRED, timestamps) are ignored.
 */
static int sn_share_take_fd(struct msghdr *mh)
{
	int fd = -1, rights = 0, x;
	struct cmsghdr *c;
	size_t i, n;

	for (c = CMSG_FIRSTHDR(mh); c; c = CMSG_NXTHDR(mh, c)) {
		if (c->cmsg_level != SOL_SOCKET ||
		    (c->cmsg_type != SCM_RIGHTS && c->cmsg_type != SCM_PIDFD))
			continue;
		n = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
		for (i = 0; i < n; i++) {
			memcpy(&x, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
			if (c->cmsg_type == SCM_RIGHTS && !rights++ && n == 1)
				fd = x;
			else
				close(x);
		}
	}
	if (rights > 1 && fd >= 0) {
		close(fd);
		fd = -1;
	}
	return fd;
}

SN_API int sn_channel_recv_fd(struct sn_channel **out, int sock,
			      unsigned int flags)
{
	/* room for the fd beside credentials, a pidfd and timestamps */
	union {
		struct cmsghdr h;
		char buf[CMSG_SPACE(sizeof(int)) + 256];
	} ctl;
	struct sn_share_msg m;
	struct iovec iov = { .iov_base = &m, .iov_len = sizeof(m) };
	struct msghdr mh = {
		.msg_iov = &iov,
		.msg_iovlen = 1,
		.msg_control = ctl.buf,
		.msg_controllen = sizeof(ctl.buf),
	};
	int fd, ret;
	ssize_t n;

	sn_why_clear();
	if (!out || flags)
		return -EINVAL;
	memset(&m, 0, sizeof(m));
	n = recvmsg(sock, &mh, MSG_CMSG_CLOEXEC);
	if (n < 0)
		return -errno;
	fd = sn_share_take_fd(&mh);
	if (n == 0 && fd < 0)
		return -ECONNRESET;	/* the sender closed its end */
	if ((mh.msg_flags & (MSG_CTRUNC | MSG_TRUNC)) ||
	    (size_t)n != sizeof(m) || m.magic != SN_SHARE_MAGIC ||
	    m.version != SN_SHARE_VERSION || fd < 0) {
		if (fd >= 0)
			close(fd);
		sn_why("socket %d: the message is not a channel sent by sn_channel_send_fd() (%zd bytes, %s)",
		       sock, n, fd < 0 ? "not one fd" : "a bad header");
		return -EPROTO;
	}
	ret = sn_channel_attach(out, fd, 0);
	close(fd);		/* the channel keeps its own duplicate */
	if (!ret && ((*out)->backend != m.backend || (*out)->role != m.role ||
		     (m.role == SN_ROLE_PRODUCER && (*out)->lane != m.lane))) {
		sn_channel_close(*out);
		*out = NULL;
		ret = -EPROTO;	/* not what the header said */
		sn_why("socket %d: the fd's role, lane or backend is not what its header says",
		       sock);
	}
	return ret;
}
