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
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "k8s/k8s.h"

enum k8s_op { OP_RESTART, OP_EVICT, OP_CORDON, OP_SCALE, OP_LABEL, OP_ANNOTATE };

struct k8s_params {
	enum k8s_op op;
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

static struct k8s_client *client;

void act_k8s_set_client(struct k8s_client *k)
{
	client = k;
}

static const char *const op_names[] = {
	[OP_RESTART] = "k8s.restart_pod", [OP_EVICT] = "k8s.evict_pod",
	[OP_CORDON] = "k8s.cordon_node", [OP_SCALE] = "k8s.scale",
	[OP_LABEL] = "k8s.label", [OP_ANNOTATE] = "k8s.annotate",
};

static int parse_op(lua_State *L, int idx, struct k8s_params *p, enum k8s_op op,
		    char *err, size_t errlen)
{
	const char *name = op_names[op];
	struct sbuf pairs;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	p->op = op;
	sbuf_init(&pairs, p->pairs, sizeof(p->pairs));
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (!rc && lua_next(L, idx)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;

		if (!key) {
			snprintf(err, errlen, "%s: parameters are named (e.g. %s)", name,
				 op == OP_SCALE ? "replicas = 3" : op <= OP_EVICT ? "grace = \"30s\"" : "key = \"value\"");
			rc = -EINVAL;
		} else if (op == OP_LABEL || op == OP_ANNOTATE) {
			if (lua_type(L, -1) != LUA_TSTRING || strpbrk(key, "=\n") ||
			    strchr(lua_tostring(L, -1), '\n')) {
				snprintf(err, errlen, "%s: %s must be a string value", name, key);
				rc = -EINVAL;
			} else {
				sbuf_printf(&pairs, "%s=%s\n", key, lua_tostring(L, -1));
				if (pairs.truncated) {
					snprintf(err, errlen, "%s: too many or too long keys and values", name);
					rc = -EINVAL;
				}
			}
		} else if ((op == OP_RESTART || op == OP_EVICT) && !strcmp(key, "grace")) {
			if (lua_type(L, -1) != LUA_TSTRING || duration_parse(lua_tostring(L, -1), &p->grace_ns)) {
				snprintf(err, errlen, "%s: grace must be a duration like \"30s\"", name);
				rc = -EINVAL;
			}
			p->has_grace = true;
		} else if (op == OP_SCALE && !strcmp(key, "replicas")) {
			if (!lua_isinteger(L, -1) || lua_tointeger(L, -1) < 0 || lua_tointeger(L, -1) > 10000) {
				snprintf(err, errlen, "%s: replicas must be an integer from 0 to 10000", name);
				rc = -EINVAL;
			}
			p->replicas = (int)lua_tointeger(L, -1);
		} else {
			snprintf(err, errlen, "%s: unknown parameter '%s' (known: %s)", name, key,
				 op == OP_SCALE ? "replicas" : op <= OP_EVICT ? "grace" : "none");
			rc = -EINVAL;
		}
		lua_pop(L, 1);
	}
	if (rc) {
		lua_pop(L, 1);
		return rc;
	}
	if (op == OP_SCALE && !lua_getfield(L, idx, "replicas")) {
		lua_pop(L, 1);
		snprintf(err, errlen, "%s: how many? e.g. k8s.scale { replicas = 3 }", name);
		return -EINVAL;
	}
	if (op == OP_SCALE)
		lua_pop(L, 1);
	if ((op == OP_LABEL || op == OP_ANNOTATE) && !pairs.len) {
		snprintf(err, errlen, "%s: what? e.g. %s { [\"reflexd.io/quarantine\"] = \"true\" }", name, name);
		return -EINVAL;
	}
	return 0;
}

#define PARSER(fn, op) \
	static int fn(lua_State *L, int idx, void *params, char *err, size_t errlen) \
	{ \
		return parse_op(L, idx, params, op, err, errlen); \
	}
PARSER(parse_restart, OP_RESTART)
PARSER(parse_evict, OP_EVICT)
PARSER(parse_cordon, OP_CORDON)
PARSER(parse_scale, OP_SCALE)
PARSER(parse_label, OP_LABEL)
PARSER(parse_annotate, OP_ANNOTATE)

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

static void k8s_describe(const void *params, struct sbuf *json)
{
	const struct k8s_params *p = params;

	sbuf_printf(json, "{");
	if (p->has_grace)
		sbuf_printf(json, "\"grace_s\":%llu", (unsigned long long)(p->grace_ns / NSEC_PER_SEC));
	if (p->op == OP_SCALE)
		sbuf_printf(json, "\"replicas\":%d", p->replicas);
	if (p->op == OP_LABEL || p->op == OP_ANNOTATE)
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
		 op_names[((const struct k8s_params *)(const void *)run->params)->op], d->rule,
		 condition_kind_name(d->condition.kind), d->condition.target.pid,
		 d->condition.target.comm, d->condition.summary, d->id);
	s->req = k8s_event(client, s->event_kind, s->event_ns, s->event_name, s->event_uid, reason,
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
		switch (p->op) {
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
				 p->op == OP_LABEL ? "labelled" : "annotated");
		}
		post_event(run, reasons[p->op]);
		return;
	}
	k8s_reply_explain(r, s->call, why, sizeof(why));
	if (p->op == OP_EVICT && k8s_reply_pdb(r, pdb, sizeof(pdb)))
		act_end(run, REFLEX_OUTCOME_SUPPRESSED, "blocked by PodDisruptionBudget: %s%s%s",
		        r->message, r->message[0] && pdb[0] ? " " : "", pdb);
	else if (r->status == 404)
		act_end(run, REFLEX_OUTCOME_FAILED, "already gone: %s", why);
	else if (r->status == 409 && (p->op == OP_RESTART || p->op == OP_EVICT))
		act_end(run, REFLEX_OUTCOME_FAILED, "the pod was replaced since the condition began "
		        "(uid precondition failed), nothing deleted: %s", why);
	else
		act_end(run, REFLEX_OUTCOME_FAILED, "%s", why);
}

