/* Unit tests of src/auth/token.c: the keyring, HS256 signing and every check of
 * token_verify. Hostile tokens are built by hand with libsodium (HMAC, base64url)
 * and jansson, so nothing here trusts the code under test to build them. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>

#include "auth/token.h"
#include "util/arena.h"

#define NOW 1700000000L
#define SECRET "k3y-0f-the-m0nth-f0r-hipusers-unit-tests"
#define OLD_SECRET "the-previous-secret-still-valid-in-rotation"
#define OTHER_SECRET "an-attacker-guess-at-the-secret-000000000"

#define E_MISSING "Missing auth token"
#define E_MALFORMED "Malformed auth token"
#define E_SIG "Invalid token signature"
#define E_ALG "Unsupported token algorithm (HS256 only)"
#define E_EXPIRED "Token has expired"
#define E_EXP "Malformed exp claim"
#define E_BID "Token carries no b_id"
#define E_NBF "Token is not valid yet (nbf)"
#define E_NBF_BAD "Malformed nbf claim"
#define E_CRIT "Unsupported token header: crit"
#define E_DUP_HEADER "Token header has a duplicate key"
#define E_DUP_PAYLOAD "Token payload has a duplicate key"

/* ---------------------------------------------------------------- fixture */

struct ctx {
    struct arena a;
    struct keyring k;       /* SECRET only */
    struct principal p;
};

static int setup(void **state)
{
    if (sodium_init() < 0)
        return -1;
    struct ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    arena_init(&c->a);
    if (!keyring_add(&c->k, SECRET, strlen(SECRET))) {
        free(c);
        return -1;
    }
    *state = c;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *c = *state;
    arena_release(&c->a);
    free(c);
    return 0;
}

static void decref_cb(void *p) { json_decref(p); }

/* ---------------------------------------------------------------- token building */

