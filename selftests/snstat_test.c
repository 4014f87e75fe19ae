// SPDX-License-Identifier: MIT
/*
 * snstat in a guest: it lists a ring this test created, with the right
 * type, owner, geometry and depth, and says clearly when the module is
 * missing. The tests run the snstat program beside this binary's folder
 * (build/snstat on the host, /snstat in the guests, where
 * tools/testing/vm/run copies it; SNSTAT overrides) and read its --json
 * output. As an unprivileged user it lists that user's own rings only.
 */
#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <sn/channel.h>

#include "kselftest_harness.h"
#include "run_capture.h"

static char snstat[4096];

/*
 * $SNSTAT, else ../snstat from this binary's folder. Found before any test,
 * so that the unprivileged child need not read /proc/self/exe.
 */
static void __attribute__((constructor)) find_snstat(void)
{
	const char *env = getenv("SNSTAT");
	char *slash;
	ssize_t n;

	if (env) {
		snprintf(snstat, sizeof(snstat), "%s", env);
		return;
	}
	n = readlink("/proc/self/exe", snstat, sizeof(snstat) - 16);
	if (n <= 0) {
		strcpy(snstat, "snstat");
		return;
	}
	snstat[n] = 0;
	slash = strrchr(snstat, '/');
	strcpy(slash ? slash + 1 : snstat, "../snstat");
}

/* Runs snstat with @args; returns its stdout (malloc'd) and exit status. */
static char *run_snstat(const char *const *args, int *status)
{
	char *argv[8] = { "snstat" };
	int i;

	for (i = 0; args[i] && i < 6; i++)
		argv[i + 1] = (char *)args[i];
	return run_capture(snstat, argv, status);
}

/* The --json line of ring @id, or NULL. */
static char *ring_line(char *out, unsigned long long id)
{
	char key[64], *line, *save = NULL;

	snprintf(key, sizeof(key), "\"id\":%llu,", id);
	for (line = strtok_r(out, "\n", &save); line;
	     line = strtok_r(NULL, "\n", &save))
		if (strstr(line, key))
			return line;
	return NULL;
}

/* The integer field @name of a --json line (LLONG_MIN when absent). */
static long long json_num(const char *line, const char *name)
{
	char key[64];
	const char *p;

	snprintf(key, sizeof(key), "\"%s\":", name);
	p = strstr(line, key);
	return p ? strtoll(p + strlen(key), NULL, 10) : LLONG_MIN;
}

FIXTURE(ring) {
	struct sn_channel *ch;
	struct sn_producer *p;
	struct sn_consumer *c;
	struct sn_channel_info info;
};

FIXTURE_SETUP(ring)
{
	struct stat st;
	int r;

	self->ch = NULL;
	if (stat("/proc/sn/rings", &st))
		SKIP(return, "/proc/sn/rings missing: the sn module is not loaded");
	r = sn_channel_create(&self->ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 64, .slot_size = 32, .lanes = 1, .flags = SN_BACKEND_KERNEL));
	ASSERT_EQ(0, r);
	ASSERT_EQ(0, sn_producer_open(self->ch, &self->p));
	ASSERT_EQ(0, sn_consumer_open(self->ch, &self->c));
	ASSERT_EQ(0, sn_channel_info(self->ch, &self->info));
}

FIXTURE_TEARDOWN(ring)
{
	if (!self->ch)
		return;
	sn_producer_close(self->p);
	sn_consumer_close(self->c);
	sn_channel_close(self->ch);
}

