/* The backend-independent part of the store: URLs, units of work (attempts, sticky
 * failures, the nesting guard, the clock) and the operations' entry points. */
#include <ctype.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "store/backend.h"
#include "store/migrations.h"
#include "util/log.h"
#include "util/metrics.h"
#include "util/utc.h"

const char *store_status_name(enum store_status st)
{
    switch (st) {
    case STORE_OK: return "ok";
    case STORE_NOT_FOUND: return "not found";
    case STORE_CONFLICT: return "conflict";
    case STORE_ABORT: return "abort";
    case STORE_RETRY: return "retry";
    case STORE_UNAVAILABLE: return "unavailable";
    case STORE_ERROR: return "error";
    }
    return "?";
}

static bool starts(const char *s, const char *prefix) { return strncmp(s, prefix, strlen(prefix)) == 0; }

bool store_url_parse(const char *url, struct store_url *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!url || !*url) {
        snprintf(err, errlen, "the database is empty: give a file path, sqlite:PATH or postgresql://...");
        return false;
    }
    if (starts(url, "postgresql://") || starts(url, "postgres://")) {
        out->kind = STORE_POSTGRES;
        return true;
    }
    if (starts(url, "postgresql:") || starts(url, "postgres:")) {
        snprintf(err, errlen, "a PostgreSQL database is a URL: postgresql://[user@]host[:port]/dbname");
        return false;
    }
    const char *path = url;
    if (starts(url, "sqlite:")) {
        path = url + 7;
        if (starts(path, "//")) /* sqlite:///abs/path.db is /abs/path.db */
            path += 2;
        if (!*path) {
            snprintf(err, errlen, "sqlite: needs a file path (sqlite:/var/lib/hipusers/hipusers.db)");
            return false;
        }
    } else {
        /* scheme ":" as RFC 3986 spells it; anything else is a file path */
        size_t n = 0;
        if (isalpha((unsigned char)url[0]))
            while (isalnum((unsigned char)url[n]) || url[n] == '+' || url[n] == '-' || url[n] == '.')
                n++;
        if (n && url[n] == ':') {
            snprintf(err, errlen,
                     "unknown database URL scheme '%.*s:': give a file path, sqlite:PATH or postgresql://... "
                     "(write ./%s for a file whose name has a colon)",
                     (int)(n > 32 ? 32 : n), url, n > 32 ? "NAME" : url);
            return false;
        }
    }
    if (strlen(path) >= sizeof out->path) {
        snprintf(err, errlen, "the database path is too long");
        return false;
    }
    out->kind = STORE_SQLITE;
    snprintf(out->path, sizeof out->path, "%s", path);
    return true;
}

static void put(char *out, size_t cap, size_t *n, const char *s, size_t len)
{
    while (len-- && *n + 1 < cap)
        out[(*n)++] = *s++;
    out[*n] = '\0';
}

void store_url_redact(const char *url, char *out, size_t cap)
{
    size_t n = 0;
    if (!cap)
        return;
    out[0] = '\0';
    if (!starts(url, "postgresql://") && !starts(url, "postgres://")) {
        put(out, cap, &n, url, strlen(url));
        return;
    }
    const char *auth = strstr(url, "://") + 3, *auth_end = auth + strcspn(auth, "/?#"), *at = NULL, *p = url;
    for (const char *c = auth; c < auth_end; c++)
        if (*c == '@')
            at = c;
    const char *colon = at ? memchr(auth, ':', (size_t)(at - auth)) : NULL;
    if (colon) {
        put(out, cap, &n, url, (size_t)(colon + 1 - url));
        put(out, cap, &n, "***", 3);
        p = at;
    }
    const char *q = strchr(p, '?');
    if (!q) {
        put(out, cap, &n, p, strlen(p));
        return;
    }
    put(out, cap, &n, p, (size_t)(q + 1 - p));
    for (p = q + 1; *p;) {
        size_t len = strcspn(p, "&#");
        if (starts(p, "password="))
            put(out, cap, &n, "password=***", 12);
        else
            put(out, cap, &n, p, len);
        p += len;
        if (*p == '&') {
            put(out, cap, &n, "&", 1);
            p++;
        } else if (*p == '#') {
            put(out, cap, &n, p, strlen(p));
            break;
        }
    }
}

