/* The storage interface. A store is opened by URL and runs units of work: a unit is a
 * function and its context that does one request's reads and writes through the
 * operations below, inside one transaction the store begins and ends itself. Every
 * operation and every unit answers a storage status, never an HTTP code; the API layer
 * maps statuses to HTTP in one place (api_store_error).
 *
 * A unit's function may run more than once (a backend re-runs it after a serialization
 * failure), so it must start from its inputs each time and keep no effect outside the
 * transaction other than memory in the unit's arena. It must not start another unit.
 * Nothing about a unit ties it to the calling thread: a writer thread could take queued
 * units and run each in its own SAVEPOINT of one batch transaction (group commit). */
#ifndef HIP_STORE_H
#define HIP_STORE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "model/field.h"
#include "util/arena.h"

enum store_status {
    STORE_OK = 0,
    STORE_NOT_FOUND,   /* the record or row named does not exist (or is deleted) */
    STORE_CONFLICT,    /* a unique key is taken: store_unit.conflict names it */
    STORE_ABORT,       /* the unit chose to stop: rolled back, its reason is in its context */
    STORE_RETRY,       /* contention (busy, serialization failures past the retries): retry shortly */
    STORE_UNAVAILABLE, /* the storage cannot serve now (disk full, read-only, connection lost) */
    STORE_ERROR,       /* a bug or a broken database: logged */
};

const char *store_status_name(enum store_status st);

struct store;
struct store_tx;
struct metrics;

typedef enum store_status (*store_fn)(struct store_tx *tx, void *ctx);

struct store_unit {
    store_fn fn;
    void *ctx;
    struct arena *arena; /* what the operations hand back lives here */
    /* A unit of many store_try (a bulk import's batch): SQLite's writer runs it in a
     * transaction of its own, never in a group commit's batch (see sqlite.c: run_batch). */
    bool alone;
    /* filled by store_read / store_write */
    enum store_status status;
    const char *conflict; /* STORE_CONFLICT: the field name of the unique key taken (static) */
    int retry_after;      /* STORE_RETRY, STORE_UNAVAILABLE: seconds worth waiting */
    int attempts;         /* how many times fn ran */
};

struct store_options {
    /* The wall clock every stored timestamp comes from, in ms since the epoch; read once
     * when a unit starts. NULL: the system clock. */
    int64_t (*clock_ms)(void *ctx);
    void *clock_ctx;
    /* How many threads will run units at once: the connection pool is sized for them and
     * opened at start (SQLite opens more should a unit find none idle). 0: one. */
    unsigned threads;
    /* SQLite: how many write units may wait for the writer thread; a write that finds the
     * queue full answers STORE_RETRY at once. 0: STORE_WRITE_QUEUE_DEFAULT. */
    unsigned write_queue;
    /* Where commits are counted, with how many units each made durable; NULL: nowhere. */
    struct metrics *metrics;
    /* Migrate no further than this schema version (0: store_schema_version()). For tests that
     * make a database as an older hipusers left it; such a store serves nothing else. */
    int schema_version;
    /* SQLite: the WAL's length in frames past which its pages are copied into the database
     * file (0: the default, 64,000). For tests that want checkpoints without 256 MiB of writes. */
    unsigned checkpoint_frames;
};

#define STORE_WRITE_QUEUE_DEFAULT 1024
#define STORE_WRITE_QUEUE_MAX 100000

/* A file path, sqlite:PATH, sqlite://PATH, or postgresql:// / postgres:// URL. */
enum store_kind { STORE_SQLITE, STORE_POSTGRES };
struct store_url {
    enum store_kind kind;
    char path[4096]; /* SQLite: the database file */
};
/* Parses a --db value; false (with a message in err) when it is neither a file path nor
 * a URL of a known scheme. */
bool store_url_parse(const char *url, struct store_url *out, char *err, size_t errlen);

/* The URL as it may be shown: a PostgreSQL password (in the user part or a password=
 * parameter) becomes ***. */
void store_url_redact(const char *url, char *out, size_t cap);

