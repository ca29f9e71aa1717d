/*
 * backend.c - one instance of a TCP service, for the traffic shift tests:
 * it answers every line it reads with its name, after taking a state lock,
 * and can be made to deadlock on that lock.
 *
 * Usage: backend NAME PORT [--addr ADDR] [--comm NAME] [--trigger FILE]
 *                [--hold SECONDS]
 *   listens on ADDR:PORT (default 127.0.0.1); a thread per connection
 *   --trigger FILE  when FILE appears, it is removed and two threads take
 *                   the state lock and a second lock in opposite orders
 *                   (ABBA): every request then waits on the state lock
 *   --hold SECONDS  the two threads give up after this long (timed locks)
 *                   and the deadlock clears; 0 (default): never
 *
 * Prints "ready pid=<pid> port=<port>" once listening, then
 * "deadlock realtime_ns=<ns>" when the cycle forms and
 * "recovered realtime_ns=<ns>" when it clears.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

static pthread_mutex_t state_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_mutex_t other_lock = PTHREAD_MUTEX_INITIALIZER;
static pthread_barrier_t formed;
static const char *name;
static const char *trigger;
static long hold_s;
static unsigned long served;

static long long realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Takes m, for hold_s seconds at most when hold_s is set: 0 when taken. */
static int take(pthread_mutex_t *m)
{
	struct timespec until;

	if (!hold_s)
		return pthread_mutex_lock(m);
	clock_gettime(CLOCK_REALTIME, &until);
	until.tv_sec += hold_s;
	return pthread_mutex_timedlock(m, &until);
}

static void *abba(void *arg)
{
	pthread_mutex_t *first = arg ? &state_lock : &other_lock;
	pthread_mutex_t *second = arg ? &other_lock : &state_lock;

	CHECK(pthread_mutex_lock(first));
	barrier_wait(&formed);
	if (take(second) == 0)
		CHECK(pthread_mutex_unlock(second));
	CHECK(pthread_mutex_unlock(first));
	return NULL;
}

static void *watch_trigger(void *arg)
{
	pthread_t t[2];

	(void)arg;
	for (;;) {
		usleep(20000);
		if (unlink(trigger))
			continue;
		CHECK(pthread_barrier_init(&formed, NULL, 3));
		CHECK(pthread_create(&t[0], NULL, abba, (void *)1));
		CHECK(pthread_create(&t[1], NULL, abba, NULL));
		barrier_wait(&formed);
		printf("deadlock realtime_ns=%lld\n", realtime_ns());
		CHECK(pthread_join(t[0], NULL));
		CHECK(pthread_join(t[1], NULL));
		printf("recovered realtime_ns=%lld\n", realtime_ns());
		CHECK(pthread_barrier_destroy(&formed));
	}
	return NULL;
}

static void *serve(void *arg)
{
	int fd = (int)(long)arg;
	char buf[256], reply[64];
	int len = snprintf(reply, sizeof(reply), "%s\n", name);

	while (read(fd, buf, sizeof(buf)) > 0) {
		CHECK(pthread_mutex_lock(&state_lock));
		served++;
		CHECK(pthread_mutex_unlock(&state_lock));
		if (write(fd, reply, (size_t)len) != len)
			break;
	}
	close(fd);
	return NULL;
}

static void usage(void)
{
	fprintf(stderr, "usage: backend NAME PORT [--addr ADDR] [--comm NAME] [--trigger FILE] "
		"[--hold SECONDS]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	struct sockaddr_in addr = { .sin_family = AF_INET };
	const char *comm = NULL, *ip = "127.0.0.1";
	pthread_attr_t detached;
	pthread_t t;
	int one = 1, lfd;
	long port;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		usage();
	name = argv[1];
	port = parse_long(argv[2], 1, 65535, usage);
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc)
			comm = argv[++i];
		else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc)
			ip = argv[++i];
		else if (strcmp(argv[i], "--trigger") == 0 && i + 1 < argc)
			trigger = argv[++i];
		else if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
			hold_s = parse_long(argv[++i], 0, 3600, usage);
		else
			usage();
	}
	if (comm)
		set_comm(comm);
	lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	if (lfd < 0)
		die_errno("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	addr.sin_port = htons((uint16_t)port);
	if (inet_pton(AF_INET, ip, &addr.sin_addr) != 1)
		usage();
	if (bind(lfd, (struct sockaddr *)&addr, sizeof(addr)) || listen(lfd, 1024))
		die_errno("bind/listen");
	CHECK(pthread_attr_init(&detached));
	CHECK(pthread_attr_setdetachstate(&detached, PTHREAD_CREATE_DETACHED));
	if (trigger)
		CHECK(pthread_create(&t, &detached, watch_trigger, NULL));
	printf("ready pid=%d port=%ld\n", getpid(), port);
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED)
				continue;
			die_errno("accept");
		}
		if (pthread_create(&t, &detached, serve, (void *)(long)fd))
			close(fd);
	}
}
