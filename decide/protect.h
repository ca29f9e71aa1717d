/* Protected targets: processes no rule can touch, in any mode. */
#ifndef REFLEX_DECIDE_PROTECT_H
#define REFLEX_DECIDE_PROTECT_H

#include "decide/rules.h"

struct protect {
	pid_t self;    /* reflexd's own pid (0 in the simulator) */
	char self_pod_uid[40]; /* reflexd's own pod, when it runs in one */
	/* configured on top of the built-in list; labels are selectors,
	 * "key=value" or "key" (the pod has the label) */
	struct strlist comm, exe, cgroup, namespace, labels;
};

/* Why t is protected, written into buf, or NULL when it is not. */
const char *protect_reason(const struct protect *p, const struct target *t,
			   char *buf, size_t size);

#endif
