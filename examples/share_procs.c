// SPDX-License-Identifier: MIT
/*
 * share_procs: two processes share a channel over a unix socket.
 *
 * The parent forks first, so the child holds nothing of the channel but
 * what it is sent. The parent creates an SPSC channel, opens its consumer
 * and sends the child the channel with sn_channel_send_fd() over a
 * socketpair(AF_UNIX, SOCK_SEQPACKET): on the kernel backend as a
 * producer-only fd (sn.ko lets the child write its lane and nothing else);
 * on the memfd backend, which cannot enforce roles, as a full fd
 * (sn_channel_info().roles_enforced says which). The child attaches with
 * sn_channel_recv_fd(), sends 1..N and exits; the parent receives until
 * the end of the stream and checks that every number came in order.
 *
 *   share_procs [kernel|memfd]    (default: kernel when /dev/sn exists)
 */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sn/channel.h>

#define N 100000ULL
#define SEC 1000000000ULL

struct msg {
	__u64 seq;
	__u64 pid;
};

static int child(int sock)
{
	struct sn_channel_info info;
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	struct msg m = { .pid = (__u64)getpid() };

	if (sn_channel_recv_fd(&ch, sock, 0) || sn_channel_info(ch, &info))
		return 1;
	printf("share_procs: child %d got a %s fd (%s backend, roles %s)\n",
	       getpid(), info.role == SN_ROLE_PRODUCER ? "producer" : "full",
	       sn_backend_name((int)info.backend),
	       info.roles_enforced ? "enforced by sn.ko" : "not enforced");
	fflush(stdout);
	/* a producer fd may not consume: the kernel refuses */
	if (info.roles_enforced && sn_consumer_open(ch, &c) != -EPERM)
		return 2;
	if (sn_producer_open(ch, &p))
		return 3;
	for (m.seq = 1; m.seq <= N; m.seq++)
		if (sn_send(p, &m, 10 * SEC))
			return 4;
	sn_producer_close(p);		/* the end of the stream */
	return sn_channel_close(ch) ? 5 : 0;
}

int main(int argc, char **argv)
{
	unsigned int flags = argc > 1 && !strcmp(argv[1], "memfd") ?
		SN_BACKEND_MEMFD : argc > 1 ? SN_BACKEND_KERNEL : 0;
	struct sn_channel_info info;
	struct sn_channel *ch;
	struct sn_consumer *c;
	struct msg m = { 0 };
	__u64 got = 0;
	int sv[2], ret, status = 0;
	pid_t pid;

	if (socketpair(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0, sv)) {
		perror("share_procs: socketpair");
		return 1;
	}
	pid = fork();
	if (pid == 0) {
		close(sv[0]);
		_exit(child(sv[1]));
	}
	close(sv[1]);

	ret = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
			.slot_size = sizeof(m), .flags = flags));
	if (!ret)
		ret = sn_channel_info(ch, &info);
	if (!ret)
		ret = sn_consumer_open(ch, &c);
	if (!ret)	/* SN_LANE_ANY: whichever lane is free */
		ret = sn_channel_send_fd(ch, sv[0], info.roles_enforced ?
					 SN_ROLE_PRODUCER : SN_ROLE_FULL,
					 SN_LANE_ANY);
	if (ret) {
		fprintf(stderr, "share_procs: %s. %s\n", strerror(-ret),
			sn_last_error());
		return 1;
	}
	while ((ret = sn_recv(c, &m, 10 * SEC)) == 0)
		if (m.seq != ++got || m.pid != (__u64)pid) {
			fprintf(stderr, "share_procs: message %llu is wrong\n",
				(unsigned long long)got);
			return 1;
		}
	if (waitpid(pid, &status, 0) != pid || !WIFEXITED(status) ||
	    WEXITSTATUS(status) || ret != -EPIPE || got != N) {
		fprintf(stderr, "share_procs: %s after %llu messages, child status %#x\n",
			strerror(-ret), (unsigned long long)got, status);
		return 1;
	}
	printf("share_procs: parent %d received %llu messages in order from child %d\n",
	       getpid(), (unsigned long long)got, pid);
	sn_consumer_close(c);
	return sn_channel_close(ch) ? 1 : 0;
}
