/* Goroutines per Go process, read from its runtime's own table of
 * goroutines every sample: nothing runs when a goroutine is made or ends.
 * A Go program is recognised by its ELF: a .go.buildinfo section (its Go
 * version) or the runtime.buildVersion symbol. The table (runtime.allgptr
 * and allglen) is found in its symbol table or, stripped, through the two
 * loads that open runtime.forEachGRace (found in the runtime's function
 * table, .gopclntab); a goroutine's layout (status, creation site) in its
 * DWARF or, without, in a table of Go releases. Each live goroutine's
 * creation site is counted too, and the top ones, symbolized through
 * .gopclntab, go in the evidence.
 *
 * Where the runtime cannot be read (a Go release not known here and no
 * DWARF, not x86-64), or with --goroutine-probes, entry uprobes on the
 * runtime's goroutine create (runtime.newproc1) and exit (runtime.goexit1)
 * count instead, found the same two ways. A binary where neither works is
 * said so, once per process.
 *
 * One uprobe pair per binary (inode), not per process: the kernel fires it
 * in every process mapping that file, those started later included, and
 * the counts map is keyed by process. A process that execs a binary already
 * watched is counted from its first goroutine: its count is absolute.
 * Otherwise (found at startup, or the first process of a new binary, which
 * the runtime has already started a few goroutines in by the time we
 * attach) the goroutines it had at attach are read from its runtime's state
 * (recover_base), and where that cannot be done (no DWARF for the layout)
 * the count is the change since attach, and the evidence says so.
 *
 * The growth rate is the least-squares slope of the count over the last
 * window (--goroutine-window), sampled 20 times a window. */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/log.h"
#include "lib/proctable.h"
#include "lib/trend.h"
#include "lib/util.h"
#include "sense/go_elf.h"
#include "sense/goroutines.h"
#include "sense/identity.h"
#include "bpf/goroutines.h"
#include "goroutines.skel.h"

#define GR_BINARIES_MAX 256
#define GR_SAMPLES_PER_WINDOW 20
#define GR_SAMPLES 32  /* a window's samples and some slack */
#define GR_SITES 5            /* creation sites in the evidence */
#define GR_SITES_KEPT 8       /* per process, from sample to sample */
#define GR_SITES_SEEN 512     /* distinct sites counted in one walk */
#define GR_WALK_BATCH 512     /* goroutines per process_vm_readv */
#define GR_WALK_MAX (1 << 22) /* goroutines walked at most */
#define GO_GSCAN 0x1000       /* runtime's _Gscan bit */
#define GO_GIDLE 0
#define GO_GDEAD 6

/* SAMPLED: its runtime's table read every sample; WATCHED: probed
 * (--goroutine-probes, or its runtime cannot be read); NO_FUNCS: Go, but
 * neither works (the two functions are in neither its symbol table nor its
 * .gopclntab: stripped and older than Go 1.18) */
enum gr_binary_kind { BIN_NOT_GO, BIN_NO_FUNCS, BIN_WATCHED, BIN_SAMPLED, BIN_FAILED };

/* A binary seen at an exec or in the startup scan, Go or not, so each one
 * is read once. */
struct gr_binary {
	dev_t dev;
	ino_t ino;
	int64_t ctime_ns;          /* a rebuilt file at a recycled inode is another */
	enum gr_binary_kind kind;
	struct go_elf elf;         /* its version, symbols, runtime layout */
	uint64_t attached_ns;      /* CLOCK_MONOTONIC */
	struct bpf_link *create, *exit;
	int procs;                 /* watched processes running it */
	uint64_t used_ns;          /* for eviction, oldest first */
};

struct gr_sample {
	uint64_t t;
	int64_t count;
};

/* Creation sites seen in one walk. */
struct gr_site_count {
	uint64_t pc;
	int64_t count;
};

/* Where live goroutines were made (the go statement's pc, g.gopc) and how
 * many; marks: the count half a window and a window ago, or so. */
struct gr_site {
	uint64_t pc;
	int64_t count, mark_new, mark_old;
	bool resolved;
	struct go_site where;
};

