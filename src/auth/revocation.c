#include "auth/revocation.h"

#include <sched.h>
#include <stdlib.h>
#include <string.h>

struct rev_snapshot {
    int64_t loaded_ms;
    char **clients, **sessions; /* sorted, in the same allocation */
    size_t nclients, nsessions;
};

void revocation_init(struct revocation_cache *rc)
{
    memset(rc, 0, sizeof *rc);
    atomic_init(&rc->current, NULL);
    pthread_mutex_init(&rc->publish, NULL);
}

void revocation_free(struct revocation_cache *rc)
{
    free(atomic_load(&rc->current));
    atomic_store(&rc->current, NULL);
    pthread_mutex_destroy(&rc->publish);
}

/* ---- readers ---- */

static struct rev_snapshot *enter(struct revocation_cache *rc, unsigned *ep)
{
    for (;;) {
        unsigned e = atomic_load(&rc->epoch);
        atomic_fetch_add(&rc->readers[e & 1], 1);
        if (atomic_load(&rc->epoch) == e) {
            *ep = e;
            return atomic_load(&rc->current);
        }
        atomic_fetch_sub(&rc->readers[e & 1], 1); /* a publisher flipped meanwhile: count again */
    }
}

static void leave(struct revocation_cache *rc, unsigned ep) { atomic_fetch_sub(&rc->readers[ep & 1], 1); }

static int cmp_str(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

static bool listed(char **items, size_t n, const char *key)
{
    return key && *key && bsearch(&key, items, n, sizeof *items, cmp_str) != NULL;
}

static bool revoked_in(const struct rev_snapshot *s, const char *client_id, const char *sid)
{
    return listed(s->clients, s->nclients, client_id) || listed(s->sessions, s->nsessions, sid);
}

/* ---- loaders ---- */

/* One allocation: the header, both pointer arrays, then the strings. */
static struct rev_snapshot *build(int64_t now_ms, const char **clients, size_t nc, const char **sessions, size_t ns)
{
    size_t bytes = sizeof(struct rev_snapshot) + (nc + ns) * sizeof(char *);
    for (size_t i = 0; i < nc; i++)
        bytes += strlen(clients[i]) + 1;
    for (size_t i = 0; i < ns; i++)
        bytes += strlen(sessions[i]) + 1;
    struct rev_snapshot *s = malloc(bytes);
    if (!s)
        return NULL;
    s->loaded_ms = now_ms;
    s->clients = (char **)(s + 1);
    s->sessions = s->clients + nc;
    s->nclients = nc;
    s->nsessions = ns;
    char *p = (char *)(s->sessions + ns);
    for (size_t i = 0; i < nc + ns; i++) {
        const char *src = i < nc ? clients[i] : sessions[i - nc];
        size_t len = strlen(src) + 1;
        memcpy(p, src, len);
        s->clients[i] = p; /* sessions follow clients in the same array */
        p += len;
    }
    qsort(s->clients, nc, sizeof *s->clients, cmp_str);
    qsort(s->sessions, ns, sizeof *s->sessions, cmp_str);
    return s;
}

/* Swaps the snapshot in, then frees the old one once no reader can be looking at it. */
static void publish(struct revocation_cache *rc, struct rev_snapshot *snap)
{
    pthread_mutex_lock(&rc->publish);
    struct rev_snapshot *old = atomic_load(&rc->current);
    if (old && old->loaded_ms >= snap->loaded_ms) { /* a newer one won the race */
        pthread_mutex_unlock(&rc->publish);
        free(snap);
        return;
    }
    atomic_store(&rc->current, snap);
    unsigned e = atomic_load(&rc->epoch);
    atomic_store(&rc->epoch, e + 1);
    /* Readers who entered before the flip may hold old; later ones see snap. */
    while (atomic_load(&rc->readers[e & 1]) != 0)
        sched_yield();
    pthread_mutex_unlock(&rc->publish);
    free(old);
}

static bool reload(struct revocation_cache *rc, int64_t now_ms, revocation_load_fn load, void *ctx)
{
    struct arena a;
    arena_init(&a);
    const char **clients = NULL, **sessions = NULL;
    size_t nc = 0, ns = 0;
    atomic_fetch_add(&rc->loads, 1);
    struct rev_snapshot *snap = load(ctx, &a, &clients, &nc, &sessions, &ns) ? build(now_ms, clients, nc, sessions, ns)
                                                                             : NULL;
    arena_release(&a);
    if (!snap) {
        int f = atomic_fetch_add(&rc->failures, 1);
        int64_t backoff = REVOCATION_BACKOFF_MIN_MS;
        for (int i = 0; i < f && backoff < REVOCATION_BACKOFF_MAX_MS; i++)
            backoff *= 2;
        if (backoff > REVOCATION_BACKOFF_MAX_MS)
            backoff = REVOCATION_BACKOFF_MAX_MS;
        atomic_store(&rc->retry_at_ms, now_ms + backoff);
        return false;
    }
    atomic_store(&rc->failures, 0);
    atomic_store(&rc->retry_at_ms, 0);
    publish(rc, snap);
    return true;
}

enum rev_verdict revocation_check(struct revocation_cache *rc, const char *client_id, const char *sid, int64_t now_ms,
                                  revocation_load_fn load, void *ctx, int *retry_after)
{
    unsigned ep;
    struct rev_snapshot *snap = enter(rc, &ep);
    if (snap && now_ms - snap->loaded_ms < REVOCATION_REFRESH_MS) {
        bool revoked = revoked_in(snap, client_id, sid);
        bool due = now_ms - snap->loaded_ms >= REVOCATION_PRELOAD_MS;
        leave(rc, ep);
        if (due && now_ms >= atomic_load(&rc->retry_at_ms) && !atomic_exchange(&rc->loading, true)) {
            reload(rc, now_ms, load, ctx); /* a failure backs off; the snapshot serves until it expires */
            atomic_store(&rc->loading, false);
        }
        return revoked ? REV_REVOKED : REV_OK;
    }
    leave(rc, ep);
    /* Expired or never loaded: fail closed rather than answer from stale data. */
    int64_t retry_at = atomic_load(&rc->retry_at_ms);
    if (now_ms < retry_at || !reload(rc, now_ms, load, ctx)) {
        retry_at = atomic_load(&rc->retry_at_ms);
        int64_t wait = retry_at > now_ms ? retry_at - now_ms : REVOCATION_BACKOFF_MIN_MS;
        *retry_after = (int)((wait + 999) / 1000);
        return REV_UNAVAILABLE;
    }
    snap = enter(rc, &ep);
    bool revoked = revoked_in(snap, client_id, sid);
    leave(rc, ep);
    return revoked ? REV_REVOKED : REV_OK;
}
