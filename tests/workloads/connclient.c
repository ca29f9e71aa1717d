/*
 * connclient.c - a client of a TCP service that opens new connections
 * continuously and says which instance answered each, for the traffic
 * shift tests.
 *
 * Usage: connclient PORT SECONDS [--addr ADDR] [--hold N] [--hold-ports P1,P2...]
 *                   [--timeout-ms MS] [--comm NAME]
 *   first opens N connections that it keeps (held), each told apart by the
 *   instance that answered its first line (to PORT, or in turn to each of
 *   P1, P2...); then, for SECONDS, opens a
 *   connection to ADDR:PORT (default 127.0.0.1) every 20 ms, sends a line, and reads the
 *   answer (at most MS milliseconds, default 1000).
 *
 * Prints "ready held=<name>,<name>,..." once the held connections are
 * open, then per attempt "att <start_ns> <end_ns> <name|fail:why>", and
 * "closed <index> <name> <realtime_ns>" when a held connection is closed
 * by the other side; "done" at the end. Times are CLOCK_REALTIME.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define HELD_MAX 64

static struct sockaddr_in addr = { .sin_family = AF_INET };
static long timeout_ms = 1000;

static long long realtime_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_REALTIME, &ts);
	return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* Connects and asks who answers: the fd, with the name (or fail:why) in
 * who. */
static int ask(uint16_t port, char *who, size_t size)
{
	struct sockaddr_in to = addr;
	struct timeval tv = { .tv_sec = timeout_ms / 1000, .tv_usec = timeout_ms % 1000 * 1000 };
	int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
	ssize_t n;

	if (fd < 0)
		die_errno("socket");
	setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
	setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof(tv));
	to.sin_port = htons(port);
	if (connect(fd, (struct sockaddr *)&to, sizeof(to))) {
		snprintf(who, size, "fail:connect-%s", strerrorname_np(errno));
		close(fd);
		return -1;
	}
	if (write(fd, "who\n", 4) != 4) {
		snprintf(who, size, "fail:write-%s", strerrorname_np(errno));
		close(fd);
		return -1;
	}
	n = read(fd, who, size - 1);
	if (n <= 0) {
		snprintf(who, size, "fail:%s", n == 0 ? "eof" : strerrorname_np(errno));
		close(fd);
		return -1;
	}
	who[n] = '\0';
	who[strcspn(who, "\n")] = '\0';
	return fd;
}

static void usage(void)
{
	fprintf(stderr, "usage: connclient PORT SECONDS [--addr ADDR] [--hold N] [--hold-ports P1,P2...] "
		"[--timeout-ms MS] [--comm NAME]\n");
	exit(2);
}

int main(int argc, char **argv)
{
	char names[HELD_MAX][32], who[64];
	struct pollfd held[HELD_MAX];
	uint16_t port, hold_ports[HELD_MAX];
	long seconds, nheld = 0, nports = 0;
	long long end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc < 3)
		usage();
	port = (uint16_t)parse_long(argv[1], 1, 65535, usage);
	addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	seconds = parse_long(argv[2], 1, 3600, usage);
	for (int i = 3; i < argc; i++) {
		if (strcmp(argv[i], "--hold") == 0 && i + 1 < argc)
			nheld = parse_long(argv[++i], 0, HELD_MAX, usage);
		else if (strcmp(argv[i], "--hold-ports") == 0 && i + 1 < argc)
			for (char *p = strtok(argv[++i], ","); p && nports < HELD_MAX; p = strtok(NULL, ","))
				hold_ports[nports++] = (uint16_t)parse_long(p, 1, 65535, usage);
		else if (strcmp(argv[i], "--addr") == 0 && i + 1 < argc) {
			if (inet_pton(AF_INET, argv[++i], &addr.sin_addr) != 1)
				usage();
		} else if (strcmp(argv[i], "--timeout-ms") == 0 && i + 1 < argc)
			timeout_ms = parse_long(argv[++i], 1, 60000, usage);
		else if (strcmp(argv[i], "--comm") == 0 && i + 1 < argc)
			set_comm(argv[++i]);
		else
			usage();
	}
	printf("ready held=");
	for (long i = 0; i < nheld; i++) {
		held[i].fd = ask(nports ? hold_ports[i % nports] : port, names[i], sizeof(names[i]));
		held[i].events = POLLIN;
		printf("%s%s", i ? "," : "", names[i]);
	}
	printf("\n");
	end = realtime_ns() + seconds * 1000000000LL;
	while (realtime_ns() < end) {
		long long start = realtime_ns();
		int fd = ask(port, who, sizeof(who));

		printf("att %lld %lld %s\n", start, realtime_ns(), who);
		if (fd >= 0)
			close(fd);
		/* a held connection readable means closed: the server never speaks first */
		if (nheld && poll(held, (nfds_t)nheld, 0) > 0) {
			for (long i = 0; i < nheld; i++) {
				if (held[i].fd >= 0 && held[i].revents) {
					printf("closed %ld %s %lld\n", i, names[i], realtime_ns());
					close(held[i].fd);
					held[i].fd = -1;
				}
			}
		}
		usleep(20000);
	}
	printf("done\n");
	return 0;
}
