/* Unit tests of store_ready on SQLite (GET /readyz): ready when the file answers, its schema is
 * this build's and writes are not paused; each way of not being ready has its reason, and
 * readiness comes back by itself once the cause is gone. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cmocka.h>
#include <sqlite3.h>

#include "store/store.h"
#include "tmpdb_fixture.h"

static struct tmpdb tmp;
#define DB_PATH tmp.path

static int open_store(void **state)
{
    if (!tmpdb_make(&tmp, "ready"))
        return -1;
    char err[512];
    struct store_options opt = {.threads = 2};
    struct store *s = store_open(DB_PATH, &opt, err, sizeof err);
    if (!s) {
        fprintf(stderr, "cannot open %s: %s\n", DB_PATH, err);
        return -1;
    }
    *state = s;
    return 0;
}

static int close_store(void **state)
{
    store_close(*state);
    tmpdb_remove(&tmp);
    return 0;
}

static void expect_ready(struct store *s)
{
    const char *why = "stale";
    int retry = -1;
    assert_int_equal(store_ready(s, &why, &retry), STORE_OK);
    assert_null(why);
    assert_int_equal(retry, 0);
}

static void expect_not_ready(struct store *s, const char *reason_part)
{
    const char *why = NULL;
    int retry = 0;
    assert_int_equal(store_ready(s, &why, &retry), STORE_UNAVAILABLE);
    assert_non_null(why);
    if (!strstr(why, reason_part))
        print_error("reason \"%s\" does not say \"%s\"\n", why, reason_part);
    assert_non_null(strstr(why, reason_part));
    assert_int_equal(retry, 30);
}

static void test_fresh_store_is_ready(void **state) { expect_ready(*state); }

static void test_paused_writes(void **state)
{
    struct store *s = *state;
    assert_int_equal(chmod(DB_PATH, 0400), 0);
    expect_not_ready(s, "writes are paused");
    expect_not_ready(s, "writes are paused"); /* asked again: the same, nothing stuck */
    assert_int_equal(chmod(DB_PATH, 0600), 0);
    expect_ready(s);
}

static void set_version(int v)
{
    sqlite3 *db = NULL;
    assert_int_equal(sqlite3_open(DB_PATH, &db), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    char sql[64];
    snprintf(sql, sizeof sql, "PRAGMA user_version=%d", v);
    assert_int_equal(sqlite3_exec(db, sql, NULL, NULL, NULL), SQLITE_OK);
    sqlite3_close(db);
}

static int get_version(void)
{
    sqlite3 *db = NULL;
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_open(DB_PATH, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "PRAGMA user_version", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int v = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return v;
}

/* Another process migrated the file further (or it is older than this build knows). */
static void test_foreign_schema_version(void **state)
{
    struct store *s = *state;
    int v = get_version();
    assert_true(v > 0);
    set_version(v + 1);
    expect_not_ready(s, "schema");
    set_version(v - 1);
    expect_not_ready(s, "schema");
    set_version(v);
    expect_ready(s);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_fresh_store_is_ready),
        cmocka_unit_test(test_paused_writes),
        cmocka_unit_test(test_foreign_schema_version),
    };
    return cmocka_run_group_tests_name("store_ready", tests, open_store, close_store);
}
