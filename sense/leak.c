/* Leaks, judged by trend. Every --leak-window/20 the sensor reads each
 * process's counters from the BPF map (one batched lookup per 256
 * processes), appends a sample of its resident memory (file + anon +
 * shmem pages) and of its mapped memory (private writable mappings, as
 * heaps grow by brk, mmap and mremap), and asks leak_trend_judge
 * whether either grows with no plateau. A process's state lives as long as
 * its entry in the map, which the kernel side drops at exit and exec.
 *
 * The first time a process is judged leaking, its glibc malloc/free calls
 * are traced for --leak-attribution (one process at a time): a second of
 * CPU baseline, then uprobes; the sites holding the most outstanding bytes
 * go into the condition's evidence, with what the tracing cost.
 *
 * A leak's evidence also says when it meets the OOM killer at its rate:
 * the tightest memory limit over the process's cgroup and its ancestors
 * (v2 memory.max, v1 memory.limit_in_bytes), or the host's MemAvailable. */
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <linux/magic.h>
#include <sys/vfs.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/log.h"
#include "lib/proctable.h"
#include "lib/util.h"
#include "sense/identity.h"
#include "sense/leak.h"
#include "sense/leak_trend.h"
#include "sense/rss.h"
#include "sense/symbols.h"
#include "bpf/allocs.h"
#include "bpf/leak.h"
#include "bpf/rss.h"
#include "allocs.skel.h"
#include "leak.skel.h"

#define SAMPLES_PER_WINDOW 20
#define RING_CAP 32        /* > SAMPLES_PER_WINDOW: the window plus slack */
#define BATCH 256          /* processes per map lookup */
#define TOP_SITES 5
#define BASELINE_NS NSEC_PER_SEC
#define ATTR_LINKS 7

struct point {
	uint64_t t_ns;
	double rss, mapped;
};

struct proc {
	uint32_t pid;
	uint64_t start_ns;
	struct reflex_leak_proc last;
	struct point ring[RING_CAP];
	size_t head, n;
	bool seen;
	/* the condition, while raised */
	uint64_t cond_id;
	struct target target;
	uint64_t since_ns;
	double since_bytes;
	bool on_mapped;          /* judged on mapped memory, not resident */
	struct leak_verdict verdict;
	char *attribution;       /* evidence.attribution (JSON), once started */
};

enum attr_phase { ATTR_IDLE, ATTR_BASELINE, ATTR_TRACING };

/* The one attribution in progress. */
struct attribution {
	enum attr_phase phase;
	uint32_t pid;
	uint64_t start_ns;
	uint64_t phase_ns;
	unsigned long long ticks;
	double cpu_before;
	char libc[320];
	struct allocs_bpf *skel;
	struct bpf_link *links[ATTR_LINKS];
	int nlinks;
};

/* What a leaking process runs out of first: a cgroup's limit (the one of
 * its own and its ancestors with the least left under it), or the host. */
struct oom_limit {
	const char *by;          /* "cgroup" or "host" */
	char cgroup[256];        /* the cgroup's path, for "cgroup" */
	const char *file;        /* the limit read: memory.max, memory.limit_in_bytes, MemAvailable */
	double limit_bytes;      /* the limit, or the host's MemTotal */
	double free_bytes;       /* what is left under it */
};

struct sense_leak {
	struct leak_bpf *skel;
	struct rss_bpf *rss;     /* the rss_stat program, shared with the memory reflex */
	/* the cgroup mounts that hold memory limits ("" where none) */
	char cgroup2_root[32], memory_v1_root[40];
	struct condition_sink sink;
	uint64_t window_ns, sample_ns, attribution_ns;
	double min_rate;
	uint64_t next_sample;
	struct proctable *procs; /* struct proc, by (pid, start_ns) */
	struct sensor_drop_counts drops;
	struct attribution attr;
	__u32 keys[BATCH];
	struct reflex_leak_proc vals[BATCH];
};

static void format_bytes(double b, char *buf, size_t size)
{
	static const char *const units[] = { "B", "KiB", "MiB", "GiB", "TiB" };
	size_t u = 0;

	while (fabs(b) >= 1024 && u + 1 < ARRAY_SIZE(units)) {
		b /= 1024;
		u++;
	}
	snprintf(buf, size, u && fabs(b) < 10 ? "%.1f %s" : "%.0f %s", b, units[u]);
}

