/* The services' backends (act/traffic_steer.h): a --service value read
 * into a service, endpoints as text, and the local backends' listening
 * sockets, found through sock_diag (their inode) and the process holding
 * one (/proc/PID/fd). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <linux/inet_diag.h>
#include <linux/netlink.h>
#include <linux/sock_diag.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "act/traffic.h"
#include "act/traffic_steer.h"

#define TCP_LISTEN 0x0A

static int parse_port(const char *s, size_t len, uint16_t *port)
{
	unsigned long v = 0;

	if (!len || len > 5)
		return -EINVAL;
	for (size_t i = 0; i < len; i++) {
		if (s[i] < '0' || s[i] > '9')
			return -EINVAL;
		v = v * 10 + (unsigned long)(s[i] - '0');
	}
	if (!v || v > 65535)
		return -EINVAL;
	*port = (uint16_t)v;
	return 0;
}

int traffic_endpoint_parse(const char *s, size_t len, uint32_t *addr, uint16_t *port)
{
	const char *colon = memchr(s, ':', len);
	char ip[INET_ADDRSTRLEN];
	struct in_addr a;

	if (!colon || (size_t)(colon - s) >= sizeof(ip))
		return -EINVAL;
	memcpy(ip, s, (size_t)(colon - s));
	ip[colon - s] = '\0';
	if (inet_pton(AF_INET, ip, &a) != 1 || parse_port(colon + 1, len - (size_t)(colon - s) - 1, port))
		return -EINVAL;
	*addr = a.s_addr;
	return 0;
}

int traffic_service_parse(const char *spec, struct service *s, char *err, size_t errlen)
{
	const char *eq = strchr(spec, '='), *colon = eq ? strchr(eq, ':') : NULL, *p;

	memset(s, 0, sizeof(*s));
	if (!eq || !colon || eq == spec) {
		snprintf(err, errlen, "want NAME=PORT:BACKEND_PORT,BACKEND_PORT..., e.g. web=8080:8081,8082, "
			 "or NAME=ADDR:PORT:BACKEND_ADDR:PORT,... for remote backends");
		return -EINVAL;
	}
	/* an address before the port: a remote service */
	s->remote = memchr(eq + 1, '.', (size_t)(colon - eq - 1)) != NULL;
	if (s->remote) {
		colon = strchr(colon + 1, ':');
		if (!colon || traffic_endpoint_parse(eq + 1, (size_t)(colon - eq - 1), &s->addr, &s->port)) {
			snprintf(err, errlen, "the service address must be like 10.96.0.10:80");
			return -EINVAL;
		}
	}
	if ((size_t)(eq - spec) >= sizeof(s->name)) {
		snprintf(err, errlen, "a service name has at most %d characters", TRAFFIC_SERVICE_NAME_MAX - 1);
		return -EINVAL;
	}
	memcpy(s->name, spec, (size_t)(eq - spec));
	if (!s->remote && parse_port(eq + 1, (size_t)(colon - eq - 1), &s->port)) {
		snprintf(err, errlen, "the service port must be a number from 1 to 65535");
		return -EINVAL;
	}
	for (p = colon + 1;; p++) {
		size_t len = strcspn(p, ","), i;
		uint32_t addr = 0;
		uint16_t port;

		if (s->remote ? traffic_endpoint_parse(p, len, &addr, &port) : parse_port(p, len, &port)) {
			snprintf(err, errlen, "'%.*s' is not a backend %s", (int)len, p,
				 s->remote ? "address like 10.1.0.5:8080" : "port (1 to 65535)");
			return -EINVAL;
		}
		for (i = 0; i < s->n && (s->backends[i].port != port || s->backends[i].addr != addr); i++)
			;
		if (i < s->n) {
			snprintf(err, errlen, "backend '%.*s' is given twice", (int)len, p);
			return -EINVAL;
		}
		if (s->n == REFLEX_TRAFFIC_BACKENDS_MAX) {
			snprintf(err, errlen, "at most %d backends a service", REFLEX_TRAFFIC_BACKENDS_MAX);
			return -EINVAL;
		}
		s->backends[s->n].addr = addr;
		s->backends[s->n++].port = port;
		p += len;
		if (!*p)
			break;
	}
	if (s->n < 2) {
		snprintf(err, errlen, "a service needs at least two backends to shift between");
		return -EINVAL;
	}
	return 0;
}

