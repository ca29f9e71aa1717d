/* The cluster-wide disruption budget, kept in a Lease every reflexd of
 * the cluster shares. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/client.h"
#include "lib/log.h"

#define LEASE_NAME "reflexd-budget"
#define LEASE_ANNOTATION "reflexd.io/budget"

/* The Lease's annotation holds each workload's disruptions counted in
 * buckets of a sixteenth of the window: {"<workload>": [[<bucket start,
 * unix s>, <count>], ...]}. Its size is bounded whatever the budget: at
 * most BUDGET_BUCKETS + 1 pairs a workload (the buckets the window
 * touches), at most BUDGET_WORKLOADS_MAX workloads. A bucket counts while
 * any of it is inside the window, so a count can only be high (by
 * disruptions up to one bucket older than the window): never an
 * over-grant. Every reflexd adds to it with optimistic concurrency
 * (resourceVersion, 409 Conflict), so two nodes racing for the last unit
 * cannot both take it. A node that loses the race reads again after a
 * jittered pause that grows with its conflicts, so a whole fleet asking
 * at once spreads out instead of hammering one object, and it gives up
 * (fail closed) BUDGET_DEADLINE_NS after it asked: every node has its
 * answer by then (docs/scale.md has the measured times). */
#define BUDGET_BUCKETS 16
#define BUDGET_WORKLOADS_MAX 256
/* the API server's limit on all of an object's annotations */
#define BUDGET_TEXT_MAX (256 << 10)
#define BUDGET_DEADLINE_NS (30 * NSEC_PER_SEC)
#define BUDGET_PAUSE_NS (50 * NSEC_PER_MSEC)
#define BUDGET_PAUSE_MAX_NS (4 * NSEC_PER_SEC)

struct k8s_budget_op {
	struct k8s_client *k;
	char workload[256];
	k8s_budget_fn done;
	void *ctx;
	struct k8s_request *req;
	ev_timer pause;
	uint64_t started_ns;
	unsigned conflicts;
};

struct budget_bucket {
	int64_t start;
	unsigned count;
};

static int budget_get(struct k8s_budget_op *op);

static void budget_end(struct k8s_budget_op *op, bool ok, const char *why)
{
	op->done(op->ctx, ok, why);
	free(op);
}

static void budget_fail(struct k8s_budget_op *op, const struct k8s_reply *r, enum k8s_call call)
{
	char why[512], explained[400];

	k8s_reply_explain(r, call, explained, sizeof(explained));
	snprintf(why, sizeof(why), "cluster budget unknown, so no action (fail closed): %s", explained);
	budget_end(op, false, why);
}

static void budget_pause_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct k8s_budget_op *op = w->data;

	if (budget_get(op))
		budget_end(op, false, "cluster budget: cannot read the Lease (fail closed)");
}

static void budget_written(void *ctx, const struct k8s_reply *r)
{
	struct k8s_budget_op *op = ctx;
	struct k8s_client *k = op->k;
	char why[256];
	uint64_t pause;

	op->req = NULL;
	if (r->status == 200 || r->status == 201) {
		budget_end(op, true, "");
		return;
	}
	if (r->status != 409) {
		budget_fail(op, r, K8S_UPDATE_LEASE);
		return;
	}
	/* another node wrote first (or created it first): read again, later */
	k->stats.conflicts++;
	op->conflicts++;
	if (clock_mono_ns() - op->started_ns > BUDGET_DEADLINE_NS) {
		snprintf(why, sizeof(why), "cluster budget: %u write conflicts on the Lease in %llus, "
			 "no answer (fail closed)", op->conflicts,
			 (unsigned long long)(BUDGET_DEADLINE_NS / NSEC_PER_SEC));
		budget_end(op, false, why);
		return;
	}
	pause = BUDGET_PAUSE_NS << (op->conflicts < 8 ? op->conflicts : 8);
	ev_timer_set(&op->pause, (double)k8s_jitter(k, pause < BUDGET_PAUSE_MAX_NS ? pause
								   : BUDGET_PAUSE_MAX_NS) / 1e9, 0);
	ev_timer_start(k->loop, &op->pause);
}

static int64_t bucket_width(const struct k8s_client *k)
{
	int64_t w = (int64_t)(k->o.budget_window_ns / NSEC_PER_SEC / BUDGET_BUCKETS);

	return w > 0 ? w : 1;
}

