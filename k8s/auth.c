/* The Kubernetes client's credentials: a kubeconfig's current context
 * (token, token file, client certificate or exec plugin) or the
 * in-cluster service account, and the token each request sends. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "k8s/client.h"
#include "lib/log.h"

#define SA_DIR_DEFAULT "/var/run/secrets/kubernetes.io/serviceaccount"
#define TOKEN_REREAD_NS (60 * NSEC_PER_SEC)
/* an exec plugin runs on the loop (kubectl waits for it too): bounded */
#define EXEC_TIMEOUT_NS (10 * NSEC_PER_SEC)
/* a plugin's token is renewed this long before its expirationTimestamp */
#define EXEC_RENEW_NS (60 * NSEC_PER_SEC)

/* Runs the kubeconfig's exec plugin for a token: 0 or its -errno, with
 * the reason in err. */
static int exec_token(struct k8s_client *k, char *err, size_t errlen)
{
	struct kubeconfig_cred cred = { 0 };
	int rc = kubeconfig_exec_run(&k->exec, EXEC_TIMEOUT_NS, &cred);

	if (rc == -EPROTO)
		snprintf(err, errlen, "exec plugin %s: exit status %d", k->exec.command, cred.exit_status);
	else if (rc == -EBADMSG)
		snprintf(err, errlen, "exec plugin %s: its output is not an ExecCredential (%s) "
			 "with a status.token", k->exec.command, k->exec.api_version);
	else if (rc == -ETIMEDOUT)
		snprintf(err, errlen, "exec plugin %s: no answer in %llus, killed", k->exec.command,
			 EXEC_TIMEOUT_NS / NSEC_PER_SEC);
	else if (rc)
		snprintf(err, errlen, "exec plugin %s: %s", k->exec.command, strerror(-rc));
	if (rc)
		return rc;
	str_copy(k->token, sizeof(k->token), cred.token);
	k->token_expires_ns = cred.expires_ns;
	return 0;
}

/* file read and parsed: NULL and errno, the reason in err (with the
 * line of a syntax error). */
static struct kubeconfig *read_kubeconfig(const char *file, char *err, size_t errlen)
{
	struct kubeconfig *kc = NULL;
	struct kubeconfig_error why = { 0 };
	char *text = malloc(1 << 20);
	ssize_t n;
	int saved = EINVAL;

	if (!text) {
		snprintf(err, errlen, "kubeconfig %s: out of memory", file);
		errno = ENOMEM;
		return NULL;
	}
	n = read_file(file, text, 1 << 20);
	if (n < 0)
		snprintf(err, errlen, "kubeconfig %s: %s", file, strerror((int)-n));
	else if (n == (1 << 20) - 1)
		snprintf(err, errlen, "kubeconfig %s: larger than 1 MiB", file);
	else if (!(kc = kubeconfig_parse(text, (size_t)n, &why)) && errno == EINVAL)
		snprintf(err, errlen, "kubeconfig %s:%d: %s", file, why.line, why.problem);
	else if (!kc)
		snprintf(err, errlen, "kubeconfig %s: %s", file, strerror(saved = errno));
	free(text);
	if (!kc)
		errno = saved;
	return kc;
}

/* The kubeconfig's current context: server, CA, and a token, token file,
 * client certificate or exec plugin. */
