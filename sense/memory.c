/* Arming is userspace's half of the reflex arc: it asks decide's arming
 * policy (model/arming.h, from the sensor's environment) which memory rule,
 * if any, watches each process, and writes that into the armed map. Every guard that can be judged before the crossing is judged
 * there: protected targets are never armed; an in_kernel rule whose
 * cooldown, budget or the global budget refuses it now is not armed, since
 * the kernel would act alone.
 *
 * Cost follows what changes, not what exists: /proc is walked at start,
 * when the rules change, and after the kernel lost a process event; else
 * the BPF programs report each exec, rename and exit, and only the
 * candidates (processes whose comm a memory rule may match) are judged,
 * as they change and again each REARM_INTERVAL for the guards that move
 * with time (cooldown, budgets, a condition that cleared). */
#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "lib/log.h"
#include "lib/proctable.h"
#include "lib/util.h"
#include "sense/identity.h"
#include "sense/memory.h"
#include "sense/rss.h"
#include "bpf/memory.h"
#include "memory.skel.h"

#define REARM_INTERVAL_NS NSEC_PER_SEC

struct watched {
	struct target target;
	struct arming arm;
	bool seen;               /* in the current walk */
	bool fired;              /* crossed: the kernel will not report it again */
	/* out of the map after the kernel fired on it: kept until that
	 * crossing, still in the ring buffer, is recorded */
	bool retired;
	uint64_t cond_id;        /* a userspace rule's condition, until it clears */
};

struct sense_memory {
	struct memory_bpf *skel;
	struct rss_bpf *rss;     /* the armed map and the rss_stat program, shared with leak */
	struct sensor_ring ring;
	struct sensor_env env;   /* the loop, options, sink, rules, protected, engine */
	uint64_t walked;         /* the policy's generation the last walk armed from */
	uint64_t last_walk;
	long page_size;
	struct proctable *procs;  /* struct watched, by (pid, start_time) */
	uint64_t overflows;      /* processes that did not fit in the armed map */
	struct sensor_ring tasks; /* exec, rename, exit */
	struct proctable *cands; /* processes a memory rule may match by comm (by pid, start 0) */
	bool walk_proc;          /* the candidates must come from /proc again */
	struct sensor_drop_counts drops;
};

/* The live entry for pid (retired ones are a process already gone). */
static struct watched *find_proc(struct sense_memory *s, pid_t pid)
{
	struct watched *w = NULL;

	while ((w = proctable_find(s->procs, (uint32_t)pid, w)))
		if (!w->retired)
			return w;
	return NULL;
}

static void format_mib(uint64_t bytes, char *buf, size_t size)
{
	snprintf(buf, size, "%.1f MiB", (double)bytes / (1024.0 * 1024.0));
}

/* The process's resident memory now, from /proc/<pid>/statm: 0 when gone. */
static uint64_t rss_now(const struct sense_memory *s, pid_t pid)
{
	char path[64], buf[128];
	unsigned long long size, resident;

	snprintf(path, sizeof(path), "/proc/%d/statm", pid);
	if (read_file(path, buf, sizeof(buf)) <= 0 || sscanf(buf, "%llu %llu", &size, &resident) != 2)
		return 0;
	return (uint64_t)resident * (uint64_t)s->page_size;
}

static int write_arm(struct sense_memory *s, const struct watched *w)
{
	struct reflex_arm v = {
		.threshold_bytes = w->arm.threshold, .start_time = w->target.start_time,
		.signal = (__u32)w->arm.signal,
		.flags = (w->arm.in_kernel ? REFLEX_ARM_IN_KERNEL : 0) | (w->arm.dry_run ? REFLEX_ARM_DRY_RUN : 0),
	};
	__u32 key = (__u32)w->target.pid;

	if (bpf_map_update_elem(bpf_map__fd(s->rss->maps.armed), &key, &v, BPF_ANY))
		return -errno;
	return 0;
}

static void forget(struct sense_memory *s, struct watched *w)
{
	if (w->cond_id)
		s->env.sink.clear(s->env.sink.ctx, w->cond_id);
	proctable_remove(s->procs, w);
}

/* Takes w out of the kernel's map, and out of the table unless the kernel
 * fired on it just before and the crossing is still on its way: then w is
 * retired, and goes once that is recorded. True when w went. */
