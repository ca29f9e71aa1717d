/* `reflexd audit`: what the robot did, from the journal. A table for a
 * person, or one JSON object per line for a script. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/audit.h"
#include "cmd/report.h"
#include "lib/json.h"
#include "lib/log.h"
#include "lib/text.h"
#include "model/decision_fields.h"
#include "record/journal.h"

/* One decision as a JSON object, a line, its keys and their order from
 * the field table (model/decision_fields.h). Strings are escaped; JSON
 * reflexd wrote (evidence, params, explain) goes as it is, made valid
 * UTF-8 (lib/text.h): a journal written before reflexd escaped host bytes
 * in evidence may hold them raw, inside the JSON's strings. */
void audit_print_json(const struct decision *d)
{
	size_t nf;
	const struct decision_field *f = decision_fields(&nf);
	char line[16384], buf[64];
	struct sbuf b;

	sbuf_init(&b, line, sizeof(line));
	for (size_t i = 0, n = 0; i < nf; i++) {
		if (!f[i].json)
			continue;
		/* not sbuf_printf: a format per key doubled simulate --json's time */
		sbuf_puts(&b, n++ ? ",\"" : "{\"");
		sbuf_puts(&b, f[i].json);
		sbuf_puts(&b, "\":");
		if (decision_field_is_int(&f[i]) && (f[i].flags & DECISION_FIELD_NULL_UNSET) &&
		    !decision_field_int(&f[i], d))
			sbuf_puts(&b, "null");
		else if (decision_field_is_int(&f[i]))
			sbuf_int(&b, decision_field_int(&f[i], d));
		else if (f[i].type == DECISION_FIELD_JSON)
			sbuf_text(&b, decision_field_text(&f[i], d, buf, sizeof(buf)), TEXT_IN_JSON);
		else
			sbuf_json_str(&b, decision_field_text(&f[i], d, buf, sizeof(buf)));
	}
	sbuf_put(&b, "}\n", 2);
	fwrite(line, 1, b.len, stdout);
}

/* "namespace/pod", or "-" when the target is not in a known pod. */
static void pod_name(const struct target *t, char *buf, size_t size)
{
	if (t->pod[0])
		snprintf(buf, size, "%s/%s", t->namespace[0] ? t->namespace : "?", t->pod);
	else
		snprintf(buf, size, "-");
}

static int print_row(const struct decision *d, void *ctx)
{
	const struct target *t = &d->condition.target;
	bool json = *(bool *)ctx;
	char when[40], pod[200];

	if (json) {
		audit_print_json(d);
		return 0;
	}
	time_format(d->time_ns, when, sizeof(when));
	/* the pod, when known, leads the detail: the columns stay as they were */
	pod[0] = '\0';
	if (t->pod[0]) {
		pod_name(t, pod, sizeof(pod) - 3);
		strcat(pod, ": ");
	}
	text_print(stdout, "%-24s %-8s %-8s %-20s %-9s %7d %-15s %-7s %-10s %s%s\n", when,
	       d->id + strlen(d->id) - 8, decision_mode_name(d->mode), d->rule,
	       condition_kind_name(d->condition.kind), t->pid, t->comm, d->action,
	       decision_outcome_name(d->outcome), pod, d->detail);
	return 0;
}

struct chain {
	struct journal *journal;
	const struct decision *first; /* the decision shown */
	int found;
};

/* A later decision on the same target by the same rule: an escalation
 * when it climbed a rung, else what happened next. */
static int print_followup(const struct decision *d, void *ctx)
{
	struct chain *ch = ctx;
	const struct target *t = &d->condition.target, *first = &ch->first->condition.target;
	char when[40];

	if (!strcmp(d->id, ch->first->id) || t->start_time != first->start_time)
		return 0;
	time_format(d->time_ns, when, sizeof(when));
	text_print(stdout, "%-9s %s %s: %s (rung %d) %s: %s%s%s\n", d->rung > ch->first->rung ? "escalated" : "then",
	       when, d->id, d->action, d->rung, decision_outcome_name(d->outcome), d->detail,
	       d->verify[0] ? "; verified: " : "", d->verify);
	return 0;
}

