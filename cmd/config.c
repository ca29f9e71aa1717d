#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/config.h"
#include "record/journal.h"
#include "lib/log.h"
#include "act/traffic.h"
#include "model/condition.h"
#include "sense/sensor.h"

enum option_type { OPT_FLAG, OPT_STRING, OPT_LIST, OPT_DURATION, OPT_INT, OPT_BYTES_RATE };

struct option_def {
	const char *name;
	enum option_type type;
	unsigned commands;
	size_t offset;
	const char *def;      /* default, as it would be written */
	uint64_t min, max;    /* bounds for durations and integers */
	bool reloadable;      /* SIGHUP applies a new value */
	const char *arg;
	const char *help;
};

#define OFF(f) offsetof(struct config, f)
#define MS NSEC_PER_MSEC
#define SEC NSEC_PER_SEC

static const struct option_def options[] = {
	{ "config", OPT_STRING, CMD_RUN | CMD_CHECK | CMD_AUDIT | CMD_SIMULATE | CMD_RECORD, OFF(config_file), NULL, 0, 0, false,
	  "FILE", "read options from FILE, one 'name = value' a line" },
	{ "trace", OPT_STRING, CMD_SIMULATE, OFF(trace), NULL, 0, 0, false,
	  "FILE", "the condition trace to replay (docs/trace.md)" },
	{ "diff", OPT_FLAG, CMD_SIMULATE, OFF(diff), "false", 0, 0, false,
	  NULL, "--diff OLD NEW: what changes between two rule sets on the trace" },
	{ "explain", OPT_FLAG, CMD_SIMULATE, OFF(explain), "false", 0, 0, false,
	  NULL, "for every condition, which rules matched or not, and why" },
	{ "journal-out", OPT_STRING, CMD_SIMULATE, OFF(journal_out), NULL, 0, 0, false,
	  "PATH", "also write the decisions into this journal (SQLite), for `reflexd audit --journal PATH`" },
	{ "skip-bad", OPT_FLAG, CMD_SIMULATE, OFF(skip_bad), "false", 0, 0, false,
	  NULL, "skip bad trace lines (each reported) instead of stopping" },
	{ "rules", OPT_LIST, CMD_RUN | CMD_SIMULATE, OFF(rules), NULL, 0, 0, true,
	  "DIR|FILE", "rule files to load (repeatable); a directory loads its *.lua" },
	{ "dry-run", OPT_FLAG, CMD_RUN | CMD_SIMULATE, OFF(dry_run), "false", 0, 0, true,
	  NULL, "decide and record, never act" },
	{ "journal", OPT_STRING, CMD_RUN | CMD_AUDIT | CMD_RECORD, OFF(journal), REFLEX_JOURNAL_DEFAULT, 0, 0, false,
	  "PATH", "the audit journal (SQLite)" },
	{ "log-level", OPT_STRING, CMD_RUN | CMD_CHECK | CMD_AUDIT | CMD_SIMULATE | CMD_RECORD | CMD_TEST | CMD_PROBE, OFF(log_level), "info", 0, 0, true,
	  "LEVEL", "error, warn, info or debug" },
	{ "scan-interval", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(scan_interval_ns), "100ms", 10 * MS, 10 * SEC, false,
	  "DURATION", "how often sensors rescan their maps" },
	{ "sensors", OPT_LIST, CMD_RUN | CMD_RECORD, OFF(sensors), NULL, 0, 0, false,
	  "NAME,...", "start only these sensors (a comma list, or repeated; default: all of deadlock, leak, retransmits, goroutines, memory)" },
	{ "require", OPT_LIST, CMD_RUN | CMD_RECORD, OFF(require), NULL, 0, 0, false,
	  "NAME,...", "these sensors must start: one that cannot run here stops reflexd (default: a sensor "
	  "that cannot run is reported and the others run; docs/architecture.md)" },
	{ "min-wait", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(sense.min_wait_ns), "100ms", 10 * MS, 60 * SEC, false,
	  "DURATION", "lock waits shorter than this are contention, never examined" },
	{ "stall-after", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(sense.stall_after_ns), "5s", 100 * MS, 3600 * SEC,
	  false, "DURATION", "every thread of a process asleep in futex waits this long, no lock cycle: a stall" },
	{ "no-stacks", OPT_FLAG, CMD_RUN | CMD_RECORD, OFF(sense.no_stacks), "false", 0, 0, false,
	  NULL, "deadlocks and stalls without their stacks and lock names: tids and addresses only (what the names cost)" },
	{ "leak-window", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(sense.leak_window_ns), "20s", 2 * SEC, 3600 * SEC, false,
	  "DURATION", "a leak is memory that grows over this whole window with no plateau (docs/leak.md)" },
	{ "leak-min-rate", OPT_BYTES_RATE, CMD_RUN | CMD_RECORD, OFF(sense.leak_min_rate), "1MiB/s", 4096, 1ULL << 40, false,
	  "RATE", "slower growth than this is never a leak (rules can ask for more)" },
	{ "leak-attribution", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(sense.leak_attribution_ns), "10s", 0, 600 * SEC, false,
	  "DURATION", "on a leak, trace that process's malloc/free this long for its top sites (0: never)" },
	{ "goroutine-window", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(sense.goroutine_window_ns), "10s", SEC, 600 * SEC,
	  false, "DURATION", "goroutine growth rate: the slope over this window" },
	{ "goroutine-min-rate", OPT_INT, CMD_RUN | CMD_RECORD, OFF(sense.goroutine_min_rate), "20", 1, 100000000, false,
	  "N", "a Go process whose goroutines grow N/s or more over a whole window is a condition" },
	{ "goroutine-min-count", OPT_INT, CMD_RUN | CMD_RECORD, OFF(sense.goroutine_min_count), "10000", 1, 1000000000,
	  false, "N", "so is one with N goroutines or more" },
	{ "goroutine-probes", OPT_FLAG, CMD_RUN | CMD_RECORD, OFF(sense.goroutine_probes), "false", 0, 0, false,
	  NULL, "count goroutines with uprobes on every Go binary, even where its runtime's state can be read" },
	{ "retrans-window", OPT_DURATION, CMD_RUN | CMD_RECORD, OFF(sense.retrans_window_ns), "10s", SEC, 600 * SEC, false,
	  "DURATION", "TCP retransmit rates are measured over this sliding window" },
	{ "retrans-min", OPT_INT, CMD_RUN | CMD_RECORD, OFF(sense.retrans_min), "10", 1, 1000000, false,
	  "N", "a process with N TCP retransmits in the window has a retransmits condition (cleared below N/2)" },
	{ "retrans-flows", OPT_INT, CMD_RUN | CMD_RECORD, OFF(sense.retrans_flows), "16384", 1, 1048576, false,
	  "N", "at most N flows with retransmits are tracked at once (more are counted as dropped)" },
	{ "protect-comm", OPT_LIST, CMD_RUN | CMD_SIMULATE, OFF(protect_comm), NULL, 0, 0, true,
	  "GLOB", "never touch processes whose comm matches (repeatable)" },
	{ "protect-exe", OPT_LIST, CMD_RUN | CMD_SIMULATE, OFF(protect_exe), NULL, 0, 0, true,
	  "GLOB", "never touch processes whose executable matches (repeatable)" },
	{ "protect-cgroup", OPT_LIST, CMD_RUN | CMD_SIMULATE, OFF(protect_cgroup), NULL, 0, 0, true,
	  "GLOB", "never touch processes whose cgroup path matches (repeatable)" },
	{ "service", OPT_LIST, CMD_RUN, OFF(services), NULL, 0, 0, false,
	  "NAME=PORT:B1,B2", "a service for traffic.shift: clients connect to PORT, served by the "
	  "local instances listening on ports B1, B2...; or NAME=ADDR:PORT:B1ADDR:PORT,... for "
	  "remote backends (repeatable; docs/traffic.md)" },
	{ "protect-namespace", OPT_LIST, CMD_RUN | CMD_SIMULATE, OFF(protect_namespace), NULL, 0, 0, true,
	  "GLOB", "never touch pods in namespaces that match (repeatable; kube-system always)" },
	{ "protect-labels", OPT_LIST, CMD_RUN | CMD_SIMULATE, OFF(protect_labels), NULL, 0, 0, true,
	  "SELECTOR", "never touch pods with this label, key=value or key (repeatable)" },
	{ "kubeconfig", OPT_STRING, CMD_RUN | CMD_PROBE, OFF(kubeconfig), NULL, 0, 0, false,
	  "FILE", "Kubernetes credentials outside a cluster (default: the in-cluster service account)" },
	{ "node-name", OPT_STRING, CMD_RUN, OFF(node_name), NULL, 0, 0, false,
	  "NAME", "this node's name in the cluster (default: $NODE_NAME, else the hostname)" },
	{ "k8s-namespace", OPT_STRING, CMD_RUN, OFF(k8s_namespace), NULL, 0, 0, false,
	  "NAMESPACE", "where the cluster budget Lease lives (default: reflexd's own namespace)" },
	{ "k8s-sa-dir", OPT_STRING, CMD_RUN, OFF(k8s_sa_dir), "/var/run/secrets/kubernetes.io/serviceaccount", 0, 0, false,
	  "DIR", "the service account's token, ca.crt and namespace" },
	{ "k8s-timeout", OPT_DURATION, CMD_RUN, OFF(k8s_timeout_ns), "10s", 100 * MS, 300 * SEC, false,
	  "DURATION", "one Kubernetes API call" },
	{ "k8s-retries", OPT_INT, CMD_RUN, OFF(k8s_retries), "3", 0, 10, false,
	  "N", "retries of an API call after a 429, 5xx or timeout" },
	{ "k8s-refresh", OPT_DURATION, CMD_RUN, OFF(k8s_refresh_ns), "5m", SEC, 3600 * SEC, false,
	  "DURATION", "a watch of this node's pods is renewed after this to twice this (listed once, then watched)" },
	{ "k8s-budget-max", OPT_INT, CMD_RUN, OFF(k8s_budget_max), "2", 1, 1000000, false,
	  "N", "cluster-wide: at most N pod restarts/evictions per workload ..." },
	{ "k8s-budget-window", OPT_DURATION, CMD_RUN, OFF(k8s_budget_window_ns), "10m", SEC, 7 * 86400 * SEC, false,
	  "DURATION", "... in any window this long, across every node" },
	{ "kill-switch", OPT_STRING, CMD_RUN, OFF(kill_switch), "/run/reflexd/kill-switch", 0, 0, true,
	  "PATH", "while this file exists every action is dry-run (touch it to stop the robot)" },
	{ "budget-max", OPT_INT, CMD_RUN | CMD_SIMULATE, OFF(budget_max), "20", 1, 1000000, true,
	  "N", "the global budget: at most N actions across all rules ..." },
	{ "budget-window", OPT_DURATION, CMD_RUN | CMD_SIMULATE, OFF(budget_window_ns), "1h", SEC, 7 * 86400 * SEC, true,
	  "DURATION", "... in any window this long" },
	{ "rule-timeout", OPT_DURATION, CMD_RUN | CMD_SIMULATE | CMD_TEST, OFF(rule_timeout_ns), "50ms", MS,
	  10 * SEC, true, "DURATION", "a rule function running longer is stopped and its rule disabled" },
	{ "record", OPT_STRING, CMD_RUN, OFF(record), NULL, 0, 0, false,
	  "FILE", "also write the conditions seen to this trace (docs/trace.md)" },
	{ "out", OPT_STRING, CMD_RECORD, OFF(record), NULL, 0, 0, false,
	  "FILE", "the trace to write (docs/trace.md)" },
	{ "duration", OPT_DURATION, CMD_RECORD, OFF(duration_ns), "0", 0, 7 * 86400 * SEC, false,
	  "DURATION", "stop after this long (default: at SIGTERM/SIGINT)" },
	{ "act-delay", OPT_DURATION, CMD_RUN, OFF(act_delay_ns), "0", 0, 60 * SEC, false,
	  "DURATION", "testing: wait this long between recording an intent and acting" },
	{ "otlp-endpoint", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_endpoint), NULL, 0, 0, false,
	  "URL", "OTLP/HTTP base URL, /v1/logs appended [$OTEL_EXPORTER_OTLP_ENDPOINT]" },
	{ "otlp-logs-endpoint", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_logs_endpoint), NULL, 0, 0, false,
	  "URL", "OTLP/HTTP logs URL, used as is [$OTEL_EXPORTER_OTLP_LOGS_ENDPOINT]" },
	{ "otlp-headers", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_headers), NULL, 0, 0, false,
	  "K=V,...", "extra request headers [$OTEL_EXPORTER_OTLP_(LOGS_)HEADERS]" },
	{ "otlp-timeout", OPT_DURATION, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_timeout_ns), NULL, 10 * MS, 600 * SEC, false,
	  "DURATION", "per export request [$OTEL_EXPORTER_OTLP_(LOGS_)TIMEOUT, ms; 10s]" },
	{ "otlp-compression", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_compression), NULL, 0, 0, false,
	  "gzip|none", "request compression [$OTEL_EXPORTER_OTLP_(LOGS_)COMPRESSION; none]" },
	{ "otlp-certificate", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_certificate), NULL, 0, 0, false,
	  "FILE", "CA certificates (PEM) to verify the collector by [$OTEL_EXPORTER_OTLP_(LOGS_)CERTIFICATE; system store]" },
	{ "otlp-client-certificate", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_client_certificate), NULL, 0, 0, false,
	  "FILE", "client certificate (PEM) for mutual TLS [$OTEL_EXPORTER_OTLP_(LOGS_)CLIENT_CERTIFICATE]" },
	{ "otlp-client-key", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_client_key), NULL, 0, 0, false,
	  "FILE", "its private key (PEM) [$OTEL_EXPORTER_OTLP_(LOGS_)CLIENT_KEY]" },
	{ "resource-attributes", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.resource_attributes), NULL, 0, 0, false,
	  "K=V,...", "OTLP resource attributes [$OTEL_RESOURCE_ATTRIBUTES]" },
	{ "service-name", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.service_name), NULL, 0, 0, false,
	  "NAME", "OTLP service.name [$OTEL_SERVICE_NAME; reflexd]" },
	{ "otlp-batch", OPT_INT, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_batch), "512", 1, 100000, false,
	  "N", "send as soon as N records wait ..." },
	{ "otlp-batch-delay", OPT_DURATION, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_batch_delay_ns), "1s", MS, 600 * SEC, false,
	  "DURATION", "... or this long after the first of them" },
	{ "otlp-retry-max", OPT_DURATION, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_retry_max_ns), "30s", 100 * MS, 3600 * SEC, false,
	  "DURATION", "the longest pause between retries (exponential backoff from 1s)" },
	{ "export-backlog-max", OPT_INT, CMD_RUN | CMD_SIMULATE, OFF(export.export_backlog_max), "1000000", 1, 1000000000, false,
	  "N", "records kept for export in the journal; past it the oldest are dropped (counted)" },
	{ "otlp-rate-max", OPT_INT, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_rate_max), "0", 0, 1000000, false,
	  "N", "export at most N dry-run and suppressed records a second, the rest withheld (counted; the journal keeps all; acted and failed always go; 0: no cap)" },
	{ "otlp-severity-floor", OPT_STRING, CMD_RUN | CMD_SIMULATE, OFF(export.otlp_severity_floor), "INFO", 0, 0, false,
	  "LEVEL", "dry-run and suppressed records below INFO, WARN or ERROR are not exported (counted)" },
	{ "otlp", OPT_FLAG, CMD_SIMULATE, OFF(otlp), "false", 0, 0, false,
	  NULL, "export the simulated decisions (mode simulate) and wait until acknowledged" },
	{ "metrics", OPT_STRING, CMD_RUN, OFF(metrics), NULL, 0, 0, false,
	  "[HOST:]PORT", "serve /metrics (Prometheus), /healthz (the loop is alive) and /readyz (ready) here; "
	  "HOST defaults to 127.0.0.1 [off]" },
	{ "json", OPT_FLAG, CMD_AUDIT | CMD_SIMULATE | CMD_PROBE, OFF(json), "false", 0, 0, false,
	  NULL, "one JSON object per line" },
	{ "rule", OPT_STRING, CMD_AUDIT, OFF(rule), NULL, 0, 0, false, "NAME", "only this rule's decisions" },
	{ "kind", OPT_STRING, CMD_AUDIT, OFF(kind), NULL, 0, 0, false, "KIND", "only this condition kind" },
	{ "pid", OPT_INT, CMD_AUDIT, OFF(pid), NULL, 1, 0x7fffffff, false, "PID", "only this target pid" },
	{ "pod", OPT_STRING, CMD_AUDIT, OFF(pod), NULL, 0, 0, false, "NAME", "only targets in this pod" },
	{ "namespace", OPT_STRING, CMD_AUDIT, OFF(namespace), NULL, 0, 0, false, "NS", "only targets in this namespace" },
	{ "action", OPT_STRING, CMD_AUDIT, OFF(action), NULL, 0, 0, false, "ACTION", "only this action (signal, reload, ...)" },
	{ "mode", OPT_STRING, CMD_AUDIT, OFF(mode), NULL, 0, 0, false, "MODE", "live, dry-run or simulate" },
	{ "comm", OPT_STRING, CMD_AUDIT, OFF(comm), NULL, 0, 0, false, "GLOB", "only targets whose comm matches" },
	{ "pod", OPT_STRING, CMD_AUDIT, OFF(pod), NULL, 0, 0, false, "GLOB", "only targets in a pod whose name matches" },
	{ "outcome", OPT_STRING, CMD_AUDIT, OFF(outcome), NULL, 0, 0, false,
	  "OUTCOME", "acted, failed, dry-run, suppressed, unknown or pending" },
	{ "since", OPT_STRING, CMD_AUDIT, OFF(since), NULL, 0, 0, false,
	  "AGO", "only decisions newer than this long ago (e.g. 2h)" },
	{ "until", OPT_STRING, CMD_AUDIT, OFF(until), NULL, 0, 0, false,
	  "AGO", "only decisions older than this long ago" },
	{ "limit", OPT_INT, CMD_AUDIT, OFF(limit), NULL, 1, 1000000000, false, "N", "the newest N only" },
	{ "html", OPT_STRING, CMD_AUDIT, OFF(html), NULL, 0, 0, false,
	  "FILE", "audit report: write the report to FILE, one self-contained HTML page" },
};

