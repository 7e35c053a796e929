/* Client secrets, sharing keys and refresh tokens: made from libsodium's random
 * source, stored only as hashes. */
#ifndef HIP_CREDENTIALS_H
#define HIP_CREDENTIALS_H

#include <sodium.h>
#include <stdbool.h>
#include <stddef.h>

#define SECRET_HASH_MAX crypto_pwhash_STRBYTES
#define DIGEST_HEX 65

/* nbytes random bytes as unpadded base64url into out (cap >= 2*nbytes). */
void random_b64(char *out, size_t cap, size_t nbytes);
/* nbytes random bytes as lowercase hex. */
void random_hex(char *out, size_t cap, size_t nbytes);
/* Argon2id (crypto_pwhash_str) of a client secret. */
bool secret_hash(const char *secret, char out[SECRET_HASH_MAX]);
/* Verifies secret against hash; with hash NULL it spends the same time on a dummy
 * hash and fails, so unknown client ids cost what known ones do. */
bool secret_verify(const char *hash, const char *secret);
/* SHA-256 hex of a high-entropy token (refresh tokens, sharing keys): lookup by digest. */
void token_digest(const char *token, char out[DIGEST_HEX]);

#endif
