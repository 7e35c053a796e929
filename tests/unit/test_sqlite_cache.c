/* The SQLite statement cache: bounded, least recently used first, and it never frees a
 * statement that is running or that was handed out during the current unit (its caller
 * may still hold it). The old cache finalised everything once its 128 slots were full,
 * under whoever held a statement. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "store/sqlite_int.h"
#include "tmpdb_fixture.h"

static struct tmpdb db;

static int setup(void **state)
{
    if (!tmpdb_make(&db, "cache"))
        return -1;
    char err[256];
    struct sqlite_conn *c = sq_conn_open(db.path, err, sizeof err);
    if (!c)
        return -1;
    if (sqlite3_exec(c->db,
                     "CREATE TABLE t (x INTEGER);"
                     "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 10)"
                     " INSERT INTO t SELECT i FROM n;",
                     NULL, NULL, NULL) != SQLITE_OK)
        return -1;
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    sq_conn_close(*state);
    tmpdb_remove(&db);
    return 0;
}

static sqlite3_stmt *prep(struct sqlite_conn *c, const char *sql)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = sq_cache_prepare(c, sql, &rc);
    assert_non_null(st);
    assert_int_equal(rc, SQLITE_OK);
    return st;
}

/* A statement mid-step survives any number of other statements being prepared, in this
 * unit and in later ones, and the cache stays within its bound. */
static void test_statement_in_use_survives_churn(void **state)
{
    struct sqlite_conn *c = *state;
    sq_conn_unit_start(c);
    sqlite3_stmt *held = prep(c, "SELECT x FROM t ORDER BY x");
    assert_int_equal(sqlite3_step(held), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(held, 0), 1);
    for (int i = 0; i < 1000; i++) {
        if (i % 50 == 0)
            sq_conn_unit_start(c); /* many units pass; held is still mid-step */
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT x + %d FROM t WHERE x = 1", i);
        sqlite3_stmt *st = prep(c, sql);
        assert_int_equal(sqlite3_step(st), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(st, 0), 1 + i);
        sqlite3_reset(st);
        assert_true(c->ncached <= STMT_CACHE);
    }
    assert_int_equal(c->ncached, STMT_CACHE);
    for (int want = 2; want <= 10; want++) {
        assert_int_equal(sqlite3_step(held), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(held, 0), want);
    }
    assert_int_equal(sqlite3_step(held), SQLITE_DONE);
    sqlite3_reset(held);
}

/* Statements handed out during the unit are kept, even when every slot is one of them:
 * the next one is refused rather than a held one freed. */
static void test_statements_of_the_current_unit_are_never_dropped(void **state)
{
    struct sqlite_conn *c = *state;
    sq_conn_unit_start(c);
    sqlite3_stmt *mine[STMT_CACHE];
    for (int i = 0; i < STMT_CACHE; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d + x FROM t WHERE x = 2", i);
        mine[i] = prep(c, sql);
    }
    int rc = SQLITE_OK;
    assert_null(sq_cache_prepare(c, "SELECT 'one too many'", &rc));
    assert_int_not_equal(rc, SQLITE_OK);
    for (int i = 0; i < STMT_CACHE; i++) { /* every one still usable */
        assert_int_equal(sqlite3_step(mine[i]), SQLITE_ROW);
        assert_int_equal(sqlite3_column_int(mine[i], 0), i + 2);
        sqlite3_reset(mine[i]);
    }
    /* in the next unit the least recently used make room again */
    sq_conn_unit_start(c);
    sqlite3_stmt *st = prep(c, "SELECT 'room again'");
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_string_equal((const char *)sqlite3_column_text(st, 0), "room again");
    sqlite3_reset(st);
}

/* The same text gives the same statement back, reset and unbound; the least recently used
 * one is the one dropped. */