static const struct option_def *find_option(const char *name, enum command cmd)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		if (strcmp(options[i].name, name) == 0 && (options[i].commands & cmd))
			return &options[i];
	return NULL;
}

static int config_parse_file(struct config *cfg, enum command cmd, const char *path);

/* --sensors and --require take names as a comma list, repeated, or both
 * (--require leak,deadlock --require memory): each name one entry, each a
 * sensor. */
static int add_sensor_names(struct strlist *l, const char *opt, const char *value, const char *where)
{
	char name[64];

	for (const char *p = value; *p; p += *p == ',') {
		size_t n = strcspn(p, ",");

		snprintf(name, sizeof(name), "%.*s", (int)n, p);
		p += n;
		if (!sensor_find(name)) {
			fprintf(stderr, "%s: bad value '%s' for --%s: no sensor called '%s'\n",
				where, value, opt, name);
			return -EINVAL;
		}
		if (strlist_add(l, name))
			return -ENOMEM;
	}
	return 0;
}

/* Sets o from text; where is "file:line" or "reflexd" for messages. */
static int set_option(struct config *cfg, enum command cmd, const struct option_def *o,
		      const char *value, const char *where)
{
	void *field = (char *)cfg + o->offset;
	char why[256];
	uint64_t ns;
	char *end;
	long long n;

	switch (o->type) {
	case OPT_FLAG:
		if (!value || strcmp(value, "true") == 0 || strcmp(value, "yes") == 0)
			*(bool *)field = true;
		else if (strcmp(value, "false") == 0 || strcmp(value, "no") == 0)
			*(bool *)field = false;
		else
			goto bad;
		return 0;
	case OPT_STRING:
		if (strcmp(o->name, "config") == 0)
			return config_parse_file(cfg, cmd, value);
		if (strcmp(o->name, "log-level") == 0 && log_level_parse(value) < 0)
			goto bad;
		free(*(char **)field);
		*(char **)field = strdup(value);
		return *(char **)field ? 0 : -ENOMEM;
	case OPT_LIST:
		if (o->offset == OFF(services) && traffic_service_check(value, why, sizeof(why))) {
			fprintf(stderr, "%s: bad value '%s' for --%s: %s\n", where, value, o->name, why);
			return -EINVAL;
		}
		if (o->offset == OFF(require) || o->offset == OFF(sensors))
			return add_sensor_names(field, o->name, value, where);
		return strlist_add(field, value);
	case OPT_DURATION:
		if (duration_parse(value, &ns) || ns < o->min || ns > o->max)
			goto bad;
		*(uint64_t *)field = ns;
		return 0;
	case OPT_BYTES_RATE: {
		static const struct measure rate = { .param = "rate", .key = "rate_bps", .unit = UNIT_BYTES_PER_S };
		double v;

		if (measure_parse(&rate, value, &v) || v < (double)o->min || v > (double)o->max)
			goto bad;
		*(uint64_t *)field = (uint64_t)v;
		return 0;
	}
	case OPT_INT:
		errno = 0;
		n = strtoll(value, &end, 10);
		if (errno || *end || !*value || n < (long long)o->min || n > (long long)o->max)
			goto bad;
		*(int64_t *)field = n;
		return 0;
	}
bad:
	fprintf(stderr, "%s: bad value '%s' for --%s (%s %s)\n", where, value ? value : "",
		o->name, o->arg ? o->arg : "true/false", o->help);
	return -EINVAL;
}

