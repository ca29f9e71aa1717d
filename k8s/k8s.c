#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/stat.h>
#include <time.h>

#include "lib/http.h"
#include "k8s/k8s.h"
#include "k8s/kubeconfig.h"
#include "lib/log.h"
#include "sense/identity.h"

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

#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"
#define TOKEN_REREAD_NS (60 * NSEC_PER_SEC)
#define RETRY_PAUSE_NS (500 * NSEC_PER_MSEC)
#define RETRY_AFTER_MAX_NS (30 * NSEC_PER_SEC)
#define LIST_MAX_RESPONSE (16 << 20)
/* one watch event (a Pod): a longer line ends the watch and relists */
#define WATCH_LINE_MAX (1 << 20)
/* a watch that ends cleanly sooner than this had trouble: back off */
#define WATCH_MIN_NS (NSEC_PER_SEC)
#define BACKOFF_BASE_NS (800 * NSEC_PER_MSEC)
#define BACKOFF_MAX_NS (30 * NSEC_PER_SEC)
#define WATCH_GRACE_NS (30 * NSEC_PER_SEC)
#define LEASE_NAME "reflexd-budget"
#define LEASE_ANNOTATION "reflexd.io/budget"
#define POD_CONTAINERS_MAX 16

struct k8s_container {
	char id[72];
	char name[64];
};

struct k8s_pod {
	char uid[40];
	char mirror[40];  /* a static pod: the config hash its cgroup is named by */
	char namespace[64];
	char name[128];
	char labels[512];
	char owner_kind[32], owner_name[128];
	char template_hash[32];
	struct k8s_container containers[POD_CONTAINERS_MAX];
	size_t ncontainers;
};

struct k8s_client {
	struct ev_loop *loop;
	struct http_client *http;
	struct k8s_options o;
	char server[256];
	char node[128];
	char namespace[64];
	/* credentials: a token (static, or a file re-read when it changes
	 * and at least once a minute), a CA and a client certificate */
	char token[4096];
	char token_file[512];
	struct timespec token_mtime;
	uint64_t token_read_ns;
	char *ca_file, *ca_pem, *cert_file, *cert_pem, *key_file, *key_pem;
	struct k8s_request *requests;
	/* the pods on this node */
	struct k8s_pod *pods;
	size_t npods;
	/* listed once, then watched from the list's resourceVersion */
	struct k8s_request *listing, *watching;
	char version[64];       /* the newest resourceVersion seen */
	bool relist;            /* the next start lists (at start, on 410, after a failed resume) */
	bool streamed;          /* the current watch got its 200 */
	int stop;               /* why the reader ended the watch: -ESTALE relists */
	unsigned failures;      /* starts that failed in a row: the backoff's exponent */
	uint64_t watch_started_ns;
	char *line;             /* the watch event being read */
	size_t line_len, line_cap;
	ev_timer restart;
	uint64_t seed;          /* the jitter's */
	struct k8s_stats stats;
};

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

/* ---- credentials ---- */

