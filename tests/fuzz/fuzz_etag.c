/* Conditional request fields (src/http/etag.c: If-Match, If-None-Match).
 *
 * Input: the field value, NUL-terminated at the first NUL byte. It is matched against a
 * fixed strong tag and against the first quoted tag found in the input itself.
 *
 * Invariants: a strong match (If-Match) is always a weak match too (If-None-Match); the
 * verdict on validity does not depend on the tag or the comparison; OWS around the whole
 * field changes nothing; a valid list that names the tag strongly matches it, and a tag
 * only ever matches a list that contains its bytes (or is `*`). */
#include "fuzz_common.h"

#include "http/etag.h"

static const char *const FIXED = "\"HLh2n0ZBlLvYZRz1IsMsxg\"";

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *field = fuzz_cstr(data, size);
    size_t n = strlen(field);

    /* the first "..." in the input, as a candidate current tag */
    char *tag = NULL;
    const char *open = strchr(field, '"');
    const char *close = open ? strchr(open + 1, '"') : NULL;
    if (close) {
        tag = malloc((size_t)(close - open) + 2);
        memcpy(tag, open, (size_t)(close - open) + 1);
        tag[close - open + 1] = '\0';
    }
    const char *currents[] = {FIXED, tag};
    enum etag_match valid = etag_list_match(field, FIXED, false) == ETAG_INVALID ? ETAG_INVALID : ETAG_MATCH;

    char *padded = malloc(n + 5);
    memcpy(padded, " \t", 2);
    memcpy(padded + 2, field, n);
    memcpy(padded + 2 + n, "\t ", 3);

    for (int i = 0; i < 2; i++) {
        const char *cur = currents[i];
        if (!cur)
            continue;
        enum etag_match strong = etag_list_match(field, cur, false), weak = etag_list_match(field, cur, true);
        FUZZ_CHECK((strong == ETAG_INVALID) == (valid == ETAG_INVALID));
        FUZZ_CHECK((weak == ETAG_INVALID) == (valid == ETAG_INVALID));
        if (strong == ETAG_MATCH)
            FUZZ_CHECK(weak == ETAG_MATCH);
        if (weak == ETAG_MATCH)
            FUZZ_CHECK(strstr(field, cur) != NULL || strchr(field, '*') != NULL);
        FUZZ_CHECK(etag_list_match(padded, cur, false) == strong);
        FUZZ_CHECK(etag_list_match(padded, cur, true) == weak);
    }
    /* the first tag, when it opens the field unweakened, is matched by a valid list */
    if (tag && valid != ETAG_INVALID && field[strspn(field, " \t,")] == '"')
        FUZZ_CHECK(etag_list_match(field, tag, false) == ETAG_MATCH);

    free(padded);
    free(tag);
    free(field);
    return 0;
}