/* Reads path line by line, each whole whatever its length (a long
 * comment must never spill into a setting), and sets what it says. */
static int config_parse_file(struct config *cfg, enum command cmd, const char *path)
{
	FILE *f = fopen(path, "re");
	char *line = NULL, where[4200];
	size_t cap = 0;
	ssize_t len;
	int lineno = 0, rc = 0;

	if (!f) {
		fprintf(stderr, "reflexd: %s: %s\n", path, strerror(errno));
		return -EINVAL;
	}
	free(cfg->config_file);
	cfg->config_file = strdup(path);
	while (!rc && (len = getline(&line, &cap, f)) >= 0) {
		char *name = line, *value, *end;
		const struct option_def *o;

		lineno++;
		snprintf(where, sizeof(where), "%s:%d", path, lineno);
		if (strlen(line) != (size_t)len) {
			fprintf(stderr, "%s: a NUL byte in the line (not a text file?)\n", where);
			rc = -EINVAL;
			break;
		}
		line[strcspn(line, "#\r\n")] = '\0';
		name += strspn(name, " \t");
		if (!*name)
			continue;
		end = name + strcspn(name, " \t=");
		value = end + strspn(end, " \t=");
		*end = '\0';
		for (end = value + strlen(value); end > value && (end[-1] == ' ' || end[-1] == '\t');)
			*--end = '\0';
		o = find_option(name, cmd);
		if (!o || strcmp(name, "config") == 0) {
			fprintf(stderr, "%s: unknown option '%s'\n", where, name);
			rc = -EINVAL;
		} else if (!*value && o->type != OPT_FLAG) {
			fprintf(stderr, "%s: option '%s' needs a value (%s)\n", where, name, o->arg);
			rc = -EINVAL;
		} else {
			rc = set_option(cfg, cmd, o, *value ? value : NULL, where);
		}
	}
	if (!rc && ferror(f)) {
		fprintf(stderr, "reflexd: %s: %s\n", path, strerror(errno));
		rc = -EIO;
	}
	free(line);
	fclose(f);
	return rc;
}

