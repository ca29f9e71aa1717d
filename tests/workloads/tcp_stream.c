/*
 * tcp_stream.c - TCP over loopback for the retransmit tests and benchmark.
 *
 * Usage:
 *   tcp_stream listen PORT [--send | --echo] [--fork-accept COMM] [--conns N] [options]
 *   tcp_stream connect PORT [--send | --rr OPS] [--conns N] [options]
 * options: --ipv6 (::1, not 127.0.0.1), --comm NAME,
 *          --seconds S (default 120: it always stops by itself),
 *          --exec-after S (then become `sleep 30`, the sockets left open),
 *          --chunk BYTES (default 4096), --interval-us US (default 2000)
 *
 * The listener accepts N connections (default 1), then serves them. Each
 * connection either sends (--send: a chunk every interval), echoes
 * what it reads (--echo), or reads and discards. `listen --fork-accept`
 * creates the listening socket in this process and accepts in a forked
 * child named COMM: the process that sends is not the one that created the
 * listener. `connect --rr OPS` runs OPS 64-byte request/response round
 * trips on one connection and prints ns_per_op=N. At the end each prints
 * cpu_ns=N, the CPU time it used.
 *
 * Once ready prints
 *   ready pid=<pid> server_pid=<pid that accepts> ports=<local ports>
 * and runs until --seconds pass (or the peer goes away, or OPS are done).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "workload.h"

#define MAX_CONNS 64

enum mode { DISCARD, SEND, ECHO };

static int port, conns = 1, seconds = 120, chunk = 4096, interval_us = 2000, exec_after;
static long rr_ops;
static enum mode mode = DISCARD;
static bool ipv6;
static const char *comm, *accept_comm;

static void usage(void)
{
	fprintf(stderr, "usage: tcp_stream listen|connect PORT [--send|--echo|--rr OPS] [--conns N] "
		"[--fork-accept COMM] [--ipv6] [--comm NAME] [--seconds S] [--exec-after S] [--chunk BYTES] "
		"[--interval-us US]\n");
	exit(2);
}

/* 127.0.0.1:port, or [::1]:port with --ipv6 */
static socklen_t loopback(struct sockaddr_in6 *a)
{
	struct sockaddr_in *a4 = (struct sockaddr_in *)a;

	memset(a, 0, sizeof(*a));
	if (ipv6) {
		a->sin6_family = AF_INET6;
		a->sin6_port = htons((uint16_t)port);
		a->sin6_addr = in6addr_loopback;
		return sizeof(*a);
	}
	a4->sin_family = AF_INET;
	a4->sin_port = htons((uint16_t)port);
	a4->sin_addr.s_addr = htonl(INADDR_LOOPBACK);
	return sizeof(*a4);
}

/* Serves fds[0..n) until the deadline: send, echo or discard. */
static void serve(int *fds, int n, double deadline)
{
	static char buf[1 << 16];
	struct pollfd p[MAX_CONNS];
	double next_send = now_ns();

	for (int i = 0; i < n; i++)
		p[i] = (struct pollfd){ .fd = fds[i], .events = POLLIN };
	double exec_at = now_ns() + exec_after * 1e9;

	while (now_ns() < deadline) {
		int timeout = mode == SEND ? interval_us / 1000 + 1 : 100;

		if (poll(p, (nfds_t)n, timeout) < 0 && errno != EINTR)
			die_errno("poll");
		for (int i = 0; i < n; i++) {
			ssize_t r;

			if (!(p[i].revents & (POLLIN | POLLHUP | POLLERR)))
				continue;
			r = read(p[i].fd, buf, sizeof(buf));
			if (r <= 0)
				return; /* the peer went away */
			if (mode == ECHO && write(p[i].fd, buf, (size_t)r) != r)
				return;
		}
		if (exec_after && now_ns() >= exec_at) {
			/* the same process becomes another program; its
			 * sockets stay open, no one sends on them */
			execl("/bin/sleep", "sleep", "30", (char *)NULL);
			die_errno("exec /bin/sleep");
		}
		if (mode == SEND && now_ns() >= next_send) {
			next_send += interval_us * 1e3;
			for (int i = 0; i < n; i++)
				if (send(p[i].fd, buf, (size_t)chunk, MSG_DONTWAIT) < 0 &&
				    errno != EAGAIN && errno != EWOULDBLOCK)
					return;
		}
	}
}

/* The CPU time this process used (user + system): what the benchmark
 * compares, as wall-clock time on a shared machine is mostly other jobs. */
static void print_cpu(void)
{
	struct rusage ru;

	if (getrusage(RUSAGE_SELF, &ru))
		die_errno("getrusage");
	printf("cpu_ns=%.0f\n", (ru.ru_utime.tv_sec + ru.ru_stime.tv_sec) * 1e9 +
	       (ru.ru_utime.tv_usec + ru.ru_stime.tv_usec) * 1e3);
}

