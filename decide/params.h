/* An action's parameters, read from the rule language: the Lua table a
 * constructor like signal { ... } copied, against the actuator's
 * declarative table (struct act_param, act/act.h). The one place that
 * knows both Lua and an actuator's parameters. */
#ifndef REFLEX_DECIDE_PARAMS_H
#define REFLEX_DECIDE_PARAMS_H

#include <stddef.h>

#include <lua.h>

#include "act/act.h"

/* Reads the table at idx into params (ops->params_size bytes, zeroed,
 * then each parameter's default) and runs ops->check: 0, or -EINVAL with
 * the reason in err, naming the action and the parameter ("signal: grace
 * must be a duration like \"5s\", not number"). The table is the
 * constructor's raw copy: no rule code runs while it is read. */
int params_read(lua_State *L, int idx, const struct act_ops *ops, void *params,
		char *err, size_t errlen);

#endif
