/* Every action reflexd can take, as a rule names it: its parameter table
 * (read by decide/params.c when a rule loads), what one parameter cannot
 * check alone, and how a decision record shows the parameters. What an
 * action does is its runtime's (act_impl): act/signal.c, act/traffic.c,
 * act/k8s.c. */
#include <errno.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "act/actions.h"

_Static_assert(sizeof(struct k8s_params) <= REFLEX_ACT_PARAMS_MAX, "k8s params too big");
_Static_assert(sizeof(struct traffic_params) <= REFLEX_ACT_PARAMS_MAX, "traffic params too big");

const struct act_ops *const act_all[] = {
	&act_signal_ops, &act_traffic_shift_ops, &act_traffic_restore_ops,
	&act_k8s_restart_pod_ops, &act_k8s_evict_pod_ops, &act_k8s_cordon_node_ops,
	&act_k8s_scale_ops, &act_k8s_label_ops, &act_k8s_annotate_ops, NULL,
};

const struct act_ops *act_find(const char *name)
{
	for (int i = 0; act_all[i]; i++)
		if (strcmp(act_all[i]->name, name) == 0)
			return act_all[i];
	return NULL;
}

/* signal { "SIGKILL" }, signal { "SIGQUIT", followup = "SIGKILL", grace = "5s" } */

static const struct act_name signal_names[] = {
	{ "SIGKILL", SIGKILL }, { "SIGTERM", SIGTERM }, { "SIGQUIT", SIGQUIT },
	{ "SIGABRT", SIGABRT }, { "SIGINT", SIGINT },   { "SIGHUP", SIGHUP },
	{ "SIGUSR1", SIGUSR1 }, { "SIGUSR2", SIGUSR2 }, { "SIGSTOP", SIGSTOP },
	{ "SIGCONT", SIGCONT }, { "SIGSEGV", SIGSEGV }, { "SIGTRAP", SIGTRAP },
	{ NULL, 0 },
};

const char *act_signal_name(int sig)
{
	for (size_t i = 0; signal_names[i].name; i++)
		if (signal_names[i].value == sig)
			return signal_names[i].name;
	return "?";
}

enum { PARAM_SIGNAL, PARAM_FOLLOWUP, PARAM_GRACE };

static const struct act_param signal_params[] = {
	[PARAM_SIGNAL] = {
		.name = "the signal", .type = ACT_PARAM_NAME, .positional = true, .required = true,
		.offset = offsetof(struct signal_params, sig), .names = signal_names, .noun = "signal",
		.want = "a signal name like \"SIGKILL\"",
		.missing = "which signal? e.g. signal { \"SIGKILL\" }",
	},
	[PARAM_FOLLOWUP] = {
		.name = "followup", .type = ACT_PARAM_NAME,
		.offset = offsetof(struct signal_params, followup_sig), .names = signal_names,
		.noun = "signal", .want = "a signal name like \"SIGKILL\"",
	},
	[PARAM_GRACE] = {
		.name = "grace", .type = ACT_PARAM_DURATION, .def = SIGNAL_DEFAULT_GRACE,
		.offset = offsetof(struct signal_params, grace_ns), .want = "a duration like \"5s\"",
	},
};

static int signal_check(void *params, unsigned given, char *err, size_t errlen)
{
	struct signal_params *p = params;

	if (!p->followup_sig && p->grace_ns && given & (1u << PARAM_GRACE)) {
		snprintf(err, errlen, "signal: grace without followup: nothing follows the grace period");
		return -EINVAL;
	}
	/* grace = "0s" waits the default too, as it always has */
	if (!p->grace_ns)
		p->grace_ns = SIGNAL_DEFAULT_GRACE;
	return 0;
}

int act_signal_single(const struct act_ops *ops, const void *params)
{
	const struct signal_params *p = params;

	return ops == &act_signal_ops && p && !p->followup_sig ? p->sig : 0;
}

static void signal_describe(const struct act_ops *ops, const void *params, struct sbuf *json)
{
	const struct signal_params *p = params;

	sbuf_printf(json, "{\"signal\":\"%s\"", act_signal_name(p->sig));
	if (p->followup_sig)
		sbuf_printf(json, ",\"followup\":\"%s\",\"grace_ms\":%llu", act_signal_name(p->followup_sig),
			    (unsigned long long)(p->grace_ns / NSEC_PER_MSEC));
	sbuf_printf(json, "}");
}

const struct act_ops act_signal_ops = {
	.name = "signal",
	.params = signal_params,
	.nparams = ARRAY_SIZE(signal_params),
	.params_size = sizeof(struct signal_params),
	.check = signal_check,
	.describe = signal_describe,
};

/* traffic.shift { service = "web", drain = true }, traffic.restore { service = "web" } */

