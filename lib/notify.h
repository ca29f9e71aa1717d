/* The service manager's readiness and watchdog protocol (sd_notify(3)),
 * the few lines of it reflexd needs, without libsystemd: a datagram of
 * "KEY=VALUE" lines to the AF_UNIX socket named by $NOTIFY_SOCKET. Every
 * call does nothing when reflexd was not started by systemd (or anything
 * speaking the same protocol). */
#ifndef REFLEX_LIB_NOTIFY_H
#define REFLEX_LIB_NOTIFY_H

#include <ev.h>

/* Sends the state printf-formatted ("STATUS=%s", "STOPPING=1"): 0, 0 with
 * no $NOTIFY_SOCKET, or -errno. */
int notify_send(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
/* READY=1, then WATCHDOG=1 from the loop every half of
 * $WATCHDOG_USEC when the manager asks for it: a loop that stops turning
 * stops the pings, and the manager restarts reflexd. */
void notify_ready(struct ev_loop *loop);
/* STOPPING=1, and the watchdog pings end. */
void notify_stopping(struct ev_loop *loop);

#endif
