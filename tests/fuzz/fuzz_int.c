/* libFuzzer target, differential: sbuf_int's two-digits-a-step writer
 * must write what snprintf("%lld") writes, for any long long, in a
 * buffer of any size (input: 8 bytes of value, 1 of buffer size). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char got[32], want[32];
	long long v = 0;
	size_t room = size > 8 ? (size_t)data[8] % sizeof(got) + 1 : sizeof(got);
	struct sbuf b;

	memcpy(&v, data, size < sizeof(v) ? size : sizeof(v));
	sbuf_init(&b, got, room);
	sbuf_int(&b, v);
	snprintf(want, room, "%lld", v);
	if (strcmp(got, want) || b.truncated != (strlen(want) < (size_t)snprintf(NULL, 0, "%lld", v))) {
		fprintf(stderr, "%lld in %zu: '%s', snprintf: '%s'\n", v, room, got, want);
		abort();
	}
	return 0;
}