static void print_ready(pid_t server, const int *fds, int n)
{
	printf("ready pid=%d server_pid=%d ports=", getpid(), server);
	for (int i = 0; i < n; i++) {
		struct sockaddr_in6 a; /* sin_port and sin6_port share their place */
		socklen_t len = sizeof(a);

		if (getsockname(fds[i], (struct sockaddr *)&a, &len))
			die_errno("getsockname");
		printf("%s%d", i ? "," : "", ntohs(a.sin6_port));
	}
	printf("\n");
	fflush(stdout);
}

static void do_listen(double deadline)
{
	struct sockaddr_in6 a;
	socklen_t alen = loopback(&a);
	int one = 1, lfd = socket(a.sin6_family, SOCK_STREAM, 0), fds[MAX_CONNS];
	pid_t child = 0;

	if (lfd < 0 || setsockopt(lfd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)))
		die_errno("socket");
	/* the test ports lie in the ephemeral range: another program's
	 * connection may hold this one for a moment */
	for (int tries = 0; bind(lfd, (struct sockaddr *)&a, alen); tries++) {
		if (errno != EADDRINUSE || tries == 50)
			die_errno("bind");
		usleep(100000);
	}
	if (listen(lfd, 16))
		die_errno("listen");
	if (accept_comm) {
		child = fork();
		if (child < 0)
			die_errno("fork");
		if (child) {
			print_ready(child, &lfd, 1);
			waitpid(child, NULL, 0);
			return;
		}
		/* the test kills the parent it started: the child goes with it */
		prctl(PR_SET_PDEATHSIG, SIGKILL);
		set_comm(accept_comm);
	} else {
		print_ready(getpid(), &lfd, 1);
	}
	for (int i = 0; i < conns; i++) {
		fds[i] = accept(lfd, NULL, NULL);
		if (fds[i] < 0)
			die_errno("accept");
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	serve(fds, conns, deadline);
}

/* OPS request/response round trips of 64 bytes; prints the mean. */
static void round_trips(int fd)
{
	char buf[64] = { 0 };
	double t0 = now_ns();

	for (long i = 0; i < rr_ops; i++) {
		size_t got = 0;

		if (write(fd, buf, sizeof(buf)) != (ssize_t)sizeof(buf))
			die_errno("write");
		while (got < sizeof(buf)) {
			ssize_t r = read(fd, buf + got, sizeof(buf) - got);

			if (r <= 0)
				die_errno("read");
			got += (size_t)r;
		}
	}
	printf("ops=%ld ns_per_op=%.0f\n", rr_ops, (now_ns() - t0) / (double)rr_ops);
}

static void do_connect(double deadline)
{
	struct sockaddr_in6 a;
	socklen_t alen = loopback(&a);
	int fds[MAX_CONNS], one = 1;

	for (int i = 0; i < conns; i++) {
		fds[i] = socket(a.sin6_family, SOCK_STREAM, 0);
		if (fds[i] < 0 || connect(fds[i], (struct sockaddr *)&a, alen))
			die_errno("connect");
		setsockopt(fds[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
	}
	print_ready(0, fds, conns);
	if (rr_ops)
		round_trips(fds[0]);
	else
		serve(fds, conns, deadline);
}

int main(int argc, char **argv)
{
	bool is_listen;

	if (argc < 3)
		usage();
	if (strcmp(argv[1], "listen") && strcmp(argv[1], "connect"))
		usage();
	is_listen = !strcmp(argv[1], "listen");
	port = (int)parse_long(argv[2], 1, 65535, usage);
	for (int i = 3; i < argc; i++) {
		const char *opt = argv[i], *val = i + 1 < argc ? argv[i + 1] : NULL;

		if (!strcmp(opt, "--ipv6"))
			ipv6 = true;
		else if (!strcmp(opt, "--send"))
			mode = SEND;
		else if (!strcmp(opt, "--echo"))
			mode = ECHO;
		else if (!val)
			usage();
		else if (!strcmp(opt, "--rr"))
			rr_ops = parse_long(val, 1, 1000000000, usage);
		else if (!strcmp(opt, "--conns"))
			conns = (int)parse_long(val, 1, MAX_CONNS, usage);
		else if (!strcmp(opt, "--fork-accept"))
			accept_comm = val;
		else if (!strcmp(opt, "--comm"))
			comm = val;
		else if (!strcmp(opt, "--seconds"))
			seconds = (int)parse_long(val, 1, 3600, usage);
		else if (!strcmp(opt, "--exec-after"))
			exec_after = (int)parse_long(val, 1, 3600, usage);
		else if (!strcmp(opt, "--chunk"))
			chunk = (int)parse_long(val, 1, 1 << 16, usage);
		else if (!strcmp(opt, "--interval-us"))
			interval_us = (int)parse_long(val, 100, 1000000, usage);
		else
			usage();
		if (strcmp(opt, "--send") && strcmp(opt, "--echo") && strcmp(opt, "--ipv6"))
			i++;
	}
	if (comm)
		set_comm(comm);
	signal(SIGPIPE, SIG_IGN);
	/* stops by itself even when blocked in accept() with no client */
	alarm((unsigned)seconds + 1);
	if (is_listen)
		do_listen(now_ns() + seconds * 1e9);
	else
		do_connect(now_ns() + seconds * 1e9);
	print_cpu();
	return 0;
}
