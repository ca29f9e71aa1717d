#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>

#include "lib/util.h"
#include "decide/engine.h"

/* An action to undo once its condition is gone for good (a traffic shift
 * is restored), with what the record of the undo needs from the decision. */
struct undo {
	struct rule_action action;   /* params point at params below */
	unsigned char params[REFLEX_ACT_PARAMS_MAX];
	enum decision_mode mode;
	char of[37];                 /* the decision undone */
	char rule[128], file[256], hash[65];
};

struct active {
	bool decided;      /* one decision per condition: the first rule to fire */
	uint64_t settle_ns;   /* of the rule that decided */
	uint64_t due;         /* undecided: when the next rule's hold ends (0: none) */
	uint64_t cleared_at;  /* cleared, and settling; 0 while it holds */
	struct undo *undo;    /* what was done, when it must be undone; or NULL */
	/* bit j: rule j's kind and where fit this condition (ruleset_fitting) */
	uint64_t fits[REFLEX_RULES_MAX / 64];
	struct condition cond;  /* last: its evidence is mostly unused */
};

/* An action taken (or, in dry-run, one that would have been). Cooldowns
 * and budgets are both questions about this history. Dry-run keeps its own
 * history, so a rule tried out in dry-run never uses up what live rules
 * may do, and a dry-run host still shows where live would have stopped. */
struct acted {
	enum decision_mode mode;
	char rule[128];
	pid_t pid;
	uint64_t start_time;
	uint64_t at;
	int rung;          /* which rung of the rule's ladder */
};

/* An action that did not help (its verification failed): what opens a
 * rule's circuit breaker. Counted per version of the rule (its file hash),
 * so editing a rule closes its breaker. */
struct unhelpful {
	enum decision_mode mode;
	char rule[128];
	char hash[65];
	uint64_t at;
};

/* A live action waiting to see its condition clear. */
struct verification {
	char decision_id[37];
	char rule[128];
	size_t rung;       /* which action of the rule's ladder */
	uint64_t cond_id;
	uint64_t started;
	uint64_t deadline;
};

struct decide_engine {
	const struct decide_config *cfg;
	uint64_t now;      /* the latest time seen: callers' clocks may step back */
	struct ruleset *rules;
	/* bit j: rule j's function failed; it stays off until a reload */
	uint64_t disabled[REFLEX_RULES_MAX / 64];
	struct rule_action computed; /* what an act function returned */
	const struct rule **asking;  /* rules whose when function is to be asked */
	size_t cap_asking;
	struct decision decision;    /* the one being made: the sink copies what it keeps */
	uint64_t history_horizon;    /* how long the action history matters */
	uint64_t breaker_horizon;    /* how long unhelpful actions matter */
	char global_window[32];      /* the global budget's window, in words */
	/* the rules' holds, each once, shortest first: when the next hold
	 * ends, without walking every rule (see first_to_fire) */
	uint64_t holds[REFLEX_RULES_MAX];
	size_t nholds;
	unsigned char computed_params[REFLEX_ACT_PARAMS_MAX];
	struct active *active;
	size_t nactive, cap_active;
	struct acted *history;
	size_t nhistory, cap_history;
	struct unhelpful *unhelpful;
	size_t nunhelpful, cap_unhelpful;
	struct verification *verifying;
	size_t nverifying, cap_verifying;
};

static void derive_from_rules(struct decide_engine *e);

/* Appends one element, uninitialized, to a growable array: NULL when out
 * of memory. */
static void *grow(void **array, size_t *n, size_t *cap, size_t size)
{
	if (*n == *cap) {
		size_t c = *cap ? 2 * *cap : 16;
		void *p = realloc(*array, c * size);

		if (!p)
			return NULL;
		*array = p;
		*cap = c;
	}
	return (char *)*array + (*n)++ * size;
}

struct decide_engine *decide_new(struct ruleset *rules, const struct decide_config *cfg)
{
	struct decide_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->cfg = cfg;
	e->rules = rules;
	derive_from_rules(e);
	return e;
}

void decide_free(struct decide_engine *e)
{
	if (!e)
		return;
	for (size_t i = 0; i < e->nactive; i++)
		free(e->active[i].undo);
	free(e->active);
	free(e->history);
	free(e->unhelpful);
	free(e->verifying);
	free(e->asking);
	free(e);
}

static bool fits(const struct active *a, size_t j)
{
	return a->fits[j / 64] & (1ull << (j % 64));
}

