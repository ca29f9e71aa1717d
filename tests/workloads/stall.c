/*
 * stall.c - test workload in which every thread blocks for good without a
 * lock cycle: main holds a mutex and waits on a condition variable nobody
 * signals (a lost wakeup); two workers wait on main's mutex. main holds
 * config_lock and waits in wait_for_reload() on reload_cond; both workers
 * wait for config_lock in apply_config(). A stall, not
 * a deadlock.
 *
 * Usage: stall [--comm NAME]
 * Once every thread is about to block, prints
 *   formed pid=<pid> tids=<main>,<w1>,<w2> realtime_ns=<CLOCK_REALTIME ns>
 * and never exits on its own.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <stdio.h>
#include <string.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

static pthread_mutex_t config_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t reload_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_cond_t reload_cond = PTHREAD_COND_INITIALIZER;
static pthread_barrier_t started;
static pid_t tids[2];

static __attribute__((noinline)) void *apply_config(void *arg)
{
	int i = (int)(long)arg;

	tids[i] = (pid_t)syscall(SYS_gettid);
	barrier_wait(&started);
	CHECK(pthread_mutex_lock(&config_lock)); /* main never lets go */
	return NULL;
}

/* The lost wakeup: nobody ever signals reload_cond. */
static __attribute__((noinline)) void wait_for_reload(void)
{
	CHECK(pthread_mutex_lock(&reload_lock));
	for (;;)
		CHECK(pthread_cond_wait(&reload_cond, &reload_lock));
}

int main(int argc, char **argv)
{
	pthread_t threads[2];
	struct timespec now;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc == 3 && strcmp(argv[1], "--comm") == 0)
		set_comm(argv[2]);
	else if (argc != 1) {
		fprintf(stderr, "usage: stall [--comm NAME]\n");
		return 2;
	}
	CHECK(pthread_mutex_lock(&config_lock));
	CHECK(pthread_barrier_init(&started, NULL, 3));
	for (long i = 0; i < 2; i++)
		CHECK(pthread_create(&threads[i], NULL, apply_config, (void *)i));
	barrier_wait(&started);
	if (clock_gettime(CLOCK_REALTIME, &now) != 0)
		die_errno("clock_gettime");
	printf("formed pid=%d tids=%d,%d,%d realtime_ns=%lld\n", (int)getpid(), (int)getpid(),
	       (int)tids[0], (int)tids[1], (long long)now.tv_sec * 1000000000LL + now.tv_nsec);
	fflush(stdout);
	wait_for_reload();
}
