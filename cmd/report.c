/* `reflexd audit report --html FILE`: one HTML page, no network, no
 * script: a timeline of the decisions per rule and per target (inline SVG,
 * one mark per decision), the outcome counts, and every decision with its
 * evidence, explanation and chain, grouped by rule and target in
 * collapsed <details> so thousands stay readable. Everything from the
 * host or the journal is escaped (html()). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/report.h"
#include "lib/json.h"
#include "lib/text.h"

/* lanes of the per-target plot: the busiest targets, then one for the rest */
#define REPORT_TARGET_LANES 15
/* at most this many decisions: groups and decisions start open */
#define REPORT_OPEN_RULES 200
#define REPORT_OPEN_DECISIONS 20

struct report {
	struct decision **v;
	size_t n, cap;
	int64_t t0, t1;   /* the first and last decision's time */
};

static int collect(const struct decision *d, void *ctx)
{
	struct report *r = ctx;
	struct decision *copy;

	if (r->n == r->cap) {
		size_t cap = r->cap ? 2 * r->cap : 256;
		struct decision **grown = realloc(r->v, cap * sizeof(*grown));

		if (!grown)
			return 1;
		r->v = grown;
		r->cap = cap;
	}
	copy = malloc(sizeof(*copy));
	if (!copy)
		return 1;
	*copy = *d;
	r->v[r->n++] = copy;
	return 0;
}

void report_note(const char *key, double v, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t n = strlen(key), u = 0;
	bool rate = n > 4 && !strcmp(key + n - 4, "_bps");

	buf[0] = '\0';
	if (((n > 3 && !strcmp(key + n - 3, "_ms")) || (n > 7 && !strcmp(key + n - 7, "_ms_ago"))) && v >= 0) {
		duration_format((uint64_t)(v * NSEC_PER_MSEC), buf, size);
		return;
	}
	if (!rate && !(n > 6 && !strcmp(key + n - 6, "_bytes")))
		return;
	for (; (v >= 1024 || v <= -1024) && u + 1 < ARRAY_SIZE(units); u++)
		v /= 1024;
	snprintf(buf, size, "%.1f %s%s", v, units[u], rate ? "/s" : "");
}

/* s as HTML text: valid UTF-8 without control characters (lib/text.h),
 * the characters HTML gives meaning to as entities. */
static void html(FILE *f, const char *s)
{
	size_t size = strlen(s) * 4 + 1;   /* an escape is at most 4 bytes a byte */
	char small[512], *buf = size <= sizeof(small) ? small : malloc(size);
	struct sbuf b;

	if (!buf) {
		fputs("(out of memory)", f);
		return;
	}
	sbuf_init(&b, buf, size <= sizeof(small) ? sizeof(small) : size);
	sbuf_text(&b, s, TEXT_CONTROLS);
	for (const char *p = buf; *p; p++) {
		switch (*p) {
		case '<': fputs("&lt;", f); break;
		case '>': fputs("&gt;", f); break;
		case '&': fputs("&amp;", f); break;
		case '"': fputs("&quot;", f); break;
		case '\'': fputs("&#39;", f); break;
		default: putc(*p, f);
		}
	}
	if (buf != small)
		free(buf);
}

/* A JSON string's text (unescaped), for html(); the caller frees it. */
static char *json_text(const struct json_val *v)
{
	char *s = malloc(v->n + 1);

	if (s && json_str(v, s, v->n + 1)) {
		free(s);
		s = strndup(v->p, v->n);
	}
	return s;
}

static void html_json(FILE *f, const struct json_val *v, const char *key);

/* An array of objects (threads, sites, the explanation) as a table: one
 * row each, a column per key any of them has (at most 16). */
