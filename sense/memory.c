/* Arming is userspace's half of the reflex arc: a walk of /proc (at start,
 * then every REARM_INTERVAL, and at once when the rules, dry-run or the
 * kill switch change) decides for each process which memory rule, if any,
 * watches it, and writes that into the armed map. Every guard that can be
 * judged before the crossing is judged there: protected targets are never
 * armed; an in_kernel rule whose cooldown, budget or the global budget
 * refuses it now is not armed, since the kernel would act alone. */
#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "act/act.h"
#include "lib/log.h"
#include "lib/util.h"
#include "decide/engine.h"
#include "sense/identity.h"
#include "sense/memory.h"
#include "bpf/memory.h"
#include "memory.skel.h"

#define REARM_INTERVAL_NS NSEC_PER_SEC

/* What a process is armed with: the rule's part that a record needs is
 * copied, so a crossing reported after a reload is still recorded. */
struct arming {
	uint64_t threshold;
	uint32_t flags;          /* REFLEX_ARM_* */
	int signal;
	char rule[128];
	char file[256];
	char hash[65];
	char json[256];
	uint64_t cooldown_ns;
};

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
	struct sensor_ring ring;
	struct sensor_env env;   /* the loop, options, sink, rules, protected, engine */
	const struct ruleset *walked_rules; /* what the last walk armed from */
	bool walked_dry;
	uint64_t last_walk;
	long page_size;
	struct watched *procs;
	size_t n, cap;
	uint64_t overflows;      /* processes that did not fit in the armed map */
};

/* The live entry for pid (retired ones are a process already gone). */
static struct watched *find_proc(struct sense_memory *s, pid_t pid)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->procs[i].target.pid == pid && !s->procs[i].retired)
			return &s->procs[i];
	return NULL;
}

/* The entry a crossing is about, retired or not. */
static struct watched *find_armed(struct sense_memory *s, pid_t pid, uint64_t start_time)
{
	for (size_t i = 0; i < s->n; i++)
		if (s->procs[i].target.pid == pid && s->procs[i].target.start_time == start_time)
			return &s->procs[i];
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

static bool dry_run_now(const struct sense_memory *s)
{
	return s->env.cfg->dry_run || (s->env.cfg->kill_switch && access(s->env.cfg->kill_switch, F_OK) == 0);
}

/* The rule that watches t: among the memory rules with an rss threshold
 * whose where matches, the lowest threshold, skipping in_kernel rules the
 * guards refuse now. False when none does. */
static bool choose(struct sense_memory *s, const struct target *t, bool dry, uint64_t now,
		   struct arming *a)
{
	const struct ruleset *rs = *s->env.rules;
	const struct rule *best = NULL;
	char why[256];

	for (size_t j = 0; rs && j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];

		if (r->any_kind || r->kind != REFLEX_COND_MEMORY || isnan(r->at_least[0]) ||
		    !rule_fits(r, REFLEX_COND_MEMORY, t, NULL, 0))
			continue;
		if (best && r->at_least[0] >= best->at_least[0])
			continue;
		if (r->in_kernel && decide_refuses(s->env.engine, r, t, dry || r->dry_run, now, why,
						   sizeof(why))) {
			log_debug("memory: pid %d (%s) not armed for %s: %s", t->pid, t->comm, r->name, why);
			continue;
		}
		best = r;
	}
	if (!best)
		return false;
	memset(a, 0, sizeof(*a));
	a->threshold = (uint64_t)best->at_least[0];
	a->flags = (best->in_kernel ? REFLEX_ARM_IN_KERNEL : 0) |
		   (dry || best->dry_run ? REFLEX_ARM_DRY_RUN : 0);
	a->signal = best->in_kernel ? act_signal_single(best->ladder[0].ops, best->ladder[0].params) : 0;
	str_copy(a->rule, sizeof(a->rule), best->name);
	str_copy(a->file, sizeof(a->file), best->file);
	memcpy(a->hash, best->hash, sizeof(a->hash));
	str_copy(a->json, sizeof(a->json), best->ladder[0].json);
	a->cooldown_ns = best->cooldown_ns;
	return true;
}

static int write_arm(struct sense_memory *s, const struct watched *w)
{
	struct reflex_arm v = {
		.threshold_bytes = w->arm.threshold, .start_time = w->target.start_time,
		.signal = (__u32)w->arm.signal, .flags = w->arm.flags,
	};
	__u32 key = (__u32)w->target.pid;

	if (bpf_map_update_elem(bpf_map__fd(s->skel->maps.armed), &key, &v, BPF_ANY))
		return -errno;
	return 0;
}