static int load_kubeconfig(struct k8s_client *k, const char *file, char *err, size_t errlen)
{
	struct kubeconfig kc = { 0 };
	char *text = malloc(1 << 20), dir[512], *slash;
	const char *ctx, *cluster, *user, *v;
	ssize_t n;
	int rc = -EINVAL;

	if (!text)
		return -ENOMEM;
	n = read_file(file, text, 1 << 20);
	if (n < 0) {
		snprintf(err, errlen, "kubeconfig %s: %s", file, strerror((int)-n));
		goto out;
	}
	if (n == (1 << 20) - 1) {
		snprintf(err, errlen, "kubeconfig %s: larger than 1 MiB", file);
		goto out;
	}
	if (kubeconfig_parse(text, &kc, file, err, errlen))
		goto out;
	str_copy(dir, sizeof(dir), file);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		str_copy(dir, sizeof(dir), ".");
	ctx = kubeconfig_get(&kc, "", NULL, "current-context");
	if (!ctx) {
		snprintf(err, errlen, "kubeconfig %s: no current-context", file);
		goto out;
	}
	cluster = kubeconfig_get(&kc, "contexts", ctx, "context.cluster");
	user = kubeconfig_get(&kc, "contexts", ctx, "context.user");
	v = kubeconfig_get(&kc, "contexts", ctx, "context.namespace");
	str_copy(k->namespace, sizeof(k->namespace), v ? v : "default");
	if (!cluster || !user) {
		snprintf(err, errlen, "kubeconfig %s: context '%s' has no cluster and user", file, ctx);
		goto out;
	}
	v = kubeconfig_get(&kc, "clusters", cluster, "cluster.server");
	if (!v || strncmp(v, "https://", 8)) {
		snprintf(err, errlen, "kubeconfig %s: cluster '%s' has no https:// server", file, cluster);
		goto out;
	}
	str_copy(k->server, sizeof(k->server), v);
	v = kubeconfig_get(&kc, "clusters", cluster, "cluster.insecure-skip-tls-verify");
	if (v && !strcmp(v, "true")) {
		snprintf(err, errlen, "kubeconfig %s: cluster '%s' skips TLS verification; reflexd "
			 "always verifies (give certificate-authority-data)", file, cluster);
		goto out;
	}
	if (kubeconfig_file_or_data(&kc, "clusters", cluster, "cluster.certificate-authority", dir,
				    &k->ca_file, &k->ca_pem) ||
	    kubeconfig_file_or_data(&kc, "users", user, "user.client-certificate", dir, &k->cert_file,
				    &k->cert_pem) ||
	    kubeconfig_file_or_data(&kc, "users", user, "user.client-key", dir, &k->key_file,
				    &k->key_pem)) {
		snprintf(err, errlen, "kubeconfig %s: bad certificate data for '%s'", file, ctx);
		goto out;
	}
	v = kubeconfig_get(&kc, "users", user, "user.token");
	if (v)
		str_copy(k->token, sizeof(k->token), v);
	v = kubeconfig_get(&kc, "users", user, "user.tokenFile");
	if (v && kubeconfig_path(dir, v, k->token_file, sizeof(k->token_file))) {
		snprintf(err, errlen, "kubeconfig %s: tokenFile path too long", file);
		goto out;
	}
	if (!k->token[0] && !k->token_file[0] && !k->cert_file && !k->cert_pem) {
		snprintf(err, errlen, "kubeconfig %s: user '%s' has no token and no client "
			 "certificate (exec plugins are not supported)", file, user);
		goto out;
	}
	rc = 0;
out:
	kubeconfig_free(&kc);
	free(text);
	return rc;
}

static int load_in_cluster(struct k8s_client *k, const char *sa_dir, char *err, size_t errlen)
{
	const char *host = getenv("KUBERNETES_SERVICE_HOST"), *port = getenv("KUBERNETES_SERVICE_PORT");
	const char *dir = sa_dir ? sa_dir : SA_DIR_DEFAULT;
	char path[512], ns[64];

	if (!host || !*host) {
		snprintf(err, errlen, "not in a cluster (no KUBERNETES_SERVICE_HOST) and no --kubeconfig");
		return -ENOENT;
	}
	/* an IPv6 service address needs brackets in a URL */
	snprintf(k->server, sizeof(k->server), strchr(host, ':') ? "https://[%s]:%s" : "https://%s:%s",
		 host, port && *port ? port : "443");
	snprintf(k->token_file, sizeof(k->token_file), "%s/token", dir);
	snprintf(path, sizeof(path), "%s/ca.crt", dir);
	k->ca_file = strdup(path);
	snprintf(path, sizeof(path), "%s/namespace", dir);
	if (read_file(path, ns, sizeof(ns)) > 0) {
		ns[strcspn(ns, "\n")] = '\0';
		str_copy(k->namespace, sizeof(k->namespace), ns);
	} else {
		str_copy(k->namespace, sizeof(k->namespace), "default");
	}
	if (access(k->token_file, R_OK)) {
		snprintf(err, errlen, "service account token %s: %s", k->token_file, strerror(errno));
		return -ENOENT;
	}
	return k->ca_file ? 0 : -ENOMEM;
}

