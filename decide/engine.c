#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/util.h"
#include "decide/engine.h"

struct active {
	struct condition cond;
	bool decided;      /* one decision per condition: the first rule to fire */
};

struct cooldown {
	char rule[128];
	pid_t pid;
	uint64_t start_time;
	uint64_t until;
};

struct decide_engine {
	const struct decide_config *cfg;
	const struct ruleset *rules;
	struct active *active;
	size_t nactive, cap_active;
	struct cooldown *cooldowns;
	size_t ncooldowns, cap_cooldowns;
};

struct decide_engine *decide_new(const struct ruleset *rules, const struct decide_config *cfg)
{
	struct decide_engine *e = calloc(1, sizeof(*e));

	if (!e)
		return NULL;
	e->cfg = cfg;
	e->rules = rules;
	return e;
}

void decide_free(struct decide_engine *e)
{
	if (!e)
		return;
	free(e->active);
	free(e->cooldowns);
	free(e);
}

void decide_set_rules(struct decide_engine *e, const struct ruleset *rules)
{
	e->rules = rules;
}

static struct active *find_active(struct decide_engine *e, uint64_t id)
{
	for (size_t i = 0; i < e->nactive; i++)
		if (e->active[i].cond.id == id)
			return &e->active[i];
	return NULL;
}

void decide_raise(struct decide_engine *e, const struct condition *c, uint64_t now)
{
	struct active *a = find_active(e, c->id);

	if (!a) {
		if (e->nactive == e->cap_active) {
			size_t cap = e->cap_active ? 2 * e->cap_active : 16;
			struct active *grown = realloc(e->active, cap * sizeof(*grown));

			if (!grown)
				return;
			e->active = grown;
			e->cap_active = cap;
		}
		a = &e->active[e->nactive++];
		a->decided = false;
	}
	a->cond = *c;
	decide_tick(e, now);
}

void decide_clear(struct decide_engine *e, uint64_t cond_id, uint64_t now)
{
	struct active *a = find_active(e, cond_id);

	if (a)
		*a = e->active[--e->nactive];
}

static struct cooldown *find_cooldown(struct decide_engine *e, const char *rule,
				      const struct target *t)
{
	for (size_t i = 0; i < e->ncooldowns; i++) {
		struct cooldown *c = &e->cooldowns[i];

		if (c->pid == t->pid && c->start_time == t->start_time && strcmp(c->rule, rule) == 0)
			return c;
	}
	return NULL;
}

static void start_cooldown(struct decide_engine *e, const struct rule *r,
			   const struct target *t, uint64_t now)
{
	struct cooldown *c = find_cooldown(e, r->name, t);

	if (!r->cooldown_ns)
		return;
	if (!c) {
		if (e->ncooldowns == e->cap_cooldowns) {
			size_t cap = e->cap_cooldowns ? 2 * e->cap_cooldowns : 16;
			struct cooldown *grown = realloc(e->cooldowns, cap * sizeof(*grown));

			if (!grown)
				return;
			e->cooldowns = grown;
			e->cap_cooldowns = cap;
		}
		c = &e->cooldowns[e->ncooldowns++];
		snprintf(c->rule, sizeof(c->rule), "%s", r->name);
		c->pid = t->pid;
		c->start_time = t->start_time;
	}
	c->until = now + r->cooldown_ns;
}

static void expire_cooldowns(struct decide_engine *e, uint64_t now)
{
	for (size_t i = 0; i < e->ncooldowns;) {
		if (e->cooldowns[i].until <= now)
			e->cooldowns[i] = e->cooldowns[--e->ncooldowns];
		else
			i++;
	}
}

static void decide(struct decide_engine *e, struct active *a, const struct rule *r, uint64_t now)
{
	const struct target *t = &a->cond.target;
	struct decision *d = calloc(1, sizeof(*d));
	const struct cooldown *cd;
	char why[256], left[32];

	if (!d)
		return;
	uuid_v7(d->id);
	d->time_ns = mono_to_real_ns(now);
	d->mode = e->cfg->dry_run || r->dry_run ? REFLEX_MODE_DRY_RUN : REFLEX_MODE_LIVE;
	snprintf(d->host, sizeof(d->host), "%s", e->cfg->host);
	snprintf(d->rule, sizeof(d->rule), "%s", r->name);
	snprintf(d->rule_file, sizeof(d->rule_file), "%s", r->file);
	memcpy(d->rule_hash, r->hash, sizeof(d->rule_hash));
	d->condition = a->cond;
	d->held_ns = now - a->cond.since_ns;
	snprintf(d->action, sizeof(d->action), "%s", r->act->name);
	snprintf(d->params, sizeof(d->params), "%s", r->act_json);

	if (protect_reason(e->cfg->protect, t, why, sizeof(why))) {
		d->outcome = REFLEX_OUTCOME_SUPPRESSED;
		snprintf(d->detail, sizeof(d->detail), "protected target: %s", why);
	} else if ((cd = find_cooldown(e, r->name, t)) && cd->until > now) {
		duration_format(cd->until - now, left, sizeof(left));
		d->outcome = REFLEX_OUTCOME_SUPPRESSED;
		snprintf(d->detail, sizeof(d->detail),
			 "cooldown: this rule acted on this process recently (%s left)", left);
	} else {
		/* dry-run takes the cooldown too, so it shows what live would do */
		start_cooldown(e, r, t, now);
		if (d->mode == REFLEX_MODE_DRY_RUN) {
			d->outcome = REFLEX_OUTCOME_DRY_RUN;
			snprintf(d->detail, sizeof(d->detail), "would have run %s %s",
				 r->act->name, r->act_json);
		} else {
			d->outcome = REFLEX_OUTCOME_PENDING;
		}
	}
	a->decided = true;
	e->cfg->sink(e->cfg->ctx, d, r);
	free(d);
}

void decide_tick(struct decide_engine *e, uint64_t now)
{
	expire_cooldowns(e, now);
	for (size_t i = 0; i < e->nactive; i++) {
		struct active *a = &e->active[i];

		if (a->decided || !e->rules)
			continue;
		/* rules in load order; the first whose hold has passed decides */
		for (size_t j = 0; j < e->rules->n; j++) {
			const struct rule *r = &e->rules->rules[j];

			if (rule_matches(r, &a->cond) && now >= a->cond.since_ns + r->hold_ns) {
				decide(e, a, r, now);
				break;
			}
		}
	}
}

uint64_t decide_next_deadline(const struct decide_engine *e)
{
	uint64_t next = 0;

	for (size_t i = 0; i < e->nactive; i++) {
		const struct active *a = &e->active[i];

		if (a->decided || !e->rules)
			continue;
		for (size_t j = 0; j < e->rules->n; j++) {
			const struct rule *r = &e->rules->rules[j];
			uint64_t due = a->cond.since_ns + r->hold_ns;

			if (rule_matches(r, &a->cond) && (!next || due < next))
				next = due;
		}
	}
	return next;
}
