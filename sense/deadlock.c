/* The wait-for graph: each thread blocked on a lock points at the lock's
 * owner. glibc keeps the owner's tid inside the mutex (__owner, 8 bytes past
 * the futex word, or the word itself for PI and robust mutexes), so the
 * owner costs one process_vm_readv per long waiter, and nothing at all on
 * the uncontended path. Every waiter has at most one outgoing edge, so a
 * deadlock is a cycle of waiters that each wait on the next one's lock. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>

#include "lib/kernel.h"
#include "lib/log.h"
#include "lib/util.h"
#include "sense/deadlock.h"
#include "sense/identity.h"
#include "sense/symbols.h"
#include "bpf/deadlock.h"
#include "deadlock.skel.h"

#define FUTEX_TID_MASK 0x3fffffff
/* glibc's lll_lock waits with this value in the word: "locked, waiters" */
#define GLIBC_LOCK_CONTENDED 2
#define GLIBC_MUTEX_ROBUST 0x10
#define GLIBC_MUTEX_KIND_BITS 0x3ff
#define CYCLE_EVIDENCE_MAX 16
#define STACK_FRAMES 12

enum lock_type { LOCK_NONE, LOCK_MUTEX, LOCK_PI_MUTEX };

struct waiter {
	struct reflex_futex_wait w;
	enum lock_type lock;
	__u32 owner_ns_tid;  /* as the process sees it */
	int next;            /* index of the waiting owner, or -1 */
	int color;
	struct user_regs regs; /* where its syscall left user space */
};

/* A member of a confirmed cycle or stall, by name: found once, when it is
 * confirmed (its threads sleep for good, so their stacks do not change). */
struct thread_names {
	char function[96];   /* the blocking function: the first caller outside the C library */
	char lock[96];       /* what it waits on: "ledger_lock", "[heap]+0x2a0" */
	struct frame frames[STACK_FRAMES];
	int nframes;
};

/* A cycle seen in a scan. Reported once seen twice with the same members
 * in the same waits (a member that woke and slept again has a new since):
 * a transient race in reading the locks cannot look like that. */
struct cycle {
	enum condition_kind kind;  /* a deadlock (a cycle) or a stall (everyone) */
	__u32 pid;
	int n;
	__u32 tids[CYCLE_EVIDENCE_MAX];
	__u64 since[CYCLE_EVIDENCE_MAX];
	uint64_t cond_id;    /* 0 until raised */
	struct target target;
	struct thread_names *names; /* n of them, once raised; NULL if unreadable */
	bool seen;
};

/* A thread on the kernel's list of futex waiters. */
struct listed {
	__u32 tid, pid;
};

struct sense_deadlock {
	struct deadlock_bpf *skel;
	bool list;                         /* the kernel lists the waiters (6.1+) */
	__u32 *tids, *pids;                /* the list as read, REFLEX_WAITERS_MAX each */
	struct listed *listed;             /* the same, sorted by pid */
	struct sensor_ring ring;
	struct ev_loop *loop;
	uint64_t min_wait_ns, stall_after_ns;
	bool stacks;                       /* name threads by their stacks (not --no-stacks) */
	struct condition_sink sink;
	struct reflex_wait_record *records; /* what the scan iterator wrote */
	struct waiter *waiters;
	size_t cap;                        /* of both */
	struct cycle *cycles;
	size_t ncycles, cap_cycles;
	struct sensor_drop_counts drops;   /* the kernel's */
};

static const char *lock_type_name(enum lock_type t)
{
	return t == LOCK_PI_MUTEX ? "pi-mutex" : t == LOCK_MUTEX ? "mutex" : "other";
}

/* What the waiter waits on, and who holds it. Condition variables,
 * semaphores, joins and anything else without an owner get LOCK_NONE:
 * they are never part of a deadlock. */
