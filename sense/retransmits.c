/* Retransmit rates over a sliding window. The kernel keeps one running
 * count per (process, flow); every slot (a tenth of --retrans-window) the
 * sensor reads the table, remembers each flow's counts at the end of the
 * last ten slots, and so knows what each flow did over the window. A
 * process whose flows retransmitted at least --retrans-min times in the
 * window has a `retransmits` condition, refreshed every slot and cleared
 * when it falls below half of that. Rates and ratios are per flow, per
 * remote peer (address) and per process; the ratio is segments
 * retransmitted over data segments sent, from the socket's own counters
 * (tcp_sock) as of its last retransmit. A flow's process is the one that
 * holds its socket, found in /proc once, when the flow first appears. */
#include <arpa/inet.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/statfs.h>
#include <time.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>
#include <bpf/btf.h>

#include "lib/log.h"
#include "lib/proctable.h"
#include "lib/util.h"
#include "sense/identity.h"
#include "sense/retransmits.h"
#include "bpf/retransmits.h"
#include "retransmits.skel.h"

#define CGROUP2_SUPER_MAGIC 0x63677270
#define RETRANS_SLOTS 10  /* the window is read in this many steps */
#define RETRANS_TOP 5     /* flows and peers in the evidence */
#define RETRANS_PROCS 4096

/* A flow's running counts at the end of one slot. */
struct sample {
	__u64 retransmits;
	__u32 segs_retrans;
	__u32 segs_out;
};

struct flow {
	struct reflex_flow_key key; /* first: sorting compares it */
	struct reflex_flow k;       /* the kernel's entry, as last read */
	__u32 owner;                /* the process it belongs to; 0: not known */
	bool resolved;              /* owner looked for */
	__u64 unowned;              /* retransmits counted as having no owner */
	struct sample ring[RETRANS_SLOTS];
	unsigned age;               /* slots seen */
	bool drop;                  /* delete from the kernel and forget */
	/* over the window (or its life, when younger), set every slot */
	__u64 retransmits;
	__u32 segs_retrans, segs_out;
	uint64_t span_ns;
};

/* A process with a condition raised. */
struct proc {
	__u32 pid;
	bool seen;
	uint64_t cond_id;
	uint64_t since_ns;  /* when it began: updates keep it, so hold counts */
	struct target target;
};

struct peer {
	__u16 family;
	__u8 addr[16];
	__u64 retransmits;
	__u32 segs_retrans, segs_out;
	uint64_t span_ns;
	unsigned flows;
};

struct sense_retransmits {
	struct retransmits_bpf *skel;
	struct sensor_ring ring;
	struct ev_loop *loop;
	struct condition_sink sink;
	uint64_t window_ns, slot_ns, last_slot;
	__u64 min;
	int cgroup_fd;
	struct flow *flows, *fresh;  /* sorted by (pid, key) */
	size_t nflows, cap;          /* cap: of flows, fresh, order and peers */
	size_t *order;               /* scratch: one process's flows, ranked */
	struct peer *peers;          /* scratch: one process's peers */
	struct proctable *procs;     /* struct proc, by (pid, start_time) */
	__u64 procs_full;             /* over the threshold, but RETRANS_PROCS raised */
	__u64 no_owner;               /* retransmits of flows whose owner is not known */
	__u64 reported_no_owner, reported_procs_full;
	struct sensor_drop_counts drops; /* the kernel's */
	uint64_t reported_at;
};

static int flow_cmp(const void *a, const void *b)
{
	const struct reflex_flow_key *x = a, *y = b;

	if (x->pid != y->pid)
		return x->pid < y->pid ? -1 : 1;
	return memcmp(x, y, sizeof(*x));
}

/* flows grouped by process */
static int flow_owner_cmp(const void *a, const void *b)
{
	const struct flow *x = a, *y = b;

	if (x->owner != y->owner)
		return x->owner < y->owner ? -1 : 1;
	return flow_cmp(a, b);
}

/* The process with a condition under pid: a flow's owner and an event
 * name only the pid, and there is one such process at a time. */