void decide_set_rules(struct decide_engine *e, struct ruleset *rules)
{
	e->rules = rules;
	for (size_t i = 0; i < e->nactive; i++)
		ruleset_fitting(rules, e->active[i].cond.kind, &e->active[i].cond.target,
				e->active[i].fits);
	memset(e->disabled, 0, sizeof(e->disabled));
	derive_from_rules(e);
}

/* How long the action history matters: the longest cooldown or budget
 * window. (The breaker's window is the unhelpful list's.) */
static uint64_t compute_history_horizon(const struct decide_engine *e)
{
	uint64_t horizon = e->cfg->global_window_ns;

	for (size_t i = 0; e->rules && i < e->rules->n; i++) {
		const struct rule *r = &e->rules->rules[i];

		if (r->cooldown_ns > horizon)
			horizon = r->cooldown_ns;
		if (r->budget_per_ns > horizon)
			horizon = r->budget_per_ns;
		if (r->rungs > 1 && r->verify_ns > horizon)
			horizon = r->verify_ns;
	}
	return horizon;
}

static uint64_t compute_breaker_horizon(const struct decide_engine *e)
{
	uint64_t horizon = 0;

	for (size_t i = 0; e->rules && i < e->rules->n; i++)
		if (e->rules->rules[i].breaker_per_ns > horizon)
			horizon = e->rules->rules[i].breaker_per_ns;
	return horizon;
}

uint64_t decide_memory_ns(const struct decide_engine *e)
{
	return e->history_horizon > e->breaker_horizon ? e->history_horizon : e->breaker_horizon;
}

static void collect_holds(struct decide_engine *e)
{
	e->nholds = 0;
	for (size_t i = 0; e->rules && i < e->rules->n; i++) {
		uint64_t hold = e->rules->rules[i].hold_ns;
		size_t at = 0;

		while (at < e->nholds && e->holds[at] < hold)
			at++;
		if (at < e->nholds && e->holds[at] == hold)
			continue;
		memmove(&e->holds[at + 1], &e->holds[at], (e->nholds - at) * sizeof(e->holds[0]));
		e->holds[at] = hold;
		e->nholds++;
	}
}

/* The horizons, the holds and the global window's words depend on the
 * rules and the global budget only: computed when those change, not on
 * every tick (or every refusal). */
static void derive_from_rules(struct decide_engine *e)
{
	e->history_horizon = compute_history_horizon(e);
	e->breaker_horizon = compute_breaker_horizon(e);
	collect_holds(e);
	duration_format(e->cfg->global_window_ns, e->global_window, sizeof(e->global_window));
}

static void remember(struct decide_engine *e, enum decision_mode mode, const char *rule,
		     const struct target *t, uint64_t at, int rung)
{
	struct acted *a = grow((void **)&e->history, &e->nhistory, &e->cap_history, sizeof(*a));

	if (!a)
		return;
	a->mode = mode;
	str_copy(a->rule, sizeof(a->rule), rule);
	a->pid = t->pid;
	a->start_time = t->start_time;
	a->at = at;
	a->rung = rung;
}

/* Time only moves forward here, whatever order callers read clocks in. */
static uint64_t advance(struct decide_engine *e, uint64_t now)
{
	if (now > e->now)
		e->now = now;
	return e->now;
}

static int64_t wall_ns(const struct decide_engine *e, uint64_t now)
{
	return e->cfg->wall_ns ? e->cfg->wall_ns(now, e->cfg->ctx) : mono_to_real_ns(now);
}

static void remember_unhelpful(struct decide_engine *e, enum decision_mode mode,
			       const char *rule, const char *hash, uint64_t at)
{
	struct unhelpful *u = grow((void **)&e->unhelpful, &e->nunhelpful, &e->cap_unhelpful,
				   sizeof(*u));

	if (!u)
		return;
	u->mode = mode;
	str_copy(u->rule, sizeof(u->rule), rule);
	str_copy(u->hash, sizeof(u->hash), hash);
	u->at = at;
}

/* Undoing (traffic.restore) returns the host to normal: it is no action
 * that cooldowns and budgets count. */
static bool is_undo(const char *action)
{
	for (int i = 0; act_all[i]; i++)
		if (act_all[i]->undo && !strcmp(act_all[i]->undo->name, action))
			return true;
	return false;
}

void decide_restore(struct decide_engine *e, const struct decision *d, uint64_t now)
{
	int64_t age;

	now = advance(e, now);
	age = wall_ns(e, now) - d->time_ns;

	/* what was tried counts, whatever came of it; a refusal does not */
	if (d->outcome == REFLEX_OUTCOME_SUPPRESSED || age < 0 || (uint64_t)age > now ||
	    is_undo(d->action))
		return;
	remember(e, d->mode, d->rule, &d->condition.target, now - (uint64_t)age, d->rung);
	if (strncmp(d->verify, "not cleared", 11) == 0)
		remember_unhelpful(e, d->mode, d->rule, d->rule_hash, now - (uint64_t)age);
}

