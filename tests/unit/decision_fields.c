/* The decision's field table (model/decision_fields.c) against what reads
 * it: each row's type fits its member, no name is used twice in an
 * output, and a decision with every stored field set survives a trip
 * through a real journal (record/journal.c) field for field, so the
 * table and the journal's schema agree. A value reflexd cannot have
 * written is refused, never stored changed to fit, and recovery skips the
 * row it is in, saying so, and leaves it pending. No root, no BPF. */
#include <errno.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "lib/util.h"
#include "model/decision_fields.h"
#include "record/journal.h"

static int failures;

#define CHECK(cond, ...) do { \
	if (!(cond)) { \
		printf("not ok - " __VA_ARGS__); \
		printf("\n"); \
		failures++; \
	} \
} while (0)

static void check_types(const struct decision_field *f, size_t n)
{
	for (size_t i = 0; i < n; i++) {
		const char *name = f[i].column ? f[i].column : f[i].json ? f[i].json : f[i].otlp;

		CHECK(f[i].column || f[i].json || f[i].otlp, "row %zu has no name", i);
		CHECK(f[i].offset + f[i].size <= sizeof(struct decision), "%s: outside the decision", name);
		if (f[i].type == DECISION_FIELD_INT)
			CHECK(f[i].size == sizeof(int), "%s: an INT of %zu bytes", name, f[i].size);
		if (f[i].type == DECISION_FIELD_I64 || f[i].type == DECISION_FIELD_MS ||
		    f[i].type == DECISION_FIELD_TIME)
			CHECK(f[i].size == 8, "%s: 64 bits of %zu bytes", name, f[i].size);
		CHECK((f[i].type == DECISION_FIELD_JSON) == (f[i].empty != NULL), "%s: a default only for JSON", name);
		/* the derived types are shown, never stored */
		CHECK(!f[i].column || f[i].type < DECISION_FIELD_TIME, "%s: a derived field stored", name);
		for (size_t k = 0; k < i; k++) {
			CHECK(!f[i].column || !f[k].column || strcmp(f[i].column, f[k].column), "column %s twice", name);
			CHECK(!f[i].json || !f[k].json || strcmp(f[i].json, f[k].json), "JSON key %s twice", name);
			CHECK(!f[i].otlp || !f[k].otlp || strcmp(f[i].otlp, f[k].otlp), "attribute %s twice", name);
		}
	}
}

/* Every stored field set to a value of its own. */
static void fill(struct decision *d, const struct decision_field *f, size_t n)
{
	memset(d, 0, sizeof(*d));
	for (size_t i = 0; i < n; i++) {
		char text[64];

		if (!f[i].column)
			continue;
		snprintf(text, sizeof(text), f[i].type == DECISION_FIELD_JSON ? "{\"v\":%zu}" : "v%zu", i);
		(void)decision_field_set(&f[i], d, text, strlen(text), 1000 + (int64_t)i);
	}
	d->mode = REFLEX_MODE_DRY_RUN;
	d->condition.kind = REFLEX_COND_LEAK;
	d->outcome = REFLEX_OUTCOME_SUPPRESSED;
}

static int keep(const struct decision *d, void *ctx)
{
	memcpy(ctx, d, sizeof(*d));
	return 0;
}

/* The journal's clock: it stamps completed_ns with the time it records an
 * outcome, here the value fill() gave the member. */
static int64_t fixed_clock(void *ctx)
{
	return ((const struct decision *)ctx)->completed_ns;
}

static void check_journal(const struct decision_field *f, size_t n)
{
	char dir[] = "/tmp/decision_fields.XXXXXX", path[64], err[256], a[512], b[512];
	struct journal_filter all = { .outcome = -1 };
	struct decision *in = calloc(1, sizeof(*in)), *out = calloc(1, sizeof(*out));
	struct journal *j;

	if (!in || !out || !mkdtemp(dir)) {
		CHECK(0, "setting up");
		return;
	}
	snprintf(path, sizeof(path), "%s/j.db", dir);
	fill(in, f, n);
	j = journal_open(path, false, err, sizeof(err));
	CHECK(j, "journal_open: %s", err);
	if (j) {
		journal_set_clock(j, fixed_clock, in);
		CHECK(!journal_write(j, in), "journal_write");
		CHECK(!journal_query(j, &all, keep, out), "journal_query");
		for (size_t i = 0; i < n; i++) {
			if (!f[i].column)
				continue;
			if (decision_field_is_int(&f[i])) {
				CHECK(decision_field_int(&f[i], in) == decision_field_int(&f[i], out),
				      "column %s: %lld back as %lld", f[i].column,
				      (long long)decision_field_int(&f[i], in), (long long)decision_field_int(&f[i], out));
			} else {
				const char *x = decision_field_text(&f[i], in, a, sizeof(a));
				const char *y = decision_field_text(&f[i], out, b, sizeof(b));

				CHECK(!strcmp(x, y), "column %s: '%s' back as '%s'", f[i].column, x, y);
			}
		}
	}
	journal_free(j);
	unlink(path);
	rmdir(dir);
	free(in);
	free(out);
}