static void html_table(FILE *f, const struct json_val *arr)
{
	struct json_val it = { 0 }, m, k;
	char cols[16][64];
	size_t ncols = 0;

	while (json_next(arr, &it, NULL)) {
		memset(&m, 0, sizeof(m));
		while (json_next(&it, &m, &k)) {
			char name[64];
			size_t c;

			if (json_str(&k, name, sizeof(name)) < 0)
				continue;
			for (c = 0; c < ncols && strcmp(cols[c], name); c++)
				;
			if (c == ncols && ncols < ARRAY_SIZE(cols))
				str_copy(cols[ncols++], sizeof(cols[0]), name);
		}
	}
	fputs("<table class=\"ev\"><tr>", f);
	for (size_t c = 0; c < ncols; c++) {
		fputs("<th>", f);
		html(f, cols[c]);
		fputs("</th>", f);
	}
	fputs("</tr>", f);
	memset(&it, 0, sizeof(it));
	while (json_next(arr, &it, NULL)) {
		fputs("<tr>", f);
		for (size_t c = 0; c < ncols; c++) {
			struct json_val cell;

			fputs("<td>", f);
			memset(&m, 0, sizeof(m));
			while (json_next(&it, &m, &k))
				if (json_str_eq(&k, cols[c])) {
					cell = m;
					html_json(f, &cell, cols[c]);
					break;
				}
			fputs("</td>", f);
		}
		fputs("</tr>", f);
	}
	fputs("</table>", f);
}

/* Any JSON value, by its shape: an object as a definition list, an array
 * of objects as a table, an array of strings (a stack's frames) one a
 * line, numbers with a reading aid by their key's unit (report_note). */
static void html_json(FILE *f, const struct json_val *v, const char *key)
{
	struct json_val it = { 0 }, k;
	bool objects = true, strings = true;
	size_t n = 0;
	char *s, note[64];
	double num;

	switch (v->type) {
	case JSON_OBJECT:
		fputs("<dl class=\"ev\">", f);
		while (json_next(v, &it, &k)) {
			char name[64];

			if (json_str(&k, name, sizeof(name)) < 0 && !name[0])
				str_copy(name, sizeof(name), "?");
			fputs("<dt>", f);
			html(f, name);
			fputs("</dt><dd>", f);
			html_json(f, &it, name);
			fputs("</dd>", f);
		}
		fputs("</dl>", f);
		return;
	case JSON_ARRAY:
		for (; json_next(v, &it, NULL); n++) {
			objects &= it.type == JSON_OBJECT;
			strings &= it.type == JSON_STRING;
		}
		if (!n) {
			fputs("[]", f);
			return;
		}
		if (objects) {
			html_table(f, v);
			return;
		}
		fputs(strings ? "<pre class=\"frames\">" : "<span class=\"list\">", f);
		memset(&it, 0, sizeof(it));
		for (bool first = true; json_next(v, &it, NULL); first = false) {
			if (!first)
				fputs(strings ? "\n" : ", ", f);
			html_json(f, &it, key);
		}
		fputs(strings ? "</pre>" : "</span>", f);
		return;
	case JSON_STRING:
		s = json_text(v);
		html(f, s ? s : "(out of memory)");
		free(s);
		return;
	default:
		s = strndup(v->p, v->n);
		html(f, s ? s : "?");
		free(s);
		if (v->type == JSON_NUMBER && !json_num(v, &num)) {
			report_note(key, num, note, sizeof(note));
			if (note[0])
				fprintf(f, " <span class=\"note\">(%s)</span>", note);
		}
	}
}

/* JSON text from the journal: rendered, or shown as it is when it does not
 * parse (a cut or older record). */
static void html_json_text(FILE *f, const char *text, const char *empty)
{
	struct json_val v;

	if (!text[0]) {
		fputs(empty, f);
		return;
	}
	if (json_parse(text, strlen(text), &v)) {
		fputs("<pre>", f);
		html(f, text);
		fputs("</pre>", f);
		return;
	}
	html_json(f, &v, "");
}

static int by_rule_target_time(const void *a, const void *b)
{
	const struct decision *x = *(struct decision *const *)a, *y = *(struct decision *const *)b;
	int c = strcmp(x->rule, y->rule);

	if (c)
		return c;
	if (x->condition.target.pid != y->condition.target.pid)
		return x->condition.target.pid < y->condition.target.pid ? -1 : 1;
	if (x->condition.target.start_time != y->condition.target.start_time)
		return x->condition.target.start_time < y->condition.target.start_time ? -1 : 1;
	return x->time_ns < y->time_ns ? -1 : x->time_ns > y->time_ns;
}

