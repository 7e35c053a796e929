#include "api/rcache.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>

#define WAYS 8
#define TENANT_GROUPS 64
#define ENTRY_GUESS 640 /* bytes of a typical answer with its key: sizes the number of sets */
#define TABLE_SHARE 4   /* the table of sets takes at most a quarter of the budget */

struct entry {
    uint64_t hash;
    uint64_t foreign;
    uint64_t used; /* the set's tick at the last hit or fill: the oldest is replaced */
    uint32_t kind_epoch[R_COUNT];
    unsigned char kind, variant;
    size_t size; /* bytes accounted for (its memory as the allocator holds it) */
    size_t len;  /* of the body */
    char *mem;   /* tenant \0 id \0 etag \0 body */
    const char *id, *etag, *body;
};

struct set {
    pthread_mutex_t mu;
    unsigned pending; /* pins of records of this set not yet unpinned */
    uint64_t epoch;   /* moves at every unpin */
    uint64_t tick;
    struct entry e[WAYS];
};

struct rcache {
    size_t budget;       /* for the answers: what --cache-mb gives, less the table of sets */
    atomic_size_t bytes; /* the answers' */
    size_t nsets; /* a power of two */
    struct set *sets;
    /* by kind and group of tenants: writes in progress, and writes done */
    atomic_uint kind_pending[R_COUNT][TENANT_GROUPS];
    atomic_uint kind_epoch[R_COUNT][TENANT_GROUPS];
    unsigned shown[R_COUNT]; /* bit k: an answer of this kind shows records of kind k */
};

static uint64_t fnv(uint64_t h, const char *s)
{
    for (; *s; s++)
        h = (h ^ (unsigned char)*s) * 0x100000001b3ull;
    return (h ^ 0xff) * 0x100000001b3ull; /* the terminator, so "ab","c" differs from "a","bc" */
}

static uint64_t key_hash(enum rkind kind, const char *tenant, const char *id)
{
    return fnv(fnv(0xcbf29ce484222325ull ^ (uint64_t)kind, tenant), id);
}

static unsigned tenant_group(const char *tenant)
{
    return (unsigned)(fnv(0xcbf29ce484222325ull, tenant) % TENANT_GROUPS);
}

struct rcache *rcache_new(size_t bytes)
{
    if (!bytes)
        return NULL;
    struct rcache *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    /* Between one and two times the sets the budget fills, so that few sets overflow before
     * the budget does; the table of sets is part of the budget (a quarter at most). */
    size_t want = 2 * bytes / (WAYS * ENTRY_GUESS);
    c->nsets = 1;
    while (c->nsets * 2 <= want && (c->nsets * 2) * sizeof(struct set) <= bytes / TABLE_SHARE)
        c->nsets *= 2;
    /* with the cache's own struct; a block this large is mapped by itself, in whole pages */
    size_t table = ((c->nsets * sizeof(struct set) + sizeof *c + 4095) & ~(size_t)4095) + 4096;
    c->budget = bytes > table ? bytes - table : 0;
    if (!(c->sets = calloc(c->nsets, sizeof *c->sets))) {
        free(c);
        return NULL;
    }
    for (size_t i = 0; i < c->nsets; i++)
        pthread_mutex_init(&c->sets[i].mu, NULL);
    for (int k = 0; k < R_COUNT; k++) {
        const struct resource *r = resource_get((enum rkind)k);
        for (size_t v = 0; v < r->nviews; v++)
            c->shown[k] |= 1u << r->views[v].target;
    }
    return c;
}

static void drop(struct rcache *c, struct entry *e)
{
    if (!e->mem)
        return;
    atomic_fetch_sub(&c->bytes, e->size);
    free(e->mem);
    memset(e, 0, sizeof *e);
}

void rcache_free(struct rcache *c)
{
    if (!c)
        return;
    for (size_t i = 0; i < c->nsets; i++) {
        for (int w = 0; w < WAYS; w++)
            drop(c, &c->sets[i].e[w]);
        pthread_mutex_destroy(&c->sets[i].mu);
    }
    free(c->sets);
    free(c);
}

static struct set *set_of(struct rcache *c, uint64_t hash) { return &c->sets[hash & (c->nsets - 1)]; }

/* Is e an answer of the record (in any shape)? */
static bool of_record(const struct entry *e, uint64_t hash, enum rkind kind, const char *tenant, const char *id)
{
    return e->mem && e->hash == hash && e->kind == kind && strcmp(e->mem, tenant) == 0 && strcmp(e->id, id) == 0;
}

static bool same(const struct entry *e, uint64_t hash, const struct rc_key *k)
{
    return of_record(e, hash, k->kind, k->tenant, k->id) && e->variant == k->variant;
}

