/* A condition: a typed fact about one target, with evidence. Sensors raise
 * and clear them; the rule engine decides what to do about them. */
#ifndef REFLEX_MODEL_CONDITION_H
#define REFLEX_MODEL_CONDITION_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

enum condition_kind {
	REFLEX_COND_DEADLOCK,
	REFLEX_COND_STALL,
	REFLEX_COND_LEAK,
	REFLEX_COND_RETRANSMITS,
	REFLEX_COND_GOROUTINES,
	REFLEX_COND_MEMORY,      /* resident memory above a threshold */
	REFLEX_COND_KIND_COUNT,
};

const char *condition_kind_name(enum condition_kind kind);
/* The kind called name, or -ENOENT. */
int condition_kind_parse(const char *name);

/* What a kind measures: numbers at the top level of its evidence, which
 * rules can put thresholds on (`leak { rate = "8MiB/s" }`: the condition
 * counts only while evidence.rate_bps >= 8 MiB/s; `leak { eta = "10m" }`,
 * an at_most measure: while evidence.eta_ms <= 10 minutes). */
enum measure_unit {
	UNIT_COUNT,        /* 200 */
	UNIT_PER_S,        /* 200, "200/s" */
	UNIT_BYTES,        /* "512MiB", "2G", 1048576 */
	UNIT_BYTES_PER_S,  /* "8MiB/s" */
	UNIT_RATIO,        /* 0.05, "5%" */
	UNIT_MS,           /* a duration: "10s" (evidence in milliseconds) */
};

#define REFLEX_MEASURES_MAX 4

struct measure {
	const char *param;  /* in the rule: leak { rate = ... } */
	const char *key;    /* in the evidence: "rate_bps" */
	enum measure_unit unit;
	bool at_most;       /* the threshold is a ceiling, not a floor */
};

/* The measures of kind, in order; *n of them. */
const struct measure *condition_measures(enum condition_kind kind, size_t *n);
/* Parses a threshold for m ("8MiB/s", "5%", "10s", 200) into the
 * evidence's unit: 0, -EINVAL, or -ERANGE from 2^63 up. */
int measure_parse(const struct measure *m, const char *text, double *value);
/* Whether value reaches m's threshold: >= it, or <= it for at_most.
 * NAN (no such evidence) reaches none. */
bool measure_meets(const struct measure *m, double value, double threshold);

/* Who a condition is about. A process is (pid, start_time): pids recycle. */
struct target {
	pid_t pid;
	pid_t tid;           /* a thread, or 0 for the whole process */
	uint64_t start_time; /* clock ticks after boot, /proc/<pid>/stat field 22 */
	bool kernel_thread;
	char comm[16];
	char exe[256];
	char command[256];   /* argv[0], as the process was started (or renamed itself) */
	char cgroup[256];    /* cgroup2 path, or the v1 name=systemd path */
	/* from the cgroup path (identity_parse_cgroup); empty when not in one */
	char container_id[72];
	char pod_uid[40];
	/* from the Kubernetes API, when the pod is known there */
	char pod[128];
	char namespace[64];
	char container[64];
	char labels[512];    /* the pod's labels, "key=value,key=value" */
};

/* The target's text fields, in the order traces write them. */
struct target_text_field {
	const char *key;
	size_t offset, size;
};

extern const struct target_text_field target_text_fields[];
extern const size_t target_text_fields_count;
/* The value of the pod label key (n bytes of it) into value: true when
 * the target's pod has that label. */
bool target_label(const struct target *t, const char *key, size_t n, char *value, size_t size);

#define REFLEX_EVIDENCE_MAX 4096

struct condition {
	uint64_t id;          /* unique within one run of reflexd */
	enum condition_kind kind;
	struct target target;
	uint64_t since_ns;    /* CLOCK_MONOTONIC when it began, from the evidence */
	char summary[256];    /* what it is, for a human: "cycle 41→42→41 ..." */
	/* the kind's measures, read from the evidence by condition_measure_fill;
	 * NAN where the evidence has none */
	double measure[REFLEX_MEASURES_MAX];
	char evidence[REFLEX_EVIDENCE_MAX]; /* JSON object */
};

/* A fresh condition id, unique across every sensor of this run. */
uint64_t condition_new_id(void);

/* Reads c's measures from its evidence (top-level numbers). */
void condition_measure_fill(struct condition *c);
/* *dst = *src as far as it is read: each text up to its NUL (most are
 * short or empty), not the 1.7 KiB of their arrays. */
void condition_copy(struct condition *dst, const struct condition *src);
/* An empty condition, as cheaply: each text is cut at its first byte, not
 * cleared. */
void condition_reset(struct condition *c);

/* Where sensors deliver conditions: raise once when one begins, update
 * with fresh evidence after that (same id), clear when it ends. */
struct condition_sink {
	void (*raise)(void *ctx, const struct condition *cond);
	void (*update)(void *ctx, const struct condition *cond);
	void (*clear)(void *ctx, uint64_t cond_id);
	void *ctx;
};

#endif