static bool same_target(const struct decision *x, const struct decision *y)
{
	return x->condition.target.pid == y->condition.target.pid &&
	       x->condition.target.start_time == y->condition.target.start_time;
}

/* A lane of a plot: its label, how many marks it has, and for a target's
 * lane the target. */
struct lane {
	char label[160];
	size_t n;
	pid_t pid;
	uint64_t start;
};

/* One inline SVG: a lane per label, a circle per decision at its time,
 * coloured by outcome, its tooltip naming it and linking to its section. */
static void plot(FILE *f, const struct report *r, const char *id, const struct lane *lanes,
		 size_t nlanes, const size_t *lane_of)
{
	const int left = 230, width = 760, lane_h = 18, top = 10;
	int height = top + (int)nlanes * lane_h + 30;
	double span = r->t1 > r->t0 ? (double)(r->t1 - r->t0) : 1;
	char when[40];

	fprintf(f, "<svg id=\"%s\" class=\"plot\" "
		"viewBox=\"0 0 %d %d\" width=\"%d\" height=\"%d\" role=\"img\">\n", id,
		left + width + 10, height, left + width + 10, height);
	for (size_t l = 0; l < nlanes; l++) {
		int y = top + (int)l * lane_h + lane_h / 2;

		fprintf(f, "<line class=\"lane\" x1=\"%d\" y1=\"%d\" x2=\"%d\" y2=\"%d\"/>", left, y,
			left + width, y);
		fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">", left - 6, y + 4);
		html(f, lanes[l].label);
		fprintf(f, " (%zu)</text>\n", lanes[l].n);
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct decision *d = r->v[i];
		double x = left + (double)(d->time_ns - r->t0) / span * width;
		int y = top + (int)lane_of[i] * lane_h + lane_h / 2;

		time_format(d->time_ns, when, sizeof(when));
		fputs("<a href=\"#d-", f);
		html(f, d->id);
		fprintf(f, "\"><circle class=\"mark o-%s\" cx=\"%.1f\" cy=\"%d\" r=\"4\"><title>%s ",
			decision_outcome_name(d->outcome), x, y, when);
		html(f, d->id);
		fprintf(f, " pid %d ", d->condition.target.pid);
		html(f, d->condition.target.comm);
		fprintf(f, " %s</title></circle></a>\n", decision_outcome_name(d->outcome));
	}
	time_format(r->t0, when, sizeof(when));
	fprintf(f, "<text x=\"%d\" y=\"%d\">%s</text>", left, height - 8, when);
	time_format(r->t1, when, sizeof(when));
	fprintf(f, "<text x=\"%d\" y=\"%d\" text-anchor=\"end\">%s</text></svg>\n", left + width,
		height - 8, when);
}

static int by_count(const void *a, const void *b)
{
	const struct lane *x = a, *y = b;

	return x->n > y->n ? -1 : x->n < y->n;
}

static int by_target(const void *a, const void *b)
{
	const struct target *x = &(*(struct decision *const *)a)->condition.target;
	const struct target *y = &(*(struct decision *const *)b)->condition.target;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return x->start_time < y->start_time ? -1 : x->start_time > y->start_time;
}

/* The two plots: per rule (r->v is sorted by rule), then per target, the
 * busiest REPORT_TARGET_LANES and one lane for the others. */