/* Opens (and migrates) the store; NULL with a message in err. */
struct store *store_open(const char *url, const struct store_options *opt, char *err, size_t errlen);
void store_close(struct store *s);
enum store_kind store_kind(const struct store *s);
/* The schema version this hipusers brings a database to. */
int store_schema_version(void);

/* Shows fn the text of every SQL statement a store prepares from now on, from whichever
 * thread prepares it (SQLite: each time a connection prepares a statement for its cache;
 * PostgreSQL: each time a connection prepares one, or runs one unprepared). For tests: the
 * store suite checks that each statement on a tenant's table names the tenant. NULL: none.
 * Costs one atomic load per preparation when unset. */
typedef void (*store_sql_observer)(void *ctx, const char *sql);
void store_set_sql_observer(store_sql_observer fn, void *ctx);

/* Run a unit in a read-only or in a read-write transaction. The unit's result is
 * committed only when fn answers STORE_OK and no operation failed; any other answer
 * rolls everything back. The first failure of an operation (anything but STORE_OK and
 * STORE_NOT_FOUND) dooms the transaction: later operations answer it again and the
 * unit ends with it, whatever fn answers. Returns u->status. */
enum store_status store_read(struct store *s, struct store_unit *u);
enum store_status store_write(struct store *s, struct store_unit *u);

/* Can the store serve now (GET /readyz): it answers a read, its schema is the version this
 * build migrates to, and writes are not paused? STORE_OK, or the status that says why not
 * with the reason (static text) in *why and the seconds worth waiting in *retry_after. */
enum store_status store_ready(struct store *s, const char **why, int *retry_after);

/* Group commit, as far as the backend has it (SQLite): write units queue for one writer
 * thread, which runs each queued unit in a savepoint of one transaction and commits them
 * together with one sync. Counters since the store was opened. */
#define STORE_BATCH_BUCKETS 9
struct store_write_stats {
    uint64_t batches;        /* write transactions begun, one per batch */
    uint64_t units;          /* write units taken into them */
    uint64_t failed_batches; /* batches that did not commit: each of their units failed with it */
    uint64_t queue_full;     /* write units refused because the queue was full */
    unsigned max_batch;      /* the most units one batch held */
    unsigned queued;         /* write units waiting right now */
    unsigned queue_cap;      /* the queue's bound */
    /* batches by size: 1, 2-3, 4-7, 8-15, 16-31, 32-63, 64-127, 128-255, 256 and more */
    uint64_t sizes[STORE_BATCH_BUCKETS];
};
/* false (and zeros) when the backend has no writer queue. */
bool store_write_stats(struct store *s, struct store_write_stats *out);

/* For answers kept in memory above the store (src/api/rcache.c): true with *epoch when the
 * stored data is known to be as of epoch, apart from this process's own writes. The epoch
 * grows each time another process is seen changing the data (SQLite: `hipusers import` into
 * a running server's file). false: the store cannot tell (PostgreSQL: other servers write
 * it), or cannot just now (a commit is being accounted for): read the store. */
bool store_foreign_epoch(struct store *s, uint64_t *epoch);

/* The unit's time, from the store's clock: ms since the epoch. */
int64_t store_now(const struct store_tx *tx);
/* The same time as the unit's writes store it (store_format_time's form); lives as long as tx. */
const char *store_now_text(const struct store_tx *tx);
/* A time as stored: UTC ISO 8601 with milliseconds, "2024-05-01T12:34:56.789Z". */
void store_format_time(int64_t ms, char out[32]);

/* ---- the onboarding resources ---- */

/* Creates a record with a fresh id (written to id_out). STORE_CONFLICT: a unique field. */
enum store_status store_insert(struct store_tx *tx, const struct resource *r, const char *tenant,
                               const struct fval *vals, char *id_out, size_t id_cap);
/* Changes the fields whose state is V_SET or V_NULL of a live record. */
enum store_status store_update(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id,
                               const struct fval *vals);
/* key is the Eka id or, failing that, the partner_id, among live records of the tenant. */
enum store_status store_find(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                             struct record *out);
enum store_status store_soft_delete(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *id);
/* Maps Eka ids (or partner ids) to the Eka ids of the tenant's live records of target;
 * ids_out[i] is NULL for a key that names none. */
