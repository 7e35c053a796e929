#include "http/etag.h"

#include <string.h>

static bool ows(char c) { return c == ' ' || c == '\t'; }

/* etagc = %x21 / %x23-7E / obs-text */
static bool etagc(unsigned char c) { return c == 0x21 || (c >= 0x23 && c != 0x7f); }

enum etag_match etag_list_match(const char *field, const char *current, bool weak)
{
    if (!field)
        return ETAG_INVALID;
    const char *p = field;
    while (ows(*p))
        p++;
    if (*p == '*') {
        const char *q = p + 1;
        while (ows(*q))
            q++;
        return *q ? ETAG_INVALID : ETAG_MATCH;
    }
    size_t cur_len = current ? strlen(current) : 0;
    bool matched = false, any = false;
    while (*p) {
        while (ows(*p) || *p == ',') /* empty list elements are allowed (RFC 9110 §5.6.1.2) */
            p++;
        if (!*p)
            break;
        bool is_weak = false;
        if (p[0] == 'W' && p[1] == '/') {
            is_weak = true;
            p += 2;
        }
        if (*p != '"')
            return ETAG_INVALID;
        const char *start = p++;
        while (etagc((unsigned char)*p))
            p++;
        if (*p != '"')
            return ETAG_INVALID;
        p++;
        size_t len = (size_t)(p - start); /* the opaque-tag with its quotes */
        any = true;
        if ((weak || !is_weak) && len == cur_len && memcmp(start, current, len) == 0)
            matched = true;
        while (ows(*p))
            p++;
        if (*p && *p != ',')
            return ETAG_INVALID;
    }
    if (!any)
        return ETAG_INVALID;
    return matched ? ETAG_MATCH : ETAG_NO_MATCH;
}
