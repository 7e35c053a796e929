/* Business login tables in SQLite: businesses, clients, sharing keys, sessions and
 * refresh tokens. Secrets never arrive here, only their hashes. */
#include <string.h>

#include "store/sqlite_int.h"

#define NOW_TEXT "strftime('%Y-%m-%dT%H:%M:%fZ','now')"

static bool rows(struct sqlite_conn *c, sqlite3_stmt *st, int ncols, store_cols_fn fn, void *ctx, struct herr *e)
{
    if (!st)
        return false;
    int rc;
    const char *cols[8];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++)
            cols[i] = (const char *)sqlite3_column_text(st, i);
        fn(ctx, cols, ncols);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? true : sq_fail(c, rc, e);
}

#define C(base) ((struct sqlite_conn *)(base))

/* Steps a lookup to its first row. FIND_OK leaves the row to be read (then reset by the
 * caller); otherwise the statement is reset already. */
static enum find_result first_row(struct sqlite_conn *c, sqlite3_stmt *st, struct herr *e)
{
    if (!st)
        return FIND_ERROR;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return FIND_OK;
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return FIND_MISSING;
    sq_fail(c, rc, e);
    return FIND_ERROR;
}

/* SELECT of one text column by one key: FIND_OK (with *out when out is given), FIND_MISSING or FIND_ERROR. */
static enum find_result lookup(struct sqlite_conn *c, const char *sql, const char *key, struct arena *a,
                               const char **out, struct herr *e)
{
    sqlite3_stmt *st = sq_bind_texts(c, sql, e, 1, key);
    enum find_result fr = first_row(c, st, e);
    if (fr == FIND_OK) {
        if (out)
            *out = sq_text(st, 0, a);
        sqlite3_reset(st);
    }
    return fr;
}

/* An UPDATE by one key that should touch exactly one row: FIND_MISSING when it touched none. */
static enum find_result update_one(struct sqlite_conn *c, const char *sql, const char *key, struct herr *e)
{
    int n = 0;
    if (!sq_run(c, sq_bind_texts(c, sql, e, 1, key), &n, e))
        return FIND_ERROR;
    return n ? FIND_OK : FIND_MISSING;
}

static bool business_create(struct store_conn *b, const char *b_id, const char *name, struct herr *e)
{
    return sq_run(C(b),
               sq_bind_texts(C(b), "INSERT INTO business (b_id, name, created_at) VALUES (?, ?, " NOW_TEXT ")", e, 2,
                          b_id, name),
               NULL, e);
}

static enum find_result business_get(struct store_conn *b, const char *b_id, struct arena *a, const char **name_out,
                                     struct herr *e)
{
    return lookup(C(b), "SELECT name FROM business WHERE b_id = ?", b_id, a, name_out, e);
}

static bool business_list(struct store_conn *b, store_cols_fn fn, void *ctx, struct herr *e)
{
    return rows(C(b), sq_bind_texts(C(b), "SELECT b_id, name, created_at FROM business ORDER BY created_at", e, 0), 3,
                fn, ctx, e);
}

static bool client_create(struct store_conn *b, const char *client_id, const char *b_id, const char *name,
                          const char *secret_hash, struct herr *e)
{
    return sq_run(C(b),
               sq_bind_texts(C(b),
                          "INSERT INTO client (client_id, b_id, name, secret_hash, created_at)"
                          " VALUES (?, ?, ?, ?, " NOW_TEXT ")",
                          e, 4, client_id, b_id, name, secret_hash),
               NULL, e);
}

static enum find_result client_get(struct store_conn *b, const char *client_id, struct arena *a,
                                   struct client_row *out, struct herr *e)
{
    sqlite3_stmt *st = sq_bind_texts(
        C(b), "SELECT client_id, b_id, name, secret_hash, created_at, revoked_at FROM client WHERE client_id = ?", e, 1,
        client_id);
    enum find_result fr = first_row(C(b), st, e);
    if (fr == FIND_OK) {
        out->client_id = sq_text(st, 0, a);
        out->b_id = sq_text(st, 1, a);
        out->name = sq_text(st, 2, a);
        out->secret_hash = sq_text(st, 3, a);
        out->created_at = sq_text(st, 4, a);
        out->revoked = sqlite3_column_type(st, 5) != SQLITE_NULL;
        sqlite3_reset(st);
    }
    return fr;
}

