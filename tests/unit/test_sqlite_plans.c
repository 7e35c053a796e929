/* The SQLite backend's list statements are served by indexes: for every filter and every
 * way the backend may reach the rows (enum list_driver), EXPLAIN QUERY PLAN shows the
 * intended index, never a scan of a whole table, and no sort where the index yields
 * creation order. A 1M-record tenant stays fast only if this holds (docs/performance.md). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "store/sqlite_int.h"

static char dir[64], path[128];
static struct sqlite_conn *C;

static int setup(void **state)
{
    (void)state;
    snprintf(dir, sizeof dir, "/tmp/hipusers-plans-XXXXXX");
    if (!mkdtemp(dir))
        return -1;
    snprintf(path, sizeof path, "%s/p.db", dir);
    char err[256];
    struct store *s = store_open(path, NULL, err, sizeof err); /* migrates */
    if (!s)
        return -1;
    store_close(s);
    C = sq_conn_open(path, err, sizeof err);
    return C ? 0 : -1;
}

static int teardown(void **state)
{
    (void)state;
    sq_conn_close(C);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[160];
        snprintf(f, sizeof f, "%s%s", path, suffixes[i]);
        unlink(f);
    }
    rmdir(dir);
    return 0;
}

/* The plan of a list statement, one line per step, "|"-separated. */
static void plan(const struct resource *r, const struct list_filter *f, enum list_driver d, char *out, size_t cap)
{
    struct list_sql q;
    assert_int_equal(sq_list_sql(r, f, d, &q), 0);
    char sql[SQL_MAX + 32];
    snprintf(sql, sizeof sql, "EXPLAIN QUERY PLAN %s", q.sql);
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(C->db, sql, -1, &st, NULL), SQLITE_OK);
    size_t n = 0;
    out[0] = '\0';
    while (sqlite3_step(st) == SQLITE_ROW)
        n += (size_t)snprintf(out + n, cap - n, "%s|", (const char *)sqlite3_column_text(st, 3));
    sqlite3_finalize(st);
}

static void expect(const struct resource *r, struct list_filter f, enum list_driver d, const char *uses, bool sorted)
{
    char p[2048];
    plan(r, &f, d, p, sizeof p);
    if (getenv("SHOW_PLANS"))
        fprintf(stderr, "%s %d: %s\n", r->table, (int)d, p);
    if (!strstr(p, uses))
        fail_msg("%s: expected '%s' in the plan: %s", r->table, uses, p);
    /* "SCAN t" would read the whole table; the only scans allowed are none */
    if (strstr(p, "SCAN "))
        fail_msg("%s: a full scan in the plan: %s", r->table, p);
    if (!sorted && strstr(p, "TEMP B-TREE"))
        fail_msg("%s: a sort where the index gives creation order: %s", r->table, p);
}

#define CLINIC_ID "c-0123456789abcdef01234567"
#define DOCTOR_ID "do1234567890123"

static void test_every_filter_has_its_index(void **state)
{
    (void)state;
    const struct resource *U = resource_get(R_EKAUSER), *D = resource_get(R_DOCTOR), *K = resource_get(R_CLINIC);
    /* no filter: the tenant's live records in creation order */
    for (int i = 0; i < R_COUNT; i++) {
        const struct resource *r = resource_get((enum rkind)i);
        char want[64];
        snprintf(want, sizeof want, "USING INDEX %s_live (b_id=? AND rid>?)", r->table);
        expect(r, (struct list_filter){0}, LD_LIVE, want, false);
    }
    /* equality filters: their own index, creation order from the rowid it ends with */
    expect(U, (struct list_filter){.partner_id = "p"}, LD_KEY, "USING INDEX ekauser_uq_partner_id", false);
    expect(U, (struct list_filter){.mobile = "9876543210"}, LD_KEY, "USING INDEX ekauser_uq_mobile", false);
    expect(U, (struct list_filter){.email_key = "a@x.in"}, LD_KEY, "USING INDEX ekauser_uq_email_key", false);
    expect(U, (struct list_filter){.auth_userid = "s"}, LD_KEY, "USING INDEX ekauser_uq_auth_userid", false);
    expect(D, (struct list_filter){.partner_id = "p"}, LD_KEY, "USING INDEX doctor_uq_partner_id", false);
    expect(D, (struct list_filter){.mobile = "9876543210"}, LD_KEY, "USING INDEX doctor_mobile", false);
    expect(D, (struct list_filter){.email_key = "a@x.in"}, LD_KEY, "USING INDEX doctor_email_key", false);
    expect(K, (struct list_filter){.partner_id = "p"}, LD_KEY, "USING INDEX clinic_uq_partner_id", false);
    expect(D, (struct list_filter){.mobile = "9876543210", .clinic_id = CLINIC_ID, .updated_since = "2024"}, LD_KEY,
           "USING INDEX doctor_mobile", false);
    /* links: from the link table by the other side's id, each record by its id */
    expect(U, (struct list_filter){.clinic_id = CLINIC_ID}, LD_LINK, "SEARCH l USING INDEX user_clinic_rev (b_id=? AND clinic_id=?)", true);
    expect(U, (struct list_filter){.doctor_id = DOCTOR_ID}, LD_LINK, "SEARCH l USING INDEX user_doctor_rev (b_id=? AND doctor_id=?)", true);
    expect(D, (struct list_filter){.clinic_id = CLINIC_ID}, LD_LINK, "SEARCH l USING INDEX doctor_clinic_rev (b_id=? AND clinic_id=?)", true);
    expect(K, (struct list_filter){.doctor_id = DOCTOR_ID}, LD_LINK,
           "SEARCH l USING COVERING INDEX doctor_clinic_key (b_id=? AND doctor_id=?)", true);
    expect(U, (struct list_filter){.clinic_id = CLINIC_ID, .doctor_id = DOCTOR_ID}, LD_LINK,
           "SEARCH t USING INDEX sqlite_autoindex_ekauser_1 (id=?", true);
    /* ... or, when a link or updated_since keeps too many to sort, creation order with checks */
    expect(U, (struct list_filter){.clinic_id = CLINIC_ID, .doctor_id = DOCTOR_ID}, LD_LIVE,
           "USING COVERING INDEX user_doctor_key (b_id=? AND user_id=? AND doctor_id=?)", false);
    expect(K, (struct list_filter){.doctor_id = DOCTOR_ID, .updated_since = "2024"}, LD_LIVE, "USING INDEX clinic_live",
           false);
    /* updated_since: its index */
    expect(U, (struct list_filter){.updated_since = "2024"}, LD_UPDATED, "USING INDEX ekauser_updated", true);
    expect(D, (struct list_filter){.updated_since = "2024"}, LD_UPDATED, "USING INDEX doctor_updated", true);
    expect(K, (struct list_filter){.updated_since = "2024"}, LD_UPDATED, "USING INDEX clinic_updated", true);
    /* the linked record's liveness is checked by its id */
    expect(D, (struct list_filter){.clinic_id = CLINIC_ID}, LD_LINK, "SEARCH o USING INDEX sqlite_autoindex_clinic_1",
           true);
}

