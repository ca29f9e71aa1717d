/* Wire format shared by goroutines.bpf.c and sense/goroutines.c. No
 * includes: both sides bring their own fixed-width types. */
#ifndef REFLEX_BPF_GOROUTINES_H
#define REFLEX_BPF_GOROUTINES_H

/* Processes counted at once: the size of the counts map. */
#define REFLEX_GR_MAX_PROCS 4096

/* Goroutines a process created and that exited, since its counts entry
 * was made (at its exec, when its binary was already watched; else when
 * the sensor found it). */
struct reflex_gr_counts {
	__u64 created;
	__u64 exited;
};

enum reflex_gr_event_type {
	REFLEX_GR_EXEC = 1,  /* pid runs a new image: is it Go? */
	REFLEX_GR_EXIT = 2,  /* the last thread of pid exited */
};

struct reflex_gr_event {
	__u64 time_ns;  /* CLOCK_MONOTONIC */
	__u32 type;
	__u32 pid;
};

/* What the kernel side could not do: the drops array's slots
 * (bpf/drops.bpf.h). */
#define REFLEX_GR_DROP_MAP_FULL 0   /* a process not counted: the counts map was full */
#define REFLEX_GR_DROP_EVENT_LOST 1 /* an exec or exit event lost: the ring buffer was full */
#define REFLEX_GR_DROPS 2

#endif
