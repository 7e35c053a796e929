/* The server context: the only mutable state shared between requests. */
#ifndef HIP_APP_H
#define HIP_APP_H

#include <pthread.h>
#include <stdbool.h>

#include "auth/token.h"
#include "http/http.h"
#include "store/store.h"

struct app {
    char db_path[4096];
    struct keyring keys;
    pthread_key_t conn_key; /* each worker thread's store connection */
};

bool app_init(struct app *app, const char *db_path, struct herr *e);
void app_free(struct app *app);
/* This thread's store connection, opened on first use and closed when the thread ends. */
struct store_conn *app_store(struct app *app, struct herr *e);

/* Routes one assembled request to its handler; fills rq->resp. */
void api_handle(struct app *app, struct request *rq);

#endif
