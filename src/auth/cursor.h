/* Opaque list cursors: a position in a list (the last record's place in creation order),
 * encrypted and authenticated (XChaCha20-Poly1305) under a key derived from the signing
 * secret, and bound to what the caller names (tenant, list, filters) as associated data.
 * A cursor from another tenant, list or filter set, or altered in any bit, does not open;
 * one sealed with the previous signing secret of a rotation still does. */
#ifndef HIP_CURSOR_H
#define HIP_CURSOR_H

#include <stdbool.h>
#include <stdint.h>

#include "auth/token.h"

/* base64url of version, nonce, sealed position: 66 characters and a NUL */
#define CURSOR_TEXT_MAX 72

/* Seals pos for `bind`; false only when the keyring is empty. */
bool cursor_seal(const struct keyring *k, const char *bind, int64_t pos, char out[CURSOR_TEXT_MAX]);
/* Opens a cursor sealed for `bind` by any key of the ring. */
bool cursor_open(const struct keyring *k, const char *bind, const char *text, int64_t *pos);

#endif
