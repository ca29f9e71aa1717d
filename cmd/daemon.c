/* The daemon: one libev loop drives the sensors' ring buffers, the cron
 * timer that rescans their maps, the engine's hold deadlines, the actions'
 * timers, and the signals that stop and reload it. */
#include <errno.h>
#include <limits.h>
#include <linux/capability.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/inotify.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/statvfs.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "act/act.h"
#include "cmd/daemon.h"
#include "record/journal.h"
#include "k8s/k8s.h"
#include "lib/log.h"
#include "lib/metrics.h"
#include "lib/notify.h"
#include "record/otlp.h"
#include "cmd/probe.h"
#include "decide/arming.h"
#include "decide/engine.h"
#include "sense/identity.h"
#include "sense/sensor.h"
#include "record/trace.h"

#define BPF_FS_MAGIC 0xcafe4a11
#define TRACEFS_MAGIC 0x74726163

/* A sensor or an actuator: asked for, up, or why not. */
struct component {
	bool on, up;
	char why[512];
};

struct daemon {
	struct ev_loop *loop;
	struct config *cfg;
	int argc;
	char **argv;
	char host[64];
	struct ruleset *rules;
	struct protect protect;
	struct decide_config decide;
	struct decide_engine *engine;
	struct decide_arming arming;  /* what the memory sensor is armed with */
	struct journal *journal;
	struct act_executor executor;
	struct act_env act_env;  /* what the actuators open with */
	struct k8s_client *k8s;  /* NULL: not on Kubernetes */
	struct otlp *otlp;              /* NULL: no endpoint configured */
	struct metrics_server *metrics; /* NULL: --metrics not given */
	struct metric *conditions[REFLEX_COND_KIND_COUNT];
	struct metric *eval_seconds, *evals;
	void *sensor_state[REFLEX_SENSORS_MAX]; /* by index in sensors[], NULL when not enabled */
	struct component sensor[REFLEX_SENSORS_MAX];   /* by index in sensors[] */
	struct component actuator[REFLEX_ACTUATORS_MAX]; /* by index in actuators[] */
	struct metric *rules_degraded;
	bool started;         /* sensors and actuators have had their go */
	ev_timer cron;
	ev_timer deadline;
	ev_timer settle;      /* rule files changed: reload when they settle */
	ev_timer stop_after;  /* record --duration */
	ev_timer lag;         /* the loop-lag probe */
	uint64_t lag_due;     /* CLOCK_MONOTONIC when it should run */
	struct metric *loop_lag;
	uint64_t synced_at;   /* the journal's last group commit */
	FILE *trace;          /* recording the condition stream, or NULL */
	uint64_t trace_start; /* CLOCK_MONOTONIC of the trace's t = 0 */
	int inotify_fd;       /* watching the rule paths and files, or -1 */
	ev_io watch;
	/* the directories holding the rule paths, and the names in them
	 * that matter: a rules directory deleted and made again */
	struct rules_parent {
		int wd;
		char name[NAME_MAX + 1];
	} *parents;
	size_t nparents;
	ev_signal sigterm, sigint, sighup;
};

/* Root, or the capabilities reflexd uses: load BPF (CAP_BPF+CAP_PERFMON,
 * or CAP_SYS_ADMIN), read lock owners (CAP_SYS_PTRACE), signal (CAP_KILL). */
static int check_capabilities(void)
{
	struct __user_cap_header_struct hdr = { .version = _LINUX_CAPABILITY_VERSION_3 };
	struct __user_cap_data_struct data[2] = { 0 };
	static const struct {
		int cap;
		const char *name;
	} needed[] = {
		{ CAP_BPF, "CAP_BPF" }, { CAP_PERFMON, "CAP_PERFMON" },
		{ CAP_SYS_PTRACE, "CAP_SYS_PTRACE" }, { CAP_KILL, "CAP_KILL" },
	};
	char missing[128] = "";
	struct sbuf b;

	if (syscall(SYS_capget, &hdr, data))
		return -errno;
	sbuf_init(&b, missing, sizeof(missing));
	for (size_t i = 0; i < ARRAY_SIZE(needed); i++) {
		int c = needed[i].cap;
		bool has = data[c / 32].effective & (1u << (c % 32));

		if ((c == CAP_BPF || c == CAP_PERFMON) &&
		    (data[CAP_SYS_ADMIN / 32].effective & (1u << (CAP_SYS_ADMIN % 32))))
			has = true;
		if (!has)
			sbuf_printf(&b, "%s%s", b.len ? ", " : "", needed[i].name);
	}
	if (!b.len)
		return 0;
	log_error("run: reflexd needs root, or these capabilities it lacks: %s", missing);
	return -EPERM;
}

static int ensure_mounted(const char *path, const char *fstype, long magic)
{
	struct statfs st;

	if (statfs(path, &st) == 0 && st.f_type == magic)
		return 0;
	if (mount(fstype, path, fstype, 0, NULL)) {
		log_error("run: %s is not mounted at %s and mounting it failed: %s", fstype, path,
			  strerror(errno));
		return -errno;
	}
	log_info("mounted %s at %s", fstype, path);
	return 0;
}

