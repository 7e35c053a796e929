/* Unit tests of src/model/ids.c: the pure formatter and the random generator. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "model/ids.h"

#define N_GENERATED 10000

static bool all_digits(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

static bool all_lower_hex(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (!((s[i] >= '0' && s[i] <= '9') || (s[i] >= 'a' && s[i] <= 'f')))
            return false;
    return true;
}

static void assert_user_id(const char *id)
{
    assert_int_equal(strlen(id), 15);
    assert_true(all_digits(id, 15));
    assert_true(id[0] != '0');
}

static void assert_doctor_id(const char *id)
{
    assert_int_equal(strlen(id), 15);
    assert_memory_equal(id, "do", 2);
    assert_true(all_digits(id + 2, 13));
    assert_true(id[2] != '0');
}

static void assert_clinic_id(const char *id)
{
    assert_int_equal(strlen(id), 26);
    assert_memory_equal(id, "c-", 2);
    assert_true(all_lower_hex(id + 2, 24));
}

/* Little-endian hosts: the first 8 bytes are read as a uint64_t. */
static void fill_u64(uint8_t rnd[16], uint64_t v)
{
    memset(rnd, 0, 16);
    memcpy(rnd, &v, sizeof v);
}

/* ---------------------------------------------------------------- id_format */

static void test_format_zero_bytes(void **state)
{
    (void)state;
    uint8_t rnd[16] = {0};
    char out[ID_MAX];
    id_format(R_EKAUSER, rnd, out);
    assert_string_equal(out, "100000000000000");
    id_format(R_DOCTOR, rnd, out);
    assert_string_equal(out, "do1000000000000");
    id_format(R_CLINIC, rnd, out);
    assert_string_equal(out, "c-000000000000000000000000");
}

static void test_format_all_ones(void **state)
{
    (void)state;
    uint8_t rnd[16];
    memset(rnd, 0xff, sizeof rnd);
    char out[ID_MAX];
    /* 2^64-1 = 18446744073709551615; mod 9e14 = 344073709551615; + 1e14 */
    id_format(R_EKAUSER, rnd, out);
    assert_string_equal(out, "444073709551615");
    /* mod 9e12 = 2073709551615; + 1e12 */
    id_format(R_DOCTOR, rnd, out);
    assert_string_equal(out, "do3073709551615");
    id_format(R_CLINIC, rnd, out);
    assert_string_equal(out, "c-ffffffffffffffffffffffff");
}

static void test_format_sequence_bytes(void **state)
{
    (void)state;
    uint8_t rnd[16];
    for (int i = 0; i < 16; i++)
        rnd[i] = (uint8_t)(i + 1);
    char out[ID_MAX];
    uint64_t r;
    memcpy(&r, rnd, sizeof r);
    char want[ID_MAX];
    snprintf(want, sizeof want, "%llu", (unsigned long long)(100000000000000ULL + r % 900000000000000ULL));
    id_format(R_EKAUSER, rnd, out);
    assert_string_equal(out, want);
    snprintf(want, sizeof want, "do%llu", (unsigned long long)(1000000000000ULL + r % 9000000000000ULL));
    id_format(R_DOCTOR, rnd, out);
    assert_string_equal(out, want);
    /* clinics: the first 12 bytes in order, lowercase hex; bytes 12..15 unused */
    id_format(R_CLINIC, rnd, out);
    assert_string_equal(out, "c-0102030405060708090a0b0c");
}

static void test_format_range_edges(void **state)
{
    (void)state;
    uint8_t rnd[16];
    char out[ID_MAX];
    /* largest value below the span: the biggest id */
    fill_u64(rnd, 900000000000000ULL - 1);
    id_format(R_EKAUSER, rnd, out);
    assert_string_equal(out, "999999999999999");
    fill_u64(rnd, 900000000000000ULL); /* wraps to the smallest */
    id_format(R_EKAUSER, rnd, out);
    assert_string_equal(out, "100000000000000");
    fill_u64(rnd, 9000000000000ULL - 1);
    id_format(R_DOCTOR, rnd, out);
    assert_string_equal(out, "do9999999999999");
    fill_u64(rnd, 9000000000000ULL);
    id_format(R_DOCTOR, rnd, out);
    assert_string_equal(out, "do1000000000000");
    fill_u64(rnd, 42);
    id_format(R_EKAUSER, rnd, out);
    assert_string_equal(out, "100000000000042");
}

