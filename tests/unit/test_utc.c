/* Times and dates in UTC (src/util/utc.c, included): the same text the C library's gmtime_r
 * and a %04d-%02d-%02d... format give, over four centuries of days (leap years, the century
 * years that are not, the epoch and the days before it) and over random instants. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <cmocka.h>

#include "../../src/util/utc.c"

static void libc_ms(int64_t ms, char out[64])
{
    int64_t secs = ms / 1000 - (ms % 1000 < 0);
    time_t t = (time_t)secs;
    struct tm tm;
    assert_non_null(gmtime_r(&t, &tm));
    snprintf(out, 64, "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday, tm.tm_hour,
             tm.tm_min, tm.tm_sec, (int)(ms - secs * 1000));
}

static void test_every_day_of_four_centuries(void **state)
{
    (void)state;
    /* 1900-01-01 to 2300-01-01, the last second and first second of each day */
    for (int64_t day = -25567; day < 120529; day++) {
        for (int k = 0; k < 2; k++) {
            int64_t ms = day * 86400000 + (k ? 86399999 : 0);
            char mine[32], theirs[64];
            utc_format_ms(ms, mine);
            libc_ms(ms, theirs);
            assert_string_equal(mine, theirs);
            char date[11];
            utc_format_date(ms / 1000 - (ms % 1000 < 0), date);
            assert_int_equal(strlen(date), 10);
            assert_memory_equal(date, theirs, 10);
        }
    }
}

static void test_known_instants(void **state)
{
    (void)state;
    char out[32];
    utc_format_ms(0, out);
    assert_string_equal(out, "1970-01-01T00:00:00.000Z");
    utc_format_ms(951782400000 + 3723004, out); /* 2000-02-29, a leap day of a century year */
    assert_string_equal(out, "2000-02-29T01:02:03.004Z");
    utc_format_ms(-1, out);
    assert_string_equal(out, "1969-12-31T23:59:59.999Z");
    utc_format_ms(UTC_MS_MAX, out);
    assert_string_equal(out, "9999-12-31T23:59:59.999Z");
    utc_format_ms(UTC_MS_MIN, out);
    assert_string_equal(out, "0000-01-01T00:00:00.000Z");
    /* outside the years four digits show: the nearest time they can, never a wrapped year */
    const int64_t past[] = {UTC_MS_MAX + 1, INT64_C(253402300800000) * 10, INT64_MAX};
    for (size_t i = 0; i < sizeof past / sizeof past[0]; i++) {
        utc_format_ms(past[i], out);
        assert_string_equal(out, "9999-12-31T23:59:59.999Z");
        utc_format_date(past[i] / 1000, out);
        assert_string_equal(out, "9999-12-31");
    }
    const int64_t before[] = {UTC_MS_MIN - 1, INT64_MIN};
    for (size_t i = 0; i < sizeof before / sizeof before[0]; i++) {
        utc_format_ms(before[i], out);
        assert_string_equal(out, "0000-01-01T00:00:00.000Z");
        utc_format_date(before[i] / 1000, out);
        assert_string_equal(out, "0000-01-01");
    }
    utc_format_date(4107542400, out); /* 2100-03-01: 2100 has no February 29 */
    assert_string_equal(out, "2100-03-01");
    utc_format_date(4107542399, out);
    assert_string_equal(out, "2100-02-28");
}

static void test_random_instants(void **state)
{
    (void)state;
    srand(20261203);
    for (int i = 0; i < 200000; i++) {
        int64_t ms = ((int64_t)rand() << 20 ^ rand()) % 4102444800000; /* up to 2100 */
        char mine[32], theirs[64];
        utc_format_ms(ms, mine);
        libc_ms(ms, theirs);
        assert_string_equal(mine, theirs);
    }
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_every_day_of_four_centuries),
        cmocka_unit_test(test_known_instants),
        cmocka_unit_test(test_random_instants),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
