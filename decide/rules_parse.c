/* A rule's table into struct rule: each field checked, every problem
 * reported as "file:line: rule 'name': message" at the line the field is
 * written on. An action's parameters are read by decide/params.c. */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "decide/params.h"
#include "decide/rules_lua.h"

#define REFLEX_PID_MAX 4194304     /* the kernel's PID_MAX_LIMIT */
#define BREAKER_DEFAULT_FAILURES 3
#define BREAKER_DEFAULT_PER (3600 * NSEC_PER_SEC)

static const char *const where_fields[] = {
	"comm", "exe", "cgroup", "pid", "namespace", "pod", "container", "labels", NULL,
};

static bool in_list(const char *const *list, const char *s)
{
	for (; *list; list++)
		if (strcmp(*list, s) == 0)
			return true;
	return false;
}

static void list_names(const char *const *list, struct sbuf *b)
{
	for (size_t i = 0; list[i]; i++)
		sbuf_printf(b, "%s%s", i ? ", " : "", list[i]);
}

static bool ident_char(char c)
{
	return c == '_' || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}

/* Whether the line starting at p assigns field (`field =`, not `field ==`). */
static bool assigns(const char *p, const char *end, const char *field)
{
	size_t flen = strlen(field);

	for (const char *q = p; q + flen <= end; q++) {
		const char *r = q + flen;

		if (strncmp(q, field, flen) || (q > p && ident_char(q[-1])))
			continue;
		while (r < end && (*r == ' ' || *r == '\t'))
			r++;
		if (r < end && *r == '=' && (r + 1 == end || r[1] != '='))
			return true;
	}
	return false;
}

/* The line where `field =` is written in the rule starting at rule_line,
 * so an error points at the field, not at the rule's first line. */
static int field_line(const struct loader *ld, int rule_line, const char *field)
{
	const char *p = ld->src;
	int line = 1;

	for (; *p && line < rule_line; p++)
		if (*p == '\n')
			line++;
	while (*p) {
		const char *end = p + strcspn(p, "\n");

		if (line > rule_line && strncmp(p + strspn(p, " \t"), "rule ", 5) == 0)
			break;
		if (assigns(p, end, field))
			return line;
		if (!*end)
			break;
		p = end + 1;
		line++;
	}
	return rule_line;
}

struct rule_ctx {
	struct loader *ld;
	struct rule *r;
	int line;
	bool failed;
	bool seen_when, seen_act;
};

