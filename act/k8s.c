/* Kubernetes actions, through the API server so the cluster knows what
 * happened and its controllers react:
 *   k8s.restart_pod { grace = "30s" }   DELETE with a uid precondition
 *   k8s.evict_pod { grace = "30s" }     the eviction subresource (PDBs apply)
 *   k8s.cordon_node { }                 spec.unschedulable on this node
 *   k8s.scale { replicas = 3 }          the scale subresource of the pod's workload
 *   k8s.label { key = "value" }         quarantine marks on the pod
 *   k8s.annotate { key = "value" }
 * Pod restarts and evictions first take a unit of the cluster-wide budget
 * (a Lease shared by every node). Every action that touched an object
 * posts an Event on it. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "k8s/k8s.h"

enum k8s_op { OP_RESTART, OP_EVICT, OP_CORDON, OP_SCALE, OP_LABEL, OP_ANNOTATE };

struct k8s_params {
	bool has_grace;
	uint64_t grace_ns;
	int replicas;
	char pairs[200];   /* label/annotate: "key=value\n"... */
};

_Static_assert(sizeof(struct k8s_params) <= REFLEX_ACT_PARAMS_MAX, "k8s params too big");

struct k8s_state {
	struct k8s_request *req;
	enum k8s_call call;
	struct k8s_budget_op *budget;
	char done_text[300];   /* what the call did, before the Event is posted */
	char event_kind[16], event_ns[64], event_name[128], event_uid[40];
};

static const struct act_param grace_params[] = {
	{ .name = "grace", .type = ACT_PARAM_DURATION, .offset = offsetof(struct k8s_params, grace_ns),
	  .want = "a duration like \"30s\"" },
};

static const struct act_param scale_params[] = {
	{ .name = "replicas", .type = ACT_PARAM_INT, .offset = offsetof(struct k8s_params, replicas),
	  .min = 0, .max = 10000, .required = true,
	  .missing = "how many? e.g. k8s.scale { replicas = 3 }" },
};

static const struct act_param label_params[] = {
	{ .name = "key = \"value\"", .type = ACT_PARAM_PAIRS, .offset = offsetof(struct k8s_params, pairs),
	  .size = sizeof(((struct k8s_params *)0)->pairs), .required = true,
	  .missing = "what? e.g. k8s.label { [\"reflexd.io/quarantine\"] = \"true\" }" },
};

static const struct act_param annotate_params[] = {
	{ .name = "key = \"value\"", .type = ACT_PARAM_PAIRS, .offset = offsetof(struct k8s_params, pairs),
	  .size = sizeof(((struct k8s_params *)0)->pairs), .required = true,
	  .missing = "what? e.g. k8s.annotate { [\"reflexd.io/quarantine\"] = \"true\" }" },
};

/* A grace given is sent; none leaves the pod's own. */
static int grace_check(void *params, unsigned given, char *err, size_t errlen)
{
	struct k8s_params *p = params;

	p->has_grace = given & 1u;
	return 0;
}

/* The "key=value\n" pairs as JSON object members. */
static void pairs_json(const char *pairs, struct sbuf *b)
{
	char key[200];

	while (*pairs) {
		size_t eq = strcspn(pairs, "="), nl = strcspn(pairs, "\n");
		char value[200];

		snprintf(key, sizeof(key), "%.*s", (int)eq, pairs);
		snprintf(value, sizeof(value), "%.*s", (int)(nl - eq - 1), pairs + eq + 1);
		sbuf_printf(b, "%s", b->s[b->len - 1] == '{' ? "" : ",");
		sbuf_json_str(b, key);
		sbuf_printf(b, ":");
		sbuf_json_str(b, value);
		pairs += nl + (pairs[nl] == '\n');
	}
}

static void k8s_describe(const struct act_ops *ops, const void *params, struct sbuf *json)
{
	const struct k8s_params *p = params;
	enum k8s_op op = ops->variant;

	sbuf_printf(json, "{");
	if (p->has_grace)
		sbuf_printf(json, "\"grace_s\":%llu", (unsigned long long)(p->grace_ns / NSEC_PER_SEC));
	if (op == OP_SCALE)
		sbuf_printf(json, "\"replicas\":%d", p->replicas);
	if (op == OP_LABEL || op == OP_ANNOTATE)
		pairs_json(p->pairs, json);
	sbuf_printf(json, "}");
}

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
	enum k8s_op op = run->ops->variant;
	struct k8s_state *s = run->state;
	const struct k8s_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	static const char *const reasons[] = {
		[OP_RESTART] = "ReflexdRestartPod", [OP_EVICT] = "ReflexdEvictPod",
		[OP_CORDON] = "ReflexdCordonNode", [OP_SCALE] = "ReflexdScale",
		[OP_LABEL] = "ReflexdLabel", [OP_ANNOTATE] = "ReflexdAnnotate",
	};
	char why[400], pdb[200];

	s->req = NULL;
	if (r->status >= 200 && r->status < 300 && !status_failure(r)) {
		/* the node's and the workload's uid come back in the reply */
		if (!s->event_uid[0])
			json_get_str(&r->json, "metadata.uid", s->event_uid, sizeof(s->event_uid));
		switch (op) {
		case OP_RESTART:
			snprintf(s->done_text, sizeof(s->done_text), "pod %s/%s deleted", t->namespace, t->pod);
			break;
		case OP_EVICT:
			snprintf(s->done_text, sizeof(s->done_text), "pod %s/%s evicted", t->namespace, t->pod);
			break;
		case OP_CORDON:
			snprintf(s->done_text, sizeof(s->done_text), "node %s cordoned", s->event_name);
			break;
		case OP_SCALE:
			snprintf(s->done_text, sizeof(s->done_text), "%s %s/%s scaled to %d", s->event_kind,
				 s->event_ns, s->event_name, p->replicas);
			break;
		default:
			snprintf(s->done_text, sizeof(s->done_text), "pod %s/%s %s", t->namespace, t->pod,
				 op == OP_LABEL ? "labelled" : "annotated");
		}
		post_event(run, reasons[op]);
		return;
	}
	k8s_reply_explain(r, s->call, why, sizeof(why));
	if (op == OP_EVICT && k8s_reply_pdb(r, pdb, sizeof(pdb)))
		act_end(run, REFLEX_OUTCOME_SUPPRESSED, "blocked by PodDisruptionBudget: %s%s%s",
		        r->message, r->message[0] && pdb[0] ? " " : "", pdb);
	else if (r->status == 404)
		act_end(run, REFLEX_OUTCOME_FAILED, "already gone: %s", why);
	else if (r->status == 409 && (op == OP_RESTART || op == OP_EVICT))
		act_end(run, REFLEX_OUTCOME_FAILED, "the pod was replaced since the condition began "
		        "(uid precondition failed), nothing deleted: %s", why);
	else
		act_end(run, REFLEX_OUTCOME_FAILED, "%s", why);
}

