/* SPDX-License-Identifier: MIT */
/*
 * Partitioners: which worker a key goes to (include/sn/pool.h documents
 * each one's balance and movement on resize).
 *
 *   hash   splitmix64's finaliser, then multiply-shift range reduction
 *   ring   a consistent-hash ring of vnodes points per bucket, sorted;
 *          a key goes to the first point at or after its hash (wrapping)
 *   jump   Lamping and Veach, "A Fast, Minimal Memory, Consistent Hash
 *          Algorithm" (2014), over the mixed key
 *   round robin and custom callbacks
 */
#include <errno.h>
#include <stdlib.h>

#include <sn/pool.h>

#include "internal.h"

#define SN_PART_MAX_BUCKETS	65536U

struct sn_ring_point {
	__u64 hash;
	__u32 bucket;
	__u32 pad;
};

struct sn_partitioner {
	unsigned int kind;
	unsigned int n;
	sn_partition_fn fn;
	void *arg;
	struct sn_ring_point *points;	/* SN_PART_RING, sorted by hash */
	size_t npoints;
};

SN_API __u64 sn_mix64(__u64 x)
{
	return sn__mix64(x);
}

SN_API __u32 sn_jump_hash(__u64 key, __u32 n)
{
	__s64 b = -1, j = 0;

	if (!n)
		return 0;
	while (j < (__s64)n) {
		b = j;
		key = key * 2862933555777941757ULL + 1;
		j = (__s64)((double)(b + 1) *
			    ((double)(1LL << 31) / (double)((key >> 33) + 1)));
	}
	return (__u32)b;
}

static int sn_point_cmp(const void *a, const void *b)
{
	const struct sn_ring_point *x = a, *y = b;

	if (x->hash != y->hash)
		return x->hash < y->hash ? -1 : 1;
	/* equal hashes (next to impossible): a fixed order all the same */
	return x->bucket < y->bucket ? -1 : x->bucket > y->bucket;
}

/* A point depends only on (seed, bucket, vnode): adding bucket n leaves
 * every other point where it was. */
static __u64 sn_point_hash(__u64 seed, __u32 bucket, __u32 vnode)
{
	return sn_mix64(sn_mix64(seed ^ 0x736e2d72696e67ULL) ^
			(((__u64)bucket << 32) | vnode));
}

SN_API int sn_partitioner_create(struct sn_partitioner **out,
				 const struct sn_partitioner_config *cfg,
				 unsigned int n)
{
	struct sn_partitioner *p;
	unsigned int vnodes, b, v;

	if (!out || !cfg || !n || n > SN_PART_MAX_BUCKETS ||
	    cfg->kind > SN_PART_CUSTOM ||
	    (cfg->kind == SN_PART_CUSTOM && !cfg->fn))
		return -EINVAL;
	vnodes = cfg->vnodes ? cfg->vnodes : SN_RING_VNODES_DEFAULT;
	if (cfg->kind == SN_PART_RING && vnodes > SN_RING_VNODES_MAX)
		return -EINVAL;
	p = calloc(1, sizeof(*p));
	if (!p)
		return -ENOMEM;
	p->kind = cfg->kind;
	p->n = n;
	p->fn = cfg->fn;
	p->arg = cfg->arg;
	if (p->kind == SN_PART_RING) {
		p->npoints = (size_t)n * vnodes;
		p->points = calloc(p->npoints, sizeof(*p->points));
		if (!p->points) {
			free(p);
			return -ENOMEM;
		}
		for (b = 0; b < n; b++)
			for (v = 0; v < vnodes; v++) {
				struct sn_ring_point *pt =
					&p->points[(size_t)b * vnodes + v];

				pt->hash = sn_point_hash(cfg->seed, b, v);
				pt->bucket = b;
			}
		qsort(p->points, p->npoints, sizeof(*p->points), sn_point_cmp);
	}
	*out = p;
	return 0;
}

SN_API void sn_partitioner_destroy(struct sn_partitioner *p)
{
	if (!p)
		return;
	free(p->points);
	free(p);
}

SN_API unsigned int sn_partitioner_buckets(const struct sn_partitioner *p)
{
	return p ? p->n : 0;
}

static unsigned int sn_ring_lookup(const struct sn_partitioner *p, __u64 h)
{
	size_t lo = 0, hi = p->npoints;

	/* the first point with hash >= h */
	while (lo < hi) {
		size_t mid = lo + (hi - lo) / 2;

		if (p->points[mid].hash < h)
			lo = mid + 1;
		else
			hi = mid;
	}
	return p->points[lo == p->npoints ? 0 : lo].bucket;
}

SN_API unsigned int sn_partition(const struct sn_partitioner *p, __u64 key,
				 __u64 *cursor)
{
	switch (p->kind) {
	case SN_PART_HASH:
		return sn_reduce(sn__mix64(key), p->n);
	case SN_PART_RING:
		return sn_ring_lookup(p, sn_mix64(key));
	case SN_PART_JUMP:
		return sn_jump_hash(sn_mix64(key), p->n);
	case SN_PART_ROUND_ROBIN:
		if (cursor)
			key = (*cursor)++;
		return (unsigned int)(key % p->n);
	default:
		return p->fn(key, p->n, p->arg) % p->n;
	}
}
