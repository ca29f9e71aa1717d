/*
 * spin_target.c - idle single-threaded process used as a signal target.
 * It installs no signal handlers, so signals take their default action.
 *
 * Usage: spin_target [--comm NAME]
 *   --comm NAME  set the process comm via PR_SET_NAME
 *
 * Prints `ready pid=<pid>` and then sleeps forever in pause().
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <unistd.h>

static void usage(void)
{
	fprintf(stderr, "usage: spin_target [--comm NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *comm = NULL;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc)
			comm = argv[++i];
		else
			usage();
	}

	if (comm && prctl(PR_SET_NAME, comm, 0, 0, 0) != 0) {
		perror("spin_target: prctl(PR_SET_NAME)");
		return 1;
	}

	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);

	/* pause() returns only after a caught signal; with none, loop anyway. */
	for (;;)
		pause();
}
