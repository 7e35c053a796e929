/* Shared by the libFuzzer targets in this directory (not a target itself). */
#ifndef HIP_FUZZ_COMMON_H
#define HIP_FUZZ_COMMON_H

#include <jansson.h>
#include <sodium.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A fixed "today" so that date checks (no dob in the future) are deterministic. */
#define FUZZ_TODAY "2026-01-31"

/* An invariant the code under test broke: report it and abort, which libFuzzer
 * records as a crash (abort() rather than assert(): the build has -DNDEBUG). */
#define FUZZ_CHECK(cond)                                                                   \
    do {                                                                                   \
        if (!(cond)) {                                                                     \
            fprintf(stderr, "%s:%d: fuzz invariant failed: %s\n", __FILE__, __LINE__, #cond); \
            abort();                                                                       \
        }                                                                                  \
    } while (0)

/* libsodium is initialised once per process, as main.c does (only targets that reach
 * libsodium define LLVMFuzzerInitialize to call this; the pure code paths need nothing). */
static inline void fuzz_sodium_init(void)
{
    if (sodium_init() < 0) {
        fputs("fuzz: sodium_init failed\n", stderr);
        abort();
    }
}

/* The input as a NUL-terminated string (stops at the first NUL in the input). */
static inline char *fuzz_cstr(const uint8_t *data, size_t size)
{
    char *s = malloc(size + 1);
    if (!s)
        abort();
    memcpy(s, data, size);
    s[size] = '\0';
    return s;
}

static inline void fuzz_json_decref(void *p) { json_decref(p); }

/* Bracket nesting depth of a parsed value: 0 for a scalar, 1 for [] or {"a":1}. */
static inline int fuzz_json_depth(json_t *v)
{
    int d = 0;
    if (!json_is_object(v) && !json_is_array(v))
        return 0;
    if (json_is_object(v)) {
        const char *k;
        json_t *m;
        json_object_foreach(v, k, m) {
            int c = fuzz_json_depth(m);
            if (c > d)
                d = c;
        }
    } else if (json_is_array(v)) {
        size_t i;
        json_t *m;
        json_array_foreach(v, i, m) {
            int c = fuzz_json_depth(m);
            if (c > d)
                d = c;
        }
    }
    return d + 1;
}

#endif
