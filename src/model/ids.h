/* Server-generated identifiers: users 15 digits, doctors "do"+13 digits,
 * clinics "c-"+24 lowercase hex. Uniqueness is the store's primary key. */
#ifndef HIP_IDS_H
#define HIP_IDS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/field.h"

#define ID_MAX 32

/* Formats an id from caller-supplied random bytes (pure: testable). */
void id_format(enum rkind kind, const uint8_t rnd[16], char out[ID_MAX]);
/* Fresh id from libsodium's random source. */
void id_generate(enum rkind kind, char out[ID_MAX]);
/* Could s be an Eka id of that resource, i.e. a string id_format can produce? */
bool id_has_shape(enum rkind kind, const char *s, size_t len);
/* That shape in words, for messages: "15 digits", ... */
const char *id_shape_text(enum rkind kind);

#endif