static struct proc *find_proc(struct sense_retransmits *s, __u32 pid)
{
	return proctable_find(s->procs, pid, NULL);
}

static void forget_proc(struct sense_retransmits *s, struct proc *p)
{
	s->sink.clear(s->sink.ctx, p->cond_id);
	proctable_remove(s->procs, p);
}

/* Deletes the flows marked drop, from the kernel too. */
static void drop_flows(struct sense_retransmits *s)
{
	size_t n = 0;

	for (size_t i = 0; i < s->nflows; i++) {
		if (s->flows[i].drop)
			(void)bpf_map_delete_elem(bpf_map__fd(s->skel->maps.flows), &s->flows[i].key);
		else
			s->flows[n++] = s->flows[i];
	}
	s->nflows = n;
}

static int grow(struct sense_retransmits *s, size_t want)
{
	size_t cap = s->cap ? s->cap : 64;
	void *p;

	if (want <= s->cap)
		return 0;
	while (cap < want)
		cap *= 2;
	if (!(p = realloc(s->flows, cap * sizeof(*s->flows))))
		return -ENOMEM;
	s->flows = p;
	if (!(p = realloc(s->fresh, cap * sizeof(*s->fresh))))
		return -ENOMEM;
	s->fresh = p;
	if (!(p = realloc(s->order, cap * sizeof(*s->order))))
		return -ENOMEM;
	s->order = p;
	if (!(p = realloc(s->peers, cap * sizeof(*s->peers))))
		return -ENOMEM;
	s->peers = p;
	s->cap = cap;
	return 0;
}

/* Reads the kernel's flow table into s->flows, carrying each known flow's
 * history over: the count, or -errno. */
static int read_flows(struct sense_retransmits *s)
{
	int fd = bpf_map__fd(s->skel->maps.flows);
	struct reflex_flow_key key, next;
	size_t n = 0;
	int err = bpf_map_get_next_key(fd, NULL, &next);

	for (; err == 0; err = bpf_map_get_next_key(fd, &key, &next)) {
		key = next;
		if (grow(s, n + 1))
			return -ENOMEM;
		memset(&s->fresh[n], 0, sizeof(s->fresh[n]));
		s->fresh[n].key = key;
		/* deleted since get_next_key: skip it */
		if (bpf_map_lookup_elem(fd, &key, &s->fresh[n].k) == 0)
			n++;
	}
	if (errno != ENOENT)
		return -errno;
	qsort(s->fresh, n, sizeof(*s->fresh), flow_cmp);
	qsort(s->flows, s->nflows, sizeof(*s->flows), flow_cmp);
	for (size_t i = 0; i < n; i++) {
		struct flow *old = bsearch(&s->fresh[i], s->flows, s->nflows, sizeof(*s->flows), flow_cmp);

		if (old) {
			memcpy(s->fresh[i].ring, old->ring, sizeof(old->ring));
			s->fresh[i].age = old->age;
			s->fresh[i].owner = old->owner;
			s->fresh[i].resolved = old->resolved;
			s->fresh[i].unowned = old->unowned;
		}
	}
	struct flow *t = s->flows;

	s->flows = s->fresh;
	s->fresh = t;
	s->nflows = n;
	return (int)n;
}

/* A socket a new flow is on, and where that flow is in s->flows. */
struct wanted {
	__u64 inode;
	size_t flow;
};

static int pid_cmp(const void *a, const void *b)
{
	__u32 x = *(const __u32 *)a, y = *(const __u32 *)b;

	return x < y ? -1 : x > y;
}

static int wanted_cmp(const void *a, const void *b)
{
	const struct wanted *x = a, *y = b;

	return x->inode < y->inode ? -1 : x->inode > y->inode;
}

/* Gives each flow in want[0..n) whose socket process pid holds (an fd
 * "socket:[inode]") pid as its owner; with hint_only, only the flows pid
 * created. How many it gave. */