static char *b64url(struct ctx *c, const void *bin, size_t len)
{
    size_t cap = sodium_base64_ENCODED_LEN(len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    char *out = arena_alloc(&c->a, cap);
    sodium_bin2base64(out, cap, bin, len, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return out;
}

/* Decodes one base64url segment into arena memory (NUL-terminated). */
static char *unb64url(struct ctx *c, const char *s, size_t len)
{
    char *out = arena_alloc(&c->a, len + 1);
    size_t n = 0;
    assert_int_equal(sodium_base642bin((unsigned char *)out, len, s, len, NULL, &n, NULL,
                                       sodium_base64_VARIANT_URLSAFE_NO_PADDING),
                     0);
    out[n] = '\0';
    return out;
}

static char *b64json(struct ctx *c, const char *json_text)
{
    return b64url(c, json_text, strlen(json_text));
}

enum mac { MAC_NONE, MAC_HS256, MAC_HS512 };

/* header.payload.signature from JSON texts, signed with key (any length) as asked. */
static char *make_token(struct ctx *c, const char *header, const char *payload, enum mac mac, const char *key)
{
    char *signing = arena_printf(&c->a, "%s.%s", b64json(c, header), b64json(c, payload));
    const char *sig = "";
    if (mac == MAC_HS256) {
        unsigned char h[crypto_auth_hmacsha256_BYTES];
        crypto_auth_hmacsha256_state st;
        crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, strlen(key));
        crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
        crypto_auth_hmacsha256_final(&st, h);
        sig = b64url(c, h, sizeof h);
    } else if (mac == MAC_HS512) {
        unsigned char h[crypto_auth_hmacsha512_BYTES];
        crypto_auth_hmacsha512_state st;
        crypto_auth_hmacsha512_init(&st, (const unsigned char *)key, strlen(key));
        crypto_auth_hmacsha512_update(&st, (const unsigned char *)signing, strlen(signing));
        crypto_auth_hmacsha512_final(&st, h);
        sig = b64url(c, h, sizeof h);
    }
    return arena_printf(&c->a, "%s.%s", signing, sig);
}

static const char *const HS256_HEADER = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";

/* A correctly signed HS256 token carrying this payload. */
static char *hs256(struct ctx *c, const char *payload)
{
    return make_token(c, HS256_HEADER, payload, MAC_HS256, SECRET);
}

/* assert_string_equal() would crash on NULL; this reports it as a failure instead. */
static void assert_why(const char *got, const char *want)
{
    if (!got)
        print_error("accepted, wanted \"%s\"\n", want);
    assert_non_null(got);
    assert_string_equal(got, want);
}

static const char *verify(struct ctx *c, const char *token)
{
    return token_verify(&c->k, token, NOW, &c->p);
}

static void expect_reject(struct ctx *c, const char *token, const char *why)
{
    const char *got = verify(c, token);
    if (!got)
        print_error("token accepted: %s\n", token);
    assert_why(got, why);
    assert_string_equal(c->p.b_id, ""); /* no tenant leaks out of a rejected token */
}

static void expect_accept(struct ctx *c, const char *token, const char *b_id)
{
    const char *got = verify(c, token);
    if (got)
        print_error("token rejected (%s): %s\n", got, token);
    assert_null(got);
    assert_string_equal(c->p.b_id, b_id);
}

/* The signed token, owned by the arena. */
static char *sign(struct ctx *c, const struct keyring *k, const char *b_id, const char *client_id, long now,
                  long ttl, const char *jti, const char *iss, const char *sid)
{
    char *t = token_sign(k, b_id, client_id, now, ttl, jti, iss, sid);
    if (t)
        arena_defer(&c->a, free, t);
    return t;
}

/* Splits a token into its three segments (pointers into an arena copy). */
static void split3(struct ctx *c, const char *token, char **h, char **p, char **s)
{
    char *copy = arena_strdup(&c->a, token);
    char *d1 = strchr(copy, '.');
    assert_non_null(d1);
    char *d2 = strchr(d1 + 1, '.');
    assert_non_null(d2);
    assert_null(strchr(d2 + 1, '.'));
    *d1 = *d2 = '\0';
    *h = copy;
    *p = d1 + 1;
    *s = d2 + 1;
}

static json_t *segment_json(struct ctx *c, const char *seg)
{
    char *txt = unb64url(c, seg, strlen(seg));
    json_t *j = json_loads(txt, 0, NULL);
    assert_non_null(j);
    arena_defer(&c->a, decref_cb, j);
    return j;
}

/* ---------------------------------------------------------------- keyring */

static void test_keyring_add(void **state)
{
    (void)state;
    struct keyring k;
    memset(&k, 0, sizeof k);
    assert_false(keyring_add(&k, "", 0));
    assert_int_equal(k.n, 0);
    char big[KEY_MAX + 1];
    memset(big, 'z', sizeof big);
    assert_false(keyring_add(&k, big, KEY_MAX + 1));
    assert_int_equal(k.n, 0);
    assert_true(keyring_add(&k, big, KEY_MAX));
    assert_int_equal(k.n, 1);
    assert_int_equal(k.keys[0].len, KEY_MAX);
    assert_memory_equal(k.keys[0].secret, big, KEY_MAX);
    /* under KEY_MIN bytes: refused (one such key was recovered from a token in 10 ms) */
    assert_false(keyring_add(&k, "s", 1));
    assert_false(keyring_add(&k, big, KEY_MIN - 1));
    assert_int_equal(k.n, 1);
    assert_true(keyring_add(&k, big, KEY_MIN));
    assert_int_equal(k.n, 2);
    assert_false(keyring_add(&k, SECRET, strlen(SECRET))); /* two keys at most */
    assert_int_equal(k.n, 2);
    assert_int_equal(k.keys[1].len, KEY_MIN);
}

static void test_keyring_kid(void **state)
{
    (void)state;
    struct keyring k;
    memset(&k, 0, sizeof k);
    assert_true(keyring_add(&k, SECRET, strlen(SECRET)));
    assert_true(keyring_add(&k, OLD_SECRET, strlen(OLD_SECRET)));
    /* kid = hex of an 8-byte BLAKE2b of the secret */
    unsigned char h[8];
    char want[17];
    crypto_generichash(h, sizeof h, (const unsigned char *)SECRET, strlen(SECRET), NULL, 0);
    sodium_bin2hex(want, sizeof want, h, sizeof h);
    assert_int_equal(strlen(k.keys[0].kid), 16);
    assert_string_equal(k.keys[0].kid, want);
    assert_string_not_equal(k.keys[0].kid, k.keys[1].kid);
    assert_null(strstr(k.keys[0].kid, "k3y")); /* not the secret itself */
    /* the same secret always gets the same kid */
    struct keyring k2;
    memset(&k2, 0, sizeof k2);
    assert_true(keyring_add(&k2, SECRET, strlen(SECRET)));
    assert_string_equal(k2.keys[0].kid, k.keys[0].kid);
}

/* ---------------------------------------------------------------- sign */

static void test_sign_roundtrip(void **state)
{
    struct ctx *c = *state;
    char *t = sign(c, &c->k, "77088166996724", "client-1", NOW, 3600, "jti-1", "hipusers", "sid-1");
    assert_non_null(t);
    assert_null(verify(c, t));
    assert_string_equal(c->p.b_id, "77088166996724");
    assert_string_equal(c->p.client_id, "client-1");
    assert_string_equal(c->p.jti, "jti-1");
    assert_string_equal(c->p.sid, "sid-1");
    assert_int_equal(c->p.iat, NOW);
    assert_int_equal(c->p.exp, NOW + 3600);
    /* still valid one second before expiry, expired at it */
    assert_null(token_verify(&c->k, t, NOW + 3599, &c->p));
    assert_why(token_verify(&c->k, t, NOW + 3600, &c->p), E_EXPIRED);
}

static void test_sign_structure(void **state)
{
    struct ctx *c = *state;
    char *t = sign(c, &c->k, "b1", "cl", NOW, 60, "j", "iss-x", "s");
    char *h, *p, *s;
    split3(c, t, &h, &p, &s);
    json_t *hdr = segment_json(c, h), *pay = segment_json(c, p);
    assert_string_equal(json_string_value(json_object_get(hdr, "alg")), "HS256");
    assert_string_equal(json_string_value(json_object_get(hdr, "kid")), c->k.keys[0].kid);
    assert_string_equal(json_string_value(json_object_get(pay, "b_id")), "b1");
    assert_string_equal(json_string_value(json_object_get(pay, "client_id")), "cl");
    assert_string_equal(json_string_value(json_object_get(pay, "jti")), "j");
    assert_string_equal(json_string_value(json_object_get(pay, "iss")), "iss-x");
    assert_string_equal(json_string_value(json_object_get(pay, "sid")), "s");
    assert_int_equal(json_integer_value(json_object_get(pay, "iat")), NOW);
    assert_int_equal(json_integer_value(json_object_get(pay, "exp")), NOW + 60);
    /* the signature is HMAC-SHA256(secret, header.payload) */
    char *signing = arena_printf(&c->a, "%s.%s", h, p);
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
    crypto_auth_hmacsha256_final(&st, mac);
    assert_string_equal(s, b64url(c, mac, sizeof mac));
}

static void test_sign_optional_claims(void **state)
{
    struct ctx *c = *state;
    char *t = sign(c, &c->k, "b2", NULL, NOW, 10, NULL, NULL, NULL);
    assert_non_null(t);
    char *h, *p, *s;
    split3(c, t, &h, &p, &s);
    json_t *pay = segment_json(c, p);
    assert_null(json_object_get(pay, "client_id"));
    assert_null(json_object_get(pay, "jti"));
    assert_null(json_object_get(pay, "iss"));
    assert_null(json_object_get(pay, "sid"));
    assert_int_equal(json_object_size(pay), 3); /* b_id, iat, exp */
    assert_null(verify(c, t));
    assert_string_equal(c->p.b_id, "b2");
    assert_string_equal(c->p.client_id, "");
    assert_string_equal(c->p.jti, "");
    assert_string_equal(c->p.sid, "");
}

static void test_sign_needs_a_key(void **state)
{
    struct ctx *c = *state;
    struct keyring empty;
    memset(&empty, 0, sizeof empty);
    assert_null(sign(c, &empty, "b", "c", NOW, 10, NULL, NULL, NULL));
}

/* ---------------------------------------------------------------- verify: shape */

static void test_verify_missing_and_malformed(void **state)
{
    struct ctx *c = *state;
    assert_why(verify(c, NULL), E_MISSING);
    assert_why(verify(c, ""), E_MISSING);
    expect_reject(c, "abc", E_MALFORMED);
    expect_reject(c, "a.b", E_MALFORMED);
    expect_reject(c, "a.b.c.d", E_MALFORMED);
    expect_reject(c, "...", E_MALFORMED);
    expect_reject(c, "Bearer", E_MALFORMED);
    char *good = hs256(c, "{\"b_id\":\"b\"}");
    expect_reject(c, arena_printf(&c->a, "%s.", good), E_MALFORMED);
    /* segments that are no base64url JSON object */
    expect_reject(c, "a.b.c", E_MALFORMED);
    expect_reject(c, "..", E_MALFORMED);
}

static void test_verify_length_limit(void **state)
{
    struct ctx *c = *state;
    /* grow a padding claim until the token is exactly TOKEN_MAX, then one byte more */
    char *at_max = NULL;
    for (size_t pad = 6000; pad < 6300 && !at_max; pad++) {
        char *filler = arena_alloc(&c->a, pad + 1);
        memset(filler, 'x', pad);
        filler[pad] = '\0';
        char *t = hs256(c, arena_printf(&c->a, "{\"b_id\":\"big\",\"pad\":\"%s\"}", filler));
        if (strlen(t) == TOKEN_MAX)
            at_max = t;
    }
    assert_non_null(at_max);
    expect_accept(c, at_max, "big");
    char *over = arena_alloc(&c->a, TOKEN_MAX + 2);
    memset(over, 'A', TOKEN_MAX + 1);
    over[10] = over[20] = '.';
    over[TOKEN_MAX + 1] = '\0';
    expect_reject(c, over, E_MALFORMED);
}

/* ---------------------------------------------------------------- verify: signature */

static void test_verify_wrong_secret(void **state)
{
    struct ctx *c = *state;
    expect_reject(c, make_token(c, HS256_HEADER, "{\"b_id\":\"b\"}", MAC_HS256, OTHER_SECRET), E_SIG);
    /* a secret differing only by one trailing byte */
    expect_reject(c, make_token(c, HS256_HEADER, "{\"b_id\":\"b\"}", MAC_HS256, SECRET "x"), E_SIG);
    /* and a token from another keyring */
    struct keyring other;
    memset(&other, 0, sizeof other);
    assert_true(keyring_add(&other, OTHER_SECRET, strlen(OTHER_SECRET)));
    expect_reject(c, sign(c, &other, "b", "c", NOW, 60, NULL, NULL, NULL), E_SIG);
}

static void test_verify_tampered(void **state)
{
    struct ctx *c = *state;
    char *t = hs256(c, "{\"b_id\":\"tenant-a\",\"exp\":1800000000}");
    expect_accept(c, t, "tenant-a");
    char *h, *p, *s;
    split3(c, t, &h, &p, &s);
    /* another tenant's payload under the original signature */
    char *p2 = b64json(c, "{\"b_id\":\"tenant-b\",\"exp\":1800000000}");
    expect_reject(c, arena_printf(&c->a, "%s.%s.%s", h, p2, s), E_SIG);
    /* a later exp under the original signature */
    char *p3 = b64json(c, "{\"b_id\":\"tenant-a\",\"exp\":1900000000}");
    expect_reject(c, arena_printf(&c->a, "%s.%s.%s", h, p3, s), E_SIG);
    /* one flipped signature character */
    char *s2 = arena_strdup(&c->a, s);
    s2[5] = s2[5] == 'A' ? 'B' : 'A';
    expect_reject(c, arena_printf(&c->a, "%s.%s.%s", h, p, s2), E_SIG);
    /* truncated and empty signature */
    expect_reject(c, arena_printf(&c->a, "%s.%s.%.*s", h, p, (int)strlen(s) - 4, s), E_SIG);
    expect_reject(c, arena_printf(&c->a, "%s.%s.", h, p), E_SIG);
    /* a different header under the original signature */
    char *h2 = b64json(c, "{\"typ\":\"JWT\",\"alg\":\"HS256\"}");
    expect_reject(c, arena_printf(&c->a, "%s.%s.%s", h2, p, s), E_SIG);
}

static void test_verify_alg_none(void **state)
{
    struct ctx *c = *state;
    const char *payload = "{\"b_id\":\"victim\",\"exp\":1800000000}";
    const char *headers[] = {"{\"alg\":\"none\",\"typ\":\"JWT\"}", "{\"alg\":\"none\"}", "{\"alg\":\"None\"}",
                             "{\"alg\":\"NONE\",\"typ\":\"JWT\"}", "{\"typ\":\"JWT\"}", "{\"alg\":\"\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++) {
        const char *why = verify(c, make_token(c, headers[i], payload, MAC_NONE, NULL));
        if (!why)
            print_error("accepted unsigned token with header %s\n", headers[i]);
        assert_non_null(why);
        assert_true(strcmp(why, E_SIG) == 0 || strcmp(why, E_ALG) == 0);
        assert_string_equal(c->p.b_id, "");
        /* nor with an HS256 signature appended */
        why = verify(c, make_token(c, headers[i], payload, MAC_HS256, SECRET));
        assert_non_null(why);
        assert_true(strcmp(why, E_SIG) == 0 || strcmp(why, E_ALG) == 0);
        assert_string_equal(c->p.b_id, "");
    }
}

static void test_verify_hs512_rejected(void **state)
{
    struct ctx *c = *state;
    /* correctly signed with the right secret, but not HS256 */
    char *t = make_token(c, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"b_id\":\"b\"}", MAC_HS512, SECRET);
    expect_reject(c, t, E_ALG);
    /* an HS256 header over an HS512 MAC, and the reverse (the header is refused first) */
    expect_reject(c, make_token(c, HS256_HEADER, "{\"b_id\":\"b\"}", MAC_HS512, SECRET), E_SIG);
    expect_reject(c, make_token(c, "{\"alg\":\"HS512\",\"typ\":\"JWT\"}", "{\"b_id\":\"b\"}", MAC_HS256, SECRET),
                  E_ALG);
}

static void test_verify_hs384_rejected(void **state)
{
    struct ctx *c = *state;
    /* libsodium has no SHA-384: let libjwt sign this one */
    jwt_t *jwt = NULL;
    assert_int_equal(jwt_new(&jwt), 0);
    assert_int_equal(jwt_add_grant(jwt, "b_id", "b"), 0);
    assert_int_equal(jwt_set_alg(jwt, JWT_ALG_HS384, (const unsigned char *)SECRET, (int)strlen(SECRET)), 0);
    char *t = jwt_encode_str(jwt);
    jwt_free(jwt);
    assert_non_null(t);
    arena_defer(&c->a, free, t);
    char *h, *p, *s;
    split3(c, t, &h, &p, &s);
    assert_string_equal(json_string_value(json_object_get(segment_json(c, h), "alg")), "HS384");
    expect_reject(c, t, E_ALG);
}

/* ---------------------------------------------------------------- verify: rotation */

static void test_verify_previous_key(void **state)
{
    struct ctx *c = *state;
    struct keyring old, rotated;
    memset(&old, 0, sizeof old);
    memset(&rotated, 0, sizeof rotated);
    assert_true(keyring_add(&old, OLD_SECRET, strlen(OLD_SECRET)));
    assert_true(keyring_add(&rotated, SECRET, strlen(SECRET)));
    assert_true(keyring_add(&rotated, OLD_SECRET, strlen(OLD_SECRET)));

    char *by_old = sign(c, &old, "b-old", "c", NOW, 60, NULL, NULL, NULL);
    char *by_new = sign(c, &rotated, "b-new", "c", NOW, 60, NULL, NULL, NULL);
    assert_null(token_verify(&rotated, by_old, NOW, &c->p));
    assert_string_equal(c->p.b_id, "b-old");
    assert_null(token_verify(&rotated, by_new, NOW, &c->p));
    assert_string_equal(c->p.b_id, "b-new");
    /* the new key signs: the old keyring alone does not accept it */
    assert_why(token_verify(&old, by_new, NOW, &c->p), E_SIG);
    /* the current keyring without the previous key no longer accepts old tokens */
    assert_why(token_verify(&c->k, by_old, NOW, &c->p), E_SIG);
    /* a hand-made token under the previous key */
    char *hand = make_token(c, HS256_HEADER, "{\"b-id\":\"legacy\"}", MAC_HS256, OLD_SECRET);
    assert_null(token_verify(&rotated, hand, NOW, &c->p));
    assert_string_equal(c->p.b_id, "legacy");
    /* a non-HS256 token under the previous key is still refused */
    char *h512 = make_token(c, "{\"alg\":\"HS512\"}", "{\"b_id\":\"x\"}", MAC_HS512, OLD_SECRET);
    assert_why(token_verify(&rotated, h512, NOW, &c->p), E_ALG);
    /* an empty keyring verifies nothing */
    struct keyring none;
    memset(&none, 0, sizeof none);
    assert_why(token_verify(&none, by_new, NOW, &c->p), E_SIG);
}

/* ---------------------------------------------------------------- verify: exp */

static void test_verify_exp(void **state)
{
    struct ctx *c = *state;
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":1699999999}"), E_EXPIRED);
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":1700000000}"), E_EXPIRED); /* exp == now */
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":0}"), E_EXPIRED);
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":-5}"), E_EXPIRED);
    expect_accept(c, hs256(c, "{\"b_id\":\"b\",\"exp\":1700000001}"), "b");
    assert_int_equal(c->p.exp, 1700000001L);
    /* absent exp: accepted, exp reported as 0 */
    expect_accept(c, hs256(c, "{\"b_id\":\"b\"}"), "b");
    assert_int_equal(c->p.exp, 0);
}

