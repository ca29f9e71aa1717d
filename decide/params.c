#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

#include <lauxlib.h>

#include "decide/params.h"
#include "decide/rules_lua.h"

struct reading {
	lua_State *L;
	const struct act_ops *ops;
	unsigned char *params;
	unsigned given;      /* bit i: ops->params[i] was written */
	char *err;
	size_t errlen;
};

static int fail(struct reading *rd, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

/* err gets "action: " and the message; -EINVAL. */
static int fail(struct reading *rd, const char *fmt, ...)
{
	int n = snprintf(rd->err, rd->errlen, "%s: ", rd->ops->name);
	va_list ap;

	if (n < 0 || (size_t)n >= rd->errlen)
		return -EINVAL;
	va_start(ap, fmt);
	vsnprintf(rd->err + n, rd->errlen - (size_t)n, fmt, ap);
	va_end(ap);
	return -EINVAL;
}

/* The Lua type a parameter's value is written in. */
static int lua_type_of(enum act_param_type type)
{
	switch (type) {
	case ACT_PARAM_BOOL:
		return LUA_TBOOLEAN;
	case ACT_PARAM_INT:
		return LUA_TNUMBER;
	default:
		return LUA_TSTRING;
	}
}

/* "name must be WANT", and ", not TYPE" when the value's type is wrong. */
static int bad_value(struct reading *rd, const struct act_param *p)
{
	char want[96];
	int type = lua_type(rd->L, -1);

	if (p->type == ACT_PARAM_BOOL)
		snprintf(want, sizeof(want), "true or false");
	else if (p->type == ACT_PARAM_INT)
		snprintf(want, sizeof(want), "an integer from %lld to %lld", p->min, p->max);
	else
		snprintf(want, sizeof(want), "%s", p->want);
	if (type == lua_type_of(p->type))
		return fail(rd, "%s must be %s", p->name, want);
	return fail(rd, "%s must be %s, not %s", p->name, want, lua_typename(rd->L, type));
}

static int read_name(struct reading *rd, const struct act_param *p, int *out)
{
	const char *v = lua_tostring(rd->L, -1);

	for (size_t i = 0; p->names[i].name; i++) {
		if (strcmp(p->names[i].name, v) == 0) {
			*out = p->names[i].value;
			return 0;
		}
	}
	if (p->positional)
		return fail(rd, "unknown %s '%s'", p->noun, v);
	return fail(rd, "unknown %s '%s' in %s", p->noun, v, p->name);
}

/* The value on top of the stack into parameter p. */
static int read_value(struct reading *rd, const struct act_param *p)
{
	lua_State *L = rd->L;
	void *at = rd->params + p->offset;
	lua_Integer i;

	if (lua_type(L, -1) != lua_type_of(p->type))
		return bad_value(rd, p);
	switch (p->type) {
	case ACT_PARAM_BOOL:
		*(bool *)at = lua_toboolean(L, -1);
		return 0;
	case ACT_PARAM_INT:
		i = lua_tointeger(L, -1);
		if (!lua_isinteger(L, -1) || i < p->min || i > p->max)
			return bad_value(rd, p);
		*(int *)at = (int)i;
		return 0;
	case ACT_PARAM_DURATION:
		switch (rules_duration_parse(lua_tostring(L, -1), at)) {
		case 0:
			return 0;
		case -ERANGE:
			return fail(rd, "%s: duration '%s' is longer than " RULES_DURATION_MAX_TEXT, p->name,
				    lua_tostring(L, -1));
		default:
			return bad_value(rd, p);
		}
	case ACT_PARAM_NAME:
		return read_name(rd, p, at);
	case ACT_PARAM_STRING:
		if (!lua_rawlen(L, -1) || lua_rawlen(L, -1) >= p->size ||
		    strlen(lua_tostring(L, -1)) != lua_rawlen(L, -1) ||
		    (p->check && p->check(lua_tostring(L, -1))))
			return bad_value(rd, p);
		str_copy(at, p->size, lua_tostring(L, -1));
		return 0;
	default:
		return -EINVAL;
	}
}

/* key = "value" for a PAIRS parameter: appended as "key=value\n". */
static int read_pair(struct reading *rd, const struct act_param *p, const char *key)
{
	lua_State *L = rd->L;
	char *pairs = (char *)rd->params + p->offset;
	size_t used = strlen(pairs);
	int n;

	if (lua_type(L, -1) != LUA_TSTRING || strpbrk(key, "=\n") || strchr(lua_tostring(L, -1), '\n'))
		return fail(rd, "%s must be a string value", key);
	n = snprintf(pairs + used, p->size - used, "%s=%s\n", key, lua_tostring(L, -1));
	if (n < 0 || (size_t)n >= p->size - used) {
		pairs[used] = '\0';
		return fail(rd, "too many or too long keys and values");
	}
	return 0;
}

/* The parameter the key at -2 names: NULL when none. */
static const struct act_param *param_of(struct reading *rd, size_t *at)
{
	lua_State *L = rd->L;
	const struct act_ops *ops = rd->ops;
	bool first = lua_isinteger(L, -2) && lua_tointeger(L, -2) == 1;
	const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

	for (*at = 0; *at < ops->nparams; (*at)++) {
		const struct act_param *p = &ops->params[*at];

		if (p->positional ? first : key && p->type != ACT_PARAM_PAIRS && !strcmp(p->name, key))
			return p;
	}
	for (*at = 0; key && *at < ops->nparams; (*at)++)
		if (ops->params[*at].type == ACT_PARAM_PAIRS)
			return &ops->params[*at];
	return NULL;
}

/* "unknown parameter 'x' (known: a, b)": the named ones. A value with no
 * name, for an action that takes none: "parameters are named". */
static int unknown(struct reading *rd)
{
	bool positional = false;
	char known[160];
	struct sbuf b;
	const char *key;
	int rc;

	sbuf_init(&b, known, sizeof(known));
	for (size_t i = 0; i < rd->ops->nparams; i++) {
		positional |= rd->ops->params[i].positional;
		if (!rd->ops->params[i].positional)
			sbuf_printf(&b, "%s%s", b.len ? ", " : "", rd->ops->params[i].name);
	}
	if (!positional && lua_type(rd->L, -2) != LUA_TSTRING)
		return fail(rd, "parameters are named (known: %s)", b.len ? known : "none");
	lua_pushvalue(rd->L, -2);
	key = luaL_tolstring(rd->L, -1, NULL);
	rc = fail(rd, "unknown parameter '%s' (known: %s)", key, b.len ? known : "none");
	lua_pop(rd->L, 2);
	return rc;
}

/* Every entry of the table at idx. */
static int read_entries(struct reading *rd, int idx)
{
	lua_State *L = rd->L;
	int rc = 0;

	lua_pushnil(L);
	while (!rc && lua_next(L, idx)) {
		size_t at;
		const struct act_param *p = param_of(rd, &at);

		if (!p)
			rc = unknown(rd);
		else if (p->type == ACT_PARAM_PAIRS)
			rc = read_pair(rd, p, lua_tostring(L, -2));
		else
			rc = read_value(rd, p);
		if (p)
			rd->given |= 1u << at;
		lua_pop(L, 1);
	}
	if (rc)
		lua_pop(L, 1); /* the key lua_next left */
	return rc;
}

int params_read(lua_State *L, int idx, const struct act_ops *ops, void *params,
		char *err, size_t errlen)
{
	struct reading rd = { .L = L, .ops = ops, .params = params, .err = err, .errlen = errlen };
	int rc;

	if (ops->params_size > REFLEX_ACT_PARAMS_MAX || ops->nparams > REFLEX_ACT_PARAM_COUNT)
		return fail(&rd, "declares more parameters than an action holds");
	memset(params, 0, ops->params_size);
	for (size_t i = 0; i < ops->nparams; i++) {
		const struct act_param *p = &ops->params[i];

		if (p->type == ACT_PARAM_DURATION)
			*(uint64_t *)(rd.params + p->offset) = (uint64_t)p->def;
		else if (p->type == ACT_PARAM_BOOL)
			*(bool *)(rd.params + p->offset) = p->def != 0;
		else if (p->type == ACT_PARAM_INT || p->type == ACT_PARAM_NAME)
			*(int *)(rd.params + p->offset) = (int)p->def;
	}
	rc = read_entries(&rd, lua_absindex(L, idx));
	if (rc)
		return rc;
	for (size_t i = 0; i < ops->nparams; i++)
		if (ops->params[i].required && !(rd.given & (1u << i)))
			return fail(&rd, "%s", ops->params[i].missing);
	return ops->check ? ops->check(params, rd.given, err, errlen) : 0;
}
