/*
 * idmap.c - open-addressing hash map from ids to pointers. The table is a
 * power of two at most half full; deletion shifts later entries of the
 * probe run back, so there are no tombstones.
 */
#include <stdlib.h>

#include "idmap.h"
#include "util.h"

#define IDMAP_MIN 16

struct idmap_slot {
	uint64_t id;		/* 0 = empty */
	void *p;
};

struct idmap {
	struct idmap_slot *slots;
	size_t mask;
	size_t count;
};

/* Fibonacci hashing spreads sequential ids over the table. */
static size_t
idmap_hash(const struct idmap *m, uint64_t id)
{
	return (size_t)((id * 0x9e3779b97f4a7c15ull) >> 17) & m->mask;
}

struct idmap *
idmap_new(void)
{
	struct idmap *m = xcalloc(1, sizeof(*m));

	m->slots = xcalloc(IDMAP_MIN, sizeof(*m->slots));
	m->mask = IDMAP_MIN - 1;
	return m;
}

void
idmap_free(struct idmap *m)
{
	if (m == NULL)
		return;
	free(m->slots);
	free(m);
}

static void
idmap_grow(struct idmap *m)
{
	struct idmap_slot *old = m->slots;
	size_t i, n = m->mask + 1;

	m->slots = xcalloc(n * 2, sizeof(*m->slots));
	m->mask = n * 2 - 1;
	m->count = 0;
	for (i = 0; i < n; i++)
		if (old[i].id != 0)
			idmap_put(m, old[i].id, old[i].p);
	free(old);
}

void
idmap_put(struct idmap *m, uint64_t id, void *p)
{
	size_t i;

	if ((m->count + 1) * 2 > m->mask + 1)
		idmap_grow(m);
	for (i = idmap_hash(m, id); m->slots[i].id != 0; i = (i + 1) & m->mask) {
		if (m->slots[i].id == id) {
			m->slots[i].p = p;
			return;
		}
	}
	m->slots[i].id = id;
	m->slots[i].p = p;
	m->count++;
}

void *
idmap_get(const struct idmap *m, uint64_t id)
{
	size_t i;

	for (i = idmap_hash(m, id); m->slots[i].id != 0; i = (i + 1) & m->mask)
		if (m->slots[i].id == id)
			return m->slots[i].p;
	return NULL;
}

void *
idmap_del(struct idmap *m, uint64_t id)
{
	size_t i, j, home;
	void *p;

	for (i = idmap_hash(m, id); m->slots[i].id != id; i = (i + 1) & m->mask)
		if (m->slots[i].id == 0)
			return NULL;
	p = m->slots[i].p;
	/* Shift back entries whose probe run passes through the hole. */
	for (j = (i + 1) & m->mask; m->slots[j].id != 0; j = (j + 1) & m->mask) {
		home = idmap_hash(m, m->slots[j].id);
		if (((j - home) & m->mask) >= ((j - i) & m->mask)) {
			m->slots[i] = m->slots[j];
			i = j;
		}
	}
	m->slots[i].id = 0;
	m->slots[i].p = NULL;
	m->count--;
	return p;
}

size_t
idmap_count(const struct idmap *m)
{
	return m->count;
}

void
idmap_foreach(const struct idmap *m, void (*fn)(uint64_t id, void *p, void *arg),
    void *arg)
{
	size_t i;

	for (i = 0; i <= m->mask; i++)
		if (m->slots[i].id != 0)
			fn(m->slots[i].id, m->slots[i].p, arg);
}
