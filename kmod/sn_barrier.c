// SPDX-License-Identifier: GPL-2.0
/*
 * The heavy barrier H of the asymmetric sleep protocol (the uapi header's
 * "Sleeping and waking"): the publishers of an SN_FENCE_ASYM ring store
 * their index and load the sleepers' announcement with only a compiler
 * barrier between, so whoever announces (a sleeper's poll(), a thread
 * setting NEED_WAKEUP) runs a full barrier on every CPU that may run one.
 * It is the barrier of [W1], [W2], [K1], [T1] and [T2] on such rings (the
 * table of barriers in include/uapi/linux/sn.h).
 *
 * membarrier(2) is not exported to modules, and its choice of CPUs needs
 * the scheduler's private run queues; smp_call_function() is exported and
 * interrupts every other online CPU, a superset. Its handler's smp_mb()
 * orders the interrupted task's accesses before and after the interrupt;
 * a CPU running another task passed a full barrier in the context switch
 * since the fast side last ran there (membarrier's argument); a CPU that
 * comes online switches tasks before it runs a fast side. The caller's own
 * smp_mb() before and after makes H a full barrier here as well.
 */
#include <linux/moduleparam.h>
#include <linux/smp.h>

#include "sn.h"

bool sn_asym = true;
module_param_named(asym, sn_asym, bool, 0644);
MODULE_PARM_DESC(asym,
		 "New rings let publishers skip the full barrier; sleepers interrupt the other CPUs instead (SN_FENCE_ASYM) (bool, default Y)");

static void sn_ipi_mb(void *info)
{
	/* (b): the interrupted CPU's accesses before the IPI, then after */
	smp_mb();
}

/*
 * A full barrier here and, when @asym, on every other online CPU. Process
 * context with interrupts enabled (smp_call_function() waits for the
 * others); a spinlock may be held.
 */
void sn_heavy_barrier(bool asym)
{
	/* (a): the caller's announcement before any IPI is sent */
	smp_mb();
	if (!asym)
		return;
	smp_call_function(sn_ipi_mb, NULL, 1);
	/* (c): every CPU's barrier before the caller's re-check */
	smp_mb();
}
