/* Single-value rules, pure functions with no I/O: unit-tested and fuzzed directly. */
#ifndef HIP_VALIDATE_H
#define HIP_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>

/* Valid UTF-8 (no overlongs, no surrogates) without C0/C1 control characters or DEL.
 * Returns the number of code points, or -1. */
long text_codepoints(const char *s, size_t len);
/* Length of s without leading/trailing spaces; *start is the first kept byte. */
size_t text_trim(const char *s, size_t len, size_t *start);
/* Writes the 10 national digits to out[11]; accepts an optional +91 or 91 prefix. */
bool mobile_normalize(const char *s, size_t len, char out[11]);
bool email_valid(const char *s, size_t len);
/* YYYY-MM-DD, a real calendar date from 1900-01-01, not after today (YYYY-MM-DD). */
const char *date_check(const char *s, size_t len, const char *today);
bool digits_only(const char *s, size_t len);
bool url_valid(const char *s, size_t len);

#endif