static int startup_checks(void)
{
	int err = check_capabilities();

	if (err)
		return err;
	if (access("/sys/kernel/btf/vmlinux", R_OK)) {
		log_error("run: no kernel BTF at /sys/kernel/btf/vmlinux: this kernel needs "
			  "CONFIG_DEBUG_INFO_BTF=y for CO-RE BPF programs");
		return -ENOENT;
	}
	err = ensure_mounted("/sys/kernel/tracing", "tracefs", TRACEFS_MAGIC);
	if (err)
		return err;
	return ensure_mounted("/sys/fs/bpf", "bpf", BPF_FS_MAGIC);
}

static void log_rule_errors(struct strlist *errs)
{
	for (size_t i = 0; i < errs->n; i++)
		log_error("%s", errs->v[i]);
	strlist_free(errs);
}

/* Shadowed rules load (the daemon runs what it is given) but never act:
 * say so, as `reflexd check` would. */
static void warn_shadowed(const struct ruleset *rs)
{
	struct strlist lint = { 0 };

	rules_lint(rs, &lint);
	for (size_t i = 0; i < lint.n; i++)
		log_warn("%s", lint.v[i]);
	strlist_free(&lint);
}

/* The engine reads these at each decision: set at start and on reload. */
static void configure_engine(struct daemon *d)
{
	struct target self;

	d->protect.self = getpid();
	/* reflexd's own pod (its other containers too), when it runs in one */
	if (!d->protect.self_pod_uid[0] && identity_read(getpid(), &self) == 0)
		str_copy(d->protect.self_pod_uid, sizeof(d->protect.self_pod_uid), self.pod_uid);
	d->protect.comm = d->cfg->protect_comm;
	d->protect.exe = d->cfg->protect_exe;
	d->protect.cgroup = d->cfg->protect_cgroup;
	d->protect.namespace = d->cfg->protect_namespace;
	d->protect.labels = d->cfg->protect_labels;
	d->decide.dry_run = d->cfg->dry_run;
	d->decide.kill_switch = d->cfg->kill_switch;
	d->decide.global_max = (uint64_t)d->cfg->budget_max;
	d->decide.global_window_ns = d->cfg->budget_window_ns;
}

/* Rule evaluation time, for /metrics: started at start_ns. */
static void count_eval(struct daemon *d, uint64_t start_ns)
{
	metric_add(d->eval_seconds, (double)(clock_mono_ns() - start_ns) / 1e9);
	metric_add(d->evals, 1);
}

static void schedule_deadline(struct daemon *d)
{
	uint64_t due = decide_next_deadline(d->engine), now = clock_mono_ns();

	ev_timer_stop(d->loop, &d->deadline);
	if (!due)
		return;
	ev_timer_set(&d->deadline, due > now ? (double)(due - now) / 1e9 : 0, 0);
	ev_timer_start(d->loop, &d->deadline);
}

static void on_deadline(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	uint64_t now = clock_mono_ns();

	decide_tick(d->engine, now);
	count_eval(d, now);
	schedule_deadline(d);
}

#define JOURNAL_SYNC_INTERVAL_NS NSEC_PER_SEC

static void on_cron(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	uint64_t now = clock_mono_ns();

	for (size_t i = 0; i < sensors_count; i++)
		if (d->sensor_state[i] && sensors[i]->scan)
			sensors[i]->scan(d->sensor_state[i], now);
	now = clock_mono_ns();
	decide_tick(d->engine, now);
	count_eval(d, now);
	schedule_deadline(d);
	/* the group commit: what dry-run and outcome records committed since
	 * is fsynced at most a second later (docs/journal.md) */
	if (now - d->synced_at >= JOURNAL_SYNC_INTERVAL_NS) {
		if (journal_sync(d->journal))
			log_error("journal: cannot sync: %s", journal_errmsg(d->journal));
		d->synced_at = now;
	}
}

/* A condition in a pod gets the pod's namespace, name, container and
 * labels from the API cache here, before the trace and the engine see it:
 * rules match on them, and a recorded trace replays the same. A pod the
 * cache does not know yet is resolved on a later update. */
static const struct condition *resolve(struct daemon *d, const struct condition *c,
				       struct condition *copy)
{
	if (!d->k8s || !c->target.pod_uid[0])
		return c;
	*copy = *c;
	return k8s_resolve(d->k8s, &copy->target) ? copy : c;
}

/* A condition began (fresh), or has fresh evidence. The trace gets both:
 * rules with thresholds judge the evidence of the moment (a leak's rate
 * grows), so a replay must see what live saw. */
static void condition_in(struct daemon *d, const struct condition *raised, bool fresh)
{
	uint64_t now = clock_mono_ns();
	struct condition copy;
	const struct condition *c = resolve(d, raised, &copy);

	if (d->trace)
		trace_write_raise(d->trace, now - d->trace_start,
				  (int64_t)c->since_ns - (int64_t)d->trace_start, c);
	if (fresh && c->kind < REFLEX_COND_KIND_COUNT)
		metric_add(d->conditions[c->kind], 1);
	decide_raise(d->engine, c, now);
	count_eval(d, now);
}

static void on_raise(void *ctx, const struct condition *c)
{
	condition_in(ctx, c, true);
}

static void on_update(void *ctx, const struct condition *c)
{
	condition_in(ctx, c, false);
}

static void on_clear(void *ctx, uint64_t id)
{
	struct daemon *d = ctx;
	uint64_t now = clock_mono_ns();

	if (d->trace)
		trace_write_clear(d->trace, now - d->trace_start, id);
	decide_clear(d->engine, id, now);
}

