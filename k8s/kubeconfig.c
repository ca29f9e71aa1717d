#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include <openssl/evp.h>
#include <yaml.h>

#include "k8s/kubeconfig.h"
#include "lib/json.h"
#include "lib/util.h"

/* an ExecCredential is a few KiB; more is not one */
#define EXEC_OUTPUT_MAX (1 << 20)

extern char **environ;

struct kubeconfig {
	yaml_document_t doc;
};

struct kubeconfig *kubeconfig_parse(const char *text, size_t len, struct kubeconfig_error *why)
{
	struct kubeconfig *kc = calloc(1, sizeof(*kc));
	yaml_parser_t parser;
	yaml_node_t *root;
	int err = 0;

	if (!kc)
		return NULL;
	if (!yaml_parser_initialize(&parser)) {
		free(kc);
		errno = ENOMEM;
		return NULL;
	}
	yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
	if (!yaml_parser_load(&parser, &kc->doc)) {
		err = parser.error == YAML_MEMORY_ERROR ? ENOMEM : EINVAL;
		why->line = (int)(parser.problem ? parser.problem_mark.line : parser.context_mark.line) + 1;
		why->problem = parser.problem ? parser.problem : "malformed YAML";
		yaml_parser_delete(&parser);
		free(kc);
		errno = err;
		return NULL;
	}
	yaml_parser_delete(&parser);
	root = yaml_document_get_root_node(&kc->doc);
	if (!root || root->type != YAML_MAPPING_NODE) {
		why->line = root ? (int)root->start_mark.line + 1 : 1;
		why->problem = "not a mapping (apiVersion, clusters, contexts, users, ...)";
		kubeconfig_free(kc);
		errno = EINVAL;
		return NULL;
	}
	return kc;
}

void kubeconfig_free(struct kubeconfig *kc)
{
	if (!kc)
		return;
	yaml_document_delete(&kc->doc);
	free(kc);
}

static yaml_node_t *node_of(const struct kubeconfig *kc, int node)
{
	return node ? yaml_document_get_node((yaml_document_t *)&kc->doc, node) : NULL;
}

/* The value of key (n bytes) in a mapping node, 0 when absent. */
static int mapping_value(const struct kubeconfig *kc, int node, const char *key, size_t n)
{
	yaml_node_t *m = node_of(kc, node);

	if (!m || m->type != YAML_MAPPING_NODE)
		return 0;
	for (yaml_node_pair_t *p = m->data.mapping.pairs.start; p < m->data.mapping.pairs.top; p++) {
		yaml_node_t *k = node_of(kc, p->key);

		if (k && k->type == YAML_SCALAR_NODE && k->data.scalar.length == n &&
		    !memcmp(k->data.scalar.value, key, n))
			return p->value;
	}
	return 0;
}

int kubeconfig_at(const struct kubeconfig *kc, int node, const char *path)
{
	while (node && *path) {
		size_t n = strcspn(path, ".");

		node = mapping_value(kc, node, path, n);
		path += n + (path[n] == '.');
	}
	return node;
}

int kubeconfig_elem(const struct kubeconfig *kc, int node, size_t i)
{
	yaml_node_t *s = node_of(kc, node);

	if (!s || s->type != YAML_SEQUENCE_NODE ||
	    i >= (size_t)(s->data.sequence.items.top - s->data.sequence.items.start))
		return 0;
	return s->data.sequence.items.start[i];
}

const char *kubeconfig_str(const struct kubeconfig *kc, int node)
{
	yaml_node_t *s = node_of(kc, node);
	const char *v;

	if (!s || s->type != YAML_SCALAR_NODE)
		return NULL;
	v = (const char *)s->data.scalar.value;
	if (strlen(v) != s->data.scalar.length)
		return NULL;
	if (s->data.scalar.style == YAML_PLAIN_SCALAR_STYLE &&
	    (!*v || !strcmp(v, "~") || !strcasecmp(v, "null")))
		return NULL;
	return v;
}

int kubeconfig_find(const struct kubeconfig *kc, const char *section, const char *name)
{
	int root = 1, list, item;

	if (!section)
		return root;
	list = kubeconfig_at(kc, root, section);
	for (size_t i = 0; (item = kubeconfig_elem(kc, list, i)); i++) {
		const char *v = kubeconfig_str(kc, kubeconfig_at(kc, item, "name"));

		if (v && !strcmp(v, name))
			return item;
	}
	return 0;
}

