#ifndef REFLEX_CMD_AUDIT_H
#define REFLEX_CMD_AUDIT_H

#include "cmd/config.h"
#include "model/decision.h"

/* One decision as one line of JSON: the audit's --json format. */
void audit_print_json(const struct decision *d);
/* `reflexd audit`: prints the decisions cfg's filters select. */
int audit_main(struct config *cfg);

#endif