static void test_format_only_first_bytes_matter(void **state)
{
    (void)state;
    uint8_t a[16], b[16];
    memset(a, 0x5a, sizeof a);
    memcpy(b, a, sizeof b);
    b[8] ^= 0xff;  /* beyond the 8 bytes numbers use */
    b[15] ^= 0xff; /* beyond the 12 bytes clinics use */
    char x[ID_MAX], y[ID_MAX];
    id_format(R_EKAUSER, a, x);
    id_format(R_EKAUSER, b, y);
    assert_string_equal(x, y);
    id_format(R_DOCTOR, a, x);
    id_format(R_DOCTOR, b, y);
    assert_string_equal(x, y);
    /* ...but byte 8 changes a clinic id and byte 15 does not */
    id_format(R_CLINIC, a, x);
    id_format(R_CLINIC, b, y);
    assert_string_not_equal(x, y);
    assert_string_equal(x, "c-5a5a5a5a5a5a5a5a5a5a5a5a");
    assert_string_equal(y, "c-5a5a5a5a5a5a5a5aa55a5a5a");
}

static void test_format_does_not_overrun(void **state)
{
    (void)state;
    uint8_t rnd[16];
    memset(rnd, 0x37, sizeof rnd);
    const enum rkind kinds[] = {R_EKAUSER, R_DOCTOR, R_CLINIC};
    const size_t lens[] = {15, 15, 26};
    for (size_t k = 0; k < 3; k++) {
        char out[ID_MAX + 8];
        memset(out, '#', sizeof out);
        id_format(kinds[k], rnd, out);
        assert_int_equal(strlen(out), lens[k]);
        for (size_t i = lens[k] + 1; i < sizeof out; i++)
            assert_int_equal(out[i], '#');
    }
}

/* ---------------------------------------------------------------- id_generate */

static int cmp_str(const void *a, const void *b) { return strcmp((const char *)a, (const char *)b); }

static void generate_many(enum rkind kind, void (*check)(const char *))
{
    char(*ids)[ID_MAX] = calloc(N_GENERATED, ID_MAX);
    assert_non_null(ids);
    for (size_t i = 0; i < N_GENERATED; i++) {
        id_generate(kind, ids[i]);
        check(ids[i]);
    }
    qsort(ids, N_GENERATED, ID_MAX, cmp_str);
    size_t dups = 0;
    for (size_t i = 1; i < N_GENERATED; i++)
        dups += strcmp(ids[i - 1], ids[i]) == 0;
    /* the first and last sorted ids differ widely: the space is actually used */
    int spread = strcmp(ids[0], ids[N_GENERATED - 1]);
    free(ids);
    assert_int_equal(dups, 0);
    assert_true(spread < 0);
}

static void test_generate_users(void **state)
{
    (void)state;
    generate_many(R_EKAUSER, assert_user_id);
}

static void test_generate_doctors(void **state)
{
    (void)state;
    generate_many(R_DOCTOR, assert_doctor_id);
}

static void test_generate_clinics(void **state)
{
    (void)state;
    generate_many(R_CLINIC, assert_clinic_id);
}

/* Every leading digit 1..9 shows up: the leading digit is not stuck. */
static void test_generate_leading_digits_vary(void **state)
{
    (void)state;
    bool seen[10] = {false};
    char out[ID_MAX];
    for (int i = 0; i < 2000; i++) {
        id_generate(R_EKAUSER, out);
        seen[out[0] - '0'] = true;
    }
    assert_false(seen[0]);
    for (int d = 1; d <= 9; d++)
        assert_true(seen[d]);
}

static int setup_sodium(void **state)
{
    (void)state;
    return sodium_init() < 0 ? -1 : 0;
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_format_zero_bytes),
        cmocka_unit_test(test_format_all_ones),
        cmocka_unit_test(test_format_sequence_bytes),
        cmocka_unit_test(test_format_range_edges),
        cmocka_unit_test(test_format_only_first_bytes_matter),
        cmocka_unit_test(test_format_does_not_overrun),
        cmocka_unit_test(test_generate_users),
        cmocka_unit_test(test_generate_doctors),
        cmocka_unit_test(test_generate_clinics),
        cmocka_unit_test(test_generate_leading_digits_vary),
    };
    return cmocka_run_group_tests(tests, setup_sodium, NULL);
}
