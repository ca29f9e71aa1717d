#include <errno.h>
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "model/condition.h"

static const char *const kind_names[REFLEX_COND_KIND_COUNT] = {
	[REFLEX_COND_DEADLOCK] = "deadlock",
	[REFLEX_COND_STALL] = "stall",
	[REFLEX_COND_LEAK] = "leak",
	[REFLEX_COND_RETRANSMITS] = "retransmits",
	[REFLEX_COND_GOROUTINES] = "goroutines",
	[REFLEX_COND_MEMORY] = "memory",
};

static const struct measure measures[REFLEX_COND_KIND_COUNT][REFLEX_MEASURES_MAX] = {
	[REFLEX_COND_DEADLOCK] = { { "threads", "threads", UNIT_COUNT } },
	[REFLEX_COND_STALL] = { { "threads", "threads", UNIT_COUNT },
				{ "blocked", "blocked_ms", UNIT_MS } },
	[REFLEX_COND_LEAK] = { { "rate", "rate_bps", UNIT_BYTES_PER_S },
			       { "rss", "rss_bytes", UNIT_BYTES },
			       { "eta", "eta_ms", UNIT_MS, .at_most = true } },
	[REFLEX_COND_RETRANSMITS] = { { "rate", "rate", UNIT_PER_S },
				      { "ratio", "ratio", UNIT_RATIO } },
	[REFLEX_COND_GOROUTINES] = { { "count", "count", UNIT_COUNT },
				     { "rate", "rate", UNIT_PER_S } },
	[REFLEX_COND_MEMORY] = { { "rss", "rss_bytes", UNIT_BYTES } },
};

#define TEXT_FIELD(f) { #f, offsetof(struct target, f), sizeof(((struct target *)0)->f) }

const struct target_text_field target_text_fields[] = {
	TEXT_FIELD(comm), TEXT_FIELD(exe), TEXT_FIELD(command), TEXT_FIELD(cgroup), TEXT_FIELD(container_id),
	TEXT_FIELD(pod_uid), TEXT_FIELD(pod), TEXT_FIELD(namespace), TEXT_FIELD(container),
	TEXT_FIELD(labels),
};
const size_t target_text_fields_count = ARRAY_SIZE(target_text_fields);

const char *condition_kind_name(enum condition_kind kind)
{
	/* "-": a record about no condition (a rules reload) */
	return kind < REFLEX_COND_KIND_COUNT ? kind_names[kind] : "-";
}

