#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <lauxlib.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/text.h"
#include "lib/util.h"
#include "decide/params.h"
#include "decide/rules.h"
#include "decide/sandbox.h"

#define RULE_FILE_MAX (1u << 20)
#define RULE_NAME_MAX 127          /* what a decision record holds */
#define REFLEX_PID_MAX 4194304     /* the kernel's PID_MAX_LIMIT */

/* Metatables of what a condition or action constructor returns: a
 * userdata (struct rule_value) rule code cannot change or forge. */
static const char CONDITION_MT[] = "reflex.condition";
static const char ACTION_MT[] = "reflex.action";
static const char CONDITION_TABLE_MT[] = "reflex.condition_table";
/* registry key: the loader, while a file loads (rule "x" is refused after) */
static const char LOADER_KEY = 0;

/* deadlock { ... } or signal { ... }: the kind or the actuator, set in C;
 * its user value is a private copy of the parameters. */
struct rule_value {
	enum condition_kind kind;
	const struct act_ops *ops;
};

/* Parameter tables are small; a bigger one is a mistake or an attack. */
#define PARAMS_ENTRIES_MAX 256
#define PARAMS_DEPTH_MAX 4

struct rule_lua {
	lua_State *L;
	/* the condition table last built for a rule function, shared by the
	 * rules that look at the same condition at the same moment */
	int cond_ref;
	uint64_t cond_id, cond_held_ns;
};

static const char *const rule_fields[] = {
	"when", "where", "hold", "settle", "act", "escalate", "cooldown", "budget", "verify",
	"breaker", "priority", "dry_run", "description", "in_kernel", NULL,
};

#define BREAKER_DEFAULT_FAILURES 3
#define BREAKER_DEFAULT_PER (3600 * NSEC_PER_SEC)
static const char *const where_fields[] = {
	"comm", "exe", "cgroup", "pid", "namespace", "pod", "container", "labels", NULL,
};

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

static void add_error(struct strlist *errs, const char *fmt, ...)
	__attribute__((format(printf, 2, 3)));

static void add_error(struct strlist *errs, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)strlist_add(errs, msg);
}

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
	add_error(rc->ld->errs, "%s:%d: rule '%s': %s", rc->ld->file,
		  field ? field_line(rc->ld, rc->line, field) : rc->line, rc->r->name, msg);
	rc->failed = true;
}

/* The value at idx if it is a condition or action (by mt), its private
 * parameters pushed; else NULL and nothing pushed. */
static const struct rule_value *to_value(lua_State *L, int idx, const char *mt)
{
	const struct rule_value *v = luaL_testudata(L, idx, mt);

	if (v)
		lua_getiuservalue(L, idx, 1);
	return v;
}

static void parse_duration(struct rule_ctx *rc, lua_State *L, const char *field, uint64_t *ns)
{
	if (lua_type(L, -1) != LUA_TSTRING) {
		rule_error(rc, field, "%s must be a duration like \"2s\", not %s", field,
			   luaL_typename(L, -1));
		return;
	}
	if (duration_parse(lua_tostring(L, -1), ns))
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
		size_t i = 0;

		while (key && i < n && strcmp(m[i].param, key))
			i++;
		if (!key || i == n) {
			rule_error(rc, "when", "%s: unknown parameter '%s' (known: %s)", kind,
				   key ? key : luaL_typename(L, -2), n ? known : "none");
		} else if ((lua_type(L, -1) != LUA_TNUMBER && lua_type(L, -1) != LUA_TSTRING) ||
			   measure_parse(&m[i], lua_tostring(L, -1), &rc->r->at_least[i])) {
			rule_error(rc, "when", "%s { %s = %s }: not a valid threshold (e.g. %s)", kind,
				   key, lua_type(L, -1) == LUA_TSTRING || lua_type(L, -1) == LUA_TNUMBER ?
				   lua_tostring(L, -1) : luaL_typename(L, -1), measure_example(m[i].unit));
		}
		lua_pop(L, 1);
	}
}

