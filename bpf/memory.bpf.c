// SPDX-License-Identifier: GPL-2.0
/* The reflex arc, kernel side: what tells userspace which processes to arm.
 * The arming itself, and the program on rss_stat that fires at the
 * threshold, are shared with the leak sensor: rss.bpf.c. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "memory.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

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
