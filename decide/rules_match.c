/* A rule's declarative part (kind, where, thresholds) against a condition,
 * with the cache that matches rules once per kind of target, and the lint
 * that finds rules another always fires before. */
#include <math.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "decide/rules_lua.h"

/* The target's text fields a where matches with globs: the rule's list
 * and the target's value, by offset. Labels are matched on their own. */
#define WHERE_GLOB(f) { #f, offsetof(struct rule, f), offsetof(struct target, f) }
static const struct {
	const char *field;
	size_t in_rule, in_target;
} where_globs[] = {
	WHERE_GLOB(comm), WHERE_GLOB(exe), WHERE_GLOB(cgroup),
	WHERE_GLOB(namespace), WHERE_GLOB(pod), WHERE_GLOB(container),
};

bool rule_fits(const struct rule *r, enum condition_kind kind, const struct target *t,
		      char *why, size_t size)
{

	if (!r->any_kind && r->kind != kind) {
		if (why)
			snprintf(why, size, "wants %s, not %s", condition_kind_name(r->kind),
				 condition_kind_name(kind));
		return false;
	}
	if (r->pid && r->pid != t->pid) {
		if (why)
			snprintf(why, size, "where.pid is %d", r->pid);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(where_globs); i++) {
		const struct strlist *globs = (const void *)((const char *)r + where_globs[i].in_rule);
		const char *value = (const char *)t + where_globs[i].in_target;
		bool any = !globs->n;

		for (size_t g = 0; !any && g < globs->n; g++)
			any = glob_match(globs->v[g], value);
		if (any)
			continue;
		if (why)
			snprintf(why, size, "where.%s: '%s' matches none of '%s'%s", where_globs[i].field,
				 value, globs->v[0], globs->n > 1 ? ", ..." : "");
		return false;
	}
	for (size_t i = 0; i < r->labels.n; i++) {
		const char *want = r->labels.v[i], *eq = strchr(want, '=');
		char value[256];

		if (!target_label(t, want, (size_t)(eq - want), value, sizeof(value)) ||
		    !glob_match(eq + 1, value)) {
			if (why)
				snprintf(why, size, "where.labels: the pod has no label matching %s", want);
			return false;
		}
	}
	return true;
}

bool rule_meets(const struct rule *r, const struct condition *c, char *why, size_t size)
{
	size_t n;
	const struct measure *m = condition_measures(c->kind, &n);

	for (size_t i = 0; i < n; i++)
		if (!isnan(r->at_least[i]) && !measure_meets(&m[i], c->measure[i], r->at_least[i])) {
			if (why)
				snprintf(why, size, "%s %g is %s %g", m[i].key, c->measure[i],
					 m[i].at_most ? "above" : "below", r->at_least[i]);
			return false;
		}
	return true;
}

bool rule_matches(const struct rule *r, const struct condition *c, char *why, size_t size)
{
	return rule_fits(r, c->kind, &c->target, why, size) && rule_meets(r, c, why, size);
}

/* The fitting cache: per key (what rule_fits looks at), which rules fit.
 * Bounded: when full it starts over. */
#define FIT_BUCKETS 16384
#define FIT_ENTRIES_MAX 65536

struct fit_entry {
	struct fit_entry *next;
	uint64_t hash;
	size_t key_len;
	char *key;        /* fit_key: right after bits */
	uint64_t bits[];
};

struct fit_cache {
	bool by_pid;      /* a rule names a pid: the pid is part of the key */
	size_t n;
	struct fit_entry *buckets[FIT_BUCKETS];
};

/* Appends text v and its NUL to key at len; the new length. */
static size_t key_text(char *key, size_t len, const char *v)
{
	if (*v) /* most are empty */
		len = (size_t)(stpcpy(key + len, v) - key);
	key[len] = '\0';
	return len + 1;
}

/* What rule_fits looks at, as bytes: the kind, the pid when a rule names
 * one, and each field a where can name, with its NUL. Processes alike in
 * these (the workers of one program) share an entry, which then stays in
 * the CPU's cache. Returns the length; *hash gets the key's FNV-1a hash
 * (8 bytes a step measured 1.98 % fewer of the simulator benchmark's
 * instructions, under the 2 % a hand-tuned form must save). */
static size_t fit_key(const struct fit_cache *fc, enum condition_kind kind,
		      const struct target *t, char *key, uint64_t *hash)
{
	int k = kind;
	size_t len = sizeof(k);
	uint64_t h = 0xcbf29ce484222325ull;

	memcpy(key, &k, sizeof(k));
	if (fc->by_pid) {
		memcpy(key + len, &t->pid, sizeof(t->pid));
		len += sizeof(t->pid);
	}
	for (size_t i = 0; i < ARRAY_SIZE(where_globs); i++)
		len = key_text(key, len, (const char *)t + where_globs[i].in_target);
	len = key_text(key, len, t->labels);
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
	*hash = h;
	return len;
}

