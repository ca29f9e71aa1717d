/* The audit journal: every decision, durably, in SQLite (WAL). An intent is
 * on disk before its action runs; the outcome completes the same row. */
#ifndef REFLEX_CORE_JOURNAL_H
#define REFLEX_CORE_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>

#include "decide/decision.h"

#define REFLEX_JOURNAL_DEFAULT "/var/lib/reflexd/journal.db"

struct journal;

/* Opens (creating it and its directory unless read_only) the journal at
 * path. NULL on failure, with the reason in err. */
struct journal *journal_open(const char *path, bool read_only, char *err, size_t errlen);
void journal_free(struct journal *j);

/* Inserts d; durable when it returns 0. -EIO on failure. */
int journal_write(struct journal *j, const struct decision *d);
/* Records d's outcome and detail on its row; durable when it returns 0. */
int journal_complete(struct journal *j, const struct decision *d);
/* Records whether the action of decision id helped (verify.within). */
int journal_verify(struct journal *j, const char *id, const char *result);
/* Marks every pending row (a stop between intent and outcome) as unknown
 * and calls cb for each: the number recovered, or -EIO. */
int journal_recover(struct journal *j, void (*cb)(const struct decision *d, void *ctx), void *ctx);

struct journal_filter {
	const char *id;    /* a decision id, or its last characters */
	const char *rule;
	const char *kind;
	const char *comm;  /* a glob */
	const char *pod;   /* a glob on the pod's name */
	pid_t pid;         /* 0: any */
	int outcome;       /* enum decision_outcome, or -1: any */
	int64_t since_ns;  /* CLOCK_REALTIME bounds, 0: open */
	int64_t until_ns;
	long limit;        /* newest N, 0: all */
};

/* Calls cb for each matching decision, oldest first, until cb returns
 * non-zero. 0, or -EIO. */
int journal_query(struct journal *j, const struct journal_filter *f,
		  int (*cb)(const struct decision *d, void *ctx), void *ctx);
const char *journal_errmsg(struct journal *j);

#endif