enum store_status store_resolve(struct store_tx *tx, const struct resource *target, const char *tenant,
                                bool by_partner, const char *const *keys, size_t n, const char **ids_out);
/* Sets (replace) or extends the links of the tenant's record id on its side of rel (the
 * others are the tenant's too: store_resolve's answers); links keep the order they were
 * given in, a link made twice is kept once. */
enum store_status store_link(struct store_tx *tx, enum rel rel, int side, const char *tenant, const char *id,
                             const char *const *others, size_t n, bool replace);
/* Up to limit live records of the tenant after cursor `after` (0: from the start), in
 * creation order; *next is the cursor after the last one returned. */
enum store_status store_list(struct store_tx *tx, const struct resource *r, const char *tenant, int64_t after,
                             int limit, struct record *out, int *count, int64_t *next);

/* ---- bulk import (hipusers import): a record written as an export gave it ---- */

/* Writes a whole record with a given Eka id and times. exists: the live record `id` of the
 * tenant is overwritten (every column from vals: V_SET values are set, every other column is
 * cleared); otherwise a record is inserted with `id` (NULL: a fresh id). created_at and
 * updated_at are stored times (store_format_time's form); NULL: the unit's time (an
 * overwrite keeps created_at). The id written is copied to id_out. STORE_CONFLICT "id": the
 * id is taken (by another tenant's record, or a deleted one); other conflicts name a field. */
enum store_status store_put(struct store_tx *tx, const struct resource *r, const char *tenant, bool exists,
                            const char *id, const char *created_at, const char *updated_at,
                            const struct fval *vals, char *id_out, size_t id_cap);

/* Runs fn inside a savepoint of a write unit. When fn answers, or one of its operations fails
 * with, STORE_CONFLICT, STORE_NOT_FOUND or STORE_ABORT, everything fn wrote is undone and the
 * unit goes on as if fn had not run (the failure does not doom it); *conflict names the key
 * of a conflict. Any other failure dooms the unit as usual. No store_try inside another. */
enum store_status store_try(struct store_tx *tx, store_fn fn, void *ctx, const char **conflict);
/* Like store_find, deleted records too: the Eka id among all the tenant's records, else the
 * partner_id of a live record, else that of the most recently deleted one. *deleted tells
 * whether the record found is deleted. */
enum store_status store_find_any(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                                 struct record *out, bool *deleted);
/* Brings the tenant's soft-deleted record id (an Eka id) back with its fields and links, in
 * its place in creation order, updated_at now. STORE_NOT_FOUND: no deleted record with that
 * id; STORE_CONFLICT: one of its unique values is taken by a live record (named). */
enum store_status store_restore(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id);

/* ---- the change log: each record's history and the tenant's feed ---- */

enum change_action { CHANGE_CREATE, CHANGE_UPDATE, CHANGE_DELETE, CHANGE_RESTORE };
const char *change_action_name(enum change_action a);

/* One write of one record. */
struct change_entry {
    int64_t seq;               /* the tenant's sequence: strictly increasing in commit order */
    const struct resource *r;  /* what kind of record */
    const char *id;            /* its Eka id */
    int64_t version;           /* the record's own count of entries: 1 is its create */
    enum change_action action;
    const char *at;            /* the unit's time, as stored */
    const char *client_id;     /* the caller's API client, NULL when unknown */
    const char *request_id;    /* the X-Request-Id of the write, NULL when unknown */
    const char *changes;       /* a JSON object as text: {"field":{"from":..,"to":..}} */
};

/* Appends an entry to the tenant's log in the unit's transaction (so it commits or rolls
 * back with the change): e->version (the record's next) and e->at (the unit's time) are
 * assigned here; the other members are the caller's. The entry's place in the tenant's
 * feed (seq, numbered 1, 2, .. without gaps in commit order) is given by the backend when
 * it can without serialising the tenant's writers through their commits: SQLite's one
 * writer numbers it here (e->seq); PostgreSQL leaves it to store_feed_seal (e->seq 0).
 * The record (e->r, e->id) is the tenant's and exists, written earlier in the unit or
 * before: SQLite keeps a record's history as a chain from its row (STORE_ERROR without). */
