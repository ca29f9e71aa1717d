#include <errno.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "lib/log.h"
#include "lib/util.h"
#include "model/decision_fields.h"
#include "record/journal.h"

struct journal {
	sqlite3 *db;
	sqlite3_stmt *insert;
	sqlite3_stmt *complete;
	sqlite3_stmt *verify;
	sqlite3_stmt *queue;    /* into the export outbox */
	sqlite3_stmt *trim;     /* the outbox's oldest, past its bound */
	sqlite3_stmt *ack;
	/* export: 0 keeps nothing for it; otherwise the outbox's bound */
	uint64_t export_max;
	uint64_t backlog;
	uint64_t dropped;
	void (*queued)(void *ctx);
	void *queued_ctx;
	int64_t (*clock)(void *ctx);  /* the time of queues and completions; NULL: the wall clock */
	void *clock_ctx;
	void (*skipped)(const char *why, void *ctx);  /* NULL: logged */
	void *skipped_ctx;
	bool unsynced;  /* commits since the last fsync (journal_sync) */
	char columns[512];  /* the decision's, "id, time_ns, ..." */
	int ncolumns;
	int completed_col;  /* completed_ns's parameter in the insert */
};

static int64_t journal_now(const struct journal *j)
{
	return j->clock ? j->clock(j->clock_ctx) : clock_real_ns();
}

void journal_set_clock(struct journal *j, int64_t (*clock)(void *ctx), void *ctx)
{
	j->clock = clock;
	j->clock_ctx = ctx;
}

#define JOURNAL_SCHEMA_VERSION 5

/* migrations[v] takes a journal from schema v to v + 1 */
static const char *const migrations[] = {
	[1] = "ALTER TABLE decisions ADD COLUMN verify TEXT NOT NULL DEFAULT '';",
	[2] = "ALTER TABLE decisions ADD COLUMN rung INTEGER NOT NULL DEFAULT 0;"
	      " ALTER TABLE decisions ADD COLUMN explain TEXT NOT NULL DEFAULT '[]';",
	[3] = "ALTER TABLE decisions ADD COLUMN container_id TEXT NOT NULL DEFAULT '';"
	      " ALTER TABLE decisions ADD COLUMN pod_uid TEXT NOT NULL DEFAULT '';"
	      " ALTER TABLE decisions ADD COLUMN pod TEXT NOT NULL DEFAULT '';"
	      " ALTER TABLE decisions ADD COLUMN namespace TEXT NOT NULL DEFAULT '';"
	      " ALTER TABLE decisions ADD COLUMN container TEXT NOT NULL DEFAULT '';"
	      " CREATE INDEX IF NOT EXISTS decisions_pod ON decisions(pod, time_ns);"
	      " CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	      " id TEXT NOT NULL, event TEXT NOT NULL, queued_ns INTEGER NOT NULL);",
	[4] = "ALTER TABLE decisions ADD COLUMN command TEXT NOT NULL DEFAULT '';",
};

static const char schema[] =
	"CREATE TABLE IF NOT EXISTS decisions ("
	" id TEXT PRIMARY KEY,"
	" time_ns INTEGER NOT NULL,"
	" mode TEXT NOT NULL,"
	" host TEXT NOT NULL,"
	" rule TEXT NOT NULL,"
	" rule_file TEXT NOT NULL,"
	" rule_hash TEXT NOT NULL,"
	" kind TEXT NOT NULL,"
	" held_ns INTEGER NOT NULL,"
	" pid INTEGER NOT NULL,"
	" tid INTEGER NOT NULL,"
	" start_time INTEGER NOT NULL,"
	" comm TEXT NOT NULL,"
	" exe TEXT NOT NULL,"
	" cgroup TEXT NOT NULL,"
	" summary TEXT NOT NULL,"
	" evidence TEXT NOT NULL,"
	" action TEXT NOT NULL,"
	" params TEXT NOT NULL,"
	" outcome TEXT NOT NULL,"
	" detail TEXT NOT NULL,"
	" completed_ns INTEGER,"
	" verify TEXT NOT NULL DEFAULT '',"
	" rung INTEGER NOT NULL DEFAULT 0,"
	" explain TEXT NOT NULL DEFAULT '[]',"
	" container_id TEXT NOT NULL DEFAULT '',"
	" pod_uid TEXT NOT NULL DEFAULT '',"
	" pod TEXT NOT NULL DEFAULT '',"
	" namespace TEXT NOT NULL DEFAULT '',"
	" container TEXT NOT NULL DEFAULT '',"
	" command TEXT NOT NULL DEFAULT '');"
	/* what the OTLP exporter has yet to see acknowledged, oldest first */
	"CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY AUTOINCREMENT,"
	" id TEXT NOT NULL, event TEXT NOT NULL, queued_ns INTEGER NOT NULL);"
	"CREATE INDEX IF NOT EXISTS decisions_pod ON decisions(pod, time_ns);"
	"CREATE INDEX IF NOT EXISTS decisions_time ON decisions(time_ns);"
	"CREATE INDEX IF NOT EXISTS decisions_rule ON decisions(rule, time_ns);"
	"CREATE INDEX IF NOT EXISTS decisions_pid ON decisions(pid, time_ns);"
	"CREATE INDEX IF NOT EXISTS decisions_outcome ON decisions(outcome);";

