/* A table of per-process state keyed by (pid, start time): the one the
 * sensors keep their processes in. Hashed on the pid, so a caller that
 * knows only the pid (a ring-buffer event, a flow's owner) finds the
 * entries of that pid as cheaply as one that knows both. A recycled pid
 * is a different key: the start time tells processes apart, in whatever
 * unit the caller reads it (clock ticks, nanoseconds).
 *
 * The table allocates each entry (entry_size bytes, zeroed) and frees it
 * on remove; an entry's address stays the same while it is in the table. */
#ifndef REFLEX_LIB_PROCTABLE_H
#define REFLEX_LIB_PROCTABLE_H

#include <stddef.h>
#include <stdint.h>

struct proctable;

/* Where an iteration is: zero it ({0}) to start. */
struct proctable_iter {
	size_t bucket;
	void *next;
};

/* An empty table of entries of entry_size bytes; NULL with errno set. */
struct proctable *proctable_new(size_t entry_size);
/* Frees the table and every entry left in it; NULL is fine. */
void proctable_free(struct proctable *t);

/* The entry of (pid, start), or NULL. */
void *proctable_get(const struct proctable *t, uint32_t pid, uint64_t start);
/* The entries of pid, newest first: after NULL gives the first, after an
 * entry of pid the one inserted before it; NULL when there are no more. */
void *proctable_find(const struct proctable *t, uint32_t pid, const void *after);
/* A new zeroed entry for (pid, start); NULL with errno EEXIST when the key
 * is there already, ENOMEM. */
void *proctable_insert(struct proctable *t, uint32_t pid, uint64_t start);
/* Takes entry out of the table and frees it (the caller frees what the
 * entry points to first). */
void proctable_remove(struct proctable *t, void *entry);
/* The key entry was inserted with. */
uint32_t proctable_pid(const void *entry);
uint64_t proctable_start(const void *entry);
size_t proctable_count(const struct proctable *t);

/* Each entry once, in no order; NULL at the end. The entry returned may be
 * removed before the next call; nothing may be inserted, and no other
 * entry removed, until the iteration ends. */
void *proctable_next(const struct proctable *t, struct proctable_iter *it);

#endif