static bool disarm(struct sense_memory *s, struct watched *w)
{
	__u32 key = (__u32)w->target.pid;
	struct reflex_arm v;

	if (!w->retired &&
	    bpf_map_lookup_and_delete_elem(bpf_map__fd(s->rss->maps.armed), &key, &v) == 0 &&
	    v.fired && !w->fired) {
		w->retired = true;
		return false;
	}
	forget(s, w);
	return true;
}

/* Arms w, already in the table, with a: 0, or -errno (the map is full). */
static int arm(struct sense_memory *s, struct watched *w, const struct arming *a)
{
	int err;

	w->arm = *a;
	w->fired = false;
	err = write_arm(s, w);
	if (err == -E2BIG || err == -ENOSPC || err == -ENOMEM) {
		sensor_drops("memory", 1);
		if (!s->overflows++ || s->overflows % 1000 == 0)
			log_warn("memory: the armed map is full (%d processes): %llu not armed so far",
				 REFLEX_ARMED_MAX, (unsigned long long)s->overflows);
	} else if (err) {
		log_warn("memory: arming pid %d: %s", w->target.pid, strerror(-err));
	}
	return err;
}

static bool same_arming(const struct arming *a, const struct arming *b)
{
	return a->threshold == b->threshold && a->in_kernel == b->in_kernel && a->dry_run == b->dry_run &&
	       a->signal == b->signal &&
	       !strcmp(a->rule, b->rule);
}

/* One process seen in the walk: armed, re-armed, or let go. */
static void walk_one(struct sense_memory *s, const struct target *t, uint64_t now)
{
	struct watched *w = find_proc(s, t->pid);
	struct arming a;
	bool wanted;

	if (w && w->target.start_time != t->start_time) {
		(void)disarm(s, w);  /* the pid was reused */
		w = NULL;
	}
	wanted = s->env.arming.choose(s->env.arming.ctx, t, now, &a);
	if (w)
		w->seen = true;
	if (w && w->fired) {
		/* a userspace rule's condition lasts until the process shrinks
		 * back below the threshold; then it can be armed again */
		if (w->cond_id) {
			if (rss_now(s, t->pid) >= w->arm.threshold)
				return;
			s->env.sink.clear(s->env.sink.ctx, w->cond_id);
			w->cond_id = 0;
		}
		/* an in_kernel firing is armed again only once its rule's
		 * cooldown allows it (no cooldown: never on this process) */
		if (w->arm.in_kernel &&
		    (!w->arm.cooldown_ns || !wanted || strcmp(a.rule, w->arm.rule)))
			return;
		if (!wanted) {
			(void)disarm(s, w);
			return;
		}
		w->target = *t;
		(void)arm(s, w, &a);
		return;
	}
	if (!wanted) {
		if (w)
			(void)disarm(s, w);
		return;
	}
	if (w) {
		if (!same_arming(&w->arm, &a))
			(void)arm(s, w, &a);
		return;
	}
	/* fails for a process retired with its crossing still on its way:
	 * armed again once that is recorded */
	w = proctable_insert(s->procs, (uint32_t)t->pid, t->start_time);
	if (!w)
		return;
	w->target = *t;
	w->seen = true;
	if (arm(s, w, &a))
		proctable_remove(s->procs, w);
	else
		log_debug("memory: pid %d (%s) armed: %s at %llu bytes%s", t->pid, t->comm, a.rule,
			  (unsigned long long)a.threshold,
			  a.in_kernel ? ", in the kernel" : "");
}