static size_t owners_in(struct sense_retransmits *s, const struct wanted *want, size_t n, pid_t pid,
			bool hint_only)
{
	char path[48], link[48];
	struct dirent *e;
	size_t found = 0;
	DIR *d;

	snprintf(path, sizeof(path), "/proc/%d/fd", pid);
	if (!(d = opendir(path)))
		return 0;
	while ((e = readdir(d))) {
		ssize_t len = readlinkat(dirfd(d), e->d_name, link, sizeof(link) - 1);
		struct wanted key;
		size_t lo = 0, hi = n;

		if (len <= 8 || memcmp(link, "socket:[", 8))
			continue;
		link[len] = 0;
		key.inode = strtoull(link + 8, NULL, 10);
		while (lo < hi) {
			size_t mid = lo + (hi - lo) / 2;

			if (want[mid].inode < key.inode)
				lo = mid + 1;
			else
				hi = mid;
		}
		for (; lo < n && want[lo].inode == key.inode; lo++) {
			struct flow *f = &s->flows[want[lo].flow];

			if (f->owner || (hint_only && f->key.pid != (__u32)pid))
				continue;
			f->owner = (__u32)pid;
			found++;
		}
	}
	closedir(d);
	return found;
}

/* Finds the process of each flow seen for the first time: the one holding
 * its socket (an accepted socket's acceptor, not its listener's creator;
 * a socket older than reflexd). The creator first, when it still holds
 * it; else one /proc walk for all of this slot's new flows (so it costs
 * only when new sockets start retransmitting). A socket no one holds any
 * more (closed) stays its creator's. */
static void resolve_owners(struct sense_retransmits *s)
{
	struct wanted *want;
	__u32 *hints;
	size_t n = 0, left = 0;
	struct dirent *e;
	DIR *d;
	__u8 one = 1;

	for (size_t i = 0; i < s->nflows; i++)
		n += !s->flows[i].resolved;
	if (!n)
		return;
	want = calloc(n, sizeof(*want));
	hints = calloc(n, sizeof(*hints));
	if (!want || !hints)
		goto cleanup;
	for (size_t i = 0, j = 0; i < s->nflows; i++) {
		if (s->flows[i].resolved)
			continue;
		hints[j] = s->flows[i].key.pid;
		want[j++] = (struct wanted){ s->flows[i].k.inode, i };
		/* a closed socket (inode 0) matches no fd */
		left += s->flows[i].k.inode != 0;
	}
	qsort(want, n, sizeof(*want), wanted_cmp);
	qsort(hints, n, sizeof(*hints), pid_cmp);
	/* each creator's fds read once */
	for (size_t i = 0; i < n && left; i++) {
		if (hints[i] && (!i || hints[i] != hints[i - 1]))
			left -= owners_in(s, want, n, (pid_t)hints[i], true);
	}
	d = left ? opendir("/proc") : NULL;
	while (d && left && (e = readdir(d))) {
		char *end;
		long pid = strtol(e->d_name, &end, 10);

		if (pid > 0 && !*end)
			left -= owners_in(s, want, n, (pid_t)pid, false);
	}
	if (d)
		closedir(d);
	for (size_t i = 0; i < n; i++) {
		struct flow *f = &s->flows[want[i].flow];

		f->resolved = true;
		if (!f->owner)
			f->owner = f->key.pid;
		/* its exit and exec are reported (the kernel added the creator) */
		if (f->owner && f->owner != f->key.pid)
			(void)bpf_map_update_elem(bpf_map__fd(s->skel->maps.procs), &f->owner, &one, BPF_ANY);
	}
cleanup:
	free(want);
	free(hints);
}

/* One slot on: what f did over the window. A flow younger than the window
 * counts from its beginning: its retransmits since the first, and the
 * socket's segment counters over its life. */
