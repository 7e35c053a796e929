/* Idempotency-Keys of creates in PostgreSQL, as sqlite_idem.c does them in SQLite: one row
 * per (tenant, key), claimed by one request at a time (its holder token), then holding the
 * answer to replay. Every statement names the tenant; the key's primary key leads with it. */
#include <stdlib.h>
#include <string.h>

#include "store/pg_int.h"

#define IDEM_KEY_NAME "Idempotency-Key"

/* A statement that should touch one row: STORE_NOT_FOUND when it touched none. */
static enum store_status one(struct store_tx *tx, const char *sql, int n, const char *const *args)
{
    PGresult *res = pg_exec(tx, sql, n, args);
    if (!res)
        return tx->failed;
    int changed = atoi(PQcmdTuples(res));
    PQclear(res);
    return changed ? STORE_OK : STORE_NOT_FOUND;
}

enum store_status pg_idem_get(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out)
{
    const char *args[] = {tenant, key};
    PGresult *res = pg_exec(tx,
                            "SELECT request_hash, holder, state, status, body, created_ms, lease_until_ms"
                            " FROM idempotency_key WHERE b_id = $1 AND key = $2",
                            2, args);
    if (!res)
        return tx->failed;
    if (!PQntuples(res)) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    memset(out, 0, sizeof *out);
    out->request_hash = pg_text(tx, res, 0, 0);
    out->holder = pg_text(tx, res, 0, 1);
    out->done = strcmp(PQgetvalue(res, 0, 2), "done") == 0;
    out->status = PQgetisnull(res, 0, 3) ? 0 : atoi(PQgetvalue(res, 0, 3));
    out->body = pg_text(tx, res, 0, 4);
    out->created_ms = strtoll(PQgetvalue(res, 0, 5), NULL, 10);
    out->lease_until_ms = strtoll(PQgetvalue(res, 0, 6), NULL, 10);
    PQclear(res);
    return STORE_OK;
}

enum store_status pg_idem_claim(struct store_tx *tx, const char *tenant, const char *key,
                                const struct idem_record *replaces, const struct idem_record *rec)
{
    const char *args[] = {tenant,
                          key,
                          rec->request_hash,
                          rec->holder,
                          pg_num(tx, rec->created_ms),
                          pg_num(tx, rec->lease_until_ms),
                          replaces ? replaces->holder : NULL,
                          replaces && replaces->done ? "done" : "running"};
    enum store_status st;
    if (replaces) {
        /* Read Committed re-checks the WHERE on the row a concurrent finish committed: the
         * state must still be the one read, or a claim answered meanwhile would be taken
         * over and its create run twice */
        st = one(tx,
                 "UPDATE idempotency_key SET request_hash = $3, holder = $4, state = 'running', status = NULL,"
                 " body = NULL, created_ms = $5::bigint, lease_until_ms = $6::bigint"
                 " WHERE b_id = $1 AND key = $2 AND holder = $7 AND state = $8",
                 8, args);
    } else {
        /* a key claimed meanwhile by another request (on any server) is a conflict, not an error */
        st = one(tx,
                 "INSERT INTO idempotency_key (b_id, key, request_hash, holder, state, created_ms, lease_until_ms)"
                 " VALUES ($1, $2, $3, $4, 'running', $5::bigint, $6::bigint) ON CONFLICT (b_id, key) DO NOTHING",
                 6, args);
    }
    if (st == STORE_NOT_FOUND) /* someone else changed it since it was read */
        return store_fail(tx, STORE_CONFLICT, IDEM_KEY_NAME, 0);
    return st;
}

enum store_status pg_idem_finish(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                 int status, const char *body)
{
    const char *args[] = {tenant, key, holder, pg_num(tx, status), body};
    return one(tx,
               "UPDATE idempotency_key SET state = 'done', status = $4::integer, body = $5"
               " WHERE b_id = $1 AND key = $2 AND holder = $3 AND state = 'running'",
               5, args);
}

enum store_status pg_idem_release(struct store_tx *tx, const char *tenant, const char *key, const char *holder)
{
    const char *args[] = {tenant, key, holder};
    return one(tx,
               "DELETE FROM idempotency_key WHERE b_id = $1 AND key = $2 AND holder = $3 AND state = 'running'", 3,
               args);
}

enum store_status pg_idem_purge(struct store_tx *tx, const char *tenant, int64_t before_ms, int max, int *purged)
{
    const char *args[] = {tenant, pg_num(tx, before_ms), pg_num(tx, max)};
    PGresult *res = pg_exec(tx,
                            "DELETE FROM idempotency_key WHERE b_id = $1 AND key IN (SELECT key FROM"
                            " idempotency_key WHERE b_id = $1 AND created_ms < $2::bigint ORDER BY created_ms"
                            " LIMIT $3::integer)",
                            3, args);
    if (purged)
        *purged = res ? atoi(PQcmdTuples(res)) : 0;
    if (!res)
        return tx->failed;
    PQclear(res);
    return STORE_OK;
}
