/* sd_notify(3) in a datagram: see lib/notify.h, and docs/deploy.md for
 * why not libsystemd. */
#include <errno.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include "lib/log.h"
#include "lib/notify.h"

/* One loop and one daemon per process: the ping is the loop's, not a
 * caller's to keep. */
static ev_timer notify_watchdog;

int notify_send(const char *fmt, ...)
{
	const char *path = getenv("NOTIFY_SOCKET");
	struct sockaddr_un sa = { .sun_family = AF_UNIX };
	char state[512];
	va_list ap;
	size_t len;
	int fd, n, err = 0;

	if (!path || !*path)
		return 0;
	va_start(ap, fmt);
	n = vsnprintf(state, sizeof(state), fmt, ap);
	va_end(ap);
	if (n < 0)
		return -EINVAL;
	/* a path, or '@' for Linux's abstract namespace (a leading NUL) */
	len = strlen(path);
	if ((path[0] != '/' && path[0] != '@') || len >= sizeof(sa.sun_path))
		return -EAFNOSUPPORT;
	memcpy(sa.sun_path, path, len);
	if (path[0] == '@')
		sa.sun_path[0] = '\0';
	fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
	if (fd < 0)
		return -errno;
	if (sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
		   (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
		err = -errno;
	close(fd);
	return err;
}

static void on_watchdog(struct ev_loop *loop, ev_timer *w, int revents)
{
	(void)notify_send("WATCHDOG=1");
}

/* The manager's interval for this process, in seconds, or 0: none. */
static double watchdog_interval(void)
{
	const char *usec = getenv("WATCHDOG_USEC"), *pid = getenv("WATCHDOG_PID");
	char *end;
	unsigned long long us;

	if (!usec || (pid && strtol(pid, NULL, 10) != getpid()))
		return 0;
	errno = 0;
	us = strtoull(usec, &end, 10);
	if (errno || end == usec || *end || !us)
		return 0;
	return (double)us / 1e6;
}

void notify_ready(struct ev_loop *loop)
{
	double interval = watchdog_interval();
	int err = notify_send("READY=1");

	if (err)
		log_warn("notify: telling the service manager we are ready (%s): %s",
			 getenv("NOTIFY_SOCKET"), strerror(-err));
	if (interval > 0) {
		/* half the interval, as sd_watchdog_enabled(3) advises: one late
		 * ping is not a restart */
		ev_timer_init(&notify_watchdog, on_watchdog, 0, interval / 2);
		ev_timer_again(loop, &notify_watchdog);
		log_info("notify: watchdog ping every %.3g s", interval / 2);
	}
}

void notify_stopping(struct ev_loop *loop)
{
	ev_timer_stop(loop, &notify_watchdog);
	(void)notify_send("STOPPING=1");
}
