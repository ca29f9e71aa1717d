// SPDX-License-Identifier: GPL-2.0
/* The leak sensor's per-process counters, kept by rss.bpf.c's program and
 * emptied at exec and exit by leak.bpf.c: one map, which the loader gives
 * both objects (bpf_map__reuse_fd), so both define it from here. */
#ifndef REFLEX_LEAK_PROCS_BPF_H
#define REFLEX_LEAK_PROCS_BPF_H

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_LEAK_PROCS_MAX);
	__type(key, __u32);   /* tgid */
	__type(value, struct reflex_leak_proc);
} procs SEC(".maps");

#endif