static void find_owner(struct waiter *wt)
{
	__u32 cmd = wt->w.op & REFLEX_FUTEX_CMD_MASK;
	__s32 m[5]; /* __lock, __count, __owner, __nusers, __kind */

	wt->lock = LOCK_NONE;
	if (cmd == REFLEX_FUTEX_LOCK_PI || cmd == REFLEX_FUTEX_LOCK_PI2) {
		if (read_process_memory((pid_t)wt->w.pid, wt->w.uaddr, m, sizeof(m[0])))
			return;
		wt->lock = LOCK_PI_MUTEX;
		wt->owner_ns_tid = (__u32)m[0] & FUTEX_TID_MASK;
		return;
	}
	if ((cmd != REFLEX_FUTEX_WAIT && cmd != REFLEX_FUTEX_WAIT_BITSET) ||
	    wt->w.val != GLIBC_LOCK_CONTENDED)
		return;
	if (read_process_memory((pid_t)wt->w.pid, wt->w.uaddr, m, sizeof(m)) ||
	    m[0] != GLIBC_LOCK_CONTENDED || (m[4] & ~GLIBC_MUTEX_KIND_BITS))
		return;
	wt->owner_ns_tid = (__u32)(m[4] & GLIBC_MUTEX_ROBUST ? m[0] & FUTEX_TID_MASK : m[2]);
	if (wt->owner_ns_tid && (__s32)wt->owner_ns_tid > 0)
		wt->lock = LOCK_MUTEX;
}

static int by_pid_tid(const void *a, const void *b)
{
	const struct waiter *x = a, *y = b;

	if (x->w.pid != y->w.pid)
		return x->w.pid < y->w.pid ? -1 : 1;
	return x->w.tid < y->w.tid ? -1 : x->w.tid > y->w.tid;
}

static struct cycle *find_cycle(struct sense_deadlock *s, const struct cycle *c)
{
	for (size_t i = 0; i < s->ncycles; i++) {
		struct cycle *o = &s->cycles[i];

		if (o->kind == c->kind && o->pid == c->pid && o->n == c->n &&
		    memcmp(o->tids, c->tids, (size_t)c->n * sizeof(c->tids[0])) == 0)
			return o;
	}
	return NULL;
}

/* The blocking function of a stack: the first frame outside the object the
 * wait is in (the C library's lock code), else the innermost one. */
static void blocking_function(const struct frame *f, int n, char *name, size_t size)
{
	int i = 0;

	while (i < n && !strcmp(f[i].object, f[0].object))
		i++;
	if (i == n || !f[i].function[0])
		i = 0;
	str_copy(name, size, n ? f[i].function : "");
}

/* Names members' functions, stacks and locks: once, when they are
 * confirmed, from the registers the scan read (no thread is stopped). NULL
 * when out of memory; a process that cannot be read gives empty names. */
static struct thread_names *name_threads(const struct waiter *g, const int *members, int n)
{
	struct thread_names *names = calloc((size_t)n, sizeof(*names));
	uint64_t start = clock_mono_ns();
	struct symbols *sym;

	if (!names)
		return NULL;
	sym = symbols_open((pid_t)g[members[0]].w.pid);
	if (!sym)
		log_warn("deadlock: pid %u's objects cannot be read, its threads stay unnamed: %s",
			 g[members[0]].w.pid, strerror(errno));
	for (int i = 0; i < n; i++) {
		const struct waiter *wt = &g[members[i]];
		struct thread_names *t = &names[i];

		snprintf(t->lock, sizeof(t->lock), "0x%llx", (unsigned long long)wt->w.uaddr);
		if (!sym)
			continue;
		t->nframes = symbols_unwind(sym, (pid_t)wt->w.tid, &wt->regs, t->frames, STACK_FRAMES);
		blocking_function(t->frames, t->nframes, t->function, sizeof(t->function));
		symbols_data_name(sym, wt->w.uaddr, t->lock, sizeof(t->lock));
	}
	symbols_close(sym);
	log_debug("deadlock: named %d threads of pid %u in %.1f ms", n, g[members[0]].w.pid,
		  (double)(clock_mono_ns() - start) / 1e6);
	return names;
}

