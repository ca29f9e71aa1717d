/* The services traffic.shift and traffic.restore steer (act/traffic.c):
 * a --service value read into a service and its backends, endpoints as
 * text, and the listening sockets that are a local service's backends
 * (act/traffic_backends.c), then the steering programs that serve them
 * (act/traffic_steer.c). */
#ifndef REFLEX_ACT_TRAFFIC_STEER_H
#define REFLEX_ACT_TRAFFIC_STEER_H

#include <ev.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

#include "act/actions.h"
#include "bpf/traffic.h"

struct backend {
	uint32_t addr;           /* remote: its IPv4 address (network order) */
	uint16_t port;
	uint64_t inode;          /* of its listening socket; 0: nothing listens */
	bool shifted;
	pid_t shifted_pid;       /* the instance shifted away from */
	uint64_t shifted_start;
};

struct service {
	char name[TRAFFIC_SERVICE_NAME_MAX];
	bool remote;             /* its backends are elsewhere: steered at connect */
	uint32_t addr;           /* remote: the address clients connect to */
	uint16_t port;
	uint32_t slot;           /* of backend 0 in the sockmap */
	size_t n;
	struct backend backends[REFLEX_TRAFFIC_BACKENDS_MAX];
};

/* One network namespace, one set of steering programs: what the traffic
 * actions' open makes (NULL when no service is declared). */
struct traffic {
	struct ev_loop *loop;
	struct journal *journal; /* close records the shifts it undoes here */
	const char *host;
	struct traffic_bpf *skel;
	struct bpf_link *steer, *steer_connect;
	bool can_drain;   /* the kernel has bpf_sock_destroy */
	ev_timer refresh;
	size_t n;
	struct service services[REFLEX_TRAFFIC_SERVICES_MAX];
};

/* act/traffic_backends.c */

/* NAME=PORT:BACKEND_PORT,... or NAME=ADDR:PORT:BACKEND_ADDR:PORT,... into
 * s: 0, or -EINVAL with the reason in err. */
int traffic_service_parse(const char *spec, struct service *s, char *err, size_t errlen);
/* ":8081" for a local backend, "10.1.0.5:8080" for a remote one; the
 * address clients connect to, alike. */
const char *traffic_backend_at(const struct backend *b, char buf[TRAFFIC_ENDPOINT_MAX]);
const char *traffic_service_at(const struct service *s, char buf[TRAFFIC_ENDPOINT_MAX]);
/* The inode of the TCP socket listening on port, IPv4 or IPv6: 0 when
 * nothing listens. */
uint64_t traffic_listener_inode(uint16_t port);
/* The fd through which process pid holds the socket with this inode, or
 * -1. */
int traffic_fd_of_socket(pid_t pid, uint64_t inode);
/* A process holding the socket with this inode, and its fd for it: 0, or
 * -errno (-ESRCH: none). */
int traffic_find_holder(uint64_t inode, pid_t *pid, int *fd);

/* act/traffic_steer.c */

/* The ops' open and close (act/act.h): attaches the steering programs for
 * env->services (*state: NULL with none declared, after removing a
 * steering program a previous run left); close undoes every shift, each
 * recorded, and lets go, leaving the programs pinned at
 * REFLEX_TRAFFIC_PIN so the ports stay served while reflexd is away. */
int traffic_open(const struct act_env *env, void **state);
void traffic_close(void *state);
/* The declared service named so, or NULL (t may be NULL). */
struct service *traffic_find_service(struct traffic *t, const char *name);
/* Writes s's weights (0 for a shifted backend) where its program reads
 * them: 0 or -errno. */
int traffic_write_weights(struct traffic *t, const struct service *s);
/* Looks for each backend's listener again. A new socket is a new
 * instance: it starts healthy. */
void traffic_refresh_service(struct traffic *t, struct service *s);
/* Closes the connections process pid accepted on the service's port or on
 * backend b's own: *n of them. 0 or -errno. */
int traffic_drain(struct traffic *t, pid_t pid, const struct service *s, const struct backend *b,
		  uint64_t *n);

#endif
