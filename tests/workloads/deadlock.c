/*
 * deadlock.c - test workload that forms a real, permanent mutex deadlock
 * for reflexd's detector to find.
 *
 * Usage: deadlock MODE [--comm NAME]
 *   MODE abba   two threads: T1 locks A then B, T2 locks B then A
 *   MODE ring3  three threads: Ti locks L[i] then L[(i+1)%3]
 *   MODE relock one thread locks a default mutex, then locks it again
 *   --comm NAME set the process (and thread) comm via PR_SET_NAME
 *
 * Once the deadlock is certain, prints exactly one line to stdout:
 *   formed pid=<pid> tids=<tid1>,<tid2>[,...] realtime_ns=<CLOCK_REALTIME ns>
 * and then blocks forever; the process never exits on its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define MAX_THREADS 3

/* Plain default mutexes: the detector must see ordinary futex waits. */
static pthread_mutex_t lock_a = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t lock_b = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ring[3] = {
	PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER,
	PTHREAD_MUTEX_INITIALIZER,
};
static pthread_mutex_t self_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_barrier_t formed_barrier;

struct worker {
	pthread_t thread;
	pid_t tid;
	pthread_mutex_t *first;
	pthread_mutex_t *second;
};

static struct worker workers[MAX_THREADS];

static void *lock_pair(void *arg)
{
	struct worker *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	CHECK(pthread_mutex_lock(w->first));
	/* Everyone holds its first lock past this point: the cycle is certain. */
	barrier_wait(&formed_barrier);
	CHECK(pthread_mutex_lock(w->second));

	/* Unreachable unless the deadlock somehow broke. */
	fprintf(stderr, "deadlock: thread %d acquired its second lock?!\n",
		(int)w->tid);
	abort();
}

static void *relock_self(void *arg)
{
	struct worker *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	CHECK(pthread_mutex_lock(&self_lock));
	barrier_wait(&formed_barrier);
	/* A normal mutex does not detect self-deadlock: this blocks forever. */
	CHECK(pthread_mutex_lock(&self_lock));

	fprintf(stderr, "deadlock: relock of a held mutex returned?!\n");
	abort();
}

static void usage(void)
{
	fprintf(stderr, "usage: deadlock abba|ring3|relock [--comm NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	const char *comm = NULL;
	void *(*fn)(void *) = lock_pair;
	int nthreads;
	struct timespec now;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc)
			comm = argv[++i];
		else if (argv[i][0] != '-' && !mode)
			mode = argv[i];
		else
			usage();
	}
	if (!mode)
		usage();

	if (strcmp(mode, "abba") == 0) {
		nthreads = 2;
		workers[0].first = &lock_a;
		workers[0].second = &lock_b;
		workers[1].first = &lock_b;
		workers[1].second = &lock_a;
	} else if (strcmp(mode, "ring3") == 0) {
		nthreads = 3;
		for (int i = 0; i < 3; i++) {
			workers[i].first = &ring[i];
			workers[i].second = &ring[(i + 1) % 3];
		}
	} else if (strcmp(mode, "relock") == 0) {
		nthreads = 1;
		fn = relock_self;
	} else {
		usage();
	}

	/* Before any thread exists, so every thread inherits the name. */
	if (comm)
		set_comm(comm);

	CHECK(pthread_barrier_init(&formed_barrier, NULL, nthreads + 1));
	for (int i = 0; i < nthreads; i++)
		CHECK(pthread_create(&workers[i].thread, NULL, fn, &workers[i]));

	barrier_wait(&formed_barrier);
	/* Taken just before the threads' second lock attempts. */
	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		die_errno("clock_gettime");

	printf("formed pid=%d tids=", (int)getpid());
	for (int i = 0; i < nthreads; i++)
		printf("%s%d", i ? "," : "", (int)workers[i].tid);
	printf(" realtime_ns=%lld\n",
	       (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	fflush(stdout);

	CHECK(pthread_join(workers[0].thread, NULL));
	/* Never exit on our own, even if the join somehow returned. */
	for (;;)
		pause();
}