struct gr_proc {
	pid_t pid;
	bool absolute;             /* its count is whole: from its first goroutine, */
	bool recovered;            /* or from its runtime's state at attach */
	int64_t base;              /* live goroutines the counters missed */
	uint64_t bias;             /* load bias of its binary (a PIE) */
	struct gr_binary *bin;
	struct target target;
	struct gr_sample samples[GR_SAMPLES];
	unsigned nsamples, head;   /* head: the next slot written */
	uint64_t sampled;          /* samples ever taken */
	uint64_t first_ns;         /* first sample */
	uint64_t cond_id;          /* 0 while no condition */
	uint64_t cond_since;       /* when it began, or began growing */
	bool growing;
	struct gr_site *sites;     /* GR_SITES_KEPT, the most goroutines first */
	unsigned nsites;
	uint64_t mark_ns;          /* when the sites' marks last moved */
};

struct sense_goroutines {
	struct goroutines_bpf *skel;
	struct sensor_ring ring;
	struct ev_loop *loop;
	struct condition_sink sink;
	uint64_t window_ns, sample_ns, last_sample_ns;
	double min_rate;
	int64_t min_count;
	bool probes;               /* --goroutine-probes */
	struct gr_binary bins[GR_BINARIES_MAX];
	size_t nbins;
	struct proctable *procs;   /* struct gr_proc, by (pid, start_time) */
	/* overflows: the kernel's (stats map) as last logged, and our own */
	struct sensor_drop_counts drops; /* the kernel's */
	uint64_t procs_dropped, bins_dropped;
	struct gr_site_count seen[GR_SITES_SEEN]; /* one walk's sites */
};

static void binary_detach(struct gr_binary *b)
{
	bpf_link__destroy(b->create);
	bpf_link__destroy(b->exit);
	b->create = b->exit = NULL;
}

/* Attaches the uprobe pair to the binary open at fd: by the fd's path, which
 * works across mount namespaces and after the process that ran it is gone
 * (a short-lived one often is by now). 0 or -errno. */
static int binary_attach(struct sense_goroutines *s, struct gr_binary *b, int fd,
			 const struct go_elf *g)
{
	char path[64];
	int err;

	snprintf(path, sizeof(path), "/proc/self/fd/%d", fd);
	b->create = bpf_program__attach_uprobe(s->skel->progs.go_create, false, -1, path, g->off_create);
	if (!b->create)
		return -errno;
	b->exit = bpf_program__attach_uprobe(s->skel->progs.go_exit, false, -1, path, g->off_exit);
	if (!b->exit) {
		err = -errno;
		binary_detach(b);
		return err;
	}
	b->attached_ns = clock_mono_ns();
	return 0;
}

/* A slot for a new binary: a free one, else the least recently used with
 * no process watched. NULL when every one is in use. */
static struct gr_binary *binary_slot(struct sense_goroutines *s)
{
	struct gr_binary *old = NULL;

	if (s->nbins < GR_BINARIES_MAX)
		return &s->bins[s->nbins++];
	for (size_t i = 0; i < s->nbins; i++)
		if (!s->bins[i].procs && (!old || s->bins[i].used_ns < old->used_ns))
			old = &s->bins[i];
	if (old)
		binary_detach(old);
	return old;
}

/* The binary pid runs, read (and if Go, with both functions found, attached)
 * the first time it is seen. NULL when pid is gone or the table is full. */
static struct gr_binary *binary_of(struct sense_goroutines *s, pid_t pid, const struct stat *st)
{
	int64_t ctime_ns = (int64_t)st->st_ctim.tv_sec * (int64_t)NSEC_PER_SEC + st->st_ctim.tv_nsec;
	struct gr_binary *b;
	struct go_elf g;
	char path[64];
	int fd, err;

	for (size_t i = 0; i < s->nbins; i++) {
		b = &s->bins[i];
		if (b->dev == st->st_dev && b->ino == st->st_ino && b->ctime_ns == ctime_ns) {
			b->used_ns = clock_mono_ns();
			return b;
		}
	}
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
		return NULL;
	err = go_elf_read(fd, &g);
	b = binary_slot(s);
	if (!b) {
		if (!s->bins_dropped++)
			log_warn("goroutines: more than %d binaries in use; new ones are not looked at",
				 GR_BINARIES_MAX);
		close(fd);
		return NULL;
	}
	memset(b, 0, sizeof(*b));
	b->dev = st->st_dev;
	b->ino = st->st_ino;
	b->ctime_ns = ctime_ns;
	b->used_ns = clock_mono_ns();
	b->elf = g;
	if (err || !g.is_go)
		b->kind = BIN_NOT_GO;
	else if (!s->probes && g.table_from != GO_TABLE_NONE && g.g_layout.known)
		b->kind = BIN_SAMPLED;
	else if (!g.off_create || !g.off_exit)
		b->kind = BIN_NO_FUNCS;
	else if ((err = binary_attach(s, b, fd, &g))) {
		b->kind = BIN_FAILED;
		log_warn("goroutines: pid %d: attaching uprobes to %s and %s in its binary (%s): %s", pid,
			 GO_SYM_CREATE, GO_SYM_EXIT, b->elf.version, strerror(-err));
	} else {
		b->kind = BIN_WATCHED;
	}
	close(fd);
	return b;
}

