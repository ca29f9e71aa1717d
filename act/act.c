#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "act/act.h"
#include "lib/log.h"
#include "lib/metrics.h"

const struct act_ops *const act_all[] = {
	&act_signal_ops, &act_traffic_shift_ops, &act_traffic_restore_ops,
	&act_k8s_restart_pod_ops, &act_k8s_evict_pod_ops, &act_k8s_cordon_node_ops,
	&act_k8s_scale_ops, &act_k8s_label_ops, &act_k8s_annotate_ops, NULL,
};

_Static_assert(sizeof(act_all) / sizeof(act_all[0]) <= REFLEX_ACT_OPS_MAX + 1,
	       "raise REFLEX_ACT_OPS_MAX");

static size_t ops_index(const struct act_ops *ops)
{
	size_t i = 0;

	while (act_all[i] && act_all[i] != ops)
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
	for (size_t i = 0; act_all[i]; i++) {
		const struct act_ops *ops = act_all[i];
		int rc;

		if (!ops->open || x->is_open[i] || !of_actuator(ops->name, actuator))
			continue;
		rc = ops->open(env, &x->opened[i]);
		if (rc)
			return rc;
		x->is_open[i] = true;
		/* the actions with the same open share what it made */
		for (size_t k = i + 1; act_all[k]; k++) {
			if (act_all[k]->open != ops->open)
				continue;
			x->opened[k] = x->opened[i];
			x->is_open[k] = true;
		}
	}
	return 0;
}

void act_close(struct act_executor *x)
{
	for (size_t i = 0; act_all[i]; i++) {
		if (!x->is_open[i])
			continue;
		if (act_all[i]->close)
			act_all[i]->close(x->opened[i]);
		/* once: the actions that shared it are closed with it */
		for (size_t k = i; act_all[k]; k++) {
			if (act_all[k]->open != act_all[i]->open)
				continue;
			x->is_open[k] = false;
			x->opened[k] = NULL;
		}
	}
}

const struct act_ops *act_find(const char *name)
{
	for (int i = 0; act_all[i]; i++)
		if (strcmp(act_all[i]->name, name) == 0)
			return act_all[i];
	return NULL;
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

	run->ops->start(run);
}

int act_execute(struct act_executor *x, const struct decision *d,
		const struct act_ops *ops, const void *params)
{
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
	run = calloc(1, sizeof(*run));
	if (!run)
		return -ENOMEM;
	run->loop = x->loop;
	run->executor = x;
	run->ops = ops;
	run->actuator = x->opened[ops_index(ops)];
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
		ops->start(run);
	}
	return 0;
}

void act_finish(struct act_run *run)
{
	struct act_executor *x = run->executor;
	struct act_run **p;

	ev_timer_stop(run->loop, &run->delay);
	if (run->state && run->ops->release)
		run->ops->release(run);
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
			run->ops->cancel(run);
	}
}
