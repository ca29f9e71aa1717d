/* Every decision as an OTLP log record, over OTLP/HTTP (protobuf or JSON,
 * POST /v1/logs), from the journal's export outbox: a record leaves the outbox
 * only when the collector has acknowledged it (or refused it for good), so
 * a collector outage or a restart loses nothing. Transfers run on the loop
 * (lib/http.h); one request is in flight at a time. docs/otlp.md. */
#ifndef REFLEX_RECORD_OTLP_H
#define REFLEX_RECORD_OTLP_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "cmd/config.h"
#include "record/journal.h"
#include "lib/util.h"

/* Where and how to export, from the options and the OTEL_* variables. */
struct otlp_settings {
	char url[1024];
	struct strlist headers;   /* "Name: value" */
	struct strlist resource;  /* "key=value", in order */
	uint64_t timeout_ns;
	bool gzip;
	bool json;                /* http/json: the same messages in OTLP's JSON encoding */
	char *ca_file, *cert_file, *key_file;  /* TLS files; NULL: system CA store, no client certificate */
	size_t batch;
	uint64_t batch_delay_ns;
	uint64_t retry_max_ns;
	uint64_t backlog_max;
	/* volume controls for dry-run and suppressed records (acted and
	 * failed ones, and verifications, always go) */
	uint64_t rate_max;       /* a second, by the records' own time; 0: no cap */
	int severity_floor;      /* an OTLP SeverityNumber */
};

/* Resolves the settings: an option wins over its variable, the logs
 * variable over the general one. 1 and s filled, 0 when no endpoint is
 * configured (no export), -EINVAL with the reason in err (naming the
 * option or variable). host is the resource's host.name. */
int otlp_settings(const struct config *cfg, const char *host, struct otlp_settings *s,
		  char *err, size_t errlen);
void otlp_settings_free(struct otlp_settings *s);

struct otlp;

/* Starts exporting j's outbox (which it enables) with s (moved into the
 * exporter). NULL with errno on failure. */
struct otlp *otlp_new(struct ev_loop *loop, struct journal *j, struct otlp_settings *s);
void otlp_free(struct otlp *o);

/* Sends what waits now, and calls drained(ctx) once nothing is left in
 * the outbox nor in flight (at once if so already). */
void otlp_flush(struct otlp *o, void (*drained)(void *ctx), void *ctx);

struct otlp_stats {
	uint64_t sent;      /* acknowledged records */
	uint64_t rejected;  /* refused by the collector in a partial success */
	uint64_t failed;    /* given up on: a non-retryable reply */
	uint64_t retries;   /* requests that failed and will be tried again */
	uint64_t backlog;   /* waiting in the journal */
	uint64_t dropped;   /* dropped at the backlog bound */
	uint64_t withheld_rate, withheld_severity;  /* not exported by the volume controls */
};

void otlp_stats(const struct otlp *o, struct otlp_stats *st);

#endif