enum store_status store_log_append(struct store_tx *tx, const char *tenant, struct change_entry *e);
/* In a write unit: numbers the tenant's committed entries that have no seq yet, after the
 * tenant's last one, in the order they were appended. Entries committed later get later
 * numbers, so a reader that has seen seq N never meets a new entry numbered N or less.
 * A no-op where store_log_append numbers entries itself (store_feed_needs_seal false). */
enum store_status store_feed_seal(struct store_tx *tx, const char *tenant);
bool store_feed_needs_seal(const struct store *s);
/* Every entry of record id (an Eka id) of the tenant, oldest first, in the unit's arena;
 * STORE_NOT_FOUND when it has none. */
enum store_status store_history(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id,
                                struct change_entry **out, size_t *n);
/* Up to limit entries of the tenant with seq > after, in seq order. */
enum store_status store_changes(struct store_tx *tx, const char *tenant, int64_t after, int limit,
                                struct change_entry *out, int *count);

/* ---- lists with filters (issue 10) ---- */

/* Which records a list keeps; NULL members do not filter. Values are as stored: the API
 * layer normalises them with the model's rules first. */
struct list_filter {
    const char *partner_id;
    const char *mobile;        /* the 10 national digits */
    const char *email_key;     /* text_fold_key of the email (the resource's email key column) */
    const char *auth_userid;
    const char *clinic_id;     /* Eka id: records linked to that live clinic of the tenant */
    const char *doctor_id;     /* Eka id: records linked to that live doctor of the tenant */
    const char *updated_since; /* a time as stored (store_format_time): updated_at >= it */
};

/* store_list keeping only the records that match every filter set (f NULL: all): up to
 * limit live records after cursor `after`, in creation order; *next is the cursor after the
 * last one returned, and *more (when given) tells whether another matching record follows
 * it. A filter the resource has no column or link for is a bug of the caller: STORE_ERROR. */
enum store_status store_list_where(struct store_tx *tx, const struct resource *r, const char *tenant,
                                   const struct list_filter *f, int64_t after, int limit, struct record *out,
                                   int *count, int64_t *next, bool *more);

/* ---- idempotency keys of creates (issue 10) ---- */

/* One Idempotency-Key of a tenant. A key is claimed (running) by one request at a time;
 * holder is that claim's random token, so a claim is changed only by whoever read it. */
struct idem_record {
    const char *request_hash; /* what the key was first used for (method, path, body) */
    const char *holder;
    bool done;                /* the answer is stored */
    int status;               /* done: the answer */
    const char *body;
    int64_t created_ms;       /* when the key was first claimed (ms since the epoch) */
    int64_t lease_until_ms;   /* running: after this the claim may be taken over */
};

enum store_status store_idem_get(struct store_tx *tx, const char *tenant, const char *key, struct idem_record *out);
/* Claims the key: inserts a running record (replaces NULL), or replaces the record as it was
 * read (an expired key, or a claim whose holder stopped): its holder and its state, so a claim
 * whose answer was stored since it was read is not taken over. STORE_CONFLICT (field
 * "Idempotency-Key") when the key exists and is not that record any more. */
enum store_status store_idem_claim(struct store_tx *tx, const char *tenant, const char *key,
                                   const struct idem_record *replaces, const struct idem_record *rec);
/* Stores the answer of a running claim held by holder; STORE_NOT_FOUND when the claim is
 * no longer held by it (taken over after its lease). */
enum store_status store_idem_finish(struct store_tx *tx, const char *tenant, const char *key, const char *holder,
                                    int status, const char *body);
/* Drops a running claim held by holder (its request changed nothing); STORE_NOT_FOUND
 * when it is not held by it. */
enum store_status store_idem_release(struct store_tx *tx, const char *tenant, const char *key, const char *holder);
/* Deletes up to max keys of the tenant first claimed before before_ms; *purged (when
 * given) gets how many. */
enum store_status store_idem_purge(struct store_tx *tx, const char *tenant, int64_t before_ms, int max,
                                   int *purged);

/* ---- the login throttle (issue 8): counters every server of the store shares ---- */

