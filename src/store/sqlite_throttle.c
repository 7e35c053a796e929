/* The login throttle's counters in SQLite (the rules are store.c's): one row per counter,
 * by its opaque key. Write units only, so the writer thread runs them one at a time. */
#include "store/sqlite_int.h"

enum store_status sq_throttle_lock(struct store_tx *tx, const char *key, bool create, struct throttle_row *out)
{
    if (create) {
        sqlite3_stmt *ins = sq_bind_texts(tx,
                                          "INSERT INTO login_throttle (key, window_start, failures, pending,"
                                          " prev_pending) VALUES (?1, ?2, 0, 0, 0) ON CONFLICT (key) DO NOTHING",
                                          1, key);
        if (!ins)
            return tx->failed;
        sqlite3_bind_int64(ins, 2, tx->now_ms);
        enum store_status st = sq_run(tx, ins, NULL, NULL);
        if (st != STORE_OK)
            return st;
    }
    sqlite3_stmt *st = sq_bind_texts(
        tx, "SELECT window_start, failures, pending, prev_pending FROM login_throttle WHERE key = ?1", 1, key);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        out->window_start_ms = sqlite3_column_int64(st, 0);
        out->failures = sqlite3_column_int(st, 1);
        out->pending = sqlite3_column_int(st, 2);
        out->prev_pending = sqlite3_column_int(st, 3);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_ROW)
        return STORE_OK;
    return rc == SQLITE_DONE ? STORE_NOT_FOUND : sq_fail(tx, rc);
}

enum store_status sq_throttle_put(struct store_tx *tx, const char *key, const struct throttle_row *row)
{
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "UPDATE login_throttle SET window_start = ?2, failures = ?3, pending = ?4,"
                                     " prev_pending = ?5 WHERE key = ?1",
                                     1, key);
    if (!st)
        return tx->failed;
    sqlite3_bind_int64(st, 2, row->window_start_ms);
    sqlite3_bind_int(st, 3, row->failures);
    sqlite3_bind_int(st, 4, row->pending);
    sqlite3_bind_int(st, 5, row->prev_pending);
    return sq_run(tx, st, NULL, NULL);
}

enum store_status sq_throttle_purge(struct store_tx *tx, int64_t before_ms, int max)
{
    sqlite3_stmt *st = sq_prep(tx, "DELETE FROM login_throttle WHERE key IN (SELECT key FROM login_throttle"
                                   " WHERE window_start < ?1 ORDER BY window_start LIMIT ?2)");
    if (!st)
        return tx->failed;
    sqlite3_bind_int64(st, 1, before_ms);
    sqlite3_bind_int(st, 2, max);
    return sq_run(tx, st, NULL, NULL);
}
