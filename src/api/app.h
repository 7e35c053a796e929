/* The server context: the only mutable state shared between requests. */
#ifndef HIP_APP_H
#define HIP_APP_H

#include <pthread.h>
#include <stdbool.h>

#include "auth/throttle.h"
#include "auth/token.h"
#include "http/http.h"
#include "store/store.h"
#include "util/netaddr.h"

#define ACCESS_TTL 1800
#define REFRESH_TTL_DEFAULT (30L * 24 * 3600)
/* Seconds after a refresh token's first use during which using it again is taken for a
 * retry (a fresh pair, same session) rather than theft (the session ends). 0: strict. */
#define REFRESH_GRACE_DEFAULT 10
#define REFRESH_GRACE_MAX 3600
/* How stale the revocation snapshot may get: a revoked client is refused within this. */
#define REVOCATION_REFRESH_MS 2000

/* Revoked clients and sessions, reloaded from the store every REVOCATION_REFRESH_MS so
 * a revocation made by any process reaches every worker thread. */
struct revocations {
    pthread_mutex_t mu;
    int64_t loaded_ms;
    char **clients, **sessions; /* sorted */
    size_t nclients, nsessions;
};

struct app {
    char db_path[4096];
    struct keyring keys;
    pthread_key_t conn_key; /* each worker thread's store connection */
    pthread_mutex_t writer; /* the store's writers take turns on it */
    long refresh_ttl;
    long refresh_grace; /* seconds; see REFRESH_GRACE_DEFAULT */
    struct throttle throttle;
    struct cidrs proxies; /* --trusted-proxy: whose X-Forwarded-For names the client */
    struct revocations revoked;
};

bool app_init(struct app *app, const char *db_path, struct herr *e);
void app_free(struct app *app);
/* This thread's store connection, opened on first use and closed when the thread ends. */
struct store_conn *app_store(struct app *app, struct herr *e);

/* Is this access token's client or session revoked? Fails closed on store errors. */
bool app_token_revoked(struct app *app, const struct principal *p, struct herr *e);

/* Before the body is read: route, method and, on /cdr/v1, the token. false: answered
 * already (404, 405, 401). ctx is the struct app. */
bool api_precheck(void *ctx, struct request *rq);
/* Runs the handler of a request that passed api_precheck; fills rq->resp. */
void api_handle(void *ctx, struct request *rq);

#endif