static void flow_step(struct sense_retransmits *s, struct flow *f, uint64_t now)
{
	struct sample cur = { f->k.retransmits, f->k.total_retrans, f->k.data_segs_out };
	struct sample base = { 0 };
	size_t i = f->age % RETRANS_SLOTS;
	uint64_t since = now > s->window_ns ? now - s->window_ns : 0;

	if (f->age >= RETRANS_SLOTS)
		base = f->ring[i];
	f->ring[i] = cur;
	f->age++;
	f->retransmits = cur.retransmits - base.retransmits;
	f->segs_retrans = cur.segs_retrans - base.segs_retrans;
	f->segs_out = cur.segs_out - base.segs_out;
	if (f->k.first_ns > since)
		since = f->k.first_ns;
	f->span_ns = now > since + s->slot_ns ? now - since : s->slot_ns;
	/* a whole window without one: forget it */
	f->drop = !f->retransmits && f->age > RETRANS_SLOTS;
	if (!f->owner) {
		s->no_owner += f->k.retransmits - f->unowned;
		f->unowned = f->k.retransmits;
	}
}

static double per_s(__u64 n, uint64_t span_ns)
{
	return (double)n * NSEC_PER_SEC / (double)span_ns;
}

static void format_addr(struct sbuf *b, __u16 family, const __u8 *addr, int port)
{
	char text[INET6_ADDRSTRLEN];

	if (!inet_ntop(family, addr, text, sizeof(text)))
		str_copy(text, sizeof(text), "?");
	if (port < 0)
		sbuf_printf(b, "%s", text);
	else
		sbuf_printf(b, family == AF_INET6 ? "[%s]:%d" : "%s:%d", text, port);
}

/* ,"ratio":x when anything was sent, nothing otherwise (no ratio: a rule
 * on it does not match) */
static void format_ratio(struct sbuf *b, __u32 segs_retrans, __u32 segs_out)
{
	if (segs_out)
		sbuf_printf(b, ",\"ratio\":%.4f", (double)segs_retrans / segs_out);
}

/* qsort_r orders of a process's flows g (the context), by index */
static int by_retransmits_desc(const void *a, const void *b, void *g)
{
	const struct flow *f = g;
	__u64 x = f[*(const size_t *)a].retransmits, y = f[*(const size_t *)b].retransmits;

	return x > y ? -1 : x < y;
}

static int by_peer_addr(const void *a, const void *b, void *g)
{
	const struct reflex_flow_key *x = &((struct flow *)g)[*(const size_t *)a].key;
	const struct reflex_flow_key *y = &((struct flow *)g)[*(const size_t *)b].key;

	if (x->family != y->family)
		return x->family < y->family ? -1 : 1;
	return memcmp(x->daddr, y->daddr, sizeof(x->daddr));
}

static int peer_by_retransmits_desc(const void *a, const void *b)
{
	const struct peer *x = a, *y = b;

	return x->retransmits > y->retransmits ? -1 : x->retransmits < y->retransmits;
}

/* The peers (remote addresses) of g[0..n), busiest first: how many. */
static size_t group_peers(struct sense_retransmits *s, struct flow *g, size_t n)
{
	size_t np = 0;

	for (size_t i = 0; i < n; i++)
		s->order[i] = i;
	qsort_r(s->order, n, sizeof(*s->order), by_peer_addr, g);
	for (size_t i = 0; i < n; i++) {
		const struct flow *f = &g[s->order[i]];
		struct peer *p = &s->peers[np];

		if (!f->retransmits)
			continue;
		if (!np || p[-1].family != f->key.family ||
		    memcmp(p[-1].addr, f->key.daddr, sizeof(p->addr))) {
			memset(p, 0, sizeof(*p));
			p->family = f->key.family;
			memcpy(p->addr, f->key.daddr, sizeof(p->addr));
			np++;
		}
		p = &s->peers[np - 1];
		p->retransmits += f->retransmits;
		p->segs_retrans += f->segs_retrans;
		p->segs_out += f->segs_out;
		p->flows++;
		if (f->span_ns > p->span_ns)
			p->span_ns = f->span_ns;
	}
	qsort(s->peers, np, sizeof(*s->peers), peer_by_retransmits_desc);
	return np;
}

/* The condition for one process's flows g[0..n), with retransmits totals
 * over the window. */