/* The loop's lag: how late a timer runs, measured on a probe timer of its
 * own. Its period is off the scan interval's multiples so that over time
 * it lands at every phase of the cron's work, and sees what that work
 * makes the other watchers wait. */
#define LOOP_LAG_PERIOD 0.097
static const double loop_lag_bounds[] = {
	0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5,
};

static void lag_arm(struct daemon *d)
{
	/* libev counts the timer from the loop's cached time: refresh it so
	 * that time spent since the loop woke is not taken for lag */
	ev_now_update(d->loop);
	d->lag_due = clock_mono_ns() + (uint64_t)(LOOP_LAG_PERIOD * 1e9);
	ev_timer_set(&d->lag, LOOP_LAG_PERIOD, 0);
	ev_timer_start(d->loop, &d->lag);
}

static void on_lag(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct daemon *d = w->data;
	uint64_t now = clock_mono_ns();

	metric_observe(d->loop_lag, now > d->lag_due ? (double)(now - d->lag_due) / 1e9 : 0);
	lag_arm(d);
}

static void on_duration(struct ev_loop *loop, ev_timer *w, int revents)
{
	log_info("recorded for the given duration: stopping");
	ev_break(loop, EVBREAK_ALL);
}

static void on_decision(void *ctx, struct decision *dec, const struct rule_action *action)
{
	struct daemon *d = ctx;

	(void)act_execute(&d->executor, dec, action ? action->ops : NULL,
			  action ? action->params : NULL);
}

static void on_verified(void *ctx, const char *id, bool cleared, const char *result)
{
	struct daemon *d = ctx;

	log_msg(cleared ? LOG_INFO : LOG_WARN, "decision %s: verification: %s", id, result);
	if (journal_verify(d->journal, id, result))
		log_error("journal: cannot record the verification of decision %s: %s", id,
			  journal_errmsg(d->journal));
}

/* Cooldowns and budgets outlive a restart: the journal remembers what was
 * done, and the engine is told again. */
static int restore_guard(const struct decision *dec, void *ctx)
{
	struct daemon *d = ctx;

	decide_restore(d->engine, dec, clock_mono_ns());
	return 0;
}

static void on_stop(struct ev_loop *loop, ev_signal *w, int revents)
{
	log_info("signal %d: stopping", w->signum);
	ev_break(loop, EVBREAK_ALL);
}

/* Every reload, taken or refused, is a record in the journal too, and
 * systemd's status line says which rules run. */
static void record_reload(struct daemon *d, bool ok, const char *why, const char *detail)
{
	struct decision *dec = calloc(1, sizeof(*dec));

	if (ok)
		(void)notify_send("STATUS=running: reloaded: %s", detail);
	else
		(void)notify_send("STATUS=running: reload rejected, the running rules stay");
	if (!dec)
		return;
	uuid_v7(dec->id);
	dec->time_ns = clock_real_ns();
	dec->mode = d->cfg->dry_run ? REFLEX_MODE_DRY_RUN : REFLEX_MODE_LIVE;
	str_copy(dec->host, sizeof(dec->host), d->host);
	str_copy(dec->rule, sizeof(dec->rule), "(rules)");
	dec->condition.kind = REFLEX_COND_KIND_COUNT;
	str_copy(dec->action, sizeof(dec->action), "reload");
	dec->outcome = ok ? REFLEX_OUTCOME_ACTED : REFLEX_OUTCOME_FAILED;
	snprintf(dec->detail, sizeof(dec->detail), "%s after %s", detail, why);
	if (journal_write(d->journal, dec))
		log_error("journal: cannot record the reload: %s", journal_errmsg(d->journal));
	free(dec);
}

static void on_rules_changed(struct ev_loop *loop, ev_io *w, int revents);
static void report_rule_needs(struct daemon *d);

static void unwatch_rules(struct daemon *d)
{
	free(d->parents);
	d->parents = NULL;
	d->nparents = 0;
	if (d->inotify_fd < 0)
		return;
	ev_io_stop(d->loop, &d->watch);
	close(d->inotify_fd);
	d->inotify_fd = -1;
}

/* Watches the directory holding path for its entry: a rules directory (or
 * file) deleted and created again is a new inode, which the watch on the
 * old one never sees. Only events naming it count (on_rules_changed). */
static void watch_parent(struct daemon *d, const char *path, const int *rule_wds, size_t n)
{
	const uint32_t mask = IN_CREATE | IN_DELETE | IN_MOVED_FROM | IN_MOVED_TO | IN_ONLYDIR | IN_MASK_ADD;
	char dir[PATH_MAX], *slash;
	const char *parent = ".", *name = dir;
	size_t len;
	int wd;

	str_copy(dir, sizeof(dir), path);
	for (len = strlen(dir); len > 1 && dir[len - 1] == '/';)
		dir[--len] = '\0';
	if ((slash = strrchr(dir, '/'))) {
		*slash = '\0';
		parent = slash == dir ? "/" : dir;
		name = slash + 1;
	}
	if (!*name)
		return; /* "/" has no parent */
	wd = inotify_add_watch(d->inotify_fd, parent, mask);
	if (wd < 0)
		return;
	/* a parent that is itself a rules path: all its events count */
	for (size_t i = 0; i < n; i++)
		if (rule_wds[i] == wd)
			return;
	d->parents[d->nparents].wd = wd;
	str_copy(d->parents[d->nparents].name, sizeof(d->parents[0].name), name);
	d->nparents++;
}

