/* The pods on this node, for the cache in sense/pods.h: listed once, then
 * watched from the list's resourceVersion; a watch that ends is resumed,
 * one that cannot be trusted relists, with jittered backoff. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/client.h"
#include "lib/log.h"

/* one watch event (a Pod): a longer line ends the watch and relists */
#define WATCH_LINE_MAX (1 << 20)
/* a watch that ends cleanly sooner than this had trouble: back off */
#define WATCH_MIN_NS (NSEC_PER_SEC)
#define BACKOFF_BASE_NS (800 * NSEC_PER_MSEC)
#define BACKOFF_MAX_NS (30 * NSEC_PER_SEC)
#define WATCH_GRACE_NS (30 * NSEC_PER_SEC)

static void pod_read(const struct json_val *item, struct pod *p)
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
			struct pod_container *c = &p->containers[p->ncontainers];
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
	schedule_start(k, k8s_jitter(k, d < BACKOFF_MAX_NS ? d : BACKOFF_MAX_NS));
}

static void on_pods_listed(void *ctx, const struct k8s_reply *r)
{
	struct k8s_client *k = ctx;
	struct json_val items, it = { 0 };
	struct pod *pods = NULL;
	size_t n = 0;
	char why[512];

	k->listing = NULL;
	if (r->status != 200 || json_get(&r->json, "items", &items) || items.type != JSON_ARRAY) {
		k8s_reply_explain(r, K8S_LIST_PODS, why, sizeof(why));
		log_warn("k8s: listing the pods on node %s: %s; keeping the %zu known", k->node,
			 r->status == 200 ? "the reply has no items" : why, pods_count(k->pods));
		schedule_backoff(k);
		return;
	}
	while (json_next(&items, &it, NULL)) {
		struct pod *grown = realloc(pods, (n + 1) * sizeof(*pods));

		if (!grown)
			break;
		pods = grown;
		pod_read(&it, &pods[n]);
		if (pods[n].uid[0])
			n++;
	}
	pods_replace(k->pods, pods, n);
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
	struct pod pod;
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
		if (!pod.uid[0]) {
			log_warn("k8s: watch of node %s: a %s event without a pod uid; listing again",
				 k->node, type);
			return -ESTALE;
		}
		if (!strcmp(type, "DELETED"))
			pods_delete(k->pods, pod.uid);
		else if (pods_put(k->pods, &pod))
			return -ESTALE;
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
		schedule_start(k, k8s_jitter(k, NSEC_PER_SEC));
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
	uint64_t timeout = k8s_jitter(k, 2 * k->o.refresh_ns);

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

void k8s_watch_begin(struct k8s_client *k)
{
	ev_timer_init(&k->restart, on_restart, 0, 0);
	k->restart.data = k;
	pods_start(k);
}