/* Whether away_from names an endpoint like "10.1.0.5:8080". */
static int endpoint_check(const char *value)
{
	uint32_t addr;
	uint16_t port;

	return traffic_endpoint_parse(value, strlen(value), &addr, &port);
}

#define SERVICE_PARAM(action) { \
	.name = "service", .type = ACT_PARAM_STRING, .required = true, \
	.offset = offsetof(struct traffic_params, service), \
	.size = sizeof(((struct traffic_params *)0)->service), \
	.want = "the name of a --service, like \"web\"", \
	.missing = "which service? e.g. " action " { service = \"web\" }" }
#define AWAY_FROM_PARAM { \
	.name = "away_from", .type = ACT_PARAM_STRING, .check = endpoint_check, \
	.offset = offsetof(struct traffic_params, away_from), \
	.size = sizeof(((struct traffic_params *)0)->away_from), \
	.want = "a remote backend like \"10.1.0.5:8080\"" }

static const struct act_param shift_params[] = {
	SERVICE_PARAM("traffic.shift"),
	AWAY_FROM_PARAM,
	{ .name = "drain", .type = ACT_PARAM_BOOL, .offset = offsetof(struct traffic_params, drain) },
};

static const struct act_param restore_params[] = {
	SERVICE_PARAM("traffic.restore"),
	AWAY_FROM_PARAM,
};

static void traffic_describe(const struct traffic_params *p, struct sbuf *json)
{
	sbuf_printf(json, "{\"service\":");
	sbuf_json_str(json, p->service);
	if (p->away_from[0]) {
		sbuf_printf(json, ",\"away_from\":");
		sbuf_json_str(json, p->away_from);
	}
}

static void restore_describe(const struct act_ops *ops, const void *params, struct sbuf *json)
{
	traffic_describe(params, json);
	sbuf_printf(json, "}");
}

static void shift_describe(const struct act_ops *ops, const void *params, struct sbuf *json)
{
	const struct traffic_params *p = params;

	traffic_describe(p, json);
	sbuf_printf(json, ",\"drain\":%s}", p->drain ? "true" : "false");
}

const struct act_ops act_traffic_restore_ops = {
	.name = "traffic.restore",
	.params = restore_params,
	.nparams = ARRAY_SIZE(restore_params),
	.params_size = sizeof(struct traffic_params),
	.describe = restore_describe,
};

const struct act_ops act_traffic_shift_ops = {
	.name = "traffic.shift",
	.params = shift_params,
	.nparams = ARRAY_SIZE(shift_params),
	.params_size = sizeof(struct traffic_params),
	.describe = shift_describe,
	.undo = &act_traffic_restore_ops,
};

/* k8s.restart_pod { grace = "30s" }, k8s.evict_pod, k8s.cordon_node { },
 * k8s.scale { replicas = 3 }, k8s.label { key = "value" }, k8s.annotate */

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
void act_k8s_pairs_json(const char *pairs, struct sbuf *b)
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
	enum act_k8s_verb op = ops->variant;

	sbuf_printf(json, "{");
	if (p->has_grace)
		sbuf_printf(json, "\"grace_s\":%llu", (unsigned long long)(p->grace_ns / NSEC_PER_SEC));
	if (op == ACT_K8S_SCALE)
		sbuf_printf(json, "\"replicas\":%d", p->replicas);
	if (op == ACT_K8S_LABEL || op == ACT_K8S_ANNOTATE)
		act_k8s_pairs_json(p->pairs, json);
	sbuf_printf(json, "}");
}

#define K8S_OPS(var, verb, op, table, check_fn) \
	const struct act_ops var = { \
		.name = verb, .variant = op, .params = table, .nparams = ARRAY_SIZE(table), \
		.params_size = sizeof(struct k8s_params), .check = check_fn, .describe = k8s_describe, \
	}
K8S_OPS(act_k8s_restart_pod_ops, "k8s.restart_pod", ACT_K8S_RESTART, grace_params, grace_check);
K8S_OPS(act_k8s_evict_pod_ops, "k8s.evict_pod", ACT_K8S_EVICT, grace_params, grace_check);
K8S_OPS(act_k8s_scale_ops, "k8s.scale", ACT_K8S_SCALE, scale_params, NULL);
K8S_OPS(act_k8s_label_ops, "k8s.label", ACT_K8S_LABEL, label_params, NULL);
K8S_OPS(act_k8s_annotate_ops, "k8s.annotate", ACT_K8S_ANNOTATE, annotate_params, NULL);
const struct act_ops act_k8s_cordon_node_ops = {
	.name = "k8s.cordon_node", .variant = ACT_K8S_CORDON, .params_size = sizeof(struct k8s_params),
	.describe = k8s_describe,
};
