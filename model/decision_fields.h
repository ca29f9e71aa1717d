/* The fields of a decision record, in one table that the journal's
 * columns, the audit's JSON and the OTLP attributes all read, so the
 * three cannot disagree. A row is one name in one or more of those
 * outputs for one value; a value shown in two forms (the time as text and
 * as nanoseconds) is two rows. The names are a contract: existing
 * journals are read by column name, and scripts and collectors read the
 * JSON keys and attribute names (docs/journal.md, docs/otlp.md). */
#ifndef REFLEX_MODEL_DECISION_FIELDS_H
#define REFLEX_MODEL_DECISION_FIELDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/decision.h"

enum decision_field_type {
	DECISION_FIELD_STR,      /* a char array member */
	DECISION_FIELD_JSON,     /* a char array of JSON reflexd wrote; `empty` when unset */
	DECISION_FIELD_INT,      /* an int (or pid_t) member */
	DECISION_FIELD_I64,      /* a 64-bit member, signed or not */
	DECISION_FIELD_MODE,     /* enum decision_mode, by its name */
	DECISION_FIELD_KIND,     /* enum condition_kind, by its name */
	DECISION_FIELD_OUTCOME,  /* enum decision_outcome, by its name */
	/* derived, shown but never stored */
	DECISION_FIELD_TIME,     /* the int64 ns since the epoch, as text */
	DECISION_FIELD_MS,       /* a uint64 of nanoseconds, as whole milliseconds */
	DECISION_FIELD_EXE_NAME, /* the target's executable's base name, else its comm */
	DECISION_FIELD_CGROUP,   /* the target's cgroup path as a /proc/PID/cgroup line */
};

/* What a field means only with (OTLP leaves it out otherwise: an absent
 * attribute rather than a zero; the journal and audit keep every field). */
#define DECISION_FIELD_IF_PID 1u       /* the target is a process */
#define DECISION_FIELD_IF_SET 2u       /* the member is set: not 0, not empty */
#define DECISION_FIELD_IF_CONDITION 4u /* the decision is about a condition */
/* OTLP sends the JSON as a structured value (a kvlist), not its text */
#define DECISION_FIELD_MAP 8u
/* the audit's JSON says null for 0 (a time not yet known) */
#define DECISION_FIELD_NULL_UNSET 16u
/* never negative (a pid, a count, a uint64_t member): read back, a
 * negative value is refused, not shown */
#define DECISION_FIELD_UNSIGNED 32u

struct decision_field {
	const char *column;  /* the journal's column, NULL: not stored */
	const char *json;    /* the audit's JSON key, NULL: not shown */
	const char *otlp;    /* the OTLP attribute, NULL: not exported */
	enum decision_field_type type;
	unsigned flags;      /* DECISION_FIELD_IF_*, _MAP, _NULL_UNSET, _UNSIGNED */
	size_t offset;       /* of the member in struct decision */
	size_t size;         /* of a char array member */
	const char *empty;   /* JSON: the value of an empty member */
};

/* The table, in the audit's JSON order; n into *n. */
const struct decision_field *decision_fields(size_t *n);

/* A text field's value (STR, JSON with its default, the names, TIME,
 * EXE_NAME, CGROUP): the member itself, or buf when it must be made. */
const char *decision_field_text(const struct decision_field *f, const struct decision *d,
				char *buf, size_t size);
/* An integer field's value (INT, I64, MS). */
int64_t decision_field_int(const struct decision_field *f, const struct decision *d);
bool decision_field_is_int(const struct decision_field *f);
/* Whether d has what f means something with (the DECISION_FIELD_IF_* flags). */
bool decision_field_present(const struct decision_field *f, const struct decision *d);

/* Stores a stored field (one with a column) into d: text (len bytes,
 * NUL-terminated) for STR, JSON and the names ("-" for the kind: no
 * condition), v for the integers. A value reflexd cannot have written
 * (a forged or corrupted journal) is refused rather than stored changed:
 * 0, -ERANGE when v does not fit the member (or is negative for an
 * UNSIGNED field), -E2BIG when text does not fit, -EILSEQ when text holds
 * a NUL byte, -EINVAL when it names no mode, kind or outcome. */
int decision_field_set(const struct decision_field *f, struct decision *d, const char *text, size_t len,
		       int64_t v);

#endif