/* Whether pid is still the process that started at start_time, and not a
 * zombie (whose exit has been and gone). */
static bool proc_alive(pid_t pid, uint64_t start_time)
{
	char path[64], buf[512], *paren;
	uint64_t now_start;

	snprintf(path, sizeof(path), "/proc/%d/stat", pid);
	if (read_file(path, buf, sizeof(buf)) < 0)
		return false;
	paren = strrchr(buf, ')');
	if (!paren || paren[1] != ' ' || paren[2] == 'Z' || paren[2] == 'X')
		return false;
	return identity_start_time(pid, &now_start) == 0 && now_start == start_time;
}

/* Where pid has b's segment at file offset 0: the load bias of a PIE. */
static int load_bias(pid_t pid, const struct gr_binary *b, uint64_t *bias)
{
	char path[64], line[512];
	FILE *f;
	int err = -ENOENT;

	snprintf(path, sizeof(path), "/proc/%d/maps", pid);
	f = fopen(path, "re");
	if (!f)
		return -errno;
	while (fgets(line, sizeof(line), f)) {
		unsigned long long start, off, ino;

		if (sscanf(line, "%llx-%*x %*s %llx %*s %llu", &start, &off, &ino) == 3 && off == 0 &&
		    ino == (unsigned long long)b->ino) {
			*bias = start - b->elf.load_vaddr;
			err = 0;
			break;
		}
	}
	fclose(f);
	return err;
}

/* Counts pc in seen (open addressing); a site that finds the table full
 * is not counted by site. */
static void site_add(struct gr_site_count *seen, uint64_t pc)
{
	size_t h = (size_t)((pc * 0x9e3779b97f4a7c15ull) >> 32) % GR_SITES_SEEN;

	for (size_t i = 0; i < GR_SITES_SEEN; i++, h = (h + 1) % GR_SITES_SEEN) {
		if (!seen[h].count)
			seen[h].pc = pc;
		if (seen[h].pc == pc) {
			seen[h].count++;
			return;
		}
	}
}

/* The goroutines alive in pid, from its runtime's table of every g ever
 * made (allgptr, allglen; read in that order, the runtime's atomicAllG):
 * those neither idle (just allocated) nor dead (kept for reuse). With
 * seen, each one's creation site (g.gopc) is counted there. Read while
 * the process runs, so off by the goroutines made or ended during the
 * read. 0 or -errno. */
static int runtime_walk(pid_t pid, const struct gr_binary *b, uint64_t bias, int64_t *live,
			struct gr_site_count *seen)
{
	const struct go_elf *g = &b->elf;
	struct iovec local[2 * GR_WALK_BATCH], remote[2 * GR_WALK_BATCH];
	struct { uint32_t status; uint64_t gopc; } vals[GR_WALK_BATCH];
	uint64_t n, array, *gs = NULL;
	int err;

	*live = 0;
	if ((err = read_process_memory(pid, bias + g->addr_allglen, &n, sizeof(n))) ||
	    (err = read_process_memory(pid, bias + g->addr_allgptr, &array, sizeof(array))))
		return err;
	if (n == 0)
		return 0; /* a process seen at its exec: its runtime has not started */
	if (n > GR_WALK_MAX || !array)
		return -ERANGE;
	gs = malloc(n * sizeof(*gs));
	if (!gs)
		return -ENOMEM;
	if ((err = read_process_memory(pid, array, gs, n * sizeof(*gs))))
		goto cleanup;
	for (uint64_t i = 0; i < n; i += GR_WALK_BATCH) {
		size_t k = n - i < GR_WALK_BATCH ? n - i : GR_WALK_BATCH, iov = 0, want = 0;

		for (size_t j = 0; j < k; j++) {
			local[iov] = (struct iovec){ &vals[j].status, sizeof(vals[j].status) };
			remote[iov++] = (struct iovec){ (void *)(uintptr_t)(gs[i + j] + g->g_layout.status), sizeof(vals[j].status) };
			if (seen) {
				local[iov] = (struct iovec){ &vals[j].gopc, sizeof(vals[j].gopc) };
				remote[iov++] = (struct iovec){ (void *)(uintptr_t)(gs[i + j] + g->g_layout.gopc), sizeof(vals[j].gopc) };
			}
			want += sizeof(vals[j].status) + (seen ? sizeof(vals[j].gopc) : 0);
		}
		if (process_vm_readv(pid, local, iov, remote, iov, 0) != (ssize_t)want) {
			err = -EFAULT;
			goto cleanup;
		}
		for (size_t j = 0; j < k; j++) {
			uint32_t st = vals[j].status & ~(uint32_t)GO_GSCAN;

			if (st == GO_GIDLE || st == GO_GDEAD)
				continue;
			++*live;
			if (seen)
				site_add(seen, vals[j].gopc - bias);
		}
	}
cleanup:
	free(gs);
	return err;
}