static void forget_old(struct decide_engine *e, uint64_t now)
{
	uint64_t horizon = e->history_horizon;

	for (size_t i = 0; i < e->nhistory;) {
		if (now - e->history[i].at > horizon)
			e->history[i] = e->history[--e->nhistory];
		else
			i++;
	}
	horizon = e->breaker_horizon;
	for (size_t i = 0; i < e->nunhelpful;) {
		if (now - e->unhelpful[i].at > horizon)
			e->unhelpful[i] = e->unhelpful[--e->nunhelpful];
		else
			i++;
	}
}

/* How many actions in mode since `since`, by rule (NULL: all rules) and
 * on target (NULL: any); *latest gets the newest one's time. */
static unsigned count_acted(const struct decide_engine *e, enum decision_mode mode,
			    const char *rule, const struct target *t, uint64_t since,
			    uint64_t *latest)
{
	unsigned n = 0;

	*latest = 0;
	for (size_t i = 0; i < e->nhistory; i++) {
		const struct acted *a = &e->history[i];

		/* the numbers first: the name costs a strcmp */
		if (a->mode != mode || a->at < since ||
		    (t && (a->pid != t->pid || a->start_time != t->start_time)) ||
		    (rule && strcmp(a->rule, rule)))
			continue;
		n++;
		if (a->at > *latest)
			*latest = a->at;
	}
	return n;
}

static unsigned count_unhelpful(const struct decide_engine *e, enum decision_mode mode,
				const struct rule *r, uint64_t since)
{
	unsigned n = 0;

	for (size_t i = 0; i < e->nunhelpful; i++) {
		const struct unhelpful *u = &e->unhelpful[i];

		n += u->mode == mode && u->at >= since && !strcmp(u->rule, r->name) &&
		     !strcmp(u->hash, r->hash);
	}
	return n;
}

static uint64_t since_window(uint64_t now, uint64_t window)
{
	return now > window ? now - window : 0;
}

static struct active *find_active(struct decide_engine *e, uint64_t id)
{
	for (size_t i = 0; i < e->nactive; i++)
		if (e->active[i].cond.id == id)
			return &e->active[i];
	return NULL;
}

/* A settling condition on the same process as c: c is that occurrence
 * coming back, not a new one. */
static struct active *find_settling(struct decide_engine *e, const struct condition *c)
{
	for (size_t i = 0; i < e->nactive; i++) {
		struct active *a = &e->active[i];
		const struct target *t = &a->cond.target;

		if (a->cleared_at && a->cond.kind == c->kind && t->pid == c->target.pid &&
		    t->start_time == c->target.start_time)
			return a;
	}
	return NULL;
}

void decide_raise(struct decide_engine *e, const struct condition *c, uint64_t now)
{
	struct active *a = find_active(e, c->id);

	now = advance(e, now);
	if (!a && (a = find_settling(e, c))) {
		/* the same occurrence: keep its decision and its verifications */
		for (size_t i = 0; i < e->nverifying; i++)
			if (e->verifying[i].cond_id == a->cond.id)
				e->verifying[i].cond_id = c->id;
		a->cleared_at = 0;
	}
	if (!a) {
		a = grow((void **)&e->active, &e->nactive, &e->cap_active, sizeof(*a));
		if (!a)
			return;
		a->decided = false;
		a->settle_ns = a->due = a->cleared_at = 0;
		a->undo = NULL;
	}
	condition_copy(&a->cond, c);
	condition_measure_fill(&a->cond);
	ruleset_fitting(e->rules, c->kind, &c->target, a->fits);
	decide_tick(e, now);
}

static void decide(struct decide_engine *e, struct active *a, const struct rule *r, size_t rung,
		   uint64_t now);

/* A verification ended. One that failed counts against the rule's breaker
 * and, while the condition holds, sends the ladder's next rung. */