/* Watches every rules path and every file loaded from them: a file edited
 * in place, or a directory whose entries change (a Kubernetes ConfigMap
 * volume swaps its ..data symlink); and the parent of each rules path, for
 * one deleted and made again. Any event counts: comparing stat results
 * would miss a same-size edit within the same second. */
static void watch_rules(struct daemon *d)
{
	const uint32_t mask = IN_MODIFY | IN_CLOSE_WRITE | IN_ATTRIB | IN_CREATE | IN_DELETE |
			      IN_MOVED_FROM | IN_MOVED_TO | IN_DELETE_SELF | IN_MOVE_SELF;
	size_t n = d->cfg->rules.n + d->rules->nfiles;
	int *wds = calloc(n + 1, sizeof(*wds));

	unwatch_rules(d);
	d->parents = calloc(d->cfg->rules.n + 1, sizeof(*d->parents));
	d->inotify_fd = wds && d->parents ? inotify_init1(IN_NONBLOCK | IN_CLOEXEC) : -1;
	if (d->inotify_fd < 0) {
		log_warn("rules: cannot watch the rule files (%s); SIGHUP still reloads",
			 strerror(errno));
		free(wds);
		return;
	}
	for (size_t i = 0; i < n; i++) {
		const char *path = i < d->cfg->rules.n ? d->cfg->rules.v[i]
				 : d->rules->files[i - d->cfg->rules.n];

		if ((wds[i] = inotify_add_watch(d->inotify_fd, path, mask)) < 0)
			log_warn("rules: cannot watch %s: %s", path, strerror(errno));
	}
	for (size_t i = 0; i < d->cfg->rules.n; i++)
		watch_parent(d, d->cfg->rules.v[i], wds, n);
	free(wds);
	ev_io_init(&d->watch, on_rules_changed, d->inotify_fd, EV_READ);
	d->watch.data = d;
	ev_io_start(d->loop, &d->watch);
}

/* Everything new is checked before anything old is let go: a bad edit is
 * rejected whole and the running rules carry on. */
static void reload(struct daemon *d, const char *why)
{
	struct strlist errs = { 0 };
	struct config fresh;
	struct ruleset *rules;
	char detail[512];

	log_info("reloading after %s", why);
	if (config_parse(&fresh, CMD_RUN, d->argc, d->argv)) {
		log_error("reload rejected: bad options; the running rules stay");
		record_reload(d, false, why, "rejected: bad options; the running rules stay");
		config_free(&fresh);
		goto cleanup;
	}
	rules = rules_load(fresh.rules.v, fresh.rules.n, fresh.rule_timeout_ns, &errs);
	if (!rules) {
		snprintf(detail, sizeof(detail), "rejected (%zu errors; the running rules stay): %s",
			 errs.n, errs.n ? errs.v[0] : "?");
		record_reload(d, false, why, detail);
		log_rule_errors(&errs);
		log_error("reload rejected: the running rules stay");
		config_free(&fresh);
		goto cleanup;
	}
	warn_shadowed(rules);
	/* the watchers hold the old paths, which the swap frees */
	unwatch_rules(d);
	config_apply_reloadable(d->cfg, &fresh);
	config_free(&fresh);
	log_threshold = (enum log_level)log_level_parse(d->cfg->log_level);
	configure_engine(d);
	decide_set_rules(d->engine, rules);
	rules_free(d->rules);
	d->rules = rules;
	report_rule_needs(d);
	snprintf(detail, sizeof(detail), "loaded %zu rules from %zu files%s", rules->n,
		 rules->nfiles, d->cfg->dry_run ? ", dry-run" : "");
	record_reload(d, true, why, detail);
	log_info("reloaded: %s", detail);
cleanup:
	/* taken or refused, watch what is there now: a deleted rules
	 * directory's watch is gone, and its parent's waits for it */
	watch_rules(d);
}

static void on_reload(struct ev_loop *loop, ev_signal *w, int revents)
{
	reload(w->data, "SIGHUP");
}

/* An editor or a ConfigMap update touches several files in a row: reload
 * once, when they have settled. */
static void on_rules_changed(struct ev_loop *loop, ev_io *w, int revents)
{
	struct daemon *d = w->data;
	char events[4096] __attribute__((aligned(__alignof__(struct inotify_event))));
	bool changed = false;
	ssize_t len;

	while ((len = read(d->inotify_fd, events, sizeof(events))) > 0) {
		const struct inotify_event *ev;

		for (char *p = events; p < events + len; p += sizeof(*ev) + ev->len) {
			bool parent = false, named = false;

			ev = (const struct inotify_event *)p;
			for (size_t i = 0; i < d->nparents; i++) {
				if (d->parents[i].wd != ev->wd)
					continue;
				parent = true;
				named |= ev->len && !strcmp(ev->name, d->parents[i].name);
			}
			/* in a parent, only the rules path's own entry */
			changed |= !parent || named;
		}
	}
	if (!changed)
		return;
	ev_timer_stop(loop, &d->settle);
	ev_timer_set(&d->settle, 0.3, 0.);
	ev_timer_start(loop, &d->settle);
}

static void on_rules_settled(struct ev_loop *loop, ev_timer *w, int revents)
{
	reload(w->data, "a change to the rule files");
}

