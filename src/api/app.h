/* The server context: the only mutable state shared between requests. */
#ifndef HIP_APP_H
#define HIP_APP_H

#include <pthread.h>
#include <stdbool.h>

#include "auth/revocation.h"
#include "auth/throttle.h"
#include "auth/token.h"
#include "auth/token_cache.h"
#include "http/http.h"
#include "store/store.h"
#include "util/metrics.h"
#include "util/netaddr.h"

struct rcache;

#define ACCESS_TTL 1800
#define REFRESH_TTL_DEFAULT (30L * 24 * 3600)
/* Seconds after a refresh token's first use during which using it again is taken for a
 * retry (a fresh pair, same session) rather than theft (the session ends). 0: strict. */
#define REFRESH_GRACE_DEFAULT 10
#define REFRESH_GRACE_MAX 3600

struct app {
    struct store *store;
    struct keyring keys;
    pthread_key_t token_cache_key; /* each worker thread's cache of verified tokens */
    long refresh_ttl;
    long refresh_grace; /* seconds; see REFRESH_GRACE_DEFAULT */
    struct throttle throttle;
    struct cidrs proxies; /* --trusted-proxy: whose X-Forwarded-For names the client */
    struct revocation_cache revoked; /* revoked clients and sessions, reloaded from the store */
    struct metrics metrics;          /* GET /metrics */
    bool ops_on_admin;               /* /metrics, /healthz, /readyz only on --admin-listen */
    bool no_docs; /* --no-docs: /openapi.json and /docs answer 404 */
    struct rcache *rcache; /* answers of GET by id kept (--cache-mb); NULL: none */
};

/* Opens the store named by db (a file path or a URL) for `threads` worker threads, with at
 * most write_queue writes waiting for the writer (0: the store's default). */
bool app_init(struct app *app, const char *db, unsigned threads, unsigned write_queue, char *err, size_t errlen);
void app_free(struct app *app);
/* This thread's cache of verified tokens, made on first use; NULL without memory. */
struct token_cache *app_token_cache(struct app *app);

/* Run a unit of work on the app's store; false with e set unless it ended STORE_OK. */
bool app_read(struct app *app, struct store_unit *u, struct herr *e);
bool app_write(struct app *app, struct store_unit *u, struct herr *e);
/* The one place a storage status becomes an HTTP error. A unit that ended STORE_ABORT or
 * STORE_NOT_FOUND with its reason in e keeps it; anything the storage failed at replaces it. */
void api_store_error(const struct store_unit *u, struct herr *e);

/* Can the store serve now (GET /readyz)? false with the reason in e (a 503). */
bool app_ready(struct app *app, struct herr *e);

/* Is this access token's client or session revoked? Fails closed (503) when the
 * revocation lists cannot be had fresh. */
bool app_token_revoked(struct app *app, const struct principal *p, struct herr *e);

/* Before the body is read: route, method and, on /cdr/v1, the token. false: answered
 * already (404, 405, 401). ctx is the struct app. */
bool api_precheck(void *ctx, struct request *rq);
/* Runs the handler of a request that passed api_precheck; fills rq->resp. */
void api_handle(void *ctx, struct request *rq);

#endif
