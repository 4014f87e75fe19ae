/* SPDX-License-Identifier: MIT */
/*
 * Runs a command and captures its stdout: shared by the tests that run a
 * tool (selftests/snstat_test.c, selftests/snbench_smoke.c).
 */
#ifndef SN_SELFTESTS_RUN_CAPTURE_H
#define SN_SELFTESTS_RUN_CAPTURE_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

/*
 * Runs @path with @argv (NULL-terminated); returns its stdout (@both: and
 * its stderr, interleaved; malloc'd, NUL terminated; NULL when it could
 * not run) and its wait status in *@status.
 */
static char *run_capture_out(const char *path, char *const *argv,
			     int *status, int both)
{
	char *out = NULL;
	size_t len = 0, cap = 0;
	int fd[2];
	pid_t pid;
	ssize_t r;

	if (pipe(fd))
		return NULL;
	pid = fork();
	if (pid < 0)
		return NULL;
	if (!pid) {
		dup2(fd[1], 1);
		if (both)
			dup2(fd[1], 2);
		close(fd[0]);
		close(fd[1]);
		execv(path, argv);
		fprintf(stderr, "cannot run %s: %s\n", path, strerror(errno));
		_exit(127);
	}
	close(fd[1]);
	for (;;) {
		if (len + 4097 > cap) {
			cap = cap ? 2 * cap : 65536;
			out = realloc(out, cap);
			if (!out)
				break;
		}
		r = read(fd[0], out + len, cap - len - 1);
		if (r <= 0)
			break;
		len += (size_t)r;
	}
	close(fd[0]);
	if (out)
		out[len] = 0;
	waitpid(pid, status, 0);
	return out;
}

/* run_capture_out(), stdout only. */
static inline char *run_capture(const char *path, char *const *argv,
				int *status)
{
	return run_capture_out(path, argv, status, 0);
}

#endif