static void parse_when(struct rule_ctx *rc, lua_State *L)
{
	const struct rule_value *v;

	if (lua_type(L, -1) == LUA_TFUNCTION) {
		lua_pushvalue(L, -1);
		rc->r->when_fn = luaL_ref(L, LUA_REGISTRYINDEX);
		rc->r->any_kind = true;
		return;
	}
	if (!(v = to_value(L, -1, CONDITION_MT))) {
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

	if (!(v = to_value(L, -1, ACTION_MT))) {
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

static void rule_clear(struct rule *r)
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

/* The body table of `rule "name" { ... }` is at the top of the stack. */
static void parse_rule(struct loader *ld, lua_State *L, const char *name, int line)
{
	struct rule *r = calloc(1, sizeof(*r));
	struct rule_ctx rc = { .ld = ld, .r = r, .line = line };
	bool seen_when = false, seen_act = false;
	struct rule *grown;
	const struct rule *dup;

	if (!r) {
		add_error(ld->errs, "%s:%d: out of memory", ld->file, line);
		return;
	}
	/* a Lua error (out of memory) may end the parse anywhere: the loader
	 * frees what it holds */
	ld->pending = r;

	r->when_fn = r->act_fn = LUA_NOREF;
	for (size_t i = 0; i < REFLEX_MEASURES_MAX; i++)
		r->at_least[i] = NAN;
	r->name = strdup(name);
	r->file = strdup(ld->file);
	r->line = line;
	memcpy(r->hash, ld->hash, sizeof(r->hash));
	if (!r->name || !r->file) {
		rule_error(&rc, NULL, "out of memory");
		goto out;
	}
	if (lua_type(L, -1) != LUA_TTABLE) {
		rule_error(&rc, NULL, "expected a table after the name: rule \"%s\" { ... }", name);
		goto out;
	}
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
		char known[160];
		struct sbuf b;

		if (!key || !in_list(rule_fields, key)) {
			sbuf_init(&b, known, sizeof(known));
			list_names(rule_fields, &b);
			if (key)
				rule_error(&rc, key, "unknown field '%s' (known: %s)", key, known);
			else
				rule_error(&rc, NULL, "fields are named, like hold = \"2s\" (known: %s)", known);
		} else if (strcmp(key, "when") == 0) {
			seen_when = true;
			parse_when(&rc, L);
		} else if (strcmp(key, "where") == 0) {
			parse_where(&rc, L);
		} else if (strcmp(key, "hold") == 0) {
			parse_duration(&rc, L, key, &r->hold_ns);
		} else if (strcmp(key, "settle") == 0) {
			parse_duration(&rc, L, key, &r->settle_ns);
		} else if (strcmp(key, "cooldown") == 0) {
			parse_duration(&rc, L, key, &r->cooldown_ns);
		} else if (strcmp(key, "budget") == 0) {
			parse_budget(&rc, L);
		} else if (strcmp(key, "verify") == 0) {
			parse_verify(&rc, L);
		} else if (strcmp(key, "act") == 0) {
			seen_act = true;
			if (lua_type(L, -1) == LUA_TFUNCTION) {
				lua_pushvalue(L, -1);
				r->act_fn = luaL_ref(L, LUA_REGISTRYINDEX);
			} else {
				parse_action(&rc, L, "act", &r->ladder[0]);
			}
		} else if (strcmp(key, "escalate") == 0) {
			parse_escalate(&rc, L);
		} else if (strcmp(key, "breaker") == 0) {
			parse_breaker(&rc, L);
		} else if (strcmp(key, "priority") == 0) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < -1000 || lua_tointeger(L, -1) > 1000)
				rule_error(&rc, key, "priority must be a whole number from -1000 to 1000");
			else
				r->priority = (int)lua_tointeger(L, -1);
		} else if (strcmp(key, "dry_run") == 0) {
			if (lua_type(L, -1) != LUA_TBOOLEAN)
				rule_error(&rc, key, "dry_run must be true or false");
			r->dry_run = lua_toboolean(L, -1);
		} else if (strcmp(key, "in_kernel") == 0) {
			if (lua_type(L, -1) != LUA_TBOOLEAN)
				rule_error(&rc, key, "in_kernel must be true or false");
			r->in_kernel = lua_toboolean(L, -1);
		} else if (lua_type(L, -1) != LUA_TSTRING) {
			rule_error(&rc, key, "description must be a string");
		} else {
			r->description = strdup(lua_tostring(L, -1));
		}
		lua_pop(L, 1);
	}
	if (!seen_when)
		rule_error(&rc, NULL, "missing 'when': which condition, e.g. when = deadlock { }");
	if (!seen_act)
		rule_error(&rc, NULL, "missing 'act': what to do, e.g. act = signal { \"SIGKILL\" }");
	if (r->rungs > 1 && !r->verify_ns)
		rule_error(&rc, "escalate", "escalate needs verify = { within = ... }: a rung runs "
			   "when the previous one did not help");
	if (!r->rungs)
		r->rungs = 1;
	if (r->in_kernel)
		check_in_kernel(&rc);
	if (!r->breaker_failures)
		r->breaker_failures = BREAKER_DEFAULT_FAILURES;
	if (!r->breaker_per_ns)
		r->breaker_per_ns = BREAKER_DEFAULT_PER;
	dup = ruleset_find(ld->rs, name);
	if (dup)
		rule_error(&rc, NULL, "a rule with this name is already defined at %s:%d",
			   dup->file, dup->line);
	if (ld->rs->n == REFLEX_RULES_MAX)
		rule_error(&rc, NULL, "more than %d rules", REFLEX_RULES_MAX);
	if (rc.failed)
		goto out;
	grown = realloc(ld->rs->rules, (ld->rs->n + 1) * sizeof(*grown));
	if (!grown) {
		rule_error(&rc, NULL, "out of memory");
		goto out;
	}
	ld->rs->rules = grown;
	ld->rs->rules[ld->rs->n++] = *r;
	free(r);
	ld->pending = NULL;
	return;
out:
	rule_clear(r);
	free(r);
	ld->pending = NULL;
}

/* The loader of the file now loading, or NULL (rule functions run later). */
static struct loader *loading(lua_State *L)
{
	struct loader *ld;

	lua_rawgetp(L, LUA_REGISTRYINDEX, &LOADER_KEY);
	ld = lua_touserdata(L, -1);
	lua_pop(L, 1);
	return ld;
}

static int rule_body(lua_State *L)
{
	struct loader *ld = loading(L);
	const char *name = lua_tostring(L, lua_upvalueindex(1));
	int line = (int)lua_tointeger(L, lua_upvalueindex(2));

	if (!ld)
		return luaL_error(L, "rule \"%s\" { ... } runs only while its file loads, "
				  "not from a rule function", name);
	lua_settop(L, 1);
	parse_rule(ld, L, name, line);
	return 0;
}

/* A rule's name goes into records, logs and terminals: printable UTF-8
 * (no control characters, no NUL), at most RULE_NAME_MAX bytes. */
static const char *bad_name(const char *name, size_t len)
{
	if (!len)
		return "a rule needs a name: rule \"name\" { ... }";
	if (len > RULE_NAME_MAX)
		return "a rule name is at most 127 bytes";
	if (strlen(name) == len && text_is_clean(name, TEXT_CONTROLS))
		return NULL;
	/* an embedded NUL, or a control character in valid UTF-8 */
	if (strlen(name) != len || text_is_clean(name, 0))
		return "a rule name cannot hold control characters or NUL";
	return "a rule name must be valid UTF-8";
}

