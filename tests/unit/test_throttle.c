/* The login throttle, with time passed in: limits, windows, attempts in flight, eviction. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "auth/throttle.h"

static int setup(void **state)
{
    struct throttle *t = malloc(sizeof *t);
    throttle_init(t);
    *state = t;
    return 0;
}

static int teardown(void **state)
{
    free(*state);
    return 0;
}

static void fail_n(struct throttle *t, const char *key, int n, long now)
{
    for (int i = 0; i < n; i++) {
        assert_int_equal(throttle_begin(t, key, now), 0);
        throttle_end(t, key, ATTEMPT_FAILED, now);
    }
}

static void test_ten_failures_then_locked_until_window_ends(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", THROTTLE_MAX, 1000);
    assert_int_equal(throttle_begin(t, "EC_a", 1000), THROTTLE_WINDOW);
    assert_int_equal(throttle_begin(t, "EC_a", 1030), THROTTLE_WINDOW - 30);
    assert_int_equal(throttle_begin(t, "EC_a", 1059), 1);
    /* the window is over: a fresh start */
    assert_int_equal(throttle_begin(t, "EC_a", 1060), 0);
    throttle_end(t, "EC_a", ATTEMPT_FAILED, 1060);
    assert_int_equal(throttle_begin(t, "EC_a", 1060), 0);
    throttle_end(t, "EC_a", ATTEMPT_OK, 1060);
}

static void test_other_keys_unaffected(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", THROTTLE_MAX, 1000);
    assert_true(throttle_begin(t, "EC_a", 1001) > 0);
    assert_int_equal(throttle_begin(t, "EC_b", 1001), 0);
    throttle_end(t, "EC_b", ATTEMPT_OK, 1001);
}

static void test_success_resets_and_undecided_does_not(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_a", THROTTLE_MAX - 1, 1000);
    assert_int_equal(throttle_begin(t, "EC_a", 1000), 0);
    throttle_end(t, "EC_a", ATTEMPT_UNDECIDED, 1000); /* a store error counts neither way */
    fail_n(t, "EC_a", 1, 1000);
    assert_true(throttle_begin(t, "EC_a", 1000) > 0);

    fail_n(t, "EC_c", THROTTLE_MAX - 1, 1000);
    assert_int_equal(throttle_begin(t, "EC_c", 1000), 0);
    throttle_end(t, "EC_c", ATTEMPT_OK, 1000);
    fail_n(t, "EC_c", THROTTLE_MAX, 1000); /* the count started again */
    assert_true(throttle_begin(t, "EC_c", 1000) > 0);
}

static void test_attempts_in_flight_count(void **state)
{
    struct throttle *t = *state;
    for (int i = 0; i < THROTTLE_MAX; i++)
        assert_int_equal(throttle_begin(t, "EC_p", 1000), 0);
    /* ten checks running: an eleventh must wait, whatever they turn out to be */
    assert_true(throttle_begin(t, "EC_p", 1000) > 0);
    for (int i = 0; i < THROTTLE_MAX; i++)
        throttle_end(t, "EC_p", ATTEMPT_FAILED, 1000);
    assert_true(throttle_begin(t, "EC_p", 1000) > 0);
}

static void test_locked_key_survives_a_flood_of_other_keys(void **state)
{
    struct throttle *t = *state;
    fail_n(t, "EC_victim", THROTTLE_MAX, 1000);
    char key[32];
    for (int i = 0; i < 3 * THROTTLE_SLOTS; i++) {
        snprintf(key, sizeof key, "EC_flood_%d", i);
        if (throttle_begin(t, key, 1001) == 0)
            throttle_end(t, key, ATTEMPT_FAILED, 1001);
    }
    assert_true(throttle_begin(t, "EC_victim", 1002) > 0);
}

static void test_long_keys_share_a_prefix_slot(void **state)
{
    struct throttle *t = *state;
    char a[200], b[200];
    memset(a, 'x', sizeof a - 1);
    a[sizeof a - 1] = '\0';
    memcpy(b, a, sizeof b);
    b[150] = 'y'; /* differs only past the 64 bytes kept */
    fail_n(t, a, THROTTLE_MAX, 1000);
    assert_true(throttle_begin(t, b, 1000) > 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_ten_failures_then_locked_until_window_ends, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_keys_unaffected, setup, teardown),
        cmocka_unit_test_setup_teardown(test_success_resets_and_undecided_does_not, setup, teardown),
        cmocka_unit_test_setup_teardown(test_attempts_in_flight_count, setup, teardown),
        cmocka_unit_test_setup_teardown(test_locked_key_survives_a_flood_of_other_keys, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_keys_share_a_prefix_slot, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
