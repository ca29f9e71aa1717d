/* libFuzzer target: the JSON reader that reads every API server reply.
 * Parses, then walks every value, reading each as a string and a number,
 * and looks up the paths the Kubernetes client uses. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/json.h"

static void walk(const struct json_val *v, int depth)
{
	struct json_val it = { 0 }, key;
	char buf[64];
	double d;

	(void)json_str(v, buf, sizeof(buf));
	(void)json_num(v, &d);
	if (depth > 70)
		abort(); /* json_parse bounds nesting at 64 */
	while (json_next(v, &it, &key)) {
		if (v->type == JSON_OBJECT && key.type != JSON_STRING)
			abort();
		walk(&it, depth + 1);
	}
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const char *const paths[] = {
		"kind", "metadata.uid", "items.0.metadata.labels", "details.causes.0.reason",
		"items.1.status.containerStatuses.0.containerID", "", "a..b", "0",
	};
	char *text = malloc(size + 1), buf[128];
	struct json_val doc, v;

	if (!text)
		abort();
	memcpy(text, data, size);
	text[size] = '\0';
	if (json_parse(text, size, &doc) == 0) {
		walk(&doc, 0);
		for (size_t i = 0; i < sizeof(paths) / sizeof(paths[0]); i++) {
			if (json_get(&doc, paths[i], &v) == 0 && (v.p < text || v.p + v.n > text + size))
				abort();
			json_get_str(&doc, paths[i], buf, sizeof(buf));
		}
	}
	free(text);
	return 0;
}
