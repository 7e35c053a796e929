#include "model/validate.h"

#include <string.h>
#include <strings.h>

long text_codepoints(const char *s, size_t len)
{
    const unsigned char *p = (const unsigned char *)s, *end = p + len;
    long n = 0;
    while (p < end) {
        unsigned c = *p;
        unsigned cp;
        size_t k;
        if (c < 0x80) {
            if (c < 0x20 || c == 0x7f)
                return -1;
            p++;
            n++;
            continue;
        } else if ((c & 0xe0) == 0xc0) {
            cp = c & 0x1f;
            k = 1;
        } else if ((c & 0xf0) == 0xe0) {
            cp = c & 0x0f;
            k = 2;
        } else if ((c & 0xf8) == 0xf0) {
            cp = c & 0x07;
            k = 3;
        } else {
            return -1;
        }
        if ((size_t)(end - p) <= k)
            return -1;
        for (size_t i = 1; i <= k; i++) {
            if ((p[i] & 0xc0) != 0x80)
                return -1;
            cp = (cp << 6) | (p[i] & 0x3f);
        }
        /* overlong forms, surrogates, beyond U+10FFFF, C1 controls */
        if ((k == 1 && cp < 0x80) || (k == 2 && cp < 0x800) || (k == 3 && cp < 0x10000) ||
            (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff || (cp >= 0x80 && cp <= 0x9f))
            return -1;
        p += k + 1;
        n++;
    }
    return n;
}

size_t text_trim(const char *s, size_t len, size_t *start)
{
    size_t a = 0, b = len;
    while (a < b && s[a] == ' ')
        a++;
    while (b > a && s[b - 1] == ' ')
        b--;
    *start = a;
    return b - a;
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

static bool email_char(unsigned char c)
{
    /* Printable ASCII except the specials that never belong in a plain address, or UTF-8. */
    return c > 0x20 && c != 0x7f && !strchr("()<>[]\\,;:\"", c);
}

bool email_valid(const char *s, size_t len)
{
    if (len < 3 || len > 254)
        return false;
    const char *at = memchr(s, '@', len);
    if (!at || memchr(at + 1, '@', len - (size_t)(at - s) - 1))
        return false;
    size_t local = (size_t)(at - s), dom = len - local - 1;
    if (local == 0 || local > 64 || dom < 3)
        return false;
    for (size_t i = 0; i < len; i++)
        if (s[i] != '@' && !email_char((unsigned char)s[i]))
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
    if (len > 2048)
        return false;
    if (len > 7 && strncasecmp(s, "http://", 7) == 0)
        skip = 7;
    else if (len > 8 && strncasecmp(s, "https://", 8) == 0)
        skip = 8;
    else
        return false;
    if (s[skip] == '/' || s[skip] == '?' || s[skip] == '#' || s[skip] == '.')
        return false;
    for (size_t i = 0; i < len; i++)
        if ((unsigned char)s[i] <= 0x20 || s[i] == 0x7f)
            return false;
    return true;
}