static bool comm_of(pid_t pid, char *comm, size_t size)
{
	char path[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (read_file(path, comm, size) <= 0)
		return false;
	comm[strcspn(comm, "\n")] = '\0';
	return true;
}

static void cand_add(struct sense_memory *s, pid_t pid)
{
	if (!proctable_insert(s->cands, (uint32_t)pid, 0) && errno != EEXIST)
		s->walk_proc = true;  /* try again from /proc */
}

static void cands_clear(struct sense_memory *s)
{
	struct proctable_iter it = { 0 };
	void *c;

	while ((c = proctable_next(s->cands, &it)))
		proctable_remove(s->cands, c);
}

/* Judges a process whose comm a memory rule may match: armed, re-armed or
 * let go by walk_one. False when it is gone or a kernel thread. */
static bool judge(struct sense_memory *s, pid_t pid, uint64_t now)
{
	struct target t;

	if (identity_read(pid, &t) || t.kernel_thread)
		return false;
	walk_one(s, &t, now);
	return true;
}

/* The candidates from a walk of /proc. */
static void walk_proc(struct sense_memory *s, uint64_t now)
{
	DIR *dir = opendir("/proc");
	struct dirent *de;
	char comm[64];

	cands_clear(s);
	s->walk_proc = !dir;
	while (dir && (de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		/* a process ruled out by comm is let go like a dead one */
		if (comm_of((pid_t)pid, comm, sizeof(comm)) && s->env.arming.comm_may_match(s->env.arming.ctx, comm) &&
		    judge(s, (pid_t)pid, now))
			cand_add(s, (pid_t)pid);
	}
	if (dir)
		closedir(dir);
}

/* Arms what the rules now say, lets go of the dead. */
static void walk(struct sense_memory *s, uint64_t generation, uint64_t now)
{
	bool rules = s->env.arming.any(s->env.arming.ctx);
	struct proctable_iter it = { 0 };
	struct watched *w;
	void *c;

	/* crossings first, while their processes are still in the table;
	 * one retired at the last walk and still not reported was lost */
	sensor_ring_drain(&s->ring);
	while ((w = proctable_next(s->procs, &it))) {
		if (w->retired) {
			log_error("memory: the kernel fired on pid %d (%s) for rule %s, but the ring "
				  "buffer lost the crossing: it was not recorded", w->target.pid,
				  w->target.comm, w->arm.rule);
			forget(s, w);
			continue;
		}
		w->seen = false;
	}
	/* watching first: a process that starts during the walk is told */
	s->skel->bss->watching = rules;
	if (!rules) {
		cands_clear(s);
	} else if (s->walk_proc || generation != s->walked) {
		walk_proc(s, now);
	} else {
		it = (struct proctable_iter){ 0 };
		while ((c = proctable_next(s->cands, &it)))
			if (!judge(s, (pid_t)proctable_pid(c), now))
				proctable_remove(s->cands, c);
	}
	it = (struct proctable_iter){ 0 };
	while ((w = proctable_next(s->procs, &it)))
		if (!w->seen && !w->retired)
			(void)disarm(s, w);
	s->walked = generation;
	s->last_walk = now;
}

static void memory_scan(void *state, uint64_t now)
{
	struct sense_memory *s = state;
	uint64_t generation = s->env.arming.generation(s->env.arming.ctx);
	uint64_t grew[REFLEX_MEMORY_DROPS] = { 0 };

	/* a lost exec may be a process to arm: /proc is walked */
	(void)sensor_drops_report(&s->drops, grew);
	if (grew[REFLEX_MEMORY_DROP_TASK_EVENTS])
		s->walk_proc = true;
	if (s->walk_proc || now - s->last_walk >= REARM_INTERVAL_NS || generation != s->walked)
		walk(s, generation, now);
}

/* The condition a crossing is: the process, when, and how much. */
static void describe(const struct watched *w, const struct reflex_crossing *e,
		     struct condition *c)
{
	char rss[32], limit[32];
	struct sbuf b;

	condition_reset(c);
	c->kind = REFLEX_COND_MEMORY;
	c->target = w->target;
	c->since_ns = e->ktime_ns;
	format_mib(e->rss_bytes, rss, sizeof(rss));
	format_mib(e->threshold_bytes, limit, sizeof(limit));
	snprintf(c->summary, sizeof(c->summary), "resident memory %s reached %s", rss, limit);
	sbuf_init(&b, c->evidence, sizeof(c->evidence));
	/* crossed_mono_ns: the kernel's clock, to line up with its traces */
	sbuf_printf(&b, "{\"rss_bytes\":%llu,\"threshold_bytes\":%llu,\"tid\":%u,"
		    "\"crossed_mono_ns\":%llu}", (unsigned long long)e->rss_bytes,
		    (unsigned long long)e->threshold_bytes, e->tid, (unsigned long long)e->ktime_ns);
	condition_measure_fill(c);
}

/* The kernel acted (or, in dry-run, would have): the record says so. */
static void record_kernel(struct sense_memory *s, const struct watched *w,
			  const struct reflex_crossing *e, struct condition *c)
{
	const char *sig = w->arm.signal_name;
	enum decision_outcome outcome;
	char rss[32], limit[32], detail[256];

	format_mib(e->rss_bytes, rss, sizeof(rss));
	format_mib(e->threshold_bytes, limit, sizeof(limit));
	if (e->flags & REFLEX_ARM_DRY_RUN) {
		outcome = REFLEX_OUTCOME_DRY_RUN;
		snprintf(detail, sizeof(detail), "the kernel would have signalled %s at rss %s >= %s",
			 sig, rss, limit);
	} else if (!e->signal) {
		outcome = REFLEX_OUTCOME_SUPPRESSED;
		snprintf(detail, sizeof(detail), "protected target (pid 1, a kernel thread or reflexd): "
			 "the kernel sent nothing at rss %s >= %s", rss, limit);
	} else if (e->send_err) {
		outcome = REFLEX_OUTCOME_FAILED;
		snprintf(detail, sizeof(detail), "the kernel's bpf_send_signal(%s) at rss %s >= %s "
			 "failed: %s", sig, rss, limit, strerror(-e->send_err));
	} else {
		outcome = REFLEX_OUTCOME_ACTED;
		snprintf(detail, sizeof(detail), "signalled in the kernel: %s at rss %s >= %s", sig,
			 rss, limit);
	}
	s->env.arming.record(s->env.arming.ctx, c, &w->arm, outcome, detail);
}

/* After the kernel acted: disarm every in-kernel arming that the guards now
 * refuse (the rule's budget or the global one just ran out), so that only
 * crossings already under way can overshoot it, not a whole walk's worth. */
static void recheck_guards(struct sense_memory *s, uint64_t now)
{
	struct proctable_iter it = { 0 };
	struct watched *w;
	char why[256];

	while ((w = proctable_next(s->procs, &it))) {
		if (!w->fired && !w->retired && w->arm.in_kernel &&
		    s->env.arming.refuses(s->env.arming.ctx, &w->arm, &w->target, now, why, sizeof(why))) {
			log_debug("memory: pid %d (%s) disarmed: %s", w->target.pid, w->target.comm, why);
			(void)disarm(s, w);
		}
	}
}

static int handle_crossing(void *ctx, void *data, size_t len)
{
	struct sense_memory *s = ctx;
	struct reflex_crossing e;
	struct condition *c;
	struct watched *w;

	if (len < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	w = proctable_get(s->procs, e.tgid, e.start_time);
	if (!w || w->fired) {
		if (!w && (e.flags & REFLEX_ARM_IN_KERNEL))
			log_error("memory: the kernel fired on pid %u, which reflexd no longer "
				  "knows: not recorded", e.tgid);
		return 0;
	}
	w->fired = true;
	c = malloc(sizeof(*c));
	if (!c)
		return 0;
	describe(w, &e, c);
	c->id = condition_new_id();
	log_info("memory: pid %d (%s): %s%s", w->target.pid, w->target.comm, c->summary,
		 e.flags & REFLEX_ARM_IN_KERNEL ? " (in-kernel rule)" : "");
	if (e.flags & REFLEX_ARM_IN_KERNEL) {
		record_kernel(s, w, &e, c);
		if (w->retired)
			forget(s, w);
		recheck_guards(s, clock_mono_ns());
	} else if (w->retired) {
		/* a userspace rule on a process reflexd let go of: nothing to decide */
		forget(s, w);
	} else {
		w->cond_id = c->id;
		s->env.sink.raise(s->env.sink.ctx, c);
	}
	free(c);
	return 0;
}

/* A process executed, renamed itself or ended: its place among the
 * candidates follows; one that may now match is judged at once. */
static int handle_task(void *ctx, void *data, size_t len)
{
	struct sense_memory *s = ctx;
	struct reflex_task_event e;
	void *c;

	if (len < sizeof(e))
		return 0;
	memcpy(&e, data, sizeof(e));
	e.comm[sizeof(e.comm) - 1] = '\0';
	c = proctable_get(s->cands, e.tgid, 0);
	if (c)
		proctable_remove(s->cands, c);
	/* one that leaves the candidates is let go at the next walk */
	if (e.what == REFLEX_TASK_EXIT || !s->env.arming.comm_may_match(s->env.arming.ctx, e.comm))
		return 0;
	if (judge(s, (pid_t)e.tgid, clock_mono_ns()))
		cand_add(s, (pid_t)e.tgid);
	return 0;
}

static void memory_stop(void *state);

static const char *const memory_drops[REFLEX_MEMORY_DROPS] = {
	[REFLEX_MEMORY_DROP_TASK_EVENTS] = "process events lost, the ring buffer was full: walking /proc",
};

static void *memory_start(const struct sensor_env *env)
{
	struct sense_memory *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->env = *env;
	s->page_size = sysconf(_SC_PAGESIZE);
	s->procs = proctable_new(sizeof(struct watched));
	s->cands = proctable_new(1);
	if (!s->procs || !s->cands) {
		err = -ENOMEM;
		goto fail;
	}
	if (!s->env.arming.choose) {
		err = -EINVAL;
		log_error("memory: started without the rules and the engine");
		goto fail;
	}
	s->skel = memory_bpf__open();
	if (!s->skel) {
		err = -errno;
		log_error("memory: opening the BPF object: %s", strerror(-err));
		goto fail;
	}
	err = memory_bpf__load(s->skel);
	if (err) {
		log_error("memory: loading the BPF program: %s", strerror(-err));
		goto fail;
	}
	sensor_drops_open(&s->drops, "memory", bpf_map__fd(s->skel->maps.drops), memory_drops,
			  ARRAY_SIZE(memory_drops));
	err = memory_bpf__attach(s->skel);
	if (err) {
		log_error("memory: attaching to process exec, exit and rename: %s", strerror(-err));
		goto fail;
	}
	s->rss = sense_rss_get();
	if (!s->rss) {
		err = -errno;
		log_error("memory: loading and attaching the rss_stat program: %s", strerror(-err));
		goto fail;
	}
	err = sensor_ring_open(&s->ring, s->env.loop, bpf_map__fd(s->rss->maps.crossings), handle_crossing, s,
			       "memory");
	if (!err)
		err = sensor_ring_open(&s->tasks, s->env.loop, bpf_map__fd(s->skel->maps.task_events),
				       handle_task, s, "memory");
	if (err)
		goto fail;
	s->walk_proc = true;
	walk(s, s->env.arming.generation(s->env.arming.ctx), clock_mono_ns());
	return s;
fail:
	memory_stop(s);
	errno = -err;
	return NULL;
}

static void memory_stop(void *state)
{
	struct sense_memory *s = state;
	struct proctable_iter it = { 0 };
	struct watched *w;

	if (!s)
		return;
	sensor_ring_close(&s->ring);
	sensor_ring_close(&s->tasks);
	/* the rss_stat program may outlive this sensor (the leak sensor's):
	 * nothing stays armed */
	while (s->rss && s->procs && (w = proctable_next(s->procs, &it))) {
		__u32 key = (__u32)w->target.pid;

		(void)bpf_map_delete_elem(bpf_map__fd(s->rss->maps.armed), &key);
	}
	sense_rss_put(s->rss);
	memory_bpf__destroy(s->skel);
	proctable_free(s->procs);
	proctable_free(s->cands);
	free(s);
}

const struct sensor sensor_memory = {
	.name = "memory",
	.kinds = 1u << REFLEX_COND_MEMORY,
	.needs = {
		.kernel = "5.11 (bpf_get_current_task_btf; bpf_send_signal 5.3, ring buffers 5.8)",
		.attach = "tp_btf/rss_stat, tp_btf/sched_process_exec, tp_btf/sched_process_exit, "
			  "tp_btf/task_rename",
		.progs = { BPF_PROG_TYPE_TRACING },
		.maps = { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_RINGBUF, BPF_MAP_TYPE_PERCPU_ARRAY },
		.helpers = { KERNEL_HELPER(KPROBE, get_current_task_btf), KERNEL_HELPER(KPROBE, send_signal),
			     KERNEL_HELPER(KPROBE, ringbuf_reserve) },
		.objects = { rss_bpf__elf_bytes, memory_bpf__elf_bytes },
	},
	.start = memory_start,
	.scan = memory_scan,
	.stop = memory_stop,
};
