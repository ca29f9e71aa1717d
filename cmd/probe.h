/* What this host's kernel can run: the checks behind each BPF component's
 * needs (model/needs.h): libbpf's probing API and, the authority, loading
 * the component's own BPF objects (then unloading them). */
#ifndef REFLEX_CMD_PROBE_H
#define REFLEX_CMD_PROBE_H

#include <stdbool.h>
#include <stddef.h>
#include <bpf/libbpf.h>

#include "cmd/config.h"
#include "model/needs.h"

/* Opens and loads every object of n, attaching nothing, then unloads
 * them: 0 or -errno (libbpf says why: capture it, below). */
int probe_load(const struct kernel_needs *n);

/* While capturing, libbpf's first warning (and the verifier's last line
 * when it prints a log) is kept in why as well as logged as usual.
 * Captures do not nest. */
void probe_capture_begin(char *why, size_t size);
void probe_capture_end(void);

/* The test hook: REFLEX_TEST_FAIL_SENSORS=leak,traffic makes the sensors
 * and actuators it names fail to start, as an old kernel would, so tests
 * can show what a degraded daemon does. Read here and nowhere else.
 * When name is forced down, why gets the reason and it returns true. */
bool probe_forced_down(const char *name, char *why, size_t size);
#define REFLEX_TEST_FAIL_ENV "REFLEX_TEST_FAIL_SENSORS"

/* An actuator: what its actions (name, name.*) need, and whether this
 * host has it. check is for the needs that are not BPF (NULL: none);
 * 0, or -errno with the reason in why. */
struct actuator {
	const char *name;
	const char *needs;
	const struct kernel_needs *bpf;  /* NULL: no BPF */
	int (*check)(const struct config *cfg, char *why, size_t size);
};

#define REFLEX_ACTUATORS_MAX 4

extern const struct actuator actuators[];
extern const size_t actuators_count;
/* The actuator an action (signal, traffic.shift, k8s.evict_pod) runs on. */
const struct actuator *actuator_of(const char *action);

/* `reflexd probe [--json]`: the capability matrix of this host. Always 0
 * (it is a report) unless it cannot write it. */
int probe_main(const struct config *cfg);

#endif
