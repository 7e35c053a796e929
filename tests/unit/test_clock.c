/* Request durations are measured on the monotonic clock, which wall-clock steps (NTP,
 * an operator setting the date) never move: now_us() reads CLOCK_MONOTONIC. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <time.h>

#include <cmocka.h>

#include "http/http.h"

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

static void test_now_us_is_the_monotonic_clock(void **state)
{
    (void)state;
    for (int i = 0; i < 1000; i++) {
        uint64_t before = mono_us();
        uint64_t t = now_us();
        uint64_t after = mono_us();
        assert_true(before <= t);
        assert_true(t <= after);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_now_us_is_the_monotonic_clock)};
    return cmocka_run_group_tests(tests, NULL, NULL);
}
