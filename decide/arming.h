/* decide's half of arming (model/arming.h): which memory rule watches a
 * process, judged with the guards, dry-run and the kill switch, and the
 * record of what the kernel did. The daemon hands the policy to the
 * memory sensor through its environment. */
#ifndef REFLEX_DECIDE_ARMING_H
#define REFLEX_DECIDE_ARMING_H

#include "model/arming.h"
#include "decide/engine.h"

struct decide_arming {
	struct decide_engine *engine;
	struct ruleset *const *rules;  /* the caller's pointer: a reload is seen */
	const struct protect *protect;
	bool dry;                      /* as of the last generation() */
};

/* The policy over a, which must outlive the sensor it is given to. */
struct arming_policy decide_arming_policy(struct decide_arming *a);

#endif
