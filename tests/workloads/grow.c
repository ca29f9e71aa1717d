/*
 * grow.c - test workload whose resident memory climbs steadily, for the
 * memory sensor and the reflex arc.
 *
 * Usage: grow [--rate MIB_PER_S] [--max MIB] [--cycles N] [--go FILE] [--comm NAME]
 *   --rate MIB_PER_S  how fast to touch new memory (default 64)
 *   --max MIB         stop growing here and sleep (default 1024)
 *   --cycles N        grow to --max, give it all back (MADV_DONTNEED) and
 *                     rest 2 s, N times before the last sleep (default 1)
 *   --go FILE         after `ready`, wait until FILE exists before growing
 *                     (so the test can let reflexd arm it first)
 *   --comm NAME       set the process comm via PR_SET_NAME
 *
 * Prints `ready pid=<pid>`, then `grown mib=<N>` every 16 MiB, `freed` after
 * each cycle but the last, and `done mib=<N>` at --max of the last, after
 * which it sleeps until killed. Memory is
 * anonymous and written page by page, so it is resident as it is touched.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define MIB (1024 * 1024)

static void usage(void)
{
	fprintf(stderr, "usage: grow [--rate MIB_PER_S] [--max MIB] [--cycles N] [--go FILE] "
		"[--comm NAME]\n");
	exit(2);
}

static double now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
	double rate = 64, start;
	long max = 1024, cycles = 1, page = sysconf(_SC_PAGESIZE);
	const char *go = NULL, *comm = NULL;
	char *mem;

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--rate") == 0 && i + 1 < argc)
			rate = atof(argv[++i]);
		else if (strcmp(argv[i], "--max") == 0 && i + 1 < argc)
			max = atol(argv[++i]);
		else if (strcmp(argv[i], "--cycles") == 0 && i + 1 < argc)
			cycles = atol(argv[++i]);
		else if (strcmp(argv[i], "--go") == 0 && i + 1 < argc)
			go = argv[++i];
		else if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc)
			comm = argv[++i];
		else
			usage();
	}
	if (rate <= 0 || max <= 0 || cycles <= 0)
		usage();
	if (comm)
		set_comm(comm);
	mem = mmap(NULL, (size_t)max * MIB, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
	if (mem == MAP_FAILED) {
		perror("grow: mmap");
		return 1;
	}
	printf("ready pid=%d\n", getpid());
	fflush(stdout);
	while (go && access(go, F_OK))
		usleep(1000);
	for (long cycle = 1;; cycle++) {
		start = now_s();
		for (long mib = 0; mib < max; mib++) {
			/* pace by MiB: the (mib+1)-th is due at (mib+1)/rate s */
			double due = start + (double)(mib + 1) / rate, left = due - now_s();

			for (long off = 0; off < MIB; off += page)
				mem[mib * MIB + off] = 1;
			if ((mib + 1) % 16 == 0) {
				printf("grown mib=%ld\n", mib + 1);
				fflush(stdout);
			}
			if (left > 0)
				usleep((useconds_t)(left * 1e6));
		}
		if (cycle == cycles)
			break;
		if (madvise(mem, (size_t)max * MIB, MADV_DONTNEED)) {
			perror("grow: madvise");
			return 1;
		}
		printf("freed\n");
		fflush(stdout);
		sleep(2);
	}
	printf("done mib=%ld\n", max);
	fflush(stdout);
	for (;;)
		pause();
}
