/* The adapter over libmicrohttpd: request assembly with limits, dispatch, responses,
 * the access log, and a graceful stop on SIGTERM/SIGINT. */
#ifndef HIP_SERVER_H
#define HIP_SERVER_H

#include <stdbool.h>

struct app;

struct server_config {
    const char *listen; /* HOST:PORT */
    int threads;
    unsigned max_connections;
    unsigned timeout_s;    /* idle and slow-client timeout */
    bool access_log;
};

/* Serves until SIGTERM or SIGINT; returns the process exit code. */
int server_run(struct app *app, const struct server_config *cfg);

#endif