static bool client_list(struct store_conn *b, const char *b_id, store_cols_fn fn, void *ctx, struct herr *e)
{
    return rows(C(b),
                sq_bind_texts(C(b),
                           "SELECT client_id, b_id, coalesce(name, ''), coalesce(revoked_at, '') FROM client"
                           " WHERE ?1 IS NULL OR b_id = ?1 ORDER BY created_at",
                           e, 1, b_id),
                4, fn, ctx, e);
}

static enum find_result client_revoke(struct store_conn *b, const char *client_id, struct herr *e)
{
    return update_one(C(b), "UPDATE client SET revoked_at = " NOW_TEXT " WHERE client_id = ? AND revoked_at IS NULL",
                      client_id, e);
}

static bool sharing_key_create(struct store_conn *b, const char *key_id, const char *owner, const char *key_hash,
                               struct herr *e)
{
    return sq_run(C(b),
               sq_bind_texts(C(b),
                          "INSERT INTO sharing_key (key_id, owner_b_id, key_hash, created_at)"
                          " VALUES (?, ?, ?, " NOW_TEXT ")",
                          e, 3, key_id, owner, key_hash),
               NULL, e);
}

static enum find_result sharing_key_owner(struct store_conn *b, const char *key_hash, struct arena *a,
                                          const char **owner_out, const char **key_id_out, struct herr *e)
{
    sqlite3_stmt *st = sq_bind_texts(
        C(b), "SELECT owner_b_id, key_id FROM sharing_key WHERE key_hash = ? AND revoked_at IS NULL", e, 1, key_hash);
    enum find_result fr = first_row(C(b), st, e);
    if (fr == FIND_OK) {
        *owner_out = sq_text(st, 0, a);
        *key_id_out = sq_text(st, 1, a);
        sqlite3_reset(st);
    }
    return fr;
}

static enum find_result sharing_key_revoke(struct store_conn *b, const char *key_id, int64_t now, struct herr *e)
{
    enum find_result fr = update_one(
        C(b), "UPDATE sharing_key SET revoked_at = " NOW_TEXT " WHERE key_id = ? AND revoked_at IS NULL", key_id, e);
    if (fr != FIND_OK)
        return fr;
    sqlite3_stmt *st =
        sq_bind_texts(C(b), "UPDATE session SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL", e, 1, key_id);
    if (st)
        sqlite3_bind_int64(st, 2, now);
    return sq_run(C(b), st, NULL, e) ? FIND_OK : FIND_ERROR;
}

static bool session_create(struct store_conn *b, const char *family, const char *client_id, const char *b_id,
                           const char *key_id, int64_t now, struct herr *e)
{
    sqlite3_stmt *st = sq_bind_texts(
        C(b), "INSERT INTO session (family, client_id, b_id, key_id, created_at) VALUES (?, ?, ?, ?, ?)", e, 4,
        family, client_id, b_id, key_id);
    if (st)
        sqlite3_bind_int64(st, 5, now);
    return sq_run(C(b), st, NULL, e);
}

static bool refresh_insert(struct store_conn *b, const char *token_hash, const char *family, int64_t expires_at,
                           int64_t now, struct herr *e)
{
    sqlite3_stmt *st = sq_bind_texts(
        C(b), "INSERT INTO refresh_token (token_hash, family, expires_at, created_at) VALUES (?, ?, ?, ?)", e, 2,
        token_hash, family);
    if (st) {
        sqlite3_bind_int64(st, 3, expires_at);
        sqlite3_bind_int64(st, 4, now);
    }
    return sq_run(C(b), st, NULL, e);
}