/* member i as the finding's subject: "transfer_funds()", or its thread */
static void thread_name(struct sbuf *b, const struct waiter *g, const int *members, int i,
			const struct thread_names *names)
{
	if (names && names[i].function[0])
		sbuf_printf(b, "%s()", names[i].function);
	else
		sbuf_printf(b, "thread %u", g[members[i]].w.tid);
}

/* The locks member i holds that other members wait for: written as
 * "holds a, b" (prefix before the first), and how many. */
static int describe_holds(struct sbuf *b, const struct waiter *g, const int *members, int n, int i,
			  const struct thread_names *names, const char *prefix, bool json)
{
	int held = 0;

	for (int k = 0; k < n; k++) {
		if (g[members[k]].next != members[i] || g[members[k]].lock == LOCK_NONE)
			continue;
		/* the same lock, waited for by several, once */
		bool seen = false;

		for (int j = 0; j < k; j++)
			seen |= g[members[j]].next == members[i] && g[members[j]].lock != LOCK_NONE &&
				g[members[j]].w.uaddr == g[members[k]].w.uaddr;
		if (seen)
			continue;
		sbuf_puts(b, held++ ? (json ? "," : ", ") : prefix);
		if (json)
			sbuf_json_str(b, names[k].lock);
		else
			sbuf_puts(b, names[k].lock);
	}
	return held;
}

/* The finding, one clause a member: "transfer_funds() holds account_lock,
 * waits for ledger_lock; audit_ledger() holds ...". */
static void describe_finding(struct sbuf *sum, const struct waiter *g, const int *members, int n,
			     const struct thread_names *names)
{
	for (int i = 0; i < n; i++) {
		const struct waiter *wt = &g[members[i]];

		if (i)
			sbuf_puts(sum, "; ");
		thread_name(sum, g, members, i, names);
		if (describe_holds(sum, g, members, n, i, names, " holds ", false))
			sbuf_puts(sum, ",");
		if (n == 1)
			sbuf_printf(sum, " waits for %s, which it holds itself", names[i].lock);
		else if (wt->lock == LOCK_NONE)
			sbuf_printf(sum, " waits on %s (no owner: not a lock)", names[i].lock);
		else
			sbuf_printf(sum, " waits for %s", names[i].lock);
	}
}

/* A frame as one string: "transfer_funds+0x1f deadlock.c:62 (deadlock)". */
static void describe_frame(struct sbuf *ev, const struct frame *f)
{
	char text[320];
	struct sbuf b;

	sbuf_init(&b, text, sizeof(text));
	if (f->function[0])
		sbuf_printf(&b, "%s+0x%llx", f->function, (unsigned long long)f->offset);
	else
		sbuf_printf(&b, "0x%llx", (unsigned long long)f->pc);
	if (f->file[0])
		sbuf_printf(&b, " %s:%d", f->file, f->line);
	if (f->object[0])
		sbuf_printf(&b, " (%s)", f->object);
	sbuf_json_str(ev, text);
}

/* The waits of members as evidence: who waits on what, held by whom, and,
 * once named, in which function, with up to frames of the stack. */