/* An exp that is not a number is malformed, whatever its text says. */
static void test_verify_exp_string(void **state)
{
    struct ctx *c = *state;
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":\"1800000000\"}"), E_EXP);
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":\"\"}"), E_EXP);
}

/* A NumericDate may carry a fraction (RFC 7519 §2); one in the past is expired, and
 * an exp of a type that is no date at all must not pass as "no exp". */
static void test_verify_exp_non_integer(void **state)
{
    struct ctx *c = *state;
    const char *why = verify(c, hs256(c, "{\"b_id\":\"b\",\"exp\":1600000000.5}"));
    if (!why)
        print_error("expired fractional exp accepted\n");
    assert_non_null(why);
    why = verify(c, hs256(c, "{\"b_id\":\"b\",\"exp\":true}"));
    if (!why)
        print_error("exp:true accepted\n");
    assert_non_null(why);
    why = verify(c, hs256(c, "{\"b_id\":\"b\",\"exp\":{}}"));
    if (!why)
        print_error("exp:{} accepted\n");
    assert_non_null(why);
}

/* RFC 7519 §2: a NumericDate may be non-integer; one in the future is not expired. */
static void test_verify_exp_fractional_future(void **state)
{
    struct ctx *c = *state;
    expect_accept(c, hs256(c, "{\"b_id\":\"b\",\"exp\":1800000000.5}"), "b");
    assert_int_equal(c->p.exp, 1800000000L);
}

