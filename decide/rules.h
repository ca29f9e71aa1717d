/* Rule files: Lua 5.4, run once in the sandbox at load time, compiled into
 * struct rule. The user-facing shape:
 *
 *   rule "deadlocked-worker" {
 *     when = deadlock { }, where = { comm = "worker*" }, hold = "2s",
 *     act = signal { "SIGKILL" }, cooldown = "1m",
 *   }
 */
#ifndef REFLEX_DECIDE_RULES_H
#define REFLEX_DECIDE_RULES_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "act/act.h"
#include "model/condition.h"

#define REFLEX_LADDER_MAX 4

/* One rung of a rule's ladder: an action and its parameters. */
struct rule_action {
	const struct act_ops *ops;
	void *params;
	char json[256];          /* the parameters, for the record */
};

struct rule {
	char *name;
	char *file;
	int line;
	char hash[65];           /* sha256 of the file */
	char *description;
	enum condition_kind kind;
	/* when = kind { param = threshold }: the kind's measures must reach
	 * these (NAN: no threshold); a ceiling for an at_most measure
	 * (measure_meets) */
	double at_least[REFLEX_MEASURES_MAX];
	/* where: every given field must match; a list matches if any glob does */
	struct strlist comm, exe, cgroup;
	/* the pod (from the Kubernetes API): globs, and labels as "key=glob" */
	struct strlist namespace, pod, container, labels;
	pid_t pid;
	uint64_t hold_ns;
	uint64_t cooldown_ns;
	unsigned budget_max;     /* at most this many actions ... */
	uint64_t budget_per_ns;  /* ... in any window this long; 0: no budget */
	uint64_t verify_ns;      /* the condition must clear this soon after */
	uint64_t settle_ns;      /* and stay clear this long to count as cleared */
	unsigned breaker_failures; /* this many unhelpful actions ... */
	uint64_t breaker_per_ns;   /* ... in this window open the circuit */
	int priority;            /* higher first; then load order */
	bool any_kind;           /* `when` is a function: it sees every kind */
	int when_fn;             /* registry ref of `when = function(c)`, or LUA_NOREF */
	int act_fn;              /* registry ref of `act = function(c)`, or LUA_NOREF */
	struct rule_lua *lua;    /* its file's Lua state, when it has a function */
	bool dry_run;
	/* the kernel checks the threshold and signals by itself (docs/reflex.md);
	 * only for memory { rss } with one plain signal */
	bool in_kernel;
	/* ladder[0] is `act`; the rest is `escalate`, one rung per failed
	 * verification */
	struct rule_action ladder[REFLEX_LADDER_MAX];
	size_t rungs;
};

#define REFLEX_RULES_MAX 4096

struct fit_cache;
/* One rule file's Lua state (rules.c): each file has its own libraries,
 * globals and memory limit, so no file can reach another's rules. */
struct rule_lua;

struct ruleset {
	struct rule *rules;
	size_t n;
	char **files;            /* every file loaded, in load order */
	size_t nfiles;
	/* per file, kept while one of its rules has a function (else NULL) */
	struct rule_lua **luas;
	/* the wall-clock bound of one rule function call: past it the rule is
	 * disabled (--rule-timeout, given to rules_load) */
	uint64_t eval_wall_ns;
	struct fit_cache *fits;  /* see ruleset_fitting */
};

/* Loads the rules in paths, each a file or a directory whose *.lua files
 * load in name order. NULL when anything is wrong: errs then lists every
 * problem found, each "file:line: message", and nothing is half-loaded.
 * eval_wall_ns bounds each rule function call (0:
 * REFLEX_SANDBOX_EVAL_WALL_NS). */
struct ruleset *rules_load(char *const *paths, size_t npaths, uint64_t eval_wall_ns, struct strlist *errs);
void rules_free(struct ruleset *rs);
/* Finds rules that load but can never act: each shadowed rule (an earlier
 * one always fires first) adds "file:line: message" to errs. */
void rules_lint(const struct ruleset *rs, struct strlist *errs);

/* r's kind and where against a target, thresholds aside: the same answer
 * for every condition on that target (what ruleset_fitting caches). The
 * reason in why when not and why is given. */
bool rule_fits(const struct rule *r, enum condition_kind kind, const struct target *t,
	       char *why, size_t size);
/* Whether r's thresholds (when = kind { param = N }) let c through; the
 * reason in why when not and why is given. */
bool rule_meets(const struct rule *r, const struct condition *c, char *why, size_t size);
/* Sets bit j of bits (REFLEX_RULES_MAX / 64 words) for every rule j whose kind and
 * where fit a condition of this kind on t (thresholds aside). Cached by
 * what rule_fits looks at: rules are matched once per kind of target (the
 * workers of one program share it), not per condition. */
void ruleset_fitting(struct ruleset *rs, enum condition_kind kind, const struct target *t,
		     uint64_t *bits);
/* The declarative part of r (kind, where and thresholds) matches c. When it does not
 * and why is given, the reason goes there (only formatted when asked for:
 * this is on the engine's hot path). */
bool rule_matches(const struct rule *r, const struct condition *c, char *why, size_t size);
/* Calls the when functions of rules[0..n) on c in order, each with its own
 * bounds, until one says yes: 0 with *first its index (n: none did), or
 * -EINVAL with *first the index of the rule whose function failed and the
 * error ("file:line: ...") in err. One protected call for them all. */
int rules_first_when(struct ruleset *rs, const struct rule *const *rules, size_t n,
		     const struct condition *c, uint64_t held_ns, size_t *first,
		     char *err, size_t errlen);
/* Calls r's act function on c, bounded, and checks the action it returns:
 * into out, whose params point at `params` (REFLEX_ACT_PARAMS_MAX bytes). */
int rule_eval_act(struct ruleset *rs, const struct rule *r, const struct condition *c,
		  uint64_t held_ns, struct rule_action *out, void *params, char *err, size_t errlen);
const struct rule *ruleset_find(const struct ruleset *rs, const char *name);

#endif
