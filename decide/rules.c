/* Loading rule files: each in its own sandboxed Lua state (decide/sandbox.c)
 * whose environment holds the rule language (rule, the conditions, the
 * actions) and nothing it does not name; a rule's table is parsed by
 * rules_parse.c as `rule "name" { ... }` runs. */
#include <dirent.h>
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/text.h"
#include "lib/util.h"
#include "decide/rules_lua.h"
#include "decide/sandbox.h"

#define RULE_FILE_MAX (1u << 20)
#define RULE_NAME_MAX 127          /* what a decision record holds */

const char RULES_CONDITION_MT[] = "reflex.condition";
const char RULES_ACTION_MT[] = "reflex.action";
const char RULES_CONDITION_TABLE_MT[] = "reflex.condition_table";
/* registry key: the loader, while a file loads (rule "x" is refused after) */
static const char LOADER_KEY = 0;

/* Parameter tables are small; a bigger one is a mistake or an attack. */
#define PARAMS_ENTRIES_MAX 256
#define PARAMS_DEPTH_MAX 4

void rules_add_error(struct strlist *errs, const char *fmt, ...)
{
	char msg[1024];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(msg, sizeof(msg), fmt, ap);
	va_end(ap);
	(void)strlist_add(errs, msg);
}

const struct rule_value *rules_to_value(lua_State *L, int idx, const char *mt)
{
	const struct rule_value *v = luaL_testudata(L, idx, mt);

	if (v)
		lua_getiuservalue(L, idx, 1);
	return v;
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
	rules_parse(ld, L, name, line);
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
	static const char *const names[] = { RULES_CONDITION_MT, RULES_ACTION_MT, RULES_CONDITION_TABLE_MT };

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
		push_constructor(L, RULES_CONDITION_MT, condition_kind_name(k), (enum condition_kind)k, NULL);
	for (int i = 0; act_all[i]; i++)
		push_constructor(L, RULES_ACTION_MT, act_all[i]->name, 0, act_all[i]);
	lua_newtable(L);
	lua_pushcfunction(L, unknown_name);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
	lua_setfield(L, -2, "__index");
	lua_setmetatable(L, -2);
}

/* An error object that is not a string, a memory error and error("x", 0)
 * say no place. */
void rules_locate(char *err, size_t errlen, const char *file)
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
	struct stat st;
	ssize_t n;

	if (!src || !lua || !(lua->L = sandbox_new(REFLEX_SANDBOX_MEM_LIMIT))) {
		rules_add_error(ld->errs, "%s: out of memory", path);
		goto cleanup;
	}
	lua->cond_ref = LUA_NOREF;
	/* a FIFO would read as empty, a device as anything */
	if (!stat(path, &st) && !S_ISREG(st.st_mode)) {
		rules_add_error(ld->errs, "%s: not a regular file", path);
		goto cleanup;
	}
	n = read_file(path, src, RULE_FILE_MAX + 1);
	if (n < 0) {
		rules_add_error(ld->errs, "%s: %s", path, strerror((int)-n));
		goto cleanup;
	}
	if (n == RULE_FILE_MAX) {
		rules_add_error(ld->errs, "%s: larger than %u bytes", path, RULE_FILE_MAX);
		goto cleanup;
	}
	if (n > 0 && src[0] == LUA_SIGNATURE[0]) {
		rules_add_error(ld->errs, "%s: precompiled Lua (bytecode) is refused: a rule file is "
			  "source text", path);
		goto cleanup;
	}
	if (sha256_hex(src, (size_t)n, ld->hash)) {
		rules_add_error(ld->errs, "%s: cannot hash it (libcrypto's SHA-256 failed)", path);
		goto cleanup;
	}
	ld->file = path;
	ld->src = src;
	ld->len = (size_t)n;
	lua_pushcfunction(lua->L, run_file);
	lua_pushlightuserdata(lua->L, ld);
	if (sandbox_call(lua->L, 1, 0, &bounds, err, sizeof(err)) != LUA_OK) {
		rules_locate(err, sizeof(err), path);
		rules_add_error(ld->errs, "%s", err);
	}
	lua_pushcfunction(lua->L, stop_loading);
	if (sandbox_call(lua->L, 0, 0, &bounds, err, sizeof(err)) != LUA_OK)
		rules_add_error(ld->errs, "%s: %s", path, err);
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
cleanup:
	ld->src = NULL;
	free(src);
	if (functions)
		return lua;
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
		rules_add_error(errs, "%s: %s", path, strerror(errno));
		return;
	}
	if (!S_ISDIR(st.st_mode)) {
		if (add_file(rs, path))
			rules_add_error(errs, "%s: out of memory", path);
		return;
	}
	n = scandir(path, &entries, lua_file, alphasort);
	if (n < 0) {
		rules_add_error(errs, "%s: %s", path, strerror(errno));
		return;
	}
	for (int i = 0; i < n; i++) {
		char file[4096];

		snprintf(file, sizeof(file), "%s%s%s", path,
			 path[strlen(path) - 1] == '/' ? "" : "/", entries[i]->d_name);
		if (add_file(rs, file))
			rules_add_error(errs, "%s: out of memory", file);
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
		rules_add_error(errs, "loading rules: out of memory");
		return NULL;
	}
	rs->eval_wall_ns = eval_wall_ns ? eval_wall_ns : REFLEX_SANDBOX_EVAL_WALL_NS;
	for (size_t i = 0; i < npaths; i++)
		collect_files(rs, errs, paths[i]);
	rs->luas = calloc(rs->nfiles + 1, sizeof(*rs->luas));
	if (!rs->luas) {
		rules_add_error(errs, "loading rules: out of memory");
		goto cleanup;
	}
	for (size_t i = 0; i < rs->nfiles; i++)
		rs->luas[i] = load_file(&ld, rs->files[i]);
	if (errs->n > before)
		goto cleanup;
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
cleanup:
	rules_free(rs);
	return NULL;
}

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
	rules_fit_cache_free(rs->fits);
	free(rs);
}

const struct rule *ruleset_find(const struct ruleset *rs, const char *name)
{
	for (size_t i = 0; rs && i < rs->n; i++)
		if (strcmp(rs->rules[i].name, name) == 0)
			return &rs->rules[i];
	return NULL;
}
