/* `reflexd audit`: what the robot did, from the journal. A table for a
 * person, or one JSON object per line for a script. */
#include <stdio.h>
#include <string.h>

#include "core/audit.h"
#include "core/journal.h"
#include "core/log.h"

void audit_print_json(const struct decision *d)
{
	const struct target *t = &d->condition.target;
	char line[16384], when[40];
	struct sbuf b;

	time_format(d->time_ns, when, sizeof(when));
	sbuf_init(&b, line, sizeof(line));
	sbuf_printf(&b, "{\"id\":\"%s\",\"time\":\"%s\",\"time_unix_nano\":%lld,\"mode\":\"%s\","
		    "\"host\":", d->id, when, (long long)d->time_ns, decision_mode_name(d->mode));
	sbuf_json_str(&b, d->host);
	sbuf_printf(&b, ",\"rule\":");
	sbuf_json_str(&b, d->rule);
	sbuf_printf(&b, ",\"rule_file\":");
	sbuf_json_str(&b, d->rule_file);
	sbuf_printf(&b, ",\"rule_hash\":\"%s\",\"kind\":\"%s\",\"held_ms\":%llu,\"pid\":%d,\"tid\":%d,"
		    "\"comm\":", d->rule_hash, condition_kind_name(d->condition.kind),
		    (unsigned long long)(d->held_ns / NSEC_PER_MSEC), t->pid, t->tid);
	sbuf_json_str(&b, t->comm);
	sbuf_printf(&b, ",\"exe\":");
	sbuf_json_str(&b, t->exe);
	sbuf_printf(&b, ",\"cgroup\":");
	sbuf_json_str(&b, t->cgroup);
	if (t->pod_uid[0] || t->container_id[0]) {
		sbuf_printf(&b, ",\"namespace\":");
		sbuf_json_str(&b, t->namespace);
		sbuf_printf(&b, ",\"pod\":");
		sbuf_json_str(&b, t->pod);
		sbuf_printf(&b, ",\"pod_uid\":");
		sbuf_json_str(&b, t->pod_uid);
		sbuf_printf(&b, ",\"container\":");
		sbuf_json_str(&b, t->container);
		sbuf_printf(&b, ",\"container_id\":");
		sbuf_json_str(&b, t->container_id);
	}
	sbuf_printf(&b, ",\"summary\":");
	sbuf_json_str(&b, d->condition.summary);
	/* evidence and params are JSON already, written by reflexd */
	sbuf_printf(&b, ",\"evidence\":%s,\"action\":\"%s\",\"params\":%s,\"outcome\":\"%s\",\"detail\":",
		    d->condition.evidence[0] ? d->condition.evidence : "{}", d->action,
		    d->params[0] ? d->params : "{}", decision_outcome_name(d->outcome));
	sbuf_json_str(&b, d->detail);
	sbuf_printf(&b, ",\"verify\":");
	sbuf_json_str(&b, d->verify);
	sbuf_printf(&b, ",\"rung\":%d,\"explain\":%s", d->rung, d->explain[0] ? d->explain : "[]");
	sbuf_printf(&b, "}");
	puts(line);
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