/* The decision's columns, from its field table (model/decision_fields.h),
 * "id, time_ns, ...", their number and where completed_ns is; the schema
 * above must hold each (preparing the insert fails otherwise, so a journal
 * never opens). */
static void journal_columns(struct journal *j)
{
	size_t nf;
	const struct decision_field *f = decision_fields(&nf);
	struct sbuf b;

	sbuf_init(&b, j->columns, sizeof(j->columns));
	j->ncolumns = 0;
	for (size_t i = 0; i < nf; i++) {
		if (!f[i].column)
			continue;
		sbuf_printf(&b, "%s%s", j->ncolumns ? ", " : "", f[i].column);
		if (f[i].offset == offsetof(struct decision, completed_ns))
			j->completed_col = j->ncolumns + 1;
		j->ncolumns++;
	}
}

int journal_unsynced(struct journal *j)
{
	return sqlite3_exec(j->db, "PRAGMA synchronous=OFF", NULL, NULL, NULL) ? -EIO : 0;
}

const char *journal_errmsg(struct journal *j)
{
	return j && j->db ? sqlite3_errmsg(j->db) : "out of memory";
}

void journal_free(struct journal *j)
{
	if (!j)
		return;
	sqlite3_finalize(j->insert);
	sqlite3_finalize(j->complete);
	sqlite3_finalize(j->verify);
	sqlite3_finalize(j->queue);
	sqlite3_finalize(j->trim);
	sqlite3_finalize(j->ack);
	(void)journal_sync(j);
	sqlite3_close(j->db);
	free(j);
}

static int mkdir_parents(const char *path)
{
	char dir[PATH_MAX], *p;

	snprintf(dir, sizeof(dir), "%s", path);
	p = dirname(dir);
	for (char *s = p + 1; *s; s++) {
		if (*s != '/')
			continue;
		*s = '\0';
		if (mkdir(p, 0755) && errno != EEXIST)
			return -errno;
		*s = '/';
	}
	if (mkdir(p, 0700) && errno != EEXIST)
		return -errno;
	return 0;
}

/* The journal's schema version into *version (0: not a reflexd journal):
 * an SQLite result code, the reason in db's message. */
static int journal_version(sqlite3 *db, int *version)
{
	sqlite3_stmt *st;
	int rc = sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL);

	if (rc != SQLITE_OK)
		return rc;
	rc = sqlite3_step(st);
	if (rc == SQLITE_ROW)
		*version = sqlite3_column_int(st, 0);
	sqlite3_finalize(st);
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? SQLITE_OK : rc;
}

/* Opens path read-only as an immutable file: "file:" and the path
 * percent-encoded where a URI needs it, "?immutable=1". */
