/* HS256 access tokens: signing, and the checks every /cdr/v1 request goes through. */
#ifndef HIP_TOKEN_H
#define HIP_TOKEN_H

#include <stdbool.h>
#include <stddef.h>

#define KEY_MAX 256
/* A shorter HMAC key can be guessed offline from one token (a 1-byte one took 10 ms). */
#define KEY_MIN 32
#define TOKEN_MAX 8192
#define CLAIM_MAX 128

struct signing_key {
    unsigned char secret[KEY_MAX];
    size_t len;
    char kid[17]; /* hex of a hash of the secret: names the key without revealing it */
};

/* keys[0] signs; every key verifies (the previous one during a rotation). */
struct keyring {
    struct signing_key keys[2];
    int n;
};

struct principal {
    char b_id[CLAIM_MAX + 1];
    char client_id[CLAIM_MAX + 1];
    char jti[CLAIM_MAX + 1];
    char sid[CLAIM_MAX + 1]; /* the login session a token descends from */
    long iat, exp;
};

/* Adds a key of KEY_MIN..KEY_MAX bytes; false for any other length or a third key. */
bool keyring_add(struct keyring *k, const char *secret, size_t len);

/* Seconds of clock skew allowed for nbf: a token from a server whose clock runs ahead
 * is accepted up to this early. */
#define NBF_LEEWAY 60

/* Checks, in order: the shape; the JOSE header (JSON without duplicate keys, alg exactly
 * "HS256", no crit); the signature; the payload (JSON without duplicate keys); exp when
 * present (unless ignore_exp, for refresh); nbf when present (NBF_LEEWAY); the tenant
 * claim (b_id or b-id). Returns NULL when valid, else the reason a client may see. */
const char *token_verify_ex(const struct keyring *k, const char *token, long now, bool ignore_exp,
                            struct principal *out);
const char *token_verify(const struct keyring *k, const char *token, long now, struct principal *out);

/* A signed token (malloc'd) with b_id, client_id, iat, exp and, when given, jti, iss and sid. */
char *token_sign(const struct keyring *k, const char *b_id, const char *client_id, long now, long ttl,
                 const char *jti, const char *iss, const char *sid);

#endif
