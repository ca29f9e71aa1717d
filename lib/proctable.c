/* Separate chaining on a power-of-two array of buckets, doubled when the
 * entries outnumber the buckets: entries never move (callers keep
 * pointers to them), and a pid's entries share one chain, which
 * proctable_find walks. */
#include <errno.h>
#include <stdalign.h>
#include <stdbool.h>
#include <stdlib.h>

#include "lib/proctable.h"

#define BUCKETS_MIN 64

/* Before each entry's caller-visible bytes, aligned for any type. */
struct node {
	alignas(max_align_t) struct node *next;
	uint64_t start;
	uint32_t pid;
};

struct proctable {
	struct node **buckets;
	size_t nbuckets;     /* a power of two */
	size_t count;
	size_t entry_size;
};

static struct node *node_of(const void *entry)
{
	return (struct node *)entry - 1;
}

static void *entry_of(struct node *n)
{
	return n ? n + 1 : NULL;
}

/* Fibonacci hashing: consecutive pids land far apart. */
static size_t bucket_of(const struct proctable *t, uint32_t pid)
{
	return (size_t)((pid * 0x9E3779B97F4A7C15ull) >> 32) & (t->nbuckets - 1);
}

struct proctable *proctable_new(size_t entry_size)
{
	struct proctable *t = calloc(1, sizeof(*t));

	if (!t)
		return NULL;
	t->nbuckets = BUCKETS_MIN;
	t->entry_size = entry_size;
	t->buckets = calloc(t->nbuckets, sizeof(*t->buckets));
	if (!t->buckets) {
		free(t);
		errno = ENOMEM;
		return NULL;
	}
	return t;
}

void proctable_free(struct proctable *t)
{
	if (!t)
		return;
	for (size_t b = 0; b < t->nbuckets; b++) {
		struct node *n = t->buckets[b], *next;

		for (; n; n = next) {
			next = n->next;
			free(n);
		}
	}
	free(t->buckets);
	free(t);
}

void *proctable_get(const struct proctable *t, uint32_t pid, uint64_t start)
{
	for (struct node *n = t->buckets[bucket_of(t, pid)]; n; n = n->next)
		if (n->pid == pid && n->start == start)
			return entry_of(n);
	return NULL;
}

void *proctable_find(const struct proctable *t, uint32_t pid, const void *after)
{
	struct node *n = after ? node_of(after)->next : t->buckets[bucket_of(t, pid)];

	while (n && n->pid != pid)
		n = n->next;
	return entry_of(n);
}

/* Twice the buckets, the chains relinked; false when out of memory (the
 * table then stays as it was, only slower). */
static bool grow(struct proctable *t)
{
	size_t old = t->nbuckets;
	struct node **was = t->buckets;

	t->buckets = calloc(2 * old, sizeof(*t->buckets));
	if (!t->buckets) {
		t->buckets = was;
		return false;
	}
	t->nbuckets = 2 * old;
	for (size_t b = 0; b < old; b++) {
		struct node *n = was[b], *next;

		for (; n; n = next) {
			size_t to = bucket_of(t, n->pid);

			next = n->next;
			n->next = t->buckets[to];
			t->buckets[to] = n;
		}
	}
	free(was);
	return true;
}

void *proctable_insert(struct proctable *t, uint32_t pid, uint64_t start)
{
	struct node *n;
	size_t b;

	if (proctable_get(t, pid, start)) {
		errno = EEXIST;
		return NULL;
	}
	n = calloc(1, sizeof(*n) + t->entry_size);
	if (!n)
		return NULL;
	if (t->count >= t->nbuckets)
		(void)grow(t);
	n->pid = pid;
	n->start = start;
	b = bucket_of(t, pid);
	n->next = t->buckets[b];
	t->buckets[b] = n;
	t->count++;
	return entry_of(n);
}

void proctable_remove(struct proctable *t, void *entry)
{
	struct node *n = node_of(entry), **link = &t->buckets[bucket_of(t, n->pid)];

	while (*link && *link != n)
		link = &(*link)->next;
	if (!*link)
		return;
	*link = n->next;
	t->count--;
	free(n);
}

uint32_t proctable_pid(const void *entry)
{
	return node_of(entry)->pid;
}

uint64_t proctable_start(const void *entry)
{
	return node_of(entry)->start;
}

size_t proctable_count(const struct proctable *t)
{
	return t->count;
}

void *proctable_next(const struct proctable *t, struct proctable_iter *it)
{
	struct node *n = it->next;

	while (!n && it->bucket < t->nbuckets)
		n = t->buckets[it->bucket++];
	if (!n)
		return NULL;
	it->next = n->next;
	return entry_of(n);
}
