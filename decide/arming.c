#include <math.h>
#include <stdio.h>
#include <string.h>

#include "act/act.h"
#include "lib/log.h"
#include "lib/util.h"
#include "decide/arming.h"

static uint64_t arming_generation(void *ctx)
{
	struct decide_arming *a = ctx;

	a->dry = decide_dry_run_now(a->engine);
	/* the rule set is one allocation per load: its address says a reload */
	return (uint64_t)(uintptr_t)*a->rules << 1 | a->dry;
}

static bool arming_any(void *ctx)
{
	const struct decide_arming *a = ctx;
	const struct ruleset *rs = *a->rules;

	for (size_t j = 0; rs && j < rs->n; j++)
		if (!rs->rules[j].any_kind && rs->rules[j].kind == REFLEX_COND_MEMORY)
			return true;
	return false;
}

static bool arming_comm_may_match(void *ctx, const char *comm)
{
	const struct decide_arming *a = ctx;
	const struct ruleset *rs = *a->rules;

	for (size_t j = 0; rs && j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];

		if (r->any_kind || r->kind != REFLEX_COND_MEMORY)
			continue;
		if (!r->comm.n)
			return true;
		for (size_t g = 0; g < r->comm.n; g++)
			if (glob_match(r->comm.v[g], comm))
				return true;
	}
	return false;
}

/* Among the memory rules with an rss threshold whose where matches, the
 * lowest threshold, skipping in_kernel rules the guards refuse now. */
static bool arming_choose(void *ctx, const struct target *t, uint64_t now, struct arming *out)
{
	const struct decide_arming *a = ctx;
	const struct ruleset *rs = *a->rules;
	const struct rule *best = NULL;
	char why[256];

	if (protect_reason(a->protect, t, why, sizeof(why)))
		return false;
	for (size_t j = 0; rs && j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];

		if (r->any_kind || r->kind != REFLEX_COND_MEMORY || isnan(r->at_least[0]) ||
		    !rule_fits(r, REFLEX_COND_MEMORY, t, NULL, 0))
			continue;
		if (best && r->at_least[0] >= best->at_least[0])
			continue;
		if (r->in_kernel && decide_refuses(a->engine, r, t, a->dry || r->dry_run, now, why,
						   sizeof(why))) {
			log_debug("memory: pid %d (%s) not armed for %s: %s", t->pid, t->comm, r->name, why);
			continue;
		}
		best = r;
	}
	if (!best)
		return false;
	memset(out, 0, sizeof(*out));
	out->threshold = (uint64_t)best->at_least[0];
	out->in_kernel = best->in_kernel;
	out->dry_run = a->dry || best->dry_run;
	out->signal = best->in_kernel ? act_signal_single(best->ladder[0].ops, best->ladder[0].params) : 0;
	str_copy(out->signal_name, sizeof(out->signal_name), act_signal_name(out->signal));
	str_copy(out->rule, sizeof(out->rule), best->name);
	str_copy(out->file, sizeof(out->file), best->file);
	memcpy(out->hash, best->hash, sizeof(out->hash));
	str_copy(out->json, sizeof(out->json), best->ladder[0].json);
	out->cooldown_ns = best->cooldown_ns;
	return true;
}

static bool arming_refuses(void *ctx, const struct arming *arm, const struct target *t, uint64_t now,
			   char *why, size_t size)
{
	const struct decide_arming *a = ctx;
	const struct rule *r = ruleset_find(*a->rules, arm->rule);

	if (!r) {
		snprintf(why, size, "its rule is gone");
		return true;
	}
	return decide_refuses(a->engine, r, t, arm->dry_run, now, why, size);
}

static void arming_record(void *ctx, const struct condition *c, const struct arming *arm,
			  enum decision_outcome outcome, const char *detail)
{
	const struct decide_arming *a = ctx;
	struct rule r = { .name = (char *)arm->rule, .file = (char *)arm->file };

	memcpy(r.hash, arm->hash, sizeof(r.hash));
	r.ladder[0].ops = &act_signal_ops;
	str_copy(r.ladder[0].json, sizeof(r.ladder[0].json), arm->json);
	decide_record_external(a->engine, c, &r, outcome, detail, clock_mono_ns());
}

struct arming_policy decide_arming_policy(struct decide_arming *a)
{
	return (struct arming_policy){
		.ctx = a, .generation = arming_generation, .any = arming_any,
		.comm_may_match = arming_comm_may_match, .choose = arming_choose,
		.refuses = arming_refuses, .record = arming_record,
	};
}
