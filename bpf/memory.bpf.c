// SPDX-License-Identifier: GPL-2.0
/* The reflex arc, kernel side. Every change to a process's resident memory
 * counters fires rss_stat; when the process itself is the one faulting
 * (mm == current->mm), its resident memory is read from the counters and
 * compared with its armed threshold. At the first crossing, an in-kernel
 * rule sends its signal right there with bpf_send_signal, in the target's
 * own context, before the faulting thread returns to userspace; either way
 * the crossing goes to the ring buffer for userspace to record (or, for a
 * userspace rule, to decide). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memory.h"
#include "core_fixes.bpf.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000
/* /proc/<pid>/stat's start time is in USER_HZ ticks (100 a second) */
#define NSEC_PER_USER_HZ 10000000ull

/* reflexd's own tgid: never signalled, whatever the map says */
const volatile __u32 self_tgid = 0;
const volatile __u32 page_shift = 12;

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

/* Resident pages as /proc/<pid>/statm counts them: file + anon + shmem,
 * with get_mm_counter()'s lag (mm_counter_pages). */
static __always_inline __s64 resident_pages(struct mm_struct *mm)
{
	return mm_counter_pages(mm, MM_FILEPAGES) + mm_counter_pages(mm, MM_ANONPAGES) +
	       mm_counter_pages(mm, MM_SHMEMPAGES);
}

/* rss_stat(struct mm_struct *mm, int member); before 6.2 also long count,
 * the counter's new value, not read: the threshold is on their sum */
SEC("tp_btf/rss_stat")
int BPF_PROG(reflex_rss, struct mm_struct *mm, int member)
{
	struct task_struct *task = bpf_get_current_task_btf();
	struct reflex_crossing *e;
	struct reflex_arm *arm;
	__u32 tgid = task->tgid;
	__s64 pages;
	__u64 rss, crossed_ns;
	int err = 0;
	bool send;

	/* only the process itself growing: a signal sent here hits it */
	if (mm != task->mm)
		return 0;
	arm = bpf_map_lookup_elem(&armed, &tgid);
	if (!arm || arm->fired)
		return 0;
	pages = resident_pages(mm);
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

/* Process tracking for arming: exec, rename and exit reported to
 * userspace, so that it never walks /proc but at start and when the rules
 * change. Quiet while no memory rule is loaded (userspace sets watching). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} task_events SEC(".maps");

bool watching = false;

static __always_inline void task_event(struct task_struct *p, __u32 what)
{
	struct reflex_task_event *e;

	if (!watching)
		return;
	e = bpf_ringbuf_reserve(&task_events, sizeof(*e), 0);
	if (!e) {
		drop(REFLEX_MEMORY_DROP_TASK_EVENTS);
		return;
	}
	e->tgid = p->tgid;
	e->what = what;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), p->group_leader->comm);
	bpf_ringbuf_submit(e, 0);
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid,
 *                    struct linux_binprm *bprm) */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(memory_exec, struct task_struct *p)
{
	task_event(p, REFLEX_TASK_EXEC);
	return 0;
}

/* sched_process_exit(struct task_struct *p), with bool group_dead since
 * 6.16 (not read): the leader's exit stands for the process's */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(memory_exit, struct task_struct *p)
{
	if (p->pid == p->tgid)
		task_event(p, REFLEX_TASK_EXIT);
	return 0;
}

/* task_rename(struct task_struct *task, const char *comm): fires before
 * the new name is copied, so the event carries the new one */
SEC("tp_btf/task_rename")
int BPF_PROG(memory_rename, struct task_struct *task, const char *comm)
{
	struct reflex_task_event *e;

	if (!watching || task->pid != task->tgid)
		return 0;
	e = bpf_ringbuf_reserve(&task_events, sizeof(*e), 0);
	if (!e) {
		drop(REFLEX_MEMORY_DROP_TASK_EVENTS);
		return 0;
	}
	e->tgid = task->tgid;
	e->what = REFLEX_TASK_RENAME;
	bpf_probe_read_kernel_str(e->comm, sizeof(e->comm), comm);
	bpf_ringbuf_submit(e, 0);
	return 0;
}
