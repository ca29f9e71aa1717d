/* The simulator: the daemon's engine, driven by a trace's clock instead of
 * the kernel's. Every guard runs as it does live (hold, protected targets,
 * cooldowns, budgets, verification); only the actions are not taken. The
 * trace's clear events stand for what the kernel would have seen, so
 * verification works. Same inputs, byte-identical output. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "cmd/audit.h"
#include "record/journal.h"
#include "lib/log.h"
#include "record/otlp.h"
#include "cmd/simulate.h"
#include "lib/text.h"
#include "decide/engine.h"
#include "record/trace.h"

/* virtual CLOCK_MONOTONIC of the trace's t = 0: leaves room for conditions
 * that began before the trace did, as far back as a since may say (a
 * since past a smaller epoch wrapped into the future: held 0, decided
 * before the trace began) */
#define SIM_EPOCH ((TRACE_SECONDS_MAX + 1) * NSEC_PER_SEC)
#define SIM_MAX_TICKS 10000000
#define SIM_OUT_BUFFER (256 * 1024)

/* A simulated action still waiting for its verification. */
struct awaiting {
	char id[37];
	char rule[128];
	pid_t pid;
	char comm[16];
	char action[32];
};

enum sim_format {
	SIM_TABLE,    /* for a person */
	SIM_JSON,     /* the audit's JSON lines */
	SIM_COMPACT,  /* "+2.500s RULE PID OUTCOME": what rule tests and --diff compare */
};

struct simulation {
	struct config *cfg;
	FILE *out;
	enum sim_format format;
	struct trace_reader trace;
	struct protect protect;
	struct decide_config decide;
	struct decide_engine *engine;
	struct journal *journal;  /* --otlp: the decisions to export, or NULL */
	uint64_t ids;
	struct awaiting *awaiting;
	size_t nawaiting, cap_awaiting;
};

static int64_t sim_wall_ns(uint64_t mono, void *ctx)
{
	struct simulation *sim = ctx;

	return sim->trace.start_ns + (int64_t)(mono - SIM_EPOCH);
}

/* The trace's wall clock now: the journal stamps exported records with it. */
static int64_t sim_now_ns(void *ctx)
{
	struct simulation *sim = ctx;

	return sim_wall_ns(decide_now(sim->engine), sim);
}

static void sim_new_id(char id[37], void *ctx)
{
	struct simulation *sim = ctx;

	unsigned long long n = ++sim->ids;

	/* "00000000-0000-0000-0000-" and n in 12 digits */
	memcpy(id, "00000000-0000-0000-0000-", 24);
	for (int i = 35; i >= 24; i--, n /= 10)
		id[i] = (char)('0' + n % 10);
	id[36] = '\0';
}

static void print_row(FILE *out, const char *when, const char *rule, const char *kind,
		      const char *pid, const char *comm, const char *action, const char *outcome,
		      const char *detail)
{
	text_print(out, "%-11s %-20s %-9s %7s %-15s %-7s %-10s %s", when, rule, kind, pid, comm,
		   action, outcome, detail);
}

static void trace_time(const struct simulation *sim, int64_t wall_ns, char *buf, size_t size)
{
	int64_t t = wall_ns - sim->trace.start_ns;

	snprintf(buf, size, "+%lld.%03llds", (long long)(t / (int64_t)NSEC_PER_SEC),
		 (long long)(t % (int64_t)NSEC_PER_SEC / (int64_t)NSEC_PER_MSEC));
}

/* Live decisions become "acted" as far as the simulation can tell: the
 * verification (from the trace) says whether acting would have helped.
 * The engine's decision is marked in place: one per condition is printed. */
