# sn: top-level build. `make` builds everything, `make check` runs every
# test (static checks, host tests, guest selftests on three kernels).
# Build output goes to build/ (userspace) and kmod/ (kbuild's objects).

SN_VERSION := 0.1.0
SN_CACHE ?= /var/cache/sn
export SN_CACHE

# The kernel the module builds against: the running one's build tree when it
# has one, else Debian's 6.12 headers.
KDIR ?= $(firstword $(wildcard /lib/modules/$(shell uname -r)/build) \
	$(wildcard /usr/src/linux-headers-$(shell bash -c '. tools/lib/common.sh && debian_release 6.12')))

B := build
# kselftest_harness.h and kselftest.h, from linux-source-6.12 (tools/deps);
# a system include so its own -Wextra findings are not ours.
KSFT_DIR = $(shell bash -c '. tools/lib/common.sh && linux_src_dir')/tools/testing/selftests

CC ?= gcc
WARN := -Wall -Wextra -Werror
CFLAGS ?= -O2 -g
SN_CFLAGS := -std=c11 -D_GNU_SOURCE $(WARN) -Iinclude -Iinclude/uapi \
	-DSN_VERSION='"$(SN_VERSION)"'

LIBSN_SRCS := $(wildcard libsn/*.c)
LIBSN_OBJS := $(LIBSN_SRCS:libsn/%.c=$(B)/libsn/%.o)
LIBSN_HDRS := $(wildcard include/sn/*.h) include/uapi/linux/sn.h libsn/internal.h

# Selftests: HOST_TESTS run on the host and in the guests, GUEST_TESTS need
# sn.ko and run only in the guests. All are static so the guests need no
# shared libraries.
HOST_TESTS := libsn_test
GUEST_TESTS := dev_test ring_test
TEST_BINS := $(addprefix $(B)/selftests/,$(HOST_TESTS) $(GUEST_TESTS))

.PHONY: all deps module lib tests tools check bench clean
all: module lib tools tests

deps:
	@tools/deps

module: deps
	@test -n "$(KDIR)" || { echo "no kernel headers: run tools/deps" >&2; exit 1; }
	$(MAKE) -C $(KDIR) M=$(CURDIR) modules

lib: $(B)/libsn.a $(B)/libsn.so

$(B)/libsn/%.o: libsn/%.c $(LIBSN_HDRS)
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CFLAGS) -fPIC -fvisibility=hidden -c -o $@ $<

$(B)/libsn.a: $(LIBSN_OBJS)
	@rm -f $@
	$(AR) rcs $@ $^

$(B)/libsn.so.1: $(LIBSN_OBJS) libsn/libsn.map
	$(CC) -shared -Wl,-soname,libsn.so.1 -Wl,--version-script=libsn/libsn.map \
		-Wl,-z,defs -o $@ $(LIBSN_OBJS)

$(B)/libsn.so: $(B)/libsn.so.1
	ln -sf libsn.so.1 $@

tools:

tests: $(TEST_BINS)

$(B)/selftests/%: selftests/%.c $(B)/libsn.a $(LIBSN_HDRS) | deps
	@mkdir -p $(@D)
	$(CC) $(SN_CFLAGS) $(CFLAGS) -isystem $(KSFT_DIR) -static -o $@ $< $(B)/libsn.a -luring -lpthread

check: all
	@HOST_TESTS="$(HOST_TESTS)" GUEST_TESTS="$(GUEST_TESTS)" KDIR="$(KDIR)" tools/check

bench:
	@echo "make bench: the benchmark demo (snbench) is not built yet; it arrives with issue 7." >&2
	@exit 2

clean:
	rm -rf $(B)
	@if [ -n "$(KDIR)" ]; then $(MAKE) -C $(KDIR) M=$(CURDIR) clean >/dev/null; fi
