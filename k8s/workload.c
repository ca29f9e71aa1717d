/* What a pod action needs to know of a pod: whether it is static, and
 * its workload (the owner a budget counts and a scale-down patches). */
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "k8s/client.h"

static const struct pod *find_pod(const struct k8s_client *k, const char *uid)
{
	return pods_find(k->pods, uid);
}

bool k8s_resolve(struct k8s_client *k, struct target *t)
{
	return pods_resolve(k->pods, t);
}

bool k8s_static_pod(struct k8s_client *k, const struct target *t)
{
	const struct pod *p = find_pod(k, t->pod_uid);

	return p && !strcmp(p->mirror, t->pod_uid);
}

/* A ReplicaSet made by a Deployment is named "<deployment>-<pod-template-hash>". */
static bool deployment_of(const struct pod *p, char *name, size_t size)
{
	size_t n = strlen(p->owner_name), h = strlen(p->template_hash);

	if (strcmp(p->owner_kind, "ReplicaSet") || !h || n <= h + 1 ||
	    strcmp(p->owner_name + n - h, p->template_hash) || p->owner_name[n - h - 1] != '-')
		return false;
	snprintf(name, size, "%.*s", (int)(n - h - 1), p->owner_name);
	return true;
}

void k8s_workload(struct k8s_client *k, const struct target *t, char *buf, size_t size)
{
	const struct pod *p = find_pod(k, t->pod_uid);
	char name[128];

	if (p && deployment_of(p, name, sizeof(name)))
		snprintf(buf, size, "%s/Deployment/%s", p->namespace, name);
	else if (p && p->owner_kind[0])
		snprintf(buf, size, "%s/%s/%s", p->namespace, p->owner_kind, p->owner_name);
	else
		snprintf(buf, size, "%s/Pod/%s", t->namespace, t->pod);
}

int k8s_scale_path(struct k8s_client *k, const struct target *t, enum k8s_call *call,
		   char *path, size_t size)
{
	const struct pod *p = find_pod(k, t->pod_uid);
	char name[128];

	if (p && deployment_of(p, name, sizeof(name))) {
		*call = K8S_PATCH_DEPLOYMENT_SCALE;
		snprintf(path, size, "/apis/apps/v1/namespaces/%s/deployments/%s/scale", p->namespace, name);
		return 0;
	}
	if (p && !strcmp(p->owner_kind, "StatefulSet")) {
		*call = K8S_PATCH_STATEFULSET_SCALE;
		snprintf(path, size, "/apis/apps/v1/namespaces/%s/statefulsets/%s/scale", p->namespace,
			 p->owner_name);
		return 0;
	}
	return -ENOENT;
}