/* One line of `audit show`: "key: text" at indent, lead ("- " for the
 * first line of an array's item) written into the indent. */
static void show_line(int indent, const char *lead, const char *key, const char *text)
{
	int pad = indent - (int)strlen(lead);

	text_print(stdout, "%*s%s%s%s%s", pad > 0 ? pad : 0, "", lead, key,
		   key[0] ? (text[0] ? ": " : ":") : "", text);
}

/* A JSON value for a person, one "key: value" a line: objects indented,
 * an array of scalars on one line, of strings (a stack's frames) one a
 * line, of objects one "- " item each; numbers with a reading aid by
 * their key's unit (report_note). */
static void show_json(const struct json_val *v, const char *key, int indent, const char *lead)
{
	struct json_val it = { 0 }, k;
	bool scalars = true, strings = true;
	char text[1024], note[64];
	struct sbuf b;
	double num;

	switch (v->type) {
	case JSON_OBJECT:
		if (key[0]) {
			show_line(indent, lead, key, "");
			indent += 2;
			lead = "";
		}
		while (json_next(v, &it, &k)) {
			char name[64];

			(void)json_str(&k, name, sizeof(name));
			show_json(&it, name, indent, lead);
			lead = "";
		}
		return;
	case JSON_ARRAY:
		while (json_next(v, &it, NULL)) {
			scalars &= it.type != JSON_OBJECT && it.type != JSON_ARRAY;
			strings &= it.type == JSON_STRING;
		}
		memset(&it, 0, sizeof(it));
		if (scalars && !strings) {
			sbuf_init(&b, text, sizeof(text));
			for (bool first = true; json_next(v, &it, NULL); first = false) {
				if (!first)
					sbuf_puts(&b, ", ");
				sbuf_put(&b, it.p, it.n);
			}
			show_line(indent, lead, key, text);
			return;
		}
		show_line(indent, lead, key, "");
		while (json_next(v, &it, NULL))
			show_json(&it, "", it.type == JSON_OBJECT ? indent + 4 : indent + 2,
				  it.type == JSON_OBJECT ? "- " : "");
		return;
	case JSON_STRING: {
		char *s = malloc(v->n + 1);

		if (s && !json_str(v, s, v->n + 1))
			show_line(indent, lead, key, s);
		free(s);
		return;
	}
	default:
		sbuf_init(&b, text, sizeof(text));
		sbuf_put(&b, v->p, v->n);
		if (v->type == JSON_NUMBER && !json_num(v, &num)) {
			report_note(key, num, note, sizeof(note));
			if (note[0])
				sbuf_printf(&b, " (%s)", note);
		}
		show_line(indent, lead, key, text);
	}
}

/* JSON text from the journal under a heading: rendered, or as it is when
 * it does not parse (a cut or older record). */
static void show_json_text(const char *heading, const char *json)
{
	struct json_val v;

	if (!json[0] || json_parse(json, strlen(json), &v) || (v.type != JSON_OBJECT && v.type != JSON_ARRAY)) {
		text_print(stdout, "%-9s %s", heading, json[0] ? json : "-");
		return;
	}
	text_print(stdout, "%s", heading);
	show_json(&v, "", 10, "");
}

/* `audit show ID`: one decision as a person reads an incident: what was
 * seen, which rule decided and why, what was done, what verification
 * found, and the chain (the ladder after it, the decision it undoes). */
