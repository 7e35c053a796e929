#include "auth/credentials.h"

#include <pthread.h>
#include <string.h>

/* Argon2id with a light work factor (t=1, m=2 MiB, about 2 ms). A work factor exists to slow
 * the guessing of low-entropy passwords; these secrets are 256 random bits, which no work
 * factor makes easier or harder to guess, while a heavy one (OWASP's 19 MiB: 20-35 ms) lets
 * anyone with random client ids tie up the worker threads. Hashes carry their parameters,
 * so changing these later needs no migration. */
#define PW_OPS 1
#define PW_MEM (2u * 1024 * 1024)

void random_b64(char *out, size_t cap, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    randombytes_buf(buf, nbytes);
    sodium_bin2base64(out, cap, buf, nbytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
}

void random_hex(char *out, size_t cap, size_t nbytes)
{
    unsigned char buf[64];
    if (nbytes > sizeof buf)
        nbytes = sizeof buf;
    randombytes_buf(buf, nbytes);
    sodium_bin2hex(out, cap, buf, nbytes);
}

bool secret_hash(const char *secret, char out[SECRET_HASH_MAX])
{
    return crypto_pwhash_str(out, secret, strlen(secret), PW_OPS, PW_MEM) == 0;
}

static pthread_once_t dummy_once = PTHREAD_ONCE_INIT;
static char dummy_hash[SECRET_HASH_MAX];

static void make_dummy(void)
{
    char secret[48];
    random_b64(secret, sizeof secret, 32);
    secret_hash(secret, dummy_hash);
}

bool secret_verify(const char *hash, const char *secret)
{
    if (!hash) {
        pthread_once(&dummy_once, make_dummy);
        volatile int sink = crypto_pwhash_str_verify(dummy_hash, secret, strlen(secret));
        (void)sink;
        return false;
    }
    return crypto_pwhash_str_verify(hash, secret, strlen(secret)) == 0;
}

void token_digest(const char *token, char out[DIGEST_HEX])
{
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256(h, (const unsigned char *)token, strlen(token));
    sodium_bin2hex(out, DIGEST_HEX, h, sizeof h);
}
