/* SPDX-License-Identifier: MIT */
/*
 * What the tests that run sn-bridge share: a channel end from one of its
 * unix sockets, as a user's program gets it.
 */
#ifndef SN_BRIDGE_ATTACH_H
#define SN_BRIDGE_ATTACH_H

#include <errno.h>
#include <stdio.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <sn/channel.h>

/* A channel end from the sn-bridge socket at @path (SOCK_SEQPACKET): 0 or
 * a negative errno. */
static inline int bridge_attach(const char *path, struct sn_channel **ch)
{
	struct sockaddr_un a = { .sun_family = AF_UNIX };
	int fd, r;

	snprintf(a.sun_path, sizeof(a.sun_path), "%s", path);
	fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (connect(fd, (struct sockaddr *)&a, sizeof(a))) {
		r = -errno;
		close(fd);
		return r;
	}
	r = sn_channel_recv_fd(ch, fd, 0);
	close(fd);
	return r;
}

#endif /* SN_BRIDGE_ATTACH_H */
