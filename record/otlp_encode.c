#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "lib/json.h"
#include "lib/text.h"
#include "model/decision_fields.h"
#include "record/otlp_encode.h"

typedef Opentelemetry__Proto__Common__V1__KeyValue pb_kv;
typedef Opentelemetry__Proto__Common__V1__AnyValue pb_any;
typedef Opentelemetry__Proto__Collector__Logs__V1__ExportLogsServiceRequest pb_request;

#define OTLP_ATTRS_MAX 32
/* The semantic conventions the attribute names follow (docs/otlp.md). */
#define OTLP_SCHEMA_URL "https://opentelemetry.io/schemas/1.27.0"

void *otlp_arena_alloc(struct otlp_arena *a, size_t size)
{
	struct otlp_chunk *c = a->chunks;

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

static char *arena_strdup(struct otlp_arena *a, const char *s)
{
	char *p = otlp_arena_alloc(a, strlen(s) + 1);

	return p ? strcpy(p, s) : NULL;
}

/* s as the text of a protobuf string field, which must be valid UTF-8 (a
 * collector refuses the whole request otherwise): bytes that are not
 * become \xhh (lib/text.h, docs/otlp.md). */
static char *arena_text(struct otlp_arena *a, const char *s)
{
	size_t size = 4 * strlen(s) + 1;
	char *p;
	struct sbuf b;

	if (text_is_clean(s, 0))
		return arena_strdup(a, s);
	if (!(p = otlp_arena_alloc(a, size)))
		return NULL;
	sbuf_init(&b, p, size);
	sbuf_text(&b, s, 0);
	return p;
}

void otlp_arena_free(struct otlp_arena *a)
{
	while (a && a->chunks) {
		struct otlp_chunk *c = a->chunks;

		a->chunks = c->next;
		free(c);
	}
}


static pb_kv *attr(struct otlp_arena *a, const char *key)
{
	pb_kv *kv = otlp_arena_alloc(a, sizeof(*kv));
	pb_any *v = otlp_arena_alloc(a, sizeof(*v));

	if (!kv || !v)
		return NULL;
	opentelemetry__proto__common__v1__key_value__init(kv);
	opentelemetry__proto__common__v1__any_value__init(v);
	kv->key = (char *)key;
	kv->value = v;
	return kv;
}

struct attrs {
	struct otlp_arena *a;
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

static bool any_of_json(struct otlp_arena *a, const struct json_val *v, int depth, pb_any *out);

/* An object as a kvlist, an array as an array, their members in turn. */
static bool any_of_container(struct otlp_arena *a, const struct json_val *v, int depth, pb_any *out)
{
	struct json_val it = { 0 }, key = { 0 };
	size_t n = 0;
	void **items;
	char *text;

	while (json_next(v, &it, &key))
		n++;
	items = otlp_arena_alloc(a, (n ? n : 1) * sizeof(*items));
	if (!items)
		return false;
	memset(&it, 0, sizeof(it));
	for (size_t i = 0; i < n && json_next(v, &it, &key); i++) {
		pb_any *val = otlp_arena_alloc(a, sizeof(*val));
		pb_kv *kv;

		if (!val || !any_of_json(a, &it, depth + 1, val))
			return false;
		if (v->type == JSON_ARRAY) {
			items[i] = val;
			continue;
		}
		if (!(kv = otlp_arena_alloc(a, sizeof(*kv))) || !(text = otlp_arena_alloc(a, key.n + 1)))
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
		pb_kvlist *kvl = otlp_arena_alloc(a, sizeof(*kvl));

		if (!kvl)
			return false;
		opentelemetry__proto__common__v1__key_value_list__init(kvl);
		kvl->values = (pb_kv **)items;
		kvl->n_values = n;
		out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_KVLIST_VALUE;
		out->kvlist_value = kvl;
	} else {
		pb_array *arr = otlp_arena_alloc(a, sizeof(*arr));

		if (!arr)
			return false;
		opentelemetry__proto__common__v1__array_value__init(arr);
		arr->values = (pb_any **)items;
		arr->n_values = n;
		out->value_case = OPENTELEMETRY__PROTO__COMMON__V1__ANY_VALUE__VALUE_ARRAY_VALUE;
		out->array_value = arr;
	}
	return true;
}

/* A JSON value as an AnyValue: objects as kvlists, arrays as arrays,
 * integers as int, other numbers as double; false when out of memory.
 * The evidence is at most 4 KiB of JSON, so its AnyValue is bounded too. */
static bool any_of_json(struct otlp_arena *a, const struct json_val *v, int depth, pb_any *out)
{
	char *text;
	double num;

	opentelemetry__proto__common__v1__any_value__init(out);
	if ((v->type == JSON_OBJECT || v->type == JSON_ARRAY) && depth < EVIDENCE_DEPTH)
		return any_of_container(a, v, depth, out);
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
	if (!(text = otlp_arena_alloc(a, v->n + 1)))
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

pb_severity otlp_severity(const struct decision *d, const char *event, const char **text)
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

/* The decision's attributes, from its field table (model/decision_fields.h):
 * a field is left out where it means nothing (no target process, no
 * condition) or is empty. */
static void record_attrs(struct attrs *l, const struct decision *d)
{
	size_t nf;
	const struct decision_field *f = decision_fields(&nf);
	char buf[sizeof(d->condition.target.cgroup) + 64];

	for (size_t i = 0; i < nf; i++) {
		if (!f[i].otlp || !decision_field_present(&f[i], d))
			continue;
		if (decision_field_is_int(&f[i]))
			attr_int(l, f[i].otlp, decision_field_int(&f[i], d));
		else if (f[i].flags & DECISION_FIELD_MAP)
			attr_evidence(l, f[i].otlp, decision_field_text(&f[i], d, buf, sizeof(buf)));
		else
			attr_str(l, f[i].otlp, decision_field_text(&f[i], d, buf, sizeof(buf)));
	}
}

pb_record *otlp_record(struct otlp_arena *a, const struct journal_entry *e, const struct decision *d)
{
	pb_record *r = otlp_arena_alloc(a, sizeof(*r));
	pb_any *body = otlp_arena_alloc(a, sizeof(*body));
	struct attrs l = { .a = a, .v = otlp_arena_alloc(a, OTLP_ATTRS_MAX * sizeof(pb_kv *)) };
	bool verification = !strcmp(e->event, JOURNAL_EVENT_VERIFICATION);
	char text[1024], event[64];
	struct sbuf b;
	const char *sev;

	if (!r || !body || !l.v)
		return NULL;
	opentelemetry__proto__logs__v1__log_record__init(r);
	opentelemetry__proto__common__v1__any_value__init(body);
	r->time_unix_nano = (uint64_t)(verification ? e->queued_ns : d->time_ns);
	r->observed_time_unix_nano = (uint64_t)e->queued_ns;
	r->severity_number = otlp_severity(d, e->event, &sev);
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
	record_attrs(&l, d);
	r->attributes = l.v;
	r->n_attributes = l.n;
	return body->string_value && r->event_name ? r : NULL;
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


/* data[0..len) gzipped (a gzip header and trailer, not zlib's), in place
 * of *data: its new length, or -ENOMEM. */
static ssize_t gzip(unsigned char **data, ssize_t len)
{
	z_stream z = { 0 };
	uLong bound;
	unsigned char *gz;

	/* windowBits 15 + 16: the gzip format */
	if (deflateInit2(&z, Z_DEFAULT_COMPRESSION, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) != Z_OK)
		return -ENOMEM;
	bound = deflateBound(&z, (uLong)len);
	gz = malloc(bound);
	z.next_in = *data;
	z.avail_in = (uInt)len;
	z.next_out = gz;
	z.avail_out = (uInt)bound;
	if (!gz || deflate(&z, Z_FINISH) != Z_STREAM_END) {
		deflateEnd(&z);
		free(gz);
		return -ENOMEM;
	}
	len = (ssize_t)z.total_out;
	deflateEnd(&z);
	free(*data);
	*data = gz;
	return len;
}

/* req packed as protobuf into a new buffer: its length, or -ENOMEM. */
static ssize_t pack_request(const pb_request *req, unsigned char **out)
{
	size_t len = opentelemetry__proto__collector__logs__v1__export_logs_service_request__get_packed_size(req);

	*out = malloc(len ? len : 1);
	if (!*out)
		return -ENOMEM;
	opentelemetry__proto__collector__logs__v1__export_logs_service_request__pack(req, *out);
	return (ssize_t)len;
}

ssize_t otlp_encode(struct otlp_arena *a, const struct strlist *resource, pb_record **records, size_t n,
		    bool json, bool gzipped, unsigned char **out)
{
	Opentelemetry__Proto__Resource__V1__Resource res = OPENTELEMETRY__PROTO__RESOURCE__V1__RESOURCE__INIT;
	Opentelemetry__Proto__Common__V1__InstrumentationScope scope =
		OPENTELEMETRY__PROTO__COMMON__V1__INSTRUMENTATION_SCOPE__INIT;
	Opentelemetry__Proto__Logs__V1__ScopeLogs sl = OPENTELEMETRY__PROTO__LOGS__V1__SCOPE_LOGS__INIT, *slp = &sl;
	Opentelemetry__Proto__Logs__V1__ResourceLogs rl = OPENTELEMETRY__PROTO__LOGS__V1__RESOURCE_LOGS__INIT, *rlp = &rl;
	pb_request req = OPENTELEMETRY__PROTO__COLLECTOR__LOGS__V1__EXPORT_LOGS_SERVICE_REQUEST__INIT;
	struct attrs attrs = { .a = a, .v = otlp_arena_alloc(a, OTLP_ATTRS_MAX * sizeof(pb_kv *)) };
	ssize_t len;

	if (!attrs.v)
		return -ENOMEM;
	for (size_t i = 0; i < resource->n; i++) {
		char *kv = arena_text(a, resource->v[i]), *eq = kv ? strchr(kv, '=') : NULL;

		if (!eq)
			return -ENOMEM;
		*eq = '\0';
		attr_str(&attrs, kv, eq + 1);
	}
	res.attributes = attrs.v;
	res.n_attributes = attrs.n;
	scope.name = "reflexd";
	scope.version = REFLEX_VERSION;
	sl.scope = &scope;
	sl.schema_url = OTLP_SCHEMA_URL;
	rl.schema_url = OTLP_SCHEMA_URL;
	sl.log_records = records;
	sl.n_log_records = n;
	rl.resource = &res;
	rl.scope_logs = &slp;
	rl.n_scope_logs = 1;
	req.resource_logs = &rlp;
	req.n_resource_logs = 1;
	len = json ? json_request(&req, out) : pack_request(&req, out);
	if (len < 0 || !gzipped)
		return len;
	len = gzip(out, len);
	if (len < 0) {
		free(*out);
		*out = NULL;
	}
	return len;
}