/* Are the kinds an answer of kind shows unpinned, and (e non-NULL) as they were when it was read? */
static bool kinds_settled(struct rcache *c, enum rkind kind, unsigned group, const uint32_t *epochs)
{
    for (int k = 0; k < R_COUNT; k++) {
        if (!(c->shown[kind] & (1u << k)))
            continue;
        if (atomic_load(&c->kind_pending[k][group]))
            return false;
        if (epochs && atomic_load(&c->kind_epoch[k][group]) != epochs[k])
            return false;
    }
    return true;
}

bool rcache_get(struct rcache *c, uint64_t foreign, const struct rc_key *k, struct arena *a, char **body, size_t *len,
                const char **etag, struct rc_ticket *t)
{
    memset(t, 0, sizeof *t);
    uint64_t hash = key_hash(k->kind, k->tenant, k->id);
    unsigned group = tenant_group(k->tenant);
    struct set *s = set_of(c, hash);
    pthread_mutex_lock(&s->mu);
    if (!s->pending) {
        for (int w = 0; w < WAYS; w++) {
            struct entry *e = &s->e[w];
            if (!same(e, hash, k))
                continue;
            if (e->foreign != foreign || !kinds_settled(c, k->kind, group, e->kind_epoch)) {
                drop(c, e);
                break;
            }
            char *b = arena_alloc(a, e->len + 1);
            const char *tag = arena_strdup(a, e->etag);
            if (!b || !tag)
                break;
            memcpy(b, e->body, e->len);
            b[e->len] = '\0';
            e->used = ++s->tick;
            pthread_mutex_unlock(&s->mu);
            *body = b;
            *len = e->len;
            *etag = tag;
            return true;
        }
        t->ok = kinds_settled(c, k->kind, group, NULL);
        t->hash = hash;
        t->set_epoch = s->epoch;
        t->foreign = foreign;
        for (int i = 0; i < R_COUNT; i++)
            t->kind_epoch[i] = atomic_load(&c->kind_epoch[i][group]);
    }
    pthread_mutex_unlock(&s->mu);
    return false;
}

/* The memory a block of n bytes takes from the allocator: glibc's chunk, the request and one
 * word in steps of 16 bytes, 32 at least (other allocators are within a few bytes of it). */
static size_t held(size_t n)
{
    n = (n + sizeof(size_t) + 15) & ~(size_t)15;
    return n < 32 ? 32 : n;
}

/* Takes size bytes of the budget, unless that would exceed it (other sets' puts may be
 * taking bytes at the same moment: no two of them together pass the budget). */
static bool reserve(struct rcache *c, size_t size)
{
    size_t now = atomic_load(&c->bytes);
    do {
        if (now + size > c->budget)
            return false;
    } while (!atomic_compare_exchange_weak(&c->bytes, &now, now + size));
    return true;
}

/* The least recently used way of s (an empty one first). */
static struct entry *oldest(struct set *s)
{
    struct entry *o = &s->e[0];
    for (int w = 1; w < WAYS && o->mem; w++)
        if (!s->e[w].mem || s->e[w].used < o->used)
            o = &s->e[w];
    return o;
}

/* The least recently used answer of s, or NULL when it holds none. */
static struct entry *oldest_kept(struct set *s)
{
    struct entry *o = NULL;
    for (int w = 0; w < WAYS; w++)
        if (s->e[w].mem && (!o || s->e[w].used < o->used))
            o = &s->e[w];
    return o;
}

/* An answer's memory: tenant \0 id \0 etag \0 body \0; NULL when too large or no memory. */
struct packed {
    char *mem;
    size_t size, lt, li, le, len;
};

static bool pack(const struct rcache *c, const struct rc_key *k, const char *body, size_t len, const char *etag,
                 struct packed *p)
{
    p->lt = strlen(k->tenant) + 1;
    p->li = strlen(k->id) + 1;
    p->le = strlen(etag) + 1;
    p->len = len;
    size_t want = p->lt + p->li + p->le + len + 1;
    p->size = held(want);
    if (p->size > c->budget / 64)
        return false; /* one answer takes no more than a 64th */
    if (!(p->mem = malloc(want)))
        return false;
    memcpy(p->mem, k->tenant, p->lt);
    memcpy(p->mem + p->lt, k->id, p->li);
    memcpy(p->mem + p->lt + p->li, etag, p->le);
    memcpy(p->mem + p->lt + p->li + p->le, body, len);
    p->mem[p->lt + p->li + p->le + len] = '\0';
    return true;
}

