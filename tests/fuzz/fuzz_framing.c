/* HTTP/1.1 framing verdicts (src/http/framing.c).
 *
 * Input: lines separated by '\n'. The first is the request-target, the second the
 * version; every further line is a header field, split at its first ':' (a line without
 * one is a field with an empty value).
 *
 * Invariants: an accepted request has an origin-form path ('/' first, no space or control
 * byte), a body kind that matches its headers (a length only from exactly one
 * Content-Length, chunked only without one), and never both framings; a refusal is a 4xx
 * or 501 with a message. */
#include "fuzz_common.h"

#include "http/framing.h"
#include "util/arena.h"

#include <strings.h>

#define MAX_FIELDS 64

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    arena_init(&a);
    char *text = fuzz_cstr(data, size);
    char *lines[MAX_FIELDS + 2];
    size_t nlines = 0;
    for (char *p = text; p && nlines < MAX_FIELDS + 2;) {
        lines[nlines++] = p;
        char *nl = strchr(p, '\n');
        if (nl)
            *nl = '\0';
        p = nl ? nl + 1 : NULL;
    }
    const char *target = lines[0];
    const char *version = nlines > 1 ? lines[1] : "HTTP/1.1";
    struct header_field h[MAX_FIELDS];
    size_t n = 0, lengths = 0, codings = 0;
    for (size_t i = 2; i < nlines; i++) {
        char *colon = strchr(lines[i], ':');
        if (colon)
            *colon = '\0';
        h[n] = (struct header_field){.name = lines[i], .value = colon ? colon + 1 : ""};
        lengths += strcasecmp(h[n].name, "Content-Length") == 0;
        codings += strcasecmp(h[n].name, "Transfer-Encoding") == 0;
        n++;
    }

    struct framing f;
    framing_check(target, version, h, n, &a, &f);
    if (f.status == 0) {
        FUZZ_CHECK(f.path != NULL && f.path[0] == '/');
        for (const unsigned char *p = (const unsigned char *)f.path; *p; p++)
            FUZZ_CHECK(*p > ' ' && *p != 0x7f);
        FUZZ_CHECK(!(lengths && codings));
        FUZZ_CHECK(lengths <= 1);
        if (f.body == BODY_LENGTH)
            FUZZ_CHECK(lengths == 1 && f.length > 0);
        if (f.body == BODY_CHUNKED)
            FUZZ_CHECK(codings >= 1 && lengths == 0);
        if (codings)
            FUZZ_CHECK(f.body == BODY_CHUNKED);
    } else {
        FUZZ_CHECK((f.status >= 400 && f.status < 500) || f.status == 501);
        FUZZ_CHECK(f.message != NULL && f.message[0] != '\0');
    }

    free(text);
    arena_release(&a);
    return 0;
}
