// SPDX-License-Identifier: GPL-2.0
/* Deadlock sensor, kernel side. A futex wait is seen where it costs least:
 * at sched_switch, when a thread goes to sleep, its saved user registers
 * say which syscall it sleeps in (futex), on which word and with which op.
 * The wait ends when the thread is switched back in. Nothing is attached
 * to the syscall path, so uncontended locks, futex calls that do not sleep
 * and every other syscall cost nothing; a sleeping wait costs one register
 * read and a task-storage write on a context switch it makes anyway.
 * Userspace reads the long waits with an iterator, and finds both
 * deadlocks (lock cycles) and stalls (every thread asleep, no cycle).
 * Where task iterators take a pid filter (6.1), a wait also lists its
 * thread in a hash map, and the scan visits only the processes on that
 * list: its cost grows with the futex waiters, not with the host's tasks.
 * Elsewhere the scan visits every task (docs/deadlock.md). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "deadlock.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000
#define TASK_DEAD 0x0080

/* a wait at least this long reports its end on the ring buffer */
const volatile __u64 long_wait_ns = 100000000;
/* the scan iterator skips waits younger than this */
const volatile __u64 min_wait_ns = 100000000;
/* futex(2)'s number on this architecture, set by the loader */
const volatile long futex_nr = -1;
/* sched_switch passes prev_state (5.18+), set by the loader; before, it
 * is read from prev itself (the verifier prunes the branch not taken) */
const volatile bool switch_has_prev_state = true;
/* the loader sets it where task iterators take a pid filter (6.1): waits
 * list their threads in `waiters`, and the scan visits their processes */
const volatile bool list_waiters = false;
/* the scan copies each long waiter's user registers for its stack: off
 * with --no-stacks */
const volatile bool capture_regs = true;
/* set for the first scan only: adopt threads that were asleep before */
bool seeding = false;

/* bpf_task_pt_regs() gives a BTF pointer: plain loads, no helper calls */
#if defined(__TARGET_ARCH_x86)
#define SYSCALL_NR(regs) ((long)(regs)->orig_ax)
#define SYSCALL_ARG1(regs) ((regs)->di)
#define SYSCALL_ARG2(regs) ((regs)->si)
#define SYSCALL_ARG3(regs) ((regs)->dx)
#define UREGS 16
/* pt_regs in DWARF order: ax dx cx bx si di bp sp r8..r15 */
static __always_inline void user_regs(struct pt_regs *r, struct reflex_wait_record *rec)
{
	rec->pc = r->ip;
	rec->regs[0] = r->ax;
	rec->regs[1] = r->dx;
	rec->regs[2] = r->cx;
	rec->regs[3] = r->bx;
	rec->regs[4] = r->si;
	rec->regs[5] = r->di;
	rec->regs[6] = r->bp;
	rec->regs[7] = r->sp;
	rec->regs[8] = r->r8;
	rec->regs[9] = r->r9;
	rec->regs[10] = r->r10;
	rec->regs[11] = r->r11;
	rec->regs[12] = r->r12;
	rec->regs[13] = r->r13;
	rec->regs[14] = r->r14;
	rec->regs[15] = r->r15;
	rec->nregs = UREGS;
}
#elif defined(__TARGET_ARCH_arm64)
#define SYSCALL_NR(regs) ((long)(regs)->syscallno)
#define SYSCALL_ARG1(regs) ((regs)->orig_x0)
#define SYSCALL_ARG2(regs) ((regs)->regs[1])
#define SYSCALL_ARG3(regs) ((regs)->regs[2])
static __always_inline void user_regs(struct pt_regs *r, struct reflex_wait_record *rec)
{
	rec->pc = r->pc;
	for (int i = 0; i < 31; i++)
		rec->regs[i] = r->regs[i];
	rec->regs[31] = r->sp;
	rec->nregs = 32;
}
#else
#error "SYSCALL_NR: unsupported architecture"
#endif

struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, struct reflex_futex_wait);
} waits SEC(".maps");

/* tid -> pid (global ids): the threads that began a futex wait since a
 * scan last saw them out of one, or exit. Allocated as used (bpf_mem_alloc,
 * 6.1: safe under sched_switch's runqueue lock); only ever written where
 * list_waiters is set. */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__uint(max_entries, REFLEX_WAITERS_MAX);
	__type(key, __u32);
	__type(value, __u32);
} waiters SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

/* glibc stores thread ids as seen in the process's own pid namespace. */
static __always_inline __u32 ns_tid_of(struct task_struct *task)
{
	struct pid *pid = task->thread_pid;
	unsigned int level = pid->level;
	struct upid up = {};

	bpf_core_read(&up, sizeof(up), &pid->numbers[level]);
	return up.nr;
}

/* Puts the thread of w on the list, unless it is there. The cmpxchg is a
 * full barrier: with unlist()'s, a wait that begins while the scan takes
 * its thread off the list is always listed again by one of the two. */
