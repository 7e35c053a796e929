/* URL paths to routes. Pure: unit-tested and fuzzed. The path arrives raw (the
 * server turns off libmicrohttpd's unescaping) so an encoded '/' or NUL in an id
 * can never reach another route. */
#ifndef HIP_ROUTER_H
#define HIP_ROUTER_H

#include <stdbool.h>

#include "model/field.h"
#include "util/arena.h"
#include "util/metrics.h"

enum route_kind {
    RT_NOT_FOUND,
    RT_COLLECTION,    /* /cdr/v1/{ekauser|doctor|clinic}/ */
    RT_ITEM,          /* /cdr/v1/{resource}/{id}/ */
    RT_BUSINESS_INFO, /* /cdr/v1/get_business_info/ */
    RT_HIPUSERS,      /* /cdr/v1/hipusers/ */
    RT_HIPUSER,       /* /cdr/v1/hipusers/{id} */
    RT_HISTORY,       /* /cdr/v1/{resource}/{id}/history */
    RT_RESTORE,       /* /cdr/v1/{resource}/{id}/restore */
    RT_CHANGES,       /* /cdr/v1/changes/ */
    RT_LOGIN,         /* /connect-auth/v1/account/login */
    RT_REFRESH_TOKEN, /* /connect-auth/v1/account/refresh-token */
    RT_REFRESH,       /* /connect-auth/v1/account/refresh (deprecated) */
    RT_METRICS,       /* /metrics: Prometheus text */
    RT_HEALTHZ,       /* /healthz: the process is alive */
    RT_READYZ,        /* /readyz: the store can take requests */
    RT_OPENAPI,       /* /openapi.json */
    RT_DOCS,          /* /docs */
    RT_DOCS_FILE,     /* /docs/{file}: id is the file name */
    RT_KINDS          /* the number of kinds: keep last */
};

struct route {
    enum route_kind kind;
    const struct resource *res;
    const char *id; /* percent-decoded, arena-owned; RT_DOCS_FILE: the file name */
};

bool route_match(const char *path, struct arena *a, struct route *out);
/* Methods a route serves, for the Allow header of a 405. */
const char *route_allow(enum route_kind kind);
/* The route's template for the metrics: a fixed name, never anything from the path. */
enum metric_route route_metric(const struct route *rt);
/* Percent-decodes src[0..len); NULL on a malformed escape, an encoded NUL or '/'. */
char *percent_decode(const char *src, size_t len, struct arena *a);
/* Percent-decodes a query-string name or value (NUL-terminated); '/' is an ordinary
 * character there. NULL on a malformed escape or an encoded NUL. */
char *query_decode(const char *src, struct arena *a);

#endif
