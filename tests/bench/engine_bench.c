/*
 * engine_bench: rule evaluation throughput and latency, the daemon's own
 * engine on one core. 100 rules, half declarative, half with a Lua `when`
 * function. Each condition is raised (evaluated against the rules in
 * order) and cleared.
 *
 *   engine_bench [--conditions N] [--decide]
 * Without --decide no rule fires: every condition goes through all 100
 * rules, all 50 functions included, the worst case of an evaluation. With
 * --decide every condition ends in a decision by a late rule (its
 * explanation and record included): what a decision costs on top.
 * Prints: engine_bench rules=100 functions=50 conditions=N decided=D evals_per_s=X p50_us=Y p99_us=Z
 */
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "decide/engine.h"

#define RULES 100

static unsigned long decided;

static void count(void *ctx, struct decision *d, const struct rule_action *a)
{
	decided++;
}

static uint64_t now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

static int cmp_u64(const void *a, const void *b)
{
	uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;

	return x < y ? -1 : x > y;
}

int main(int argc, char **argv)
{
	long n = 200000;
	bool decide_all = false;
	char path[] = "/tmp/reflexd-bench-rules.XXXXXX", *paths[] = { path };
	struct strlist errs = { 0 };
	struct protect protect = { 0 };
	struct decide_config cfg = { .protect = &protect, .host = "bench", .sink = count };
	struct condition c = { .kind = REFLEX_COND_DEADLOCK, .since_ns = 1 };
	uint64_t *lat, start, total = 0, t = 1000000000ull;
	struct decide_engine *e;
	struct ruleset *rs;
	FILE *f;
	int fd;

	for (int i = 1; i < argc; i++) {
		if (!strcmp(argv[i], "--conditions") && i + 1 < argc)
			n = atol(argv[++i]);
		else if (!strcmp(argv[i], "--decide"))
			decide_all = true;
		else
			return 2;
	}
	if (n <= 0 || !(lat = malloc((size_t)n * sizeof(*lat))))
		return 2;
	fd = mkstemp(path);
	if (fd < 0 || !(f = fdopen(fd, "w")))
		return 1;
	for (int i = 0; i < RULES; i++) {
		if (i % 2)
			fprintf(f, "rule \"fn-%d\" { when = function(c) return c.comm == \"fn-%d\" and "
				   "c.evidence.threads >= 2 end, act = signal { \"SIGKILL\" } }\n", i, i);
		else
			fprintf(f, "rule \"decl-%d\" { when = deadlock { }, where = { comm = \"svc-%d-*\", "
				   "exe = { \"/opt/%d/*\", \"/srv/*\" } }, act = signal { \"SIGKILL\" } }\n",
				i, i, i);
	}
	fclose(f);
	rs = rules_load(paths, 1, 0, &errs);
	unlink(path);
	if (!rs) {
		fprintf(stderr, "engine_bench: %s\n", errs.v[0]);
		return 1;
	}
	e = decide_new(rs, &cfg);
	strcpy(c.evidence, "{\"threads\":2,\"self_deadlock\":false,\"cycle\":[{\"tid\":1},{\"tid\":2}]}");
	strcpy(c.target.exe, "/srv/app");
	for (long i = 0; i < n; i++) {
		/* deciding: the last function rule or the last declarative one */
		if (!decide_all)
			strcpy(c.target.comm, "nobody");
		else
			strcpy(c.target.comm, i % 2 ? "fn-99" : "svc-98-a");
		c.id = (uint64_t)i + 1;
		c.target.pid = (pid_t)(1000 + i % 30000);
		c.target.start_time = (uint64_t)i;
		t += 1000;
		start = now_ns();
		decide_raise(e, &c, t);
		lat[i] = now_ns() - start;
		total += lat[i];
		decide_clear(e, c.id, t);
	}
	qsort(lat, (size_t)n, sizeof(*lat), cmp_u64);
	printf("engine_bench rules=%d functions=%d conditions=%ld decided=%lu evals_per_s=%.0f "
	       "p50_us=%.1f p99_us=%.1f\n", RULES, RULES / 2, n, decided,
	       (double)n / ((double)total / 1e9), (double)lat[n / 2] / 1e3,
	       (double)lat[n * 99 / 100] / 1e3);
	decide_free(e);
	rules_free(rs);
	free(lat);
	return decided == (decide_all ? (unsigned long)n : 0) ? 0 : 1;
}
