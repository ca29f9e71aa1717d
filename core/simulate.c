/* The simulator: the daemon's engine, driven by a trace's clock instead of
 * the kernel's. Every guard runs as it does live (hold, protected targets,
 * cooldowns, budgets, verification); only the actions are not taken. The
 * trace's clear events stand for what the kernel would have seen, so
 * verification works. Same inputs, byte-identical output. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/audit.h"
#include "core/simulate.h"
#include "decide/engine.h"
#include "sense/trace.h"

/* virtual CLOCK_MONOTONIC of the trace's t = 0: leaves room for conditions
 * that began before the trace did (negative since) */
#define SIM_EPOCH (1000000 * NSEC_PER_SEC)
#define SIM_MAX_TICKS 10000000

/* A simulated action still waiting for its verification. */
struct awaiting {
	char id[37];
	char rule[128];
	pid_t pid;
	char comm[16];
	char action[32];
};

struct simulation {
	struct config *cfg;
	struct trace_reader trace;
	struct protect protect;
	struct decide_config decide;
	struct decide_engine *engine;
	uint64_t ids;
	struct awaiting *awaiting;
	size_t nawaiting, cap_awaiting;
};

static int64_t sim_wall_ns(uint64_t mono, void *ctx)
{
	struct simulation *sim = ctx;

	return sim->trace.start_ns + (int64_t)(mono - SIM_EPOCH);
}

static void sim_new_id(char id[37], void *ctx)
{
	struct simulation *sim = ctx;

	snprintf(id, 37, "00000000-0000-0000-0000-%012llu", (unsigned long long)++sim->ids);
}

static void print_row(const char *when, const char *rule, const char *kind, const char *pid,
		      const char *comm, const char *action, const char *outcome, const char *detail)
{
	printf("%-11s %-20s %-9s %7s %-15s %-7s %-10s %s\n", when, rule, kind, pid, comm, action,
	       outcome, detail);
}

static void trace_time(const struct simulation *sim, int64_t wall_ns, char *buf, size_t size)
{
	int64_t t = wall_ns - sim->trace.start_ns;

	snprintf(buf, size, "+%lld.%03llds", (long long)(t / (int64_t)NSEC_PER_SEC),
		 (long long)(t % (int64_t)NSEC_PER_SEC / (int64_t)NSEC_PER_MSEC));
}

/* Live decisions become "acted" as far as the simulation can tell: the
 * verification (from the trace) says whether acting would have helped. */
static void sim_decision(void *ctx, const struct decision *in, const struct rule_action *action)
{
	struct simulation *sim = ctx;
	struct decision *d = malloc(sizeof(*d));
	char when[32];

	if (!d)
		return;
	*d = *in;
	if (d->outcome == REFLEX_OUTCOME_PENDING && action) {
		d->outcome = REFLEX_OUTCOME_ACTED;
		snprintf(d->detail, sizeof(d->detail), "%.100ssimulated: %s %s", in->detail,
			 action->ops->name, action->json);
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
	if (sim->cfg->json) {
		audit_print_json(d);
	} else {
		char pid[16];

		trace_time(sim, d->time_ns, when, sizeof(when));
		snprintf(pid, sizeof(pid), "%d", d->condition.target.pid);
		print_row(when, d->rule, condition_kind_name(d->condition.kind), pid,
			  d->condition.target.comm, d->action, decision_outcome_name(d->outcome), d->detail);
		if (sim->cfg->explain)
			printf("            why: %s\n", d->explain);
	}
	free(d);
}

static void sim_verified(void *ctx, const char *id, bool cleared, const char *result)
{
	struct simulation *sim = ctx;
	char when[32], stamp[40];
	int64_t wall = sim_wall_ns(decide_now(sim->engine), sim);

	for (size_t i = 0; i < sim->nawaiting; i++) {
		struct awaiting *a = &sim->awaiting[i];

		if (strcmp(a->id, id))
			continue;
		if (sim->cfg->json) {
			time_format(wall, stamp, sizeof(stamp));
			printf("{\"verify_of\":\"%s\",\"time\":\"%s\",\"time_unix_nano\":%lld,\"rule\":\"%s\","
			       "\"pid\":%d,\"cleared\":%s,\"verify\":\"%s\"}\n", id, stamp, (long long)wall,
			       a->rule, a->pid, cleared ? "true" : "false", result);
		} else {
			char pid[16];

			trace_time(sim, wall, when, sizeof(when));
			snprintf(pid, sizeof(pid), "%d", a->pid);
			print_row(when, a->rule, "", pid, a->comm, a->action, "verify", result);
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
	if (sim->cfg->json) {
		printf("{\"no_decision\":%llu,\"time_unix_nano\":%lld,\"explain\":%s}\n",
		       (unsigned long long)cond_id, (long long)sim_wall_ns(now, sim), why);
		return;
	}
	trace_time(sim, sim_wall_ns(now, sim), when, sizeof(when));
	printf("%-11s condition %llu cleared; no rule decided\n            why: %s\n", when,
	       (unsigned long long)cond_id, why);
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

int simulate_main(struct config *cfg)
{
	struct simulation sim = { .cfg = cfg };
	struct strlist errs = { 0 };
	struct ruleset *rules = NULL;
	struct trace_event *ev = malloc(sizeof(*ev));
	uint64_t end = 0, skipped = 0;
	int rc, status = 1;

	if (!ev)
		return 1;
	if (!cfg->trace || !cfg->rules.n) {
		fprintf(stderr, "reflexd: simulate needs --trace FILE and --rules DIR|FILE\n");
		free(ev);
		return 2;
	}
	rules = rules_load(cfg->rules.v, cfg->rules.n, &errs);
	if (!rules) {
		for (size_t i = 0; i < errs.n; i++)
			fprintf(stderr, "%s\n", errs.v[i]);
		strlist_free(&errs);
		goto out;
	}
	if (trace_open(&sim.trace, cfg->trace)) {
		fprintf(stderr, "reflexd: simulate: %s\n", sim.trace.err);
		goto out;
	}
	sim.protect = (struct protect){
		.comm = cfg->protect_comm, .exe = cfg->protect_exe, .cgroup = cfg->protect_cgroup,
	};
	sim.decide = (struct decide_config){
		.dry_run = cfg->dry_run, .global_max = (uint64_t)cfg->budget_max,
		.global_window_ns = cfg->budget_window_ns, .protect = &sim.protect,
		.host = "simulate", .wall_ns = sim_wall_ns, .new_id = sim_new_id,
		.sink = sim_decision, .verified = sim_verified, .ctx = &sim,
	};
	sim.engine = decide_new(rules, &sim.decide);
	if (!sim.engine)
		goto out;
	if (!cfg->json)
		print_row("TIME", "RULE", "KIND", "PID", "COMM", "ACTION", "OUTCOME", "DETAIL");
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
	trace_close(&sim.trace);
	decide_free(sim.engine);
	rules_free(rules);
	free(sim.awaiting);
	free(ev);
	return status;
}