static void sim_decision(void *ctx, struct decision *d, const struct rule_action *action)
{
	struct simulation *sim = ctx;
	char when[32];

	if (d->outcome == REFLEX_OUTCOME_PENDING && action) {
		char detail[sizeof(d->detail)];
		struct sbuf b;

		d->outcome = REFLEX_OUTCOME_ACTED;
		sbuf_init(&b, detail, sizeof(detail));
		sbuf_put(&b, d->detail, strnlen(d->detail, 100));
		sbuf_puts(&b, "simulated: ");
		sbuf_puts(&b, action->ops->name);
		sbuf_puts(&b, " ");
		sbuf_puts(&b, action->json);
		memcpy(d->detail, detail, b.len + 1);
		if (d->verify[0]) {
			struct awaiting *a;

			if (sim->nawaiting == sim->cap_awaiting) {
				size_t cap = sim->cap_awaiting ? 2 * sim->cap_awaiting : 16;
				struct awaiting *grown = realloc(sim->awaiting, cap * sizeof(*grown));

				if (grown) {
					sim->awaiting = grown;
					sim->cap_awaiting = cap;
				}
			}
			if (sim->nawaiting < sim->cap_awaiting) {
				a = &sim->awaiting[sim->nawaiting++];
				memcpy(a->id, d->id, sizeof(a->id));
				snprintf(a->rule, sizeof(a->rule), "%s", d->rule);
				a->pid = d->condition.target.pid;
				memcpy(a->comm, d->condition.target.comm, sizeof(a->comm));
				snprintf(a->action, sizeof(a->action), "%s", d->action);
			}
		}
	}
	d->mode = REFLEX_MODE_SIMULATE;
	if (sim->journal && journal_write(sim->journal, d))
		fprintf(stderr, "reflexd: simulate: cannot journal decision %s: %s\n", d->id,
			journal_errmsg(sim->journal));
	if (sim->format == SIM_JSON) {
		audit_print_json(d);
		return;
	}
	trace_time(sim, d->time_ns, when, sizeof(when));
	if (sim->format == SIM_COMPACT) {
		text_print(sim->out, "%s %s %d %s", when, d->rule, d->condition.target.pid,
			   decision_outcome_name(d->outcome));
	} else {
		char pid[16];

		snprintf(pid, sizeof(pid), "%d", d->condition.target.pid);
		print_row(sim->out, when, d->rule, condition_kind_name(d->condition.kind), pid,
			  d->condition.target.comm, d->action, decision_outcome_name(d->outcome), d->detail);
		if (sim->cfg->explain)
			text_print(sim->out, "            why: %s", d->explain);
	}
}

static void sim_verified(void *ctx, const char *id, bool cleared, const char *result)
{
	struct simulation *sim = ctx;
	char when[32], stamp[40];
	int64_t wall = sim_now_ns(sim);

	for (size_t i = 0; i < sim->nawaiting; i++) {
		struct awaiting *a = &sim->awaiting[i];

		if (strcmp(a->id, id))
			continue;
		if (sim->journal && journal_verify(sim->journal, id, result))
			fprintf(stderr, "reflexd: simulate: cannot journal the verification of %s: %s\n",
				id, journal_errmsg(sim->journal));
		trace_time(sim, wall, when, sizeof(when));
		if (sim->format == SIM_JSON) {
			char line[1024];
			struct sbuf b;

			time_format(wall, stamp, sizeof(stamp));
			sbuf_init(&b, line, sizeof(line));
			sbuf_printf(&b, "{\"verify_of\":\"%s\",\"time\":\"%s\",\"time_unix_nano\":%lld,"
				    "\"rule\":", id, stamp, (long long)wall);
			sbuf_json_str(&b, a->rule);
			sbuf_printf(&b, ",\"pid\":%d,\"cleared\":%s,\"verify\":", a->pid,
				    cleared ? "true" : "false");
			sbuf_json_str(&b, result);
			fprintf(sim->out, "%s}\n", line);
		} else if (sim->format == SIM_COMPACT) {
			text_print(sim->out, "%s %s %d verify: %s", when, a->rule, a->pid, result);
		} else {
			char pid[16];

			snprintf(pid, sizeof(pid), "%d", a->pid);
			print_row(sim->out, when, a->rule, "", pid, a->comm, a->action, "verify", result);
		}
		sim->awaiting[i] = sim->awaiting[--sim->nawaiting];
		return;
	}
}

