// SPDX-License-Identifier: MIT
/*
 * Runs the channel examples (examples/, make examples) on each backend:
 * spsc_threads, share_procs, epoll_consumer and uring_consumer, each as
 * "NAME memfd" and, where /dev/sn exists, "NAME kernel". Each must exit
 * 0 and print the lines that say what it did (the backend it ran on, the
 * role the child got, where the consumer slept). wordcount, the pool's
 * example, is run by pool_test.
 *
 * The examples live in ../examples from this binary: build/examples on the
 * host, /examples in the guests (tools/testing/vm/run copies them).
 */
#include <libgen.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sn/channel.h>

#include "kselftest_harness.h"
#include "run_capture.h"

static int have_kernel(void)
{
	struct stat st;

	return stat(SN_DEVICE_PATH, &st) == 0;
}

/*
 * Runs examples/@name @backend; its stdout (malloc'd) or NULL when it is
 * not built; its wait status in *@status.
 */
static char *run_example(const char *name, const char *backend, int *status)
{
	char exe[PATH_MAX], prog[PATH_MAX + 64];
	ssize_t len = readlink("/proc/self/exe", exe, sizeof(exe) - 1);
	char *argv[] = { prog, (char *)backend, NULL };
	char *out, *line, *next;

	if (len <= 0)
		return NULL;
	exe[len] = 0;
	snprintf(prog, sizeof(prog), "%s/../examples/%s", dirname(exe), name);
	if (access(prog, X_OK))
		return NULL;
	out = run_capture(prog, argv, status);
	for (line = out; line && *line; line = next) {	/* as TAP comments */
		next = strchrnul(line, '\n');
		fprintf(stderr, "# %s %s: %.*s\n", name, backend,
			(int)(next - line), line);
		if (*next)
			next++;
	}
	return out;
}

/* The example must be built, exit 0 and print each of @want (NULL
 * terminated); "kernel" is skipped without /dev/sn. */
static void expect_example(struct __test_metadata *_metadata,
			   const char *name, const char *backend,
			   const char *const *want)
{
	char *out;
	int st = -1;

	if (!strcmp(backend, "kernel") && !have_kernel())
		SKIP(return, "no /dev/sn: the sn module is not loaded");
	out = run_example(name, backend, &st);
	ASSERT_NE(NULL, out) TH_LOG("examples/%s: not built (make examples)",
				    name);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(0, WEXITSTATUS(st));
	for (; *want; want++) {
		const char *w = *want;

		EXPECT_NE(NULL, strstr(out, w))
			TH_LOG("%s %s: no \"%s\"", name, backend, w);
	}
	free(out);
}

#define EXPECT_EXAMPLE(name, backend, ...)				\
	expect_example(_metadata, name, backend,			\
		       (const char *const[]){ __VA_ARGS__, NULL })

TEST(spsc_threads_memfd)
{
	EXPECT_EXAMPLE("spsc_threads", "memfd",
		       "100000 messages in order over a memfd channel");
}

TEST(spsc_threads_kernel)
{
	EXPECT_EXAMPLE("spsc_threads", "kernel",
		       "100000 messages in order over a kernel channel");
}

TEST(share_procs_memfd)
{
	EXPECT_EXAMPLE("share_procs", "memfd",
		       "got a full fd (memfd backend, roles not enforced)",
		       "received 100000 messages in order from child");
}

TEST(share_procs_kernel)
{
	EXPECT_EXAMPLE("share_procs", "kernel",
		       "got a producer fd (kernel backend, roles enforced by sn.ko)",
		       "received 100000 messages in order from child");
}

TEST(epoll_consumer_memfd)
{
	EXPECT_EXAMPLE("epoll_consumer", "memfd",
		       "memfd backend: its fd is not pollable",
		       "20000 messages in order",
		       "sleeps in sn_consumer_wait");
}

TEST(epoll_consumer_kernel)
{
	EXPECT_EXAMPLE("epoll_consumer", "kernel",
		       "20000 messages in order", "sleeps in epoll_wait");
}

TEST(uring_consumer_memfd)
{
	EXPECT_EXAMPLE("uring_consumer", "memfd",
		       "memfd backend: its fd is not pollable",
		       "20000 messages in order",
		       "sleeps in sn_consumer_wait");
}

TEST(uring_consumer_kernel)
{
	EXPECT_EXAMPLE("uring_consumer", "kernel",
		       "20000 messages in order", "sleeps in io_uring");
}

TEST_HARNESS_MAIN
