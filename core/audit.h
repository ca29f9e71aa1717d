#ifndef REFLEX_CORE_AUDIT_H
#define REFLEX_CORE_AUDIT_H

#include "core/config.h"
#include "decide/decision.h"

/* One decision as one line of JSON: the audit's --json format. */
void audit_print_json(const struct decision *d);
/* `reflexd audit`: prints the decisions cfg's filters select. */
int audit_main(struct config *cfg);

#endif
