/* A list's query string (issue 10): paging (limit, cursor) and filters, read into what
 * the store takes. Pure but for the cursor's key: unit-tested and fuzzed. */
#ifndef HIP_LIST_QUERY_H
#define HIP_LIST_QUERY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "auth/token.h"
#include "http/http.h"
#include "model/field.h"
#include "store/store.h"

#define LIST_LIMIT_MAX 1000

struct list_query {
    struct list_filter f; /* values normalised as stored */
    int limit;            /* 0: no limit, the whole (rest of the) list */
    int64_t after;        /* where the cursor left off; 0: the start */
    const char *bind;     /* what this list's cursors are bound to: tenant, list, filters */
};

/* Reads the parameters of a list of r called `list` ("ekauser", "hipusers", ...) for the
 * tenant. Every parameter at fault is named in e (400): unknown, repeated, malformed
 * escapes, a filter r has no field for, a value its field's rule refuses, a limit out of
 * 1..LIST_LIMIT_MAX, a cursor that does not open for this tenant, list and filters. */
bool list_query_parse(const struct resource *r, const char *list, const char *tenant, const struct query_param *p,
                      size_t n, const struct keyring *k, struct arena *a, struct list_query *out, struct herr *e);

#endif