static int print_chain(const struct decision *d, void *ctx)
{
	const struct condition *c = &d->condition;
	const struct target *t = &c->target;
	struct chain *ch = ctx;
	char when[40], held[32], pod[200];
	const char *undoes = strstr(d->detail, "undoing decision ");
	struct json_val why, it = { 0 };

	ch->found++;
	time_format(d->time_ns, when, sizeof(when));
	duration_format(d->held_ns, held, sizeof(held));
	text_print(stdout, "decision  %s", d->id);
	text_print(stdout, "time      %s on %s, mode %s", when, d->host, decision_mode_name(d->mode));
	printf("\nSEEN\n");
	text_print(stdout, "what      %s, held %s: %s", condition_kind_name(c->kind), held, c->summary);
	text_print(stdout, "target    pid %d (tid %d) %s", t->pid, t->tid, t->comm);
	text_print(stdout, "          exe %s, cgroup %s", t->exe[0] ? t->exe : "-", t->cgroup[0] ? t->cgroup : "-");
	pod_name(t, pod, sizeof(pod));
	if (t->pod[0] || t->container_id[0])
		text_print(stdout, "          pod %s (uid %s), container %s (%s)", pod, t->pod_uid[0] ? t->pod_uid : "-",
		       t->container[0] ? t->container : "-", t->container_id[0] ? t->container_id : "-");
	show_json_text("evidence", c->evidence);
	printf("\nDECIDED\n");
	text_print(stdout, "rule      %s (%s, sha256 %.12s)", d->rule, d->rule_file[0] ? d->rule_file : "-",
	       d->rule_hash[0] ? d->rule_hash : "-");
	/* the explanation: each rule considered, and why it did or did not decide */
	if (d->explain[0] && !json_parse(d->explain, strlen(d->explain), &why) && why.type == JSON_ARRAY) {
		for (bool first = true; json_next(&why, &it, NULL); first = false) {
			char rule[128], reason[512];

			json_get_str(&it, "rule", rule, sizeof(rule));
			json_get_str(&it, "why", reason, sizeof(reason));
			text_print(stdout, "%-9s %s%s%s", first ? "why" : "", rule, rule[0] ? ": " : "", reason);
		}
	} else {
		text_print(stdout, "why       %s", d->explain[0] ? d->explain : "-");
	}
	printf("\nDONE\n");
	text_print(stdout, "action    %s%s", d->action, d->rung ? " (escalation)" : "");
	show_json_text("params", d->params);
	text_print(stdout, "rung      %d", d->rung);
	text_print(stdout, "outcome   %s: %s", decision_outcome_name(d->outcome), d->detail);
	text_print(stdout, "verified  %s", d->verify[0] ? d->verify : "-");
	printf("\nCHAIN\n");
	if (undoes && strlen(undoes) >= 17 + 36)
		text_print(stdout, "undoes    %.36s", undoes + 17);
	if (t->pid && d->condition.kind < REFLEX_COND_KIND_COUNT) {
		/* what the same rule did to the same process after this: the
		 * ladder this decision started, if any */
		struct journal_filter next = {
			.rule = d->rule, .pid = t->pid, .outcome = -1, .since_ns = d->time_ns,
		};
		struct decision *first = malloc(sizeof(*first));
		struct chain follow = { .journal = ch->journal, .first = first };

		if (first) {
			*first = *d;
			(void)journal_query(ch->journal, &next, print_followup, &follow);
			free(first);
		}
	}
	text_print(stdout, "\n");
	return 0;
}

static int count_match(const struct decision *d, void *ctx)
{
	struct strlist *ids = ctx;

	return strlist_add(ids, d->id) ? 1 : 0;
}

/* `audit show ID`: the one decision whose id is ID, or starts or ends
 * with it. An exit status: 0, 1 when none or several match, 2 when ID is
 * not an id (said on stderr). */
