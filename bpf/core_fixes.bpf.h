/* SPDX-License-Identifier: GPL-2.0 */
/* Kernel structures and tracepoints whose shape changed between the
 * kernels reflexd runs on (5.15 to today), read through CO-RE guards: the
 * ___old flavours below describe the older shape, libbpf resolves each
 * guard against the running kernel's BTF at load time, and the verifier
 * never walks the branch the kernel does not have (docs/kernels.md). */
#ifndef REFLEX_BPF_CORE_FIXES_BPF_H
#define REFLEX_BPF_CORE_FIXES_BPF_H

#include <bpf/bpf_core_read.h>

/* Before 6.2 an mm's resident-page counters were atomic_long_t in one
 * struct mm_rss_stat; 6.2 made each a percpu_counter. */
struct mm_rss_stat___old {
	atomic_long_t count[NR_MM_COUNTERS];
} __attribute__((preserve_access_index));

struct mm_struct___old {
	struct mm_rss_stat___old rss_stat;
} __attribute__((preserve_access_index));

/* The pages counter `member` (MM_FILEPAGES...) of mm. From 6.2 the shared
 * total lags the per-CPU parts by at most the percpu_counter batch per
 * CPU; before, by the up to 64 pages each thread caches
 * (SPLIT_RSS_COUNTING) before it adds them in: what get_mm_counter() and
 * /proc read either way. From 6.2 a plain load (mm is a BTF pointer);
 * before, a probe read, as 6.1's verifier cannot walk a BTF pointer into
 * an array of atomic_long_t. A macro, not a function: member must reach
 * the CO-RE access as a constant, one relocated offset, never pointer
 * arithmetic the verifier refuses on a BTF pointer. An array of
 * percpu_counter does not match the old struct, so the guard is false
 * from 6.2 on. */
#define mm_counter_pages(mm, member)                                                          \
	(bpf_core_field_exists(((struct mm_struct___old *)(mm))->rss_stat)                    \
		 ? (__s64)BPF_CORE_READ((struct mm_struct___old *)(mm), rss_stat.count[member].counter) \
		 : (__s64)(mm)->rss_stat[member].count)

/* tcp_retransmit_skb gained its `int err` argument, and its own event
 * record with that field, after 6.12 (6.18 has both); before, the
 * tracepoint fired only for a retransmit that was sent. ctx is the tp_btf program's argument array. */
static __always_inline int tcp_retransmit_err(unsigned long long *ctx)
{
	if (bpf_core_field_exists(struct trace_event_raw_tcp_retransmit_skb, err))
		return (int)ctx[2];
	return 0;
}

#endif
