#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"
#include "model/decision_fields.h"

#define D(m) offsetof(struct decision, m), sizeof(((struct decision *)0)->m)
#define T(m) D(condition.target.m)
#define C(m) D(condition.m)

/* In the order of `reflexd audit --json`'s keys. The journal and OTLP
 * name their columns and attributes, so their order is free. */
static const struct decision_field fields[] = {
	{ "id", "id", "reflex.decision.id", DECISION_FIELD_STR, 0, D(id), NULL },
	{ NULL, "time", NULL, DECISION_FIELD_TIME, 0, D(time_ns), NULL },
	/* the record's own time in OTLP */
	{ "time_ns", "time_unix_nano", NULL, DECISION_FIELD_I64, 0, D(time_ns), NULL },
	{ "mode", "mode", "reflex.mode", DECISION_FIELD_MODE, 0, D(mode), NULL },
	/* the OTLP resource's host.name */
	{ "host", "host", NULL, DECISION_FIELD_STR, 0, D(host), NULL },
	{ "rule", "rule", "reflex.rule", DECISION_FIELD_STR, 0, D(rule), NULL },
	{ "rule_file", "rule_file", "reflex.rule.file", DECISION_FIELD_STR, 0, D(rule_file), NULL },
	{ "rule_hash", "rule_hash", "reflex.rule.hash", DECISION_FIELD_STR, 0, D(rule_hash), NULL },
	{ "kind", "kind", "reflex.condition.kind", DECISION_FIELD_KIND, DECISION_FIELD_IF_CONDITION,
	  C(kind), NULL },
	{ "held_ns", NULL, NULL, DECISION_FIELD_I64, DECISION_FIELD_UNSIGNED, D(held_ns), NULL },
	{ NULL, "held_ms", "reflex.condition.held_ms", DECISION_FIELD_MS, DECISION_FIELD_IF_CONDITION,
	  D(held_ns), NULL },
	{ "pid", "pid", "process.pid", DECISION_FIELD_INT, DECISION_FIELD_IF_PID | DECISION_FIELD_UNSIGNED,
	  T(pid), NULL },
	{ "tid", "tid", "thread.id", DECISION_FIELD_INT,
	  DECISION_FIELD_IF_PID | DECISION_FIELD_IF_SET | DECISION_FIELD_UNSIGNED, T(tid), NULL },
	{ "start_time", NULL, NULL, DECISION_FIELD_I64, DECISION_FIELD_UNSIGNED, T(start_time), NULL },
	{ "comm", "comm", NULL, DECISION_FIELD_STR, 0, T(comm), NULL },
	{ NULL, NULL, "process.executable.name", DECISION_FIELD_EXE_NAME, DECISION_FIELD_IF_PID, T(exe), NULL },
	{ "exe", "exe", "process.executable.path", DECISION_FIELD_STR, DECISION_FIELD_IF_PID, T(exe), NULL },
	{ "command", NULL, "process.command", DECISION_FIELD_STR, DECISION_FIELD_IF_PID, T(command), NULL },
	{ "cgroup", "cgroup", NULL, DECISION_FIELD_STR, 0, T(cgroup), NULL },
	/* the semantic conventions ask for a line of /proc/PID/cgroup */
	{ NULL, NULL, "process.linux.cgroup", DECISION_FIELD_CGROUP, 0, T(cgroup), NULL },
	{ "container_id", "container_id", "container.id", DECISION_FIELD_STR, 0, T(container_id), NULL },
	{ "pod_uid", "pod_uid", "k8s.pod.uid", DECISION_FIELD_STR, 0, T(pod_uid), NULL },
	{ "pod", "pod", "k8s.pod.name", DECISION_FIELD_STR, 0, T(pod), NULL },
	{ "namespace", "namespace", "k8s.namespace.name", DECISION_FIELD_STR, 0, T(namespace), NULL },
	{ "container", "container", "k8s.container.name", DECISION_FIELD_STR, 0, T(container), NULL },
	{ "summary", "summary", "reflex.condition.summary", DECISION_FIELD_STR, DECISION_FIELD_IF_CONDITION,
	  C(summary), NULL },
	{ "evidence", "evidence", "reflex.condition.evidence", DECISION_FIELD_JSON,
	  DECISION_FIELD_IF_CONDITION | DECISION_FIELD_IF_SET | DECISION_FIELD_MAP, C(evidence), "{}" },
	{ "action", "action", "reflex.action", DECISION_FIELD_STR, 0, D(action), NULL },
	{ "params", "params", "reflex.action.params", DECISION_FIELD_JSON, DECISION_FIELD_IF_SET, D(params), "{}" },
	{ "outcome", "outcome", "reflex.outcome", DECISION_FIELD_OUTCOME, 0, D(outcome), NULL },
	{ "detail", "detail", "reflex.outcome.detail", DECISION_FIELD_STR, 0, D(detail), NULL },
	/* stamped by the journal when it records the outcome (journal_write) */
	{ "completed_ns", "completed_unix_nano", NULL, DECISION_FIELD_I64, DECISION_FIELD_NULL_UNSET,
	  D(completed_ns), NULL },
	{ "verify", "verify", "reflex.verification", DECISION_FIELD_STR, 0, D(verify), NULL },
	{ "rung", "rung", "reflex.action.rung", DECISION_FIELD_INT, DECISION_FIELD_UNSIGNED, D(rung), NULL },
	{ "explain", "explain", "reflex.explain", DECISION_FIELD_JSON, DECISION_FIELD_IF_SET, D(explain), "[]" },
};