static void test_verify_ex_ignore_exp(void **state)
{
    struct ctx *c = *state;
    char *expired = hs256(c, "{\"b_id\":\"b\",\"exp\":1600000000,\"client_id\":\"cl\"}");
    assert_why(token_verify_ex(&c->k, expired, NOW, false, &c->p), E_EXPIRED);
    assert_null(token_verify_ex(&c->k, expired, NOW, true, &c->p));
    assert_string_equal(c->p.b_id, "b");
    assert_string_equal(c->p.client_id, "cl");
    assert_int_equal(c->p.exp, 1600000000L);
    /* ignoring exp does not ignore anything else */
    char *forged = make_token(c, HS256_HEADER, "{\"b_id\":\"b\",\"exp\":1600000000}", MAC_HS256, OTHER_SECRET);
    assert_why(token_verify_ex(&c->k, forged, NOW, true, &c->p), E_SIG);
    char *nobid = hs256(c, "{\"exp\":1600000000}");
    assert_why(token_verify_ex(&c->k, nobid, NOW, true, &c->p), E_BID);
    char *h512 = make_token(c, "{\"alg\":\"HS512\"}", "{\"b_id\":\"x\",\"exp\":1600000000}", MAC_HS512, SECRET);
    assert_why(token_verify_ex(&c->k, h512, NOW, true, &c->p), E_ALG);
}

