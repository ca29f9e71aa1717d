/* What the rule loader's files share, and nothing outside decide/rules*.c
 * includes: the Lua side of rule files.
 *   rules.c        loading: files, their sandboxed states, the language's
 *                  names (rule, conditions, actions) and constructors
 *   rules_parse.c  a rule's table into struct rule
 *   params.c       an action's table against its actuator's parameters
 *   rules_match.c  kind, where and thresholds against a condition; lint
 *   rules_eval.c   the rules' when and act functions, bounded */
#ifndef REFLEX_DECIDE_RULES_LUA_H
#define REFLEX_DECIDE_RULES_LUA_H

#include <lauxlib.h>

#include "lib/util.h"
#include "decide/rules.h"

/* Metatables of what a condition or action constructor returns: a
 * userdata (struct rule_value) rule code cannot change or forge; and of
 * the condition table a rule function gets. */
extern const char RULES_CONDITION_MT[];
extern const char RULES_ACTION_MT[];
extern const char RULES_CONDITION_TABLE_MT[];

/* deadlock { ... } or signal { ... }: the kind or the actuator, set in C;
 * its user value is a private copy of the parameters. */
struct rule_value {
	enum condition_kind kind;
	const struct act_ops *ops;
};

struct rule_lua {
	lua_State *L;
	/* the condition table last built for a rule function, shared by the
	 * rules that look at the same condition at the same moment */
	int cond_ref;
	uint64_t cond_id, cond_held_ns;
};

/* One rules_load: where rules and errors go, and the file now loading. */
struct loader {
	struct ruleset *rs;
	struct strlist *errs;
	const char *file;
	const char *src;
	size_t len;
	char hash[65];
	struct rule *pending;  /* the rule being parsed: freed if parsing stops */
	uint64_t deadline;     /* CLOCK_MONOTONIC ns all files must be loaded by */
};

/* The longest duration a rule may give (hold, cooldown, grace, ...): the
 * engine adds it to clocks, which a longer one could wrap into the past
 * (a hold of 213503d once acted at once). */
#define RULES_DURATION_MAX (365 * 86400 * NSEC_PER_SEC)
#define RULES_DURATION_MAX_TEXT "365d"

/* A rule's duration ("2s", "1m30s", "0"): 0, -EINVAL, or -ERANGE past
 * RULES_DURATION_MAX. */
int rules_duration_parse(const char *text, uint64_t *ns);
/* Adds a formatted message to errs. */
void rules_add_error(struct strlist *errs, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* The value at idx if it is a condition or action (by mt), its private
 * parameters pushed; else NULL and nothing pushed. */
const struct rule_value *rules_to_value(lua_State *L, int idx, const char *mt);
/* err, prefixed with "file: " when it does not say where already. */
void rules_locate(char *err, size_t errlen, const char *file);
/* The body table of `rule "name" { ... }` at the top of the stack, into a
 * rule of ld->rs; errors go to ld->errs. */
void rules_parse(struct loader *ld, lua_State *L, const char *name, int line);
/* Frees what r holds and zeroes it. */
void rule_clear(struct rule *r);
/* Frees the fitting cache (NULL: nothing). */
void rules_fit_cache_free(struct fit_cache *fc);

#endif
