/* Business login tables in SQLite: businesses, clients, sharing keys, sessions and
 * refresh tokens. Secrets never arrive here, only their hashes. Times come from the
 * unit's clock: text columns get its ISO form, integer columns its unix seconds. */
#include <string.h>

#include "store/sqlite_int.h"

static int64_t now_secs(const struct store_tx *tx) { return tx->now_ms / 1000; }

static enum store_status rows(struct store_tx *tx, sqlite3_stmt *st, int ncols, store_cols_fn fn, void *ctx)
{
    if (!st)
        return tx->failed;
    int rc;
    const char *cols[8];
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int i = 0; i < ncols; i++)
            cols[i] = (const char *)sqlite3_column_text(st, i);
        fn(ctx, cols, ncols);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(tx, rc);
}

/* Steps a lookup to its first row. STORE_OK leaves the row to be read (then reset by the
 * caller); otherwise the statement is reset already. */
static enum store_status first_row(struct store_tx *tx, sqlite3_stmt *st)
{
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_fail(tx, rc);
}

/* SELECT of one text column by one key (*out when out is given). */
static enum store_status lookup(struct store_tx *tx, const char *sql, const char *key, const char **out)
{
    sqlite3_stmt *st = sq_bind_texts(tx, sql, 1, key);
    enum store_status fr = first_row(tx, st);
    if (fr == STORE_OK) {
        if (out)
            *out = sq_text(st, 0, tx->a);
        sqlite3_reset(st);
    }
    return fr;
}

/* A statement by one text key and the unit's time (?2) that should touch one row:
 * STORE_NOT_FOUND when it touched none. */
static enum store_status update_one(struct store_tx *tx, const char *sql, const char *key, bool secs)
{
    sqlite3_stmt *st = sq_bind_texts(tx, sql, 2, key, secs ? NULL : tx->now_text);
    if (st && secs)
        sqlite3_bind_int64(st, 2, now_secs(tx));
    int n = 0;
    enum store_status s = sq_run(tx, st, NULL, &n);
    return s == STORE_OK && !n ? STORE_NOT_FOUND : s;
}

enum store_status sq_business_create(struct store_tx *tx, const char *b_id, const char *name)
{
    return sq_run(tx,
                  sq_bind_texts(tx, "INSERT INTO business (b_id, name, created_at) VALUES (?, ?, ?)", 3, b_id, name,
                                tx->now_text),
                  "b_id", NULL);
}

enum store_status sq_business_get(struct store_tx *tx, const char *b_id, const char **name_out)
{
    return lookup(tx, "SELECT name FROM business WHERE b_id = ?", b_id, name_out);
}

enum store_status sq_business_list(struct store_tx *tx, store_cols_fn fn, void *ctx)
{
    return rows(tx, sq_prep(tx, "SELECT b_id, name, created_at FROM business ORDER BY created_at, rowid"), 3, fn,
                ctx);
}

enum store_status sq_client_create(struct store_tx *tx, const char *client_id, const char *b_id, const char *name,
                                   const char *secret_hash)
{
    return sq_run(tx,
                  sq_bind_texts(tx,
                                "INSERT INTO client (client_id, b_id, name, secret_hash, created_at)"
                                " VALUES (?, ?, ?, ?, ?)",
                                5, client_id, b_id, name, secret_hash, tx->now_text),
                  "client_id", NULL);
}

enum store_status sq_client_get(struct store_tx *tx, const char *client_id, struct client_row *out)
{
    sqlite3_stmt *st = sq_bind_texts(
        tx, "SELECT client_id, b_id, name, secret_hash, created_at, revoked_at FROM client WHERE client_id = ?", 1,
        client_id);
    enum store_status fr = first_row(tx, st);
    if (fr == STORE_OK) {
        out->client_id = sq_text(st, 0, tx->a);
        out->b_id = sq_text(st, 1, tx->a);
        out->name = sq_text(st, 2, tx->a);
        out->secret_hash = sq_text(st, 3, tx->a);
        out->created_at = sq_text(st, 4, tx->a);
        out->revoked = sqlite3_column_type(st, 5) != SQLITE_NULL;
        sqlite3_reset(st);
    }
    return fr;
}

enum store_status sq_client_list(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx)
{
    return rows(tx,
                sq_bind_texts(tx,
                              "SELECT client_id, b_id, coalesce(name, ''), coalesce(revoked_at, '') FROM client"
                              " WHERE ?1 IS NULL OR b_id = ?1 ORDER BY created_at, rowid",
                              1, b_id),
                4, fn, ctx);
}

enum store_status sq_client_revoke(struct store_tx *tx, const char *client_id)
{
    return update_one(tx, "UPDATE client SET revoked_at = ?2 WHERE client_id = ?1 AND revoked_at IS NULL", client_id,
                      false);
}

enum store_status sq_sharing_key_create(struct store_tx *tx, const char *key_id, const char *owner,
                                        const char *key_hash)
{
    return sq_run(tx,
                  sq_bind_texts(tx,
                                "INSERT INTO sharing_key (key_id, owner_b_id, key_hash, created_at)"
                                " VALUES (?, ?, ?, ?)",
                                4, key_id, owner, key_hash, tx->now_text),
                  "key_id", NULL);
}