static int plots(FILE *f, const struct report *r)
{
	struct lane *lanes = calloc(r->n + 1, sizeof(*lanes));
	size_t *lane_of = calloc(r->n, sizeof(*lane_of)), nlanes = 0;
	struct decision **v = malloc(r->n * sizeof(*v));
	int rc = -ENOMEM;

	if (!lanes || !lane_of || !v)
		goto cleanup;
	for (size_t i = 0; i < r->n; i++) {
		if (!i || strcmp(r->v[i]->rule, r->v[i - 1]->rule))
			str_copy(lanes[nlanes++].label, sizeof(lanes[0].label), r->v[i]->rule);
		lane_of[i] = nlanes - 1;
		lanes[nlanes - 1].n++;
	}
	fputs("<h2>Timeline per rule</h2>\n", f);
	plot(f, r, "by-rule", lanes, nlanes, lane_of);

	/* every target with its count, the busiest first */
	memcpy(v, r->v, r->n * sizeof(*v));
	qsort(v, r->n, sizeof(*v), by_target);
	nlanes = 0;
	for (size_t i = 0; i < r->n; i++) {
		const struct target *t = &v[i]->condition.target;

		if (i && !by_target(&v[i], &v[i - 1])) {
			lanes[nlanes - 1].n++;
			continue;
		}
		snprintf(lanes[nlanes].label, sizeof(lanes[0].label), "pid %d %.15s", t->pid, t->comm);
		lanes[nlanes].pid = t->pid;
		lanes[nlanes].start = t->start_time;
		lanes[nlanes++].n = 1;
	}
	qsort(lanes, nlanes, sizeof(*lanes), by_count);
	if (nlanes > REPORT_TARGET_LANES) {
		size_t others = 0;

		for (size_t l = REPORT_TARGET_LANES; l < nlanes; l++)
			others += lanes[l].n;
		nlanes = REPORT_TARGET_LANES + 1;
		snprintf(lanes[nlanes - 1].label, sizeof(lanes[0].label), "other targets");
		lanes[nlanes - 1].n = others;
		lanes[nlanes - 1].pid = -1;
	}
	for (size_t i = 0; i < r->n; i++) {
		const struct target *t = &r->v[i]->condition.target;
		size_t l;

		for (l = 0; l + 1 < nlanes && !(lanes[l].pid == t->pid && lanes[l].start == t->start_time); l++)
			;
		lane_of[i] = l;
	}
	fputs("<h2>Timeline per target</h2>\n<p>The busiest targets; the others share the last lane.</p>\n", f);
	plot(f, r, "by-target", lanes, nlanes, lane_of);
	rc = 0;
cleanup:
	free(lanes);
	free(lane_of);
	free(v);
	return rc;
}

static const enum decision_outcome outcome_order[] = {
	REFLEX_OUTCOME_ACTED, REFLEX_OUTCOME_FAILED, REFLEX_OUTCOME_DRY_RUN,
	REFLEX_OUTCOME_SUPPRESSED, REFLEX_OUTCOME_UNKNOWN, REFLEX_OUTCOME_PENDING,
};

/* Outcome counts of v[from, to) as "acted 3, dry-run 2" spans. */
static void outcome_counts(FILE *f, struct decision *const *v, size_t from, size_t to)
{
	uint64_t n[REFLEX_OUTCOME_COUNT] = { 0 };

	for (size_t i = from; i < to; i++)
		if (v[i]->outcome < REFLEX_OUTCOME_COUNT)
			n[v[i]->outcome]++;
	for (size_t k = 0; k < ARRAY_SIZE(outcome_order); k++)
		if (n[outcome_order[k]])
			fprintf(f, " <span class=\"o-%s\">%s %llu</span>",
				decision_outcome_name(outcome_order[k]),
				decision_outcome_name(outcome_order[k]), (unsigned long long)n[outcome_order[k]]);
}