static void describe(struct sense_retransmits *s, struct flow *g, size_t n, __u64 retransmits,
		     uint64_t span_ns, struct condition *cond)
{
	struct sbuf ev, sum;
	__u32 segs_retrans = 0, segs_out = 0;
	size_t nflows = 0, npeers;
	char window[32];

	for (size_t i = 0; i < n; i++) {
		segs_retrans += g[i].segs_retrans;
		segs_out += g[i].segs_out;
		nflows += g[i].retransmits > 0;
	}
	sbuf_init(&ev, cond->evidence, sizeof(cond->evidence));
	sbuf_printf(&ev, "{\"rate\":%.2f", per_s(retransmits, span_ns));
	format_ratio(&ev, segs_retrans, segs_out);
	sbuf_printf(&ev, ",\"retransmits\":%llu,\"segments_out\":%u,\"segments_retransmitted\":%u,"
		    "\"window_ms\":%llu,\"cgroup_id\":%llu,\"flows_retransmitting\":%zu,\"flows\":[",
		    (unsigned long long)retransmits, segs_out, segs_retrans,
		    (unsigned long long)(span_ns / NSEC_PER_MSEC), (unsigned long long)g[0].k.cgroup_id,
		    nflows);
	for (size_t i = 0; i < n; i++)
		s->order[i] = i;
	qsort_r(s->order, n, sizeof(*s->order), by_retransmits_desc, g);
	for (size_t i = 0; i < n && i < RETRANS_TOP && g[s->order[i]].retransmits; i++) {
		const struct flow *f = &g[s->order[i]];

		sbuf_printf(&ev, "%s{\"local\":\"", i ? "," : "");
		format_addr(&ev, f->key.family, f->key.saddr, f->key.sport);
		sbuf_printf(&ev, "\",\"remote\":\"");
		format_addr(&ev, f->key.family, f->key.daddr, f->key.dport);
		sbuf_printf(&ev, "\",\"retransmits\":%llu,\"rate\":%.2f", (unsigned long long)f->retransmits,
			    per_s(f->retransmits, f->span_ns));
		format_ratio(&ev, f->segs_retrans, f->segs_out);
		sbuf_printf(&ev, "}");
	}
	/* the summary names the busiest flow's remote end */
	const struct flow *top = &g[s->order[0]];

	duration_format(span_ns, window, sizeof(window));
	sbuf_init(&sum, cond->summary, sizeof(cond->summary));
	sbuf_printf(&sum, "%.1f TCP retransmits/s", per_s(retransmits, span_ns));
	if (segs_out)
		sbuf_printf(&sum, " (%.1f%% of segments sent)", 100.0 * segs_retrans / segs_out);
	sbuf_printf(&sum, " over %s, most to ", window);
	format_addr(&sum, top->key.family, top->key.daddr, top->key.dport);
	npeers = group_peers(s, g, n);
	sbuf_printf(&ev, "],\"peers\":[");
	for (size_t i = 0; i < npeers && i < RETRANS_TOP; i++) {
		const struct peer *p = &s->peers[i];

		sbuf_printf(&ev, "%s{\"addr\":\"", i ? "," : "");
		format_addr(&ev, p->family, p->addr, -1);
		sbuf_printf(&ev, "\",\"retransmits\":%llu,\"rate\":%.2f,\"flows\":%u",
			    (unsigned long long)p->retransmits, per_s(p->retransmits, p->span_ns), p->flows);
		format_ratio(&ev, p->segs_retrans, p->segs_out);
		sbuf_printf(&ev, "}");
	}
	sbuf_printf(&ev, "]}");
}

/* Whether the process that has pid now started after first_ns (CLOCK_MONOTONIC):
 * then it is not the one that owned the socket, but a recycled pid. Its
 * start time counts in clock ticks of CLOCK_BOOTTIME, which runs ahead of
 * CLOCK_MONOTONIC by the time the host was suspended. */