/* --explain: a condition that cleared with no rule deciding, and why. */
static void explain_undecided(struct simulation *sim, uint64_t cond_id, uint64_t now)
{
	char why[REFLEX_EVIDENCE_MAX], when[32];
	struct sbuf b;

	sbuf_init(&b, why, sizeof(why));
	if (!decide_explain(sim->engine, cond_id, now, &b))
		return;
	if (sim->format == SIM_JSON) {
		fprintf(sim->out, "{\"no_decision\":%llu,\"time_unix_nano\":%lld,\"explain\":%s}\n",
			(unsigned long long)cond_id, (long long)sim_wall_ns(now, sim), why);
		return;
	}
	trace_time(sim, sim_wall_ns(now, sim), when, sizeof(when));
	fprintf(sim->out, "%-11s condition %llu cleared; no rule decided\n", when, (unsigned long long)cond_id);
	text_print(sim->out, "            why: %s", why);
}

/* Runs every engine deadline up to `until` (0: until none is left). */
static void run_until(struct simulation *sim, uint64_t until)
{
	uint64_t due;

	for (long ticks = 0; ticks < SIM_MAX_TICKS; ticks++) {
		due = decide_next_deadline(sim->engine);
		if (!due || (until && due > until))
			return;
		decide_tick(sim->engine, due);
	}
}

/* Replays trace through rules, printing decisions to out: 0, or 1 after a
 * bad trace (reported on stderr; what was decided before it is printed). */
static int simulate(struct config *cfg, const char *trace, struct ruleset *rules, FILE *out,
		    enum sim_format format, struct journal *export)
{
	struct simulation sim = { .cfg = cfg, .out = out, .format = format, .journal = export };
	struct trace_event *ev = malloc(sizeof(*ev));
	uint64_t end = 0, skipped = 0;
	int rc, status = 1;

	if (!ev)
		return 1;
	if (trace_open(&sim.trace, trace)) {
		fprintf(stderr, "reflexd: simulate: %s\n", sim.trace.err);
		goto out;
	}
	sim.protect = (struct protect){
		.comm = cfg->protect_comm, .exe = cfg->protect_exe, .cgroup = cfg->protect_cgroup,
		.namespace = cfg->protect_namespace, .labels = cfg->protect_labels,
	};
	sim.decide = (struct decide_config){
		.dry_run = cfg->dry_run, .global_max = (uint64_t)cfg->budget_max,
		.global_window_ns = cfg->budget_window_ns, .protect = &sim.protect,
		.host = "simulate", .wall_ns = sim_wall_ns,
		/* exported decisions need ids unique beyond this run */
		.new_id = export ? NULL : sim_new_id,
		.sink = sim_decision, .verified = sim_verified, .ctx = &sim,
	};
	sim.engine = decide_new(rules, &sim.decide);
	if (!sim.engine)
		goto out;
	if (export)
		journal_set_clock(export, sim_now_ns, &sim);
	if (format == SIM_TABLE)
		print_row(out, "TIME", "RULE", "KIND", "PID", "COMM", "ACTION", "OUTCOME", "DETAIL");
	while ((rc = trace_next(&sim.trace, ev)) != 0) {
		uint64_t now;

		if (rc < 0) {
			fprintf(stderr, "%s%s\n", sim.trace.err, cfg->skip_bad ? " (skipped)" : "");
			if (!cfg->skip_bad || rc != -EINVAL)
				goto out;
			skipped++;
			continue;
		}
		now = SIM_EPOCH + ev->t_ns;
		run_until(&sim, now);
		if (ev->kind == TRACE_END) {
			end = now;
			break;
		}
		if (ev->kind == TRACE_CLEAR) {
			if (cfg->explain)
				explain_undecided(&sim, ev->cond.id, now);
			decide_clear(sim.engine, ev->cond.id, now);
			continue;
		}
		ev->cond.since_ns = (uint64_t)((int64_t)SIM_EPOCH + ev->since_ns);
		decide_raise(sim.engine, &ev->cond, now);
	}
	run_until(&sim, end);
	if (skipped)
		fprintf(stderr, "reflexd: simulate: %llu bad trace lines skipped\n",
			(unsigned long long)skipped);
	status = 0;
out:
	if (export)
		journal_set_clock(export, NULL, NULL);
	trace_close(&sim.trace);
	decide_free(sim.engine);
	free(sim.awaiting);
	free(ev);
	return status;
}