static __always_inline void list(struct reflex_futex_wait *w, __u32 tid)
{
	__u32 pid = w->pid;

	if (__sync_val_compare_and_swap(&w->listed, 0, 1))
		return;
	if (bpf_map_update_elem(&waiters, &tid, &pid, BPF_ANY)) {
		w->listed = 0;
		drop(REFLEX_DEADLOCK_DROP_WAITS);
	}
}

/* The scan saw the thread of w out of its wait: off the list, then, if it
 * began another wait meanwhile, back on. */
static __always_inline void unlist(struct reflex_futex_wait *w, __u32 tid)
{
	bpf_map_delete_elem(&waiters, &tid);
	__sync_val_compare_and_swap(&w->listed, 1, 0);
	if (*(volatile __u32 *)&w->active)
		list(w, tid);
}

/* task is going to sleep (or sleeps): if in futex(2), record the wait.
 * The clock is read only then: most threads sleep in other syscalls. */
static __always_inline void begin_wait(struct task_struct *task)
{
	struct pt_regs *regs;
	struct reflex_futex_wait *w;
	__u32 op;

	if (task->flags & PF_KTHREAD)
		return;
	regs = (struct pt_regs *)bpf_task_pt_regs(task);
	if (SYSCALL_NR(regs) != futex_nr)
		return;
	op = (__u32)SYSCALL_ARG2(regs);
	if (!REFLEX_FUTEX_BLOCKS(op))
		return;
	w = bpf_task_storage_get(&waits, task, 0, BPF_LOCAL_STORAGE_GET_F_CREATE);
	if (!w) {
		drop(REFLEX_DEADLOCK_DROP_WAITS);
		return;
	}
	w->uaddr = SYSCALL_ARG1(regs);
	w->op = op;
	w->val = (__u32)SYSCALL_ARG3(regs);
	w->since_ns = bpf_ktime_get_ns();
	w->pid = task->tgid;
	w->tid = task->pid;
	w->ns_tid = ns_tid_of(task);
	w->active = 1;
	if (list_waiters)
		list(w, task->pid);
}

/* sched_switch(bool preempt, struct task_struct *prev,
 *              struct task_struct *next, unsigned int prev_state);
 * prev_state came in 5.18 */
SEC("tp_btf/sched_switch")
int BPF_PROG(futex_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	unsigned int prev_state = switch_has_prev_state ? (unsigned int)ctx[3] : prev->__state;
	struct reflex_futex_wait *w;
	struct reflex_deadlock_event *e;
	__u64 now;

	/* prev_state 0: preempted while runnable, not asleep; a thread that
	 * exits (maybe killed in a futex wait) leaves the list */
	if (prev_state & TASK_DEAD) {
		__u32 tid = prev->pid;

		w = bpf_task_storage_get(&waits, prev, 0, 0);
		if (w && w->listed) {
			w->active = 0;
			bpf_map_delete_elem(&waiters, &tid);
		}
	} else if (prev_state) {
		begin_wait(prev);
	}
	w = bpf_task_storage_get(&waits, next, 0, 0);
	if (!w || !w->active)
		return 0;
	w->active = 0;
	now = bpf_ktime_get_ns();
	if (now - w->since_ns < long_wait_ns)
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e) {
		drop(REFLEX_DEADLOCK_DROP_ENDS);
		return 0;
	}
	e->uaddr = w->uaddr;
	e->waited_ns = now - w->since_ns;
	e->pid = w->pid;
	e->tid = w->tid;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

/* The scan's record of w, if it is older than min_wait_ns. */
static __always_inline void write_wait(struct seq_file *seq, struct task_struct *task,
				       const struct reflex_futex_wait *w)
{
	if (bpf_ktime_get_ns() - w->since_ns < min_wait_ns)
		return;

	struct reflex_wait_record rec = { .w = *w };

	/* a stall is every thread of the process asleep */
	rec.w.threads = BPF_CORE_READ(task, signal, nr_threads);
	if (capture_regs)
		user_regs((struct pt_regs *)bpf_task_pt_regs(task), &rec);
	bpf_seq_write(seq, &rec, sizeof(rec));
}

/* The scan: every task where the list is not kept (before 6.1), and the
 * first scan everywhere, which adopts the threads that went to sleep
 * before reflexd attached (and lists them: their wait counts from now,
 * which makes a hold longer, never shorter). Where the list is kept, the
 * scan visits only its processes (a pid filter), and takes the threads it
 * finds out of their wait off the list. */
SEC("iter/task")
int scan_waits(struct bpf_iter__task *ctx)
{
	struct task_struct *task = ctx->task;
	struct reflex_futex_wait *w;

	if (!task)
		return 0;
	w = bpf_task_storage_get(&waits, task, 0, 0);
	if (seeding && (!w || !w->active) && task->__state) {
		begin_wait(task);
		return 0;
	}
	if (!w)
		return 0;
	if (w->active)
		write_wait(ctx->meta->seq, task, w);
	else if (list_waiters && w->listed)
		unlist(w, task->pid);
	return 0;
}
