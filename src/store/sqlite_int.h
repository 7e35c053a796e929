/* Shared by the SQLite store's files: connections, the statement cache and helpers. */
#ifndef HIP_SQLITE_INT_H
#define HIP_SQLITE_INT_H

#include <pthread.h>
#include <sqlite3.h>

#include "store/backend.h"
#include "store/sqlite_watch.h"

#define STMT_CACHE 128
#define SQL_MAX 4096

struct cached {
    uint64_t key; /* sq_prep_keyed's key, 0: none */
    uint32_t hash;
    char *sql;
    sqlite3_stmt *st;
    uint64_t used; /* the connection's tick when last handed out */
    uint64_t born; /* the tick when it was prepared: names this entry for good */
};

/* The read path's statements (each resource's two finds, each link view), found again
 * without hashing their SQL: where they sit in the cache, and since when. */
enum { SQ_MEMO_FIND = 0, SQ_MEMO_LINKS = 2 * R_COUNT, SQ_MEMO_MAX = SQ_MEMO_LINKS + MAX_LINKS * R_COUNT };

struct stmt_memo {
    int slot;
    uint64_t born; /* 0: none; valid while cache[slot].born is the same */
};

/* One SQLite connection; it serves one unit at a time, on whichever thread runs it. */
struct sqlite_conn {
    sqlite3 *db;
    struct sqlite_conn *next_idle;
    uint64_t tick;      /* counts statements handed out */
    uint64_t unit_tick; /* tick at the start of the current unit: entries used since are in use */
    int ncached;
    struct cached cache[STMT_CACHE];
    struct stmt_memo memo[SQ_MEMO_MAX];
    /* A reader's transaction kept open after its unit (sqlite.c, read_unit): valid while the
     * WAL's header is still held_hdr, the header read before the transaction began. */
    bool held;
    unsigned char held_hdr[SQ_WATCH_HDR];
};

struct write_item;

/* The writer's count of each tenant's feed (sqlite.c, "the change log"): a tenant's last seq
 * as the writer's transaction has it, so an entry is numbered without a statement. */
struct seq_slot {
    char *b_id; /* NULL: a free slot */
    int64_t last;
    bool known; /* last is right: false after a rollback, until read again */
    bool dirty; /* numbered in this transaction: change_seq is written before the commit */
};
struct seq_cache {
    struct seq_slot *slots; /* open addressing, cap a power of two */
    size_t cap, n;
    char **dirty; /* the b_id of each dirty slot (the slots' own strings) */
    size_t ndirty, dirty_cap;
    int64_t data_version; /* the writer's PRAGMA data_version at its last batch (0: none yet) */
};

struct sqlite_store {
    struct store base;
    char path[4096];
    pthread_mutex_t pool_mu;
    char *memo_sql[SQ_MEMO_MAX]; /* the SQL of each memo statement, built once at open */
    struct sqlite_conn *idle; /* the readers' pool */
    /* Group commit: write units queue here; one writer thread with a connection of its own
     * runs every queued unit in a savepoint of one transaction and commits them at once. */
    struct sqlite_conn *wconn;
    pthread_t writer;
    bool writer_running;
    pthread_mutex_t wq_mu; /* guards the queue, wq_stop and stats */
    pthread_cond_t wq_cv;  /* the writer waits here for work */
    struct write_item *wq_head, *wq_tail;
    unsigned wq_len, wq_cap;
    bool wq_stop;
    struct store_write_stats stats;
    /* Checkpoints: the bulk of the copying runs on a thread of its own (and connection),
     * not in the writer's commits, which every unit of a batch would wait for; the writer
     * copies what is left between two batches, so the WAL can start over. */
    struct sqlite_conn *cconn;
    pthread_t checkpointer;
    bool checkpointer_running;
    pthread_cond_t ckpt_cv;
    bool ckpt_wanted, ckpt_busy; /* guarded by wq_mu */
    unsigned ckpt_passes;        /* passes done since the writer's last: guarded by wq_mu */
    int wal_frames;              /* the WAL's length after the last commit: the writer's own */
    int ckpt_frames;             /* the length past which a checkpoint starts (CHECKPOINT_FRAMES) */
    /* Writes of other processes (store_foreign_epoch); set up once the store is open. */
    struct sq_watch watch;
    bool watching;
    struct seq_cache seqs;       /* the writer's own */
};

/* A connection with the server's settings (WAL, synchronous=FULL, foreign keys, busy timeout). */
struct sqlite_conn *sq_conn_open(const char *path, char *err, size_t errlen);
void sq_conn_close(struct sqlite_conn *c);
/* Marks the start of a unit: statements handed out from now on are in use until the next. */
void sq_conn_unit_start(struct sqlite_conn *c);
/* A prepared statement for sql, reset and unbound, kept in the connection's cache. A full
 * cache drops its least recently used statement that is neither running nor handed out
 * during the current unit; NULL (with *rc) when the statement cannot be prepared or no
 * entry can be dropped. */
sqlite3_stmt *sq_cache_prepare(struct sqlite_conn *c, const char *sql, int *rc);
/* The same for read-path statement `which` (SQ_MEMO_*): the caller always passes the same
 * SQL for a given `which`. */
sqlite3_stmt *sq_cache_prepare_memo(struct sqlite_conn *c, int which, const char *sql, int *rc);

