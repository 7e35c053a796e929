/* Business login tables in PostgreSQL, as sqlite_auth.c does them in SQLite. */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

#define ARGS(...) ((const char *const[]){__VA_ARGS__})
#define NARGS(...) ((int)(sizeof((const char *[]){__VA_ARGS__}) / sizeof(const char *)))
#define EXEC(tx, sql, ...) pg_exec(tx, sql, NARGS(__VA_ARGS__), ARGS(__VA_ARGS__))

static const char *now_secs(const struct store_tx *tx) { return pg_num(tx, tx->now_ms / 1000); }

/* A statement that returns no rows; a unique violation is a conflict on its constraint's key. */
static enum store_status run(struct store_tx *tx, PGresult *res, int *changes)
{
    if (!res)
        return tx->failed;
    if (changes)
        *changes = atoi(PQcmdTuples(res));
    PQclear(res);
    return STORE_OK;
}

/* A statement that should touch one row: STORE_NOT_FOUND when it touched none. */
static enum store_status one(struct store_tx *tx, PGresult *res)
{
    int n = 0;
    enum store_status st = run(tx, res, &n);
    return st == STORE_OK && !n ? STORE_NOT_FOUND : st;
}

static enum store_status rows(struct store_tx *tx, PGresult *res, store_cols_fn fn, void *ctx)
{
    if (!res)
        return tx->failed;
    int nc = PQnfields(res);
    const char *cols[8];
    for (int r = 0; r < PQntuples(res); r++) {
        for (int i = 0; i < nc && i < 8; i++)
            cols[i] = PQgetisnull(res, r, i) ? NULL : PQgetvalue(res, r, i);
        fn(ctx, cols, nc < 8 ? nc : 8);
    }
    PQclear(res);
    return STORE_OK;
}

enum store_status pg_business_create(struct store_tx *tx, const char *b_id, const char *name)
{
    return run(tx, EXEC(tx, "INSERT INTO business (b_id, name, created_at) VALUES ($1, $2, $3)", b_id, name,
                        tx->now_text),
               NULL);
}

enum store_status pg_business_get(struct store_tx *tx, const char *b_id, const char **name_out)
{
    PGresult *res = EXEC(tx, "SELECT name FROM business WHERE b_id = $1", b_id);
    if (!res)
        return tx->failed;
    enum store_status st = PQntuples(res) ? STORE_OK : STORE_NOT_FOUND;
    if (st == STORE_OK && name_out)
        *name_out = pg_text(tx, res, 0, 0);
    PQclear(res);
    return st;
}

enum store_status pg_business_list(struct store_tx *tx, store_cols_fn fn, void *ctx)
{
    return rows(tx, pg_exec(tx, "SELECT b_id, name, created_at FROM business ORDER BY created_at, b_id", 0, NULL),
                fn, ctx);
}

enum store_status pg_client_create(struct store_tx *tx, const char *client_id, const char *b_id, const char *name,
                                   const char *secret_hash)
{
    return run(tx,
               EXEC(tx,
                    "INSERT INTO client (client_id, b_id, name, secret_hash, created_at) VALUES ($1, $2, $3, $4, $5)",
                    client_id, b_id, name, secret_hash, tx->now_text),
               NULL);
}

enum store_status pg_client_get(struct store_tx *tx, const char *client_id, struct client_row *out)
{
    PGresult *res = EXEC(
        tx, "SELECT client_id, b_id, name, secret_hash, created_at, revoked_at FROM client WHERE client_id = $1",
        client_id);
    if (!res)
        return tx->failed;
    enum store_status st = PQntuples(res) ? STORE_OK : STORE_NOT_FOUND;
    if (st == STORE_OK) {
        out->client_id = pg_text(tx, res, 0, 0);
        out->b_id = pg_text(tx, res, 0, 1);
        out->name = pg_text(tx, res, 0, 2);
        out->secret_hash = pg_text(tx, res, 0, 3);
        out->created_at = pg_text(tx, res, 0, 4);
        out->revoked = !PQgetisnull(res, 0, 5);
    }
    PQclear(res);
    return st;
}

enum store_status pg_client_list(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx)
{
    return rows(tx,
                EXEC(tx,
                     "SELECT client_id, b_id, coalesce(name, ''), coalesce(revoked_at, '') FROM client"
                     " WHERE $1::text IS NULL OR b_id = $1 ORDER BY created_at, client_id",
                     b_id),
                fn, ctx);
}

enum store_status pg_client_revoke(struct store_tx *tx, const char *client_id)
{
    return one(tx, EXEC(tx, "UPDATE client SET revoked_at = $2 WHERE client_id = $1 AND revoked_at IS NULL",
                        client_id, tx->now_text));
}

enum store_status pg_sharing_key_create(struct store_tx *tx, const char *key_id, const char *owner,
                                        const char *key_hash)
{
    return run(tx,
               EXEC(tx, "INSERT INTO sharing_key (key_id, owner_b_id, key_hash, created_at) VALUES ($1, $2, $3, $4)",
                    key_id, owner, key_hash, tx->now_text),
               NULL);
}