static void recovered(const struct decision *dec, void *ctx)
{
	log_warn("decision %s (rule %s, %s on pid %d): outcome unknown: reflexd stopped "
		 "between recording the intent to run %s and its outcome",
		 dec->id, dec->rule, condition_kind_name(dec->condition.kind),
		 dec->condition.target.pid, dec->action);
}

static bool required(const struct daemon *d, const char *sensor)
{
	for (size_t k = 0; k < d->cfg->require.n; k++)
		if (!strcmp(d->cfg->require.v[k], sensor))
			return true;
	return false;
}

/* A sensor or actuator starting: what it logs is held back, and libbpf's
 * reason kept, so that a failure is one line (component_end). */
static void component_begin(struct component *c)
{
	log_hold();
	probe_capture_begin(c->why, sizeof(c->why));
}

/* Ends component_begin with the start's result err. On failure the lines
 * it logged go out at debug level (--log-level debug shows the verifier's
 * log) and c->why says why: the component's own complaint, less its name,
 * then libbpf's. */
static void component_end(struct component *c, const char *name, int err)
{
	char own[512], lib[sizeof(c->why)];
	const char *said = own;
	size_t n = strlen(name);
	struct sbuf b;

	probe_capture_end();
	log_release(err != 0, own, sizeof(own));
	c->up = !err;
	if (!err)
		return;
	if (!strncmp(own, name, n) && !strncmp(own + n, ": ", 2))
		said += n + 2;
	str_copy(lib, sizeof(lib), c->why);
	sbuf_init(&b, c->why, sizeof(c->why));
	sbuf_printf(&b, "%s%s%s", *said ? said : strerror(-err), lib[0] ? "; libbpf: " : "", lib);
}

/* Every sensor --sensors names (default: all), each on its own: one that
 * cannot run on this kernel is logged once with the reason, shows as down
 * in /metrics and /readyz, and the others run. Only a sensor --require
 * names stops reflexd when it cannot start. */
static int start_sensors(struct daemon *d)
{
	const struct strlist *want = &d->cfg->sensors;
	struct sensor_env env = {
		.loop = d->loop, .cfg = &d->cfg->sense,
		.sink = { .raise = on_raise, .update = on_update, .clear = on_clear, .ctx = d },
		.arming = decide_arming_policy(&d->arming),
	};

	for (size_t i = 0; i < sensors_count; i++) {
		struct component *c = &d->sensor[i];
		const char *name = sensors[i]->name;
		int err;

		c->on = !want->n;
		for (size_t k = 0; !c->on && k < want->n; k++)
			c->on = strcmp(want->v[k], name) == 0;
		if (!c->on && required(d, name)) {
			log_error("run: --require %s, but --sensors leaves the %s sensor out", name, name);
			return -1;
		}
		if (!c->on)
			continue;
		if (!probe_forced_down(name, c->why, sizeof(c->why))) {
			component_begin(c);
			d->sensor_state[i] = sensors[i]->start(&env);
			err = d->sensor_state[i] ? 0 : errno ? -errno : -EINVAL;
			component_end(c, name, err);
		}
		metric_set(metrics_gauge("reflexd_sensor_up", "1: the sensor runs; 0: it cannot run here "
					 "(reflexd probe says why)", "sensor", name), c->up);
		if (c->up) {
			sensor_drops(name, 0);
			continue;
		}
		if (required(d, name)) {
			log_error("run: --require %s: the %s sensor cannot run here: %s (it needs Linux %s)",
				  name, name, c->why, sensors[i]->needs.kernel);
			return -1;
		}
		log_warn("sensor %s cannot run here, the others run without it: %s (it needs Linux %s)",
			 name, c->why, sensors[i]->needs.kernel);
	}
	return 0;
}

/* The actuators each start on their own too: signal (pidfd), traffic (its
 * BPF programs, attached when --service declares services, loaded as a
 * check otherwise), k8s (the API client start_k8s made, or not). A rule
 * whose action cannot run here still decides, and its decisions record
 * the failure. */
static void start_actuators(struct daemon *d)
{
	for (size_t i = 0; i < actuators_count; i++) {
		const struct actuator *a = &actuators[i];
		struct component *c = &d->actuator[i];
		int err;

		c->on = true;
		if (probe_forced_down(a->name, c->why, sizeof(c->why))) {
			c->up = false;
		} else if (!strcmp(a->name, "traffic")) {
			/* with no services: takes away the steering a previous run left */
			component_begin(c);
			err = act_open(&d->executor, a->name, &d->act_env);
			if (!err && !d->cfg->services.n)
				err = probe_load(a->bpf);
			component_end(c, a->name, err);
		} else if (!strcmp(a->name, "k8s")) {
			c->up = d->k8s != NULL;
			if (!c->up)
				snprintf(c->why, sizeof(c->why), "%s", K8S_NOT_CONFIGURED);
		} else {
			c->up = a->check(d->cfg, c->why, sizeof(c->why)) == 0;
		}
		metric_set(metrics_gauge("reflexd_actuator_up", "1: the actuator can act; 0: it cannot here "
					 "(reflexd probe says why)", "actuator", a->name), c->up);
		if (!c->up)
			log_warn("actuator %s cannot act here, rules that use it record failed decisions: "
				 "%s (it needs %s)", a->name, c->why, a->bpf ? a->bpf->kernel : a->needs);
	}
}

