/* JWT parsing and the claim checks of token_verify(), with a fixed two-key keyring
 * (the signing key and a previous one, as during a rotation).
 *
 * Input: byte 0 % 4 picks the mode, the rest is its argument:
 *   0  the rest is a token, verified as sent (NUL-terminated at the first NUL);
 *   1  the rest is a JWT payload (claims JSON), signed HS256 with the header
 *      {"alg":"HS256","typ":"JWT"}; byte 1 picks the key (current, previous, or a
 *      key the server does not hold), so the claim checks are reached;
 *   2  like 1 but the rest is "header\npayload", both signed as given (alg confusion);
 *   3  token_sign() round trip: byte 1 sets the ttl, the rest is
 *      b_id NUL client_id NUL jti NUL sid, signed by token_sign() and verified again.
 * Modes 0-2 also run token_verify_ex(ignore_exp=true) (the refresh path).
 *
 * Invariants: an accepted token names a b_id of 1..128 bytes, is HS256, carries a
 * signature the keyring really made, and has not expired (a numeric exp, integer
 * or not, must lie in the future); its header says exactly "HS256", has no crit and
 * no key twice, its payload no key twice and no nbf beyond NOW + NBF_LEEWAY; a token
 * signed with a foreign key is refused; token_sign's output verifies back to what was
 * signed. */
#include "fuzz_common.h"

#include "auth/token.h"

#define NOW 1769000000L /* 2026-01-21 */

static struct keyring KR;
static const char KEY0[] = "fuzz-current-signing-key-0123456789abcdef"; /* 41 bytes */
static const char KEY1[] = "fuzz-previous-key-32-bytes-long!";          /* 32 bytes */
static const char KEYX[] = "a-key-the-server-does-not-hold";

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_sodium_init();
    if (!keyring_add(&KR, KEY0, sizeof KEY0 - 1) || !keyring_add(&KR, KEY1, sizeof KEY1 - 1))
        abort();
    return 0;
}

/* base64url without padding of bin[0..n) appended at out (which has room). */
static size_t b64url(char *out, const void *bin, size_t n)
{
    size_t cap = sodium_base64_ENCODED_LEN(n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_bin2base64(out, cap, bin, n, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return strlen(out);
}

static void hs256(const char *key, size_t keylen, const char *msg, size_t n, unsigned char mac[32])
{
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, (const unsigned char *)key, keylen);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)msg, n);
    crypto_auth_hmacsha256_final(&st, mac);
}