static struct ruleset *load_rules(const struct config *cfg, char *const *paths, size_t n)
{
	struct strlist errs = { 0 };
	struct ruleset *rules = rules_load(paths, n, cfg->rule_timeout_ns, &errs);

	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	strlist_free(&errs);
	return rules;
}

/* The compact decision lines of a simulation into lines: 0, or -1 after a
 * bad trace. */
static int compact_lines(struct config *cfg, const char *trace, struct ruleset *rules,
			 struct strlist *lines)
{
	char *text = NULL, *save = NULL;
	size_t size = 0;
	FILE *out = open_memstream(&text, &size);
	int status;

	if (!out)
		return -1;
	status = simulate(cfg, trace, rules, out, SIM_COMPACT, NULL);
	fclose(out);
	for (char *line = strtok_r(text, "\n", &save); !status && line;
	     line = strtok_r(NULL, "\n", &save))
		(void)strlist_add(lines, line);
	free(text);
	return status ? -1 : 0;
}

/* A compact line's condition: its time and pid ("+2.500s RULE PID ..."). */
static void line_key(const char *line, char *key, size_t size)
{
	char when[32], rule[128], pid[16];

	if (sscanf(line, "%31s %127s %15s", when, rule, pid) == 3)
		snprintf(key, size, "%s %s", when, pid);
	else
		snprintf(key, size, "%s", line);
}

/* --diff: the same trace through two rule sets; what appears, disappears
 * or changes. 0 when both decide alike, 1 when they differ, 2 on error. */
static int simulate_diff(struct config *cfg)
{
	struct ruleset *old = load_rules(cfg, &cfg->rules.v[0], 1), *new = NULL;
	struct strlist old_lines = { 0 }, new_lines = { 0 };
	size_t same = 0, changed = 0, gone = 0, added = 0, na, nb;
	char **a, **b;
	int status = 2;

	if (!old || !(new = load_rules(cfg, &cfg->rules.v[1], 1)))
		goto out;
	if (compact_lines(cfg, cfg->trace, old, &old_lines) ||
	    compact_lines(cfg, cfg->trace, new, &new_lines))
		goto out;
	a = old_lines.v;
	na = old_lines.n;
	b = new_lines.v;
	nb = new_lines.n;
	printf("--- %s\n+++ %s\n", cfg->rules.v[0], cfg->rules.v[1]);
	for (size_t i = 0; i < na; i++) {
		char key[128], other[128];
		size_t j;

		line_key(a[i], key, sizeof(key));
		for (j = 0; j < nb; j++) {
			line_key(b[j], other, sizeof(other));
			if (b[j][0] && !strcmp(key, other))
				break;
		}
		if (j == nb) {
			printf("- %s\n", a[i]);
			gone++;
		} else if (strcmp(a[i], b[j])) {
			printf("~ %s\n  now %s\n", a[i], b[j]);
			changed++;
			b[j][0] = '\0';
		} else {
			same++;
			b[j][0] = '\0';
		}
	}
	for (size_t j = 0; j < nb; j++) {
		if (b[j][0]) {
			printf("+ %s\n", b[j]);
			added++;
		}
	}
	printf("%zu the same, %zu changed, %zu only in %s, %zu only in %s\n", same, changed, gone,
	       cfg->rules.v[0], added, cfg->rules.v[1]);
	status = changed || gone || added ? 1 : 0;
out:
	strlist_free(&old_lines);
	strlist_free(&new_lines);
	rules_free(old);
	rules_free(new);
	return status;
}

