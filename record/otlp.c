#include <ctype.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>
#include <zlib.h>

#include "lib/http.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "record/otlp.h"
#include "lib/text.h"
#include "opentelemetry/proto/collector/logs/v1/logs_service.pb-c.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Logs__V1__LogRecord pb_record;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_request;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceResponse pb_response;

#define OTLP_MAX_RESPONSE (64 * 1024)
#define OTLP_RETRY_FIRST NSEC_PER_SEC
#define OTLP_RETRY_AFTER_MAX (3600 * NSEC_PER_SEC)
#define OTLP_ATTRS_MAX 32
/* The semantic conventions the attribute names follow (docs/otlp.md). */
#define OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.27.0"

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

/* Memory for one request's messages, freed at once. */
struct arena {
	struct chunk {
		struct chunk *next;
		size_t used, size;
		max_align_t data[];
	} *chunks;
};

static void *arena_alloc(struct arena *a, size_t size)
{
	struct chunk *c = a->chunks;

	size = (size + 15) & ~(size_t)15;
	if (!c || c->used + size > c->size) {
		size_t cap = size > 65536 ? size : 65536;

		c = malloc(sizeof(*c) + cap);
		if (!c)
			return NULL;
		c->used = 0;
		c->size = cap;
		c->next = a->chunks;
		a->chunks = c;
	}
	c->used += size;
	return memset((char *)c->data + c->used - size, 0, size);
}

static char *arena_strdup(struct arena *a, const char *s)
{
	char *p = arena_alloc(a, strlen(s) + 1);

	return p ? strcpy(p, s) : NULL;
}

/* s as the text of a protobuf string field, which must be valid UTF-8 (a
 * collector refuses the whole request otherwise): bytes that are not
 * become \xhh (lib/text.h, docs/otlp.md). */
static char *arena_text(struct arena *a, const char *s)
{
	size_t size = 4 * strlen(s) + 1;
	char *p;
	struct sbuf b;

	if (text_is_clean(s, 0))
		return arena_strdup(a, s);
	if (!(p = arena_alloc(a, size)))
		return NULL;
	sbuf_init(&b, p, size);
	sbuf_text(&b, s, 0);
	return p;
}

static void arena_free(struct arena *a)
{
	while (a->chunks) {
		struct chunk *c = a->chunks;

		a->chunks = c->next;
		free(c);
	}
}


/* Percent-decodes s in place (the W3C baggage form the OTEL_* lists use):
 * 0, or -EINVAL when a byte decodes to NUL, which would cut the value. */
static int percent_decode(char *s)
{
	char *out = s;

	for (; *s; s++) {
		if (s[0] == '%' && isxdigit((unsigned char)s[1]) && isxdigit((unsigned char)s[2])) {
			char hex[3] = { s[1], s[2], 0 };

			*out = (char)strtol(hex, NULL, 16);
			if (!*out++)
				return -EINVAL;
			s += 2;
		} else {
			*out++ = *s;
		}
	}
	*out = '\0';
	return 0;
}

/* An HTTP field name is a token (RFC 9110 5.1, tchar); a value has no
 * control character but tab (5.5): a CR or LF would start a header of
 * the caller's choosing. The reason in err, naming from. */
static int header_check(const char *from, const char *name, const char *value, char *err, size_t errlen)
{
	static const char tchar[] = "!#$%&'*+-.^_`|~";
	size_t shown = 0;

	/* a message shows the name up to a line break, never across it */
	while (name[shown] && !iscntrl((unsigned char)name[shown]))
		shown++;
	for (const char *c = name; *c; c++) {
		if (!isalnum((unsigned char)*c) && !strchr(tchar, *c)) {
			snprintf(err, errlen, "%s: header name '%.*s' has a character HTTP does not allow in a name "
				 "(0x%02x)", from, (int)shown, name, (unsigned char)*c);
			return -EINVAL;
		}
	}
	for (const char *c = value; *c; c++) {
		if (iscntrl((unsigned char)*c) && *c != '\t') {
			snprintf(err, errlen, "%s: the value of header '%s' has a control character (0x%02x): "
				 "refused, it could inject a header", from, name, (unsigned char)*c);
			return -EINVAL;
		}
	}
	return 0;
}

static char *trim(char *s)
{
	char *end;

	while (isspace((unsigned char)*s))
		s++;
	end = s + strlen(s);
	while (end > s && isspace((unsigned char)end[-1]))
		*--end = '\0';
	return s;
}

/* Sets key to value in a "key=value" list, replacing an earlier one. */
static int kv_set(struct strlist *l, const char *key, const char *value, const char *sep)
{
	size_t k = strlen(key);
	char *line;

	if (asprintf(&line, "%s%s%s", key, sep, value) < 0)
		return -ENOMEM;
	for (size_t i = 0; i < l->n; i++) {
		if (!strncmp(l->v[i], key, k) && !strncmp(l->v[i] + k, sep, strlen(sep))) {
			free(l->v[i]);
			l->v[i] = line;
			return 0;
		}
	}
	if (strlist_add(l, line)) {
		free(line);
		return -ENOMEM;
	}
	free(line);
	return 0;
}

