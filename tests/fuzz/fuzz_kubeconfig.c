/* libFuzzer target: the kubeconfig reader (a user's file). Parses, then
 * looks up what the Kubernetes client looks up. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "k8s/kubeconfig.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *text = malloc(size + 1), err[256], path[512];
	struct kubeconfig kc = { 0 };
	const char *ctx;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (kubeconfig_parse(text, &kc, "fuzz", err, sizeof(err)) == 0) {
		ctx = kubeconfig_get(&kc, "", NULL, "current-context");
		if (ctx) {
			const char *cluster = kubeconfig_get(&kc, "contexts", ctx, "context.cluster");
			char *file = NULL, *pem = NULL;

			if (cluster) {
				(void)kubeconfig_file_or_data(&kc, "clusters", cluster,
							      "cluster.certificate-authority", "/d", &file, &pem);
				(void)kubeconfig_path("/d", cluster, path, sizeof(path));
			}
			free(file);
			free(pem);
		}
	}
	kubeconfig_free(&kc);
	free(text);
	return 0;
}
