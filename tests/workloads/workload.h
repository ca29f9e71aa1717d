/*
 * workload.h - helpers shared by the test workloads in this directory.
 * Each workload is one .c file built on its own, so everything here is
 * static inline: a file that uses none of it pays nothing for it.
 *
 * Error messages start with the program's name, as the workloads always
 * printed it, via program_invocation_short_name.
 */
#ifndef REFLEX_TESTS_WORKLOAD_H
#define REFLEX_TESTS_WORKLOAD_H

/* Too late to define it here: <features.h> may already have been read. */
#ifndef _GNU_SOURCE
#error "define _GNU_SOURCE before any #include"
#endif

#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <time.h>

/* For pthread_* calls, which return the error instead of setting errno. */
#define CHECK(call)                                                       \
	do {                                                              \
		int rc_ = (call);                                         \
		if (rc_ != 0)                                             \
			die_rc(#call, rc_);                               \
	} while (0)

__attribute__((noreturn))
static inline void die_rc(const char *what, int rc)
{
	fprintf(stderr, "%s: %s failed: %s\n", program_invocation_short_name,
		what, strerror(rc));
	abort();
}

/* perror() with the program's name, then abort. */
__attribute__((noreturn))
static inline void die_errno(const char *what)
{
	fprintf(stderr, "%s: %s: %s\n", program_invocation_short_name, what,
		strerror(errno));
	abort();
}

static inline void barrier_wait(pthread_barrier_t *b)
{
	int rc = pthread_barrier_wait(b);

	if (rc != 0 && rc != PTHREAD_BARRIER_SERIAL_THREAD)
		die_rc("pthread_barrier_wait", rc);
}

static inline void now_mono(struct timespec *ts)
{
	if (clock_gettime(CLOCK_MONOTONIC, ts) != 0)
		die_errno("clock_gettime");
}

/* CLOCK_MONOTONIC in ns; a double is exact to the ns for ~100 days of uptime. */
static inline double now_ns(void)
{
	struct timespec ts;

	now_mono(&ts);
	return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

static inline void *xcalloc(size_t n, size_t size)
{
	void *p = calloc(n, size);

	if (!p) {
		fprintf(stderr, "%s: out of memory\n",
			program_invocation_short_name);
		abort();
	}
	return p;
}

/*
 * Call before creating any thread: new threads inherit the comm, which is
 * how the tests tell their workloads apart. Exits 1 if it fails.
 */
static inline void set_comm(const char *name)
{
	if (prctl(PR_SET_NAME, name, 0, 0, 0) != 0) {
		fprintf(stderr, "%s: prctl(PR_SET_NAME): %s\n",
			program_invocation_short_name, strerror(errno));
		exit(1);
	}
}

/*
 * A whole decimal argument in [min, max]; anything else calls usage, which
 * must not return (each workload has its own usage text).
 */
static inline long parse_long(const char *s, long min, long max,
			      void (*usage)(void))
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (errno || end == s || *end || v < min || v > max)
		usage();
	return v;
}

#endif /* REFLEX_TESTS_WORKLOAD_H */