/* Ignoring expiry (refresh) must not turn a malformed exp into an acceptable one. */
static void test_verify_ex_ignore_exp_still_checks_exp_type(void **state)
{
    struct ctx *c = *state;
    char *badexp = hs256(c, "{\"b_id\":\"b\",\"exp\":\"soon\"}");
    assert_why(token_verify_ex(&c->k, badexp, NOW, true, &c->p), E_EXP);
    assert_string_equal(c->p.b_id, "");
}

/* ---------------------------------------------------------------- verify: tenant */

static void test_verify_b_id(void **state)
{
    struct ctx *c = *state;
    expect_accept(c, hs256(c, "{\"b_id\":\"77088166996724\"}"), "77088166996724");
    expect_accept(c, hs256(c, "{\"b-id\":\"77088166996724\"}"), "77088166996724");
    expect_accept(c, hs256(c, "{\"b_id\":\"first\",\"b-id\":\"second\"}"), "first"); /* two names, no duplicate */
    expect_reject(c, hs256(c, "{}"), E_BID);
    expect_reject(c, hs256(c, "{\"client_id\":\"c\",\"exp\":1800000000}"), E_BID);
    expect_reject(c, hs256(c, "{\"b_id\":77088166996724}"), E_BID);
    expect_reject(c, hs256(c, "{\"b-id\":77088166996724}"), E_BID);
    expect_reject(c, hs256(c, "{\"b_id\":null}"), E_BID);
    expect_reject(c, hs256(c, "{\"b_id\":true}"), E_BID);
    expect_reject(c, hs256(c, "{\"b_id\":[\"x\"]}"), E_BID);
    expect_reject(c, hs256(c, "{\"b_id\":{\"id\":\"x\"}}"), E_BID);
    expect_reject(c, hs256(c, "{\"b_id\":\"\"}"), E_BID);
    expect_reject(c, hs256(c, "{\"bid\":\"x\"}"), E_BID);
    expect_reject(c, hs256(c, "{\"B_ID\":\"x\"}"), E_BID);
    /* length: CLAIM_MAX allowed, one more refused */
    char id[CLAIM_MAX + 2];
    memset(id, '7', sizeof id);
    id[CLAIM_MAX] = '\0';
    expect_accept(c, hs256(c, arena_printf(&c->a, "{\"b_id\":\"%s\"}", id)), id);
    id[CLAIM_MAX] = '7';
    id[CLAIM_MAX + 1] = '\0';
    expect_reject(c, hs256(c, arena_printf(&c->a, "{\"b_id\":\"%s\"}", id)), E_BID);
    /* expiry is checked before the tenant claim */
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"exp\":1}"), E_EXPIRED);
}