static int64_t system_clock_ms(void *ctx)
{
    (void)ctx;
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

void store_format_time(int64_t ms, char out[32]) { utc_format_ms(ms, out); }

bool store_base_init(struct store *s, const struct store_backend *be, enum store_kind kind,
                     const struct store_options *opt)
{
    s->be = be;
    s->kind = kind;
    s->clock_ms = opt && opt->clock_ms ? opt->clock_ms : system_clock_ms;
    s->clock_ctx = opt ? opt->clock_ctx : NULL;
    s->metrics = opt ? opt->metrics : NULL;
    return pthread_key_create(&s->in_unit, NULL) == 0;
}

void store_base_free(struct store *s) { pthread_key_delete(s->in_unit); }

struct store *store_open(const char *url, const struct store_options *opt, char *err, size_t errlen)
{
    struct store_url u;
    if (!store_url_parse(url, &u, err, errlen))
        return NULL;
    if (u.kind == STORE_POSTGRES)
        return store_pg_open(url, opt, err, errlen);
    return store_sqlite_open(u.path, opt, err, errlen);
}

void store_close(struct store *s)
{
    if (s)
        s->be->close(s);
}

enum store_kind store_kind(const struct store *s) { return s->kind; }

static _Atomic(store_sql_observer) sql_observer;
static void *_Atomic sql_observer_ctx;

void store_set_sql_observer(store_sql_observer fn, void *ctx)
{
    atomic_store(&sql_observer_ctx, ctx);
    atomic_store(&sql_observer, fn);
}

void store_observe_sql(const char *sql)
{
    store_sql_observer fn = atomic_load_explicit(&sql_observer, memory_order_acquire);
    if (fn)
        fn(atomic_load(&sql_observer_ctx), sql);
}

int store_schema_version(void) { return migrations_latest(); }

int64_t store_now(const struct store_tx *tx) { return tx->now_ms; }

int64_t store_clock_now(const struct store_tx *tx) { return tx->s->clock_ms(tx->s->clock_ctx); }

bool store_foreign_epoch(struct store *s, uint64_t *epoch)
{
    return s->be->foreign_epoch && s->be->foreign_epoch(s, epoch);
}
const char *store_now_text(const struct store_tx *tx) { return tx->now_text; }

bool store_write_stats(struct store *s, struct store_write_stats *out)
{
    memset(out, 0, sizeof *out);
    if (!s->be->write_stats)
        return false;
    s->be->write_stats(s, out);
    return true;
}

enum store_status store_fail(struct store_tx *tx, enum store_status st, const char *conflict, int retry_after)
{
    if (st == STORE_OK || st == STORE_NOT_FOUND || tx->failed)
        return st;
    tx->failed = st;
    tx->conflict = conflict;
    tx->retry_after = retry_after;
    return st;
}

enum store_status store_run_fn(struct store_tx *tx)
{
    /* Marked on the thread that runs the function (a writer thread, say), only while it
     * runs: a caller waiting for its unit may share its thread with other callers. */
    pthread_setspecific(tx->s->in_unit, tx->unit);
    enum store_status st = tx->unit->fn(tx, tx->unit->ctx);
    pthread_setspecific(tx->s->in_unit, NULL);
    return tx->failed ? tx->failed : st;
}

static enum store_status run_unit(struct store *s, struct store_unit *u, bool write)
{
    u->conflict = NULL;
    u->retry_after = 0;
    u->attempts = 0;
    if (pthread_getspecific(s->in_unit)) {
        /* SQLite's writer would wait on itself; a pooled backend could run dry. */
        log_line("error", "a unit of work started another unit of work", NULL, 0);
        return u->status = STORE_ERROR;
    }
    enum store_status st = STORE_ERROR;
    for (int attempt = 0; attempt < s->be->max_attempts; attempt++) {
        struct store_tx tx = {.s = s, .unit = u, .a = u->arena, .write = write, .now_ms = s->clock_ms(s->clock_ctx)};
        store_format_time(tx.now_ms, tx.now_text);
        u->attempts++;
        st = s->be->run(s, &tx);
        u->conflict = st == STORE_CONFLICT ? tx.conflict : NULL;
        u->retry_after = tx.retry_after;
        if (!tx.rerun)
            break;
        if (attempt + 1 < s->be->max_attempts) {
            /* a short pause before running it again: 1, 2, 4.. ms (at most 64) and as much jitter */
            struct timespec now;
            clock_gettime(CLOCK_MONOTONIC, &now);
            long base = 1000000L << (attempt < 6 ? attempt : 6);
            struct timespec pause = {0, base + now.tv_nsec % base};
            nanosleep(&pause, NULL);
        }
    }
    if (st == STORE_RETRY && !u->retry_after)
        u->retry_after = 1;
    if (write && st == STORE_OK && !s->be->counts_commits)
        metrics_store_commit(s->metrics, 1);
    return u->status = st;
}

enum store_status store_read(struct store *s, struct store_unit *u) { return run_unit(s, u, false); }
enum store_status store_write(struct store *s, struct store_unit *u) { return run_unit(s, u, true); }

static enum store_status answers_fn(struct store_tx *tx, void *ctx)
{
    (void)tx;
    (void)ctx;
    return STORE_OK;
}

enum store_status store_ready(struct store *s, const char **why, int *retry_after)
{
    *why = NULL;
    *retry_after = 0;
    if (s->be->ready)
        return s->be->ready(s, why, retry_after);
    struct store_unit u = {.fn = answers_fn};
    if (store_read(s, &u) != STORE_OK) {
        *why = "The database does not answer; retry later.";
        *retry_after = u.retry_after;
    }
    return u.status;
}

/* Every operation: nothing more once the transaction is doomed; a failure dooms it. */
#define OP(name, ...)                                                                                              \
    do {                                                                                                           \
        if (tx->failed)                                                                                            \
            return tx->failed;                                                                                     \
        enum store_status st_ = tx->s->be->ops->name(tx, __VA_ARGS__);                                             \
        return store_fail(tx, st_, NULL, 0);                                                                       \
    } while (0)

/* A write in a read unit is a bug in the unit: refused, and the unit fails. */
#define WOP(name, ...)                                                                                             \
    do {                                                                                                           \
        if (!tx->write && !tx->failed) {                                                                           \
            log_line("error", "a read unit tried to write", #name, 0);                                             \
            return store_fail(tx, STORE_ERROR, NULL, 0);                                                           \
        }                                                                                                          \
        OP(name, __VA_ARGS__);                                                                                     \
    } while (0)

enum store_status store_insert(struct store_tx *tx, const struct resource *r, const char *tenant,
                               const struct fval *vals, char *id_out, size_t id_cap)
{
    WOP(insert, r, tenant, vals, id_out, id_cap);
}

enum store_status store_update(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id,
                               const struct fval *vals)
{
    WOP(update, r, tenant, id, vals);
}

enum store_status store_find(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                             struct record *out)
{
    OP(find, r, tenant, key, out);
}

enum store_status store_soft_delete(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *id)
{
    WOP(soft_delete, r, tenant, id);
}

enum store_status store_resolve(struct store_tx *tx, const struct resource *target, const char *tenant,
                                bool by_partner, const char *const *keys, size_t n, const char **ids_out)
{
    OP(resolve, target, tenant, by_partner, keys, n, ids_out);
}

enum store_status store_link(struct store_tx *tx, enum rel rel, int side, const char *tenant, const char *id,
                             const char *const *others, size_t n, bool replace)
{
    WOP(link, rel, side, tenant, id, others, n, replace);
}

enum store_status store_list(struct store_tx *tx, const struct resource *r, const char *tenant, int64_t after,
                             int limit, struct record *out, int *count, int64_t *next)
{
    OP(list, r, tenant, after, limit, out, count, next);
}

enum store_status store_find_any(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                                 struct record *out, bool *deleted)
{
    OP(find_any, r, tenant, key, out, deleted);
}

enum store_status store_restore(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id)
{
    WOP(restore, r, tenant, id);
}

const char *change_action_name(enum change_action a)
{
    switch (a) {
    case CHANGE_CREATE: return "create";
    case CHANGE_UPDATE: return "update";
    case CHANGE_DELETE: return "delete";
    case CHANGE_RESTORE: return "restore";
    }
    return "?";
}

enum store_status store_log_append(struct store_tx *tx, const char *tenant, struct change_entry *e)
{
    WOP(log_append, tenant, e);
}

enum store_status store_feed_seal(struct store_tx *tx, const char *tenant)
{
    if (!tx->s->be->ops->feed_seal)
        return tx->failed ? tx->failed : STORE_OK;
    WOP(feed_seal, tenant);
}

bool store_feed_needs_seal(const struct store *s) { return s->be->ops->feed_seal != NULL; }

enum store_status store_history(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id,
                                struct change_entry **out, size_t *n)
{
    OP(history, r, tenant, id, out, n);
}

enum store_status store_changes(struct store_tx *tx, const char *tenant, int64_t after, int limit,
                                struct change_entry *out, int *count)
{
    OP(changes, tenant, after, limit, out, count);
}

/* Operations added after a backend was written may be missing from it (NULL): the unit
 * then fails as a bug would, with the operation named in the log. */
#define NEW_OP(write_, name, ...)                                                                                  \
    do {                                                                                                           \
        if (!tx->failed && !tx->s->be->ops->name) {                                                                \
            log_line("error", "the storage backend does not implement", #name, 0);                                 \
            return store_fail(tx, STORE_ERROR, NULL, 0);                                                           \
        }                                                                                                          \
        if (write_)                                                                                                \
            WOP(name, __VA_ARGS__);                                                                                \
        else                                                                                                       \
            OP(name, __VA_ARGS__);                                                                                 \
    } while (0)

enum store_status store_list_where(struct store_tx *tx, const struct resource *r, const char *tenant,
                                   const struct list_filter *f, int64_t after, int limit, struct record *out,
                                   int *count, int64_t *next, bool *more)
{
    NEW_OP(false, list_where, r, tenant, f, after, limit, out, count, next, more);
}

enum store_status store_idem_get(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out)
{
    NEW_OP(false, idem_get, tenant, key, out);
}

enum store_status store_idem_claim(struct store_tx *tx, const char *tenant, const char *key,
                                   const struct idem_record *replaces, const struct idem_record *rec)
{
    NEW_OP(true, idem_claim, tenant, key, replaces, rec);
}

enum store_status store_idem_finish(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                    int status, const char *body)
{
    NEW_OP(true, idem_finish, tenant, key, holder, status, body);
}

enum store_status store_idem_release(struct store_tx *tx, const char *tenant, const char *key, const char *holder)
{
    NEW_OP(true, idem_release, tenant, key, holder);
}

enum store_status store_idem_purge(struct store_tx *tx, const char *tenant, int64_t before_ms, int max,
                                   int *purged)
{
    NEW_OP(true, idem_purge, tenant, before_ms, max, purged);
}

/* ---- the login throttle: its rules here, once; the backends keep the rows ---- */

#define THROTTLE_COUNTERS_MAX 4
#define THROTTLE_PURGE 8 /* counters over deleted per reservation: more than one creates */

static bool throttle_ops(struct store_tx *tx, const char *op)
{
    if (tx->failed)
        return false;
    const struct store_ops *o = tx->s->be->ops;
    if (!o->throttle_lock || !o->throttle_put || !o->throttle_purge) {
        log_line("error", "the storage backend does not implement", op, 0);
        store_fail(tx, STORE_ERROR, NULL, 0);
        return false;
    }
    if (!tx->write) {
        log_line("error", "a read unit tried to write", op, 0);
        store_fail(tx, STORE_ERROR, NULL, 0);
        return false;
    }
    return true;
}

/* The counter as of now: a window that is over starts afresh at now, its failures forgotten.
 * Its attempts still in flight count on through the next window (prev_pending); those left
 * from the window before are older than a whole window: their server stopped. */
static bool throttle_roll(struct throttle_row *r, int64_t now, int64_t window)
{
    if (now - r->window_start_ms < window)
        return false;
    r->prev_pending = now - r->window_start_ms < 2 * window ? r->pending : 0;
    r->pending = 0;
    r->failures = 0;
    r->window_start_ms = now;
    return true;
}

enum store_status store_throttle_begin(struct store_tx *tx, const struct throttle_counter *c, size_t n, int window_s,
                                       int *wait)
{
    *wait = 0;
    if (!throttle_ops(tx, "throttle_begin"))
        return tx->failed;
    if (n > THROTTLE_COUNTERS_MAX || window_s < 1) {
        log_line("error", "store_throttle_begin: bad arguments", NULL, (long)n);
        return store_fail(tx, STORE_ERROR, NULL, 0);
    }
    const struct store_ops *o = tx->s->be->ops;
    int64_t now = tx->now_ms, window = (int64_t)window_s * 1000;
    /* counters with nothing left to count: a few go each time, so the table stays bounded */
    enum store_status st = store_fail(tx, o->throttle_purge(tx, now - 2 * window, THROTTLE_PURGE), NULL, 0);
    struct throttle_row rows[THROTTLE_COUNTERS_MAX];
    bool changed[THROTTLE_COUNTERS_MAX];
    int longest = 0;
    for (size_t i = 0; i < n && st == STORE_OK; i++) {
        st = store_fail(tx, o->throttle_lock(tx, c[i].key, true, &rows[i]), NULL, 0);
        if (st != STORE_OK)
            break;
        changed[i] = throttle_roll(&rows[i], now, window);
        if (rows[i].failures + rows[i].pending + rows[i].prev_pending < c[i].limit)
            continue;
        /* at its limit until its window ends: whole seconds, rounded up; a unit whose clock
         * lags another's (SQLite's queue) still says at most one window */
        int64_t left = (rows[i].window_start_ms + window - now + 999) / 1000;
        int w = left < 1 ? 1 : left > window_s ? window_s : (int)left;
        if (w > longest)
            longest = w;
    }
    if (st != STORE_OK)
        return tx->failed ? tx->failed : st;
    for (size_t i = 0; i < n; i++) {
        if (!longest) {
            rows[i].pending++;
            changed[i] = true;
        }
        if (changed[i] && (st = store_fail(tx, o->throttle_put(tx, c[i].key, &rows[i]), NULL, 0)) != STORE_OK)
            return st;
    }
    *wait = longest;
    return STORE_OK;
}

enum store_status store_throttle_end(struct store_tx *tx, const char *key, bool failed, bool clear)
{
    if (!throttle_ops(tx, "throttle_end"))
        return tx->failed;
    const struct store_ops *o = tx->s->be->ops;
    struct throttle_row r;
    enum store_status st = store_fail(tx, o->throttle_lock(tx, key, false, &r), NULL, 0);
    if (st == STORE_NOT_FOUND) /* deleted once it had nothing to count: so has this attempt */
        return STORE_OK;
    if (st != STORE_OK)
        return st;
    /* the older attempts in flight end first */
    if (r.prev_pending > 0)
        r.prev_pending--;
    else if (r.pending > 0)
        r.pending--;
    if (failed)
        r.failures++;
    else if (clear)
        r.failures = 0;
    return store_fail(tx, o->throttle_put(tx, key, &r), NULL, 0);
}

enum store_status store_business_create(struct store_tx *tx, const char *b_id, const char *name)
{
    WOP(business_create, b_id, name);
}

enum store_status store_business_get(struct store_tx *tx, const char *b_id, const char **name_out)
{
    OP(business_get, b_id, name_out);
}

enum store_status store_business_list(struct store_tx *tx, store_cols_fn fn, void *ctx)
{
    OP(business_list, fn, ctx);
}

enum store_status store_client_create(struct store_tx *tx, const char *client_id, const char *b_id, const char *name,
                                      const char *secret_hash)
{
    WOP(client_create, client_id, b_id, name, secret_hash);
}

enum store_status store_client_get(struct store_tx *tx, const char *client_id, struct client_row *out)
{
    OP(client_get, client_id, out);
}

enum store_status store_client_list(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx)
{
    OP(client_list, b_id, fn, ctx);
}

enum store_status store_client_revoke(struct store_tx *tx, const char *client_id) { WOP(client_revoke, client_id); }

enum store_status store_sharing_key_create(struct store_tx *tx, const char *key_id, const char *owner,
                                           const char *key_hash)
{
    WOP(sharing_key_create, key_id, owner, key_hash);
}

enum store_status store_sharing_key_owner(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                          const char **key_id_out)
{
    OP(sharing_key_owner, key_hash, owner_out, key_id_out);
}

enum store_status store_sharing_key_revoke(struct store_tx *tx, const char *key_id)
{
    WOP(sharing_key_revoke, key_id);
}

enum store_status store_session_create(struct store_tx *tx, const char *family, const char *client_id,
                                       const char *b_id, const char *key_id)
{
    WOP(session_create, family, client_id, b_id, key_id);
}

enum store_status store_refresh_insert(struct store_tx *tx, const char *token_hash, const char *family,
                                       int64_t expires_at)
{
    WOP(refresh_insert, token_hash, family, expires_at);
}

enum store_status store_refresh_take(struct store_tx *tx, const char *token_hash, struct session_row *out)
{
    WOP(refresh_take, token_hash, out);
}

enum store_status store_session_revoke(struct store_tx *tx, const char *family) { WOP(session_revoke, family); }

enum store_status store_revocations(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                    const char ***sessions, size_t *nsessions)
{
    OP(revocations, since, clients, nclients, sessions, nsessions);
}

enum store_status store_put(struct store_tx *tx, const struct resource *r, const char *tenant, bool exists,
                            const char *id, const char *created_at, const char *updated_at,
                            const struct fval *vals, char *id_out, size_t id_cap)
{
    if (!tx->s->be->ops->put) {
        log_line("error", "this storage backend cannot import records (no put)", NULL, 0);
        return store_fail(tx, STORE_ERROR, NULL, 0);
    }
    WOP(put, r, tenant, exists, id, created_at, updated_at, vals, id_out, id_cap);
}

/* The failures a savepoint contains: the record's own verdicts. Contention, storage
 * failures and bugs still end the unit. */
static bool containable(enum store_status st)
{
    return st == STORE_CONFLICT || st == STORE_NOT_FOUND || st == STORE_ABORT;
}

enum store_status store_try(struct store_tx *tx, store_fn fn, void *ctx, const char **conflict)
{
    if (conflict)
        *conflict = NULL;
    if (tx->failed)
        return tx->failed;
    if (!tx->write || tx->in_try || !tx->s->be->ops->savepoint) {
        log_line("error",
                 !tx->write ? "store_try in a read unit"
                 : tx->in_try ? "store_try inside store_try"
                              : "this storage backend has no savepoints",
                 NULL, 0);
        return store_fail(tx, STORE_ERROR, NULL, 0);
    }
    enum store_status st = tx->s->be->ops->savepoint(tx, SAVEPOINT_BEGIN);
    if (st != STORE_OK)
        return store_fail(tx, st, NULL, 0);
    tx->in_try = true;
    st = fn(tx, ctx);
    tx->in_try = false;
    if (tx->failed && !containable(tx->failed))
        return tx->failed; /* doomed: the whole unit rolls back */
    if (tx->failed)
        st = tx->failed;
    if (st == STORE_OK) {
        st = tx->s->be->ops->savepoint(tx, SAVEPOINT_RELEASE);
        return st == STORE_OK ? st : store_fail(tx, st, NULL, 0);
    }
    if (!containable(st)) /* fn answered a storage failure of its own choosing */
        return store_fail(tx, st, NULL, 0);
    if (conflict)
        *conflict = tx->conflict;
    tx->failed = STORE_OK;
    tx->conflict = NULL;
    tx->retry_after = 0;
    enum store_status back = tx->s->be->ops->savepoint(tx, SAVEPOINT_ROLLBACK);
    return back == STORE_OK ? st : store_fail(tx, back, NULL, 0);
}

/* ---- SQL from the field tables, for the backends ---- */

void sqlcat(char *buf, size_t cap, int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - (size_t)*n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)*n + (size_t)k >= cap) {
        log_line("error", "SQL statement longer than its buffer", NULL, (long)cap);
        abort();
    }
    *n += k;
}

int select_cols_ex(const struct resource *r, char *buf, size_t cap, bool with_deleted)
{
    int n = 0;
    sqlcat(buf, cap, &n, "SELECT rid, id, created_at, updated_at");
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].column)
            sqlcat(buf, cap, &n, ", %s", r->fields[i].column);
    if (with_deleted)
        sqlcat(buf, cap, &n, ", deleted_at");
    sqlcat(buf, cap, &n, " FROM %s", r->table);
    return n;
}

int select_ncols(const struct resource *r)
{
    int n = 4;
    for (size_t i = 0; i < r->nfields; i++)
        n += r->fields[i].column != NULL;
    return n;
}
