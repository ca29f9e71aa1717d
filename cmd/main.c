/* reflexd: closed-loop self-healing for Linux hosts and Kubernetes nodes. */
#include <stdio.h>
#include <string.h>

#include "cmd/audit.h"
#include "cmd/config.h"
#include "cmd/daemon.h"
#include "lib/log.h"
#include "cmd/probe.h"
#include "cmd/simulate.h"
#include "decide/rules.h"

static const struct {
	const char *name;
	enum command cmd;
	const char *args;
	const char *help;
} commands[] = {
	{ "run", CMD_RUN, "--rules DIR|FILE... [--dry-run] [--journal PATH]",
	  "run the daemon in the foreground until SIGTERM/SIGINT; SIGHUP reloads" },
	{ "check", CMD_CHECK, "RULES...", "validate rule files; errors as file:line: message" },
	{ "audit", CMD_AUDIT, "[show ID | summary] [--journal PATH] [filters] [--json]",
	  "print recorded decisions; `show ID` the whole chain of one; `summary` counts per rule and outcome" },
	{ "record", CMD_RECORD, "--out FILE [--duration D]",
	  "write the live condition stream to a trace, decide nothing" },
	{ "test", CMD_TEST, "DIR...", "run the rule tests in each DIR (NAME.test.trace + NAME.test.expect)" },
	{ "simulate", CMD_SIMULATE, "--trace FILE --rules DIR|FILE... [--json] [--explain] | --diff OLD NEW --trace FILE",
	  "replay a condition trace through rules offline, in virtual time" },
	{ "probe", CMD_PROBE, "[--json]",
	  "what this host's kernel can run: each sensor and actuator, works or not, and why" },
};

static void usage(FILE *out)
{
	fprintf(out, "usage: reflexd COMMAND [OPTIONS]\n       reflexd --help | --version\n\n");
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		fprintf(out, "reflexd %s %s\n  %s\n", commands[i].name, commands[i].args, commands[i].help);
		config_usage(commands[i].cmd, out);
		fprintf(out, "\n");
	}
}

static int check_main(struct config *cfg)
{
	struct strlist errs = { 0 };
	struct ruleset *rs;
	int status;

	if (!cfg->rules.n) {
		fprintf(stderr, "reflexd: check: which rule files? (reflexd check RULES...)\n");
		return 2;
	}
	rs = rules_load(cfg->rules.v, cfg->rules.n, 0, &errs);
	if (rs)
		rules_lint(rs, &errs);
	for (size_t i = 0; i < errs.n; i++)
		fprintf(stderr, "%s\n", errs.v[i]);
	if (rs && !errs.n)
		printf("%zu rules in %zu files: ok\n", rs->n, rs->nfiles);
	status = errs.n ? 1 : 0;
	strlist_free(&errs);
	rules_free(rs);
	return status;
}

int main(int argc, char **argv)
{
	struct config cfg;
	int status;

	if (argc < 2 || strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "help") == 0 ||
	    strcmp(argv[1], "-h") == 0) {
		usage(argc < 2 ? stderr : stdout);
		return argc < 2 ? 2 : 0;
	}
	if (strcmp(argv[1], "--version") == 0 || strcmp(argv[1], "version") == 0) {
		printf("reflexd %s\n", REFLEX_VERSION);
		return 0;
	}
	for (size_t i = 0; i < sizeof(commands) / sizeof(commands[0]); i++) {
		if (strcmp(argv[1], commands[i].name) != 0)
			continue;
		if (argc > 2 && (strcmp(argv[2], "--help") == 0 || strcmp(argv[2], "-h") == 0)) {
			fprintf(stdout, "reflexd %s %s\n  %s\n", commands[i].name, commands[i].args,
				commands[i].help);
			config_usage(commands[i].cmd, stdout);
			return 0;
		}
		if (config_parse(&cfg, commands[i].cmd, argc - 2, argv + 2)) {
			config_free(&cfg);
			return 2;
		}
		log_threshold = (enum log_level)log_level_parse(cfg.log_level);
		switch (commands[i].cmd) {
		case CMD_RUN:
		case CMD_RECORD:
			status = daemon_run(&cfg, argc - 2, argv + 2);
			break;
		case CMD_CHECK:
			status = check_main(&cfg);
			break;
		case CMD_SIMULATE:
			status = simulate_main(&cfg);
			break;
		case CMD_TEST:
			status = test_main(&cfg);
			break;
		case CMD_PROBE:
			status = probe_main(&cfg);
			break;
		default:
			status = audit_main(&cfg);
			break;
		}
		config_free(&cfg);
		return status;
	}
	fprintf(stderr, "reflexd: unknown command '%s' (see reflexd --help)\n", argv[1]);
	return 2;
}
