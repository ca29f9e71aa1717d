#include <errno.h>
#include <lauxlib.h>
#include <stdbool.h>
#include <stdint.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "decide/sandbox.h"

struct sandbox {
	size_t mem_used;
	size_t mem_limit;
	size_t call_limit;   /* during a bounded call: mem_used at its start + its share */
	long instructions_left;
};

#define HOOK_EVERY 1000

static struct sandbox *sandbox_of(lua_State *L)
{
	return *(struct sandbox **)lua_getextraspace(L);
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
	if (nsize > old && (sb->mem_used + (nsize - old) > sb->mem_limit ||
			    sb->mem_used + (nsize - old) > sb->call_limit))
		return NULL;
	ptr = realloc(ptr, nsize);
	if (ptr)
		sb->mem_used = sb->mem_used - old + nsize;
	return ptr;
}

static void count_hook(lua_State *L, lua_Debug *ar)
{
	struct sandbox *sb = sandbox_of(L);

	lua_Debug where;

	(void)ar;
	sb->instructions_left -= HOOK_EVERY;
	if (sb->instructions_left >= 0)
		return;
	/* level 0 is the Lua function running when the hook fired */
	if (lua_getstack(L, 0, &where) && lua_getinfo(L, "Sl", &where) && where.currentline > 0)
		lua_pushfstring(L, "%s:%d: instruction budget exceeded", where.short_src,
				where.currentline);
	else
		lua_pushstring(L, "instruction budget exceeded");
	lua_error(L);
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

lua_State *sandbox_new(size_t mem_limit)
{
	static const char *const unsafe_base[] = {
		"dofile", "loadfile", "load", "collectgarbage", "print",
	};
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
	open_lib(L, LUA_GNAME, luaopen_base);
	open_lib(L, LUA_TABLIBNAME, luaopen_table);
	open_lib(L, LUA_STRLIBNAME, luaopen_string);
	open_lib(L, LUA_MATHLIBNAME, luaopen_math);
	open_lib(L, LUA_UTF8LIBNAME, luaopen_utf8);
	for (size_t i = 0; i < sizeof(unsafe_base) / sizeof(unsafe_base[0]); i++)
		remove_field(L, NULL, unsafe_base[i]);
	remove_field(L, LUA_STRLIBNAME, "dump");
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
	const char *msg = lua_tostring(L, 1);

	if (!msg)
		msg = lua_pushfstring(L, "(error object is a %s value)", luaL_typename(L, 1));
	if (log_threshold >= LOG_DEBUG) {
		luaL_traceback(L, L, msg, 1);
		log_debug("%s", lua_tostring(L, -1));
		lua_pop(L, 1);
	}
	return 1;
}

int sandbox_call(lua_State *L, int nargs, int nresults, long max_instructions,
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
	sb->instructions_left = max_instructions;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	status = lua_pcall(L, nargs, nresults, traceback ? base : 0);
	lua_sethook(L, NULL, 0, 0);
	if (status != LUA_OK) {
		snprintf(err, errlen, "%s", status == LUA_ERRMEM ? "memory limit exceeded"
				       : lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
		lua_pop(L, 1);
	}
	if (traceback)
		lua_remove(L, base);
	return status;
}

void sandbox_rebound(lua_State *L, long max_instructions, size_t max_memory)
{
	struct sandbox *sb = sandbox_of(L);

	sb->instructions_left = max_instructions;
	sb->call_limit = sb->mem_used + max_memory;
}

int sandbox_call_bounded(lua_State *L, int nargs, int nresults, long max_instructions,
			 size_t max_memory, char *err, size_t errlen)
{
	struct sandbox *sb = sandbox_of(L);
	int status;

	sb->call_limit = sb->mem_used + max_memory;
	status = sandbox_call(L, nargs, nresults, max_instructions, err, errlen);
	sb->call_limit = SIZE_MAX;
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