static bool started_after(const struct target *t, uint64_t first_ns)
{
	struct timespec boot, mono;
	long hz = sysconf(_SC_CLK_TCK);
	uint64_t start_ns, offset;

	if (hz <= 0 || clock_gettime(CLOCK_BOOTTIME, &boot) || clock_gettime(CLOCK_MONOTONIC, &mono))
		return false;
	offset = (uint64_t)(boot.tv_sec - mono.tv_sec) * NSEC_PER_SEC + (uint64_t)boot.tv_nsec -
		 (uint64_t)mono.tv_nsec;
	start_ns = t->start_time * (NSEC_PER_SEC / (uint64_t)hz);
	/* a tick's rounding is no evidence */
	return start_ns > first_ns + offset + NSEC_PER_SEC / (uint64_t)hz;
}

/* One process's flows g[0..n): raise, refresh or clear its condition. */
static void judge(struct sense_retransmits *s, struct flow *g, size_t n, uint64_t now)
{
	struct proc *p = find_proc(s, g[0].owner);
	__u64 retransmits = 0;
	uint64_t span_ns = s->slot_ns, first_ns = UINT64_MAX;
	struct condition *cond;

	for (size_t i = 0; i < n; i++) {
		retransmits += g[i].retransmits;
		if (g[i].k.first_ns < first_ns)
			first_ns = g[i].k.first_ns;
		if (g[i].retransmits && g[i].span_ns > span_ns)
			span_ns = g[i].span_ns;
	}
	if (p)
		p->seen = true;
	if (p && 2 * retransmits < s->min) {
		forget_proc(s, p);
		return;
	}
	if (!p && retransmits < s->min)
		return;
	if (!p && proctable_count(s->procs) == RETRANS_PROCS) {
		s->procs_full++;
		return;
	}
	cond = calloc(1, sizeof(*cond));
	if (!cond)
		return;
	cond->kind = REFLEX_COND_RETRANSMITS;
	if (!p) {
		struct proc fresh = { .pid = g[0].owner, .seen = true }, *added;

		if (identity_read((pid_t)fresh.pid, &fresh.target) ||
		    started_after(&fresh.target, first_ns)) {
			/* gone (or its pid taken by another process since): its
			 * sockets' last retransmits have no one to blame */
			for (size_t i = 0; i < n; i++)
				g[i].drop = true;
			free(cond);
			return;
		}
		fresh.cond_id = condition_new_id();
		/* it began with the first retransmit in the window */
		fresh.since_ns = now - span_ns;
		cond->id = fresh.cond_id;
		cond->since_ns = fresh.since_ns;
		cond->target = fresh.target;
		describe(s, g, n, retransmits, span_ns, cond);
		log_info("retransmits in pid %u (%s): %s", fresh.pid, fresh.target.comm, cond->summary);
		added = proctable_insert(s->procs, fresh.pid, fresh.target.start_time);
		if (!added) {
			free(cond);
			return;
		}
		*added = fresh;
		s->sink.raise(s->sink.ctx, cond);
	} else {
		cond->id = p->cond_id;
		cond->since_ns = p->since_ns;
		cond->target = p->target;
		describe(s, g, n, retransmits, span_ns, cond);
		s->sink.update(s->sink.ctx, cond);
	}
	free(cond);
}

/* What could not be counted or attributed, said again whenever it grows
 * (at most once a window): the kernel's drops, then what userspace could
 * not attribute. */
static void report_drops(struct sense_retransmits *s, uint64_t now)
{
	uint64_t grew[REFLEX_RETRANS_DROPS] = { 0 }, kernel = 0;

	if (s->reported_at && now - s->reported_at < s->window_ns)
		return;
	(void)sensor_drops_report(&s->drops, grew);
	for (int i = 0; i < REFLEX_RETRANS_DROPS; i++)
		kernel += grew[i];
	if (s->no_owner > s->reported_no_owner || s->procs_full > s->reported_procs_full) {
		log_warn("retransmits: since start: %llu retransmits on sockets with no known owner, "
			 "%llu times a process over the threshold had no condition (%d conditions already)",
			 (unsigned long long)s->no_owner, (unsigned long long)s->procs_full, RETRANS_PROCS);
		sensor_drops("retransmits", s->no_owner - s->reported_no_owner +
					    s->procs_full - s->reported_procs_full);
		s->reported_no_owner = s->no_owner;
		s->reported_procs_full = s->procs_full;
	} else if (!kernel) {
		return;
	}
	s->reported_at = now;
}

