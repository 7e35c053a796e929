/* The storage interface. Handlers speak only this; SQLite implements it today and
 * PostgreSQL will implement the same operations later. A store_conn belongs to one
 * thread at a time; every request runs inside one transaction on it. */
#ifndef HIP_STORE_H
#define HIP_STORE_H

#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>

#include "model/field.h"
#include "util/arena.h"
#include "util/err.h"

struct store_conn;

/* Called for each record of a list; return false to stop early. */
typedef bool (*store_row_fn)(void *ctx, const struct record *rec);

enum find_result { FIND_ERROR = -1, FIND_OK = 0, FIND_MISSING = 1 };

struct store_ops {
    void (*close)(struct store_conn *c);
    bool (*begin)(struct store_conn *c, bool write, struct herr *e);
    bool (*commit)(struct store_conn *c, struct herr *e);
    void (*rollback)(struct store_conn *c);

    /* Creates a record with a fresh id (written to id_out). */
    bool (*insert)(struct store_conn *c, const struct resource *r, const char *tenant, const struct fval *vals,
                   struct arena *a, char *id_out, size_t id_cap, struct herr *e);
    /* Changes the fields whose state is V_SET or V_NULL. */
    bool (*update)(struct store_conn *c, const struct resource *r, const char *tenant, const char *id,
                   const struct fval *vals, struct arena *a, struct herr *e);
    /* key is the Eka id or, failing that, the partner_id, among undeleted records of the tenant. */
    enum find_result (*find)(struct store_conn *c, const struct resource *r, const char *tenant, const char *key,
                             struct arena *a, struct record *out, struct herr *e);
    bool (*soft_delete)(struct store_conn *c, const struct resource *r, const char *tenant, const char *id,
                        struct herr *e);
    /* Maps Eka ids or partner ids of the tenant's undeleted records to Eka ids; an unknown one
     * is a 400 naming it under the field's name. */
    bool (*resolve)(struct store_conn *c, const struct resource *target, const char *tenant, const char *field,
                    bool by_partner, const char **keys, size_t n, struct arena *a, const char **ids_out,
                    struct herr *e);
    /* Sets (replace=true) or extends the links of record id on its side of rel. */
    bool (*link)(struct store_conn *c, enum rel rel, int side, const char *id, const char **others, size_t n,
                 bool replace, struct herr *e);
    /* Streams up to limit undeleted records with cursor > *cursor in creation order; advances *cursor. */
    bool (*list)(struct store_conn *c, const struct resource *r, const char *tenant, int64_t *cursor, int limit,
                 struct arena *a, store_row_fn fn, void *ctx, int *count, struct herr *e);
};

/* Business login. Ids and hashes are made by the caller; the store only keeps them. */
struct client_row {
    const char *client_id, *b_id, *name, *secret_hash, *created_at;
    bool revoked;
};

struct session_row {
    const char *family, *client_id, *b_id;
    int64_t expires_at;
    int64_t used_at; /* the refresh token's first use (unix seconds), when used */
    bool used, revoked;
};

/* Called per row of an admin listing: up to four text columns. */
typedef void (*store_cols_fn)(void *ctx, const char *const *cols, int n);

struct store_auth_ops {
    bool (*business_create)(struct store_conn *c, const char *b_id, const char *name, struct herr *e);
    /* name_out may be NULL; FIND_MISSING when there is no such business */
    enum find_result (*business_get)(struct store_conn *c, const char *b_id, struct arena *a, const char **name_out,
                                     struct herr *e);
    bool (*business_list)(struct store_conn *c, store_cols_fn fn, void *ctx, struct herr *e);
    bool (*client_create)(struct store_conn *c, const char *client_id, const char *b_id, const char *name,
                          const char *secret_hash, struct herr *e);
    enum find_result (*client_get)(struct store_conn *c, const char *client_id, struct arena *a,
                                   struct client_row *out, struct herr *e);
    bool (*client_list)(struct store_conn *c, const char *b_id, store_cols_fn fn, void *ctx, struct herr *e);
    enum find_result (*client_revoke)(struct store_conn *c, const char *client_id, struct herr *e);
    bool (*sharing_key_create)(struct store_conn *c, const char *key_id, const char *owner, const char *key_hash,
                               struct herr *e);
    /* The owner business and key id of an unrevoked sharing key. */
    enum find_result (*sharing_key_owner)(struct store_conn *c, const char *key_hash, struct arena *a,
                                          const char **owner_out, const char **key_id_out, struct herr *e);
    /* Revokes the key and every session opened with it. */
    enum find_result (*sharing_key_revoke)(struct store_conn *c, const char *key_id, int64_t now, struct herr *e);
    /* A login starts a session (the family of its refresh tokens); key_id: the sharing key used, or NULL. */
    bool (*session_create)(struct store_conn *c, const char *family, const char *client_id, const char *b_id,
                           const char *key_id, int64_t now, struct herr *e);
    bool (*refresh_insert)(struct store_conn *c, const char *token_hash, const char *family, int64_t expires_at,
                           int64_t now, struct herr *e);
    /* Looks a refresh token up and marks it used; out->used tells it had been used before
     * (at out->used_at: a later use never moves it). */
    enum find_result (*refresh_take)(struct store_conn *c, const char *token_hash, int64_t now, struct arena *a,
                                     struct session_row *out, struct herr *e);
    bool (*session_revoke)(struct store_conn *c, const char *family, int64_t now, struct herr *e);
    /* Revoked clients (all), and sessions revoked since `since` (unix seconds). */
    bool (*revocations)(struct store_conn *c, int64_t since, struct arena *a, const char ***clients, size_t *nclients,
                        const char ***sessions, size_t *nsessions, struct herr *e);
};

struct store_conn {
    const struct store_ops *ops;
    const struct store_auth_ops *auth;
};

/* Opens a connection to the SQLite database at path, migrating the schema on the way.
 * Connections of one process that share `writer` take turns to write without sleeping
 * in SQLite's busy handler; NULL for a lone connection (the CLI). */
struct store_conn *store_sqlite_open(const char *path, pthread_mutex_t *writer, struct herr *e);

#endif