/* rule "name" returns the function that takes the body table. */
static int rule_begin(lua_State *L)
{
	lua_Debug ar;
	size_t len;
	const char *name = lua_type(L, 1) == LUA_TSTRING ? lua_tolstring(L, 1, &len) : NULL;
	const char *bad = name ? bad_name(name, len) : "a rule needs a name: rule \"name\" { ... }";

	if (!loading(L))
		return luaL_error(L, "rule runs only while its file loads, not from a rule function");
	if (bad)
		return luaL_error(L, "%s", bad);
	if (!lua_getstack(L, 1, &ar) || !lua_getinfo(L, "l", &ar))
		ar.currentline = 0;
	lua_pushvalue(L, 1);
	lua_pushinteger(L, ar.currentline);
	lua_pushcclosure(L, rule_body, 2);
	return 1;
}

/* Copies the parameter table at idx, raw (no metamethods run, none kept):
 * what parse reads later is what the constructor saw, and rule code cannot
 * reach it. *budget: entries left for the whole copy. */
static void copy_params(lua_State *L, int idx, int depth, int *budget)
{
	idx = lua_absindex(L, idx);
	if (depth > PARAMS_DEPTH_MAX)
		luaL_error(L, "parameters nested more than %d deep", PARAMS_DEPTH_MAX);
	luaL_checkstack(L, 4, NULL);
	lua_newtable(L);
	lua_pushnil(L);
	while (lua_next(L, idx)) {
		int kt = lua_type(L, -2), vt = lua_type(L, -1);

		if (--*budget < 0)
			luaL_error(L, "more than %d parameters", PARAMS_ENTRIES_MAX);
		if (kt != LUA_TSTRING && kt != LUA_TNUMBER && kt != LUA_TBOOLEAN)
			luaL_error(L, "parameters are named or numbered, not keyed by a %s",
				   lua_typename(L, kt));
		if (vt == LUA_TTABLE) {
			copy_params(L, -1, depth + 1, budget);
			lua_remove(L, -2);
		} else if (vt != LUA_TSTRING && vt != LUA_TNUMBER && vt != LUA_TBOOLEAN) {
			luaL_error(L, "a parameter is a string, number, boolean or table, not a %s",
				   lua_typename(L, vt));
		}
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_rawset(L, -4);
	}
}

/* deadlock { ... } and signal { ... }: a read-only userdata holding the
 * kind or actuator and a private copy of the parameters, checked when the
 * rule is parsed (and again each time an act function returns one).
 * Upvalues: the metatable's name, the kind, the actuator. */
static int constructor(lua_State *L)
{
	struct rule_value *v;
	int budget = PARAMS_ENTRIES_MAX;

	if (lua_isnoneornil(L, 1)) {
		lua_settop(L, 0);
		lua_newtable(L);
	} else {
		luaL_checktype(L, 1, LUA_TTABLE);
		lua_settop(L, 1);
	}
	copy_params(L, 1, 0, &budget);
	v = lua_newuserdatauv(L, sizeof(*v), 1);
	v->kind = (enum condition_kind)lua_tointeger(L, lua_upvalueindex(2));
	v->ops = lua_touserdata(L, lua_upvalueindex(3));
	lua_insert(L, -2);
	lua_setiuservalue(L, -2, 1);
	luaL_setmetatable(L, lua_tostring(L, lua_upvalueindex(1)));
	return 1;
}

static int value_index(lua_State *L)
{
	const struct rule_value *v = lua_touserdata(L, 1);
	const char *key = lua_tostring(L, 2);

	if (key && v->ops && strcmp(key, "name") == 0)
		lua_pushstring(L, v->ops->name);
	else if (key && !v->ops && strcmp(key, "kind") == 0)
		lua_pushstring(L, condition_kind_name(v->kind));
	else
		lua_pushnil(L);
	return 1;
}

static int value_newindex(lua_State *L)
{
	return luaL_error(L, "conditions and actions are read-only: build a new one, "
			  "like signal { \"SIGKILL\" }");
}

/* The metatables of the state's own values, hidden from rule code
 * (getmetatable returns the name). */
static void new_metatables(lua_State *L)
{
	static const char *const names[] = { CONDITION_MT, ACTION_MT, CONDITION_TABLE_MT };

	for (size_t i = 0; i < ARRAY_SIZE(names); i++) {
		luaL_newmetatable(L, names[i]);
		lua_pushstring(L, names[i]);
		lua_setfield(L, -2, "__metatable");
		if (i < 2) {
			lua_pushcfunction(L, value_index);
			lua_setfield(L, -2, "__index");
			lua_pushcfunction(L, value_newindex);
			lua_setfield(L, -2, "__newindex");
		}
		lua_pop(L, 1);
	}
}

static int unknown_name(lua_State *L);

/* Sets field name of the table on top to name's constructor. A dotted name
 * (traffic.shift) goes into a table of its own (traffic), which, like the
 * environment, refuses names it does not have. */
static void push_constructor(lua_State *L, const char *mt, const char *name,
			     enum condition_kind kind, const struct act_ops *ops)
{
	const char *dot = strchr(name, '.');

