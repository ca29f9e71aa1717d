// SPDX-License-Identifier: GPL-2.0
/* Leak attribution, kernel side: uprobes on glibc's malloc, calloc,
 * realloc and free in one process, for a bounded window (sense/leak.c
 * attaches them to the suspected pid only, and destroys this object
 * after). An allocation is remembered by address with its size and call
 * site; a free forgets it; each site keeps the bytes its allocations still
 * hold. Every call costs the process a uprobe trap (two for the
 * allocating ones), which is why this is never on in the steady state.
 * The counters are per CPU (the atomics below stay for a program preempted
 * on its CPU, but touch that CPU's own line only). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "allocs.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, REFLEX_ALLOCS_MAX);
	__type(key, __u64);   /* address */
	__type(value, struct reflex_alloc);
} allocs SEC(".maps");

/* Per CPU, as the stats below: a hot site's counters on one shared cache
 * line would bounce between the CPUs of every thread that allocates there
 * (a free may subtract on another CPU than its malloc added: userspace
 * sums the CPUs). */
struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_HASH);
	__uint(max_entries, REFLEX_ALLOC_SITES_MAX);
	__type(key, __u64);   /* return address of the call */
	__type(value, struct reflex_alloc_site);
} sites SEC(".maps");

/* A call in progress, by thread: what the return probe needs. depth
 * counts calls nested inside it (glibc's realloc(NULL, n) enters malloc
 * at the same address), which belong to the outer call. */
struct call {
	__u64 size;
	__u64 site;
	__u64 old;   /* realloc's old pointer */
	__u32 depth;
	__u32 pad;
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* tid */
	__type(value, struct call);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct reflex_alloc_stats);
} allocs_stats SEC(".maps");

static __always_inline struct reflex_alloc_stats *stats(void)
{
	__u32 zero = 0;

	return bpf_map_lookup_elem(&allocs_stats, &zero);
}

static __always_inline void count_call(void)
{
	struct reflex_alloc_stats *st = stats();

	if (st)
		__sync_fetch_and_add(&st->calls, 1);
}

/* The caller's return address, at the first instruction of the callee. */
static __always_inline __u64 return_address(struct pt_regs *ctx)
{
#if defined(__TARGET_ARCH_x86)
	__u64 ra = 0;

	bpf_probe_read_user(&ra, sizeof(ra), (void *)PT_REGS_SP(ctx));
	return ra;
#else
	return PT_REGS_RET(ctx);
#endif
}

static __always_inline void enter(struct pt_regs *ctx, __u64 size, __u64 old)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call c = { .size = size, .old = old }, *outer;

	count_call();
	outer = bpf_map_lookup_elem(&calls, &tid);
	if (outer) {
		outer->depth++;
		return;
	}
	c.site = return_address(ctx);
	if (bpf_map_update_elem(&calls, &tid, &c, BPF_ANY))
		drop(REFLEX_ALLOC_DROP_CALLS);
}

static __always_inline void forget(__u64 addr)
{
	struct reflex_alloc *a = bpf_map_lookup_elem(&allocs, &addr);
	struct reflex_alloc_site *s;

	if (!a)
		return;
	s = bpf_map_lookup_elem(&sites, &a->site);
	if (s) {
		__sync_fetch_and_add(&s->outstanding, -(__s64)a->size);
		__sync_fetch_and_add(&s->allocs, -1);
	}
	bpf_map_delete_elem(&allocs, &addr);
}

static __always_inline void remember(__u64 addr, const struct call *c)
{
	struct reflex_alloc a = { .size = c->size, .site = c->site };
	struct reflex_alloc_site fresh = {}, *s;

	s = bpf_map_lookup_elem(&sites, &a.site);
	if (!s) {
		bpf_map_update_elem(&sites, &a.site, &fresh, BPF_NOEXIST);
		s = bpf_map_lookup_elem(&sites, &a.site);
	}
	if (!s) {
		drop(REFLEX_ALLOC_DROP_SITES);
		return;
	}
	if (bpf_map_update_elem(&allocs, &addr, &a, BPF_ANY)) {
		drop(REFLEX_ALLOC_DROP_ALLOCS);
		return;
	}
	__sync_fetch_and_add(&s->outstanding, (__s64)a.size);
	__sync_fetch_and_add(&s->allocs, 1);
}

/* The call of this thread returned ptr: account for it, unless it was
 * nested in another one. */
static __always_inline void leave(__u64 ptr)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	struct call *c = bpf_map_lookup_elem(&calls, &tid), done;

	if (!c)
		return;
	if (c->depth) {
		c->depth--;
		return;
	}
	done = *c;
	bpf_map_delete_elem(&calls, &tid);
	if (!ptr)
		return; /* failed: realloc's old block is still there */
	if (done.old)
		forget(done.old);
	remember(ptr, &done);
}

SEC("uprobe")
int BPF_KPROBE(malloc_enter, __u64 size)
{
	enter(ctx, size, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(calloc_enter, __u64 n, __u64 size)
{
	enter(ctx, n * size, 0);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(realloc_enter, __u64 old, __u64 size)
{
	enter(ctx, size, old);
	return 0;
}

/* BPF_KPROBE/BPF_KRETPROBE read the same registers for uprobes (libbpf 1.1
 * has no BPF_UPROBE). */
SEC("uretprobe")
int BPF_KRETPROBE(alloc_return, __u64 ptr)
{
	leave(ptr);
	return 0;
}

SEC("uprobe")
int BPF_KPROBE(free_enter, __u64 ptr)
{
	count_call();
	if (ptr)
		forget(ptr);
	return 0;
}
