/* Wire format shared by memory.bpf.c and sense/memory.c. No includes:
 * both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_MEMORY_H
#define REFLEX_BPF_MEMORY_H

/* How many processes can be armed at once: past it, arming fails and the
 * sensor counts the overflow. */
#define REFLEX_ARMED_MAX 16384

/* flags of struct reflex_arm */
#define REFLEX_ARM_IN_KERNEL (1u << 0) /* signal from the BPF program */
#define REFLEX_ARM_DRY_RUN   (1u << 1) /* only report what would be signalled */

/* The armed map, keyed by thread group id: what to do when the process's
 * resident memory reaches threshold_bytes. */
struct reflex_arm {
	__u64 threshold_bytes;
	__u64 start_time;   /* of the process armed, in clock ticks (/proc/<pid>/stat
			     * field 22): a recycled tgid is not it */
	__u64 fired;        /* counted up by the BPF program: nonzero once crossed */
	__u32 signal;       /* in-kernel only */
	__u32 flags;        /* REFLEX_ARM_* */
};

/* One crossing: what the program saw, and what it did. */
struct reflex_crossing {
	__u64 ktime_ns;        /* CLOCK_MONOTONIC when the crossing was seen, before any signal */
	__u64 rss_bytes;
	__u64 threshold_bytes;
	__u64 start_time;      /* of the arming: which process, if the tgid was reused */
	__u32 tgid;
	__u32 tid;
	__u32 signal;          /* the signal sent, or 0 */
	__s32 send_err;        /* bpf_send_signal's result when one was sent */
	__u32 flags;           /* of the arming */
	__u32 pad;
};

/* What a process did that changes which memory rule may watch it: its
 * comm is what rules match first (sense/memory.c re-judges it). */
#define REFLEX_TASK_EXEC   1
#define REFLEX_TASK_RENAME 2
#define REFLEX_TASK_EXIT   3
#define REFLEX_TASK_COMM_LEN 16

/* The drops array's slots (bpf/drops.bpf.h) */
#define REFLEX_MEMORY_DROP_TASK_EVENTS 0 /* task_events was full: userspace walks /proc again */
#define REFLEX_MEMORY_DROPS 1

struct reflex_task_event {
	__u32 tgid;
	__u32 what;                        /* REFLEX_TASK_* */
	char comm[REFLEX_TASK_COMM_LEN];   /* the leader's, after the change */
};

#endif
