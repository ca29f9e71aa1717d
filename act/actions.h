/* The actions as the rule language knows them (act/actions.c): each
 * one's name, parameter table and record, and the params structs their
 * runtimes (act/signal.c, act/traffic.c, act/k8s.c) read. This side links
 * without the runtimes: the rule fuzzers take only it. */
#ifndef REFLEX_ACT_ACTIONS_H
#define REFLEX_ACT_ACTIONS_H

#include <stdbool.h>
#include <stdint.h>

#include "act/act.h"

#define SIGNAL_DEFAULT_GRACE (5 * NSEC_PER_SEC)

struct signal_params {
	int sig;
	int followup_sig;     /* 0: one step */
	uint64_t grace_ns;
};

/* ops->variant of the k8s.* actions, which share their runtime */
enum act_k8s_verb {
	ACT_K8S_RESTART, ACT_K8S_EVICT, ACT_K8S_CORDON, ACT_K8S_SCALE, ACT_K8S_LABEL, ACT_K8S_ANNOTATE,
};

struct k8s_params {
	bool has_grace;
	uint64_t grace_ns;
	int replicas;
	char pairs[200];   /* label/annotate: "key=value\n"... */
};

#define TRAFFIC_SERVICE_NAME_MAX 32
#define TRAFFIC_ENDPOINT_MAX 24   /* "255.255.255.255:65535" */

struct traffic_params {
	char service[TRAFFIC_SERVICE_NAME_MAX];
	bool drain;
	/* a remote backend, "10.1.0.5:8080"; empty: the condition's target */
	char away_from[TRAFFIC_ENDPOINT_MAX];
};

/* The "key=value\n" pairs of k8s.label and k8s.annotate as JSON object
 * members, appended to b (which ends in '{' or a member). */
void act_k8s_pairs_json(const char *pairs, struct sbuf *b);
/* "10.1.0.5:8080" (len bytes of s) into addr and port: 0, or -EINVAL
 * (act/traffic_backends.c). */
int traffic_endpoint_parse(const char *s, size_t len, uint32_t *addr, uint16_t *port);

#endif
