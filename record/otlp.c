/* The OTLP exporter's loop: batches from the journal's outbox, the volume
 * controls, one request in flight, retries with backoff, and the
 * acknowledgements that let rows leave the outbox (record/otlp.h). The
 * messages are otlp_encode.c's, the settings otlp_settings.c's. */
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "record/otlp.h"
#include "record/otlp_encode.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_response;

#define OTLP_MAX_RESPONSE (64 * 1024)
#define OTLP_RETRY_FIRST NSEC_PER_SEC
#define OTLP_RETRY_AFTER_MAX (3600 * NSEC_PER_SEC)

struct otlp {
	struct ev_loop *loop;
	struct journal *journal;
	struct http_client *http;
	struct otlp_settings set;
	ev_timer timer;        /* the next send: batch delay, or a retry's backoff */
	bool in_flight;
	bool backing_off;
	unsigned failures;     /* in a row, for the backoff */
	int64_t *seqs;         /* the outbox entries in flight */
	size_t nseqs;
	size_t nrecords;       /* of those, exported (the rest withheld) */
	/* of those, withheld: counted once the batch is acknowledged */
	uint64_t withheld_rate, withheld_severity;
	/* the rate cap's token bucket, refilled by the records' own time, and
	 * as it was before the batch in flight took from it: a batch whose
	 * rows will be read again puts it back, so that each row's verdict
	 * is the same on every attempt */
	struct bucket {
		double tokens;
		int64_t ns;
	} bucket, bucket_before;
	struct otlp_stats st;
	void (*drained)(void *ctx);
	void *drained_ctx;
	uint64_t dropped_logged;  /* the drop count last said in the log */
	struct metric *m_sent, *m_rejected, *m_failed, *m_retries, *m_backlog, *m_dropped;
	struct metric *m_withheld_rate, *m_withheld_severity;
};

/* A batch being built: the records, and the outbox entries they carry. */
struct batch {
	struct otlp *o;
	struct otlp_arena *a;
	pb_record **records;
	size_t n;
	size_t nseqs;    /* entries taken, withheld ones included */
	uint64_t withheld_rate, withheld_severity;
	bool failed;
};

/* The export volume controls, the one place a record is withheld from
 * export (the journal keeps it): dry-run and suppressed decisions below
 * the severity floor, or over the rate cap. The cap is a token bucket of
 * rate_max a second (as deep), refilled by the records' own queued times,
 * so a backlog sent after an outage is capped as it happened, not as it
 * is sent. Acted, failed and unknown outcomes and verifications always go. */
static bool withhold(struct batch *b, const struct journal_entry *e, const struct decision *d)
{
	struct otlp *o = b->o;
	const char *sev;
	double rate = (double)o->set.rate_max;

	if (strcmp(e->event, JOURNAL_EVENT_DECISION) ||
	    (d->outcome != REFLEX_OUTCOME_DRY_RUN && d->outcome != REFLEX_OUTCOME_SUPPRESSED))
		return false;
	if ((int)otlp_severity(d, e->event, &sev) < o->set.severity_floor) {
		b->withheld_severity++;
		return true;
	}
	if (!o->set.rate_max)
		return false;
	if (e->queued_ns > o->bucket.ns) {
		o->bucket.tokens += rate * (double)(e->queued_ns - o->bucket.ns) / 1e9;
		o->bucket.ns = e->queued_ns;
	}
	if (o->bucket.tokens > rate)
		o->bucket.tokens = rate;
	if (o->bucket.tokens >= 1) {
		o->bucket.tokens -= 1;
		return false;
	}
	b->withheld_rate++;
	return true;
}

static int add_entry(const struct journal_entry *e, const struct decision *d, void *ctx)
{
	struct batch *b = ctx;
	pb_record *r;

	b->o->seqs[b->nseqs++] = e->seq;
	/* a row that cannot be read back (logged by the journal) has nothing
	 * true to send: it leaves the outbox as a withheld one does */
	if (!d || withhold(b, e, d))
		return 0;
	r = otlp_record(b->a, e, d);
	if (!r) {
		b->failed = true;
		return 1;
	}
	b->records[b->n++] = r;
	return 0;
}

static int acknowledge(struct otlp *o);
static void batch_undo(struct otlp *o);

/* The request for the oldest entries, packed (and gzipped when asked):
 * its length, 0 when nothing waits, -EAGAIN when all it took were
 * withheld (acknowledged: more may wait), or -errno (-EIO: the journal
 * failed). On an error the rows are left to be read again. */
