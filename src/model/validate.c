#include "model/validate.h"

#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unicase.h>
#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

/* Text is checked code point by code point with libunistring: u8_mbtoucr refuses
 * overlong forms, surrogates and anything beyond U+10FFFF; the character properties
 * come from its Unicode tables, never from tables of our own. */
static int next_cp(const char *s, size_t len, size_t i, ucs4_t *uc)
{
    return u8_mbtoucr(uc, (const uint8_t *)s + i, len - i);
}

long text_codepoints(const char *s, size_t len)
{
    long n = 0;
    for (size_t i = 0; i < len; n++) {
        ucs4_t uc;
        int k = next_cp(s, len, i, &uc);
        if (k <= 0 || uc_is_general_category(uc, UC_CATEGORY_Cc)) /* C0, DEL, C1 */
            return -1;
        i += (size_t)k;
    }
    return n;
}

/* Embeddings, overrides and isolates: they reorder the text around them when shown. */
static bool bidi_control(ucs4_t uc)
{
    switch (uc_bidi_class(uc)) {
    case UC_BIDI_LRE:
    case UC_BIDI_RLE:
    case UC_BIDI_LRO:
    case UC_BIDI_RLO:
    case UC_BIDI_PDF:
    case UC_BIDI_LRI:
    case UC_BIDI_RLI:
    case UC_BIDI_FSI:
    case UC_BIDI_PDI:
        return true;
    default:
        return false;
    }
}

static bool tag_character(ucs4_t uc)
{
    const uc_block_t *b = uc_block(uc);
    return b && strcmp(b->name, "Tags") == 0;
}

bool text_forbidden(const char *s, size_t len, uint32_t *cp)
{
    for (size_t i = 0; i < len;) {
        ucs4_t uc;
        int k = next_cp(s, len, i, &uc);
        if (k <= 0)
            return false; /* not text at all: text_codepoints says so */
        if (bidi_control(uc) || uc_is_general_category(uc, UC_CATEGORY_Zl) ||
            uc_is_general_category(uc, UC_CATEGORY_Zp) || uc_is_property_not_a_character(uc) ||
            tag_character(uc)) {
            *cp = uc;
            return true;
        }
        i += (size_t)k;
    }
    return false;
}

bool text_has_visible(const char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        ucs4_t uc;
        int k = next_cp(s, len, i, &uc);
        if (k <= 0)
            return false;
        if (!uc_is_property_default_ignorable_code_point(uc) &&
            (uc_is_general_category(uc, UC_CATEGORY_L) || uc_is_general_category(uc, UC_CATEGORY_M) ||
             uc_is_general_category(uc, UC_CATEGORY_N) || uc_is_general_category(uc, UC_CATEGORY_P) ||
             uc_is_general_category(uc, UC_CATEGORY_S)))
            return true;
        i += (size_t)k;
    }
    return false;
}

size_t text_trim(const char *s, size_t len, size_t *start)
{
    const uint8_t *p = (const uint8_t *)s;
    size_t a = 0, b = len;
    ucs4_t uc;
    int k;
    while (a < b && (k = next_cp(s, b, a, &uc)) > 0 && uc_is_property_white_space(uc))
        a += (size_t)k;
    while (b > a) {
        const uint8_t *prev = u8_prev(&uc, p + b, p + a);
        if (!prev || !uc_is_property_white_space(uc))
            break;
        b = (size_t)(prev - p);
    }
    *start = a;
    return b - a;
}

char *text_fold_key(const char *s, size_t len)
{
    size_t n = 0;
    /* NFC(toCasefold(NFD(s))): libunistring decomposes before folding when given a form. */
    uint8_t *folded = u8_casefold((const uint8_t *)s, len, NULL, UNINORM_NFC, NULL, &n);
    if (!folded)
        return NULL;
    char *out = malloc(n + 1);
    if (out) {
        memcpy(out, folded, n);
        out[n] = '\0';
    }
    free(folded);
    return out;
}

bool digits_only(const char *s, size_t len)
{
    if (len == 0)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] < '0' || s[i] > '9')
            return false;
    return true;
}

bool mobile_normalize(const char *s, size_t len, char out[11])
{
    if (len == 13 && s[0] == '+' && s[1] == '9' && s[2] == '1') {
        s += 3;
        len -= 3;
    } else if (len == 12 && s[0] == '9' && s[1] == '1') {
        s += 2;
        len -= 2;
    }
    if (len != 10 || !digits_only(s, len))
        return false;
    memcpy(out, s, 10);
    out[10] = '\0';
    return true;
}

/* A character beyond ASCII that shows where it stands: no space or separator, no control,
 * format (U+200B, U+2060, U+FEFF, bidi controls...), private-use, unassigned or
 * default-ignorable character. Addresses and URLs take only these. */
static bool shows(ucs4_t uc)
{
    return !uc_is_general_category(uc, UC_CATEGORY_C) && !uc_is_general_category(uc, UC_CATEGORY_Z) &&
           !uc_is_property_default_ignorable_code_point(uc);
}

/* Printable ASCII except the specials that never belong in a plain address, or a
 * character that shows. */
static bool email_cp(ucs4_t uc)
{
    if (uc < 0x80)
        return uc > 0x20 && uc != 0x7f && !strchr("()<>[]\\,;:\"", (int)uc);
    return shows(uc);
}