static void retransmits_scan(void *state, uint64_t now)
{
	struct sense_retransmits *s = state;
	struct proctable_iter it = { 0 };
	struct proc *p;
	int n;

	if (s->last_slot && now - s->last_slot < s->slot_ns)
		return;
	s->last_slot = now;
	n = read_flows(s);
	if (n < 0) {
		log_warn("retransmits: reading the flow table: %s", strerror(-n));
		return;
	}
	while ((p = proctable_next(s->procs, &it)))
		p->seen = false;
	resolve_owners(s);
	qsort(s->flows, s->nflows, sizeof(*s->flows), flow_owner_cmp);
	for (size_t i = 0; i < s->nflows; i++)
		flow_step(s, &s->flows[i], now);
	for (size_t i = 0, j; i < s->nflows; i = j) {
		for (j = i + 1; j < s->nflows && s->flows[j].owner == s->flows[i].owner; j++)
			;
		if (s->flows[i].owner)
			judge(s, s->flows + i, j - i, now);
	}
	/* processes whose flows all went quiet */
	it = (struct proctable_iter){ 0 };
	while ((p = proctable_next(s->procs, &it)))
		if (!p->seen)
			forget_proc(s, p);
	drop_flows(s);
	report_drops(s, now);
}

/* A process with flows exited (its state goes) or exec'd (it is another
 * program now: its condition ends, and starts again under its new name if
 * it goes on retransmitting). */