static int open_immutable(const char *path, sqlite3 **db)
{
	static const char hex[] = "0123456789abcdef";
	char uri[3 * PATH_MAX + 32];
	struct sbuf b;

	sbuf_init(&b, uri, sizeof(uri));
	sbuf_puts(&b, "file:");
	for (const unsigned char *p = (const unsigned char *)path; *p; p++) {
		if (*p == '%' || *p == '?' || *p == '#' || *p <= ' ' || *p >= 0x7f) {
			char esc[3] = { '%', hex[*p >> 4], hex[*p & 15] };

			sbuf_put(&b, esc, 3);
		} else {
			sbuf_put(&b, (const char *)p, 1);
		}
	}
	sbuf_puts(&b, "?immutable=1");
	if (b.truncated)
		return SQLITE_CANTOPEN;
	return sqlite3_open_v2(uri, db, SQLITE_OPEN_READONLY | SQLITE_OPEN_URI, NULL);
}

/* Opens path's database into j->db and reads its schema version: an
 * SQLite result code, the reason in j->db's message or in err. */
static int open_db(struct journal *j, const char *path, bool read_only, int *version,
		   char *err, size_t errlen)
{
	int flags = read_only ? SQLITE_OPEN_READONLY : SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE;
	char wal[PATH_MAX];
	struct stat sb;
	int rc;

	if (sqlite3_open_v2(path, &j->db, flags, NULL) != SQLITE_OK)
		return SQLITE_CANTOPEN;
	sqlite3_busy_timeout(j->db, 2000);
	rc = journal_version(j->db, version);
	if (!read_only || (rc != SQLITE_CANTOPEN &&
			   sqlite3_extended_errcode(j->db) != SQLITE_READONLY_DIRECTORY))
		return rc;
	/* A WAL journal in a directory this user cannot write: SQLite cannot
	 * make the -shm file readers share. Without a -wal file no writer is
	 * at work (a daemon keeps one while it runs), so the file is the
	 * whole journal and reads as immutable. */
	snprintf(wal, sizeof(wal), "%s-wal", path);
	if (!stat(wal, &sb)) {
		snprintf(err, errlen, "%s: cannot read a journal that is being written from a "
			 "directory this user cannot write (SQLite needs to create %s-shm): run "
			 "audit as the daemon's user, or copy the journal", path, path);
		return SQLITE_READONLY;
	}
	sqlite3_close(j->db);
	j->db = NULL;
	if ((rc = open_immutable(path, &j->db)) != SQLITE_OK)
		return rc;
	return journal_version(j->db, version);
}

/* Whether this reflexd can use a journal of schema version: 0, or -EPROTO
 * with the reason in err. A reader needs the current schema; a writer
 * upgrades an older one. */
static int version_check(const char *path, int version, bool read_only, char *err, size_t errlen)
{
	if (version > JOURNAL_SCHEMA_VERSION)
		snprintf(err, errlen, "%s: journal schema %d is newer than this reflexd (%d)",
			 path, version, JOURNAL_SCHEMA_VERSION);
	else if (read_only && version == 0)
		snprintf(err, errlen, "%s: not a reflexd journal", path);
	else if (read_only && version < JOURNAL_SCHEMA_VERSION)
		snprintf(err, errlen, "%s: journal schema %d is older than this reflexd's (%d): "
			 "`reflexd run` upgrades it", path, version, JOURNAL_SCHEMA_VERSION);
	else
		return 0;
	return -EPROTO;
}

/* Brings a journal open for writing to the current schema: a new one gets
 * it whole, an older one each migration in turn, committed with its
 * version. An SQLite result code; the message, if any, into *msg. */
static int upgrade(sqlite3 *db, int version, char **msg)
{
	char step[2048];
	int rc;

	/* Group commit (docs/journal.md): WAL with synchronous=NORMAL, so a
	 * commit is a write to the WAL that a crash of reflexd cannot lose,
	 * fsynced by journal_sync; only an intent is fsynced as it commits. */
	if ((rc = sqlite3_exec(db, "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;", NULL, NULL, msg)))
		return rc;
	if (version == 0) {
		/* the current schema (IF NOT EXISTS: safe to redo) */
		snprintf(step, sizeof(step), "PRAGMA user_version = %d", JOURNAL_SCHEMA_VERSION);
		if ((rc = sqlite3_exec(db, schema, NULL, NULL, msg)) ||
		    (rc = sqlite3_exec(db, step, NULL, NULL, msg)))
			return rc;
		version = JOURNAL_SCHEMA_VERSION;
	}
	for (; version < JOURNAL_SCHEMA_VERSION; version++) {
		snprintf(step, sizeof(step), "BEGIN; %s PRAGMA user_version = %d; COMMIT;",
			 migrations[version], version + 1);
		if ((rc = sqlite3_exec(db, step, NULL, NULL, msg))) {
			(void)sqlite3_exec(db, "ROLLBACK", NULL, NULL, NULL);
			return rc;
		}
	}
	return SQLITE_OK;
}

