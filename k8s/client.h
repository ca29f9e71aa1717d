/* Inside the Kubernetes client: the state its files share. k8s.c makes
 * the requests (retries, Status replies), auth.c reads the credentials,
 * watch.c keeps the cache of this node's pods (sense/pods.h), workload.c
 * finds a pod's owner, budget.c keeps the cluster-wide budget. Only k8s/
 * includes it; the rest of reflexd uses k8s/k8s.h. */
#ifndef REFLEX_K8S_CLIENT_H
#define REFLEX_K8S_CLIENT_H

#include <ev.h>
#include <time.h>

#include "k8s/k8s.h"
#include "k8s/kubeconfig.h"
#include "sense/pods.h"

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
	/* or from an exec plugin, run again before the token expires */
	struct kubeconfig_exec exec;
	int64_t token_expires_ns;
	char *ca_file, *ca_pem, *cert_file, *cert_pem, *key_file, *key_pem;
	struct k8s_request *requests;
	/* the pods on this node (sense/pods.h), kept by the watch */
	struct pods *pods;
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

/* auth.c: the credentials, from a kubeconfig or the in-cluster service
 * account, into k: 0, or -errno with the reason in err. */
int k8s_auth_kubeconfig(struct k8s_client *k, const char *file, char *err, size_t errlen);
int k8s_auth_in_cluster(struct k8s_client *k, const char *sa_dir, char *err, size_t errlen);
/* The token to send now; force: the server refused the one we have. */
const char *k8s_auth_token(struct k8s_client *k, bool force);

/* k8s.c: a watch: data as it comes (non-zero ends it), then done; no
 * retries. NULL (and errno) when it cannot start. */
struct k8s_request *k8s_stream(struct k8s_client *k, enum k8s_call call, const char *path,
			       uint64_t timeout_ns, int (*on_data)(void *ctx, const char *data, size_t len),
			       k8s_done_fn done, void *ctx);
/* A uniform draw in [d/2, d): every node's pauses differ, so a fleet
 * that lost the API server together does not come back in step. */
uint64_t k8s_jitter(struct k8s_client *k, uint64_t d);

/* watch.c: lists this node's pods, then watches them, for as long as the
 * client lives. */
void k8s_watch_begin(struct k8s_client *k);

#endif
