/* traffic.shift { service = "web", drain = true } and
 * traffic.restore { service = "web" }: move a service's new connections off
 * the instance the condition is about, and back.
 *
 * A service is declared with --service web=8080:8081,8082: clients connect
 * to port 8080; the instances (backends) are whatever listens on 8081 and
 * 8082 on this host. Each backend's listening socket is found through
 * /proc/net/tcp{,6} (its inode), the process holding it (/proc/PID/fd),
 * and pidfd_getfd(2), and goes into a sockmap. The sk_lookup program in
 * bpf/traffic.bpf.c then hands each new connection to port 8080 to one of
 * them, by weight: 1 for a healthy backend, 0 for one shifted away from.
 * The instance to shift away from is the condition's target: the backend
 * whose listening socket that process holds. Backends are looked for again
 * every second, so an instance that restarts (a new socket) is picked up,
 * healthy.
 *
 * A service whose backends are elsewhere, --service api=10.96.0.10:80:
 * 10.1.0.5:8080,10.1.0.6:8080, is steered at connect(2) instead, by a
 * cgroup/connect4 program on the cgroup2 root: a connect to 10.96.0.10:80
 * goes to one of the backends by weight. The backend to shift away from
 * is named by the action (away_from = "10.1.0.5:8080", typically from the
 * condition's evidence in an act function). */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <lauxlib.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "act/act.h"
#include "act/traffic.h"
#include "lib/kernel.h"
#include "lib/log.h"
#include "sense/identity.h"
#include "bpf/traffic.h"
#include "traffic.skel.h"

#define SERVICE_NAME_MAX 32
#define REFRESH_INTERVAL 1.0
#define TCP_LISTEN 0x0A
#define CGROUP2_SUPER_MAGIC 0x63677270
#define CONNECT_PIN REFLEX_TRAFFIC_PIN "-connect"
#define ENDPOINT_MAX 24   /* "255.255.255.255:65535" */

struct backend {
	uint32_t addr;           /* remote: its IPv4 address (network order) */
	uint16_t port;
	uint64_t inode;          /* of its listening socket; 0: nothing listens */
	bool shifted;
	pid_t shifted_pid;       /* the instance shifted away from */
	uint64_t shifted_start;
};

struct service {
	char name[SERVICE_NAME_MAX];
	bool remote;             /* its backends are elsewhere: steered at connect */
	uint32_t addr;           /* remote: the address clients connect to */
	uint16_t port;
	uint32_t slot;           /* of backend 0 in the sockmap */
	size_t n;
	struct backend backends[REFLEX_TRAFFIC_BACKENDS_MAX];
};

/* One network namespace, one set of steering programs: the daemon's. */
struct traffic {
	struct ev_loop *loop;
	struct traffic_bpf *skel;
	struct bpf_link *steer, *steer_connect;
	bool can_drain;   /* the kernel has bpf_sock_destroy */
	ev_timer refresh;
	size_t n;
	struct service services[REFLEX_TRAFFIC_SERVICES_MAX];
};

static struct traffic *traffic;

struct traffic_params {
	char service[SERVICE_NAME_MAX];
	bool drain;
	/* a remote backend, "10.1.0.5:8080"; empty: the condition's target */
	char away_from[ENDPOINT_MAX];
};

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

/* "10.1.0.5:8080" (len bytes of s) into addr and port: 0, or -EINVAL. */
static int parse_addr_port(const char *s, size_t len, uint32_t *addr, uint16_t *port)
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

