/* The adapter over libmicrohttpd: request assembly with limits, dispatch, responses,
 * the access log, and a graceful stop on SIGTERM/SIGINT. */
#ifndef HIP_SERVER_H
#define HIP_SERVER_H

#include <stdbool.h>

struct request;
struct metrics;

/* Fills the request's response; called on a worker thread once the request is whole.
 * The HTTP layer knows nothing of what lies behind it. */
typedef void (*request_handler)(void *ctx, struct request *rq);
/* Called as soon as the headers are in, before the body is read: false means the
 * request is answered already (its response is filled) and its body is never read. */
typedef bool (*request_check)(void *ctx, struct request *rq);

struct server_config {
    const char *listen; /* HOST:PORT */
    int threads;
    unsigned max_connections;
    unsigned timeout_s;    /* idle and slow-client timeout */
    bool access_log;
    const char *admin_listen; /* HOST:PORT for /metrics, /healthz, /readyz; NULL: none */
    struct metrics *metrics;  /* counts requests and connections; NULL: none */
};

/* Serves until SIGTERM or SIGINT; returns the process exit code. */
int server_run(request_check precheck, request_handler handle, void *ctx, const struct server_config *cfg);

#endif
