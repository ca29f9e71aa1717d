/* The Kubernetes API client: requests on lib/http.h with bounded retries
 * and Status replies read for their meaning, Events, and the client's
 * life (k8s/client.h says where the rest lives). */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>

#include "k8s/client.h"
#include "lib/http.h"
#include "lib/log.h"

/* RBAC: what each call needs. tests/k8s/check_deploy.py reads the lines
 * between the markers, so keep one entry a line. */
const struct k8s_call_def k8s_calls[K8S_CALL_COUNT] = {
	/* rbac-table-begin */
	[K8S_LIST_PODS] = { "list", "", "pods" },
	[K8S_WATCH_PODS] = { "watch", "", "pods" },
	[K8S_DELETE_POD] = { "delete", "", "pods" },
	[K8S_EVICT_POD] = { "create", "", "pods/eviction" },
	[K8S_PATCH_POD] = { "patch", "", "pods" },
	[K8S_PATCH_NODE] = { "patch", "", "nodes" },
	[K8S_PATCH_DEPLOYMENT_SCALE] = { "patch", "apps", "deployments/scale" },
	[K8S_PATCH_STATEFULSET_SCALE] = { "patch", "apps", "statefulsets/scale" },
	[K8S_CREATE_EVENT] = { "create", "", "events" },
	[K8S_GET_LEASE] = { "get", "coordination.k8s.io", "leases" },
	[K8S_CREATE_LEASE] = { "create", "coordination.k8s.io", "leases" },
	[K8S_UPDATE_LEASE] = { "update", "coordination.k8s.io", "leases" },
	/* rbac-table-end */
};

#define RETRY_PAUSE_NS (500 * NSEC_PER_MSEC)
#define RETRY_AFTER_MAX_NS (30 * NSEC_PER_SEC)
#define LIST_MAX_RESPONSE (16 << 20)

struct k8s_request {
	struct k8s_client *k;
	enum k8s_call call;
	char method[8];
	char *url;
	char *content_type;
	char *body;
	k8s_done_fn done;
	int (*on_data)(void *ctx, const char *data, size_t len);  /* a watch: no retries */
	uint64_t timeout_ns;
	void *ctx;
	unsigned attempts;
	bool in_flight;      /* http has it; its done is still to come */
	int send_error;      /* http_send refused: delivered from the pause timer */
	bool cancelled;
	ev_timer pause;
	struct k8s_request *prev, *next;
};

/* ---- requests ---- */

static void request_free(struct k8s_request *req)
{
	struct k8s_client *k = req->k;

	ev_timer_stop(k->loop, &req->pause);
	if (req->prev)
		req->prev->next = req->next;
	else
		k->requests = req->next;
	if (req->next)
		req->next->prev = req->prev;
	free(req->url);
	free(req->content_type);
	free(req->body);
	free(req);
}

static void attempt(struct k8s_request *req);

static void on_http_done(void *ctx, const struct http_response *res);

static void pause_over(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct k8s_request *req = w->data;
	struct http_response res = { .body = "", .retry_after = "", .content_type = "" };

	if (!req->send_error) {
		attempt(req);
		return;
	}
	/* as if it failed on the wire: the same retries and outcome */
	res.error = strerror(-req->send_error);
	req->send_error = 0;
	on_http_done(req, &res);
}

/* The reason and message of a Status body, or of a transport error. */
static void read_status(struct k8s_reply *r, const struct http_response *res)
{
	r->reason[0] = r->message[0] = '\0';
	if (!res->status) {
		str_copy(r->reason, sizeof(r->reason), "NoResponse");
		str_copy(r->message, sizeof(r->message), res->error);
		return;
	}
	if (r->json.type == JSON_OBJECT) {
		struct json_val kind;

		if (json_get(&r->json, "kind", &kind) == 0 && json_str_eq(&kind, "Status")) {
			json_get_str(&r->json, "reason", r->reason, sizeof(r->reason));
			json_get_str(&r->json, "message", r->message, sizeof(r->message));
		}
	}
}

bool k8s_reply_pdb(const struct k8s_reply *r, char *why, size_t size)
{
	struct json_val causes, it = { 0 };

	if (r->status != 429 || json_get(&r->json, "details.causes", &causes))
		return false;
	while (json_next(&causes, &it, NULL)) {
		char reason[64];

		json_get_str(&it, "reason", reason, sizeof(reason));
		if (!strcmp(reason, "DisruptionBudget")) {
			json_get_str(&it, "message", why, size);
			return true;
		}
	}
	return false;
}

