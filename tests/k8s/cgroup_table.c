/* Runs identity_parse_cgroup over a table of real cgroup path shapes
 * (tests/k8s/cgroup_paths.tsv: path, container id, pod uid, "-" for none)
 * and prints "ok"/"not ok" per row; exits 1 when any row fails. */
#include <stdio.h>
#include <string.h>

#include "sense/identity.h"

int main(int argc, char **argv)
{
	FILE *f = fopen(argc > 1 ? argv[1] : "tests/k8s/cgroup_paths.tsv", "re");
	char line[1024];
	int lineno = 0, failed = 0, rows = 0;

	if (!f) {
		perror("cgroup_paths.tsv");
		return 2;
	}
	while (fgets(line, sizeof(line), f)) {
		char *path = line, *want_id, *want_uid, id[72], uid[40];

		lineno++;
		line[strcspn(line, "\n")] = '\0';
		if (!line[0] || line[0] == '#')
			continue;
		want_id = strchr(path, '\t');
		want_uid = want_id ? strchr(want_id + 1, '\t') : NULL;
		if (!want_uid) {
			printf("not ok - line %d: want three tab-separated columns\n", lineno);
			failed++;
			continue;
		}
		*want_id++ = *want_uid++ = '\0';
		identity_parse_cgroup(path, id, uid);
		rows++;
		if (strcmp(id[0] ? id : "-", want_id) || strcmp(uid[0] ? uid : "-", want_uid)) {
			printf("not ok - line %d: %s: got container '%s' pod '%s', want '%s' '%s'\n",
			       lineno, path, id, uid, want_id, want_uid);
			failed++;
		}
	}
	fclose(f);
	printf("%d rows, %d failed\n", rows, failed);
	return failed ? 1 : 0;
}