static const struct decision_field *field(const struct decision_field *f, size_t n, const char *column)
{
	for (size_t i = 0; i < n; i++)
		if (f[i].column && !strcmp(f[i].column, column))
			return &f[i];
	return NULL;
}

/* Each refusal of decision_field_set at its bound, the value just inside
 * it accepted as it is. */
static void check_refused(const struct decision_field *f, size_t n)
{
	static const struct {
		const char *column, *text;
		size_t len;
		int64_t v;
		int rc;
	} cases[] = {
		{ "pid", "", 0, INT_MAX, 0 },
		{ "pid", "", 0, (int64_t)INT_MAX + 1, -ERANGE },
		{ "pid", "", 0, 4294967297, -ERANGE },
		{ "pid", "", 0, -5, -ERANGE },
		{ "tid", "", 0, (int64_t)1 << 40, -ERANGE },
		{ "rung", "", 0, -1, -ERANGE },
		{ "rung", "", 0, 3, 0 },
		{ "held_ns", "", 0, -1, -ERANGE },
		{ "start_time", "", 0, INT64_MIN, -ERANGE },
		{ "time_ns", "", 0, -1, 0 },
		{ "comm", "123456789012345", 15, 0, 0 },
		{ "comm", "1234567890123456", 16, 0, -E2BIG },
		{ "comm", "bash\0evil", 9, 0, -EILSEQ },
		{ "mode", "dry-run", 7, 0, 0 },
		{ "mode", "bogus", 5, 0, -EINVAL },
		{ "mode", "", 0, 0, -EINVAL },
		{ "kind", "-", 1, 0, 0 },
		{ "kind", "leak", 4, 0, 0 },
		{ "kind", "bogus", 5, 0, -EINVAL },
		{ "outcome", "acted", 5, 0, 0 },
		{ "outcome", "exploded", 8, 0, -EINVAL },
	};
	struct decision *d = calloc(1, sizeof(*d));

	for (size_t i = 0; d && i < sizeof(cases) / sizeof(cases[0]); i++) {
		const struct decision_field *c = field(f, n, cases[i].column);
		int rc;

		if (!c) {
			CHECK(0, "no column %s", cases[i].column);
			continue;
		}
		rc = decision_field_set(c, d, cases[i].text, cases[i].len, cases[i].v);
		CHECK(rc == cases[i].rc, "%s (%lld, '%s'): %d, not %d", cases[i].column, (long long)cases[i].v,
		      cases[i].text, rc, cases[i].rc);
		if (!rc && decision_field_is_int(c))
			CHECK(decision_field_int(c, d) == cases[i].v, "%s: %lld stored as %lld", cases[i].column,
			      (long long)cases[i].v, (long long)decision_field_int(c, d));
	}
	CHECK(d, "calloc");
	free(d);
}

struct recovered {
	char ids[4][37];
	int n;
	char why[4][256];
	int nwhy;
	int exported, unreadable;  /* by journal_export_next */
	char exported_id[37];
};

static void on_recovered(const struct decision *d, void *ctx)
{
	struct recovered *r = ctx;

	if (r->n < 4)
		snprintf(r->ids[r->n], sizeof(r->ids[0]), "%s", d->id);
	r->n++;
}

static void on_skipped(const char *why, void *ctx)
{
	struct recovered *r = ctx;

	if (r->nwhy < 4)
		snprintf(r->why[r->nwhy], sizeof(r->why[0]), "%s", why);
	r->nwhy++;
}

static int on_exported(const struct journal_entry *e, const struct decision *d, void *ctx)
{
	struct recovered *r = ctx;

	if (!d) {
		r->unreadable++;
		return 0;
	}
	snprintf(r->exported_id, sizeof(r->exported_id), "%s", d->id);
	r->exported++;
	return 0;
}

