/*
 * connrate.c - TCP connection setup rate on loopback, for the traffic
 * shift benchmark.
 *
 * Usage: connrate serve PORT [--comm NAME]
 *          accepts on 127.0.0.1:PORT and closes each connection at once;
 *          prints "ready pid=<pid>"
 *        connrate PORT[,PORT...] SECONDS
 *          connects to 127.0.0.1:PORT (to each port in turn) as fast as it
 *          can for SECONDS, each
 *          connection closed with a reset (no TIME_WAIT to run out of
 *          ports); prints "<connections per second> <failures> <CPU ns per
 *          connection>": the CPU time this process spent, kernel included
 *          (on loopback the SYN, and so the listener lookup, is handled in
 *          the sender's context), which other load on the machine does not
 *          inflate the way it does the rate
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include "workload.h"

static void usage(void)
{
	fprintf(stderr, "usage: connrate serve PORT [--comm NAME] | connrate PORT[,PORT...] SECONDS\n");
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
	struct sockaddr_in a[8];
	unsigned long n = 0, failed = 0, nports = 0;
	double start, end, cpu;
	struct rusage ru;

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
	for (char *p = strtok(argv[1], ","); p && nports < 8; p = strtok(NULL, ","))
		a[nports++] = loopback(parse_long(p, 1, 65535, usage));
	start = now_ns();
	end = start + (double)parse_long(argv[2], 1, 3600, usage) * 1e9;
	while (now_ns() < end) {
		int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);

		if (fd < 0)
			die_errno("socket");
		if (connect(fd, (struct sockaddr *)&a[(n + failed) % nports], sizeof(a[0])) == 0)
			n++;
		else
			failed++;
		setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof(reset));
		close(fd);
	}
	getrusage(RUSAGE_SELF, &ru);
	cpu = (double)(ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	      (double)(ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3;
	printf("%.0f %lu %.0f\n", (double)n / ((now_ns() - start) / 1e9), failed, n ? cpu / (double)n : 0);
	return 0;
}