/* "k1=v1,k2=v2" (values percent-encoded) into l as "k<sep>v": 0, or
 * -EINVAL naming what. headers: each pair must make a valid HTTP header. */
static int parse_pairs(const char *what, const char *text, struct strlist *l, const char *sep,
		       bool headers, char *err, size_t errlen)
{
	char *copy = strdup(text), *save = NULL;
	int rc = 0;

	if (!copy)
		return -ENOMEM;
	for (char *item = strtok_r(copy, ",", &save); !rc && item; item = strtok_r(NULL, ",", &save)) {
		char *eq = strchr(item, '='), *key, *value;

		if (!*trim(item))
			continue;
		if (!eq) {
			snprintf(err, errlen, "%s: '%s' is not key=value", what, trim(item));
			rc = -EINVAL;
			break;
		}
		*eq = '\0';
		key = trim(item);
		value = trim(eq + 1);
		if (percent_decode(value)) {
			snprintf(err, errlen, "%s: the value of '%s' decodes to a NUL byte (%%00)", what, key);
			rc = -EINVAL;
			break;
		}
		if (!*key) {
			snprintf(err, errlen, "%s: an empty key in '%s'", what, text);
			rc = -EINVAL;
			break;
		}
		if (headers && (rc = header_check(what, key, value, err, errlen)))
			break;
		rc = kv_set(l, key, value, sep);
	}
	free(copy);
	return rc;
}

/* The first of (option, logs variable, general variable) that is set, and
 * its name for messages. */
static const char *pick(const char *option, const char *option_name, const char *var,
			const char **from)
{
	static char name[64];
	const char *v;

	if (option) {
		*from = option_name;
		return option;
	}
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_LOGS_%s", var);
	if ((v = getenv(name)) && *v) {
		*from = name;
		return v;
	}
	snprintf(name, sizeof(name), "OTEL_EXPORTER_OTLP_%s", var);
	if ((v = getenv(name)) && *v) {
		*from = name;
		return v;
	}
	return NULL;
}

/* A TLS file named by from: readable now, or the reason in err. */
static int tls_file(const char *path, const char *from, char **out, char *err, size_t errlen)
{
	if (!path)
		return 0;
	if (access(path, R_OK)) {
		snprintf(err, errlen, "%s: %s: %s", from, path, strerror(errno));
		return -EINVAL;
	}
	*out = strdup(path);
	if (!*out) {
		snprintf(err, errlen, "out of memory");
		return -ENOMEM;
	}
	return 0;
}

static int url_ok(const char *url)
{
	return !strncmp(url, "http://", 7) || !strncmp(url, "https://", 8);
}

