// SPDX-License-Identifier: GPL-2.0
/* Deadlock sensor, kernel side: keeps the set of threads blocked in futex(2)
 * with what they wait on and whether they ran since. Userspace scans it to
 * build the wait-for graph. Cost lands on the contended path (a thread that
 * is about to sleep anyway) plus two hash lookups per context switch. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "deadlock.h"

char LICENSE[] SEC("license") = "GPL";

/* A wait that lasted at least this long reports its end on the ring buffer. */
const volatile __u64 long_wait_ns = 100000000;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_DEADLOCK_MAX_WAITS);
	__type(key, __u32);
	__type(value, struct reflex_futex_wait);
} waits SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* glibc stores thread ids as seen in the process's own pid namespace. */
static __always_inline __u32 ns_tid_of(struct task_struct *task)
{
	struct pid *pid = BPF_CORE_READ(task, thread_pid);
	unsigned int level = BPF_CORE_READ(pid, level);
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &pid->numbers[level]);
	return up.nr;
}

static __always_inline void wait_ended(__u32 tid, __u32 kind)
{
	struct reflex_futex_wait *w = bpf_map_lookup_elem(&waits, &tid);
	struct reflex_deadlock_event *e;
	__u64 waited;

	if (!w)
		return;
	waited = bpf_ktime_get_ns() - w->since_ns;
	if (waited >= long_wait_ns) {
		e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
		if (e) {
			e->uaddr = w->uaddr;
			e->waited_ns = waited;
			e->pid = w->pid;
			e->tid = tid;
			e->kind = kind;
			e->pad = 0;
			bpf_ringbuf_submit(e, 0);
		}
	}
	bpf_map_delete_elem(&waits, &tid);
}

/* syscalls:sys_enter_futex(u32 *uaddr, int op, u32 val, ...) */
SEC("tracepoint/syscalls/sys_enter_futex")
int futex_enter(struct trace_event_raw_sys_enter *ctx)
{
	__u32 op = (__u32)ctx->args[1];
	__u64 id = bpf_get_current_pid_tgid();
	struct reflex_futex_wait w = {};
	__u32 tid = (__u32)id;

	if (!REFLEX_FUTEX_BLOCKS(op))
		return 0;
	w.uaddr = ctx->args[0];
	w.op = op;
	w.val = (__u32)ctx->args[2];
	w.since_ns = bpf_ktime_get_ns();
	w.off_cpu_ns = w.since_ns;
	w.pid = id >> 32;
	w.tid = tid;
	w.ns_tid = ns_tid_of((struct task_struct *)bpf_get_current_task());
	bpf_map_update_elem(&waits, &tid, &w, BPF_ANY);
	return 0;
}

/* syscalls:sys_exit_futex(long ret) */
SEC("tracepoint/syscalls/sys_exit_futex")
int futex_exit(struct trace_event_raw_sys_exit *ctx)
{
	wait_ended((__u32)bpf_get_current_pid_tgid(), REFLEX_DEADLOCK_WAIT_END);
	return 0;
}

/* sched_switch(bool preempt, struct task_struct *prev,
 *              struct task_struct *next, unsigned int prev_state) */
SEC("tp_btf/sched_switch")
int BPF_PROG(futex_switch, bool preempt, struct task_struct *prev,
	     struct task_struct *next, unsigned int prev_state)
{
	struct reflex_futex_wait *w;
	__u32 tid;

	tid = prev->pid;
	w = bpf_map_lookup_elem(&waits, &tid);
	if (w)
		w->off_cpu_ns = bpf_ktime_get_ns();
	tid = next->pid;
	w = bpf_map_lookup_elem(&waits, &tid);
	if (w)
		w->runs++;
	return 0;
}

/* sched_process_exit(struct task_struct *p, bool group_dead): a thread killed
 * in its wait never reaches sys_exit_futex. */
SEC("tp_btf/sched_process_exit")
int BPF_PROG(futex_waiter_exit, struct task_struct *p)
{
	wait_ended(p->pid, REFLEX_DEADLOCK_WAITER_EXIT);
	return 0;
}
