/* The rule engine: holds the active conditions, matches them against the
 * rules and turns each into at most one decision, with the guards a rule
 * author must not have to write (hold, cooldown, protected targets,
 * dry-run). Time is passed in, so the same code can run in virtual time. */
#ifndef REFLEX_DECIDE_ENGINE_H
#define REFLEX_DECIDE_ENGINE_H

#include "decide/decision.h"
#include "decide/protect.h"
#include "decide/rules.h"

struct decide_config {
	bool dry_run;                  /* every rule, whatever it says */
	const struct protect *protect;
	const char *host;
	/* where decisions go: recorded, and carried out when pending */
	void (*sink)(void *ctx, const struct decision *d, const struct rule *r);
	void *ctx;
};

struct decide_engine;

/* cfg stays the caller's and is read at each decision, so a reload that
 * changes it (dry-run, protected targets) takes effect at once. */
struct decide_engine *decide_new(const struct ruleset *rules, const struct decide_config *cfg);
void decide_free(struct decide_engine *e);
/* Swaps in a new rule set (the caller frees the old one afterwards).
 * Cooldowns carry over by rule name; decided conditions stay decided. */
void decide_set_rules(struct decide_engine *e, const struct ruleset *rules);

/* A condition began (or its evidence changed: same id). now is CLOCK_MONOTONIC ns. */
void decide_raise(struct decide_engine *e, const struct condition *c, uint64_t now);
void decide_clear(struct decide_engine *e, uint64_t cond_id, uint64_t now);
/* Makes the decisions that are due at now. */
void decide_tick(struct decide_engine *e, uint64_t now);
/* When decide_tick next has something to do, or 0 when nothing waits. */
uint64_t decide_next_deadline(const struct decide_engine *e);

#endif
