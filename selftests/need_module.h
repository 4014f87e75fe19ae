/* SPDX-License-Identifier: MIT */
/*
 * For the tests of sn.ko itself (GUEST_TESTS in selftests/tests.mk):
 * without /dev/sn the whole binary skips (exit KSFT_SKIP, as kselftests do
 * where what they test is absent), so that `make -C selftests run_tests`
 * on a machine without the module reports skips, not failures. Where a
 * runner loaded the module (SN_KO set: tools/testing/vm/init), a missing
 * /dev/sn stays a failure of the tests. Include after kselftest_harness.h.
 */
#ifndef SN_SELFTESTS_NEED_MODULE_H
#define SN_SELFTESTS_NEED_MODULE_H

#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

static void __attribute__((constructor)) sn_need_module(void)
{
	if (access("/dev/sn", F_OK) == 0 || getenv("SN_KO"))
		return;
	printf("TAP version 13\n1..0 # SKIP /dev/sn absent: sn.ko is not loaded\n");
	fflush(stdout);
	_exit(KSFT_SKIP);
}

#endif
