/* The decision's field table (model/decision_fields.c) against what reads
 * it: each row's type fits its member, no name is used twice in an
 * output, and a decision with every stored field set survives a trip
 * through a real journal (record/journal.c) field for field, so the
 * table and the journal's schema agree. No root, no BPF. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

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

int main(void)
{
	size_t n;
	const struct decision_field *f = decision_fields(&n);

	check_types(f, n);
	check_journal(f, n);
	if (!failures)
		printf("ok - the decision's field table (%zu rows) fits its members and the journal\n", n);
	return failures ? 1 : 0;
}