/* NAME=PORT:BACKEND_PORT,... or NAME=ADDR:PORT:BACKEND_ADDR:PORT,... */
static int service_parse(const char *spec, struct service *s, char *err, size_t errlen)
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
		if (!colon || parse_addr_port(eq + 1, (size_t)(colon - eq - 1), &s->addr, &s->port)) {
			snprintf(err, errlen, "the service address must be like 10.96.0.10:80");
			return -EINVAL;
		}
	}
	if ((size_t)(eq - spec) >= sizeof(s->name)) {
		snprintf(err, errlen, "a service name has at most %d characters", SERVICE_NAME_MAX - 1);
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

		if (s->remote ? parse_addr_port(p, len, &addr, &port) : parse_port(p, len, &port)) {
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

	return service_parse(spec, &s, err, errlen);
}

/* ":8081" for a local port (addr 0), "10.1.0.5:8080" for a remote one. */
static const char *endpoint(uint32_t addr, uint16_t port, char buf[ENDPOINT_MAX])
{
	char ip[INET_ADDRSTRLEN] = "";

	if (addr)
		inet_ntop(AF_INET, &addr, ip, sizeof(ip));
	snprintf(buf, ENDPOINT_MAX, "%s:%u", ip, port);
	return buf;
}

static const char *backend_at(const struct backend *b, char buf[ENDPOINT_MAX])
{
	return endpoint(b->addr, b->port, buf);
}

static const char *service_at(const struct service *s, char buf[ENDPOINT_MAX])
{
	return endpoint(s->addr, s->port, buf);
}

/* The inode of the TCP socket listening on port (any local address), from
 * this namespace's /proc/net/tcp and tcp6: 0 when nothing listens. */
static uint64_t listener_inode(uint16_t port)
{
	static const char *const tables[] = { "/proc/net/tcp", "/proc/net/tcp6" };
	unsigned long long inode;
	unsigned lport, state;
	char line[512];

	for (size_t i = 0; i < ARRAY_SIZE(tables); i++) {
		FILE *f = fopen(tables[i], "re");

		if (!f)
			continue;
		while (fgets(line, sizeof(line), f)) {
			/* sl local rem st tx:rx tr:when retrnsmt uid timeout inode */
			if (sscanf(line, " %*u: %*[0-9A-Fa-f]:%x %*s %x %*s %*s %*s %*u %*u %llu",
				   &lport, &state, &inode) == 3 &&
			    lport == port && state == TCP_LISTEN && inode) {
				fclose(f);
				return inode;
			}
		}
		fclose(f);
	}
	return 0;
}

/* The fd through which process pid holds the socket with this inode, or
 * -1. */
static int fd_of_socket(pid_t pid, uint64_t inode)
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

/* A process holding the socket with this inode, and its fd for it. */
static int find_holder(uint64_t inode, pid_t *pid, int *fd)
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
		*fd = fd_of_socket(*pid, inode);
	}
	closedir(proc);
	return *fd < 0 ? -ESRCH : 0;
}

/* Puts backend i's listening socket into the sockmap, through a copy of
 * its holder's fd. */
static int put_listener(const struct service *s, size_t i)
{
	uint32_t slot = s->slot + (uint32_t)i;
	struct stat st;
	int pidfd, fd = -1, own, rc;
	pid_t pid = 0;

	rc = find_holder(s->backends[i].inode, &pid, &fd);
	if (rc)
		return rc;
	pidfd = (int)syscall(SYS_pidfd_open, pid, 0);
	if (pidfd < 0)
		return -errno;
	own = (int)syscall(SYS_pidfd_getfd, pidfd, fd, 0);
	rc = own < 0 ? -errno : 0;
	close(pidfd);
	if (rc)
		return rc;
	/* the process may have reused that fd number since /proc was read */
	if (fstat(own, &st) || st.st_ino != s->backends[i].inode)
		rc = -ESTALE;
	else if (bpf_map_update_elem(bpf_map__fd(traffic->skel->maps.backends), &slot,
				     &(uint64_t){ (uint64_t)own }, BPF_ANY))
		rc = -errno;
	close(own);
	return rc;
}

static int write_remote_weights(const struct service *s)
{
	struct traffic_remote_key key = { .addr = s->addr, .port = htons(s->port) };
	struct traffic_remote v = { .nbackends = (uint32_t)s->n };

	for (size_t i = 0; i < s->n; i++) {
		v.addr[i] = s->backends[i].addr;
		v.port[i] = htons(s->backends[i].port);
		v.weight[i] = s->backends[i].shifted ? 0 : 1;
	}
	if (bpf_map_update_elem(bpf_map__fd(traffic->skel->maps.remote_services), &key, &v, BPF_ANY))
		return -errno;
	return 0;
}

