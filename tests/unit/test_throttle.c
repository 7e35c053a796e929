/* The login throttle on a real store (SQLite in a fresh directory), time from an injected
 * clock: the counters' keys (from the signing secret, never the raw values), limits per
 * client id and address, the cap per address, windows, attempts in flight, two servers on
 * one database counting together, and a table that does not grow forever. The store suite
 * (test_store.c) holds the same operations on both backends. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>
#include <sqlite3.h>
#include <stdatomic.h>
#include <unistd.h>

#include "auth/throttle.h"
#include "tmpdb_fixture.h"

#define HERE "198.51.100.7"
#define THERE "203.0.113.9"
#define SECRET "throttle-test-secret-0123456789abcdef0123456789"
#define T0 1714566896000LL

static _Atomic int64_t clock_now = T0;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&clock_now);
}

static void at_s(long secs) { atomic_store(&clock_now, T0 + (int64_t)secs * 1000); }

struct fixture {
    struct tmpdb tmp;
    struct store *s;
    struct throttle t;
};

static struct fixture *F;

static struct store *open_store(const char *db)
{
    struct store_options opt = {.clock_ms = fake_clock, .threads = 2};
    char err[256];
    struct store *s = store_open(db, &opt, err, sizeof err);
    if (!s)
        fprintf(stderr, "cannot open %s: %s\n", db, err);
    return s;
}

static int setup(void **state)
{
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    if (!tmpdb_make(&f->tmp, "throttle"))
        return -1;
    if (!(f->s = open_store(f->tmp.path)))
        return -1;
    throttle_init(&f->t, (const unsigned char *)SECRET, strlen(SECRET));
    at_s(0);
    *state = F = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    tmpdb_remove(&f->tmp);
    free(f);
    return 0;
}

/* ---- one attempt, as the login runs it: a unit to reserve, a unit to end ---- */

static int begin_on(struct store *s, const struct throttle *t, const char *cid, const char *addr)
{
    struct throttle_attempt at;
    throttle_attempt_init(t, &at, cid, addr);
    struct arena a;
    arena_init(&a);
    struct store_unit u = {.fn = throttle_begin_fn, .ctx = &at, .arena = &a};
    assert_int_equal(store_write(s, &u), STORE_OK);
    arena_release(&a);
    return at.wait;
}

static void end_on(struct store *s, const struct throttle *t, const char *cid, const char *addr, enum attempt how)
{
    struct throttle_attempt at;
    throttle_attempt_init(t, &at, cid, addr);
    at.outcome = how;
    struct arena a;
    arena_init(&a);
    struct store_unit u = {.fn = throttle_end_fn, .ctx = &at, .arena = &a};
    assert_int_equal(store_write(s, &u), STORE_OK);
    arena_release(&a);
}

static int begin(const char *cid, const char *addr) { return begin_on(F->s, &F->t, cid, addr); }
static void end(const char *cid, const char *addr, enum attempt how) { end_on(F->s, &F->t, cid, addr, how); }

static void fail_n(const char *cid, const char *addr, int n)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(begin(cid, addr), 0);
        end(cid, addr, ATTEMPT_FAILED);
    }
}

static void succeed(const char *cid, const char *addr)
{
    assert_int_equal(begin(cid, addr), 0);
    end(cid, addr, ATTEMPT_OK);
}

/* ---- the table, read straight from the file ---- */

static sqlite3 *raw(void)
{
    sqlite3 *db;
    assert_int_equal(sqlite3_open_v2(F->tmp.path, &db, SQLITE_OPEN_READONLY, NULL), SQLITE_OK);
    sqlite3_busy_timeout(db, 5000);
    return db;
}

static int rows(void)
{
    sqlite3 *db = raw();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT count(*) FROM login_throttle", -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    int n = sqlite3_column_int(st, 0);
    sqlite3_finalize(st);
    sqlite3_close(db);
    return n;
}

/* ---- keys ---- */