static void rule_error(struct rule_ctx *rc, const char *field, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

static void rule_error(struct rule_ctx *rc, const char *field, const char *fmt, ...)
{
	char msg[512];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	/* "budget.per" is written as `per = ...` inside the budget table */
	if (field && strchr(field, '.'))
		field = strrchr(field, '.') + 1;
	rules_add_error(rc->ld->errs, "%s:%d: rule '%s': %s", rc->ld->file,
		  field ? field_line(rc->ld, rc->line, field) : rc->line, rc->r->name, msg);
	rc->failed = true;
}

int rules_duration_parse(const char *text, uint64_t *ns)
{
	uint64_t v;

	if (duration_parse(text, &v))
		return -EINVAL;
	if (v > RULES_DURATION_MAX)
		return -ERANGE;
	*ns = v;
	return 0;
}

static void parse_duration(struct rule_ctx *rc, lua_State *L, const char *field, uint64_t *ns)
{
	int err;

	if (lua_type(L, -1) != LUA_TSTRING) {
		rule_error(rc, field, "%s must be a duration like \"2s\", not %s", field,
			   luaL_typename(L, -1));
		return;
	}
	err = rules_duration_parse(lua_tostring(L, -1), ns);
	if (err == -ERANGE)
		rule_error(rc, field, "%s: duration '%s' is longer than " RULES_DURATION_MAX_TEXT,
			   field, lua_tostring(L, -1));
	else if (err)
		rule_error(rc, field, "%s: bad duration '%s' (use e.g. \"500ms\", \"2s\", \"1m\", \"1h\")",
			   field, lua_tostring(L, -1));
}

/* A glob, or a list of globs. */
static void parse_globs(struct rule_ctx *rc, lua_State *L, const char *field, struct strlist *g)
{
	if (lua_type(L, -1) == LUA_TSTRING) {
		(void)strlist_add(g, lua_tostring(L, -1));
		return;
	}
	if (lua_type(L, -1) == LUA_TTABLE) {
		lua_Integer n = (lua_Integer)lua_rawlen(L, -1);

		for (lua_Integer i = 1; i <= n; i++) {
			if (lua_rawgeti(L, -1, i) != LUA_TSTRING)
				rule_error(rc, "where", "where.%s[%lld] must be a string", field, (long long)i);
			else
				(void)strlist_add(g, lua_tostring(L, -1));
			lua_pop(L, 1);
		}
		if (n > 0)
			return;
	}
	rule_error(rc, "where", "where.%s must be a glob like \"worker*\" or a list of them", field);
}

/* labels = { app = "web", tier = "db*" }: each as "key=glob". */
static void parse_labels(struct rule_ctx *rc, lua_State *L, struct strlist *labels)
{
	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(rc, "where", "where.labels must be a table like { app = \"web*\" }");
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_type(L, -2) != LUA_TSTRING || lua_type(L, -1) != LUA_TSTRING ||
		    strchr(lua_tostring(L, -2), '=')) {
			rule_error(rc, "where", "where.labels: each entry must be label = \"glob\"");
		} else {
			char entry[512];

			snprintf(entry, sizeof(entry), "%s=%s", lua_tostring(L, -2), lua_tostring(L, -1));
			(void)strlist_add(labels, entry);
		}
		lua_pop(L, 1);
	}
}

static void parse_where(struct rule_ctx *rc, lua_State *L)
{
	struct rule *r = rc->r;

	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(rc, "where", "where must be a table like { comm = \"worker*\" }");
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		char known[128];
		struct sbuf b;

		if (!key || !in_list(where_fields, key)) {
			sbuf_init(&b, known, sizeof(known));
			list_names(where_fields, &b);
			rule_error(rc, "where", "unknown field '%s' in where (known: %s)",
				   key ? key : luaL_typename(L, -2), known);
		} else if (strcmp(key, "comm") == 0) {
			parse_globs(rc, L, key, &r->comm);
		} else if (strcmp(key, "exe") == 0) {
			parse_globs(rc, L, key, &r->exe);
		} else if (strcmp(key, "cgroup") == 0) {
			parse_globs(rc, L, key, &r->cgroup);
		} else if (strcmp(key, "namespace") == 0) {
			parse_globs(rc, L, key, &r->namespace);
		} else if (strcmp(key, "pod") == 0) {
			parse_globs(rc, L, key, &r->pod);
		} else if (strcmp(key, "container") == 0) {
			parse_globs(rc, L, key, &r->container);
		} else if (strcmp(key, "labels") == 0) {
			parse_labels(rc, L, &r->labels);
		} else if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) <= 0 ||
			   lua_tointeger(L, -1) > REFLEX_PID_MAX) {
			rule_error(rc, "where", "where.pid must be a whole number from 1 to %d",
				   REFLEX_PID_MAX);
		} else {
			r->pid = (pid_t)lua_tointeger(L, -1);
		}
		lua_pop(L, 1);
	}
}