int otlp_settings(const struct otlp_config *cfg, const char *host, struct otlp_settings *s,
		  char *err, size_t errlen)
{
	const char *v, *from = "", *node = getenv("NODE_NAME");
	int rc;

	memset(s, 0, sizeof(*s));
	/* the endpoint: a logs URL as is, or a base URL with v1/logs */
	if (cfg->otlp_logs_endpoint) {
		snprintf(s->url, sizeof(s->url), "%s", cfg->otlp_logs_endpoint);
		from = "--otlp-logs-endpoint";
	} else if (cfg->otlp_endpoint) {
		snprintf(s->url, sizeof(s->url), "%s%sv1/logs", cfg->otlp_endpoint,
			 cfg->otlp_endpoint[strlen(cfg->otlp_endpoint) - 1] == '/' ? "" : "/");
		from = "--otlp-endpoint";
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_LOGS_ENDPOINT")) && *v) {
		snprintf(s->url, sizeof(s->url), "%s", v);
		from = "OTEL_EXPORTER_OTLP_LOGS_ENDPOINT";
	} else if ((v = getenv("OTEL_EXPORTER_OTLP_ENDPOINT")) && *v) {
		snprintf(s->url, sizeof(s->url), "%s%sv1/logs", v, v[strlen(v) - 1] == '/' ? "" : "/");
		from = "OTEL_EXPORTER_OTLP_ENDPOINT";
	} else {
		return 0;
	}
	if (strlen(s->url) == sizeof(s->url) - 1) {
		snprintf(err, errlen, "%s: the URL is longer than %zu bytes", from, sizeof(s->url) - 2);
		return -EINVAL;
	}
	if (!url_ok(s->url)) {
		snprintf(err, errlen, "%s: '%s' is not an http:// or https:// URL", from, s->url);
		return -EINVAL;
	}
	/* OTLP/HTTP only: protobuf sent to a gRPC port would fail every request */
	if ((v = pick(NULL, NULL, "PROTOCOL", &from)) && strcmp(v, "http/protobuf")) {
		if (!strcmp(v, "grpc")) {
			snprintf(err, errlen, "%s: protocol 'grpc' is not supported: reflexd exports OTLP/HTTP "
				 "(http/protobuf or http/json; a collector's OTLP/HTTP port is 4318)", from);
			return -EINVAL;
		}
		if (strcmp(v, "http/json")) {
			snprintf(err, errlen, "%s: protocol '%s' is not grpc, http/protobuf or http/json", from, v);
			return -EINVAL;
		}
		s->json = true;
	}
	s->timeout_ns = 10 * NSEC_PER_SEC;
	if (cfg->otlp_timeout_ns) {
		s->timeout_ns = cfg->otlp_timeout_ns;
	} else if ((v = pick(NULL, NULL, "TIMEOUT", &from))) {
		char *end;
		long ms = strtol(v, &end, 10);

		if (*end || ms < 0 || ms > 600000) {
			snprintf(err, errlen, "%s: timeout '%s' is not a number of milliseconds (0: no limit, "
				 "or 1 to 600000)", from, v);
			return -EINVAL;
		}
		/* the specification's 0: no limit */
		s->timeout_ns = ms ? (uint64_t)ms * NSEC_PER_MSEC : HTTP_TIMEOUT_NONE;
	}
	if ((v = pick(cfg->otlp_compression, "--otlp-compression", "COMPRESSION", &from))) {
		if (strcasecmp(v, "gzip") && strcasecmp(v, "none")) {
			snprintf(err, errlen, "%s: compression '%s' is not gzip or none", from, v);
			return -EINVAL;
		}
		s->gzip = !strcasecmp(v, "gzip");
	}
	if ((v = pick(cfg->otlp_headers, "--otlp-headers", "HEADERS", &from))) {
		if ((rc = parse_pairs(from, v, &s->headers, ": ", true, err, errlen)))
			goto fail;
	}
	v = pick(cfg->otlp_certificate, "--otlp-certificate", "CERTIFICATE", &from);
	if ((rc = tls_file(v, from, &s->ca_file, err, errlen)))
		goto fail;
	v = pick(cfg->otlp_client_certificate, "--otlp-client-certificate", "CLIENT_CERTIFICATE", &from);
	if ((rc = tls_file(v, from, &s->cert_file, err, errlen)))
		goto fail;
	v = pick(cfg->otlp_client_key, "--otlp-client-key", "CLIENT_KEY", &from);
	if ((rc = tls_file(v, from, &s->key_file, err, errlen)))
		goto fail;
	if (!s->cert_file != !s->key_file) {
		snprintf(err, errlen, "a client certificate needs its key, and a key its certificate "
			 "(--otlp-client-certificate and --otlp-client-key)");
		rc = -EINVAL;
		goto fail;
	}
	/* the resource: what reflexd knows, then the user's word on it */
	if (kv_set(&s->resource, "service.name", "reflexd", "=") ||
	    kv_set(&s->resource, "service.version", REFLEX_VERSION, "=") ||
	    kv_set(&s->resource, "host.name", host, "=") ||
	    (node && *node && kv_set(&s->resource, "k8s.node.name", node, "=")))
		goto nomem;
	if ((v = getenv("OTEL_RESOURCE_ATTRIBUTES")) &&
	    (rc = parse_pairs("OTEL_RESOURCE_ATTRIBUTES", v, &s->resource, "=", false, err, errlen)))
		goto fail;
	if (cfg->resource_attributes &&
	    (rc = parse_pairs("--resource-attributes", cfg->resource_attributes, &s->resource, "=", false,
				      err, errlen)))
		goto fail;
	v = cfg->service_name ? cfg->service_name : getenv("OTEL_SERVICE_NAME");
	if (v && *v && kv_set(&s->resource, "service.name", v, "="))
		goto nomem;
	s->batch = (size_t)cfg->otlp_batch;
	s->batch_delay_ns = cfg->otlp_batch_delay_ns;
	s->retry_max_ns = cfg->otlp_retry_max_ns;
	s->backlog_max = (uint64_t)cfg->export_backlog_max;
	s->rate_max = (uint64_t)cfg->otlp_rate_max;
	v = cfg->otlp_severity_floor ? cfg->otlp_severity_floor : "INFO";
	s->severity_floor = !strcasecmp(v, "INFO") ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO
			  : !strcasecmp(v, "WARN") ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN
			  : !strcasecmp(v, "ERROR") ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR
			  : -1;
	if (s->severity_floor < 0) {
		snprintf(err, errlen, "--otlp-severity-floor: '%s' is not INFO, WARN or ERROR", v);
		rc = -EINVAL;
		goto fail;
	}
	return 1;
nomem:
	snprintf(err, errlen, "out of memory");
	rc = -ENOMEM;
fail:
	otlp_settings_free(s);
	return rc;
}

void otlp_settings_free(struct otlp_settings *s)
{
	strlist_free(&s->headers);
	strlist_free(&s->resource);
	free(s->ca_file);
	free(s->cert_file);
	free(s->key_file);
}


static pb_kv *attr(struct arena *a, const char *key)
{
	pb_kv *kv = arena_alloc(a, sizeof(*kv));
	pb_any *v = arena_alloc(a, sizeof(*v));

	if (!kv || !v)
		return NULL;
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(v);
	kv->key = (char *)key;
	kv->value = v;
	return kv;
}