int traffic_service_check(const char *spec, char *err, size_t errlen)
{
	struct service s;

	return traffic_service_parse(spec, &s, err, errlen);
}

/* ":8081" for a local port (addr 0), "10.1.0.5:8080" for a remote one. */
static const char *endpoint(uint32_t addr, uint16_t port, char buf[TRAFFIC_ENDPOINT_MAX])
{
	char ip[INET_ADDRSTRLEN] = "";

	if (addr)
		inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(buf, TRAFFIC_ENDPOINT_MAX, "%s:%u", ip, port);
	return buf;
}

const char *traffic_backend_at(const struct backend *b, char buf[TRAFFIC_ENDPOINT_MAX])
{
	return endpoint(b->addr, b->port, buf);
}

const char *traffic_service_at(const struct service *s, char buf[TRAFFIC_ENDPOINT_MAX])
{
	return endpoint(s->addr, s->port, buf);
}

/* The inode of the TCP socket of family listening on port (any local
 * address), asked of sock_diag for listening sockets only: the kernel
 * walks its listening table, not every connection on the host as
 * /proc/net/tcp does. 0 when nothing listens (or the kernel cannot say). */
static uint64_t family_listener(int family, uint16_t port)
{
	struct {
		struct nlmsghdr nlh;
		struct inet_diag_req_v2 r;
	} req = {
		.nlh = { .nlmsg_len = sizeof(req), .nlmsg_type = SOCK_DIAG_BY_FAMILY,
			 .nlmsg_flags = NLM_F_REQUEST | NLM_F_DUMP },
		.r = { .sdiag_family = (__u8)family, .sdiag_protocol = IPPROTO_TCP,
		       .idiag_states = 1u << TCP_LISTEN },
	};
	char buf[16384] __attribute__((aligned(NLMSG_ALIGNTO)));
	uint64_t inode = 0;
	bool done = false;
	int fd = socket(AF_NETLINK, SOCK_DGRAM | SOCK_CLOEXEC, NETLINK_SOCK_DIAG);

	if (fd < 0)
		return 0;
	if (send(fd, &req, sizeof(req), 0) != (ssize_t)sizeof(req))
		done = true;
	while (!done && !inode) {
		ssize_t n = recv(fd, buf, sizeof(buf), 0);
		const struct nlmsghdr *h = (const struct nlmsghdr *)buf;

		if (n <= 0)
			break;
		for (; !done && !inode && NLMSG_OK(h, n); h = NLMSG_NEXT(h, n)) {
			const struct inet_diag_msg *m = NLMSG_DATA(h);

			if (h->nlmsg_type == NLMSG_DONE || h->nlmsg_type == NLMSG_ERROR)
				done = true;
			else if (ntohs(m->id.idiag_sport) == port && m->idiag_state == TCP_LISTEN)
				inode = m->idiag_inode;
		}
	}
	close(fd);
	return inode;
}

uint64_t traffic_listener_inode(uint16_t port)
{
	uint64_t inode = family_listener(AF_INET, port);

	return inode ? inode : family_listener(AF_INET6, port);
}

int traffic_fd_of_socket(pid_t pid, uint64_t inode)
{
	char path[64], link[64], want[64];
	struct dirent *de;
	DIR *dir;
	int fd = -1;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	snprintf(want, sizeof(want), "socket:[%llu]", (unsigned long long)inode);
	dir = opendir(path);
	if (!dir)
		return -1;
	while (fd < 0 && (de = readdir(dir))) {
		ssize_t n = readlinkat(dirfd(dir), de->d_name, link, sizeof(link) - 1);

		if (n > 0 && (link[n] = '\0', strcmp(link, want) == 0))
			fd = atoi(de->d_name);
	}
	closedir(dir);
	return fd;
}

int traffic_find_holder(uint64_t inode, pid_t *pid, int *fd)
{
	DIR *proc = opendir("/proc");
	struct dirent *de;

	if (!proc)
		return -errno;
	*fd = -1;
	while (*fd < 0 && (de = readdir(proc))) {
		if (de->d_name[0] < '1' || de->d_name[0] > '9')
			continue;
		*pid = atoi(de->d_name);
		*fd = traffic_fd_of_socket(*pid, inode);
	}
	closedir(proc);
	return *fd < 0 ? -ESRCH : 0;
}
