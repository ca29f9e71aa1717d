/* The pods on this node: the part of a process's identity its cgroup does
 * not carry (pod name, namespace, labels, container names, owner). The
 * Kubernetes pod watch (k8s/watch.c) keeps it; identity looks targets up
 * in it by the pod uid their cgroup names. */
#ifndef REFLEX_SENSE_PODS_H
#define REFLEX_SENSE_PODS_H

#include <stdbool.h>
#include <stddef.h>

#include "model/condition.h"

#define POD_CONTAINERS_MAX 16

struct pod_container {
	char id[72];
	char name[64];
};

struct pod {
	char uid[40];
	char mirror[40];  /* a static pod: the config hash its cgroup is named by */
	char namespace[64];
	char name[128];
	char labels[512];
	char owner_kind[32], owner_name[128];
	char template_hash[32];
	struct pod_container containers[POD_CONTAINERS_MAX];
	size_t ncontainers;
};

struct pods;

/* An empty cache: NULL and errno when out of memory. */
struct pods *pods_new(void);
void pods_free(struct pods *c);

/* Replaces every pod with v[0..n) (a fresh list), which it takes. */
void pods_replace(struct pods *c, struct pod *v, size_t n);
/* Adds p, or replaces the pod of its uid: 0, or -ENOMEM. */
int pods_put(struct pods *c, const struct pod *p);
/* Forgets the pod of uid, if known. */
void pods_delete(struct pods *c, const char *uid);
size_t pods_count(const struct pods *c);

/* The pod of uid, a pod's own or, for a static pod, its mirror's config
 * hash (what the kubelet names its cgroup by): NULL when not known. */
const struct pod *pods_find(const struct pods *c, const char *uid);

/* The pod of t (from t->pod_uid, and t->container_id for the container's
 * name) filled in: true when known. */
bool pods_resolve(const struct pods *c, struct target *t);

#endif
