/* traffic.shift { service = "web", drain = true } and
 * traffic.restore { service = "web" }: move a service's new connections off
 * the instance the condition is about, and back.
 *
 * A service is declared with --service web=8080:8081,8082: clients connect
 * to port 8080; the instances (backends) are whatever listens on 8081 and
 * 8082 on this host. Each backend's listening socket is found through
 * sock_diag (its inode), the process holding it (/proc/PID/fd, looked at
 * only when the listener changed),
 * and pidfd_getfd(2), and goes into a sockmap. The sk_lookup program in
 * bpf/traffic.bpf.c then hands each new connection to port 8080 to one of
 * them, by weight: 1 for a healthy backend, 0 for one shifted away from.
 * The instance to shift away from is the condition's target: the backend
 * whose listening socket that process holds. Backends are looked for again
 * every second, so an instance that restarts (a new socket) is picked up,
 * healthy.
 *
 * A service whose backends are elsewhere, --service api=10.96.0.10:80:
 * 10.1.0.5:8080,10.1.0.6:8080, is steered at connect(2) instead, by a
 * cgroup/connect4 program on the cgroup2 root: a connect to 10.96.0.10:80
 * goes to one of the backends by weight. The backend to shift away from
 * is named by the action (away_from = "10.1.0.5:8080", typically from the
 * condition's evidence in an act function).
 *
 * This file is the two actions (their parameters: act/actions.c); act/traffic_steer.c the steering programs
 * their open attaches, act/traffic_backends.c the services' backends. */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include "act/actions.h"
#include "act/traffic_steer.h"
#include "sense/identity.h"

/* The service the run is about, or NULL after finishing it as failed. */
static struct service *run_service(struct act_run *run)
{
	const struct traffic_params *p = (const void *)run->params;
	struct service *s = traffic_find_service(run->actuator, p->service);

	if (!s)
		act_end(run, REFLEX_OUTCOME_FAILED, "no service '%s' is declared (--service %s=PORT:"
		        "BACKEND_PORT,...): nothing changed", p->service, p->service);
	return s;
}

/* The healthy backends (that listen, when local), other than skip, as
 * ":8081, :8082". */
static size_t healthy(const struct service *s, const struct backend *skip, char *buf, size_t size)
{
	char name[TRAFFIC_ENDPOINT_MAX];
	struct sbuf b;
	size_t n = 0;

	sbuf_init(&b, buf, size);
	for (size_t i = 0; i < s->n; i++) {
		const struct backend *k = &s->backends[i];

		if (k != skip && (s->remote || k->inode) && !k->shifted)
			sbuf_printf(&b, "%s%s", n++ ? ", " : "", traffic_backend_at(k, name));
	}
	return n;
}

/* The backend away_from names: NULL when it names none of s's. */
static struct backend *named_backend(struct service *s, const char *away_from)
{
	uint32_t addr;
	uint16_t port;

	if (traffic_endpoint_parse(away_from, strlen(away_from), &addr, &port))
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->backends[i].addr == addr && s->backends[i].port == port)
			return &s->backends[i];
	return NULL;
}

/* The backend shift_start is to move traffic from: a remote service's, as
 * away_from names it; a local service's, whose listener the condition's
 * process holds. NULL after finishing the run as failed. */
static struct backend *sick_backend(struct act_run *run, struct service *s)
{
	const struct traffic_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	char others[128];
	uint64_t start_time;

	if (s->remote) {
		struct backend *b = named_backend(s, p->away_from);

		if (!b)
			act_end(run, REFLEX_OUTCOME_FAILED, "service %s has remote backends: away_from "
			        "must name one of them ('%s' does not): nothing shifted", s->name,
			        p->away_from);
		return b;
	}
	if (p->away_from[0]) {
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s is local: the backend to shift away "
		        "from is the one the condition's process holds, not away_from", s->name);
		return NULL;
	}
	traffic_refresh_service(run->actuator, s);
	if (identity_start_time(t->pid, &start_time) || start_time != t->start_time) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pid %d is no longer the process the condition "
		        "was about: nothing shifted", t->pid);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->backends[i].inode && traffic_fd_of_socket(t->pid, s->backends[i].inode) >= 0)
			return &s->backends[i];
	healthy(s, NULL, others, sizeof(others));
	act_end(run, REFLEX_OUTCOME_FAILED, "pid %d (%s) holds none of the listeners of service %s "
	        "(%s): nothing shifted", t->pid, t->comm, s->name, others);
	return NULL;
}

