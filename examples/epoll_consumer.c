// SPDX-License-Identifier: MIT
/*
 * epoll_consumer: a consumer that sleeps in epoll_wait() on the ring fd,
 * as an event loop would, beside its other fds.
 *
 * A producer thread sends 1..N in bursts with pauses; the consumer drains
 * the ring with sn_try_recv() and, when it is empty, sleeps in epoll on
 * sn_consumer_fd(). Producers kick only a consumer that announced it
 * sleeps: sn_consumer_sleep_begin() announces, pays the sleeper's barrier
 * and looks once more (1: a message came meanwhile, do not sleep);
 * sn_consumer_sleep_end() withdraws after the wait. EPOLLIN: a message;
 * EPOLLHUP: every producer has gone.
 *
 * Only the kernel backend's ring fd is pollable (sn.ko). The memfd
 * backend's sleepers use futexes: there the example says so and waits in
 * sn_consumer_wait() instead.
 *
 *   epoll_consumer [kernel|memfd]  (default: kernel when /dev/sn exists)
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/epoll.h>
#include <time.h>

#include <sn/channel.h>

#define N 20000ULL
#define BURST 200
#define SEC 1000000000ULL

/* Sends 1..N in bursts, each published at once, with a pause after
 * each: the consumer drains a burst, then sleeps until the next. */
static void *producer(void *arg)
{
	struct sn_producer *p = arg;
	struct timespec pause = { 0, 2000000 };		/* 2 ms */
	__u64 burst[BURST], seq;
	int i, n;

	for (seq = 1; seq <= N; seq += BURST) {
		for (i = 0; i < BURST; i++)
			burst[i] = seq + i;
		n = sn_send_burst(p, burst, BURST);	/* as many as fit */
		for (i = n > 0 ? n : 0; i < BURST; i++)	/* the rest */
			if (sn_send(p, &burst[i], SN_WAIT_FOREVER))
				goto out;
		nanosleep(&pause, NULL);
	}
out:
	sn_producer_close(p);		/* the end of the stream: EPOLLHUP */
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int flags = argc > 1 && !strcmp(argv[1], "memfd") ?
		SN_BACKEND_MEMFD : argc > 1 ? SN_BACKEND_KERNEL : 0;
	struct epoll_event ev = { .events = EPOLLIN };
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u64 m, got = 0, sleeps = 0;
	int ret, epfd = -1;
	pthread_t t;

	ret = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
			.slots = 256, .slot_size = sizeof(m), .flags = flags));
	if (!ret)
		ret = sn_producer_open(ch, &p);
	if (!ret)
		ret = sn_consumer_open(ch, &c);
	if (ret) {
		fprintf(stderr, "epoll_consumer: %s. %s\n", strerror(-ret),
			sn_last_error());
		return 1;
	}
	if (sn_consumer_fd(c) >= 0) {
		epfd = epoll_create1(EPOLL_CLOEXEC);
		if (epfd < 0 ||
		    epoll_ctl(epfd, EPOLL_CTL_ADD, sn_consumer_fd(c), &ev)) {
			perror("epoll_consumer: epoll");
			return 1;
		}
	} else {
		printf("epoll_consumer: memfd backend: its fd is not pollable "
		       "(futexes), waiting in sn_consumer_wait() instead\n");
	}
	if (pthread_create(&t, NULL, producer, p))
		return 1;
	for (;;) {
		ret = sn_try_recv(c, &m);
		if (ret == -EAGAIN && epfd >= 0) {
			/* announce, so producers kick; 1: it came meanwhile */
			ret = sn_consumer_sleep_begin(c);
			if (ret == 0) {
				sleeps++;
				ret = epoll_wait(epfd, &ev, 1, 10000) == 1 ?
				      1 : -ETIMEDOUT;
				sn_consumer_sleep_end(c);
			}
			if (ret == 1 || ret == -EPIPE)
				continue;	/* woken: look again */
		} else if (ret == -EAGAIN) {
			sleeps++;
			ret = sn_consumer_wait(c, 10 * SEC);
			if (ret == 1 || ret == -EPIPE)
				continue;
		}
		if (ret)
			break;
		if (m != ++got) {
			fprintf(stderr, "epoll_consumer: got %llu, expected %llu\n",
				(unsigned long long)m, (unsigned long long)got);
			return 1;
		}
	}
	pthread_join(t, NULL);
	if (ret != -EPIPE || got != N) {
		fprintf(stderr, "epoll_consumer: %s after %llu messages\n",
			strerror(-ret), (unsigned long long)got);
		return 1;
	}
	printf("epoll_consumer: %llu messages in order, %llu sleeps in %s\n",
	       (unsigned long long)got, (unsigned long long)sleeps,
	       epfd >= 0 ? "epoll_wait" : "sn_consumer_wait");
	sn_consumer_close(c);
	return sn_channel_close(ch) ? 1 : 0;
}
