/* Deadlock sensor: threads blocked in futex(2) (bpf/deadlock.bpf.c), owners
 * read from the locks themselves, and cycles in the wait-for graph
 * (`deadlock`); every thread of a process blocked, no cycle (`stall`). */
#ifndef REFLEX_SENSE_DEADLOCK_H
#define REFLEX_SENSE_DEADLOCK_H

#include <ev.h>

#include "sense/condition.h"

struct sense_deadlock_config {
	/* waits shorter than this are contention, not looked at */
	uint64_t min_wait_ns;
	/* every thread asleep in a futex wait at least this long, and no lock
	 * cycle among them: a stall */
	uint64_t stall_after_ns;
	struct condition_sink sink;
};

struct sense_deadlock;

/* Opens, configures, loads and attaches the BPF side and watches its ring
 * buffer on loop. NULL with errno set on failure (logged with context). */
struct sense_deadlock *sense_deadlock_start(struct ev_loop *loop,
					    const struct sense_deadlock_config *cfg);
/* Rebuilds the wait-for graph; raises new deadlocks, clears gone ones. */
void sense_deadlock_scan(struct sense_deadlock *s, uint64_t now);
/* Detaches everything; safe on NULL and on a half-started sensor. */
void sense_deadlock_stop(struct sense_deadlock *s);

#endif