/* snstat --json shows the ring with its depth, before and after receiving. */
TEST_F(ring, sees_ring_depth)
{
	static const char *const json[] = { "--json", NULL };
	unsigned char msg[32] = { 0 };
	char *out, *line;
	int i, st;

	for (i = 0; i < 37; i++) {
		msg[0] = (unsigned char)i;
		ASSERT_EQ(0, sn_try_send(self->p, msg));
	}
	out = run_snstat(json, &st);
	ASSERT_NE(NULL, out);
	ASSERT_TRUE(WIFEXITED(st));
	ASSERT_EQ(0, WEXITSTATUS(st));
	line = ring_line(out, self->info.id);
	ASSERT_NE(NULL, line) TH_LOG("ring %llu not listed: %s",
				     (unsigned long long)self->info.id, out);
	EXPECT_NE(NULL, strstr(line, "\"type\":\"spsc\""));
	EXPECT_EQ(37, json_num(line, "depth"));
	EXPECT_EQ(getpid(), json_num(line, "pid"));
	EXPECT_EQ(64, json_num(line, "slots"));
	EXPECT_EQ(32, json_num(line, "slot_size"));
	EXPECT_EQ(64, json_num(line, "capacity"));
	EXPECT_EQ(37, json_num(line, "sent"));
	free(out);

	for (i = 0; i < 10; i++)
		ASSERT_EQ(0, sn_try_recv(self->c, msg));
	out = run_snstat(json, &st);
	ASSERT_NE(NULL, out);
	line = ring_line(out, self->info.id);
	ASSERT_NE(NULL, line);
	EXPECT_EQ(27, json_num(line, "depth"));
	EXPECT_EQ(10, json_num(line, "received"));
	free(out);
}

/* The table lists it too, and -w with -n refreshes the given times. */
TEST_F(ring, table_and_watch)
{
	static const char *const table[] = { NULL };
	static const char *const watch[] = { "-w", "0.1", "-n", "2", "--json",
					     NULL };
	char *out, id[32];
	int st, lines = 0;
	char *p;

	snprintf(id, sizeof(id), " %llu ", (unsigned long long)self->info.id);
	out = run_snstat(table, &st);
	ASSERT_NE(NULL, out);
	EXPECT_EQ(0, WEXITSTATUS(st));
	EXPECT_NE(NULL, strstr(out, id)) TH_LOG("%s", out);
	free(out);
	out = run_snstat(watch, &st);
	ASSERT_NE(NULL, out);
	EXPECT_EQ(0, WEXITSTATUS(st));
	snprintf(id, sizeof(id), "\"id\":%llu,", (unsigned long long)self->info.id);
	for (p = out; (p = strstr(p, id)); p++)
		lines++;
	EXPECT_EQ(2, lines);
	free(out);
}

/*
 * snstat as an unprivileged user: its own ring is listed, root's is not
 * (the listing shows a ring only to its creator's uid and to root).
 */
static int nobody_lists_own(unsigned long long root_id)
{
	static const char *const json[] = { "--json", NULL };
	struct sn_channel_info info;
	struct sn_channel *ch;
	char *out;
	int st, ret = 0;

	if (setgid(65534) || setuid(65534))
		return 10;
	/* setuid made us non-dumpable; /proc/self stays ours. */
	if (prctl(PR_SET_DUMPABLE, 1, 0, 0, 0))
		return 11;
	if (sn_channel_create(&ch, SN_CHANNEL_OPTS(.type = SN_RING_SPSC, .slots = 16, .slot_size = 8, .lanes = 1, .flags = SN_BACKEND_KERNEL)))
		return 12;
	if (sn_channel_info(ch, &info))
		return 13;
	out = run_snstat(json, &st);
	if (!out || !WIFEXITED(st) || WEXITSTATUS(st))
		ret = 14;
	else if (!strstr(out, "\"id\":"))
		ret = 15;
	else if (ring_line(out, root_id))
		ret = 16;
	free(out);
	out = run_snstat(json, &st);
	if (!ret && (!out || !ring_line(out, info.id)))
		ret = 17;
	free(out);
	sn_channel_close(ch);
	return ret;
}

TEST_F(ring, nobody_sees_own_only)
{
	int status;
	pid_t pid = fork();

	ASSERT_LE(0, pid);
	if (pid == 0)
		_exit(nobody_lists_own(self->info.id));
	ASSERT_EQ(pid, waitpid(pid, &status, 0));
	ASSERT_TRUE(WIFEXITED(status));
	EXPECT_EQ(0, WEXITSTATUS(status));
}

/* A missing listing: exit status 2 and a message on stderr. */
TEST(missing_listing)
{
	static const char *const args[] = { "--file", "/nonexistent/sn/rings",
					    NULL };
	char *out;
	int st;

	out = run_snstat(args, &st);
	ASSERT_NE(NULL, out);
	EXPECT_TRUE(WIFEXITED(st));
	EXPECT_EQ(2, WEXITSTATUS(st));
	EXPECT_STREQ("", out);
	free(out);
}

TEST_HARNESS_MAIN