	if (dot) {
		lua_pushlstring(L, name, (size_t)(dot - name));
		if (lua_rawget(L, -2) != LUA_TTABLE) {
			lua_pop(L, 1);
			lua_newtable(L);
			lua_newtable(L);
			lua_pushcfunction(L, unknown_name);
			lua_setfield(L, -2, "__index");
			lua_setmetatable(L, -2);
			lua_pushlstring(L, name, (size_t)(dot - name));
			lua_pushvalue(L, -2);
			lua_rawset(L, -4);
		}
	}
	lua_pushstring(L, mt);
	lua_pushinteger(L, kind);
	lua_pushlightuserdata(L, (void *)ops);
	lua_pushcclosure(L, constructor, 3);
	lua_setfield(L, -2, dot ? dot + 1 : name);
	if (dot)
		lua_pop(L, 1);
}

/* Reading a name that does not exist is an error, not nil: a typo in a
 * rule file must not silently become "no action". */
static int unknown_name(lua_State *L)
{
	char names[512];
	struct sbuf b;

	sbuf_init(&b, names, sizeof(names));
	sbuf_printf(&b, "actions: ");
	for (int i = 0; act_all[i]; i++)
		sbuf_printf(&b, "%s%s", i ? ", " : "", act_all[i]->name);
	sbuf_printf(&b, "; conditions: ");
	for (int k = 0; k < REFLEX_COND_KIND_COUNT; k++)
		sbuf_printf(&b, "%s%s", k ? ", " : "", condition_kind_name(k));
	return luaL_error(L, "unknown name '%s' (%s)", luaL_tolstring(L, 2, NULL), names);
}

/* The environment a rule file runs in: the sandbox's globals, the rule
 * language, and an error for anything else. */
static void push_env(lua_State *L)
{
	lua_newtable(L);
	lua_newtable(L);              /* its metatable */
	lua_newtable(L);              /* __index: what a rule file can see */
	lua_pushglobaltable(L);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		lua_pushvalue(L, -2);
		lua_insert(L, -2);
		lua_settable(L, -5);
	}
	lua_pop(L, 1);
	lua_pushcfunction(L, rule_begin);
	lua_setfield(L, -2, "rule");
	for (int k = 0; k < REFLEX_COND_KIND_COUNT; k++)
		push_constructor(L, CONDITION_MT, condition_kind_name(k), (enum condition_kind)k, NULL);
	for (int i = 0; act_all[i]; i++)
		push_constructor(L, ACTION_MT, act_all[i]->name, 0, act_all[i]);
	lua_newtable(L);
	lua_pushcfunction(L, unknown_name);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
}

/* err, prefixed with "file: " when it does not say where already (an
 * error object that is not a string, a memory error, error("x", 0)). */
static void locate(char *err, size_t errlen, const char *file)
{
	size_t n = strlen(file), len;

	if (sandbox_located(err) || n + 3 > errlen)
		return;
	len = strnlen(err, errlen - n - 3);
	memmove(err + n + 2, err, len);
	err[n + 2 + len] = '\0';
	memcpy(err, file, n);
	err[n] = ':';
	err[n + 1] = ' ';
}

/* Inside the protected call: the file's metatables, its chunk (source text
 * only: precompiled chunks bypass the parser's checks) in its environment,
 * run. */
static int run_file(lua_State *L)
{
	struct loader *ld = lua_touserdata(L, 1);
	char chunk[1100];

	new_metatables(L);
	lua_pushlightuserdata(L, ld);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &LOADER_KEY);
	snprintf(chunk, sizeof(chunk), "@%s", ld->file);
	if (luaL_loadbufferx(L, ld->src, ld->len, chunk, "t") != LUA_OK)
		return lua_error(L);
	push_env(L);
	if (!lua_setupvalue(L, -2, 1))
		lua_pop(L, 1);
	lua_call(L, 0, 0);
	return 0;
}

static int stop_loading(lua_State *L)
{
	lua_pushnil(L);
	lua_rawsetp(L, LUA_REGISTRYINDEX, &LOADER_KEY);
	return 0;
}

static void rule_lua_free(struct rule_lua *lua)
{
	if (!lua)
		return;
	sandbox_free(lua->L);
	free(lua);
}

/* Loads one file into its own state; the state is returned when a rule
 * of the file has a function, else freed (NULL). */
static struct rule_lua *load_file(struct loader *ld, const char *path)
{
	uint64_t now = clock_mono_ns();
	const struct sandbox_bounds bounds = {
		REFLEX_SANDBOX_INSTRUCTIONS, 0, ld->deadline > now ? ld->deadline - now : 1,
		REFLEX_SANDBOX_LOAD_WALL_NS,
	};
	char *src = malloc(RULE_FILE_MAX + 1), err[1024];
	struct rule_lua *lua = calloc(1, sizeof(*lua));
	size_t first = ld->rs->n;
	bool functions = false;
	ssize_t n;