/* The statements a writer runs: an SQLite result code. */
static int prepare(struct journal *j)
{
	char sql[2048];
	struct sbuf b;

	sbuf_init(&b, sql, sizeof(sql));
	sbuf_printf(&b, "INSERT INTO decisions (%s) VALUES (?", j->columns);
	for (int i = 1; i < j->ncolumns; i++)
		sbuf_puts(&b, ",?");
	sbuf_puts(&b, ")");
	if (b.truncated)
		return SQLITE_TOOBIG;
	return sqlite3_prepare_v2(j->db, sql, -1, &j->insert, NULL) ||
	       sqlite3_prepare_v2(j->db, "UPDATE decisions SET outcome = ?, detail = ?, completed_ns = ?"
				  " WHERE id = ?", -1, &j->complete, NULL) ||
	       sqlite3_prepare_v2(j->db, "UPDATE decisions SET verify = ? WHERE id = ?", -1,
				  &j->verify, NULL) ||
	       sqlite3_prepare_v2(j->db, "INSERT INTO outbox (id, event, queued_ns) VALUES (?, ?, ?)",
				  -1, &j->queue, NULL) ||
	       sqlite3_prepare_v2(j->db, "DELETE FROM outbox WHERE seq IN"
				  " (SELECT seq FROM outbox ORDER BY seq LIMIT ?)", -1, &j->trim, NULL) ||
	       sqlite3_prepare_v2(j->db, "DELETE FROM outbox WHERE seq = ?", -1, &j->ack, NULL);
}

struct journal *journal_open(const char *path, bool read_only, char *err, size_t errlen)
{
	struct journal *j = calloc(1, sizeof(*j));
	char *msg = NULL;
	int version = 0, rc;

	err[0] = '\0';
	if (!j) {
		snprintf(err, errlen, "%s: out of memory", path);
		return NULL;
	}
	journal_columns(j);
	if (!read_only && (rc = mkdir_parents(path))) {
		snprintf(err, errlen, "%s: cannot create its directory: %s", path, strerror(-rc));
		goto cleanup;
	}
	if (open_db(j, path, read_only, &version, err, errlen) != SQLITE_OK ||
	    version_check(path, version, read_only, err, errlen))
		goto cleanup;
	if (read_only)
		return j;
	if (upgrade(j->db, version, &msg) == SQLITE_OK && prepare(j) == SQLITE_OK)
		return j;

cleanup:
	if (!err[0])
		snprintf(err, errlen, "%s: %s", path, msg ? msg : j->db ? sqlite3_errmsg(j->db) : "cannot open");
	sqlite3_free(msg);
	journal_free(j);
	return NULL;
}

static int step_done(sqlite3_stmt *st)
{
	int rc = sqlite3_step(st);

	sqlite3_reset(st);
	sqlite3_clear_bindings(st);
	return rc == SQLITE_DONE ? 0 : -EIO;
}

/* Queues event about decision id for export, within the caller's
 * transaction; past the bound, the oldest entries go and are counted. */
static int queue_export(struct journal *j, const char *id, const char *event)
{
	sqlite3_bind_text(j->queue, 1, id, -1, SQLITE_STATIC);
	sqlite3_bind_text(j->queue, 2, event, -1, SQLITE_STATIC);
	sqlite3_bind_int64(j->queue, 3, journal_now(j));
	if (step_done(j->queue))
		return -EIO;
	if (++j->backlog > j->export_max) {
		sqlite3_bind_int64(j->trim, 1, (sqlite3_int64)(j->backlog - j->export_max));
		if (step_done(j->trim))
			return -EIO;
		j->dropped += (uint64_t)sqlite3_changes(j->db);
		j->backlog -= (uint64_t)sqlite3_changes(j->db);
	}
	return 0;
}

