/* The rule engine: holds the active conditions, matches them against the
 * rules and turns each into at most one decision, with the guards a rule
 * author must not have to write: hold, protected targets, cooldown, the
 * rule's budget, the global budget, the kill switch, dry-run, and the
 * verification that an action helped. Time is passed in (CLOCK_MONOTONIC
 * ns), so the same code can run in virtual time. */
#ifndef REFLEX_DECIDE_ENGINE_H
#define REFLEX_DECIDE_ENGINE_H

#include "model/decision.h"
#include "decide/protect.h"
#include "decide/rules.h"

struct decide_config {
	bool dry_run;                  /* every rule, whatever it says */
	const char *kill_switch;       /* while this file exists, nothing acts */
	uint64_t global_max;           /* actions across all rules ... */
	uint64_t global_window_ns;     /* ... per this window */
	const struct protect *protect;
	const char *host;
	/* live: NULL for both; the simulator passes virtual ones */
	int64_t (*wall_ns)(uint64_t mono, void *ctx);  /* CLOCK_REALTIME of a now */
	void (*new_id)(char id[37], void *ctx);        /* a decision id */
	/* where decisions go: recorded, and `action` carried out when pending
	 * (NULL for a rule disabled by an error in its function). d is the
	 * engine's, valid until the sink returns; the sink may change it (the
	 * simulator marks it simulated) rather than copy it. */
	void (*sink)(void *ctx, struct decision *d, const struct rule_action *action);
	/* an action's verification ended: cleared or not, in words */
	void (*verified)(void *ctx, const char *decision_id, bool cleared, const char *result);
	void *ctx;
};

struct decide_engine;

/* cfg stays the caller's and is read at each decision, so a reload that
 * changes it (dry-run, protected targets) takes effect at once. */
struct decide_engine *decide_new(struct ruleset *rules, const struct decide_config *cfg);
void decide_free(struct decide_engine *e);
/* Swaps in a new rule set (the caller frees the old one afterwards), and
 * takes in a changed global budget window. Guard state (cooldowns,
 * budgets) carries over by rule name; rules disabled for errors are
 * enabled again. */
void decide_set_rules(struct decide_engine *e, struct ruleset *rules);
/* Feeds a decision from the journal back into the guards, so cooldowns and
 * budgets survive a restart. */
void decide_restore(struct decide_engine *e, const struct decision *d, uint64_t now);
/* How far back decide_restore needs decisions, in ns. */
uint64_t decide_memory_ns(const struct decide_engine *e);

/* A condition began, or has fresh evidence (same id). */
void decide_raise(struct decide_engine *e, const struct condition *c, uint64_t now);
void decide_clear(struct decide_engine *e, uint64_t cond_id, uint64_t now);
/* Makes the decisions and ends the verifications due at now. */
void decide_tick(struct decide_engine *e, uint64_t now);
/* Why no rule decided condition cond_id yet, as JSON (one entry per rule)
 * into out: true, or false when it is unknown or already decided. */
bool decide_explain(struct decide_engine *e, uint64_t cond_id, uint64_t now, struct sbuf *out);
/* For actions taken outside the engine (an in-kernel rule: the kernel
 * signalled by itself, docs/reflex.md). Whether the guards (protected
 * targets, breaker, cooldown, the rule's and the global budget) would refuse
 * r on t now, the reason in why. */
bool decide_refuses(struct decide_engine *e, const struct rule *r, const struct target *t,
		    bool dry_run, uint64_t now, char *why, size_t size);
/* Records what was done outside the engine about c by r: a decision like the
 * engine's own (id, time, rule, hash, action), with this outcome (acted,
 * dry-run, failed) and detail, counted by cooldowns and budgets, and sent to
 * the sink as a finished record. */
void decide_record_external(struct decide_engine *e, const struct condition *c,
			    const struct rule *r, enum decision_outcome outcome,
			    const char *detail, uint64_t now);
/* The engine's clock: the latest time it was given. */
uint64_t decide_now(const struct decide_engine *e);
/* When decide_tick next has something to do, or 0 when nothing waits. */
uint64_t decide_next_deadline(const struct decide_engine *e);

#endif