/* Overload and server trouble pass; a PDB's refusal (also a 429) is an
 * answer, and asking again at once would not change it. */
static bool retryable(const struct k8s_reply *r)
{
	char why[8];

	return r->status == 0 || r->status >= 500 ||
	       (r->status == 429 && !k8s_reply_pdb(r, why, sizeof(why)));
}

static void on_http_done(void *ctx, const struct http_response *res)
{
	struct k8s_request *req = ctx;
	struct k8s_client *k = req->k;
	struct k8s_reply r = {
		.status = res->status, .body = res->body, .body_len = res->body_len,
		.attempts = req->attempts,
	};
	uint64_t pause = RETRY_PAUSE_NS << (req->attempts - 1);

	req->in_flight = false;
	if (req->cancelled) {
		request_free(req);
		return;
	}
	if (json_parse(res->body, res->body_len, &r.json))
		memset(&r.json, 0, sizeof(r.json));
	read_status(&r, res);
	if (res->status == 401 && req->attempts == 1 && (k->token_file[0] || k->exec.command)) {
		/* the token may have rotated just now: read it again, once */
		(void)k8s_auth_token(k, true);
		attempt(req);
		return;
	}
	if (retryable(&r) && !req->on_data && req->attempts <= k->o.retries) {
		if (res->status == 429 && res->retry_after[0] &&
		    http_retry_after(res->retry_after, clock_real_ns(), &pause) == 0 &&
		    pause > RETRY_AFTER_MAX_NS)
			pause = RETRY_AFTER_MAX_NS;
		log_debug("k8s: %s %s: %ld %s; retrying in %.1fs", req->method, req->url, r.status,
			  r.reason, (double)pause / 1e9);
		ev_timer_set(&req->pause, (double)pause / 1e9, 0);
		ev_timer_start(k->loop, &req->pause);
		return;
	}
	req->done(req->ctx, &r);
	request_free(req);
}

/* A watch's stream, passed on unless the request was cancelled. */
static int on_request_data(void *ctx, const char *data, size_t len)
{
	struct k8s_request *req = ctx;

	return req->cancelled ? -ECANCELED : req->on_data(req->ctx, data, len);
}

static void attempt(struct k8s_request *req)
{
	struct k8s_client *k = req->k;
	struct strlist headers = { 0 };
	char line[sizeof(k->token) + 32];
	const char *token = k8s_auth_token(k, false);
	struct http_request hr = {
		.method = req->method, .url = req->url, .headers = &headers,
		.body = req->body, .body_len = req->body ? strlen(req->body) : 0,
		.timeout_ns = req->timeout_ns,
		.max_response = req->call == K8S_LIST_PODS ? LIST_MAX_RESPONSE : 0,
		.on_data = req->on_data ? on_request_data : NULL,
		.ca_file = k->ca_file, .ca_pem = k->ca_pem, .cert_file = k->cert_file,
		.cert_pem = k->cert_pem, .key_file = k->key_file, .key_pem = k->key_pem,
	};
	int err;

	req->attempts++;
	(void)strlist_add(&headers, "Accept: application/json");
	if (req->content_type) {
		snprintf(line, sizeof(line), "Content-Type: %s", req->content_type);
		(void)strlist_add(&headers, line);
	}
	if (token[0]) {
		snprintf(line, sizeof(line), "Authorization: Bearer %s", token);
		(void)strlist_add(&headers, line);
	}
	err = http_send(k->http, &hr, on_http_done, req);
	strlist_free(&headers);
	if (err) {
		req->send_error = err;
		ev_timer_set(&req->pause, 0, 0);
		ev_timer_start(k->loop, &req->pause);
		return;
	}
	req->in_flight = true;
}

