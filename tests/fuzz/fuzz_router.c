/* Path routing and id decoding.
 *
 * Input: the raw request path (as libmicrohttpd hands it over, unescaping turned off),
 * NUL-terminated at the first NUL byte. route_match() runs on it, and percent_decode()
 * on the whole input (embedded NULs included).
 *
 * Invariants: an item route (and a record's history and restore) always carries a
 * resource and a non-empty id, shorter than the path, without '/' (over-long ids are
 * router.c's own business: it refuses them so the resource answers 404); a reference file
 * route (/docs/{file}) carries the file name exactly as sent, a plain segment of at most 64
 * characters; a decoded string never gains a '/' that was not in the input, and is never
 * longer than the input. The route's metrics template is one of the fixed list, "unrouted"
 * exactly when nothing matched. */
#include "fuzz_common.h"

#include "http/router.h"
#include "util/arena.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    struct arena a;
    arena_init(&a);
    char *path = fuzz_cstr(data, size);

    struct route rt;
    bool ok = route_match(path, &a, &rt);
    FUZZ_CHECK(route_allow(rt.kind) != NULL);
    /* every path has a template from the fixed list, and only unmatched ones are unrouted */
    enum metric_route mr = route_metric(&rt);
    FUZZ_CHECK((unsigned)mr < MR_COUNT && mr != MR_OTHER);
    FUZZ_CHECK((mr == MR_UNROUTED) == !ok);
    if (!ok) {
        FUZZ_CHECK(rt.kind == RT_NOT_FOUND);
    } else {
        FUZZ_CHECK(rt.kind != RT_NOT_FOUND);
        FUZZ_CHECK(path[0] == '/');
        switch (rt.kind) {
        case RT_ITEM:
        case RT_HIPUSER:
        case RT_HISTORY:
        case RT_RESTORE:
            FUZZ_CHECK(rt.res != NULL);
            FUZZ_CHECK(rt.id != NULL && rt.id[0] != '\0');
            FUZZ_CHECK(strlen(rt.id) < strlen(path));
            FUZZ_CHECK(strchr(rt.id, '/') == NULL);
            break;
        case RT_COLLECTION:
        case RT_HIPUSERS:
            FUZZ_CHECK(rt.res != NULL && rt.id == NULL);
            break;
        case RT_CHANGES:
            FUZZ_CHECK(rt.res == NULL && rt.id == NULL);
            break;
        case RT_DOCS_FILE: /* a plain file name, taken as it is */
            FUZZ_CHECK(rt.res == NULL && rt.id != NULL && rt.id[0] != '\0' && strlen(rt.id) <= 64);
            FUZZ_CHECK(strchr(rt.id, '/') == NULL && strchr(rt.id, '%') == NULL);
            FUZZ_CHECK(strncmp(path, "/docs/", 6) == 0 && strcmp(path + 6, rt.id) == 0);
            break;
        default:
            FUZZ_CHECK(rt.id == NULL);
            break;
        }
        if (rt.kind == RT_HIPUSER || rt.kind == RT_HIPUSERS)
            FUZZ_CHECK(rt.res == resource_get(R_EKAUSER));
    }

    char *dec = percent_decode((const char *)data, size, &a);
    if (dec) {
        size_t n = strlen(dec);
        FUZZ_CHECK(n <= size);
        if (!memchr(data, '/', size))
            FUZZ_CHECK(strchr(dec, '/') == NULL);
        if (!memchr(data, '%', size) && !memchr(data, '\0', size))
            FUZZ_CHECK(n == size && memcmp(dec, data, size) == 0);
    }

    free(path);
    arena_release(&a);
    return 0;
}