struct attrs {
	struct arena *a;
	pb_kv **v;
	size_t n;
};

static void attr_str(struct attrs *l, const char *key, const char *value)
{
	pb_kv *kv;

	if (!value || !*value || l->n == OTLP_ATTRS_MAX || !(kv = attr(l->a, key)))
		return;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	kv->value->string_value = arena_text(l->a, value);
	if (kv->value->string_value)
		l->v[l->n++] = kv;
}

static void attr_int(struct attrs *l, const char *key, int64_t value)
{
	pb_kv *kv;

	if (l->n == OTLP_ATTRS_MAX || !(kv = attr(l->a, key)))
		return;
	kv->value->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
	kv->value->int_value = value;
	l->v[l->n++] = kv;
}

typedef Opentelemetry__Proto__Common__V1__KeyValueList pb_kvlist;
typedef Opentelemetry__Proto__Common__V1__ArrayValue pb_array;

#define EVIDENCE_DEPTH 8 /* deeper values go as their JSON text */

/* A JSON value as an AnyValue: objects as kvlists, arrays as arrays,
 * integers as int, other numbers as double; false when out of memory.
 * The evidence is at most 4 KiB of JSON, so its AnyValue is bounded too. */
static bool any_of_json(struct arena *a, const struct json_val *v, int depth, pb_any *out)
{
	struct json_val it = { 0 }, key = { 0 };
	char *text;
	double num;
	size_t n = 0;

	opentelemetry__proto__common__v1__any_value__init(out);
	if ((v->type == JSON_OBJECT || v->type == JSON_ARRAY) && depth < EVIDENCE_DEPTH) {
		pb_kvlist *kvl = NULL;
		pb_array *arr = NULL;
		void **items;

		while (json_next(v, &it, &key))
			n++;
		items = arena_alloc(a, (n ? n : 1) * sizeof(*items));
		if (!items)
			return false;
		memset(&it, 0, sizeof(it));
		for (size_t i = 0; i < n && json_next(v, &it, &key); i++) {
			pb_any *val = arena_alloc(a, sizeof(*val));
			pb_kv *kv;

			if (!val || !any_of_json(a, &it, depth + 1, val))
				return false;
			if (v->type == JSON_ARRAY) {
				items[i] = val;
				continue;
			}
			if (!(kv = arena_alloc(a, sizeof(*kv))) || !(text = arena_alloc(a, key.n + 1)))
				return false;
			opentelemetry__proto__common__v1__key_value__init(kv);
			(void)json_str(&key, text, key.n + 1);
			kv->key = arena_text(a, text);
			kv->value = val;
			if (!kv->key)
				return false;
			items[i] = kv;
		}
		if (v->type == JSON_OBJECT) {
			if (!(kvl = arena_alloc(a, sizeof(*kvl))))
				return false;
			opentelemetry__proto__common__v1__key_value_list__init(kvl);
			kvl->values = (pb_kv **)items;
			kvl->n_values = n;
			out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
			out->kvlist_value = kvl;
		} else {
			if (!(arr = arena_alloc(a, sizeof(*arr))))
				return false;
			opentelemetry__proto__common__v1__array_value__init(arr);
			arr->values = (pb_any **)items;
			arr->n_values = n;
			out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
			out->array_value = arr;
		}
		return true;
	}
	if (v->type == JSON_BOOL) {
		out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE;
		out->bool_value = v->p[0] == 't';
		return true;
	}
	/* a number too big for a double (1e400) goes as its text: OTLP's JSON
	 * encoding has no infinity */
	if (v->type == JSON_NUMBER && !json_num(v, &num) && isfinite(num)) {
		bool whole = !memchr(v->p, '.', v->n) && !memchr(v->p, 'e', v->n) && !memchr(v->p, 'E', v->n) &&
			     num >= -9.2e18 && num <= 9.2e18;

		if (whole) {
			out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE;
			out->int_value = strtoll(v->p, NULL, 10);
		} else {
			out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE;
			out->double_value = num;
		}
		return true;
	}
	if (v->type == JSON_NULL)
		return true; /* an empty AnyValue is OTLP's null */
	/* a string, or a value nested too deep: its text */
	if (!(text = arena_alloc(a, v->n + 1)))
		return false;
	if (v->type != JSON_STRING || json_str(v, text, v->n + 1)) {
		memcpy(text, v->p, v->n);
		text[v->n] = '\0';
	}
	out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	out->string_value = arena_text(a, text);
	return out->string_value != NULL;
}

/* The condition's evidence as a structured attribute (a kvlist), or as
 * its text when it is not a JSON object. */
static void attr_evidence(struct attrs *l, const char *key, const char *evidence)
{
	struct json_val v;
	pb_kv *kv;

	if (json_parse(evidence, strlen(evidence), &v) || v.type != JSON_OBJECT) {
		attr_str(l, key, evidence);
		return;
	}
	if (l->n == OTLP_ATTRS_MAX || !(kv = attr(l->a, key)) || !any_of_json(l->a, &v, 0, kv->value))
		return;
	l->v[l->n++] = kv;
}

