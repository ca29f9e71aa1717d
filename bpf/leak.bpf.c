// SPDX-License-Identifier: GPL-2.0
/* Leak sensor, kernel side: per-process memory counters that cost nothing
 * per malloc and nothing per syscall. The program on rss_stat that fills
 * them is shared with the memory reflex (rss.bpf.c); procs is its map,
 * which the loader gives this object too (bpf_map__reuse_fd), so that a
 * process's entry goes at its exec and exit. malloc and free themselves
 * are never seen here: a malloc that reuses memory makes no page fault. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "leak.h"

char LICENSE[] SEC("license") = "GPL";

#include "leak_procs.bpf.h"

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
