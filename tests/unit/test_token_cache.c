/* Unit tests of src/auth/token_cache.c: a cached answer is always the answer token_verify
 * would give at that time (same principal, same refusals), keyed by the whole token, never
 * past exp, and the cache stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "auth/token_cache.h"

#define NOW 1700000000L
#define SECRET "k3y-0f-the-m0nth-f0r-hipusers-unit-tests"
#define OTHER_SECRET "an-attacker-guess-at-the-secret-000000000"

struct ctx {
    struct keyring k, other;
    struct token_cache *c;
};

static int setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    struct ctx *x = calloc(1, sizeof *x);
    if (!x || !keyring_add(&x->k, SECRET, strlen(SECRET)) ||
        !keyring_add(&x->other, OTHER_SECRET, strlen(OTHER_SECRET)) || !(x->c = token_cache_new())) {
        free(x);
        return -1;
    }
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *x = *state;
    token_cache_free(x->c);
    free(x);
    return 0;
}

/* An HS256 token over these JSON texts, signed here (not by the code under test). */
static char *hand_token(const char *payload, const char *key)
{
    static const char header[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
    const int v = sodium_base64_VARIANT_URLSAFE_NO_PADDING;
    char h64[128], p64[4096], s64[64];
    sodium_bin2base64(h64, sizeof h64, (const unsigned char *)header, strlen(header), v);
    sodium_bin2base64(p64, sizeof p64, (const unsigned char *)payload, strlen(payload), v);
    size_t n = strlen(h64) + strlen(p64) + 2;
    char *signing = malloc(n);
    snprintf(signing, n, "%s.%s", h64, p64);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
    crypto_auth_hmacsha256_final(&st, mac);
    sodium_bin2base64(s64, sizeof s64, mac, sizeof mac, v);
    size_t total = n + strlen(s64) + 1;
    char *tok = malloc(total);
    snprintf(tok, total, "%s.%s", signing, s64);
    free(signing);
    return tok;
}

static void assert_same_principal(const struct principal *a, const struct principal *b)
{
    assert_string_equal(a->b_id, b->b_id);
    assert_string_equal(a->client_id, b->client_id);
    assert_string_equal(a->jti, b->jti);
    assert_string_equal(a->sid, b->sid);
    assert_int_equal(a->iat, b->iat);
    assert_int_equal(a->exp, b->exp);
}

/* The cache's answer equals token_verify's, for the reason and the principal. */
static const char *check(struct ctx *x, const char *token, long now)
{
    struct principal want, got;
    const char *why_want = token_verify(&x->k, token, now, &want);
    const char *why = token_verify_cached(x->c, &x->k, token, now, &got);
    if (why_want || why) {
        assert_non_null(why);
        assert_non_null(why_want);
        assert_string_equal(why, why_want);
    } else {
        assert_same_principal(&got, &want);
    }
    return why;
}

static void test_hit_gives_the_verified_principal(void **state)
{
    struct ctx *x = *state;
    char *t = token_sign(&x->k, "1000000000000001", "EC_client", NOW, 1800, "jti-1", "hipusers", "sid-1");
    assert_non_null(t);
    assert_null(check(x, t, NOW));
    assert_int_equal(x->c->misses, 1);
    for (int i = 0; i < 5; i++)
        assert_null(check(x, t, NOW + i));
    assert_int_equal(x->c->hits, 5);
    assert_int_equal(x->c->misses, 1);
    struct principal p;
    assert_null(token_verify_cached(x->c, &x->k, t, NOW, &p));
    assert_string_equal(p.b_id, "1000000000000001");
    assert_string_equal(p.client_id, "EC_client");
    assert_string_equal(p.sid, "sid-1");
    assert_int_equal(p.exp, NOW + 1800);
    free(t);
}

static void test_expiry_is_checked_on_every_hit(void **state)
{
    struct ctx *x = *state;
    char *t = token_sign(&x->k, "1000000000000002", NULL, NOW, 10, NULL, NULL, NULL);
    assert_null(check(x, t, NOW));
    assert_null(check(x, t, NOW + 9));
    assert_int_equal(x->c->hits, 1);
    assert_string_equal(check(x, t, NOW + 10), "Token has expired");
    assert_string_equal(check(x, t, NOW + 11), "Token has expired");
    assert_int_equal(x->c->hits, 1);
    free(t);
}

/* exp 1000.5 expires after second 1000: a cached entry may only be stricter, and then the
 * full check answers. */
static void test_fractional_exp(void **state)
{
    struct ctx *x = *state;
    char payload[128];
    snprintf(payload, sizeof payload, "{\"b_id\":\"b1\",\"exp\":%ld.5}", NOW + 5);
    char *t = hand_token(payload, SECRET);
    for (long now = NOW; now <= NOW + 7; now++)
        check(x, t, now);
    assert_null(check(x, t, NOW + 5));
    assert_string_equal(check(x, t, NOW + 6), "Token has expired");
    free(t);
}

static void test_no_exp_stays_valid(void **state)
{
    struct ctx *x = *state;
    char *t = hand_token("{\"b_id\":\"b-noexp\"}", SECRET);
    assert_null(check(x, t, NOW));
    assert_null(check(x, t, NOW + 100000000L));
    assert_int_equal(x->c->hits, 1);
    free(t);
}

/* nbf was checked at the first verification: a clock set back before it means a full check. */
static void test_clock_going_back_rechecks_nbf(void **state)
{
    struct ctx *x = *state;
    char payload[128];
    snprintf(payload, sizeof payload, "{\"b_id\":\"b1\",\"nbf\":%ld}", NOW);
    char *t = hand_token(payload, SECRET);
    assert_null(check(x, t, NOW));
    assert_string_equal(check(x, t, NOW - 61), "Token is not valid yet (nbf)");
    assert_int_equal(x->c->hits, 0);
    assert_null(check(x, t, NOW + 1));
    free(t);
}

/* Keyed by every byte: a token that differs anywhere is checked in full, never answered
 * from the entry of the token it resembles. */
static void test_whole_token_is_the_key(void **state)
{
    struct ctx *x = *state;
    char *t = token_sign(&x->k, "1000000000000003", "EC_a", NOW, 1800, NULL, NULL, NULL);
    assert_null(check(x, t, NOW));
    size_t n = strlen(t);
    for (size_t i = 0; i < n; i++) {
        if (t[i] == '.')
            continue;
        char *bad = strdup(t);
        bad[i] = bad[i] == 'A' ? 'B' : 'A';
        check(x, bad, NOW); /* whatever the full check says; never a hit */
        free(bad);
    }
    char *shorter = strndup(t, n - 1);
    assert_non_null(check(x, shorter, NOW));
    free(shorter);
    /* signed with another key: refused even though a valid token of the same tenant is cached */
    char *forged = token_sign(&x->other, "1000000000000003", "EC_a", NOW, 1800, NULL, NULL, NULL);
    assert_string_equal(check(x, forged, NOW), "Invalid token signature");
    free(forged);
    assert_int_equal(x->c->hits, 0);
    free(t);
}

static void test_failures_are_not_cached(void **state)
{
    struct ctx *x = *state;
    char *forged = hand_token("{\"b_id\":\"b1\"}", OTHER_SECRET);
    for (int i = 0; i < 3; i++)
        assert_string_equal(check(x, forged, NOW), "Invalid token signature");
    assert_int_equal(x->c->hits, 0);
    assert_string_equal(check(x, "", NOW), "Missing auth token");
    struct principal p;
    assert_string_equal(token_verify_cached(x->c, &x->k, NULL, NOW, &p), "Missing auth token");
    for (int s = 0; s < TOKEN_CACHE_SETS; s++)
        for (int w = 0; w < TOKEN_CACHE_WAYS; w++)
            assert_int_equal(x->c->e[s][w].len, 0);
    free(forged);
}

/* Longer than an entry holds: verified in full every time, same answers. */
static void test_long_token_is_not_cached(void **state)
{
    struct ctx *x = *state;
    char payload[2048];
    int n = snprintf(payload, sizeof payload, "{\"b_id\":\"b1\",\"pad\":\"");
    while (n < 1200)
        payload[n++] = 'x';
    snprintf(payload + n, sizeof payload - (size_t)n, "\"}");
    char *t = hand_token(payload, SECRET);
    assert_true(strlen(t) > TOKEN_CACHE_TOKEN_MAX);
    for (int i = 0; i < 3; i++)
        assert_null(check(x, t, NOW));
    assert_int_equal(x->c->hits, 0);
    free(t);
}

/* Far more tokens than entries: every answer is still right, recently used tokens stay. */
static void test_many_tokens_bounded(void **state)
{
    struct ctx *x = *state;
    enum { N = TOKEN_CACHE_SETS * TOKEN_CACHE_WAYS * 4 };
    char **toks = calloc(N, sizeof *toks);
    for (int i = 0; i < N; i++) {
        char b_id[32];
        snprintf(b_id, sizeof b_id, "b%d", i);
        toks[i] = token_sign(&x->k, b_id, NULL, NOW, 1800, NULL, NULL, NULL);
        struct principal p;
        assert_null(token_verify_cached(x->c, &x->k, toks[i], NOW, &p));
        assert_string_equal(p.b_id, b_id);
    }
    for (int i = 0; i < N; i++) {
        char b_id[32];
        snprintf(b_id, sizeof b_id, "b%d", i);
        struct principal p;
        assert_null(token_verify_cached(x->c, &x->k, toks[i], NOW, &p));
        assert_string_equal(p.b_id, b_id);
    }
    /* one hot token among them stays cached */
    uint64_t hits = x->c->hits;
    for (int i = 0; i < 10; i++)
        assert_null(check(x, toks[N - 1], NOW));
    assert_int_equal(x->c->hits, hits + 10);
    for (int i = 0; i < N; i++)
        free(toks[i]);
    free(toks);
}

static void test_without_cache_is_token_verify(void **state)
{
    struct ctx *x = *state;
    char *t = token_sign(&x->k, "b-nocache", NULL, NOW, 10, NULL, NULL, NULL);
    struct principal p;
    assert_null(token_verify_cached(NULL, &x->k, t, NOW, &p));
    assert_string_equal(p.b_id, "b-nocache");
    assert_string_equal(token_verify_cached(NULL, &x->k, t, NOW + 10, &p), "Token has expired");
    free(t);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_gives_the_verified_principal, setup, teardown),
        cmocka_unit_test_setup_teardown(test_expiry_is_checked_on_every_hit, setup, teardown),
        cmocka_unit_test_setup_teardown(test_fractional_exp, setup, teardown),
        cmocka_unit_test_setup_teardown(test_no_exp_stays_valid, setup, teardown),
        cmocka_unit_test_setup_teardown(test_clock_going_back_rechecks_nbf, setup, teardown),
        cmocka_unit_test_setup_teardown(test_whole_token_is_the_key, setup, teardown),
        cmocka_unit_test_setup_teardown(test_failures_are_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_long_token_is_not_cached, setup, teardown),
        cmocka_unit_test_setup_teardown(test_many_tokens_bounded, setup, teardown),
        cmocka_unit_test_setup_teardown(test_without_cache_is_token_verify, setup, teardown),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