static ssize_t build_request(struct otlp *o, unsigned char **out)
{
	struct otlp_arena a = { 0 };
	struct batch b = { .o = o, .a = &a };
	ssize_t len = -ENOMEM;

	b.records = otlp_arena_alloc(&a, o->set.batch * sizeof(*b.records));
	if (!b.records)
		goto cleanup;
	o->nseqs = 0;
	o->bucket_before = o->bucket;
	if (journal_export_next(o->journal, o->set.batch, add_entry, &b)) {
		len = -EIO;
		goto cleanup;
	}
	if (b.failed)
		goto cleanup;
	o->nseqs = b.nseqs;
	o->nrecords = b.n;
	o->withheld_rate = b.withheld_rate;
	o->withheld_severity = b.withheld_severity;
	if (b.n)
		len = otlp_encode(&a, &o->set.resource, b.records, b.n, o->set.json, o->set.gzip, out);
	else if (b.nseqs) /* everything withheld: these leave the outbox now */
		len = acknowledge(o) ? -EIO : -EAGAIN;
	else
		len = 0;
cleanup:
	if (len < 0 && len != -EAGAIN)
		batch_undo(o);
	otlp_arena_free(&a);
	return len;
}

static void send_batch(struct otlp *o);

static void update_gauges(struct otlp *o)
{
	journal_export_counts(o->journal, &o->st.backlog, &o->st.dropped);
	/* never silent; but one line per drop would flood an outage's log */
	if (o->st.dropped > o->dropped_logged &&
	    (!o->dropped_logged || o->st.dropped - o->dropped_logged >= 1000)) {
		log_warn("otlp: export backlog full (--export-backlog-max %llu): %llu oldest records dropped "
			 "unsent so far", (unsigned long long)o->set.backlog_max,
			 (unsigned long long)o->st.dropped);
		o->dropped_logged = o->st.dropped;
	}
	metric_set(o->m_backlog, (double)o->st.backlog);
	metric_set(o->m_dropped, (double)o->st.dropped);
}

static void schedule(struct otlp *o, uint64_t delay_ns)
{
	ev_timer_stop(o->loop, &o->timer);
	ev_timer_set(&o->timer, (double)delay_ns / 1e9, 0);
	ev_timer_start(o->loop, &o->timer);
}

/* What to do when nothing is in flight: send now when a batch is full,
 * after the batch delay when something waits, else wait to be told. */
static void next_step(struct otlp *o, bool after_send)
{
	update_gauges(o);
	if (o->in_flight || o->backing_off)
		return;
	if (!o->st.backlog) {
		ev_timer_stop(o->loop, &o->timer);
		if (o->drained) {
			void (*drained)(void *) = o->drained;

			o->drained = NULL;
			drained(o->drained_ctx);
		}
		return;
	}
	if (o->st.backlog >= o->set.batch || o->drained)
		schedule(o, 0);
	else if (after_send || !ev_is_active(&o->timer))
		schedule(o, o->set.batch_delay_ns);
}

static void on_queued(void *ctx)
{
	next_step(ctx, false);
}

/* The exponential backoff with jitter: 1s, 2s, 4s ... up to retry_max,
 * each drawn uniformly from its upper half so that many reflexd
 * instances do not retry in step. */
static uint64_t backoff(struct otlp *o)
{
	uint64_t d = OTLP_RETRY_FIRST;

	for (unsigned i = 1; i < o->failures && d < o->set.retry_max_ns; i++)
		d *= 2;
	if (d > o->set.retry_max_ns)
		d = o->set.retry_max_ns;
	return d / 2 + (uint64_t)((double)(d / 2) * ((double)random() / RAND_MAX));
}

static bool retryable(long status)
{
	return status == 0 || status == 429 || status == 502 || status == 503 || status == 504;
}

/* A readable excerpt of a reply's body for the log: text as is, binary
 * (a google.rpc.Status) as its printable runs. */
static void body_excerpt(const struct http_response *res, char *out, size_t size)
{
	size_t n = 0;

	for (size_t i = 0; i < res->body_len && n + 1 < size && n < 200; i++) {
		unsigned char c = (unsigned char)res->body[i];

		if (isprint(c))
			out[n++] = (char)c;
		else if (n && out[n - 1] != ' ')
			out[n++] = ' ';
	}
	out[n] = '\0';
}

/* Partial success: n of the records the collector refused, and why. */
static void partial_success(struct otlp *o, int64_t n, const char *why)
{
	if (n <= 0 && !*why)
		return;
	if (n > 0) {
		o->st.rejected += (uint64_t)n;
		metric_add(o->m_rejected, (double)n);
	}
	log_warn("otlp: %s: the collector rejected %lld of %zu records: %s", o->set.url, (long long)n, o->nrecords,
		 why);
}

/* A JSON reply's partialSuccess (rejectedLogRecords is an int64: a string,
 * or a number from a lenient encoder). */
