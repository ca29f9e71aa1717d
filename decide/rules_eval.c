/* The rules' functions, called on a condition: `when = function(c)` and
 * `act = function(c)`, each bounded (decide/sandbox.c), with the condition
 * as a table built once per condition and moment. */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "lib/util.h"
#include "decide/params.h"
#include "decide/rules_lua.h"
#include "decide/sandbox.h"

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
	if (lua_rawgetp(L, 1, RULES_CONDITION_TABLE_MT) != LUA_TSTRING ||
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
	lua_rawsetp(L, -2, RULES_CONDITION_TABLE_MT);
	luaL_getmetatable(L, RULES_CONDITION_TABLE_MT);
	if (lua_rawgetp(L, -1, RULES_CONDITION_TABLE_MT) == LUA_TNIL) {
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
	if (!(v = rules_to_value(L, -1, RULES_ACTION_MT))) {
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
		rules_locate(err, errlen, r->file);
		return -EINVAL;
	}
	if (ev.bad) {
		rules_locate(err, errlen, r->file);
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
			rules_locate(err, errlen, rules[*first]->file);
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
