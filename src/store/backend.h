/* What a storage backend implements, and the transaction state the generic part
 * (store.c) shares with it. Only src/store includes this. */
#ifndef HIP_STORE_BACKEND_H
#define HIP_STORE_BACKEND_H

#include <pthread.h>

#include "store/store.h"

enum savepoint_op { SAVEPOINT_BEGIN, SAVEPOINT_RELEASE, SAVEPOINT_ROLLBACK };

/* A login throttle counter as stored (store_throttle_begin): the window's start and failures,
 * the attempts in flight reserved in it and those left from the window before. */
struct throttle_row {
    int64_t window_start_ms;
    int failures, pending, prev_pending;
};

struct store_ops {
    enum store_status (*insert)(struct store_tx *tx, const struct resource *r, const char *tenant,
                                const struct fval *vals, char *id_out, size_t id_cap);
    enum store_status (*update)(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id,
                                const struct fval *vals);
    enum store_status (*find)(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                              struct record *out);
    enum store_status (*soft_delete)(struct store_tx *tx, const struct resource *r, const char *tenant,
                                     const char *id);
    enum store_status (*resolve)(struct store_tx *tx, const struct resource *target, const char *tenant,
                                 bool by_partner, const char *const *keys, size_t n, const char **ids_out);
    enum store_status (*link)(struct store_tx *tx, enum rel rel, int side, const char *tenant, const char *id,
                              const char *const *others, size_t n, bool replace);
    enum store_status (*list)(struct store_tx *tx, const struct resource *r, const char *tenant, int64_t after,
                              int limit, struct record *out, int *count, int64_t *next);

    enum store_status (*put)(struct store_tx *tx, const struct resource *r, const char *tenant, bool exists,
                             const char *id, const char *created_at, const char *updated_at,
                             const struct fval *vals, char *id_out, size_t id_cap);
    /* SAVEPOINT, RELEASE, ROLLBACK TO (and RELEASE) of store_try's one savepoint */
    enum store_status (*savepoint)(struct store_tx *tx, enum savepoint_op op);
    enum store_status (*find_any)(struct store_tx *tx, const struct resource *r, const char *tenant,
                                  const char *key, struct record *out, bool *deleted);
    enum store_status (*restore)(struct store_tx *tx, const struct resource *r, const char *tenant,
                                 const char *id);
    enum store_status (*log_append)(struct store_tx *tx, const char *tenant, struct change_entry *e);
    enum store_status (*history)(struct store_tx *tx, const struct resource *r, const char *tenant,
                                 const char *id, struct change_entry **out, size_t *n);
    enum store_status (*changes)(struct store_tx *tx, const char *tenant, int64_t after, int limit,
                                 struct change_entry *out, int *count);
    /* optional: numbers committed entries that store_log_append left unnumbered */
    enum store_status (*feed_seal)(struct store_tx *tx, const char *tenant);
    enum store_status (*list_where)(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const struct list_filter *f, int64_t after, int limit, struct record *out,
                                    int *count, int64_t *next, bool *more);
    enum store_status (*idem_get)(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out);
    enum store_status (*idem_claim)(struct store_tx *tx, const char *tenant, const char *key,
                                    const struct idem_record *replaces, const struct idem_record *rec);
    enum store_status (*idem_finish)(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                     int status, const char *body);
    enum store_status (*idem_release)(struct store_tx *tx, const char *tenant, const char *key, const char *holder);
    enum store_status (*idem_purge)(struct store_tx *tx, const char *tenant, int64_t before_ms, int max,
                                    int *purged);

    /* The counter of key, locked for the rest of the unit; create: a counter never seen (or
     * deleted) is made empty with its window starting at the unit's time, else it is
     * STORE_NOT_FOUND. */
    enum store_status (*throttle_lock)(struct store_tx *tx, const char *key, bool create, struct throttle_row *out);
    enum store_status (*throttle_put)(struct store_tx *tx, const char *key, const struct throttle_row *row);
    /* Deletes up to max counters whose window started before before_ms (skipping any another
     * unit holds). */
    enum store_status (*throttle_purge)(struct store_tx *tx, int64_t before_ms, int max);

