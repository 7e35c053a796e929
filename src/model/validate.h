/* Single-value rules, pure functions with no I/O: unit-tested and fuzzed directly.
 * Unicode character properties, normalisation and case folding come from libunistring. */
#ifndef HIP_VALIDATE_H
#define HIP_VALIDATE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Valid UTF-8 (no overlongs, no surrogates) without C0/C1 control characters or DEL.
 * Returns the number of code points, or -1. */
long text_codepoints(const char *s, size_t len);
/* Finds the first character no text field takes (s valid as text_codepoints says):
 * bidi embeddings, overrides and isolates (U+202A-202E, U+2066-2069), line and
 * paragraph separators (U+2028, U+2029), noncharacters (U+FDD0-FDEF, U+xFFFE/xFFFF)
 * and tag characters (U+E0000-E007F). ZWJ and ZWNJ are ordinary characters here. */
bool text_forbidden(const char *s, size_t len, uint32_t *cp);
/* Has s a character that shows: a letter, mark, number, punctuation or symbol that is
 * not default-ignorable (so not only spaces, ZWJ, U+200B, U+3164 HANGUL FILLER...)? */
bool text_has_visible(const char *s, size_t len);
/* Length of s without leading/trailing Unicode white space (the White_Space property:
 * U+0020, U+00A0, U+3000...); *start is the first kept byte. */
size_t text_trim(const char *s, size_t len, size_t *start);
/* The key that compares text without regard to case or Unicode spelling:
 * NFC(toCasefold(NFD(s))), full case folding ("Ä" = "ä" = "a" + U+0308, U+212A KELVIN
 * SIGN = "k", "ß" = "ss"). A malloc'd string the caller frees, or NULL (out of memory). */
char *text_fold_key(const char *s, size_t len);
/* Writes the 10 national digits to out[11]; accepts an optional +91 or 91 prefix. */
bool mobile_normalize(const char *s, size_t len, char out[11]);
/* One @, a dotted domain, at most 254 characters (64 before the @); no invisible or
 * format character. */
bool email_valid(const char *s, size_t len);
/* YYYY-MM-DD, a real calendar date from 1900-01-01, not after today (YYYY-MM-DD). */
const char *date_check(const char *s, size_t len, const char *today);
bool digits_only(const char *s, size_t len);
/* An RFC 3339 date-time: "2024-05-01T10:00:00Z", "2024-05-01t15:30:00.25+05:30" (T and Z
 * in either case, any number of fraction digits, Z or a numeric offset, a real date, a
 * second up to 60 for a leap second). *ms: the instant in ms since the epoch, a fraction
 * beyond the millisecond rounded up. */
bool rfc3339_ms(const char *s, size_t len, int64_t *ms);
/* http(s)://host..., at most 2048 characters, nothing invisible. */
bool url_valid(const char *s, size_t len);

#endif
