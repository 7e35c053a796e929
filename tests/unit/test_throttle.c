/* The login throttle, with time passed in: limits per client id and address, the cap
 * per address, windows, attempts in flight, eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/throttle.h"

#define HERE "198.51.100.7"
#define THERE "203.0.113.9"

static int setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    struct throttle *t = malloc(sizeof *t);
    if (!t)
        return -1;
    throttle_init(t);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void fail_n(struct throttle *t, const char *key, const char *addr, int n, long now)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(throttle_begin(t, key, addr, now), 0);
        throttle_end(t, key, addr, ATTEMPT_FAILED, now);
    }
}

static void succeed(struct throttle *t, const char *key, const char *addr, long now)
{
    assert_int_equal(throttle_begin(t, key, addr, now), 0);
    throttle_end(t, key, addr, ATTEMPT_OK, now);
}

static void test_ten_failures_then_locked_until_window_ends(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", HERE, THROTTLE_MAX, 1000);
    assert_int_equal(throttle_begin(t, "EC_a", HERE, 1000), THROTTLE_WINDOW);
    assert_int_equal(throttle_begin(t, "EC_a", HERE, 1030), THROTTLE_WINDOW - 30);
    assert_int_equal(throttle_begin(t, "EC_a", HERE, 1059), 1);
    /* the window is over: a fresh start */
    assert_int_equal(throttle_begin(t, "EC_a", HERE, 1060), 0);
    throttle_end(t, "EC_a", HERE, ATTEMPT_FAILED, 1060);
    succeed(t, "EC_a", HERE, 1060);
}

static void test_same_client_id_from_another_address_goes_on(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", HERE, THROTTLE_MAX, 1000);
    assert_true(throttle_begin(t, "EC_a", HERE, 1001) > 0);
    /* the integrator, elsewhere, is not locked out by someone who saw its client id */
    succeed(t, "EC_a", THERE, 1001);
    fail_n(t, "EC_a", THERE, THROTTLE_MAX - 1, 1001);
    succeed(t, "EC_a", THERE, 1001);
    /* and the lock where the failures came from stays */
    assert_true(throttle_begin(t, "EC_a", HERE, 1002) > 0);
    /* IPv6 text is just another address */
    succeed(t, "EC_a", "2001:db8::/64", 1002);
}

static void test_other_client_ids_unaffected(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", HERE, THROTTLE_MAX, 1000);
    assert_true(throttle_begin(t, "EC_a", HERE, 1001) > 0);
    succeed(t, "EC_b", HERE, 1001);
}

static void test_address_cap_over_client_ids(void **state)
{
    struct throttle *t = *state;
    char key[32];
    /* THROTTLE_ADDR_MAX failures spread so that no client id reaches its own limit */
    for (int i = 0; i < THROTTLE_ADDR_MAX; i++) {
        snprintf(key, sizeof key, "EC_spray_%d", i / (THROTTLE_MAX - 1));
        fail_n(t, key, HERE, 1, 1000);
    }
    /* now every client id from there waits, even one never tried and even a right guess */
    assert_int_equal(throttle_begin(t, "EC_never_tried", HERE, 1010), THROTTLE_WINDOW - 10);
    assert_true(throttle_begin(t, "EC_spray_0", HERE, 1010) > 0);
    /* other addresses are not held back, not even for the same client ids */
    succeed(t, "EC_never_tried", THERE, 1010);
    succeed(t, "EC_spray_0", THERE, 1010);
    /* the window ends for the address too */
    succeed(t, "EC_never_tried", HERE, 1060);
}

static void test_success_does_not_clear_the_address_count(void **state)
{
    struct throttle *t = *state;
    char key[32];
    for (int i = 0; i < THROTTLE_ADDR_MAX - 1; i++) {
        snprintf(key, sizeof key, "EC_guess_%d", i);
        fail_n(t, key, HERE, 1, 1000);
    }
    succeed(t, "EC_mine", HERE, 1000); /* one good credential of the attacker's own */
    fail_n(t, "EC_guess_last", HERE, 1, 1000);
    assert_true(throttle_begin(t, "EC_other", HERE, 1000) > 0);
}