/* k8s_send, and for a watch: on_data gets the stream, timeout_ns bounds it. */
static struct k8s_request *request_start(struct k8s_client *k, enum k8s_call call, const char *path,
					 const char *content_type, const char *body,
					 int (*on_data)(void *, const char *, size_t), uint64_t timeout_ns,
					 k8s_done_fn done, void *ctx)
{
	static const char *const methods[K8S_CALL_COUNT] = {
		[K8S_LIST_PODS] = "GET", [K8S_WATCH_PODS] = "GET", [K8S_DELETE_POD] = "DELETE", [K8S_EVICT_POD] = "POST",
		[K8S_PATCH_POD] = "PATCH", [K8S_PATCH_NODE] = "PATCH",
		[K8S_PATCH_DEPLOYMENT_SCALE] = "PATCH", [K8S_PATCH_STATEFULSET_SCALE] = "PATCH",
		[K8S_CREATE_EVENT] = "POST", [K8S_GET_LEASE] = "GET", [K8S_CREATE_LEASE] = "POST",
		[K8S_UPDATE_LEASE] = "PUT",
	};
	struct k8s_request *req = calloc(1, sizeof(*req));
	size_t n = strlen(k->server) + strlen(path) + 1;

	if (req)
		k->stats.calls[call]++;

	if (!req)
		return NULL;
	req->k = k;
	req->call = call;
	str_copy(req->method, sizeof(req->method), methods[call]);
	req->url = malloc(n);
	if (req->url)
		snprintf(req->url, n, "%s%s", k->server, path);
	req->content_type = content_type ? strdup(content_type) : NULL;
	req->body = body ? strdup(body) : NULL;
	if (!req->url || (content_type && !req->content_type) || (body && !req->body)) {
		free(req->url);
		free(req->content_type);
		free(req->body);
		free(req);
		errno = ENOMEM;
		return NULL;
	}
	req->done = done;
	req->on_data = on_data;
	req->timeout_ns = timeout_ns ? timeout_ns : k->o.timeout_ns;
	req->ctx = ctx;
	ev_timer_init(&req->pause, pause_over, 0, 0);
	req->pause.data = req;
	req->next = k->requests;
	if (k->requests)
		k->requests->prev = req;
	k->requests = req;
	log_debug("k8s: %s %s", req->method, req->url);
	attempt(req);
	return req;
}

struct k8s_request *k8s_send(struct k8s_client *k, enum k8s_call call, const char *path,
			     const char *content_type, const char *body, k8s_done_fn done, void *ctx)
{
	return request_start(k, call, path, content_type, body, NULL, 0, done, ctx);
}

struct k8s_request *k8s_stream(struct k8s_client *k, enum k8s_call call, const char *path,
				      uint64_t timeout_ns, int (*on_data)(void *, const char *, size_t),
				      k8s_done_fn done, void *ctx)
{
	return request_start(k, call, path, NULL, NULL, on_data, timeout_ns, done, ctx);
}

void k8s_cancel(struct k8s_request *req)
{
	if (!req)
		return;
	if (req->in_flight)
		req->cancelled = true;
	else
		request_free(req);
}

void k8s_reply_explain(const struct k8s_reply *r, enum k8s_call call, char *buf, size_t size)
{
	const struct k8s_call_def *c = &k8s_calls[call];
	const char *msg = r->message[0] ? r->message : r->reason;
	struct sbuf b;

	sbuf_init(&b, buf, size);
	if (!r->status) {
		sbuf_printf(&b, "no answer from the API server after %u attempts: %s", r->attempts, msg);
		return;
	}
	sbuf_printf(&b, "%ld %s", r->status, r->reason[0] ? r->reason : "");
	if (msg[0] && msg != r->reason)
		sbuf_printf(&b, ": %s", msg);
	if (r->status == 401)
		sbuf_printf(&b, " (the API server refused the credentials: is the token expired or "
			    "the service account deleted?)");
	else if (r->status == 403)
		sbuf_printf(&b, " (RBAC: reflexd's ClusterRole needs verb '%s' on resource '%s'%s%s%s, "
			    "see deploy/reflexd.yaml)", c->verb, c->resource, c->group[0] ? " in API group '" : "",
			    c->group, c->group[0] ? "'" : "");
	else if (r->status == 429 || r->status >= 500)
		sbuf_printf(&b, " (gave up after %u attempts)", r->attempts);
}

uint64_t k8s_jitter(struct k8s_client *k, uint64_t d)
{
	/* xorshift64: the seed came from getrandom */
	k->seed ^= k->seed << 13;
	k->seed ^= k->seed >> 7;
	k->seed ^= k->seed << 17;
	return d / 2 + (d / 2 ? k->seed % (d / 2) : 0);
}

const char *k8s_node(const struct k8s_client *k)
{
	return k->node;
}

/* ---- events ---- */

