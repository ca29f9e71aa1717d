/* libFuzzer target: the kubeconfig reader (a user's file). Parses, then
 * looks up what the Kubernetes client looks up, the exec plugin's fields
 * included (loaded, never run). */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	struct kubeconfig_error why;
	struct kubeconfig *kc = kubeconfig_parse((const char *)data, size, &why);
	struct kubeconfig_exec x = { 0 };
	const char *ctx, *cluster, *user, *what;
	char *file = NULL, *pem = NULL, path[512];
	int cnode;

	if (!kc)
		return 0;
	ctx = kubeconfig_get(kc, NULL, NULL, "current-context");
	cluster = ctx ? kubeconfig_get(kc, "contexts", ctx, "context.cluster") : NULL;
	user = ctx ? kubeconfig_get(kc, "contexts", ctx, "context.user") : NULL;
	if (cluster) {
		cnode = kubeconfig_at(kc, kubeconfig_find(kc, "clusters", cluster), "cluster");
		(void)kubeconfig_file_or_data(kc, cnode, "certificate-authority", "/d", &file, &pem);
		(void)kubeconfig_path("/d", cluster, path, sizeof(path));
		if (user)
			(void)kubeconfig_exec_load(kc, kubeconfig_find(kc, "users", user), cnode, "/d", &x,
						   &what);
	}
	kubeconfig_exec_free(&x);
	free(file);
	free(pem);
	kubeconfig_free(kc);
	return 0;
}
