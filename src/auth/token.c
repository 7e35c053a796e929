#include "auth/token.h"

#include <errno.h>
#include <jansson.h>
#include <jwt.h>
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

bool keyring_add(struct keyring *k, const char *secret, size_t len)
{
    if (k->n >= 2 || len == 0 || len > KEY_MAX)
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

/* A NumericDate claim (RFC 7519: integer or not). libjwt's integer getter answers 0 for
 * a string without saying so, so the raw JSON is read instead.
 * 1: present and numeric; 0: absent; -1: present but not a number. */
static int numeric_claim(jwt_t *jwt, const char *name, double *out)
{
    char *raw = jwt_get_grants_json(jwt, name);
    if (!raw)
        return 0;
    json_t *v = json_loads(raw, JSON_DECODE_ANY, NULL);
    free(raw);
    int rc = json_is_number(v) ? 1 : -1;
    if (rc > 0)
        *out = json_number_value(v);
    json_decref(v);
    return rc;
}

/* A time that fits a long; beyond, converting it is undefined behaviour (found by fuzzing). */
static bool time_in_range(double t) { return t > -9.2e18 && t < 9.2e18; }

const char *token_verify(const struct keyring *k, const char *token, long now, struct principal *out)
{
    return token_verify_ex(k, token, now, false, out);
}

const char *token_verify_ex(const struct keyring *k, const char *token, long now, bool ignore_exp,
                            struct principal *out)
{
    memset(out, 0, sizeof *out);
    if (!token || !*token)
        return "Missing auth token";
    size_t len = strlen(token), dots = 0;
    if (len > TOKEN_MAX)
        return "Malformed auth token";
    for (size_t i = 0; i < len; i++)
        dots += token[i] == '.';
    if (dots != 2)
        return "Malformed auth token";
    jwt_t *jwt = NULL;
    int rc = EINVAL;
    for (int i = 0; i < k->n && rc; i++) {
        rc = jwt_decode(&jwt, token, k->keys[i].secret, (int)k->keys[i].len);
        if (rc == 0 && jwt_get_alg(jwt) != JWT_ALG_HS256) {
            jwt_free(jwt);
            jwt = NULL;
            return "Unsupported token algorithm (HS256 only)";
        }
    }
    if (rc || !jwt)
        return "Invalid token signature";
    const char *why = NULL;
    double exp;
    int has_exp = numeric_claim(jwt, "exp", &exp);
    if (has_exp > 0 && !time_in_range(exp))
        has_exp = -1;
    if (has_exp < 0) {
        why = "Malformed exp claim";
    } else if (has_exp) {
        out->exp = (long)exp;
        if (exp <= (double)now && !ignore_exp)
            why = "Token has expired";
    }
    if (!why) {
        const char *b = jwt_get_grant(jwt, "b_id");
        if (!b)
            b = jwt_get_grant(jwt, "b-id");
        if (!copy_claim(out->b_id, b))
            why = "Token carries no b_id";
    }
    if (!why) {
        copy_claim(out->client_id, jwt_get_grant(jwt, "client_id"));
        copy_claim(out->jti, jwt_get_grant(jwt, "jti"));
        copy_claim(out->sid, jwt_get_grant(jwt, "sid"));
        double iat;
        out->iat = numeric_claim(jwt, "iat", &iat) > 0 && time_in_range(iat) ? (long)iat : 0;
    }
    jwt_free(jwt);
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
