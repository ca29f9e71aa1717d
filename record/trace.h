/* Condition traces: a line-oriented, versioned, hand-writable record of a
 * condition stream with its own clock (docs/trace.md). The simulator
 * replays them; `record` will write them from the live sensors.
 *
 *   reflexd-trace 1
 *   0.0  raise 1 deadlock pid=4242 start=900 comm=worker summary="lock cycle" evidence={"threads":2}
 *   3.5  clear 1
 */
#ifndef REFLEX_RECORD_TRACE_H
#define REFLEX_RECORD_TRACE_H

#include <stdio.h>

#include "model/condition.h"

#define REFLEX_TRACE_VERSION 1
/* The largest time a trace may give, in whole seconds (a time, since=,
 * start=): below 2^32, so that start plus a time, in nanoseconds, fits the
 * int64 every clock is (year 2106 as a start, 136 years as a time). */
#define TRACE_SECONDS_MAX 4294967295ULL

enum trace_event_kind { TRACE_RAISE, TRACE_CLEAR, TRACE_END };

struct trace_event {
	enum trace_event_kind kind;
	uint64_t t_ns;             /* since the trace's start */
	int64_t since_ns;          /* raise: when it began, on the trace clock (may be
				    * negative: before the recording started) */
	struct condition cond;     /* raise: the condition (cond.since_ns unused);
				    * clear: cond.id, the rest left as it was */
};

struct trace_reader {
	FILE *f;
	char *buf;                 /* f's buffer */
	const char *path;
	int line;
	uint64_t last_t_ns;
	int64_t start_ns;          /* wall clock of t = 0 (header start=UNIX_SECONDS) */
	bool header_read;
	char err[512];             /* "file:line: message" after an error */
};

/* Writing: the header, with the wall-clock time of t = 0 ... */
void trace_write_header(FILE *f, int64_t start_real_ns);
/* ... and one line per event; t_ns and since_ns on the trace clock. */
void trace_write_raise(FILE *f, uint64_t t_ns, int64_t since_ns, const struct condition *c);
void trace_write_clear(FILE *f, uint64_t t_ns, uint64_t id);

/* Opens path: 0, or -errno with err set. */
int trace_open(struct trace_reader *r, const char *path);
void trace_close(struct trace_reader *r);
/* The next event: 1, 0 at the end, or an error with r->err set: -EINVAL
 * for a bad line (the reader can go on to the next one, to skip and count),
 * -ENOTSUP for a missing or unsupported header and -EIO for a read error
 * (nothing more can be read). */
int trace_next(struct trace_reader *r, struct trace_event *ev);

#endif