static int set_defaults(struct config *cfg, enum command cmd)
{
	memset(cfg, 0, sizeof(*cfg));
	cfg->command = cmd;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_def *o = &options[i];

		if ((o->commands & cmd) && o->def && o->type != OPT_LIST &&
		    set_option(cfg, cmd, o, o->def, "default"))
			return -EINVAL;
	}
	return 0;
}

int config_parse(struct config *cfg, enum command cmd, int argc, char **argv)
{
	int rc = set_defaults(cfg, cmd);

	for (int i = 0; !rc && i < argc; i++) {
		const char *arg = argv[i], *value = NULL, *eq;
		const struct option_def *o;
		char name[64];

		if (strncmp(arg, "--", 2) != 0 || !arg[2]) {
			/* check RULES..., test DIR..., simulate --diff OLD NEW */
			if ((cmd == CMD_CHECK || cmd == CMD_TEST || cmd == CMD_SIMULATE) && arg[0] != '-') {
				rc = strlist_add(&cfg->rules, arg);
				continue;
			}
			/* audit show ID, audit summary, audit report */
			if (cmd == CMD_AUDIT && !cfg->show && !strcmp(arg, "show") && i + 1 < argc) {
				cfg->show = strdup(argv[++i]);
				rc = cfg->show ? 0 : -ENOMEM;
				continue;
			}
			if (cmd == CMD_AUDIT && !cfg->summary && !cfg->show && !cfg->report &&
			    !strcmp(arg, "summary")) {
				cfg->summary = true;
				continue;
			}
			if (cmd == CMD_AUDIT && !cfg->summary && !cfg->show && !cfg->report &&
			    !strcmp(arg, "report")) {
				cfg->report = true;
				continue;
			}
			fprintf(stderr, "reflexd: unexpected argument '%s' (see reflexd --help)\n", arg);
			return -EINVAL;
		}
		eq = strchr(arg, '=');
		snprintf(name, sizeof(name), "%.*s", (int)(eq ? eq - arg - 2 : (long)strlen(arg) - 2), arg + 2);
		o = find_option(name, cmd);
		if (!o) {
			fprintf(stderr, "reflexd: unknown option '--%s' (see reflexd --help)\n", name);
			return -EINVAL;
		}
		if (eq)
			value = eq + 1;
		else if (o->type != OPT_FLAG) {
			if (i + 1 >= argc) {
				fprintf(stderr, "reflexd: option '--%s' needs a value (%s)\n", name, o->arg);
				return -EINVAL;
			}
			value = argv[++i];
		}
		rc = set_option(cfg, cmd, o, value, "reflexd");
	}
	return rc;
}

