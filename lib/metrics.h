/* reflexd's own health: counters and gauges in one registry, served in the
 * Prometheus text format by a tiny HTTP server on the loop (/metrics,
 * /healthz for a liveness probe, /readyz for readiness). Off unless
 * --metrics ADDR:PORT is given.
 *
 * Any module adds its numbers with two calls and no set-up:
 *
 *     static struct metric *drops;
 *     if (!drops)
 *         drops = metrics_counter("reflexd_ringbuf_drops_total",
 *                                 "events lost in the ring buffer", "sensor", "deadlock");
 *     metric_add(drops, n);
 *
 * A name and label value pair is one series, created at first use and kept
 * for the life of the process; a NULL metric (out of memory) is ignored. */
#ifndef REFLEX_LIB_METRICS_H
#define REFLEX_LIB_METRICS_H

#include <ev.h>
#include <stddef.h>

#include "lib/util.h"

struct metric;

/* The series name{label="value"} (label NULL: no label) of a counter or a
 * gauge; help describes the family. NULL when out of memory. */
struct metric *metrics_counter(const char *name, const char *help, const char *label, const char *value);
struct metric *metrics_gauge(const char *name, const char *help, const char *label, const char *value);
void metric_add(struct metric *m, double v);
void metric_set(struct metric *m, double v);
double metric_value(const struct metric *m);

/* Every series, in the Prometheus text exposition format (0.0.4). */
void metrics_format(struct sbuf *b);

struct metrics_server;

/* Serves on addr: "PORT" or ":PORT" (loopback), "HOST:PORT", "[V6]:PORT".
 * NULL with the reason in err. */
struct metrics_server *metrics_serve(struct ev_loop *loop, const char *addr, char *err, size_t errlen);
void metrics_server_free(struct metrics_server *s);
/* /readyz answers 200 when ready(ctx, body) is true, else 503; body gets
 * what is missing (and what is degraded). Until this is called: 503,
 * "starting". */
void metrics_set_readiness(struct metrics_server *s, bool (*ready)(void *ctx, struct sbuf *body),
			   void *ctx);

#endif