struct k8s_request *k8s_event(struct k8s_client *k, const char *kind, const char *namespace,
			      const char *name, const char *uid, const char *reason,
			      const char *message, k8s_done_fn done, void *ctx)
{
	char body[4096], now[40], path[256];
	const char *ns = namespace && namespace[0] ? namespace : "default";
	struct sbuf b;

	time_format(clock_real_ns(), now, sizeof(now));
	sbuf_init(&b, body, sizeof(body));
	sbuf_printf(&b, "{\"apiVersion\":\"v1\",\"kind\":\"Event\",\"metadata\":{\"generateName\":");
	sbuf_printf(&b, "\"reflexd-\",\"namespace\":");
	sbuf_json_str(&b, ns);
	sbuf_printf(&b, "},\"involvedObject\":{\"apiVersion\":\"%s\",\"kind\":",
		    strcmp(kind, "Deployment") && strcmp(kind, "StatefulSet") ? "v1" : "apps/v1");
	sbuf_json_str(&b, kind);
	sbuf_printf(&b, ",\"name\":");
	sbuf_json_str(&b, name);
	if (namespace && namespace[0]) {
		sbuf_printf(&b, ",\"namespace\":");
		sbuf_json_str(&b, namespace);
	}
	sbuf_printf(&b, ",\"uid\":");
	sbuf_json_str(&b, uid);
	sbuf_printf(&b, "},\"reason\":");
	sbuf_json_str(&b, reason);
	sbuf_printf(&b, ",\"message\":");
	sbuf_json_str(&b, message);
	sbuf_printf(&b, ",\"type\":\"Warning\",\"source\":{\"component\":\"reflexd\",\"host\":");
	sbuf_json_str(&b, k->node);
	sbuf_printf(&b, "},\"reportingComponent\":\"reflexd\",\"reportingInstance\":");
	sbuf_json_str(&b, k->node);
	sbuf_printf(&b, ",\"firstTimestamp\":\"%s\",\"lastTimestamp\":\"%s\",\"count\":1}", now, now);
	snprintf(path, sizeof(path), "/api/v1/namespaces/%s/events", ns);
	return k8s_send(k, K8S_CREATE_EVENT, path, "application/json", body, done, ctx);
}

const struct k8s_stats *k8s_stats(struct k8s_client *k)
{
	k->stats.pods = pods_count(k->pods);
	k->stats.synced = k->version[0] && !k->relist;
	return &k->stats;
}

/* ---- the client ---- */

bool k8s_configured(const char *kubeconfig)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST");

	return kubeconfig || (host && *host);
}

struct k8s_client *k8s_new(struct ev_loop *loop, const struct k8s_options *o, char *err, size_t errlen)
{
	struct k8s_client *k = calloc(1, sizeof(*k));
	int rc;

	if (!k) {
		snprintf(err, errlen, "out of memory");
		return NULL;
	}
	k->loop = loop;
	/* the strings are the caller's: what is kept is copied */
	k->o = *o;
	k->o.kubeconfig = k->o.sa_dir = k->o.node = k->o.namespace = NULL;
	k->pods = pods_new();
	if (!k->pods) {
		snprintf(err, errlen, "out of memory");
		goto cleanup;
	}
	if (getrandom(&k->seed, sizeof(k->seed), 0) != sizeof(k->seed) || !k->seed)
		k->seed = clock_mono_ns() | 1;
	rc = o->kubeconfig ? k8s_auth_kubeconfig(k, o->kubeconfig, err, errlen)
			   : k8s_auth_in_cluster(k, o->sa_dir, err, errlen);
	if (rc)
		goto cleanup;
	if (o->namespace && o->namespace[0])
		str_copy(k->namespace, sizeof(k->namespace), o->namespace);
	if (!o->node || !o->node[0]) {
		snprintf(err, errlen, "which node is this? (--node-name, or NODE_NAME from the downward API)");
		goto cleanup;
	}
	str_copy(k->node, sizeof(k->node), o->node);
	k->http = http_new(loop);
	if (!k->http) {
		snprintf(err, errlen, "cannot start the HTTP client");
		goto cleanup;
	}
	(void)k8s_auth_token(k, false);
	k8s_watch_begin(k);
	return k;
cleanup:
	k8s_free(k);
	return NULL;
}

void k8s_free(struct k8s_client *k)
{
	if (!k)
		return;
	ev_timer_stop(k->loop, &k->restart);
	/* http_free drops whatever is in flight without calling back */
	http_free(k->http);
	while (k->requests)
		request_free(k->requests);
	pods_free(k->pods);
	free(k->line);
	free(k->ca_file);
	free(k->ca_pem);
	free(k->cert_file);
	free(k->cert_pem);
	free(k->key_file);
	free(k->key_pem);
	kubeconfig_exec_free(&k->exec);
	free(k);
}
