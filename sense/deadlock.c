/* The wait-for graph: each thread blocked on a lock points at the lock's
 * owner. glibc keeps the owner's tid inside the mutex (__owner, 8 bytes past
 * the futex word, or the word itself for PI and robust mutexes), so the
 * owner costs one process_vm_readv per long waiter, and nothing at all on
 * the uncontended path. Every waiter has at most one outgoing edge, so a
 * deadlock is a cycle of waiters that each wait on the next one's lock. */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "core/log.h"
#include "core/util.h"
#include "sense/deadlock.h"
#include "sense/identity.h"
#include "bpf/deadlock.h"
#include "deadlock.skel.h"

#define FUTEX_TID_MASK 0x3fffffff
/* glibc's lll_lock waits with this value in the word: "locked, waiters" */
#define GLIBC_LOCK_CONTENDED 2
#define GLIBC_MUTEX_ROBUST 0x10
#define GLIBC_MUTEX_KIND_BITS 0x3ff
#define CYCLE_EVIDENCE_MAX 16

enum lock_type { LOCK_NONE, LOCK_MUTEX, LOCK_PI_MUTEX };

struct waiter {
	struct reflex_futex_wait w;
	enum lock_type lock;
	__u32 owner_ns_tid;  /* as the process sees it */
	int next;            /* index of the waiting owner, or -1 */
	int color;
};

/* A cycle seen in a scan. Reported once seen twice with the same members,
 * the same waits and no member having run: a transient race in reading
 * the locks cannot look like that. */
struct cycle {
	__u32 pid;
	int n;
	__u32 tids[CYCLE_EVIDENCE_MAX];
	__u64 since[CYCLE_EVIDENCE_MAX];
	__u32 runs;
	uint64_t cond_id;    /* 0 until raised */
	struct target target;
	bool seen;
};

struct sense_deadlock {
	struct deadlock_bpf *skel;
	struct ring_buffer *rb;
	struct ev_loop *loop;
	ev_io rb_watcher;
	struct sense_deadlock_config cfg;
	__u32 *keys;
	struct waiter *waiters;
	struct reflex_futex_wait *values;
	struct cycle *cycles;
	size_t ncycles, cap_cycles;
	uint64_t next_id;
};

static const char *lock_type_name(enum lock_type t)
{
	return t == LOCK_PI_MUTEX ? "pi-mutex" : t == LOCK_MUTEX ? "mutex" : "other";
}

static int read_remote(__u32 pid, __u64 addr, void *buf, size_t len)
{
	struct iovec local = { .iov_base = buf, .iov_len = len };
	struct iovec remote = { .iov_base = (void *)(uintptr_t)addr, .iov_len = len };

	return process_vm_readv((pid_t)pid, &local, 1, &remote, 1, 0) == (ssize_t)len ? 0 : -EFAULT;
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
		if (read_remote(wt->w.pid, wt->w.uaddr, m, sizeof(m[0])))
			return;
		wt->lock = LOCK_PI_MUTEX;
		wt->owner_ns_tid = (__u32)m[0] & FUTEX_TID_MASK;
		return;
	}
	if ((cmd != REFLEX_FUTEX_WAIT && cmd != REFLEX_FUTEX_WAIT_BITSET) ||
	    wt->w.val != GLIBC_LOCK_CONTENDED)
		return;
	if (read_remote(wt->w.pid, wt->w.uaddr, m, sizeof(m)) ||
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

		if (o->pid == c->pid && o->n == c->n &&
		    memcmp(o->tids, c->tids, (size_t)c->n * sizeof(c->tids[0])) == 0)
			return o;
	}
	return NULL;
}

static void describe(const struct waiter *g, const int *members, int n, uint64_t now,
		     struct condition *cond)
{
	struct sbuf ev, sum;
	uint64_t since = 0;

	for (int i = 0; i < n; i++)
		if (g[members[i]].w.since_ns > since)
			since = g[members[i]].w.since_ns;
	cond->since_ns = since;
	sbuf_init(&sum, cond->summary, sizeof(cond->summary));
	if (n == 1)
		sbuf_printf(&sum, "thread %u waits on %s 0x%llx that it already holds",
			    g[members[0]].w.tid, lock_type_name(g[members[0]].lock),
			    (unsigned long long)g[members[0]].w.uaddr);
	else {
		sbuf_printf(&sum, "lock cycle ");
		for (int i = 0; i <= n; i++)
			sbuf_printf(&sum, "%s%u", i ? "\u2192" : "", g[members[i % n]].w.tid);
		sbuf_printf(&sum, " (%d threads)", n);
	}
	sbuf_init(&ev, cond->evidence, sizeof(cond->evidence));
	sbuf_printf(&ev, "{\"threads\":%d,\"self_deadlock\":%s,\"formed_ms_ago\":%llu,\"cycle\":[",
		    n, n == 1 ? "true" : "false", (unsigned long long)((now - since) / NSEC_PER_MSEC));
	for (int i = 0; i < n && i < CYCLE_EVIDENCE_MAX; i++) {
		const struct waiter *wt = &g[members[i]];

		sbuf_printf(&ev, "%s{\"tid\":%u,\"ns_tid\":%u,\"waits_on\":\"0x%llx\",\"lock\":\"%s\","
			    "\"held_by_tid\":%u,\"blocked_ms\":%llu,\"off_cpu_ms\":%llu,\"runs\":%u}",
			    i ? "," : "", wt->w.tid, wt->w.ns_tid, (unsigned long long)wt->w.uaddr,
			    lock_type_name(wt->lock), g[wt->next].w.tid,
			    (unsigned long long)((now - wt->w.since_ns) / NSEC_PER_MSEC),
			    (unsigned long long)((now - wt->w.off_cpu_ns) / NSEC_PER_MSEC), wt->w.runs);
	}
	sbuf_printf(&ev, "]}");
}

