/* The Lua state rules run in: safe libraries only, memory capped, every
 * call bounded in instructions, memory and wall-clock time, and protected
 * by a traceback handler. One state per rule file (docs/rules.md). */
#ifndef REFLEX_DECIDE_SANDBOX_H
#define REFLEX_DECIDE_SANDBOX_H

#include <lua.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define REFLEX_SANDBOX_MEM_LIMIT (32u << 20)            /* per rule file */
/* loading a rule file, and all of them together (the daemon's loop waits
 * for a reload); the fuzzers build with less, to try more inputs */
#ifndef REFLEX_SANDBOX_INSTRUCTIONS
#define REFLEX_SANDBOX_INSTRUCTIONS 10000000L
#endif
#ifndef REFLEX_SANDBOX_LOAD_WALL_NS
#define REFLEX_SANDBOX_LOAD_WALL_NS (1000ull * 1000000)
#endif
#define REFLEX_SANDBOX_EVAL_INSTRUCTIONS 100000L         /* one call of a rule function */
#define REFLEX_SANDBOX_EVAL_MEMORY (1u << 20)            /* what one call may add */
#define REFLEX_SANDBOX_EVAL_WALL_NS (50ull * 1000000)    /* one call of a rule function */

/* What one call may spend: VM instructions, new memory (0: up to the
 * state's limit) and wall-clock time; the error names the wall-clock bound
 * as wall_named_ns when set (what is left of a longer one, for loading). */
struct sandbox_bounds {
	long instructions;
	size_t memory;
	uint64_t wall_ns;
	uint64_t wall_named_ns;
};

/* A new state with base (no load, dofile, loadfile, collectgarbage, print;
 * pcall, xpcall and setmetatable replaced by bounded ones), string (no
 * dump; the pattern functions refuse work that could run long), table,
 * math and utf8. Everything is set up inside a protected call. NULL when
 * out of memory. */
lua_State *sandbox_new(size_t mem_limit);
void sandbox_free(lua_State *L);

/* Protected call of the function below nargs arguments, bounded by b. On
 * error returns the Lua status and leaves the message in err (file:line:
 * text when Lua knows where; an error object that is not a string is
 * named by its type, never converted by its own metamethods); the stack
 * is then as it was minus the function and its arguments. Once a bound is
 * hit, rule code cannot catch it: pcall and xpcall raise it again and the
 * hook keeps raising it until the call ends. */
int sandbox_call(lua_State *L, int nargs, int nresults, const struct sandbox_bounds *b,
		 char *err, size_t errlen);
/* Inside a running sandbox call: gives what runs next fresh bounds, so one
 * call can run several rule functions, each bounded on its own. */
void sandbox_rebound(lua_State *L, const struct sandbox_bounds *b);
/* Whether an error message says where, as Lua's "chunk:line: text". */
bool sandbox_located(const char *msg);
/* Pushes the JSON text as a Lua value (objects and arrays as tables, null
 * as nil). 0, or -EINVAL with nothing pushed. */
int sandbox_push_json(lua_State *L, const char *json);

#endif
