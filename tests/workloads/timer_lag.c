/*
 * timer_lag.c - the host's own timer lateness, the baseline for reflexd's
 * loop lag in the big-host benchmark (tests/bench/b_bighost.sh).
 *
 * Usage: timer_lag --seconds S
 *   sleeps 97 ms at a time (reflexd's loop-lag probe period) for S
 *   seconds and measures how late each wake-up is: what any process
 *   waiting on a timer meets on this host, with no work of its own. Prints
 *     timer_lag samples=<n> p50_ms=<x> p99_ms=<x> max_ms=<x>
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "workload.h"

#define PERIOD_NS 97000000.0

static int cmp_double(const void *a, const void *b)
{
	double x = *(const double *)a, y = *(const double *)b;

	return (x > y) - (x < y);
}

int main(int argc, char **argv)
{
	int seconds = argc == 3 && !strcmp(argv[1], "--seconds") ? atoi(argv[2]) : 0;
	int n = 0, cap;
	double *late, t_end;

	if (seconds <= 0) {
		fprintf(stderr, "usage: timer_lag --seconds S\n");
		return 2;
	}
	cap = (int)(seconds * 1e9 / PERIOD_NS) + 2;
	late = calloc(cap, sizeof(*late));
	if (!late)
		die_errno("calloc");
	t_end = now_ns() + seconds * 1e9;
	while (n < cap && now_ns() < t_end) {
		struct timespec d = { 0, (long)PERIOD_NS };
		double due = now_ns() + PERIOD_NS;

		nanosleep(&d, NULL);
		late[n++] = (now_ns() - due) / 1e6;
	}
	qsort(late, n, sizeof(*late), cmp_double);
	printf("timer_lag samples=%d p50_ms=%.3f p99_ms=%.3f max_ms=%.3f\n", n, late[n / 2],
	       late[(int)(0.99 * (n - 1))], late[n - 1]);
	free(late);
	return 0;
}
