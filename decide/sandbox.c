#include <errno.h>
#include <lauxlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <limits.h>
#include <lualib.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/log.h"
#include "decide/sandbox.h"

struct sandbox {
	size_t mem_used;
	size_t mem_limit;
	size_t call_limit;   /* during a bounded call: mem_used at its start + its share */
	long instructions_left;
	uint64_t wall_ns;    /* the wall-clock bound of the call; 0: none */
	uint64_t wall_named_ns; /* the bound the error names */
	/* CLOCK_MONOTONIC ns the call must end by; 0: not yet read. The clock
	 * is first read at the first hook or library call, not at the start:
	 * most rule functions end before either, and never pay for it. */
	uint64_t deadline;
	/* a bound was hit: every hook and every pcall raises it again until
	 * the call ends, so rule code cannot swallow it */
	bool tripped;
	char why[256];
};

/* How often the hook counts and looks at the clock: often enough that C
 * library calls between two looks stay short. */
#define HOOK_EVERY 100
#define TABLE_MOVE_MAX (1 << 22)
/* The largest block a state may hold (a string, a table's array): what
 * one library call can walk stays a few milliseconds of work. */
#define BLOCK_MAX (4u << 20)
/* The pattern functions refuse a subject and pattern whose worst case,
 * (subject length + 1) ^ (repetitions + 1) steps of backtracking, is past
 * this: C code runs outside the instruction count and the clock, and
 * ("a*"):rep(30) .. "b" would otherwise run for ever. At this bound the
 * worst case runs in well under the 50 ms of an evaluation. */
#define PATTERN_STEPS_MAX 2e7

static struct sandbox *sandbox_of(lua_State *L)
{
	return *(struct sandbox **)lua_getextraspace(L);
}

static uint64_t mono_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

/* Whether the call ran past its wall-clock bound (see deadline). */
static bool past_deadline(struct sandbox *sb)
{
	uint64_t now;

	if (!sb->wall_ns)
		return false;
	now = mono_ns();
	if (!sb->deadline)
		sb->deadline = now + sb->wall_ns;
	return now > sb->deadline;
}

/* Refuses growth past the cap: Lua turns that into a memory error. */
static void *sandbox_alloc(void *ud, void *ptr, size_t osize, size_t nsize)
{
	struct sandbox *sb = ud;
	size_t old = ptr ? osize : 0;

	if (nsize == 0) {
		free(ptr);
		sb->mem_used -= old;
		return NULL;
	}
	if (nsize > old && (nsize > BLOCK_MAX || sb->mem_used + (nsize - old) > sb->mem_limit ||
			    sb->mem_used + (nsize - old) > sb->call_limit))
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr)
		sb->mem_used = sb->mem_used - old + nsize;
	return ptr;
}

static void trip(lua_State *L, int level, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));

/* Marks the call tripped, why saying where (the function at level). */
static void trip(lua_State *L, int level, const char *fmt, ...)
{
	struct sandbox *sb = sandbox_of(L);
	lua_Debug where;
	char what[96];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(what, sizeof(what), fmt, ap);
	va_end(ap);
	if (lua_getstack(L, level, &where) && lua_getinfo(L, "Sl", &where) && where.currentline > 0)
		snprintf(sb->why, sizeof(sb->why), "%s:%d: %s", where.short_src,
			 where.currentline, what);
	else
		snprintf(sb->why, sizeof(sb->why), "%s", what);
	sb->tripped = true;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct sandbox *sb = sandbox_of(L);

	(void)ar;
	sb->instructions_left -= HOOK_EVERY;
	if (!sb->tripped && sb->instructions_left < 0)
		trip(L, 0, "instruction budget exceeded");
	else if (!sb->tripped && past_deadline(sb))
		trip(L, 0, "ran past its wall-clock bound of %llu ms",
		     (unsigned long long)(sb->wall_named_ns / 1000000));
	if (sb->tripped) {
		lua_pushstring(L, sb->why);
		lua_error(L);
	}
}

/* After a protected call inside rule code failed with status: a bound hit
 * (or memory exhausted) goes on up, whatever rule code wanted. */
static void rethrow_bounds(lua_State *L, int status)
{
	struct sandbox *sb = sandbox_of(L);

	if (status == LUA_ERRMEM && !sb->tripped) {
		snprintf(sb->why, sizeof(sb->why), "memory limit exceeded");
		sb->tripped = true;
	}
	if (sb->tripped)
		lua_error(L);
}