/* A list's rows get their links LINKS_MANY records at a time: each view's statement finds
 * the link rows by the owners' ids (an IN list on the link table's index), each linked record
 * by its id; never a scan of the link table or of the linked records' tenant. */
static void test_links_of_a_page_come_by_index(void **state)
{
    (void)state;
    for (int k = 0; k < R_COUNT; k++) {
        const struct resource *r = resource_get((enum rkind)k);
        for (size_t v = 0; v < r->nviews; v++) {
            const struct relation *rel = relation_get(r->views[v].rel);
            const struct resource *t = resource_get(r->views[v].target);
            int side = rel->kind[0] == r->kind ? 0 : 1;
            char sql[SQL_MAX + 32], p[2048], want_l[160], want_t[160];
            memcpy(sql, "EXPLAIN QUERY PLAN ", 19);
            sq_links_many_sql(r, v, sql + 19, SQL_MAX);
            sqlite3_stmt *st;
            assert_int_equal(sqlite3_prepare_v2(C->db, sql, -1, &st, NULL), SQLITE_OK);
            size_t n = 0;
            p[0] = '\0';
            while (sqlite3_step(st) == SQLITE_ROW)
                n += (size_t)snprintf(p + n, sizeof p - n, "%s|", (const char *)sqlite3_column_text(st, 3));
            sqlite3_finalize(st);
            if (getenv("SHOW_PLANS"))
                fprintf(stderr, "%s view %zu: %s\n", r->table, v, p);
            snprintf(want_l, sizeof want_l, "(b_id=? AND %s=?)", rel->col[side]);
            snprintf(want_t, sizeof want_t, "SEARCH t USING INDEX sqlite_autoindex_%s_1 (id=?)", t->table);
            /* the link table first, by the owners' ids; then each linked record by its id */
            const char *l = strstr(p, "SEARCH l USING "), *tt = strstr(p, want_t);
            if (!l || !tt || tt < l || !strstr(l, want_l) || strstr(p, "SCAN "))
                fail_msg("%s view %zu: expected 'SEARCH l ... %s', then '%s', no scan: %s", r->table, v, want_l, want_t,
                         p);
        }
    }
}

static void test_drivers_that_do_not_fit_are_refused(void **state)
{
    (void)state;
    struct list_sql q;
    const struct resource *D = resource_get(R_DOCTOR), *K = resource_get(R_CLINIC);
    assert_int_equal(sq_list_sql(D, &(struct list_filter){0}, LD_LINK, &q), -1);
    assert_int_equal(sq_list_sql(D, &(struct list_filter){0}, LD_UPDATED, &q), -1);
    assert_int_equal(sq_list_sql(K, &(struct list_filter){.mobile = "9876543210"}, LD_KEY, &q), -1);
    assert_int_equal(sq_list_sql(D, &(struct list_filter){.doctor_id = DOCTOR_ID}, LD_LIVE, &q), -1);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_filter_has_its_index),
        cmocka_unit_test(test_links_of_a_page_come_by_index),
        cmocka_unit_test(test_drivers_that_do_not_fit_are_refused),
    };
    return cmocka_run_group_tests_name("sqlite_plans", tests, setup, teardown);
}