static void test_keys_come_from_the_secret_and_hide_the_values(void **state)
{
    (void)state;
    struct throttle same, other;
    throttle_init(&same, (const unsigned char *)SECRET, strlen(SECRET));
    const char *other_secret = "another-secret-0123456789abcdef0123456789abcdef";
    throttle_init(&other, (const unsigned char *)other_secret, strlen(other_secret));
    struct throttle_attempt a, b, c;
    throttle_attempt_init(&F->t, &a, "EC_a", HERE);
    throttle_attempt_init(&same, &b, "EC_a", HERE);
    throttle_attempt_init(&other, &c, "EC_a", HERE);
    /* every server with the secret names the same counters; another secret, others */
    assert_string_equal(a.pair, b.pair);
    assert_string_equal(a.addr, b.addr);
    assert_string_not_equal(a.pair, c.pair);
    assert_string_not_equal(a.addr, c.addr);
    assert_string_not_equal(a.pair, a.addr);
    assert_int_equal(strlen(a.pair), THROTTLE_KEY_HEX - 1);
    assert_int_equal(strspn(a.pair, "0123456789abcdef"), THROTTLE_KEY_HEX - 1);
    /* the address's counter is the same whatever the client id */
    throttle_attempt_init(&F->t, &b, "EC_b", HERE);
    assert_string_equal(a.addr, b.addr);
    assert_string_not_equal(a.pair, b.pair);
    /* what is stored is the hashes: no client id, no address */
    fail_n("EC_a", HERE, 1);
    sqlite3 *db = raw();
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT * FROM login_throttle", -1, &st, NULL), SQLITE_OK);
    int n = 0;
    while (sqlite3_step(st) == SQLITE_ROW) {
        n++;
        for (int i = 0; i < sqlite3_column_count(st); i++) {
            const char *v = (const char *)sqlite3_column_text(st, i);
            assert_true(v == NULL || (!strstr(v, "EC_a") && !strstr(v, HERE) && !strstr(v, "198.51")));
        }
    }
    sqlite3_finalize(st);
    sqlite3_close(db);
    assert_int_equal(n, 2);
}

static void test_long_keys_are_told_apart(void **state)
{
    (void)state;
    char a[200], b[200];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'y'; /* differs only far into the key */
    fail_n(a, HERE, THROTTLE_MAX);
    assert_true(begin(a, HERE) > 0);
    succeed(b, HERE);
}

static void test_client_id_and_address_do_not_run_together(void **state)
{
    (void)state;
    /* ("EC_a1", "0.0.0.2") and ("EC_a", "10.0.0.2") must be different keys */
    fail_n("EC_a1", "0.0.0.2", THROTTLE_MAX);
    assert_true(begin("EC_a1", "0.0.0.2") > 0);
    succeed("EC_a", "10.0.0.2");
    succeed("EC_a10.0.0.2", "");
}

/* ---- the rules ---- */

static void test_ten_failures_then_locked_until_window_ends(void **state)
{
    (void)state;
    fail_n("EC_a", HERE, THROTTLE_MAX);
    assert_int_equal(begin("EC_a", HERE), THROTTLE_WINDOW);
    at_s(30);
    assert_int_equal(begin("EC_a", HERE), THROTTLE_WINDOW - 30);
    at_s(59);
    assert_int_equal(begin("EC_a", HERE), 1);
    /* the window is over: a fresh start */
    at_s(60);
    assert_int_equal(begin("EC_a", HERE), 0);
    end("EC_a", HERE, ATTEMPT_FAILED);
    succeed("EC_a", HERE);
}

static void test_same_client_id_from_another_address_goes_on(void **state)
{
    (void)state;
    fail_n("EC_a", HERE, THROTTLE_MAX);
    at_s(1);
    assert_true(begin("EC_a", HERE) > 0);
    /* the integrator, elsewhere, is not locked out by someone who saw its client id */
    succeed("EC_a", THERE);
    fail_n("EC_a", THERE, THROTTLE_MAX - 1);
    succeed("EC_a", THERE);
    /* and the lock where the failures came from stays */
    at_s(2);
    assert_true(begin("EC_a", HERE) > 0);
    /* IPv6 text is just another address */
    succeed("EC_a", "2001:db8::/64");
}