static void describe_waits(struct sbuf *ev, const struct waiter *g, const int *members, int n,
			   const struct thread_names *names, int frames, uint64_t now)
{
	for (int i = 0; i < n && i < CYCLE_EVIDENCE_MAX; i++) {
		const struct waiter *wt = &g[members[i]];

		sbuf_printf(ev, "%s{\"tid\":%u,\"ns_tid\":%u,\"waits_on\":\"0x%llx\",\"lock\":\"%s\","
			    "\"held_by_tid\":%u,\"blocked_ms\":%llu",
			    i ? "," : "", wt->w.tid, wt->w.ns_tid, (unsigned long long)wt->w.uaddr,
			    lock_type_name(wt->lock), wt->next >= 0 ? g[wt->next].w.tid : wt->owner_ns_tid,
			    (unsigned long long)((now - wt->w.since_ns) / NSEC_PER_MSEC));
		if (names) {
			const struct thread_names *t = &names[i];

			sbuf_puts(ev, ",\"lock_name\":");
			sbuf_json_str(ev, t->lock);
			sbuf_puts(ev, ",\"blocked_in\":");
			sbuf_json_str(ev, t->function);
			sbuf_puts(ev, ",\"holds\":[");
			describe_holds(ev, g, members, n, i, names, "", true);
			sbuf_puts(ev, "],\"stack\":[");
			for (int f = 0; f < t->nframes && f < frames; f++) {
				if (f)
					sbuf_puts(ev, ",");
				describe_frame(ev, &t->frames[f]);
			}
			sbuf_puts(ev, "]");
		}
		sbuf_puts(ev, "}");
	}
}

static void describe(const struct waiter *g, const int *members, int n, enum condition_kind kind,
		     const struct thread_names *names, uint64_t now, struct condition *cond)
{
	struct sbuf ev, sum;
	uint64_t since = 0;
	char blocked[32];

	/* it began when its last member went to sleep */
	for (int i = 0; i < n; i++)
		if (g[members[i]].w.since_ns > since)
			since = g[members[i]].w.since_ns;
	cond->since_ns = since;
	sbuf_init(&sum, cond->summary, sizeof(cond->summary));
	if (kind == REFLEX_COND_STALL) {
		duration_format(now - since, blocked, sizeof(blocked));
		sbuf_printf(&sum, "all %d threads asleep in futex waits for %s, no lock cycle", n, blocked);
		if (names) {
			sbuf_puts(&sum, ": ");
			describe_finding(&sum, g, members, n, names);
		}
	} else if (names)
		describe_finding(&sum, g, members, n, names);
	else if (n == 1)
		sbuf_printf(&sum, "thread %u waits on %s 0x%llx that it already holds",
			    g[members[0]].w.tid, lock_type_name(g[members[0]].lock),
			    (unsigned long long)g[members[0]].w.uaddr);
	else {
		sbuf_printf(&sum, "lock cycle ");
		for (int i = 0; i <= n; i++)
			sbuf_printf(&sum, "%s%u", i ? "\u2192" : "", g[members[i % n]].w.tid);
		sbuf_printf(&sum, " (%d threads)", n);
	}
	/* whole stacks while they fit, then shorter ones, then no names: the
	 * evidence is always whole JSON */
	static const int frames[] = { STACK_FRAMES, 4, 1, 0 };

	for (size_t k = 0; k <= sizeof(frames) / sizeof(frames[0]); k++) {
		const struct thread_names *named = k < sizeof(frames) / sizeof(frames[0]) ? names : NULL;

		sbuf_init(&ev, cond->evidence, sizeof(cond->evidence));
		if (kind == REFLEX_COND_STALL)
			sbuf_printf(&ev, "{\"threads\":%d,\"blocked_ms\":%llu,\"waits\":[", n,
				    (unsigned long long)((now - since) / NSEC_PER_MSEC));
		else
			sbuf_printf(&ev, "{\"threads\":%d,\"self_deadlock\":%s,\"formed_ms_ago\":%llu,"
				    "\"cycle\":[", n, n == 1 ? "true" : "false",
				    (unsigned long long)((now - since) / NSEC_PER_MSEC));
		describe_waits(&ev, g, members, n, named, named ? frames[k] : 0, now);
		sbuf_printf(&ev, "]}");
		if (!ev.truncated || !named)
			return;
	}
}

/* members of g, one process's waiters, are a deadlock or a stall: raise it
 * once it is confirmed, refresh its evidence after that. */
