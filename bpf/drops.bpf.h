/* SPDX-License-Identifier: GPL-2.0 */
/* What a BPF object could not keep (a full map, a full ring buffer), the
 * same way in every object: a per-CPU array `drops`, one slot per reason
 * its wire header names (REFLEX_<S>_DROP_*, fewer than REFLEX_DROPS_MAX),
 * summed over the CPUs and reported by one reader (sensor_drops_report,
 * sense/sensor.c): a log line and reflexd_sensor_drops_total. Per CPU, so
 * that a storm of drops on many CPUs never bounces one cache line. */
#ifndef REFLEX_BPF_DROPS_BPF_H
#define REFLEX_BPF_DROPS_BPF_H

#include "drops.h"

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, REFLEX_DROPS_MAX);
	__type(key, __u32);
	__type(value, __u64);
} drops SEC(".maps");

/* One more drop for reason. Atomic even per CPU: a program interrupted on
 * its CPU by another (a softirq's) may be counting too. */
static __always_inline void drop(__u32 reason)
{
	__u64 *n = bpf_map_lookup_elem(&drops, &reason);

	if (n)
		__sync_fetch_and_add(n, 1);
}

#endif
