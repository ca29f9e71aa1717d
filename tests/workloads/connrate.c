/*
 * connrate.c - TCP connection setup rate on loopback, for the traffic
 * shift benchmark.
 *
 * Usage: connrate serve PORT [--comm NAME]
 *          accepts on 127.0.0.1:PORT and closes each connection at once;
 *          prints "ready pid=<pid>"
 *        connrate PORT SECONDS
 *          connects to 127.0.0.1:PORT as fast as it can for SECONDS, each
 *          connection closed with a reset (no TIME_WAIT to run out of
 *          ports); prints "<connections per second> <failures>"
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workload.h"

static void usage(void)
{
	fprintf(stderr, "usage: connrate serve PORT [--comm NAME] | connrate PORT SECONDS\n");
	exit(2);
}

static struct sockaddr_in loopback(long port)
{
	struct sockaddr_in a = { .sin_family = AF_INET, .sin_port = htons((uint16_t)port) };

	a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return a;
}

static int serve(long port)
{
	struct sockaddr_in a = loopback(port);
	int one = 1, lfd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

	if (lfd < 0)
		die_errno("socket");
	setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
	if (bind(lfd, (struct sockaddr *)&a, sizeof(a)) || listen(lfd, 4096))
		die_errno("bind/listen");
	printf("ready pid=%d\n", getpid());
	for (;;) {
		int fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC);

		if (fd >= 0)
			close(fd);
		else if (errno != EINTR && errno != ECONNABORTED)
			die_errno("accept");
	}
}

int main(int argc, char **argv)
{
	struct linger reset = { .l_onoff = 1, .l_linger = 0 };
	struct sockaddr_in a;
	unsigned long n = 0, failed = 0;
	double start, end;

	setvbuf(stdout, NULL, _IOLBF, 0);
	if (argc >= 3 && strcmp(argv[1], "serve") == 0) {
		if (argc == 5 && strcmp(argv[3], "--comm") == 0)
			set_comm(argv[4]);
		else if (argc != 3)
			usage();
		return serve(parse_long(argv[2], 1, 65535, usage));
	}
	if (argc != 3)
		usage();
	a = loopback(parse_long(argv[1], 1, 65535, usage));
	start = now_ns();
	end = start + (double)parse_long(argv[2], 1, 3600, usage) * 1e9;
	while (now_ns() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die_errno("socket");
		if (connect(fd, (struct sockaddr *)&a, sizeof(a)) == 0)
			n++;
		else
			failed++;
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(fd);
	}
	printf("%.0f %lu\n", (double)n / ((now_ns() - start) / 1e9), failed);
	return 0;
}