	if (!src || !lua || !(lua->L = sandbox_new(REFLEX_SANDBOX_MEM_LIMIT))) {
		add_error(ld->errs, "%s: out of memory", path);
		goto fail;
	}
	lua->cond_ref = LUA_NOREF;
	n = read_file(path, src, RULE_FILE_MAX + 1);
	if (n < 0) {
		add_error(ld->errs, "%s: %s", path, strerror((int)-n));
		goto fail;
	}
	if (n == RULE_FILE_MAX) {
		add_error(ld->errs, "%s: larger than %u bytes", path, RULE_FILE_MAX);
		goto fail;
	}
	if (n > 0 && src[0] == LUA_SIGNATURE[0]) {
		add_error(ld->errs, "%s: precompiled Lua (bytecode) is refused: a rule file is "
			  "source text", path);
		goto fail;
	}
	if (sha256_hex(src, (size_t)n, ld->hash)) {
		add_error(ld->errs, "%s: cannot hash it (libcrypto's SHA-256 failed)", path);
		goto fail;
	}
	ld->file = path;
	ld->src = src;
	ld->len = (size_t)n;
	lua_pushcfunction(lua->L, run_file);
	lua_pushlightuserdata(lua->L, ld);
	if (sandbox_call(lua->L, 1, 0, &bounds, err, sizeof(err)) != LUA_OK) {
		locate(err, sizeof(err), path);
		add_error(ld->errs, "%s", err);
	}
	lua_pushcfunction(lua->L, stop_loading);
	if (sandbox_call(lua->L, 0, 0, &bounds, err, sizeof(err)) != LUA_OK)
		add_error(ld->errs, "%s: %s", path, err);
	if (ld->pending) {
		rule_clear(ld->pending);
		free(ld->pending);
		ld->pending = NULL;
	}
	for (size_t i = first; i < ld->rs->n; i++) {
		struct rule *r = &ld->rs->rules[i];

		if (r->when_fn != LUA_NOREF || r->act_fn != LUA_NOREF) {
			r->lua = lua;
			functions = true;
		}
	}
	ld->src = NULL;
	free(src);
	if (functions)
		return lua;
	rule_lua_free(lua);
	return NULL;
fail:
	ld->src = NULL;
	free(src);
	rule_lua_free(lua);
	return NULL;
}

static int add_file(struct ruleset *rs, const char *path)
{
	char **grown = realloc(rs->files, (rs->nfiles + 1) * sizeof(*grown));

	if (!grown)
		return -ENOMEM;
	rs->files = grown;
	rs->files[rs->nfiles] = strdup(path);
	return rs->files[rs->nfiles++] ? 0 : -ENOMEM;
}

static int lua_file(const struct dirent *e)
{
	size_t n = strlen(e->d_name);

	return e->d_name[0] != '.' && n > 4 && strcmp(e->d_name + n - 4, ".lua") == 0;
}

