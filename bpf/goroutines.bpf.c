// SPDX-License-Identifier: GPL-2.0
/* Goroutine sensor, kernel side. Entry uprobes on the Go runtime's
 * goroutine create (runtime.newproc1) and exit (runtime.goexit1) count per
 * process; nothing returns through a uretprobe (Go moves stacks, and a
 * hijacked return address crashes it). One uprobe per Go binary covers
 * every process running it. Process exec and exit go to userspace over a
 * ring buffer: a new image may be a Go program, a dead process's counts
 * are freed here. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "goroutines.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_GR_MAX_PROCS);
	__type(key, __u32);
	__type(value, struct reflex_gr_counts);
} counts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

static __always_inline struct reflex_gr_counts *counts_of_current(void)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct reflex_gr_counts *c = bpf_map_lookup_elem(&counts, &tgid), zero = {};

	if (c)
		return c;
	if (bpf_map_update_elem(&counts, &tgid, &zero, BPF_NOEXIST) && !bpf_map_lookup_elem(&counts, &tgid)) {
		drop(REFLEX_GR_DROP_MAP_FULL);
		return NULL;
	}
	return bpf_map_lookup_elem(&counts, &tgid);
}

/* func newproc1(fn *funcval, callergp *g, callerpc uintptr) *g
 * Arguments in registers (ABIInternal) or on the stack: not read. */
SEC("uprobe")
int go_create(struct pt_regs *ctx)
{
	struct reflex_gr_counts *c = counts_of_current();

	if (c)
		__sync_fetch_and_add(&c->created, 1);
	return 0;
}

/* func goexit1(): the goroutine's last call on its own stack */
SEC("uprobe")
int go_exit(struct pt_regs *ctx)
{
	struct reflex_gr_counts *c = counts_of_current();

	if (c)
		__sync_fetch_and_add(&c->exited, 1);
	return 0;
}

static __always_inline void send(__u32 type, __u32 pid)
{
	struct reflex_gr_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);

	if (!e) {
		drop(REFLEX_GR_DROP_EVENT_LOST);
		return;
	}
	e->time_ns = bpf_ktime_get_ns();
	e->type = type;
	e->pid = pid;
	bpf_ringbuf_submit(e, 0);
}

/* sched_process_exec(struct task_struct *p, pid_t old_pid,
 *                    struct linux_binprm *bprm)
 * The old image's counts mean nothing for the new one. */
SEC("tp_btf/sched_process_exec")
int BPF_PROG(gr_exec, struct task_struct *p, pid_t old_pid, struct linux_binprm *bprm)
{
	__u32 tgid = p->tgid;

	bpf_map_delete_elem(&counts, &tgid);
	send(REFLEX_GR_EXEC, tgid);
	return 0;
}

/* sched_process_exit(struct task_struct *p, ...): once per thread; the
 * process is gone when the last one leaves (do_exit has already taken it
 * off signal->live). Only processes with counts are reported. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(gr_exit, struct task_struct *p)
{
	__u32 tgid = p->tgid;

	if (BPF_CORE_READ(p, signal, live.counter) != 0)
		return 0;
	if (bpf_map_delete_elem(&counts, &tgid) == 0)
		send(REFLEX_GR_EXIT, tgid);
	return 0;
}
