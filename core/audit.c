/* `reflexd audit`: what the robot did, from the journal. A table for a
 * person, or one JSON object per line for a script. */
#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/journal.h"
#include "core/log.h"

/* ,"key":value with value as a JSON string, or JSON already (written by
 * reflexd: evidence, params, explain) with a default when empty. */
static void put_str(struct sbuf *b, const char *key, const char *v)
{
	sbuf_puts(b, key);
	sbuf_json_str(b, v);
}

static void put_json(struct sbuf *b, const char *key, const char *json, const char *empty)
{
	sbuf_puts(b, key);
	sbuf_puts(b, json[0] ? json : empty);
}

static void put_int(struct sbuf *b, const char *key, long long v)
{
	sbuf_puts(b, key);
	sbuf_int(b, v);
}

void audit_print_json(const struct decision *d)
{
	const struct target *t = &d->condition.target;
	char line[16384], when[40];
	struct sbuf b;

	time_format(d->time_ns, when, sizeof(when));
	sbuf_init(&b, line, sizeof(line));
	put_str(&b, "{\"id\":", d->id);
	put_str(&b, ",\"time\":", when);
	put_int(&b, ",\"time_unix_nano\":", d->time_ns);
	put_str(&b, ",\"mode\":", decision_mode_name(d->mode));
	put_str(&b, ",\"host\":", d->host);
	put_str(&b, ",\"rule\":", d->rule);
	put_str(&b, ",\"rule_file\":", d->rule_file);
	put_str(&b, ",\"rule_hash\":", d->rule_hash);
	put_str(&b, ",\"kind\":", condition_kind_name(d->condition.kind));
	put_int(&b, ",\"held_ms\":", (long long)(d->held_ns / NSEC_PER_MSEC));
	put_int(&b, ",\"pid\":", t->pid);
	put_int(&b, ",\"tid\":", t->tid);
	put_str(&b, ",\"comm\":", t->comm);
	put_str(&b, ",\"exe\":", t->exe);
	put_str(&b, ",\"cgroup\":", t->cgroup);
	if (t->pod_uid[0] || t->container_id[0]) {
		put_str(&b, ",\"namespace\":", t->namespace);
		put_str(&b, ",\"pod\":", t->pod);
		put_str(&b, ",\"pod_uid\":", t->pod_uid);
		put_str(&b, ",\"container\":", t->container);
		put_str(&b, ",\"container_id\":", t->container_id);
	}
	put_str(&b, ",\"summary\":", d->condition.summary);
	put_json(&b, ",\"evidence\":", d->condition.evidence, "{}");
	put_str(&b, ",\"action\":", d->action);
	put_json(&b, ",\"params\":", d->params, "{}");
	put_str(&b, ",\"outcome\":", decision_outcome_name(d->outcome));
	put_str(&b, ",\"detail\":", d->detail);
	put_str(&b, ",\"verify\":", d->verify);
	put_int(&b, ",\"rung\":", d->rung);
	put_json(&b, ",\"explain\":", d->explain, "[]");
	sbuf_put(&b, "}\n", 2);
	fwrite(line, 1, b.len, stdout);
}

static int print_row(const struct decision *d, void *ctx)
{
	const struct target *t = &d->condition.target;
	bool json = *(bool *)ctx;
	char when[40];

	if (json) {
		audit_print_json(d);
		return 0;
	}
	time_format(d->time_ns, when, sizeof(when));
	printf("%-24s %-8s %-8s %-20s %-9s %7d %-15s %-7s %-10s %s\n", when,
	       d->id + strlen(d->id) - 8, decision_mode_name(d->mode), d->rule,
	       condition_kind_name(d->condition.kind), t->pid, t->comm, d->action,
	       decision_outcome_name(d->outcome), d->detail);
	return 0;
}

/* `audit show ID`: the whole chain of one decision, for a person. */
static int print_chain(const struct decision *d, void *ctx)
{
	const struct condition *c = &d->condition;
	const struct target *t = &c->target;
	char when[40], held[32];

	*(int *)ctx += 1;
	time_format(d->time_ns, when, sizeof(when));
	duration_format(d->held_ns, held, sizeof(held));
	printf("decision  %s\n", d->id);
	printf("time      %s on %s, mode %s\n", when, d->host, decision_mode_name(d->mode));
	printf("evidence  %s on pid %d (%s), held %s: %s\n", condition_kind_name(c->kind), t->pid,
	       t->comm, held, c->summary);
	printf("          exe %s, cgroup %s\n", t->exe[0] ? t->exe : "-", t->cgroup[0] ? t->cgroup : "-");
	if (t->pod[0])
		printf("          pod %s/%s (uid %s), container %s\n", t->namespace, t->pod, t->pod_uid,
		       t->container[0] ? t->container : "-");
	printf("          %s\n", c->evidence[0] ? c->evidence : "{}");
	printf("rule      %s (%s, sha256 %.12s)\n", d->rule, d->rule_file[0] ? d->rule_file : "-",
	       d->rule_hash[0] ? d->rule_hash : "-");
	printf("why       %s\n", d->explain[0] ? d->explain : "[]");
	printf("action    %s %s%s\n", d->action, d->params[0] ? d->params : "{}",
	       d->rung ? " (escalation)" : "");
	printf("outcome   %s: %s\n", decision_outcome_name(d->outcome), d->detail);
	printf("verified  %s\n\n", d->verify[0] ? d->verify : "-");
	return 0;
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
	*real_ns = clock_real_ns() - (int64_t)ago;
	return 0;
}

int audit_main(struct config *cfg)
{
	struct journal_filter f = {
		.rule = cfg->rule, .kind = cfg->kind, .comm = cfg->comm, .pod = cfg->pod,
		.pid = (pid_t)cfg->pid, .outcome = -1, .limit = cfg->limit,
	};
	struct journal *j;
	char err[512];
	int rc;

	if (cfg->outcome && (f.outcome = decision_outcome_parse(cfg->outcome)) < 0) {
		fprintf(stderr, "reflexd: unknown outcome '%s' (acted, failed, dry-run, suppressed, "
			"unknown, pending)\n", cfg->outcome);
		return 2;
	}
	if (parse_ago("since", cfg->since, &f.since_ns) || parse_ago("until", cfg->until, &f.until_ns))
		return 2;
	j = journal_open(cfg->journal, true, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "reflexd: audit: %s\n", err);
		return 1;
	}
	if (cfg->show) {
		int found = 0;

		f.id = cfg->show;
		rc = journal_query(j, &f, cfg->json ? print_row : print_chain,
				   cfg->json ? (void *)&cfg->json : (void *)&found);
		journal_free(j);
		if (!cfg->json && !rc && !found) {
			fprintf(stderr, "reflexd: audit show: no decision %s\n", cfg->show);
			return 1;
		}
		return rc ? 1 : 0;
	}
	if (!cfg->json)
		printf("%-24s %-8s %-8s %-20s %-9s %7s %-15s %-7s %-10s %s\n", "TIME", "ID", "MODE",
		       "RULE", "KIND", "PID", "COMM", "ACTION", "OUTCOME", "DETAIL");
	rc = journal_query(j, &f, print_row, &cfg->json);
	if (rc)
		fprintf(stderr, "reflexd: audit: %s\n", journal_errmsg(j));
	journal_free(j);
	return rc ? 1 : 0;
}
