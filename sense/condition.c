#include <errno.h>
#include <string.h>

#include "sense/condition.h"

static const char *const kind_names[REFLEX_COND_KIND_COUNT] = {
	[REFLEX_COND_DEADLOCK] = "deadlock",
	[REFLEX_COND_STALL] = "stall",
};

const char *condition_kind_name(enum condition_kind kind)
{
	/* "-": a record about no condition (a rules reload) */
	return kind < REFLEX_COND_KIND_COUNT ? kind_names[kind] : "-";
}

int condition_kind_parse(const char *name)
{
	for (int k = 0; k < REFLEX_COND_KIND_COUNT; k++)
		if (strcmp(name, kind_names[k]) == 0)
			return k;
	return -ENOENT;
}