static void test_verify_other_claims(void **state)
{
    struct ctx *c = *state;
    expect_accept(c, hs256(c, "{\"b_id\":\"b\",\"client_id\":\"cid\",\"jti\":\"j-1\",\"sid\":\"s-1\",\"iat\":1699999000}"),
                  "b");
    assert_string_equal(c->p.client_id, "cid");
    assert_string_equal(c->p.jti, "j-1");
    assert_string_equal(c->p.sid, "s-1");
    assert_int_equal(c->p.iat, 1699999000L);
    /* optional claims of the wrong type or too long are dropped, the token still passes */
    char long_claim[CLAIM_MAX + 2];
    memset(long_claim, 'c', sizeof long_claim);
    long_claim[CLAIM_MAX + 1] = '\0';
    expect_accept(c,
                  hs256(c, arena_printf(&c->a, "{\"b_id\":\"b\",\"client_id\":\"%s\",\"jti\":5,\"iat\":\"x\"}",
                                        long_claim)),
                  "b");
    assert_string_equal(c->p.client_id, "");
    assert_string_equal(c->p.jti, "");
    assert_int_equal(c->p.iat, 0);
    /* a principal filled by an earlier success is cleared by a later failure */
    expect_accept(c, hs256(c, "{\"b_id\":\"b\",\"client_id\":\"cid\"}"), "b");
    expect_reject(c, hs256(c, "{\"client_id\":\"cid\"}"), E_BID);
    assert_string_equal(c->p.client_id, "");
}