/* The signal a signal action sends, from its parameters' JSON. */
static void param_signal(const char *params, char *sig, size_t size)
{
	const char *p = strstr(params, "\"signal\":\"");

	sig[0] = '\0';
	if (p)
		snprintf(sig, size, "%.*s", (int)strcspn(p + 10, "\""), p + 10);
}

/* A record about reflexd itself rather than a decision about a target:
 * the step of its lifecycle (its event is reflex.lifecycle.<step>), or
 * NULL. A reload of the rules is about no condition; a rule disabled
 * (its function failed) says so in its detail. */
static const char *lifecycle(const struct decision *d)
{
	if (d->condition.kind >= REFLEX_COND_KIND_COUNT && !d->condition.target.pid)
		return d->action;
	if (!strncmp(d->detail, DECISION_RULE_DISABLED, strlen(DECISION_RULE_DISABLED)))
		return "rule_disabled";
	return NULL;
}

/* The one sentence a person reads: what was done (or not) to whom, on
 * what evidence, by which rule. */
static void record_body(const struct decision *d, const char *event, struct sbuf *b)
{
	const struct target *t = &d->condition.target;
	char sig[32], held[32], whom[64];
	/* the action as a verb: base form, past form, and its object */
	const char *base = "run", *past = "ran", *step;
	char what[160];

	if (!strcmp(event, JOURNAL_EVENT_VERIFICATION)) {
		sbuf_printf(b, "verification of decision %s (rule %s, %s on pid %d): %s", d->id, d->rule,
			    d->action, t->pid, d->verify);
		return;
	}
	step = lifecycle(d);
	if (step && !strcmp(step, "rule_disabled")) {
		sbuf_printf(b, "rule %s disabled until the rules are reloaded, evaluating %s on pid %d (%s): %s",
			    d->rule, condition_kind_name(d->condition.kind), t->pid, t->comm,
			    d->detail + strlen(DECISION_RULE_DISABLED));
		return;
	}
	if (step) {
		sbuf_printf(b, "%s %s: %s", step, d->outcome == REFLEX_OUTCOME_FAILED ? "failed" : "done", d->detail);
		return;
	}
	snprintf(whom, sizeof(whom), "pid %d (%s)", t->pid, t->comm);
	param_signal(d->params, sig, sizeof(sig));
	if (!strcmp(d->action, "signal") && !strcmp(sig, "SIGKILL")) {
		base = "kill";
		past = "killed";
		snprintf(what, sizeof(what), "%s with SIGKILL", whom);
	} else if (!strcmp(d->action, "signal")) {
		base = "signal";
		past = "signalled";
		snprintf(what, sizeof(what), "%s with %s", whom, sig[0] ? sig : "a signal");
	} else if (t->pid) {
		snprintf(what, sizeof(what), "%s on %s", d->action, whom);
	} else {
		snprintf(what, sizeof(what), "%s", d->action);
	}
	switch (d->outcome) {
	case REFLEX_OUTCOME_ACTED:
		sbuf_printf(b, "%s %s", past, what);
		break;
	case REFLEX_OUTCOME_DRY_RUN:
		sbuf_printf(b, "would have %s %s (dry-run)", strcmp(past, "ran") ? past : "run", what);
		break;
	case REFLEX_OUTCOME_SUPPRESSED:
		sbuf_printf(b, "did not %s %s (%s)", base, what, d->detail);
		break;
	case REFLEX_OUTCOME_FAILED:
		sbuf_printf(b, "failed to %s %s (%s)", base, what, d->detail);
		break;
	default:
		sbuf_printf(b, "may have %s %s (outcome unknown: reflexd stopped)",
			    strcmp(past, "ran") ? past : "run", what);
		break;
	}
	if (d->condition.kind < REFLEX_COND_KIND_COUNT) {
		duration_format(d->held_ns, held, sizeof(held));
		sbuf_printf(b, ": %s%s%s, held %s", condition_kind_name(d->condition.kind),
			    d->condition.summary[0] ? ", " : "", d->condition.summary, held);
	} else if (d->detail[0] && d->outcome != REFLEX_OUTCOME_FAILED) {
		sbuf_printf(b, ": %s", d->detail);
	}
	sbuf_printf(b, "; rule %s", d->rule);
}

static Opentelemetry__Proto__Logs__V1__SeverityNumber severity(const struct decision *d, const char *event,
							       const char **text)
{
	if (!strcmp(event, JOURNAL_EVENT_VERIFICATION)) {
		bool cleared = !strncmp(d->verify, "cleared", 7);

		*text = cleared ? "INFO" : "WARN";
		return cleared ? OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO
			       : OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN;
	}
	/* a lifecycle step done is news, not a warning; one refused is an error */
	if (lifecycle(d) && d->outcome != REFLEX_OUTCOME_FAILED) {
		*text = "INFO";
		return OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
	}
	switch (d->outcome) {
	case REFLEX_OUTCOME_FAILED:
		*text = "ERROR";
		return OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_ERROR;
	case REFLEX_OUTCOME_ACTED:
	case REFLEX_OUTCOME_UNKNOWN:
		*text = "WARN";
		return OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_WARN;
	default:
		*text = "INFO";
		return OPENTELEMETRY__PROTO__LOGS__V1__SEVERITY_NUMBER__SEVERITY_NUMBER_INFO;
	}
}