static void end_verification(struct decide_engine *e, size_t i, bool cleared, uint64_t now)
{
	struct verification v = e->verifying[i];
	char took[32], result[96];
	const struct rule *r = ruleset_find(e->rules, v.rule);
	struct active *a;

	e->verifying[i] = e->verifying[--e->nverifying];
	duration_format((cleared ? now : v.deadline) - v.started, took, sizeof(took));
	snprintf(result, sizeof(result), cleared ? "cleared after %s" : "not cleared within %s", took);
	if (e->cfg->verified)
		e->cfg->verified(e->cfg->ctx, v.decision_id, cleared, result);
	if (cleared || !r)
		return;
	remember_unhelpful(e, REFLEX_MODE_LIVE, r->name, r->hash, now);
	a = find_active(e, v.cond_id);
	if (a && v.rung + 1 < r->rungs)
		decide(e, a, r, v.rung + 1, now);
}

static void undo(struct decide_engine *e, struct active *a, uint64_t now);

/* The condition is gone for good: its verifications succeeded when it
 * cleared. */
static void move_active(struct active *dst, const struct active *src)
{
	if (dst == src)
		return;
	memcpy(dst, src, offsetof(struct active, cond));
	condition_copy(&dst->cond, &src->cond);
}

static void forget_active(struct decide_engine *e, struct active *a, uint64_t cleared_at)
{
	for (size_t i = 0; i < e->nverifying;) {
		if (e->verifying[i].cond_id == a->cond.id)
			end_verification(e, i, true, cleared_at);
		else
			i++;
	}
	if (a->undo)
		undo(e, a, e->now);
	move_active(a, &e->active[--e->nactive]);
}

void decide_clear(struct decide_engine *e, uint64_t cond_id, uint64_t now)
{
	struct active *a = find_active(e, cond_id);

	now = advance(e, now);
	if (!a || a->cleared_at)
		return;
	/* hysteresis: a decided condition must stay clear for its rule's
	 * settle time before it counts as cleared */
	if (a->decided && a->settle_ns)
		a->cleared_at = now;
	else
		forget_active(e, a, now);
}

static bool kill_switch_on(const struct decide_engine *e)
{
	return e->cfg->kill_switch && access(e->cfg->kill_switch, F_OK) == 0;
}

bool decide_dry_run_now(const struct decide_engine *e)
{
	return e->cfg->dry_run || kill_switch_on(e);
}

/* Why the guards refuse r on t in mode, into why; false when they allow.
 * Written without a format: a refusal is the common outcome under load
 * (the global budget allows 20 actions an hour by default). */
static bool refused(struct decide_engine *e, const struct rule *r, const struct target *t,
		    enum decision_mode mode, uint64_t now, char *why, size_t size)
{
	const struct decide_config *cfg = e->cfg;
	char protect[256], left[32], window[32];
	uint64_t latest;
	unsigned n;
	struct sbuf b;

	sbuf_init(&b, why, size);
	if (protect_reason(cfg->protect, t, protect, sizeof(protect))) {
		sbuf_puts(&b, "protected target: ");
		sbuf_puts(&b, protect);
		return true;
	}
	if ((n = count_unhelpful(e, mode, r, since_window(now, r->breaker_per_ns))) >=
	    r->breaker_failures) {
		duration_format(r->breaker_per_ns, window, sizeof(window));
		sbuf_puts(&b, "circuit open: ");
		sbuf_int(&b, n);
		sbuf_puts(&b, " actions of this rule did not help within ");
		sbuf_puts(&b, window);
		sbuf_puts(&b, " (edit the rule, or wait, to close it)");
		return true;
	}
	if (r->cooldown_ns &&
	    count_acted(e, mode, r->name, t, since_window(now, r->cooldown_ns), &latest)) {
		duration_format(latest + r->cooldown_ns - now, left, sizeof(left));
		sbuf_puts(&b, "cooldown: this rule acted on this process recently (");
		sbuf_puts(&b, left);
		sbuf_puts(&b, " left)");
		return true;
	}
	if (r->budget_max &&
	    (n = count_acted(e, mode, r->name, NULL, since_window(now, r->budget_per_ns), &latest)) >=
		    r->budget_max) {
		duration_format(r->budget_per_ns, window, sizeof(window));
		sbuf_puts(&b, "budget: this rule acted ");
		sbuf_int(&b, n);
		sbuf_puts(&b, " times in the last ");
		sbuf_puts(&b, window);
		sbuf_puts(&b, " (max ");
		sbuf_int(&b, r->budget_max);
		sbuf_puts(&b, ")");
		return true;
	}
	if (cfg->global_max &&
	    (n = count_acted(e, mode, NULL, NULL, since_window(now, cfg->global_window_ns), &latest)) >=
		    cfg->global_max) {
		sbuf_puts(&b, "global budget: ");
		sbuf_int(&b, n);
		sbuf_puts(&b, " actions across all rules in the last ");
		sbuf_puts(&b, e->global_window);
		sbuf_puts(&b, " (max ");
		sbuf_int(&b, (long long)cfg->global_max);
		sbuf_puts(&b, ")");
		return true;
	}
	return false;
}

