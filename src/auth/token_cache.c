#include "auth/token_cache.h"

#include <stdlib.h>
#include <string.h>

struct token_cache *token_cache_new(void) { return calloc(1, sizeof(struct token_cache)); }

void token_cache_free(struct token_cache *c) { free(c); }

/* FNV-1a over the last 32 bytes: a valid token ends in its HMAC, as random as a hash gets.
 * Only verified tokens are ever stored, so nobody without the key can aim at a set. */
static uint64_t token_hash(const char *s, size_t n)
{
    uint64_t h = 14695981039346656037u;
    for (size_t i = n > 32 ? n - 32 : 0; i < n; i++)
        h = (h ^ (unsigned char)s[i]) * 1099511628211u;
    return h;
}

/* A hit is valid while its token has not expired (exp 0: the token has none) and the clock
 * has not gone back before the verification it came from (nbf was checked at that time). */
static bool still_valid(const struct token_cache_entry *e, long now)
{
    return (e->p.exp == 0 || now < e->p.exp) && now >= e->verified_at;
}

const char *token_verify_cached(struct token_cache *c, const struct keyring *k, const char *token, long now,
                                struct principal *out)
{
    size_t len = token ? strlen(token) : 0;
    if (!c || len == 0 || len > TOKEN_CACHE_TOKEN_MAX)
        return token_verify(k, token, now, out);
    struct token_cache_entry *set = c->e[token_hash(token, len) % TOKEN_CACHE_SETS];
    c->tick++;
    for (int w = 0; w < TOKEN_CACHE_WAYS; w++) {
        struct token_cache_entry *e = &set[w];
        if (e->len != len || memcmp(e->token, token, len) != 0)
            continue;
        if (!still_valid(e, now)) {
            e->len = 0; /* expired: the full check below gives the reason */
            break;
        }
        e->used = c->tick;
        c->hits++;
        *out = e->p;
        return NULL;
    }
    c->misses++;
    const char *why = token_verify(k, token, now, out);
    if (why)
        return why;
    struct token_cache_entry *victim = &set[0];
    for (int w = 1; w < TOKEN_CACHE_WAYS; w++)
        if (set[w].len == 0 || (victim->len != 0 && set[w].used < victim->used))
            victim = &set[w];
    victim->used = c->tick;
    victim->len = (uint32_t)len;
    memcpy(victim->token, token, len);
    victim->p = *out;
    victim->verified_at = now;
    return NULL;
}