static void on_drained(void *ctx)
{
	ev_break(ctx, EVBREAK_ALL);
}

static void on_interrupt(struct ev_loop *loop, ev_signal *w, int revents)
{
	ev_break(loop, EVBREAK_ALL);
}

/* --otlp: the simulation's decisions, through the daemon's exporter, from
 * a journal in memory; returns once all are acknowledged (or given up on,
 * or at SIGINT/SIGTERM). The exit status: 0 when every record arrived. */
static int simulate_export(struct config *cfg, struct ruleset *rules)
{
	struct otlp_settings set;
	struct ev_loop *loop = EV_DEFAULT;
	struct otlp_stats st = { 0 };
	struct journal *j = NULL;
	struct otlp *o = NULL;
	ev_signal sigint, sigterm;
	char err[512], host[64], url[1024];
	int rc, status = 1;

	if (gethostname(host, sizeof(host)))
		snprintf(host, sizeof(host), "unknown");
	rc = otlp_settings(&cfg->export, host, &set, err, sizeof(err));
	if (rc <= 0) {
		fprintf(stderr, "reflexd: simulate --otlp: %s\n", rc ? err :
			"no endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint)");
		return 2;
	}
	str_copy(url, sizeof(url), set.url);
	j = journal_open(cfg->journal_out ? cfg->journal_out : ":memory:", false, err, sizeof(err));
	if (!j) {
		fprintf(stderr, "reflexd: simulate --otlp: %s\n", err);
		goto out;
	}
	o = otlp_new(loop, j, &set);
	if (!o) {
		fprintf(stderr, "reflexd: simulate --otlp: cannot start the exporter: %s\n", strerror(errno));
		goto out;
	}
	status = simulate(cfg, cfg->trace, rules, stdout, cfg->json ? SIM_JSON : SIM_TABLE, j);
	fflush(stdout);
	ev_signal_init(&sigint, on_interrupt, SIGINT);
	ev_signal_init(&sigterm, on_interrupt, SIGTERM);
	ev_signal_start(loop, &sigint);
	ev_signal_start(loop, &sigterm);
	otlp_flush(o, on_drained, loop);
	ev_run(loop, 0);
	ev_signal_stop(loop, &sigint);
	ev_signal_stop(loop, &sigterm);
	otlp_stats(o, &st);
	fprintf(stderr, "reflexd: simulate: %llu records exported to %s, %llu rejected, %llu refused, "
		"%llu not sent, %llu withheld\n", (unsigned long long)st.sent, url,
		(unsigned long long)st.rejected, (unsigned long long)st.failed,
		(unsigned long long)(st.backlog + st.dropped),
		(unsigned long long)(st.withheld_rate + st.withheld_severity));
	if (st.rejected || st.failed || st.backlog || st.dropped)
		status = 1;
out:
	otlp_free(o);
	otlp_settings_free(&set);
	journal_free(j);
	return status;
}

/* --journal-out: the simulation's decisions also into a journal file, for
 * `audit`, `audit show` and `audit report` to read. */
static int simulate_journal(struct config *cfg, struct ruleset *rules)
{
	struct journal *j;
	char err[512];
	int status;

	j = journal_open(cfg->journal_out, false, err, sizeof(err));
	if (!j || journal_unsynced(j)) {
		fprintf(stderr, "reflexd: simulate --journal-out: %s\n", j ? journal_errmsg(j) : err);
		journal_free(j);
		return 1;
	}
	status = simulate(cfg, cfg->trace, rules, stdout, cfg->json ? SIM_JSON : SIM_TABLE, j);
	journal_free(j);
	return status;
}

