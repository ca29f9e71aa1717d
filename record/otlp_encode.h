/* The OTLP messages the exporter (record/otlp.c) sends: a decision's
 * LogRecord, and a request's bytes in protobuf or in OTLP's JSON encoding,
 * gzipped when asked. The messages live in an arena freed at once, after
 * the request is packed. */
#ifndef REFLEX_RECORD_OTLP_ENCODE_H
#define REFLEX_RECORD_OTLP_ENCODE_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

#include "lib/util.h"
#include "record/journal.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_record;
typedef Opentelemetry__Proto__Logs__V1__SeverityNumber pb_severity;

/* Memory for one request's messages, freed at once. */
struct otlp_arena {
	struct otlp_chunk {
		struct otlp_chunk *next;
		size_t used, size;
		max_align_t data[];
	} *chunks;
};

/* size zeroed bytes, or NULL when out of memory. */
void *otlp_arena_alloc(struct otlp_arena *a, size_t size);
void otlp_arena_free(struct otlp_arena *a);

/* The severity of the record of event about d, its text into *text. */
pb_severity otlp_severity(const struct decision *d, const char *event, const char **text);

/* The LogRecord of one outbox entry, in a: NULL when out of memory. */
pb_record *otlp_record(struct otlp_arena *a, const struct journal_entry *e, const struct decision *d);

/* The request carrying records[0..n) under a resource of "key=value"
 * attributes, packed (OTLP's JSON encoding when json) and gzipped when
 * gzip, into a new buffer *out: its length, or -ENOMEM. */
ssize_t otlp_encode(struct otlp_arena *a, const struct strlist *resource, pb_record **records, size_t n,
		    bool json, bool gzip, unsigned char **out);

#endif
