/* libFuzzer target: the rule loader on arbitrary bytes. It must never
 * crash, leak or hang; every input ends in a rule set or in errors. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

#include "decide/rules.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char path[] = "/tmp/reflexd-fuzz-rules.XXXXXX";
	struct strlist errs = { 0 };
	struct ruleset *rs;
	char *paths[] = { path };
	int fd = mkstemp(path);

	if (fd < 0)
		abort();
	if (write(fd, data, size) != (ssize_t)size)
		abort();
	close(fd);
	rs = rules_load(paths, 1, &errs);
	if (rs)
		rules_lint(rs, &errs);
	/* a rule set that loaded is whole; one that did not says why */
	if (!rs && !errs.n)
		abort();
	rules_free(rs);
	strlist_free(&errs);
	unlink(path);
	return 0;
}
