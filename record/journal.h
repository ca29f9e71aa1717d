/* The audit journal: every decision, durably, in SQLite (WAL). An intent is
 * on disk before its action runs; the outcome completes the same row. */
#ifndef REFLEX_RECORD_JOURNAL_H
#define REFLEX_RECORD_JOURNAL_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/decision.h"

#define REFLEX_JOURNAL_DEFAULT "/var/lib/reflexd/journal.db"

struct journal;

/* Opens (creating it and its directory unless read_only) the journal at
 * path. NULL on failure, with the reason in err: an error buffer rather
 * than errno, since the reason is SQLite's message or names the schema
 * versions ("journal schema 6 is newer than this reflexd (5)"); the
 * caller logs it once. */
struct journal *journal_open(const char *path, bool read_only, char *err, size_t errlen);
void journal_free(struct journal *j);

/* The clock that stamps queued exports and completions (nanoseconds
 * since the epoch): clock(ctx), or the wall clock when NULL. The
 * simulator sets its virtual clock, so every record it exports carries
 * trace time. */
void journal_set_clock(struct journal *j, int64_t (*clock)(void *ctx), void *ctx);

/* Inserts d: 0, or -EIO on failure. An intent (outcome pending) is
 * durable when it returns, with every record before it; other records are
 * committed (a crash of reflexd keeps them) and durable at the next
 * journal_sync (group commit: docs/journal.md). */
int journal_write(struct journal *j, const struct decision *d);
/* Records d's outcome and detail on its row, committed as above. */
int journal_complete(struct journal *j, const struct decision *d);
/* Makes every committed record durable (a WAL checkpoint, fsynced) when
 * some are not yet: 0, or -EIO. The daemon calls it each second;
 * journal_free calls it too. */
int journal_sync(struct journal *j);
/* Records whether the action of decision id helped (verify.within). */
int journal_verify(struct journal *j, const char *id, const char *result);
/* Marks every pending row (a stop between intent and outcome) as unknown
 * and calls cb for each: the number recovered, or -EIO. A row that cannot
 * be read back (journal_on_skip) stays pending. */
int journal_recover(struct journal *j, void (*cb)(const struct decision *d, void *ctx), void *ctx);

struct journal_filter {
	const char *id;    /* a decision id, or its first or last characters */
	const char *rule;
	const char *kind;
	const char *action;
	const char *mode;  /* live, dry-run, simulate */
	/* globs (SQLite GLOB: *, ?, [...]) */
	const char *comm;
	const char *pod;
	const char *namespace;
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
/* A decision's row holding a value reflexd cannot have written (a forged
 * or corrupted journal: a pid of 2^32, an unknown mode, a NUL in a name)
 * is never read back changed to fit: every reader (query, recover, export)
 * skips it, leaves it in the file as it is, and says why, one line,
 * "decision ID: pid 4294967297 is out of range; row skipped", to
 * skipped(why, ctx), or to the log (log_error) when none is set. */
void journal_on_skip(struct journal *j, void (*skipped)(const char *why, void *ctx), void *ctx);
/* Stop fsyncing each record: for a journal whose records can be made again
 * (a simulation's), where a crash may lose the last ones. 0, or -EIO. */
int journal_unsynced(struct journal *j);

/* The export outbox: what the OTLP exporter has yet to see acknowledged,
 * kept in the journal so that a collector outage or a restart loses
 * nothing. A decision is queued once its outcome is known, and again
 * (as a verification event) when its verification comes. */
#define JOURNAL_EVENT_DECISION "decision"
#define JOURNAL_EVENT_VERIFICATION "verification"

/* From now on, queue every final decision and verification, at most max
 * entries (the oldest go first, counted as dropped); queued(ctx) runs
 * after each. 0, or -EIO. */
int journal_export_start(struct journal *j, uint64_t max, void (*queued)(void *ctx), void *ctx);
/* Entries waiting, and entries dropped at the bound since the start. */
void journal_export_counts(const struct journal *j, uint64_t *backlog, uint64_t *dropped);
/* Calls cb for the oldest max entries, oldest first, with the decision as
 * it now stands (NULL when its row cannot be read back: nothing to send),
 * until cb returns non-zero. 0, or -EIO. */
struct journal_entry {
	int64_t seq;        /* its place in the outbox */
	const char *event;  /* JOURNAL_EVENT_* */
	int64_t queued_ns;  /* CLOCK_REALTIME when queued: when the outcome or verification came */
};

int journal_export_next(struct journal *j, size_t max,
			int (*cb)(const struct journal_entry *e, const struct decision *d, void *ctx),
			void *ctx);
/* Removes entries that were delivered (or given up on). 0, or -EIO. */
int journal_export_ack(struct journal *j, const int64_t *seqs, size_t n);

#endif
