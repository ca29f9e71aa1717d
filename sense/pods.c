#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "lib/util.h"
#include "sense/pods.h"

/* A node runs at most a few hundred pods: a linear scan is enough. */
struct pods {
	struct pod *v;
	size_t n;
};

struct pods *pods_new(void)
{
	return calloc(1, sizeof(struct pods));
}

void pods_free(struct pods *c)
{
	if (!c)
		return;
	free(c->v);
	free(c);
}

void pods_replace(struct pods *c, struct pod *v, size_t n)
{
	free(c->v);
	c->v = v;
	c->n = n;
}

static struct pod *slot(const struct pods *c, const char *uid)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].uid, uid))
			return &c->v[i];
	return NULL;
}

int pods_put(struct pods *c, const struct pod *p)
{
	struct pod *s = slot(c, p->uid), *grown;

	if (s) {
		*s = *p;
		return 0;
	}
	grown = realloc(c->v, (c->n + 1) * sizeof(*grown));
	if (!grown)
		return -ENOMEM;
	c->v = grown;
	c->v[c->n++] = *p;
	return 0;
}

void pods_delete(struct pods *c, const char *uid)
{
	struct pod *s = slot(c, uid);

	if (s)
		*s = c->v[--c->n];
}

size_t pods_count(const struct pods *c)
{
	return c->n;
}

const struct pod *pods_find(const struct pods *c, const char *uid)
{
	for (size_t i = 0; i < c->n; i++)
		if (!strcmp(c->v[i].uid, uid) || !strcmp(c->v[i].mirror, uid))
			return &c->v[i];
	return NULL;
}

bool pods_resolve(const struct pods *c, struct target *t)
{
	const struct pod *p;

	if (!t->pod_uid[0])
		return false;
	p = pods_find(c, t->pod_uid);
	if (!p)
		return false;
	str_copy(t->namespace, sizeof(t->namespace), p->namespace);
	str_copy(t->pod, sizeof(t->pod), p->name);
	str_copy(t->labels, sizeof(t->labels), p->labels);
	for (size_t i = 0; i < p->ncontainers; i++)
		if (!strcmp(p->containers[i].id, t->container_id))
			str_copy(t->container, sizeof(t->container), p->containers[i].name);
	return true;
}