static void test_verify_garbage_segments(void **state)
{
    struct ctx *c = *state;
    /* valid MACs over contents that are not JWTs */
    char *not_json = arena_printf(&c->a, "%s.%s", b64json(c, HS256_HEADER), b64json(c, "not json"));
    unsigned char mac[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)not_json, strlen(not_json));
    crypto_auth_hmacsha256_final(&st, mac);
    const char *why = verify(c, arena_printf(&c->a, "%s.%s", not_json, b64url(c, mac, sizeof mac)));
    assert_non_null(why);
    assert_string_equal(c->p.b_id, "");
    why = verify(c, hs256(c, "[\"b_id\",\"x\"]"));
    assert_non_null(why);
    assert_string_equal(c->p.b_id, "");
    why = verify(c, make_token(c, "[]", "{\"b_id\":\"x\"}", MAC_HS256, SECRET));
    assert_non_null(why);
    /* characters outside base64url, padding */
    expect_reject(c, "e30=.e30=.e30=", E_MALFORMED);
    expect_reject(c, "!!!.###.$$$", E_MALFORMED);
    char *good = hs256(c, "{\"b_id\":\"x\"}");
    char *h, *p, *sg;
    split3(c, good, &h, &p, &sg);
    expect_reject(c, arena_printf(&c->a, "%s=.%s.%s", h, p, sg), E_MALFORMED);
    /* a payload in the standard base64 alphabet ('+' for '-'), still correctly signed */
    const char *plus_payload = "{\"b_id\":\"x\",\"n\":\">>>\"}"; /* ">>>" encodes as "Pj4-" */
    char *pp = b64json(c, plus_payload);
    assert_non_null(strchr(pp, '-'));
    for (char *q = pp; *q; q++)
        if (*q == '-')
            *q = '+';
    char *signing = arena_printf(&c->a, "%s.%s", b64json(c, HS256_HEADER), pp);
    unsigned char mac2[crypto_auth_hmacsha256_BYTES];
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)SECRET, strlen(SECRET));
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)signing, strlen(signing));
    crypto_auth_hmacsha256_final(&st, mac2);
    const char *w = verify(c, arena_printf(&c->a, "%s.%s", signing, b64url(c, mac2, sizeof mac2)));
    assert_non_null(w);
    assert_string_equal(c->p.b_id, "");
}

/* ---------------------------------------------------------------- verify: JOSE header */

/* RFC 7515 §4.1.1: alg is case-sensitive; libjwt alone takes "hs256". */
static void test_verify_alg_exactly_hs256(void **state)
{
    struct ctx *c = *state;
    const char *payload = "{\"b_id\":\"b\"}";
    const char *headers[] = {"{\"alg\":\"hs256\"}", "{\"alg\":\"Hs256\",\"typ\":\"JWT\"}", "{\"alg\":\"HS256 \"}",
                             "{\"alg\":[\"HS256\"]}", "{\"alg\":null}", "{\"typ\":\"JWT\"}"};
    for (size_t i = 0; i < sizeof headers / sizeof *headers; i++)
        expect_reject(c, make_token(c, headers[i], payload, MAC_HS256, SECRET), E_ALG);
    expect_accept(c, make_token(c, "{\"alg\":\"HS256\"}", payload, MAC_HS256, SECRET), "b");
}

/* RFC 7515 §4.1.11: a crit header names extensions that must be understood; none is. */
static void test_verify_crit_refused(void **state)
{
    struct ctx *c = *state;
    const char *payload = "{\"b_id\":\"b\",\"exp\":1800000000}";
    expect_reject(c, make_token(c, "{\"alg\":\"HS256\",\"crit\":[\"exp\"]}", payload, MAC_HS256, SECRET), E_CRIT);
    expect_reject(c, make_token(c, "{\"alg\":\"HS256\",\"crit\":[\"b64\"],\"b64\":false}", payload, MAC_HS256, SECRET),
                  E_CRIT);
    expect_reject(c, make_token(c, "{\"alg\":\"HS256\",\"crit\":[]}", payload, MAC_HS256, SECRET), E_CRIT);
    /* other header parameters are fine */
    expect_accept(c, make_token(c, "{\"alg\":\"HS256\",\"kid\":\"x\",\"cty\":\"y\"}", payload, MAC_HS256, SECRET), "b");
}

/* RFC 7515 §5.2 and RFC 7519 §4: a JSON object with a repeated member is refused, in
 * the header and in the claims, whatever the values and however the key is spelt. */