/* Counting p from attach: add the goroutines it had then, from its
 * runtime's state, so its count is whole. The counters are read
 * before and after the runtime; a read during which none moved is exact.
 * A read that fails or moved is tried again: the runtime may be changing
 * its lists (or starting) right then. */
static void recover_base(struct sense_goroutines *s, struct gr_proc *p)
{
	int fd = bpf_map__fd(s->skel->maps.counts);
	__u32 key = (__u32)p->pid;

	for (int try = 0; try < 20; try++) {
		struct reflex_gr_counts before = { 0 }, after = { 0 };
		int64_t live;

		if (try)
			usleep(1000);
		(void)bpf_map_lookup_elem(fd, &key, &before);
		if (runtime_walk(p->pid, p->bin, p->bias, &live, NULL))
			continue;
		(void)bpf_map_lookup_elem(fd, &key, &after);
		if (before.created == after.created && before.exited == after.exited) {
			p->base = live - (int64_t)(after.created - after.exited);
			p->absolute = p->recovered = true;
			return;
		}
	}
}

/* Forgets p: its condition ends, its binary has one process fewer. */
static void proc_drop(struct sense_goroutines *s, struct gr_proc *p)
{
	if (p->cond_id)
		s->sink.clear(s->sink.ctx, p->cond_id);
	p->bin->procs--;
	free(p->sites);
	proctable_remove(s->procs, p);
}

/* A process running a Go binary, or one that may be (at its exec, exec_ns
 * the kernel's time of it; 0 from the startup scan): watch it. */
static void consider(struct sense_goroutines *s, pid_t pid, uint64_t exec_ns)
{
	struct reflex_gr_counts zero = { 0 };
	struct gr_binary *b;
	struct gr_proc *p;
	struct target t;
	struct stat st;
	char path[64];
	__u32 key = (__u32)pid;
	uint64_t bias = 0;
	bool readable;
	int err;

	p = proctable_find(s->procs, (uint32_t)pid, NULL);
	if (p)
		proc_drop(s, p); /* it ran another image until now */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (stat(path, &st))
		return; /* gone already, or a kernel thread */
	b = binary_of(s, pid, &st);
	if (!b || b->kind == BIN_NOT_GO)
		return;
	if (b->kind != BIN_WATCHED && b->kind != BIN_SAMPLED) {
		if (identity_read(pid, &t))
			return;
		if (b->kind == BIN_NO_FUNCS)
			log_warn("goroutines: pid %d (%s): %s (%s, %s): %s and %s are in neither its symbol "
				 "table nor its .gopclntab, its goroutines are not counted", pid, t.comm, t.exe,
				 b->elf.version, b->elf.has_symtab ? "not stripped" : "stripped", GO_SYM_CREATE,
				 GO_SYM_EXIT);
		else
			log_warn("goroutines: pid %d (%s): %s (%s) could not be watched, its goroutines are "
				 "not counted", pid, t.comm, t.exe, b->elf.version);
		return;
	}
	if (proctable_count(s->procs) == REFLEX_GR_MAX_PROCS) {
		if (!s->procs_dropped++)
			log_warn("goroutines: more than %d Go processes; new ones are not watched",
				 REFLEX_GR_MAX_PROCS);
		return;
	}
	if (identity_read(pid, &t))
		return;
	/* its runtime's state can be read where the binary says where it is */
	readable = b->elf.table_from != GO_TABLE_NONE && b->elf.g_layout.known &&
		   (!b->elf.pie || !load_bias(pid, b, &bias));
	if (b->kind == BIN_SAMPLED && !readable)
		return; /* gone, or not mapped as its ELF file says */
	/* an entry of our own, so its exit is reported even if it never
	 * starts a goroutine; one the uprobe made first is kept */
	err = bpf_map_update_elem(bpf_map__fd(s->skel->maps.counts), &key, &zero, BPF_NOEXIST);
	if (err && errno != EEXIST) {
		sensor_drops("goroutines", 1);
		if (!s->procs_dropped++)
			log_warn("goroutines: pid %d: the counts map is full (%d processes): %s", pid,
				 REFLEX_GR_MAX_PROCS, strerror(errno));
		return;
	}
	/* one that exited before the entry was made has had its exit event */
	if (!proc_alive(pid, t.start_time)) {
		(void)bpf_map_delete_elem(bpf_map__fd(s->skel->maps.counts), &key);
		return;
	}
	p = proctable_insert(s->procs, (uint32_t)pid, t.start_time);
	if (!p)
		return;
	p->target = t;
	p->bias = bias;
	p->pid = pid;
	p->bin = b;
	p->absolute = b->kind == BIN_SAMPLED || (exec_ns && b->attached_ns < exec_ns);
	if (!p->absolute && readable)
		recover_base(s, p);
	b->procs++;
	log_info("goroutines: watching pid %d (%s), %s, counting %s", pid, p->target.comm, b->elf.version,
		 b->kind == BIN_SAMPLED ? "by sampling its runtime's state" :
		 p->recovered ? "from its runtime's state" : p->absolute ? "from its start" : "from now");
}