static void report(struct sense_deadlock *s, struct waiter *g, const int *members, int n,
		   enum condition_kind kind, uint64_t now)
{
	struct cycle c = { .kind = kind, .pid = g[members[0]].w.pid, .n = n }, *prev;
	struct condition *cond;

	for (int k = 0; k < n; k++) {
		c.tids[k] = g[members[k]].w.tid;
		c.since[k] = g[members[k]].w.since_ns;
	}
	prev = find_cycle(s, &c);
	if (prev) {
		prev->seen = true;
		if (memcmp(prev->since, c.since, (size_t)n * sizeof(c.since[0]))) {
			/* a member woke and waited again: start over */
			memcpy(prev->since, c.since, sizeof(c.since));
			return;
		}
		cond = calloc(1, sizeof(*cond));
		if (!cond)
			return;
		/* first confirmation: who it is, and its names; then fresh
		 * evidence each scan */
		if (!prev->cond_id) {
			if (identity_read((pid_t)c.pid, &prev->target)) {
				free(cond);
				return;
			}
			free(prev->names);
			prev->names = s->stacks ? name_threads(g, members, n) : NULL;
		}
		cond->kind = kind;
		cond->target = prev->target;
		describe(g, members, n, kind, prev->names, now, cond);
		if (prev->cond_id) {
			cond->id = prev->cond_id;
			s->sink.update(s->sink.ctx, cond);
		} else {
			cond->id = prev->cond_id = condition_new_id();
			log_info("%s in pid %u (%s): %s", condition_kind_name(kind), c.pid,
				 cond->target.comm, cond->summary);
			s->sink.raise(s->sink.ctx, cond);
		}
		free(cond);
		return;
	}
	if (s->ncycles == s->cap_cycles) {
		size_t cap = s->cap_cycles ? 2 * s->cap_cycles : 8;
		struct cycle *grown = realloc(s->cycles, cap * sizeof(*grown));

		if (!grown)
			return;
		s->cycles = grown;
		s->cap_cycles = cap;
	}
	c.seen = true;
	s->cycles[s->ncycles++] = c;
}

/* A cycle among g[] reached from start. */
static void report_cycle(struct sense_deadlock *s, struct waiter *g, int start, uint64_t now)
{
	int members[CYCLE_EVIDENCE_MAX], rotated[CYCLE_EVIDENCE_MAX], n = 0, i = start, first = 0;

	do {
		if (n == CYCLE_EVIDENCE_MAX)
			break;
		members[n++] = i;
		i = g[i].next;
	} while (i != start);
	/* walk order, starting from the smallest tid, so the key is stable */
	for (int k = 1; k < n; k++)
		if (g[members[k]].w.tid < g[members[first]].w.tid)
			first = k;
	for (int k = 0; k < n; k++)
		rotated[k] = members[(first + k) % n];
	report(s, g, rotated, n, REFLEX_COND_DEADLOCK, now);
}

/* One process's long waiters g[0..n): link each to its waiting owner and
 * walk the links. */
static void scan_process(struct sense_deadlock *s, struct waiter *g, int n, uint64_t now)
{
	for (int i = 0; i < n; i++) {
		find_owner(&g[i]);
		g[i].next = -1;
		g[i].color = 0;
	}
	for (int i = 0; i < n; i++) {
		if (g[i].lock == LOCK_NONE)
			continue;
		for (int j = 0; j < n; j++)
			if (g[j].w.ns_tid == g[i].owner_ns_tid)
				g[i].next = j;
	}
	bool cycle = false;

	for (int i = 0; i < n; i++) {
		int j = i;

		/* 1: on the current walk, 2: finished */
		while (j >= 0 && g[j].color == 0) {
			g[j].color = 1;
			j = g[j].next;
		}
		if (j >= 0 && g[j].color == 1) {
			report_cycle(s, g, j, now);
			cycle = true;
		}
		for (j = i; j >= 0 && g[j].color == 1; j = g[j].next)
			g[j].color = 2;
	}
	/* every thread asleep that long, and no cycle to blame: a stall */
	if (!cycle && s->stall_after_ns && (__u32)n == g[0].w.threads) {
		int members[CYCLE_EVIDENCE_MAX], m = 0;

		for (int i = 0; i < n; i++)
			if (now - g[i].w.since_ns < s->stall_after_ns)
				return;
		for (int i = 0; i < n && m < CYCLE_EVIDENCE_MAX; i++)
			members[m++] = i;
		report(s, g, members, m, REFLEX_COND_STALL, now);
	}
}

