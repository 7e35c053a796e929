#include "api/app.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/rcache.h"
#include "util/log.h"

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

struct revocations_unit {
    int64_t since;
    const char **clients, **sessions;
    size_t nclients, nsessions;
};

static enum store_status revocations_fn(struct store_tx *tx, void *ctx)
{
    struct revocations_unit *u = ctx;
    return store_revocations(tx, u->since, &u->clients, &u->nclients, &u->sessions, &u->nsessions);
}

/* What the metrics learn from a unit's end: retry, unavailable and error are the storage
 * failing; not found, conflict and abort are answers, not failures. Commits, and how many
 * units each made durable, the store counts itself (store_options.metrics). */
static void count_unit(struct app *app, const struct store_unit *u)
{
    switch (u->status) {
    case STORE_RETRY: metrics_event(&app->metrics, ME_STORE_ERROR_RETRY); break;
    case STORE_UNAVAILABLE: metrics_event(&app->metrics, ME_STORE_ERROR_UNAVAILABLE); break;
    case STORE_ERROR: metrics_event(&app->metrics, ME_STORE_ERROR_INTERNAL); break;
    default: break;
    }
}

static bool load_revocations(void *ctx, struct arena *a, const char ***clients, size_t *nclients,
                             const char ***sessions, size_t *nsessions)
{
    struct app *app = ctx;
    /* Sessions revoked longer ago than an access token lives can no longer matter. */
    struct revocations_unit r = {.since = (int64_t)time(NULL) - ACCESS_TTL - 60};
    struct store_unit u = {.fn = revocations_fn, .ctx = &r, .arena = a};
    store_read(app->store, &u);
    count_unit(app, &u);
    if (u.status != STORE_OK) {
        log_line("error", "cannot load the revocation lists", store_status_name(u.status), 0);
        return false;
    }
    *clients = r.clients;
    *nclients = r.nclients;
    *sessions = r.sessions;
    *nsessions = r.nsessions;
    return true;
}

static void free_token_cache(void *p) { token_cache_free(p); }

bool app_init(struct app *app, const char *db, unsigned threads, unsigned write_queue, char *err, size_t errlen)
{
    memset(app, 0, sizeof *app);
    app->refresh_ttl = REFRESH_TTL_DEFAULT;
    app->refresh_grace = REFRESH_GRACE_DEFAULT;
    if (!metrics_init(&app->metrics)) {
        snprintf(err, errlen, "out of memory");
        return false;
    }
    if (pthread_key_create(&app->token_cache_key, free_token_cache) != 0) {
        snprintf(err, errlen, "pthread_key_create failed");
        metrics_free(&app->metrics);
        return false;
    }
    revocation_init(&app->revoked);
    /* Opened here so migrations run, and a bad database fails at start, not on the first request. */
    struct store_options opt = {.threads = threads, .write_queue = write_queue, .metrics = &app->metrics};
    app->store = store_open(db, &opt, err, errlen);
    if (!app->store) {
        revocation_free(&app->revoked);
        metrics_free(&app->metrics);
        pthread_key_delete(app->token_cache_key);
        return false;
    }
    return true;
}

/* How the writes went: batch sizes of the group commit, for the operator (and the docs). */
static void log_write_stats(struct store *s)
{
    struct store_write_stats w;
    if (!store_write_stats(s, &w) || !w.batches)
        return;
    static const char *const names[STORE_BATCH_BUCKETS] = {"1",     "2-3",    "4-7",     "8-15", "16-31",
                                                           "32-63", "64-127", "128-255", "256+"};
    json_t *sizes = json_object();
    for (int i = 0; i < STORE_BATCH_BUCKETS; i++)
        if (w.sizes[i])
            json_object_set_new(sizes, names[i], json_integer((json_int_t)w.sizes[i]));
    json_t *line = json_pack("{s:s, s:s, s:I, s:I, s:I, s:I, s:i, s:o}", "level", "info", "msg", "writes", "batches",
                             (json_int_t)w.batches, "units", (json_int_t)w.units, "failed_batches",
                             (json_int_t)w.failed_batches, "queue_full", (json_int_t)w.queue_full, "max_batch",
                             (int)w.max_batch, "batch_sizes", sizes);
    char *txt = line ? json_dumps(line, JSON_COMPACT) : NULL;
    if (txt)
        fprintf(stderr, "%s\n", txt);
    free(txt);
    json_decref(line);
}

