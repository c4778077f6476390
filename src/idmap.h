/*
 * idmap.h - a hash map from non-zero 64-bit ids to pointers (open
 * addressing, linear probing, backward-shift deletion). The work module
 * finds jobs and connections by id with it: jobs name their client by id,
 * never by pointer.
 */
#ifndef HB_IDMAP_H
#define HB_IDMAP_H

#include <stddef.h>
#include <stdint.h>

struct idmap;

struct idmap *idmap_new(void);
void idmap_free(struct idmap *m);
/* Insert or replace; id must not be 0. */
void idmap_put(struct idmap *m, uint64_t id, void *p);
void *idmap_get(const struct idmap *m, uint64_t id);
/* Remove and return the pointer, or NULL. */
void *idmap_del(struct idmap *m, uint64_t id);
size_t idmap_count(const struct idmap *m);
/* Call fn for every entry; fn must not change the map. */
void idmap_foreach(const struct idmap *m, void (*fn)(uint64_t id, void *p, void *arg),
    void *arg);

#endif
