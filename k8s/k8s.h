/* The Kubernetes API client: credentials (in-cluster service account or a
 * kubeconfig), requests on lib/http.h with bounded retries, Status
 * replies read for their meaning, the watch that keeps the cache of the
 * pods on this node (sense/pods.h), and the cluster-wide budget kept in a
 * Lease. Everything is asynchronous on the daemon's loop. */
#ifndef REFLEX_K8S_K8S_H
#define REFLEX_K8S_K8S_H

#include <ev.h>
#include <stdbool.h>
#include <stdint.h>

#include "lib/json.h"
#include "lib/util.h"
#include "model/condition.h"

/* Every API call reflexd makes. The table in k8s/k8s.c gives each its
 * RBAC verb and resource: the RBAC hints and the check of deploy/reflexd.yaml
 * (tests/k8s/check_deploy.py) read that same table. */
enum k8s_call {
	K8S_LIST_PODS,
	K8S_WATCH_PODS,
	K8S_DELETE_POD,
	K8S_EVICT_POD,
	K8S_PATCH_POD,
	K8S_PATCH_NODE,
	K8S_PATCH_DEPLOYMENT_SCALE,
	K8S_PATCH_STATEFULSET_SCALE,
	K8S_CREATE_EVENT,
	K8S_GET_LEASE,
	K8S_CREATE_LEASE,
	K8S_UPDATE_LEASE,
	K8S_CALL_COUNT,
};

struct k8s_call_def {
	const char *verb;      /* RBAC verb */
	const char *group;     /* API group, "" for core */
	const char *resource;  /* with its subresource: "pods/eviction" */
};

extern const struct k8s_call_def k8s_calls[K8S_CALL_COUNT];

struct k8s_options {
	const char *kubeconfig;     /* NULL: in-cluster */
	const char *sa_dir;         /* the service account's token, ca.crt, namespace */
	const char *node;           /* this node's name */
	const char *namespace;      /* where the budget Lease lives; NULL: ours */
	uint64_t timeout_ns;        /* one attempt */
	unsigned retries;           /* more attempts after a 429, 5xx or timeout */
	uint64_t refresh_ns;        /* a pod watch lasts this to twice this, then resumes */
	unsigned budget_max;        /* pod disruptions per workload ... */
	uint64_t budget_window_ns;  /* ... across the cluster, per window; 0 max: no budget */
};

/* The outcome of one call, after its retries. */
struct k8s_reply {
	long status;           /* HTTP status, 0 when no answer came */
	const char *body;
	size_t body_len;
	struct json_val json;  /* the body, when it is JSON (else type NONE) */
	/* from a Status body (or the transport error): reason ("NotFound",
	 * "Conflict", "TooManyRequests"...) and message; "" when none */
	char reason[64];
	char message[256];
	unsigned attempts;
};

/* A reply's meaning in words for a decision record: "409 Conflict: ...",
 * "403 Forbidden: ... (RBAC: reflexd's ClusterRole needs verb 'delete' on
 * 'pods')", "no answer after 3 attempts: ...". */
void k8s_reply_explain(const struct k8s_reply *r, enum k8s_call call, char *buf, size_t size);

/* A PodDisruptionBudget's refusal of an eviction: 429 with a Status
 * whose details name the DisruptionBudget cause (its message into why).
 * Not retried. */
bool k8s_reply_pdb(const struct k8s_reply *r, char *why, size_t size);

typedef void (*k8s_done_fn)(void *ctx, const struct k8s_reply *r);

struct k8s_client;
struct k8s_request;

/* Whether reflexd is to act on Kubernetes: in a cluster (the
 * KUBERNETES_SERVICE_HOST a pod is given) or given a kubeconfig. The daemon
 * starts a client then, and `reflexd probe` says the actuator is there;
 * bad credentials are k8s_new's to find. */
bool k8s_configured(const char *kubeconfig);
#define K8S_NOT_CONFIGURED "not in a cluster and no --kubeconfig"

/* Reads the credentials (NULL and the reason in err when there are none
 * or they are bad) and starts the pod list. An error buffer rather than
 * errno: the reason names the kubeconfig's file and line, the context or
 * the exec plugin at fault. */
struct k8s_client *k8s_new(struct ev_loop *loop, const struct k8s_options *o, char *err, size_t errlen);
void k8s_free(struct k8s_client *k);
const char *k8s_node(const struct k8s_client *k);

/* Starts call on path (from the server's root, query included) with a JSON
 * body or NULL; done runs later, once, on the loop, unless the request is
 * cancelled. 429 (honouring Retry-After), 5xx and timeouts are retried up
 * to the configured count with growing pauses; anything else is final.
 * NULL (and errno) when it cannot start. */
struct k8s_request *k8s_send(struct k8s_client *k, enum k8s_call call, const char *path,
			     const char *content_type, const char *body, k8s_done_fn done, void *ctx);
/* done will not run. */
void k8s_cancel(struct k8s_request *req);

/* The pod of t (from t->pod_uid, and t->container_id for the container's
 * name) filled in from the cache of this node's pods (sense/pods.h;
 * listed once, then kept by the watch): true when known. */
bool k8s_resolve(struct k8s_client *k, struct target *t);

/* t's pod is a static pod (a kubelet manifest): the API server only has
 * its mirror, which it can neither restart nor evict. */
bool k8s_static_pod(struct k8s_client *k, const struct target *t);

/* The workload t's pod belongs to, "namespace/Kind/name" (a ReplicaSet's
 * Deployment, named without the pod-template-hash), or the pod itself. */
void k8s_workload(struct k8s_client *k, const struct target *t, char *buf, size_t size);
/* The pod's workload controller for the scale subresource: 0 and the
 * call and path, or -ENOENT (a bare pod, a DaemonSet, a Job). */
int k8s_scale_path(struct k8s_client *k, const struct target *t, enum k8s_call *call,
		   char *path, size_t size);

/* Takes one disruption of workload from the cluster-wide budget: done
 * gets ok (taken), or not and why in words (exhausted, or the API could
 * not be reached: fail closed). done runs later, never from inside;
 * NULL when it cannot start. */
typedef void (*k8s_budget_fn)(void *ctx, bool ok, const char *why);
struct k8s_budget_op;
struct k8s_budget_op *k8s_budget_take(struct k8s_client *k, const char *workload,
				      k8s_budget_fn done, void *ctx);
/* done will not run. */
void k8s_budget_cancel(struct k8s_budget_op *op);

/* What the client has done so far: for /metrics and the fleet simulation. */
struct k8s_stats {
	uint64_t calls[K8S_CALL_COUNT];  /* requests started (retries not counted) */
	uint64_t events;                 /* watch events read */
	uint64_t gone;                   /* watches ended by 410 Gone */
	uint64_t broken;                 /* watches that broke or could not start */
	uint64_t conflicts;              /* budget Lease writes refused with 409 */
	size_t pods;                     /* pods known now */
	bool synced;                     /* listed, and watched from there */
};
const struct k8s_stats *k8s_stats(struct k8s_client *k);

/* Posts an Event on the object (kind "Pod" or "Node"), fire and forget
 * apart from done (may be NULL). */
struct k8s_request *k8s_event(struct k8s_client *k, const char *kind, const char *namespace,
			      const char *name, const char *uid, const char *reason,
			      const char *message, k8s_done_fn done, void *ctx);

#endif
