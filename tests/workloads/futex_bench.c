/*
 * futex_bench.c - futex-contention microbenchmark: T threads hammer one
 * default pthread mutex, to measure per-operation overhead (e.g. with and
 * without reflexd's eBPF probes attached).
 *
 * Usage: futex_bench [--threads T] [--ops N]
 *   --threads T  contending threads (default 2)
 *   --ops N      total lock/unlock pairs, split across threads
 *                (default 2000000)
 *
 * Prints exactly one line:
 *   futex_bench threads=<T> ops=<N> ns_per_op=<ns, 1 decimal>
 * Exits 1 if the shared counter does not end up equal to N.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "workload.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t start_barrier;
static unsigned long long counter;	/* protected by m */
static volatile unsigned long sink;	/* keeps the critical-section work */

static void *hammer(void *arg)
{
	unsigned long long ops = *(unsigned long long *)arg;

	barrier_wait(&start_barrier);
	for (unsigned long long i = 0; i < ops; i++) {
		CHECK(pthread_mutex_lock(&m));
		counter++;
		/* A little work so the lock is held long enough to contend. */
		for (int j = 0; j < 8; j++)
			sink++;
		CHECK(pthread_mutex_unlock(&m));
	}
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: futex_bench [--threads T] [--ops N]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	unsigned long long nthreads = 2;
	unsigned long long total_ops = 2000000;
	unsigned long long *share;
	pthread_t *threads;
	double start, elapsed_ns;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			nthreads = parse_long(argv[++i], 1, 4096, usage);
		else if (strcmp(argv[i], "--ops") == 0 && i + 1 < argc)
			total_ops = parse_long(argv[++i], 1, 1L << 40, usage);
		else
			usage();
	}

	threads = xcalloc(nthreads, sizeof(*threads));
	share = xcalloc(nthreads, sizeof(*share));
	/* Spread the remainder so the shares add up to exactly N. */
	for (unsigned long long i = 0; i < nthreads; i++)
		share[i] = total_ops / nthreads + (i < total_ops % nthreads);

	CHECK(pthread_barrier_init(&start_barrier, NULL, nthreads + 1));
	for (unsigned long long i = 0; i < nthreads; i++)
		CHECK(pthread_create(&threads[i], NULL, hammer, &share[i]));

	/* Thread creation is excluded: timing starts at the barrier release. */
	barrier_wait(&start_barrier);
	start = now_ns();
	for (unsigned long long i = 0; i < nthreads; i++)
		CHECK(pthread_join(threads[i], NULL));
	elapsed_ns = now_ns() - start;

	if (counter != total_ops) {
		fprintf(stderr, "futex_bench: counter=%llu, expected %llu\n",
			counter, total_ops);
		return 1;
	}

	printf("futex_bench threads=%llu ops=%llu ns_per_op=%.1f\n",
	       nthreads, total_ops, elapsed_ns / (double)total_ops);
	fflush(stdout);

	CHECK(pthread_barrier_destroy(&start_barrier));
	free(share);
	free(threads);
	return 0;
}
