#ifndef REFLEX_CORE_AUDIT_H
#define REFLEX_CORE_AUDIT_H

#include "core/config.h"

/* `reflexd audit`: prints the decisions cfg's filters select. */
int audit_main(struct config *cfg);

#endif
