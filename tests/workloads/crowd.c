/*
 * crowd.c - a big, crowded host for the big-host benchmark, and an event
 * storm.
 *
 * Usage:
 *   crowd idle --procs N --threads M
 *     forks N sleeping processes; M sleeping threads are spread over the
 *     first of them (1 000 a process). Prints
 *       ready procs=<N> threads=<M>
 *     once all exist, and stays until SIGTERM or SIGINT, when it kills the
 *     whole crowd. Every child also dies with it (PR_SET_PDEATHSIG).
 *   crowd storm --spawn-rate P --seconds S [--yielders K]
 *     for S seconds, starts P short processes a second (fork, exec of
 *     /bin/true, reaped) while K threads (default 4, two a CPU) call
 *     sched_yield() in a loop: on a CPU shared by two runnable threads each
 *     yield is a context switch. Prints
 *       storm spawned=<n> seconds=<s> switches_per_s=<n>
 *     with the host's context switches a second from /proc/stat.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define THREADS_PER_PROC 1000

static volatile sig_atomic_t stop;

static void on_stop(int sig)
{
	(void)sig;
	stop = 1;
}

static void *sleeper(void *arg)
{
	(void)arg;
	for (;;)
		pause();
	return NULL;
}

/* A child of the crowd: nthreads sleeping threads and itself asleep. */
static void crowd_child(pid_t parent, int nthreads)
{
	pthread_attr_t attr;

	if (prctl(PR_SET_PDEATHSIG, SIGKILL) != 0 || getppid() != parent)
		_exit(1);
	CHECK(pthread_attr_init(&attr));
	CHECK(pthread_attr_setstacksize(&attr, 16384));
	for (int i = 0; i < nthreads; i++) {
		pthread_t t;

		CHECK(pthread_create(&t, &attr, sleeper, NULL));
	}
	for (;;)
		pause();
}

static int run_idle(int procs, int threads)
{
	pid_t self = getpid();
	int left = threads;

	/* a group of its own: the kill at the end takes the crowd only */
	if (setpgid(0, 0) != 0)
		die_errno("setpgid");

	for (int i = 0; i < procs; i++) {
		int n = left > THREADS_PER_PROC ? THREADS_PER_PROC : left;
		pid_t pid = fork();

		if (pid < 0)
			die_errno("fork");
		if (pid == 0)
			crowd_child(self, n);
		left -= n;
	}
	/* wait until every thread exists: the host's task count tells */
	for (;;) {
		FILE *f = fopen("/proc/loadavg", "r");
		int running, total = 0;
		double a, b, c;

		if (f && fscanf(f, "%lf %lf %lf %d/%d", &a, &b, &c, &running, &total) != 5)
			total = 0;
		if (f)
			fclose(f);
		if (total >= procs + threads)
			break;
		usleep(100000);
	}
	printf("ready procs=%d threads=%d\n", procs, threads);
	fflush(stdout);
	while (!stop)
		pause();
	signal(SIGTERM, SIG_IGN);
	kill(0, SIGKILL);
	return 0;
}

static void *yielder(void *arg)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET((int)(long)arg, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
	while (!stop)
		sched_yield();
	return NULL;
}

static unsigned long long host_switches(void)
{
	FILE *f = fopen("/proc/stat", "r");
	char line[256];
	unsigned long long n = 0;

	while (f && fgets(line, sizeof(line), f))
		if (sscanf(line, "ctxt %llu", &n) == 1)
			break;
	if (f)
		fclose(f);
	return n;
}

static double mono_s(void)
{
	struct timespec ts;

	now_mono(&ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int run_storm(int rate, int seconds, int yielders)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	pthread_t *ys = calloc(yielders, sizeof(*ys));
	unsigned long long sw0 = host_switches(), spawned = 0;
	double t0 = mono_s(), t;

	if (!ys)
		die_errno("calloc");
	for (int i = 0; i < yielders; i++)
		CHECK(pthread_create(&ys[i], NULL, yielder, (void *)(long)(i % ncpu)));
	while (!stop && (t = mono_s() - t0) < seconds) {
		/* keep to the rate: spawn what the clock says is due */
		while (spawned < (unsigned long long)(t * rate)) {
			pid_t pid = fork();

			if (pid < 0)
				die_errno("fork");
			if (pid == 0) {
				execl("/bin/true", "true", (char *)NULL);
				_exit(127);
			}
			spawned++;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		usleep(1000);
	}
	t = mono_s() - t0;
	unsigned long long sw1 = host_switches();

	stop = 1;
	for (int i = 0; i < yielders; i++)
		CHECK(pthread_join(ys[i], NULL));
	while (waitpid(-1, NULL, 0) > 0)
		;
	free(ys);
	printf("storm spawned=%llu seconds=%.1f switches_per_s=%.0f\n", spawned, t,
	       (sw1 - sw0) / t);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: crowd idle --procs N --threads M\n"
			"       crowd storm --spawn-rate P --seconds S [--yielders K]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int procs = 0, threads = 0, rate = 1000, seconds = 60, yielders = 4;
	struct sigaction sa = { .sa_handler = on_stop };

	if (argc < 2)
		usage();
	for (int i = 2; i < argc; i++) {
		if (i + 1 >= argc)
			usage();
		if (!strcmp(argv[i], "--procs"))
			procs = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--threads"))
			threads = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--spawn-rate"))
			rate = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--seconds"))
			seconds = atoi(argv[++i]);
		else if (!strcmp(argv[i], "--yielders"))
			yielders = atoi(argv[++i]);
		else
			usage();
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (!strcmp(argv[1], "idle") && procs > 0 && threads >= 0 &&
	    threads <= (long long)procs * THREADS_PER_PROC)
		return run_idle(procs, threads);
	if (!strcmp(argv[1], "storm") && rate > 0 && seconds > 0 && yielders >= 0)
		return run_storm(rate, seconds, yielders);
	usage();
}