/* A new decision about c by r, with everything but the outcome filled in:
 * the engine's own, valid until the sink returns. */
static struct decision *begin_decision(struct decide_engine *e, const struct condition *c,
				       const char *rule, const char *file, const char *hash,
				       enum decision_mode mode, uint64_t now)
{
	struct decision *d = &e->decision;

	if (e->cfg->new_id)
		e->cfg->new_id(d->id, e->cfg->ctx);
	else
		uuid_v7(d->id);
	d->time_ns = wall_ns(e, now);
	d->mode = mode;
	str_copy(d->host, sizeof(d->host), e->cfg->host);
	str_copy(d->rule, sizeof(d->rule), rule);
	str_copy(d->rule_file, sizeof(d->rule_file), file);
	str_copy(d->rule_hash, sizeof(d->rule_hash), hash);
	condition_copy(&d->condition, c);
	d->held_ns = now > c->since_ns ? now - c->since_ns : 0;
	d->action[0] = d->params[0] = d->detail[0] = d->verify[0] = d->explain[0] = '\0';
	d->outcome = REFLEX_OUTCOME_PENDING;
	d->rung = 0;
	return d;
}

static struct decision *new_decision(struct decide_engine *e, const struct condition *c,
				     const struct rule *r, uint64_t now)
{
	return begin_decision(e, c, r->name, r->file, r->hash,
			      e->cfg->dry_run || r->dry_run ? REFLEX_MODE_DRY_RUN : REFLEX_MODE_LIVE,
			      now);
}

/* The action d took (or, in dry-run, would have) has an undo: keep what
 * running it takes, for when the condition is gone. */
static void keep_undo(struct active *a, const struct rule *r, const struct rule_action *act,
		      const struct decision *d)
{
	struct undo *u = a->undo ? a->undo : calloc(1, sizeof(*u));
	struct sbuf json;

	if (!u)
		return;
	a->undo = u;
	memcpy(u->params, act->params, act->ops->params_size);
	u->action.ops = act->ops->undo;
	u->action.params = u->params;
	sbuf_init(&json, u->action.json, sizeof(u->action.json));
	u->action.ops->describe(u->action.ops, u->params, &json);
	u->mode = d->mode;
	memcpy(u->of, d->id, sizeof(u->of));
	str_copy(u->rule, sizeof(u->rule), r->name);
	str_copy(u->file, sizeof(u->file), r->file);
	str_copy(u->hash, sizeof(u->hash), r->hash);
}

/* The condition is gone for good (cleared, and clear for the rule's
 * settle): the undo is a decision of its own, in the mode of the one it
 * undoes. Guards do not apply: undoing returns the host to normal. */
static void undo(struct decide_engine *e, struct active *a, uint64_t now)
{
	struct undo *u = a->undo;
	struct decision *d = begin_decision(e, &a->cond, u->rule, u->file, u->hash, u->mode, now);
	char settle[32], why[64] = "cleared";

	a->undo = NULL;
	if (a->settle_ns) {
		duration_format(a->settle_ns, settle, sizeof(settle));
		snprintf(why, sizeof(why), "clear for %s", settle);
	}
	str_copy(d->action, sizeof(d->action), u->action.ops->name);
	str_copy(d->params, sizeof(d->params), u->action.json);
	if (d->mode == REFLEX_MODE_LIVE) {
		snprintf(d->detail, sizeof(d->detail), "%s: undoing decision %s; ", why, u->of);
	} else {
		d->outcome = REFLEX_OUTCOME_DRY_RUN;
		snprintf(d->detail, sizeof(d->detail), "%s: undoing decision %s: would have run %s %s",
			 why, u->of, u->action.ops->name, u->action.json);
	}
	e->cfg->sink(e->cfg->ctx, d, &u->action);
	free(u);
}

/* A rule function failed: the rule stops until the rules are reloaded, and
 * the journal says why. The daemon and the other rules carry on. */
static void disable_rule(struct decide_engine *e, struct active *a, const struct rule *r,
			 const char *err, uint64_t now)
{
	struct decision *d = new_decision(e, &a->cond, r, now);
	size_t j = (size_t)(r - e->rules->rules);

	e->disabled[j / 64] |= 1ull << (j % 64);
	str_copy(d->action, sizeof(d->action), r->ladder[0].ops ? r->ladder[0].ops->name : "function");
	d->outcome = REFLEX_OUTCOME_FAILED;
	snprintf(d->detail, sizeof(d->detail), DECISION_RULE_DISABLED "%s", err);
	e->cfg->sink(e->cfg->ctx, d, NULL);
}