/* budget = { max = 5, per = "1h" } */
static void parse_budget(struct rule_ctx *rc, lua_State *L)
{
	struct rule *r = rc->r;
	lua_Integer max;

	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(rc, "budget", "budget must be a table like { max = 5, per = \"1h\" }");
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";

		if (strcmp(key, "max") == 0) {
			max = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
			if (max < 1 || max > 1000000)
				rule_error(rc, "budget", "budget.max must be a whole number from 1 to 1000000: "
					   "a budget of 0 could never allow an action");
			else
				r->budget_max = (unsigned)max;
		} else if (strcmp(key, "per") == 0) {
			parse_duration(rc, L, "budget.per", &r->budget_per_ns);
		} else {
			rule_error(rc, "budget", "unknown field '%s' in budget (known: max, per)", key);
		}
		lua_pop(L, 1);
	}
	if (!r->budget_max || !r->budget_per_ns)
		rule_error(rc, "budget", "budget needs both max and per, e.g. { max = 5, per = \"1h\" }");
}

/* verify = { within = "10s" } */
static void parse_verify(struct rule_ctx *rc, lua_State *L)
{
	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(rc, "verify", "verify must be a table like { within = \"10s\" }");
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";

		if (strcmp(key, "within") == 0)
			parse_duration(rc, L, "verify.within", &rc->r->verify_ns);
		else
			rule_error(rc, "verify", "unknown field '%s' in verify (known: within)", key);
		lua_pop(L, 1);
	}
	if (!rc->r->verify_ns)
		rule_error(rc, "verify", "verify needs within, e.g. { within = \"10s\" }");
}

static const char *measure_example(enum measure_unit unit)
{
	static const char *const examples[] = {
		[UNIT_COUNT] = "200", [UNIT_PER_S] = "\"200/s\"", [UNIT_BYTES] = "\"512MiB\"",
		[UNIT_BYTES_PER_S] = "\"8MiB/s\"", [UNIT_RATIO] = "0.05 or \"5%\"",
		[UNIT_MS] = "\"10s\"",
	};

	return examples[unit];
}

/* kind { param = threshold, ... } at the top of the stack: thresholds on
 * the kind's measures. */
static void parse_thresholds(struct rule_ctx *rc, lua_State *L)
{
	size_t n;
	const struct measure *m = condition_measures(rc->r->kind, &n);
	const char *kind = condition_kind_name(rc->r->kind);
	char known[128];
	struct sbuf b;

	sbuf_init(&b, known, sizeof(known));
	for (size_t i = 0; i < n; i++)
		sbuf_printf(&b, "%s%s", i ? ", " : "", m[i].param);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		bool text = lua_type(L, -1) == LUA_TNUMBER || lua_type(L, -1) == LUA_TSTRING;
		size_t i = 0;
		int err = 0;

		while (key && i < n && strcmp(m[i].param, key))
			i++;
		if (!key || i == n) {
			rule_error(rc, "when", "%s: unknown parameter '%s' (known: %s)", kind,
				   key ? key : luaL_typename(L, -2), n ? known : "none");
		} else if (!text || (err = measure_parse(&m[i], lua_tostring(L, -1), &rc->r->at_least[i]))) {
			rule_error(rc, "when", "%s { %s = %s }: %s (e.g. %s)", kind, key,
				   text ? lua_tostring(L, -1) : luaL_typename(L, -1),
				   text && err == -ERANGE ? "too large a threshold, 2^63 or more" :
				   "not a valid threshold", measure_example(m[i].unit));
		}
		lua_pop(L, 1);
	}
}

static void parse_when(struct rule_ctx *rc, lua_State *L)
{
	const struct rule_value *v;

	rc->seen_when = true;
	if (lua_type(L, -1) == LUA_TFUNCTION) {
		lua_pushvalue(L, -1);
		rc->r->when_fn = luaL_ref(L, LUA_REGISTRYINDEX);
		rc->r->any_kind = true;
		return;
	}
	if (!(v = rules_to_value(L, -1, RULES_CONDITION_MT))) {
		rule_error(rc, "when", "when must be a condition like deadlock { } or a function, not %s",
			   luaL_typename(L, -1));
		return;
	}
	rc->r->kind = v->kind;
	parse_thresholds(rc, L);
	lua_pop(L, 1);
}