static void send_call(struct act_run *run)
{
	struct k8s_state *s = run->state;
	const struct k8s_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	char path[512], body[1024];
	const char *type = "application/json";
	enum k8s_call call;
	struct sbuf b;

	sbuf_init(&b, body, sizeof(body));
	switch (p->op) {
	case OP_RESTART:
	case OP_EVICT:
		/* the uid precondition: a pod recreated under the same name since
		 * the condition began is not the one to delete */
		if (p->op == OP_RESTART) {
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
			sbuf_printf(&b, "%s\"gracePeriodSeconds\":%llu", p->op == OP_RESTART ? "," : "",
				    (unsigned long long)(p->grace_ns / NSEC_PER_SEC));
		sbuf_printf(&b, "%s\"preconditions\":{\"uid\":", p->op == OP_RESTART || p->has_grace ? "," : "");
		sbuf_json_str(&b, t->pod_uid);
		sbuf_printf(&b, "}}%s", p->op == OP_EVICT ? "}" : "");
		break;
	case OP_CORDON:
		call = K8S_PATCH_NODE;
		type = "application/strategic-merge-patch+json";
		snprintf(path, sizeof(path), "/api/v1/nodes/%s", k8s_node(client));
		sbuf_printf(&b, "{\"spec\":{\"unschedulable\":true}}");
		break;
	case OP_SCALE:
		type = "application/merge-patch+json";
		sbuf_printf(&b, "{\"spec\":{\"replicas\":%d}}", p->replicas);
		if (k8s_scale_path(client, t, &call, path, sizeof(path))) {
			act_end(run, REFLEX_OUTCOME_FAILED, "pod %s/%s has no Deployment or StatefulSet to scale",
			        t->namespace, t->pod);
			return;
		}
		break;
	default:
		call = K8S_PATCH_POD;
		type = "application/merge-patch+json";
		snprintf(path, sizeof(path), "/api/v1/namespaces/%s/pods/%s", t->namespace, t->pod);
		sbuf_printf(&b, "{\"metadata\":{\"%s\":{", p->op == OP_LABEL ? "labels" : "annotations");
		pairs_json(p->pairs, &b);
		sbuf_printf(&b, "}}}");
	}
	s->call = call;
	s->req = k8s_send(client, call, path, type, body, call_done, run);
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
	const struct k8s_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	struct k8s_state *s;
	char workload[256];

	if (!client) {
		act_end(run, REFLEX_OUTCOME_FAILED, "Kubernetes is not configured (no in-cluster "
		        "service account and no --kubeconfig): nothing done");
		return;
	}
	if (p->op != OP_CORDON && (!t->pod[0] || !t->namespace[0])) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pid %d is not in a pod known to the API server "
		        "(pod uid '%s'): nothing done", t->pid, t->pod_uid);
		return;
	}
	if (p->op != OP_CORDON && k8s_static_pod(client, t)) {
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
	if (p->op == OP_CORDON) {
		str_copy(s->event_kind, sizeof(s->event_kind), "Node");
		str_copy(s->event_name, sizeof(s->event_name), k8s_node(client));
	} else if (p->op == OP_SCALE) {
		char *kind, *name;

		/* "namespace/Kind/name" */
		k8s_workload(client, t, workload, sizeof(workload));
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
	if (p->op == OP_RESTART || p->op == OP_EVICT) {
		k8s_workload(client, t, workload, sizeof(workload));
		s->budget = k8s_budget_take(client, workload, budget_done, run);
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

#define K8S_OPS(var, op, fn) \
	const struct act_ops var = { \
		.name = op, .parse = fn, .params_size = sizeof(struct k8s_params), \
		.describe = k8s_describe, .start = k8s_start, .cancel = k8s_cancel_run, .release = k8s_release, \
	}
K8S_OPS(act_k8s_restart_pod_ops, "k8s.restart_pod", parse_restart);
K8S_OPS(act_k8s_evict_pod_ops, "k8s.evict_pod", parse_evict);
K8S_OPS(act_k8s_cordon_node_ops, "k8s.cordon_node", parse_cordon);
K8S_OPS(act_k8s_scale_ops, "k8s.scale", parse_scale);
K8S_OPS(act_k8s_label_ops, "k8s.label", parse_label);
K8S_OPS(act_k8s_annotate_ops, "k8s.annotate", parse_annotate);