/* Under s->mu: keeps p (its memory then belongs to the cache) or frees it. */
static void keep_locked(struct rcache *c, struct set *s, uint64_t hash, const struct rc_key *k, uint64_t foreign,
                        const uint32_t *kind_epoch, struct packed *p)
{
    struct entry *slot = NULL;
    for (int w = 0; w < WAYS && !slot; w++)
        if (same(&s->e[w], hash, k))
            slot = &s->e[w];
    for (int w = 0; w < WAYS && !slot; w++)
        if (!s->e[w].mem)
            slot = &s->e[w];
    if (!slot)
        slot = oldest(s);
    drop(c, slot);
    /* over the budget (answers larger than most): the set's oldest make room, if they can */
    for (struct entry *e; atomic_load(&c->bytes) + p->size > c->budget && (e = oldest_kept(s));)
        drop(c, e);
    if (!reserve(c, p->size)) {
        free(p->mem);
        return;
    }
    *slot = (struct entry){.hash = hash,
                           .foreign = foreign,
                           .used = ++s->tick,
                           .kind = (unsigned char)k->kind,
                           .variant = (unsigned char)k->variant,
                           .size = p->size,
                           .len = p->len,
                           .mem = p->mem,
                           .id = p->mem + p->lt,
                           .etag = p->mem + p->lt + p->li,
                           .body = p->mem + p->lt + p->li + p->le};
    memcpy(slot->kind_epoch, kind_epoch, sizeof slot->kind_epoch);
}

void rcache_put(struct rcache *c, uint64_t foreign, const struct rc_key *k, const struct rc_ticket *t, const char *body,
                size_t len, const char *etag)
{
    struct packed p;
    if (!t->ok || t->foreign != foreign || !pack(c, k, body, len, etag, &p))
        return;
    struct set *s = set_of(c, t->hash);
    pthread_mutex_lock(&s->mu);
    if (s->pending || s->epoch != t->set_epoch || !kinds_settled(c, k->kind, tenant_group(k->tenant), t->kind_epoch))
        free(p.mem);
    else
        keep_locked(c, s, t->hash, k, t->foreign, t->kind_epoch, &p);
    pthread_mutex_unlock(&s->mu);
}

void rcache_pin(struct rcache *c, enum rkind kind, const char *tenant, const char *id, struct rc_ticket *seen)
{
    if (seen)
        seen->ok = false;
    if (!c)
        return;
    unsigned group = tenant_group(tenant);
    atomic_fetch_add(&c->kind_pending[kind][group], 1);
    if (!id)
        return;
    uint64_t hash = key_hash(kind, tenant, id);
    struct set *s = set_of(c, hash);
    pthread_mutex_lock(&s->mu);
    s->pending++;
    if (seen) {
        seen->ok = s->pending == 1 && kinds_settled(c, kind, group, NULL);
        seen->hash = hash;
        seen->set_epoch = s->epoch;
        for (int i = 0; i < R_COUNT; i++)
            seen->kind_epoch[i] = atomic_load(&c->kind_epoch[i][group]);
    }
    for (int w = 0; w < WAYS; w++) {
        struct entry *e = &s->e[w];
        if (of_record(e, hash, kind, tenant, id))
            drop(c, e);
    }
    pthread_mutex_unlock(&s->mu);
}

void rcache_unpin(struct rcache *c, enum rkind kind, const char *tenant, const char *id)
{
    rcache_unpin_keeping(c, kind, tenant, id, NULL, 0, NULL, 0, NULL);
}

void rcache_unpin_keeping(struct rcache *c, enum rkind kind, const char *tenant, const char *id,
                          const struct rc_ticket *seen, uint64_t foreign, const char *body, size_t len,
                          const char *etag)
{
    if (!c)
        return;
    unsigned group = tenant_group(tenant);
    if (id) {
        struct rc_key k = {.kind = kind, .variant = 0, .tenant = tenant, .id = id};
        struct packed p = {0};
        bool keep = seen && body && seen->ok && seen->foreign == foreign && pack(c, &k, body, len, etag, &p);
        struct set *s = set_of(c, key_hash(kind, tenant, id));
        pthread_mutex_lock(&s->mu);
        /* nothing else pinned or unpinned in the set since this pin, nor in the kinds shown:
         * what this write left is what the database holds */
        if (keep && s->pending == 1 && s->epoch == seen->set_epoch && kinds_settled(c, kind, group, seen->kind_epoch))
            keep_locked(c, s, seen->hash, &k, seen->foreign, seen->kind_epoch, &p);
        else
            free(p.mem);
        s->epoch++;
        s->pending--;
        pthread_mutex_unlock(&s->mu);
    }
    /* the epoch first: a reader that sees the pin gone also sees the write counted */
    atomic_fetch_add(&c->kind_epoch[kind][group], 1);
    atomic_fetch_sub(&c->kind_pending[kind][group], 1);
}