/* Lengths are in characters (code points), as the limits are documented. */
bool email_valid(const char *s, size_t len)
{
    long total = text_codepoints(s, len);
    if (total < 3 || total > 254)
        return false;
    for (size_t i = 0; i < len;) {
        ucs4_t uc;
        int k = next_cp(s, len, i, &uc);
        if (k <= 0 || (uc != '@' && !email_cp(uc)))
            return false;
        i += (size_t)k;
    }
    const char *at = memchr(s, '@', len);
    if (!at || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return false;
    size_t local = (size_t)(at - s), dom = len - local - 1;
    long local_cps = text_codepoints(s, local), dom_cps = total - local_cps - 1;
    if (local == 0 || local_cps > 64 || dom_cps < 3)
        return false;
    const char *d = at + 1;
    if (!memchr(d, '.', dom) || d[0] == '.' || d[0] == '-' || d[dom - 1] == '.' || d[dom - 1] == '-')
        return false;
    for (size_t i = 1; i < dom; i++)
        if (d[i] == '.' && d[i - 1] == '.')
            return false;
    if (s[0] == '.' || s[local - 1] == '.')
        return false;
    for (size_t i = 1; i < local; i++)
        if (s[i] == '.' && s[i - 1] == '.')
            return false;
    return true;
}

static int days_in_month(int y, int m)
{
    static const int dm[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (m == 2 && ((y % 4 == 0 && y % 100 != 0) || y % 400 == 0))
        return 29;
    return dm[m - 1];
}

const char *date_check(const char *s, size_t len, const char *today)
{
    if (len != 10 || s[4] != '-' || s[7] != '-' || !digits_only(s, 4) || !digits_only(s + 5, 2) ||
        !digits_only(s + 8, 2))
        return "Date has wrong format. Use YYYY-MM-DD.";
    int y = (s[0] - '0') * 1000 + (s[1] - '0') * 100 + (s[2] - '0') * 10 + (s[3] - '0');
    int m = (s[5] - '0') * 10 + (s[6] - '0');
    int d = (s[8] - '0') * 10 + (s[9] - '0');
    if (m < 1 || m > 12 || d < 1 || d > days_in_month(y, m))
        return "Not a real calendar date.";
    if (y < 1900)
        return "Date must be on or after 1900-01-01.";
    if (today && memcmp(s, today, 10) > 0)
        return "Date may not be in the future.";
    return NULL;
}

bool url_valid(const char *s, size_t len)
{
    size_t skip;
    long n = text_codepoints(s, len);
    if (n < 0 || n > 2048)
        return false;
    if (len > 7 && strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (len > 8 && strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (s[skip] == '/' || s[skip] == '?' || s[skip] == '#' || s[skip] == '.')
        return false;
    for (size_t i = 0; i < len;) {
        ucs4_t uc;
        int k = next_cp(s, len, i, &uc);
        if (k <= 0 || uc <= 0x20 || uc == 0x7f || (uc >= 0x80 && !shows(uc)))
            return false;
        i += (size_t)k;
    }
    return true;
}

static int num(const char *s, size_t n)
{
    int v = 0;
    for (size_t i = 0; i < n; i++)
        v = v * 10 + (s[i] - '0');
    return v;
}

/* Days from 1970-01-01 to a proleptic Gregorian date (H. Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t y, int m, int d)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + doe - 719468;
}

bool rfc3339_ms(const char *s, size_t len, int64_t *ms)
{
    /* date-time = full-date "T" partial-time time-offset; "T" and "Z" in either case */
    if (len < 20 || s[4] != '-' || s[7] != '-' || (s[10] != 'T' && s[10] != 't') || s[13] != ':' ||
        s[16] != ':' || !digits_only(s, 4) || !digits_only(s + 5, 2) || !digits_only(s + 8, 2) ||
        !digits_only(s + 11, 2) || !digits_only(s + 14, 2) || !digits_only(s + 17, 2))
        return false;
    int y = num(s, 4), mo = num(s + 5, 2), d = num(s + 8, 2);
    int h = num(s + 11, 2), mi = num(s + 14, 2), sec = num(s + 17, 2);
    if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || sec > 60)
        return false;
    size_t i = 19;
    int frac = 0;
    if (i < len && s[i] == '.') {
        size_t start = ++i;
        bool rest_nonzero = false;
        while (i < len && s[i] >= '0' && s[i] <= '9') {
            if (i - start < 3)
                frac = frac * 10 + (s[i] - '0');
            else if (s[i] != '0')
                rest_nonzero = true;
            i++;
        }
        if (i == start)
            return false;
        for (size_t k = i - start; k < 3; k++)
            frac *= 10;
        frac += rest_nonzero; /* beyond the millisecond: the next one, so "since" stays inclusive */
    }
    int offset_min = 0;
    if (i + 1 == len && (s[i] == 'Z' || s[i] == 'z')) {
        i++;
    } else if (i + 6 == len && (s[i] == '+' || s[i] == '-') && digits_only(s + i + 1, 2) && s[i + 3] == ':' &&
               digits_only(s + i + 4, 2)) {
        int oh = num(s + i + 1, 2), om = num(s + i + 4, 2);
        if (oh > 23 || om > 59)
            return false;
        offset_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
        i += 6;
    } else {
        return false;
    }
    int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + sec - (int64_t)offset_min * 60;
    *ms = secs * 1000 + frac;
    return true;
}
