// SPDX-License-Identifier: MIT
/*
 * uring_consumer: uring_consumer.c with io_uring: the consumer sleeps on
 * a one-shot IORING_OP_POLL_ADD of the ring fd (io_uring_prep_poll_add()),
 * as a program whose I/O already runs on an io_uring would.
 *
 * A producer thread sends 1..N in bursts with pauses; the consumer drains
 * the ring with sn_try_recv() and, when it is empty, announces that it
 * sleeps (sn_consumer_sleep_begin(): producers kick only an announced
 * consumer; 1 means a message came meanwhile), submits the poll of
 * sn_consumer_fd() and waits for its completion, then withdraws
 * (sn_consumer_sleep_end()). POLLIN: a message; POLLHUP: every producer
 * has gone.
 *
 * Only the kernel backend's ring fd is pollable (sn.ko). The memfd
 * backend's sleepers use futexes: there the example says so and waits in
 * sn_consumer_wait() instead.
 *
 *   uring_consumer [kernel|memfd]  (default: kernel when /dev/sn exists)
 */
#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <liburing.h>

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
	sn_producer_close(p);		/* the end of the stream: POLLHUP */
	return NULL;
}

int main(int argc, char **argv)
{
	unsigned int flags = argc > 1 && !strcmp(argv[1], "memfd") ?
		SN_BACKEND_MEMFD : argc > 1 ? SN_BACKEND_KERNEL : 0;
	struct __kernel_timespec ts = { .tv_sec = 10 };
	struct io_uring_cqe *cqe;
	struct io_uring ring;
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	__u64 m, got = 0, sleeps = 0;
	int ret, uring = 0;
	pthread_t t;

	ret = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
			.slots = 256, .slot_size = sizeof(m), .flags = flags));
	if (!ret)
		ret = sn_producer_open(ch, &p);
	if (!ret)
		ret = sn_consumer_open(ch, &c);
	if (ret) {
		fprintf(stderr, "uring_consumer: %s. %s\n", strerror(-ret),
			sn_last_error());
		return 1;
	}
	if (sn_consumer_fd(c) >= 0) {
		ret = io_uring_queue_init(8, &ring, 0);
		if (ret) {
			fprintf(stderr, "uring_consumer: io_uring: %s\n",
				strerror(-ret));
			return 1;
		}
		uring = 1;
	} else {
		printf("uring_consumer: memfd backend: its fd is not pollable "
		       "(futexes), waiting in sn_consumer_wait() instead\n");
	}
	if (pthread_create(&t, NULL, producer, p))
		return 1;
	for (;;) {
		ret = sn_try_recv(c, &m);
		if (ret == -EAGAIN && uring) {
			/* announce, so producers kick; 1: it came meanwhile */
			ret = sn_consumer_sleep_begin(c);
			if (ret == 0) {
				io_uring_prep_poll_add(io_uring_get_sqe(&ring),
						       sn_consumer_fd(c), POLLIN);
				sleeps++;
				ret = io_uring_submit_and_wait_timeout(&ring,
						&cqe, 1, &ts, NULL) < 0 ||
				      cqe->res < 0 ? -ETIMEDOUT : 1;
				if (ret == 1)
					io_uring_cqe_seen(&ring, cqe);
				sn_consumer_sleep_end(c);
			}
			if (ret == 1 || ret == -EPIPE)
				continue;	/* POLLIN or POLLHUP */
		} else if (ret == -EAGAIN) {
			sleeps++;
			ret = sn_consumer_wait(c, 10 * SEC);
			if (ret == 1 || ret == -EPIPE)
				continue;
		}
		if (ret)
			break;
		if (m != ++got) {
			fprintf(stderr, "uring_consumer: got %llu, expected %llu\n",
				(unsigned long long)m, (unsigned long long)got);
			return 1;
		}
	}
	pthread_join(t, NULL);
	if (ret != -EPIPE || got != N) {
		fprintf(stderr, "uring_consumer: %s after %llu messages\n",
			strerror(-ret), (unsigned long long)got);
		return 1;
	}
	printf("uring_consumer: %llu messages in order, %llu sleeps in %s\n",
	       (unsigned long long)got, (unsigned long long)sleeps,
	       uring ? "io_uring" : "sn_consumer_wait");
	if (uring)
		io_uring_queue_exit(&ring);
	sn_consumer_close(c);
	return sn_channel_close(ch) ? 1 : 0;
}
