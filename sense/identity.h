/* Process identity from /proc: who a pid is, and whether it is still them. */
#ifndef REFLEX_SENSE_IDENTITY_H
#define REFLEX_SENSE_IDENTITY_H

#include "model/condition.h"

/* Fills t for pid: 0, or -ESRCH when it is gone. */
int identity_read(pid_t pid, struct target *t);
/* The container id (64 hex) and Kubernetes pod uid in a cgroup path, for
 * both cgroup drivers (systemd slices, cgroupfs) and the containerd,
 * CRI-O and Docker namings; "" for what the path does not say. */
void identity_parse_cgroup(const char *path, char container_id[72], char pod_uid[40]);
/* The start time of pid (field 22 of /proc/<pid>/stat): 0 or -errno. */
int identity_start_time(pid_t pid, uint64_t *start_time);

#endif
