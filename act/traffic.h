/* Traffic shift (act/traffic.c): the services declared with --service,
 * the steering program that serves their ports, and the traffic.shift and
 * traffic.restore actions that move new connections off a sick instance
 * and back. */
#ifndef REFLEX_ACT_TRAFFIC_H
#define REFLEX_ACT_TRAFFIC_H

#include <ev.h>
#include <stddef.h>

#include "record/journal.h"
#include "model/needs.h"
#include "lib/util.h"

/* Where the steering program stays attached while reflexd is away. */
#define REFLEX_TRAFFIC_PIN "/sys/fs/bpf/reflexd-traffic"

/* Checks one --service value, NAME=PORT:BACKEND_PORT[,BACKEND_PORT...]:
 * 0, or -EINVAL with the reason in err. */
int traffic_service_check(const char *spec, char *err, size_t errlen);
/* Attaches the steering program for the services (each a --service value)
 * to this network namespace and finds their backends' listeners; with no
 * services, removes a steering program a previous run left. 0 or -errno,
 * logged. */
int traffic_open(struct ev_loop *loop, const struct strlist *services);
/* Undoes every shift (all backends get new connections again), each with
 * a record in journal (when given), and lets go; the steering program
 * stays pinned at REFLEX_TRAFFIC_PIN, so the service ports keep being
 * served while reflexd is away. */
void traffic_close(struct journal *journal, const char *host);

/* What the steering programs need from the kernel (model/needs.h). */
extern const struct kernel_needs traffic_needs;

#endif
