#include <stdio.h>
#include <string.h>

#include "lib/util.h"
#include "decide/protect.h"

/* What keeps a node alive and reachable: init and its managers, remote
 * access (OpenSSH 9.8 runs each session as sshd-session, 10.0 its
 * authentication as sshd-auth), the kubelet and every container runtime,
 * and reflexd itself. Each begins with a plain character (see
 * protect_reason). */
static const char *const builtin_comm[] = {
	"systemd", "systemd-*", "(sd-pam)", "init", "sshd", "sshd-session", "sshd-auth", "kubelet", "containerd",
	"containerd-shim*", "dockerd", "docker-proxy", "crio", "conmon", "runc", "crun",
	"reflexd",
};

/* The cluster's own machinery. */
static const char *const builtin_namespace[] = { "kube-system" };

/* A selector "key=value" or "key" (the label is there) against t's pod. */
static bool selects(const char *selector, const struct target *t)
{
	size_t n = strcspn(selector, "=");
	char value[256];

	return target_label(t, selector, n, value, sizeof(value)) &&
	       (!selector[n] || !strcmp(value, selector + n + 1));
}

static const char *match_any(const struct strlist *g, const char *s)
{
	for (size_t i = 0; i < g->n; i++)
		if (glob_match(g->v[i], s))
			return g->v[i];
	return NULL;
}

const char *protect_reason(const struct protect *p, const struct target *t,
			   char *buf, size_t size)
{
	const char *glob;

	if (t->pid == 1)
		snprintf(buf, size, "pid 1 (init)");
	else if (t->kernel_thread)
		snprintf(buf, size, "kernel thread");
	else if (p && p->self && t->pid == p->self)
		snprintf(buf, size, "reflexd itself");
	else if (p && (glob = match_any(&p->comm, t->comm)))
		snprintf(buf, size, "comm '%s' matches protected '%s'", t->comm, glob);
	else if (p && (glob = match_any(&p->exe, t->exe)))
		snprintf(buf, size, "exe '%s' matches protected '%s'", t->exe, glob);
	else if (p && (glob = match_any(&p->cgroup, t->cgroup)))
		snprintf(buf, size, "cgroup '%s' matches protected '%s'", t->cgroup, glob);
	else if (p && t->pod_uid[0] && !strcmp(t->pod_uid, p->self_pod_uid))
		snprintf(buf, size, "reflexd's own pod");
	else if (p && t->namespace[0] && (glob = match_any(&p->namespace, t->namespace)))
		snprintf(buf, size, "namespace '%s' matches protected '%s'", t->namespace, glob);
	else {
		for (size_t i = 0; p && t->labels[0] && i < p->labels.n; i++) {
			if (selects(p->labels.v[i], t)) {
				snprintf(buf, size, "pod labels match protected selector '%s'", p->labels.v[i]);
				return buf;
			}
		}
		for (size_t i = 0; i < ARRAY_SIZE(builtin_namespace); i++) {
			if (!strcmp(builtin_namespace[i], t->namespace)) {
				snprintf(buf, size, "namespace '%s' is protected by default", t->namespace);
				return buf;
			}
		}
		/* asked for every decision: most comms differ at the first character */
		for (size_t i = 0; i < ARRAY_SIZE(builtin_comm); i++) {
			if (builtin_comm[i][0] == t->comm[0] && glob_match(builtin_comm[i], t->comm)) {
				snprintf(buf, size, "comm '%s' is protected by default ('%s')",
					 t->comm, builtin_comm[i]);
				return buf;
			}
		}
		return NULL;
	}
	return buf;
}
