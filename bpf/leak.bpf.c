// SPDX-License-Identifier: GPL-2.0
/* Leak sensor, kernel side: per-process memory counters that cost nothing
 * per malloc and nothing per syscall. rss_stat fires when a resident-memory
 * counter of an mm changes (a page fault, an unmap, reclaim); the program
 * then copies the process's counters from its mm: resident file, anon,
 * swap and shmem pages, and data_vm, the pages of private writable
 * mappings (what brk, anonymous mmap and mremap grow a heap by, touched or
 * not). malloc and free themselves are never seen here: a malloc that
 * reuses memory makes no page fault. Userspace samples the map and judges
 * the trend (sense/leak_trend.c). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "leak.h"
#include "core_fixes.bpf.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_EXITING 0x00000004
#define PF_KTHREAD 0x00200000

const volatile __u32 page_shift = 12;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_LEAK_PROCS_MAX);
	__type(key, __u32);   /* tgid */
	__type(value, struct reflex_leak_proc);
} procs SEC(".maps");

/* rss_stat(struct mm_struct *mm, int member). Only the current task's own
 * mm: other mms change from reclaim or fork, and their owner's next own
 * change brings the whole picture anyway. Exiting tasks and kernel threads
 * never create an entry (an exit's unmaps must not bring back the entry
 * sched_process_exit removed). The counters read as get_mm_counter() and
 * /proc read them (mm_counter_pages). Before 6.2 the tracepoint has a
 * third argument, the counter's new value: not needed, not read. */
SEC("tp_btf/rss_stat")
int BPF_PROG(rss_stat, struct mm_struct *mm, int member)
{
	struct task_struct *task = bpf_get_current_task_btf();
	__u32 tgid = task->tgid;
	struct reflex_leak_proc *p, fresh = {};

	if (mm != task->mm)
		return 0;
	p = bpf_map_lookup_elem(&procs, &tgid);
	if (!p) {
		if (task->flags & (PF_EXITING | PF_KTHREAD))
			return 0;
		fresh.start_ns = task->group_leader->start_time;
		if (bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST) &&
		    !bpf_map_lookup_elem(&procs, &tgid)) {
			drop(REFLEX_LEAK_DROP_PROCS);
			return 0;
		}
		p = bpf_map_lookup_elem(&procs, &tgid);
		if (!p)
			return 0;
	}
	p->rss[REFLEX_LEAK_FILE] = mm_counter_pages(mm, MM_FILEPAGES) << page_shift;
	p->rss[REFLEX_LEAK_ANON] = mm_counter_pages(mm, MM_ANONPAGES) << page_shift;
	p->rss[REFLEX_LEAK_SWAP] = mm_counter_pages(mm, MM_SWAPENTS) << page_shift;
	p->rss[REFLEX_LEAK_SHMEM] = mm_counter_pages(mm, MM_SHMEMPAGES) << page_shift;
	p->data_vm = mm->data_vm << page_shift;
	return 0;
}

/* A new program image has a new mm: start over. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(process_exec, struct task_struct *task, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = task->tgid;

	bpf_map_delete_elem(&procs, &tgid);
	return 0;
}

/* The last thread of a process is gone (signal->live reached zero): so is
 * its state. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(process_exit, struct task_struct *task)
{
	__u32 tgid = task->tgid;

	if (task->signal->live.counter == 0)
		bpf_map_delete_elem(&procs, &tgid);
	return 0;
}