static void send_call(struct act_run *run)
{
	enum k8s_op op = run->ops->variant;
	struct k8s_state *s = run->state;
	const struct k8s_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	char path[512], body[1024];
	const char *type = "application/json";
	enum k8s_call call;
	struct sbuf b;

	sbuf_init(&b, body, sizeof(body));
	switch (op) {
	case OP_RESTART:
	case OP_EVICT:
		/* the uid precondition: a pod recreated under the same name since
		 * the condition began is not the one to delete */
		if (op == OP_RESTART) {
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
			sbuf_printf(&b, "%s\"gracePeriodSeconds\":%llu", op == OP_RESTART ? "," : "",
				    (unsigned long long)(p->grace_ns / NSEC_PER_SEC));
		sbuf_printf(&b, "%s\"preconditions\":{\"uid\":", op == OP_RESTART || p->has_grace ? "," : "");
		sbuf_json_str(&b, t->pod_uid);
		sbuf_printf(&b, "}}%s", op == OP_EVICT ? "}" : "");
		break;
	case OP_CORDON:
		call = K8S_PATCH_NODE;
		type = "application/strategic-merge-patch+json";
		snprintf(path, sizeof(path), "/api/v1/nodes/%s", k8s_node(run->actuator));
		sbuf_printf(&b, "{\"spec\":{\"unschedulable\":true}}");
		break;
	case OP_SCALE:
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
		sbuf_printf(&b, "{\"metadata\":{\"%s\":{", op == OP_LABEL ? "labels" : "annotations");
		pairs_json(p->pairs, &b);
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
	enum k8s_op op = run->ops->variant;
	const struct target *t = &run->decision.condition.target;
	struct k8s_state *s;
	char workload[256];

	if (!run->actuator) {
		act_end(run, REFLEX_OUTCOME_FAILED, "Kubernetes is not configured (no in-cluster "
		        "service account and no --kubeconfig): nothing done");
		return;
	}
	if (op != OP_CORDON && (!t->pod[0] || !t->namespace[0])) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pid %d is not in a pod known to the API server "
		        "(pod uid '%s'): nothing done", t->pid, t->pod_uid);
		return;
	}
	if (op != OP_CORDON && k8s_static_pod(run->actuator, t)) {
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
	if (op == OP_CORDON) {
		str_copy(s->event_kind, sizeof(s->event_kind), "Node");
		str_copy(s->event_name, sizeof(s->event_name), k8s_node(run->actuator));
	} else if (op == OP_SCALE) {
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
	if (op == OP_RESTART || op == OP_EVICT) {
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

#define K8S_OPS(var, verb, op, table, check_fn) \
	const struct act_ops var = { \
		.name = verb, .variant = op, .params = table, .nparams = ARRAY_SIZE(table), \
		.params_size = sizeof(struct k8s_params), .check = check_fn, .describe = k8s_describe, \
		.open = k8s_open, .start = k8s_start, .cancel = k8s_cancel_run, .release = k8s_release, \
	}
K8S_OPS(act_k8s_restart_pod_ops, "k8s.restart_pod", OP_RESTART, grace_params, grace_check);
K8S_OPS(act_k8s_evict_pod_ops, "k8s.evict_pod", OP_EVICT, grace_params, grace_check);
K8S_OPS(act_k8s_scale_ops, "k8s.scale", OP_SCALE, scale_params, NULL);
K8S_OPS(act_k8s_label_ops, "k8s.label", OP_LABEL, label_params, NULL);
K8S_OPS(act_k8s_annotate_ops, "k8s.annotate", OP_ANNOTATE, annotate_params, NULL);
const struct act_ops act_k8s_cordon_node_ops = {
	.name = "k8s.cordon_node", .variant = OP_CORDON, .params_size = sizeof(struct k8s_params),
	.describe = k8s_describe, .open = k8s_open, .start = k8s_start, .cancel = k8s_cancel_run,
	.release = k8s_release,
};
