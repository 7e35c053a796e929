#include "api/app.h"

#include <stdio.h>
#include <string.h>

static void close_conn(void *p)
{
    struct store_conn *c = p;
    c->ops->close(c);
}

bool app_init(struct app *app, const char *db_path, struct herr *e)
{
    memset(app, 0, sizeof *app);
    snprintf(app->db_path, sizeof app->db_path, "%s", db_path);
    if (pthread_key_create(&app->conn_key, close_conn) != 0) {
        herr_set(e, 500, "pthread_key_create failed");
        return false;
    }
    /* Open once here so migrations run, and a bad path fails at start, not on the first request. */
    struct store_conn *c = app_store(app, e);
    return c != NULL;
}

void app_free(struct app *app)
{
    struct store_conn *c = pthread_getspecific(app->conn_key);
    if (c) {
        pthread_setspecific(app->conn_key, NULL);
        close_conn(c);
    }
    pthread_key_delete(app->conn_key);
}

struct store_conn *app_store(struct app *app, struct herr *e)
{
    struct store_conn *c = pthread_getspecific(app->conn_key);
    if (c)
        return c;
    c = store_sqlite_open(app->db_path, e);
    if (c)
        pthread_setspecific(app->conn_key, c);
    return c;
}
