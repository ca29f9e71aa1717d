/* Shared by the rule fuzzers: loads a rule file from bytes and drives its
 * rules through the engine with a trace, in virtual time, so the fuzzer
 * reaches when, act and where functions, metatables and the decisions. */
#ifndef REFLEX_TESTS_FUZZ_DRIVE_H
#define REFLEX_TESTS_FUZZ_DRIVE_H

#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "decide/engine.h"
#include "record/trace.h"

#define DRIVE_EPOCH (1000ull * NSEC_PER_SEC)
#define DRIVE_EVENTS_MAX 200

/* Conditions every rule set is driven with when the input has no trace:
 * each kind, on a few targets, raised, held, ticked and cleared. */
static const char drive_default_trace[] =
	"reflexd-trace 1\n"
	"0 raise 1 deadlock pid=4242 comm=worker exe=/usr/bin/worker evidence={\"threads\":2,\"cycle\":[{\"tid\":1}]}\n"
	"0 raise 2 stall pid=4243 comm=worker summary=\"all threads blocked\"\n"
	"1 raise 3 leak pid=4244 comm=svc evidence={\"bytes\":1048576}\n"
	"1 raise 4 goroutines pid=4245 comm=gosvc\n"
	"2 raise 5 retransmits pid=4246 comm=client\n"
	"2 raise 6 memory pid=4247 comm=big\n"
	"5 raise 1 deadlock pid=4242 comm=worker\n"
	"20 clear 1\n"
	"30 clear 2\n"
	"90 clear 3\n";

static void drive_sink(void *ctx, struct decision *d, const struct rule_action *action)
{
	/* what is carried out must be a real action: forged ones crashed here */
	if (action && (!action->ops || !action->ops->name))
		abort();
	(*(unsigned long *)ctx)++;
	(void)d;
}

static void drive_verified(void *ctx, const char *id, bool cleared, const char *result)
{
	(void)ctx, (void)id, (void)cleared, (void)result;
}

static void drive_new_id(char id[37], void *ctx)
{
	static unsigned long n;

	snprintf(id, 37, "00000000-0000-0000-0000-%012lu", ++n);
	(void)ctx;
}

static int64_t drive_wall_ns(uint64_t mono, void *ctx)
{
	(void)ctx;
	return (int64_t)mono;
}

/* Writes data[0..size) to a temporary file named like *.lua or *.trace. */
static void drive_write(char *path, int suffix, const void *data, size_t size)
{
	int fd = mkstemps(path, suffix);

	if (fd < 0 || write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
}

/* Runs the trace at trace_path through the rules, as `simulate` does. */
static void drive_engine(struct ruleset *rs, const char *trace_path)
{
	struct protect protect = { 0 };
	unsigned long decisions = 0;
	struct decide_config cfg = {
		.global_max = 20, .global_window_ns = 3600 * NSEC_PER_SEC, .protect = &protect,
		.host = "fuzz", .wall_ns = drive_wall_ns, .new_id = drive_new_id,
		.sink = drive_sink, .verified = drive_verified, .ctx = &decisions,
	};
	struct decide_engine *e = decide_new(rs, &cfg);
	struct trace_event *ev = malloc(sizeof(*ev));
	struct trace_reader r;
	int rc, events = 0;

	if (!e || !ev)
		abort();
	if (trace_open(&r, trace_path) == 0) {
		while ((rc = trace_next(&r, ev)) != 0 && rc != -EIO && rc != -ENOTSUP &&
		       events++ < DRIVE_EVENTS_MAX) {
			uint64_t now = DRIVE_EPOCH + ev->t_ns, due;

			if (rc < 0)
				continue;
			while ((due = decide_next_deadline(e)) && due <= now)
				decide_tick(e, due);
			if (ev->kind == TRACE_END)
				break;
			if (ev->kind == TRACE_CLEAR) {
				decide_clear(e, ev->cond.id, now);
				continue;
			}
			ev->cond.since_ns = (uint64_t)((int64_t)DRIVE_EPOCH + ev->since_ns);
			decide_raise(e, &ev->cond, now);
		}
		trace_close(&r);
	}
	decide_free(e);
	free(ev);
}

#endif
