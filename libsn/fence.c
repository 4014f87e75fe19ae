/* SPDX-License-Identifier: MIT */
/*
 * Which fence a process's fast sides use, and the heavy barrier of memfd
 * sleepers (the uapi header's "Sleeping and waking").
 *
 * Memfd rings have no sn.ko to interrupt the CPUs of their publishers, so
 * an SN_FENCE_ASYM memfd ring relies on membarrier(2): every process that
 * skips the fences registers for MEMBARRIER_CMD_GLOBAL_EXPEDITED (once,
 * when it first makes or attaches a channel), and a sleeper runs
 * MEMBARRIER_CMD_GLOBAL_EXPEDITED as its heavy barrier, which interrupts
 * every CPU running a registered process. Not PRIVATE_EXPEDITED: peers
 * may be other processes. A process that cannot register fences on every
 * send and release (always safe); one that cannot run the command at all
 * may not attach an ASYM ring. SN_FENCE=full in the environment makes a
 * process fence and create SN_FENCE_FULL rings, as does a kernel without
 * membarrier (before 4.16, CONFIG_MEMBARRIER=n, or a seccomp filter).
 */
#include <errno.h>
#include <linux/membarrier.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

static pthread_once_t sn_fence_once = PTHREAD_ONCE_INIT;
static int sn_fence_registered;	/* fast sides may skip fences */
static int sn_fence_heavy_ok;	/* GLOBAL_EXPEDITED runs here */

static long sn_membarrier(int cmd)
{
	return syscall(SYS_membarrier, cmd, 0, 0);
}

/*
 * A forked child's fast sides skip fences too (it inherits our handles and
 * this state): make sure its mm is registered whatever fork does with the
 * registration (exec clears it, and libsn starts over then). Cheap in a
 * child with one thread.
 */
static void sn_fence_child(void)
{
	if (sn_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
		sn_fence_registered = 0;
}

static void sn_fence_init(void)
{
	long q = sn_membarrier(MEMBARRIER_CMD_QUERY);

	if (q < 0 || !(q & MEMBARRIER_CMD_GLOBAL_EXPEDITED))
		return;
	sn_fence_heavy_ok = 1;
	if (sn_fence_env_full() ||
	    !(q & MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED))
		return;
	sn_fence_registered =
		!sn_membarrier(MEMBARRIER_CMD_REGISTER_GLOBAL_EXPEDITED);
	if (sn_fence_registered)
		pthread_atfork(NULL, NULL, sn_fence_child);
}

int sn_fence_process_asym(void)
{
	pthread_once(&sn_fence_once, sn_fence_init);
	return sn_fence_registered;
}

int sn_fence_memfd_attach_ok(void)
{
	pthread_once(&sn_fence_once, sn_fence_init);
	return sn_fence_heavy_ok;
}

int sn_fence_memfd_heavy(void)
{
	return sn_membarrier(MEMBARRIER_CMD_GLOBAL_EXPEDITED) ? -errno : 0;
}

int sn_fence_env_full(void)
{
	const char *env = getenv("SN_FENCE");

	return env && !strcmp(env, "full");
}

SN_API const char *sn_fence_name(int fence)
{
	switch (fence) {
	case SN_FENCE_FULL:
		return "full";
	case SN_FENCE_ASYM:
		return "asym";
	default:
		return "?";
	}
}