static void test_verify_duplicate_keys(void **state)
{
    struct ctx *c = *state;
    const char *payload = "{\"b_id\":\"b\"}";
    expect_reject(c, make_token(c, "{\"alg\":\"HS256\",\"alg\":\"HS256\"}", payload, MAC_HS256, SECRET), E_DUP_HEADER);
    expect_reject(c, make_token(c, "{\"alg\":\"none\",\"alg\":\"HS256\"}", payload, MAC_HS256, SECRET), E_DUP_HEADER);
    expect_reject(c, make_token(c, "{\"alg\":\"HS256\",\"kid\":\"a\",\"kid\":\"b\"}", payload, MAC_HS256, SECRET),
                  E_DUP_HEADER);
    expect_reject(c, hs256(c, "{\"b_id\":\"tenant-b\",\"b_id\":\"tenant-a\"}"), E_DUP_PAYLOAD);
    expect_reject(c, hs256(c, "{\"b_id\":\"a\",\"b_id\":\"a\"}"), E_DUP_PAYLOAD);
    expect_reject(c, hs256(c, "{\"b_id\":\"a\",\"b\\u005fid\":\"b\"}"), E_DUP_PAYLOAD);
    expect_reject(c, hs256(c, "{\"b_id\":\"a\",\"exp\":1,\"exp\":1800000000}"), E_DUP_PAYLOAD);
    expect_reject(c, hs256(c, "{\"b_id\":\"a\",\"x\":{\"y\":1,\"y\":2}}"), E_DUP_PAYLOAD);
    /* a forged one is a bad signature first */
    expect_reject(c, make_token(c, HS256_HEADER, "{\"b_id\":\"a\",\"b_id\":\"b\"}", MAC_HS256, OTHER_SECRET), E_SIG);
}

/* ---------------------------------------------------------------- verify: nbf */

static void test_verify_nbf(void **state)
{
    struct ctx *c = *state;
    /* in the past, now, and up to NBF_LEEWAY seconds ahead (clock skew): fine */
    expect_accept(c, hs256(c, "{\"b_id\":\"b\",\"nbf\":1600000000}"), "b");
    expect_accept(c, hs256(c, "{\"b_id\":\"b\",\"nbf\":1700000000}"), "b");
    expect_accept(c, hs256(c, arena_printf(&c->a, "{\"b_id\":\"b\",\"nbf\":%ld}", NOW + NBF_LEEWAY)), "b");
    expect_accept(c, hs256(c, arena_printf(&c->a, "{\"b_id\":\"b\",\"nbf\":%ld.5}", NOW + NBF_LEEWAY - 1)), "b");
    /* beyond: not valid yet */
    expect_reject(c, hs256(c, arena_printf(&c->a, "{\"b_id\":\"b\",\"nbf\":%ld}", NOW + NBF_LEEWAY + 1)), E_NBF);
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"nbf\":1800000000,\"exp\":1900000000}"), E_NBF);
    expect_reject(c, hs256(c, arena_printf(&c->a, "{\"b_id\":\"b\",\"nbf\":%ld.5}", NOW + NBF_LEEWAY)), E_NBF);
    /* not a number, or out of range */
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"nbf\":\"1600000000\"}"), E_NBF_BAD);
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"nbf\":null}"), E_NBF_BAD);
    expect_reject(c, hs256(c, "{\"b_id\":\"b\",\"nbf\":1e300}"), E_NBF_BAD);
    /* refresh ignores exp, never nbf */
    char *future = hs256(c, "{\"b_id\":\"b\",\"nbf\":1800000000,\"exp\":1600000000}");
    assert_why(token_verify_ex(&c->k, future, NOW, true, &c->p), E_NBF);
    assert_string_equal(c->p.b_id, "");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_keyring_add),
        T(test_keyring_kid),
        T(test_sign_roundtrip),
        T(test_sign_structure),
        T(test_sign_optional_claims),
        T(test_sign_needs_a_key),
        T(test_verify_missing_and_malformed),
        T(test_verify_length_limit),
        T(test_verify_wrong_secret),
        T(test_verify_tampered),
        T(test_verify_alg_none),
        T(test_verify_hs512_rejected),
        T(test_verify_hs384_rejected),
        T(test_verify_previous_key),
        T(test_verify_exp),
        T(test_verify_exp_string),
        T(test_verify_exp_non_integer),
        T(test_verify_exp_fractional_future),
        T(test_verify_ex_ignore_exp),
        T(test_verify_ex_ignore_exp_still_checks_exp_type),
        T(test_verify_b_id),
        T(test_verify_other_claims),
        T(test_verify_garbage_segments),
        T(test_verify_alg_exactly_hs256),
        T(test_verify_crit_refused),
        T(test_verify_duplicate_keys),
        T(test_verify_nbf),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