static int write_weights(const struct service *s)
{
	struct traffic_service v = { .slot = s->slot, .nbackends = (uint32_t)s->n };
	uint32_t port = s->port;

	if (s->remote)
		return write_remote_weights(s);
	for (size_t i = 0; i < s->n; i++)
		v.weight[i] = s->backends[i].shifted ? 0 : 1;
	if (bpf_map_update_elem(bpf_map__fd(traffic->skel->maps.services), &port, &v, BPF_ANY))
		return -errno;
	return 0;
}

/* Looks for each backend's listener again. A new socket is a new instance:
 * it starts healthy. */
static void refresh_service(struct service *s)
{
	bool changed = false;
	int rc;

	if (s->remote)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct backend *b = &s->backends[i];
		uint64_t inode = listener_inode(b->port);
		uint32_t slot = s->slot + (uint32_t)i;

		if (inode == b->inode)
			continue;
		b->inode = inode;
		b->shifted = false;
		changed = true;
		if (!inode) {
			(void)bpf_map_delete_elem(bpf_map__fd(traffic->skel->maps.backends), &slot);
			log_warn("traffic: service %s: nothing listens on backend port %u", s->name, b->port);
		} else if ((rc = put_listener(s, i))) {
			log_warn("traffic: service %s: cannot take the listener on port %u: %s", s->name,
				 b->port, strerror(-rc));
		} else {
			log_info("traffic: service %s: backend :%u is in (socket %llu)", s->name, b->port,
				 (unsigned long long)inode);
		}
	}
	if (changed && (rc = write_weights(s)))
		log_error("traffic: service %s: cannot write its weights: %s", s->name, strerror(-rc));
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	for (size_t i = 0; i < traffic->n; i++)
		refresh_service(&traffic->services[i]);
}

/* Pins link at path in place of the one a previous run left: the fresh
 * program is attached before the old one goes, so the services are never
 * left unserved. */
static int pin(struct bpf_link *link, const char *path)
{
	if (unlink(path) && errno != ENOENT)
		return -errno;
	return bpf_link__pin(link, path);
}

/* The cgroup2 root: /sys/fs/cgroup on a pure cgroup2 host, its unified
 * part on a hybrid one. An fd, or -errno. */