/* Runs st (bound by the caller) and, when exporting, queues event for id
 * in the same transaction: the record and its place in the outbox are
 * durable together or not at all. */
static int step_and_queue(struct journal *j, sqlite3_stmt *st, const char *id, const char *event)
{
	uint64_t backlog = j->backlog, dropped = j->dropped;
	int rc;

	if (!j->export_max || !event)
		return step_done(st);
	if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return -EIO;
	}
	rc = step_done(st);
	if (!rc)
		rc = queue_export(j, id, event);
	if (!rc && sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL))
		rc = -EIO;
	if (rc) {
		(void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		j->backlog = backlog;
		j->dropped = dropped;
		return rc;
	}
	if (j->queued)
		j->queued(j->queued_ctx);
	return 0;
}

/* Runs st as its own transaction, fsynced before it returns: the WAL is
 * synced whole, so every record batched before it is durable too. */
static int step_durably(struct journal *j, sqlite3_stmt *st)
{
	int rc;

	if (sqlite3_exec(j->db, "PRAGMA synchronous=FULL", NULL, NULL, NULL)) {
		sqlite3_reset(st);
		sqlite3_clear_bindings(st);
		return -EIO;
	}
	rc = step_done(st);
	if (sqlite3_exec(j->db, "PRAGMA synchronous=NORMAL", NULL, NULL, NULL))
		rc = -EIO;
	if (!rc)
		j->unsynced = false;
	return rc;
}

/* Binds d's stored fields to st's parameters, in the table's order. */
static void bind_decision(sqlite3_stmt *st, const struct decision *d)
{
	size_t nf;
	const struct decision_field *f = decision_fields(&nf);
	int col = 1;

	for (size_t i = 0; i < nf; i++) {
		if (!f[i].column)
			continue;
		if (decision_field_is_int(&f[i]))
			sqlite3_bind_int64(st, col++, decision_field_int(&f[i], d));
		else
			sqlite3_bind_text(st, col++, decision_field_text(&f[i], d, NULL, 0), -1, SQLITE_STATIC);
	}
}

int journal_write(struct journal *j, const struct decision *d)
{
	sqlite3_stmt *st = j->insert;

	bind_decision(st, d);
	/* an intent is exported with its outcome, by journal_complete */
	if (d->outcome == REFLEX_OUTCOME_PENDING) {
		sqlite3_bind_null(st, j->completed_col);
		return step_durably(j, st);
	}
	sqlite3_bind_int64(st, j->completed_col, journal_now(j));
	j->unsynced = true;
	return step_and_queue(j, st, d->id, JOURNAL_EVENT_DECISION);
}

int journal_sync(struct journal *j)
{
	if (!j || !j->unsynced)
		return 0;
	/* a checkpoint fsyncs the WAL, then the database it copies it into */
	if (sqlite3_wal_checkpoint_v2(j->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL) != SQLITE_OK)
		return -EIO;
	j->unsynced = false;
	return 0;
}

int journal_verify(struct journal *j, const char *id, const char *result)
{
	sqlite3_bind_text(j->verify, 1, result, -1, SQLITE_STATIC);
	sqlite3_bind_text(j->verify, 2, id, -1, SQLITE_STATIC);
	j->unsynced = true;
	return step_and_queue(j, j->verify, id, JOURNAL_EVENT_VERIFICATION);
}

int journal_complete(struct journal *j, const struct decision *d)
{
	sqlite3_stmt *st = j->complete;

	sqlite3_bind_text(st, 1, decision_outcome_name(d->outcome), -1, SQLITE_STATIC);
	sqlite3_bind_text(st, 2, d->detail, -1, SQLITE_STATIC);
	sqlite3_bind_int64(st, 3, journal_now(j));
	sqlite3_bind_text(st, 4, d->id, -1, SQLITE_STATIC);
	j->unsynced = true;
	return step_and_queue(j, st, d->id, JOURNAL_EVENT_DECISION);
}

/* Why st's column col, f's, was refused (rc: decision_field_set's, or
 * -EDOM, not an integer), with the value as stored, whatever its type:
 * "decision ID: pid 4294967297 is out of range". */