/* The token, re-read from its file when the file changed (a projected
 * token rotates) and at least once a minute. */
static const char *current_token(struct k8s_client *k, bool force)
{
	struct stat st;
	uint64_t now = clock_mono_ns();
	char buf[sizeof(k->token)];
	ssize_t n;

	if (!k->token_file[0])
		return k->token;
	if (stat(k->token_file, &st) == 0 && !force && k->token[0] &&
	    st.st_mtim.tv_sec == k->token_mtime.tv_sec && st.st_mtim.tv_nsec == k->token_mtime.tv_nsec &&
	    now - k->token_read_ns < TOKEN_REREAD_NS)
		return k->token;
	n = read_file(k->token_file, buf, sizeof(buf));
	if (n < 0) {
		log_warn("k8s: cannot read the token %s: %s; using the last one", k->token_file,
			 strerror((int)-n));
		return k->token;
	}
	buf[strcspn(buf, "\r\n")] = '\0';
	str_copy(k->token, sizeof(k->token), buf);
	k->token_mtime = st.st_mtim;
	k->token_read_ns = now;
	return k->token;
}

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
	if (res->status == 401 && req->attempts == 1 && k->token_file[0]) {
		/* the token may have rotated just now: read it again, once */
		(void)current_token(k, true);
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
	const char *token = current_token(k, false);
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

static struct k8s_request *k8s_stream(struct k8s_client *k, enum k8s_call call, const char *path,
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

/* ---- the pods on this node ---- */

static void pod_read(const struct json_val *item, struct k8s_pod *p)
{
	static const char *const statuses[] = { "status.containerStatuses",
						"status.initContainerStatuses" };
	struct json_val v, it = { 0 }, key, owners;
	struct sbuf b;

	memset(p, 0, sizeof(*p));
	json_get_str(item, "metadata.uid", p->uid, sizeof(p->uid));
	json_get_str(item, "metadata.namespace", p->namespace, sizeof(p->namespace));
	json_get_str(item, "metadata.name", p->name, sizeof(p->name));
	sbuf_init(&b, p->labels, sizeof(p->labels));
	if (json_get(item, "metadata.labels", &v) == 0) {
		while (json_next(&v, &it, &key)) {
			char k[128], val[128];

			if (json_str(&key, k, sizeof(k)) || json_str(&it, val, sizeof(val)))
				continue;
			sbuf_printf(&b, "%s%s=%s", b.len ? "," : "", k, val);
			if (!strcmp(k, "pod-template-hash"))
				str_copy(p->template_hash, sizeof(p->template_hash), val);
		}
	}
	memset(&it, 0, sizeof(it));
	if (json_get(item, "metadata.annotations", &v) == 0)
		while (json_next(&v, &it, &key))
			if (json_str_eq(&key, "kubernetes.io/config.mirror"))
				(void)json_str(&it, p->mirror, sizeof(p->mirror));
	/* the controller among the owners, else the first */
	if (json_get(item, "metadata.ownerReferences", &owners) == 0) {
		memset(&it, 0, sizeof(it));
		while (json_next(&owners, &it, NULL)) {
			struct json_val ctl;
			bool controller = json_get(&it, "controller", &ctl) == 0 &&
					  ctl.type == JSON_BOOL && ctl.p[0] == 't';

			if (!p->owner_kind[0] || controller) {
				json_get_str(&it, "kind", p->owner_kind, sizeof(p->owner_kind));
				json_get_str(&it, "name", p->owner_name, sizeof(p->owner_name));
			}
		}
	}
	for (size_t s = 0; s < ARRAY_SIZE(statuses); s++) {
		if (json_get(item, statuses[s], &v))
			continue;
		memset(&it, 0, sizeof(it));
		while (json_next(&v, &it, NULL) && p->ncontainers < POD_CONTAINERS_MAX) {
			struct k8s_container *c = &p->containers[p->ncontainers];
			char id[128];
			const char *sep;

			/* "containerd://<id>", "cri-o://<id>", "docker://<id>" */
			json_get_str(&it, "containerID", id, sizeof(id));
			sep = strstr(id, "://");
			if (!sep)
				continue;
			str_copy(c->id, sizeof(c->id), sep + 3);
			json_get_str(&it, "name", c->name, sizeof(c->name));
			p->ncontainers++;
		}
	}
}

/* A uniform draw in [d/2, d): every node's pauses differ, so a fleet
 * that lost the API server together does not come back in step. */
static uint64_t jitter(struct k8s_client *k, uint64_t d)
{
	/* xorshift64: the seed came from getrandom */
	k->seed ^= k->seed << 13;
	k->seed ^= k->seed >> 7;
	k->seed ^= k->seed << 17;
	return d / 2 + (d / 2 ? k->seed % (d / 2) : 0);
}

static void pods_start(struct k8s_client *k);

static void on_restart(struct ev_loop *loop, ev_timer *w, int revents)
{
	pods_start(w->data);
}

static void schedule_start(struct k8s_client *k, uint64_t after_ns)
{
	ev_timer_stop(k->loop, &k->restart);
	ev_timer_set(&k->restart, (double)after_ns / 1e9, 0);
	ev_timer_start(k->loop, &k->restart);
}

/* After a failure: 0.8 s, 1.6 s, ... up to 30 s, jittered. */
static void schedule_backoff(struct k8s_client *k)
{
	unsigned shift = k->failures < 6 ? k->failures : 6;
	uint64_t d = BACKOFF_BASE_NS << shift;

	k->failures++;
	schedule_start(k, jitter(k, d < BACKOFF_MAX_NS ? d : BACKOFF_MAX_NS));
}

static struct k8s_pod *pod_slot(struct k8s_client *k, const char *uid)
{
	for (size_t i = 0; i < k->npods; i++)
		if (!strcmp(k->pods[i].uid, uid))
			return &k->pods[i];
	return NULL;
}

static void on_pods_listed(void *ctx, const struct k8s_reply *r)
{
	struct k8s_client *k = ctx;
	struct json_val items, it = { 0 };
	struct k8s_pod *pods = NULL;
	size_t n = 0;
	char why[512];

	k->listing = NULL;
	if (r->status != 200 || json_get(&r->json, "items", &items) || items.type != JSON_ARRAY) {
		k8s_reply_explain(r, K8S_LIST_PODS, why, sizeof(why));
		log_warn("k8s: listing the pods on node %s: %s; keeping the %zu known", k->node,
			 r->status == 200 ? "the reply has no items" : why, k->npods);
		schedule_backoff(k);
		return;
	}
	while (json_next(&items, &it, NULL)) {
		struct k8s_pod *grown = realloc(pods, (n + 1) * sizeof(*pods));

		if (!grown)
			break;
		pods = grown;
		pod_read(&it, &pods[n]);
		if (pods[n].uid[0])
			n++;
	}
	free(k->pods);
	k->pods = pods;
	k->npods = n;
	json_get_str(&r->json, "metadata.resourceVersion", k->version, sizeof(k->version));
	k->relist = false;
	log_debug("k8s: %zu pods on node %s at resourceVersion %s", n, k->node, k->version);
	pods_start(k);
}

/* One watch event: {"type": "ADDED", "object": {...}}. 0 to read on;
 * -ESTALE ends the watch for a relist (410 Gone, or an event this
 * reader cannot trust); -EIO ends it for a resume. */
static int watch_event(struct k8s_client *k, const char *text, size_t len)
{
	struct json_val ev, obj;
	char type[16], version[64];
	struct k8s_pod pod, *slot;
	double code = 0;

	if (json_parse(text, len, &ev) || json_get(&ev, "object", &obj) || obj.type != JSON_OBJECT) {
		log_warn("k8s: watch of node %s: an event that is not JSON; listing again", k->node);
		return -ESTALE;
	}
	json_get_str(&ev, "type", type, sizeof(type));
	json_get_str(&obj, "metadata.resourceVersion", version, sizeof(version));
	k->stats.events++;
	if (!strcmp(type, "ERROR")) {
		struct json_val c;
		char message[256];

		if (json_get(&obj, "code", &c) == 0)
			(void)json_num(&c, &code);
		json_get_str(&obj, "message", message, sizeof(message));
		log_info("k8s: watch of node %s: %.0f %s", k->node, code, message);
		return code == 410 ? -ESTALE : -EIO;
	}
	if (strcmp(type, "BOOKMARK") && strcmp(type, "ADDED") && strcmp(type, "MODIFIED") &&
	    strcmp(type, "DELETED")) {
		log_warn("k8s: watch of node %s: an event of type '%s'; listing again", k->node, type);
		return -ESTALE;
	}
	if (strcmp(type, "BOOKMARK")) {
		pod_read(&obj, &pod);
		slot = pod.uid[0] ? pod_slot(k, pod.uid) : NULL;
		if (!pod.uid[0]) {
			log_warn("k8s: watch of node %s: a %s event without a pod uid; listing again",
				 k->node, type);
			return -ESTALE;
		}
		if (!strcmp(type, "DELETED")) {
			if (slot)
				*slot = k->pods[--k->npods];
		} else if (slot) {
			*slot = pod;
		} else {
			struct k8s_pod *grown = realloc(k->pods, (k->npods + 1) * sizeof(*grown));

			if (!grown)
				return -ESTALE;
			k->pods = grown;
			k->pods[k->npods++] = pod;
		}
	}
	if (version[0])
		str_copy(k->version, sizeof(k->version), version);
	return 0;
}

/* The watch's stream, cut into lines (newline-delimited JSON); a line is
 * kept until it is whole, up to WATCH_LINE_MAX. Non-zero ends the watch. */
static int on_watch_data(void *ctx, const char *data, size_t len)
{
	struct k8s_client *k = ctx;

	k->streamed = true;
	while (len) {
		const char *nl = memchr(data, '\n', len);
		size_t take = nl ? (size_t)(nl - data) : len;
		int err;

		if (k->line_len + take > WATCH_LINE_MAX) {
			log_warn("k8s: watch of node %s: an event over %d bytes; listing again", k->node,
				 WATCH_LINE_MAX);
			k->stop = -ESTALE;
			return k->stop;
		}
		if (k->line_len + take > k->line_cap) {
			size_t cap = (k->line_len + take) * 2 < WATCH_LINE_MAX ? (k->line_len + take) * 2
									: WATCH_LINE_MAX;
			char *grown = realloc(k->line, cap);

			if (!grown) {
				/* an event lost: only a list can be trusted now */
				k->stop = -ESTALE;
				return k->stop;
			}
			k->line = grown;
			k->line_cap = cap;
		}
		memcpy(k->line + k->line_len, data, take);
		k->line_len += take;
		data += take + (nl ? 1 : 0);
		len -= take + (nl ? 1 : 0);
		if (!nl)
			break;
		err = k->line_len ? watch_event(k, k->line, k->line_len) : 0;
		k->line_len = 0;
		if (err) {
			k->stop = err;
			return err;
		}
	}
	return 0;
}

/* The watch ended. A clean end (the server's timeout) resumes at once
 * from the last resourceVersion; 410 Gone relists; a broken stream
 * resumes after a pause; a resume that did not even start (no answer,
 * or an error status) is followed by a relist after a pause. */
static void on_watch_done(void *ctx, const struct k8s_reply *r)
{
	struct k8s_client *k = ctx;
	char why[512];

	k->watching = NULL;
	k->line_len = 0;
	if (k->stop == -ESTALE || r->status == 410) {
		k->stats.gone++;
		k->relist = true;
		k->failures = 0;
		/* a compaction hits every node at once: spread the relists */
		schedule_start(k, jitter(k, NSEC_PER_SEC));
		return;
	}
	if (k->streamed && !k->stop && !r->message[0] &&
	    clock_mono_ns() - k->watch_started_ns >= WATCH_MIN_NS) {
		k->failures = 0;
		pods_start(k);
		return;
	}
	k8s_reply_explain(r, K8S_WATCH_PODS, why, sizeof(why));
	log_info("k8s: watch of node %s ended: %s", k->node,
		 !k->streamed ? why : k->stop ? "an error event" : r->message[0] ? r->message : "too soon");
	k->stats.broken++;
	if (!k->streamed)
		k->relist = true;
	schedule_backoff(k);
}

/* Lists the pods on this node when there is no trusted resourceVersion,
 * else watches from it. The watch asks the server to end it after
 * --k8s-refresh to twice that (as client-go does), with bookmarks. */
static void pods_start(struct k8s_client *k)
{
	char path[768];
	uint64_t timeout = jitter(k, 2 * k->o.refresh_ns);

	ev_timer_stop(k->loop, &k->restart);
	if (k->listing || k->watching)
		return;
	if (k->relist || !k->version[0]) {
		snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s", k->node);
		k->listing = k8s_send(k, K8S_LIST_PODS, path, NULL, NULL, on_pods_listed, k);
		if (!k->listing)
			schedule_backoff(k);
		return;
	}
	/* the client's own timeout leaves the server time to end it first */
	snprintf(path, sizeof(path), "/api/v1/pods?fieldSelector=spec.nodeName%%3D%s&resourceVersion=%s"
		 "&allowWatchBookmarks=true&timeoutSeconds=%llu&watch=true", k->node, k->version,
		 (unsigned long long)(timeout / NSEC_PER_SEC));
	k->streamed = false;
	k->stop = 0;
	k->watch_started_ns = clock_mono_ns();
	k->watching = k8s_stream(k, K8S_WATCH_PODS, path, timeout + WATCH_GRACE_NS, on_watch_data,
				 on_watch_done, k);
	if (!k->watching)
		schedule_backoff(k);
}

static const struct k8s_pod *find_pod(const struct k8s_client *k, const char *uid)
{
	for (size_t i = 0; i < k->npods; i++)
		if (!strcmp(k->pods[i].uid, uid) || !strcmp(k->pods[i].mirror, uid))
			return &k->pods[i];
	return NULL;
}

bool k8s_resolve(struct k8s_client *k, struct target *t)
{
	const struct k8s_pod *p;

	if (!t->pod_uid[0])
		return false;
	p = find_pod(k, t->pod_uid);
	if (!p)
		return false;
	str_copy(t->namespace, sizeof(t->namespace), p->namespace);
	str_copy(t->pod, sizeof(t->pod), p->name);
	str_copy(t->labels, sizeof(t->labels), p->labels);
	for (size_t i = 0; i < p->ncontainers; i++)
		if (!strcmp(p->containers[i].id, t->container_id))
			str_copy(t->container, sizeof(t->container), p->containers[i].name);
	return true;
}

bool k8s_static_pod(struct k8s_client *k, const struct target *t)
{
	const struct k8s_pod *p = find_pod(k, t->pod_uid);

	return p && !strcmp(p->mirror, t->pod_uid);
}

/* A ReplicaSet made by a Deployment is named "<deployment>-<pod-template-hash>". */
static bool deployment_of(const struct k8s_pod *p, char *name, size_t size)
{
	size_t n = strlen(p->owner_name), h = strlen(p->template_hash);

	if (strcmp(p->owner_kind, "ReplicaSet") || !h || n <= h + 1 ||
	    strcmp(p->owner_name + n - h, p->template_hash) || p->owner_name[n - h - 1] != '-')
		return false;
	snprintf(name, size, "%.*s", (int)(n - h - 1), p->owner_name);
	return true;
}

void k8s_workload(struct k8s_client *k, const struct target *t, char *buf, size_t size)
{
	const struct k8s_pod *p = find_pod(k, t->pod_uid);
	char name[128];

	if (p && deployment_of(p, name, sizeof(name)))
		snprintf(buf, size, "%s/Deployment/%s", p->namespace, name);
	else if (p && p->owner_kind[0])
		snprintf(buf, size, "%s/%s/%s", p->namespace, p->owner_kind, p->owner_name);
	else
		snprintf(buf, size, "%s/Pod/%s", t->namespace, t->pod);
}

int k8s_scale_path(struct k8s_client *k, const struct target *t, enum k8s_call *call,
		   char *path, size_t size)
{
	const struct k8s_pod *p = find_pod(k, t->pod_uid);
	char name[128];

	if (p && deployment_of(p, name, sizeof(name))) {
		*call = K8S_PATCH_DEPLOYMENT_SCALE;
		snprintf(path, size, "/apis/apps/v1/namespaces/%s/deployments/%s/scale", p->namespace, name);
		return 0;
	}
	if (p && !strcmp(p->owner_kind, "StatefulSet")) {
		*call = K8S_PATCH_STATEFULSET_SCALE;
		snprintf(path, size, "/apis/apps/v1/namespaces/%s/statefulsets/%s/scale", p->namespace,
			 p->owner_name);
		return 0;
	}
	return -ENOENT;
}

const char *k8s_node(const struct k8s_client *k)
{
	return k->node;
}

/* ---- the cluster-wide budget ---- */

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
	ev_timer_set(&op->pause, (double)jitter(k, pause < BUDGET_PAUSE_MAX_NS ? pause
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
		goto out;
	}
	if (r->status != 200 && !create) {
		budget_fail(op, r, K8S_GET_LEASE);
		goto out;
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
		goto out;
	}
	if (count >= k->o.budget_max) {
		snprintf(why, sizeof(why), "cluster budget spent: %u disruptions of %s across the "
			 "cluster in the last %llus (max %u)", count, op->workload,
			 (unsigned long long)(k->o.budget_window_ns / NSEC_PER_SEC), k->o.budget_max);
		budget_end(op, false, why);
		goto out;
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
out:
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
	k->stats.pods = k->npods;
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
	ev_timer_init(&k->restart, on_restart, 0, 0);
	k->restart.data = k;
	if (getrandom(&k->seed, sizeof(k->seed), 0) != sizeof(k->seed) || !k->seed)
		k->seed = clock_mono_ns() | 1;
	rc = o->kubeconfig ? load_kubeconfig(k, o->kubeconfig, err, errlen)
			   : load_in_cluster(k, o->sa_dir, err, errlen);
	if (rc)
		goto fail;
	if (o->namespace && o->namespace[0])
		str_copy(k->namespace, sizeof(k->namespace), o->namespace);
	if (!o->node || !o->node[0]) {
		snprintf(err, errlen, "which node is this? (--node-name, or NODE_NAME from the downward API)");
		goto fail;
	}
	str_copy(k->node, sizeof(k->node), o->node);
	k->http = http_new(loop);
	if (!k->http) {
		snprintf(err, errlen, "cannot start the HTTP client");
		goto fail;
	}
	(void)current_token(k, true);
	pods_start(k);
	return k;
fail:
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
	free(k->pods);
	free(k->line);
	free(k->ca_file);
	free(k->ca_pem);
	free(k->cert_file);
	free(k->cert_pem);
	free(k->key_file);
	free(k->key_pem);
	free(k);
}