const char *kubeconfig_get(const struct kubeconfig *kc, const char *section, const char *name,
			   const char *path)
{
	return kubeconfig_str(kc, kubeconfig_at(kc, kubeconfig_find(kc, section, name), path));
}

bool kubeconfig_true(const char *v)
{
	return v && (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on"));
}

int kubeconfig_path(const char *dir, const char *name, char *out, size_t size)
{
	int n = name[0] == '/' ? snprintf(out, size, "%s", name) : snprintf(out, size, "%s/%s", dir, name);

	return n < 0 || (size_t)n >= size ? -ENAMETOOLONG : 0;
}

/* base64 (a kubeconfig's *-data fields) into a new string: NULL and
 * EINVAL when it is not base64. */
static char *base64_decode(const char *s)
{
	size_t n = strlen(s);
	char *out = malloc(n / 4 * 3 + 4);
	EVP_ENCODE_CTX *ctx = EVP_ENCODE_CTX_new();
	int len = 0, tail = 0;

	if (!out || !ctx || n > INT_MAX)
		goto cleanup;
	EVP_DecodeInit(ctx);
	if (EVP_DecodeUpdate(ctx, (unsigned char *)out, &len, (const unsigned char *)s, (int)n) < 0 ||
	    EVP_DecodeFinal(ctx, (unsigned char *)out + len, &tail) < 0) {
		errno = EINVAL;
		goto cleanup;
	}
	out[len + tail] = '\0';
	EVP_ENCODE_CTX_free(ctx);
	return out;
cleanup:
	if (!ctx || !out)
		errno = ENOMEM;
	EVP_ENCODE_CTX_free(ctx);
	free(out);
	return NULL;
}

int kubeconfig_file_or_data(const struct kubeconfig *kc, int node, const char *field,
			    const char *dir, char **file, char **pem)
{
	char key[96], path[1024];
	const char *v;

	snprintf(key, sizeof(key), "%s-data", field);
	v = kubeconfig_str(kc, kubeconfig_at(kc, node, key));
	if (v) {
		*pem = base64_decode(v);
		return *pem ? 0 : -errno;
	}
	v = kubeconfig_str(kc, kubeconfig_at(kc, node, field));
	if (!v)
		return 0;
	if (kubeconfig_path(dir, v, path, sizeof(path)))
		return -EINVAL;
	*file = strdup(path);
	return *file ? 0 : -ENOMEM;
}

void kubeconfig_exec_free(struct kubeconfig_exec *x)
{
	if (!x)
		return;
	free(x->command);
	strlist_free(&x->args);
	strlist_free(&x->env);
	free(x->api_version);
	free(x->cluster_info);
	memset(x, 0, sizeof(*x));
}

/* KUBERNETES_EXEC_INFO's spec.cluster: what kubectl passes with
 * provideClusterInfo (server, CA data, TLS server name, extension). */
static char *cluster_info(const struct kubeconfig *kc, int cluster)
{
	static const char *const fields[][2] = {
		{ "server", "server" },
		{ "tls-server-name", "tls-server-name" },
		{ "certificate-authority-data", "certificate-authority-data" },
		{ "proxy-url", "proxy-url" },
	};
	char buf[64 << 10];
	struct sbuf b;

	sbuf_init(&b, buf, sizeof(buf));
	sbuf_puts(&b, "{");
	for (size_t i = 0; i < ARRAY_SIZE(fields); i++) {
		const char *v = kubeconfig_str(kc, kubeconfig_at(kc, cluster, fields[i][0]));

		if (!v)
			continue;
		sbuf_puts(&b, b.len > 1 ? "," : "");
		sbuf_json_str(&b, fields[i][1]);
		sbuf_puts(&b, ":");
		sbuf_json_str(&b, v);
	}
	sbuf_puts(&b, "}");
	if (b.truncated) {
		errno = E2BIG;
		return NULL;
	}
	return strdup(buf);
}

int kubeconfig_exec_load(const struct kubeconfig *kc, int user, int cluster, const char *dir,
			 struct kubeconfig_exec *x, const char **what)
{
	int exec = kubeconfig_at(kc, user, "user.exec"), node;
	const char *v, *mode;
	char path[1024];

	if (!exec)
		return 0;
	v = kubeconfig_str(kc, kubeconfig_at(kc, exec, "command"));
	*what = "exec.command";
	if (!v)
		return -EINVAL;
	if (strchr(v, '/') && kubeconfig_path(dir, v, path, sizeof(path)))
		return -EINVAL;
	x->command = strdup(strchr(v, '/') ? path : v);
	v = kubeconfig_str(kc, kubeconfig_at(kc, exec, "apiVersion"));
	*what = "exec.apiVersion (client.authentication.k8s.io/v1 or v1beta1)";
	if (!v || (strcmp(v, "client.authentication.k8s.io/v1") &&
		   strcmp(v, "client.authentication.k8s.io/v1beta1")))
		return -EINVAL;
	x->api_version = strdup(v);
	if (!x->command || !x->api_version)
		return -ENOMEM;
	/* no terminal: a plugin that must ask the user cannot run here */
	mode = kubeconfig_str(kc, kubeconfig_at(kc, exec, "interactiveMode"));
	*what = "exec.interactiveMode (reflexd has no terminal: Never or IfAvailable)";
	if (mode && strcmp(mode, "Never") && strcmp(mode, "IfAvailable"))
		return -EINVAL;
	*what = "exec.args (a list of strings)";
	node = kubeconfig_at(kc, exec, "args");
	if (node && !kubeconfig_elem(kc, node, 0) &&
	    node_of(kc, node)->type != YAML_SEQUENCE_NODE)
		return -EINVAL;
	for (size_t i = 0; kubeconfig_elem(kc, node, i); i++) {
		v = kubeconfig_str(kc, kubeconfig_elem(kc, node, i));
		if (!v)
			return -EINVAL;
		if (strlist_add(&x->args, v))
			return -ENOMEM;
	}
	*what = "exec.env (a list of {name, value})";
	node = kubeconfig_at(kc, exec, "env");
	if (node && !kubeconfig_elem(kc, node, 0) &&
	    node_of(kc, node)->type != YAML_SEQUENCE_NODE)
		return -EINVAL;
	for (size_t i = 0; kubeconfig_elem(kc, node, i); i++) {
		int e = kubeconfig_elem(kc, node, i);
		const char *name = kubeconfig_str(kc, kubeconfig_at(kc, e, "name"));
		const char *value = kubeconfig_str(kc, kubeconfig_at(kc, e, "value"));
		char *pair;

		if (!name || !*name || strchr(name, '='))
			return -EINVAL;
		if (asprintf(&pair, "%s=%s", name, value ? value : "") < 0)
			return -ENOMEM;
		if (strlist_add(&x->env, pair)) {
			free(pair);
			return -ENOMEM;
		}
		free(pair);
	}
	if (kubeconfig_true(kubeconfig_str(kc, kubeconfig_at(kc, exec, "provideClusterInfo")))) {
		x->cluster_info = cluster_info(kc, cluster);
		*what = "the cluster's fields for provideClusterInfo (past 64 KiB)";
		if (!x->cluster_info)
			return errno == ENOMEM ? -ENOMEM : -EINVAL;
	}
	return 1;
}

/* RFC 3339 ("2026-12-04T22:00:00Z", fractions and offsets too) as ns. */
static int rfc3339_parse(const char *s, int64_t *ns)
{
	struct tm tm = { 0 };
	const char *p = strptime(s, "%Y-%m-%dT%H:%M:%S", &tm);
	long offset = 0;
	time_t t;

	if (!p)
		return -EINVAL;
	if (*p == '.')
		p += 1 + strspn(p + 1, "0123456789");
	if (*p == '+' || *p == '-') {
		int h, m;

		if (sscanf(p + 1, "%2d:%2d", &h, &m) != 2 || strlen(p) != 6)
			return -EINVAL;
		offset = (h * 60L + m) * 60 * (*p == '+' ? 1 : -1);
	} else if ((*p != 'Z' && *p != 'z') || p[1]) {
		return -EINVAL;
	}
	t = timegm(&tm);
	*ns = ((int64_t)t - offset) * (int64_t)NSEC_PER_SEC;
	return 0;
}

/* The plugin's stdout as an ExecCredential into out. */
static int read_credential(const struct kubeconfig_exec *x, const char *text, size_t len,
			   struct kubeconfig_cred *out)
{
	struct json_val doc, v;
	char ts[64];

	if (json_parse(text, len, &doc) || json_get(&doc, "kind", &v) ||
	    !json_str_eq(&v, "ExecCredential") || json_get(&doc, "apiVersion", &v) ||
	    !json_str_eq(&v, x->api_version) || json_get(&doc, "status.token", &v) ||
	    json_str(&v, out->token, sizeof(out->token)) || !out->token[0])
		return -EBADMSG;
	out->expires_ns = 0;
	if (json_get(&doc, "status.expirationTimestamp", &v) == 0 && v.type != JSON_NULL &&
	    (json_str(&v, ts, sizeof(ts)) || rfc3339_parse(ts, &out->expires_ns)))
		return -EBADMSG;
	return 0;
}

/* Reads the child's stdout until EOF, the size cap or the deadline. */
static int read_output(int fd, uint64_t deadline_ns, char *buf, size_t size, size_t *len)
{
	*len = 0;
	for (;;) {
		uint64_t now = clock_mono_ns();
		struct pollfd p = { .fd = fd, .events = POLLIN };
		ssize_t n;
		int r;

		if (now >= deadline_ns)
			return -ETIMEDOUT;
		r = poll(&p, 1, (int)((deadline_ns - now) / NSEC_PER_MSEC) + 1);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			return -errno;
		if (r == 0)
			continue;
		if (*len + 1 >= size)
			return -EBADMSG;
		n = read(fd, buf + *len, size - 1 - *len);
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
			return -errno;
		if (n == 0)
			break;
		*len += (size_t)n;
	}
	buf[*len] = '\0';
	return 0;
}

/* argv and envp for the plugin: its args, and our environment under its
 * env and KUBERNETES_EXEC_INFO (getenv takes the first of a name, so
 * those go first). */
static int build_vectors(const struct kubeconfig_exec *x, char ***argv, char ***envp, char **info)
{
	size_t nenv = 0;

	while (environ[nenv])
		nenv++;
	if (asprintf(info, "KUBERNETES_EXEC_INFO={\"apiVersion\":\"%s\",\"kind\":\"ExecCredential\","
		     "\"spec\":{%s%s%s\"interactive\":false}}", x->api_version,
		     x->cluster_info ? "\"cluster\":" : "", x->cluster_info ? x->cluster_info : "",
		     x->cluster_info ? "," : "") < 0) {
		*info = NULL;
		return -ENOMEM;
	}
	*argv = calloc(x->args.n + 2, sizeof(char *));
	*envp = calloc(nenv + x->env.n + 2, sizeof(char *));
	if (!*argv || !*envp)
		return -ENOMEM;
	(*argv)[0] = x->command;
	memcpy(*argv + 1, x->args.v, x->args.n * sizeof(char *));
	(*envp)[0] = *info;
	memcpy(*envp + 1, x->env.v, x->env.n * sizeof(char *));
	memcpy(*envp + 1 + x->env.n, environ, nenv * sizeof(char *));
	return 0;
}

int kubeconfig_exec_run(const struct kubeconfig_exec *x, uint64_t timeout_ns,
			struct kubeconfig_cred *out)
{
	char **argv = NULL, **envp = NULL, *info = NULL, *text = malloc(EXEC_OUTPUT_MAX);
	posix_spawn_file_actions_t fa;
	int pipefd[2] = { -1, -1 }, rc, status = 0;
	bool actions = false;
	pid_t pid = -1;
	size_t len;

	rc = text ? build_vectors(x, &argv, &envp, &info) : -ENOMEM;
	if (rc)
		goto cleanup;
	if (pipe2(pipefd, O_CLOEXEC)) {
		rc = -errno;
		goto cleanup;
	}
	rc = -posix_spawn_file_actions_init(&fa);
	if (rc)
		goto cleanup;
	actions = true;
	rc = -posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
	if (!rc)
		rc = -posix_spawn_file_actions_adddup2(&fa, pipefd[1], 1);
	if (!rc)
		rc = -posix_spawnp(&pid, x->command, &fa, NULL, argv, envp);
	if (rc)
		goto cleanup;
	close(pipefd[1]);
	pipefd[1] = -1;
	rc = read_output(pipefd[0], clock_mono_ns() + timeout_ns, text, EXEC_OUTPUT_MAX, &len);
	if (rc)
		(void)kill(pid, SIGKILL);
	/* reaped here, on the loop, before libev's SIGCHLD watcher can run */
	while (waitpid(pid, &status, 0) < 0) {
		if (errno != EINTR) {
			rc = rc ? rc : -errno;
			break;
		}
	}
	if (!rc && !(WIFEXITED(status) && WEXITSTATUS(status) == 0)) {
		out->exit_status = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
		rc = -EPROTO;
	}
	if (!rc)
		rc = read_credential(x, text, len, out);
cleanup:
	if (actions)
		posix_spawn_file_actions_destroy(&fa);
	if (pipefd[0] >= 0)
		close(pipefd[0]);
	if (pipefd[1] >= 0)
		close(pipefd[1]);
	free(argv);
	free(envp);
	free(info);
	free(text);
	return rc;
}
