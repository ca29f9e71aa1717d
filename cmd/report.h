/* `reflexd audit report --html FILE`: the journal as one self-contained
 * HTML page, for an on-call handover or a post-mortem (docs/audit.md). */
#ifndef REFLEX_CMD_REPORT_H
#define REFLEX_CMD_REPORT_H

#include <stddef.h>

#include "record/journal.h"

/* The most decisions one report holds: the newest, when more match. */
#define REFLEX_REPORT_MAX 10000

/* A reading aid for an evidence number, by its key's unit suffix: "1.6m"
 * for key_ms (and key_ms_ago), "1.5 MiB" for key_bytes, "1.0 MiB/s" for
 * key_bps; "" for other keys. */
void report_note(const char *key, double v, char *buf, size_t size);

/* Writes the report of the decisions f selects to path: 0, or -errno
 * (the message in err). */
int report_write(struct journal *j, const struct journal_filter *f, const char *path,
		 char *err, size_t errlen);

#endif
