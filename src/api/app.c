#include "api/app.h"

#include "util/log.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void close_conn(void *p)
{
    struct store_conn *c = p;
    c->ops->close(c);
}

bool app_init(struct app *app, const char *db_path, struct herr *e)
{
    memset(app, 0, sizeof *app);
    snprintf(app->db_path, sizeof app->db_path, "%s", db_path);
    app->refresh_ttl = REFRESH_TTL_DEFAULT;
    app->refresh_grace = REFRESH_GRACE_DEFAULT;
    throttle_init(&app->throttle);
    pthread_mutex_init(&app->revoked.mu, NULL);
    pthread_mutex_init(&app->writer, NULL);
    if (pthread_key_create(&app->conn_key, close_conn) != 0) {
        herr_set(e, 500, "pthread_key_create failed");
        return false;
    }
    /* Open once here so migrations run, and a bad path fails at start, not on the first request. */
    struct store_conn *c = app_store(app, e);
    return c != NULL;
}

static void free_list(char **items, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(items[i]);
    free(items);
}

void app_free(struct app *app)
{
    free_list(app->revoked.clients, app->revoked.nclients);
    free_list(app->revoked.sessions, app->revoked.nsessions);
    struct store_conn *c = pthread_getspecific(app->conn_key);
    if (c) {
        pthread_setspecific(app->conn_key, NULL);
        close_conn(c);
    }
    pthread_key_delete(app->conn_key);
}

struct store_conn *app_store(struct app *app, struct herr *e)
{
    struct store_conn *c = pthread_getspecific(app->conn_key);
    if (c)
        return c;
    struct herr why = {0};
    c = store_sqlite_open(app->db_path, &app->writer, &why);
    if (!c) {
        /* The reason stays in the log; the client learns only that storage is unavailable. */
        log_line("error", "cannot open the database", why.message, why.status);
        herr_set(e, 503, "Storage is unavailable; retry later.");
        e->retry_after = 5;
        return NULL;
    }
    pthread_setspecific(app->conn_key, c);
    return c;
}

static int64_t mono_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static char **copy_list(const char **src, size_t n)
{
    char **out = calloc(n ? n : 1, sizeof *out);
    for (size_t i = 0; i < n; i++)
        out[i] = strdup(src[i]);
    return out;
}

static int cmp_str(const void *a, const void *b) { return strcmp(a, *(char *const *)b); }

static bool listed(char **items, size_t n, const char *key)
{
    return *key && bsearch(key, items, n, sizeof *items, cmp_str) != NULL;
}

bool app_token_revoked(struct app *app, const struct principal *p, struct herr *e)
{
    if (!p->client_id[0] && !p->sid[0])
        return false;
    struct revocations *r = &app->revoked;
    pthread_mutex_lock(&r->mu);
    int64_t now = mono_ms();
    if (!r->loaded_ms || now - r->loaded_ms >= REVOCATION_REFRESH_MS) {
        struct arena a;
        arena_init(&a);
        const char **clients, **sessions;
        size_t nc, ns;
        struct store_conn *c = app_store(app, e);
        /* Sessions revoked longer ago than an access token lives can no longer matter. */
        int64_t since = (int64_t)time(NULL) - ACCESS_TTL - 60;
        if (!c || !c->auth->revocations(c, since, &a, &clients, &nc, &sessions, &ns, e)) {
            arena_release(&a);
            pthread_mutex_unlock(&r->mu);
            return true;
        }
        free_list(r->clients, r->nclients);
        free_list(r->sessions, r->nsessions);
        r->clients = copy_list(clients, nc);
        r->sessions = copy_list(sessions, ns);
        r->nclients = nc;
        r->nsessions = ns;
        r->loaded_ms = now;
        arena_release(&a);
    }
    bool revoked = listed(r->clients, r->nclients, p->client_id) || listed(r->sessions, r->nsessions, p->sid);
    pthread_mutex_unlock(&r->mu);
    if (revoked)
        herr_set(e, 401, "Token has been revoked");
    return revoked;
}
