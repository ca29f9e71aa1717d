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
 *   crowd storm --spawn-rate P --seconds S [--pairs K]
 *     for S seconds, starts P short processes a second (posix_spawn of
 *     /bin/true, reaped) while K pairs of threads (default one a CPU),
 *     the two of a pair on one CPU, play ping-pong with semaphores: every
 *     message is a futex wait and a context switch, as many as the host
 *     can make. Prints
 *       storm spawned=<n> seconds=<s> switches_per_s=<n>
 *     with the host's context switches a second from /proc/stat.
 */
#define _GNU_SOURCE
#include <pthread.h>
#include <signal.h>
#include <sched.h>
#include <semaphore.h>
#include <spawn.h>
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

/*
 * A child of the crowd: nthreads sleeping threads and itself asleep; it
 * writes one byte to ready[1] once they all exist.
 */
static void crowd_child(pid_t parent, int nthreads, const int ready[2])
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
	close(ready[0]);
	if (write(ready[1], "r", 1) != 1)
		_exit(1);
	close(ready[1]);
	for (;;)
		pause();
}

static int run_idle(int procs, int threads)
{
	pid_t self = getpid();
	int left = threads, ready[2];
	char byte;

	/* a group of its own: the kill at the end takes the crowd only */
	if (setpgid(0, 0) != 0)
		die_errno("setpgid");
	if (pipe(ready) != 0)
		die_errno("pipe");

	for (int i = 0; i < procs; i++) {
		int n = left > THREADS_PER_PROC ? THREADS_PER_PROC : left;
		pid_t pid = fork();

		if (pid < 0)
			die_errno("fork");
		if (pid == 0)
			crowd_child(self, n, ready);
		left -= n;
	}
	/* every child says when its threads exist: one byte each */
	close(ready[1]);
	for (int i = 0; i < procs; i++)
		if (read(ready[0], &byte, 1) != 1)
			die_errno("a crowd child died before it was ready");
	close(ready[0]);
	printf("ready procs=%d threads=%d\n", procs, threads);
	fflush(stdout);
	while (!stop)
		pause();
	signal(SIGTERM, SIG_IGN);
	kill(0, SIGKILL);
	return 0;
}

/* A ping-pong pair: two threads on one CPU, each asleep in a futex wait
 * (a semaphore) until the other posts, so that every message is a context
 * switch the deadlock sensor sees as a futex wait begun and ended. */
struct pair {
	int cpu;
	int done;  /* set by the pinger before its last post: the ponger ends */
	sem_t ping, pong;
};

static void pin(int cpu)
{
	cpu_set_t set;

	CPU_ZERO(&set);
	CPU_SET(cpu, &set);
	(void)pthread_setaffinity_np(pthread_self(), sizeof(set), &set);
}

/* The pinger alone reads stop, so that the pair cannot disagree on the
 * last round. */
static void *pinger(void *arg)
{
	struct pair *p = arg;

	pin(p->cpu);
	while (!stop) {
		sem_post(&p->ping);
		while (sem_wait(&p->pong) != 0)
			;
	}
	p->done = 1;
	sem_post(&p->ping);
	return NULL;
}

static void *ponger(void *arg)
{
	struct pair *p = arg;

	pin(p->cpu);
	for (;;) {
		while (sem_wait(&p->ping) != 0)
			;
		if (p->done)
			return NULL;
		sem_post(&p->pong);
	}
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

/* One of the storm's spawners: its share of the rate, for the storm's
 * seconds. Several, because each posix_spawn waits for its child's exec,
 * which on a busy host waits for a CPU. */
struct spawner {
	const char *prog;
	double t0;
	int rate, seconds;
	unsigned long long spawned;
};

static void *spawner(void *arg)
{
	struct spawner *s = arg;
	char *const argv[] = { (char *)s->prog, NULL };
	double t;

	while (!stop && (t = mono_s() - s->t0) < s->seconds) {
		/* keep to the rate: spawn what the clock says is due (posix_spawn:
		 * no page tables copied, the way a shell's short commands start) */
		while (s->spawned < (unsigned long long)(t * s->rate)) {
			pid_t pid;

			if (posix_spawn(&pid, s->prog, NULL, NULL, argv, environ) != 0)
				die_errno("posix_spawn");
			s->spawned++;
		}
		while (waitpid(-1, NULL, WNOHANG) > 0)
			;
		usleep(1000);
	}
	return NULL;
}

#define STORM_SPAWNERS 4

static int run_storm(int rate, int seconds, int pairs, const char *prog)
{
	long ncpu = sysconf(_SC_NPROCESSORS_ONLN);
	struct pair *ps = calloc(pairs, sizeof(*ps));
	pthread_t *ts = calloc(2 * pairs, sizeof(*ts));
	struct spawner sp[STORM_SPAWNERS];
	pthread_t spt[STORM_SPAWNERS];
	unsigned long long sw0 = host_switches(), spawned = 0;
	double t0 = mono_s(), t;

	if (!ps || !ts)
		die_errno("calloc");
	for (int i = 0; i < pairs; i++) {
		ps[i].cpu = i % ncpu;
		if (sem_init(&ps[i].ping, 0, 0) != 0 || sem_init(&ps[i].pong, 0, 0) != 0)
			die_errno("sem_init");
		CHECK(pthread_create(&ts[2 * i], NULL, pinger, &ps[i]));
		CHECK(pthread_create(&ts[2 * i + 1], NULL, ponger, &ps[i]));
	}
	for (int i = 0; i < STORM_SPAWNERS; i++) {
		sp[i] = (struct spawner){ .prog = prog, .t0 = t0, .seconds = seconds,
					  .rate = rate / STORM_SPAWNERS + (i < rate % STORM_SPAWNERS) };
		CHECK(pthread_create(&spt[i], NULL, spawner, &sp[i]));
	}
	for (int i = 0; i < STORM_SPAWNERS; i++) {
		CHECK(pthread_join(spt[i], NULL));
		spawned += sp[i].spawned;
	}
	t = mono_s() - t0;
	unsigned long long sw1 = host_switches();

	stop = 1;
	for (int i = 0; i < 2 * pairs; i++)
		CHECK(pthread_join(ts[i], NULL));
	while (waitpid(-1, NULL, 0) > 0)
		;
	free(ts);
	free(ps);
	printf("storm spawned=%llu seconds=%.1f switches_per_s=%.0f\n", spawned, t,
	       (sw1 - sw0) / t);
	return 0;
}

static void usage(void)
{
	fprintf(stderr, "usage: crowd idle --procs N --threads M\n"
			"       crowd storm --spawn-rate P --seconds S [--pairs K]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	int procs = 0, threads = 0, rate = 1000, seconds = 60, pairs = -1;
	const char *prog = "/bin/true";
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
		else if (!strcmp(argv[i], "--exec"))
			prog = argv[++i];
		else if (!strcmp(argv[i], "--pairs"))
			pairs = atoi(argv[++i]);
		else
			usage();
	}
	sigaction(SIGTERM, &sa, NULL);
	sigaction(SIGINT, &sa, NULL);
	if (!strcmp(argv[1], "idle") && procs > 0 && threads >= 0 &&
	    threads <= (long long)procs * THREADS_PER_PROC)
		return run_idle(procs, threads);
	if (pairs < 0)
		pairs = sysconf(_SC_NPROCESSORS_ONLN);
	if (!strcmp(argv[1], "storm") && rate > 0 && seconds > 0)
		return run_storm(rate, seconds, pairs, prog);
	usage();
}
