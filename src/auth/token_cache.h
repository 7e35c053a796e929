/* A small cache of verified access tokens, one per worker thread, so a client that sends
 * the same token on every request pays for its checks (base64, two strict JSON parses,
 * the HMAC) once. Keyed by the whole token: a hit is a byte-for-byte equal token, whose
 * principal was the result of a full token_verify. exp is checked again on every hit, so
 * an entry never outlives its token; revocation is not the cache's business (the caller
 * checks the revocation snapshot on every request, hit or miss). Only verified tokens are
 * stored, so a client without the signing key cannot fill it. */
#ifndef HIP_TOKEN_CACHE_H
#define HIP_TOKEN_CACHE_H

#include <stdint.h>

#include "auth/token.h"

#define TOKEN_CACHE_SETS 128
#define TOKEN_CACHE_WAYS 2
/* Longer tokens (ours are ~450 bytes) are verified on every request instead. */
#define TOKEN_CACHE_TOKEN_MAX 1024

struct token_cache_entry {
    uint64_t used; /* tick of the last hit or store: the older way of a set is replaced */
    uint32_t len;  /* 0: empty */
    long verified_at; /* the clock when the full check passed */
    struct principal p;
    char token[TOKEN_CACHE_TOKEN_MAX];
};

struct token_cache {
    uint64_t tick;
    uint64_t hits, misses; /* for tests and diagnosis */
    struct token_cache_entry e[TOKEN_CACHE_SETS][TOKEN_CACHE_WAYS];
};

/* A zeroed cache (calloc): only the entries used ever become resident. NULL without memory. */
struct token_cache *token_cache_new(void);
void token_cache_free(struct token_cache *c);

/* token_verify(k, token, now, out), answered from the cache when this exact token was
 * verified before and has not expired at now. Without a cache (NULL) it is token_verify. */
const char *token_verify_cached(struct token_cache *c, const struct keyring *k, const char *token, long now,
                                struct principal *out);

#endif