static int handle_event(void *ctx, void *data, size_t len)
{
	struct sense_retransmits *s = ctx;
	struct reflex_retrans_event e;
	struct proc *p;

	if (len < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	p = find_proc(s, e.pid);
	if (p) {
		log_debug("retransmits: pid %u %s", e.pid, e.what == REFLEX_RETRANS_EXIT ? "exited" : "exec'd");
		forget_proc(s, p);
	}
	if (e.what != REFLEX_RETRANS_EXIT)
		return 0;
	for (size_t i = 0; i < s->nflows; i++)
		s->flows[i].drop = s->flows[i].owner == e.pid;
	drop_flows(s);
	return 0;
}

/* The host's cgroup2 hierarchy's root: /sys/fs/cgroup on a pure cgroup2
 * host, /sys/fs/cgroup/unified on a hybrid one; in a container, the host's
 * mounted at /host/sys/fs/cgroup first (deploy/reflexd.yaml), since its
 * own /sys/fs/cgroup is only its own cgroup. An open fd, or -errno. */
static int open_cgroup2_root(const char **path)
{
	static const char *const roots[] = { "/host/sys/fs/cgroup", "/host/sys/fs/cgroup/unified",
					     "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	struct statfs st;

	for (size_t i = 0; i < ARRAY_SIZE(roots); i++) {
		if (statfs(roots[i], &st) || st.f_type != CGROUP2_SUPER_MAGIC)
			continue;
		int fd = open(roots[i], O_RDONLY | O_DIRECTORY | O_CLOEXEC);

		*path = roots[i];
		return fd < 0 ? -errno : fd;
	}
	return -ENOENT;
}

static void retransmits_stop(void *state);

static const char *const retransmits_drops[REFLEX_RETRANS_DROPS] = {
	[REFLEX_RETRANS_DROP_FLOWS_FULL] = "retransmits not counted: flow table full (--retrans-flows)",
	[REFLEX_RETRANS_DROP_EVENTS_LOST] = "exit/exec events lost: ring buffer full",
	[REFLEX_RETRANS_DROP_NO_STORAGE] = "sockets with no owner recorded: socket storage full",
};

/* Opens, sizes, loads and attaches the programs. */
static int retransmits_load(struct sense_retransmits *s, const struct sensor_env *env)
{
	int err;

	s->skel = retransmits_bpf__open();
	if (!s->skel)
		return -errno;
	(void)bpf_map__set_max_entries(s->skel->maps.flows, (__u32)env->cfg->retrans_flows);
	err = retransmits_bpf__load(s->skel);
	if (!err)
		err = retransmits_bpf__attach(s->skel);
	if (!err)
		sensor_drops_open(&s->drops, "retransmits", bpf_map__fd(s->skel->maps.drops),
				  retransmits_drops, ARRAY_SIZE(retransmits_drops));
	if (err) {
		retransmits_bpf__destroy(s->skel);
		s->skel = NULL;
	}
	return err;
}

static void *retransmits_start(const struct sensor_env *env)
{
	struct sense_retransmits *s = calloc(1, sizeof(*s));
	const char *root = NULL;
	struct bpf_link *link;
	int err;

	if (!s)
		return NULL;
	s->cgroup_fd = -1;
	s->sink = env->sink;
	s->loop = env->loop;
	s->window_ns = env->cfg->retrans_window_ns;
	s->slot_ns = s->window_ns / RETRANS_SLOTS;
	s->min = (__u64)env->cfg->retrans_min;
	s->procs = proctable_new(sizeof(struct proc));
	if (!s->procs) {
		err = -ENOMEM;
		goto fail;
	}
	err = retransmits_load(s, env);
	if (err) {
		log_error("retransmits: loading and attaching the BPF programs (tcp_retransmit_skb, "
			  "sched_process_exit/exec): %s", strerror(-err));
		goto fail;
	}
	/* without it, a flow's owner is found in /proc only: a socket
	 * closed before its first retransmit was read goes unattributed */
	s->cgroup_fd = open_cgroup2_root(&root);
	if (s->cgroup_fd < 0) {
		log_warn("retransmits: no cgroup2 hierarchy at [/host]/sys/fs/cgroup[/unified] "
			 "(%s): sockets have no creator recorded", strerror(-s->cgroup_fd));
	} else if (!(link = bpf_program__attach_cgroup(s->skel->progs.sock_create, s->cgroup_fd))) {
		err = -errno;
		log_error("retransmits: attaching cgroup/sock_create to %s: %s", root, strerror(-err));
		goto fail;
	} else {
		s->skel->links.sock_create = link;
		log_debug("retransmits: sock_create attached to %s", root);
	}
	err = sensor_ring_open(&s->ring, s->loop, bpf_map__fd(s->skel->maps.events), handle_event, s,
			       "retransmits");
	if (err)
		goto fail;
	return s;
fail:
	retransmits_stop(s);
	errno = -err;
	return NULL;
}

static void retransmits_stop(void *state)
{
	struct sense_retransmits *s = state;

	if (!s)
		return;
	sensor_ring_close(&s->ring);
	retransmits_bpf__destroy(s->skel);
	if (s->cgroup_fd >= 0)
		close(s->cgroup_fd);
	free(s->flows);
	free(s->fresh);
	free(s->order);
	free(s->peers);
	proctable_free(s->procs);
	free(s);
}

const struct sensor sensor_retransmits = {
	.name = "retransmits",
	.kinds = 1u << REFLEX_COND_RETRANSMITS,
	.needs = {
		.kernel = "5.11 (socket storage from tracing programs)",
		.attach = "tp_btf/tcp_retransmit_skb, tp_btf/sched_process_exec and _exit, "
			  "cgroup/sock_create on the cgroup2 root",
		.progs = { BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_CGROUP_SOCK },
		.maps = { BPF_MAP_TYPE_SK_STORAGE, BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_LRU_HASH, BPF_MAP_TYPE_RINGBUF },
		.helpers = { KERNEL_HELPER(KPROBE, sk_storage_get), KERNEL_HELPER(KPROBE, skc_to_tcp_sock),
			     KERNEL_HELPER(KPROBE, get_current_cgroup_id), KERNEL_HELPER(KPROBE, ringbuf_reserve) },
		.objects = { retransmits_bpf__elf_bytes },
	},
	.start = retransmits_start,
	.scan = retransmits_scan,
	.stop = retransmits_stop,
};
