/* Traffic shift (act/traffic.c): what the rest of reflexd needs to know
 * of it; the actions open and close their steering through their ops
 * (act/act.h). */
#ifndef REFLEX_ACT_TRAFFIC_H
#define REFLEX_ACT_TRAFFIC_H

#include <stddef.h>

#include "model/needs.h"
#include "lib/util.h"

/* Where the steering program stays attached while reflexd is away. */
#define REFLEX_TRAFFIC_PIN "/sys/fs/bpf/reflexd-traffic"

/* Checks one --service value, NAME=PORT:BACKEND_PORT[,BACKEND_PORT...]:
 * 0, or -EINVAL with the reason in err. */
int traffic_service_check(const char *spec, char *err, size_t errlen);
/* What the steering programs need from the kernel (model/needs.h). */
extern const struct kernel_needs traffic_needs;

#endif