/* The action constructor's result at the top of the stack, into a. */
static void parse_action(struct rule_ctx *rc, lua_State *L, const char *field,
			 struct rule_action *a)
{
	const struct rule_value *v;
	const struct act_ops *ops;
	char err[256];
	struct sbuf json;

	if (!(v = rules_to_value(L, -1, RULES_ACTION_MT))) {
		rule_error(rc, field, "%s must be an action like signal { \"SIGKILL\" }, not %s",
			   field, luaL_typename(L, -1));
		return;
	}
	ops = v->ops;
	a->params = calloc(1, ops->params_size);
	if (!a->params) {
		rule_error(rc, field, "out of memory");
		lua_pop(L, 1);
		return;
	}
	if (params_read(L, -1, ops, a->params, err, sizeof(err))) {
		rule_error(rc, field, "%s", err);
	} else {
		a->ops = ops;
		sbuf_init(&json, a->json, sizeof(a->json));
		ops->describe(ops, a->params, &json);
	}
	lua_pop(L, 1);
}

/* escalate = signal { ... }, or a list of actions: the rungs after act. */
static void parse_escalate(struct rule_ctx *rc, lua_State *L)
{
	struct rule *r = rc->r;
	lua_Integer n;

	if (lua_type(L, -1) != LUA_TTABLE) {
		parse_action(rc, L, "escalate", &r->ladder[1]);
		r->rungs = 2;
		return;
	}
	n = (lua_Integer)lua_rawlen(L, -1);
	if (n < 1 || n > REFLEX_LADDER_MAX - 1) {
		rule_error(rc, "escalate", "escalate takes 1 to %d actions", REFLEX_LADDER_MAX - 1);
		return;
	}
	for (lua_Integer i = 1; i <= n; i++) {
		lua_rawgeti(L, -1, i);
		parse_action(rc, L, "escalate", &r->ladder[i]);
		lua_pop(L, 1);
	}
	r->rungs = (size_t)n + 1;
}

/* breaker = { failures = 3, per = "1h" } */
static void parse_breaker(struct rule_ctx *rc, lua_State *L)
{
	struct rule *r = rc->r;

	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(rc, "breaker", "breaker must be a table like { failures = 3, per = \"1h\" }");
		return;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "?";
		lua_Integer n;

		if (strcmp(key, "failures") == 0) {
			n = lua_isinteger(L, -1) ? lua_tointeger(L, -1) : -1;
			if (n < 1 || n > 1000)
				rule_error(rc, "breaker", "breaker.failures must be a whole number from 1 to 1000");
			else
				r->breaker_failures = (unsigned)n;
		} else if (strcmp(key, "per") == 0) {
			parse_duration(rc, L, "breaker.per", &r->breaker_per_ns);
		} else {
			rule_error(rc, "breaker", "unknown field '%s' in breaker (known: failures, per)", key);
		}
		lua_pop(L, 1);
	}
}

/* in_kernel = true: the BPF program that sees the crossing signals by
 * itself, so the rule must be something it can carry out alone: one
 * threshold on resident memory and one plain signal, with nothing that
 * needs userspace in between (a hold, a function, a followup, a
 * verification or a ladder). */
static void check_in_kernel(struct rule_ctx *rc)
{
	struct rule *r = rc->r;

	if (r->when_fn != LUA_NOREF || r->kind != REFLEX_COND_MEMORY || isnan(r->at_least[0]))
		rule_error(rc, "in_kernel", "in_kernel needs when = memory { rss = \"256MiB\" }: "
			   "a resident-memory threshold is all the kernel can check");
	else if (r->act_fn != LUA_NOREF || !act_signal_single(r->ladder[0].ops, r->ladder[0].params))
		rule_error(rc, "in_kernel", "in_kernel needs act = signal { \"SIGKILL\" }: one signal "
			   "without followup is all the kernel can send");
	else if (r->rungs > 1 || r->verify_ns)
		rule_error(rc, "in_kernel", "in_kernel cannot escalate or verify: the kernel acts once, "
			   "alone");
	else if (r->hold_ns)
		rule_error(rc, "in_kernel", "in_kernel cannot hold: the kernel acts at the crossing");
}