static void clear_cycle(struct sense_deadlock *s, size_t i)
{
	if (s->cycles[i].cond_id)
		s->sink.clear(s->sink.ctx, s->cycles[i].cond_id);
	free(s->cycles[i].names);
	s->cycles[i] = s->cycles[--s->ncycles];
}

/* Runs a scan iterator, link, and appends the waits it writes (those
 * older than min_wait) to s->records[*n...]. 0 or -errno. */
static int read_iter(struct sense_deadlock *s, struct bpf_link *link, size_t *n)
{
	int fd = bpf_iter_create(bpf_link__fd(link));
	size_t len = *n * sizeof(*s->records), size = s->cap * sizeof(*s->records);
	ssize_t got = 0;
	int err = 0;

	if (fd < 0)
		return -errno;
	for (;;) {
		if (len == size) {
			size_t cap = s->cap ? 2 * s->cap : 256;
			void *r = realloc(s->records, cap * sizeof(*s->records));
			void *w = r ? realloc(s->waiters, cap * sizeof(*s->waiters)) : NULL;

			if (r)
				s->records = r;
			if (!w) {
				close(fd);
				return -ENOMEM;
			}
			s->waiters = w;
			s->cap = cap;
			size = cap * sizeof(*s->records);
		}
		got = read(fd, (char *)s->records + len, size - len);
		if (got < 0 && errno == EINTR)
			continue;
		if (got <= 0)
			break;
		len += (size_t)got;
	}
	if (got < 0)
		err = -errno;
	close(fd);
	*n = len / sizeof(*s->records);
	return err;
}

static int by_pid(const void *a, const void *b)
{
	const struct listed *x = a, *y = b;

	return x->pid < y->pid ? -1 : x->pid > y->pid;
}

/* Reads the kernel's list of waiting threads into s->listed, sorted by
 * pid. The count, or -errno. */
static int read_list(struct sense_deadlock *s)
{
	int fd = bpf_map__fd(s->skel->maps.waiters), err = 0;
	__u32 batch, count;
	size_t n = 0;

	if (!s->tids) {
		s->tids = malloc(REFLEX_WAITERS_MAX * sizeof(*s->tids));
		s->pids = malloc(REFLEX_WAITERS_MAX * sizeof(*s->pids));
		s->listed = malloc(REFLEX_WAITERS_MAX * sizeof(*s->listed));
		if (!s->tids || !s->pids || !s->listed) {
			free(s->tids);
			free(s->pids);
			free(s->listed);
			s->tids = s->pids = NULL;
			s->listed = NULL;
			return -ENOMEM;
		}
	}
	/* a batch as big as the map reads it all at once; the loop is for
	 * entries added meanwhile */
	while (!err && n < REFLEX_WAITERS_MAX) {
		count = (__u32)(REFLEX_WAITERS_MAX - n);
		err = bpf_map_lookup_batch(fd, n ? &batch : NULL, &batch, s->tids + n, s->pids + n,
					   &count, NULL);
		n += count;
	}
	if (err && errno != ENOENT)
		return -errno;
	for (size_t i = 0; i < n; i++)
		s->listed[i] = (struct listed){ .tid = s->tids[i], .pid = s->pids[i] };
	qsort(s->listed, n, sizeof(*s->listed), by_pid);
	return (int)n;
}

