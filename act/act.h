/* Actuators: one ops table each (name, parse, start). The executor here
 * owns what every action shares: the write-ahead intent, the outcome record,
 * and runs still going at shutdown. Dry-run never reaches an actuator: the
 * engine turns it into a record. */
#ifndef REFLEX_ACT_ACT_H
#define REFLEX_ACT_ACT_H

#include <ev.h>
#include <lua.h>

#include "record/journal.h"
#include "lib/util.h"
#include "model/decision.h"

#define REFLEX_ACT_PARAMS_MAX 256

struct act_run;

struct act_ops {
	const char *name;
	/* Validates the Lua table at idx into params (params_size bytes, flat:
	 * the executor copies it). 0, or -EINVAL with the reason in err. */
	int (*parse)(lua_State *L, int idx, void *params, char *err, size_t errlen);
	size_t params_size;
	/* params as a JSON object, for the decision record */
	void (*describe)(const void *params, struct sbuf *json);
	/* Begins the action on run->decision's target. Calls act_end(run) (or
	 * act_finish) exactly once, before returning or later from the loop, with the
	 * decision's outcome and detail set. */
	void (*start)(struct act_run *run);
	/* Ends a run still going at shutdown; must call act_end(run). */
	void (*cancel)(struct act_run *run);
	/* Frees run->state, which the run no longer needs (NULL: nothing to
	 * free); called by act_finish. */
	void (*release)(struct act_run *run);
	/* The action that undoes this one, with the same params, run by the
	 * engine when the condition is gone for good (NULL: none). */
	const struct act_ops *undo;
};

struct act_run {
	struct ev_loop *loop;
	struct act_executor *executor;
	const struct act_ops *ops;
	struct decision decision;
	unsigned char params[REFLEX_ACT_PARAMS_MAX];
	ev_timer delay;
	void *state; /* the actuator's own */
	struct act_run *next;
};

struct act_executor {
	struct ev_loop *loop;
	struct journal *journal;
	uint64_t delay_ns; /* a pause between intent and action, for crash tests */
	struct act_run *running;
};

const struct act_ops *act_find(const char *name);
/* Every actuator, NULL-terminated. */
extern const struct act_ops *const act_all[];

/* Records decision d. When its outcome is pending, d is a live action: the
 * intent is written durably first, then the actuator starts and the outcome
 * completes the record. 0, or -EIO when the journal failed (and then no
 * action was taken). */
int act_execute(struct act_executor *x, const struct decision *d,
		const struct act_ops *ops, const void *params);
/* Sets run's outcome and appends to its detail (which may already say
 * which rung of a ladder this is). */
void act_outcome(struct act_run *run, enum decision_outcome outcome, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
void act_finish(struct act_run *run);
/* act_outcome, then act_finish. The arguments may point into run. */
void act_end(struct act_run *run, enum decision_outcome outcome, const char *fmt, ...)
	__attribute__((format(printf, 3, 4)));
/* Makes reflexd_decisions_total{outcome} for every final outcome, at 0:
 * a family that appears only at its first decision breaks rate() and
 * alerts on absent series. */
void act_count_init(void);
/* Cancels the runs still going: each ends with its outcome recorded. */
void act_shutdown(struct act_executor *x);

extern const struct act_ops act_signal_ops;
extern const struct act_ops act_traffic_shift_ops;
extern const struct act_ops act_traffic_restore_ops;
extern const struct act_ops act_k8s_restart_pod_ops, act_k8s_evict_pod_ops,
	act_k8s_cordon_node_ops, act_k8s_scale_ops, act_k8s_label_ops, act_k8s_annotate_ops;

struct k8s_client;
/* The API client the k8s.* actions use (NULL: they fail, saying why). */
void act_k8s_set_client(struct k8s_client *k);
/* The signal a one-step signal action sends (no followup), or 0 for any
 * other action: what an in-kernel rule can have the kernel send. */
int act_signal_single(const struct act_ops *ops, const void *params);
/* "SIGKILL" for SIGKILL, "?" for a signal reflexd does not name. */
const char *act_signal_name(int sig);

#endif