    enum store_status (*business_create)(struct store_tx *tx, const char *b_id, const char *name);
    enum store_status (*business_get)(struct store_tx *tx, const char *b_id, const char **name_out);
    enum store_status (*business_list)(struct store_tx *tx, store_cols_fn fn, void *ctx);
    enum store_status (*client_create)(struct store_tx *tx, const char *client_id, const char *b_id,
                                       const char *name, const char *secret_hash);
    enum store_status (*client_get)(struct store_tx *tx, const char *client_id, struct client_row *out);
    enum store_status (*client_list)(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx);
    enum store_status (*client_revoke)(struct store_tx *tx, const char *client_id);
    enum store_status (*sharing_key_create)(struct store_tx *tx, const char *key_id, const char *owner,
                                            const char *key_hash);
    enum store_status (*sharing_key_owner)(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                           const char **key_id_out);
    enum store_status (*sharing_key_revoke)(struct store_tx *tx, const char *key_id);
    enum store_status (*session_create)(struct store_tx *tx, const char *family, const char *client_id,
                                        const char *b_id, const char *key_id);
    enum store_status (*refresh_insert)(struct store_tx *tx, const char *token_hash, const char *family,
                                        int64_t expires_at);
    enum store_status (*refresh_take)(struct store_tx *tx, const char *token_hash, struct session_row *out);
    enum store_status (*session_revoke)(struct store_tx *tx, const char *family);
    enum store_status (*revocations)(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                     const char ***sessions, size_t *nsessions);
};

struct store_backend {
    /* One attempt of a unit: take a connection, begin, store_run_fn(tx), commit when it
     * answers STORE_OK or roll back, give the connection back (never inside a
     * transaction). Sets tx->rerun when the whole unit should run again. */
    enum store_status (*run)(struct store *s, struct store_tx *tx);
    void (*close)(struct store *s);
    /* optional: the writer queue's counters (store_write_stats) */
    void (*write_stats)(struct store *s, struct store_write_stats *out);
    /* The backend counts its commits itself (metrics_store_commit with the batch's size);
     * otherwise every write unit that ends STORE_OK is counted as one commit of one. */
    bool counts_commits;
    int max_attempts; /* runs of one unit at most (re-runs after serialization failures) */
    const struct store_ops *ops;
    /* store_ready; NULL: a read unit that answers is enough. */
    enum store_status (*ready)(struct store *s, const char **why, int *retry_after);
    /* store_foreign_epoch; NULL: false */
    bool (*foreign_epoch)(struct store *s, uint64_t *epoch);
};

struct store {
    const struct store_backend *be;
    enum store_kind kind;
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    struct metrics *metrics; /* store_options.metrics */
    pthread_key_t in_unit; /* set while this thread runs a unit's function: it must not start another */
};

struct store_tx {
    struct store *s;
    struct store_unit *unit;
    struct arena *a;
    void *conn; /* the backend's connection */
    bool write;
    int64_t now_ms;
    char now_text[32]; /* now_ms as stored */
    enum store_status failed; /* the first failure of an operation: the transaction is doomed */
    const char *conflict;
    int retry_after;
    bool rerun;
    bool in_try; /* inside store_try */
};

/* For backends: runs the unit's function (on whichever thread runs units); the first
 * operation failure wins over its answer. */
enum store_status store_run_fn(struct store_tx *tx);
/* For backends: the store's clock when called, for a stamp that must not predate the
 * statement writing it (tx->now_ms is the unit's start, before any wait for the database). */
int64_t store_clock_now(const struct store_tx *tx);
/* For backends: a failure with its details (conflict: the field; retry_after: seconds). */
enum store_status store_fail(struct store_tx *tx, enum store_status st, const char *conflict, int retry_after);

/* For backends: shows a statement being prepared to the observer, if any (store_set_sql_observer). */
void store_observe_sql(const char *sql);

/* Initialises the generic part of a backend's store. */
bool store_base_init(struct store *s, const struct store_backend *be, enum store_kind kind,
                     const struct store_options *opt);
void store_base_free(struct store *s);

struct store *store_sqlite_open(const char *path, const struct store_options *opt, char *err, size_t errlen);
struct store *store_pg_open(const char *url, const struct store_options *opt, char *err, size_t errlen);

/* SQL built from the field tables, the same in both dialects. sqlcat appends to a statement
 * being built; one that would not fit is a bug in the tables, stopped (abort) rather than
 * truncated or written past the buffer. */
void sqlcat(char *buf, size_t cap, int *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
/* The SELECT list of find and list: rid, id, created_at, updated_at, then the resource's
 * columns (and, with_deleted, deleted_at after them: column select_ncols(r)), FROM its table. */
int select_cols_ex(const struct resource *r, char *buf, size_t cap, bool with_deleted);
static inline int select_cols(const struct resource *r, char *buf, size_t cap)
{
    return select_cols_ex(r, buf, cap, false);
}
int select_ncols(const struct resource *r);

#endif
