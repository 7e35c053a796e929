#include "auth/token.h"

#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool keyring_add(struct keyring *k, const char *secret, size_t len)
{
    if (k->n >= 2 || len < KEY_MIN || len > KEY_MAX)
        return false;
    struct signing_key *key = &k->keys[k->n++];
    memcpy(key->secret, secret, len);
    key->len = len;
    unsigned char h[8];
    crypto_generichash(h, sizeof h, (const unsigned char *)secret, len, NULL, 0);
    sodium_bin2hex(key->kid, sizeof key->kid, h, sizeof h);
    return true;
}

static bool copy_claim(char *dst, const char *src)
{
    if (!src || !*src || strlen(src) > CLAIM_MAX)
        return false;
    strcpy(dst, src);
    return true;
}

/* One base64url segment (RFC 7515 §2: no padding, no other alphabet) parsed as a JSON
 * object, a repeated key being an error (RFC 7515 §5.2 step 4, RFC 7519 §4). NULL and
 * *dup set when a key repeats; NULL otherwise when the segment is no JSON object. */
static json_t *segment_object(const char *seg, size_t len, bool *dup)
{
    *dup = false;
    size_t cap = len / 4 * 3 + 3, n = 0;
    unsigned char *bin = malloc(cap);
    if (!bin)
        return NULL;
    json_t *v = NULL;
    json_error_t err;
    if (sodium_base642bin(bin, cap, seg, len, NULL, &n, NULL, sodium_base64_VARIANT_URLSAFE_NO_PADDING) == 0) {
        v = json_loadb((const char *)bin, n, JSON_REJECT_DUPLICATES, &err);
        *dup = !v && json_error_code(&err) == json_error_duplicate_key;
    }
    free(bin);
    if (v && !json_is_object(v)) {
        json_decref(v);
        v = NULL;
    }
    return v;
}

/* A NumericDate claim (RFC 7519: integer or not).
 * 1: present and numeric; 0: absent; -1: present but not a number. */
static int numeric_claim(json_t *claims, const char *name, double *out)
{
    json_t *v = json_object_get(claims, name);
    if (!v)
        return 0;
    if (!json_is_number(v))
        return -1;
    *out = json_number_value(v);
    return 1;
}

/* A time that fits a long; beyond, converting it is undefined behaviour (found by fuzzing). */
static bool time_in_range(double t) { return t > -9.2e18 && t < 9.2e18; }

const char *token_verify(const struct keyring *k, const char *token, long now, struct principal *out)
{
    return token_verify_ex(k, token, now, false, out);
}

/* The JOSE header: HS256 exactly (RFC 7515 §4.1.1: a case-sensitive string) and no crit,
 * since no extension is understood here (RFC 7515 §4.1.11). */
static const char *check_header(const char *seg, size_t len)
{
    bool dup;
    json_t *h = segment_object(seg, len, &dup);
    if (!h)
        return dup ? "Token header has a duplicate key" : "Malformed auth token";
    const char *why = NULL;
    json_t *alg = json_object_get(h, "alg");
    if (!json_is_string(alg) || strcmp(json_string_value(alg), "HS256") != 0)
        why = "Unsupported token algorithm (HS256 only)";
    else if (json_object_get(h, "crit"))
        why = "Unsupported token header: crit";
    json_decref(h);
    return why;
}

static bool signed_by(const struct keyring *k, const char *token)
{
    for (int i = 0; i < k->n; i++) {
        jwt_t *jwt = NULL;
        int rc = jwt_decode(&jwt, token, k->keys[i].secret, (int)k->keys[i].len);
        bool ok = rc == 0 && jwt && jwt_get_alg(jwt) == JWT_ALG_HS256;
        jwt_free(jwt);
        if (ok)
            return true;
    }
    return false;
}

static const char *check_claims(json_t *claims, long now, bool ignore_exp, struct principal *out)
{
    double t;
    int has = numeric_claim(claims, "exp", &t);
    if (has < 0 || (has && !time_in_range(t)))
        return "Malformed exp claim";
    if (has) {
        out->exp = (long)t;
        if (t <= (double)now && !ignore_exp)
            return "Token has expired";
    }
    has = numeric_claim(claims, "nbf", &t);
    if (has < 0 || (has && !time_in_range(t)))
        return "Malformed nbf claim";
    if (has && t > (double)now + NBF_LEEWAY)
        return "Token is not valid yet (nbf)";
    json_t *b = json_object_get(claims, "b_id");
    if (!b)
        b = json_object_get(claims, "b-id");
    if (!copy_claim(out->b_id, json_string_value(b)))
        return "Token carries no b_id";
    copy_claim(out->client_id, json_string_value(json_object_get(claims, "client_id")));
    copy_claim(out->jti, json_string_value(json_object_get(claims, "jti")));
    copy_claim(out->sid, json_string_value(json_object_get(claims, "sid")));
    out->iat = numeric_claim(claims, "iat", &t) > 0 && time_in_range(t) ? (long)t : 0;
    return NULL;
}

const char *token_verify_ex(const struct keyring *k, const char *token, long now, bool ignore_exp,
                            struct principal *out)
{
    memset(out, 0, sizeof *out);
    if (!token || !*token)
        return "Missing auth token";
    size_t len = strlen(token);
    if (len > TOKEN_MAX)
        return "Malformed auth token";
    const char *d1 = strchr(token, '.'), *d2 = d1 ? strchr(d1 + 1, '.') : NULL;
    if (!d2 || strchr(d2 + 1, '.'))
        return "Malformed auth token";
    const char *why = check_header(token, (size_t)(d1 - token));
    if (why)
        return why;
    if (!signed_by(k, token))
        return "Invalid token signature";
    /* The claims are read from this strict parse, never from libjwt's lenient one. */
    bool dup;
    json_t *claims = segment_object(d1 + 1, (size_t)(d2 - d1 - 1), &dup);
    if (!claims)
        return dup ? "Token payload has a duplicate key" : "Malformed auth token";
    why = check_claims(claims, now, ignore_exp, out);
    json_decref(claims);
    if (why)
        memset(out, 0, sizeof *out);
    return why;
}

char *token_sign(const struct keyring *k, const char *b_id, const char *client_id, long now, long ttl,
                 const char *jti, const char *iss, const char *sid)
{
    jwt_t *jwt = NULL;
    if (k->n == 0 || jwt_new(&jwt))
        return NULL;
    char *out = NULL;
    if (jwt_add_grant(jwt, "b_id", b_id) == 0 && (!client_id || jwt_add_grant(jwt, "client_id", client_id) == 0) &&
        jwt_add_grant_int(jwt, "iat", now) == 0 && jwt_add_grant_int(jwt, "exp", now + ttl) == 0 &&
        (!jti || jwt_add_grant(jwt, "jti", jti) == 0) && (!iss || jwt_add_grant(jwt, "iss", iss) == 0) &&
        (!sid || jwt_add_grant(jwt, "sid", sid) == 0) &&
        jwt_add_header(jwt, "kid", k->keys[0].kid) == 0 &&
        jwt_set_alg(jwt, JWT_ALG_HS256, k->keys[0].secret, (int)k->keys[0].len) == 0)
        out = jwt_encode_str(jwt);
    jwt_free(jwt);
    return out;
}