static void forget(struct sense_memory *s, struct watched *w)
{
	if (w->cond_id)
		s->env.sink.clear(s->env.sink.ctx, w->cond_id);
	*w = s->procs[--s->n];
}

/* Takes w out of the kernel's map, and out of the table unless the kernel
 * fired on it just before and the crossing is still on its way: then w is
 * retired, and goes once that is recorded. True when w went. */
static bool disarm(struct sense_memory *s, struct watched *w)
{
	__u32 key = (__u32)w->target.pid;
	struct reflex_arm v;

	if (!w->retired &&
	    bpf_map_lookup_and_delete_elem(bpf_map__fd(s->skel->maps.armed), &key, &v) == 0 &&
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
	return a->threshold == b->threshold && a->flags == b->flags && a->signal == b->signal &&
	       !strcmp(a->rule, b->rule);
}

/* One process seen in the walk: armed, re-armed, or let go. */
static void walk_one(struct sense_memory *s, const struct target *t, bool dry, uint64_t now)
{
	struct watched *w = find_proc(s, t->pid);
	struct arming a;
	char why[256];
	bool wanted;

	if (w && w->target.start_time != t->start_time) {
		(void)disarm(s, w);  /* the pid was reused */
		w = NULL;
	}
	wanted = !protect_reason(s->env.protect, t, why, sizeof(why)) && choose(s, t, dry, now, &a);
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
		if ((w->arm.flags & REFLEX_ARM_IN_KERNEL) &&
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
	if (s->n == s->cap) {
		size_t cap = s->cap ? 2 * s->cap : 64;
		struct watched *grown = realloc(s->procs, cap * sizeof(*grown));

		if (!grown)
			return;
		s->procs = grown;
		s->cap = cap;
	}
	w = &s->procs[s->n++];
	memset(w, 0, sizeof(*w));
	w->target = *t;
	w->seen = true;
	if (arm(s, w, &a))
		*w = s->procs[--s->n];
	else
		log_debug("memory: pid %d (%s) armed: %s at %llu bytes%s", t->pid, t->comm, a.rule,
			  (unsigned long long)a.threshold,
			  a.flags & REFLEX_ARM_IN_KERNEL ? ", in the kernel" : "");
}

static bool has_memory_rules(const struct ruleset *rs)
{
	for (size_t j = 0; rs && j < rs->n; j++)
		if (!rs->rules[j].any_kind && rs->rules[j].kind == REFLEX_COND_MEMORY)
			return true;
	return false;
}

/* Whether a memory rule could match pid, judging by its comm alone: one
 * small read instead of identity_read's four, for the many processes that
 * a rule's `where = { comm = ... }` rules out. */
static bool comm_may_match(const struct ruleset *rs, pid_t pid)
{
	char path[64], comm[64];

	snprintf(path, sizeof(path), "/proc/%d/comm", pid);
	if (read_file(path, comm, sizeof(comm)) <= 0)
		return false;
	comm[strcspn(comm, "\n")] = '\0';
	for (size_t j = 0; j < rs->n; j++) {
		const struct rule *r = &rs->rules[j];

		if (r->any_kind || r->kind != REFLEX_COND_MEMORY)
			continue;
		if (!r->comm.n)
			return true;
		for (size_t g = 0; g < r->comm.n; g++)
			if (glob_match(r->comm.v[g], comm))
				return true;
	}
	return false;
}

/* Walks /proc: arms what the rules now say, lets go of the dead. */
static void walk(struct sense_memory *s, bool dry, uint64_t now)
{
	DIR *dir;
	struct dirent *de;
	struct target t;

	/* crossings first, while their processes are still in the table;
	 * one retired at the last walk and still not reported was lost */
	sensor_ring_drain(&s->ring);
	for (size_t i = 0; i < s->n;) {
		struct watched *w = &s->procs[i];

		if (w->retired) {
			log_error("memory: the kernel fired on pid %d (%s) for rule %s, but the ring "
				  "buffer lost the crossing: it was not recorded", w->target.pid,
				  w->target.comm, w->arm.rule);
			forget(s, w);
			continue;
		}
		w->seen = false;
		i++;
	}
	dir = has_memory_rules(*s->env.rules) ? opendir("/proc") : NULL;
	while (dir && (de = readdir(dir))) {
		char *end;
		long pid = strtol(de->d_name, &end, 10);

		if (*end || pid <= 0)
			continue;
		/* a process ruled out by comm is let go like a dead one */
		if (!comm_may_match(*s->env.rules, (pid_t)pid) || identity_read((pid_t)pid, &t) ||
		    t.kernel_thread)
			continue;
		walk_one(s, &t, dry, now);
	}
	if (dir)
		closedir(dir);
	for (size_t i = 0; i < s->n;) {
		if (s->procs[i].seen || s->procs[i].retired || !disarm(s, &s->procs[i]))
			i++;
	}
	s->walked_rules = *s->env.rules;
	s->walked_dry = dry;
	s->last_walk = now;
}

static void memory_scan(void *state, uint64_t now)
{
	struct sense_memory *s = state;
	bool dry = dry_run_now(s);

	if (now - s->last_walk >= REARM_INTERVAL_NS || *s->env.rules != s->walked_rules ||
	    dry != s->walked_dry)
		walk(s, dry, now);
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
	const char *sig = act_signal_name(w->arm.signal);
	enum decision_outcome outcome;
	struct rule r = { .name = (char *)w->arm.rule, .file = (char *)w->arm.file };
	char rss[32], limit[32], detail[256];

	memcpy(r.hash, w->arm.hash, sizeof(r.hash));
	r.ladder[0].ops = &act_signal_ops;
	str_copy(r.ladder[0].json, sizeof(r.ladder[0].json), w->arm.json);
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
	decide_record_external(s->env.engine, c, &r, outcome, detail, clock_mono_ns());
}

/* After the kernel acted: disarm every in-kernel arming that the guards now
 * refuse (the rule's budget or the global one just ran out), so that only
 * crossings already under way can overshoot it, not a whole walk's worth. */
static void recheck_guards(struct sense_memory *s, uint64_t now)
{
	char why[256];

	for (size_t i = 0; i < s->n;) {
		struct watched *w = &s->procs[i];
		const struct rule *r = ruleset_find(*s->env.rules, w->arm.rule);

		if (!w->fired && !w->retired && (w->arm.flags & REFLEX_ARM_IN_KERNEL) &&
		    (!r || decide_refuses(s->env.engine, r, &w->target,
					  w->arm.flags & REFLEX_ARM_DRY_RUN, now, why, sizeof(why)))) {
			log_debug("memory: pid %d (%s) disarmed: %s", w->target.pid, w->target.comm,
				  r ? why : "its rule is gone");
			if (disarm(s, w))
				continue;
		}
		i++;
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
	w = find_armed(s, (pid_t)e.tgid, e.start_time);
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

static void memory_stop(void *state);

static void *memory_start(const struct sensor_env *env)
{
	struct sense_memory *s = calloc(1, sizeof(*s));
	int err;

	if (!s)
		return NULL;
	s->env = *env;
	s->page_size = sysconf(_SC_PAGESIZE);
	if (!s->env.rules || !s->env.engine) {
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
	s->skel->rodata->self_tgid = (__u32)getpid();
	s->skel->rodata->page_shift = (__u32)__builtin_ctzl((unsigned long)s->page_size);
	err = memory_bpf__load(s->skel);
	if (err) {
		log_error("memory: loading the BPF program: %s", strerror(-err));
		goto fail;
	}
	err = memory_bpf__attach(s->skel);
	if (err) {
		log_error("memory: attaching to rss_stat: %s", strerror(-err));
		goto fail;
	}
	err = sensor_ring_open(&s->ring, s->env.loop, bpf_map__fd(s->skel->maps.crossings), handle_crossing, s,
			       "memory");
	if (err)
		goto fail;
	walk(s, dry_run_now(s), clock_mono_ns());
	return s;
fail:
	memory_stop(s);
	errno = -err;
	return NULL;
}

static void memory_stop(void *state)
{
	struct sense_memory *s = state;

	if (!s)
		return;
	sensor_ring_close(&s->ring);
	memory_bpf__destroy(s->skel);
	free(s->procs);
	free(s);
}

const struct sensor sensor_memory = {
	.name = "memory",
	.kinds = 1u << REFLEX_COND_MEMORY,
	.needs = {
		.kernel = "5.11 (bpf_get_current_task_btf; bpf_send_signal 5.3, ring buffers 5.8)",
		.attach = "tp_btf/rss_stat",
		.progs = { BPF_PROG_TYPE_TRACING },
		.maps = { BPF_MAP_TYPE_HASH, BPF_MAP_TYPE_RINGBUF },
		.helpers = { KERNEL_HELPER(KPROBE, get_current_task_btf), KERNEL_HELPER(KPROBE, send_signal),
			     KERNEL_HELPER(KPROBE, ringbuf_reserve) },
		.objects = { memory_bpf__elf_bytes },
	},
	.start = memory_start,
	.scan = memory_scan,
	.stop = memory_stop,
};