static int show(struct journal *j, struct journal_filter *f, const char *id, bool json)
{
	struct strlist ids = { 0 };
	struct chain ch = { .journal = j };
	int rc;

	/* the journal matches a start or an end with LIKE: a '%' or '_' in
	 * it, or nothing, matched any decision, shown as if it were the one */
	if (!*id || strspn(id, "0123456789abcdefABCDEF-") != strlen(id)) {
		fprintf(stderr, "reflexd: audit show: '%s' is not a decision id (hex digits and '-')\n", id);
		return 2;
	}
	f->id = id;
	rc = journal_query(j, f, count_match, &ids);
	if (!rc && ids.n == 1) {
		f->id = ids.v[0];
		rc = journal_query(j, f, json ? print_row : print_chain, json ? (void *)&json : (void *)&ch);
	}
	if (rc)
		fprintf(stderr, "reflexd: audit show: %s\n", journal_errmsg(j));
	else if (!ids.n)
		fprintf(stderr, "reflexd: audit show: no decision %s\n", id);
	else if (ids.n > 1) {
		fprintf(stderr, "reflexd: audit show: %zu decisions match %s; give more of the id:\n", ids.n, id);
		for (size_t i = 0; i < ids.n && i < 10; i++)
			fprintf(stderr, "  %s\n", ids.v[i]);
	}
	rc = rc || ids.n != 1;
	strlist_free(&ids);
	return rc;
}

struct tally {
	char rule[128];
	char mode[16];
	uint64_t n[REFLEX_OUTCOME_COUNT];
};

struct summary {
	struct tally *v;
	size_t n, cap;
};

static int count_decision(const struct decision *d, void *ctx)
{
	struct summary *s = ctx;
	const char *mode = decision_mode_name(d->mode);
	size_t i;

	for (i = 0; i < s->n; i++)
		if (!strcmp(s->v[i].rule, d->rule) && !strcmp(s->v[i].mode, mode))
			break;
	if (i == s->n) {
		if (s->n == s->cap) {
			size_t cap = s->cap ? 2 * s->cap : 16;
			struct tally *grown = realloc(s->v, cap * sizeof(*grown));

			if (!grown)
				return 1;
			s->v = grown;
			s->cap = cap;
		}
		memset(&s->v[i], 0, sizeof(s->v[i]));
		str_copy(s->v[i].rule, sizeof(s->v[i].rule), d->rule);
		str_copy(s->v[i].mode, sizeof(s->v[i].mode), mode);
		s->n++;
	}
	if (d->outcome < REFLEX_OUTCOME_COUNT)
		s->v[i].n[d->outcome]++;
	return 0;
}

/* `audit summary`: per rule and mode, how many decisions of each outcome:
 * "what would it have done this week" is `audit summary --since 7d`. */
static int print_summary(struct journal *j, const struct journal_filter *f, bool json)
{
	static const enum decision_outcome order[] = {
		REFLEX_OUTCOME_ACTED, REFLEX_OUTCOME_FAILED, REFLEX_OUTCOME_DRY_RUN,
		REFLEX_OUTCOME_SUPPRESSED, REFLEX_OUTCOME_UNKNOWN, REFLEX_OUTCOME_PENDING,
	};
	struct summary s = { 0 };
	int rc = journal_query(j, f, count_decision, &s);

	if (!json) {
		printf("%-24s %-8s", "RULE", "MODE");
		for (size_t k = 0; k < ARRAY_SIZE(order); k++)
			printf(" %10s", decision_outcome_name(order[k]));
		printf(" %10s\n", "total");
	}
	for (size_t i = 0; !rc && i < s.n; i++) {
		uint64_t total = 0;
		char line[512];
		struct sbuf b;

		for (size_t k = 0; k < ARRAY_SIZE(order); k++)
			total += s.v[i].n[order[k]];
		sbuf_init(&b, line, sizeof(line));
		if (json) {
			sbuf_printf(&b, "{\"rule\":");
			sbuf_json_str(&b, s.v[i].rule);
			sbuf_printf(&b, ",\"mode\":\"%s\"", s.v[i].mode);
			for (size_t k = 0; k < ARRAY_SIZE(order); k++)
				sbuf_printf(&b, ",\"%s\":%llu", decision_outcome_name(order[k]),
					    (unsigned long long)s.v[i].n[order[k]]);
			sbuf_printf(&b, ",\"total\":%llu}", (unsigned long long)total);
			puts(line);
			continue;
		}
		sbuf_printf(&b, "%-24s %-8s", s.v[i].rule, s.v[i].mode);
		for (size_t k = 0; k < ARRAY_SIZE(order); k++)
			sbuf_printf(&b, " %10llu", (unsigned long long)s.v[i].n[order[k]]);
		text_print(stdout, "%s %10llu", line, (unsigned long long)total);
	}
	free(s.v);
	return rc;
}

