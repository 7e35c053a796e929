/* Answers of GET by id kept in memory: the rendered body and its ETag, so a GET the cache
 * holds costs no SQL, no rendering and no hashing.
 *
 * Coherence. An answer is only served while it is still what the store would give:
 *  - a write of this process pins the record before its commit (rcache_pin, from the unit,
 *    on the writer's thread) and unpins it once the unit has returned (rcache_unpin): a pin
 *    removes the record's answers and keeps new ones out until the unpin, which also moves
 *    the record's set on, so an answer read before the commit is never stored after it;
 *  - the same pin and unpin apply to every answer that shows records of the written kind in
 *    a view (an Eka User shows its doctors' names): per kind and group of tenants;
 *  - another process's writes are seen by the store (store_foreign_epoch): an answer is kept
 *    with the epoch it was read under, and the cache is only used while the store can tell.
 * The answers of one record live in one set of 8, each set under its own mutex; the memory
 * is bounded by the bytes given to rcache_new. */
#ifndef HIP_RCACHE_H
#define HIP_RCACHE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/field.h"
#include "util/arena.h"

struct rcache;

/* NULL when bytes is 0 (or without memory). */
struct rcache *rcache_new(size_t bytes);
void rcache_free(struct rcache *c);

struct rc_key {
    enum rkind kind;
    unsigned variant; /* the answer's shape (its wrapping member) */
    const char *tenant;
    const char *id; /* the record's Eka id */
};

/* What a miss saw, for rcache_put once the record is read. */
struct rc_ticket {
    bool ok; /* false: the record or a kind it shows is pinned; keep nothing */
    uint64_t hash, set_epoch, foreign;
    uint32_t kind_epoch[R_COUNT];
};

/* A hit copies the body and the ETag into a. A miss fills t. */
bool rcache_get(struct rcache *c, uint64_t foreign, const struct rc_key *k, struct arena *a, char **body, size_t *len,
                const char **etag, struct rc_ticket *t);
/* Keeps the answer read after a miss, unless anything it depends on moved since the ticket
 * (foreign: the store's epoch now). */
void rcache_put(struct rcache *c, uint64_t foreign, const struct rc_key *k, const struct rc_ticket *t, const char *body,
                size_t len, const char *etag);

/* Around a write of a record of kind (id NULL: one that does not exist yet). Every pin is
 * followed by its unpin, once what the write did is committed or rolled back. seen (may be
 * NULL) takes what the pin saw; its foreign is the caller's (the store's epoch then, ok
 * cleared when the store could not tell). */
void rcache_pin(struct rcache *c, enum rkind kind, const char *tenant, const char *id, struct rc_ticket *seen);
void rcache_unpin(struct rcache *c, enum rkind kind, const char *tenant, const char *id);
/* The unpin of a committed write that also keeps body (the record as GET shows it, in the
 * plain shape) as the record's answer, when nothing else was pinned or unpinned in its set
 * or in the kinds it shows since the pin, and the store's epoch (foreign) is still the one
 * seen: then the write's record is what the database holds. */
void rcache_unpin_keeping(struct rcache *c, enum rkind kind, const char *tenant, const char *id,
                          const struct rc_ticket *seen, uint64_t foreign, const char *body, size_t len,
                          const char *etag);

#endif
