# SPDX-License-Identifier: MIT
# sn's selftests, named once for the top Makefile (build/selftests/, make
# check, the guests) and for selftests/Makefile (the kselftest form).
# HOST_TESTS run on the host and in the guests; GUEST_TESTS need sn.ko
# (/dev/sn) and skip without it.
HOST_TESTS := libsn_test channel_test channel_block_test pool_test peer_test memfd_dead_test \
	wake_stress_test record_test buf_test share_test examples_test lane_peek_test
GUEST_TESTS := dev_test ring_test kthread_test wake_test snstat_test dead_test
# BRIDGE_TESTS (libsnbridge, across network namespaces) run on the host
# only, as root: they need iproute2, ss and libzmq, which the guests lack.
BRIDGE_TESTS := bridge_test bridge_wire_test cluster_test