/* pcall(f, ...) for rule code: as Lua's, but a bound hit is not caught. */
static int bounded_pcall(lua_State *L)
{
	int status;

	luaL_checkany(L, 1);
	lua_pushboolean(L, 1);
	lua_insert(L, 1);
	status = lua_pcall(L, lua_gettop(L) - 2, LUA_MULTRET, 0);
	if (status == LUA_OK)
		return lua_gettop(L);
	rethrow_bounds(L, status);
	lua_pushboolean(L, 0);
	lua_insert(L, -2);
	return 2;
}

/* xpcall's handler, around the user's (upvalue 1): once a bound is hit
 * the user's is not called. (Lua calls a handler where the error was
 * raised, and for a bound that is inside the count hook, where hooks are
 * off: a handler running there would never be stopped.) */
static int guarded_handler(lua_State *L)
{
	if (sandbox_of(L)->tripped)
		return 1;
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

/* xpcall(f, handler, ...): the same, and the handler is bounded too. */
static int bounded_xpcall(lua_State *L)
{
	int n = lua_gettop(L), status;

	luaL_checktype(L, 2, LUA_TFUNCTION);
	lua_pushvalue(L, 2);
	lua_pushcclosure(L, guarded_handler, 1);
	lua_replace(L, 2);
	lua_pushboolean(L, 1);
	lua_pushvalue(L, 1);
	lua_rotate(L, 3, 2);   /* handler, true, f, args... */
	status = lua_pcall(L, n - 2, LUA_MULTRET, 2);
	if (status == LUA_OK)
		return lua_gettop(L) - 2;
	rethrow_bounds(L, status);
	lua_pushboolean(L, 0);
	lua_insert(L, -2);
	return 2;
}

/* setmetatable for rule code: no finalizers. A __gc or __close runs when
 * the collector or a scope says, possibly outside any bounded call (at
 * reload, when the state closes), so neither may be set. */
static int bounded_setmetatable(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	luaL_argexpected(L, lua_type(L, 2) == LUA_TNIL || lua_type(L, 2) == LUA_TTABLE, 2,
			 "nil or table");
	lua_settop(L, 2);
	if (lua_type(L, 2) == LUA_TTABLE) {
		lua_pushliteral(L, "__gc");
		lua_rawget(L, 2);
		lua_pushliteral(L, "__close");
		lua_rawget(L, 2);
		if (!lua_isnil(L, -1) || !lua_isnil(L, -2))
			return luaL_error(L, "setmetatable: __gc and __close are not allowed in rules");
		lua_settop(L, 2);
	}
	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	lua_call(L, lua_gettop(L) - 1, 1);
	return 1;
}

bool sandbox_located(const char *msg)
{
	for (const char *p = strchr(msg, ':'); p; p = strchr(p + 1, ':')) {
		const char *q = p + 1;

		while (*q >= '0' && *q <= '9')
			q++;
		if (q > p + 1 && *q == ':')
			return true;
	}
	return false;
}

/* Calls the library function in upvalue 1 (named by upvalue 2) with this
 * call's arguments. Called from here, its errors would not say where in
 * the rule file, nor which function ("bad argument #1 to '?'"): both are
 * put back. */
static int call_library(lua_State *L)
{
	int status;

	lua_pushvalue(L, lua_upvalueindex(1));
	lua_insert(L, 1);
	status = lua_pcall(L, lua_gettop(L) - 1, LUA_MULTRET, 0);
	if (status == LUA_OK)
		return lua_gettop(L);
	rethrow_bounds(L, status);
	if (lua_type(L, -1) == LUA_TSTRING && !sandbox_located(lua_tostring(L, -1))) {
		lua_pushfstring(L, "to '%s'", lua_tostring(L, lua_upvalueindex(2)));
		luaL_gsub(L, lua_tostring(L, -2), "to '?'", lua_tostring(L, -1));
		luaL_where(L, 1);
		lua_insert(L, -2);
		lua_concat(L, 2);
	}
	return lua_error(L);
}

/* Pattern specials that repeat: each multiplies the worst-case backtracking. */
static unsigned pattern_repetitions(const char *p, size_t len, bool *special)
{
	unsigned reps = 0;
	bool in_set = false;

	*special = false;
	for (size_t i = 0; i < len; i++) {
		if (p[i] == '%') {
			i++;
			*special = true;
		} else if (in_set) {
			in_set = p[i] != ']';
		} else if (p[i] == '[') {
			in_set = *special = true;
			if (i + 1 < len && p[i + 1] == '^')
				i++;
			if (i + 1 < len && p[i + 1] == ']')
				i++;
		} else if (strchr("*+-?", p[i])) {
			reps++;
			*special = true;
		} else if (strchr("^$().", p[i])) {
			*special = true;
		}
	}
	return reps;
}

/* string.find/match/gmatch/gsub, refusing what could backtrack for long.
 * Upvalue 1 is the library's function. */
static int bounded_pattern(lua_State *L)
{
	size_t n, m;
	const char *s = luaL_checklstring(L, 1, &n), *p = luaL_checklstring(L, 2, &m);
	bool special, plain = lua_toboolean(L, lua_upvalueindex(3)) && lua_toboolean(L, 4);
	unsigned reps = pattern_repetitions(p, m, &special);

	(void)s;
	if (!plain && special && pow((double)n + 1, reps + 1.0) * ((double)m + 1) > PATTERN_STEPS_MAX)
		return luaL_error(L, "pattern of %d repetitions is too costly on a subject of %d "
				  "bytes: it could backtrack for long (use fewer, or a plain find)",
				  (int)reps, (int)(n > INT_MAX ? INT_MAX : n));
	return call_library(L);
}

/* string.name becomes bounded_pattern around it; plain_arg: its 4th
 * argument can ask for a plain search (find). */
static void wrap_pattern(lua_State *L, const char *name, bool plain_arg)
{
	lua_getglobal(L, LUA_STRLIBNAME);
	lua_getfield(L, -1, name);
	lua_pushstring(L, name);
	lua_pushboolean(L, plain_arg);
	lua_pushcclosure(L, bounded_pattern, 3);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

/* Any library function: not started past the deadline. C code runs
 * outside the count hook, so this is where a long string of library calls
 * is stopped, one call late at most. */
static int timed_library(lua_State *L)
{
	struct sandbox *sb = sandbox_of(L);

	if (!sb->tripped && past_deadline(sb))
		trip(L, 1, "ran past its wall-clock bound of %llu ms",
		     (unsigned long long)(sb->wall_named_ns / 1000000));
	if (sb->tripped) {
		lua_pushstring(L, sb->why);
		return lua_error(L);
	}
	return call_library(L);
}

/* Every C function of the library table name goes through timed_library. */
static void time_library(lua_State *L, const char *name)
{
	lua_getglobal(L, name);
	lua_pushnil(L);
	while (lua_next(L, -2)) {
		if (lua_tocfunction(L, -1)) {
			lua_pushvalue(L, -2);
			lua_pushcclosure(L, timed_library, 2);
			lua_pushvalue(L, -2);
			lua_insert(L, -2);
			lua_rawset(L, -4);
		} else {
			lua_pop(L, 1);
		}
	}
	lua_pop(L, 1);
}

/* string.rep: a loop in C, as long as the count even when the result is
 * empty (string.rep("", 1e15) never ends); the count is bounded by the
 * memory a state may have. */
static int bounded_rep(lua_State *L)
{
	size_t l, lsep = 0;
	lua_Integer n;

	luaL_checklstring(L, 1, &l);
	n = luaL_checkinteger(L, 2);
	luaL_optlstring(L, 3, "", &lsep);
	if (n > 0 && (double)n * (double)(l + lsep ? l + lsep : 1) > sandbox_of(L)->mem_limit)
		return luaL_error(L, "string.rep: memory limit exceeded (%I copies)", n);
	return call_library(L);
}

/* table.insert and table.remove shift #t elements in C: #t must be the
 * table's own length, not what a __len says (1e18). */
static int bounded_shift(lua_State *L)
{
	luaL_checktype(L, 1, LUA_TTABLE);
	if (luaL_getmetafield(L, 1, "__len") != LUA_TNIL)
		return luaL_error(L, "table.insert and table.remove take no table with __len");
	return call_library(L);
}

/* table.move(a1, f, e, t): a loop in C of e - f + 1 steps. */
static int bounded_move(lua_State *L)
{
	lua_Integer f = luaL_checkinteger(L, 2), e = luaL_checkinteger(L, 3);

	if (e >= f && (lua_Unsigned)e - (lua_Unsigned)f >= TABLE_MOVE_MAX)
		return luaL_error(L, "table.move: more than %d elements", TABLE_MOVE_MAX);
	return call_library(L);
}

/* t[name] becomes fn around it (its upvalue). */
static void wrap(lua_State *L, const char *table, const char *name, lua_CFunction fn)
{
	lua_getglobal(L, table);
	lua_getfield(L, -1, name);
	lua_pushstring(L, name);
	lua_pushcclosure(L, fn, 2);
	lua_setfield(L, -2, name);
	lua_pop(L, 1);
}

static void open_lib(lua_State *L, const char *name, lua_CFunction open)
{
	luaL_requiref(L, name, open, 1);
	lua_pop(L, 1);
}

static void remove_field(lua_State *L, const char *table, const char *field)
{
	if (table) {
		lua_getglobal(L, table);
		lua_pushnil(L);
		lua_setfield(L, -2, field);
		lua_pop(L, 1);
	} else {
		lua_pushnil(L);
		lua_setglobal(L, field);
	}
}

/* Never reached while every call into Lua is protected; says so if not. */
static int panic(lua_State *L)
{
	log_error("lua: unprotected error: %s", lua_tostring(L, -1) ? lua_tostring(L, -1) : "?");
	abort();
}

/* The libraries, inside a protected call: running out of memory here is
 * an error like any other. */
static int sandbox_setup(lua_State *L)
{
	static const char *const unsafe_base[] = {
		"dofile", "loadfile", "load", "collectgarbage", "print",
	};

	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
	for (size_t i = 0; i < sizeof(unsafe_base) / sizeof(unsafe_base[0]); i++)
		remove_field(L, NULL, unsafe_base[i]);
	remove_field(L, LUA_STRLIBNAME, "dump");
	time_library(L, LUA_STRLIBNAME);
	time_library(L, LUA_TABLIBNAME);
	time_library(L, LUA_UTF8LIBNAME);
	/* the one base function that walks a whole string (4 MiB of digits) */
	wrap(L, LUA_GNAME, "tonumber", timed_library);
	lua_pushcfunction(L, bounded_pcall);
	lua_setglobal(L, "pcall");
	lua_pushcfunction(L, bounded_xpcall);
	lua_setglobal(L, "xpcall");
	lua_getglobal(L, "setmetatable");
	lua_pushcclosure(L, bounded_setmetatable, 1);
	lua_setglobal(L, "setmetatable");
	wrap_pattern(L, "find", true);
	wrap_pattern(L, "match", false);
	wrap_pattern(L, "gmatch", false);
	wrap_pattern(L, "gsub", false);
	wrap(L, LUA_STRLIBNAME, "rep", bounded_rep);
	wrap(L, LUA_TABLIBNAME, "insert", bounded_shift);
	wrap(L, LUA_TABLIBNAME, "remove", bounded_shift);
	wrap(L, LUA_TABLIBNAME, "move", bounded_move);
	return 0;
}

lua_State *sandbox_new(size_t mem_limit)
{
	struct sandbox *sb = calloc(1, sizeof(*sb));
	lua_State *L;

	if (!sb)
		return NULL;
	sb->mem_limit = mem_limit;
	sb->call_limit = SIZE_MAX;
	L = lua_newstate(sandbox_alloc, sb);
	if (!L) {
		free(sb);
		return NULL;
	}
	*(struct sandbox **)lua_getextraspace(L) = sb;
	lua_atpanic(L, panic);
	lua_pushcfunction(L, sandbox_setup);
	if (lua_pcall(L, 0, 0, 0) != LUA_OK) {
		sandbox_free(L);
		errno = ENOMEM;
		return NULL;
	}
	return L;
}

void sandbox_free(lua_State *L)
{
	struct sandbox *sb;

	if (!L)
		return;
	sb = sandbox_of(L);
	lua_close(L);
	free(sb);
}

static int message_handler(lua_State *L)
{
	const char *msg = lua_type(L, 1) == LUA_TSTRING ? lua_tostring(L, 1) : NULL;

	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	luaL_traceback(L, L, msg, 1);
	log_debug("%s", lua_tostring(L, -1));
	lua_pop(L, 1);
	return 1;
}

void sandbox_rebound(lua_State *L, const struct sandbox_bounds *b)
{
	struct sandbox *sb = sandbox_of(L);

	sb->instructions_left = b->instructions;
	sb->call_limit = b->memory ? sb->mem_used + b->memory : SIZE_MAX;
	sb->wall_ns = b->wall_ns;
	sb->wall_named_ns = b->wall_named_ns ? b->wall_named_ns : b->wall_ns;
	sb->deadline = 0;
}

int sandbox_call(lua_State *L, int nargs, int nresults, const struct sandbox_bounds *b,
		 char *err, size_t errlen)
{
	struct sandbox *sb = sandbox_of(L);
	/* the traceback handler only logs at debug; without it the message is
	 * the same and the call cheaper (no stack rotation) */
	bool traceback = log_threshold >= LOG_DEBUG;
	int base = lua_gettop(L) - nargs, status;

	if (traceback) {
		lua_pushcfunction(L, message_handler);
		lua_insert(L, base);
	}
	sandbox_rebound(L, b);
	sb->tripped = false;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	status = lua_pcall(L, nargs, nresults, traceback ? base : 0);
	lua_sethook(L, NULL, 0, 0);
	sb->call_limit = SIZE_MAX;
	sb->wall_ns = 0;
	if (status != LUA_OK) {
		if (sb->tripped)
			snprintf(err, errlen, "%s", sb->why);
		else if (status == LUA_ERRMEM)
			snprintf(err, errlen, "memory limit exceeded");
		else if (lua_type(L, -1) == LUA_TSTRING)
			snprintf(err, errlen, "%s", lua_tostring(L, -1));
		else
			snprintf(err, errlen, "(error object is a %s value)", luaL_typename(L, -1));
		lua_pop(L, 1);
	}
	sb->tripped = false;
	if (traceback)
		lua_remove(L, base);
	return status;
}

#define JSON_DEPTH_MAX 32

static const char *skip_space(const char *p)
{
	while (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')
		p++;
	return p;
}

static void push_utf8(luaL_Buffer *b, unsigned long cp)
{
	if (cp < 0x80) {
		luaL_addchar(b, (char)cp);
	} else if (cp < 0x800) {
		luaL_addchar(b, (char)(0xc0 | cp >> 6));
		luaL_addchar(b, (char)(0x80 | (cp & 0x3f)));
	} else {
		luaL_addchar(b, (char)(0xe0 | cp >> 12));
		luaL_addchar(b, (char)(0x80 | (cp >> 6 & 0x3f)));
		luaL_addchar(b, (char)(0x80 | (cp & 0x3f)));
	}
}

/* A JSON string at p (after its opening quote): pushed, and the text after
 * its closing quote returned; NULL when malformed. */
static const char *json_string(lua_State *L, const char *p)
{
	luaL_Buffer b;

	luaL_buffinit(L, &b);
	for (; *p != '"'; p++) {
		if ((unsigned char)*p < 0x20)
			return NULL;
		if (*p != '\\') {
			luaL_addchar(&b, *p);
			continue;
		}
		switch (*++p) {
		case '"': case '\\': case '/': luaL_addchar(&b, *p); break;
		case 'b': luaL_addchar(&b, '\b'); break;
		case 'f': luaL_addchar(&b, '\f'); break;
		case 'n': luaL_addchar(&b, '\n'); break;
		case 'r': luaL_addchar(&b, '\r'); break;
		case 't': luaL_addchar(&b, '\t'); break;
		case 'u': {
			char hex[5] = { 0 };
			char *end;

			memcpy(hex, p + 1, 4);
			if (strlen(hex) != 4)
				return NULL;
			push_utf8(&b, strtoul(hex, &end, 16));
			if (*end)
				return NULL;
			p += 4;
			break;
		}
		default:
			return NULL;
		}
	}
	luaL_pushresult(&b);
	return p + 1;
}

static const char *json_value(lua_State *L, const char *p, int depth)
{
	p = skip_space(p);
	if (depth > JSON_DEPTH_MAX || !lua_checkstack(L, 3))
		return NULL;
	if (*p == '"')
		return json_string(L, p + 1);
	if (*p == '{' || *p == '[') {
		bool object = *p == '{';
		lua_Integer i = 1;

		lua_newtable(L);
		p = skip_space(p + 1);
		if (*p == (object ? '}' : ']'))
			return p + 1;
		for (;;) {
			if (object) {
				if (*p != '"' || !(p = json_string(L, p + 1)))
					return NULL;
				p = skip_space(p);
				if (*p++ != ':')
					return NULL;
			}
			if (!(p = json_value(L, p, depth + 1)))
				return NULL;
			if (object)
				lua_rawset(L, -3);
			else
				lua_rawseti(L, -2, i++);
			p = skip_space(p);
			if (*p == ',') {
				p = skip_space(p + 1);
				continue;
			}
			return *p == (object ? '}' : ']') ? p + 1 : NULL;
		}
	}
	if (!strncmp(p, "true", 4) || !strncmp(p, "false", 5)) {
		lua_pushboolean(L, *p == 't');
		return p + (*p == 't' ? 4 : 5);
	}
	if (!strncmp(p, "null", 4)) {
		lua_pushnil(L);
		return p + 4;
	}
	{
		char num[64];
		size_t n = strspn(p, "+-0123456789.eE");

		if (!n || n >= sizeof(num))
			return NULL;
		memcpy(num, p, n);
		num[n] = '\0';
		if (!lua_stringtonumber(L, num))
			return NULL;
		return p + n;
	}
}

int sandbox_push_json(lua_State *L, const char *json)
{
	int top = lua_gettop(L);
	const char *end = json_value(L, json, 0);

	if (!end || *skip_space(end)) {
		lua_settop(L, top);
		return -EINVAL;
	}
	return 0;
}
