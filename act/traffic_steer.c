/* The steering programs of the traffic actions (act/traffic.c): the
 * services declared with --service, the sk_lookup program (and, for remote
 * backends, the cgroup/connect4 one) that serves their ports by weight, the
 * sockmap of the local backends' listeners, found again every second, and
 * the drain of a shifted instance's connections. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <arpa/inet.h>
#include <sys/stat.h>
#include <sys/statfs.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "act/traffic.h"
#include "act/traffic_steer.h"
#include "lib/kernel.h"
#include "lib/log.h"
#include "traffic.skel.h"

#define REFRESH_INTERVAL 1.0
#define CGROUP2_SUPER_MAGIC 0x63677270
#define CONNECT_PIN REFLEX_TRAFFIC_PIN "-connect"

/* Puts backend i's listening socket into the sockmap, through a copy of
 * its holder's fd. */
static int put_listener(struct traffic *t, const struct service *s, size_t i)
{
	uint32_t slot = s->slot + (uint32_t)i;
	struct stat st;
	int pidfd, fd = -1, own, rc;
	pid_t pid = 0;

	rc = traffic_find_holder(s->backends[i].inode, &pid, &fd);
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
	else if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.backends), &slot,
				     &(uint64_t){ (uint64_t)own }, BPF_ANY))
		rc = -errno;
	close(own);
	return rc;
}

static int write_remote_weights(struct traffic *t, const struct service *s)
{
	struct traffic_remote_key key = { .addr = s->addr, .port = htons(s->port) };
	struct traffic_remote v = { .nbackends = (uint32_t)s->n };

	for (size_t i = 0; i < s->n; i++) {
		v.addr[i] = s->backends[i].addr;
		v.port[i] = htons(s->backends[i].port);
		v.weight[i] = s->backends[i].shifted ? 0 : 1;
	}
	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.remote_services), &key, &v, BPF_ANY))
		return -errno;
	return 0;
}

int traffic_write_weights(struct traffic *t, const struct service *s)
{
	struct traffic_service v = { .slot = s->slot, .nbackends = (uint32_t)s->n };
	uint32_t port = s->port;

	if (s->remote)
		return write_remote_weights(t, s);
	for (size_t i = 0; i < s->n; i++)
		v.weight[i] = s->backends[i].shifted ? 0 : 1;
	if (bpf_map_update_elem(bpf_map__fd(t->skel->maps.services), &port, &v, BPF_ANY))
		return -errno;
	return 0;
}

void traffic_refresh_service(struct traffic *t, struct service *s)
{
	bool changed = false;
	int rc;

	if (s->remote)
		return;
	for (size_t i = 0; i < s->n; i++) {
		struct backend *b = &s->backends[i];
		uint64_t inode = traffic_listener_inode(b->port);
		uint32_t slot = s->slot + (uint32_t)i;

		if (inode == b->inode)
			continue;
		b->inode = inode;
		b->shifted = false;
		changed = true;
		if (!inode) {
			(void)bpf_map_delete_elem(bpf_map__fd(t->skel->maps.backends), &slot);
			log_warn("traffic: service %s: nothing listens on backend port %u", s->name, b->port);
		} else if ((rc = put_listener(t, s, i))) {
			log_warn("traffic: service %s: cannot take the listener on port %u: %s", s->name,
				 b->port, strerror(-rc));
		} else {
			log_info("traffic: service %s: backend :%u is in (socket %llu)", s->name, b->port,
				 (unsigned long long)inode);
		}
	}
	if (changed && (rc = traffic_write_weights(t, s)))
		log_error("traffic: service %s: cannot write its weights: %s", s->name, strerror(-rc));
}