static int cgroup2_root(void)
{
	static const char *const paths[] = { "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs st;

	for (size_t i = 0; i < ARRAY_SIZE(paths); i++)
		if (statfs(paths[i], &st) == 0 && st.f_type == CGROUP2_SUPER_MAGIC)
			return open(paths[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);
	return -ENOENT;
}

/* sk_lookup on this network namespace; with remote services, connect4 on
 * the cgroup2 root too (else a connect program a previous run left goes). */
static int attach_steering(struct traffic *t, bool remote)
{
	int netns = open("/proc/self/ns/net", O_RDONLY | O_CLOEXEC), cgroup, rc;

	if (netns < 0)
		return -errno;
	t->steer = bpf_program__attach_netns(t->skel->progs.steer, netns);
	close(netns);
	if (!t->steer)
		return -errno;
	if ((rc = pin(t->steer, REFLEX_TRAFFIC_PIN)))
		return rc;
	if (!remote) {
		(void)unlink(CONNECT_PIN);
		return 0;
	}
	cgroup = cgroup2_root();
	if (cgroup < 0)
		return cgroup;
	t->steer_connect = bpf_program__attach_cgroup(t->skel->progs.steer_connect, cgroup);
	rc = t->steer_connect ? 0 : -errno;
	close(cgroup);
	return rc ? rc : pin(t->steer_connect, CONNECT_PIN);
}

int traffic_open(struct ev_loop *loop, const struct strlist *specs)
{
	bool remote = false;
	char err[256];
	int rc;

	if (!specs->n) {
		if ((unlink(REFLEX_TRAFFIC_PIN) == 0) | (unlink(CONNECT_PIN) == 0))
			log_info("traffic: no services declared: removed the steering a previous run left");
		return 0;
	}
	if (specs->n > REFLEX_TRAFFIC_SERVICES_MAX) {
		log_error("traffic: at most %d services", REFLEX_TRAFFIC_SERVICES_MAX);
		return -EINVAL;
	}
	traffic = calloc(1, sizeof(*traffic));
	if (!traffic)
		return -ENOMEM;
	traffic->loop = loop;
	for (size_t i = 0; i < specs->n; i++) {
		struct service *s = &traffic->services[i];

		/* config_parse checked them */
		(void)service_parse(specs->v[i], s, err, sizeof(err));
		s->slot = (uint32_t)(i * REFLEX_TRAFFIC_BACKENDS_MAX);
		remote |= s->remote;
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(traffic->services[k].name, s->name) ||
			    (traffic->services[k].port == s->port && traffic->services[k].addr == s->addr)) {
				log_error("traffic: --service %s: another service has that name or port",
					  specs->v[i]);
				rc = -EINVAL;
				goto fail;
			}
		}
		traffic->n++;
	}
	traffic->skel = traffic_bpf__open();
	if (!traffic->skel) {
		rc = -errno;
		log_error("traffic: opening the steering program: %s", strerror(-rc));
		goto fail;
	}
	/* draining closes sockets with the bpf_sock_destroy kfunc (6.5+);
	 * without it a shift still steers new connections */
	traffic->can_drain = kernel_btf_has("bpf_sock_destroy", BTF_KIND_FUNC) == 1;
	if (!traffic->can_drain) {
		log_warn("traffic: this kernel has no bpf_sock_destroy (Linux 6.5+): shifts steer new "
			 "connections, never drain existing ones");
		(void)bpf_program__set_autoload(traffic->skel->progs.drain, false);
	}
	rc = traffic_bpf__load(traffic->skel);
	if (rc) {
		log_error("traffic: loading the steering program: %s", strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < traffic->n; i++) {
		refresh_service(&traffic->services[i]);
		/* a backend not listening yet still gets its weights written */
		if ((rc = write_weights(&traffic->services[i]))) {
			log_error("traffic: writing the weights: %s", strerror(-rc));
			goto fail;
		}
	}
	rc = attach_steering(traffic, remote);
	if (rc) {
		log_error("traffic: attaching the steering programs (sk_lookup to this network "
			  "namespace%s): %s", remote ? ", connect4 to the cgroup2 root" : "", strerror(-rc));
		goto fail;
	}
	for (size_t i = 0; i < traffic->n; i++) {
		char to[ENDPOINT_MAX];

		log_info("traffic: service %s: %s steered to %zu backends%s", traffic->services[i].name,
			 service_at(&traffic->services[i], to), traffic->services[i].n,
			 traffic->services[i].remote ? " at connect" : "");
	}
	ev_timer_init(&traffic->refresh, on_refresh, REFRESH_INTERVAL, REFRESH_INTERVAL);
	ev_timer_start(loop, &traffic->refresh);
	return 0;
fail:
	traffic_close(NULL, NULL);
	return rc;
}

/* The journal shows where every shift ended: one undone at exit gets a
 * record of its own. */
static void record_exit_restore(struct journal *j, const char *host, const struct service *s,
				const struct backend *b, int err)
{
	struct decision *d = calloc(1, sizeof(*d));
	struct traffic_params p = { 0 };
	char from[ENDPOINT_MAX], to[ENDPOINT_MAX];
	struct sbuf params;

	if (!d)
		return;
	uuid_v7(d->id);
	d->time_ns = clock_real_ns();
	d->mode = REFLEX_MODE_LIVE;
	str_copy(d->host, sizeof(d->host), host);
	str_copy(d->rule, sizeof(d->rule), "(exit)");
	d->condition.kind = REFLEX_COND_KIND_COUNT;
	d->condition.target.pid = b->shifted_pid;
	d->condition.target.start_time = b->shifted_start;
	str_copy(d->action, sizeof(d->action), act_traffic_restore_ops.name);
	str_copy(p.service, sizeof(p.service), s->name);
	if (s->remote)
		backend_at(b, p.away_from);
	sbuf_init(&params, d->params, sizeof(d->params));
	act_traffic_restore_ops.describe(&p, &params);
	d->outcome = err ? REFLEX_OUTCOME_FAILED : REFLEX_OUTCOME_ACTED;
	if (err)
		snprintf(d->detail, sizeof(d->detail), "reflexd stopping: service %s: writing the "
			 "weights failed (%s): %s stays shifted away from", s->name, strerror(-err),
			 backend_at(b, from));
	else if (s->remote)
		snprintf(d->detail, sizeof(d->detail), "reflexd stopping: service %s: new connections "
			 "to %s reach %s again", s->name, service_at(s, to), backend_at(b, from));
	else
		snprintf(d->detail, sizeof(d->detail), "reflexd stopping: service %s: new connections "
			 "to %s reach %s (pid %d) again", s->name, service_at(s, to), backend_at(b, from),
			 b->shifted_pid);
	log_msg(err ? LOG_ERROR : LOG_INFO, "traffic: %s", d->detail);
	if (j && journal_write(j, d))
		log_error("journal: cannot record the restore at exit: %s", journal_errmsg(j));
	free(d);
}

void traffic_close(struct journal *journal, const char *host)
{
	if (!traffic)
		return;
	ev_timer_stop(traffic->loop, &traffic->refresh);
	for (size_t i = 0; traffic->skel && i < traffic->n; i++) {
		struct service *s = &traffic->services[i];
		struct backend undone[REFLEX_TRAFFIC_BACKENDS_MAX];
		size_t n = 0;
		int err;

		for (size_t k = 0; k < s->n; k++) {
			if (s->backends[k].shifted)
				undone[n++] = s->backends[k];
			s->backends[k].shifted = false;
		}
		if (!n)
			continue;
		err = write_weights(s);
		for (size_t k = 0; k < n; k++)
			record_exit_restore(journal, host, s, &undone[k], err);
	}
	/* the pins keep the programs attached: only this process's fds go */
	if (traffic->steer)
		bpf_link__disconnect(traffic->steer);
	if (traffic->steer_connect)
		bpf_link__disconnect(traffic->steer_connect);
	bpf_link__destroy(traffic->steer);
	bpf_link__destroy(traffic->steer_connect);
	traffic_bpf__destroy(traffic->skel);
	free(traffic);
	traffic = NULL;
}

static struct service *find_service(const char *name)
{
	for (size_t i = 0; traffic && i < traffic->n; i++)
		if (strcmp(traffic->services[i].name, name) == 0)
			return &traffic->services[i];
	return NULL;
}

/* Closes the connections process pid accepted on the service's port or on
 * backend b's own: *n of them. */
static int drain(pid_t pid, const struct service *s, const struct backend *b, uint64_t *n)
{
	int inodes = bpf_map__fd(traffic->skel->maps.drain_inodes), iter = -1, rc = 0;
	char path[64], link[64], buf[64];
	struct bpf_link *it = NULL;
	unsigned long long inode;
	struct dirent *de;
	uint8_t one = 1;
	DIR *dir;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	dir = opendir(path);
	if (!dir)
		return -errno;
	while ((de = readdir(dir))) {
		ssize_t len = readlinkat(dirfd(dir), de->d_name, link, sizeof(link) - 1);

		if (len > 0 && (link[len] = '\0', sscanf(link, "socket:[%llu]", &inode) == 1))
			(void)bpf_map_update_elem(inodes, &inode, &one, BPF_ANY);
	}
	closedir(dir);
	traffic->skel->bss->drained = 0;
	traffic->skel->bss->drain_ports[0] = s->port;
	traffic->skel->bss->drain_ports[1] = b->port;
	it = bpf_program__attach_iter(traffic->skel->progs.drain, NULL);
	if (!it) {
		rc = -errno;
		goto cleanup;
	}
	iter = bpf_iter_create(bpf_link__fd(it));
	if (iter < 0) {
		rc = -errno;
		goto cleanup;
	}
	while ((rc = (int)read(iter, buf, sizeof(buf))) > 0)
		;
	rc = rc < 0 ? -errno : 0;
	*n = traffic->skel->bss->drained;
cleanup:
	if (iter >= 0)
		close(iter);
	bpf_link__destroy(it);
	while (bpf_map_get_next_key(inodes, NULL, &inode) == 0)
		(void)bpf_map_delete_elem(inodes, &inode);
	return rc;
}

static int traffic_parse(lua_State *L, int idx, void *params, char *err, size_t errlen,
			 const char *action, bool can_drain)
{
	struct traffic_params *p = params;
	int rc = 0;

	memset(p, 0, sizeof(*p));
	idx = lua_absindex(L, idx);
	lua_pushnil(L);
	while (!rc && lua_next(L, idx)) {
		const char *key = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : "";

		if (strcmp(key, "service") == 0) {
			if (lua_type(L, -1) != LUA_TSTRING || !*lua_tostring(L, -1) ||
			    strlen(lua_tostring(L, -1)) >= sizeof(p->service)) {
				snprintf(err, errlen, "%s: service must be the name of a --service, "
					 "like \"web\"", action);
				rc = -EINVAL;
			} else {
				str_copy(p->service, sizeof(p->service), lua_tostring(L, -1));
			}
		} else if (strcmp(key, "away_from") == 0) {
			uint32_t addr;
			uint16_t port;

			if (lua_type(L, -1) != LUA_TSTRING ||
			    parse_addr_port(lua_tostring(L, -1), strlen(lua_tostring(L, -1)), &addr, &port)) {
				snprintf(err, errlen, "%s: away_from must be a remote backend like "
					 "\"10.1.0.5:8080\"", action);
				rc = -EINVAL;
			} else {
				str_copy(p->away_from, sizeof(p->away_from), lua_tostring(L, -1));
			}
		} else if (can_drain && strcmp(key, "drain") == 0) {
			if (lua_type(L, -1) != LUA_TBOOLEAN) {
				snprintf(err, errlen, "%s: drain must be true or false", action);
				rc = -EINVAL;
			}
			p->drain = lua_toboolean(L, -1);
		} else {
			lua_pushvalue(L, -2);
			snprintf(err, errlen, "%s: unknown parameter '%s' (known: service, away_from%s)",
				 action, luaL_tolstring(L, -1, NULL), can_drain ? ", drain" : "");
			lua_pop(L, 2);
			rc = -EINVAL;
		}
		lua_pop(L, 1);
	}
	if (rc) {
		lua_pop(L, 1); /* the key lua_next left */
		return rc;
	}
	if (!p->service[0]) {
		snprintf(err, errlen, "%s: which service? e.g. %s { service = \"web\" }", action, action);
		return -EINVAL;
	}
	return 0;
}

static int shift_parse(lua_State *L, int idx, void *params, char *err, size_t errlen)
{
	return traffic_parse(L, idx, params, err, errlen, "traffic.shift", true);
}

static int restore_parse(lua_State *L, int idx, void *params, char *err, size_t errlen)
{
	return traffic_parse(L, idx, params, err, errlen, "traffic.restore", false);
}

static void describe(const struct traffic_params *p, struct sbuf *json)
{
	sbuf_printf(json, "{\"service\":");
	sbuf_json_str(json, p->service);
	if (p->away_from[0]) {
		sbuf_printf(json, ",\"away_from\":");
		sbuf_json_str(json, p->away_from);
	}
}

static void restore_describe(const void *params, struct sbuf *json)
{
	describe(params, json);
	sbuf_printf(json, "}");
}

static void shift_describe(const void *params, struct sbuf *json)
{
	const struct traffic_params *p = params;

	describe(p, json);
	sbuf_printf(json, ",\"drain\":%s}", p->drain ? "true" : "false");
}

/* The service the run is about, or NULL after finishing it as failed. */
static struct service *run_service(struct act_run *run)
{
	const struct traffic_params *p = (const void *)run->params;
	struct service *s = find_service(p->service);

	if (!s)
		act_end(run, REFLEX_OUTCOME_FAILED, "no service '%s' is declared (--service %s=PORT:"
		        "BACKEND_PORT,...): nothing changed", p->service, p->service);
	return s;
}

/* The healthy backends (that listen, when local), other than skip, as
 * ":8081, :8082". */
static size_t healthy(const struct service *s, const struct backend *skip, char *buf, size_t size)
{
	char name[ENDPOINT_MAX];
	struct sbuf b;
	size_t n = 0;

	sbuf_init(&b, buf, size);
	for (size_t i = 0; i < s->n; i++) {
		const struct backend *k = &s->backends[i];

		if (k != skip && (s->remote || k->inode) && !k->shifted)
			sbuf_printf(&b, "%s%s", n++ ? ", " : "", backend_at(k, name));
	}
	return n;
}

/* The backend away_from names: NULL when it names none of s's. */
static struct backend *named_backend(struct service *s, const char *away_from)
{
	uint32_t addr;
	uint16_t port;

	if (parse_addr_port(away_from, strlen(away_from), &addr, &port))
		return NULL;
	for (size_t i = 0; i < s->n; i++)
		if (s->backends[i].addr == addr && s->backends[i].port == port)
			return &s->backends[i];
	return NULL;
}

/* The backend shift_start is to move traffic from: a remote service's, as
 * away_from names it; a local service's, whose listener the condition's
 * process holds. NULL after finishing the run as failed. */
static struct backend *sick_backend(struct act_run *run, struct service *s)
{
	const struct traffic_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	char others[128];
	uint64_t start_time;

	if (s->remote) {
		struct backend *b = named_backend(s, p->away_from);

		if (!b)
			act_end(run, REFLEX_OUTCOME_FAILED, "service %s has remote backends: away_from "
			        "must name one of them ('%s' does not): nothing shifted", s->name,
			        p->away_from);
		return b;
	}
	if (p->away_from[0]) {
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s is local: the backend to shift away "
		        "from is the one the condition's process holds, not away_from", s->name);
		return NULL;
	}
	refresh_service(s);
	if (identity_start_time(t->pid, &start_time) || start_time != t->start_time) {
		act_end(run, REFLEX_OUTCOME_FAILED, "pid %d is no longer the process the condition "
		        "was about: nothing shifted", t->pid);
		return NULL;
	}
	for (size_t i = 0; i < s->n; i++)
		if (s->backends[i].inode && fd_of_socket(t->pid, s->backends[i].inode) >= 0)
			return &s->backends[i];
	healthy(s, NULL, others, sizeof(others));
	act_end(run, REFLEX_OUTCOME_FAILED, "pid %d (%s) holds none of the listeners of service %s "
	        "(%s): nothing shifted", t->pid, t->comm, s->name, others);
	return NULL;
}