static const char *const deadlock_drops[REFLEX_DEADLOCK_DROPS] = {
	[REFLEX_DEADLOCK_DROP_WAITS] = "futex waits not recorded: no task storage, or the waiters list full",
	[REFLEX_DEADLOCK_DROP_ENDS] = "long futex waits' ends not reported: the ring buffer was full",
};

/* Runs the scan over the processes on the list, one iterator each with a
 * pid filter: only their threads are visited. */
static int scan_listed(struct sense_deadlock *s, size_t *n)
{
	int listed = read_list(s), err = 0;

	if (listed < 0)
		return listed;
	for (int i = 0, j; i < listed && !err; i = j) {
		union bpf_iter_link_info info = { .task.pid = s->listed[i].pid };
		DECLARE_LIBBPF_OPTS(bpf_iter_attach_opts, opts, .link_info = &info,
				    .link_info_len = sizeof(info));
		struct bpf_link *link;

		for (j = i + 1; j < listed && s->listed[j].pid == s->listed[i].pid; j++)
			;
		link = bpf_program__attach_iter(s->skel->progs.scan_waits, &opts);
		if (!link)
			return -errno;
		err = read_iter(s, link, n);
		bpf_link__destroy(link);
	}
	return err;
}

/* The scan: the waits older than min_wait, into s->records. The count, or
 * -errno. */
static int read_waits(struct sense_deadlock *s)
{
	size_t n = 0;
	int err = s->list ? scan_listed(s, &n) : read_iter(s, s->skel->links.scan_waits, &n);

	return err ? err : (int)n;
}

static void deadlock_scan(void *state, uint64_t now)
{
	struct sense_deadlock *s = state;
	int n = read_waits(s);

	(void)sensor_drops_report(&s->drops, NULL);
	if (n < 0) {
		log_warn("deadlock: scanning the waits: %s", strerror(-n));
		return;
	}
	for (int i = 0; i < n; i++) {
		const struct reflex_wait_record *r = &s->records[i];
		struct user_regs *u = &s->waiters[i].regs;

		s->waiters[i].w = r->w;
		u->pc = r->pc;
		u->nregs = r->nregs < REFLEX_UREGS_MAX ? r->nregs : REFLEX_UREGS_MAX;
		memcpy(u->regs, r->regs, sizeof(u->regs));
	}
	qsort(s->waiters, (size_t)n, sizeof(s->waiters[0]), by_pid_tid);
	for (size_t i = 0; i < s->ncycles; i++)
		s->cycles[i].seen = false;
	for (int i = 0, j; i < n; i = j) {
		for (j = i + 1; j < n && s->waiters[j].w.pid == s->waiters[i].w.pid; j++)
			;
		scan_process(s, s->waiters + i, j - i, now);
	}
	for (size_t i = 0; i < s->ncycles;) {
		if (s->cycles[i].seen)
			i++;
		else
			clear_cycle(s, i);
	}
}

/* A long wait ended: a cycle it was part of is broken now, not at the next
 * scan. */