/* Least-squares slope, per second, of the samples taken in [from, to];
 * false when there are fewer than 3. */
static bool slope(const struct gr_proc *p, uint64_t from, uint64_t to, double *rate)
{
	struct trend_sample in[GR_SAMPLES];
	size_t n = 0;

	/* oldest first */
	for (unsigned i = 0; i < p->nsamples; i++) {
		const struct gr_sample *x = &p->samples[(p->head + GR_SAMPLES - p->nsamples + i) % GR_SAMPLES];

		if (x->t >= from && x->t <= to)
			in[n++] = (struct trend_sample){ x->t, (double)x->count };
	}
	return n >= 3 && !trend_slope(in, n, rate);
}

/* Growth that lasts: the slope over the whole window, and over each of its
 * halves, at least min_rate. A burst (a pool of workers started at once)
 * steepens the whole window's slope for a while, but not both halves'. */
static bool growing(const struct sense_goroutines *s, const struct gr_proc *p, uint64_t now,
		    double *rate)
{
	uint64_t from = now - s->window_ns, mid = now - s->window_ns / 2;
	double first, last;

	*rate = 0;
	if (now < s->window_ns || !slope(p, from, now, rate))
		return false;
	return now - p->first_ns >= s->window_ns * 9 / 10 && *rate >= s->min_rate &&
	       slope(p, from, mid, &first) && first >= s->min_rate &&
	       slope(p, mid, now, &last) && last >= s->min_rate;
}

/* Keeps p's top creation sites from this walk's counts, carrying over what
 * is known of each (marks, name). The marks move every half window, so
 * count - mark_old is a site's growth over half a window to a window. */
static void sites_update(struct sense_goroutines *s, struct gr_proc *p, uint64_t now)
{
	struct gr_site kept[GR_SITES_KEPT];
	bool move = now - p->mark_ns >= s->window_ns / 2;
	unsigned n;

	if (!p->sites && !(p->sites = calloc(GR_SITES_KEPT, sizeof(*p->sites))))
		return;
	for (n = 0; n < GR_SITES_KEPT; n++) {
		struct gr_site_count *best = NULL;

		for (size_t i = 0; i < GR_SITES_SEEN; i++)
			if (s->seen[i].count > 0 && (!best || s->seen[i].count > best->count))
				best = &s->seen[i];
		if (!best)
			break;
		kept[n] = (struct gr_site){ .pc = best->pc, .count = best->count };
		best->count = -best->count; /* taken */
		for (unsigned j = 0; j < p->nsites; j++)
			if (p->sites[j].pc == kept[n].pc) {
				kept[n] = p->sites[j];
				kept[n].count = -best->count;
			}
		if (move) {
			kept[n].mark_old = kept[n].mark_new;
			kept[n].mark_new = kept[n].count;
		}
	}
	if (move)
		p->mark_ns = now;
	memcpy(p->sites, kept, n * sizeof(*kept));
	p->nsites = n;
}