int k8s_auth_kubeconfig(struct k8s_client *k, const char *file, char *err, size_t errlen)
{
	struct kubeconfig *kc = read_kubeconfig(file, err, errlen);
	char dir[512], *slash;
	const char *ctx, *cluster, *user, *v, *what = "";
	int cnode, unode, rc = -EINVAL;
	ssize_t n;

	if (!kc)
		return -errno;
	str_copy(dir, sizeof(dir), file);
	slash = strrchr(dir, '/');
	if (slash)
		*slash = '\0';
	else
		str_copy(dir, sizeof(dir), ".");
	ctx = kubeconfig_get(kc, NULL, NULL, "current-context");
	if (!ctx) {
		snprintf(err, errlen, "kubeconfig %s: no current-context", file);
		goto cleanup;
	}
	cluster = kubeconfig_get(kc, "contexts", ctx, "context.cluster");
	user = kubeconfig_get(kc, "contexts", ctx, "context.user");
	v = kubeconfig_get(kc, "contexts", ctx, "context.namespace");
	str_copy(k->namespace, sizeof(k->namespace), v ? v : "default");
	if (!cluster || !user) {
		snprintf(err, errlen, "kubeconfig %s: context '%s' has no cluster and user", file, ctx);
		goto cleanup;
	}
	cnode = kubeconfig_at(kc, kubeconfig_find(kc, "clusters", cluster), "cluster");
	unode = kubeconfig_find(kc, "users", user);
	v = kubeconfig_str(kc, kubeconfig_at(kc, cnode, "server"));
	if (!v || strncmp(v, "https://", 8)) {
		snprintf(err, errlen, "kubeconfig %s: cluster '%s' has no https:// server", file, cluster);
		goto cleanup;
	}
	str_copy(k->server, sizeof(k->server), v);
	if (kubeconfig_true(kubeconfig_str(kc, kubeconfig_at(kc, cnode, "insecure-skip-tls-verify")))) {
		snprintf(err, errlen, "kubeconfig %s: cluster '%s' skips TLS verification; reflexd "
			 "always verifies (give certificate-authority-data)", file, cluster);
		goto cleanup;
	}
	if (kubeconfig_file_or_data(kc, cnode, "certificate-authority", dir, &k->ca_file, &k->ca_pem) ||
	    kubeconfig_file_or_data(kc, kubeconfig_at(kc, unode, "user"), "client-certificate", dir,
				    &k->cert_file, &k->cert_pem) ||
	    kubeconfig_file_or_data(kc, kubeconfig_at(kc, unode, "user"), "client-key", dir,
				    &k->key_file, &k->key_pem)) {
		snprintf(err, errlen, "kubeconfig %s: bad certificate data for '%s'", file, ctx);
		goto cleanup;
	}
	v = kubeconfig_str(kc, kubeconfig_at(kc, unode, "user.token"));
	if (v)
		str_copy(k->token, sizeof(k->token), v);
	v = kubeconfig_str(kc, kubeconfig_at(kc, unode, "user.tokenFile"));
	if (v && kubeconfig_path(dir, v, k->token_file, sizeof(k->token_file))) {
		snprintf(err, errlen, "kubeconfig %s: tokenFile path too long", file);
		goto cleanup;
	}
	n = kubeconfig_exec_load(kc, unode, cnode, dir, &k->exec, &what);
	if (n < 0) {
		rc = (int)n;
		snprintf(err, errlen, "kubeconfig %s: user '%s': bad %s", file, user, what);
		goto cleanup;
	}
	/* a plugin that cannot give a token is a start error, as a bad file is */
	if (n > 0 && exec_token(k, err, errlen))
		goto cleanup;
	if (!k->token[0] && !k->token_file[0] && !k->cert_file && !k->cert_pem) {
		snprintf(err, errlen, "kubeconfig %s: user '%s' has no token, token file, client "
			 "certificate or exec plugin", file, user);
		goto cleanup;
	}
	rc = 0;
cleanup:
	kubeconfig_free(kc);
	return rc;
}

int k8s_auth_in_cluster(struct k8s_client *k, const char *sa_dir, char *err, size_t errlen)
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

/* The token: an exec plugin's, renewed before it expires; or re-read
 * from its file when the file changed (a projected token rotates) and at
 * least once a minute. force: the server refused the one we have. */
const char *k8s_auth_token(struct k8s_client *k, bool force)
{
	struct stat st;
	uint64_t now = clock_mono_ns();
	char buf[sizeof(k->token)];
	ssize_t n;

	if (k->exec.command && (force || (k->token_expires_ns &&
					  clock_real_ns() + (int64_t)EXEC_RENEW_NS >= k->token_expires_ns))) {
		if (exec_token(k, buf, sizeof(buf)))
			log_warn("k8s: %s; using the last token", buf);
		return k->token;
	}
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

