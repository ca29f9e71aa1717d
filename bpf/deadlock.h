/* Wire format shared by deadlock.bpf.c and sense/deadlock.c. No includes:
 * both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_DEADLOCK_H
#define REFLEX_BPF_DEADLOCK_H

/* futex(2) commands that sleep until another thread lets go. */
#define REFLEX_FUTEX_WAIT 0
#define REFLEX_FUTEX_LOCK_PI 6
#define REFLEX_FUTEX_WAIT_BITSET 9
#define REFLEX_FUTEX_WAIT_REQUEUE_PI 11
#define REFLEX_FUTEX_LOCK_PI2 13
#define REFLEX_FUTEX_CMD_MASK 0x7f /* drops FUTEX_PRIVATE_FLAG, FUTEX_CLOCK_REALTIME */
#define REFLEX_FUTEX_BLOCKS(op) \
	(((op) & REFLEX_FUTEX_CMD_MASK) == REFLEX_FUTEX_WAIT || \
	 ((op) & REFLEX_FUTEX_CMD_MASK) == REFLEX_FUTEX_WAIT_BITSET || \
	 ((op) & REFLEX_FUTEX_CMD_MASK) == REFLEX_FUTEX_LOCK_PI || \
	 ((op) & REFLEX_FUTEX_CMD_MASK) == REFLEX_FUTEX_LOCK_PI2 || \
	 ((op) & REFLEX_FUTEX_CMD_MASK) == REFLEX_FUTEX_WAIT_REQUEUE_PI)

/* A thread asleep in futex(2): task storage while it sleeps, and the record
 * the scan iterator writes for each wait older than min_wait_ns. */
struct reflex_futex_wait {
	__u64 uaddr;     /* futex word, in the waiter's address space */
	__u64 since_ns;  /* CLOCK_MONOTONIC when it went to sleep */
	__u32 pid;       /* thread group id, global */
	__u32 tid;       /* thread id, global */
	__u32 ns_tid;    /* thread id in its own pid namespace (what glibc stores) */
	__u32 op;        /* futex op, with flags */
	__u32 val;       /* the value the waiter expected in the futex word */
	__u32 active;    /* asleep in this wait now */
	__u32 threads;   /* the scan's record: threads in the process then */
	__u32 pad;
	__u64 listed;    /* in task storage: on the waiters list (6.2+) */
};

/* The waiters list's capacity, in threads: a wait that finds it full is
 * counted as dropped (REFLEX_DEADLOCK_DROP_WAITS) and not seen by the scan. */
#define REFLEX_WAITERS_MAX 65536

/* The scan's record of a wait: the wait, and the waiter's user registers
 * as its syscall saved them (stable while it sleeps), in DWARF register
 * order, so userspace can unwind its stack with the CFI when a deadlock is
 * confirmed: x86-64 rax..r15 (0-15), arm64 x0..x30 and sp (0-31). */
#define REFLEX_UREGS_MAX 32
struct reflex_wait_record {
	struct reflex_futex_wait w;
	__u64 pc;
	__u64 regs[REFLEX_UREGS_MAX];
	__u32 nregs;
	__u32 pad;
};

/* Sent when a wait longer than long_wait_ns ends, so the sensor clears a
 * condition at once instead of at the next scan. */
struct reflex_deadlock_event {
	__u64 uaddr;
	__u64 waited_ns;
	__u32 pid;
	__u32 tid;
};

/* The drops array's slots (bpf/drops.bpf.h) */
#define REFLEX_DEADLOCK_DROP_WAITS 0 /* a futex wait with no task storage to go in */
#define REFLEX_DEADLOCK_DROP_ENDS 1  /* a long wait's end the ring buffer had no room for */
#define REFLEX_DEADLOCK_DROPS 2

#endif
