// SPDX-License-Identifier: GPL-2.0
/* The one program on rss_stat, for the two sensors that read resident
 * memory there (docs/leak.md, docs/reflex.md): it fires when a
 * resident-memory counter of an mm changes (a page fault, an unmap,
 * reclaim), and it costs every process on the host, so it runs once, not
 * once per sensor. sense/rss.c loads it for whichever of the two starts
 * first and shares it.
 *
 * - The leak sensor (while `follow` is set): the process's counters are
 *   copied into procs: resident file, anon, swap and shmem pages, and
 *   data_vm, the pages of private writable mappings (what brk, anonymous
 *   mmap and mremap grow a heap by, touched or not). Userspace samples the
 *   map and judges the trend (sense/leak_trend.c); its own object
 *   (leak.bpf.c) shares procs and empties it at exec and exit.
 * - The reflex arc: a process armed in `armed` is compared with its
 *   threshold. At the first crossing, an in-kernel rule sends its signal
 *   right there with bpf_send_signal, in the target's own context, before
 *   the faulting thread returns to userspace; either way the crossing goes
 *   to the ring buffer for userspace to record (or, for a userspace rule,
 *   to decide). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "leak.h"
#include "memory.h"
#include "rss.h"
#include "core_fixes.bpf.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_EXITING 0x00000004
#define PF_KTHREAD 0x00200000
/* /proc/<pid>/stat's start time is in USER_HZ ticks (100 a second) */
#define NSEC_PER_USER_HZ 10000000ull

/* reflexd's own tgid: never signalled, whatever the map says */
const volatile __u32 self_tgid = 0;
const volatile __u32 page_shift = 12;

/* the leak sensor is running: procs is kept */
bool follow = false;

#include "leak_procs.bpf.h"

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_ARMED_MAX);
	__type(key, __u32);
	__type(value, struct reflex_arm);
} armed SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} crossings SEC(".maps");

/* The leak sensor's copy of the counters of the current process, whose mm
 * is mm. Exiting tasks and kernel threads never create an entry (an exit's
 * unmaps must not bring back the entry sched_process_exit removed). The
 * resident pages (file + anon + shmem), or -1 when none was kept. */
static __always_inline __s64 follow_counters(struct task_struct *task, struct mm_struct *mm,
					     __u32 tgid)
{
	struct reflex_leak_proc *p, fresh = {};
	__s64 file, anon, shmem;

	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p) {
		if (task->flags & (PF_EXITING | PF_KTHREAD))
			return -1;
		fresh.start_ns = task->group_leader->start_time;
		if (bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&procs, &tgid)) {
			drop(REFLEX_RSS_DROP_PROCS);
			return -1;
		}
		p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			return -1;
	}
	file = mm_counter_pages(mm, MM_FILEPAGES);
	anon = mm_counter_pages(mm, MM_ANONPAGES);
	shmem = mm_counter_pages(mm, MM_SHMEMPAGES);
	p->rss[REFLEX_LEAK_FILE] = file << page_shift;
	p->rss[REFLEX_LEAK_ANON] = anon << page_shift;
	p->rss[REFLEX_LEAK_SWAP] = mm_counter_pages(mm, MM_SWAPENTS) << page_shift;
	p->rss[REFLEX_LEAK_SHMEM] = shmem << page_shift;
	p->data_vm = mm->data_vm << page_shift;
	return file + anon + shmem;
}

/* rss_stat(struct mm_struct *mm, int member); before 6.2 also long count,
 * the counter's new value, not read: both sensors read the mm's counters
 * as get_mm_counter() and /proc read them (mm_counter_pages). Only the
 * current task's own mm: other mms change from reclaim or fork, and their
 * owner's next own change brings the whole picture anyway; and a signal
 * sent here hits the process that grew. */
SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct *mm, int member)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct reflex_crossing *e;
	struct reflex_arm *arm;
	__u32 tgid = task->tgid;
	__s64 pages = -1;
	__u64 rss, crossed_ns;
	int err = 0;
	bool send;

	if (mm != task->mm)
		return 0;
	if (follow)
		pages = follow_counters(task, mm, tgid);
	arm = bpf_map_lookup_elem(&armed, &tgid);
	if (!arm || arm->fired)
		return 0;
	/* resident as /proc/<pid>/statm counts it; the threshold is on the sum */
	if (pages < 0)
		pages = mm_counter_pages(mm, MM_FILEPAGES) + mm_counter_pages(mm, MM_ANONPAGES) +
			mm_counter_pages(mm, MM_SHMEMPAGES);
	if (pages <= 0)
		return 0;
	rss = (__u64)pages << page_shift;
	if (rss < arm->threshold_bytes)
		return 0;
	if (task->group_leader->start_boottime / NSEC_PER_USER_HZ != arm->start_time)
		return 0;
	/* once per arming, even when two threads cross at once (a 64-bit
	 * fetch-and-add is the atomic every BPF ISA version has) */
	if (__sync_fetch_and_add(&arm->fired, 1))
		return 0;
	crossed_ns = bpf_ktime_get_ns();
	/* defense in depth: protected targets are never armed, and these
	 * three are never signalled even if they were */
	send = (arm->flags & REFLEX_ARM_IN_KERNEL) && !(arm->flags & REFLEX_ARM_DRY_RUN) &&
	       tgid != 1 && tgid != self_tgid && !(task->flags & PF_KTHREAD);
	if (send)
		err = bpf_send_signal(arm->signal);
	e = bpf_ringbuf_reserve(&crossings, sizeof(*e), 0);
	if (!e)
		return 0;
	e->ktime_ns = crossed_ns;
	e->rss_bytes = rss;
	e->threshold_bytes = arm->threshold_bytes;
	e->tgid = tgid;
	e->tid = task->pid;
	e->start_time = arm->start_time;
	e->signal = send ? arm->signal : 0;
	e->send_err = err;
	e->flags = arm->flags;
	bpf_ringbuf_submit(e, 0);
	return 0;
}
