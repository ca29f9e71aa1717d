/* The sensors, as one table (sense/sensor.c): the daemon starts each one
 * enabled, rescans it on every cron tick, and stops it on the way out.
 * A new sensor is bpf/<s>.bpf.c + bpf/<s>.h + sense/<s>.c and one line in
 * that table. */
#ifndef REFLEX_SENSE_SENSOR_H
#define REFLEX_SENSE_SENSOR_H

#include <ev.h>
#include <stddef.h>
#include <bpf/libbpf.h>

#include "bpf/drops.h"
#include "model/arming.h"
#include "model/needs.h"
#include "model/condition.h"

/* The sensors' options (cmd/config.c's table fills them). */
struct sensor_config {
	uint64_t min_wait_ns;
	uint64_t stall_after_ns;
	bool no_stacks;           /* deadlock/stall evidence without stacks or lock names */
	uint64_t leak_window_ns;
	uint64_t leak_min_rate;   /* bytes/s */
	uint64_t leak_attribution_ns;
	uint64_t goroutine_window_ns;
	int64_t goroutine_min_rate, goroutine_min_count;
	bool goroutine_probes;
	uint64_t retrans_window_ns;
	int64_t retrans_min;
	int64_t retrans_flows;
};

struct sensor_env {
	struct ev_loop *loop;
	const struct sensor_config *cfg;
	struct condition_sink sink;
	/* for a sensor whose BPF side acts by itself (sense/memory.c): decide's
	 * choice of what arms a process, and its record of what the kernel did */
	struct arming_policy arming;
};

struct sensor {
	const char *name;
	/* the condition kinds it raises, as 1 << kind: what a rule needs it for */
	unsigned kinds;
	/* what it needs from the kernel: the log line when it cannot start,
	 * `reflexd probe` and docs/architecture.md read this */
	struct kernel_needs needs;
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

/* A sensor's BPF ring buffer, drained on the loop whenever it has data. */
struct sensor_ring {
	struct ring_buffer *rb;
	struct ev_loop *loop;
	ev_io io;
};

/* Calls fn(ctx, record, size) for each record the ring buffer map map_fd
 * gets, from the loop: 0, or -errno with the reason logged as who's. */
int sensor_ring_open(struct sensor_ring *r, struct ev_loop *loop, int map_fd,
		     ring_buffer_sample_fn fn, void *ctx, const char *who);
/* Reads what is waiting now, without waiting for the loop. */
void sensor_ring_drain(struct sensor_ring *r);
/* Stops and frees; safe on a ring never opened (zeroed). */
void sensor_ring_close(struct sensor_ring *r);

/* n more things sensor could not keep (a full map, a lost ring-buffer
 * record): counted in /metrics as reflexd_sensor_drops_total. Sensors log
 * them too. n = 0 makes the series, at 0 (the daemon does so for each
 * sensor it starts). */
void sensor_drops(const char *sensor, uint64_t n);

/* A BPF object's drops array (bpf/drops.bpf.h), as its sensor reads it. */
struct sensor_drop_counts {
	const char *sensor;
	const char *const *why;        /* each reason, in words, for the log */
	size_t n;                      /* reasons: at most REFLEX_DROPS_MAX */
	int fd;                        /* the drops map */
	uint64_t total[REFLEX_DROPS_MAX]; /* since the object was loaded, as last read */
};

/* Starts reading the drops map map_fd of sensor's object, whose n reasons
 * are why[0..n). */
void sensor_drops_open(struct sensor_drop_counts *d, const char *sensor, int map_fd,
		       const char *const *why, size_t n);
/* Reads the drops summed over the CPUs into d->total: each reason that
 * grew is logged as a warning ("leak: 3 processes not followed ... (5 since
 * start)") and added to reflexd_sensor_drops_total. grew[i], when grew is
 * not NULL, is reason i's growth. 0 or -errno (nothing reported). */
int sensor_drops_report(struct sensor_drop_counts *d, uint64_t *grew);

/* The sensor called name, or NULL. */
const struct sensor *sensor_find(const char *name);

#endif
