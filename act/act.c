#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "lib/log.h"
#include "lib/metrics.h"

const struct act_impl *const act_impls[] = {
	&act_signal_impl, &act_traffic_shift_impl, &act_traffic_restore_impl,
	&act_k8s_restart_pod_impl, &act_k8s_evict_pod_impl, &act_k8s_cordon_node_impl,
	&act_k8s_scale_impl, &act_k8s_label_impl, &act_k8s_annotate_impl, NULL,
};

_Static_assert(sizeof(act_impls) / sizeof(act_impls[0]) <= REFLEX_ACT_OPS_MAX + 1,
	       "raise REFLEX_ACT_OPS_MAX");

/* The runtime of ops: its index in act_impls (that of the NULL when none). */
static size_t impl_index(const struct act_ops *ops)
{
	size_t i = 0;

	while (act_impls[i] && act_impls[i]->ops != ops)
		i++;
	return i;
}

/* Whether action name is the actuator's: "traffic" for traffic.shift. */
static bool of_actuator(const char *name, const char *actuator)
{
	size_t n = strlen(actuator);

	return !strncmp(name, actuator, n) && (!name[n] || name[n] == '.');
}

int act_open(struct act_executor *x, const char *actuator, const struct act_env *env)
{
	for (size_t i = 0; act_impls[i]; i++) {
		const struct act_impl *impl = act_impls[i];
		int rc;

		if (!impl->open || x->is_open[i] || !of_actuator(impl->ops->name, actuator))
			continue;
		rc = impl->open(env, &x->opened[i]);
		if (rc)
			return rc;
		x->is_open[i] = true;
		/* the actions with the same open share what it made */
		for (size_t k = i + 1; act_impls[k]; k++) {
			if (act_impls[k]->open != impl->open)
				continue;
			x->opened[k] = x->opened[i];
			x->is_open[k] = true;
		}
	}
	return 0;
}

void act_close(struct act_executor *x)
{
	for (size_t i = 0; act_impls[i]; i++) {
		if (!x->is_open[i])
			continue;
		if (act_impls[i]->close)
			act_impls[i]->close(x->opened[i]);
		/* once: the actions that shared it are closed with it */
		for (size_t k = i; act_impls[k]; k++) {
			if (act_impls[k]->open != act_impls[i]->open)
				continue;
			x->is_open[k] = false;
			x->opened[k] = NULL;
		}
	}
}

/* reflexd_decisions_total{outcome}, made at first use. */
static struct metric *decisions_counted(enum decision_outcome outcome)
{
	static struct metric *counted[REFLEX_OUTCOME_COUNT];

	if (!counted[outcome])
		counted[outcome] = metrics_counter("reflexd_decisions_total", "decisions recorded, by outcome",
						   "outcome", decision_outcome_name(outcome));
	return counted[outcome];
}

void act_count_init(void)
{
	for (int o = 0; o < REFLEX_OUTCOME_COUNT; o++)
		if (o != REFLEX_OUTCOME_PENDING)
			(void)decisions_counted((enum decision_outcome)o);
}

/* Every final decision passes here: logged, and counted for /metrics. */
static void log_decision(const struct decision *d)
{
	const struct target *t = &d->condition.target;
	enum log_level level = d->outcome == REFLEX_OUTCOME_FAILED ? LOG_ERROR
			     : d->outcome == REFLEX_OUTCOME_ACTED ? LOG_WARN : LOG_INFO;

	if (d->outcome < REFLEX_OUTCOME_COUNT)
		metric_add(decisions_counted(d->outcome), 1);
	log_msg(level, "decision %s: rule %s, %s on pid %d (%s): %s %s: %s", d->id, d->rule,
		condition_kind_name(d->condition.kind), t->pid, t->comm, d->action,
		decision_outcome_name(d->outcome), d->detail);
}

static void delay_expired(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct act_run *run = w->data;

	run->impl->start(run);
}

int act_execute(struct act_executor *x, const struct decision *d,
		const struct act_ops *ops, const void *params)
{
	size_t i = impl_index(ops);
	struct act_run *run;

	if (d->outcome != REFLEX_OUTCOME_PENDING) {
		log_decision(d);
		if (journal_write(x->journal, d)) {
			log_error("journal: cannot record decision %s: %s", d->id,
				  journal_errmsg(x->journal));
			return -EIO;
		}
		return 0;
	}
	if (!act_impls[i])
		return -ENOSYS;
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->loop = x->loop;
	run->executor = x;
	run->ops = ops;
	run->impl = act_impls[i];
	run->actuator = x->opened[i];
	run->decision = *d;
	memcpy(run->params, params, ops->params_size);
	/* write-ahead: no record on disk, no action */
	if (journal_write(x->journal, &run->decision)) {
		log_error("journal: cannot record the intent of decision %s: %s; action not taken",
			  d->id, journal_errmsg(x->journal));
		free(run);
		return -EIO;
	}
	log_debug("decision %s: intent recorded", d->id);
	run->next = x->running;
	x->running = run;
	if (x->delay_ns) {
		ev_timer_init(&run->delay, delay_expired, (double)x->delay_ns / 1e9, 0);
		run->delay.data = run;
		ev_timer_start(x->loop, &run->delay);
	} else {
		run->impl->start(run);
	}
	return 0;
}

void act_finish(struct act_run *run)
{
	struct act_executor *x = run->executor;
	struct act_run **p;

	ev_timer_stop(run->loop, &run->delay);
	if (run->state && run->impl->release)
		run->impl->release(run);
	log_decision(&run->decision);
	if (journal_complete(x->journal, &run->decision))
		log_error("journal: cannot record the outcome of decision %s: %s",
			  run->decision.id, journal_errmsg(x->journal));
	for (p = &x->running; *p; p = &(*p)->next) {
		if (*p == run) {
			*p = run->next;
			break;
		}
	}
	free(run);
}

void act_outcome(struct act_run *run, enum decision_outcome outcome, const char *fmt, ...)
{
	char *detail = run->decision.detail;
	size_t used = strlen(detail);
	va_list ap;

	run->decision.outcome = outcome;
	va_start(ap, fmt);
	vsnprintf(detail + used, sizeof(run->decision.detail) - used, fmt, ap);
	va_end(ap);
}

void act_end(struct act_run *run, enum decision_outcome outcome, const char *fmt, ...)
{
	char detail[sizeof(run->decision.detail)];
	va_list ap;

	va_start(ap, fmt);
	vsnprintf(detail, sizeof(detail), fmt, ap);
	va_end(ap);
	act_outcome(run, outcome, "%s", detail);
	act_finish(run);
}

static void cancel_delayed(struct act_run *run)
{
	act_end(run, REFLEX_OUTCOME_FAILED, "not taken: reflexd stopped before the action started");
}

void act_shutdown(struct act_executor *x)
{
	while (x->running) {
		struct act_run *run = x->running;

		if (ev_is_active(&run->delay))
			cancel_delayed(run);
		else
			run->impl->cancel(run);
	}
}