const struct decision_field *decision_fields(size_t *n)
{
	*n = sizeof(fields) / sizeof(fields[0]);
	return fields;
}

static const void *member(const struct decision_field *f, const struct decision *d)
{
	return (const char *)d + f->offset;
}

const char *decision_field_text(const struct decision_field *f, const struct decision *d,
				char *buf, size_t size)
{
	const char *s = member(f, d), *base;

	switch (f->type) {
	case DECISION_FIELD_STR:
		return s;
	case DECISION_FIELD_JSON:
		return s[0] ? s : f->empty;
	case DECISION_FIELD_MODE:
		return decision_mode_name(d->mode);
	case DECISION_FIELD_KIND:
		return condition_kind_name(d->condition.kind);
	case DECISION_FIELD_OUTCOME:
		return decision_outcome_name(d->outcome);
	case DECISION_FIELD_TIME:
		time_format(d->time_ns, buf, size);
		return buf;
	case DECISION_FIELD_EXE_NAME:
		base = strrchr(s, '/');
		return base ? base + 1 : d->condition.target.comm;
	case DECISION_FIELD_CGROUP:
		if (!s[0])
			return "";
		snprintf(buf, size, "0::%s", s);
		return buf;
	default:
		return "";
	}
}

bool decision_field_is_int(const struct decision_field *f)
{
	return f->type == DECISION_FIELD_INT || f->type == DECISION_FIELD_I64 || f->type == DECISION_FIELD_MS;
}

int64_t decision_field_int(const struct decision_field *f, const struct decision *d)
{
	int64_t v;
	int i;

	switch (f->type) {
	case DECISION_FIELD_INT:
		memcpy(&i, member(f, d), sizeof(i));
		return i;
	case DECISION_FIELD_I64:
		memcpy(&v, member(f, d), sizeof(v));
		return v;
	case DECISION_FIELD_MS:
		memcpy(&v, member(f, d), sizeof(v));
		return (int64_t)((uint64_t)v / NSEC_PER_MSEC);
	default:
		return 0;
	}
}

bool decision_field_present(const struct decision_field *f, const struct decision *d)
{
	if ((f->flags & DECISION_FIELD_IF_PID) && !d->condition.target.pid)
		return false;
	if ((f->flags & DECISION_FIELD_IF_CONDITION) && d->condition.kind >= REFLEX_COND_KIND_COUNT)
		return false;
	if (!(f->flags & DECISION_FIELD_IF_SET))
		return true;
	if (f->type == DECISION_FIELD_STR || f->type == DECISION_FIELD_JSON)
		return *(const char *)member(f, d) != '\0';
	return decision_field_int(f, d) != 0;
}

int decision_field_set(const struct decision_field *f, struct decision *d, const char *text, size_t len,
		       int64_t v)
{
	char *s = (char *)d + f->offset;
	int i = (int)v, k = 0;

	if ((f->flags & DECISION_FIELD_UNSIGNED) && v < 0)
		return -ERANGE;
	if (f->type == DECISION_FIELD_INT && (v < INT_MIN || v > INT_MAX))
		return -ERANGE;
	if (strlen(text) != len)
		return -EILSEQ;
	switch (f->type) {
	case DECISION_FIELD_STR:
	case DECISION_FIELD_JSON:
		if (len >= f->size)
			return -E2BIG;
		memcpy(s, text, len + 1);
		break;
	case DECISION_FIELD_INT:
		memcpy(s, &i, sizeof(i));
		break;
	case DECISION_FIELD_I64:
		memcpy(s, &v, sizeof(v));
		break;
	case DECISION_FIELD_MODE:
		if ((k = decision_mode_parse(text)) >= 0)
			d->mode = (enum decision_mode)k;
		break;
	case DECISION_FIELD_KIND:
		/* "-": a record about no condition (a rules reload) */
		k = strcmp(text, condition_kind_name(REFLEX_COND_KIND_COUNT)) ? condition_kind_parse(text)
									       : REFLEX_COND_KIND_COUNT;
		if (k >= 0)
			d->condition.kind = (enum condition_kind)k;
		break;
	case DECISION_FIELD_OUTCOME:
		if ((k = decision_outcome_parse(text)) >= 0)
			d->outcome = (enum decision_outcome)k;
		break;
	default:
		break;
	}
	return k < 0 ? -EINVAL : 0;
}
