/* Arming: a rule that the kernel itself carries out (the memory reflex,
 * docs/reflex.md). The sensor watches processes and writes the kernel's
 * map; which rule, if any, arms a process is decide's choice, and reaches
 * the sensor through this policy in its environment (sense/sensor.h). A
 * sensor never works out dry-run, the kill switch or the guards itself. */
#ifndef REFLEX_MODEL_ARMING_H
#define REFLEX_MODEL_ARMING_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/condition.h"
#include "model/decision.h"

/* What a process is armed with: the rule's part that a record needs is
 * copied, so a crossing reported after a reload is still recorded. */
struct arming {
	uint64_t threshold;
	bool in_kernel;          /* the kernel signals by itself */
	bool dry_run;            /* ... or only reports that it would have */
	int signal;
	char signal_name[16];
	char rule[128];
	char file[256];
	char hash[65];
	char json[256];
	uint64_t cooldown_ns;
};

struct arming_policy {
	void *ctx;
	/* Changes whenever the arming may change (the rules reloaded, dry-run
	 * or the kill switch turned): the sensor walks again at once. Read
	 * once a walk, before it. */
	uint64_t (*generation)(void *ctx);
	/* Whether any rule arms processes at all; whether one could arm a
	 * process of this comm (one small read rules most processes out). */
	bool (*any)(void *ctx);
	bool (*comm_may_match)(void *ctx, const char *comm);
	/* The rule that arms t now, into a: false when none does (none
	 * matches, t is protected, or the guards refuse every in_kernel one). */
	bool (*choose)(void *ctx, const struct target *t, uint64_t now, struct arming *a);
	/* After the kernel acted: whether the guards now refuse an in_kernel
	 * arming of t (a budget just ran out; or its rule is gone), why in why. */
	bool (*refuses)(void *ctx, const struct arming *a, const struct target *t, uint64_t now,
			char *why, size_t size);
	/* Records what the kernel did about c under a: outcome and detail. */
	void (*record)(void *ctx, const struct condition *c, const struct arming *a,
		       enum decision_outcome outcome, const char *detail);
};

#endif
