/* libFuzzer target: a rule file and a trace, the engine deciding: the
 * input is the rule file, a line "--trace--", and the trace (without the
 * line, the default trace of drive.h). Loading may fail; when it does not,
 * no rule value, function or condition may crash, leak or hang the engine. */
#include "tests/fuzz/drive.h"

static const char SEPARATOR[] = "\n--trace--\n";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/reflexd-fuzz-engine.XXXXXX.lua";
	char trace[] = "/tmp/reflexd-fuzz-engine.XXXXXX.trace";
	const uint8_t *sep = memmem(data, size, SEPARATOR, sizeof(SEPARATOR) - 1);
	size_t rules_size = sep ? (size_t)(sep - data) : size;
	struct strlist errs = { 0 };
	struct ruleset *rs;
	char *paths[] = { path };

	drive_write(path, 4, data, rules_size);
	if (sep)
		drive_write(trace, 6, sep + sizeof(SEPARATOR) - 1,
			    size - rules_size - (sizeof(SEPARATOR) - 1));
	else
		drive_write(trace, 6, drive_default_trace, sizeof(drive_default_trace) - 1);
	rs = rules_load(paths, 1, 0, &errs);
	if (rs)
		drive_engine(rs, trace);
	else if (!errs.n)
		abort();
	rules_free(rs);
	strlist_free(&errs);
	unlink(path);
	unlink(trace);
	return 0;
}