/* A cycle among g[0..n) (one process) reached from start: raise it once it
 * is confirmed. */
static void report_cycle(struct sense_deadlock *s, struct waiter *g, int start, uint64_t now)
{
	int members[CYCLE_EVIDENCE_MAX], n = 0, i = start;
	struct cycle c = { .pid = g[start].w.pid }, *prev;
	struct condition *cond;

	/* walk order, starting from the smallest tid, so the key is stable */
	do {
		if (n == CYCLE_EVIDENCE_MAX)
			break;
		members[n++] = i;
		i = g[i].next;
	} while (i != start);
	{
		int first = 0, rotated[CYCLE_EVIDENCE_MAX];

		for (int k = 1; k < n; k++)
			if (g[members[k]].w.tid < g[members[first]].w.tid)
				first = k;
		for (int k = 0; k < n; k++)
			rotated[k] = members[(first + k) % n];
		memcpy(members, rotated, sizeof(rotated));
	}
	c.n = n;
	for (int k = 0; k < n; k++) {
		c.tids[k] = g[members[k]].w.tid;
		c.since[k] = g[members[k]].w.since_ns;
		c.runs += g[members[k]].w.runs;
	}
	prev = find_cycle(s, &c);
	if (prev) {
		bool same = prev->runs == c.runs &&
			    memcmp(prev->since, c.since, (size_t)n * sizeof(c.since[0])) == 0;

		prev->seen = true;
		if (!same) {
			/* a member woke and waited again: start over */
			prev->runs = c.runs;
			memcpy(prev->since, c.since, sizeof(c.since));
			return;
		}
		cond = calloc(1, sizeof(*cond));
		if (!cond)
			return;
		/* first confirmation: who it is; then fresh evidence each scan */
		if (!prev->cond_id && identity_read((pid_t)c.pid, &prev->target)) {
			free(cond);
			return;
		}
		cond->kind = REFLEX_COND_DEADLOCK;
		cond->target = prev->target;
		describe(g, members, n, now, cond);
		if (!prev->cond_id) {
			prev->cond_id = ++s->next_id;
			log_info("deadlock in pid %u (%s): %s", c.pid, cond->target.comm, cond->summary);
		}
		cond->id = prev->cond_id;
		s->cfg.sink.raise(s->cfg.sink.ctx, cond);
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
	for (int i = 0; i < n; i++) {
		int j = i;

		/* 1: on the current walk, 2: finished */
		while (j >= 0 && g[j].color == 0) {
			g[j].color = 1;
			j = g[j].next;
		}
		if (j >= 0 && g[j].color == 1)
			report_cycle(s, g, j, now);
		for (j = i; j >= 0 && g[j].color == 1; j = g[j].next)
			g[j].color = 2;
	}
}

static void clear_cycle(struct sense_deadlock *s, size_t i)
{
	if (s->cycles[i].cond_id)
		s->cfg.sink.clear(s->cfg.sink.ctx, s->cycles[i].cond_id);
	s->cycles[i] = s->cycles[--s->ncycles];
}

void sense_deadlock_scan(struct sense_deadlock *s, uint64_t now)
{
	int fd = bpf_map__fd(s->skel->maps.waits);
	__u32 count = REFLEX_DEADLOCK_MAX_WAITS, batch;
	int n = 0, err;

	err = bpf_map_lookup_batch(fd, NULL, &batch, s->keys, s->values, &count, NULL);
	if (err && err != -ENOENT) {
		log_warn("deadlock: reading the waits map: %s", strerror(-err));
		return;
	}
	for (__u32 i = 0; i < count; i++)
		if (now > s->values[i].since_ns && now - s->values[i].since_ns >= s->cfg.min_wait_ns)
			s->waiters[n++].w = s->values[i];
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

/* The thread id as its own pid namespace sees it: the last NSpid field. */
static __u32 read_ns_tid(__u32 pid, __u32 tid)
{
	char path[64], buf[2048], *line;

	snprintf(path, sizeof(path), "/proc/%u/task/%u/status", pid, tid);
	if (read_file(path, buf, sizeof(buf)) < 0 || !(line = strstr(buf, "\nNSpid:")))
		return tid;
	line[strcspn(line + 1, "\n") + 1] = '\0';
	return (__u32)strtoul(strrchr(line, '\t') ? strrchr(line, '\t') + 1 : line + 7, NULL, 10);
}

/* A thread already blocked when reflexd starts never passes sys_enter_futex
 * while it watches, so a deadlock older than reflexd would go unseen: read
 * such threads from /proc once. Their waits count from now, which can only
 * make a hold longer, never shorter. */
static void seed_waits(struct sense_deadlock *s)
{
	int fd = bpf_map__fd(s->skel->maps.waits), n = 0;
	uint64_t now = clock_mono_ns();
	DIR *proc = opendir("/proc");
	struct dirent *pe, *te;

	if (!proc)
		return;
	while ((pe = readdir(proc))) {
		__u32 pid = (__u32)strtoul(pe->d_name, NULL, 10);
		char task_path[64];
		DIR *tasks;

		if (!pid)
			continue;
		snprintf(task_path, sizeof(task_path), "/proc/%u/task", pid);
		tasks = opendir(task_path);
		if (!tasks)
			continue;
		while ((te = readdir(tasks))) {
			struct reflex_futex_wait w = { .since_ns = now, .off_cpu_ns = now };
			__u32 tid = (__u32)strtoul(te->d_name, NULL, 10);
			unsigned long long uaddr, op, val;
			char path[96], buf[256];
			long nr;

			if (!tid)
				continue;
			snprintf(path, sizeof(path), "%s/%u/syscall", task_path, tid);
			/* "202 0xuaddr 0xop 0xval ...": blocked in futex(2) */
			if (read_file(path, buf, sizeof(buf)) < 0 ||
			    sscanf(buf, "%ld %llx %llx %llx", &nr, &uaddr, &op, &val) != 4 ||
			    nr != SYS_futex || !REFLEX_FUTEX_BLOCKS(op))
				continue;
			w.pid = pid;
			w.tid = tid;
			w.ns_tid = read_ns_tid(pid, tid);
			w.uaddr = uaddr;
			w.op = (__u32)op;
			w.val = (__u32)val;
			/* a wait the kernel side saw begin meanwhile is the truer one */
			if (bpf_map_update_elem(fd, &w.tid, &w, BPF_NOEXIST) == 0)
				n++;
		}
		closedir(tasks);
	}
	closedir(proc);
	log_debug("deadlock: %d threads were already in futex waits", n);
}

static void rb_ready(struct ev_loop *loop, ev_io *w, int revents)
{
	struct sense_deadlock *s = w->data;

	(void)ring_buffer__consume(s->rb);
}

struct sense_deadlock *sense_deadlock_start(struct ev_loop *loop,
					    const struct sense_deadlock_config *cfg)
{
	struct sense_deadlock *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->cfg = *cfg;
	s->loop = loop;
	s->keys = calloc(REFLEX_DEADLOCK_MAX_WAITS, sizeof(*s->keys));
	s->values = calloc(REFLEX_DEADLOCK_MAX_WAITS, sizeof(*s->values));
	s->waiters = calloc(REFLEX_DEADLOCK_MAX_WAITS, sizeof(*s->waiters));
	if (!s->keys || !s->values || !s->waiters) {
		err = -ENOMEM;
		goto fail;
	}
	s->skel = deadlock_bpf__open();
	if (!s->skel) {
		err = -errno;
		log_error("deadlock: opening the BPF object: %s", strerror(-err));
		goto fail;
	}
	s->skel->rodata->long_wait_ns = cfg->min_wait_ns;
	err = deadlock_bpf__load(s->skel);
	if (err) {
		log_error("deadlock: loading the BPF programs: %s", strerror(-err));
		goto fail;
	}
	err = deadlock_bpf__attach(s->skel);
	if (err) {
		log_error("deadlock: attaching to sys_enter_futex/sys_exit_futex/sched_switch: %s",
			  strerror(-err));
		goto fail;
	}
	seed_waits(s);
	s->rb = ring_buffer__new(bpf_map__fd(s->skel->maps.events), handle_event, s, NULL);
	if (!s->rb) {
		err = -errno;
		log_error("deadlock: ring buffer: %s", strerror(-err));
		goto fail;
	}
	ev_io_init(&s->rb_watcher, rb_ready, ring_buffer__epoll_fd(s->rb), EV_READ);
	s->rb_watcher.data = s;
	ev_io_start(loop, &s->rb_watcher);
	return s;
fail:
	sense_deadlock_stop(s);
	errno = -err;
	return NULL;
}

void sense_deadlock_stop(struct sense_deadlock *s)
{
	if (!s)
		return;
	if (s->loop)
		ev_io_stop(s->loop, &s->rb_watcher);
	ring_buffer__free(s->rb);
	deadlock_bpf__destroy(s->skel);
	free(s->keys);
	free(s->values);
	free(s->waiters);
	free(s->cycles);
	free(s);
}