static void collect_files(struct ruleset *rs, struct strlist *errs, const char *path)
{
	struct dirent **entries;
	struct stat st;
	int n;

	if (stat(path, &st)) {
		add_error(errs, "%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (add_file(rs, path))
			add_error(errs, "%s: out of memory", path);
		return;
	}
	n = scandir(path, &entries, lua_file, alphasort);
	if (n < 0) {
		add_error(errs, "%s: %s", path, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		char file[4096];

		snprintf(file, sizeof(file), "%s%s%s", path,
			 path[strlen(path) - 1] == '/' ? "" : "/", entries[i]->d_name);
		if (add_file(rs, file))
			add_error(errs, "%s: out of memory", file);
		free(entries[i]);
	}
	free(entries);
}

struct ruleset *rules_load(char *const *paths, size_t npaths, uint64_t eval_wall_ns, struct strlist *errs)
{
	struct ruleset *rs = calloc(1, sizeof(*rs));
	struct loader ld = {
		.rs = rs, .errs = errs, .deadline = clock_mono_ns() + REFLEX_SANDBOX_LOAD_WALL_NS,
	};
	size_t before = errs->n;

	if (!rs) {
		add_error(errs, "loading rules: out of memory");
		return NULL;
	}
	rs->eval_wall_ns = eval_wall_ns ? eval_wall_ns : REFLEX_SANDBOX_EVAL_WALL_NS;
	for (size_t i = 0; i < npaths; i++)
		collect_files(rs, errs, paths[i]);
	rs->luas = calloc(rs->nfiles + 1, sizeof(*rs->luas));
	if (!rs->luas) {
		add_error(errs, "loading rules: out of memory");
		goto fail;
	}
	for (size_t i = 0; i < rs->nfiles; i++)
		rs->luas[i] = load_file(&ld, rs->files[i]);
	if (errs->n > before)
		goto fail;
	/* higher priority first; equal ones keep load order (insertion sort
	 * is stable, and rule sets are small) */
	for (size_t i = 1; i < rs->n; i++) {
		struct rule r = rs->rules[i];
		size_t j = i;

		for (; j > 0 && rs->rules[j - 1].priority < r.priority; j--)
			rs->rules[j] = rs->rules[j - 1];
		rs->rules[j] = r;
	}
	return rs;
fail:
	rules_free(rs);
	return NULL;
}

static void fit_cache_clear(struct fit_cache *fc);

void rules_free(struct ruleset *rs)
{
	if (!rs)
		return;
	for (size_t i = 0; i < rs->n; i++)
		rule_clear(&rs->rules[i]);
	for (size_t i = 0; i < rs->nfiles; i++) {
		free(rs->files[i]);
		if (rs->luas)
			rule_lua_free(rs->luas[i]);
	}
	free(rs->rules);
	free(rs->files);
	free(rs->luas);
	fit_cache_clear(rs->fits);
	free(rs->fits);
	free(rs);
}

const struct rule *ruleset_find(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (strcmp(rs->rules[i].name, name) == 0)
			return &rs->rules[i];
	return NULL;
}

/* The target's text fields a where matches with globs: the rule's list
 * and the target's value, by offset. Labels are matched on their own. */
#define WHERE_GLOB(f) { #f, offsetof(struct rule, f), offsetof(struct target, f) }
static const struct {
	const char *field;
	size_t in_rule, in_target;
} where_globs[] = {
	WHERE_GLOB(comm), WHERE_GLOB(exe), WHERE_GLOB(cgroup),
	WHERE_GLOB(namespace), WHERE_GLOB(pod), WHERE_GLOB(container),
};

bool rule_fits(const struct rule *r, enum condition_kind kind, const struct target *t,
		      char *why, size_t size)
{

	if (!r->any_kind && r->kind != kind) {
		if (why)
			snprintf(why, size, "wants %s, not %s", condition_kind_name(r->kind),
				 condition_kind_name(kind));
		return false;
	}
	if (r->pid && r->pid != t->pid) {
		if (why)
			snprintf(why, size, "where.pid is %d", r->pid);
		return false;
	}
	for (size_t i = 0; i < ARRAY_SIZE(where_globs); i++) {
		const struct strlist *globs = (const void *)((const char *)r + where_globs[i].in_rule);
		const char *value = (const char *)t + where_globs[i].in_target;
		bool any = !globs->n;

		for (size_t g = 0; !any && g < globs->n; g++)
			any = glob_match(globs->v[g], value);
		if (any)
			continue;
		if (why)
			snprintf(why, size, "where.%s: '%s' matches none of '%s'%s", where_globs[i].field,
				 value, globs->v[0], globs->n > 1 ? ", ..." : "");
		return false;
	}
	for (size_t i = 0; i < r->labels.n; i++) {
		const char *want = r->labels.v[i], *eq = strchr(want, '=');
		char value[256];

		if (!target_label(t, want, (size_t)(eq - want), value, sizeof(value)) ||
		    !glob_match(eq + 1, value)) {
			if (why)
				snprintf(why, size, "where.labels: the pod has no label matching %s", want);
			return false;
		}
	}
	return true;
}

bool rule_meets(const struct rule *r, const struct condition *c, char *why, size_t size)
{
	size_t n;
	const struct measure *m = condition_measures(c->kind, &n);

	for (size_t i = 0; i < n; i++)
		if (!isnan(r->at_least[i]) && !measure_meets(&m[i], c->measure[i], r->at_least[i])) {
			if (why)
				snprintf(why, size, "%s %g is %s %g", m[i].key, c->measure[i],
					 m[i].at_most ? "above" : "below", r->at_least[i]);
			return false;
		}
	return true;
}

bool rule_matches(const struct rule *r, const struct condition *c, char *why, size_t size)
{
	return rule_fits(r, c->kind, &c->target, why, size) && rule_meets(r, c, why, size);
}

/* The fitting cache: per key (what rule_fits looks at), which rules fit.
 * Bounded: when full it starts over. */
#define FIT_BUCKETS 16384
#define FIT_ENTRIES_MAX 65536

struct fit_entry {
	struct fit_entry *next;
	uint64_t hash;
	size_t key_len;
	char *key;        /* fit_key: right after bits */
	uint64_t bits[];
};

struct fit_cache {
	bool by_pid;      /* a rule names a pid: the pid is part of the key */
	size_t n;
	struct fit_entry *buckets[FIT_BUCKETS];
};

/* Appends text v and its NUL to key at len; the new length. */
static size_t key_text(char *key, size_t len, const char *v)
{
	if (*v) /* most are empty */
		len = (size_t)(stpcpy(key + len, v) - key);
	key[len] = '\0';
	return len + 1;
}

/* What rule_fits looks at, as bytes: the kind, the pid when a rule names
 * one, and each field a where can name, with its NUL. Processes alike in
 * these (the workers of one program) share an entry, which then stays in
 * the CPU's cache. Returns the length; *hash gets the key's FNV-1a hash
 * (8 bytes a step measured 1.98 % fewer of the simulator benchmark's
 * instructions, under the 2 % a hand-tuned form must save). */
static size_t fit_key(const struct fit_cache *fc, enum condition_kind kind,
		      const struct target *t, char *key, uint64_t *hash)
{
	int k = kind;
	size_t len = sizeof(k);
	uint64_t h = 0xcbf29ce484222325ull;

	memcpy(key, &k, sizeof(k));
	if (fc->by_pid) {
		memcpy(key + len, &t->pid, sizeof(t->pid));
		len += sizeof(t->pid);
	}
	for (size_t i = 0; i < ARRAY_SIZE(where_globs); i++)
		len = key_text(key, len, (const char *)t + where_globs[i].in_target);
	len = key_text(key, len, t->labels);
	for (size_t i = 0; i < len; i++)
		h = (h ^ (unsigned char)key[i]) * 0x100000001b3ull;
	*hash = h;
	return len;
}

static void fit_cache_clear(struct fit_cache *fc)
{
	for (size_t i = 0; fc && i < FIT_BUCKETS; i++)
		while (fc->buckets[i]) {
			struct fit_entry *e = fc->buckets[i];

			fc->buckets[i] = e->next;
			free(e);
		}
	if (fc)
		fc->n = 0;
}

/* ruleset_fitting without the cache: every rule matched. */
static void fit_each(const struct ruleset *rs, enum condition_kind kind, const struct target *t,
		     uint64_t *bits)
{
	memset(bits, 0, (rs->n + 63) / 64 * sizeof(*bits));
	for (size_t j = 0; j < rs->n; j++)
		if (rule_fits(&rs->rules[j], kind, t, NULL, 0))
			bits[j / 64] |= 1ull << (j % 64);
}

void ruleset_fitting(struct ruleset *rs, enum condition_kind kind, const struct target *t,
		     uint64_t *bits)
{
	size_t words = (rs->n + 63) / 64, len;
	char key[sizeof(int) + sizeof(pid_t) + sizeof(struct target)];
	uint64_t h;
	struct fit_entry *e, **bucket;

	if (!rs->fits && (rs->fits = calloc(1, sizeof(*rs->fits)))) {
		for (size_t j = 0; j < rs->n; j++)
			if (rs->rules[j].pid)
				rs->fits->by_pid = true;
	}
	if (!rs->fits) {
		fit_each(rs, kind, t, bits);
		return;
	}
	len = fit_key(rs->fits, kind, t, key, &h);
	bucket = &rs->fits->buckets[h % FIT_BUCKETS];
	for (e = *bucket; e; e = e->next)
		if (e->hash == h && e->key_len == len && !memcmp(e->key, key, len)) {
			memcpy(bits, e->bits, words * sizeof(*bits));
			return;
		}
	fit_each(rs, kind, t, bits);
	if (rs->fits->n == FIT_ENTRIES_MAX)
		fit_cache_clear(rs->fits);
	e = malloc(sizeof(*e) + words * sizeof(*bits) + len);
	if (!e)
		return;
	e->hash = h;
	e->key_len = len;
	e->key = (char *)(e->bits + words);
	memcpy(e->key, key, len);
	memcpy(e->bits, bits, words * sizeof(*bits));
	e->next = *bucket;
	*bucket = e;
	rs->fits->n++;
}

/* __index of a condition table: `evidence` is decoded from its JSON on
 * first use (most rule functions never look at it) and then kept. */
static int condition_index(lua_State *L)
{
	const char *key;

	luaL_checktype(L, 1, LUA_TTABLE);
	key = lua_type(L, 2) == LUA_TSTRING ? lua_tostring(L, 2) : NULL;
	if (!key || strcmp(key, "evidence"))
		return 0;
	lua_pushvalue(L, 2);
	if (lua_rawgetp(L, 1, CONDITION_TABLE_MT) != LUA_TSTRING ||
	    sandbox_push_json(L, lua_tostring(L, -1)))
		lua_newtable(L);
	lua_remove(L, -2);
	lua_pushvalue(L, -1);
	lua_insert(L, -3);
	lua_rawset(L, 1);
	return 1;
}

/* The condition as the table a rule function gets: the target's fields,
 * kind, summary, held_ms, and the evidence (decoded when read). */
static void push_condition(lua_State *L, const struct condition *c, uint64_t held_ns)
{
	const struct target *t = &c->target;

	lua_createtable(L, 0, 12);
	lua_pushstring(L, condition_kind_name(c->kind));
	lua_setfield(L, -2, "kind");
	lua_pushinteger(L, t->pid);
	lua_setfield(L, -2, "pid");
	lua_pushinteger(L, t->tid);
	lua_setfield(L, -2, "tid");
	lua_pushinteger(L, (lua_Integer)t->start_time);
	lua_setfield(L, -2, "start_time");
	lua_pushstring(L, t->comm);
	lua_setfield(L, -2, "comm");
	lua_pushstring(L, t->exe);
	lua_setfield(L, -2, "exe");
	lua_pushstring(L, t->cgroup);
	lua_setfield(L, -2, "cgroup");
	lua_pushstring(L, t->namespace);
	lua_setfield(L, -2, "namespace");
	lua_pushstring(L, t->pod);
	lua_setfield(L, -2, "pod");
	lua_pushstring(L, t->container);
	lua_setfield(L, -2, "container");
	lua_pushboolean(L, t->kernel_thread);
	lua_setfield(L, -2, "kernel_thread");
	lua_pushstring(L, c->summary);
	lua_setfield(L, -2, "summary");
	lua_pushinteger(L, (lua_Integer)(held_ns / NSEC_PER_MSEC));
	lua_setfield(L, -2, "held_ms");
	lua_pushstring(L, c->evidence);
	lua_rawsetp(L, -2, CONDITION_TABLE_MT);
	luaL_getmetatable(L, CONDITION_TABLE_MT);
	if (lua_rawgetp(L, -1, CONDITION_TABLE_MT) == LUA_TNIL) {
		lua_pushcfunction(L, condition_index);
		lua_setfield(L, -3, "__index");
	}
	lua_pop(L, 1);
	lua_setmetatable(L, -2);
}

/* Pushes the table for c: built once per condition and moment, since
 * several rules of a file may ask (documented: rules treat it as
 * read-only; a file that writes to it only misleads its own rules). */
static void push_shared_condition(struct rule_lua *lua, const struct condition *c, uint64_t held_ns)
{
	lua_State *L = lua->L;

	if (lua->cond_ref != LUA_NOREF && lua->cond_id == c->id && lua->cond_held_ns == held_ns) {
		lua_rawgeti(L, LUA_REGISTRYINDEX, lua->cond_ref);
		return;
	}
	luaL_unref(L, LUA_REGISTRYINDEX, lua->cond_ref);
	lua->cond_ref = LUA_NOREF;
	push_condition(L, c, held_ns);
	lua_pushvalue(L, -1);
	lua->cond_ref = luaL_ref(L, LUA_REGISTRYINDEX);
	lua->cond_id = c->id;
	lua->cond_held_ns = held_ns;
}

struct act_eval {
	const struct rule *r;
	const struct condition *c;
	uint64_t held_ns;
	struct rule_action *out;
	char *err;
	size_t errlen;
	bool bad;
};

/* Runs inside the protected call: the user's function, then the check of
 * what it returned (an action made in this file; its parameters are its
 * own private copy, so no rule code runs while they are read). */
static int eval_act(lua_State *L)
{
	struct act_eval *ev = lua_touserdata(L, 1);
	const struct rule_value *v;
	struct sbuf json;

	lua_rawgeti(L, LUA_REGISTRYINDEX, ev->r->act_fn);
	push_shared_condition(ev->r->lua, ev->c, ev->held_ns);
	lua_call(L, 1, 1);
	if (!(v = to_value(L, -1, ACTION_MT))) {
		snprintf(ev->err, ev->errlen, "%s:%d: act function returned %s, not an action like "
			 "signal { \"SIGKILL\" }", ev->r->file, ev->r->line, luaL_typename(L, -1));
		ev->bad = true;
		return 0;
	}
	memset(ev->out->params, 0, REFLEX_ACT_PARAMS_MAX);
	if (params_read(L, -1, v->ops, ev->out->params, ev->err, ev->errlen)) {
		ev->bad = true;
		return 0;
	}
	ev->out->ops = v->ops;
	sbuf_init(&json, ev->out->json, sizeof(ev->out->json));
	v->ops->describe(v->ops, ev->out->params, &json);
	return 0;
}

static struct sandbox_bounds eval_bounds(const struct ruleset *rs)
{
	return (struct sandbox_bounds){
		REFLEX_SANDBOX_EVAL_INSTRUCTIONS, REFLEX_SANDBOX_EVAL_MEMORY, rs->eval_wall_ns, 0,
	};
}

int rule_eval_act(struct ruleset *rs, const struct rule *r, const struct condition *c,
		  uint64_t held_ns, struct rule_action *out, void *params, char *err, size_t errlen)
{
	struct act_eval ev = {
		.r = r, .c = c, .held_ns = held_ns, .out = out, .err = err, .errlen = errlen,
	};
	struct sandbox_bounds b = eval_bounds(rs);
	lua_State *L = r->lua->L;

	out->ops = NULL;
	out->params = params;
	lua_pushcfunction(L, eval_act);
	lua_pushlightuserdata(L, &ev);
	if (sandbox_call(L, 1, 0, &b, err, errlen) != LUA_OK) {
		locate(err, errlen, r->file);
		return -EINVAL;
	}
	if (ev.bad) {
		locate(err, errlen, r->file);
		return -EINVAL;
	}
	return 0;
}

struct when_batch {
	const struct rule *const *rules;
	size_t n;        /* rules[0..n) all of one file */
	const struct condition *c;
	uint64_t held_ns;
	struct sandbox_bounds bounds;
	size_t at;       /* the rule being asked */
	bool matched;
};

/* Runs inside the protected call: each rule's function, on its own bounds. */
static int first_when(lua_State *L)
{
	struct when_batch *b = lua_touserdata(L, 1);

	push_shared_condition(b->rules[0]->lua, b->c, b->held_ns);
	for (b->at = 0; b->at < b->n; b->at++) {
		sandbox_rebound(L, &b->bounds);
		lua_rawgeti(L, LUA_REGISTRYINDEX, b->rules[b->at]->when_fn);
		lua_pushvalue(L, 2);
		lua_call(L, 1, 1);
		b->matched = lua_toboolean(L, -1);
		lua_pop(L, 1);
		if (b->matched)
			break;
	}
	return 0;
}

int rules_first_when(struct ruleset *rs, const struct rule *const *rules, size_t n,
		     const struct condition *c, uint64_t held_ns, size_t *first,
		     char *err, size_t errlen)
{
	/* one protected call per run of rules from the same file */
	for (size_t i = 0; i < n;) {
		struct when_batch b = {
			.rules = rules + i, .c = c, .held_ns = held_ns, .bounds = eval_bounds(rs),
		};
		lua_State *L = rules[i]->lua->L;

		while (i + b.n < n && rules[i + b.n]->lua == rules[i]->lua)
			b.n++;
		lua_pushcfunction(L, first_when);
		lua_pushlightuserdata(L, &b);
		if (sandbox_call(L, 1, 0, &b.bounds, err, errlen) != LUA_OK) {
			*first = i + b.at;
			locate(err, errlen, rules[*first]->file);
			return -EINVAL;
		}
		if (b.matched) {
			*first = i + b.at;
			return 0;
		}
		i += b.n;
	}
	*first = n;
	return 0;
}

static bool same_globs(const struct strlist *a, const struct strlist *b)
{
	if (a->n != b->n)
		return false;
	for (size_t i = 0; i < a->n; i++)
		if (strcmp(a->v[i], b->v[i]))
			return false;
	return true;
}

/* a's filter lets through everything b's does: a filters nothing, or the same. */
static bool covers(const struct strlist *a, const struct strlist *b)
{
	return !a->n || same_globs(a, b);
}

/* Whether a, tried before b, fires on everything b would, no later: then b
 * never decides anything (one decision per condition, first to fire). */
static bool shadows(const struct rule *a, const struct rule *b)
{
	size_t n;
	const struct measure *m = condition_measures(a->kind, &n);

	/* b's threshold is at least as strict as a's (NAN: none, never) */
	for (size_t i = 0; i < n; i++)
		if (!isnan(a->at_least[i]) && !measure_meets(&m[i], b->at_least[i], a->at_least[i]))
			return false;
	return a->when_fn == LUA_NOREF && !a->any_kind && (b->any_kind || a->kind == b->kind) &&
	       !b->any_kind && a->hold_ns <= b->hold_ns && (!a->pid || a->pid == b->pid) &&
	       covers(&a->comm, &b->comm) && covers(&a->exe, &b->exe) &&
	       covers(&a->cgroup, &b->cgroup) && covers(&a->namespace, &b->namespace) &&
	       covers(&a->pod, &b->pod) && covers(&a->container, &b->container) &&
	       covers(&a->labels, &b->labels);
}

void rules_lint(const struct ruleset *rs, struct strlist *errs)
{
	for (size_t j = 0; j < rs->n; j++) {
		for (size_t i = 0; i < j; i++) {
			const struct rule *a = &rs->rules[i], *b = &rs->rules[j];

			if (!shadows(a, b))
				continue;
			add_error(errs, "%s:%d: rule '%s' can never act: rule '%s' (%s:%d) matches "
				  "everything it matches, at least as soon, and goes first", b->file,
				  b->line, b->name, a->name, a->file, a->line);
			break;
		}
	}
}