/* Names the first GR_SITES sites not named yet, from the binary's
 * .gopclntab (opened through the process: its mount namespace). gopc is
 * the return address of the go statement's call: the line is pc - 1's. */
static void sites_resolve(struct gr_proc *p)
{
	char path[64];
	int fd = -1;

	for (unsigned i = 0; i < p->nsites && i < GR_SITES; i++) {
		struct gr_site *x = &p->sites[i];

		if (x->resolved)
			continue;
		if (fd < 0) {
			snprintf(path, sizeof(path), "/proc/%d/exe", p->pid);
			if ((fd = open(path, O_RDONLY | O_CLOEXEC)) < 0)
				return;
		}
		if (go_elf_symbolize(fd, x->pc - 1, &x->where))
			snprintf(x->where.function, sizeof(x->where.function), "0x%llx", (unsigned long long)x->pc);
		x->resolved = true;
	}
	if (fd >= 0)
		close(fd);
}

/* The site whose count grew most since its old mark, or NULL. */
static const struct gr_site *site_growing(const struct gr_proc *p)
{
	const struct gr_site *top = NULL;

	for (unsigned i = 0; i < p->nsites && i < GR_SITES; i++)
		if (p->sites[i].count > p->sites[i].mark_old &&
		    (!top || p->sites[i].count - p->sites[i].mark_old > top->count - top->mark_old))
			top = &p->sites[i];
	return top;
}

static const char *base_name(const char *path)
{
	const char *slash = strrchr(path, '/');

	return slash ? slash + 1 : path;
}

/* The sites' part of the evidence: "sites":[{function, file, line, count,
 * grown}], and "growing_site" when the count grows. */
static void sites_evidence(struct sbuf *ev, const struct gr_proc *p, const struct gr_site *grower)
{
	sbuf_printf(ev, "\"sites\":[");
	for (unsigned i = 0; i < p->nsites && i < GR_SITES; i++) {
		const struct gr_site *x = &p->sites[i];

		sbuf_printf(ev, "%s{\"function\":", i ? "," : "");
		sbuf_json_str(ev, x->where.function);
		sbuf_printf(ev, ",\"file\":");
		sbuf_json_str(ev, x->where.file);
		sbuf_printf(ev, ",\"line\":%d,\"count\":%lld,\"grown\":%lld}", x->where.line, (long long)x->count,
			    (long long)(x->count - x->mark_old));
	}
	sbuf_printf(ev, "],");
	if (grower) {
		sbuf_printf(ev, "\"growing_site\":");
		sbuf_json_str(ev, grower->where.function);
		sbuf_printf(ev, ",");
	}
}

/* Raises, refreshes or clears p's condition from its newest sample, count;
 * c: the probes' counters behind it, NULL when sampled from the runtime. */