static void shift_start(struct act_run *run)
{
	const struct traffic_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	struct service *s = run_service(run);
	char others[128], drained[96] = "", from[ENDPOINT_MAX], to[ENDPOINT_MAX];
	struct backend *b = s ? sick_backend(run, s) : NULL;
	uint64_t n = 0;
	int rc;

	if (!b)
		return;
	if (b->shifted) {
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: already shifted away from %s (pid %d)",
		        s->name, backend_at(b, from), b->shifted_pid);
		return;
	}
	/* never black-hole: the last healthy backend keeps its traffic */
	if (!healthy(s, b, others, sizeof(others))) {
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s: no other healthy backend %s: not "
		        "shifted away from %s, its last one", s->name, s->remote ? "is left" : "listens",
		        backend_at(b, from));
		return;
	}
	b->shifted = true;
	b->shifted_pid = t->pid;
	b->shifted_start = t->start_time;
	if ((rc = write_weights(s))) {
		b->shifted = false;
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s: writing the weights: %s", s->name,
		        strerror(-rc));
		return;
	}
	if (p->drain && s->remote)
		snprintf(drained, sizeof(drained), "; not drained: draining is for local backends");
	else if (p->drain && !traffic->can_drain)
		snprintf(drained, sizeof(drained), "; not drained: needs bpf_sock_destroy (Linux 6.5+)");
	else if (p->drain && (rc = drain(t->pid, s, b, &n)))
		snprintf(drained, sizeof(drained), "; draining its connections failed: %s", strerror(-rc));
	else if (p->drain)
		snprintf(drained, sizeof(drained), "; %llu of its connections drained",
			 (unsigned long long)n);
	if (s->remote)
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s go to %s, away "
		        "from %s%s", s->name, service_at(s, to), others, backend_at(b, from), drained);
	else
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s go to %s, away "
		        "from %s (pid %d)%s", s->name, service_at(s, to), others, backend_at(b, from), t->pid,
		        drained);
}

