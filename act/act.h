/* Actuators, as plugins: per action, an ops table (name, a declarative
 * parameter table, its record: act/actions.c) and a runtime (open/close,
 * start, cancel). An actuator never sees the rule language: the rule
 * loader (decide/params.c) reads an action's Lua table against its
 * act_param table. The executor here owns what every action
 * shares: what open returned, the write-ahead intent, the outcome record,
 * and runs still going at shutdown. Dry-run never reaches an actuator: the
 * engine turns it into a record. */
#ifndef REFLEX_ACT_ACT_H
#define REFLEX_ACT_ACT_H

#include <ev.h>
#include <stdbool.h>

#include "record/journal.h"
#include "lib/util.h"
#include "model/decision.h"

#define REFLEX_ACT_PARAMS_MAX 256
#define REFLEX_ACT_PARAM_COUNT 8

struct act_run;
struct k8s_client;

/* What a parameter holds in the action's params struct, and what the rule
 * loader takes for it. */
enum act_param_type {
	ACT_PARAM_BOOL,     /* bool: true or false */
	ACT_PARAM_INT,      /* int: a whole number from min to max */
	ACT_PARAM_DURATION, /* uint64_t ns: a string like "5s" */
	ACT_PARAM_STRING,   /* char[size]: 1 to size - 1 bytes that check accepts */
	ACT_PARAM_NAME,     /* int: the value of one of names[] */
	ACT_PARAM_PAIRS,    /* char[size]: every other named parameter, as
			     * "key=value\n" lines (string keys and values) */
};

struct act_name {
	const char *name;
	int value;
};

/* One parameter of an action: the loader reads it, checks type and
 * bounds, and writes it at offset in the params struct (zeroed first, then
 * def when not given). An error names the action and the parameter. */
struct act_param {
	const char *name;        /* the key; the positional one: what errors call it */
	enum act_param_type type;
	size_t offset;
	size_t size;             /* STRING, PAIRS: the buffer's size */
	bool positional;         /* the value at [1], not a named key */
	bool required;
	long long min, max;      /* INT: the bounds */
	long long def;           /* BOOL, INT, NAME: the value; DURATION: ns */
	const char *want;        /* what a bad value must be: "a duration like \"5s\"" */
	const struct act_name *names; /* NAME: what it takes, ending at a NULL name */
	const char *noun;        /* NAME: "signal", for "unknown signal 'X'" */
	int (*check)(const char *value); /* STRING: 0 when value is acceptable */
	const char *missing;     /* required: the message when it is absent */
};

/* What the actuators open with: the daemon's loop, journal, host, API
 * client and declared services. No actuator keeps a global. */
struct act_env {
	struct ev_loop *loop;
	struct journal *journal;        /* close records what it undoes there */
	const char *host;
	struct k8s_client *k8s;         /* NULL: not on Kubernetes */
	const struct strlist *services; /* --service values, checked */
};

/* An action as the rule language names it (act/actions.c). */
struct act_ops {
	const char *name;
	/* which of a family sharing a runtime this is (the k8s verbs) */
	int variant;
	/* The parameters, in the order errors list them; params_size bytes
	 * flat (the executor copies it) */
	const struct act_param *params;
	size_t nparams;
	size_t params_size;
	/* Checks what the table cannot say (one parameter against another);
	 * given has bit i set when params[i] was written. 0, or -EINVAL with
	 * the reason in err, prefixed with the action's name. NULL: none. */
	int (*check)(void *params, unsigned given, char *err, size_t errlen);
	/* params as a JSON object, for the decision record */
	void (*describe)(const struct act_ops *ops, const void *params, struct sbuf *json);
	/* The action that undoes this one, with the same params, run by the
	 * engine when the condition is gone for good (NULL: none). */
	const struct act_ops *undo;
};

/* What an action does: its runtime, which the executor runs (act_impls). */
struct act_impl {
	const struct act_ops *ops;
	/* Opens what the action runs on (BPF programs, the API client), once
	 * for every action with the same open: *state goes to each of their
	 * runs (run->actuator), and to close. 0, or -errno (logged, with
	 * context). NULL: nothing to open. */
	int (*open)(const struct act_env *env, void **state);
	/* Undoes open; state may be NULL. */
	void (*close)(void *state);
	/* Begins the action on run->decision's target. Calls act_end(run) (or
	 * act_finish) exactly once, before returning or later from the loop, with the
	 * decision's outcome and detail set. */
	void (*start)(struct act_run *run);
	/* Ends a run still going at shutdown; must call act_end(run). */
	void (*cancel)(struct act_run *run);
	/* Frees run->state, which the run no longer needs (NULL: nothing to
	 * free); called by act_finish. */
	void (*release)(struct act_run *run);
};

#define REFLEX_ACT_OPS_MAX 16

struct act_run {
	struct ev_loop *loop;
	struct act_executor *executor;
	const struct act_ops *ops;
	const struct act_impl *impl;
	struct decision decision;
	unsigned char params[REFLEX_ACT_PARAMS_MAX];
	ev_timer delay;
	void *state;    /* the run's own */
	void *actuator; /* what ops->open made (NULL: not open) */
	struct act_run *next;
};

struct act_executor {
	struct ev_loop *loop;
	struct journal *journal;
	uint64_t delay_ns; /* a pause between intent and action, for crash tests */
	struct act_run *running;
	/* by index in act_impls: what open made, and whether it was opened */
	void *opened[REFLEX_ACT_OPS_MAX];
	bool is_open[REFLEX_ACT_OPS_MAX];
};

const struct act_ops *act_find(const char *name);
/* Every action, NULL-terminated (act/actions.c). */
extern const struct act_ops *const act_all[];
/* Every action's runtime, NULL-terminated (act/act.c). */
extern const struct act_impl *const act_impls[];

/* Opens the actuator `actuator` (signal, traffic, k8s): each action named
 * so or actuator.*, once per open function. 0, or the first -errno. */
int act_open(struct act_executor *x, const char *actuator, const struct act_env *env);
/* Closes everything act_open opened. */
void act_close(struct act_executor *x);
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
extern const struct act_impl act_signal_impl, act_traffic_shift_impl, act_traffic_restore_impl,
	act_k8s_restart_pod_impl, act_k8s_evict_pod_impl, act_k8s_cordon_node_impl,
	act_k8s_scale_impl, act_k8s_label_impl, act_k8s_annotate_impl;

/* The signal a one-step signal action sends (no followup), or 0 for any
 * other action: what an in-kernel rule can have the kernel send. */
int act_signal_single(const struct act_ops *ops, const void *params);
/* "SIGKILL" for SIGKILL, "?" for a signal reflexd does not name. */
const char *act_signal_name(int sig);

#endif
