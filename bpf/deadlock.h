/* Wire format shared by deadlock.bpf.c and sense/deadlock.c. No includes:
 * both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_DEADLOCK_H
#define REFLEX_BPF_DEADLOCK_H

#define REFLEX_DEADLOCK_MAX_WAITS 16384

/* futex(2) commands that block until another thread lets go. */
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

/* One thread blocked in futex(2), keyed by its global tid. */
struct reflex_futex_wait {
	__u64 uaddr;     /* futex word, in the waiter's address space */
	__u64 since_ns;  /* CLOCK_MONOTONIC when the wait began */
	__u64 off_cpu_ns; /* CLOCK_MONOTONIC when it last left the CPU */
	__u32 pid;       /* thread group id, global */
	__u32 tid;       /* thread id, global */
	__u32 ns_tid;    /* thread id in its own pid namespace (what glibc stores) */
	__u32 op;        /* futex op, with flags */
	__u32 val;       /* the value the waiter expected in the futex word */
	__u32 runs;      /* times it was switched in during this wait */
};

enum reflex_deadlock_event_kind {
	REFLEX_DEADLOCK_WAIT_END = 1,  /* a long wait returned */
	REFLEX_DEADLOCK_WAITER_EXIT = 2, /* a thread died while waiting */
};

/* Sent only when a wait longer than long_wait_ns ends, so the sensor can
 * clear a condition at once instead of at the next scan. */
struct reflex_deadlock_event {
	__u64 uaddr;
	__u64 waited_ns;
	__u32 pid;
	__u32 tid;
	__u32 kind;
	__u32 pad;
};

#endif