enum store_status sq_sharing_key_owner(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                       const char **key_id_out)
{
    sqlite3_stmt *st = sq_bind_texts(
        tx, "SELECT owner_b_id, key_id FROM sharing_key WHERE key_hash = ? AND revoked_at IS NULL", 1, key_hash);
    enum store_status fr = first_row(tx, st);
    if (fr == STORE_OK) {
        *owner_out = sq_text(st, 0, tx->a);
        *key_id_out = sq_text(st, 1, tx->a);
        sqlite3_reset(st);
    }
    return fr;
}

enum store_status sq_sharing_key_revoke(struct store_tx *tx, const char *key_id)
{
    enum store_status fr = update_one(
        tx, "UPDATE sharing_key SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL", key_id, false);
    if (fr != STORE_OK)
        return fr;
    fr = update_one(tx, "UPDATE session SET revoked_at = ?2 WHERE key_id = ?1 AND revoked_at IS NULL", key_id, true);
    return fr == STORE_NOT_FOUND ? STORE_OK : fr; /* a key never used opened no session */
}

enum store_status sq_session_create(struct store_tx *tx, const char *family, const char *client_id,
                                    const char *b_id, const char *key_id)
{
    sqlite3_stmt *st = sq_bind_texts(
        tx, "INSERT INTO session (family, client_id, b_id, key_id, created_at) VALUES (?, ?, ?, ?, ?)", 4, family,
        client_id, b_id, key_id);
    if (st)
        sqlite3_bind_int64(st, 5, now_secs(tx));
    return sq_run(tx, st, "family", NULL);
}

enum store_status sq_refresh_insert(struct store_tx *tx, const char *token_hash, const char *family,
                                    int64_t expires_at)
{
    sqlite3_stmt *st = sq_bind_texts(
        tx, "INSERT INTO refresh_token (token_hash, family, expires_at, created_at) VALUES (?, ?, ?, ?)", 2,
        token_hash, family);
    if (st) {
        sqlite3_bind_int64(st, 3, expires_at);
        sqlite3_bind_int64(st, 4, now_secs(tx));
    }
    return sq_run(tx, st, "token_hash", NULL);
}

enum store_status sq_refresh_take(struct store_tx *tx, const char *token_hash, struct session_row *out)
{
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "SELECT s.family, s.client_id, s.b_id, r.expires_at, r.used_at IS NOT NULL,"
                                     " s.revoked_at IS NOT NULL, r.used_at FROM refresh_token r JOIN session s USING (family)"
                                     " WHERE r.token_hash = ?",
                                     1, token_hash);
    enum store_status fr = first_row(tx, st);
    if (fr != STORE_OK)
        return fr;
    out->family = sq_text(st, 0, tx->a);
    out->client_id = sq_text(st, 1, tx->a);
    out->b_id = sq_text(st, 2, tx->a);
    out->expires_at = sqlite3_column_int64(st, 3);
    out->used = sqlite3_column_int(st, 4) != 0;
    out->revoked = sqlite3_column_int(st, 5) != 0;
    out->used_at = sqlite3_column_int64(st, 6);
    sqlite3_reset(st);
    if (out->used)
        return STORE_OK;
    /* dated when written, not at the unit's start (pg_refresh_take) */
    st = sq_bind_texts(tx, "UPDATE refresh_token SET used_at = ?2 WHERE token_hash = ?1 AND used_at IS NULL", 1,
                       token_hash);
    if (st)
        sqlite3_bind_int64(st, 2, store_clock_now(tx) / 1000);
    return sq_run(tx, st, NULL, NULL);
}

enum store_status sq_session_revoke(struct store_tx *tx, const char *family)
{
    enum store_status fr =
        update_one(tx, "UPDATE session SET revoked_at = ?2 WHERE family = ?1 AND revoked_at IS NULL", family, true);
    return fr == STORE_NOT_FOUND ? STORE_OK : fr;
}

static enum store_status collect(struct store_tx *tx, sqlite3_stmt *st, const char ***out, size_t *n)
{
    size_t cap = 16;
    const char **items = arena_alloc(tx->a, cap * sizeof *items);
    *n = 0;
    *out = items;
    if (!st)
        return tx->failed;
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (*n == cap) {
            const char **bigger = arena_alloc(tx->a, 2 * cap * sizeof *items);
            memcpy(bigger, items, cap * sizeof *items);
            items = bigger;
            cap *= 2;
        }
        items[(*n)++] = sq_text(st, 0, tx->a);
    }
    sqlite3_reset(st);
    *out = items;
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(tx, rc);
}

enum store_status sq_revocations(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                 const char ***sessions, size_t *nsessions)
{
    enum store_status st = collect(
        tx, sq_prep(tx, "SELECT client_id FROM client WHERE revoked_at IS NOT NULL ORDER BY client_id"), clients,
        nclients);
    if (st != STORE_OK)
        return st;
    sqlite3_stmt *q = sq_prep(tx, "SELECT family FROM session WHERE revoked_at >= ? ORDER BY family");
    if (q)
        sqlite3_bind_int64(q, 1, since);
    return collect(tx, q, sessions, nsessions);
}
