#include "auth/throttle.h"

#include <sodium.h>
#include <string.h>

#define KDF_LABEL "hipusers login throttle v1"

void throttle_init(struct throttle *t, const unsigned char *secret, size_t len)
{
    /* BLAKE2b of a label and the secret: nothing else hashes this input (the key id hashes the
     * secret alone), and the hash does not lead back to the secret */
    crypto_generichash_state st;
    crypto_generichash_init(&st, NULL, 0, sizeof t->hash_key);
    crypto_generichash_update(&st, (const unsigned char *)KDF_LABEL, sizeof KDF_LABEL);
    crypto_generichash_update(&st, secret, len);
    crypto_generichash_final(&st, t->hash_key, sizeof t->hash_key);
}

/* The counter key of (client id, address), or of the address alone when client_id is NULL. */
static void key_of(const struct throttle *t, const char *client_id, const char *addr, char out[THROTTLE_KEY_HEX])
{
    unsigned char h[(THROTTLE_KEY_HEX - 1) / 2];
    crypto_generichash_state st;
    crypto_generichash_init(&st, t->hash_key, sizeof t->hash_key, sizeof h);
    unsigned char kind = client_id ? 'c' : 'a';
    crypto_generichash_update(&st, &kind, 1);
    crypto_generichash_update(&st, (const unsigned char *)addr, strlen(addr) + 1);
    if (client_id)
        crypto_generichash_update(&st, (const unsigned char *)client_id, strlen(client_id));
    crypto_generichash_final(&st, h, sizeof h);
    sodium_bin2hex(out, THROTTLE_KEY_HEX, h, sizeof h);
}

void throttle_attempt_init(const struct throttle *t, struct throttle_attempt *at, const char *client_id,
                           const char *addr)
{
    memset(at, 0, sizeof *at);
    key_of(t, client_id, addr, at->pair);
    key_of(t, NULL, addr, at->addr);
    at->outcome = ATTEMPT_UNDECIDED;
}

enum store_status throttle_begin_fn(struct store_tx *tx, void *ctx)
{
    struct throttle_attempt *at = ctx;
    /* the pair's counter first, then the address's: every unit locks them in this order */
    const struct throttle_counter c[] = {{at->pair, THROTTLE_MAX}, {at->addr, THROTTLE_ADDR_MAX}};
    return store_throttle_begin(tx, c, 2, THROTTLE_WINDOW, &at->wait);
}

enum store_status throttle_end_fn(struct store_tx *tx, void *ctx)
{
    struct throttle_attempt *at = ctx;
    bool failed = at->outcome == ATTEMPT_FAILED;
    enum store_status st = store_throttle_end(tx, at->pair, failed, at->outcome == ATTEMPT_OK);
    return st == STORE_OK ? store_throttle_end(tx, at->addr, failed, false) : st;
}
