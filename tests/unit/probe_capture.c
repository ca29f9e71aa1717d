/* probe_capture OBJECT: loads the BPF object OBJECT through probe_load,
 * capturing libbpf's reason, and prints "rc=N why=..." on one line. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "cmd/probe.h"
#include "lib/util.h"

static char elf[1 << 20];
static size_t elf_size;

static const void *object_bytes(size_t *size)
{
	*size = elf_size;
	return elf;
}

int main(int argc, char **argv)
{
	struct kernel_needs needs = { .objects = { object_bytes } };
	char why[1024];
	ssize_t n;
	int rc;

	if (argc != 2) {
		fprintf(stderr, "usage: probe_capture OBJECT\n");
		return 2;
	}
	n = read_file(argv[1], elf, sizeof(elf));
	if (n < 0) {
		fprintf(stderr, "%s: %s\n", argv[1], strerror((int)-n));
		return 2;
	}
	elf_size = (size_t)n;
	(void)libbpf_set_print(NULL);
	probe_capture_begin(why, sizeof(why));
	rc = probe_load(&needs);
	probe_capture_end();
	printf("rc=%d why=%s\n", rc, why);
	return 0;
}