void rule_clear(struct rule *r)
{
	free(r->name);
	free(r->file);
	free(r->description);
	strlist_free(&r->comm);
	strlist_free(&r->exe);
	strlist_free(&r->cgroup);
	strlist_free(&r->namespace);
	strlist_free(&r->pod);
	strlist_free(&r->container);
	strlist_free(&r->labels);
	for (size_t i = 0; i < REFLEX_LADDER_MAX; i++)
		free(r->ladder[i].params);
	memset(r, 0, sizeof(*r));
}
static void parse_hold(struct rule_ctx *rc, lua_State *L)
{
	parse_duration(rc, L, "hold", &rc->r->hold_ns);
}

static void parse_settle(struct rule_ctx *rc, lua_State *L)
{
	parse_duration(rc, L, "settle", &rc->r->settle_ns);
}

static void parse_cooldown(struct rule_ctx *rc, lua_State *L)
{
	parse_duration(rc, L, "cooldown", &rc->r->cooldown_ns);
}

/* act = signal { ... }, or a function of the condition that returns one */
static void parse_act(struct rule_ctx *rc, lua_State *L)
{
	rc->seen_act = true;
	if (lua_type(L, -1) == LUA_TFUNCTION) {
		lua_pushvalue(L, -1);
		rc->r->act_fn = luaL_ref(L, LUA_REGISTRYINDEX);
	} else {
		parse_action(rc, L, "act", &rc->r->ladder[0]);
	}
}

static void parse_priority(struct rule_ctx *rc, lua_State *L)
{
	if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < -1000 || lua_tointeger(L, -1) > 1000)
		rule_error(rc, "priority", "priority must be a whole number from -1000 to 1000");
	else
		rc->r->priority = (int)lua_tointeger(L, -1);
}

static void parse_dry_run(struct rule_ctx *rc, lua_State *L)
{
	if (lua_type(L, -1) != LUA_TBOOLEAN)
		rule_error(rc, "dry_run", "dry_run must be true or false");
	rc->r->dry_run = lua_toboolean(L, -1);
}

static void parse_in_kernel(struct rule_ctx *rc, lua_State *L)
{
	if (lua_type(L, -1) != LUA_TBOOLEAN)
		rule_error(rc, "in_kernel", "in_kernel must be true or false");
	rc->r->in_kernel = lua_toboolean(L, -1);
}

static void parse_description(struct rule_ctx *rc, lua_State *L)
{
	if (lua_type(L, -1) != LUA_TSTRING)
		rule_error(rc, "description", "description must be a string");
	else
		rc->r->description = strdup(lua_tostring(L, -1));
}

/* A rule's fields, in the order errors list them. */
static const struct {
	const char *name;
	void (*parse)(struct rule_ctx *rc, lua_State *L);
} rule_fields[] = {
	{ "when", parse_when }, { "where", parse_where }, { "hold", parse_hold },
	{ "settle", parse_settle }, { "act", parse_act }, { "escalate", parse_escalate },
	{ "cooldown", parse_cooldown }, { "budget", parse_budget }, { "verify", parse_verify },
	{ "breaker", parse_breaker }, { "priority", parse_priority }, { "dry_run", parse_dry_run },
	{ "description", parse_description }, { "in_kernel", parse_in_kernel },
};

/* The key at -2 names no field (or is no name): say which there are. */
static void unknown_field(struct rule_ctx *rc, const char *key)
{
	char known[160];
	struct sbuf b;

	sbuf_init(&b, known, sizeof(known));
	for (size_t i = 0; i < ARRAY_SIZE(rule_fields); i++)
		sbuf_printf(&b, "%s%s", i ? ", " : "", rule_fields[i].name);
	if (key)
		rule_error(rc, key, "unknown field '%s' (known: %s)", key, known);
	else
		rule_error(rc, NULL, "fields are named, like hold = \"2s\" (known: %s)", known);
}

