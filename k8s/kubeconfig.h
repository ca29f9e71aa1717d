/* A kubeconfig, read with libyaml (YAML 1.1, so JSON too: kubectl takes
 * both), and its exec credential plugin run the way kubectl runs it
 * (client.authentication.k8s.io ExecCredential). Nodes are libyaml node
 * indexes; 0 is "absent", and every lookup takes 0 and gives 0. */
#ifndef REFLEX_K8S_KUBECONFIG_H
#define REFLEX_K8S_KUBECONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "lib/util.h"

struct kubeconfig;

/* Why a parse failed: the 1-based line and libyaml's (static) problem. */
struct kubeconfig_error {
	int line;
	const char *problem;
};

/* Parses len bytes of text: the kubeconfig, or NULL with errno (EINVAL
 * with *why filled: bad YAML, or a top level that is not a mapping). */
struct kubeconfig *kubeconfig_parse(const char *text, size_t len, struct kubeconfig_error *why);
void kubeconfig_free(struct kubeconfig *kc);
/* The element of the list section ("clusters", "users", "contexts") whose
 * `name` is name; section NULL: the document's top mapping. */
int kubeconfig_find(const struct kubeconfig *kc, const char *section, const char *name);
/* The node at a dotted path of mapping keys under node ("cluster.server"). */
int kubeconfig_at(const struct kubeconfig *kc, int node, const char *path);
/* The i-th element of a list node (0 past its end or when not a list). */
int kubeconfig_elem(const struct kubeconfig *kc, int node, size_t i);
/* A scalar's text, or NULL when node is absent, not a scalar, a YAML null
 * (empty, ~, null) or holds a NUL byte. */
const char *kubeconfig_str(const struct kubeconfig *kc, int node);
/* kubeconfig_str(kubeconfig_at(find(section, name), path)). */
const char *kubeconfig_get(const struct kubeconfig *kc, const char *section, const char *name,
			   const char *path);
/* A YAML 1.1 true (true, yes, on, any case): what kubectl's loader reads as true. */
bool kubeconfig_true(const char *v);
/* A file named in a kubeconfig into out: relative to dir, the kubeconfig's
 * directory. 0 or -ENAMETOOLONG. */
int kubeconfig_path(const char *dir, const char *name, char *out, size_t size);
/* A TLS item under node: "<field>-data" (base64 PEM, decoded into a new
 * *pem) or "<field>" (a file, into a new *file). 0 (neither set when it
 * is absent), -EINVAL (bad base64, a path too long) or -ENOMEM. */
int kubeconfig_file_or_data(const struct kubeconfig *kc, int node, const char *field,
			    const char *dir, char **file, char **pem);

/* users[].user.exec: a credential plugin. */
struct kubeconfig_exec {
	char *command;          /* resolved against the kubeconfig's directory when it holds a '/' */
	struct strlist args;
	struct strlist env;     /* "NAME=value" */
	char *api_version;      /* client.authentication.k8s.io/v1 or v1beta1 */
	char *cluster_info;     /* KUBERNETES_EXEC_INFO's spec.cluster (provideClusterInfo), or NULL */
};

/* The exec plugin under a user node into x (zeroed by the caller): 1 when
 * there is one, 0 when not, -EINVAL when it is malformed (*what says which
 * field), -ENOMEM. cluster is the context's cluster node. */
int kubeconfig_exec_load(const struct kubeconfig *kc, int user, int cluster, const char *dir,
			 struct kubeconfig_exec *x, const char **what);
void kubeconfig_exec_free(struct kubeconfig_exec *x);

/* What a plugin run gave. */
struct kubeconfig_cred {
	char token[4096];
	int64_t expires_ns;     /* status.expirationTimestamp (wall clock), 0: none */
	int exit_status;        /* the plugin's, when it failed with -EPROTO */
};

/* Runs the plugin (stdin /dev/null, its stderr ours, at most timeout_ns)
 * and reads its ExecCredential: 0, or -errno of the spawn, -ETIMEDOUT
 * (killed), -EPROTO (it exited non-zero), -EBADMSG (stdout is not an
 * ExecCredential of the asked apiVersion with a status.token). */
int kubeconfig_exec_run(const struct kubeconfig_exec *x, uint64_t timeout_ns,
			struct kubeconfig_cred *out);

#endif