/* A rule is never silently dead: at start and on every reload, each rule
 * whose condition comes from a sensor that is not running, or whose action
 * runs on an actuator that cannot act here, is named in the log and
 * counted (reflexd_rules_degraded). It stays loaded: the rule set is what
 * was reviewed, and it runs as it is once the host can run it
 * (docs/architecture.md). */
static void report_rule_needs(struct daemon *d)
{
	size_t degraded = 0;

	for (size_t i = 0; i < d->rules->n; i++) {
		const struct rule *r = &d->rules->rules[i];
		bool missing = false;

		for (size_t k = 0; !r->any_kind && k < sensors_count; k++) {
			const struct component *c = &d->sensor[k];

			if (!(sensors[k]->kinds & (1u << r->kind)) || c->up)
				continue;
			missing = true;
			log_warn("%s:%d: rule '%s' needs the %s sensor, which %s%s", r->file, r->line, r->name,
				 sensors[k]->name, c->on ? "cannot run here: " : "is not started (--sensors)",
				 c->on ? c->why : "");
		}
		for (size_t k = 0; k < r->rungs; k++) {
			const struct act_ops *ops = r->ladder[k].ops;
			const struct actuator *a = ops ? actuator_of(ops->name) : NULL;
			const struct component *c = a ? &d->actuator[a - actuators] : NULL;

			if (!c || !c->on || c->up)
				continue;
			missing = true;
			log_warn("%s:%d: rule '%s' acts with %s, which cannot act here: %s", r->file, r->line,
				 r->name, ops->name, c->why);
		}
		degraded += missing;
	}
	if (!d->rules_degraded)
		d->rules_degraded = metrics_gauge("reflexd_rules_degraded",
						  "rules loaded whose sensor or actuator cannot run here", NULL, NULL);
	metric_set(d->rules_degraded, (double)degraded);
}

/* The journal can take a write: the file and its directory (SQLite's WAL
 * and journal files go there) are writable on a writable filesystem with
 * room left. A few syscalls, cheap enough for every probe. */
static int journal_writable(const char *path, char *why, size_t size)
{
	char dir[4096];
	struct statvfs st;
	char *slash;
	int err;

	str_copy(dir, sizeof(dir), path);
	slash = strrchr(dir, '/');
	if (!slash)
		str_copy(dir, sizeof(dir), ".");
	else
		slash[slash == dir] = '\0';
	/* errno first: snprintf and strerror may change it */
	if (access(path, W_OK) || access(dir, W_OK)) {
		err = errno;
		snprintf(why, size, "journal %s is not writable: %s", path, strerror(err));
		return -err;
	}
	if (statvfs(dir, &st)) {
		err = errno;
		snprintf(why, size, "journal %s: %s", path, strerror(err));
		return -err;
	}
	if (st.f_flag & ST_RDONLY || !st.f_bfree) {
		snprintf(why, size, "journal %s is not writable: %s", path,
			 st.f_flag & ST_RDONLY ? "read-only filesystem" : "no space left on the device");
		return st.f_flag & ST_RDONLY ? -EROFS : -ENOSPC;
	}
	return 0;
}

/* /readyz: ready when the rules are loaded, at least one sensor and every
 * --require'd one runs, and the journal can be written. A sensor that
 * cannot run here leaves the node ready but degraded, said in the body. */
static bool daemon_ready(void *ctx, struct sbuf *body)
{
	struct daemon *d = ctx;
	char missing[1024] = "", why[512];
	size_t up = 0, on = 0;
	struct sbuf m;

	sbuf_init(&m, missing, sizeof(missing));
	if (!d->started)
		sbuf_puts(&m, "; the rules and sensors are starting");
	for (size_t i = 0; i < sensors_count; i++) {
		on += d->sensor[i].on;
		up += d->sensor[i].up;
		if (d->sensor[i].on && !d->sensor[i].up && required(d, sensors[i]->name))
			sbuf_printf(&m, "; the required sensor %s is down", sensors[i]->name);
	}
	if (d->started && on && !up)
		sbuf_puts(&m, "; no sensor runs");
	if (journal_writable(d->cfg->journal, why, sizeof(why)))
		sbuf_printf(&m, "; %s", why);
	if (m.len)
		sbuf_printf(body, "not ready: %s\n", missing + 2);
	else
		sbuf_puts(body, "ready\n");
	for (size_t i = 0; i < sensors_count; i++)
		if (d->sensor[i].on && !d->sensor[i].up)
			sbuf_printf(body, "degraded: sensor %s is down: %s\n", sensors[i]->name, d->sensor[i].why);
	for (size_t i = 0; i < actuators_count; i++)
		if (d->actuator[i].on && !d->actuator[i].up)
			sbuf_printf(body, "degraded: actuator %s is down: %s\n", actuators[i].name,
				    d->actuator[i].why);
	return !m.len;
}

/* On Kubernetes (in a pod, or given a kubeconfig) the k8s.* actions get
 * an API client; elsewhere they fail, saying why. Credentials that are
 * there but bad stop reflexd: acting blind is worse. */
