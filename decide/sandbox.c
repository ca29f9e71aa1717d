#include <lauxlib.h>
#include <lualib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "core/log.h"
#include "decide/sandbox.h"

struct sandbox {
	size_t mem_used;
	size_t mem_limit;
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
	if (nsize > old && sb->mem_used + (nsize - old) > sb->mem_limit)
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
	int base = lua_gettop(L) - nargs, status;

	lua_pushcfunction(L, message_handler);
	lua_insert(L, base);
	sb->instructions_left = max_instructions;
	lua_sethook(L, count_hook, LUA_MASKCOUNT, HOOK_EVERY);
	status = lua_pcall(L, nargs, nresults, base);
	lua_sethook(L, NULL, 0, 0);
	if (status != LUA_OK) {
		snprintf(err, errlen, "%s", status == LUA_ERRMEM ? "memory limit exceeded"
				       : lua_tostring(L, -1) ? lua_tostring(L, -1) : "error");
		lua_pop(L, 1);
	}
	lua_remove(L, base);
	return status;
}