/* The counts table: per rule, one column per outcome, and the totals. */
static void counts(FILE *f, const struct report *r)
{
	uint64_t total[REFLEX_OUTCOME_COUNT] = { 0 };

	fputs("<h2>Outcomes</h2>\n<table id=\"counts\"><tr><th>rule</th>", f);
	for (size_t k = 0; k < ARRAY_SIZE(outcome_order); k++)
		fprintf(f, "<th class=\"o-%s\">%s</th>", decision_outcome_name(outcome_order[k]),
			decision_outcome_name(outcome_order[k]));
	fputs("<th>total</th></tr>\n", f);
	for (size_t i = 0, end; i < r->n; i = end) {
		uint64_t n[REFLEX_OUTCOME_COUNT] = { 0 };

		for (end = i; end < r->n && !strcmp(r->v[end]->rule, r->v[i]->rule); end++)
			if (r->v[end]->outcome < REFLEX_OUTCOME_COUNT)
				n[r->v[end]->outcome]++, total[r->v[end]->outcome]++;
		fputs("<tr><td>", f);
		html(f, r->v[i]->rule);
		fputs("</td>", f);
		for (size_t k = 0; k < ARRAY_SIZE(outcome_order); k++)
			fprintf(f, "<td>%llu</td>", (unsigned long long)n[outcome_order[k]]);
		fprintf(f, "<td>%zu</td></tr>\n", end - i);
	}
	fputs("<tr class=\"total\"><td>all rules</td>", f);
	for (size_t k = 0; k < ARRAY_SIZE(outcome_order); k++)
		fprintf(f, "<td id=\"total-%s\">%llu</td>", decision_outcome_name(outcome_order[k]),
			(unsigned long long)total[outcome_order[k]]);
	fprintf(f, "<td id=\"total\">%zu</td></tr></table>\n", r->n);
}

static void row(FILE *f, const char *name, const char *value)
{
	fprintf(f, "<tr><th>%s</th><td>", name);
	html(f, value[0] ? value : "-");
	fputs("</td></tr>", f);
}

/* A link to the section of decision id. */
static void link(FILE *f, const char *id)
{
	fputs("<a href=\"#d-", f);
	html(f, id);
	fputs("\">", f);
	html(f, id);
	fputs("</a>", f);
}

/* "(action, rung n)" of a neighbour in the chain. */
static void step(FILE *f, const struct decision *d, const char *also)
{
	fputs(" (", f);
	html(f, d->action);
	fprintf(f, ", rung %d%s)", d->rung, also);
}

/* The chain of v[i]: the decisions of its rule on its target, v[from, to),
 * in time order (ladder rungs, repeats, the undo), as links. */
static void chain(FILE *f, struct decision *const *v, size_t i, size_t from, size_t to)
{
	const char *undoes = strstr(v[i]->detail, "undoing decision ");
	char id[37];

	fprintf(f, "<p class=\"chain\">step %zu of %zu of this rule on this target", i - from + 1,
		to - from);
	if (i > from) {
		fputs("; before: ", f);
		link(f, v[i - 1]->id);
		step(f, v[i - 1], "");
	}
	if (i + 1 < to) {
		fputs("; after: ", f);
		link(f, v[i + 1]->id);
		step(f, v[i + 1], v[i + 1]->rung > v[i]->rung ? ", escalated" : "");
	}
	if (undoes) {
		str_copy(id, sizeof(id), undoes + strlen("undoing decision "));
		fputs("; undoes ", f);
		link(f, id);
	}
	/* the undo comes once the condition is gone for good: soon after */
	for (size_t k = i + 1; k < to && k < i + 64; k++)
		if (strstr(v[k]->detail, v[i]->id)) {
			fputs("; undone by ", f);
			link(f, v[k]->id);
		}
	fputs("</p>\n", f);
}

/* One decision: what was seen, which rule decided and why, what was done,
 * what verification found, and its chain. */
