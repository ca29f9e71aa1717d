/* libFuzzer target: the rule loader on arbitrary bytes. It must never
 * crash, leak or hang; every input ends in a rule set or in errors. A rule
 * set that loads is then driven through the engine with conditions of
 * every kind (drive.h), so its functions and values run too. */
#include "tests/fuzz/drive.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/reflexd-fuzz-rules.XXXXXX.lua";
	char trace[] = "/tmp/reflexd-fuzz-rules.XXXXXX.trace";
	struct strlist errs = { 0 };
	struct ruleset *rs;
	char *paths[] = { path };

	drive_write(path, 4, data, size);
	rs = rules_load(paths, 1, 0, &errs);
	if (rs) {
		rules_lint(rs, &errs);
		drive_write(trace, 6, drive_default_trace, sizeof(drive_default_trace) - 1);
		drive_engine(rs, trace);
		unlink(trace);
	}
	/* a rule set that loaded is whole; one that did not says why */
	if (!rs && !errs.n)
		abort();
	rules_free(rs);
	strlist_free(&errs);
	unlink(path);
	return 0;
}
