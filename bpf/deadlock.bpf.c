// SPDX-License-Identifier: GPL-2.0
/* Deadlock sensor, kernel side. A futex wait is seen where it costs least:
 * at sched_switch, when a thread goes to sleep, its saved user registers
 * say which syscall it sleeps in (futex), on which word and with which op.
 * The wait ends when the thread is switched back in. Nothing is attached
 * to the syscall path, so uncontended locks, futex calls that do not sleep
 * and every other syscall cost nothing; a sleeping wait costs one register
 * read and a task-storage write on a context switch it makes anyway.
 * Userspace reads the long waits with a task iterator, and finds both
 * deadlocks (lock cycles) and stalls (every thread asleep, no cycle). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "deadlock.h"
#include "drops.bpf.h"

char LICENSE[] SEC("license") = "GPL";

#define PF_KTHREAD 0x00200000

/* a wait at least this long reports its end on the ring buffer */
const volatile __u64 long_wait_ns = 100000000;
/* the scan iterator skips waits younger than this */
const volatile __u64 min_wait_ns = 100000000;
/* futex(2)'s number on this architecture, set by the loader */
const volatile long futex_nr = -1;
/* sched_switch passes prev_state (5.18+), set by the loader; before, it
 * is read from prev itself (the verifier prunes the branch not taken) */
const volatile bool switch_has_prev_state = true;
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

	/* prev_state 0: preempted while runnable, not asleep */
	if (prev_state)
		begin_wait(prev);
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

/* The scan: one record per wait older than min_wait_ns. The first scan
 * also adopts threads that went to sleep before reflexd attached: their
 * wait counts from now, which makes a hold longer, never shorter. */
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
	if (w && w->active && bpf_ktime_get_ns() - w->since_ns >= min_wait_ns) {
		struct reflex_wait_record rec = { .w = *w };

		/* a stall is every thread of the process asleep */
		rec.w.threads = BPF_CORE_READ(task, signal, nr_threads);
		user_regs((struct pt_regs *)bpf_task_pt_regs(task), &rec);
		bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
	}
	return 0;
}