static void shift_start(struct act_run *run)
{
	struct traffic *tr = run->actuator;
	const struct traffic_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	struct service *s = run_service(run);
	char others[128], drained[96] = "", from[TRAFFIC_ENDPOINT_MAX], to[TRAFFIC_ENDPOINT_MAX];
	struct backend *b = s ? sick_backend(run, s) : NULL;
	uint64_t n = 0;
	int rc;

	if (!b)
		return;
	if (b->shifted) {
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: already shifted away from %s (pid %d)",
		        s->name, traffic_backend_at(b, from), b->shifted_pid);
		return;
	}
	/* never black-hole: the last healthy backend keeps its traffic */
	if (!healthy(s, b, others, sizeof(others))) {
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s: no other healthy backend %s: not "
		        "shifted away from %s, its last one", s->name, s->remote ? "is left" : "listens",
		        traffic_backend_at(b, from));
		return;
	}
	b->shifted = true;
	b->shifted_pid = t->pid;
	b->shifted_start = t->start_time;
	if ((rc = traffic_write_weights(run->actuator, s))) {
		b->shifted = false;
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s: writing the weights: %s", s->name,
		        strerror(-rc));
		return;
	}
	if (p->drain && s->remote)
		snprintf(drained, sizeof(drained), "; not drained: draining is for local backends");
	else if (p->drain && !tr->can_drain)
		snprintf(drained, sizeof(drained), "; not drained: needs bpf_sock_destroy (Linux 6.5+)");
	else if (p->drain && (rc = traffic_drain(tr, t->pid, s, b, &n)))
		snprintf(drained, sizeof(drained), "; draining its connections failed: %s", strerror(-rc));
	else if (p->drain)
		snprintf(drained, sizeof(drained), "; %llu of its connections drained",
			 (unsigned long long)n);
	if (s->remote)
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s go to %s, away "
		        "from %s%s", s->name, traffic_service_at(s, to), others, traffic_backend_at(b, from), drained);
	else
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s go to %s, away "
		        "from %s (pid %d)%s", s->name, traffic_service_at(s, to), others, traffic_backend_at(b, from), t->pid,
		        drained);
}

/* Restores the backends shifted away from the condition's process (or, for
 * a remote service, the one away_from names). */
static void restore_start(struct act_run *run)
{
	const struct traffic_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	struct service *s = run_service(run);
	struct backend *named = s && s->remote ? named_backend(s, p->away_from) : NULL;
	char ports[128], name[TRAFFIC_ENDPOINT_MAX], to[TRAFFIC_ENDPOINT_MAX];
	struct sbuf back;
	int rc;

	if (!s)
		return;
	sbuf_init(&back, ports, sizeof(ports));
	for (size_t i = 0; i < s->n; i++) {
		struct backend *b = &s->backends[i];

		if (b->shifted && (s->remote ? b == named : b->shifted_pid == t->pid &&
				   b->shifted_start == t->start_time)) {
			b->shifted = false;
			sbuf_printf(&back, "%s%s", back.len ? ", " : "", traffic_backend_at(b, name));
		}
	}
	if (!back.len) {
		if (s->remote)
			act_end(run, REFLEX_OUTCOME_ACTED, "service %s: nothing to restore: %s is not "
			        "shifted away from", s->name, p->away_from);
		else
			act_end(run, REFLEX_OUTCOME_ACTED, "service %s: nothing to restore: no backend "
			        "is shifted away from pid %d", s->name, t->pid);
		return;
	}
	if ((rc = traffic_write_weights(run->actuator, s))) {
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s: writing the weights: %s", s->name,
		        strerror(-rc));
		return;
	}
	if (s->remote)
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s reach %s again",
		        s->name, traffic_service_at(s, to), ports);
	else
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s reach %s (pid %d) "
		        "again", s->name, traffic_service_at(s, to), ports, t->pid);
}

/* Both finish within start: nothing is left running at shutdown. */
static void traffic_cancel(struct act_run *run)
{
	act_end(run, REFLEX_OUTCOME_FAILED, "reflexd stopped");
}

const struct act_impl act_traffic_restore_impl = {
	.ops = &act_traffic_restore_ops,
	.open = traffic_open,
	.close = traffic_close,
	.start = restore_start,
	.cancel = traffic_cancel,
};

const struct act_impl act_traffic_shift_impl = {
	.ops = &act_traffic_shift_ops,
	.open = traffic_open,
	.close = traffic_close,
	.start = shift_start,
	.cancel = traffic_cancel,
};
