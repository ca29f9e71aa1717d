#include <errno.h>
#include <string.h>

#include "model/decision.h"

static const char *const mode_names[] = {
	[REFLEX_MODE_LIVE] = "live",
	[REFLEX_MODE_DRY_RUN] = "dry-run",
	[REFLEX_MODE_SIMULATE] = "simulate",
};

static const char *const outcome_names[REFLEX_OUTCOME_COUNT] = {
	[REFLEX_OUTCOME_PENDING] = "pending",
	[REFLEX_OUTCOME_ACTED] = "acted",
	[REFLEX_OUTCOME_FAILED] = "failed",
	[REFLEX_OUTCOME_DRY_RUN] = "dry-run",
	[REFLEX_OUTCOME_SUPPRESSED] = "suppressed",
	[REFLEX_OUTCOME_UNKNOWN] = "unknown",
};

const char *decision_mode_name(enum decision_mode mode)
{
	return mode <= REFLEX_MODE_SIMULATE ? mode_names[mode] : "?";
}

const char *decision_outcome_name(enum decision_outcome outcome)
{
	return outcome < REFLEX_OUTCOME_COUNT ? outcome_names[outcome] : "?";
}

static int parse_name(const char *const *names, int n, const char *name)
{
	for (int i = 0; i < n; i++)
		if (strcmp(names[i], name) == 0)
			return i;
	return -ENOENT;
}

int decision_outcome_parse(const char *name)
{
	return parse_name(outcome_names, REFLEX_OUTCOME_COUNT, name);
}

int decision_mode_parse(const char *name)
{
	return parse_name(mode_names, REFLEX_MODE_SIMULATE + 1, name);
}