static void test_other_client_ids_unaffected(void **state)
{
    (void)state;
    fail_n("EC_a", HERE, THROTTLE_MAX);
    assert_true(begin("EC_a", HERE) > 0);
    succeed("EC_b", HERE);
}

static void test_address_cap_over_client_ids(void **state)
{
    (void)state;
    char key[32];
    /* THROTTLE_ADDR_MAX failures spread so that no client id reaches its own limit */
    for (int i = 0; i < THROTTLE_ADDR_MAX; i++) {
        snprintf(key, sizeof key, "EC_spray_%d", i / (THROTTLE_MAX - 1));
        fail_n(key, HERE, 1);
    }
    /* now every client id from there waits, even one never tried and even a right guess */
    at_s(10);
    assert_int_equal(begin("EC_never_tried", HERE), THROTTLE_WINDOW - 10);
    assert_true(begin("EC_spray_0", HERE) > 0);
    /* other addresses are not held back, not even for the same client ids */
    succeed("EC_never_tried", THERE);
    succeed("EC_spray_0", THERE);
    /* the window ends for the address too */
    at_s(60);
    succeed("EC_never_tried", HERE);
}

static void test_success_does_not_clear_the_address_count(void **state)
{
    (void)state;
    char key[32];
    for (int i = 0; i < THROTTLE_ADDR_MAX - 1; i++) {
        snprintf(key, sizeof key, "EC_guess_%d", i);
        fail_n(key, HERE, 1);
    }
    succeed("EC_mine", HERE); /* one good credential of the attacker's own */
    fail_n("EC_guess_last", HERE, 1);
    assert_true(begin("EC_other", HERE) > 0);
}

static void test_success_resets_and_undecided_does_not(void **state)
{
    (void)state;
    fail_n("EC_a", HERE, THROTTLE_MAX - 1);
    assert_int_equal(begin("EC_a", HERE), 0);
    end("EC_a", HERE, ATTEMPT_UNDECIDED); /* a store error counts neither way */
    fail_n("EC_a", HERE, 1);
    assert_true(begin("EC_a", HERE) > 0);

    fail_n("EC_c", HERE, THROTTLE_MAX - 1);
    succeed("EC_c", HERE);
    fail_n("EC_c", HERE, THROTTLE_MAX); /* the count started again */
    assert_true(begin("EC_c", HERE) > 0);
}

static void test_attempts_in_flight_count(void **state)
{
    (void)state;
    for (int i = 0; i < THROTTLE_MAX; i++)
        assert_int_equal(begin("EC_p", HERE), 0);
    /* ten checks running: an eleventh must wait, whatever they turn out to be */
    assert_true(begin("EC_p", HERE) > 0);
    for (int i = 0; i < THROTTLE_MAX; i++)
        end("EC_p", HERE, ATTEMPT_FAILED);
    assert_true(begin("EC_p", HERE) > 0);
}

static void test_attempts_in_flight_count_for_the_address(void **state)
{
    (void)state;
    char key[32];
    for (int i = 0; i < THROTTLE_ADDR_MAX; i++) {
        snprintf(key, sizeof key, "EC_par_%d", i);
        assert_int_equal(begin(key, HERE), 0);
    }
    assert_true(begin("EC_par_x", HERE) > 0);
    /* they all succeed: the address may try again */
    for (int i = 0; i < THROTTLE_ADDR_MAX; i++) {
        snprintf(key, sizeof key, "EC_par_%d", i);
        end(key, HERE, ATTEMPT_OK);
    }
    succeed("EC_par_x", HERE);
}

/* ---- several servers, one database ---- */