static int start_k8s(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	const char *node = cfg->node_name ? cfg->node_name : getenv("NODE_NAME");
	struct k8s_options o = {
		.kubeconfig = cfg->kubeconfig, .sa_dir = cfg->k8s_sa_dir,
		.node = node && *node ? node : d->host, .namespace = cfg->k8s_namespace,
		.timeout_ns = cfg->k8s_timeout_ns, .retries = (unsigned)cfg->k8s_retries,
		.refresh_ns = cfg->k8s_refresh_ns, .budget_max = (unsigned)cfg->k8s_budget_max,
		.budget_window_ns = cfg->k8s_budget_window_ns,
	};
	char err[512];

	if (!k8s_configured(cfg->kubeconfig)) {
		log_info("kubernetes: %s: k8s.* actions are off", K8S_NOT_CONFIGURED);
		return 0;
	}
	d->k8s = k8s_new(d->loop, &o, err, sizeof(err));
	if (!d->k8s) {
		log_error("run: kubernetes: %s", err);
		return -EINVAL;
	}
	log_info("kubernetes: node %s, API server via %s", o.node,
		 cfg->kubeconfig ? cfg->kubeconfig : "the in-cluster service account");
	return 0;
}

static void daemon_stop(struct daemon *d)
{
	if (d->loop) {
		notify_stopping(d->loop);
		ev_timer_stop(d->loop, &d->cron);
		ev_timer_stop(d->loop, &d->deadline);
		ev_signal_stop(d->loop, &d->sigterm);
		ev_signal_stop(d->loop, &d->sigint);
		ev_signal_stop(d->loop, &d->sighup);
		ev_timer_stop(d->loop, &d->settle);
		ev_timer_stop(d->loop, &d->stop_after);
		ev_timer_stop(d->loop, &d->lag);
		unwatch_rules(d);
	}
	if (d->executor.journal)
		act_shutdown(&d->executor);
	act_close(&d->executor);
	k8s_free(d->k8s);
	/* after the last outcomes are queued; what is unsent stays queued */
	otlp_free(d->otlp);
	metrics_server_free(d->metrics);
	for (size_t i = 0; i < sensors_count; i++)
		if (d->sensor_state[i])
			sensors[i]->stop(d->sensor_state[i]);
	decide_free(d->engine);
	journal_free(d->journal);
	rules_free(d->rules);
	if (d->trace && fclose(d->trace))
		log_error("record: writing the trace: %s", strerror(errno));
}

/* The trace being recorded (record --out), the journal, the loop and the
 * /metrics server: 0, or the exit status (logged). */
static int open_outputs(struct daemon *d)
{
	const struct config *cfg = d->cfg;
	char err[512];

	if (startup_checks())
		return 1;
	if (cfg->record) {
		d->trace = fopen(cfg->record, "we");
		if (!d->trace) {
			log_error("record: %s: %s", cfg->record, strerror(errno));
			return 1;
		}
		/* whole lines reach the file as they happen */
		setvbuf(d->trace, NULL, _IOLBF, 0);
		d->trace_start = clock_mono_ns();
		trace_write_header(d->trace, clock_real_ns());
	}
	d->journal = journal_open(cfg->journal, false, err, sizeof(err));
	if (!d->journal) {
		log_error("run: journal: %s", err);
		return 1;
	}
	d->loop = EV_DEFAULT;
	if (cfg->metrics) {
		d->metrics = metrics_serve(d->loop, cfg->metrics, err, sizeof(err));
		if (!d->metrics) {
			log_error("run: %s", err);
			return 1;
		}
		log_info("metrics: serving /metrics, /healthz and /readyz on %s", cfg->metrics);
	}
	return 0;
}

/* The daemon's own series, made at 0 before anything counts. */
static void make_metrics(struct daemon *d)
{
	for (int k = 0; k < REFLEX_COND_KIND_COUNT; k++)
		d->conditions[k] = metrics_counter("reflexd_conditions_total", "conditions raised by the sensors",
						   "kind", condition_kind_name((enum condition_kind)k));
	d->eval_seconds = metrics_counter("reflexd_rule_eval_seconds_total",
					  "time spent evaluating rules", NULL, NULL);
	d->evals = metrics_counter("reflexd_rule_evals_total", "rule evaluations (raises, updates, ticks)",
				   NULL, NULL);
	d->loop_lag = metrics_histogram("reflexd_loop_lag_seconds",
					"how late the event loop runs a timer that is due",
					loop_lag_bounds, ARRAY_SIZE(loop_lag_bounds));
	act_count_init();
}

/* The OTLP exporter when an endpoint is configured (export): 0 or -errno,
 * logged. Before the journal's recovery, whose outcomes are exported too. */
static int start_export(struct daemon *d, struct otlp_settings *otlp, int export)
{
	if (export) {
		log_info("otlp: exporting decisions to %s%s", otlp->url, otlp->gzip ? " (gzip)" : "");
		d->otlp = otlp_new(d->loop, d->journal, otlp);
		if (!d->otlp) {
			log_error("run: OTLP export: cannot start: %s", strerror(errno));
			return -EIO;
		}
	} else if (d->cfg->command == CMD_RUN) {
		log_info("otlp: no endpoint configured (OTEL_EXPORTER_OTLP_ENDPOINT or --otlp-endpoint): "
			 "decisions go to the journal only");
	}
	return 0;
}

/* The engine, with the guards the journal remembers (cooldowns, budgets,
 * breakers of recent decisions): 0 or -errno, logged. */
