/* A fleet of reflexd Kubernetes clients on one loop: the real client
 * (k8s/k8s.c on lib/http.c), one instance per simulated node, each with
 * its own node name, its own connections and its own pod cache. Used by
 * tests/t_k8s.sh (one node) and tests/scale/fleet.sh (thousands).
 *
 * usage: k8s_fleet --sa-dir DIR (--node NAME | --nodes N) [--refresh SEC]
 *                  [--budget-max M] [--budget-window SEC] [--timeout SEC]
 *                  [--retries N] [--start-rate NODES_PER_SEC]
 * with KUBERNETES_SERVICE_HOST/PORT set. --nodes N names them node-0 ..
 * node-N-1; --start-rate starts them as a rollout would, so many a
 * second, rather than all at once. Commands on stdin, one a line, each answered by one line:
 *   resolve I UID      the pod node I knows by UID: "pod NS/NAME LABELS",
 *                      or "unknown"
 *   stats              "nodes N synced S pods P lists L watches W events E
 *                      gone G" (summed over the nodes)
 *   budget WORKLOAD MS every node takes one unit of WORKLOAD's cluster
 *                      budget, each at a random moment within MS; answered
 *                      when all have their answer: "budget granted G
 *                      refused R failed F calls C conflicts X max_ms T
 *                      p50_ms T p99_ms T" */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "k8s/k8s.h"
#include "lib/log.h"

struct take {
	struct fleet *f;
	struct k8s_client *k;
	ev_timer start;
	uint64_t started_ns;
	double ms;            /* until its answer */
	int outcome;          /* 0 pending, 1 granted, 2 refused, 3 failed */
	char workload[256];
};

struct fleet {
	struct ev_loop *loop;
	struct k8s_client **nodes;
	size_t n;             /* started so far */
	size_t want;          /* nodes in all */
	struct k8s_options o;
	const char *node;     /* --node: the one node's name */
	double start_rate;    /* nodes started a second (a rollout); 0: all at once */
	ev_timer starter;
	ev_io input;
	char line[1024];
	size_t len;
	struct take *takes;
	size_t pending;
	uint64_t calls_before, conflicts_before;
};

static uint64_t lease_calls(struct fleet *f, uint64_t *conflicts)
{
	uint64_t calls = 0;

	*conflicts = 0;
	for (size_t i = 0; i < f->n; i++) {
		const struct k8s_stats *s = k8s_stats(f->nodes[i]);

		calls += s->calls[K8S_GET_LEASE] + s->calls[K8S_CREATE_LEASE] + s->calls[K8S_UPDATE_LEASE];
		*conflicts += s->conflicts;
	}
	return calls;
}

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return x < y ? -1 : x > y;
}

static void budget_report(struct fleet *f)
{
	size_t count[4] = { 0 };
	double *ms = calloc(f->n, sizeof(*ms));
	uint64_t conflicts, calls = lease_calls(f, &conflicts);

	for (size_t i = 0; i < f->n; i++) {
		count[f->takes[i].outcome]++;
		if (ms)
			ms[i] = f->takes[i].ms;
	}
	if (ms)
		qsort(ms, f->n, sizeof(*ms), cmp_double);
	printf("budget granted %zu refused %zu failed %zu calls %llu conflicts %llu max_ms %.0f "
	       "p50_ms %.0f p99_ms %.0f\n", count[1], count[2], count[3],
	       (unsigned long long)(calls - f->calls_before),
	       (unsigned long long)(conflicts - f->conflicts_before), ms ? ms[f->n - 1] : 0,
	       ms ? ms[f->n / 2] : 0, ms ? ms[f->n * 99 / 100] : 0);
	fflush(stdout);
	free(ms);
	free(f->takes);
	f->takes = NULL;
}

static void on_budget(void *ctx, bool ok, const char *why)
{
	struct take *t = ctx;

	t->ms = (double)(clock_mono_ns() - t->started_ns) / 1e6;
	t->outcome = ok ? 1 : strstr(why, "fail closed") ? 3 : 2;
	if (t->outcome == 3)
		log_info("fleet: %s: %s", k8s_node(t->k), why);
	if (!--t->f->pending)
		budget_report(t->f);
}

static void on_take(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct take *t = w->data;

	t->started_ns = clock_mono_ns();
	if (!k8s_budget_take(t->k, t->workload, on_budget, t))
		on_budget(t, false, "cannot start (fail closed)");
}

static void budget_all(struct fleet *f, const char *workload, double spread_ms)
{
	if (f->takes) {
		printf("busy\n");
		return;
	}
	f->takes = calloc(f->n, sizeof(*f->takes));
	if (!f->takes) {
		printf("error out of memory\n");
		return;
	}
	f->calls_before = lease_calls(f, &f->conflicts_before);
	f->pending = f->n;
	for (size_t i = 0; i < f->n; i++) {
		struct take *t = &f->takes[i];

		t->f = f;
		t->k = f->nodes[i];
		str_copy(t->workload, sizeof(t->workload), workload);
		ev_timer_init(&t->start, on_take, spread_ms * (double)random() / RAND_MAX / 1000, 0);
		t->start.data = t;
		ev_timer_start(f->loop, &t->start);
	}
}