static void say_refused(sqlite3_stmt *st, int col, const struct decision_field *f, int rc, char *why,
			size_t size)
{
	const unsigned char *id = sqlite3_column_text(st, 0), *value = sqlite3_column_text(st, col);
	const char *v = value ? (const char *)value : "";
	struct sbuf b;

	sbuf_init(&b, why, size);
	sbuf_printf(&b, "decision %.40s: %s ", id ? (const char *)id : "", f->column);
	if (rc == -ERANGE)
		sbuf_printf(&b, "%s is out of range", v);
	else if (rc == -EDOM)
		sbuf_printf(&b, "'%.40s' is not an integer", v);
	else if (rc == -E2BIG)
		sbuf_printf(&b, "is %d bytes long, more than the %zu it holds", sqlite3_column_bytes(st, col),
			    f->size - 1);
	else if (rc == -EILSEQ)
		sbuf_puts(&b, "holds a NUL byte");
	else
		sbuf_printf(&b, "'%.40s' is not a known name", v);
}

/* A row of the decision's columns (from the first) into d: 0, or -errno
 * when a value is not one reflexd writes, with why in why (say_refused):
 * never a value changed to fit. */
static int row_to_decision(sqlite3_stmt *st, struct decision *d, char *why, size_t size)
{
	size_t nf;
	const struct decision_field *f = decision_fields(&nf);
	int col = 0;

	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < nf; i++) {
		const unsigned char *text = NULL;
		int64_t v = 0;
		int rc = 0;

		if (!f[i].column)
			continue;
		if (!decision_field_is_int(&f[i]))
			text = sqlite3_column_text(st, col);
		else if (sqlite3_column_type(st, col) == SQLITE_INTEGER || sqlite3_column_type(st, col) == SQLITE_NULL)
			v = sqlite3_column_int64(st, col);
		else
			rc = -EDOM;
		if (!rc)
			rc = decision_field_set(&f[i], d, text ? (const char *)text : "",
						text ? (size_t)sqlite3_column_bytes(st, col) : 0, v);
		if (rc) {
			say_refused(st, col, &f[i], rc, why, size);
			return rc;
		}
		col++;
	}
	return 0;
}

/* A row that cannot be read back, why it is skipped: said to the
 * journal_on_skip callback, else logged. The row stays as it is. */
static void skip_row(struct journal *j, char *why, size_t size)
{
	size_t n = strlen(why);

	snprintf(why + n, size - n, "; row skipped");
	if (j->skipped)
		j->skipped(why, j->skipped_ctx);
	else
		log_error("journal: %s", why);
}

void journal_on_skip(struct journal *j, void (*skipped)(const char *why, void *ctx), void *ctx)
{
	j->skipped = skipped;
	j->skipped_ctx = ctx;
}

/* Runs st, a SELECT of the decision's columns first (and bound), and
 * calls row for each row with its decision (NULL for a row that cannot
 * be read back, said by skip_row), until row returns nonzero; finalizes
 * st. 0, or -EIO, -ENOMEM. */
static int each_decision(struct journal *j, sqlite3_stmt *st,
			 int (*row)(sqlite3_stmt *st, struct decision *d, void *ctx), void *ctx)
{
	struct decision *d = malloc(sizeof(*d));
	char why[256];
	int rc = SQLITE_NOMEM;

	while (d && (rc = sqlite3_step(st)) == SQLITE_ROW) {
		bool readable = !row_to_decision(st, d, why, sizeof(why));

		if (!readable)
			skip_row(j, why, sizeof(why));
		if (row(st, readable ? d : NULL, ctx))
			break;
	}
	sqlite3_finalize(st);
	free(d);
	if (rc == SQLITE_NOMEM)
		return -ENOMEM;
	return rc == SQLITE_ROW || rc == SQLITE_DONE ? 0 : -EIO;
}

/* Prepares "SELECT <the decision's columns><rest>" into *st: 0 or -EIO. */
static int select_decisions(struct journal *j, const char *rest, sqlite3_stmt **st)
{
	char sql[2048];

	if ((size_t)snprintf(sql, sizeof(sql), "SELECT %s%s", j->columns, rest) >= sizeof(sql))
		return -EIO;
	return sqlite3_prepare_v2(j->db, sql, -1, st, NULL) == SQLITE_OK ? 0 : -EIO;
}

