/* libFuzzer target, differential: time_format's own calendar must write
 * what gmtime_r and strftime write, for any int64_t of nanoseconds
 * (input: 8 bytes, little-endian). */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "lib/util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char got[40], want[40], date[32];
	int64_t ns = 0;
	time_t secs;
	struct tm tm;

	memcpy(&ns, data, size < sizeof(ns) ? size : sizeof(ns));
	/* the fractional part of a time before 1970 has no fixed form */
	if (ns < 0)
		ns = -(ns + 1);
	secs = (time_t)(ns / (int64_t)NSEC_PER_SEC);
	if (!gmtime_r(&secs, &tm))
		abort();
	strftime(date, sizeof(date), "%Y-%m-%dT%H:%M:%S", &tm);
	snprintf(want, sizeof(want), "%s.%03dZ", date,
		 (int)(ns % (int64_t)NSEC_PER_SEC / (int64_t)NSEC_PER_MSEC));
	time_format(ns, got, sizeof(got));
	if (strcmp(got, want)) {
		fprintf(stderr, "%lld: '%s', gmtime_r: '%s'\n", (long long)ns, got, want);
		abort();
	}
	return 0;
}