/* One counter of the login throttle: its key is the caller's opaque name for it (a keyed
 * hash: no client id or address reaches the store), limit how many failures and attempts in
 * flight together it allows per window. */
struct throttle_counter {
    const char *key;
    int limit;
};

/* Reserves one attempt on every counter at once, at the unit's time. A counter whose window
 * (window_s seconds from its first attempt) is over starts a new one, its failures forgotten.
 * When every counter's failures plus attempts in flight are under its limit, each gets one
 * more attempt in flight and *wait is 0; otherwise nothing is reserved and *wait is the
 * seconds until the window of the counter at its limit ends (the longest such, 1..window_s).
 * Counters of every unit are locked while it runs (writes of all servers take turns on
 * them). An attempt in flight counts until store_throttle_end, or at least one window and at
 * most two when it never ends (its server stopped); a counter with nothing left to count is
 * deleted, a few per call. Write units only. */
enum store_status store_throttle_begin(struct store_tx *tx, const struct throttle_counter *c, size_t n, int window_s,
                                       int *wait);
/* Ends one attempt store_throttle_begin reserved on key: failed adds a failure to the
 * counter's window; clear (a success) forgets its failures; neither: the attempt counts for
 * nothing (the check could not be made). A counter gone already is left alone. */
enum store_status store_throttle_end(struct store_tx *tx, const char *key, bool failed, bool clear);

/* ---- business login: ids and hashes are made by the caller; the store keeps them ---- */

struct client_row {
    const char *client_id, *b_id, *name, *secret_hash, *created_at;
    bool revoked;
};

struct session_row {
    const char *family, *client_id, *b_id;
    int64_t expires_at; /* unix seconds */
    int64_t used_at;    /* the refresh token's first use (unix seconds), when used */
    bool used, revoked;
};

/* Called per row of an admin listing: up to four text columns. */
typedef void (*store_cols_fn)(void *ctx, const char *const *cols, int n);

enum store_status store_business_create(struct store_tx *tx, const char *b_id, const char *name);
/* name_out may be NULL */
enum store_status store_business_get(struct store_tx *tx, const char *b_id, const char **name_out);
enum store_status store_business_list(struct store_tx *tx, store_cols_fn fn, void *ctx);
enum store_status store_client_create(struct store_tx *tx, const char *client_id, const char *b_id, const char *name,
                                      const char *secret_hash);
enum store_status store_client_get(struct store_tx *tx, const char *client_id, struct client_row *out);
/* b_id NULL: every client */
enum store_status store_client_list(struct store_tx *tx, const char *b_id, store_cols_fn fn, void *ctx);
/* STORE_NOT_FOUND: no such client, or revoked already */
enum store_status store_client_revoke(struct store_tx *tx, const char *client_id);
enum store_status store_sharing_key_create(struct store_tx *tx, const char *key_id, const char *owner,
                                           const char *key_hash);
/* The owner business and key id of an unrevoked sharing key. */
enum store_status store_sharing_key_owner(struct store_tx *tx, const char *key_hash, const char **owner_out,
                                          const char **key_id_out);
/* Revokes the key and every session opened with it; STORE_NOT_FOUND: none active. */
enum store_status store_sharing_key_revoke(struct store_tx *tx, const char *key_id);
/* A login starts a session (the family of its refresh tokens); key_id: the sharing key used, or NULL. */
enum store_status store_session_create(struct store_tx *tx, const char *family, const char *client_id,
                                       const char *b_id, const char *key_id);
enum store_status store_refresh_insert(struct store_tx *tx, const char *token_hash, const char *family,
                                       int64_t expires_at);
/* Looks a refresh token up and marks it used; out->used tells it had been used before
 * (at out->used_at: a later use never moves it). */
enum store_status store_refresh_take(struct store_tx *tx, const char *token_hash, struct session_row *out);
enum store_status store_session_revoke(struct store_tx *tx, const char *family);
/* Revoked clients (all), and sessions revoked since `since` (unix seconds), each sorted. */
enum store_status store_revocations(struct store_tx *tx, int64_t since, const char ***clients, size_t *nclients,
                                    const char ***sessions, size_t *nsessions);

#endif
