// SPDX-License-Identifier: MIT
/*
 * spsc_threads: two threads, one SPSC channel.
 *
 * The producer thread sends the numbers 1..N and closes its producer; the
 * main thread receives until the end of the stream (-EPIPE: every
 * producer gone and the ring drained) and checks that every number came,
 * once and in order. sn_send()/sn_recv() spin, yield, then sleep while
 * the ring is full or empty; the hot path makes no system call.
 *
 *   spsc_threads [kernel|memfd]   (default: kernel when /dev/sn exists)
 *
 * Build: make examples (links build/libsn.a: -luring -lpthread).
 */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include <sn/channel.h>

#define N 100000ULL

struct msg {
	__u64 seq;
	char note[24];
};

static void *producer(void *arg)
{
	struct sn_producer *p = arg;
	struct msg m = { .note = "hello from the producer" };
	int ret = 0;

	for (m.seq = 1; m.seq <= N && !ret; m.seq++)
		ret = sn_send(p, &m, SN_WAIT_FOREVER);
	sn_producer_close(p);		/* the end of the stream */
	return ret ? "send failed" : NULL;
}

int main(int argc, char **argv)
{
	unsigned int flags = argc > 1 && !strcmp(argv[1], "memfd") ?
		SN_BACKEND_MEMFD : argc > 1 ? SN_BACKEND_KERNEL : 0;
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	struct msg m, last = { 0 };
	__u64 got = 0;
	pthread_t t;
	void *err;
	int ret;

	ret = sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC,
			.slots = 1024, .slot_size = sizeof(m), .flags = flags));
	if (ret) {
		fprintf(stderr, "spsc_threads: sn_channel_create: %s. %s\n",
			strerror(-ret), sn_last_error());
		return 1;
	}
	/* handles are opened here and each is used by one thread */
	if (sn_producer_open(ch, &p) || sn_consumer_open(ch, &c) ||
	    pthread_create(&t, NULL, producer, p)) {
		fprintf(stderr, "spsc_threads: cannot open or start\n");
		return 1;
	}
	while ((ret = sn_recv(c, &m, SN_WAIT_FOREVER)) == 0) {
		if (m.seq != ++got) {
			fprintf(stderr, "spsc_threads: got %llu, expected %llu\n",
				(unsigned long long)m.seq,
				(unsigned long long)got);
			return 1;
		}
		last = m;
	}
	pthread_join(t, &err);
	if (ret != -EPIPE || err || got != N) {
		fprintf(stderr, "spsc_threads: %s after %llu messages\n",
			err ? (char *)err : strerror(-ret),
			(unsigned long long)got);
		return 1;
	}
	printf("spsc_threads: %llu messages in order over a %s channel: \"%s\"\n",
	       (unsigned long long)got, sn_backend_name(sn_channel_backend(ch)),
	       last.note);
	sn_consumer_close(c);
	return sn_channel_close(ch) ? 1 : 0;
}