static void test_two_servers_count_together(void **state)
{
    (void)state;
    struct store *second = open_store(F->tmp.path);
    assert_non_null(second);
    struct throttle t2, stranger;
    throttle_init(&t2, (const unsigned char *)SECRET, strlen(SECRET));
    const char *other_secret = "another-secret-0123456789abcdef0123456789abcdef";
    throttle_init(&stranger, (const unsigned char *)other_secret, strlen(other_secret));
    /* failures alternate between the servers: the limit is over both together */
    for (int i = 0; i < THROTTLE_MAX; i++) {
        struct store *s = i % 2 ? second : F->s;
        const struct throttle *t = i % 2 ? &t2 : &F->t;
        assert_int_equal(begin_on(s, t, "EC_a", HERE), 0);
        end_on(s, t, "EC_a", HERE, ATTEMPT_FAILED);
    }
    at_s(5);
    assert_int_equal(begin_on(F->s, &F->t, "EC_a", HERE), THROTTLE_WINDOW - 5);
    assert_int_equal(begin_on(second, &t2, "EC_a", HERE), THROTTLE_WINDOW - 5);
    /* an attempt in flight on one server counts on the other */
    assert_int_equal(begin_on(second, &t2, "EC_b", HERE), 0);
    fail_n("EC_b", HERE, THROTTLE_MAX - 1);
    assert_true(begin("EC_b", HERE) > 0);
    end_on(second, &t2, "EC_b", HERE, ATTEMPT_OK);
    succeed("EC_b", HERE);
    /* a server with another secret names other counters: why every server needs the same one */
    assert_int_equal(begin_on(second, &stranger, "EC_a", HERE), 0);
    end_on(second, &stranger, "EC_a", HERE, ATTEMPT_FAILED);
    store_close(second);
    /* and the counts outlive the servers: a store opened again still locks */
    store_close(F->s);
    F->s = open_store(F->tmp.path);
    assert_non_null(F->s);
    assert_int_equal(begin("EC_a", HERE), THROTTLE_WINDOW - 5);
}

/* ---- the table ---- */

static void test_a_flood_of_other_keys_frees_no_lock(void **state)
{
    (void)state;
    fail_n("EC_victim", HERE, THROTTLE_MAX);
    char key[32], addr[32];
    at_s(1);
    for (int i = 0; i < 300; i++) {
        snprintf(key, sizeof key, "EC_flood_%d", i);
        snprintf(addr, sizeof addr, "10.0.%d.%d", i / 256, i % 256);
        if (begin(key, addr) == 0)
            end(key, addr, ATTEMPT_FAILED);
    }
    assert_int_equal(rows(), 2 + 2 * 300);
    assert_int_equal(begin("EC_victim", HERE), THROTTLE_WINDOW - 1);
}

static void test_counters_over_are_deleted(void **state)
{
    (void)state;
    char key[32], addr[32];
    for (int i = 0; i < 100; i++) {
        snprintf(key, sizeof key, "EC_old_%d", i);
        snprintf(addr, sizeof addr, "10.1.%d.%d", i / 256, i % 256);
        fail_n(key, addr, 1);
    }
    assert_int_equal(rows(), 200);
    /* within two windows a counter may still matter (attempts in flight): kept */
    at_s(2 * THROTTLE_WINDOW - 1);
    succeed("EC_new", HERE);
    assert_int_equal(rows(), 202);
    /* after, each attempt deletes a few: more than it makes, so the table drains */
    at_s(2 * THROTTLE_WINDOW + 1);
    int before = rows();
    succeed("EC_new", HERE);
    assert_true(rows() < before);
    for (int i = 0; i < 40; i++)
        succeed("EC_new", THERE);
    assert_int_equal(rows(), 4); /* EC_new's at HERE and THERE, and the two addresses' */
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        T(test_keys_come_from_the_secret_and_hide_the_values),
        T(test_long_keys_are_told_apart),
        T(test_client_id_and_address_do_not_run_together),
        T(test_ten_failures_then_locked_until_window_ends),
        T(test_same_client_id_from_another_address_goes_on),
        T(test_other_client_ids_unaffected),
        T(test_address_cap_over_client_ids),
        T(test_success_does_not_clear_the_address_count),
        T(test_success_resets_and_undecided_does_not),
        T(test_attempts_in_flight_count),
        T(test_attempts_in_flight_count_for_the_address),
        T(test_two_servers_count_together),
        T(test_a_flood_of_other_keys_frees_no_lock),
        T(test_counters_over_are_deleted),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
