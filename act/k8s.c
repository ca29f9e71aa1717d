/* Kubernetes actions, through the API server so the cluster knows what
 * happened and its controllers react:
 *   k8s.restart_pod { grace = "30s" }   DELETE with a uid precondition
 *   k8s.evict_pod { grace = "30s" }     the eviction subresource (PDBs apply)
 *   k8s.cordon_node { }                 spec.unschedulable on this node
 *   k8s.scale { replicas = 3 }          the scale subresource of the pod's workload
 *   k8s.label { key = "value" }         quarantine marks on the pod
 *   k8s.annotate { key = "value" }
 * (their parameters: act/actions.c). Pod restarts and evictions first take
 * a unit of the cluster-wide budget (a Lease shared by every node). Every
 * action that touched an object posts an Event on it. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/actions.h"
#include "k8s/k8s.h"

struct k8s_state {
	struct k8s_request *req;
	enum k8s_call call;
	struct k8s_budget_op *budget;
	char done_text[300];   /* what the call did, before the Event is posted */
	char event_kind[16], event_ns[64], event_name[128], event_uid[40];
};

static void k8s_release(struct act_run *run)
{
	struct k8s_state *s = run->state;

	k8s_cancel(s->req);
	k8s_budget_cancel(s->budget);
	free(s);
	run->state = NULL;
}

static void event_posted(void *ctx, const struct k8s_reply *r)
{
	struct act_run *run = ctx;
	struct k8s_state *s = run->state;
	char why[400];

	s->req = NULL;
	if (r->status == 201 || r->status == 200) {
		act_end(run, REFLEX_OUTCOME_ACTED, "%s; Event posted on %s %s", s->done_text,
		        s->event_kind, s->event_name);
		return;
	}
	k8s_reply_explain(r, K8S_CREATE_EVENT, why, sizeof(why));
	act_end(run, REFLEX_OUTCOME_ACTED, "%s; the Event could not be posted: %s", s->done_text, why);
}

/* The call succeeded: say so on the object, then record. */
static void post_event(struct act_run *run, const char *reason)
{
	struct k8s_state *s = run->state;
	const struct decision *d = &run->decision;
	char message[512];

	snprintf(message, sizeof(message), "reflexd %s: rule '%s' on %s (pid %d, %s): %s; decision %s",
		 run->ops->name, d->rule,
		 condition_kind_name(d->condition.kind), d->condition.target.pid,
		 d->condition.target.comm, d->condition.summary, d->id);
	s->req = k8s_event(run->actuator, s->event_kind, s->event_ns, s->event_name, s->event_uid, reason,
			   message, event_posted, run);
	if (!s->req)
		act_end(run, REFLEX_OUTCOME_ACTED, "%s; the Event could not be posted: %s", s->done_text,
		        strerror(errno));
}

/* A Status body that says Failure, whatever the code. */
static bool status_failure(const struct k8s_reply *r)
{
	struct json_val v;

	return json_get(&r->json, "kind", &v) == 0 && json_str_eq(&v, "Status") &&
	       json_get(&r->json, "status", &v) == 0 && json_str_eq(&v, "Failure");
}