/* Restores the backends shifted away from the condition's process (or, for
 * a remote service, the one away_from names). */
static void restore_start(struct act_run *run)
{
	const struct traffic_params *p = (const void *)run->params;
	const struct target *t = &run->decision.condition.target;
	struct service *s = run_service(run);
	struct backend *named = s && s->remote ? named_backend(s, p->away_from) : NULL;
	char ports[128], name[ENDPOINT_MAX], to[ENDPOINT_MAX];
	struct sbuf back;
	int rc;

	if (!s)
		return;
	sbuf_init(&back, ports, sizeof(ports));
	for (size_t i = 0; i < s->n; i++) {
		struct backend *b = &s->backends[i];

		if (b->shifted && (s->remote ? b == named : b->shifted_pid == t->pid &&
				   b->shifted_start == t->start_time)) {
			b->shifted = false;
			sbuf_printf(&back, "%s%s", back.len ? ", " : "", backend_at(b, name));
		}
	}
	if (!back.len) {
		if (s->remote)
			act_end(run, REFLEX_OUTCOME_ACTED, "service %s: nothing to restore: %s is not "
			        "shifted away from", s->name, p->away_from);
		else
			act_end(run, REFLEX_OUTCOME_ACTED, "service %s: nothing to restore: no backend "
			        "is shifted away from pid %d", s->name, t->pid);
		return;
	}
	if ((rc = write_weights(s))) {
		act_end(run, REFLEX_OUTCOME_FAILED, "service %s: writing the weights: %s", s->name,
		        strerror(-rc));
		return;
	}
	if (s->remote)
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s reach %s again",
		        s->name, service_at(s, to), ports);
	else
		act_end(run, REFLEX_OUTCOME_ACTED, "service %s: new connections to %s reach %s (pid %d) "
		        "again", s->name, service_at(s, to), ports, t->pid);
}