static void on_refresh(struct ev_loop *loop, ev_timer *w, int revents)
{
	struct traffic *t = w->data;

	for (size_t i = 0; i < t->n; i++)
		traffic_refresh_service(t, &t->services[i]);
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

/* The journal shows where every shift ended: one undone at exit gets a
 * record of its own. */
static void record_exit_restore(struct journal *j, const char *host, const struct service *s,
				const struct backend *b, int err)
{
	struct decision *d = calloc(1, sizeof(*d));
	struct traffic_params p = { 0 };
	char from[TRAFFIC_ENDPOINT_MAX], to[TRAFFIC_ENDPOINT_MAX];
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
		traffic_backend_at(b, p.away_from);
	sbuf_init(&params, d->params, sizeof(d->params));
	act_traffic_restore_ops.describe(&act_traffic_restore_ops, &p, &params);
	d->outcome = err ? REFLEX_OUTCOME_FAILED : REFLEX_OUTCOME_ACTED;
	if (err)
		snprintf(d->detail, sizeof(d->detail), "reflexd stopping: service %s: writing the "
			 "weights failed (%s): %s stays shifted away from", s->name, strerror(-err),
			 traffic_backend_at(b, from));
	else if (s->remote)
		snprintf(d->detail, sizeof(d->detail), "reflexd stopping: service %s: new connections "
			 "to %s reach %s again", s->name, traffic_service_at(s, to), traffic_backend_at(b, from));
	else
		snprintf(d->detail, sizeof(d->detail), "reflexd stopping: service %s: new connections "
			 "to %s reach %s (pid %d) again", s->name, traffic_service_at(s, to), traffic_backend_at(b, from),
			 b->shifted_pid);
	log_msg(err ? LOG_ERROR : LOG_INFO, "traffic: %s", d->detail);
	if (j && journal_write(j, d))
		log_error("journal: cannot record the restore at exit: %s", journal_errmsg(j));
	free(d);
}

void traffic_close(void *state)
{
	struct traffic *t = state;

	if (!t)
		return;
	ev_timer_stop(t->loop, &t->refresh);
	for (size_t i = 0; t->skel && i < t->n; i++) {
		struct service *s = &t->services[i];
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
		err = traffic_write_weights(t, s);
		for (size_t k = 0; k < n; k++)
			record_exit_restore(t->journal, t->host, s, &undone[k], err);
	}
	/* the pins keep the programs attached: only this process's fds go */
	if (t->steer)
		bpf_link__disconnect(t->steer);
	if (t->steer_connect)
		bpf_link__disconnect(t->steer_connect);
	bpf_link__destroy(t->steer);
	bpf_link__destroy(t->steer_connect);
	traffic_bpf__destroy(t->skel);
	free(t);
}

/* The --service values (config_parse checked each) into t's services,
 * each a name and a port of its own: 0 or -EINVAL, logged. */
static int read_services(struct traffic *t, const struct strlist *specs)
{
	char err[256];

	if (specs->n > REFLEX_TRAFFIC_SERVICES_MAX) {
		log_error("traffic: at most %d services", REFLEX_TRAFFIC_SERVICES_MAX);
		return -EINVAL;
	}
	for (size_t i = 0; i < specs->n; i++) {
		struct service *s = &t->services[i];

		(void)traffic_service_parse(specs->v[i], s, err, sizeof(err));
		s->slot = (uint32_t)(i * REFLEX_TRAFFIC_BACKENDS_MAX);
		for (size_t k = 0; k < i; k++) {
			if (!strcmp(t->services[k].name, s->name) ||
			    (t->services[k].port == s->port && t->services[k].addr == s->addr)) {
				log_error("traffic: --service %s: another service has that name or port",
					  specs->v[i]);
				return -EINVAL;
			}
		}
		t->n++;
	}
	return 0;
}

/* Opens and loads the steering programs: 0 or -errno, logged. */
static int load_steering(struct traffic *t)
{
	int rc;

	t->skel = traffic_bpf__open();
	if (!t->skel) {
		rc = -errno;
		log_error("traffic: opening the steering program: %s", strerror(-rc));
		return rc;
	}
	/* draining closes sockets with the bpf_sock_destroy kfunc (6.5+);
	 * without it a shift still steers new connections */
	t->can_drain = kernel_btf_has("bpf_sock_destroy", BTF_KIND_FUNC) == 1;
	if (!t->can_drain) {
		log_warn("traffic: this kernel has no bpf_sock_destroy (Linux 6.5+): shifts steer new "
			 "connections, never drain existing ones");
		(void)bpf_program__set_autoload(t->skel->progs.drain, false);
	}
	rc = traffic_bpf__load(t->skel);
	if (rc)
		log_error("traffic: loading the steering program: %s", strerror(-rc));
	return rc;
}

int traffic_open(const struct act_env *env, void **state)
{
	const struct strlist *specs = env->services;
	struct traffic *t = NULL;
	bool remote = false;
	int rc;

	*state = NULL;
	if (!specs || !specs->n) {
		if ((unlink(REFLEX_TRAFFIC_PIN) == 0) | (unlink(CONNECT_PIN) == 0))
			log_info("traffic: no services declared: removed the steering a previous run left");
		return 0;
	}
	t = calloc(1, sizeof(*t));
	if (!t)
		return -ENOMEM;
	t->loop = env->loop;
	t->journal = env->journal;
	t->host = env->host;
	rc = read_services(t, specs);
	if (rc || (rc = load_steering(t)))
		goto cleanup;
	for (size_t i = 0; i < t->n; i++) {
		traffic_refresh_service(t, &t->services[i]);
		remote |= t->services[i].remote;
		/* a backend not listening yet still gets its weights written */
		if ((rc = traffic_write_weights(t, &t->services[i]))) {
			log_error("traffic: writing the weights: %s", strerror(-rc));
			goto cleanup;
		}
	}
	rc = attach_steering(t, remote);
	if (rc) {
		log_error("traffic: attaching the steering programs (sk_lookup to this network "
			  "namespace%s): %s", remote ? ", connect4 to the cgroup2 root" : "", strerror(-rc));
		goto cleanup;
	}
	for (size_t i = 0; i < t->n; i++) {
		char to[TRAFFIC_ENDPOINT_MAX];

		log_info("traffic: service %s: %s steered to %zu backends%s", t->services[i].name,
			 traffic_service_at(&t->services[i], to), t->services[i].n,
			 t->services[i].remote ? " at connect" : "");
	}
	ev_timer_init(&t->refresh, on_refresh, REFRESH_INTERVAL, REFRESH_INTERVAL);
	t->refresh.data = t;
	ev_timer_start(t->loop, &t->refresh);
	*state = t;
	return 0;
cleanup:
	traffic_close(t);
	return rc;
}
struct service *traffic_find_service(struct traffic *t, const char *name)
{
	for (size_t i = 0; t && i < t->n; i++)
		if (strcmp(t->services[i].name, name) == 0)
			return &t->services[i];
	return NULL;
}

int traffic_drain(struct traffic *t, pid_t pid, const struct service *s, const struct backend *b,
		  uint64_t *n)
{
	int inodes = bpf_map__fd(t->skel->maps.drain_inodes), iter = -1, rc = 0;
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
	t->skel->bss->drained = 0;
	t->skel->bss->drain_ports[0] = s->port;
	t->skel->bss->drain_ports[1] = b->port;
	it = bpf_program__attach_iter(t->skel->progs.drain, NULL);
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
	*n = t->skel->bss->drained;
cleanup:
	if (iter >= 0)
		close(iter);
	bpf_link__destroy(it);
	while (bpf_map_get_next_key(inodes, NULL, &inode) == 0)
		(void)bpf_map_delete_elem(inodes, &inode);
	return rc;
}

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
