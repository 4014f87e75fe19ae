# Shared settings for sn's shell tools; sourced, never run.
# Everything downloaded or built outside git lives under SN_CACHE, keyed by
# version (and config), so a fresh clone on the same machine reuses it.
SN_CACHE=${SN_CACHE:-/var/cache/sn}
SN_TOP=$(cd "$(dirname "${BASH_SOURCE[0]}")/../../.." && pwd)

die() { echo "$(basename "$0"): $*" >&2; exit 1; }
note() { echo "$(basename "$0"): $*" >&2; }

# Holds the cache's lock until the calling script exits, so that two builds
# at once (two checkouts, two make runs) take turns filling SN_CACHE instead
# of unpacking into each other's files. A second caller waits, then finds
# the work done. Taking it again in the same script is a no-op.
sn_cache_locked=0
sn_cache_lock() {
	[ "$sn_cache_locked" = 0 ] || return 0
	mkdir -p "$SN_CACHE" ||
		die "cannot create $SN_CACHE (set SN_CACHE to a writable directory)"
	exec 9>>"$SN_CACHE/.lock"
	flock 9 || die "cannot lock $SN_CACHE/.lock"
	sn_cache_locked=1
}

# The Debian version of an installed package, or nothing.
pkg_version() { dpkg-query -W -f='${Status} ${Version}\n' "$1" 2>/dev/null | awk '/install ok installed/ {print $4}'; }

# Where linux-source-6.12 is unpacked (by tools/testing/deps).
linux_src_dir() { echo "$SN_CACHE/src/linux-source-$(pkg_version linux-source-6.12)"; }

# Guest kernels: 6.1 and 6.12 are Debian's, named by the header metapackage
# that pins their ABI; debug is built from linux-source-6.12.
SN_KERNELS="6.1 6.12 debug"
headers_meta() {
	case "$1" in
	6.1) echo linux-headers-amd64 ;;
	6.12) echo linux-headers-6.12-amd64 ;;
	*) die "no Debian headers package for kernel '$1'" ;;
	esac
}

# The uname -r of Debian kernel 6.1 or 6.12, from its headers metapackage.
debian_release() {
	dpkg-query -W -f='${Depends}' "$(headers_meta "$1")" 2>/dev/null |
		sed -n 's/^linux-headers-\([^ ,]*\).*/\1/p'
}