/* One workload's entry (pairs, or the unix times of the older form) into
 * b by bucket, keeping those still in the window: how many, or -E2BIG
 * when there are more than fit (a record written with another window:
 * fail closed rather than undercount). */
static int entry_read(const struct json_val *v, int64_t width, int64_t since,
		      struct budget_bucket *b, size_t max)
{
	struct json_val it = { 0 }, x;
	size_t n = 0, i;

	while (json_next(v, &it, NULL)) {
		double t, c = 1;
		int64_t start;

		if (it.type == JSON_ARRAY) {
			if (json_get(&it, "0", &x) || json_num(&x, &t) || json_get(&it, "1", &x) ||
			    json_num(&x, &c))
				continue;
		} else if (json_num(&it, &t)) {
			continue;
		}
		start = (int64_t)t / width * width;
		if (start + width <= since || c < 1 || c > 1e6)
			continue;
		for (i = 0; i < n && b[i].start != start; i++)
			;
		if (i == n) {
			if (n == max)
				return -E2BIG;
			b[n++] = (struct budget_bucket){ start, 0 };
		}
		b[i].count += (unsigned)c;
	}
	return (int)n;
}

static void entry_write(struct sbuf *out, const char *name, const struct budget_bucket *b, size_t n)
{
	sbuf_printf(out, "%s", out->len > 1 ? "," : "");
	sbuf_json_str(out, name);
	sbuf_printf(out, ":[");
	for (size_t i = 0; i < n; i++)
		sbuf_printf(out, "%s[%lld,%u]", i ? "," : "", (long long)b[i].start, b[i].count);
	sbuf_printf(out, "]");
}

/* Writes the budget record old again into out with one disruption of
 * op's workload added now, dropping what left the window: *count is how
 * many its workload had in the window (the record is only sent when that
 * is under the budget). 0, or -errno with why in words. */
static int budget_rewrite(struct k8s_budget_op *op, const char *old, int64_t now, struct sbuf *out,
			  unsigned *count, char *why, size_t size)
{
	int64_t width = bucket_width(op->k), since = now - (int64_t)(op->k->o.budget_window_ns / NSEC_PER_SEC);
	struct budget_bucket b[BUDGET_BUCKETS + 2], mine[BUDGET_BUCKETS + 2];
	struct json_val doc, it = { 0 }, key;
	size_t workloads = 1, i;
	int n, nmine = 0;

	*count = 0;
	if (old[0] && json_parse(old, strlen(old), &doc)) {
		snprintf(why, size, "the Lease's %s annotation is not JSON", LEASE_ANNOTATION);
		return -EINVAL;
	}
	sbuf_printf(out, "{");
	while (old[0] && json_next(&doc, &it, &key)) {
		char name[256];
		bool ours;

		if (json_str(&key, name, sizeof(name)) || it.type != JSON_ARRAY)
			continue;
		ours = !strcmp(name, op->workload);
		n = entry_read(&it, width, since, ours ? mine : b, ARRAY_SIZE(b));
		if (n < 0) {
			snprintf(why, size, "the Lease holds more buckets for %s than a %llus window has "
				 "(is --k8s-budget-window the same on every node?)", name,
				 (unsigned long long)(op->k->o.budget_window_ns / NSEC_PER_SEC));
			return n;
		}
		if (ours) {
			nmine = n;
		} else if (n) {
			if (++workloads > BUDGET_WORKLOADS_MAX) {
				snprintf(why, size, "the Lease tracks %d workloads with disruptions in the "
					 "window, its most", BUDGET_WORKLOADS_MAX);
				return -ENOSPC;
			}
			entry_write(out, name, b, (size_t)n);
		}
	}
	for (i = 0; i < (size_t)nmine; i++)
		*count += mine[i].count;
	for (i = 0; i < (size_t)nmine && mine[i].start != now / width * width; i++)
		;
	if (i == (size_t)nmine) {
		if (nmine == (int)ARRAY_SIZE(mine)) {
			snprintf(why, size, "the Lease holds too many buckets for %s", op->workload);
			return -E2BIG;
		}
		mine[nmine++] = (struct budget_bucket){ now / width * width, 0 };
	}
	mine[i].count++;
	entry_write(out, op->workload, mine, (size_t)nmine);
	sbuf_printf(out, "}");
	return 0;
}