/* Both finish within start: nothing is left running at shutdown. */
static void traffic_cancel(struct act_run *run)
{
	act_end(run, REFLEX_OUTCOME_FAILED, "reflexd stopped");
}

const struct act_ops act_traffic_restore_ops = {
	.name = "traffic.restore",
	.parse = restore_parse,
	.params_size = sizeof(struct traffic_params),
	.describe = restore_describe,
	.start = restore_start,
	.cancel = traffic_cancel,
};

const struct act_ops act_traffic_shift_ops = {
	.name = "traffic.shift",
	.parse = shift_parse,
	.params_size = sizeof(struct traffic_params),
	.describe = shift_describe,
	.start = shift_start,
	.cancel = traffic_cancel,
	.undo = &act_traffic_restore_ops,
};

const struct kernel_needs traffic_needs = {
	.kernel = "6.5 (the bpf_sock_destroy kfunc that drains; sk_lookup, iter/tcp and "
		  "bpf_sk_assign 5.9)",
	.attach = "sk_lookup on this network namespace, iter/tcp, cgroup/connect4 on the cgroup2 root",
	.progs = { BPF_PROG_TYPE_SK_LOOKUP, BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_CGROUP_SOCK_ADDR },
	.maps = { BPF_MAP_TYPE_SOCKMAP, BPF_MAP_TYPE_HASH },
	.helpers = { KERNEL_HELPER(SK_LOOKUP, sk_assign), KERNEL_HELPER(SK_LOOKUP, sk_release),
		     KERNEL_HELPER(SK_LOOKUP, get_prandom_u32), KERNEL_HELPER(KPROBE, skc_to_tcp_sock) },
	.kfuncs = { "bpf_sock_destroy" },
	.objects = { traffic_bpf__elf_bytes },
};