/* The LogRecord of one outbox entry. */
static pb_record *make_record(struct arena *a, const struct journal_entry *e, const struct decision *d)
{
	const struct target *t = &d->condition.target;
	pb_record *r = arena_alloc(a, sizeof(*r));
	pb_any *body = arena_alloc(a, sizeof(*body));
	struct attrs l = { .a = a, .v = arena_alloc(a, OTLP_ATTRS_MAX * sizeof(pb_kv *)) };
	const char *exe_name = strrchr(t->exe, '/');
	bool verification = !strcmp(e->event, JOURNAL_EVENT_VERIFICATION);
	char text[1024], event[64], cgroup[sizeof(t->cgroup) + 3];
	struct sbuf b;
	const char *sev;

	if (!r || !body || !l.v)
		return NULL;
	opentelemetry__proto__logs__v1__log_record__init(r);
	opentelemetry__proto__common__v1__any_value__init(body);
	r->time_unix_nano = (uint64_t)(verification ? e->queued_ns : d->time_ns);
	r->observed_time_unix_nano = (uint64_t)e->queued_ns;
	r->severity_number = severity(d, e->event, &sev);
	r->severity_text = (char *)sev;
	if (verification)
		snprintf(event, sizeof(event), "reflex.verification");
	else if (lifecycle(d))
		snprintf(event, sizeof(event), "reflex.lifecycle.%s", lifecycle(d));
	else
		snprintf(event, sizeof(event), "reflex.decision");
	r->event_name = arena_strdup(a, event);
	sbuf_init(&b, text, sizeof(text));
	record_body(d, e->event, &b);
	body->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE;
	body->string_value = arena_text(a, text);
	r->body = body;

	attr_str(&l, "reflex.decision.id", d->id);
	if (t->pid) {
		attr_int(&l, "process.pid", t->pid);
		attr_str(&l, "process.executable.name", exe_name ? exe_name + 1 : t->comm);
		attr_str(&l, "process.executable.path", t->exe);
		attr_str(&l, "process.command", t->command);
		if (t->tid)
			attr_int(&l, "thread.id", t->tid);
	}
	attr_str(&l, "container.id", t->container_id);
	attr_str(&l, "k8s.pod.name", t->pod);
	attr_str(&l, "k8s.pod.uid", t->pod_uid);
	attr_str(&l, "k8s.namespace.name", t->namespace);
	attr_str(&l, "k8s.container.name", t->container);
	/* as a line of /proc/PID/cgroup, which the convention asks for */
	if (t->cgroup[0]) {
		snprintf(cgroup, sizeof(cgroup), "0::%s", t->cgroup);
		attr_str(&l, "process.linux.cgroup", cgroup);
	}
	attr_str(&l, "reflex.mode", decision_mode_name(d->mode));
	attr_str(&l, "reflex.rule", d->rule);
	attr_str(&l, "reflex.rule.file", d->rule_file);
	attr_str(&l, "reflex.rule.hash", d->rule_hash);
	if (d->condition.kind < REFLEX_COND_KIND_COUNT) {
		attr_str(&l, "reflex.condition.kind", condition_kind_name(d->condition.kind));
		attr_str(&l, "reflex.condition.summary", d->condition.summary);
		attr_evidence(&l, "reflex.condition.evidence", d->condition.evidence);
		attr_int(&l, "reflex.condition.held_ms", (int64_t)(d->held_ns / NSEC_PER_MSEC));
	}
	attr_str(&l, "reflex.action", d->action);
	attr_str(&l, "reflex.action.params", d->params);
	attr_int(&l, "reflex.action.rung", d->rung);
	attr_str(&l, "reflex.outcome", decision_outcome_name(d->outcome));
	attr_str(&l, "reflex.outcome.detail", d->detail);
	attr_str(&l, "reflex.verification", d->verify);
	attr_str(&l, "reflex.explain", d->explain);
	r->attributes = l.v;
	r->n_attributes = l.n;
	return body->string_value && r->event_name ? r : NULL;
}