static void test_hits_and_lru_order(void **state)
{
    struct sqlite_conn *c = *state;
    sq_conn_unit_start(c);
    sqlite3_stmt *a = prep(c, "SELECT ?1 + x FROM t WHERE x = 3");
    sqlite3_bind_int(a, 1, 100);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW);
    assert_ptr_equal(prep(c, "SELECT ?1 + x FROM t WHERE x = 3"), a);
    assert_int_equal(sqlite3_step(a), SQLITE_ROW); /* reset, and the binding cleared: NULL + 3 */
    assert_int_equal(sqlite3_column_type(a, 0), SQLITE_NULL);
    sqlite3_reset(a);
    for (int i = 0; i < STMT_CACHE - 1; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT %d", i);
        sq_conn_unit_start(c);
        prep(c, sql);
        if (i % 10 == 0) /* a stays recently used */
            assert_ptr_equal(prep(c, "SELECT ?1 + x FROM t WHERE x = 3"), a);
    }
    sq_conn_unit_start(c);
    for (int i = 0; i < 40; i++) {
        char sql[64];
        snprintf(sql, sizeof sql, "SELECT 'new %d'", i);
        prep(c, sql);
    }
    assert_ptr_equal(prep(c, "SELECT ?1 + x FROM t WHERE x = 3"), a); /* not dropped */
}

static sqlite3_stmt *prep_memo(struct sqlite_conn *c, int which, const char *sql)
{
    int rc = SQLITE_OK;
    sqlite3_stmt *st = sq_cache_prepare_memo(c, which, sql, &rc);
    assert_non_null(st);
    assert_int_equal(rc, SQLITE_OK);
    assert_string_equal(sqlite3_sql(st), sql);
    return st;
}

/* A memo statement (the read path's, found without hashing its text) is the cache's own
 * entry: the same statement as by its text, reset and unbound; once the cache has dropped
 * it, asking again prepares the right SQL, never whatever took its slot. */
static void test_memo_follows_the_cache(void **state)
{
    struct sqlite_conn *c = *state;
    const char *sql = "SELECT ?1 + x FROM t WHERE x = 4";
    sq_conn_unit_start(c);
    sqlite3_stmt *m = prep_memo(c, SQ_MEMO_FIND, sql);
    assert_ptr_equal(prep(c, sql), m);
    sqlite3_bind_int(m, 1, 10);
    assert_int_equal(sqlite3_step(m), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(m, 0), 14);
    assert_ptr_equal(prep_memo(c, SQ_MEMO_FIND, sql), m);
    assert_int_equal(sqlite3_step(m), SQLITE_ROW); /* reset and unbound */
    assert_int_equal(sqlite3_column_type(m, 0), SQLITE_NULL);
    sqlite3_reset(m);
    /* many units of other statements: the memo entry is dropped and its slot reused */
    for (int round = 0; round < 3; round++)
        for (int i = 0; i < STMT_CACHE * 2; i++) {
            char other[64];
            snprintf(other, sizeof other, "SELECT %d, 'r%d'", i, round);
            sq_conn_unit_start(c);
            prep(c, other);
            if (i % 7 == 0) /* another memo statement comes and goes too */
                prep_memo(c, SQ_MEMO_LINKS, "SELECT 'links'");
        }
    sq_conn_unit_start(c);
    sqlite3_stmt *again = prep_memo(c, SQ_MEMO_FIND, sql);
    sqlite3_bind_int(again, 1, 1);
    assert_int_equal(sqlite3_step(again), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int(again, 0), 5);
    sqlite3_reset(again);
    assert_true(c->ncached <= STMT_CACHE);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_statement_in_use_survives_churn, setup, teardown),
        cmocka_unit_test_setup_teardown(test_statements_of_the_current_unit_are_never_dropped, setup, teardown),
        cmocka_unit_test_setup_teardown(test_hits_and_lru_order, setup, teardown),
        cmocka_unit_test_setup_teardown(test_memo_follows_the_cache, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
