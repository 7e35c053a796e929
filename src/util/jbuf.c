#include "util/jbuf.h"

#include <string.h>

void jbuf_init(struct jbuf *b, struct arena *a, char *storage, size_t cap)
{
    b->p = storage;
    b->len = 0;
    b->cap = storage ? cap : 0;
    b->a = a;
    b->full = false;
}

/* Room for n more bytes and a NUL. */
static bool reserve(struct jbuf *b, size_t n)
{
    if (b->len + n + 1 <= b->cap)
        return true;
    if (!b->a) {
        b->full = true;
        return false;
    }
    size_t cap = b->cap ? b->cap * 2 : 512;
    while (cap < b->len + n + 1)
        cap *= 2;
    char *p = arena_alloc(b->a, cap);
    if (b->len)
        memcpy(p, b->p, b->len);
    b->p = p;
    b->cap = cap;
    return true;
}

void jbuf_put(struct jbuf *b, const char *s, size_t n)
{
    if (n == 0 || !reserve(b, n))
        return;
    memcpy(b->p + b->len, s, n);
    b->len += n;
}

void jbuf_puts(struct jbuf *b, const char *s) { jbuf_put(b, s, strlen(s)); }

char *jbuf_finish(struct jbuf *b)
{
    if (!reserve(b, 0))
        return NULL;
    b->p[b->len] = '\0';
    return b->p;
}

/* The length of the UTF-8 sequence at s (RFC 3629: no overlongs, surrogates or
 * > U+10FFFF), or 0 when there is none. */
static size_t utf8_seq(const unsigned char *s, size_t avail)
{
    unsigned c = s[0];
    if (c < 0x80)
        return 1;
    size_t len;
    unsigned cp;
    if (c >= 0xC2 && c <= 0xDF) {
        len = 2;
        cp = c & 0x1F;
    } else if (c >= 0xE0 && c <= 0xEF) {
        len = 3;
        cp = c & 0x0F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        len = 4;
        cp = c & 0x07;
    } else {
        return 0; /* a continuation byte, C0/C1 (overlong ASCII) or F5..FF */
    }
    if (avail < len)
        return 0;
    for (size_t i = 1; i < len; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0;
        cp = (cp << 6) | (s[i] & 0x3F);
    }
    if ((len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000) || cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF))
        return 0;
    return len;
}

bool utf8_valid(const char *str, size_t n)
{
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        if (s[i] < 0x80) {
            i++;
            continue;
        }
        size_t k = utf8_seq(s + i, n - i);
        if (!k)
            return false;
        i += k;
    }
    return true;
}

void jbuf_string_lossy(struct jbuf *b, const char *str, size_t n)
{
    if (utf8_valid(str, n)) {
        jbuf_string(b, str, n);
        return;
    }
    char stack[256];
    struct jbuf clean;
    jbuf_init(&clean, b->a, stack, sizeof stack);
    const unsigned char *s = (const unsigned char *)str;
    for (size_t i = 0; i < n;) {
        size_t k = utf8_seq(s + i, n - i);
        jbuf_put(&clean, k ? str + i : "\xEF\xBF\xBD", k ? k : 3);
        i += k ? k : 1;
    }
    jbuf_string(b, clean.p, clean.len);
}

void jbuf_string(struct jbuf *b, const char *s, size_t n)
{
    static const char hex[] = "0123456789ABCDEF";
    if (!reserve(b, 6 * n + 2)) /* every byte escaped, at worst */
        return;
    char *out = b->p + b->len;
    *out++ = '"';
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        if (c >= 0x20 && c != '"' && c != '\\') {
            *out++ = (char)c;
            continue;
        }
        *out++ = '\\';
        switch (c) {
        case '"': *out++ = '"'; break;
        case '\\': *out++ = '\\'; break;
        case '\b': *out++ = 'b'; break;
        case '\f': *out++ = 'f'; break;
        case '\n': *out++ = 'n'; break;
        case '\r': *out++ = 'r'; break;
        case '\t': *out++ = 't'; break;
        default:
            memcpy(out, "u00", 3);
            out[3] = hex[c >> 4];
            out[4] = hex[c & 15];
            out += 5;
        }
    }
    *out++ = '"';
    b->len = (size_t)(out - b->p);
}

void jbuf_key(struct jbuf *b, bool *first, const char *key)
{
    if (!*first)
        jbuf_put(b, ",", 1);
    *first = false;
    jbuf_string(b, key, strlen(key));
    jbuf_put(b, ":", 1);
}

void jbuf_member_str(struct jbuf *b, bool *first, const char *key, const char *value)
{
    if (!value)
        return;
    size_t n = strlen(value);
    if (!utf8_valid(value, n))
        return;
    jbuf_key(b, first, key);
    jbuf_string(b, value, n);
}
