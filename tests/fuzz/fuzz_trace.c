/* libFuzzer target: the trace reader on arbitrary bytes, read to the end
 * as `simulate --skip-bad` would. It must never crash, leak or hang. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>

#include "record/trace.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/reflexd-fuzz-trace.XXXXXX";
	struct trace_reader r;
	struct trace_event *ev = malloc(sizeof(*ev));
	int fd = mkstemp(path), rc, lines = 0;

	if (fd < 0 || !ev)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	if (trace_open(&r, path) == 0) {
		/* a bad line can be skipped; a bad header or a read error ends it */
		while ((rc = trace_next(&r, ev)) != 0 && rc != -EIO && rc != -ENOTSUP) {
			if (++lines > 1000000)
				abort(); /* more events than the input has lines */
			if (rc > 0 && ev->kind == TRACE_RAISE && !ev->cond.target.pid)
				abort(); /* a raise without a pid must be refused */
		}
		trace_close(&r);
	}
	free(ev);
	unlink(path);
	return 0;
}
