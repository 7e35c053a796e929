#include "http/framing.h"

#include <string.h>
#include <strings.h>

/* tchar of RFC 9110 §5.6.2: what a field name may be made of. */
static bool is_tchar(unsigned char c)
{
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return true;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s)
{
    if (!*s)
        return false;
    for (; *s; s++)
        if (!is_tchar((unsigned char)*s))
            return false;
    return true;
}

static void refuse(struct framing *out, int status, const char *message)
{
    out->status = status;
    out->message = message;
}

/* 1*DIGIT, no sign, no spaces, no overflow. */
static bool parse_length(const char *v, unsigned long long *out)
{
    unsigned long long n = 0;
    if (!*v)
        return false;
    for (; *v; v++) {
        if (*v < '0' || *v > '9')
            return false;
        unsigned d = (unsigned)(*v - '0');
        if (n > (~0ULL - d) / 10)
            return false;
        n = n * 10 + d;
    }
    *out = n;
    return true;
}

/* Walks the comma-separated codings of every Transfer-Encoding field in order: chunked
 * must come exactly once and last (else 400: the body's end cannot be known); any other
 * coding is one we do not implement (501). */
static void check_codings(const char *const *values, size_t n, struct framing *out)
{
    size_t chunked = 0, total = 0;
    bool chunked_last = false, unknown = false;
    for (size_t i = 0; i < n; i++) {
        const char *p = values[i];
        while (*p) {
            while (*p == ' ' || *p == '\t' || *p == ',')
                p++;
            if (!*p)
                break;
            const char *start = p;
            while (*p && *p != ',' && *p != ';')
                p++;
            const char *end = p;
            while (end > start && (end[-1] == ' ' || end[-1] == '\t'))
                end--;
            bool params = *p == ';'; /* chunked takes none: a coding with them is one we do not know */
            while (*p && *p != ',')
                p++;
            total++;
            bool is_chunked = !params && (size_t)(end - start) == 7 && strncasecmp(start, "chunked", 7) == 0;
            chunked += is_chunked;
            unknown |= !is_chunked;
            chunked_last = is_chunked;
        }
    }
    if (total == 0 || chunked != 1 || !chunked_last) {
        if (chunked == 0 && total > 0)
            refuse(out, 501, "Transfer-Encoding: only chunked is implemented.");
        else
            refuse(out, 400, "Transfer-Encoding: chunked must be given once, as the final coding.");
        return;
    }
    if (unknown)
        refuse(out, 501, "Transfer-Encoding: only chunked is implemented.");
}

/* absolute-form (RFC 9112 §3.2.2) becomes origin-form; anything else must start with '/'. */
const char *framing_origin_form(const char *target, struct arena *a)
{
    size_t skip = 0;
    if (strncasecmp(target, "http://", 7) == 0)
        skip = 7;
    else if (strncasecmp(target, "https://", 8) == 0)
        skip = 8;
    if (!skip)
        return target[0] == '/' ? target : NULL;
    const char *rest = target + skip;
    const char *slash = strchr(rest, '/');
    if (slash == rest) /* no authority */
        return NULL;
    if (!slash)
        return arena_strdup(a, "/");
    return slash;
}

void framing_check(const char *target, const char *version, const struct header_field *h, size_t n,
                   struct arena *a, struct framing *out)
{
    memset(out, 0, sizeof *out);
    out->body = BODY_NONE;
    bool http11 = version && strcmp(version, "HTTP/1.1") == 0;
    if (!http11 && !(version && strcmp(version, "HTTP/1.0") == 0)) {
        refuse(out, 400, "Malformed request line.");
        return;
    }
    for (const unsigned char *p = (const unsigned char *)target; *p; p++)
        if (*p <= ' ' || *p == 0x7f) {
            refuse(out, 400, "The request target holds a space or a control character.");
            return;
        }
    out->path = framing_origin_form(target, a);
    if (!out->path) {
        refuse(out, 400, "The request target must be a path or an absolute http(s) URL.");
        return;
    }
    size_t hosts = 0, lengths = 0, ncodings = 0;
    const char *length = NULL;
    const char **codings = arena_calloc(a, n ? n : 1, sizeof *codings);
    for (size_t i = 0; i < n; i++) {
        if (!is_token(h[i].name)) {
            refuse(out, 400, "Malformed header field name (whitespace before the colon?).");
            return;
        }
        if (strcasecmp(h[i].name, "Host") == 0)
            hosts++;
        else if (strcasecmp(h[i].name, "Content-Length") == 0) {
            lengths++;
            length = h[i].value;
        } else if (strcasecmp(h[i].name, "Transfer-Encoding") == 0)
            codings[ncodings++] = h[i].value ? h[i].value : "";
    }
    if (hosts > 1) {
        refuse(out, 400, "More than one Host header.");
        return;
    }
    if (http11 && hosts == 0) {
        refuse(out, 400, "HTTP/1.1 requests must carry a Host header.");
        return;
    }
    if (lengths > 1) {
        refuse(out, 400, "More than one Content-Length header.");
        return;
    }
    if (lengths && ncodings) {
        refuse(out, 400, "Both Content-Length and Transfer-Encoding: the body's length is ambiguous.");
        return;
    }
    if (lengths) {
        if (!parse_length(length ? length : "", &out->length)) {
            refuse(out, 400, "Content-Length must be a decimal number.");
            return;
        }
        out->body = out->length ? BODY_LENGTH : BODY_NONE;
        return;
    }
    if (ncodings) {
        if (!http11) {
            refuse(out, 400, "Transfer-Encoding is not allowed in HTTP/1.0.");
            return;
        }
        check_codings(codings, ncodings, out);
        if (!out->status)
            out->body = BODY_CHUNKED;
    }
}
