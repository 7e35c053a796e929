#include "auth/cursor.h"

#include <sodium.h>
#include <string.h>

#define CURSOR_VERSION 1
#define SEALED_LEN (1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES + 8 + crypto_aead_xchacha20poly1305_ietf_ABYTES)

_Static_assert(sodium_base64_ENCODED_LEN(SEALED_LEN, sodium_base64_VARIANT_URLSAFE_NO_PADDING) <= CURSOR_TEXT_MAX,
               "raise CURSOR_TEXT_MAX");

/* The cursor key of a signing key: HMAC-SHA-256(secret, label), so a cursor key never
 * signs a token and the secret itself never encrypts. */
static void derive(const struct signing_key *sk, unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES])
{
    static const char label[] = "hipusers list cursor v1";
    crypto_auth_hmacsha256_state st;
    crypto_auth_hmacsha256_init(&st, sk->secret, sk->len);
    crypto_auth_hmacsha256_update(&st, (const unsigned char *)label, sizeof label - 1);
    crypto_auth_hmacsha256_final(&st, key);
    sodium_memzero(&st, sizeof st);
}

bool cursor_seal(const struct keyring *k, const char *bind, int64_t pos, char out[CURSOR_TEXT_MAX])
{
    if (k->n < 1)
        return false;
    unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], sealed[SEALED_LEN], plain[8];
    derive(&k->keys[0], key);
    uint64_t v = (uint64_t)pos;
    for (int i = 7; i >= 0; i--, v >>= 8)
        plain[i] = (unsigned char)v;
    sealed[0] = CURSOR_VERSION;
    unsigned char *nonce = sealed + 1;
    randombytes_buf(nonce, crypto_aead_xchacha20poly1305_ietf_NPUBBYTES);
    unsigned long long clen;
    crypto_aead_xchacha20poly1305_ietf_encrypt(sealed + 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES, &clen, plain,
                                               sizeof plain, (const unsigned char *)bind, strlen(bind), NULL, nonce,
                                               key);
    sodium_memzero(key, sizeof key);
    sodium_bin2base64(out, CURSOR_TEXT_MAX, sealed, sizeof sealed, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    return true;
}

bool cursor_open(const struct keyring *k, const char *bind, const char *text, int64_t *pos)
{
    unsigned char sealed[SEALED_LEN + 1];
    size_t len = strlen(text), binlen = 0;
    const char *end = NULL;
    if (len >= CURSOR_TEXT_MAX ||
        sodium_base642bin(sealed, sizeof sealed, text, len, NULL, &binlen, &end,
                          sodium_base64_VARIANT_URLSAFE_NO_PADDING) != 0 ||
        end != text + len || binlen != SEALED_LEN || sealed[0] != CURSOR_VERSION)
        return false;
    const unsigned char *nonce = sealed + 1, *c = sealed + 1 + crypto_aead_xchacha20poly1305_ietf_NPUBBYTES;
    for (int i = 0; i < k->n; i++) {
        unsigned char key[crypto_aead_xchacha20poly1305_ietf_KEYBYTES], plain[8];
        unsigned long long plen;
        derive(&k->keys[i], key);
        int rc = crypto_aead_xchacha20poly1305_ietf_decrypt(plain, &plen, NULL, c,
                                                            8 + crypto_aead_xchacha20poly1305_ietf_ABYTES,
                                                            (const unsigned char *)bind, strlen(bind), nonce, key);
        sodium_memzero(key, sizeof key);
        if (rc == 0 && plen == 8) {
            uint64_t v = 0;
            for (int b = 0; b < 8; b++)
                v = v << 8 | plain[b];
            *pos = (int64_t)v;
            return *pos >= 0;
        }
    }
    return false;
}