int condition_kind_parse(const char *name)
{
	for (int k = 0; k < REFLEX_COND_KIND_COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return -ENOENT;
}

const struct measure *condition_measures(enum condition_kind kind, size_t *n)
{
	size_t i = 0;

	if (kind >= REFLEX_COND_KIND_COUNT) {
		*n = 0;
		return NULL;
	}
	while (i < REFLEX_MEASURES_MAX && measures[kind][i].param)
		i++;
	*n = i;
	return measures[kind];
}

/* 2-letter binary and 1-letter decimal-looking suffixes both mean powers of
 * 1024, as in ps, top and Kubernetes' "Mi" alike: nobody means 10^6 here. */
static int bytes_suffix(const char *s, double *mul)
{
	static const char *const units[] = { "K", "M", "G", "T" };

	*mul = 1;
	if (!*s || !strcmp(s, "B"))
		return 0;
	for (size_t i = 0; i < ARRAY_SIZE(units); i++) {
		*mul *= 1024;
		if (s[0] == units[i][0] && (!s[1] || !strcmp(s + 1, "i") || !strcmp(s + 1, "iB") ||
					    !strcmp(s + 1, "B")))
			return 0;
	}
	return -EINVAL;
}

int measure_parse(const struct measure *m, const char *text, double *value)
{
	char unit[16], *end;
	double v, mul = 1;
	size_t len;
	uint64_t ns;

	if (m->unit == UNIT_MS) {
		if (duration_parse(text, &ns))
			return -EINVAL;
		*value = (double)ns / 1e6;
		return 0;
	}
	errno = 0;
	v = strtod(text, &end);
	if (errno || end == text || !isfinite(v) || v < 0)
		return -EINVAL;
	len = strlen(end);
	if (len >= sizeof(unit))
		return -EINVAL;
	memcpy(unit, end, len + 1);
	switch (m->unit) {
	case UNIT_COUNT:
		if (*unit)
			return -EINVAL;
		break;
	case UNIT_PER_S:
		if (*unit && strcmp(unit, "/s"))
			return -EINVAL;
		break;
	case UNIT_BYTES_PER_S:
		if (len < 2 || strcmp(unit + len - 2, "/s"))
			return -EINVAL;
		unit[len - 2] = '\0';
		/* fall through */
	case UNIT_BYTES:
		if (bytes_suffix(unit, &mul))
			return -EINVAL;
		break;
	case UNIT_RATIO:
		if (!strcmp(unit, "%"))
			mul = 0.01;
		else if (*unit || v > 1)
			return -EINVAL;
		break;
	case UNIT_MS:
		break;
	}
	*value = v * mul;
	/* the in-kernel threshold is a u64: a double past 2^64 converts to
	 * anything (0 on x86, a threshold every process crosses) */
	return *value < 0x1p63 ? 0 : -ERANGE;
}

bool measure_meets(const struct measure *m, double value, double threshold)
{
	return m->at_most ? value <= threshold : value >= threshold;
}

/* Past the JSON value at p (a string, number, literal, object or array). */
static const char *skip_value(const char *p)
{
	int depth = 0;

	do {
		switch (*p) {
		case '\0':
			return p;
		case '"':
			for (p++; *p && *p != '"'; p++)
				if (*p == '\\' && p[1])
					p++;
			break;
		case '{':
		case '[':
			depth++;
			break;
		case '}':
		case ']':
			depth--;
			break;
		default:
			if (!depth && (*p == ',' || *p == '}'))
				return p;
		}
		p++;
	} while (depth > 0 || (*p && *p != ',' && *p != '}' && *p != ']'));
	return p;
}

uint64_t condition_new_id(void)
{
	/* the loop is one thread: sensors raise only from it */
	static uint64_t last;

	return ++last;
}

void condition_measure_fill(struct condition *c)
{
	size_t n, klen;
	const struct measure *m = condition_measures(c->kind, &n);
	const char *p = c->evidence;

	for (size_t i = 0; i < REFLEX_MEASURES_MAX; i++)
		c->measure[i] = NAN;
	if (!n || *p++ != '{')
		return;
	for (;;) {
		while (*p == ' ' || *p == ',' || *p == '\n' || *p == '\t')
			p++;
		if (*p != '"')
			return;
		const char *key = ++p;

		while (*p && *p != '"')
			p += *p == '\\' && p[1] ? 2 : 1;
		klen = (size_t)(p - key);
		if (!*p++)
			return;
		while (*p == ' ' || *p == ':')
			p++;
		for (size_t i = 0; i < n; i++)
			if (strlen(m[i].key) == klen && !memcmp(m[i].key, key, klen)) {
				char *end;
				double v = strtod(p, &end);

				if (end != p)
					c->measure[i] = v;
			}
		p = skip_value(p);
	}
}

/* Copies the text at src into dst up to its NUL, and no further. */
static void copy_text(char *dst, const char *src)
{
	/* most are empty */
	if (*src)
		strcpy(dst, src);
	else
		*dst = '\0';
}

void condition_copy(struct condition *dst, const struct condition *src)
{
	if (dst == src)
		return;
	dst->id = src->id;
	dst->kind = src->kind;
	memcpy(&dst->target, &src->target, offsetof(struct target, comm));
	for (size_t i = 0; i < target_text_fields_count; i++)
		copy_text((char *)&dst->target + target_text_fields[i].offset,
			  (const char *)&src->target + target_text_fields[i].offset);
	dst->since_ns = src->since_ns;
	copy_text(dst->summary, src->summary);
	memcpy(dst->measure, src->measure, sizeof(dst->measure));
	copy_text(dst->evidence, src->evidence);
}

void condition_reset(struct condition *c)
{
	/* every text is read up to its NUL: emptying one takes one byte.
	 * Measured: the simulator benchmark takes 845 M instructions, 865 M
	 * (+2.3 %) with one memset of the whole (callgrind, docs/benchmarks.md). */
	c->id = 0;
	c->kind = 0;
	memset(&c->target, 0, offsetof(struct target, comm));
	for (size_t i = 0; i < target_text_fields_count; i++)
		((char *)&c->target)[target_text_fields[i].offset] = '\0';
	c->since_ns = 0;
	c->summary[0] = '\0';
	memset(c->measure, 0, sizeof(c->measure));
	c->evidence[0] = '\0';
}

bool target_label(const struct target *t, const char *key, size_t n, char *value, size_t size)
{
	const char *l = t->labels;

	while (*l) {
		size_t len = strcspn(l, ",");

		if (len > n && l[n] == '=' && strncmp(l, key, n) == 0) {
			snprintf(value, size, "%.*s", (int)(len - n - 1), l + n + 1);
			return true;
		}
		l += len + (l[len] == ',');
	}
	return false;
}
