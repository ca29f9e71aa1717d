/* The sensors, as one table (sense/sensor.c): the daemon starts each one
 * enabled, rescans it on every cron tick, and stops it on the way out.
 * A new sensor is bpf/<s>.bpf.c + bpf/<s>.h + sense/<s>.c and one line in
 * that table. */
#ifndef REFLEX_SENSE_SENSOR_H
#define REFLEX_SENSE_SENSOR_H

#include <ev.h>
#include <stddef.h>

#include "core/config.h"
#include "sense/condition.h"

struct ruleset;
struct protect;
struct decide_engine;

struct sensor_env {
	struct ev_loop *loop;
	const struct config *cfg;
	struct condition_sink sink;
	/* for a sensor whose BPF side acts by itself (sense/memory.c): the
	 * rules in force (the daemon's pointer, so a reload is seen), the
	 * protected targets, and the engine that records what the kernel did */
	struct ruleset *const *rules;
	const struct protect *protect;
	struct decide_engine *engine;
};

struct sensor {
	const char *name;
	/* Loads and attaches the BPF side and watches it on env->loop. NULL,
	 * with errno set and the reason logged, on failure. */
	void *(*start)(const struct sensor_env *env);
	/* On every cron tick (--scan-interval); NULL if it has nothing to do. */
	void (*scan)(void *state, uint64_t now);
	/* Detaches everything; safe on NULL and on a half-started sensor. */
	void (*stop)(void *state);
};

#define REFLEX_SENSORS_MAX 8

extern const struct sensor *const sensors[];
extern const size_t sensors_count;

/* The sensor called name, or NULL. */
const struct sensor *sensor_find(const char *name);

#endif