static int handle_event(void *ctx, void *data, size_t len)
{
	struct sense_deadlock *s = ctx;
	struct reflex_deadlock_event e;

	if (len < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	for (size_t i = 0; i < s->ncycles;) {
		bool member = false;

		for (int k = 0; k < s->cycles[i].n; k++)
			member |= s->cycles[i].tids[k] == e.tid;
		if (member) {
			log_debug("deadlock: tid %u stopped waiting after %llu ms", e.tid,
				  (unsigned long long)(e.waited_ns / NSEC_PER_MSEC));
			clear_cycle(s, i);
		} else {
			i++;
		}
	}
	return 0;
}

static void deadlock_stop(void *state);

static void *deadlock_start(const struct sensor_env *env)
{
	struct sense_deadlock *s = calloc(1, sizeof(*s));
	size_t seeded = 0;
	int err;

	if (!s)
		return NULL;
	s->min_wait_ns = env->cfg->min_wait_ns;
	s->stall_after_ns = env->cfg->stall_after_ns;
	s->stacks = !env->cfg->no_stacks;
	s->sink = env->sink;
	s->loop = env->loop;
	s->skel = deadlock_bpf__open();
	if (!s->skel) {
		err = -errno;
		log_error("deadlock: opening the BPF object: %s", strerror(-err));
		goto fail;
	}
	s->skel->rodata->long_wait_ns = s->min_wait_ns;
	s->skel->rodata->min_wait_ns = s->min_wait_ns;
	s->skel->rodata->futex_nr = SYS_futex;
	s->skel->rodata->switch_has_prev_state = kernel_tp_args("sched_switch") >= 4;
	s->skel->rodata->capture_regs = s->stacks;
	/* the list needs task iterators with a pid filter (6.1, whose
	 * bpf_iter_task_type came with them); without, every task is scanned */
	s->list = kernel_btf_has("bpf_iter_task_type", BTF_KIND_ENUM) == 1;
	s->skel->rodata->list_waiters = s->list;
	err = deadlock_bpf__load(s->skel);
	if (err) {
		log_error("deadlock: loading the BPF programs: %s", strerror(-err));
		goto fail;
	}
	sensor_drops_open(&s->drops, "deadlock", bpf_map__fd(s->skel->maps.drops), deadlock_drops,
			  ARRAY_SIZE(deadlock_drops));
	err = deadlock_bpf__attach(s->skel);
	if (err) {
		log_error("deadlock: attaching to sched_switch and the task iterator: %s",
			  strerror(-err));
		goto fail;
	}
	log_debug("deadlock: the scan visits %s",
		  s->list ? "the processes with threads in futex waits" : "every task");
	/* adopt the threads already asleep in futex(2): a deadlock older
	 * than reflexd never switches again, so it would go unseen */
	s->skel->bss->seeding = true;
	err = read_iter(s, s->skel->links.scan_waits, &seeded);
	s->skel->bss->seeding = false;
	if (err < 0) {
		log_error("deadlock: scanning the threads already waiting: %s", strerror(-err));
		goto fail;
	}
	err = sensor_ring_open(&s->ring, s->loop, bpf_map__fd(s->skel->maps.events), handle_event, s,
			       "deadlock");
	if (err)
		goto fail;
	return s;
fail:
	deadlock_stop(s);
	errno = -err;
	return NULL;
}

static void deadlock_stop(void *state)
{
	struct sense_deadlock *s = state;

	if (!s)
		return;
	sensor_ring_close(&s->ring);
	deadlock_bpf__destroy(s->skel);
	free(s->records);
	free(s->waiters);
	free(s->tids);
	free(s->pids);
	free(s->listed);
	for (size_t i = 0; i < s->ncycles; i++)
		free(s->cycles[i].names);
	free(s->cycles);
	free(s);
}

const struct sensor sensor_deadlock = {
	.name = "deadlock",
	.kinds = 1u << REFLEX_COND_DEADLOCK | 1u << REFLEX_COND_STALL,
	.needs = {
		.kernel = "5.15 (bpf_task_pt_regs; task storage 5.11, iter/task and ring buffers 5.8)",
		.attach = "tp_btf/sched_switch, iter/task",
		.progs = { BPF_PROG_TYPE_TRACING },
		.maps = { BPF_MAP_TYPE_TASK_STORAGE, BPF_MAP_TYPE_RINGBUF },
		.helpers = { KERNEL_HELPER(KPROBE, task_storage_get), KERNEL_HELPER(KPROBE, task_pt_regs),
			     KERNEL_HELPER(KPROBE, ringbuf_reserve), KERNEL_HELPER(KPROBE, ktime_get_ns),
			     KERNEL_HELPER(TRACING, seq_write) },
		.objects = { deadlock_bpf__elf_bytes },
	},
	.start = deadlock_start,
	.scan = deadlock_scan,
	.stop = deadlock_stop,
};
