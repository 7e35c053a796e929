/* Strict HTTP/1.1 message framing (RFC 9112), judged from the request line and header
 * fields once they have arrived and before a byte of the body is read. Pure: unit-tested
 * and fuzzed. libmicrohttpd 0.9.75 is lenient where a proxy in front of us may not be
 * (both Content-Length and Transfer-Encoding, several Content-Lengths, unknown codings,
 * whitespace before a colon): any such disagreement is how requests get smuggled, so
 * every one of them is refused and the connection closed. */
#ifndef HIP_FRAMING_H
#define HIP_FRAMING_H

#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"

struct header_field {
    const char *name, *value;
};

enum body_kind { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };

struct framing {
    int status;          /* 0: acceptable; else the 4xx/5xx to answer, then close */
    const char *message; /* why, for the error body */
    const char *path;    /* the origin-form path (absolute-form reduced to it) */
    enum body_kind body;
    unsigned long long length; /* BODY_LENGTH: the declared length */
};

/* Judges one request. `target` is the request-target as received (no query string
 * needed), `version` e.g. "HTTP/1.1". Strings in the result live in `a` or in the inputs. */
void framing_check(const char *target, const char *version, const struct header_field *h, size_t n,
                   struct arena *a, struct framing *out);

/* The origin-form path of a request target (an absolute-form http(s) URL reduced to its
 * path, RFC 9112 §3.2.2); NULL when it is neither. */
const char *framing_origin_form(const char *target, struct arena *a);

#endif
