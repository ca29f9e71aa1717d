/*
 * condwait.c - test workload of threads parked in condition-variable waits.
 * They block on futexes but form no deadlock, so reflexd must NOT flag them.
 *
 * Usage: condwait [--threads N] [--comm NAME]
 *   --threads N  threads parked in pthread_cond_wait (default 4, N >= 1)
 *   --comm NAME  set the process (and thread) comm via PR_SET_NAME
 *
 * One extra thread loops forever in pthread_cond_timedwait with a 1 s
 * timeout, so the process has N + 1 worker threads in total.
 * Once every waiter is parked, prints `ready pid=<pid>` and blocks forever;
 * the process never exits on its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <limits.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t cond = PTHREAD_COND_INITIALIZER;
static bool go;		/* the predicate: never becomes true */
static int parked;	/* waiters that reached their wait, under lock */

static void *wait_forever(void *arg)
{
	(void)arg;
	CHECK(pthread_mutex_lock(&lock));
	parked++;
	/* Loop guards against spurious wakeups; nobody ever signals. */
	while (!go)
		CHECK(pthread_cond_wait(&cond, &lock));
	CHECK(pthread_mutex_unlock(&lock));
	return NULL;
}

static void *timedwait_forever(void *arg)
{
	struct timespec deadline;
	int rc;

	(void)arg;
	CHECK(pthread_mutex_lock(&lock));
	parked++;
	while (!go) {
		/* The default condattr clock is CLOCK_REALTIME. */
		if (clock_gettime(CLOCK_REALTIME, &deadline) != 0)
			die_errno("clock_gettime");
		deadline.tv_sec += 1;
		rc = pthread_cond_timedwait(&cond, &lock, &deadline);
		if (rc != 0 && rc != ETIMEDOUT)
			die_rc("pthread_cond_timedwait", rc);
	}
	CHECK(pthread_mutex_unlock(&lock));
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: condwait [--threads N] [--comm NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *comm = NULL;
	int nthreads = 4;
	pthread_t *threads;
	int done;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--threads") == 0 && i + 1 < argc)
			nthreads = (int)parse_long(argv[++i], 1, 4096, usage);
		else if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc)
			comm = argv[++i];
		else
			usage();
	}

	/* Before any thread exists, so every thread inherits the name. */
	if (comm)
		set_comm(comm);

	threads = xcalloc(nthreads + 1, sizeof(*threads));
	for (int i = 0; i < nthreads; i++)
		CHECK(pthread_create(&threads[i], NULL, wait_forever, NULL));
	CHECK(pthread_create(&threads[nthreads], NULL, timedwait_forever, NULL));

	/*
	 * A waiter holds the lock from parked++ until its wait releases it,
	 * so seeing the full count under the lock means all are parked.
	 */
	for (;;) {
		CHECK(pthread_mutex_lock(&lock));
		done = parked;
		CHECK(pthread_mutex_unlock(&lock));
		if (done == nthreads + 1)
			break;
		usleep(1000);
	}

	printf("ready pid=%d\n", (int)getpid());
	fflush(stdout);

	CHECK(pthread_join(threads[0], NULL));
	/* Never exit on our own, even if the join somehow returned. */
	for (;;)
		pause();
}
