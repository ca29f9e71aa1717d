/* Goroutines per Go process, from entry uprobes on the runtime's goroutine
 * create (runtime.newproc1) and exit (runtime.goexit1). A Go program is
 * recognised by its ELF: a .go.buildinfo section (its Go version) or the
 * runtime.buildVersion symbol; the two functions are found in its symbol
 * table or, in a stripped binary (-ldflags=-s), in the runtime's own
 * function table (.gopclntab). A binary where neither has them is said so,
 * once per process.
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
 * With --goroutine-sample, a binary whose runtime can be read gets no
 * probes: each sample reads the live count from the runtime instead.
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
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/log.h"
#include "lib/util.h"
#include "sense/go_elf.h"
#include "sense/goroutines.h"
#include "sense/identity.h"
#include "bpf/goroutines.h"
#include "goroutines.skel.h"

#define GR_BINARIES_MAX 256
#define GR_SAMPLES_PER_WINDOW 20
#define GR_SAMPLES 32  /* a window's samples and some slack */

/* WATCHED: probed; SAMPLED: its runtime's state read instead
 * (--goroutine-sample); NO_FUNCS: Go, but the two functions are in neither
 * its symbol table nor its .gopclntab (stripped and older than Go 1.18) */
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
};

struct sense_goroutines {
	struct goroutines_bpf *skel;
	struct sensor_ring ring;
	struct ev_loop *loop;
	struct condition_sink sink;
	uint64_t window_ns, sample_ns, last_sample_ns;
	double min_rate;
	int64_t min_count;
	bool sample;               /* --goroutine-sample */
	struct gr_binary bins[GR_BINARIES_MAX];
	size_t nbins;
	struct gr_proc *procs;
	size_t nprocs, cap_procs;
	/* overflows: the kernel's (stats map) as last logged, and our own */
	uint64_t kernel_drops[REFLEX_GR_STAT_COUNT];
	uint64_t procs_dropped, bins_dropped;
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
	else if (s->sample && g.layout.known)
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

static struct gr_proc *proc_find(struct sense_goroutines *s, pid_t pid)
{
	for (size_t i = 0; i < s->nprocs; i++)
		if (s->procs[i].pid == pid)
			return &s->procs[i];
	return NULL;
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

#define GR_MAX_PS 4096 /* GOMAXPROCS is at most 1024 today */

/* The goroutines alive in pid, from its runtime's own state: every g ever
 * allocated (allglen) less the dead ones waiting for reuse on the
 * scheduler's free list and on each P's. That is gcount() without leaving
 * out the runtime's own goroutines, which the uprobes count as well.
 * Read while the process runs, so off by the goroutines made or ended
 * during the read. 0 or -errno. */
static int runtime_live(pid_t pid, const struct gr_binary *b, uint64_t bias, int64_t *live)
{
	const struct go_elf *g = &b->elf;
	uint64_t allglen, allp[3], *ps = NULL;
	int32_t n;
	int err;

	if ((err = read_process_memory(pid, bias + g->addr_allglen, &allglen, sizeof(allglen))) ||
	    (err = read_process_memory(pid, bias + g->addr_sched + g->layout.sched_gfree_n, &n, sizeof(n))) ||
	    (err = read_process_memory(pid, bias + g->addr_allp, allp, sizeof(allp))))
		return err;
	*live = (int64_t)allglen - n;
	/* allp is a slice: pointer, length, capacity; empty until the runtime
	 * starts (a process seen at its exec), when it has no goroutines yet */
	if (allp[1] == 0)
		return allglen == 0 ? 0 : -EAGAIN;
	if (allp[1] > GR_MAX_PS)
		return -EINVAL;
	ps = calloc(allp[1], sizeof(*ps));
	if (!ps)
		return -ENOMEM;
	err = read_process_memory(pid, allp[0], ps, allp[1] * sizeof(*ps));
	for (uint64_t i = 0; !err && i < allp[1]; i++) {
		if (!ps[i])
			continue;
		err = read_process_memory(pid, ps[i] + g->layout.p_gfree_n, &n, sizeof(n));
		*live -= n;
	}
	free(ps);
	return err ? err : *live >= 0 ? 0 : -ERANGE;
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
		if (runtime_live(p->pid, p->bin, p->bias, &live))
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
	*p = s->procs[--s->nprocs];
}

/* A process running a Go binary, or one that may be (at its exec, exec_ns
 * the kernel's time of it; 0 from the startup scan): watch it. */
static void consider(struct sense_goroutines *s, pid_t pid, uint64_t exec_ns)
{
	struct reflex_gr_counts zero = { 0 };
	struct gr_binary *b;
	struct gr_proc *p;
	struct stat st;
	char path[64];
	__u32 key = (__u32)pid;
	bool readable;
	int err;

	p = proc_find(s, pid);
	if (p)
		proc_drop(s, p); /* it ran another image until now */
	snprintf(path, sizeof(path), "/proc/%d/exe", pid);
	if (stat(path, &st))
		return; /* gone already, or a kernel thread */
	b = binary_of(s, pid, &st);
	if (!b || b->kind == BIN_NOT_GO)
		return;
	if (b->kind != BIN_WATCHED && b->kind != BIN_SAMPLED) {
		struct target t;

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
	if (s->nprocs == REFLEX_GR_MAX_PROCS) {
		if (!s->procs_dropped++)
			log_warn("goroutines: more than %d Go processes; new ones are not watched",
				 REFLEX_GR_MAX_PROCS);
		return;
	}
	if (s->nprocs == s->cap_procs) {
		size_t cap = s->cap_procs ? 2 * s->cap_procs : 16;
		struct gr_proc *grown = realloc(s->procs, cap * sizeof(*grown));

		if (!grown)
			return;
		s->procs = grown;
		s->cap_procs = cap;
	}
	p = &s->procs[s->nprocs];
	memset(p, 0, sizeof(*p));
	if (identity_read(pid, &p->target))
		return;
	/* its runtime's state can be read where the binary says where it is */
	readable = b->elf.layout.known && (!b->elf.pie || !load_bias(pid, b, &p->bias));
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
	if (!proc_alive(pid, p->target.start_time)) {
		(void)bpf_map_delete_elem(bpf_map__fd(s->skel->maps.counts), &key);
		return;
	}
	p->pid = pid;
	p->bin = b;
	p->absolute = b->kind == BIN_SAMPLED || (exec_ns && b->attached_ns < exec_ns);
	if (!p->absolute && readable)
		recover_base(s, p);
	b->procs++;
	s->nprocs++;
	log_info("goroutines: watching pid %d (%s), %s, counting %s", pid, p->target.comm, b->elf.version,
		 b->kind == BIN_SAMPLED ? "by sampling its runtime's state" :
		 p->recovered ? "from its runtime's state" : p->absolute ? "from its start" : "from now");
}

/* Least-squares slope, per second, of the samples taken in [from, to];
 * false when there are fewer than 3. */
static bool slope(const struct gr_proc *p, uint64_t from, uint64_t to, double *rate)
{
	double n = 0, st = 0, sc = 0, stt = 0, stc = 0;

	for (unsigned i = 0; i < p->nsamples; i++) {
		const struct gr_sample *x = &p->samples[(p->head + GR_SAMPLES - 1 - i) % GR_SAMPLES];
		/* seconds before to: small numbers keep the sums exact enough */
		double t = ((double)x->t - (double)to) / 1e9, c = (double)x->count;

		if (x->t < from)
			break;
		if (x->t > to)
			continue;
		n++;
		st += t;
		sc += c;
		stt += t * t;
		stc += t * c;
	}
	if (n < 3 || n * stt - st * st <= 0)
		return false;
	*rate = (n * stc - st * sc) / (n * stt - st * st);
	return true;
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

/* Raises, refreshes or clears p's condition from its newest sample, count;
 * c: the probes' counters behind it, NULL when sampled from the runtime. */
static void evaluate(struct sense_goroutines *s, struct gr_proc *p, int64_t count,
		     const struct reflex_gr_counts *c, uint64_t now)
{
	double rate;
	bool grows = growing(s, p, now, &rate);
	struct condition *cond;
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
	sbuf_printf(&ev, "{\"count\":%lld,\"rate\":%.1f,\"growing\":%s,\"absolute\":%s,\"since_attach\":%s,"
		    "\"recovered\":%s,\"source\":\"%s\",",
		    (long long)count, rate, grows ? "true" : "false", p->absolute ? "true" : "false",
		    p->absolute ? "false" : "true", p->recovered ? "true" : "false", c ? "probes" : "runtime");
	if (c)
		sbuf_printf(&ev, "\"created\":%llu,\"exited\":%llu,", (unsigned long long)c->created,
			    (unsigned long long)c->exited);
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
static void check_drops(struct sense_goroutines *s)
{
	static const char *const what[REFLEX_GR_STAT_COUNT] = {
		[REFLEX_GR_MAP_FULL] = "goroutine counts dropped, the counts map was full",
		[REFLEX_GR_EVENT_LOST] = "exec/exit events lost, the ring buffer was full",
	};

	for (__u32 i = 0; i < REFLEX_GR_STAT_COUNT; i++) {
		__u64 v = 0;

		if (bpf_map_lookup_elem(bpf_map__fd(s->skel->maps.stats), &i, &v) || v == s->kernel_drops[i])
			continue;
		log_warn("goroutines: %llu %s (%llu in all)", (unsigned long long)(v - s->kernel_drops[i]),
			 what[i], (unsigned long long)v);
		sensor_drops("goroutines", v - s->kernel_drops[i]);
		s->kernel_drops[i] = v;
	}
}

static void goroutines_scan(void *state, uint64_t now)
{
	struct sense_goroutines *s = state;
	int fd = bpf_map__fd(s->skel->maps.counts);

	if (now - s->last_sample_ns < s->sample_ns)
		return;
	s->last_sample_ns = now;
	check_drops(s);
	for (size_t i = 0; i < s->nprocs;) {
		struct gr_proc *p = &s->procs[i];
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
		if (!counted || (sampled && runtime_live(p->pid, p->bin, p->bias, &count))) {
			i++;
			continue;
		}
		if (!p->nsamples)
			p->first_ns = now;
		p->samples[p->head] = (struct gr_sample){ now, count };
		p->head = (p->head + 1) % GR_SAMPLES;
		if (p->nsamples < GR_SAMPLES)
			p->nsamples++;
		evaluate(s, p, count, sampled ? NULL : &c, now);
		i++;
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
	} else if (e.type == REFLEX_GR_EXIT && (p = proc_find(s, (pid_t)e.pid))) {
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
	s->sample = env->cfg->goroutine_sample;
	s->skel = goroutines_bpf__open_and_load();
	if (!s->skel) {
		err = -errno;
		log_error("goroutines: loading the BPF programs: %s", strerror(-err));
		goto fail;
	}
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

	if (!s)
		return;
	sensor_ring_close(&s->ring);
	for (size_t i = 0; i < s->nbins; i++)
		binary_detach(&s->bins[i]);
	goroutines_bpf__destroy(s->skel);
	free(s->procs);
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