int simulate_main(struct config *cfg)
{
	static char out_buffer[SIM_OUT_BUFFER];
	struct ruleset *rules;
	int status;

	/* a long trace prints a line per decision: into a file or a pipe,
	 * write them in large blocks (a person at a terminal sees lines) */
	if (!isatty(STDOUT_FILENO))
		(void)setvbuf(stdout, out_buffer, _IOFBF, sizeof(out_buffer));

	if (!cfg->trace || !cfg->rules.n) {
		fprintf(stderr, "reflexd: simulate needs --trace FILE and --rules DIR|FILE\n");
		return 2;
	}
	if (cfg->diff) {
		if (cfg->rules.n != 2) {
			fprintf(stderr, "reflexd: simulate --diff needs two rule sets: --diff OLD NEW\n");
			return 2;
		}
		return simulate_diff(cfg);
	}
	rules = load_rules(cfg, cfg->rules.v, cfg->rules.n);
	if (!rules)
		return 1;
	if (cfg->otlp) {
		status = simulate_export(cfg, rules);
	} else if (cfg->journal_out) {
		status = simulate_journal(cfg, rules);
	} else {
		status = simulate(cfg, cfg->trace, rules, stdout, cfg->json ? SIM_JSON : SIM_TABLE, NULL);
	}
	rules_free(rules);
	return status;
}

/* Lines of a rule test's expectation, blank lines and # comments aside:
 * 0, or -1 when it cannot be read. */
static int read_expect(const char *path, struct strlist *lines)
{
	FILE *f = fopen(path, "re");
	char line[1024];

	if (!f)
		return -1;
	while (fgets(line, sizeof(line), f)) {
		line[strcspn(line, "\r\n")] = '\0';
		if (line[0] && line[0] != '#')
			(void)strlist_add(lines, line);
	}
	fclose(f);
	return 0;
}

static int trace_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return n > 11 && !strcmp(e->d_name + n - 11, ".test.trace");
}

/* One directory: its rules against each NAME.test.trace, compared with
 * NAME.test.expect. Counts into passed and failed. */
static void test_dir(struct config *cfg, const char *dir, int *passed, int *failed)
{
	struct ruleset *rules = load_rules(cfg, (char *const *)&dir, 1);
	struct dirent **traces;
	int n;

	if (!rules) {
		(*failed)++;
		return;
	}
	n = scandir(dir, &traces, trace_file, alphasort);
	if (n <= 0)
		fprintf(stderr, "reflexd: test: %s has no *.test.trace\n", dir);
	for (int i = 0; i < n; i++) {
		struct strlist got = { 0 }, want = { 0 };
		char trace[4096], expect[4096];
		bool readable, same;
		size_t k;

		snprintf(trace, sizeof(trace), "%s%s%s", dir, dir[strlen(dir) - 1] == '/' ? "" : "/",
			 traces[i]->d_name);
		snprintf(expect, sizeof(expect), "%.*s.expect", (int)(strlen(trace) - 6), trace);
		readable = read_expect(expect, &want) == 0;
		same = readable && compact_lines(cfg, trace, rules, &got) == 0 && got.n == want.n;
		for (k = 0; same && k < got.n; k++)
			same = !strcmp(got.v[k], want.v[k]);
		if (same) {
			printf("ok   %s\n", trace);
			(*passed)++;
		} else {
			printf("FAIL %s\n", trace);
			if (!readable)
				printf("     cannot read %s\n", expect);
			for (k = 0; readable && (k < want.n || k < got.n); k++) {
				if (k < want.n && k < got.n && !strcmp(want.v[k], got.v[k]))
					continue;
				if (k < want.n)
					printf("     - %s\n", want.v[k]);
				if (k < got.n)
					printf("     + %s\n", got.v[k]);
			}
			(*failed)++;
		}
		strlist_free(&got);
		strlist_free(&want);
		free(traces[i]);
	}
	if (n > 0)
		free(traces);
	rules_free(rules);
}

int test_main(struct config *cfg)
{
	int passed = 0, failed = 0;

	if (!cfg->rules.n) {
		fprintf(stderr, "reflexd: test: which rule directories? (reflexd test DIR...)\n");
		return 2;
	}
	for (size_t i = 0; i < cfg->rules.n; i++)
		test_dir(cfg, cfg->rules.v[i], &passed, &failed);
	printf("rule tests: %d passed, %d failed\n", passed, failed);
	return failed || !passed ? 1 : 0;
}
