/*
 * syscall_cost: what one system call costs, single-threaded, so nothing but
 * the syscall path (and whatever is attached to it) is measured.
 *
 *   syscall_cost futex-wait|futex-wake|getppid [--calls N]
 *
 * futex-wait: FUTEX_WAIT on a word that does not hold the expected value, so
 *             it returns EAGAIN at once: a contended lock's way into the
 *             kernel, minus the sleep.
 * futex-wake: FUTEX_WAKE with nobody waiting: an unlock's way in.
 * getppid:    a syscall reflexd does not watch at all.
 * Prints: syscall_cost mode=<m> calls=<N> ns_per_call=<x.x>
 */
#define _GNU_SOURCE
#include <errno.h>
#include <linux/futex.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "workload.h"

static unsigned int word;

/* One call of the given mode; 0 when it behaved as expected. */
static int call(int mode)
{
	long rc;

	switch (mode) {
	case 0:
		rc = syscall(SYS_futex, &word, FUTEX_WAIT_PRIVATE, 1, NULL, NULL, 0);
		return rc == -1 && errno == EAGAIN ? 0 : -1;
	case 1:
		return syscall(SYS_futex, &word, FUTEX_WAKE_PRIVATE, 1, NULL, NULL, 0) == 0 ? 0 : -1;
	default:
		return syscall(SYS_getppid) > 0 ? 0 : -1;
	}
}

int main(int argc, char **argv)
{
	static const char *const modes[] = { "futex-wait", "futex-wake", "getppid" };
	long calls = 1000000;
	int mode = -1;
	double start;

	for (int i = 0; argc > 1 && i < 3; i++)
		if (strcmp(argv[1], modes[i]) == 0)
			mode = i;
	if (mode < 0) {
		fprintf(stderr, "usage: syscall_cost futex-wait|futex-wake|getppid [--calls N]\n");
		return 2;
	}
	if (argc == 4 && strcmp(argv[2], "--calls") == 0)
		calls = atol(argv[3]);
	if (calls <= 0) {
		fprintf(stderr, "syscall_cost: --calls must be positive\n");
		return 2;
	}
	start = now_ns();
	for (long i = 0; i < calls; i++) {
		if (call(mode)) {
			fprintf(stderr, "syscall_cost: %s: unexpected result (%s)\n", modes[mode],
				strerror(errno));
			return 1;
		}
	}
	printf("syscall_cost mode=%s calls=%ld ns_per_call=%.1f\n", modes[mode], calls,
	       (now_ns() - start) / (double)calls);
	return 0;
}
