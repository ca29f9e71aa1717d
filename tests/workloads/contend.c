/*
 * contend.c - test workload with long but finite mutex contention: an
 * owner holds a mutex for S seconds while waiters block on it. This is
 * not a deadlock, so reflexd must not treat it as one.
 *
 * Usage: contend sleep|spin [--seconds S] [--waiters N] [--comm NAME]
 *   sleep        the owner sleeps (nanosleep) while holding the mutex
 *   spin         the owner busy-computes on the CPU while holding it
 *   --seconds S  how long the owner holds the mutex (default 60, may be
 *                fractional)
 *   --waiters N  threads blocked in pthread_mutex_lock (default 2)
 *   --comm NAME  set the process (and thread) comm via PR_SET_NAME
 *
 * Once the waiters have been started, prints
 *   ready pid=<pid> owner_tid=<tid>
 * then exits 0 after the owner releases and every waiter got the mutex.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

static pthread_mutex_t m = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t held_barrier;		/* owner + main */
static pthread_barrier_t waiters_barrier;	/* waiters + main */
static bool spin_mode;
static double hold_seconds = 60.0;
static pid_t owner_tid;

static void hold_by_sleeping(void)
{
	struct timespec req, rem;

	req.tv_sec = (time_t)hold_seconds;
	req.tv_nsec = (long)((hold_seconds - (double)req.tv_sec) * 1e9);
	/* Resume after signal interruptions so the hold time stays S. */
	while (nanosleep(&req, &rem) != 0) {
		if (errno != EINTR)
			die_errno("nanosleep");
		req = rem;
	}
}

static void hold_by_spinning(void)
{
	volatile unsigned long counter = 0;
	struct timespec start, now;
	double elapsed;

	now_mono(&start);
	do {
		/* Batch the work so time checks don't dominate the loop. */
		for (int i = 0; i < 4096; i++)
			counter++;
		now_mono(&now);
		elapsed = (double)(now.tv_sec - start.tv_sec) +
			  (double)(now.tv_nsec - start.tv_nsec) / 1e9;
	} while (elapsed < hold_seconds);
}

static void *owner(void *arg)
{
	(void)arg;
	owner_tid = (pid_t)syscall(SYS_gettid);
	CHECK(pthread_mutex_lock(&m));
	barrier_wait(&held_barrier);
	if (spin_mode)
		hold_by_spinning();
	else
		hold_by_sleeping();
	CHECK(pthread_mutex_unlock(&m));
	return NULL;
}

static void *waiter(void *arg)
{
	(void)arg;
	barrier_wait(&waiters_barrier);
	CHECK(pthread_mutex_lock(&m));
	CHECK(pthread_mutex_unlock(&m));
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: contend sleep|spin [--seconds S] [--waiters N] "
			"[--comm NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	const char *mode = NULL;
	const char *comm = NULL;
	long nwaiters = 2;
	pthread_t owner_thread;
	pthread_t *waiters;
	char *end;

	setvbuf(stdout, NULL, _IOLBF, 0);

	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc) {
			errno = 0;
			hold_seconds = strtod(argv[++i], &end);
			if (errno || end == argv[i] || *end ||
			    !isfinite(hold_seconds) || hold_seconds < 0 ||
			    hold_seconds > 1e7)
				usage();
		} else if (strcmp(argv[i], "--waiters") == 0 && i + 1 < argc) {
			nwaiters = parse_long(argv[++i], 0, 4096, usage);
		} else if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc) {
			comm = argv[++i];
		} else if (argv[i][0] != '-' && !mode) {
			mode = argv[i];
		} else {
			usage();
		}
	}
	if (!mode)
		usage();
	if (strcmp(mode, "spin") == 0)
		spin_mode = true;
	else if (strcmp(mode, "sleep") != 0)
		usage();

	/* Before any thread exists, so every thread inherits the name. */
	if (comm)
		set_comm(comm);

	waiters = xcalloc(nwaiters ? nwaiters : 1, sizeof(*waiters));
	CHECK(pthread_barrier_init(&held_barrier, NULL, 2));
	CHECK(pthread_barrier_init(&waiters_barrier, NULL, nwaiters + 1));

	CHECK(pthread_create(&owner_thread, NULL, owner, NULL));
	/* Waiters only start once the owner really holds the mutex. */
	barrier_wait(&held_barrier);
	for (long i = 0; i < nwaiters; i++)
		CHECK(pthread_create(&waiters[i], NULL, waiter, NULL));
	/* Released right before each waiter calls pthread_mutex_lock. */
	barrier_wait(&waiters_barrier);

	printf("ready pid=%d owner_tid=%d\n", (int)getpid(), (int)owner_tid);
	fflush(stdout);

	CHECK(pthread_join(owner_thread, NULL));
	for (long i = 0; i < nwaiters; i++)
		CHECK(pthread_join(waiters[i], NULL));
	free(waiters);
	return 0;
}
