/*
 * deadlock.c - test workload that forms a real, permanent mutex deadlock
 * for reflexd's detector to find.
 *
 * Usage: deadlock MODE [--comm NAME]
 *   MODE abba   transfer_funds() locks account_lock then ledger_lock,
 *               audit_ledger() ledger_lock then account_lock
 *   MODE ring3  take_order(), ship_stock(), bill_customer(): each locks its
 *               own lock (orders_lock, stock_lock, billing_lock), then the
 *               next one's
 *   MODE relock refresh_cache() locks cache_lock, then locks it again
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

/* Plain default mutexes, each a named global, as in a real program: the
 * detector must see ordinary futex waits, and name the locks by their
 * symbols and the threads by their functions. */
static pthread_mutex_t account_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t ledger_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t orders_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t stock_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t billing_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t cache_lock = PTHREAD_MUTEX_INITIALIZER;

static pthread_barrier_t formed_barrier;

struct worker {
	pthread_t thread;
	pid_t tid;
};

static struct worker workers[MAX_THREADS];

/* Takes first, and once every thread holds its first lock (the cycle is
 * certain), second: blocks forever. Inlined, so each thread blocks in its
 * own function, as in a real program. */
static inline __attribute__((always_inline)) void lock_in_order(struct worker *w, pthread_mutex_t *first, pthread_mutex_t *second)
{
	w->tid = (pid_t)syscall(SYS_gettid);
	CHECK(pthread_mutex_lock(first));
	barrier_wait(&formed_barrier);
	CHECK(pthread_mutex_lock(second));

	/* Unreachable unless the deadlock somehow broke. */
	fprintf(stderr, "deadlock: thread %d acquired its second lock?!\n", (int)w->tid);
	abort();
}

/* Each thread's function is its own, so the stack names it. */
#define LOCKER(fn, first, second)                                  \
	static __attribute__((noinline)) void *fn(void *arg)       \
	{                                                          \
		lock_in_order(arg, &(first), &(second));           \
		return NULL;                                       \
	}

/* abba */
LOCKER(transfer_funds, account_lock, ledger_lock)
LOCKER(audit_ledger, ledger_lock, account_lock)
/* ring3 */
LOCKER(take_order, orders_lock, stock_lock)
LOCKER(ship_stock, stock_lock, billing_lock)
LOCKER(bill_customer, billing_lock, orders_lock)

static __attribute__((noinline)) void *refresh_cache(void *arg)
{
	struct worker *w = arg;

	w->tid = (pid_t)syscall(SYS_gettid);
	CHECK(pthread_mutex_lock(&cache_lock));
	barrier_wait(&formed_barrier);
	/* A normal mutex does not detect self-deadlock: this blocks forever. */
	CHECK(pthread_mutex_lock(&cache_lock));

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
	void *(*fn[MAX_THREADS])(void *) = { 0 };
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
		fn[0] = transfer_funds;
		fn[1] = audit_ledger;
	} else if (strcmp(mode, "ring3") == 0) {
		nthreads = 3;
		fn[0] = take_order;
		fn[1] = ship_stock;
		fn[2] = bill_customer;
	} else if (strcmp(mode, "relock") == 0) {
		nthreads = 1;
		fn[0] = refresh_cache;
	} else {
		usage();
	}

	/* Before any thread exists, so every thread inherits the name. */
	if (comm)
		set_comm(comm);

	CHECK(pthread_barrier_init(&formed_barrier, NULL, nthreads + 1));
	for (int i = 0; i < nthreads; i++)
		CHECK(pthread_create(&workers[i].thread, NULL, fn[i], &workers[i]));

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