static void decision(FILE *f, struct decision *const *v, size_t i, size_t from, size_t to, bool open)
{
	const struct decision *d = v[i];
	const struct condition *c = &d->condition;
	const struct target *t = &c->target;
	char when[40], held[32], num[64];

	time_format(d->time_ns, when, sizeof(when));
	duration_format(d->held_ns, held, sizeof(held));
	fputs("<details class=\"decision\" id=\"d-", f);
	html(f, d->id);
	fprintf(f, "\"%s><summary>%s <code>", open ? " open" : "", when);
	html(f, d->id);
	fprintf(f, "</code> %s: ", condition_kind_name(c->kind));
	html(f, d->action);
	fprintf(f, " <span class=\"o-%s\">%s</span> ", decision_outcome_name(d->outcome),
		decision_outcome_name(d->outcome));
	html(f, c->summary);
	fputs("</summary>\n<h4>Seen</h4><table class=\"kv\">", f);
	row(f, "kind", condition_kind_name(c->kind));
	row(f, "held", held);
	snprintf(num, sizeof(num), "%d (tid %d, start %llu)", t->pid, t->tid, (unsigned long long)t->start_time);
	row(f, "pid", num);
	row(f, "comm", t->comm);
	row(f, "exe", t->exe);
	row(f, "command", t->command);
	row(f, "cgroup", t->cgroup);
	if (t->pod[0] || t->container_id[0]) {
		row(f, "pod", t->pod);
		row(f, "namespace", t->namespace);
		row(f, "container", t->container);
		row(f, "container id", t->container_id);
	}
	row(f, "summary", c->summary);
	fputs("<tr><th>evidence</th><td>", f);
	html_json_text(f, c->evidence, "-");
	fputs("</td></tr></table>\n<h4>Decided</h4><table class=\"kv\">", f);
	row(f, "rule", d->rule);
	row(f, "file", d->rule_file);
	row(f, "sha256", d->rule_hash);
	row(f, "mode", decision_mode_name(d->mode));
	fputs("<tr><th>why</th><td>", f);
	html_json_text(f, d->explain, "-");
	fputs("</td></tr></table>\n<h4>Done</h4><table class=\"kv\">", f);
	row(f, "action", d->action);
	fputs("<tr><th>params</th><td>", f);
	html_json_text(f, d->params, "-");
	fputs("</td></tr>", f);
	snprintf(num, sizeof(num), "%d%s", d->rung, d->rung ? " (an escalation)" : " (the rule's act)");
	row(f, "rung", num);
	row(f, "outcome", decision_outcome_name(d->outcome));
	row(f, "detail", d->detail);
	row(f, "verified", d->verify);
	fputs("</table>\n", f);
	chain(f, v, i, from, to);
	fputs("</details>\n", f);
}

/* The sections: a <details> per rule, in it one per target, in it one per
 * decision. */
static void sections(FILE *f, const struct report *r)
{
	bool open_rules = r->n <= REPORT_OPEN_RULES, open_all = r->n <= REPORT_OPEN_DECISIONS;

	fputs("<h2>Decisions</h2>\n", f);
	for (size_t i = 0, rule_end; i < r->n; i = rule_end) {
		for (rule_end = i; rule_end < r->n && !strcmp(r->v[rule_end]->rule, r->v[i]->rule); rule_end++)
			;
		fprintf(f, "<details class=\"rule\"%s><summary><b>", open_rules ? " open" : "");
		html(f, r->v[i]->rule);
		fprintf(f, "</b>: %zu decisions", rule_end - i);
		outcome_counts(f, r->v, i, rule_end);
		fputs("</summary>\n", f);
		for (size_t j = i, end; j < rule_end; j = end) {
			const struct target *t = &r->v[j]->condition.target;

			for (end = j; end < rule_end && same_target(r->v[end], r->v[j]); end++)
				;
			fprintf(f, "<details class=\"target\"%s><summary>pid %d <code>", open_rules ? " open" : "",
				t->pid);
			html(f, t->comm);
			fputs("</code> ", f);
			html(f, t->exe);
			fprintf(f, ": %zu decisions", end - j);
			outcome_counts(f, r->v, j, end);
			fputs("</summary>\n", f);
			for (size_t k = j; k < end; k++)
				decision(f, r->v, k, j, end, open_all);
			fputs("</details>\n", f);
		}
		fputs("</details>\n", f);
	}
}