static void read_partial_success_json(struct otlp *o, const struct http_response *res)
{
	struct json_val doc, n;
	char why[256], count[32];
	double v = 0;

	if (json_parse(res->body, res->body_len, &doc)) {
		log_warn("otlp: %s: the reply to an export is not JSON", o->set.url);
		return;
	}
	json_get_str(&doc, "partialSuccess.errorMessage", why, sizeof(why));
	if (!json_get(&doc, "partialSuccess.rejectedLogRecords", &n) && json_num(&n, &v) &&
	    !json_str(&n, count, sizeof(count)))
		v = strtod(count, NULL);
	partial_success(o, (int64_t)v, why);
}

static void read_partial_success(struct otlp *o, const struct http_response *res)
{
	pb_response *r;

	if (res->body_len && strstr(res->content_type, "json")) {
		read_partial_success_json(o, res);
		return;
	}
	if (!res->body_len || !strstr(res->content_type, "protobuf"))
		return;
	r = opentelemetry__proto__collector__logs__v1__export_logs_service_response__unpack(
		NULL, res->body_len, (const uint8_t *)res->body);
	if (!r) {
		log_warn("otlp: %s: the reply to an export is not an ExportLogsServiceResponse", o->set.url);
		return;
	}
	if (r->partial_success)
		partial_success(o, r->partial_success->rejected_log_records,
				r->partial_success->error_message ? r->partial_success->error_message : "");
	opentelemetry__proto__collector__logs__v1__export_logs_service_response__free_unpacked(r, NULL);
}

/* The batch in flight will not be sent as it is: its rows will be read
 * again, from the bucket as it was, and its withheld ones not counted. */
static void batch_undo(struct otlp *o)
{
	o->bucket = o->bucket_before;
	o->nseqs = 0;
	o->nrecords = 0;
	o->withheld_rate = 0;
	o->withheld_severity = 0;
}

/* The batch in flight leaves the outbox, its withheld records counted
 * now, once: 0, or -EIO (logged) when the journal cannot mark it, and
 * its rows will be read again. */
static int acknowledge(struct otlp *o)
{
	if (journal_export_ack(o->journal, o->seqs, o->nseqs)) {
		log_error("otlp: journal: cannot mark %zu records exported: %s (they will be sent again)",
			  o->nseqs, journal_errmsg(o->journal));
		batch_undo(o);
		return -EIO;
	}
	o->st.withheld_rate += o->withheld_rate;
	o->st.withheld_severity += o->withheld_severity;
	metric_add(o->m_withheld_rate, (double)o->withheld_rate);
	metric_add(o->m_withheld_severity, (double)o->withheld_severity);
	o->nseqs = 0;
	o->withheld_rate = 0;
	o->withheld_severity = 0;
	return 0;
}

static void on_response(void *ctx, const struct http_response *res)
{
	struct otlp *o = ctx;
	char excerpt[256], why[512];
	uint64_t delay;

	o->in_flight = false;
	if (res->status >= 200 && res->status < 300) {
		if (o->failures)
			log_info("otlp: %s: exporting again after %u failed attempts", o->set.url, o->failures);
		o->failures = 0;
		read_partial_success(o, res);
		o->st.sent += o->nrecords;
		metric_add(o->m_sent, (double)o->nrecords);
		log_debug("otlp: %zu records exported in %.1f ms", o->nrecords, (double)res->elapsed_ns / 1e6);
		(void)acknowledge(o);
		next_step(o, true);
		return;
	}
	body_excerpt(res, excerpt, sizeof(excerpt));
	if (!retryable(res->status)) {
		/* the collector will never take these: retrying would block
		 * everything behind them */
		o->st.failed += o->nrecords;
		metric_add(o->m_failed, (double)o->nrecords);
		log_error("otlp: %s: HTTP %ld: %zu records refused, not retried%s%s", o->set.url,
			  res->status, o->nrecords, excerpt[0] ? ": " : "", excerpt);
		o->failures = 0;
		(void)acknowledge(o);
		next_step(o, true);
		return;
	}
	o->failures++;
	o->st.retries++;
	metric_add(o->m_retries, 1);
	delay = backoff(o);
	if (res->retry_after[0] && http_retry_after(res->retry_after, clock_real_ns(), &delay) == 0 &&
	    delay > OTLP_RETRY_AFTER_MAX)
		delay = OTLP_RETRY_AFTER_MAX;
	if (res->status)
		snprintf(why, sizeof(why), "HTTP %ld%s%s%s%s", res->status,
			 res->retry_after[0] ? " Retry-After: " : "", res->retry_after,
			 excerpt[0] ? ": " : "", excerpt);
	else
		snprintf(why, sizeof(why), "%s", res->error);
	/* the first failure says so; the rest of an outage is quieter */
	log_msg(o->failures == 1 ? LOG_WARN : LOG_DEBUG, "otlp: %s: %s; %zu records kept, retry in %.1fs",
		o->set.url, why, o->nrecords, (double)delay / 1e9);
	batch_undo(o);
	o->backing_off = true;
	schedule(o, delay);
}