struct recovery {
	struct journal *j;
	void (*cb)(const struct decision *d, void *ctx);
	void *ctx;
	int n;
};

static int recover_row(sqlite3_stmt *st, struct decision *d, void *ctx)
{
	struct recovery *r = ctx;

	/* unreadable: left pending, never acted on or exported with a wrong value */
	if (!d)
		return 0;
	d->outcome = REFLEX_OUTCOME_UNKNOWN;
	snprintf(d->detail, sizeof(d->detail), "outcome unknown: reflexd stopped after recording the intent");
	if (journal_complete(r->j, d) == 0) {
		r->n++;
		if (r->cb)
			r->cb(d, r->ctx);
	}
	return 0;
}

int journal_recover(struct journal *j, void (*cb)(const struct decision *d, void *ctx), void *ctx)
{
	struct recovery r = { .j = j, .cb = cb, .ctx = ctx };
	sqlite3_stmt *st;
	int rc;

	if ((rc = select_decisions(j, " FROM decisions WHERE outcome = 'pending' ORDER BY time_ns", &st)))
		return rc;
	rc = each_decision(j, st, recover_row, &r);
	return rc ? rc : r.n;
}

/* The WHERE clause of f, its parameters numbered from 1 in the order
 * query_bind binds them. */
static void query_where(struct sbuf *q, const struct journal_filter *f)
{
	int i = 1;

	sbuf_puts(q, " FROM decisions WHERE 1");
	if (f->id) {
		sbuf_printf(q, " AND (id = ?%d OR id LIKE '%%' || ?%d OR id LIKE ?%d || '%%')", i, i, i);
		i++;
	}
	if (f->rule)
		sbuf_printf(q, " AND rule = ?%d", i++);
	if (f->kind)
		sbuf_printf(q, " AND kind = ?%d", i++);
	if (f->action)
		sbuf_printf(q, " AND action = ?%d", i++);
	if (f->mode)
		sbuf_printf(q, " AND mode = ?%d", i++);
	if (f->comm)
		sbuf_printf(q, " AND comm GLOB ?%d", i++);
	if (f->pod)
		sbuf_printf(q, " AND pod GLOB ?%d", i++);
	if (f->namespace)
		sbuf_printf(q, " AND namespace GLOB ?%d", i++);
	if (f->pid)
		sbuf_printf(q, " AND pid = ?%d", i++);
	if (f->outcome >= 0)
		sbuf_printf(q, " AND outcome = ?%d", i++);
	if (f->since_ns)
		sbuf_printf(q, " AND time_ns >= ?%d", i++);
	if (f->until_ns)
		sbuf_printf(q, " AND time_ns < ?%d", i++);
}

static void query_bind(sqlite3_stmt *st, const struct journal_filter *f)
{
	const char *text[] = { f->id, f->rule, f->kind, f->action, f->mode, f->comm, f->pod, f->namespace };
	int i = 1;

	for (size_t k = 0; k < sizeof(text) / sizeof(text[0]); k++)
		if (text[k])
			sqlite3_bind_text(st, i++, text[k], -1, SQLITE_STATIC);
	if (f->pid)
		sqlite3_bind_int(st, i++, f->pid);
	if (f->outcome >= 0)
		sqlite3_bind_text(st, i++, decision_outcome_name((enum decision_outcome)f->outcome), -1, SQLITE_STATIC);
	if (f->since_ns)
		sqlite3_bind_int64(st, i++, f->since_ns);
	if (f->until_ns)
		sqlite3_bind_int64(st, i++, f->until_ns);
}

struct query {
	int (*cb)(const struct decision *d, void *ctx);
	void *ctx;
};

static int query_row(sqlite3_stmt *st, struct decision *d, void *ctx)
{
	struct query *q = ctx;

	return d ? q->cb(d, q->ctx) : 0;
}

