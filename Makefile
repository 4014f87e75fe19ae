# sn: top-level build. `make` builds everything, `make check` runs every
# test (static checks, host tests, guest selftests on three kernels).
# Build output goes to build/ (userspace) and kmod/ (kbuild's objects).

SN_VERSION := 0.2.0
SN_CACHE ?= /var/cache/sn
export SN_CACHE

# The kernel the module builds against: the running one's build tree when it
# has one, else Debian's 6.12 headers.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(wildcard /usr/src/linux-headers-$(shell bash -c '. tools/testing/lib/common.sh && debian_release 6.12')))

B := build
# kselftest_harness.h and kselftest.h, from linux-source-6.12
# (tools/testing/deps); a system include so its own -Wextra findings are not
# ours.
KSFT_DIR = $(shell bash -c '. tools/testing/lib/common.sh && linux_src_dir')/tools/testing/selftests

CC ?= gcc
WARN := -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
SN_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Iinclude/uapi \
	-DSN_VERSION='"$(SN_VERSION)"'

LIBSN_SRCS := $(wildcard libsn/*.c)
LIBSN_OBJS := $(LIBSN_SRCS:libsn/%.c=$(B)/libsn/%.o)
LIBSN_HDRS := $(wildcard include/sn/*.h) include/uapi/linux/sn.h libsn/internal.h
TEST_HDRS := $(wildcard selftests/*.h)

# Selftests: HOST_TESTS run on the host and in the guests, GUEST_TESTS need
# sn.ko and run only in the guests (selftests/tests.mk names them, for
# selftests/Makefile too). All are static so the guests need no shared
# libraries.
include selftests/tests.mk
TEST_BINS := $(addprefix $(B)/selftests/,$(HOST_TESTS) $(GUEST_TESTS))

.PHONY: all deps deps-tests deps-module deps-check module lib bridge tests tools check bench clean \
	sanitize fuzz examples install uninstall
all: module lib bridge tools tests examples

# What each step needs, installed when missing (tools/testing/deps GROUP):
# deps for make lib, tools and examples (gcc, liburing, snbench's peers),
# deps-tests adds the kselftest headers (linux-source), deps-module the
# kernel headers, deps-check what make check's own steps use; the guest
# stack is asked for by tools/testing/vm/run. SN_DEPS=0 skips them (package
# builds, whose Build-Depends dpkg-checkbuilddeps has checked).
SN_DEPS ?= 1
deps:
	@[ "$(SN_DEPS)" = 0 ] || tools/testing/deps build
deps-tests deps-module deps-check:
	@[ "$(SN_DEPS)" = 0 ] || tools/testing/deps $(@:deps-%=%)

module: deps-module
	@test -n "$(KDIR)" || { echo "no kernel headers: run tools/testing/deps" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

lib: $(B)/libsn.a $(B)/libsn.so $(B)/pkgconfig/libsn.pc

$(B)/libsn/%.o: libsn/%.c $(LIBSN_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(B)/libsn.a: $(LIBSN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libsn.so.1: $(LIBSN_OBJS) libsn/libsn.map
	$(CC) -shared -Wl,-soname,libsn.so.1 -Wl,--version-script=libsn/libsn.map \
		-Wl,-z,defs $(LDFLAGS) -o $@ $(LIBSN_OBJS) -luring -lpthread

$(B)/libsn.so: $(B)/libsn.so.1
	ln -sf libsn.so.1 $@

# libsn.pc from libsn/libsn.pc.in: @prefix@ @libdir@ @includedir@ @uapidir@
# @version@. The build tree's, for programs built against this checkout:
#   PKG_CONFIG_PATH=$PWD/build/pkgconfig pkg-config --cflags --libs libsn
# (run them with LD_LIBRARY_PATH=$PWD/build).
PC_SED = sed -e 's|@prefix@|$(1)|' -e 's|@libdir@|$(2)|' \
	-e 's|@includedir@|$(3)|' -e 's|@uapidir@|$(4)|' -e 's|@version@|$(SN_VERSION)|'

$(B)/pkgconfig/libsn.pc: libsn/libsn.pc.in Makefile
	@mkdir -p $(@D)
	$(call PC_SED,$(CURDIR),$${prefix}/$(B),$${prefix}/include,$${includedir}/uapi) $< >$@

# libsnbridge.pc (bridge/libsnbridge.pc.in: Requires libsn, so the build
# tree's libsn.pc comes with it), the same way:
#   PKG_CONFIG_PATH=$PWD/build/pkgconfig pkg-config --cflags --libs libsnbridge
$(B)/pkgconfig/libsnbridge.pc: bridge/libsnbridge.pc.in $(B)/pkgconfig/libsn.pc Makefile
	@mkdir -p $(@D)
	$(call PC_SED,$(CURDIR),$${prefix}/$(B),$${prefix}/include,) $< >$@
bridge: $(B)/pkgconfig/libsnbridge.pc

# libsnbridge (bridge/, include/sn/bridge.h): channels and pools across
# hosts over ZeroMQ, a library of its own so that libsn needs no libzmq.
# sn-bridge (tools/snbridge/) runs one bridge from the command line.
BRIDGE_SRCS := $(wildcard bridge/*.c)
BRIDGE_OBJS := $(BRIDGE_SRCS:bridge/%.c=$(B)/bridge/%.o)
BRIDGE_HDRS := $(LIBSN_HDRS) $(wildcard bridge/*.h)
BRIDGE_LIBS := -lzmq -luring -lpthread

bridge: $(B)/libsnbridge.a $(B)/libsnbridge.so $(B)/sn-bridge

$(B)/bridge/%.o: bridge/%.c $(BRIDGE_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CPPFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(B)/libsnbridge.a: $(BRIDGE_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libsnbridge.so.1: $(BRIDGE_OBJS) bridge/libsnbridge.map $(B)/libsn.so
	$(CC) -shared -Wl,-soname,libsnbridge.so.1 \
		-Wl,--version-script=bridge/libsnbridge.map -Wl,-z,defs $(LDFLAGS) \
		-o $@ $(BRIDGE_OBJS) -L$(B) -lsn -lzmq -lpthread

$(B)/libsnbridge.so: $(B)/libsnbridge.so.1
	ln -sf libsnbridge.so.1 $@

$(B)/sn-bridge: tools/snbridge/snbridge.c $(B)/libsnbridge.a $(B)/libsn.a $(BRIDGE_HDRS) | deps
	$(CC) $(SN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) -o $@ $< \
		$(B)/libsnbridge.a $(B)/libsn.a $(BRIDGE_LIBS)

# The bridge tests (selftests/tests.mk's BRIDGE_TESTS): host only, as root,
# in network namespaces of their own; linked dynamically (libzmq has no
# complete static build), so in build/bridge-tests/, not build/selftests/
# (every file of which the guests run).
BRIDGE_TEST_BINS := $(addprefix $(B)/bridge-tests/,$(BRIDGE_TESTS))
# bridge_test runs the command-line bridge too (../sn-bridge from its folder).
$(B)/bridge-tests/bridge_test: $(B)/sn-bridge
$(B)/bridge-tests/%: selftests/%.c $(B)/libsnbridge.a $(B)/libsn.a $(BRIDGE_HDRS) $(TEST_HDRS) | deps-tests
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CFLAGS) -isystem $(KSFT_DIR) -o $@ $< $(B)/libsnbridge.a \
		$(B)/libsn.a $(BRIDGE_LIBS)

# snbench and snstat (tools/). snbench links the peers it measures from
# their Debian packages (tools/testing/deps): DPDK's rte_ring (on plain
# memory, no EAL), Concurrency Kit's ck_ring and liburing. snstat is static:
# the guests run it too (tools/testing/vm/run copies it to /snstat for
# snstat_test); SNSTAT_STATIC= links it dynamically (debian/rules).
# CPPFLAGS and LDFLAGS (empty here) take dpkg-buildflags' hardening.
SNBENCH_SRCS := $(wildcard tools/snbench/*.c)
SNBENCH_HDRS := $(wildcard tools/snbench/*.h)
DPDK_CFLAGS = $(filter -I%,$(shell pkg-config --cflags libdpdk 2>/dev/null)) -include rte_config.h
SNBENCH_LIBS := -lrte_ring -lrte_eal -lck -luring -lpthread

tools: $(B)/snbench $(B)/snbench-static $(B)/snstat

# The bridge scenario (bench_bridge.c) needs libsnbridge and libzmq: only
# this dynamic snbench has it (SNBENCH_BRIDGE); snbench-static's rows say
# they are not in that build (libzmq has no complete static build).
$(B)/snbench: $(SNBENCH_SRCS) $(SNBENCH_HDRS) $(B)/libsn.a $(B)/libsnbridge.a $(BRIDGE_HDRS) | deps
	$(CC) $(SN_CFLAGS) -DSNBENCH_BRIDGE $(CPPFLAGS) $(CFLAGS) $(DPDK_CFLAGS) $(LDFLAGS) -o $@ \
		$(SNBENCH_SRCS) $(B)/libsnbridge.a $(B)/libsn.a -lzmq $(SNBENCH_LIBS)

# The same snbench, static, for the guests (tools/testing/vm/run --add
# build/snbench-static -- ./snbench-static wakeup): every peer included.
# DPDK's EAL brings its own dependencies; ld warns that EAL's dlopen,
# getaddrinfo and getpwuid need glibc's shared libraries at run time:
# harmless, snbench never initialises the EAL (rte_ring on plain memory).
SNBENCH_STATIC_LIBS := -lrte_ring -lrte_eal -lrte_kvargs -lrte_telemetry \
	-lck -luring -lnuma -lbsd -lmd -lpthread -ldl
$(B)/snbench-static: $(SNBENCH_SRCS) $(SNBENCH_HDRS) $(B)/libsn.a $(LIBSN_HDRS) | deps
	$(CC) $(SN_CFLAGS) $(CFLAGS) $(DPDK_CFLAGS) -static -o $@ $(SNBENCH_SRCS) $(B)/libsn.a $(SNBENCH_STATIC_LIBS)

SNSTAT_STATIC ?= -static
$(B)/snstat: tools/snstat/snstat.c | deps
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CPPFLAGS) $(CFLAGS) $(LDFLAGS) $(SNSTAT_STATIC) -o $@ $<

# snstat_test runs build/snstat (../snstat from its own folder).
$(B)/selftests/snstat_test: $(B)/snstat

# make check's smoke tests of snbench and snstat (host; tools/testing/check),
# built with the tests. In build/, not build/selftests/, whose every file
# the guests run.
# It runs build/sn-bridge end to end too, taking channel ends from its
# sockets (sn_channel_recv_fd(): libsn).
$(B)/snbench_smoke: selftests/snbench_smoke.c selftests/run_capture.h selftests/bridge_attach.h $(B)/libsn.a \
		$(LIBSN_HDRS) $(B)/sn-bridge | deps-tests
	$(CC) $(SN_CFLAGS) $(CFLAGS) -isystem $(KSFT_DIR) -o $@ $< $(B)/libsn.a \
		-luring -lpthread

tests: $(TEST_BINS) $(BRIDGE_TEST_BINS) $(B)/snbench_smoke

# The examples (examples/), static like the tests (libsn.a linked in), so
# the guests run them too (tools/testing/vm/run copies them to /examples).
# pool_test runs wordcount; examples_test runs the channel examples on each
# backend (host and guests).
EXAMPLES := $(addprefix $(B)/examples/,wordcount spsc_threads share_procs \
	epoll_consumer uring_consumer)
examples: $(EXAMPLES)
$(B)/examples/%: examples/%.c $(B)/libsn.a $(LIBSN_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CFLAGS) -static -o $@ $< $(B)/libsn.a -luring -lpthread
$(B)/selftests/pool_test $(B)/selftests/examples_test: $(EXAMPLES)

$(B)/selftests/%: selftests/%.c $(B)/libsn.a $(LIBSN_HDRS) $(TEST_HDRS) | deps-tests
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CFLAGS) -isystem $(KSFT_DIR) -static -o $@ $< $(B)/libsn.a -luring -lpthread

# The channel tests again under ASan+UBSan and under TSan (build/asan/,
# build/tsan/): libsn's sources compiled into each test, dynamically linked
# (the sanitizers' runtimes do not link statically). tools/testing/check
# runs them.
SAN_TESTS := channel_test channel_block_test pool_test peer_test memfd_dead_test lane_peek_test \
	wake_stress_test record_test buf_test share_test
SAN_CFLAGS := -O1 -g -fno-omit-frame-pointer
ASAN_FLAGS := -fsanitize=address,undefined -fno-sanitize-recover=undefined
TSAN_FLAGS := -fsanitize=thread
SAN_BINS := $(addprefix $(B)/asan/,$(SAN_TESTS)) $(addprefix $(B)/tsan/,$(SAN_TESTS))
# The bridge's protocol test too (no namespaces), with libsnbridge's sources;
# libzmq is not instrumented: tools/testing/lib/tsan.supp.
SAN_BRIDGE_TESTS := bridge_wire_test
SAN_BINS += $(addprefix $(B)/asan/,$(SAN_BRIDGE_TESTS)) $(addprefix $(B)/tsan/,$(SAN_BRIDGE_TESTS))

sanitize: $(SAN_BINS)

$(B)/asan/%: selftests/%.c $(LIBSN_SRCS) $(LIBSN_HDRS) $(TEST_HDRS) | deps-tests
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(SAN_CFLAGS) $(ASAN_FLAGS) -isystem $(KSFT_DIR) -o $@ $< $(LIBSN_SRCS) -luring -lpthread

$(B)/tsan/%: selftests/%.c $(LIBSN_SRCS) $(LIBSN_HDRS) $(TEST_HDRS) | deps-tests
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(SAN_CFLAGS) $(TSAN_FLAGS) -isystem $(KSFT_DIR) -o $@ $< $(LIBSN_SRCS) -luring -lpthread

$(addprefix $(B)/asan/,$(SAN_BRIDGE_TESTS)): $(B)/asan/%: selftests/%.c $(LIBSN_SRCS) $(BRIDGE_SRCS) $(BRIDGE_HDRS) $(TEST_HDRS) | deps-tests
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(SAN_CFLAGS) $(ASAN_FLAGS) -isystem $(KSFT_DIR) -o $@ $< $(LIBSN_SRCS) $(BRIDGE_SRCS) $(BRIDGE_LIBS)

$(addprefix $(B)/tsan/,$(SAN_BRIDGE_TESTS)): $(B)/tsan/%: selftests/%.c $(LIBSN_SRCS) $(BRIDGE_SRCS) $(BRIDGE_HDRS) $(TEST_HDRS) | deps-tests
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(SAN_CFLAGS) $(TSAN_FLAGS) -isystem $(KSFT_DIR) -o $@ $< $(LIBSN_SRCS) $(BRIDGE_SRCS) $(BRIDGE_LIBS)

# libFuzzer over an adversarial ring (clang; not part of make check).
FUZZ_SECONDS ?= 60
FUZZ_CC ?= clang
$(B)/fuzz/ring_fuzz: fuzz/ring_fuzz.c $(LIBSN_SRCS) $(LIBSN_HDRS)
	@command -v $(FUZZ_CC) >/dev/null || { echo "make fuzz needs clang: apt-get install clang" >&2; exit 1; }
	@mkdir -p $(@D)
	$(FUZZ_CC) -std=c11 -D_GNU_SOURCE -Iinclude -Iinclude/uapi -DSN_VERSION='"$(SN_VERSION)"' \
		-g -O1 -fsanitize=fuzzer,address,undefined -o $@ $< $(LIBSN_SRCS) -luring

fuzz: $(B)/fuzz/ring_fuzz
	@mkdir -p $(B)/fuzz/corpus
	$(B)/fuzz/ring_fuzz -max_total_time=$(FUZZ_SECONDS) -timeout=10 -rss_limit_mb=2048 $(B)/fuzz/corpus

check: deps-check all sanitize
	@HOST_TESTS="$(HOST_TESTS)" BRIDGE_TESTS="$(BRIDGE_TESTS)" GUEST_TESTS="$(GUEST_TESTS)" SAN_TESTS="$(SAN_TESTS) $(SAN_BRIDGE_TESTS)" KDIR="$(KDIR)" tools/testing/check

# The main job: the short snbench suite, libsn against its peers in one run
# (at most 2 minutes on 2 cores). BENCH_ARGS passes options to snbench
# (e.g. BENCH_ARGS="--plot build/bench.png" or "--json").
bench: $(B)/snbench
	$(B)/snbench $(BENCH_ARGS)

# make install / make uninstall, like liburing's: PREFIX (/usr/local),
# DESTDIR, LIBDIR, INCLUDEDIR, BINDIR, MANDIR, and SRCDIR for sn.ko's
# source for DKMS ($(SRCDIR)/sn-$(SN_VERSION); dkms looks in /usr/src, so
# PREFIX=/usr or SRCDIR=/usr/src). The uapi header goes to
# $(INCLUDEDIR)/sn/uapi/linux/sn.h, not over the kernel headers' own
# directory; libsn.pc's Cflags put $(INCLUDEDIR)/sn/uapi on the include
# path, so <linux/sn.h> resolves. libsnbridge (libsnbridge.so.1, .so, .a,
# libsnbridge.pc: Requires libsn) and sn-bridge go next to libsn and the
# tools. uninstall removes the files that install
# put (as this tree lists them) and the directories only sn uses, when
# empty; shared ones (bin, lib/pkgconfig, man/manN) stay.
PREFIX ?= /usr/local
LIBDIR ?= $(PREFIX)/lib
INCLUDEDIR ?= $(PREFIX)/include
BINDIR ?= $(PREFIX)/bin
MANDIR ?= $(PREFIX)/share/man
SRCDIR ?= $(PREFIX)/src
INSTALL ?= install

# Man pages: whatever man/man{1,3,4,7} hold, to $(MANDIR)/manN/.
MAN_PAGES = $(wildcard $(foreach s,1 3 4 7,man/man$(s)/*.$(s)))
PUBLIC_HDRS = $(wildcard include/sn/*.h)
# sn.ko's DKMS source tree: the checkout's layout, so that the top-level
# Kbuild and kmod/Kbuild (-I../include/uapi) work unchanged there.
KMOD_FILES = kmod/Kbuild $(filter-out %.mod.c,$(wildcard kmod/*.c)) $(wildcard kmod/*.h)
DKMS_SRC = $(DESTDIR)$(SRCDIR)/sn-$(SN_VERSION)
# The installed libsn.pc's paths, relative to ${prefix} where they are
# under it (pkg-config --define-prefix and sysroots then work).
pc_rel = $(patsubst $(PREFIX)/%,$${prefix}/%,$(1))

# install builds what it installs without the deps step, which would fetch
# the test kernels and QEMU: libsn needs liburing-dev, libsnbridge and
# sn-bridge libzmq3-dev, snbench libdpdk-dev and libck-dev.
BRIDGE_INSTALL = $(B)/libsnbridge.so.1 $(B)/libsnbridge.a $(B)/sn-bridge
install:
	@$(MAKE) -o deps lib $(BRIDGE_INSTALL) $(B)/snbench $(B)/snstat
	@mkdir -p $(B)/install
	$(call PC_SED,$(PREFIX),$(call pc_rel,$(LIBDIR)),$(call pc_rel,$(INCLUDEDIR)),$${includedir}/sn/uapi) \
		libsn/libsn.pc.in >$(B)/install/libsn.pc
	$(call PC_SED,$(PREFIX),$(call pc_rel,$(LIBDIR)),$(call pc_rel,$(INCLUDEDIR)),) \
		bridge/libsnbridge.pc.in >$(B)/install/libsnbridge.pc
	sed 's|@SN_VERSION@|$(SN_VERSION)|' kmod/Makefile.dkms >$(B)/install/Makefile
	sed 's|^PACKAGE_VERSION=.*|PACKAGE_VERSION="$(SN_VERSION)"|' dkms.conf >$(B)/install/dkms.conf
	$(INSTALL) -d $(DESTDIR)$(LIBDIR)/pkgconfig $(DESTDIR)$(INCLUDEDIR)/sn/uapi/linux \
		$(DESTDIR)$(BINDIR) $(DKMS_SRC)/kmod $(DKMS_SRC)/include/uapi/linux
	$(INSTALL) -m 755 $(B)/libsn.so.1 $(DESTDIR)$(LIBDIR)/libsn.so.1
	ln -sf libsn.so.1 $(DESTDIR)$(LIBDIR)/libsn.so
	$(INSTALL) -m 644 $(B)/libsn.a $(DESTDIR)$(LIBDIR)/libsn.a
	$(INSTALL) -m 644 $(B)/install/libsn.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libsn.pc
	$(INSTALL) -m 755 $(B)/libsnbridge.so.1 $(DESTDIR)$(LIBDIR)/libsnbridge.so.1
	ln -sf libsnbridge.so.1 $(DESTDIR)$(LIBDIR)/libsnbridge.so
	$(INSTALL) -m 644 $(B)/libsnbridge.a $(DESTDIR)$(LIBDIR)/libsnbridge.a
	$(INSTALL) -m 644 $(B)/install/libsnbridge.pc $(DESTDIR)$(LIBDIR)/pkgconfig/libsnbridge.pc
	$(INSTALL) -m 644 $(PUBLIC_HDRS) $(DESTDIR)$(INCLUDEDIR)/sn/
	$(INSTALL) -m 644 include/uapi/linux/sn.h $(DESTDIR)$(INCLUDEDIR)/sn/uapi/linux/sn.h
	$(INSTALL) -m 755 $(B)/snbench $(B)/snstat $(B)/sn-bridge $(DESTDIR)$(BINDIR)/
	for f in $(MAN_PAGES); do \
		$(INSTALL) -D -m 644 $$f $(DESTDIR)$(MANDIR)/$${f#man/} || exit; \
	done
	$(INSTALL) -m 644 $(KMOD_FILES) $(DKMS_SRC)/kmod/
	$(INSTALL) -m 644 include/uapi/linux/sn.h $(DKMS_SRC)/include/uapi/linux/sn.h
	$(INSTALL) -m 644 Kbuild $(B)/install/Makefile $(B)/install/dkms.conf $(DKMS_SRC)/

uninstall:
	rm -f $(DESTDIR)$(LIBDIR)/libsn.so.1 $(DESTDIR)$(LIBDIR)/libsn.so \
		$(DESTDIR)$(LIBDIR)/libsn.a $(DESTDIR)$(LIBDIR)/pkgconfig/libsn.pc \
		$(DESTDIR)$(LIBDIR)/libsnbridge.so.1 $(DESTDIR)$(LIBDIR)/libsnbridge.so \
		$(DESTDIR)$(LIBDIR)/libsnbridge.a $(DESTDIR)$(LIBDIR)/pkgconfig/libsnbridge.pc \
		$(addprefix $(DESTDIR)$(INCLUDEDIR)/sn/,$(notdir $(PUBLIC_HDRS))) \
		$(DESTDIR)$(INCLUDEDIR)/sn/uapi/linux/sn.h \
		$(DESTDIR)$(BINDIR)/snbench $(DESTDIR)$(BINDIR)/snstat $(DESTDIR)$(BINDIR)/sn-bridge \
		$(patsubst man/%,$(DESTDIR)$(MANDIR)/%,$(MAN_PAGES)) \
		$(addprefix $(DKMS_SRC)/,$(KMOD_FILES) include/uapi/linux/sn.h Kbuild Makefile dkms.conf)
	rmdir $(DESTDIR)$(INCLUDEDIR)/sn/uapi/linux $(DESTDIR)$(INCLUDEDIR)/sn/uapi \
		$(DESTDIR)$(INCLUDEDIR)/sn $(DKMS_SRC)/kmod $(DKMS_SRC)/include/uapi/linux \
		$(DKMS_SRC)/include/uapi $(DKMS_SRC)/include $(DKMS_SRC) 2>/dev/null || true

clean:
	rm -rf $(B)
	@if [ -n "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(CURDIR) clean >/dev/null; fi
