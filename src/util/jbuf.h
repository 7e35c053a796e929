/* Compact JSON written straight into a buffer, byte for byte what jansson's
 * json_dumps(..., JSON_COMPACT) writes for the same values (no tree, no malloc): strings
 * keep non-ASCII UTF-8 as it is and escape ", \, and controls (\b \f \n \r \t, else \u00XX);
 * a string that is not valid UTF-8 is left out with its key, as json_string() refuses it.
 * The buffer starts in caller storage (a stack array, say) and grows in an arena. */
#ifndef HIP_JBUF_H
#define HIP_JBUF_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

struct jbuf {
    char *p;
    size_t len, cap;
    struct arena *a; /* where it grows; NULL: fixed, and `full` is set instead */
    bool full;       /* something did not fit a fixed buffer */
};

/* storage may be NULL (cap 0): the first write then takes room from the arena. */
void jbuf_init(struct jbuf *b, struct arena *a, char *storage, size_t cap);
void jbuf_put(struct jbuf *b, const char *s, size_t n);
void jbuf_puts(struct jbuf *b, const char *s);
/* A NUL-terminated copy of what was written, in the arena (or in place when it fits). */
char *jbuf_finish(struct jbuf *b);

/* Is s (n bytes) valid UTF-8 as RFC 3629 has it (no overlongs, surrogates or > U+10FFFF)? */
bool utf8_valid(const char *s, size_t n);
/* s as a JSON string with its quotes; s must be valid UTF-8. */
void jbuf_string(struct jbuf *b, const char *s, size_t n);
/* The same for any bytes: each byte that is not part of valid UTF-8 becomes U+FFFD. */
void jbuf_string_lossy(struct jbuf *b, const char *s, size_t n);

/* Members of an object: *first tracks the comma. A string member whose value is NULL or
 * not UTF-8 is left out, as json_object_set_new(o, key, json_string(value)) leaves it. */
void jbuf_key(struct jbuf *b, bool *first, const char *key);
void jbuf_member_str(struct jbuf *b, bool *first, const char *key, const char *value);

#endif