int journal_query(struct journal *j, const struct journal_filter *f,
		  int (*cb)(const struct decision *d, void *ctx), void *ctx)
{
	struct query q = { .cb = cb, .ctx = ctx };
	char sql[2048];
	struct sbuf b;
	sqlite3_stmt *st;

	/* the newest `limit` matches, returned oldest first */
	sbuf_init(&b, sql, sizeof(sql));
	sbuf_printf(&b, "SELECT * FROM (SELECT %s", j->columns);
	query_where(&b, f);
	sbuf_puts(&b, " ORDER BY time_ns DESC, id DESC");
	if (f->limit > 0)
		sbuf_printf(&b, " LIMIT %ld", f->limit);
	sbuf_puts(&b, ") ORDER BY time_ns, id");
	if (b.truncated || sqlite3_prepare_v2(j->db, sql, -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	query_bind(st, f);
	return each_decision(j, st, query_row, &q);
}

int journal_export_start(struct journal *j, uint64_t max, void (*queued)(void *ctx), void *ctx)
{
	sqlite3_stmt *st;
	int rc;

	/* an entry whose decision is gone (the journal was edited) has
	 * nothing to send */
	if (sqlite3_exec(j->db, "DELETE FROM outbox WHERE id NOT IN (SELECT id FROM decisions)",
			 NULL, NULL, NULL) ||
	    sqlite3_prepare_v2(j->db, "SELECT count(*) FROM outbox", -1, &st, NULL) != SQLITE_OK)
		return -EIO;
	rc = sqlite3_step(st);
	j->backlog = rc == SQLITE_ROW ? (uint64_t)sqlite3_column_int64(st, 0) : 0;
	sqlite3_finalize(st);
	if (rc != SQLITE_ROW)
		return -EIO;
	j->export_max = max ? max : 1;
	j->queued = queued;
	j->queued_ctx = ctx;
	return 0;
}

void journal_export_counts(const struct journal *j, uint64_t *backlog, uint64_t *dropped)
{
	*backlog = j->backlog;
	*dropped = j->dropped;
}

struct export {
	int ncolumns;
	int (*cb)(const struct journal_entry *e, const struct decision *d, void *ctx);
	void *ctx;
};

static int export_row(sqlite3_stmt *st, struct decision *d, void *ctx)
{
	struct export *x = ctx;
	const unsigned char *event = sqlite3_column_text(st, x->ncolumns + 1);
	struct journal_entry e = {
		.seq = sqlite3_column_int64(st, x->ncolumns),
		.event = event ? (const char *)event : "",
		.queued_ns = sqlite3_column_int64(st, x->ncolumns + 2),
	};

	return x->cb(&e, d, x->ctx);
}

int journal_export_next(struct journal *j, size_t max,
			int (*cb)(const struct journal_entry *e, const struct decision *d, void *ctx),
			void *ctx)
{
	struct export x = { .ncolumns = j->ncolumns, .cb = cb, .ctx = ctx };
	sqlite3_stmt *st;
	int rc;

	if ((rc = select_decisions(j, ", o.seq, o.event, o.queued_ns FROM outbox o"
				   " JOIN decisions USING (id) ORDER BY o.seq LIMIT ?", &st)))
		return rc;
	sqlite3_bind_int64(st, 1, (sqlite3_int64)max);
	return each_decision(j, st, export_row, &x);
}

int journal_export_ack(struct journal *j, const int64_t *seqs, size_t n)
{
	uint64_t gone = 0;
	int rc = 0;

	if (sqlite3_exec(j->db, "BEGIN IMMEDIATE", NULL, NULL, NULL))
		return -EIO;
	for (size_t i = 0; !rc && i < n; i++) {
		sqlite3_bind_int64(j->ack, 1, seqs[i]);
		rc = step_done(j->ack);
		gone += (uint64_t)sqlite3_changes(j->db);
	}
	if (!rc && sqlite3_exec(j->db, "COMMIT", NULL, NULL, NULL))
		rc = -EIO;
	if (rc) {
		(void)sqlite3_exec(j->db, "ROLLBACK", NULL, NULL, NULL);
		return rc;
	}
	/* entries trimmed meanwhile were counted as dropped already */
	j->backlog = gone < j->backlog ? j->backlog - gone : 0;
	return 0;
}