static void command(struct fleet *f, char *line)
{
	char word[16] = "", arg[256] = "";
	unsigned long i = 0;
	double ms = 0;

	if (sscanf(line, "%15s", word) != 1)
		return;
	if (!strcmp(word, "resolve") && sscanf(line, "%*s %lu %255s", &i, arg) == 2 && i < f->n) {
		struct target t = { 0 };

		str_copy(t.pod_uid, sizeof(t.pod_uid), arg);
		if (k8s_resolve(f->nodes[i], &t))
			printf("pod %s/%s %s\n", t.namespace, t.pod, t.labels);
		else
			printf("unknown\n");
	} else if (!strcmp(word, "stats")) {
		uint64_t sum[6] = { 0 };

		for (size_t n = 0; n < f->n; n++) {
			const struct k8s_stats *s = k8s_stats(f->nodes[n]);

			sum[0] += s->synced;
			sum[1] += s->pods;
			sum[2] += s->calls[K8S_LIST_PODS];
			sum[3] += s->calls[K8S_WATCH_PODS];
			sum[4] += s->events;
			sum[5] += s->gone;
		}
		printf("nodes %zu synced %llu pods %llu lists %llu watches %llu events %llu gone %llu\n",
		       f->n, (unsigned long long)sum[0], (unsigned long long)sum[1],
		       (unsigned long long)sum[2], (unsigned long long)sum[3],
		       (unsigned long long)sum[4], (unsigned long long)sum[5]);
	} else if (!strcmp(word, "budget") && sscanf(line, "%*s %255s %lf", arg, &ms) == 2) {
		budget_all(f, arg, ms);
	} else {
		printf("error unknown command: %s\n", line);
	}
	fflush(stdout);
}

static void on_input(struct ev_loop *loop, ev_io *w, int revents)
{
	struct fleet *f = w->data;
	ssize_t n = read(w->fd, f->line + f->len, sizeof(f->line) - 1 - f->len);
	char *nl;

	if (n <= 0) {
		ev_break(loop, EVBREAK_ALL);
		return;
	}
	f->len += (size_t)n;
	f->line[f->len] = '\0';
	while ((nl = strchr(f->line, '\n'))) {
		*nl = '\0';
		command(f, f->line);
		f->len -= (size_t)(nl + 1 - f->line);
		memmove(f->line, nl + 1, f->len + 1);
	}
	if (f->len == sizeof(f->line) - 1)
		f->len = 0;
}

/* Starts the next nodes: all of them, or a tick's worth of a rollout.
 * false when one cannot start. */
static bool start_nodes(struct fleet *f, size_t upto)
{
	char name[64], err[512];

	for (; f->n < upto && f->n < f->want; f->n++) {
		snprintf(name, sizeof(name), "node-%zu", f->n);
		f->o.node = f->node ? f->node : name;
		f->nodes[f->n] = k8s_new(f->loop, &f->o, err, sizeof(err));
		if (!f->nodes[f->n]) {
			fprintf(stderr, "k8s_fleet: node %zu: %s\n", f->n, err);
			return false;
		}
	}
	return true;
}

static void on_starter(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct fleet *f = w->data;

	size_t step = f->start_rate >= 10 ? (size_t)(f->start_rate / 10) : 1;

	if (!start_nodes(f, f->n + step))
		ev_break(loop, EVBREAK_ALL);
	if (f->n == f->want)
		ev_timer_stop(loop, w);
}

int main(int argc, char **argv)
{
	struct fleet f = {
		.loop = EV_DEFAULT,
		.o = { .timeout_ns = 10 * NSEC_PER_SEC, .retries = 3, .refresh_ns = 300 * NSEC_PER_SEC,
		       .budget_max = 2, .budget_window_ns = 600 * NSEC_PER_SEC },
	};
	int rc = 1;

	for (int i = 1; i + 1 < argc; i += 2) {
		double v = atof(argv[i + 1]);

		if (!strcmp(argv[i], "--sa-dir"))
			f.o.sa_dir = argv[i + 1];
		else if (!strcmp(argv[i], "--node"))
			f.node = argv[i + 1];
		else if (!strcmp(argv[i], "--nodes"))
			f.want = (size_t)v;
		else if (!strcmp(argv[i], "--start-rate"))
			f.start_rate = v;
		else if (!strcmp(argv[i], "--refresh"))
			f.o.refresh_ns = (uint64_t)(v * 1e9);
		else if (!strcmp(argv[i], "--budget-max"))
			f.o.budget_max = (unsigned)v;
		else if (!strcmp(argv[i], "--budget-window"))
			f.o.budget_window_ns = (uint64_t)(v * 1e9);
		else if (!strcmp(argv[i], "--timeout"))
			f.o.timeout_ns = (uint64_t)(v * 1e9);
		else if (!strcmp(argv[i], "--retries"))
			f.o.retries = (unsigned)v;
		else
			break;
	}
	if (f.node)
		f.want = 1;
	if (!f.o.sa_dir || !f.want) {
		fprintf(stderr, "usage: k8s_fleet --sa-dir DIR (--node NAME | --nodes N) [options]\n");
		return 2;
	}
	srandom((unsigned)getpid());
	f.nodes = calloc(f.want, sizeof(*f.nodes));
	if (!f.nodes)
		return 1;
	if (f.start_rate > 0) {
		ev_timer_init(&f.starter, on_starter, 0, 0.1);
		f.starter.data = &f;
		ev_timer_start(f.loop, &f.starter);
	} else if (!start_nodes(&f, f.want)) {
		goto out;
	}
	ev_io_init(&f.input, on_input, 0, EV_READ);
	f.input.data = &f;
	ev_io_start(f.loop, &f.input);
	ev_run(f.loop, 0);
	rc = 0;
out:
	for (size_t i = 0; i < f.n; i++)
		k8s_free(f.nodes[i]);
	free(f.nodes);
	free(f.takes);
	return rc;
}
