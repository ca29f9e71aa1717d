/* The part of a kubeconfig reflexd reads: enough YAML for what kubectl
 * writes (block mappings and sequences, plain or quoted scalars), kept as
 * (section, item, path, value) entries: the value of `server` in the first
 * item of `clusters` is ("clusters", 0, "cluster.server", "https://..."). */
#ifndef REFLEX_K8S_KUBECONFIG_H
#define REFLEX_K8S_KUBECONFIG_H

#include <stddef.h>

struct kubeconfig_entry {
	char section[16];  /* "" for top-level scalars like current-context */
	int item;
	char path[96];
	char *value;
};

struct kubeconfig {
	struct kubeconfig_entry *e;
	size_t n;
};

/* Parses text into kc (zeroed by the caller): 0, or -EINVAL with
 * "file:line: message" in err. kc is freed by kubeconfig_free either way. */
int kubeconfig_parse(const char *text, struct kubeconfig *kc, const char *file,
		     char *err, size_t errlen);
void kubeconfig_free(struct kubeconfig *kc);
/* The value at path of the item of section whose name is name, or NULL.
 * name NULL: the top-level scalar path ("current-context"). */
const char *kubeconfig_get(const struct kubeconfig *kc, const char *section,
			   const char *name, const char *path);
/* A file named in a kubeconfig into out: relative to dir, the kubeconfig's
 * directory. 0 or -ENAMETOOLONG. */
int kubeconfig_path(const char *dir, const char *name, char *out, size_t size);
/* A TLS item of the item name of section: "<field>-data" (base64 PEM,
 * decoded into a new *pem) or "<field>" (a file, into a new *file). 0
 * (neither set when it is absent), or -EINVAL. */
int kubeconfig_file_or_data(const struct kubeconfig *kc, const char *section, const char *name,
			    const char *field, const char *dir, char **file, char **pem);

#endif