static void send_batch(struct otlp *o)
{
	struct http_request req = {
		.method = "POST", .url = o->set.url, .headers = &o->set.headers,
		.timeout_ns = o->set.timeout_ns, .max_response = OTLP_MAX_RESPONSE,
		.ca_file = o->set.ca_file, .cert_file = o->set.cert_file, .key_file = o->set.key_file,
	};
	unsigned char *body = NULL;
	ssize_t len;
	int rc;

	len = build_request(o, &body);
	if (len == -EAGAIN) {
		/* a batch all withheld: the next one after the loop's other work */
		schedule(o, 0);
		return;
	}
	if (len <= 0) {
		if (len < 0) {
			o->failures++;
			log_msg(o->failures == 1 ? LOG_ERROR : LOG_DEBUG, "otlp: cannot build a request: %s",
				strerror((int)-len));
			o->backing_off = true;
			schedule(o, backoff(o));
			return;
		}
		next_step(o, false);
		return;
	}
	req.body = body;
	req.body_len = (size_t)len;
	rc = http_send(o->http, &req, on_response, o);
	free(body);
	if (rc) {
		batch_undo(o);
		o->backing_off = true;
		o->failures++;
		schedule(o, backoff(o));
		return;
	}
	o->in_flight = true;
}

static void on_timer(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct otlp *o = w->data;

	o->backing_off = false;
	if (!o->in_flight)
		send_batch(o);
}

struct otlp *otlp_new(struct ev_loop *loop, struct journal *j, struct otlp_settings *s)
{
	struct otlp *o = calloc(1, sizeof(*o));

	if (!o)
		return NULL;
	o->loop = loop;
	o->journal = j;
	o->set = *s;
	memset(s, 0, sizeof(*s));
	if (!o->set.batch)
		o->set.batch = 512;
	o->seqs = calloc(o->set.batch, sizeof(*o->seqs));
	o->http = http_new(loop);
	if (!o->seqs || !o->http)
		goto cleanup;
	o->m_sent = metrics_counter("reflexd_export_records_total", "records exported and acknowledged", NULL, NULL);
	o->m_rejected = metrics_counter("reflexd_export_rejected_total",
					"records the collector rejected in a partial success", NULL, NULL);
	o->m_failed = metrics_counter("reflexd_export_failed_total",
				      "records given up on after a non-retryable reply", NULL, NULL);
	o->m_retries = metrics_counter("reflexd_export_retries_total",
				       "export requests that failed and were retried", NULL, NULL);
	o->m_backlog = metrics_gauge("reflexd_export_backlog", "records waiting in the journal for export", NULL, NULL);
	o->m_dropped = metrics_counter("reflexd_export_dropped_total",
				       "records dropped at --export-backlog-max", NULL, NULL);
	o->m_withheld_rate = metrics_counter("reflexd_export_withheld_total",
					     "dry-run and suppressed records not exported (the journal keeps them)",
					     "reason", "rate");
	o->m_withheld_severity = metrics_counter("reflexd_export_withheld_total",
						 "dry-run and suppressed records not exported (the journal keeps them)",
						 "reason", "severity");
	o->bucket.tokens = (double)o->set.rate_max;
	ev_timer_init(&o->timer, on_timer, 0, 0);
	o->timer.data = o;
	if (journal_export_start(j, o->set.backlog_max, on_queued, o)) {
		errno = EIO;
		goto cleanup;
	}
	update_gauges(o);
	if (o->st.backlog)
		log_info("otlp: %llu records from before are waiting; sending them",
			 (unsigned long long)o->st.backlog);
	next_step(o, false);
	return o;
cleanup:
	otlp_free(o);
	return NULL;
}

void otlp_free(struct otlp *o)
{
	if (!o)
		return;
	ev_timer_stop(o->loop, &o->timer);
	/* a request in flight is abandoned: its records stay in the outbox */
	http_free(o->http);
	otlp_settings_free(&o->set);
	free(o->seqs);
	free(o);
}

void otlp_flush(struct otlp *o, void (*drained)(void *ctx), void *ctx)
{
	o->drained = drained;
	o->drained_ctx = ctx;
	if (!o->in_flight && !o->backing_off)
		ev_timer_stop(o->loop, &o->timer);
	next_step(o, false);
}

void otlp_stats(const struct otlp *o, struct otlp_stats *st)
{
	*st = o->st;
	journal_export_counts(o->journal, &st->backlog, &st->dropped);
}