static bool disabled(const struct decide_engine *e, size_t j)
{
	return e->disabled[j / 64] & (1ull << (j % 64));
}

enum verdict { PASSES, FILTERED_OUT, HOLDING, DISABLED };

/* Whether r's declarative part lets c through now; when `why` is given,
 * also the reason in a sentence (only formatted when asked for: explaining
 * a decision must stay cheap). */
static enum verdict judge(const struct decide_engine *e, const struct active *a, size_t j,
			  uint64_t now, char *why, size_t size)
{
	const struct rule *r = &e->rules->rules[j];
	const struct condition *c = &a->cond;
	char held[32], hold[32];

	if (disabled(e, j)) {
		if (why)
			snprintf(why, size, "disabled: its function failed (see its earlier record)");
		return DISABLED;
	}
	if (!fits(a, j) || !rule_meets(r, c, NULL, 0)) {
		if (why)
			(void)rule_matches(r, c, why, size);
		return FILTERED_OUT;
	}
	if (now < c->since_ns + r->hold_ns) {
		if (why) {
			duration_format(now - c->since_ns, held, sizeof(held));
			duration_format(r->hold_ns, hold, sizeof(hold));
			snprintf(why, size, "hold: held %s of %s", held, hold);
		}
		return HOLDING;
	}
	if (why)
		snprintf(why, size, "%s", r->when_fn == LUA_NOREF ? "fires" : "its when function said no");
	return PASSES;
}

/* Why the rules did or did not decide c, as a JSON array: every rule up
 * to `decider` when full, else only the decider and the near misses
 * (matched kind and where, but holding, disabled, or said no), with the
 * rules filtered out by kind or where counted in one entry. */
static void explain(const struct decide_engine *e, const struct active *a,
		    const struct rule *decider, uint64_t now, bool full, struct sbuf *b)
{
	unsigned filtered = 0;
	bool first = true;

	sbuf_puts(b, "[");
	for (size_t j = 0; e->rules && j < e->rules->n; j++) {
		const struct rule *r = &e->rules->rules[j];
		char reason[256];
		const char *why = reason;

		if (r == decider) {
			why = "decides";
		} else if (!full && judge(e, a, j, now, NULL, 0) == FILTERED_OUT) {
			filtered++;
			continue;
		} else {
			(void)judge(e, a, j, now, reason, sizeof(reason));
		}
		sbuf_puts(b, first ? "{\"rule\":" : ",{\"rule\":");
		sbuf_json_str(b, r->name);
		sbuf_puts(b, ",\"why\":");
		sbuf_json_str(b, why);
		sbuf_puts(b, "}");
		first = false;
		if (r == decider)
			break;
	}
	if (filtered) {
		sbuf_puts(b, first ? "{\"rule\":\"\",\"why\":\"" : ",{\"rule\":\"\",\"why\":\"");
		sbuf_int(b, filtered);
		sbuf_puts(b, " earlier rules: kind or where did not match\"}");
	}
	sbuf_puts(b, "]");
	/* a cut array is no JSON: say that instead */
	if (b->truncated) {
		sbuf_init(b, b->s, b->size);
		sbuf_printf(b, "[{\"rule\":\"\",\"why\":\"too many rules to explain here\"}]");
	}
}

bool decide_explain(struct decide_engine *e, uint64_t cond_id, uint64_t now, struct sbuf *out)
{
	struct active *a = find_active(e, cond_id);

	if (!a || a->decided)
		return false;
	explain(e, a, NULL, advance(e, now), true, out);
	return true;
}

/* When the next hold of any rule on a condition since `since` ends after
 * now (0: none). Whether that rule matches is decided then: a wasted tick
 * costs less than matching now. */
static uint64_t next_hold_end(const struct decide_engine *e, uint64_t since, uint64_t now)
{
	for (size_t i = 0; i < e->nholds; i++)
		if (since + e->holds[i] > now)
			return since + e->holds[i];
	return 0;
}

/* The first rule, in order, that fires on a now: its hold passed, its kind
 * and where match, and its when function (if any) says yes; a->due learns
 * when the next hold ends. Only the rules whose kind and where fit are
 * looked at (a rule is over a kilobyte: walking them all is slow). The
 * functions of the rules before the first declarative match are asked in
 * one call; one that fails disables its rule, and the rest are asked again. */