static void call_done(void *ctx, const struct k8s_reply *r)
{
	struct act_run *run = ctx;
	enum act_k8s_verb op = run->ops->variant;
	struct k8s_state *s = run->state;
	const struct k8s_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	static const char *const reasons[] = {
		[ACT_K8S_RESTART] = "ReflexdRestartPod", [ACT_K8S_EVICT] = "ReflexdEvictPod",
		[ACT_K8S_CORDON] = "ReflexdCordonNode", [ACT_K8S_SCALE] = "ReflexdScale",
		[ACT_K8S_LABEL] = "ReflexdLabel", [ACT_K8S_ANNOTATE] = "ReflexdAnnotate",
	};
	char why[400], pdb[200];

	s->req = NULL;
	if (r->status >= 200 && r->status < 300 && !status_failure(r)) {
		/* the node's and the workload's uid come back in the reply */
		if (!s->event_uid[0])
			json_get_str(&r->json, "metadata.uid", s->event_uid, sizeof(s->event_uid));
		switch (op) {
		case ACT_K8S_RESTART:
			snprintf(s->done_text, sizeof(s->done_text), "pod %s/%s deleted", t->namespace, t->pod);
			break;
		case ACT_K8S_EVICT:
			snprintf(s->done_text, sizeof(s->done_text), "pod %s/%s evicted", t->namespace, t->pod);
			break;
		case ACT_K8S_CORDON:
			snprintf(s->done_text, sizeof(s->done_text), "node %s cordoned", s->event_name);
			break;
		case ACT_K8S_SCALE:
			snprintf(s->done_text, sizeof(s->done_text), "%s %s/%s scaled to %d", s->event_kind,
				 s->event_ns, s->event_name, p->replicas);
			break;
		default:
			snprintf(s->done_text, sizeof(s->done_text), "pod %s/%s %s", t->namespace, t->pod,
				 op == ACT_K8S_LABEL ? "labelled" : "annotated");
		}
		post_event(run, reasons[op]);
		return;
	}
	k8s_reply_explain(r, s->call, why, sizeof(why));
	if (op == ACT_K8S_EVICT && k8s_reply_pdb(r, pdb, sizeof(pdb)))
		act_end(run, REFLEX_OUTCOME_SUPPRESSED, "blocked by PodDisruptionBudget: %s%s%s",
		        r->message, r->message[0] && pdb[0] ? " " : "", pdb);
	else if (r->status == 404)
		act_end(run, REFLEX_OUTCOME_FAILED, "already gone: %s", why);
	else if (r->status == 409 && (op == ACT_K8S_RESTART || op == ACT_K8S_EVICT))
		act_end(run, REFLEX_OUTCOME_FAILED, "the pod was replaced since the condition began "
		        "(uid precondition failed), nothing deleted: %s", why);
	else
		act_end(run, REFLEX_OUTCOME_FAILED, "%s", why);
}

static void send_call(struct act_run *run)
{
	enum act_k8s_verb op = run->ops->variant;
	struct k8s_state *s = run->state;
	const struct k8s_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	char path[512], body[1024];
	const char *type = "application/json";
	enum k8s_call call;
	struct sbuf b;

	sbuf_init(&b, body, sizeof(body));
	switch (op) {
	case ACT_K8S_RESTART:
	case ACT_K8S_EVICT:
		/* the uid precondition: a pod recreated under the same name since
		 * the condition began is not the one to delete */
		if (op == ACT_K8S_RESTART) {
			call = K8S_DELETE_POD;
			snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", t->namespace, t->pod);
			sbuf_printf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"DeleteOptions\"");
		} else {
			call = K8S_EVICT_POD;
			snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s/eviction", t->namespace, t->pod);
			sbuf_printf(&b, "{\"apiVersion\":\"policy/v1\",\"kind\":\"Eviction\",\"metadata\":{\"name\":");
			sbuf_json_str(&b, t->pod);
			sbuf_printf(&b, ",\"namespace\":");
			sbuf_json_str(&b, t->namespace);
			sbuf_printf(&b, "},\"deleteOptions\":{");
		}
		if (p->has_grace)
			sbuf_printf(&b, "%s\"gracePeriodSeconds\":%llu", op == ACT_K8S_RESTART ? "," : "",
				    (unsigned long long)(p->grace_ns / NSEC_PER_SEC));
		sbuf_printf(&b, "%s\"preconditions\":{\"uid\":", op == ACT_K8S_RESTART || p->has_grace ? "," : "");
		sbuf_json_str(&b, t->pod_uid);
		sbuf_printf(&b, "}}%s", op == ACT_K8S_EVICT ? "}" : "");
		break;
	case ACT_K8S_CORDON:
		call = K8S_PATCH_NODE;
		type = "application/strategic-merge-patch+json";
		snprintf(path, sizeof(path), "/api/v1/nodes/%s", k8s_node(run->actuator));
		sbuf_printf(&b, "{\"spec\":{\"unschedulable\":true}}");
		break;
	case ACT_K8S_SCALE:
		type = "application/merge-patch+json";
		sbuf_printf(&b, "{\"spec\":{\"replicas\":%d}}", p->replicas);
		if (k8s_scale_path(run->actuator, t, &call, path, sizeof(path))) {
			act_end(run, REFLEX_OUTCOME_FAILED, "pod %s/%s has no Deployment or StatefulSet to scale",
			        t->namespace, t->pod);
			return;
		}
		break;
	default:
		call = K8S_PATCH_POD;
		type = "application/merge-patch+json";
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", t->namespace, t->pod);
		sbuf_printf(&b, "{\"metadata\":{\"%s\":{", op == ACT_K8S_LABEL ? "labels" : "annotations");
		act_k8s_pairs_json(p->pairs, &b);
		sbuf_printf(&b, "}}}");
	}
	s->call = call;
	s->req = k8s_send(run->actuator, call, path, type, body, call_done, run);
	if (!s->req)
		act_end(run, REFLEX_OUTCOME_FAILED, "cannot send the request: %s", strerror(errno));
}

