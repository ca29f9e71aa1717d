#ifndef REFLEX_CMD_SIMULATE_H
#define REFLEX_CMD_SIMULATE_H

#include "cmd/config.h"

/* `reflexd simulate`: replays cfg->trace through cfg->rules with the
 * daemon's engine in virtual time and prints the decisions. Offline,
 * unprivileged, deterministic. Returns the exit status. */
int simulate_main(struct config *cfg);
/* `reflexd test DIR...`: each DIR's rules against its NAME.test.trace
 * files, compared with NAME.test.expect (docs/trace.md). */
int test_main(struct config *cfg);

#endif