enum store_status pg_sharing_key_owner(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                       const char **key_id_out)
{
    PGresult *res =
        EXEC(tx, "SELECT owner_b_id, key_id FROM sharing_key WHERE key_hash = $1 AND revoked_at IS NULL", key_hash);
    if (!res)
        return tx->failed;
    enum store_status st = PQntuples(res) ? STORE_OK : STORE_NOT_FOUND;
    if (st == STORE_OK) {
        *owner_out = pg_text(tx, res, 0, 0);
        *key_id_out = pg_text(tx, res, 0, 1);
    }
    PQclear(res);
    return st;
}

enum store_status pg_sharing_key_revoke(struct store_tx *tx, const char *key_id)
{
    enum store_status st = one(
        tx, EXEC(tx, "UPDATE sharing_key SET revoked_at = $2 WHERE key_id = $1 AND revoked_at IS NULL", key_id,
                 tx->now_text));
    if (st != STORE_OK)
        return st;
    return run(tx,
               EXEC(tx, "UPDATE session SET revoked_at = $2::bigint WHERE key_id = $1 AND revoked_at IS NULL", key_id,
                    now_secs(tx)),
               NULL);
}

enum store_status pg_session_create(struct store_tx *tx, const char *family, const char *client_id,
                                    const char *b_id, const char *key_id)
{
    return run(tx,
               EXEC(tx,
                    "INSERT INTO session (family, client_id, b_id, key_id, created_at)"
                    " VALUES ($1, $2, $3, $4, $5::bigint)",
                    family, client_id, b_id, key_id, now_secs(tx)),
               NULL);
}

enum store_status pg_refresh_insert(struct store_tx *tx, const char *token_hash, const char *family,
                                    int64_t expires_at)
{
    return run(tx,
               EXEC(tx,
                    "INSERT INTO refresh_token (token_hash, family, expires_at, created_at)"
                    " VALUES ($1, $2, $3::bigint, $4::bigint)",
                    token_hash, family, pg_num(tx, expires_at), now_secs(tx)),
               NULL);
}

enum store_status pg_refresh_take(struct store_tx *tx, const char *token_hash, struct session_row *out)
{
    /* FOR UPDATE: two refreshes with one token take turns, and the second sees it used */
    PGresult *res = EXEC(tx,
                         "SELECT s.family, s.client_id, s.b_id, r.expires_at, r.used_at IS NOT NULL,"
                         " s.revoked_at IS NOT NULL, r.used_at FROM refresh_token r JOIN session s USING (family)"
                         " WHERE r.token_hash = $1 FOR UPDATE OF r",
                         token_hash);
    if (!res)
        return tx->failed;
    if (!PQntuples(res)) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    out->family = pg_text(tx, res, 0, 0);
    out->client_id = pg_text(tx, res, 0, 1);
    out->b_id = pg_text(tx, res, 0, 2);
    out->expires_at = strtoll(PQgetvalue(res, 0, 3), NULL, 10);
    out->used = PQgetvalue(res, 0, 4)[0] == 't';
    out->revoked = PQgetvalue(res, 0, 5)[0] == 't';
    out->used_at = PQgetisnull(res, 0, 6) ? 0 : strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    PQclear(res);
    if (out->used)
        return STORE_OK;
    /* the first use is dated when it is written: a unit that waited for the database (a stall,
     * a lock) must not date it earlier, or a retry within the reuse grace of the answer the
     * client lost would count as a reuse and end the session */
    return run(tx,
               EXEC(tx, "UPDATE refresh_token SET used_at = $2::bigint WHERE token_hash = $1 AND used_at IS NULL",
                    token_hash, pg_num(tx, store_clock_now(tx) / 1000)),
               NULL);
}

enum store_status pg_session_revoke(struct store_tx *tx, const char *family)
{
    return run(tx,
               EXEC(tx, "UPDATE session SET revoked_at = $2::bigint WHERE family = $1 AND revoked_at IS NULL", family,
                    now_secs(tx)),
               NULL);
}

static enum store_status collect(struct store_tx *tx, PGresult *res, const char ***out, size_t *n)
{
    *n = 0;
    *out = arena_calloc(tx->a, 1, sizeof **out);
    if (!res)
        return tx->failed;
    int k = PQntuples(res);
    const char **items = arena_calloc(tx->a, k ? (size_t)k : 1, sizeof *items);
    for (int i = 0; i < k; i++)
        items[i] = pg_text(tx, res, i, 0);
    PQclear(res);
    *out = items;
    *n = (size_t)k;
    return STORE_OK;
}

enum store_status pg_revocations(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                 const char ***sessions, size_t *nsessions)
{
    enum store_status st = collect(
        tx,
        pg_exec(tx, "SELECT client_id FROM client WHERE revoked_at IS NOT NULL ORDER BY client_id COLLATE \"C\"", 0,
                NULL),
        clients, nclients);
    if (st != STORE_OK)
        return st;
    return collect(tx,
                   EXEC(tx, "SELECT family FROM session WHERE revoked_at >= $1::bigint ORDER BY family COLLATE \"C\"",
                        pg_num(tx, since)),
                   sessions, nsessions);
}
