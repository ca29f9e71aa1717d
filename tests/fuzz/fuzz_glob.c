/* libFuzzer target, differential: reflexd's glob_match must agree with
 * fnmatch(3) on every pattern and string (input: pattern NUL string). */
#include <fnmatch.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *buf = malloc(size + 2), *pattern, *s;

	if (!buf)
		abort();
	memcpy(buf, data, size);
	buf[size] = buf[size + 1] = '\0';
	pattern = buf;
	s = buf + strlen(buf) + 1;
	if (s > buf + size)
		s = buf + size;
	if (glob_match(pattern, s) != (fnmatch(pattern, s, 0) == 0))
		abort();
	free(buf);
	return 0;
}