static void budget_done(void *ctx, bool ok, const char *why)
{
	struct act_run *run = ctx;
	struct k8s_state *s = run->state;

	s->budget = NULL;
	if (!ok) {
		act_end(run, strstr(why, "fail closed") ? REFLEX_OUTCOME_FAILED : REFLEX_OUTCOME_SUPPRESSED,
		        "%s", why);
		return;
	}
	send_call(run);
}

static void k8s_start(struct act_run *run)
{
	enum act_k8s_verb op = run->ops->variant;
	const struct target *t = &run->decision.condition.target;
	struct k8s_state *s;
	char workload[256];

	if (!run->actuator) {
		act_end(run, REFLEX_OUTCOME_FAILED, "Kubernetes is not configured (no in-cluster "
		        "service account and no --kubeconfig): nothing done");
		return;
	}
	if (op != ACT_K8S_CORDON && (!t->pod[0] || !t->namespace[0])) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pid %d is not in a pod known to the API server "
		        "(pod uid '%s'): nothing done", t->pid, t->pod_uid);
		return;
	}
	if (op != ACT_K8S_CORDON && k8s_static_pod(run->actuator, t)) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pod %s/%s is a static pod (a kubelet manifest): "
		        "the API server only holds its mirror; nothing done", t->namespace, t->pod);
		return;
	}
	s = calloc(1, sizeof(*s));
	if (!s) {
		act_end(run, REFLEX_OUTCOME_FAILED, "out of memory: nothing done");
		return;
	}
	run->state = s;
	if (op == ACT_K8S_CORDON) {
		str_copy(s->event_kind, sizeof(s->event_kind), "Node");
		str_copy(s->event_name, sizeof(s->event_name), k8s_node(run->actuator));
	} else if (op == ACT_K8S_SCALE) {
		char *kind, *name;

		/* "namespace/Kind/name" */
		k8s_workload(run->actuator, t, workload, sizeof(workload));
		kind = strchr(workload, '/');
		name = kind ? strchr(kind + 1, '/') : NULL;
		if (name) {
			*name++ = '\0';
			str_copy(s->event_kind, sizeof(s->event_kind), kind + 1);
			str_copy(s->event_name, sizeof(s->event_name), name);
		}
		str_copy(s->event_ns, sizeof(s->event_ns), t->namespace);
	} else {
		str_copy(s->event_kind, sizeof(s->event_kind), "Pod");
		str_copy(s->event_ns, sizeof(s->event_ns), t->namespace);
		str_copy(s->event_name, sizeof(s->event_name), t->pod);
		str_copy(s->event_uid, sizeof(s->event_uid), t->pod_uid);
	}
	if (op == ACT_K8S_RESTART || op == ACT_K8S_EVICT) {
		k8s_workload(run->actuator, t, workload, sizeof(workload));
		s->budget = k8s_budget_take(run->actuator, workload, budget_done, run);
		if (!s->budget)
			act_end(run, REFLEX_OUTCOME_FAILED, "cluster budget: out of memory (fail closed)");
		return;
	}
	send_call(run);
}

static void k8s_cancel_run(struct act_run *run)
{
	act_end(run, REFLEX_OUTCOME_FAILED, "reflexd stopped while the API call was under way; "
	        "whether the API server applied it is unknown");
}

/* The API client the daemon made (NULL: not on Kubernetes; the actions
 * then fail, saying why). */
static int k8s_open(const struct act_env *env, void **state)
{
	*state = env->k8s;
	return 0;
}

#define K8S_IMPL(var, action) \
	const struct act_impl var = { \
		.ops = &action, .open = k8s_open, .start = k8s_start, .cancel = k8s_cancel_run, \
		.release = k8s_release, \
	}
K8S_IMPL(act_k8s_restart_pod_impl, act_k8s_restart_pod_ops);
K8S_IMPL(act_k8s_evict_pod_impl, act_k8s_evict_pod_ops);
K8S_IMPL(act_k8s_cordon_node_impl, act_k8s_cordon_node_ops);
K8S_IMPL(act_k8s_scale_impl, act_k8s_scale_ops);
K8S_IMPL(act_k8s_label_impl, act_k8s_label_ops);
K8S_IMPL(act_k8s_annotate_impl, act_k8s_annotate_ops);