/* A batch being built: the records, and the outbox entries they carry. */
struct batch {
	struct otlp *o;
	struct arena *a;
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
	if ((int)severity(d, e->event, &sev) < o->set.severity_floor) {
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
	if (withhold(b, e, d))
		return 0;
	r = make_record(b->a, e, d);
	if (!r) {
		b->failed = true;
		return 1;
	}
	b->records[b->n++] = r;
	return 0;
}

/* OTLP's JSON encoding (the proto3 JSON mapping, with OTLP's rules):
 * lowerCamelCase field names, enums as numbers, 64-bit integers as
 * strings. Every string goes through sbuf_json_str, so the request is
 * valid UTF-8 whatever bytes a record holds. */
static void json_kvs(struct sbuf *b, const char *field, pb_kv *const *kv, size_t n);

static void json_any(struct sbuf *b, const pb_any *v)
{
	switch (v->value_case) {
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_INT_VALUE:
		sbuf_puts(b, "{\"intValue\":\"");
		sbuf_int(b, (long long)v->int_value);
		sbuf_puts(b, "\"}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_BOOL_VALUE:
		sbuf_puts(b, v->bool_value ? "{\"boolValue\":true}" : "{\"boolValue\":false}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_DOUBLE_VALUE:
		sbuf_printf(b, "{\"doubleValue\":%.17g}", v->double_value);
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE:
		sbuf_puts(b, "{\"kvlistValue\":{");
		json_kvs(b, "values", v->kvlist_value->values, v->kvlist_value->n_values);
		sbuf_puts(b, "}}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE:
		sbuf_puts(b, "{\"arrayValue\":{\"values\":[");
		for (size_t i = 0; i < v->array_value->n_values; i++) {
			if (i)
				sbuf_puts(b, ",");
			json_any(b, v->array_value->values[i]);
		}
		sbuf_puts(b, "]}}");
		break;
	case OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_STRING_VALUE:
		sbuf_puts(b, "{\"stringValue\":");
		sbuf_json_str(b, v->string_value);
		sbuf_puts(b, "}");
		break;
	default:
		sbuf_puts(b, "{}");
	}
}

/* "field":[{"key":...,"value":...},...]: attributes, or a kvlist's values */
static void json_kvs(struct sbuf *b, const char *field, pb_kv *const *kv, size_t n)
{
	sbuf_printf(b, "\"%s\":[", field);
	for (size_t i = 0; i < n; i++) {
		sbuf_puts(b, i ? ",{\"key\":" : "{\"key\":");
		sbuf_json_str(b, kv[i]->key);
		sbuf_puts(b, ",\"value\":");
		json_any(b, kv[i]->value);
		sbuf_puts(b, "}");
	}
	sbuf_puts(b, "]");
}

static void json_record(struct sbuf *b, const pb_record *r)
{
	sbuf_printf(b, "{\"timeUnixNano\":\"%llu\",\"observedTimeUnixNano\":\"%llu\",\"severityNumber\":%d,"
		    "\"severityText\":", (unsigned long long)r->time_unix_nano,
		    (unsigned long long)r->observed_time_unix_nano, (int)r->severity_number);
	sbuf_json_str(b, r->severity_text);
	sbuf_puts(b, ",\"body\":");
	json_any(b, r->body);
	sbuf_puts(b, ",");
	json_kvs(b, "attributes", r->attributes, r->n_attributes);
	sbuf_puts(b, ",\"eventName\":");
	sbuf_json_str(b, r->event_name);
	sbuf_puts(b, "}");
}

static void json_write_request(struct sbuf *b, const pb_request *req)
{
	sbuf_puts(b, "{\"resourceLogs\":[");
	for (size_t i = 0; i < req->n_resource_logs; i++) {
		const Opentelemetry__Proto__Logs__V1__ResourceLogs *rl = req->resource_logs[i];

		sbuf_puts(b, i ? ",{\"resource\":{" : "{\"resource\":{");
		json_kvs(b, "attributes", rl->resource->attributes, rl->resource->n_attributes);
		sbuf_puts(b, "},\"scopeLogs\":[");
		for (size_t k = 0; k < rl->n_scope_logs; k++) {
			const Opentelemetry__Proto__Logs__V1__ScopeLogs *sl = rl->scope_logs[k];

			sbuf_puts(b, k ? ",{\"scope\":{\"name\":" : "{\"scope\":{\"name\":");
			sbuf_json_str(b, sl->scope->name);
			sbuf_puts(b, ",\"version\":");
			sbuf_json_str(b, sl->scope->version);
			sbuf_puts(b, "},\"logRecords\":[");
			for (size_t r = 0; r < sl->n_log_records; r++) {
				if (r)
					sbuf_puts(b, ",");
				json_record(b, sl->log_records[r]);
			}
			sbuf_puts(b, "],\"schemaUrl\":");
			sbuf_json_str(b, sl->schema_url);
			sbuf_puts(b, "}");
		}
		sbuf_puts(b, "],\"schemaUrl\":");
		sbuf_json_str(b, rl->schema_url);
		sbuf_puts(b, "}");
	}
	sbuf_puts(b, "]}");
}

/* req as JSON in a new buffer: its length, or -ENOMEM. The buffer starts
 * at a few times the protobuf form's size (JSON repeats the field names)
 * and doubles until the request fits. */
static ssize_t json_request(const pb_request *req, unsigned char **out)
{
	size_t size = 4 * opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(req) +
		      4096;
	struct sbuf b;
	char *text;

	for (;; size *= 2) {
		if (!(text = malloc(size)))
			return -ENOMEM;
		sbuf_init(&b, text, size);
		json_write_request(&b, req);
		if (!b.truncated)
			break;
		free(text);
	}
	*out = (unsigned char *)text;
	return (ssize_t)b.len;
}

static int acknowledge(struct otlp *o);
static void batch_undo(struct otlp *o);

/* The request for the oldest entries, packed (and gzipped when asked):
 * its length, 0 when nothing waits, -EAGAIN when all it took were
 * withheld (acknowledged: more may wait), or -errno (-EIO: the journal
 * failed). On an error the rows are left to be read again. */
static ssize_t build_request(struct otlp *o, unsigned char **out)
{
	Opentelemetry__Proto__Resource__V1__Resource resource = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
		OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT, *slp = &sl;
	Opentelemetry__Proto__Logs__V1__ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT, *rlp = &rl;
	pb_request req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
	struct arena a = { 0 };
	struct batch b = { .o = o, .a = &a };
	struct attrs res = { .a = &a };
	unsigned char *packed = NULL;
	ssize_t len = -ENOMEM;

	b.records = arena_alloc(&a, o->set.batch * sizeof(*b.records));
	res.v = arena_alloc(&a, OTLP_ATTRS_MAX * sizeof(pb_kv *));
	if (!b.records || !res.v)
		goto out;
	o->nseqs = 0;
	o->bucket_before = o->bucket;
	if (journal_export_next(o->journal, o->set.batch, add_entry, &b)) {
		len = -EIO;
		goto out;
	}
	if (b.failed)
		goto out;
	o->nseqs = b.nseqs;
	o->nrecords = b.n;
	o->withheld_rate = b.withheld_rate;
	o->withheld_severity = b.withheld_severity;
	if (!b.n) {
		/* nothing, or everything withheld: these leave the outbox now */
		if (b.nseqs)
			len = acknowledge(o) ? -EIO : -EAGAIN;
		else
			len = 0;
		goto out;
	}
	for (size_t i = 0; i < o->set.resource.n; i++) {
		char *kv = arena_text(&a, o->set.resource.v[i]), *eq = kv ? strchr(kv, '=') : NULL;

		if (!eq)
			goto out;
		*eq = '\0';
		attr_str(&res, kv, eq + 1);
	}
	resource.attributes = res.v;
	resource.n_attributes = res.n;
	scope.name = "reflexd";
	scope.version = REFLEX_VERSION;
	sl.scope = &scope;
	sl.schema_url = OTLP_SCHEMA_URL;
	rl.schema_url = OTLP_SCHEMA_URL;
	sl.log_records = b.records;
	sl.n_log_records = b.n;
	rl.resource = &resource;
	rl.scope_logs = &slp;
	rl.n_scope_logs = 1;
	req.resource_logs = &rlp;
	req.n_resource_logs = 1;
	if (o->set.json) {
		len = json_request(&req, &packed);
		if (len < 0)
			goto out;
	} else {
		len = (ssize_t)opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(&req);
		packed = malloc((size_t)len ? (size_t)len : 1);
		if (!packed) {
			len = -ENOMEM;
			goto out;
		}
		opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(&req, packed);
	}
	if (o->set.gzip) {
		z_stream z = { 0 };
		uLong bound;
		unsigned char *gz;

		/* windowBits 15 + 16: a gzip header and trailer, not zlib's */
		if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK) {
			len = -ENOMEM;
			goto out;
		}
		bound = deflateBound(&z, (uLong)len);
		gz = malloc(bound);
		z.next_in = packed;
		z.avail_in = (uInt)len;
		z.next_out = gz;
		z.avail_out = (uInt)bound;
		if (!gz || deflate(&z, Z_FINISH) != Z_STREAM_END) {
			deflateEnd(&z);
			free(gz);
			len = -ENOMEM;
			goto out;
		}
		len = (ssize_t)z.total_out;
		deflateEnd(&z);
		free(packed);
		packed = gz;
	}
	*out = packed;
	packed = NULL;
out:
	if (len < 0 && len != -EAGAIN)
		batch_undo(o);
	free(packed);
	arena_free(&a);
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
	if (kv_set(&o->set.headers, "Content-Type", o->set.json ? "application/json" : "application/x-protobuf",
		   ": ") ||
	    (o->set.gzip && kv_set(&o->set.headers, "Content-Encoding", "gzip", ": ")) ||
	    kv_set(&o->set.headers, "User-Agent", "reflexd/" REFLEX_VERSION, ": "))
		goto fail;
	o->seqs = calloc(o->set.batch, sizeof(*o->seqs));
	o->http = http_new(loop);
	if (!o->seqs || !o->http)
		goto fail;
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
		goto fail;
	}
	update_gauges(o);
	if (o->st.backlog)
		log_info("otlp: %llu records from before are waiting; sending them",
			 (unsigned long long)o->st.backlog);
	next_step(o, false);
	return o;
fail:
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
