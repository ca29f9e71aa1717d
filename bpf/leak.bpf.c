// SPDX-License-Identifier: GPL-2.0
/* Leak sensor, kernel side: per-process memory counters that cost nothing
 * per malloc. kmem:rss_stat fires when a resident-memory counter of an mm
 * changes (a page fault, an unmap, reclaim), with the counter's new value;
 * brk/mmap/munmap say how the address space grew and shrank. malloc and
 * free themselves are never seen here: a malloc that reuses memory makes
 * no syscall and no page fault. Userspace samples the map and judges the
 * trend (sense/leak_trend.c). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "leak.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_EXITING 0x00000004
#define PF_KTHREAD 0x00200000
#define MAX_ERRNO 4095
#define REFLEX_PROT_WRITE 0x2
#define REFLEX_MAP_ANONYMOUS 0x20

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, REFLEX_LEAK_PROCS_MAX);
	__type(key, __u32);   /* tgid */
	__type(value, struct reflex_leak_proc);
} procs SEC(".maps");

/* the length of an mmap/munmap in flight, by thread, for its exit */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4096);
	__type(key, __u32);   /* tid */
	__type(value, __u64);
} inflight SEC(".maps");

/* overflows, read by userspace and logged when they grow */
__u64 procs_dropped = 0;
__u64 inflight_dropped = 0;

/* The current process's entry, created on first sight. NULL for kernel
 * threads and exiting tasks (an exit's unmaps must not bring back the
 * entry sched_process_exit removed), and when the map is full. */
static __always_inline struct reflex_leak_proc *current_proc(void)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task_btf();
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	struct reflex_leak_proc *p, fresh = {};

	p = bpf_map_lookup_elem(&procs, &tgid);
	if (p)
		return p;
	if (task->flags & (PF_EXITING | PF_KTHREAD))
		return NULL;
	fresh.start_ns = task->group_leader->start_time;
	if (bpf_map_update_elem(&procs, &tgid, &fresh, BPF_NOEXIST) &&
	    !bpf_map_lookup_elem(&procs, &tgid)) {
		__sync_fetch_and_add(&procs_dropped, 1);
		return NULL;
	}
	return bpf_map_lookup_elem(&procs, &tgid);
}

/* TP_PROTO(struct mm_struct *mm, int member): fields mm_id, curr, member,
 * size (the counter's new value in bytes). Only the current task's own mm
 * (curr): other mms change from reclaim or fork, and their owner's next
 * own change reports the counter's whole value anyway. */
SEC("tp/kmem/rss_stat")
int rss_stat(struct trace_event_raw_rss_stat *ctx)
{
	struct reflex_leak_proc *p;
	int member = ctx->member;

	if (!ctx->curr || member < 0 || member >= REFLEX_LEAK_MEMBERS)
		return 0;
	p = current_proc();
	if (!p)
		return 0;
	p->rss[member & (REFLEX_LEAK_MEMBERS - 1)] = ctx->size;
	p->seen |= 1u << member;
	return 0;
}

static __always_inline void remember_len(__u64 len)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();

	if (bpf_map_update_elem(&inflight, &tid, &len, BPF_ANY))
		__sync_fetch_and_add(&inflight_dropped, 1);
}

static __always_inline __u64 take_len(void)
{
	__u32 tid = (__u32)bpf_get_current_pid_tgid();
	__u64 *len = bpf_map_lookup_elem(&inflight, &tid), v;

	if (!len)
		return 0;
	v = *len;
	bpf_map_delete_elem(&inflight, &tid);
	return v;
}

/* mmap(addr, len, prot, flags, fd, off): only writable anonymous memory,
 * what a heap grows by. Reservations (PROT_NONE, as Go's arenas and
 * thread-stack guards) and file mappings are not memory in use. */
SEC("tp/syscalls/sys_enter_mmap")
int enter_mmap(struct trace_event_raw_sys_enter *ctx)
{
	if ((ctx->args[2] & REFLEX_PROT_WRITE) && (ctx->args[3] & REFLEX_MAP_ANONYMOUS))
		remember_len(ctx->args[1]);
	return 0;
}

SEC("tp/syscalls/sys_exit_mmap")
int exit_mmap(struct trace_event_raw_sys_exit *ctx)
{
	__u64 len = take_len();
	struct reflex_leak_proc *p;

	if (!len || (unsigned long)ctx->ret >= (unsigned long)-MAX_ERRNO)
		return 0;
	p = current_proc();
	if (p)
		__sync_fetch_and_add(&p->mapped, len);
	return 0;
}

/* munmap(addr, len) */
SEC("tp/syscalls/sys_enter_munmap")
int enter_munmap(struct trace_event_raw_sys_enter *ctx)
{
	remember_len(ctx->args[1]);
	return 0;
}

SEC("tp/syscalls/sys_exit_munmap")
int exit_munmap(struct trace_event_raw_sys_exit *ctx)
{
	__u64 len = take_len();
	struct reflex_leak_proc *p;

	if (!len || ctx->ret != 0)
		return 0;
	p = current_proc();
	if (p)
		__sync_fetch_and_add(&p->unmapped, len);
	return 0;
}

/* brk(addr) returns the program break, moved or not */
SEC("tp/syscalls/sys_exit_brk")
int exit_brk(struct trace_event_raw_sys_exit *ctx)
{
	struct reflex_leak_proc *p = current_proc();

	if (!p || ctx->ret <= 0)
		return 0;
	if (!p->brk_first)
		p->brk_first = ctx->ret;
	p->brk_last = ctx->ret;
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