static int cpu_ticks(uint32_t pid, unsigned long long *ticks)
{
	char path[64], buf[1024], *p;
	unsigned long long ut, st;

	snprintf(path, sizeof(path), "/proc/%u/stat", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -ESRCH;
	p = strrchr(buf, ')');
	/* fields 3..15 after ") ": state ... utime stime */
	if (!p || sscanf(p + 2, "%*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu", &ut, &st) != 2)
		return -EIO;
	*ticks = ut + st;
	return 0;
}

static int64_t member_bytes(const struct proc *p, int m)
{
	return p->last.rss[m];
}

static const struct point *point_at(const struct proc *p, size_t i)
{
	return &p->ring[(p->head + RING_CAP - p->n + i) % RING_CAP];
}

/* The first sample of the window ending at the last one. */
static const struct point *window_start(const struct sense_leak *s, const struct proc *p)
{
	uint64_t last = point_at(p, p->n - 1)->t_ns;

	for (size_t i = 0; i < p->n; i++)
		if (point_at(p, i)->t_ns + s->window_ns >= last)
			return point_at(p, i);
	return point_at(p, p->n - 1);
}

/* The first of roots that is a filesystem of type magic, into root. */
static void find_root(const char *const *roots, size_t n, long magic, char *root, size_t size)
{
	struct statfs st;

	for (size_t i = 0; i < n; i++)
		if (!statfs(roots[i], &st) && st.f_type == magic) {
			snprintf(root, size, "%s", roots[i]);
			return;
		}
	root[0] = '\0';
}

/* The cgroup2 mount (/sys/fs/cgroup, or its unified part on a hybrid host)
 * and v1's memory controller mount, the host's first in a container
 * (deploy/reflexd.yaml mounts them under /host). */
static void find_cgroup_roots(struct sense_leak *s)
{
	static const char *const v2[] = { "/host/sys/fs/cgroup", "/host/sys/fs/cgroup/unified",
					  "/sys/fs/cgroup", "/sys/fs/cgroup/unified" };
	static const char *const v1[] = { "/host/sys/fs/cgroup/memory", "/sys/fs/cgroup/memory" };

	find_root(v2, ARRAY_SIZE(v2), CGROUP2_SUPER_MAGIC, s->cgroup2_root, sizeof(s->cgroup2_root));
	find_root(v1, ARRAY_SIZE(v1), CGROUP_SUPER_MAGIC, s->memory_v1_root, sizeof(s->memory_v1_root));
}

/* A byte count from a cgroup file: -ERANGE for "max" (no limit). */
static int read_bytes(const char *dir, const char *file, double *v)
{
	char path[512], buf[32], *end;

	snprintf(path, sizeof(path), "%s/%s", dir, file);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return -ENOENT;
	if (!strncmp(buf, "max", 3))
		return -ERANGE;
	*v = strtod(buf, &end);
	return end == buf ? -EINVAL : 0;
}

/* Lowers o to the tightest limit on cgroup (a path under root) and its
 * ancestors up to the root, which has none. */
static void cgroup_limits(const char *root, const char *cgroup, const char *limit_file,
			  const char *usage_file, struct oom_limit *o)
{
	char dir[512], *slash;
	size_t base = strlen(root);
	double limit, used;

	if (!root[0] || strstr(cgroup, ".."))
		return;
	snprintf(dir, sizeof(dir), "%s%s", root, cgroup);
	while (strlen(dir) > base) {
		if (!read_bytes(dir, limit_file, &limit) && !read_bytes(dir, usage_file, &used) &&
		    limit - used < o->free_bytes) {
			o->by = "cgroup";
			snprintf(o->cgroup, sizeof(o->cgroup), "%s", dir[base] ? dir + base : "/");
			o->file = limit_file;
			o->limit_bytes = limit;
			o->free_bytes = limit - used;
		}
		slash = strrchr(dir + base, '/');
		if (!slash)
			break;
		*slash = '\0';
	}
}

/* The limit pid meets first: the host's available memory, or a cgroup's
 * limit with less left under it. -errno when even the host's is unknown. */
static int oom_limit_find(const struct sense_leak *s, uint32_t pid, struct oom_limit *o)
{
	char path[64], buf[4096], *line, *save = NULL, *p;
	double total = -1, avail = -1;

	if (read_file("/proc/meminfo", buf, sizeof(buf)) < 0)
		return -EIO;
	if ((p = strstr(buf, "MemTotal:")))
		total = strtod(p + strlen("MemTotal:"), NULL) * 1024;
	if ((p = strstr(buf, "MemAvailable:")))
		avail = strtod(p + strlen("MemAvailable:"), NULL) * 1024;
	if (total < 0 || avail < 0)
		return -EIO;
	*o = (struct oom_limit){ .by = "host", .file = "MemAvailable", .limit_bytes = total,
				 .free_bytes = avail };
	snprintf(path, sizeof(path), "/proc/%u/cgroup", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return 0;
	/* "0::/path" (v2), "4:memory:/path" or "4:cpu,memory:/path" (v1) */
	for (line = strtok_r(buf, "\n", &save); line; line = strtok_r(NULL, "\n", &save)) {
		char *controllers = strchr(line, ':'), *cgroup = controllers ? strchr(controllers + 1, ':') : NULL;

		if (!cgroup)
			continue;
		*cgroup++ = '\0';
		controllers++;
		if (!strcmp(line, "0") && !*controllers)
			cgroup_limits(s->cgroup2_root, cgroup, "memory.max", "memory.current", o);
		else if (strstr(controllers, "memory"))
			cgroup_limits(s->memory_v1_root, cgroup, "memory.limit_in_bytes",
				      "memory.usage_in_bytes", o);
	}
	return 0;
}

/* The condition's summary and evidence, from p's latest samples. */
static void describe(const struct sense_leak *s, const struct proc *p, struct condition *cond)
{
	const struct point *last = point_at(p, p->n - 1), *first = window_start(s, p);
	double now_bytes = p->on_mapped ? last->mapped : last->rss;
	char grew[32], rate[32], took[32], eta_text[32];
	struct sbuf sum, ev;
	struct oom_limit oom;
	double eta = NAN;

	cond->kind = REFLEX_COND_LEAK;
	cond->id = p->cond_id;
	cond->target = p->target;
	cond->since_ns = p->since_ns;
	format_bytes(now_bytes - p->since_bytes, grew, sizeof(grew));
	format_bytes(p->verdict.rate_bps, rate, sizeof(rate));
	duration_format(last->t_ns - p->since_ns, took, sizeof(took));
	sbuf_init(&sum, cond->summary, sizeof(cond->summary));
	sbuf_printf(&sum, "%s grew %s in %s (%s/s), no plateau", p->on_mapped ? "mapped memory" : "rss",
		    grew, took, rate);
	if (!oom_limit_find(s, p->pid, &oom))
		eta = leak_trend_eta_ms(oom.free_bytes, p->verdict.rate_bps);
	if (!isnan(eta)) {
		duration_format((uint64_t)eta * NSEC_PER_MSEC, eta_text, sizeof(eta_text));
		sbuf_printf(&sum, "; out of memory in %s (%s%s%s)", eta_text, oom.by,
			    *oom.cgroup ? " " : "", oom.cgroup);
	}
	sbuf_init(&ev, cond->evidence, sizeof(cond->evidence));
	sbuf_printf(&ev, "{\"rate_bps\":%.0f,\"rss_bytes\":%.0f,\"signal\":\"%s\",\"window_ms\":%llu,"
		    "\"samples\":%zu,\"growth_bytes\":%.0f,\"grown_bytes\":%.0f,\"growing_ms\":%llu,"
		    "\"anon_bytes\":%lld,\"file_bytes\":%lld,\"shmem_bytes\":%lld,\"swap_bytes\":%lld,"
		    "\"mapped_bytes\":%.0f,\"mapped_growth_bytes\":%.0f",
		    p->verdict.rate_bps, last->rss, p->on_mapped ? "mapped" : "rss",
		    (unsigned long long)(s->window_ns / NSEC_PER_MSEC), p->verdict.samples,
		    p->verdict.growth, now_bytes - p->since_bytes,
		    (unsigned long long)((last->t_ns - p->since_ns) / NSEC_PER_MSEC),
		    (long long)member_bytes(p, REFLEX_LEAK_ANON), (long long)member_bytes(p, REFLEX_LEAK_FILE),
		    (long long)member_bytes(p, REFLEX_LEAK_SHMEM), (long long)member_bytes(p, REFLEX_LEAK_SWAP),
		    last->mapped, last->mapped - first->mapped);
	if (!isnan(eta)) {
		sbuf_printf(&ev, ",\"eta_ms\":%.0f,\"oom_limit\":{\"by\":\"%s\",", eta, oom.by);
		if (*oom.cgroup) {
			sbuf_printf(&ev, "\"cgroup\":");
			sbuf_json_str(&ev, oom.cgroup);
			sbuf_printf(&ev, ",");
		}
		sbuf_printf(&ev, "\"file\":\"%s\",\"limit_bytes\":%.0f,\"free_bytes\":%.0f}", oom.file,
			    oom.limit_bytes, oom.free_bytes);
	}
	if (p->attribution)
		sbuf_printf(&ev, ",\"attribution\":%s", p->attribution);
	sbuf_printf(&ev, "}");
}

static void publish(struct sense_leak *s, struct proc *p, bool fresh)
{
	struct condition *cond = calloc(1, sizeof(*cond));

	if (!cond)
		return;
	describe(s, p, cond);
	if (fresh) {
		log_info("leak in pid %u (%s): %s", p->pid, p->target.comm, cond->summary);
		s->sink.raise(s->sink.ctx, cond);
	} else {
		s->sink.update(s->sink.ctx, cond);
	}
	free(cond);
}

static void set_attribution(struct proc *p, const char *json)
{
	free(p->attribution);
	p->attribution = strdup(json);
}

static void attribution_stop(struct sense_leak *s)
{
	struct attribution *a = &s->attr;

	/* the entry probes first: a return probe gone before its entry
	 * would leave calls the map never forgets */
	while (a->nlinks > 0)
		bpf_link__destroy(a->links[--a->nlinks]);
	allocs_bpf__destroy(a->skel);
	a->skel = NULL;
	a->phase = ATTR_IDLE;
}

struct libc_search {
	char libc[256];
	char other[256];  /* another allocator mapped */
};

static int find_allocator(const struct mapping *m, void *ctx)
{
	struct libc_search *ls = ctx;
	const char *base = strrchr(m->path, '/') + 1;

	if (!ls->libc[0] && (!strncmp(base, "libc.so", 7) || !strncmp(base, "libc-", 5)))
		str_copy(ls->libc, sizeof(ls->libc), m->path);
	if (!ls->other[0] && (strstr(base, "jemalloc") || strstr(base, "tcmalloc") ||
			      strstr(base, "mimalloc")))
		str_copy(ls->other, sizeof(ls->other), m->path);
	return 0;
}

/* Why glibc's malloc in pid cannot be traced, or NULL when it can (and
 * then libc is the path to attach to). */
static const char *attribution_blocker(uint32_t pid, char *libc, size_t lsize, char *why,
				       size_t size)
{
	struct libc_search ls;
	char exe[64];

	memset(&ls, 0, sizeof(ls));
	if (symbols_each_mapping((pid_t)pid, find_allocator, &ls) < 0)
		return "the process is gone";
	if (ls.other[0]) {
		snprintf(why, size, "the process uses another allocator (%s); only glibc malloc is traced",
			 ls.other);
		return why;
	}
	if (!ls.libc[0])
		return "no shared glibc in the process (statically linked?)";
	snprintf(exe, sizeof(exe), "/proc/%u/exe", pid);
	if (symbols_defines(exe, "malloc"))
		return "the executable defines its own malloc; only glibc malloc is traced";
	snprintf(libc, lsize, "/proc/%u/root%s", pid, ls.libc);
	return NULL;
}

/* p is leaking: trace its allocations, if nothing else is traced now. */
static void attribution_begin(struct sense_leak *s, struct proc *p, uint64_t now)
{
	struct attribution *a = &s->attr;
	char why[400], json[600], libc[sizeof(a->libc)];
	const char *blocker;
	struct sbuf b;

	if (!s->attribution_ns || p->attribution)
		return;
	/* "not available" needs no tracer: say it now, busy or not */
	blocker = attribution_blocker(p->pid, libc, sizeof(libc), why, sizeof(why));
	if (blocker) {
		sbuf_init(&b, json, sizeof(json));
		sbuf_printf(&b, "{\"state\":");
		sbuf_json_str(&b, "not available");
		sbuf_printf(&b, ",\"why\":");
		sbuf_json_str(&b, blocker);
		sbuf_printf(&b, "}");
		set_attribution(p, json);
		log_info("leak attribution for pid %u (%s): not available: %s", p->pid, p->target.comm,
			 blocker);
		return;
	}
	if (a->phase != ATTR_IDLE || cpu_ticks(p->pid, &a->ticks))
		return;
	str_copy(a->libc, sizeof(a->libc), libc);
	a->phase = ATTR_BASELINE;
	a->pid = p->pid;
	a->start_ns = p->start_ns;
	a->phase_ns = now;
	set_attribution(p, "{\"state\":\"running\"}");
}

/* Return probes first, so that no call is seen entering without being
 * seen leaving. */
static int attribution_attach(struct sense_leak *s)
{
	static const struct {
		const char *func;
		bool ret;
	} probes[ATTR_LINKS] = { { "malloc", true }, { "calloc", true }, { "realloc", true },
				 { "malloc", false }, { "calloc", false }, { "realloc", false },
				 { "free", false } };
	struct attribution *a = &s->attr;
	int err;

	a->skel = allocs_bpf__open_and_load();
	if (!a->skel)
		return -errno;
	for (int i = 0; i < ATTR_LINKS; i++) {
		struct allocs_bpf *k = a->skel;
		struct bpf_program *prog = probes[i].ret ? k->progs.alloc_return :
					   !strcmp(probes[i].func, "malloc") ? k->progs.malloc_enter :
					   !strcmp(probes[i].func, "calloc") ? k->progs.calloc_enter :
					   !strcmp(probes[i].func, "realloc") ? k->progs.realloc_enter :
					   k->progs.free_enter;
		LIBBPF_OPTS(bpf_uprobe_opts, opts, .func_name = probes[i].func, .retprobe = probes[i].ret);

		a->links[a->nlinks] = bpf_program__attach_uprobe_opts(prog, (pid_t)a->pid, a->libc, 0,
								      &opts);
		if (!a->links[a->nlinks]) {
			err = -errno;
			log_warn("leak attribution: attaching to %s in %s: %s", probes[i].func, a->libc,
				 strerror(-err));
			return err;
		}
		a->nlinks++;
	}
	return 0;
}

struct site {
	uint64_t addr;
	struct reflex_alloc_site v;
};

static int by_outstanding(const void *x, const void *y)
{
	const struct site *a = x, *b = y;

	return a->v.outstanding < b->v.outstanding ? 1 : a->v.outstanding > b->v.outstanding ? -1 : 0;
}

/* Sums the per-CPU values of key in a PERCPU map of __u64 fields (the
 * stats, a site) into sum, n fields of them. */
static int percpu_sum(int fd, const void *key, __u64 *sum, size_t n)
{
	int ncpus = libbpf_num_possible_cpus(), err = 0;
	__u64 *v;

	if (ncpus < 0)
		return ncpus;
	v = calloc((size_t)ncpus * n, sizeof(*v));
	if (!v)
		return -ENOMEM;
	if (bpf_map_lookup_elem(fd, key, v)) {
		err = -errno;
		goto cleanup;
	}
	memset(sum, 0, n * sizeof(*sum));
	for (int c = 0; c < ncpus; c++)
		for (size_t i = 0; i < n; i++)
			sum[i] += v[(size_t)c * n + i];
cleanup:
	free(v);
	return err;
}

/* The TOP_SITES sites with the most bytes outstanding, largest first,
 * into top (by insertion into a small sorted array): how many. */
static size_t top_sites(struct attribution *a, struct site top[TOP_SITES])
{
	int fd = bpf_map__fd(a->skel->maps.sites);
	__u64 key, *prev = NULL;
	size_t ntop = 0;

	while (!bpf_map_get_next_key(fd, prev, &key)) {
		struct site cand = { .addr = key };

		prev = &key;
		if (percpu_sum(fd, &key, (__u64 *)&cand.v, sizeof(cand.v) / sizeof(__u64)) ||
		    cand.v.outstanding <= 0)
			continue;
		if (ntop < TOP_SITES)
			top[ntop++] = cand;
		else if (cand.v.outstanding > top[TOP_SITES - 1].v.outstanding)
			top[TOP_SITES - 1] = cand;
		else
			continue;
		qsort(top, ntop, sizeof(top[0]), by_outstanding);
	}
	return ntop;
}

/* The window is over: the top sites, what it cost, into p's evidence. */
static void attribution_report(struct sense_leak *s, struct proc *p, uint64_t now)
{
	struct attribution *a = &s->attr;
	static const char *const why[REFLEX_ALLOC_DROPS] = {
		[REFLEX_ALLOC_DROP_ALLOCS] = "allocations not followed in attribution: the allocs map was full",
		[REFLEX_ALLOC_DROP_SITES] = "allocations not attributed: more than " STRINGIFY(REFLEX_ALLOC_SITES_MAX) " sites",
		[REFLEX_ALLOC_DROP_CALLS] = "allocator calls not followed: too many threads inside at once",
	};
	struct reflex_alloc_stats st = { 0 };
	struct sensor_drop_counts drops;
	struct site top[TOP_SITES];
	size_t ntop;
	__u32 zero = 0;
	unsigned long long ticks = a->ticks;
	double secs = (double)(now - a->phase_ns) / 1e9, cpu_during;
	long hz = sysconf(_SC_CLK_TCK);
	char json[2048], logline[1024], took[32];
	struct sbuf b, l;

	(void)percpu_sum(bpf_map__fd(a->skel->maps.allocs_stats), &zero, (__u64 *)&st,
			 sizeof(st) / sizeof(__u64));
	sensor_drops_open(&drops, "leak", bpf_map__fd(a->skel->maps.drops), why, ARRAY_SIZE(why));
	(void)sensor_drops_report(&drops, NULL);
	ntop = top_sites(a, top);
	(void)cpu_ticks(p->pid, &ticks);
	cpu_during = secs > 0 && hz > 0 ? (double)(ticks - a->ticks) / (double)hz / secs * 100 : 0;
	duration_format(now - a->phase_ns, took, sizeof(took));
	sbuf_init(&b, json, sizeof(json));
	sbuf_init(&l, logline, sizeof(logline));
	if (!st.calls) {
		sbuf_printf(&b, "{\"state\":\"not available\",\"why\":\"no calls to glibc malloc or free in "
			    "%s: the memory does not come from glibc malloc\",\"window_ms\":%llu}",
			    took, (unsigned long long)((now - a->phase_ns) / NSEC_PER_MSEC));
		set_attribution(p, json);
		log_info("leak attribution for pid %u (%s): no glibc malloc/free calls in %s", p->pid,
			 p->target.comm, took);
		return;
	}
	sbuf_printf(&b, "{\"state\":\"done\",\"window_ms\":%llu,\"overhead\":{\"calls\":%llu,"
		    "\"calls_per_s\":%.0f,\"cpu_pct_before\":%.1f,\"cpu_pct_during\":%.1f},"
		    "\"allocs_dropped\":%llu,\"sites_dropped\":%llu,\"calls_dropped\":%llu,\"sites\":[",
		    (unsigned long long)((now - a->phase_ns) / NSEC_PER_MSEC), (unsigned long long)st.calls,
		    (double)st.calls / secs, a->cpu_before, cpu_during,
		    (unsigned long long)drops.total[REFLEX_ALLOC_DROP_ALLOCS],
		    (unsigned long long)drops.total[REFLEX_ALLOC_DROP_SITES],
		    (unsigned long long)drops.total[REFLEX_ALLOC_DROP_CALLS]);
	sbuf_printf(&l, "%llu calls in %s, target CPU %.1f%% before, %.1f%% while traced; top:",
		    (unsigned long long)st.calls, took, a->cpu_before, cpu_during);
	for (size_t i = 0; i < ntop; i++) {
		char name[160], object[256], held[32];

		(void)symbols_resolve((pid_t)p->pid, top[i].addr, name, sizeof(name), object,
				      sizeof(object));
		format_bytes((double)top[i].v.outstanding, held, sizeof(held));
		sbuf_printf(&b, "%s{\"site\":", i ? "," : "");
		sbuf_json_str(&b, name);
		sbuf_printf(&b, ",\"object\":");
		sbuf_json_str(&b, object);
		sbuf_printf(&b, ",\"address\":\"0x%llx\",\"outstanding_bytes\":%lld,\"allocs\":%llu}",
			    (unsigned long long)top[i].addr, (long long)top[i].v.outstanding,
			    (unsigned long long)top[i].v.allocs);
		sbuf_printf(&l, " %s (%s, %s outstanding)", name, object, held);
	}
	sbuf_printf(&b, "]}");
	if (!ntop)
		sbuf_printf(&l, " none: everything allocated was freed");
	set_attribution(p, b.truncated ? "{\"state\":\"done\",\"why\":\"too long\"}" : json);
	log_info("leak attribution for pid %u (%s): %s", p->pid, p->target.comm, logline);
}

/* Moves the attribution along: baseline, tracing, report. */
static void attribution_step(struct sense_leak *s, uint64_t now)
{
	struct attribution *a = &s->attr;
	struct proc *p;
	unsigned long long ticks;
	long hz = sysconf(_SC_CLK_TCK);
	int err;

	if (a->phase == ATTR_IDLE)
		return;
	p = proctable_get(s->procs, a->pid, a->start_ns);
	if (!p || !p->cond_id) {
		/* it exited, or stopped leaking: nobody to report to */
		attribution_stop(s);
		return;
	}
	if (a->phase == ATTR_BASELINE && now - a->phase_ns >= BASELINE_NS) {
		if (cpu_ticks(a->pid, &ticks)) {
			attribution_stop(s);
			return;
		}
		a->cpu_before = (double)(ticks - a->ticks) / (double)hz /
				((double)(now - a->phase_ns) / 1e9) * 100;
		err = attribution_attach(s);
		if (err) {
			char json[200];

			snprintf(json, sizeof(json), "{\"state\":\"not available\",\"why\":\"uprobes on %s: %s\"}",
				 strrchr(a->libc, '/') + 1, strerror(-err));
			set_attribution(p, json);
			attribution_stop(s);
			return;
		}
		log_info("leak attribution for pid %u (%s): tracing malloc/free for %.1fs", p->pid,
			 p->target.comm, (double)s->attribution_ns / 1e9);
		a->phase = ATTR_TRACING;
		a->phase_ns = now;
		(void)cpu_ticks(a->pid, &a->ticks);
	} else if (a->phase == ATTR_TRACING && now - a->phase_ns >= s->attribution_ns) {
		attribution_report(s, p, now);
		attribution_stop(s);
		publish(s, p, false);
	}
}

static void forget_condition(struct sense_leak *s, struct proc *p, const char *why)
{
	if (!p->cond_id)
		return;
	log_info("leak in pid %u (%s) ended: %s", p->pid, p->target.comm, why);
	s->sink.clear(s->sink.ctx, p->cond_id);
	p->cond_id = 0;
	free(p->attribution);
	p->attribution = NULL;
}

static void proc_free(struct sense_leak *s, struct proc *p)
{
	forget_condition(s, p, "the process exited");
	free(p->attribution);
	proctable_remove(s->procs, p);
}

/* Judges p on its latest sample: raise, refresh or clear its leak. */
static void judge(struct sense_leak *s, struct proc *p, uint64_t now)
{
	struct trend_sample series[RING_CAP];
	struct leak_verdict v;
	bool leak, on_mapped = false;
	char held[32];

	for (size_t i = 0; i < p->n; i++)
		series[i] = (struct trend_sample){ point_at(p, i)->t_ns, point_at(p, i)->rss };
	leak = leak_trend_judge(series, p->n, s->window_ns, s->min_rate, p->cond_id && !p->on_mapped, &v);
	if (!leak) {
		for (size_t i = 0; i < p->n; i++)
			series[i].value = point_at(p, i)->mapped;
		leak = on_mapped = leak_trend_judge(series, p->n, s->window_ns, s->min_rate,
						    p->cond_id && p->on_mapped, &v);
	}
	if (!leak) {
		format_bytes(point_at(p, p->n - 1)->rss, held, sizeof(held));
		if (p->cond_id) {
			char why[64];

			snprintf(why, sizeof(why), "memory plateaued (rss %s)", held);
			forget_condition(s, p, why);
		}
		return;
	}
	p->verdict = v;
	if (p->cond_id && p->on_mapped == on_mapped) {
		publish(s, p, false);
		/* another process's attribution may have kept this one waiting */
		attribution_begin(s, p, now);
		return;
	}
	if (!p->cond_id) {
		const struct point *first = window_start(s, p);

		if (identity_read((pid_t)p->pid, &p->target))
			return;
		p->cond_id = condition_new_id();
		p->since_ns = first->t_ns;
		p->since_bytes = on_mapped ? first->mapped : first->rss;
		p->on_mapped = on_mapped;
		publish(s, p, true);
		attribution_begin(s, p, now);
		return;
	}
	/* the other signal took over: same condition, its own numbers */
	p->on_mapped = on_mapped;
	p->since_bytes = on_mapped ? window_start(s, p)->mapped : window_start(s, p)->rss;
	p->since_ns = window_start(s, p)->t_ns;
	publish(s, p, false);
}

static void sample_proc(struct sense_leak *s, uint32_t pid, const struct reflex_leak_proc *v,
			uint64_t now)
{
	struct proc *p = proctable_get(s->procs, pid, v->start_ns);
	struct point *pt;

	/* a new process, perhaps under a recycled pid: the old one is not
	 * seen in this sample, and goes at its end */
	if (!p) {
		p = proctable_insert(s->procs, pid, v->start_ns);
		if (!p)
			return;
		p->pid = pid;
		p->start_ns = v->start_ns;
	}
	p->seen = true;
	p->last = *v;
	pt = &p->ring[p->head];
	p->head = (p->head + 1) % RING_CAP;
	if (p->n < RING_CAP)
		p->n++;
	pt->t_ns = now;
	pt->rss = (double)(member_bytes(p, REFLEX_LEAK_FILE) + member_bytes(p, REFLEX_LEAK_ANON) +
			   member_bytes(p, REFLEX_LEAK_SHMEM));
	pt->mapped = (double)v->data_vm;
	judge(s, p, now);
}

/* One sample of every process in the map. */
static int sample(struct sense_leak *s, uint64_t now)
{
	int fd = bpf_map__fd(s->rss->maps.procs), err = 0;
	__u32 cursor, *in = NULL;
	struct proctable_iter it = { 0 };
	struct proc *p;

	while ((p = proctable_next(s->procs, &it)))
		p->seen = false;
	do {
		__u32 count = BATCH;

		err = bpf_map_lookup_batch(fd, in, &cursor, s->keys, s->vals, &count, NULL);
		if (err && err != -ENOENT)
			break;
		for (__u32 i = 0; i < count; i++)
			sample_proc(s, s->keys[i], &s->vals[i], now);
		in = &cursor;
	} while (!err);
	/* the processes gone from the map are gone */
	it = (struct proctable_iter){ 0 };
	while ((p = proctable_next(s->procs, &it)))
		if (!p->seen)
			proc_free(s, p);
	return err == -ENOENT ? 0 : err;
}

static void leak_scan(void *state, uint64_t now)
{
	struct sense_leak *s = state;
	int err;

	attribution_step(s, now);
	if (now < s->next_sample)
		return;
	s->next_sample = now + s->sample_ns;
	err = sample(s, now);
	if (err)
		log_warn("leak: reading the process map: %s", strerror(-err));
	(void)sensor_drops_report(&s->drops, NULL);
}

static void leak_stop(void *state);

static const char *const leak_drops[REFLEX_RSS_DROPS] = {
	[REFLEX_RSS_DROP_PROCS] = "processes not followed: more than " STRINGIFY(REFLEX_LEAK_PROCS_MAX) " at once",
};

static void *leak_start(const struct sensor_env *env)
{
	struct sense_leak *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->sink = env->sink;
	s->window_ns = env->cfg->leak_window_ns;
	s->sample_ns = s->window_ns / SAMPLES_PER_WINDOW;
	s->min_rate = (double)env->cfg->leak_min_rate;
	s->attribution_ns = env->cfg->leak_attribution_ns;
	find_cgroup_roots(s);
	s->procs = proctable_new(sizeof(struct proc));
	if (!s->procs) {
		err = -errno;
		goto fail;
	}
	s->rss = sense_rss_get();
	if (!s->rss) {
		err = -errno;
		log_error("leak: loading and attaching the rss_stat program: %s", strerror(-err));
		goto fail;
	}
	s->skel = leak_bpf__open();
	if (!s->skel) {
		err = -errno;
		log_error("leak: opening the BPF programs: %s", strerror(-err));
		goto fail;
	}
	/* exec and exit empty the map the rss_stat program fills */
	err = bpf_map__reuse_fd(s->skel->maps.procs, bpf_map__fd(s->rss->maps.procs));
	if (!err)
		err = leak_bpf__load(s->skel);
	if (err) {
		log_error("leak: loading the BPF programs: %s", strerror(-err));
		goto fail;
	}
	err = leak_bpf__attach(s->skel);
	if (err) {
		log_error("leak: attaching to process exec/exit: %s", strerror(-err));
		goto fail;
	}
	sensor_drops_open(&s->drops, "leak", bpf_map__fd(s->rss->maps.drops), leak_drops,
			  ARRAY_SIZE(leak_drops));
	/* only now: an entry made earlier might miss its process's exit */
	s->rss->bss->follow = true;
	return s;
fail:
	leak_stop(s);
	errno = -err;
	return NULL;
}

static void leak_stop(void *state)
{
	struct sense_leak *s = state;
	struct proctable_iter it = { 0 };
	struct proc *p;

	if (!s)
		return;
	attribution_stop(s);
	if (s->rss)
		s->rss->bss->follow = false;
	sense_rss_put(s->rss);
	leak_bpf__destroy(s->skel);
	while (s->procs && (p = proctable_next(s->procs, &it)))
		free(p->attribution);
	proctable_free(s->procs);
	free(s);
}

const struct sensor sensor_leak = {
	.name = "leak",
	.kinds = 1u << REFLEX_COND_LEAK,
	.needs = {
		.kernel = "5.11 (bpf_get_current_task_btf; tp_btf/rss_stat 5.5; uprobes for attribution)",
		.attach = "tp_btf/rss_stat, tp_btf/sched_process_exec and _exit; malloc/free uprobes on demand",
		.progs = { BPF_PROG_TYPE_TRACING, BPF_PROG_TYPE_KPROBE },
		.maps = { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_ARRAY, BPF_MAP_TYPE_PERCPU_HASH, BPF_MAP_TYPE_PERCPU_ARRAY,
			  BPF_MAP_TYPE_RINGBUF },
		/* the rss_stat program is the memory reflex's too */
		.helpers = { KERNEL_HELPER(KPROBE, get_current_task_btf), KERNEL_HELPER(KPROBE, probe_read_user),
			     KERNEL_HELPER(KPROBE, get_current_pid_tgid), KERNEL_HELPER(KPROBE, send_signal),
			     KERNEL_HELPER(KPROBE, ringbuf_reserve) },
		.objects = { rss_bpf__elf_bytes, leak_bpf__elf_bytes, allocs_bpf__elf_bytes },
	},
	.start = leak_start,
	.scan = leak_scan,
	.stop = leak_stop,
};
