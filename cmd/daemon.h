#ifndef REFLEX_CMD_DAEMON_H
#define REFLEX_CMD_DAEMON_H

#include "cmd/config.h"

/* `reflexd run`: senses, decides and acts until SIGTERM or SIGINT; SIGHUP
 * reloads rules and reloadable options. argc/argv are the run options, kept
 * to read them again on reload. Returns the exit status. */
int daemon_run(struct config *cfg, int argc, char **argv);

#endif