static enum find_result refresh_take(struct store_conn *b, const char *token_hash, int64_t now, struct arena *a,
                                     struct session_row *out, struct herr *e)
{
    sqlite3_stmt *st = sq_bind_texts(C(b),
                                  "SELECT s.family, s.client_id, s.b_id, r.expires_at, r.used_at IS NOT NULL,"
                                  " s.revoked_at IS NOT NULL, r.used_at FROM refresh_token r JOIN session s USING (family)"
                                  " WHERE r.token_hash = ?",
                                  e, 1, token_hash);
    enum find_result fr = first_row(C(b), st, e);
    if (fr != FIND_OK)
        return fr;
    out->family = sq_text(st, 0, a);
    out->client_id = sq_text(st, 1, a);
    out->b_id = sq_text(st, 2, a);
    out->expires_at = sqlite3_column_int64(st, 3);
    out->used = sqlite3_column_int(st, 4) != 0;
    out->revoked = sqlite3_column_int(st, 5) != 0;
    out->used_at = sqlite3_column_int64(st, 6);
    sqlite3_reset(st);
    if (!out->used) {
        st = sq_bind_texts(C(b), "UPDATE refresh_token SET used_at = ? WHERE token_hash = ? AND used_at IS NULL", e, 0);
        if (!st)
            return FIND_ERROR;
        sqlite3_bind_int64(st, 1, now);
        sqlite3_bind_text(st, 2, token_hash, -1, SQLITE_STATIC);
        if (!sq_run(C(b), st, NULL, e))
            return FIND_ERROR;
    }
    return FIND_OK;
}

static bool session_revoke(struct store_conn *b, const char *family, int64_t now, struct herr *e)
{
    sqlite3_stmt *st =
        sq_bind_texts(C(b), "UPDATE session SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL", e, 1, family);
    if (st)
        sqlite3_bind_int64(st, 2, now);
    return sq_run(C(b), st, NULL, e);
}

static bool collect(struct sqlite_conn *c, sqlite3_stmt *st, struct arena *a, const char ***out, size_t *n,
                    struct herr *e)
{
    size_t cap = 16;
    const char **items = arena_alloc(a, cap * sizeof *items);
    *n = 0;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            const char **bigger = arena_alloc(a, 2 * cap * sizeof *items);
            memcpy(bigger, items, cap * sizeof *items);
            items = bigger;
            cap *= 2;
        }
        items[(*n)++] = sq_text(st, 0, a);
    }
    sqlite3_reset(st);
    *out = items;
    return rc == SQLITE_DONE ? true : sq_fail(c, rc, e);
}

static bool revocations(struct store_conn *b, int64_t since, struct arena *a, const char ***clients,
                        size_t *nclients, const char ***sessions, size_t *nsessions, struct herr *e)
{
    sqlite3_stmt *st =
        sq_bind_texts(C(b), "SELECT client_id FROM client WHERE revoked_at IS NOT NULL ORDER BY client_id", e, 0);
    if (!st || !collect(C(b), st, a, clients, nclients, e))
        return false;
    st = sq_bind_texts(C(b), "SELECT family FROM session WHERE revoked_at >= ? ORDER BY family", e, 0);
    if (!st)
        return false;
    sqlite3_bind_int64(st, 1, since);
    return collect(C(b), st, a, sessions, nsessions, e);
}

const struct store_auth_ops SQLITE_AUTH_OPS = {
    .business_create = business_create,
    .business_get = business_get,
    .business_list = business_list,
    .client_create = client_create,
    .client_get = client_get,
    .client_list = client_list,
    .client_revoke = client_revoke,
    .sharing_key_create = sharing_key_create,
    .sharing_key_owner = sharing_key_owner,
    .sharing_key_revoke = sharing_key_revoke,
    .session_create = session_create,
    .refresh_insert = refresh_insert,
    .refresh_take = refresh_take,
    .session_revoke = session_revoke,
    .revocations = revocations,
};
