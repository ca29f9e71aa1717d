/* reflexd's options, in one declarative table (cmd/config.c): the command
 * line, the config file, --help and reload all read that table. */
#ifndef REFLEX_CMD_CONFIG_H
#define REFLEX_CMD_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>

#include "lib/util.h"

enum command {
	CMD_RUN = 1 << 0,
	CMD_CHECK = 1 << 1,
	CMD_AUDIT = 1 << 2,
	CMD_SIMULATE = 1 << 3,
	CMD_RECORD = 1 << 4,
	CMD_TEST = 1 << 5,
	CMD_PROBE = 1 << 6,
};

struct config {
	enum command command;
	struct strlist rules;     /* run: --rules; check: the arguments */
	bool dry_run;
	char *journal;
	char *config_file;
	char *log_level;
	uint64_t scan_interval_ns;
	uint64_t min_wait_ns;
	uint64_t stall_after_ns;
	uint64_t leak_window_ns;
	uint64_t leak_min_rate;   /* bytes/s */
	uint64_t leak_attribution_ns;
	uint64_t goroutine_window_ns;
	int64_t goroutine_min_rate, goroutine_min_count;
	bool goroutine_sample;
	uint64_t retrans_window_ns;
	int64_t retrans_min;
	int64_t retrans_flows;
	struct strlist sensors;   /* which sensors to start; empty: all */
	struct strlist require;   /* sensors that must start, or reflexd does not run */
	uint64_t act_delay_ns;
	char *kill_switch;
	char *record;             /* write the condition stream to this trace */
	uint64_t duration_ns;     /* record: stop after this long (0: at SIGTERM) */
	int64_t budget_max;
	uint64_t budget_window_ns;
	uint64_t rule_timeout_ns;  /* the wall-clock bound of one rule function call */
	struct strlist protect_comm, protect_exe, protect_cgroup;
	struct strlist services;  /* traffic shift: NAME=PORT:BACKEND_PORT,... */
	struct strlist protect_namespace, protect_labels;
	/* Kubernetes */
	char *kubeconfig;
	char *node_name;
	char *k8s_namespace;
	char *k8s_sa_dir;
	uint64_t k8s_timeout_ns;
	int64_t k8s_retries;
	uint64_t k8s_refresh_ns;
	int64_t k8s_budget_max;
	uint64_t k8s_budget_window_ns;
	/* OTLP export (docs/otlp.md): unset options fall back to the OTEL_*
	 * variables */
	char *otlp_endpoint, *otlp_logs_endpoint, *otlp_headers, *otlp_compression;
	char *otlp_certificate, *otlp_client_certificate, *otlp_client_key;
	char *resource_attributes, *service_name;
	uint64_t otlp_timeout_ns;   /* 0: unset */
	int64_t otlp_batch;
	uint64_t otlp_batch_delay_ns;
	uint64_t otlp_retry_max_ns;
	int64_t export_backlog_max;
	int64_t otlp_rate_max;      /* dry-run and suppressed records a second; 0: no cap */
	char *otlp_severity_floor;  /* dry-run and suppressed records below it are withheld */
	bool otlp;                  /* simulate: export the decisions too */
	char *metrics;              /* serve /metrics, /healthz and /readyz here */
	/* simulate */
	char *trace;
	bool skip_bad;
	bool explain;
	bool diff;
	/* audit show ID */
	char *show;
	/* audit, simulate */
	bool json;
	char *rule, *kind, *comm, *outcome, *since, *until;
	char *pod, *namespace, *action, *mode;
	bool summary;             /* audit summary */
	int64_t pid;
	int64_t limit;
};

/* Parses argv (after the command word) into cfg, reading --config files
 * where they appear. 0, or -EINVAL after printing "file:line: message" or
 * "reflexd: message" to stderr. */
int config_parse(struct config *cfg, enum command cmd, int argc, char **argv);
void config_free(struct config *cfg);
/* Moves the options marked reloadable from fresh into cfg. */
void config_apply_reloadable(struct config *cfg, struct config *fresh);
void config_usage(enum command cmd, FILE *out);

#endif
