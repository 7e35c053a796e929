/* The login throttle's counters in PostgreSQL (the rules are store.c's), as sqlite_throttle.c
 * keeps them in SQLite: one row per counter, by its opaque key. A unit locks each counter it
 * reads until it ends, so units of every server sharing the database take turns on it: a
 * unit reserving an attempt reads the count the last one left. Units lock their counters in
 * one order (the pair's, then the address's) and the purge skips locked rows, so throttle
 * units never wait on each other in a cycle. */
#include <stdlib.h>

#include "store/pg_int.h"

enum store_status pg_throttle_lock(struct store_tx *tx, const char *key, bool create, struct throttle_row *out)
{
    const char *args[] = {key, pg_num(tx, tx->now_ms)};
    /* the upsert locks the row it finds or makes: ON CONFLICT waits for a concurrent insert */
    PGresult *res = create ? pg_exec(tx,
                                     "INSERT INTO login_throttle AS t (key, window_start, failures, pending,"
                                     " prev_pending) VALUES ($1, $2::bigint, 0, 0, 0) ON CONFLICT (key) DO UPDATE"
                                     " SET failures = t.failures RETURNING window_start, failures, pending,"
                                     " prev_pending",
                                     2, args)
                           : pg_exec(tx,
                                     "SELECT window_start, failures, pending, prev_pending FROM login_throttle"
                                     " WHERE key = $1 FOR UPDATE",
                                     1, args);
    if (!res)
        return tx->failed;
    if (!PQntuples(res)) {
        PQclear(res);
        return STORE_NOT_FOUND;
    }
    out->window_start_ms = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    out->failures = atoi(PQgetvalue(res, 0, 1));
    out->pending = atoi(PQgetvalue(res, 0, 2));
    out->prev_pending = atoi(PQgetvalue(res, 0, 3));
    PQclear(res);
    return STORE_OK;
}

enum store_status pg_throttle_put(struct store_tx *tx, const char *key, const struct throttle_row *row)
{
    const char *args[] = {key, pg_num(tx, row->window_start_ms), pg_num(tx, row->failures), pg_num(tx, row->pending),
                          pg_num(tx, row->prev_pending)};
    PGresult *res = pg_exec(tx,
                            "UPDATE login_throttle SET window_start = $2::bigint, failures = $3::integer,"
                            " pending = $4::integer, prev_pending = $5::integer WHERE key = $1",
                            5, args);
    if (!res)
        return tx->failed;
    PQclear(res);
    return STORE_OK;
}

enum store_status pg_throttle_purge(struct store_tx *tx, int64_t before_ms, int max)
{
    const char *args[] = {pg_num(tx, before_ms), pg_num(tx, max)};
    /* rows another unit holds are skipped, not waited for; the outer test holds on the row
     * as committed should it have changed since the snapshot */
    PGresult *res = pg_exec(tx,
                            "DELETE FROM login_throttle WHERE window_start < $1::bigint AND key IN (SELECT key"
                            " FROM login_throttle WHERE window_start < $1::bigint ORDER BY window_start"
                            " LIMIT $2::integer FOR UPDATE SKIP LOCKED)",
                            2, args);
    if (!res)
        return tx->failed;
    PQclear(res);
    return STORE_OK;
}
