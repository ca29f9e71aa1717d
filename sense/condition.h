/* A condition: a typed fact about one target, with evidence. Sensors raise
 * and clear them; the rule engine decides what to do about them. */
#ifndef REFLEX_SENSE_CONDITION_H
#define REFLEX_SENSE_CONDITION_H

#include <stdbool.h>
#include <stdint.h>
#include <sys/types.h>

enum condition_kind {
	REFLEX_COND_DEADLOCK,
	REFLEX_COND_STALL,
	REFLEX_COND_KIND_COUNT,
};

const char *condition_kind_name(enum condition_kind kind);
/* The kind called name, or -ENOENT. */
int condition_kind_parse(const char *name);

/* Who a condition is about. A process is (pid, start_time): pids recycle. */
struct target {
	pid_t pid;
	pid_t tid;           /* a thread, or 0 for the whole process */
	uint64_t start_time; /* clock ticks after boot, /proc/<pid>/stat field 22 */
	bool kernel_thread;
	char comm[16];
	char exe[256];
	char cgroup[256];    /* cgroup2 path, or the v1 name=systemd path */
};

#define REFLEX_EVIDENCE_MAX 4096

struct condition {
	uint64_t id;          /* unique within one run of reflexd */
	enum condition_kind kind;
	struct target target;
	uint64_t since_ns;    /* CLOCK_MONOTONIC when it began, from the evidence */
	char summary[256];    /* what it is, for a human: "cycle 41→42→41 ..." */
	char evidence[REFLEX_EVIDENCE_MAX]; /* JSON object */
};

/* Where sensors deliver conditions: raise once when one begins, update
 * with fresh evidence after that (same id), clear when it ends. */
struct condition_sink {
	void (*raise)(void *ctx, const struct condition *cond);
	void (*update)(void *ctx, const struct condition *cond);
	void (*clear)(void *ctx, uint64_t cond_id);
	void *ctx;
};

#endif