/* A row of the journal that cannot be read back: said, and counted for
 * the exit status (the other rows are still shown). */
static void skipped_row(const char *why, void *ctx)
{
	text_print(stderr, "reflexd: audit: journal: %s", why);
	(*(unsigned long *)ctx)++;
}

static int parse_ago(const char *opt, const char *text, int64_t *real_ns)
{
	uint64_t ago;

	if (!text)
		return 0;
	if (duration_parse(text, &ago)) {
		fprintf(stderr, "reflexd: bad value '%s' for --%s (a duration like 2h or 30m)\n", text, opt);
		return -1;
	}
	/* further back than the epoch: the epoch (0 would mean no bound),
	 * before any record, never a wrapped time in the future */
	*real_ns = ago < (uint64_t)clock_real_ns() ? clock_real_ns() - (int64_t)ago : 1;
	return 0;
}

int audit_main(struct config *cfg)
{
	struct journal_filter f = {
		.rule = cfg->rule, .kind = cfg->kind, .comm = cfg->comm, .action = cfg->action,
		.mode = cfg->mode, .pod = cfg->pod, .namespace = cfg->namespace,
		.pid = (pid_t)cfg->pid, .outcome = -1, .limit = cfg->limit,
	};
	struct journal *j;
	unsigned long skipped = 0;
	char err[512];
	int rc;

	if (cfg->outcome && (f.outcome = decision_outcome_parse(cfg->outcome)) < 0) {
		fprintf(stderr, "reflexd: unknown outcome '%s' (acted, failed, dry-run, suppressed, "
			"unknown, pending)\n", cfg->outcome);
		return 2;
	}
	if (cfg->mode && decision_mode_parse(cfg->mode) < 0) {
		fprintf(stderr, "reflexd: unknown mode '%s' (live, dry-run, simulate)\n", cfg->mode);
		return 2;
	}
	if (cfg->kind && condition_kind_parse(cfg->kind) < 0) {
		fprintf(stderr, "reflexd: unknown condition kind '%s'\n", cfg->kind);
		return 2;
	}
	if (parse_ago("since", cfg->since, &f.since_ns) || parse_ago("until", cfg->until, &f.until_ns))
		return 2;
	j = journal_open(cfg->journal, true, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "reflexd: audit: %s\n", err);
		return 1;
	}
	journal_on_skip(j, skipped_row, &skipped);
	if (cfg->summary) {
		rc = print_summary(j, &f, cfg->json);
		if (rc)
			fprintf(stderr, "reflexd: audit: %s\n", journal_errmsg(j));
	} else if (cfg->show) {
		rc = show(j, &f, cfg->show, cfg->json);
	} else if (cfg->report) {
		if (!cfg->html) {
			fprintf(stderr, "reflexd: audit report: where to? (--html FILE)\n");
			journal_free(j);
			return 2;
		}
		rc = report_write(j, &f, cfg->html, err, sizeof(err));
		if (rc)
			fprintf(stderr, "reflexd: audit report: %s\n", err);
	} else {
		if (!cfg->json)
			printf("%-24s %-8s %-8s %-20s %-9s %7s %-15s %-7s %-10s %s\n", "TIME", "ID", "MODE",
			       "RULE", "KIND", "PID", "COMM", "ACTION", "OUTCOME", "DETAIL");
		rc = journal_query(j, &f, print_row, &cfg->json);
		if (rc)
			fprintf(stderr, "reflexd: audit: %s\n", journal_errmsg(j));
	}
	journal_free(j);
	/* show's is an exit status (2: a bad id), the others' 0 or -errno; a
	 * row skipped (said on stderr) fails the command too: not all was shown */
	if (cfg->show && rc > 0)
		return rc;
	return rc || skipped ? 1 : 0;
}