static const struct rule *first_to_fire(struct decide_engine *e, struct active *a, uint64_t now)
{
	const struct rule *declared = NULL;
	size_t n = 0, first;
	char err[512];

	if (e->cap_asking < e->rules->n) {
		const struct rule **grown = realloc(e->asking, e->rules->n * sizeof(*grown));

		if (!grown)
			return NULL;
		e->asking = grown;
		e->cap_asking = e->rules->n;
	}
	a->due = next_hold_end(e, a->cond.since_ns, now);
	for (size_t w = 0; !declared && w * 64 < e->rules->n; w++) {
		for (uint64_t bits = a->fits[w]; bits; bits &= bits - 1) {
			size_t j = w * 64 + (size_t)__builtin_ctzll(bits);
			const struct rule *r = &e->rules->rules[j];

			if (now < a->cond.since_ns + r->hold_ns || disabled(e, j) ||
			    !rule_meets(r, &a->cond, NULL, 0))
				continue;
			if (r->when_fn == LUA_NOREF) {
				declared = r;
				break;
			}
			e->asking[n++] = r;
		}
	}
	if (!n)
		return declared;
	if (rules_first_when(e->rules, e->asking, n, &a->cond, now - a->cond.since_ns, &first,
			     err, sizeof(err)) == 0)
		return first < n ? e->asking[first] : declared;
	disable_rule(e, a, e->asking[first], err, now);
	return first_to_fire(e, a, now);
}

/* The rung a new occurrence starts on: one above the last this rule used on
 * the same process, if that was within verify.within (it came back: what
 * was done did not help for long), else the first. */
static size_t recurrence_rung(const struct decide_engine *e, const struct rule *r,
			      const struct target *t, uint64_t now)
{
	const struct acted *last = NULL;
	enum decision_mode mode = e->cfg->dry_run || r->dry_run ? REFLEX_MODE_DRY_RUN : REFLEX_MODE_LIVE;

	if (r->rungs < 2)
		return 0;
	for (size_t i = 0; i < e->nhistory; i++) {
		const struct acted *h = &e->history[i];

		if (h->mode == mode && h->pid == t->pid && h->start_time == t->start_time &&
		    now - h->at <= r->verify_ns && !strcmp(h->rule, r->name) &&
		    (!last || h->at > last->at))
			last = h;
	}
	if (!last)
		return 0;
	return (size_t)last->rung + 1 < r->rungs ? (size_t)last->rung + 1 : r->rungs - 1;
}

static void decide(struct decide_engine *e, struct active *a, const struct rule *r, size_t rung,
		   uint64_t now)
{
	const struct rule_action *act = &r->ladder[rung];
	struct verification *v;
	struct decision *d;
	char step[64] = "", err[512];
	bool killed;

	if (rung == 0 && r->act_fn != LUA_NOREF) {
		if (rule_eval_act(e->rules, r, &a->cond, now - a->cond.since_ns, &e->computed,
				  e->computed_params, err, sizeof(err))) {
			disable_rule(e, a, r, err, now);
			a->decided = true;
			return;
		}
		act = &e->computed;
	}
	d = new_decision(e, &a->cond, r, now);
	killed = kill_switch_on(e);
	if (killed)
		d->mode = REFLEX_MODE_DRY_RUN;
	str_copy(d->action, sizeof(d->action), act->ops->name);
	str_copy(d->params, sizeof(d->params), act->json);
	d->rung = (int)rung;
	{
		struct sbuf b;

		sbuf_init(&b, d->explain, sizeof(d->explain));
		explain(e, a, r, now, false, &b);
	}
	if (rung)
		snprintf(step, sizeof(step), "escalation %zu of %zu: ", rung, r->rungs - 1);

	if (refused(e, r, &a->cond.target, d->mode, now, d->detail, sizeof(d->detail))) {
		d->outcome = REFLEX_OUTCOME_SUPPRESSED;
	} else {
		if (!is_undo(act->ops->name))
			remember(e, d->mode, r->name, &a->cond.target, now, (int)rung);
		if (d->mode == REFLEX_MODE_LIVE) {
			d->outcome = REFLEX_OUTCOME_PENDING;
			snprintf(d->detail, sizeof(d->detail), "%s", step);
		} else if (killed) {
			d->outcome = REFLEX_OUTCOME_DRY_RUN;
			snprintf(d->detail, sizeof(d->detail), "%skill switch %s is set: would have run %s %s",
				 step, e->cfg->kill_switch, act->ops->name, act->json);
		} else {
			d->outcome = REFLEX_OUTCOME_DRY_RUN;
			snprintf(d->detail, sizeof(d->detail), "%swould have run %s %s", step,
				 act->ops->name, act->json);
		}
	}
	if (d->outcome == REFLEX_OUTCOME_PENDING && r->verify_ns &&
	    (v = grow((void **)&e->verifying, &e->nverifying, &e->cap_verifying, sizeof(*v)))) {
		memcpy(v->decision_id, d->id, sizeof(v->decision_id));
		str_copy(v->rule, sizeof(v->rule), r->name);
		v->rung = rung;
		v->cond_id = a->cond.id;
		v->started = now;
		v->deadline = now + r->verify_ns;
		str_copy(d->verify, sizeof(d->verify), "pending");
	}
	a->decided = true;
	a->settle_ns = r->settle_ns;
	if (act->ops->undo &&
	    (d->outcome == REFLEX_OUTCOME_PENDING || d->outcome == REFLEX_OUTCOME_DRY_RUN))
		keep_undo(a, r, act, d);
	e->cfg->sink(e->cfg->ctx, d, act);
}