/* header.payload.signature, malloc'd. */
static char *sign(const char *key, size_t keylen, const void *hdr, size_t hlen, const void *pay, size_t plen)
{
    size_t cap = sodium_base64_ENCODED_LEN(hlen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
                 sodium_base64_ENCODED_LEN(plen, sodium_base64_VARIANT_URLSAFE_NO_PADDING) +
                 sodium_base64_ENCODED_LEN(32, sodium_base64_VARIANT_URLSAFE_NO_PADDING) + 4;
    char *t = malloc(cap);
    if (!t)
        abort();
    size_t n = b64url(t, hdr, hlen);
    t[n++] = '.';
    n += b64url(t + n, pay, plen);
    unsigned char mac[32];
    hs256(key, keylen, t, n, mac);
    t[n++] = '.';
    b64url(t + n, mac, sizeof mac);
    return t;
}

/* Did one of the keyring's keys make this token's signature? */
static bool signed_by_keyring(const char *tok)
{
    const char *last = strrchr(tok, '.');
    if (!last)
        return false;
    size_t n = (size_t)(last - tok);
    for (int i = 0; i < KR.n; i++) {
        unsigned char mac[32];
        char want[64];
        hs256((const char *)KR.keys[i].secret, KR.keys[i].len, tok, n, mac);
        b64url(want, mac, sizeof mac);
        if (strcmp(want, last + 1) == 0)
            return true;
    }
    return false;
}

static void check_accepted(const struct principal *p)
{
    size_t n = strlen(p->b_id);
    FUZZ_CHECK(n >= 1 && n <= CLAIM_MAX);
    FUZZ_CHECK(strlen(p->client_id) <= CLAIM_MAX && strlen(p->jti) <= CLAIM_MAX && strlen(p->sid) <= CLAIM_MAX);
    /* exp is reported in whole seconds: a fractional exp just after NOW shows as NOW */
    FUZZ_CHECK(p->exp == 0 || p->exp >= NOW);
}

/* The refresh path skips exp only: whatever token_verify accepts, it accepts alike,
 * and whatever it accepts is properly signed and names a tenant. */
static void check_refresh(const char *tok, bool accepted, const struct principal *p)
{
    struct principal q;
    const char *why = token_verify_ex(&KR, tok, NOW, true, &q);
    if (accepted)
        FUZZ_CHECK(why == NULL && memcmp(p, &q, sizeof q) == 0);
    if (!why) {
        size_t n = strlen(q.b_id);
        FUZZ_CHECK(n >= 1 && n <= CLAIM_MAX);
        FUZZ_CHECK(signed_by_keyring(tok));
    }
}

/* The payload's own exp, read independently of libjwt: a number at or before NOW
 * means the token is expired, whatever its JSON type. */
static bool payload_expired(const void *pay, size_t plen)
{
    json_t *j = json_loadb(pay, plen, 0, NULL);
    json_t *exp = json_object_get(j, "exp");
    bool expired = json_is_number(exp) && json_number_value(exp) <= (double)NOW;
    json_decref(j);
    return expired;
}

/* What an accepted token's header and payload must be, read here with jansson alone. */
static void check_accepted_json(const void *hdr, size_t hlen, const void *pay, size_t plen)
{
    json_t *h = json_loadb(hdr, hlen, JSON_REJECT_DUPLICATES, NULL);
    json_t *p = json_loadb(pay, plen, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(json_is_object(h) && json_is_object(p));
    const char *alg = json_string_value(json_object_get(h, "alg"));
    FUZZ_CHECK(alg && strcmp(alg, "HS256") == 0);
    FUZZ_CHECK(json_object_get(h, "crit") == NULL);
    json_t *nbf = json_object_get(p, "nbf");
    FUZZ_CHECK(!nbf || (json_is_number(nbf) && json_number_value(nbf) <= (double)(NOW + NBF_LEEWAY)));
    json_decref(h);
    json_decref(p);
}

static void verify_signed(const uint8_t *sel, const void *hdr, size_t hlen, const void *pay, size_t plen)
{
    int which = sel ? *sel % 3 : 0;
    const char *key = which == 0 ? KEY0 : which == 1 ? KEY1 : KEYX;
    size_t keylen = which == 0 ? sizeof KEY0 - 1 : which == 1 ? sizeof KEY1 - 1 : sizeof KEYX - 1;
    char *tok = sign(key, keylen, hdr, hlen, pay, plen);
    struct principal p;
    const char *why = token_verify(&KR, tok, NOW, &p);
    if (!why) {
        check_accepted(&p);
        FUZZ_CHECK(which != 2); /* a foreign key's signature must never pass */
        FUZZ_CHECK(!payload_expired(pay, plen));
        check_accepted_json(hdr, hlen, pay, plen);
    }
    check_refresh(tok, why == NULL, &p);
    free(tok);
}

static void round_trip(const uint8_t *data, size_t size)
{
    if (size < 1)
        return;
    long ttl = 1 + data[0] * 60L;
    char *buf = fuzz_cstr(data + 1, size - 1);
    const char *end = buf + (size - 1);
    const char *b_id = buf;
    const char *client_id = b_id + strlen(b_id) < end ? b_id + strlen(b_id) + 1 : NULL;
    const char *jti = client_id && client_id + strlen(client_id) < end ? client_id + strlen(client_id) + 1 : NULL;
    const char *sid = jti && jti + strlen(jti) < end ? jti + strlen(jti) + 1 : NULL;
    char *tok = token_sign(&KR, b_id, client_id, NOW, ttl, jti, "hipusers", sid);
    if (tok) {
        struct principal p;
        const char *why = token_verify(&KR, tok, NOW, &p);
        size_t n = strlen(b_id);
        if (n >= 1 && n <= CLAIM_MAX && strlen(tok) <= TOKEN_MAX) {
            if (why)
                fprintf(stderr, "token_sign output refused: %s\n", why);
            FUZZ_CHECK(why == NULL);
            FUZZ_CHECK(strcmp(p.b_id, b_id) == 0);
            FUZZ_CHECK(p.exp == NOW + ttl && p.iat == NOW);
            if (client_id && strlen(client_id) <= CLAIM_MAX)
                FUZZ_CHECK(strcmp(p.client_id, client_id) == 0);
        } else {
            FUZZ_CHECK(why != NULL);
        }
        free(tok);
    }
    free(buf);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    int mode = data[0] % 4;
    data++;
    size--;
    switch (mode) {
    case 0: {
        char *tok = fuzz_cstr(data, size);
        struct principal p;
        bool ok = token_verify(&KR, tok, NOW, &p) == NULL;
        if (ok) {
            check_accepted(&p);
            FUZZ_CHECK(signed_by_keyring(tok));
        }
        check_refresh(tok, ok, &p);
        free(tok);
        break;
    }
    case 1: {
        static const char HDR[] = "{\"alg\":\"HS256\",\"typ\":\"JWT\"}";
        if (size < 1)
            return 0;
        verify_signed(data, HDR, sizeof HDR - 1, data + 1, size - 1);
        break;
    }
    case 2: {
        if (size < 1)
            return 0;
        const uint8_t *nl = memchr(data + 1, '\n', size - 1);
        if (!nl)
            return 0;
        verify_signed(data, data + 1, (size_t)(nl - (data + 1)), nl + 1, size - 1 - (size_t)(nl - (data + 1)) - 1);
        break;
    }
    case 3:
        round_trip(data, size);
        break;
    }
    return 0;
}
