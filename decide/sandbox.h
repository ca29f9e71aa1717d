/* The Lua state rules run in: safe libraries only, memory capped, every
 * call bounded in instructions and protected by a traceback handler. */
#ifndef REFLEX_DECIDE_SANDBOX_H
#define REFLEX_DECIDE_SANDBOX_H

#include <lua.h>
#include <stddef.h>

#define REFLEX_SANDBOX_MEM_LIMIT (32u << 20)
#define REFLEX_SANDBOX_INSTRUCTIONS 10000000L

/* A new state with base (no load, dofile, loadfile, collectgarbage, print),
 * string (no dump), table, math and utf8. NULL when out of memory. */
lua_State *sandbox_new(size_t mem_limit);
void sandbox_free(lua_State *L);

/* lua_pcall with a budget of max_instructions VM instructions. On error
 * returns the Lua status and leaves the message (file:line: text) in err;
 * the stack is then as it was minus the function and its arguments. */
int sandbox_call(lua_State *L, int nargs, int nresults, long max_instructions,
		 char *err, size_t errlen);

#endif
