/* The Lua state rules run in: safe libraries only, memory capped, every
 * call bounded in instructions and protected by a traceback handler. */
#ifndef REFLEX_DECIDE_SANDBOX_H
#define REFLEX_DECIDE_SANDBOX_H

#include <lua.h>
#include <stddef.h>

#define REFLEX_SANDBOX_MEM_LIMIT (32u << 20)
#define REFLEX_SANDBOX_INSTRUCTIONS 10000000L  /* loading a rule file */
#define REFLEX_SANDBOX_EVAL_INSTRUCTIONS 100000L /* one call of a rule function */
#define REFLEX_SANDBOX_EVAL_MEMORY (1u << 20)   /* what one call may add */

/* A new state with base (no load, dofile, loadfile, collectgarbage, print),
 * string (no dump), table, math and utf8. NULL when out of memory. */
lua_State *sandbox_new(size_t mem_limit);
void sandbox_free(lua_State *L);

/* lua_pcall with a budget of max_instructions VM instructions. On error
 * returns the Lua status and leaves the message (file:line: text) in err;
 * the stack is then as it was minus the function and its arguments. */
int sandbox_call(lua_State *L, int nargs, int nresults, long max_instructions,
		 char *err, size_t errlen);
/* Like sandbox_call, and the call may also grow the state by at most
 * max_memory bytes. */
int sandbox_call_bounded(lua_State *L, int nargs, int nresults, long max_instructions,
			 size_t max_memory, char *err, size_t errlen);
/* Inside a running sandbox call: gives what runs next a fresh budget of
 * instructions and of new memory, so one call can run several rule
 * functions, each with its own bounds. */
void sandbox_rebound(lua_State *L, long max_instructions, size_t max_memory);
/* Pushes the JSON text as a Lua value (objects and arrays as tables, null
 * as nil). 0, or -EINVAL with nothing pushed. */
int sandbox_push_json(lua_State *L, const char *json);

#endif
