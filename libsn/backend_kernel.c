/* SPDX-License-Identifier: MIT */
/*
 * The kernel backend: rings that sn.ko allocates (/dev/sn). The layout comes
 * from SN_IOC_INFO only; libsn checks it before mapping anything, and maps
 * each region with what the fd's role may do there (a mapping that holds a
 * page the role cannot write is read-only, the kernel refuses it else).
 */
#include <errno.h>
#include <sys/ioctl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <linux/sn.h>
#include <sn/channel.h>

#include "internal.h"

/* Kernel rings may be larger than what libsn creates (module parameters). */
#define SN_KERNEL_MAX_BYTES (1ULL << 40)

static int sn_kernel_map(struct sn_channel *ch)
{
	const struct sn_offsets *o = &ch->off;
	const int rw = PROT_READ | PROT_WRITE;
	__u64 lanes_bytes = o->lane_size * ch->geo.lanes;
	int ret;

	ret = sn_map_reserve(ch);
	if (ret)
		return ret;
	/* the kpage is read-only for every role */
	ret = sn_map_region(ch, o->kpage, ch->page, PROT_READ);
	if (ret)
		return ret;
	switch (ch->role) {
	case SN_ROLE_FULL:
		ret = sn_map_region(ch, o->cons, o->cons_size, rw);
		if (!ret)
			ret = sn_map_region(ch, o->lane0, lanes_bytes, rw);
		ch->readable = ~0ULL >> (64 - ch->geo.lanes);
		break;
	case SN_ROLE_CONSUMER:
		ret = sn_map_region(ch, o->cons, o->cons_size, rw);
		if (!ret)
			ret = sn_map_region(ch, o->lane0, lanes_bytes,
					    PROT_READ);
		ch->readable = ~0ULL >> (64 - ch->geo.lanes);
		break;
	default:	/* SN_ROLE_PRODUCER: its own lane only */
		ret = sn_map_region(ch, o->cons, o->cons_size, PROT_READ);
		if (!ret)
			ret = sn_map_region(ch, o->lane0 +
					    ch->lane * o->lane_size,
					    o->lane_size, rw);
		ch->readable = 1ULL << ch->lane;
		break;
	}
	return ret;
}

static int sn_kernel_info(int fd, struct sn_info *info)
{
	*info = (struct sn_info){ .size = sizeof(*info) };
	return ioctl(fd, SN_IOC_INFO, info) ? -errno : 0;
}

int sn_kernel_attach(struct sn_channel *ch)
{
	struct sn_info info;
	int ret;

	if (sn_kernel_info(ch->fd, &info))
		return 0;	/* not a kernel ring fd */
	/* a ring fd from here on: errors are errors, not another backend */
	if (info.size < SN_INFO_SIZE_VER0 || info.role > SN_ROLE_CONSUMER)
		return -EINVAL;
	ch->geo.type = info.type;
	ch->geo.slot_size = info.slot_size;
	ch->geo.slots = info.slots;
	ch->geo.lanes = info.lanes;
	/* a module without geo_flags (SN_INFO_SIZE_VER0) has no varlen */
	ch->geo.flags = info.size >= SN_INFO_SIZE_VER1 ?
			info.geo_flags & (SN_GEO_FORMAT3 | SN_GEO_VARLEN) :
			SN_GEO_FORMAT3;
	if (info.size >= SN_INFO_SIZE_VER1) {
		ch->geo.bufs = info.bufs;
		ch->geo.buf_size = info.buf_size;
	}
	if (sn_geometry_check(&ch->geo, SN_KERNEL_MAX_BYTES))
		return -EINVAL;
	/* libsn speaks format 3 only (slot headers: a stride above slot_size) */
	if (!(info.features & SN_FEAT_FORMAT3) ||
	    !(ch->geo.flags & SN_GEO_FORMAT3) ||
	    info.off.stride != sn_geo_stride(&ch->geo))
		return -EPROTONOSUPPORT;
	if (info.role == SN_ROLE_PRODUCER && info.lane >= info.lanes)
		return -EINVAL;
	ch->off = info.off;
	ret = sn_offsets_check(&ch->geo, &ch->off, ch->page);
	if (ret)
		return ret;
	ch->backend = SN_BACKEND_KERNEL;
	ch->role = info.role;
	ch->lane = info.role == SN_ROLE_PRODUCER ? info.lane : 0;
	ch->id = info.id;
	ret = sn_kernel_map(ch);
	return ret ? ret : 1;
}

int sn_kernel_create(struct sn_channel *ch, int devfd)
{
	struct sn_create cr = {
		.size = sizeof(cr),
		.type = ch->geo.type,
		.slot_size = ch->geo.slot_size,
		.slots = ch->geo.slots,
		.lanes = ch->geo.lanes,
		.bufs = ch->geo.bufs,
		.buf_size = ch->geo.buf_size,
		.flags = SN_CREATE_FORMAT3 |
			 (sn_fence_env_full() ? 0 : SN_CREATE_ASYM) |
			 (ch->geo.flags & SN_GEO_VARLEN ? SN_CREATE_VARLEN : 0),
	};
	int ret;

	ch->fd = ioctl(devfd, SN_IOC_CREATE, &cr);
	if (ch->fd < 0) {
		ch->fd = -1;
		return -errno;
	}
	ret = sn_kernel_attach(ch);
	if (ret == 0)
		return -EINVAL;	/* the module answered CREATE, not INFO */
	if (ret < 0)
		return ret;
	if (ch->role != SN_ROLE_FULL)
		return -EINVAL;
	return 0;
}

/*
 * A new fd of @role narrowed from our fd: a producer of @lane (or
 * SN_LANE_ANY) from our full-role fd, or a consumer from our full-role fd
 * or (MPMC) our consumer fd. *@which is the producer's lane or the MPMC
 * consumer's claim record (SN_CLAIM_NONE for other consumers) on return.
 * Returns the fd, -EPERM when our fd may not narrow so, or the kernel's
 * error.
 */
int sn_kernel_narrow(struct sn_channel *ch, __u32 role, __u32 lane,
		     __u32 *which)
{
	struct sn_narrow n = {
		.size = sizeof(n),
		.role = role,
		.lane = role == SN_ROLE_PRODUCER ? lane : 0,
	};
	struct sn_info info;
	int fd, ret;

	if (ch->role != SN_ROLE_FULL &&
	    !(ch->role == SN_ROLE_CONSUMER && role == SN_ROLE_CONSUMER &&
	      ch->geo.type == SN_RING_MPMC))
		return -EPERM;
	fd = ioctl(ch->fd, SN_IOC_NARROW, &n);
	if (fd < 0)
		return -errno;
	ret = sn_kernel_info(fd, &info);
	if (!ret && (info.role != role ||
		     (role == SN_ROLE_PRODUCER && info.lane >= ch->geo.lanes) ||
		     (role == SN_ROLE_CONSUMER && ch->geo.type == SN_RING_MPMC &&
		      info.claim >= SN_MAX_CLAIMS)))
		ret = -EINVAL;
	if (ret) {
		close(fd);
		return ret;
	}
	*which = role == SN_ROLE_PRODUCER ? info.lane : info.claim;
	return fd;
}
