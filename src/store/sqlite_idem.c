/* Idempotency-Keys of creates in SQLite: one row per (tenant, key), claimed by one request
 * at a time (its holder token), then holding the answer to replay. Every statement names
 * the tenant; the key's primary key leads with it. */
#include <string.h>

#include "store/sqlite_int.h"

#define IDEM_KEY_NAME "Idempotency-Key"

enum store_status sq_idem_get(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out)
{
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "SELECT request_hash, holder, state, status, body, created_ms, lease_until_ms"
                                     " FROM idempotency_key WHERE b_id = ?1 AND key = ?2",
                                     2, tenant, key);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        memset(out, 0, sizeof *out);
        out->request_hash = sq_text(st, 0, tx->a);
        out->holder = sq_text(st, 1, tx->a);
        const unsigned char *state = sqlite3_column_text(st, 2);
        out->done = state && strcmp((const char *)state, "done") == 0;
        out->status = sqlite3_column_int(st, 3);
        out->body = sq_text(st, 4, tx->a);
        out->created_ms = sqlite3_column_int64(st, 5);
        out->lease_until_ms = sqlite3_column_int64(st, 6);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_fail(tx, rc);
}

enum store_status sq_idem_claim(struct store_tx *tx, const char *tenant, const char *key,
                                const struct idem_record *replaces, const struct idem_record *rec)
{
    const char *sql =
        replaces ? "UPDATE idempotency_key SET request_hash = ?3, holder = ?4, state = 'running', status = NULL,"
                   " body = NULL, created_ms = ?5, lease_until_ms = ?6"
                   " WHERE b_id = ?1 AND key = ?2 AND holder = ?7 AND state = ?8"
                 : "INSERT INTO idempotency_key (b_id, key, request_hash, holder, state, created_ms, lease_until_ms)"
                   " VALUES (?1, ?2, ?3, ?4, 'running', ?5, ?6)";
    sqlite3_stmt *st = sq_bind_texts(tx, sql, 4, tenant, key, rec->request_hash, rec->holder);
    if (!st)
        return tx->failed;
    sqlite3_bind_int64(st, 5, rec->created_ms);
    sqlite3_bind_int64(st, 6, rec->lease_until_ms);
    if (replaces) {
        sqlite3_bind_text(st, 7, replaces->holder, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 8, replaces->done ? "done" : "running", -1, SQLITE_STATIC);
    }
    int n = 0;
    enum store_status s = sq_run(tx, st, IDEM_KEY_NAME, &n);
    if (s == STORE_OK && !n) /* someone else changed it since it was read */
        return store_fail(tx, STORE_CONFLICT, IDEM_KEY_NAME, 0);
    return s;
}

enum store_status sq_idem_finish(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                 int status, const char *body)
{
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "UPDATE idempotency_key SET state = 'done', status = ?4, body = ?5"
                                     " WHERE b_id = ?1 AND key = ?2 AND holder = ?3 AND state = 'running'",
                                     3, tenant, key, holder);
    if (!st)
        return tx->failed;
    sqlite3_bind_int(st, 4, status);
    sqlite3_bind_text(st, 5, body, -1, SQLITE_STATIC);
    int n = 0;
    enum store_status s = sq_run(tx, st, NULL, &n);
    return s == STORE_OK && !n ? STORE_NOT_FOUND : s;
}

enum store_status sq_idem_release(struct store_tx *tx, const char *tenant, const char *key, const char *holder)
{
    int n = 0;
    enum store_status s = sq_run(tx,
                                 sq_bind_texts(tx,
                                               "DELETE FROM idempotency_key WHERE b_id = ?1 AND key = ?2"
                                               " AND holder = ?3 AND state = 'running'",
                                               3, tenant, key, holder),
                                 NULL, &n);
    return s == STORE_OK && !n ? STORE_NOT_FOUND : s;
}

enum store_status sq_idem_purge(struct store_tx *tx, const char *tenant, int64_t before_ms, int max, int *purged)
{
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "DELETE FROM idempotency_key WHERE b_id = ?1 AND key IN (SELECT key FROM"
                                     " idempotency_key WHERE b_id = ?1 AND created_ms < ?2 ORDER BY created_ms"
                                     " LIMIT ?3)",
                                     1, tenant);
    if (!st)
        return tx->failed;
    sqlite3_bind_int64(st, 2, before_ms);
    sqlite3_bind_int(st, 3, max);
    int n = 0;
    enum store_status s = sq_run(tx, st, NULL, &n);
    if (purged)
        *purged = s == STORE_OK ? n : 0;
    return s;
}
