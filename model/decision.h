/* A decision record: what reflexd did or chose not to do, and why. The same
 * record goes to the journal (intent before the action, outcome after) and
 * to the audit. */
#ifndef REFLEX_MODEL_DECISION_H
#define REFLEX_MODEL_DECISION_H

#include "model/condition.h"

enum decision_mode {
	REFLEX_MODE_LIVE,
	REFLEX_MODE_DRY_RUN,
	REFLEX_MODE_SIMULATE,
};

enum decision_outcome {
	REFLEX_OUTCOME_PENDING,    /* intent written, action under way */
	REFLEX_OUTCOME_ACTED,
	REFLEX_OUTCOME_FAILED,
	REFLEX_OUTCOME_DRY_RUN,    /* would have acted */
	REFLEX_OUTCOME_SUPPRESSED, /* a guard said no: protected, cooldown */
	REFLEX_OUTCOME_UNKNOWN,    /* reflexd stopped between intent and outcome */
	REFLEX_OUTCOME_COUNT,
};

struct decision {
	char id[37];
	int64_t time_ns;         /* CLOCK_REALTIME of the decision */
	int64_t completed_ns;    /* when its outcome was journaled; 0 while pending */
	enum decision_mode mode;
	char host[64];
	char rule[128];
	char rule_file[256];
	char rule_hash[65];      /* sha256 of the rule file */
	uint64_t held_ns;        /* how long the condition had held */
	char action[32];
	char params[512];        /* JSON object */
	int rung;                /* 0: the rule's act; n: its n-th escalation */
	enum decision_outcome outcome;
	char detail[512];        /* what was done, the error, or why not */
	char verify[96];         /* "cleared after 1.2s", "not cleared within 10s", or "" */
	char explain[2048];      /* JSON: each rule, and why it did or did not decide */
	struct condition condition;
};

/* How the detail of the failed decision that disables a rule (its
 * function failed) begins; the exporter names that event by it. */
#define DECISION_RULE_DISABLED "rule disabled until the rules are reloaded: "

const char *decision_mode_name(enum decision_mode mode);
const char *decision_outcome_name(enum decision_outcome outcome);
int decision_outcome_parse(const char *name);
int decision_mode_parse(const char *name);

#endif