static int start_engine(struct daemon *d)
{
	struct journal_filter recent = { .outcome = -1 };

	if (journal_recover(d->journal, recovered, NULL) < 0)
		log_error("run: journal: recovering unfinished decisions: %s", journal_errmsg(d->journal));
	d->decide = (struct decide_config){
		.protect = &d->protect, .host = d->host,
		.sink = on_decision, .verified = on_verified, .ctx = d,
	};
	configure_engine(d);
	d->engine = decide_new(d->rules, &d->decide);
	if (!d->engine)
		return -ENOMEM;
	d->arming = (struct decide_arming){ .engine = d->engine, .rules = &d->rules, .protect = &d->protect };
	recent.since_ns = clock_real_ns() - (int64_t)decide_memory_ns(d->engine);
	if (journal_query(d->journal, &recent, restore_guard, d))
		log_error("run: journal: reading recent decisions: %s", journal_errmsg(d->journal));
	if (d->cfg->kill_switch && access(d->cfg->kill_switch, F_OK) == 0)
		log_warn("kill switch %s is set: every action is dry-run until it is removed",
			 d->cfg->kill_switch);
	return 0;
}

/* The executor and its actuators, then the sensors: 0, or -errno when
 * reflexd must not run (logged). */
static int start_acting(struct daemon *d)
{
	d->executor = (struct act_executor){
		.loop = d->loop, .journal = d->journal, .delay_ns = d->cfg->act_delay_ns,
	};
	if (start_k8s(d))
		return -EINVAL;
	d->act_env = (struct act_env){
		.loop = d->loop, .journal = d->journal, .host = d->host, .k8s = d->k8s,
		.services = &d->cfg->services,
	};
	/* the k8s.* actions get the client (or say there is none) in every command */
	(void)act_open(&d->executor, "k8s", &d->act_env);
	log_route_libbpf();
	metrics_set_readiness(d->metrics, daemon_ready, d);
	if (d->cfg->command == CMD_RUN)
		start_actuators(d);
	(void)notify_send("STATUS=starting the sensors");
	if (start_sensors(d))
		return -ENODEV;
	report_rule_needs(d);
	d->started = true;
	return 0;
}

/* The loop's own watchers: the cron scan, hold deadlines, the rule files'
 * settle and watch, --duration, the lag probe, and the signals. */
static void start_watchers(struct daemon *d)
{
	const struct config *cfg = d->cfg;

	ev_timer_init(&d->cron, on_cron, 0, (double)cfg->scan_interval_ns / 1e9);
	ev_timer_init(&d->deadline, on_deadline, 0, 0);
	ev_timer_init(&d->settle, on_rules_settled, 0, 0);
	if (cfg->duration_ns) {
		ev_timer_init(&d->stop_after, on_duration, (double)cfg->duration_ns / 1e9, 0);
		ev_timer_start(d->loop, &d->stop_after);
	}
	d->cron.data = d->deadline.data = d->settle.data = d->lag.data = d;
	ev_init(&d->lag, on_lag);
	lag_arm(d);
	watch_rules(d);
	ev_timer_again(d->loop, &d->cron);
	ev_signal_init(&d->sigterm, on_stop, SIGTERM);
	ev_signal_init(&d->sigint, on_stop, SIGINT);
	ev_signal_init(&d->sighup, on_reload, SIGHUP);
	d->sighup.data = d;
	ev_signal_start(d->loop, &d->sigterm);
	ev_signal_start(d->loop, &d->sigint);
	ev_signal_start(d->loop, &d->sighup);
}

int daemon_run(struct config *cfg, int argc, char **argv)
{
	struct daemon d = { .cfg = cfg, .argc = argc, .argv = argv, .inotify_fd = -1 };
	struct otlp_settings otlp = { 0 };
	struct strlist errs = { 0 };
	char err[512];
	int status = 1, export;

	if (cfg->command == CMD_RECORD && !cfg->record) {
		log_error("record: where to? (--out FILE)");
		return 2;
	}
	if (cfg->command == CMD_RUN && !cfg->rules.n) {
		log_error("run: no rules given (--rules DIR|FILE)");
		return 2;
	}
	d.rules = rules_load(cfg->rules.v, cfg->rules.n, cfg->rule_timeout_ns, &errs);
	if (!d.rules) {
		log_rule_errors(&errs);
		log_error("run: not starting: the rule files have errors");
		return 1;
	}
	warn_shadowed(d.rules);
	if (gethostname(d.host, sizeof(d.host)))
		snprintf(d.host, sizeof(d.host), "unknown");
	export = cfg->command == CMD_RUN ? otlp_settings(&cfg->export, d.host, &otlp, err, sizeof(err)) : 0;
	if (export < 0) {
		log_error("run: OTLP export: %s", err);
		status = 2;
		goto cleanup;
	}
	if (open_outputs(&d))
		goto cleanup;
	make_metrics(&d);
	if (start_export(&d, &otlp, export) || start_engine(&d) || start_acting(&d))
		goto cleanup;
	start_watchers(&d);
	log_info("running: %zu rules from %zu files, journal %s%s", d.rules->n, d.rules->nfiles,
		 cfg->journal, cfg->dry_run ? ", dry-run: no action will be taken" : "");
	/* lets a supervisor or a test know the sensors are attached */
	log_info("ready");
	(void)notify_send("STATUS=running: %zu rules from %zu files%s", d.rules->n, d.rules->nfiles,
			  cfg->dry_run ? ", dry-run" : "");
	notify_ready(d.loop);
	ev_run(d.loop, 0);
	status = 0;
cleanup:
	otlp_settings_free(&otlp);
	daemon_stop(&d);
	if (status == 0)
		log_info("stopped");
	return status;
}