/* A new rule named name at file:line, every threshold unset. */
static struct rule *rule_new(struct loader *ld, const char *name, int line)
{
	struct rule *r = calloc(1, sizeof(*r));

	if (!r)
		return NULL;
	r->when_fn = r->act_fn = LUA_NOREF;
	for (size_t i = 0; i < REFLEX_MEASURES_MAX; i++)
		r->at_least[i] = NAN;
	r->name = strdup(name);
	r->file = strdup(ld->file);
	r->line = line;
	memcpy(r->hash, ld->hash, sizeof(r->hash));
	return r;
}

/* What no single field can say: the rule as a whole, and its defaults. */
static void check_rule(struct rule_ctx *rc)
{
	struct rule *r = rc->r;
	const struct rule *dup;

	if (!rc->seen_when)
		rule_error(rc, NULL, "missing 'when': which condition, e.g. when = deadlock { }");
	if (!rc->seen_act)
		rule_error(rc, NULL, "missing 'act': what to do, e.g. act = signal { \"SIGKILL\" }");
	if (r->rungs > 1 && !r->verify_ns)
		rule_error(rc, "escalate", "escalate needs verify = { within = ... }: a rung runs "
			   "when the previous one did not help");
	if (!r->rungs)
		r->rungs = 1;
	if (r->in_kernel)
		check_in_kernel(rc);
	if (!r->breaker_failures)
		r->breaker_failures = BREAKER_DEFAULT_FAILURES;
	if (!r->breaker_per_ns)
		r->breaker_per_ns = BREAKER_DEFAULT_PER;
	dup = ruleset_find(rc->ld->rs, r->name);
	if (dup)
		rule_error(rc, NULL, "a rule with this name is already defined at %s:%d",
			   dup->file, dup->line);
	if (rc->ld->rs->n == REFLEX_RULES_MAX)
		rule_error(rc, NULL, "more than %d rules", REFLEX_RULES_MAX);
}

/* Each field of the table on top of the stack, by its parser. */
static void parse_fields(struct rule_ctx *rc, lua_State *L)
{
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		size_t i = 0;

		while (key && i < ARRAY_SIZE(rule_fields) && strcmp(rule_fields[i].name, key))
			i++;
		if (!key || i == ARRAY_SIZE(rule_fields))
			unknown_field(rc, key);
		else
			rule_fields[i].parse(rc, L);
		lua_pop(L, 1);
	}
}

void rules_parse(struct loader *ld, lua_State *L, const char *name, int line)
{
	struct rule *r = rule_new(ld, name, line);
	struct rule_ctx rc = { .ld = ld, .r = r, .line = line };
	struct rule *grown;

	if (!r) {
		rules_add_error(ld->errs, "%s:%d: out of memory", ld->file, line);
		return;
	}
	/* a Lua error (out of memory) may end the parse anywhere: the loader
	 * frees what it holds */
	ld->pending = r;
	if (!r->name || !r->file) {
		rules_add_error(ld->errs, "%s:%d: out of memory", ld->file, line);
		goto cleanup;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(&rc, NULL, "expected a table after the name: rule \"%s\" { ... }", name);
		goto cleanup;
	}
	parse_fields(&rc, L);
	check_rule(&rc);
	if (rc.failed)
		goto cleanup;
	grown = realloc(ld->rs->rules, (ld->rs->n + 1) * sizeof(*grown));
	if (!grown) {
		rule_error(&rc, NULL, "out of memory");
		goto cleanup;
	}
	ld->rs->rules = grown;
	ld->rs->rules[ld->rs->n++] = *r;
	free(r);
	ld->pending = NULL;
	return;
cleanup:
	rule_clear(r);
	free(r);
	ld->pending = NULL;
}