/* Two intents left pending by a stop, one of them forged to a pid of
 * 2^32 + 1 (read as pid 1 once): recovery marks the other unknown, and
 * skips the forged one, saying why, leaving it pending as it is. A
 * forged row queued for export reaches the exporter as nothing to send. */
static void check_recover(void)
{
	char dir[] = "/tmp/decision_fields.XXXXXX", path[64], err[256], sql[256], want[256];
	struct decision *d = calloc(1, sizeof(*d));
	struct recovered r = { 0 };
	char good[37], forged[37], queued[37];
	struct journal *j = NULL;
	sqlite3 *db = NULL;
	sqlite3_stmt *st = NULL;

	if (!d || !mkdtemp(dir)) {
		CHECK(0, "setting up");
		free(d);
		return;
	}
	snprintf(path, sizeof(path), "%s/j.db", dir);
	j = journal_open(path, false, err, sizeof(err));
	CHECK(j, "journal_open: %s", err);
	if (!j)
		goto cleanup;
	CHECK(!journal_export_start(j, 100, NULL, NULL), "journal_export_start");
	d->outcome = REFLEX_OUTCOME_ACTED;
	d->condition.kind = REFLEX_COND_DEADLOCK;
	d->condition.target.pid = 4242;
	uuid_v7(queued);
	snprintf(d->id, sizeof(d->id), "%s", queued);
	CHECK(!journal_write(j, d), "journal_write");
	d->outcome = REFLEX_OUTCOME_PENDING;
	d->condition.target.pid = 4242;
	uuid_v7(good);
	uuid_v7(forged);
	snprintf(d->id, sizeof(d->id), "%s", good);
	CHECK(!journal_write(j, d), "journal_write");
	snprintf(d->id, sizeof(d->id), "%s", forged);
	CHECK(!journal_write(j, d), "journal_write");
	CHECK(sqlite3_open(path, &db) == SQLITE_OK, "sqlite3_open");
	snprintf(sql, sizeof(sql), "UPDATE decisions SET pid = 4294967297 WHERE id IN ('%s', '%s')", forged, queued);
	CHECK(sqlite3_exec(db, sql, NULL, NULL, NULL) == SQLITE_OK, "forging: %s", sqlite3_errmsg(db));

	journal_on_skip(j, on_skipped, &r);
	CHECK(journal_recover(j, on_recovered, &r) == 1, "recovered not 1");
	CHECK(r.n == 1 && !strcmp(r.ids[0], good), "recovered %d, the first %s", r.n, r.ids[0]);
	snprintf(want, sizeof(want), "decision %s: pid 4294967297 is out of range; row skipped", forged);
	CHECK(r.nwhy == 1 && !strcmp(r.why[0], want), "%d said, the first '%s', not '%s'", r.nwhy, r.why[0], want);
	/* the outbox: the forged acted one, then the recovered one */
	CHECK(!journal_export_next(j, 10, on_exported, &r), "journal_export_next");
	CHECK(r.unreadable == 1 && r.exported == 1 && !strcmp(r.exported_id, good),
	      "exported %d (%s), %d unreadable", r.exported, r.exported_id, r.unreadable);
	snprintf(want, sizeof(want), "decision %s: pid 4294967297 is out of range; row skipped", queued);
	CHECK(r.nwhy == 2 && !strcmp(r.why[1], want), "%d said, the second '%s', not '%s'", r.nwhy, r.why[1], want);

	snprintf(sql, sizeof(sql), "SELECT outcome, pid FROM decisions WHERE id = '%s'", forged);
	CHECK(sqlite3_prepare_v2(db, sql, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW &&
	      !strcmp((const char *)sqlite3_column_text(st, 0), "pending") &&
	      sqlite3_column_int64(st, 1) == 4294967297, "the forged row is not left pending as it was");
cleanup:
	sqlite3_finalize(st);
	sqlite3_close(db);
	journal_free(j);
	unlink(path);
	rmdir(dir);
	free(d);
}

int main(void)
{
	size_t n;
	const struct decision_field *f = decision_fields(&n);

	check_types(f, n);
	check_journal(f, n);
	check_refused(f, n);
	check_recover();
	if (!failures)
		printf("ok - the decision's field table (%zu rows) fits its members and the journal\n", n);
	return failures ? 1 : 0;
}