static void evaluate(struct sense_goroutines *s, struct gr_proc *p, int64_t count,
		     const struct reflex_gr_counts *c, uint64_t now)
{
	double rate;
	bool grows = growing(s, p, now, &rate);
	struct condition *cond;
	const struct gr_site *grower;
	struct sbuf ev, sum;

	if (!grows && count < s->min_count) {
		if (p->cond_id) {
			log_info("goroutines: pid %d (%s): back to %lld goroutines, %.1f/s", p->pid,
				 p->target.comm, (long long)count, rate);
			s->sink.clear(s->sink.ctx, p->cond_id);
			p->cond_id = 0;
		}
		p->growing = false;
		return;
	}
	cond = calloc(1, sizeof(*cond));
	if (!cond)
		return;
	sites_resolve(p);
	grower = grows ? site_growing(p) : NULL;
	cond->kind = REFLEX_COND_GOROUTINES;
	cond->target = p->target;
	sbuf_init(&sum, cond->summary, sizeof(cond->summary));
	sbuf_init(&ev, cond->evidence, sizeof(cond->evidence));
	if (grows)
		sbuf_printf(&sum, "goroutines growing %.0f/s over %llus, %s%lld", rate,
			    (unsigned long long)(s->window_ns / NSEC_PER_SEC), p->absolute ? "" : "+",
			    (long long)count);
	else
		sbuf_printf(&sum, "%s%lld goroutines", p->absolute ? "" : "+", (long long)count);
	if (!p->absolute)
		sbuf_printf(&sum, " since attach");
	if (grower)
		sbuf_printf(&sum, ", made in %s (%s:%d)", grower->where.function, base_name(grower->where.file),
			    grower->where.line);
	sbuf_printf(&ev, "{\"count\":%lld,\"rate\":%.1f,\"growing\":%s,\"absolute\":%s,\"since_attach\":%s,"
		    "\"recovered\":%s,\"source\":\"%s\",",
		    (long long)count, rate, grows ? "true" : "false", p->absolute ? "true" : "false",
		    p->absolute ? "false" : "true", p->recovered ? "true" : "false", c ? "probes" : "runtime");
	if (c)
		sbuf_printf(&ev, "\"created\":%llu,\"exited\":%llu,", (unsigned long long)c->created,
			    (unsigned long long)c->exited);
	else
		sbuf_printf(&ev, "\"table_from\":\"%s\",\"layout_from\":\"%s\",",
			    p->bin->elf.table_from == GO_TABLE_SYMTAB ? "symtab" : "code",
			    p->bin->elf.g_layout.from_dwarf ? "dwarf" : "go release");
	if (p->nsites)
		sites_evidence(&ev, p, grower);
	sbuf_printf(&ev, "\"window_ms\":%llu,\"go_version\":", (unsigned long long)(s->window_ns / NSEC_PER_MSEC));
	sbuf_json_str(&ev, p->bin->elf.version);
	sbuf_printf(&ev, "}");
	if (p->cond_id) {
		/* a count condition that starts growing is, for hold, a new one */
		if (grows != p->growing)
			log_info("goroutines in pid %d (%s): %s", p->pid, p->target.comm, cond->summary);
		if (grows && !p->growing)
			p->cond_since = now;
		p->growing = grows;
		cond->id = p->cond_id;
		cond->since_ns = p->cond_since;
		s->sink.update(s->sink.ctx, cond);
	} else {
		p->growing = grows;
		cond->id = p->cond_id = condition_new_id();
		cond->since_ns = p->cond_since = now;
		log_info("goroutines in pid %d (%s): %s", p->pid, p->target.comm, cond->summary);
		s->sink.raise(s->sink.ctx, cond);
	}
	free(cond);
}

/* The kernel side's overflows, logged when they grow. */
static void goroutines_scan(void *state, uint64_t now)
{
	struct sense_goroutines *s = state;
	int fd = bpf_map__fd(s->skel->maps.counts);
	struct proctable_iter it = { 0 };
	struct gr_proc *p;

	if (now - s->last_sample_ns < s->sample_ns)
		return;
	s->last_sample_ns = now;
	(void)sensor_drops_report(&s->drops, NULL);
	while ((p = proctable_next(s->procs, &it))) {
		struct reflex_gr_counts c;
		__u32 key = (__u32)p->pid;
		bool counted = bpf_map_lookup_elem(fd, &key, &c) == 0;
		bool sampled = p->bin->kind == BIN_SAMPLED;
		int64_t count;

		/* no counts: its exit event is on its way, or was lost; and once
		 * a window anyway, should its exit have come before its entry */
		if ((!counted || p->sampled++ % GR_SAMPLES_PER_WINDOW == 0) &&
		    !proc_alive(p->pid, p->target.start_time)) {
			log_debug("goroutines: pid %d (%s) is gone, its state freed", p->pid, p->target.comm);
			(void)bpf_map_delete_elem(fd, &key);
			proc_drop(s, p);
			continue;
		}
		count = p->base + (int64_t)(c.created - c.exited);
		if (sampled)
			memset(s->seen, 0, sizeof(s->seen));
		if (!counted || (sampled && runtime_walk(p->pid, p->bin, p->bias, &count, s->seen)))
			continue;
		if (sampled)
			sites_update(s, p, now);
		if (!p->nsamples)
			p->first_ns = now;
		p->samples[p->head] = (struct gr_sample){ now, count };
		p->head = (p->head + 1) % GR_SAMPLES;
		if (p->nsamples < GR_SAMPLES)
			p->nsamples++;
		evaluate(s, p, count, sampled ? NULL : &c, now);
	}
}

