/* Shared by the SQLite store's files: the connection and its statement helpers. */
#ifndef HIP_SQLITE_INT_H
#define HIP_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/store.h"

#define STMT_CACHE 128
#define SQL_MAX 2048

struct cached {
    char *sql;
    sqlite3_stmt *st;
};

struct sqlite_conn {
    struct store_conn base;
    sqlite3 *db;
    char path[4096];
    pthread_mutex_t *writer; /* shared by the process's connections, or NULL */
    bool holds_writer;
    struct cached cache[STMT_CACHE];
};

/* A prepared statement for sql, reset and unbound, kept for the connection's life. */
sqlite3_stmt *sq_prep(struct sqlite_conn *c, const char *sql, struct herr *e);
/* Maps an SQLite failure to the error a client should see; always returns false. */
bool sq_fail(struct sqlite_conn *c, int rc, struct herr *e);
const char *sq_text(sqlite3_stmt *st, int i, struct arena *a);
/* sq_prep with n text arguments bound in order (NULL binds SQL NULL). */
sqlite3_stmt *sq_bind_texts(struct sqlite_conn *c, const char *sql, struct herr *e, int n, ...);
/* Runs a statement that returns no rows; *changes (when given) gets the rows it touched. */
bool sq_run(struct sqlite_conn *c, sqlite3_stmt *st, int *changes, struct herr *e);

extern const struct store_auth_ops SQLITE_AUTH_OPS;

#endif