static const char style[] =
	"body{font:14px/1.4 system-ui,sans-serif;margin:1.5em;color:#222;max-width:1100px}"
	"h1{font-size:1.4em}h2{font-size:1.15em;margin-top:1.5em}h4{margin:.6em 0 .2em}"
	"table{border-collapse:collapse}td,th{border:1px solid #ddd;padding:2px 6px;text-align:left;"
	"vertical-align:top}table.kv th{width:8em;background:#f6f6f6}"
	"#counts td{text-align:right}#counts td:first-child{text-align:left}"
	"details{margin:.2em 0 .2em 1em}summary{cursor:pointer}details.rule>summary{font-size:1.05em}"
	"details.decision{border-left:3px solid #ccc;padding-left:.5em}"
	"code,pre{font:12px ui-monospace,monospace}pre{margin:0;white-space:pre-wrap}"
	"pre.frames{background:#f6f6f6;padding:2px 4px}"
	"dl.ev{margin:0;display:grid;grid-template-columns:max-content auto;column-gap:.8em}"
	"dl.ev dt{font-weight:600}dl.ev dd{margin:0}.note{color:#666}"
	"svg.plot text{font:11px system-ui,sans-serif}svg.plot line.lane{stroke:#e4e4e4}"
	".mark{fill-opacity:.75}.o-acted{color:#b03a2e;fill:#b03a2e}.o-failed{color:#7d3c98;fill:#7d3c98}"
	".o-dry-run{color:#2e86c1;fill:#2e86c1}.o-suppressed{color:#7f8c8d;fill:#7f8c8d}"
	".o-unknown{color:#d68910;fill:#d68910}.o-pending{color:#d4ac0d;fill:#d4ac0d}"
	"p.chain{color:#444}";

int report_write(struct journal *j, const struct journal_filter *f, const char *path,
		 char *err, size_t errlen)
{
	struct journal_filter q = *f;
	struct report r = { 0 };
	bool cut = false;
	char when[40];
	FILE *out = NULL;
	int rc;

	/* the newest REFLEX_REPORT_MAX (one more, to know when there were more) */
	if (!q.limit || q.limit > REFLEX_REPORT_MAX)
		q.limit = REFLEX_REPORT_MAX + 1;
	rc = journal_query(j, &q, collect, &r);
	if (rc) {
		snprintf(err, errlen, "%s", journal_errmsg(j));
		goto cleanup;
	}
	if (r.n > REFLEX_REPORT_MAX) {
		free(r.v[0]);
		memmove(r.v, r.v + 1, (r.n - 1) * sizeof(*r.v));
		r.n--;
		cut = true;
	}
	for (size_t i = 0; i < r.n; i++) {
		if (!i || r.v[i]->time_ns < r.t0)
			r.t0 = r.v[i]->time_ns;
		if (!i || r.v[i]->time_ns > r.t1)
			r.t1 = r.v[i]->time_ns;
	}
	qsort(r.v, r.n, sizeof(*r.v), by_rule_target_time);
	out = fopen(path, "we");
	if (!out) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
		goto cleanup;
	}
	/* the policy forbids every fetch: the page cannot reach the network,
	 * and a browser says so if anything in it tries */
	fputs("<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
	      "<meta http-equiv=\"Content-Security-Policy\" content=\"default-src 'none'; "
	      "style-src 'unsafe-inline'\">\n<title>reflexd audit report</title>\n<style>", out);
	fputs(style, out);
	fputs("</style></head><body>\n<h1>reflexd audit report</h1>\n", out);
	time_format(clock_real_ns(), when, sizeof(when));
	fprintf(out, "<p id=\"about\">Written %s: <b id=\"count\">%zu</b> decisions", when, r.n);
	if (r.n) {
		time_format(r.t0, when, sizeof(when));
		fprintf(out, " from %s", when);
		time_format(r.t1, when, sizeof(when));
		fprintf(out, " to %s", when);
	}
	fputs(cut ? ". <b>More decisions matched: these are the newest; narrow the report with "
		    "--since, --until, --rule or --pid.</b>" : ".", out);
	fputs("</p>\n", out);
	counts(out, &r);
	if (r.n) {
		rc = plots(out, &r);
		if (rc) {
			snprintf(err, errlen, "%s", strerror(-rc));
			goto cleanup;
		}
	}
	sections(out, &r);
	fputs("</body></html>\n", out);
	if (fflush(out) || ferror(out)) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	}
cleanup:
	if (out && fclose(out) && !rc) {
		rc = -errno;
		snprintf(err, errlen, "cannot write %s: %s", path, strerror(errno));
	}
	for (size_t i = 0; i < r.n; i++)
		free(r.v[i]);
	free(r.v);
	return rc;
}