static void free_field(struct config *cfg, const struct option_def *o)
{
	void *field = (char *)cfg + o->offset;

	if (o->type == OPT_STRING) {
		free(*(char **)field);
		*(char **)field = NULL;
	} else if (o->type == OPT_LIST) {
		strlist_free(field);
	}
}

void config_free(struct config *cfg)
{
	free(cfg->show);
	cfg->show = NULL;
	for (size_t i = 0; i < ARRAY_SIZE(options); i++)
		free_field(cfg, &options[i]);
}

void config_apply_reloadable(struct config *cfg, struct config *fresh)
{
	static const size_t sizes[] = {
		[OPT_FLAG] = sizeof(bool), [OPT_STRING] = sizeof(char *),
		[OPT_LIST] = sizeof(struct strlist), [OPT_DURATION] = sizeof(uint64_t),
		[OPT_INT] = sizeof(int64_t), [OPT_BYTES_RATE] = sizeof(uint64_t),
	};

	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_def *o = &options[i];

		if (!o->reloadable || !(o->commands & cfg->command))
			continue;
		free_field(cfg, o);
		memcpy((char *)cfg + o->offset, (char *)fresh + o->offset, sizes[o->type]);
		memset((char *)fresh + o->offset, 0, sizes[o->type]);
	}
}

void config_usage(enum command cmd, FILE *out)
{
	for (size_t i = 0; i < ARRAY_SIZE(options); i++) {
		const struct option_def *o = &options[i];
		char left[64];

		if (!(o->commands & cmd))
			continue;
		snprintf(left, sizeof(left), "--%s%s%s", o->name, o->arg ? " " : "", o->arg ? o->arg : "");
		fprintf(out, "  %-26s %s", left, o->help);
		if (o->def && o->type != OPT_FLAG && strcmp(o->def, "0") != 0)
			fprintf(out, " [%s]", o->def);
		fprintf(out, "%s\n", o->reloadable && cmd == CMD_RUN ? " (SIGHUP reloads)" : "");
	}
}
