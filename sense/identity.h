/* Process identity from /proc: who a pid is, and whether it is still them. */
#ifndef REFLEX_SENSE_IDENTITY_H
#define REFLEX_SENSE_IDENTITY_H

#include "sense/condition.h"

/* Fills t for pid: 0, or -ESRCH when it is gone. */
int identity_read(pid_t pid, struct target *t);
/* The start time of pid (field 22 of /proc/<pid>/stat): 0 or -errno. */
int identity_start_time(pid_t pid, uint64_t *start_time);

#endif