static void test_success_resets_and_undecided_does_not(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", HERE, THROTTLE_MAX - 1, 1000);
    assert_int_equal(throttle_begin(t, "EC_a", HERE, 1000), 0);
    throttle_end(t, "EC_a", HERE, ATTEMPT_UNDECIDED, 1000); /* a store error counts neither way */
    fail_n(t, "EC_a", HERE, 1, 1000);
    assert_true(throttle_begin(t, "EC_a", HERE, 1000) > 0);

    fail_n(t, "EC_c", HERE, THROTTLE_MAX - 1, 1000);
    succeed(t, "EC_c", HERE, 1000);
    fail_n(t, "EC_c", HERE, THROTTLE_MAX, 1000); /* the count started again */
    assert_true(throttle_begin(t, "EC_c", HERE, 1000) > 0);
}

static void test_attempts_in_flight_count(void **state)
{
    struct throttle *t = *state;
    for (int i = 0; i < THROTTLE_MAX; i++)
        assert_int_equal(throttle_begin(t, "EC_p", HERE, 1000), 0);
    /* ten checks running: an eleventh must wait, whatever they turn out to be */
    assert_true(throttle_begin(t, "EC_p", HERE, 1000) > 0);
    for (int i = 0; i < THROTTLE_MAX; i++)
        throttle_end(t, "EC_p", HERE, ATTEMPT_FAILED, 1000);
    assert_true(throttle_begin(t, "EC_p", HERE, 1000) > 0);
}

static void test_attempts_in_flight_count_for_the_address(void **state)
{
    struct throttle *t = *state;
    char key[32];
    for (int i = 0; i < THROTTLE_ADDR_MAX; i++) {
        snprintf(key, sizeof key, "EC_par_%d", i);
        assert_int_equal(throttle_begin(t, key, HERE, 1000), 0);
    }
    assert_true(throttle_begin(t, "EC_par_x", HERE, 1000) > 0);
    /* they all succeed: the address may try again */
    for (int i = 0; i < THROTTLE_ADDR_MAX; i++) {
        snprintf(key, sizeof key, "EC_par_%d", i);
        throttle_end(t, key, HERE, ATTEMPT_OK, 1000);
    }
    succeed(t, "EC_par_x", HERE, 1000);
}

static void test_locked_key_survives_a_flood_of_other_keys(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_victim", HERE, THROTTLE_MAX, 1000);
    char key[32], addr[32];
    for (int i = 0; i < 3 * THROTTLE_SLOTS; i++) {
        snprintf(key, sizeof key, "EC_flood_%d", i);
        snprintf(addr, sizeof addr, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        if (throttle_begin(t, key, addr, 1001) == 0)
            throttle_end(t, key, addr, ATTEMPT_FAILED, 1001);
    }
    assert_true(throttle_begin(t, "EC_victim", HERE, 1002) > 0);
}

static void test_long_keys_are_told_apart(void **state)
{
    struct throttle *t = *state;
    char a[200], b[200];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'y'; /* differs only far into the key */
    fail_n(t, a, HERE, THROTTLE_MAX, 1000);
    assert_true(throttle_begin(t, a, HERE, 1000) > 0);
    succeed(t, b, HERE, 1000);
}

static void test_client_id_and_address_do_not_run_together(void **state)
{
    struct throttle *t = *state;
    /* ("EC_a1", "0.0.0.2") and ("EC_a", "10.0.0.2") must be different keys */
    fail_n(t, "EC_a1", "0.0.0.2", THROTTLE_MAX, 1000);
    assert_true(throttle_begin(t, "EC_a1", "0.0.0.2", 1000) > 0);
    succeed(t, "EC_a", "10.0.0.2", 1000);
    succeed(t, "EC_a10.0.0.2", "", 1000);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_ten_failures_then_locked_until_window_ends),
        T(test_same_client_id_from_another_address_goes_on),
        T(test_other_client_ids_unaffected),
        T(test_address_cap_over_client_ids),
        T(test_success_does_not_clear_the_address_count),
        T(test_success_resets_and_undecided_does_not),
        T(test_attempts_in_flight_count),
        T(test_attempts_in_flight_count_for_the_address),
        T(test_locked_key_survives_a_flood_of_other_keys),
        T(test_long_keys_are_told_apart),
        T(test_client_id_and_address_do_not_run_together),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
