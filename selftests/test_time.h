/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Time and scale for the selftests: the monotonic clock, and the message
 * counts of stress tests scaled by SN_TEST_SCALE percent (emulated guests
 * and sanitizer builds run a fraction).
 */
#ifndef SN_SELFTESTS_TEST_TIME_H
#define SN_SELFTESTS_TEST_TIME_H

#include <stdlib.h>
#include <time.h>

#include <linux/types.h>

static inline unsigned long t_scaled(unsigned long n)
{
	const char *s = getenv("SN_TEST_SCALE");
	unsigned long pct = s ? strtoul(s, NULL, 10) : 100;

	n = n * (pct ? pct : 100) / 100;
	return n ? n : 1;
}

static inline __u64 t_now(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (__u64)ts.tv_sec * 1000000000ULL + (__u64)ts.tv_nsec;
}

#endif /* SN_SELFTESTS_TEST_TIME_H */