void app_free(struct app *app)
{
    if (app->store)
        log_write_stats(app->store);
    revocation_free(&app->revoked);
    rcache_free(app->rcache);
    app->rcache = NULL;
    store_close(app->store);
    app->store = NULL;
    metrics_free(&app->metrics);
    /* worker threads freed theirs as they ended; this is the calling thread's */
    token_cache_free(pthread_getspecific(app->token_cache_key));
    pthread_setspecific(app->token_cache_key, NULL);
    pthread_key_delete(app->token_cache_key);
}

struct token_cache *app_token_cache(struct app *app)
{
    struct token_cache *c = pthread_getspecific(app->token_cache_key);
    if (!c && (c = token_cache_new()) != NULL && pthread_setspecific(app->token_cache_key, c) != 0) {
        token_cache_free(c);
        c = NULL;
    }
    return c;
}

void api_store_error(const struct store_unit *u, struct herr *e)
{
    switch (u->status) {
    case STORE_OK:
        return;
    case STORE_NOT_FOUND:
        if (!e->status)
            herr_set(e, 404, "Not found");
        return;
    case STORE_ABORT:
        if (!e->status)
            herr_set(e, 500, "Internal server error.");
        return;
    default:
        break;
    }
    *e = (struct herr){0}; /* whatever the unit had decided, the storage failed under it */
    switch (u->status) {
    case STORE_CONFLICT:
        herr_set(e, 409,
                 u->conflict && u->arena ? arena_printf(u->arena, "%s already in use", u->conflict)
                                         : "A unique value is already in use.");
        break;
    case STORE_RETRY:
        herr_set(e, 503, "The database is busy; retry shortly.");
        e->retry_after = u->retry_after > 0 ? u->retry_after : 1;
        break;
    case STORE_UNAVAILABLE:
        herr_set(e, 503, "Storage is unavailable; retry later.");
        e->retry_after = u->retry_after > 0 ? u->retry_after : 5;
        break;
    default:
        herr_set(e, 500, "Internal server error.");
        break;
    }
}

bool app_read(struct app *app, struct store_unit *u, struct herr *e)
{
    store_read(app->store, u);
    count_unit(app, u);
    if (u->status == STORE_OK)
        return true;
    api_store_error(u, e);
    return false;
}

bool app_write(struct app *app, struct store_unit *u, struct herr *e)
{
    store_write(app->store, u);
    count_unit(app, u);
    if (u->status == STORE_OK)
        return true;
    api_store_error(u, e);
    return false;
}

bool app_ready(struct app *app, struct herr *e)
{
    const char *why = NULL;
    int retry_after = 0;
    if (store_ready(app->store, &why, &retry_after) == STORE_OK)
        return true;
    herr_set(e, 503, why ? why : "Storage is unavailable; retry later.");
    e->retry_after = retry_after > 0 ? retry_after : 5;
    return false;
}

bool app_token_revoked(struct app *app, const struct principal *p, struct herr *e)
{
    if (!p->client_id[0] && !p->sid[0])
        return false;
    int retry_after = 0;
    switch (revocation_check(&app->revoked, p->client_id, p->sid, mono_ms(), load_revocations, app, &retry_after)) {
    case REV_OK:
        return false;
    case REV_REVOKED:
        herr_set(e, 401, "Token has been revoked");
        return true;
    default:
        herr_set(e, 503, "Storage is unavailable; retry later.");
        e->retry_after = retry_after;
        return true;
    }
}