void decide_tick(struct decide_engine *e, uint64_t now)
{
	now = advance(e, now);
	forget_old(e, now);
	for (size_t i = 0; i < e->nactive;) {
		struct active *a = &e->active[i];

		if (a->cleared_at && now >= a->cleared_at + a->settle_ns)
			forget_active(e, a, a->cleared_at);
		else
			i++;
	}
	for (size_t i = 0; i < e->nverifying;) {
		const struct active *a = find_active(e, e->verifying[i].cond_id);

		/* a condition that cleared and is settling is judged when it settles */
		if (e->verifying[i].deadline <= now && !(a && a->cleared_at))
			end_verification(e, i, false, now);
		else
			i++;
	}
	for (size_t i = 0; i < e->nactive; i++) {
		struct active *a = &e->active[i];
		const struct rule *r;

		if (a->decided || !e->rules)
			continue;
		/* rules by priority, then load order; the first to fire decides */
		r = first_to_fire(e, a, now);
		if (r)
			decide(e, a, r, recurrence_rung(e, r, &a->cond.target, now), now);
	}
}

bool decide_refuses(struct decide_engine *e, const struct rule *r, const struct target *t,
		    bool dry_run, uint64_t now, char *why, size_t size)
{
	now = advance(e, now);
	forget_old(e, now);
	return refused(e, r, t, dry_run ? REFLEX_MODE_DRY_RUN : REFLEX_MODE_LIVE, now, why, size);
}

void decide_record_external(struct decide_engine *e, const struct condition *c,
			    const struct rule *r, enum decision_outcome outcome,
			    const char *detail, uint64_t now)
{
	struct decision *d;
	struct sbuf b;

	now = advance(e, now);
	d = new_decision(e, c, r, now);
	d->mode = outcome == REFLEX_OUTCOME_DRY_RUN ? REFLEX_MODE_DRY_RUN : REFLEX_MODE_LIVE;
	str_copy(d->action, sizeof(d->action), r->ladder[0].ops ? r->ladder[0].ops->name : "");
	str_copy(d->params, sizeof(d->params), r->ladder[0].json);
	d->outcome = outcome;
	str_copy(d->detail, sizeof(d->detail), detail);
	sbuf_init(&b, d->explain, sizeof(d->explain));
	sbuf_puts(&b, "[{\"rule\":");
	sbuf_json_str(&b, r->name);
	sbuf_puts(&b, ",\"why\":\"decided in the kernel\"}]");
	if (outcome == REFLEX_OUTCOME_ACTED || outcome == REFLEX_OUTCOME_DRY_RUN)
		remember(e, d->mode, r->name, &c->target, now, 0);
	e->cfg->sink(e->cfg->ctx, d, NULL);
}

uint64_t decide_now(const struct decide_engine *e)
{
	return e->now;
}

uint64_t decide_next_deadline(const struct decide_engine *e)
{
	uint64_t next = 0;

	for (size_t i = 0; i < e->nverifying; i++)
		if (e->verifying[i].deadline > e->now && (!next || e->verifying[i].deadline < next))
			next = e->verifying[i].deadline;
	for (size_t i = 0; i < e->nactive; i++) {
		const struct active *a = &e->active[i];
		uint64_t settled = a->cleared_at + a->settle_ns;

		if (a->cleared_at && (!next || settled < next))
			next = settled;
		/* a->due was found when the rules were last walked for it */
		if (!a->decided && a->due > e->now && (!next || a->due < next))
			next = a->due;
	}
	return next;
}