static int handle_event(void *ctx, void *data, size_t len)
{
	struct sense_goroutines *s = ctx;
	struct reflex_gr_event e;
	struct gr_proc *p;

	if (len < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	if (e.type == REFLEX_GR_EXEC) {
		consider(s, (pid_t)e.pid, e.time_ns);
	} else if (e.type == REFLEX_GR_EXIT && (p = proctable_find(s->procs, e.pid, NULL))) {
		log_debug("goroutines: pid %d (%s) exited, its state freed", p->pid, p->target.comm);
		proc_drop(s, p);
	}
	return 0;
}

/* Every process already running: the Go ones are watched from now. */
static void scan_proc(struct sense_goroutines *s)
{
	DIR *d = opendir("/proc");
	struct dirent *de;

	if (!d) {
		log_warn("goroutines: reading /proc: %s", strerror(errno));
		return;
	}
	while ((de = readdir(d))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0 || pid == getpid())
			continue;
		consider(s, (pid_t)pid, 0);
	}
	closedir(d);
}

static void goroutines_stop(void *state);

static const char *const goroutines_drops[REFLEX_GR_DROPS] = {
	[REFLEX_GR_DROP_MAP_FULL] = "goroutine counts dropped, the counts map was full",
	[REFLEX_GR_DROP_EVENT_LOST] = "exec/exit events lost, the ring buffer was full",
};

static void *goroutines_start(const struct sensor_env *env)
{
	struct sense_goroutines *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->sink = env->sink;
	s->loop = env->loop;
	s->window_ns = env->cfg->goroutine_window_ns;
	s->sample_ns = s->window_ns / GR_SAMPLES_PER_WINDOW;
	s->min_rate = (double)env->cfg->goroutine_min_rate;
	s->min_count = env->cfg->goroutine_min_count;
	s->probes = env->cfg->goroutine_probes;
	s->procs = proctable_new(sizeof(struct gr_proc));
	if (!s->procs) {
		err = -errno;
		goto fail;
	}
	s->skel = goroutines_bpf__open_and_load();
	if (!s->skel) {
		err = -errno;
		log_error("goroutines: loading the BPF programs: %s", strerror(-err));
		goto fail;
	}
	sensor_drops_open(&s->drops, "goroutines", bpf_map__fd(s->skel->maps.drops), goroutines_drops,
			  ARRAY_SIZE(goroutines_drops));
	/* exec and exit first: a Go program started during the /proc scan
	 * is then seen by one or the other */
	s->skel->links.gr_exec = bpf_program__attach(s->skel->progs.gr_exec);
	s->skel->links.gr_exit = s->skel->links.gr_exec ? bpf_program__attach(s->skel->progs.gr_exit) : NULL;
	if (!s->skel->links.gr_exit) {
		err = -errno;
		log_error("goroutines: attaching to sched_process_exec/exit: %s", strerror(-err));
		goto fail;
	}
	err = sensor_ring_open(&s->ring, s->loop, bpf_map__fd(s->skel->maps.events), handle_event, s,
			       "goroutines");
	if (err)
		goto fail;
	scan_proc(s);
	return s;
fail:
	goroutines_stop(s);
	errno = -err;
	return NULL;
}

static void goroutines_stop(void *state)
{
	struct sense_goroutines *s = state;
	struct proctable_iter it = { 0 };
	struct gr_proc *p;

	if (!s)
		return;
	sensor_ring_close(&s->ring);
	for (size_t i = 0; i < s->nbins; i++)
		binary_detach(&s->bins[i]);
	goroutines_bpf__destroy(s->skel);
	while (s->procs && (p = proctable_next(s->procs, &it)))
		free(p->sites);
	proctable_free(s->procs);
	free(s);
}

const struct sensor sensor_goroutines = {
	.name = "goroutines",
	.kinds = 1u << REFLEX_COND_GOROUTINES,
	.needs = {
		.kernel = "5.8 (ring buffers; tp_btf 5.5, uprobes)",
		.attach = "uprobes on each Go binary's runtime.newproc1 and goexit1, tp_btf/sched_process_exec and _exit",
		.progs = { BPF_PROG_TYPE_KPROBE, BPF_PROG_TYPE_TRACING },
		.maps = { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_ARRAY },
		.helpers = { KERNEL_HELPER(KPROBE, ringbuf_reserve), KERNEL_HELPER(KPROBE, get_current_pid_tgid),
			     KERNEL_HELPER(KPROBE, ktime_get_ns) },
		.objects = { goroutines_bpf__elf_bytes },
	},
	.start = goroutines_start,
	.scan = goroutines_scan,
	.stop = goroutines_stop,
};