static void budget_read(void *ctx, const struct k8s_reply *r)
{
	struct k8s_budget_op *op = ctx;
	struct k8s_client *k = op->k;
	char *text = malloc(BUDGET_TEXT_MAX), *fresh = malloc(BUDGET_TEXT_MAX);
	char *body = malloc(2 * BUDGET_TEXT_MAX), version[64] = "", path[512], why[512], what[400];
	struct json_val ann, it = { 0 }, key;
	struct sbuf t, b;
	unsigned count;
	bool create = r->status == 404;

	op->req = NULL;
	if (!text || !fresh || !body) {
		budget_end(op, false, "cluster budget: out of memory (fail closed)");
		goto cleanup;
	}
	if (r->status != 200 && !create) {
		budget_fail(op, r, K8S_GET_LEASE);
		goto cleanup;
	}
	text[0] = '\0';
	if (!create) {
		json_get_str(&r->json, "metadata.resourceVersion", version, sizeof(version));
		if (json_get(&r->json, "metadata.annotations", &ann) == 0)
			while (json_next(&ann, &it, &key))
				if (json_str_eq(&key, LEASE_ANNOTATION))
					(void)json_str(&it, text, BUDGET_TEXT_MAX);
	}
	sbuf_init(&t, fresh, BUDGET_TEXT_MAX);
	if (budget_rewrite(op, text, clock_real_ns() / (int64_t)NSEC_PER_SEC, &t, &count, what,
			   sizeof(what)) || t.truncated) {
		snprintf(why, sizeof(why), "cluster budget: %s (fail closed)",
			 t.truncated ? "the Lease record outgrew its limit" : what);
		budget_end(op, false, why);
		goto cleanup;
	}
	if (count >= k->o.budget_max) {
		snprintf(why, sizeof(why), "cluster budget spent: %u disruptions of %s across the "
			 "cluster in the last %llus (max %u)", count, op->workload,
			 (unsigned long long)(k->o.budget_window_ns / NSEC_PER_SEC), k->o.budget_max);
		budget_end(op, false, why);
		goto cleanup;
	}
	sbuf_init(&b, body, 2 * BUDGET_TEXT_MAX);
	sbuf_printf(&b, "{\"apiVersion\":\"coordination.k8s.io/v1\",\"kind\":\"Lease\","
		    "\"metadata\":{\"name\":\"%s\",\"namespace\":", LEASE_NAME);
	sbuf_json_str(&b, k->namespace);
	if (version[0]) {
		sbuf_printf(&b, ",\"resourceVersion\":");
		sbuf_json_str(&b, version);
	}
	sbuf_printf(&b, ",\"annotations\":{\"%s\":", LEASE_ANNOTATION);
	sbuf_json_str(&b, fresh);
	sbuf_printf(&b, "}},\"spec\":{\"holderIdentity\":");
	sbuf_json_str(&b, k->node);
	sbuf_printf(&b, "}}");
	if (create)
		snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases", k->namespace);
	else
		snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
			 k->namespace, LEASE_NAME);
	op->req = k8s_send(k, create ? K8S_CREATE_LEASE : K8S_UPDATE_LEASE, path, "application/json",
			   body, budget_written, op);
	if (!op->req)
		budget_end(op, false, "cluster budget: cannot send the Lease update (fail closed)");
cleanup:
	free(text);
	free(fresh);
	free(body);
}

static int budget_get(struct k8s_budget_op *op)
{
	char path[512];

	snprintf(path, sizeof(path), "/apis/coordination.k8s.io/v1/namespaces/%s/leases/%s",
		 op->k->namespace, LEASE_NAME);
	op->req = k8s_send(op->k, K8S_GET_LEASE, path, NULL, NULL, budget_read, op);
	return op->req ? 0 : -ENOMEM;
}

struct k8s_budget_op *k8s_budget_take(struct k8s_client *k, const char *workload,
				      k8s_budget_fn done, void *ctx)
{
	struct k8s_budget_op *op = calloc(1, sizeof(*op));

	if (!op)
		return NULL;
	op->k = k;
	str_copy(op->workload, sizeof(op->workload), workload);
	op->done = done;
	op->ctx = ctx;
	op->started_ns = clock_mono_ns();
	ev_timer_init(&op->pause, budget_pause_over, 0, 0);
	op->pause.data = op;
	if (budget_get(op)) {
		free(op);
		return NULL;
	}
	return op;
}

void k8s_budget_cancel(struct k8s_budget_op *op)
{
	if (!op)
		return;
	ev_timer_stop(op->k->loop, &op->pause);
	k8s_cancel(op->req);
	free(op);
}