/* The same, on the unit's connection; a failure is recorded on tx. */
sqlite3_stmt *sq_prep(struct store_tx *tx, const char *sql);
/* Statements built from the field tables are also cached under a key naming the operation
 * and its variant (SQL_KEY), so the text need not be built again: sq_cached answers the
 * statement (reset, unbound) or NULL, and then sq_prep_keyed prepares the built text and
 * files it under the key. Building an Eka User's SELECT costs more than running it. */
#define SQL_KEY(op, kind, variant) (((uint64_t)(op) << 48) | ((uint64_t)(kind) << 32) | (uint64_t)(variant))
sqlite3_stmt *sq_cached(struct store_tx *tx, uint64_t key);
sqlite3_stmt *sq_prep_keyed(struct store_tx *tx, uint64_t key, const char *sql);
/* Maps an SQLite failure to a storage status and records it on tx. */
enum store_status sq_fail(struct store_tx *tx, int rc);
const char *sq_text(sqlite3_stmt *st, int i, struct arena *a);
/* sq_prep with n text arguments bound in order (NULL binds SQL NULL). */
sqlite3_stmt *sq_bind_texts(struct store_tx *tx, const char *sql, int n, ...);
/* Runs a statement that returns no rows; *changes (when given) gets the rows it touched. A
 * unique or primary key violation is STORE_CONFLICT on `key`. */
enum store_status sq_run(struct store_tx *tx, sqlite3_stmt *st, const char *key, int *changes);

#define SQ_CONN(tx) ((struct sqlite_conn *)(tx)->conn)

/* Migration 6: the change log entries of the records written before it (sqlite.c). */
bool sq_change_log_backfill(sqlite3 *db);
/* How a filtered list reaches its rows (see choose_driver in sqlite.c). */
enum list_driver {
    LD_LIVE,    /* the tenant's live records in creation order (<table>_live); filters checked per row */
    LD_KEY,     /* an equality filter's index (partner_id, mobile, email, auth_userid): creation order */
    LD_LINK,    /* the link table's rows for the linked id, each record by its id; sorted */
    LD_UPDATED, /* <table>_updated from updated_since; sorted */
};
/* A list's rows get their links LINKS_MANY at a time: the SELECT of view v of r
 * (?1 tenant, ?2..?LINKS_MANY+1 the records' Eka ids). */
#define LINKS_MANY 64
void sq_links_many_sql(const struct resource *r, size_t v, char *sql, size_t cap);
/* A sorted plan is taken when fewer rows than this start there. */
#define LIST_PROBE 10000
#define LIST_FILTERS_MAX 8
struct list_sql {
    char sql[SQL_MAX];
    const char *args[LIST_FILTERS_MAX]; /* bound to ?4, ?5, ... */
    int nargs;
};
/* The SELECT of a filtered list for a driver: ?1 tenant, ?2 the cursor, ?3 the limit,
 * then q->args. -1 when a filter does not apply to the resource (or the driver to the filters). */
int sq_list_sql(const struct resource *r, const struct list_filter *f, enum list_driver d, struct list_sql *q);

extern const struct store_ops SQLITE_OPS;
/* The login tables' operations, filled into SQLITE_OPS. */
enum store_status sq_business_create(struct store_tx *tx, const char *b_id, const char *name);
enum store_status sq_business_get(struct store_tx *tx, const char *b_id, const char **name_out);
enum store_status sq_business_list(struct store_tx *tx, store_cols_fn fn, void *ctx);
enum store_status sq_client_create(struct store_tx *tx, const char *client_id, const char *b_id, const char *name,
                                   const char *secret_hash);
enum store_status sq_client_get(struct store_tx *tx, const char *client_id, struct client_row *out);
enum store_status sq_client_list(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx);
enum store_status sq_client_revoke(struct store_tx *tx, const char *client_id);
enum store_status sq_sharing_key_create(struct store_tx *tx, const char *key_id, const char *owner,
                                        const char *key_hash);
enum store_status sq_sharing_key_owner(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                       const char **key_id_out);
enum store_status sq_sharing_key_revoke(struct store_tx *tx, const char *key_id);
enum store_status sq_session_create(struct store_tx *tx, const char *family, const char *client_id,
                                    const char *b_id, const char *key_id);
enum store_status sq_refresh_insert(struct store_tx *tx, const char *token_hash, const char *family,
                                    int64_t expires_at);
enum store_status sq_refresh_take(struct store_tx *tx, const char *token_hash, struct session_row *out);
enum store_status sq_session_revoke(struct store_tx *tx, const char *family);
enum store_status sq_revocations(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                 const char ***sessions, size_t *nsessions);

/* Idempotency-Keys (sqlite_idem.c). */
enum store_status sq_idem_get(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out);
enum store_status sq_idem_claim(struct store_tx *tx, const char *tenant, const char *key,
                                const struct idem_record *replaces, const struct idem_record *rec);
enum store_status sq_idem_finish(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                 int status, const char *body);
enum store_status sq_idem_release(struct store_tx *tx, const char *tenant, const char *key, const char *holder);
enum store_status sq_idem_purge(struct store_tx *tx, const char *tenant, int64_t before_ms, int max, int *purged);

/* The login throttle's counters (sqlite_throttle.c). */
enum store_status sq_throttle_lock(struct store_tx *tx, const char *key, bool create, struct throttle_row *out);
enum store_status sq_throttle_put(struct store_tx *tx, const char *key, const struct throttle_row *row);
enum store_status sq_throttle_purge(struct store_tx *tx, int64_t before_ms, int max);

#endif
