/* lib/proctable against a plain array doing the same: random inserts,
 * removes and look-ups over few pids (recycled pids, several entries per
 * pid) and many (the table grows), then iteration with removal. No BPF, no
 * root. Prints "ok - NAME" or "not ok - NAME: why"; exits 1 if any failed. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "lib/proctable.h"

#define MODEL_MAX 20000

struct entry {
	uint32_t pid;
	uint64_t start;
	char payload[40];
};

static struct { uint32_t pid; uint64_t start; struct entry *e; } model[MODEL_MAX];
static size_t nmodel;
static int failed;

static void expect(const char *name, bool cond, const char *why)
{
	printf("%s - %s%s%s\n", cond ? "ok" : "not ok", name, cond ? "" : ": ", cond ? "" : why);
	failed |= !cond;
}

static ssize_t model_find(uint32_t pid, uint64_t start)
{
	for (size_t i = 0; i < nmodel; i++)
		if (model[i].pid == pid && model[i].start == start)
			return (ssize_t)i;
	return -1;
}

/* Every model entry found by key and by pid, with its payload intact. */
static const char *agrees(struct proctable *t)
{
	if (proctable_count(t) != nmodel)
		return "count differs";
	for (size_t i = 0; i < nmodel; i++) {
		struct entry *e = proctable_get(t, model[i].pid, model[i].start), *f;
		bool by_pid = false;

		if (e != model[i].e)
			return "get: another entry, or none";
		if (e->pid != model[i].pid || e->start != model[i].start ||
		    proctable_pid(e) != e->pid || proctable_start(e) != e->start)
			return "an entry's contents changed";
		for (f = proctable_find(t, e->pid, NULL); f; f = proctable_find(t, e->pid, f)) {
			if (f->pid != e->pid)
				return "find: an entry of another pid";
			by_pid |= f == e;
		}
		if (!by_pid)
			return "find: an entry of the pid missed";
	}
	return NULL;
}

/* nops random operations on pids in [1, npids], start times in [1, 3]. */
static const char *churn(struct proctable *t, unsigned *seed, int nops, uint32_t npids)
{
	for (int op = 0; op < nops; op++) {
		uint32_t pid = 1 + (uint32_t)rand_r(seed) % npids;
		uint64_t start = 1 + (uint64_t)(rand_r(seed) % 3);
		ssize_t i = model_find(pid, start);
		struct entry *e;

		if (rand_r(seed) % 3) {
			e = proctable_insert(t, pid, start);
			if (i >= 0) {
				if (e || errno != EEXIST)
					return "a second insert of a key was not refused with EEXIST";
				continue;
			}
			if (!e || nmodel == MODEL_MAX)
				return "insert failed";
			for (size_t k = 0; k < sizeof(e->payload); k++)
				if (e->payload[k])
					return "a new entry is not zeroed";
			e->pid = pid;
			e->start = start;
			memset(e->payload, (int)(pid & 0x7f), sizeof(e->payload));
			model[nmodel].pid = pid;
			model[nmodel].start = start;
			model[nmodel++].e = e;
		} else if (i >= 0) {
			proctable_remove(t, model[i].e);
			model[i] = model[--nmodel];
		} else if (proctable_get(t, pid, start)) {
			return "get found a key never inserted, or removed";
		}
	}
	return agrees(t);
}

int main(void)
{
	struct proctable *t = proctable_new(sizeof(struct entry));
	struct proctable_iter it = { 0 };
	unsigned seed = 7;
	const char *why;
	struct entry *e;
	size_t seen = 0, kept = 0;

	if (!t) {
		expect("new", false, "proctable_new failed");
		return 1;
	}
	why = churn(t, &seed, 20000, 50);
	expect("few_pids_recycled_start_times", !why, why ? why : "");
	why = churn(t, &seed, 18000, 100000);
	expect("many_pids_table_grows", !why && nmodel > 1000, why ? why : "too few entries to grow");
	/* remove every other entry while iterating: each one seen once */
	while ((e = proctable_next(t, &it))) {
		ssize_t i = model_find(e->pid, e->start);

		seen++;
		if (i < 0)
			break;
		if (seen % 2) {
			proctable_remove(t, e);
			model[i] = model[--nmodel];
		} else {
			kept++;
		}
	}
	why = agrees(t);
	expect("iterate_and_remove", seen == kept * 2 || seen == kept * 2 + 1, "entries missed or seen twice");
	expect("iterate_and_remove_agrees", !why, why ? why : "");
	expect("get_on_empty_pid", !proctable_get(t, 0, 0) && !proctable_find(t, 0, NULL), "found pid 0");
	proctable_free(t);
	proctable_free(NULL);
	return failed;
}