static void fit_cache_clear(struct fit_cache *fc)
{
	for (size_t i = 0; fc && i < FIT_BUCKETS; i++)
		while (fc->buckets[i]) {
			struct fit_entry *e = fc->buckets[i];

			fc->buckets[i] = e->next;
			free(e);
		}
	if (fc)
		fc->n = 0;
}

void rules_fit_cache_free(struct fit_cache *fc)
{
	fit_cache_clear(fc);
	free(fc);
}

/* ruleset_fitting without the cache: every rule matched. */
static void fit_each(const struct ruleset *rs, enum condition_kind kind, const struct target *t,
		     uint64_t *bits)
{
	memset(bits, 0, (rs->n + 63) / 64 * sizeof(*bits));
	for (size_t j = 0; j < rs->n; j++)
		if (rule_fits(&rs->rules[j], kind, t, NULL, 0))
			bits[j / 64] |= 1ull << (j % 64);
}

void ruleset_fitting(struct ruleset *rs, enum condition_kind kind, const struct target *t,
		     uint64_t *bits)
{
	size_t words = (rs->n + 63) / 64, len;
	char key[sizeof(int) + sizeof(pid_t) + sizeof(struct target)];
	uint64_t h;
	struct fit_entry *e, **bucket;

	if (!rs->fits && (rs->fits = calloc(1, sizeof(*rs->fits)))) {
		for (size_t j = 0; j < rs->n; j++)
			if (rs->rules[j].pid)
				rs->fits->by_pid = true;
	}
	if (!rs->fits) {
		fit_each(rs, kind, t, bits);
		return;
	}
	len = fit_key(rs->fits, kind, t, key, &h);
	bucket = &rs->fits->buckets[h % FIT_BUCKETS];
	for (e = *bucket; e; e = e->next)
		if (e->hash == h && e->key_len == len && !memcmp(e->key, key, len)) {
			memcpy(bits, e->bits, words * sizeof(*bits));
			return;
		}
	fit_each(rs, kind, t, bits);
	if (rs->fits->n == FIT_ENTRIES_MAX)
		fit_cache_clear(rs->fits);
	e = malloc(sizeof(*e) + words * sizeof(*bits) + len);
	if (!e)
		return;
	e->hash = h;
	e->key_len = len;
	e->key = (char *)(e->bits + words);
	memcpy(e->key, key, len);
	memcpy(e->bits, bits, words * sizeof(*bits));
	e->next = *bucket;
	*bucket = e;
	rs->fits->n++;
}

static bool same_globs(const struct strlist *a, const struct strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

/* a's filter lets through everything b's does: a filters nothing, or the same. */
static bool covers(const struct strlist *a, const struct strlist *b)
{
	return !a->n || same_globs(a, b);
}

/* Whether a, tried before b, fires on everything b would, no later: then b
 * never decides anything (one decision per condition, first to fire). */
static bool shadows(const struct rule *a, const struct rule *b)
{
	size_t n;
	const struct measure *m = condition_measures(a->kind, &n);

	/* b's threshold is at least as strict as a's (NAN: none, never) */
	for (size_t i = 0; i < n; i++)
		if (!isnan(a->at_least[i]) && !measure_meets(&m[i], b->at_least[i], a->at_least[i]))
			return false;
	return a->when_fn == LUA_NOREF && !a->any_kind && (b->any_kind || a->kind == b->kind) &&
	       !b->any_kind && a->hold_ns <= b->hold_ns && (!a->pid || a->pid == b->pid) &&
	       covers(&a->comm, &b->comm) && covers(&a->exe, &b->exe) &&
	       covers(&a->cgroup, &b->cgroup) && covers(&a->namespace, &b->namespace) &&
	       covers(&a->pod, &b->pod) && covers(&a->container, &b->container) &&
	       covers(&a->labels, &b->labels);
}

void rules_lint(const struct ruleset *rs, struct strlist *errs)
{
	for (size_t j = 0; j < rs->n; j++) {
		for (size_t i = 0; i < j; i++) {
			const struct rule *a = &rs->rules[i], *b = &rs->rules[j];

			if (!shadows(a, b))
				continue;
			rules_add_error(errs, "%s:%d: rule '%s' can never act: rule '%s' (%s:%d) matches "
				  "everything it matches, at least as soon, and goes first", b->file,
				  b->line, b->name, a->name, a->file, a->line);
			break;
		}
	}
}

