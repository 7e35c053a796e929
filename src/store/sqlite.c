/* The SQLite implementation of the storage interface: WAL with synchronous=FULL (a
 * committed unit is on disk), a pool of connections each with its own statement cache
 * for reads, and group commit for writes: store_write queues its unit for one writer
 * thread, which runs every unit waiting in a savepoint of one transaction and commits them
 * together, so one WAL sync covers them all, then hands each caller its unit's status. */
#include <errno.h>
#include <fcntl.h>
#include <semaphore.h>
#include <signal.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/ids.h"
#include "store/migrations.h"
#include "store/sqlite_int.h"
#include "store/sqlite_walbuf.h"
#include "util/fiber.h"
#include "util/log.h"
#include "util/metrics.h"

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

/* The storage status of an SQLite failure, and the seconds worth waiting before a retry. */
static enum store_status rc_status(int rc, int *retry_after)
{
    int prim = rc & 0xff;
    *retry_after = 0;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) {
        *retry_after = 1;
        return STORE_RETRY;
    }
    if (prim == SQLITE_FULL || prim == SQLITE_READONLY || prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN) {
        *retry_after = 5;
        return STORE_UNAVAILABLE;
    }
    return STORE_ERROR;
}

enum store_status sq_fail(struct store_tx *tx, int rc)
{
    int retry_after;
    enum store_status st = rc_status(rc, &retry_after);
    if (st == STORE_ERROR)
        log_line("error", "sqlite", tx->conn ? sqlite3_errmsg(SQ_CONN(tx)->db) : sqlite3_errstr(rc), rc);
    return store_fail(tx, st, NULL, retry_after);
}

/* ---- connections and their statement caches ---- */

void sq_conn_unit_start(struct sqlite_conn *c) { c->unit_tick = ++c->tick; }

static sqlite3_stmt *hand_out(struct sqlite_conn *c, struct cached *e)
{
    sqlite3_reset(e->st);
    sqlite3_clear_bindings(e->st);
    e->used = ++c->tick;
    return e->st;
}

/* The entry for sql, prepared and added when missing; NULL (with *rc) on failure. */
static struct cached *cache_entry(struct sqlite_conn *c, const char *sql, int *rc)
{
    uint32_t h = hash(sql);
    for (int i = 0; i < c->ncached; i++) {
        struct cached *e = &c->cache[i];
        if (e->hash == h && strcmp(e->sql, sql) == 0) {
            hand_out(c, e);
            return e;
        }
    }
    struct cached *slot = NULL;
    if (c->ncached < STMT_CACHE) {
        slot = &c->cache[c->ncached];
    } else {
        /* Least recently used, but never one handed out during this unit (its caller may
         * still hold it) nor one mid-step. */
        for (int i = 0; i < STMT_CACHE; i++) {
            struct cached *e = &c->cache[i];
            if (e->used >= c->unit_tick || sqlite3_stmt_busy(e->st))
                continue;
            if (!slot || e->used < slot->used)
                slot = e;
        }
        if (!slot) {
            *rc = SQLITE_NOMEM;
            log_line("error", "statement cache: every entry is in use", NULL, STMT_CACHE);
            return NULL;
        }
        sqlite3_finalize(slot->st);
        free(slot->sql);
        memset(slot, 0, sizeof *slot);
    }
    store_observe_sql(sql);
    sqlite3_stmt *st = NULL;
    char *copy = strdup(sql);
    *rc = copy ? sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &st, NULL) : SQLITE_NOMEM;
    if (*rc != SQLITE_OK) {
        free(copy);
        sqlite3_finalize(st);
        if (slot != &c->cache[c->ncached]) /* an emptied slot in the middle: fill the hole */
            *slot = c->cache[--c->ncached];
        return NULL;
    }
    if (slot == &c->cache[c->ncached])
        c->ncached++;
    uint64_t tick = ++c->tick;
    *slot = (struct cached){.hash = h, .sql = copy, .st = st, .used = tick, .born = tick};
    return slot;
}

sqlite3_stmt *sq_cache_prepare(struct sqlite_conn *c, const char *sql, int *rc)
{
    struct cached *e = cache_entry(c, sql, rc);
    return e ? e->st : NULL;
}

sqlite3_stmt *sq_cache_prepare_memo(struct sqlite_conn *c, int which, const char *sql, int *rc)
{
    struct stmt_memo *m = &c->memo[which];
    if (m->born && m->slot < c->ncached && c->cache[m->slot].born == m->born)
        return hand_out(c, &c->cache[m->slot]);
    struct cached *e = cache_entry(c, sql, rc);
    if (!e)
        return NULL;
    m->slot = (int)(e - c->cache);
    m->born = e->born;
    return e->st;
}

sqlite3_stmt *sq_prep(struct store_tx *tx, const char *sql)
{
    int rc;
    sqlite3_stmt *st = sq_cache_prepare(SQ_CONN(tx), sql, &rc);
    if (!st)
        sq_fail(tx, rc);
    return st;
}

sqlite3_stmt *sq_cached(struct store_tx *tx, uint64_t key)
{
    struct sqlite_conn *c = SQ_CONN(tx);
    for (int i = 0; i < c->ncached; i++) {
        struct cached *e = &c->cache[i];
        if (e->key == key) {
            sqlite3_reset(e->st);
            sqlite3_clear_bindings(e->st);
            e->used = ++c->tick;
            return e->st;
        }
    }
    return NULL;
}

sqlite3_stmt *sq_prep_keyed(struct store_tx *tx, uint64_t key, const char *sql)
{
    sqlite3_stmt *st = sq_prep(tx, sql);
    struct sqlite_conn *c = SQ_CONN(tx);
    for (int i = 0; st && i < c->ncached; i++)
        if (c->cache[i].st == st)
            c->cache[i].key = key;
    return st;
}

/* Binds texts to ?1..?n (NULL binds SQL NULL); st may be NULL. */
static sqlite3_stmt *bind_texts(sqlite3_stmt *st, int n, const char *const *v)
{
    for (int i = 0; st && i < n; i++) {
        if (v[i])
            sqlite3_bind_text(st, i + 1, v[i], -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i + 1);
    }
    return st;
}

sqlite3_stmt *sq_bind_texts(struct store_tx *tx, const char *sql, int n, ...)
{
    sqlite3_stmt *st = sq_prep(tx, sql);
    if (!st)
        return NULL;
    va_list ap;
    va_start(ap, n);
    for (int i = 1; i <= n; i++) {
        const char *v = va_arg(ap, const char *);
        if (v)
            sqlite3_bind_text(st, i, v, -1, SQLITE_STATIC);
        else
            sqlite3_bind_null(st, i);
    }
    va_end(ap);
    return st;
}

enum store_status sq_run(struct store_tx *tx, sqlite3_stmt *st, const char *key, int *changes)
{
    if (!st)
        return tx->failed ? tx->failed : STORE_ERROR;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return store_fail(tx, STORE_CONFLICT, key, 0);
    if (rc != SQLITE_DONE)
        return sq_fail(tx, rc);
    if (changes)
        *changes = sqlite3_changes(SQ_CONN(tx)->db);
    return STORE_OK;
}

const char *sq_text(sqlite3_stmt *st, int i, struct arena *a)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

struct sqlite_conn *sq_conn_open(const char *path, char *err, size_t errlen)
{
    struct sqlite_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    /* WAL writes gathered until the commit's sync: right only with synchronous=FULL, below */
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX,
                             sq_walbuf_vfs());
    if (rc == SQLITE_OK) {
        sqlite3_busy_timeout(c->db, 5000);
        sqlite3_extended_result_codes(c->db, 1);
        rc = sqlite3_exec(c->db,
                          "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                          "PRAGMA temp_store=MEMORY;",
                          NULL, NULL, NULL);
    }
    if (rc != SQLITE_OK) {
        snprintf(err, errlen, "cannot open the database: %s", c->db ? sqlite3_errmsg(c->db) : sqlite3_errstr(rc));
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    return c;
}

void sq_conn_close(struct sqlite_conn *c)
{
    if (!c)
        return;
    for (int i = 0; i < c->ncached; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    sqlite3_close(c->db);
    free(c);
}

/* ---- units of work ---- */

#define S(base) ((struct sqlite_store *)(base))

static struct sqlite_conn *pool_take(struct sqlite_store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    struct sqlite_conn *c = s->idle;
    if (c)
        s->idle = c->next_idle;
    pthread_mutex_unlock(&s->pool_mu);
    if (c)
        return c;
    char err[256];
    c = sq_conn_open(s->path, err, sizeof err);
    if (!c)
        log_line("error", "cannot open the database", err, 0);
    return c;
}

/* A connection goes back idle, never inside a transaction but a read transaction it holds
 * (read_unit). */
static void pool_give(struct sqlite_store *s, struct sqlite_conn *c)
{
    if (!c->held && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    pthread_mutex_lock(&s->pool_mu);
    c->next_idle = s->idle;
    s->idle = c;
    pthread_mutex_unlock(&s->pool_mu);
}

/* Does an SQLite UNIQUE message ("... failed: t.b_id, t.col") name column col of table? */
static bool names_column(const char *msg, const char *table, const char *column)
{
    char col[96];
    snprintf(col, sizeof col, "%s.%s", table, column);
    for (const char *hit = strstr(msg, col); hit; hit = strstr(hit + 1, col)) {
        char next = hit[strlen(col)];
        if (next == '\0' || next == ',')
            return true;
    }
    return false;
}

/* An operator can make the database read-only while serving (chmod a-w): writes then
 * answer STORE_UNAVAILABLE and reads go on. Open descriptors would keep writing, and root
 * ignores permission bits, so the mode is checked here, once per batch by the writer. */
static bool writable(struct sqlite_store *s)
{
    struct stat st;
    return !(stat(s->path, &st) == 0 && !(st.st_mode & S_IWUSR));
}

static enum store_status exec(struct store_tx *tx, const char *sql)
{
    sqlite3_stmt *st = sq_prep(tx, sql);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? STORE_OK : sq_fail(tx, rc);
}

/* A statement of the writer's own (BEGIN, SAVEPOINT, COMMIT..): an SQLite result code. */
static int conn_exec(struct sqlite_conn *c, const char *sql)
{
    int rc;
    sqlite3_stmt *st = sq_cache_prepare(c, sql, &rc);
    if (!st)
        return rc;
    rc = sqlite3_step(st);
    sqlite3_reset(st);
    return rc == SQLITE_DONE || rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Ends the read transaction a connection holds. */
static void release_snapshot(struct sqlite_conn *c)
{
    if (!sqlite3_get_autocommit(c->db) && conn_exec(c, "COMMIT") != SQLITE_OK)
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    c->held = false;
}

/* Ends the read transactions of the idle connections: each keeps a WAL read mark, past which
 * no checkpoint copies and which keeps the WAL from starting over. Called by the checkpointer
 * once a second and before each checkpoint, so a snapshot left idle pins the WAL for about a
 * second at most. An idle connection is nobody's while the pool's lock is held. */
static void release_idle_snapshots(struct sqlite_store *s)
{
    pthread_mutex_lock(&s->pool_mu);
    for (struct sqlite_conn *c = s->idle; c; c = c->next_idle)
        if (c->held)
            release_snapshot(c);
    pthread_mutex_unlock(&s->pool_mu);
}

/* A read unit runs on the calling thread, on a pooled connection: WAL readers never wait
 * for the writer, not even while it syncs.
 *
 * The connection keeps its read transaction after the unit (held) and the next unit reads in
 * it while the WAL's header is still the one read before that transaction began: nobody has
 * committed since, so its snapshot is the database as it is now. That spares each read the
 * taking and giving back of a WAL read mark (a lock and an unlock of the -shm file) and
 * SQLite's size check of the database file, three of the seven system calls of a GET at 1M users
 * (docs/performance.md). A commit of this process's writer changes the header before its
 * answers leave, so a read that starts after an answer sees its write; another process's
 * commit changes it too. */
static enum store_status read_unit(struct sqlite_store *s, struct store_tx *tx)
{
    struct sqlite_conn *c = pool_take(s);
    if (!c)
        return store_fail(tx, STORE_UNAVAILABLE, NULL, 5);
    tx->conn = c;
    sq_conn_unit_start(c);
    unsigned char now[SQ_WATCH_HDR];
    bool known = s->watching && sq_watch_header(&s->watch, now);
    if (c->held && !(known && memcmp(now, c->held_hdr, sizeof now) == 0))
        release_snapshot(c);
    enum store_status st = c->held ? STORE_OK : exec(tx, "BEGIN");
    if (st == STORE_OK)
        st = store_run_fn(tx);
    c->held = st == STORE_OK && known;
    if (c->held)
        memcpy(c->held_hdr, now, sizeof now); /* read before the transaction began */
    else if (st == STORE_OK)
        st = exec(tx, "COMMIT");
    pool_give(s, c); /* rolls back whatever did not commit and is not held */
    tx->conn = NULL;
    return st;
}

/* ---- readiness ---- */

static enum store_status schema_version_fn(struct store_tx *tx, void *ctx)
{
    sqlite3_stmt *st = sq_prep(tx, "PRAGMA user_version");
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *(int *)ctx = sqlite3_column_int(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? STORE_OK : sq_fail(tx, rc);
}

/* The file answers a read of its schema version, which must be this build's (another
 * process may have migrated it further), and writes are not paused. */
static enum store_status sq_ready(struct store *base, const char **why, int *retry_after)
{
    int version = -1;
    struct store_unit u = {.fn = schema_version_fn, .ctx = &version};
    if (store_read(base, &u) != STORE_OK) {
        *why = "The database does not answer; retry later.";
        *retry_after = u.retry_after;
        return u.status;
    }
    *retry_after = 30;
    if (version != migrations_latest()) {
        *why = "The database schema is not the version this build expects.";
        return STORE_UNAVAILABLE;
    }
    if (!writable(S(base))) {
        *why = "The database is read-only; writes are paused. Retry later.";
        return STORE_UNAVAILABLE;
    }
    *retry_after = 0;
    return STORE_OK;
}

/* ---- group commit ---- */

/* A write unit waiting for the writer, on its caller's stack. */
struct write_item {
    struct store_tx *tx;
    enum store_status st;
    struct write_item *next;
    struct sqlite_store *s;
    /* Once the unit's batch has committed or failed: a caller on a fiber is woken, any
     * other caller's semaphore is posted. */
    struct fiber *fiber;
    sem_t done;
};

/* The most units one transaction takes: a batch of them all waits for its last one. */
#define BATCH_MAX 256

static unsigned bucket_of(unsigned n)
{
    unsigned b = 0;
    while (n > 1 && b + 1 < STORE_BATCH_BUCKETS) {
        n >>= 1;
        b++;
    }
    return b;
}

/* ---- the feed's counters on the writer ----
 *
 * Each change log entry takes its tenant's next seq. The writer (the only one that writes
 * here, but for other processes, see seq_begin) keeps each tenant's last seq in memory, as its
 * transaction has it, instead of bumping the tenant's change_seq row per entry: the row is
 * written once per batch, before the commit (seq_flush), so change_seq.last is the tenant's
 * last seq at every commit, as before. A rollback (a unit's savepoint, a store_try, the batch)
 * makes every count unknown, to be read again from the database: the larger of change_seq.last
 * and the tenant's last entry in change_log, which together are right at any point of the
 * transaction, since entries and rows roll back with it. */

/* Tenants remembered from one batch to the next at most. */
#define SEQ_KEEP 4096

static void seq_clear(struct seq_cache *c)
{
    for (size_t i = 0; i < c->cap; i++) {
        free(c->slots[i].b_id);
        c->slots[i] = (struct seq_slot){0};
    }
    c->n = 0;
    c->ndirty = 0;
}

static void seq_free(struct seq_cache *c)
{
    seq_clear(c);
    free(c->slots);
    free(c->dirty);
    *c = (struct seq_cache){0};
}

/* After a rollback: every count is read again when next needed. */
static void seq_forget(struct seq_cache *c)
{
    for (size_t i = 0; i < c->cap; i++)
        c->slots[i].known = false;
}

static bool seq_grow(struct seq_cache *c)
{
    size_t cap = c->cap ? 2 * c->cap : 64;
    struct seq_slot *slots = calloc(cap, sizeof *slots);
    if (!slots)
        return false;
    for (size_t i = 0; i < c->cap; i++) {
        if (!c->slots[i].b_id)
            continue;
        size_t k = hash(c->slots[i].b_id) & (cap - 1);
        while (slots[k].b_id)
            k = (k + 1) & (cap - 1);
        slots[k] = c->slots[i];
    }
    free(c->slots);
    c->slots = slots;
    c->cap = cap;
    return true;
}

/* The tenant's slot, made (unknown, clean) when it has none; NULL: out of memory. */
static struct seq_slot *seq_slot(struct seq_cache *c, const char *b_id)
{
    if (2 * (c->n + 1) > c->cap && !seq_grow(c))
        return NULL;
    size_t k = hash(b_id) & (c->cap - 1);
    while (c->slots[k].b_id && strcmp(c->slots[k].b_id, b_id) != 0)
        k = (k + 1) & (c->cap - 1);
    struct seq_slot *sl = &c->slots[k];
    if (!sl->b_id) {
        if (!(sl->b_id = strdup(b_id)))
            return NULL;
        sl->known = sl->dirty = false;
        c->n++;
    }
    return sl;
}

/* The tenant's last seq as the connection's transaction has it. */
static int seq_read(struct sqlite_conn *c, const char *b_id, int64_t *last)
{
    int rc;
    sqlite3_stmt *st = sq_cache_prepare(c,
                                        "SELECT max(coalesce((SELECT last FROM change_seq WHERE b_id = ?1), 0),"
                                        " coalesce((SELECT max(seq) FROM change_log WHERE b_id = ?1), 0))",
                                        &rc);
    if (!st)
        return rc;
    sqlite3_bind_text(st, 1, b_id, -1, SQLITE_STATIC);
    rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *last = sqlite3_column_int64(st, 0);
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? SQLITE_OK : rc;
}

/* Numbers one entry of the tenant in the writer's transaction: SQLITE_OK or a failure
 * (SQLITE_NOMEM when the cache cannot grow). */
static int seq_next(struct sqlite_store *s, const char *b_id, int64_t *seq)
{
    struct seq_cache *c = &s->seqs;
    struct seq_slot *sl = seq_slot(c, b_id);
    if (!sl)
        return SQLITE_NOMEM;
    if (!sl->known) {
        int rc = seq_read(s->wconn, b_id, &sl->last);
        if (rc != SQLITE_OK)
            return rc;
        sl->known = true;
    }
    if (!sl->dirty) {
        if (c->ndirty == c->dirty_cap) {
            size_t cap = c->dirty_cap ? 2 * c->dirty_cap : 16;
            char **d = realloc(c->dirty, cap * sizeof *d);
            if (!d)
                return SQLITE_NOMEM;
            c->dirty = d;
            c->dirty_cap = cap;
        }
        c->dirty[c->ndirty++] = sl->b_id;
        sl->dirty = true;
    }
    *seq = ++sl->last;
    return SQLITE_OK;
}

/* Before the batch's commit: each tenant numbered in it gets its last seq in change_seq. */
static int seq_flush(struct sqlite_store *s)
{
    struct seq_cache *c = &s->seqs;
    int rc = SQLITE_OK;
    for (size_t i = 0; i < c->ndirty && rc == SQLITE_OK; i++) {
        struct seq_slot *sl = seq_slot(c, c->dirty[i]); /* there: it is the slot's own string */
        if (!sl)
            return SQLITE_NOMEM;
        if (!sl->known && (rc = seq_read(s->wconn, sl->b_id, &sl->last)) != SQLITE_OK)
            return rc;
        sl->known = true;
        sqlite3_stmt *st = sq_cache_prepare(s->wconn,
                                            "INSERT INTO change_seq (b_id, last) VALUES (?1, ?2)"
                                            " ON CONFLICT (b_id) DO UPDATE SET last = excluded.last",
                                            &rc);
        if (!st)
            return rc;
        sqlite3_bind_text(st, 1, sl->b_id, -1, SQLITE_STATIC);
        sqlite3_bind_int64(st, 2, sl->last);
        rc = sqlite3_step(st);
        sqlite3_reset(st);
        rc = rc == SQLITE_DONE ? SQLITE_OK : rc;
    }
    if (rc != SQLITE_OK)
        return rc;
    for (size_t i = 0; i < c->ndirty; i++)
        seq_slot(c, c->dirty[i])->dirty = false;
    c->ndirty = 0;
    return SQLITE_OK;
}

/* At the start of a batch (the write lock held): another connection (another process's
 * writer) that committed since the writer's last batch may have numbered entries, so what
 * the writer remembers is dropped; so it is when it has grown past SEQ_KEEP tenants. */
static void seq_begin(struct sqlite_store *s)
{
    struct seq_cache *c = &s->seqs;
    int rc;
    int64_t v = -1;
    sqlite3_stmt *st = sq_cache_prepare(s->wconn, "PRAGMA data_version", &rc);
    if (st && sqlite3_step(st) == SQLITE_ROW)
        v = sqlite3_column_int64(st, 0);
    if (st)
        sqlite3_reset(st);
    if (v < 0 || v != c->data_version || c->n > SEQ_KEEP)
        seq_clear(c);
    c->data_version = v;
}

/* Runs one unit in a savepoint of the batch's transaction. A unit that fails or stops is
 * rolled back to its savepoint, alone; a failure the transaction may not have survived
 * (disk full, I/O, busy, the transaction gone) dooms the batch: returns its status.
 *
 * A unit alone in its batch runs without the savepoint, and fails by rolling the whole
 * transaction back: its own savepoints (store_try) are then the outermost ones, whose
 * release empties SQLite's in-memory sub-journal. Under a savepoint of the batch, the
 * sub-journal keeps every page the unit changed, and each release of an inner savepoint
 * truncates it by walking its chunk list from the start: a bulk import's batch of 5000
 * records into a table of 1M rows spent 92% of its time there (2,000 records/s instead
 * of 20,000; docs/performance.md, "A million users"). */
static enum store_status run_in_savepoint(struct sqlite_store *s, struct write_item *it, bool savepoint,
                                          int *doom_retry)
{
    struct sqlite_conn *c = s->wconn;
    struct store_tx *tx = it->tx;
    tx->conn = c;
    sq_conn_unit_start(c);
    int rc = savepoint ? conn_exec(c, "SAVEPOINT unit") : SQLITE_OK;
    enum store_status st = rc == SQLITE_OK ? store_run_fn(tx) : sq_fail(tx, rc);
    if (st == STORE_OK && savepoint && (rc = conn_exec(c, "RELEASE unit")) != SQLITE_OK)
        st = sq_fail(tx, rc);
    enum store_status doom = STORE_OK;
    if (st != STORE_OK) {
        seq_forget(&s->seqs); /* whatever the unit numbered is rolled back (or the batch is) */
        if (st == STORE_UNAVAILABLE || st == STORE_RETRY) {
            doom = st;
            *doom_retry = tx->retry_after;
        } else if (sqlite3_get_autocommit(c->db)) {
            doom = STORE_ERROR; /* SQLite rolled the whole transaction back */
        } else if (!savepoint) {
            if ((rc = conn_exec(c, "ROLLBACK")) != SQLITE_OK)
                doom = rc_status(rc, doom_retry);
        } else if ((rc = conn_exec(c, "ROLLBACK TO unit")) != SQLITE_OK ||
                   (rc = conn_exec(c, "RELEASE unit")) != SQLITE_OK) {
            doom = rc_status(rc, doom_retry);
        }
    }
    it->st = st;
    tx->conn = NULL;
    return doom;
}

/* One batch: the units first..(n of them), in the transaction begun with result begin_rc.
 * Commits once; no unit's status is handed back before the commit has returned, so no
 * answer leaves before its write is on disk. */
static void run_batch(struct sqlite_store *s, struct write_item *first, unsigned n, int begin_rc)
{
    struct sqlite_conn *c = s->wconn;
    int doom_retry = 0;
    enum store_status doom = begin_rc == SQLITE_OK ? STORE_OK : rc_status(begin_rc, &doom_retry);
    if (doom == STORE_ERROR)
        log_line("error", "sqlite: cannot begin a write", sqlite3_errmsg(c->db), begin_rc);
    if (doom == STORE_OK && !writable(s)) {
        doom = STORE_UNAVAILABLE;
        doom_retry = 30;
    }
    if (doom == STORE_OK)
        seq_begin(s);
    for (struct write_item *it = first; it && doom == STORE_OK; it = it->next)
        doom = run_in_savepoint(s, it, n > 1, &doom_retry);
    /* (a unit alone that failed has rolled the transaction back: nothing to commit) */
    bool committed = false;
    if (doom == STORE_OK && !sqlite3_get_autocommit(c->db)) {
        int rc = seq_flush(s);
        if (rc == SQLITE_OK)
            rc = conn_exec(c, "COMMIT");
        committed = rc == SQLITE_OK;
        if (rc != SQLITE_OK) {
            doom = rc_status(rc, &doom_retry);
            log_line(doom == STORE_ERROR ? "error" : "warn", "sqlite: a write batch did not commit",
                     sqlite3_errmsg(c->db), rc);
        }
    }
    if (doom != STORE_OK && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    /* accounted for before any caller wakes: its next read may then use answers kept */
    if (begin_rc == SQLITE_OK && s->watching)
        sq_watch_end(&s->watch);
    if (!committed)
        seq_clear(&s->seqs); /* rolled back (the batch, or a unit alone in it): read again */
    if (doom != STORE_OK) {
        /* Nothing of the batch is stored: every unit of it fails, whatever it answered. */
        for (struct write_item *it = first; it; it = it->next) {
            it->st = doom;
            it->tx->failed = doom;
            it->tx->conflict = NULL;
            it->tx->retry_after = doom_retry;
        }
    }
    if (doom == STORE_OK) {
        unsigned durable = 0;
        for (struct write_item *it = first; it; it = it->next)
            durable += it->st == STORE_OK;
        if (durable)
            metrics_store_commit(s->base.metrics, durable);
    }
    pthread_mutex_lock(&s->wq_mu);
    s->stats.batches++;
    s->stats.units += n;
    s->stats.failed_batches += doom != STORE_OK;
    s->stats.sizes[bucket_of(n)]++;
    if (n > s->stats.max_batch)
        s->stats.max_batch = n;
    pthread_mutex_unlock(&s->wq_mu);
    for (struct write_item *it = first, *next; it; it = next) {
        next = it->next; /* the item is gone once its caller wakes */
        if (it->fiber)
            fiber_wake(it->fiber);
        else
            sem_post(&it->done);
    }
}

/* WAL frames after a commit past which a checkpoint is started (256 MiB of 4 KiB pages; a page
 * written many times in between is copied once, and the copying and the database file's sync
 * come less often beside the commits' own syncs: docs/decisions.md), and the frames a
 * background pass may leave for the writer to copy. */
#define CHECKPOINT_FRAMES 64000
#define CHECKPOINT_TAIL 256

/* Called on the writer's thread after each commit, with the WAL's length in frames. */
static int wal_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    struct sqlite_store *s = arg;
    s->wal_frames = frames;
    sq_watch_committed(&s->watch, frames);
    if (frames >= s->ckpt_frames) {
        pthread_mutex_lock(&s->wq_mu);
        if (!s->ckpt_busy && !s->ckpt_passes) {
            s->ckpt_wanted = true;
            pthread_cond_signal(&s->ckpt_cv);
        }
        pthread_mutex_unlock(&s->wq_mu);
    }
    return SQLITE_OK;
}

/* SQLite syncs the database file at the end of a checkpoint only when it has copied the WAL
 * to its last frame, which the background passes, with the writer appending meanwhile, never
 * do: the pages they copy wait in the operating system's cache, and the writer's step (below)
 * synced all of them, up to 256 MiB, while every queued write waited (30-260 ms measured with
 * 1,000,000 users). The checkpointer syncs them itself, through the file SQLite has open, so
 * the writer's step syncs only the tail it copies. */
static void sync_copied_pages(struct sqlite_store *s)
{
    sqlite3_file *db = NULL;
    if (sqlite3_file_control(s->cconn->db, "main", SQLITE_FCNTL_FILE_POINTER, &db) != SQLITE_OK || !db || !db->pMethods)
        return;
    int rc = db->pMethods->xSync(db, SQLITE_SYNC_NORMAL);
    if (rc != SQLITE_OK)
        log_line("warn", "sqlite: checkpoint: syncing the database file", sqlite3_errstr(rc), rc);
}

/* Copies committed pages from the WAL into the database file: PASSIVE, so it never waits
 * for the writer or the readers, and the writer goes on committing meanwhile. Passes follow
 * each other until what is left is short, then the writer is told it may copy the rest. */
static void *checkpointer_main(void *arg)
{
    struct sqlite_store *s = arg;
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->ckpt_wanted && !s->wq_stop) {
            struct timespec until;
            clock_gettime(CLOCK_MONOTONIC, &until); /* ckpt_cv waits on it: a step of the wall clock is no matter */
            until.tv_sec += 1;
            if (pthread_cond_timedwait(&s->ckpt_cv, &s->wq_mu, &until) == ETIMEDOUT) {
                pthread_mutex_unlock(&s->wq_mu);
                release_idle_snapshots(s);
                pthread_mutex_lock(&s->wq_mu);
            }
        }
        if (s->wq_stop)
            break;
        s->ckpt_wanted = false;
        s->ckpt_busy = true;
        pthread_mutex_unlock(&s->wq_mu);
        release_idle_snapshots(s);
        /* Rounds of passes, each followed by the sync of what it copied: the frames written
         * during a long sync are copied and synced by the next, shorter, round. */
        int log = 0, done = 0, rc = SQLITE_OK;
        for (int round = 0; round < 3 && rc == SQLITE_OK; round++) {
            int before = done;
            for (int pass = 0; pass < 8; pass++) {
                rc = sqlite3_wal_checkpoint_v2(s->cconn->db, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done);
                if (rc != SQLITE_OK) {
                    if ((rc & 0xff) != SQLITE_BUSY)
                        log_line("warn", "sqlite: checkpoint", sqlite3_errmsg(s->cconn->db), rc);
                    break;
                }
                if (log - done <= CHECKPOINT_TAIL)
                    break;
            }
            sync_copied_pages(s);
            if (done - before <= 4 * CHECKPOINT_TAIL)
                break;
        }
        pthread_mutex_lock(&s->wq_mu);
        s->ckpt_busy = false;
        s->ckpt_passes++;
    }
    pthread_mutex_unlock(&s->wq_mu);
    return NULL;
}

/* Between two batches: once the background passes have copied all but the tail of a long
 * WAL, the writer copies the tail, so the WAL is all in the database file and the next write
 * transaction starts it over from its beginning. A checkpointer left on its own would never
 * catch the writer up, and the WAL would grow for as long as writes come. */
static void finish_checkpoint(struct sqlite_store *s)
{
    if (s->wal_frames < s->ckpt_frames)
        return;
    pthread_mutex_lock(&s->wq_mu);
    bool ready = s->ckpt_passes && !s->ckpt_busy;
    if (ready)
        s->ckpt_passes = 0;
    pthread_mutex_unlock(&s->wq_mu);
    if (!ready)
        return;
    release_idle_snapshots(s);
    int rc = sqlite3_wal_checkpoint_v2(s->wconn->db, NULL, SQLITE_CHECKPOINT_PASSIVE, NULL, NULL);
    if (rc != SQLITE_OK && (rc & 0xff) != SQLITE_BUSY)
        log_line("warn", "sqlite: checkpoint", sqlite3_errmsg(s->wconn->db), rc);
    s->wal_frames = 0;
}

/* Starts one of the store's own threads with the signals that are sent to the process blocked:
 * SIGTERM, which the server takes with sigwait once it serves, must never be delivered to
 * one of them, where its default action would end the process at once (the store is opened,
 * and these threads started, before the server blocks it in its own threads). Signals a
 * thread raises itself (a fault, abort) are left alone. */
static bool start_thread(pthread_t *t, void *(*fn)(void *), void *arg)
{
    sigset_t block, old;
    sigfillset(&block);
    const int own[] = {SIGSEGV, SIGBUS, SIGFPE, SIGILL, SIGTRAP, SIGABRT, SIGSYS};
    for (size_t i = 0; i < sizeof own / sizeof own[0]; i++)
        sigdelset(&block, own[i]);
    pthread_sigmask(SIG_SETMASK, &block, &old);
    bool ok = pthread_create(t, NULL, fn, arg) == 0;
    pthread_sigmask(SIG_SETMASK, &old, NULL);
    return ok;
}

static void *writer_main(void *arg)
{
    struct sqlite_store *s = arg;
    pthread_mutex_lock(&s->wq_mu);
    for (;;) {
        while (!s->wq_head && !s->wq_stop)
            pthread_cond_wait(&s->wq_cv, &s->wq_mu);
        if (!s->wq_head)
            break; /* stopping, and nothing is left */
        pthread_mutex_unlock(&s->wq_mu);
        /* The lock first, then the batch: whatever queued while SQLite's busy handler waited
         * for another process's writer joins this transaction. */
        int begin_rc = conn_exec(s->wconn, "BEGIN IMMEDIATE");
        if (begin_rc == SQLITE_OK && s->watching)
            sq_watch_begin(&s->watch);
        pthread_mutex_lock(&s->wq_mu);
        struct write_item *first = s->wq_head, *last = first;
        unsigned n = 1;
        /* a unit marked alone gets a batch of its own: the batch ends before it, or with it */
        while (n < BATCH_MAX && last->next && !first->tx->unit->alone && !last->next->tx->unit->alone) {
            last = last->next;
            n++;
        }
        s->wq_head = last->next;
        if (!s->wq_head)
            s->wq_tail = NULL;
        last->next = NULL;
        s->wq_len -= n;
        pthread_mutex_unlock(&s->wq_mu);
        run_batch(s, first, n, begin_rc);
        finish_checkpoint(s);
        pthread_mutex_lock(&s->wq_mu);
    }
    pthread_mutex_unlock(&s->wq_mu);
    return NULL;
}

/* Queues the unit for the writer; false when the queue is full (or the store closing). */
static bool enqueue(struct sqlite_store *s, struct write_item *it)
{
    pthread_mutex_lock(&s->wq_mu);
    if (s->wq_len >= s->wq_cap || s->wq_stop) {
        s->stats.queue_full++;
        pthread_mutex_unlock(&s->wq_mu);
        it->st = store_fail(it->tx, STORE_RETRY, NULL, 1);
        return false;
    }
    if (s->wq_tail)
        s->wq_tail->next = it;
    else
        s->wq_head = it;
    s->wq_tail = it;
    s->wq_len++;
    pthread_cond_signal(&s->wq_cv);
    pthread_mutex_unlock(&s->wq_mu);
    return true;
}

/* A fiber's waiting step, run once the fiber is parked and can be woken. */
static void enqueue_parked(void *arg)
{
    struct write_item *it = arg;
    if (!enqueue(it->s, it))
        fiber_wake(it->fiber);
}

/* Queues the unit for the writer and waits for its batch: a caller on a fiber parks it
 * (its thread goes on with other work), any other blocks. A full queue answers at once. */
static enum store_status write_unit(struct sqlite_store *s, struct store_tx *tx)
{
    struct write_item it = {.tx = tx, .s = s, .fiber = fiber_current()};
    if (it.fiber) {
        fiber_park(it.fiber, enqueue_parked, &it);
        return it.st;
    }
    if (sem_init(&it.done, 0, 0) != 0)
        return store_fail(tx, STORE_ERROR, NULL, 0);
    if (enqueue(s, &it))
        while (sem_wait(&it.done) != 0 && errno == EINTR)
            ;
    sem_destroy(&it.done);
    return it.st;
}

static enum store_status sq_run_unit(struct store *base, struct store_tx *tx)
{
    return tx->write ? write_unit(S(base), tx) : read_unit(S(base), tx);
}

static void sq_write_stats(struct store *base, struct store_write_stats *out)
{
    struct sqlite_store *s = S(base);
    pthread_mutex_lock(&s->wq_mu);
    *out = s->stats;
    out->queued = s->wq_len;
    out->queue_cap = s->wq_cap;
    pthread_mutex_unlock(&s->wq_mu);
}

/* ---- resources ---- */

/* The operations whose statements are cached under a key (SQL_KEY's op). */
enum { K_UPDATE = 1, K_INSERT, K_DELETE, K_RESOLVE, K_LOG_INSERT, K_LAST_SEQ, K_LOG_FIND };

/* Operation op's statement on r's table, built from fmt (one %s: the table) at its first use. */
static sqlite3_stmt *table_stmt(struct store_tx *tx, int op, const struct resource *r, const char *fmt)
{
    uint64_t key = SQL_KEY(op, r->kind, 0);
    sqlite3_stmt *st = sq_cached(tx, key);
    if (st)
        return st;
    char sql[SQL_MAX];
    int n = 0;
    sqlcat(sql, sizeof sql, &n, fmt, r->table);
    return sq_prep_keyed(tx, key, sql);
}

/* A unique failure names the index (<table>_uq_<field>) or the columns; name the field. */
static enum store_status unique_fail(struct store_tx *tx, const struct resource *r)
{
    const char *msg = sqlite3_errmsg(SQ_CONN(tx)->db);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!(f->flags & F_UNIQUE))
            continue;
        char idx[96];
        snprintf(idx, sizeof idx, "'%s_uq_%s", r->table, f->name);
        if (names_column(msg, r->table, f->column) || (f->key_column && names_column(msg, r->table, f->key_column)) ||
            strstr(msg, idx))
            return store_fail(tx, STORE_CONFLICT, f->name, 0);
    }
    log_line("error", "sqlite: unique constraint on no known field", msg, SQLITE_CONSTRAINT_UNIQUE);
    return store_fail(tx, STORE_ERROR, NULL, 0);
}

static void bind_val(sqlite3_stmt *st, int pos, const struct field *f, const struct fval *v)
{
    if (v->state != V_SET)
        sqlite3_bind_null(st, pos);
    else if (f->type == FT_BOOL)
        sqlite3_bind_int(st, pos, v->b);
    else
        sqlite3_bind_text(st, pos, v->s, -1, SQLITE_STATIC);
}

/* The normalised key of an F_FOLDED field, stored beside its value. */
static void bind_key(sqlite3_stmt *st, int pos, const struct fval *v)
{
    if (v->state == V_SET && v->key)
        sqlite3_bind_text(st, pos, v->key, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, pos);
}

/* Is this unique failure about the id column itself (a collision of random ids)? */
static bool id_collision(struct store_tx *tx, const struct resource *r)
{
    char idcol[64];
    snprintf(idcol, sizeof idcol, "%s.id", r->table);
    const char *msg = sqlite3_errmsg(SQ_CONN(tx)->db);
    size_t L = strlen(idcol), ML = strlen(msg);
    return ML > L && strcmp(msg + ML - L, idcol) == 0 && msg[ML - L - 1] == ' ';
}

/* Inserts a record: with the given id (one attempt; taken: STORE_CONFLICT "id") or a fresh
 * random one (a collision tries another); the times as given or the unit's. */
static enum store_status insert_row(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *given_id, const char *created_at, const char *updated_at,
                                    const struct fval *vals, char *id_out, size_t id_cap)
{
    char sql[SQL_MAX], marks[SQL_MAX];
    int n = 0, m = 0, pos;
    uint64_t key = SQL_KEY(K_INSERT, r->kind, 0);
    sql[0] = '\0';
    if (!sq_cached(tx, key)) {
        sqlcat(sql, sizeof sql, &n, "INSERT INTO %s (id, b_id, created_at, updated_at", r->table);
        sqlcat(marks, sizeof marks, &m, "?1, ?2, ?3, ?4");
        pos = 5;
        for (size_t i = 0; i < r->nfields; i++) {
            if (!r->fields[i].column)
                continue;
            sqlcat(sql, sizeof sql, &n, ", %s", r->fields[i].column);
            sqlcat(marks, sizeof marks, &m, ", ?%d", pos++);
            if (r->fields[i].key_column) {
                sqlcat(sql, sizeof sql, &n, ", %s", r->fields[i].key_column);
                sqlcat(marks, sizeof marks, &m, ", ?%d", pos++);
            }
        }
        sqlcat(sql, sizeof sql, &n, ") VALUES (%s)", marks);
    }

    for (int attempt = 0; attempt < 8; attempt++) {
        sqlite3_stmt *st = sq_cached(tx, key);
        if (!st && sql[0])
            st = sq_prep_keyed(tx, key, sql);
        if (!st)
            return tx->failed ? tx->failed : store_fail(tx, STORE_ERROR, NULL, 0);
        char id[ID_MAX];
        if (given_id)
            snprintf(id, sizeof id, "%s", given_id);
        else
            id_generate(r->kind, id);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 3, created_at ? created_at : tx->now_text, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 4, updated_at ? updated_at : tx->now_text, -1, SQLITE_STATIC);
        pos = 5;
        for (size_t i = 0; i < r->nfields; i++) {
            if (!r->fields[i].column)
                continue;
            bind_val(st, pos++, &r->fields[i], &vals[i]);
            if (r->fields[i].key_column)
                bind_key(st, pos++, &vals[i]);
        }
        int rc = sqlite3_step(st);
        sqlite3_reset(st);
        if (rc == SQLITE_DONE) {
            snprintf(id_out, id_cap, "%s", id);
            return STORE_OK;
        }
        if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY) {
            if (id_collision(tx, r)) {
                if (given_id)
                    return store_fail(tx, STORE_CONFLICT, "id", 0);
                continue;
            }
            return unique_fail(tx, r);
        }
        return sq_fail(tx, rc);
    }
    log_line("error", "eight random ids in a row were taken", r->table, 0);
    return store_fail(tx, STORE_ERROR, NULL, 0);
}

static enum store_status sq_insert(struct store_tx *tx, const struct resource *r, const char *tenant,
                                   const struct fval *vals, char *id_out, size_t id_cap)
{
    return insert_row(tx, r, tenant, NULL, NULL, NULL, vals, id_out, id_cap);
}

/* An import's overwrite: every column from vals (unset ones cleared), the times as given. */
static enum store_status overwrite_row(struct store_tx *tx, const struct resource *r, const char *tenant,
                                       const char *id, const char *created_at, const char *updated_at,
                                       const struct fval *vals)
{
    char sql[SQL_MAX];
    int n = 0, pos = 3;
    sqlcat(sql, sizeof sql, &n, "UPDATE %s SET created_at = coalesce(?1, created_at), updated_at = ?2", r->table);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!f->column)
            continue;
        sqlcat(sql, sizeof sql, &n, ", %s = ?%d", f->column, pos++);
        if (f->key_column)
            sqlcat(sql, sizeof sql, &n, ", %s = ?%d", f->key_column, pos++);
    }
    sqlcat(sql, sizeof sql, &n, " WHERE id = ?%d AND b_id = ?%d AND deleted_at IS NULL", pos, pos + 1);
    sqlite3_stmt *st = sq_prep(tx, sql);
    if (!st)
        return tx->failed;
    if (created_at)
        sqlite3_bind_text(st, 1, created_at, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 1);
    sqlite3_bind_text(st, 2, updated_at ? updated_at : tx->now_text, -1, SQLITE_STATIC);
    pos = 3;
    for (size_t i = 0; i < r->nfields; i++) {
        if (!r->fields[i].column)
            continue;
        bind_val(st, pos++, &r->fields[i], &vals[i]);
        if (r->fields[i].key_column)
            bind_key(st, pos++, &vals[i]);
    }
    sqlite3_bind_text(st, pos, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, pos + 1, tenant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return sqlite3_changes(SQ_CONN(tx)->db) ? STORE_OK : STORE_NOT_FOUND;
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return unique_fail(tx, r);
    return sq_fail(tx, rc);
}

static enum store_status sq_put(struct store_tx *tx, const struct resource *r, const char *tenant, bool exists,
                                const char *id, const char *created_at, const char *updated_at,
                                const struct fval *vals, char *id_out, size_t id_cap)
{
    if (!exists)
        return insert_row(tx, r, tenant, id, created_at, updated_at, vals, id_out, id_cap);
    enum store_status st = overwrite_row(tx, r, tenant, id, created_at, updated_at, vals);
    if (st == STORE_OK)
        snprintf(id_out, id_cap, "%s", id);
    return st;
}

static enum store_status sq_savepoint(struct store_tx *tx, enum savepoint_op op)
{
    switch (op) {
    case SAVEPOINT_BEGIN: return exec(tx, "SAVEPOINT hip_try");
    case SAVEPOINT_RELEASE: return exec(tx, "RELEASE hip_try");
    default: {
        if (tx->s && SQ_CONN(tx) == S(tx->s)->wconn)
            seq_forget(&S(tx->s)->seqs);
        enum store_status st = exec(tx, "ROLLBACK TO hip_try");
        return st == STORE_OK ? exec(tx, "RELEASE hip_try") : st;
    }
    }
}

/* An update SETs the columns of unique fields (each has an index) only when the PATCH names
 * them: SQLite rewrites the entries of every index whose column a statement SETs, changed
 * or not, which put 3-4 more pages per update in the WAL. Every other column is set from
 * its value when its flag is 1 and kept otherwise, so the statements of a resource are one
 * per set of unique fields named (16 for an Eka User), whatever else a PATCH names. */
static enum store_status sq_update(struct store_tx *tx, const struct resource *r, const char *tenant,
                                   const char *id, const struct fval *vals)
{
    int pos = 2;
    int at[MAX_FIELDS]; /* each field's first parameter, 0: not in the statement */
    uint64_t mask = 0;  /* the unique fields named */
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        at[i] = 0;
        if (!f->column || ((f->flags & F_UNIQUE) && vals[i].state == V_ABSENT))
            continue;
        at[i] = pos;
        if (f->flags & F_UNIQUE) { /* ?value (?key) */
            mask |= (uint64_t)1 << i;
            pos += f->key_column ? 2 : 1;
        } else { /* ?flag ?value (?key) */
            pos += f->key_column ? 3 : 2;
        }
    }
    uint64_t key = SQL_KEY(K_UPDATE, r->kind, mask);
    sqlite3_stmt *st = sq_cached(tx, key);
    if (!st) {
        char sql[SQL_MAX];
        int n = 0;
        sqlcat(sql, sizeof sql, &n, "UPDATE %s SET updated_at = ?1", r->table);
        for (size_t i = 0; i < r->nfields; i++) {
            const struct field *f = &r->fields[i];
            const char *kc = f->key_column; /* the normalised key changes with its value */
            int p = at[i];
            if (!p)
                continue;
            if (f->flags & F_UNIQUE) {
                sqlcat(sql, sizeof sql, &n, ", %s = ?%d", f->column, p);
                if (kc)
                    sqlcat(sql, sizeof sql, &n, ", %s = ?%d", kc, p + 1);
                continue;
            }
            sqlcat(sql, sizeof sql, &n, ", %s = CASE WHEN ?%d THEN ?%d ELSE %s END", f->column, p, p + 1, f->column);
            if (kc)
                sqlcat(sql, sizeof sql, &n, ", %s = CASE WHEN ?%d THEN ?%d ELSE %s END", kc, p, p + 2, kc);
        }
        sqlcat(sql, sizeof sql, &n, " WHERE id = ?%d AND b_id = ?%d AND deleted_at IS NULL", pos, pos + 1);
        st = sq_prep_keyed(tx, key, sql);
    }
    if (!st)
        return tx->failed;
    sqlite3_bind_text(st, 1, tx->now_text, -1, SQLITE_STATIC);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        int p = at[i];
        if (!p)
            continue;
        if (!(f->flags & F_UNIQUE))
            sqlite3_bind_int(st, p++, vals[i].state != V_ABSENT);
        bind_val(st, p++, f, &vals[i]);
        if (f->key_column)
            bind_key(st, p, &vals[i]);
    }
    sqlite3_bind_text(st, pos, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, pos + 1, tenant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return sqlite3_changes(SQ_CONN(tx)->db) ? STORE_OK : STORE_NOT_FOUND;
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return unique_fail(tx, r);
    return sq_fail(tx, rc);
}

static void read_row(const struct resource *r, sqlite3_stmt *st, struct arena *a, struct record *out)
{
    memset(out, 0, sizeof *out);
    out->id = sq_text(st, 1, a);
    out->created_at = sq_text(st, 2, a);
    out->updated_at = sq_text(st, 3, a);
    int col = 4;
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!f->column)
            continue;
        if (sqlite3_column_type(st, col) == SQLITE_NULL) {
            out->v[i].state = V_NULL;
        } else {
            out->v[i].state = V_SET;
            if (f->type == FT_BOOL)
                out->v[i].b = sqlite3_column_int(st, col) != 0;
            else
                out->v[i].s = sq_text(st, col, a);
        }
        col++;
    }
}

/* pre8: for migration 6's backfill, which runs on a schema whose link tables have no b_id
 * yet (links never crossed tenants: each end was resolved in the tenant) */
static void links_sql(const struct resource *r, size_t v, char *sql, size_t cap, bool pre8)
{
    const struct link_view *lv = &r->views[v];
    const struct relation *rel = relation_get(lv->rel);
    const struct resource *t = resource_get(lv->target);
    int side = rel->kind[0] == r->kind ? 0 : 1;
    int n = 0;
    sqlcat(sql, cap, &n,
           "SELECT t.id, t.%s, %s%s FROM %s l JOIN %s t ON t.b_id = l.b_id AND t.id = l.%s "
           "WHERE l.b_id = ?2 AND l.%s = ?1 AND t.deleted_at IS NULL ORDER BY coalesce(l.ord%d, l.pos)",
           t->summary[0], t->summary[1] ? "t." : "NULL", t->summary[1] ? t->summary[1] : "", rel->table, t->table,
           rel->col[1 - side], rel->col[side], side);
    if (pre8) {
        n = 0;
        sqlcat(sql, cap, &n,
               "SELECT t.id, t.%s, %s%s FROM %s l JOIN %s t ON t.id = l.%s "
               "WHERE l.%s = ?1 AND t.b_id = ?2 AND t.deleted_at IS NULL ORDER BY coalesce(l.ord%d, l.pos)",
               t->summary[0], t->summary[1] ? "t." : "NULL", t->summary[1] ? t->summary[1] : "", rel->table,
               t->table, rel->col[1 - side], rel->col[side], side);
    }
}

static void find_sql(const struct resource *r, int by_partner, char *sql, size_t cap)
{
    int n = select_cols(r, sql, cap);
    sqlcat(sql, cap, &n, " WHERE %s = ? AND b_id = ? AND deleted_at IS NULL", by_partner ? "partner_id" : "id");
}

/* One of the read path's statements with two text parameters, from the memo. */
/* The SQL of read-path statement `which` (SQ_MEMO_*). */
static void memo_sql_build(int which, char *sql, size_t cap, bool pre8)
{
    if (which < SQ_MEMO_LINKS) {
        int k = (which - SQ_MEMO_FIND) / 2;
        find_sql(resource_get((enum rkind)k), (which - SQ_MEMO_FIND) % 2, sql, cap);
    } else {
        int k = (which - SQ_MEMO_LINKS) / MAX_LINKS;
        links_sql(resource_get((enum rkind)k), (size_t)((which - SQ_MEMO_LINKS) % MAX_LINKS), sql, cap, pre8);
    }
}

static sqlite3_stmt *memo_bind2(struct store_tx *tx, int which, const char *a, const char *b)
{
    int rc;
    sqlite3_stmt *st;
    if (tx->s) {
        st = sq_cache_prepare_memo(SQ_CONN(tx), which, S(tx->s)->memo_sql[which], &rc);
    } else { /* a connection outside any store (migration 6's backfill): by its text */
        char sql[SQL_MAX];
        memo_sql_build(which, sql, sizeof sql, true);
        st = sq_cache_prepare(SQ_CONN(tx), sql, &rc);
    }
    if (!st) {
        sq_fail(tx, rc);
        return NULL;
    }
    sqlite3_bind_text(st, 1, a, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, b, -1, SQLITE_STATIC);
    return st;
}

/* Fills the record's link views: the linked records that are still live. */
static enum store_status load_links(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    struct record *rec)
{
    for (size_t v = 0; v < r->nviews; v++) {
        /* links never cross tenants; checked anyway */
        sqlite3_stmt *st = memo_bind2(tx, SQ_MEMO_LINKS + (int)r->kind * MAX_LINKS + (int)v, rec->id, tenant);
        if (!st)
            return tx->failed;
        size_t cap = 4, k = 0;
        struct ref *items = arena_alloc(tx->a, cap * sizeof *items);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (k == cap) {
                struct ref *bigger = arena_alloc(tx->a, 2 * cap * sizeof *items);
                memcpy(bigger, items, k * sizeof *items);
                items = bigger;
                cap *= 2;
            }
            items[k].id = sq_text(st, 0, tx->a);
            items[k].a = sq_text(st, 1, tx->a);
            items[k].b = sq_text(st, 2, tx->a);
            k++;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq_fail(tx, rc);
        rec->links[v].items = items;
        rec->links[v].n = k;
    }
    return STORE_OK;
}

/* The links of view v for up to LINKS_MANY records at once (a list's rows): ?1 the tenant,
 * ?2.. the records' Eka ids (NULL for slots not used); each link's owner first, the rows of
 * one owner together and in the order load_links gives them. CROSS JOIN keeps the link table
 * outside: left to itself, SQLite's planner read the tenant's every linked record instead. */
void sq_links_many_sql(const struct resource *r, size_t v, char *sql, size_t cap)
{
    const struct link_view *lv = &r->views[v];
    const struct relation *rel = relation_get(lv->rel);
    const struct resource *t = resource_get(lv->target);
    int side = rel->kind[0] == r->kind ? 0 : 1;
    int n = 0;
    /* by the index that leads with (b_id, the owners' column): without statistics SQLite
     * would take another that starts with b_id alone, the tenant's every link */
    sqlcat(sql, cap, &n,
           "SELECT l.%s, t.id, t.%s, %s%s FROM %s l INDEXED BY %s_%s CROSS JOIN %s t ON t.b_id = l.b_id"
           " AND t.id = l.%s WHERE l.b_id = ?1 AND l.%s IN (?2",
           rel->col[side], t->summary[0], t->summary[1] ? "t." : "NULL", t->summary[1] ? t->summary[1] : "", rel->table,
           rel->table, side == 0 ? "key" : "rev", t->table, rel->col[1 - side], rel->col[side]);
    for (int i = 3; i < LINKS_MANY + 2; i++)
        sqlcat(sql, cap, &n, ",?%d", i);
    sqlcat(sql, cap, &n, ") AND t.deleted_at IS NULL ORDER BY l.%s, coalesce(l.ord%d, l.pos)", rel->col[side], side);
}

/* load_links for a list's rows: one statement per view for every LINKS_MANY records, not one
 * per record and view (two statements a record were a third of a full list's time). */
static enum store_status load_links_many(struct store_tx *tx, const struct resource *r, const char *tenant,
                                         struct record *recs, int n)
{
    for (size_t v = 0; v < r->nviews; v++) {
        char sql[SQL_MAX];
        sq_links_many_sql(r, v, sql, sizeof sql);
        for (int base = 0; base < n; base += LINKS_MANY) {
            int m = n - base < LINKS_MANY ? n - base : LINKS_MANY;
            struct record *chunk = recs + base;
            sqlite3_stmt *st = sq_prep(tx, sql);
            if (!st)
                return tx->failed;
            sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
            for (int i = 0; i < LINKS_MANY; i++) {
                if (i < m)
                    sqlite3_bind_text(st, i + 2, chunk[i].id, -1, SQLITE_STATIC);
                else
                    sqlite3_bind_null(st, i + 2);
            }
            for (int i = 0; i < m; i++)
                chunk[i].links[v] = (struct reflist){0};
            int cur = -1; /* the record whose links the rows are, while they are its */
            size_t cap = 0;
            struct ref *items = NULL;
            int rc;
            while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
                const char *owner = (const char *)sqlite3_column_text(st, 0);
                if (cur < 0 || strcmp(owner ? owner : "", chunk[cur].id) != 0) {
                    cur = -1;
                    for (int i = 0; i < m && cur < 0; i++)
                        if (owner && !strcmp(owner, chunk[i].id))
                            cur = i;
                    if (cur < 0) { /* a row of no record asked for: cannot be */
                        sqlite3_reset(st);
                        return store_fail(tx, STORE_ERROR, NULL, 0);
                    }
                    cap = 4;
                    items = arena_alloc(tx->a, cap * sizeof *items);
                    chunk[cur].links[v].items = items;
                }
                struct reflist *l = &chunk[cur].links[v];
                if (l->n == cap) {
                    struct ref *bigger = arena_alloc(tx->a, 2 * cap * sizeof *items);
                    memcpy(bigger, items, l->n * sizeof *items);
                    l->items = items = bigger;
                    cap *= 2;
                }
                items[l->n].id = sq_text(st, 1, tx->a);
                items[l->n].a = sq_text(st, 2, tx->a);
                items[l->n].b = sq_text(st, 3, tx->a);
                l->n++;
            }
            sqlite3_reset(st);
            if (rc != SQLITE_DONE)
                return sq_fail(tx, rc);
        }
    }
    return STORE_OK;
}

static enum store_status sq_find(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                                 struct record *out)
{
    /* Two probes so the Eka id wins over a partner_id that happens to be equal. */
    for (int k = 0; k < 2; k++) {
        sqlite3_stmt *st = memo_bind2(tx, SQ_MEMO_FIND + (int)r->kind * 2 + k, key, tenant);
        if (!st)
            return tx->failed;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            read_row(r, st, tx->a, out);
            sqlite3_reset(st);
            return load_links(tx, r, tenant, out);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq_fail(tx, rc);
    }
    return STORE_NOT_FOUND;
}

static enum store_status sq_soft_delete(struct store_tx *tx, const struct resource *r, const char *tenant,
                                        const char *id)
{
    int changes = 0;
    sqlite3_stmt *stmt =
        table_stmt(tx, K_DELETE, r,
                   "UPDATE %s SET deleted_at = ?3, updated_at = ?3 WHERE id = ?1 AND b_id = ?2 AND deleted_at IS NULL");
    const char *args[] = {id, tenant, tx->now_text};
    enum store_status st = sq_run(tx, bind_texts(stmt, 3, args), NULL, &changes);
    return st == STORE_OK && !changes ? STORE_NOT_FOUND : st;
}

static enum store_status sq_resolve(struct store_tx *tx, const struct resource *target, const char *tenant,
                                    bool by_partner, const char *const *keys, size_t n, const char **ids_out)
{
    uint64_t key = SQL_KEY(K_RESOLVE, target->kind, by_partner);
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = sq_cached(tx, key);
        if (!st) {
            char sql[SQL_MAX];
            int len = 0;
            sqlcat(sql, sizeof sql, &len, "SELECT id FROM %s WHERE %s = ? AND b_id = ? AND deleted_at IS NULL",
                   target->table, by_partner ? "partner_id" : "id");
            st = sq_prep_keyed(tx, key, sql);
        }
        const char *args[] = {keys[i], tenant};
        if (!bind_texts(st, 2, args))
            return tx->failed;
        int rc = sqlite3_step(st);
        ids_out[i] = rc == SQLITE_ROW ? sq_text(st, 0, tx->a) : NULL;
        sqlite3_reset(st);
        if (rc != SQLITE_ROW && rc != SQLITE_DONE)
            return sq_fail(tx, rc);
    }
    return STORE_OK;
}

/* A list given whole (replace) sets this side's order to -n..-1 (before any link made later,
 * which orders by its pos) and keeps the rows that stay, so the other side's order of them
 * is untouched; rows not in the list go. Adding appends rows ordered by pos on both sides. */
static enum store_status sq_link(struct store_tx *tx, enum rel rel, int side, const char *tenant, const char *id,
                                 const char *const *others, size_t n, bool replace)
{
    const struct relation *R = relation_get(rel);
    char sql[SQL_MAX];
    int len = 0;
    if (!replace) {
        sqlcat(sql, sizeof sql, &len, "INSERT OR IGNORE INTO %s (b_id, %s, %s) VALUES (?, ?, ?)", R->table,
               R->col[side], R->col[1 - side]);
        for (size_t i = 0; i < n; i++) {
            enum store_status st = sq_run(tx, sq_bind_texts(tx, sql, 3, tenant, id, others[i]), NULL, NULL);
            if (st != STORE_OK)
                return st;
        }
        return STORE_OK;
    }
    /* 0 marks the rows of this record; those the list names again get their place */
    sqlcat(sql, sizeof sql, &len, "UPDATE %s SET ord%d = 0 WHERE b_id = ?1 AND %s = ?2", R->table, side,
           R->col[side]);
    enum store_status st = sq_run(tx, sq_bind_texts(tx, sql, 2, tenant, id), NULL, NULL);
    if (st != STORE_OK)
        return st;
    len = 0;
    sqlcat(sql, sizeof sql, &len,
           "INSERT INTO %s (b_id, %s, %s, ord%d) VALUES (?1, ?2, ?3, ?4) ON CONFLICT (b_id, %s, %s) DO UPDATE SET ord%d = ?4",
           R->table, R->col[side], R->col[1 - side], side, R->col[0], R->col[1], side);
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *ins = sq_bind_texts(tx, sql, 3, tenant, id, others[i]);
        if (ins)
            sqlite3_bind_int64(ins, 4, (int64_t)i - (int64_t)n);
        if ((st = sq_run(tx, ins, NULL, NULL)) != STORE_OK)
            return st;
    }
    len = 0;
    sqlcat(sql, sizeof sql, &len, "DELETE FROM %s WHERE b_id = ?1 AND %s = ?2 AND ord%d = 0", R->table, R->col[side],
           side);
    return sq_run(tx, sq_bind_texts(tx, sql, 2, tenant, id), NULL, NULL);
}

/* ---- lists: creation order, keyset cursor, filters ---- */

/* The column a filter compares, from the field table; NULL when the resource has none. */
static const char *filter_column(const struct resource *r, const char *field, bool key)
{
    int i = field_index(r, field);
    if (i < 0)
        return NULL;
    return key ? r->fields[i].key_column : r->fields[i].column;
}

/* The link view of r whose other side is target; NULL when r has none. */
static const struct link_view *filter_link(const struct resource *r, enum rkind target)
{
    for (size_t v = 0; v < r->nviews; v++)
        if (r->views[v].target == target)
            return &r->views[v];
    return NULL;
}

static int list_arg(struct list_sql *q, const char *v)
{
    q->args[q->nargs++] = v;
    return q->nargs + 3;
}

int sq_list_sql(const struct resource *r, const struct list_filter *f, enum list_driver d, struct list_sql *q)
{
    static const struct list_filter none;
    if (!f)
        f = &none;
    memset(q, 0, sizeof *q);
    int n = 0;
    char *sql = q->sql;
    size_t cap = sizeof q->sql;
    sqlcat(sql, cap, &n, "SELECT t.rid, t.id, t.created_at, t.updated_at");
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].column)
            sqlcat(sql, cap, &n, ", t.%s", r->fields[i].column);

    const struct { const char *value; enum rkind target; } links[] = {{f->clinic_id, R_CLINIC},
                                                                      {f->doctor_id, R_DOCTOR}};
    int drive = -1; /* LD_LINK: the index in links[] of the link the rows come from */
    if (d == LD_LINK)
        for (int k = 0; k < 2 && drive < 0; k++)
            if (links[k].value)
                drive = k;
    if (d == LD_LINK && drive < 0)
        return -1;

    int link_arg[2] = {0, 0};
    if (drive >= 0) {
        const struct link_view *lv = filter_link(r, links[drive].target);
        if (!lv)
            return -1;
        const struct relation *rel = relation_get(lv->rel);
        int side = rel->kind[0] == r->kind ? 0 : 1;
        /* CROSS JOIN keeps the link table outside: its rows for one id, each record by its id */
        /* by the index that leads with (b_id, that id): without statistics SQLite would take
         * the key's covering index for b_id alone, the tenant's every link */
        sqlcat(sql, cap, &n, " FROM %s l INDEXED BY %s_%s CROSS JOIN %s t ON t.b_id = l.b_id AND t.id = l.%s",
               rel->table, rel->table, side == 0 ? "rev" : "key", r->table, rel->col[side]);
        link_arg[drive] = list_arg(q, links[drive].value);
    } else if (d == LD_LIVE) {
        sqlcat(sql, cap, &n, " FROM %s t INDEXED BY %s_live", r->table, r->table);
    } else if (d == LD_UPDATED) {
        if (!f->updated_since)
            return -1;
        sqlcat(sql, cap, &n, " FROM %s t INDEXED BY %s_updated", r->table, r->table);
    } else {
        sqlcat(sql, cap, &n, " FROM %s t", r->table);
    }
    sqlcat(sql, cap, &n, " WHERE t.b_id = ?1 AND t.deleted_at IS NULL AND t.rid > ?2");

    const struct { const char *value, *field; bool key; } eq[] = {
        {f->partner_id, "partner_id", false},
        {f->mobile, "mobile", false},
        {f->email_key, "email", true},
        {f->auth_userid, "auth_userid", false},
    };
    for (size_t k = 0; k < sizeof eq / sizeof eq[0]; k++) {
        if (!eq[k].value)
            continue;
        const char *col = filter_column(r, eq[k].field, eq[k].key);
        if (!col)
            return -1;
        sqlcat(sql, cap, &n, " AND t.%s = ?%d", col, list_arg(q, eq[k].value));
    }
    if (f->updated_since)
        sqlcat(sql, cap, &n, " AND t.updated_at >= ?%d", list_arg(q, f->updated_since));
    for (int k = 0; k < 2; k++) {
        if (!links[k].value)
            continue;
        const struct link_view *lv = filter_link(r, links[k].target);
        if (!lv)
            return -1;
        const struct relation *rel = relation_get(lv->rel);
        const struct resource *target = resource_get(lv->target);
        int side = rel->kind[0] == r->kind ? 0 : 1;
        if (k == drive) {
            sqlcat(sql, cap, &n, " AND l.b_id = ?1 AND l.%s = ?%d", rel->col[1 - side], link_arg[k]);
        } else {
            link_arg[k] = list_arg(q, links[k].value);
            sqlcat(sql, cap, &n, " AND EXISTS (SELECT 1 FROM %s x WHERE x.b_id = ?1 AND x.%s = t.id AND x.%s = ?%d)",
                   rel->table, rel->col[side], rel->col[1 - side], link_arg[k]);
        }
        /* a link counts while the linked record is live and the tenant's, as in the record's view */
        sqlcat(sql, cap, &n,
               " AND EXISTS (SELECT 1 FROM %s o WHERE o.id = ?%d AND o.b_id = ?1 AND o.deleted_at IS NULL)",
               target->table, link_arg[k]);
    }
    sqlcat(sql, cap, &n, " ORDER BY t.rid LIMIT ?3");
    return 0;
}

/* Are there fewer than LIST_PROBE rows where a sorted plan would start? */
static enum store_status probe_small(struct store_tx *tx, const char *sql, const char *a1, const char *a2,
                                     bool *small)
{
    sqlite3_stmt *st = sq_bind_texts(tx, sql, 2, a1, a2);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW)
        *small = sqlite3_column_int64(st, 0) < LIST_PROBE;
    sqlite3_reset(st);
    return rc == SQLITE_ROW ? STORE_OK : sq_fail(tx, rc);
}

/* SQLite's planner, without statistics, prefers the tenant's scan in creation order (no
 * sort) even when a filter keeps few rows, and then reads the whole tenant. So the rows'
 * source is chosen here: an equality filter's index (it yields creation order, as SQLite
 * appends the rowid to every index); else a link table or the updated_at index when fewer
 * than LIST_PROBE rows start there (those are read and sorted); else the scan in creation
 * order, which then finds a page's matches among at most about tenant / LIST_PROBE * limit rows. */
static enum store_status choose_driver(struct store_tx *tx, const struct resource *r, const char *tenant,
                                       const struct list_filter *f, enum list_driver *d)
{
    *d = LD_LIVE;
    if (!f)
        return STORE_OK;
    if (f->partner_id || f->mobile || f->email_key || f->auth_userid) {
        *d = LD_KEY;
        return STORE_OK;
    }
    char sql[SQL_MAX];
    int n = 0;
    bool small = false;
    const char *link = f->clinic_id ? f->clinic_id : f->doctor_id;
    if (link) {
        const struct link_view *lv = filter_link(r, f->clinic_id ? R_CLINIC : R_DOCTOR);
        if (!lv)
            return STORE_ERROR;
        const struct relation *rel = relation_get(lv->rel);
        int side = rel->kind[0] == r->kind ? 0 : 1;
        sqlcat(sql, sizeof sql, &n,
               "SELECT CASE WHEN EXISTS (SELECT 1 FROM %s WHERE id = ?1 AND b_id = ?2)"
               " THEN (SELECT count(*) FROM (SELECT 1 FROM %s INDEXED BY %s_%s WHERE b_id = ?2 AND %s = ?1 LIMIT %d))"
               " ELSE 0 END",
               resource_get(lv->target)->table, rel->table, rel->table, side == 0 ? "rev" : "key", rel->col[1 - side],
               LIST_PROBE);
        enum store_status st = probe_small(tx, sql, link, tenant, &small);
        if (st != STORE_OK || small) {
            *d = LD_LINK;
            return st;
        }
    }
    if (f->updated_since) {
        n = 0;
        sqlcat(sql, sizeof sql, &n,
               "SELECT count(*) FROM (SELECT 1 FROM %s INDEXED BY %s_updated WHERE b_id = ?1 AND deleted_at IS NULL"
               " AND updated_at >= ?2 LIMIT %d)",
               r->table, r->table, LIST_PROBE);
        enum store_status st = probe_small(tx, sql, tenant, f->updated_since, &small);
        if (st != STORE_OK || small) {
            *d = LD_UPDATED;
            return st;
        }
    }
    return STORE_OK;
}

static enum store_status sq_list_where(struct store_tx *tx, const struct resource *r, const char *tenant,
                                       const struct list_filter *f, int64_t after, int limit, struct record *out,
                                       int *count, int64_t *next, bool *more)
{
    *count = 0;
    *next = after;
    if (more)
        *more = false;
    enum list_driver d;
    enum store_status st = choose_driver(tx, r, tenant, f, &d);
    if (st != STORE_OK && st != STORE_ERROR)
        return st;
    struct list_sql *q = arena_alloc(tx->a, sizeof *q);
    if (st == STORE_ERROR || sq_list_sql(r, f, d, q) != 0) {
        log_line("error", "a list filter the resource has no column or link for", r->table, 0);
        return store_fail(tx, STORE_ERROR, NULL, 0);
    }
    sqlite3_stmt *stmt = sq_prep(tx, q->sql);
    if (!stmt)
        return tx->failed;
    sqlite3_bind_text(stmt, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(stmt, 2, after);
    sqlite3_bind_int(stmt, 3, limit + 1); /* one more tells whether more follow */
    for (int i = 0; i < q->nargs; i++)
        sqlite3_bind_text(stmt, 4 + i, q->args[i], -1, SQLITE_STATIC);
    /* Rows are copied out first: load_links uses other statements of this connection. */
    int got = 0, rc;
    while ((rc = sqlite3_step(stmt)) == SQLITE_ROW) {
        if (got == limit) {
            if (more)
                *more = true;
            rc = SQLITE_DONE;
            break;
        }
        *next = sqlite3_column_int64(stmt, 0);
        read_row(r, stmt, tx->a, &out[got]);
        got++;
    }
    sqlite3_reset(stmt);
    if (rc != SQLITE_DONE)
        return sq_fail(tx, rc);
    enum store_status ls = load_links_many(tx, r, tenant, out, got);
    if (ls != STORE_OK)
        return ls;
    *count = got;
    return STORE_OK;
}

/* Eka id among all records (live or deleted), then a live record's partner_id, then the
 * partner_id of the most recently deleted record. */
static enum store_status sq_find_any(struct store_tx *tx, const struct resource *r, const char *tenant,
                                     const char *key, struct record *out, bool *deleted)
{
    char sql[SQL_MAX];
    int n = select_cols_ex(r, sql, sizeof sql, true);
    static const char *const where[] = {
        " WHERE id = ? AND b_id = ?",
        " WHERE partner_id = ? AND b_id = ? AND deleted_at IS NULL",
        " WHERE partner_id = ? AND b_id = ? AND deleted_at IS NOT NULL ORDER BY deleted_at DESC, rid DESC LIMIT 1",
    };
    for (int k = 0; k < 3; k++) {
        int end = n;
        sqlcat(sql, sizeof sql, &end, "%s", where[k]);
        sqlite3_stmt *st = sq_bind_texts(tx, sql, 2, key, tenant);
        if (!st)
            return tx->failed;
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            read_row(r, st, tx->a, out);
            *deleted = sqlite3_column_type(st, select_ncols(r)) != SQLITE_NULL;
            sqlite3_reset(st);
            return load_links(tx, r, tenant, out);
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq_fail(tx, rc);
    }
    return STORE_NOT_FOUND;
}

/* The partial unique indexes cover live rows only, so bringing a row back is where a value
 * taken meanwhile shows: the UPDATE fails on that index and names its field. */
static enum store_status sq_restore(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *id)
{
    char sql[SQL_MAX];
    int n = 0;
    sqlcat(sql, sizeof sql, &n,
           "UPDATE %s SET deleted_at = NULL, updated_at = ?3 WHERE id = ?1 AND b_id = ?2 AND deleted_at IS NOT NULL",
           r->table);
    sqlite3_stmt *st = sq_bind_texts(tx, sql, 3, id, tenant, tx->now_text);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return sqlite3_changes(SQ_CONN(tx)->db) ? STORE_OK : STORE_NOT_FOUND;
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return unique_fail(tx, r);
    return sq_fail(tx, rc);
}

/* ---- the change log ---- */

/* The tenant's next sequence number: a counter row per tenant, bumped in the unit's
 * transaction (SQLite has one writer, so the order of the bumps is the commit order; a
 * rolled-back unit gives its numbers back). */
static enum store_status next_seq(struct store_tx *tx, const char *tenant, int64_t *seq)
{
    if (tx->s && SQ_CONN(tx) == S(tx->s)->wconn) { /* the writer: counted in memory (seq_next) */
        int rc = seq_next(S(tx->s), tenant, seq);
        return rc == SQLITE_OK ? STORE_OK : sq_fail(tx, rc);
    }
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "INSERT INTO change_seq (b_id, last) VALUES (?1, 1)"
                                     " ON CONFLICT (b_id) DO UPDATE SET last = last + 1 RETURNING last",
                                     1, tenant);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        *seq = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(tx, rc);
}

/* The values every INSERT of an entry binds: ?1 tenant, ?2 resource, ?3 id, ?4 action,
 * ?5 at, ?6 client, ?7 seq, ?9 request id, ?10 changes. */
static void bind_entry(sqlite3_stmt *st, const char *tenant, const struct change_entry *e)
{
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->r->path, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 3, e->id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 4, change_action_name(e->action), -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 5, e->at, -1, SQLITE_STATIC);
    if (e->client_id && *e->client_id)
        sqlite3_bind_text(st, 6, e->client_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 6);
    sqlite3_bind_int64(st, 7, e->seq);
    if (e->request_id && *e->request_id)
        sqlite3_bind_text(st, 9, e->request_id, -1, SQLITE_STATIC);
    else
        sqlite3_bind_null(st, 9);
    sqlite3_bind_text(st, 10, e->changes ? e->changes : "{}", -1, SQLITE_STATIC);
}

/* Migration 6's backfill runs before the chain's columns exist: it finds an entry's version
 * by the (b_id, resource, id, version) key of that schema; migration 11 builds the chain
 * after it. */
static enum store_status log_backfill_insert(struct store_tx *tx, const char *tenant, struct change_entry *e)
{
    sqlite3_stmt *st = sq_prep(tx, "INSERT INTO change_log (b_id, seq, resource, id, version, action, at, client_id,"
                                   " request_id, changes) VALUES (?1, ?7, ?2, ?3, (SELECT coalesce(max(version), 0)"
                                   " + 1 FROM change_log WHERE b_id = ?1 AND resource = ?2 AND id = ?3), ?4, ?5, ?6,"
                                   " ?9, ?10) RETURNING version");
    if (!st)
        return tx->failed;
    bind_entry(st, tenant, e);
    int rc = sqlite3_step(st);
    if (rc == SQLITE_ROW) {
        e->version = sqlite3_column_int64(st, 0);
        rc = sqlite3_step(st);
    }
    sqlite3_reset(st);
    if (rc == SQLITE_CONSTRAINT_UNIQUE || rc == SQLITE_CONSTRAINT_PRIMARYKEY)
        return store_fail(tx, STORE_CONFLICT, NULL, 0);
    return rc == SQLITE_DONE ? STORE_OK : sq_fail(tx, rc);
}

/* Appends with an explicit time (the backfill of migration 6 dates entries in the past).
 *
 * The chain (migration 11): the record's row names its last entry (last_seq) and that
 * entry's version (last_version, migration 12), each entry the one before it (prev). Three
 * statements, each its cheapest form: the record's row (one lookup by id); the entry,
 * inserted with its values; the row's last_seq and last_version, written by its rowid. An
 * INSERT ... SELECT ... RETURNING that found the row itself, then an UPDATE that found it
 * again by id, cost the writer one more lookup by id and a table for RETURNING's rows; the
 * last entry's version read from the change log cost a random page of a table that only
 * grows, most often not in the writer's cache (docs/performance.md). */
static enum store_status log_append_at(struct store_tx *tx, const char *tenant, struct change_entry *e, const char *at,
                                       bool chain)
{
    enum store_status ss = next_seq(tx, tenant, &e->seq);
    if (ss != STORE_OK)
        return ss;
    e->at = arena_strdup(tx->a, at);
    if (!chain)
        return log_backfill_insert(tx, tenant, e);
    sqlite3_stmt *st =
        table_stmt(tx, K_LOG_FIND, e->r, "SELECT rowid, last_seq, last_version FROM %s WHERE id = ?2 AND b_id = ?1");
    if (!st)
        return tx->failed;
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, 2, e->id, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    int64_t rowid = 0, prev = 0;
    bool has_prev = false;
    e->version = 1;
    if (rc == SQLITE_ROW) {
        rowid = sqlite3_column_int64(st, 0);
        has_prev = sqlite3_column_type(st, 1) != SQLITE_NULL;
        prev = sqlite3_column_int64(st, 1);
        e->version = sqlite3_column_int64(st, 2) + 1; /* NULL (no entry yet) reads as 0 */
    }
    sqlite3_reset(st);
    if (rc == SQLITE_DONE) { /* the record keeps its chain: an entry of no record has nowhere to go */
        log_line("error", "change_log: an entry for a record that is not there", e->r->path, 0);
        return store_fail(tx, STORE_ERROR, NULL, 0);
    }
    if (rc != SQLITE_ROW)
        return sq_fail(tx, rc);
    uint64_t key = SQL_KEY(K_LOG_INSERT, 0, 0);
    if (!(st = sq_cached(tx, key)) &&
        !(st = sq_prep_keyed(tx, key,
                             "INSERT INTO change_log (b_id, seq, resource, id, version, action, at, client_id,"
                             " request_id, changes, prev) VALUES (?1, ?7, ?2, ?3, ?8, ?4, ?5, ?6, ?9, ?10, ?11)")))
        return tx->failed;
    bind_entry(st, tenant, e);
    sqlite3_bind_int64(st, 8, e->version);
    if (has_prev)
        sqlite3_bind_int64(st, 11, prev);
    else
        sqlite3_bind_null(st, 11);
    if ((ss = sq_run(tx, st, NULL, NULL)) != STORE_OK)
        return ss;
    /* the record's row is written by the unit already: this changes no other page */
    if (!(st = table_stmt(tx, K_LAST_SEQ, e->r,
                          "UPDATE %s SET last_seq = ?1, last_version = ?4 WHERE rowid = ?2 AND b_id = ?3")))
        return tx->failed;
    sqlite3_bind_int64(st, 1, e->seq);
    sqlite3_bind_int64(st, 2, rowid);
    sqlite3_bind_text(st, 3, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 4, e->version);
    return sq_run(tx, st, NULL, NULL);
}

static enum store_status sq_log_append(struct store_tx *tx, const char *tenant, struct change_entry *e)
{
    return log_append_at(tx, tenant, e, tx->now_text, true);
}

#define ENTRY_COLS "seq, resource, id, version, action, at, client_id, request_id, changes"

static bool read_entry(sqlite3_stmt *st, struct arena *a, struct change_entry *e)
{
    static const char *const ACTIONS[] = {"create", "update", "delete", "restore"};
    memset(e, 0, sizeof *e);
    e->seq = sqlite3_column_int64(st, 0);
    const char *res = (const char *)sqlite3_column_text(st, 1);
    e->r = res ? resource_by_path(res, strlen(res)) : NULL;
    e->id = sq_text(st, 2, a);
    e->version = sqlite3_column_int64(st, 3);
    const char *action = (const char *)sqlite3_column_text(st, 4);
    int k = 0;
    while (k < 4 && !(action && strcmp(action, ACTIONS[k]) == 0))
        k++;
    e->action = (enum change_action)k;
    e->at = sq_text(st, 5, a);
    e->client_id = sq_text(st, 6, a);
    e->request_id = sq_text(st, 7, a);
    e->changes = sq_text(st, 8, a);
    if (!e->r || k == 4 || !e->id || !e->at || !e->changes) {
        log_line("error", "change_log: a row the server cannot read", res, (long)e->seq);
        return false;
    }
    return true;
}

/* The record's entries: the chain from its last entry back (migration 11), each entry
 * found by its key, answered oldest first. */
static enum store_status sq_history(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *id, struct change_entry **out, size_t *n)
{
    char sql[128];
    snprintf(sql, sizeof sql, "SELECT last_seq FROM %s WHERE id = ?1 AND b_id = ?2", r->table);
    sqlite3_stmt *st = sq_bind_texts(tx, sql, 2, id, tenant);
    if (!st)
        return tx->failed;
    int rc = sqlite3_step(st);
    bool chained = rc == SQLITE_ROW && sqlite3_column_type(st, 0) != SQLITE_NULL;
    int64_t seq = chained ? sqlite3_column_int64(st, 0) : 0;
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(tx, rc);
    if (!chained)
        return STORE_NOT_FOUND;
    st = sq_bind_texts(tx, "SELECT " ENTRY_COLS ", prev FROM change_log WHERE b_id = ?1 AND seq = ?2", 1, tenant);
    if (!st)
        return tx->failed;
    size_t cap = 8, k = 0;
    struct change_entry *items = arena_alloc(tx->a, cap * sizeof *items);
    for (bool more = true; more;) {
        sqlite3_bind_int64(st, 2, seq);
        if ((rc = sqlite3_step(st)) != SQLITE_ROW) {
            sqlite3_reset(st);
            if (rc == SQLITE_DONE) { /* a chain that names a missing entry */
                log_line("error", "change_log: a record's history names an entry that is not there", r->path,
                         (long)seq);
                return store_fail(tx, STORE_ERROR, NULL, 0);
            }
            return sq_fail(tx, rc);
        }
        if (k == cap) {
            struct change_entry *bigger = arena_alloc(tx->a, 2 * cap * sizeof *items);
            memcpy(bigger, items, k * sizeof *items);
            items = bigger;
            cap *= 2;
        }
        bool good = read_entry(st, tx->a, &items[k++]);
        more = sqlite3_column_type(st, 9) != SQLITE_NULL;
        int64_t prev = sqlite3_column_int64(st, 9);
        sqlite3_reset(st);
        if (!good)
            return store_fail(tx, STORE_ERROR, NULL, 0);
        if (more && prev >= seq) { /* entries name earlier ones only: never a loop */
            log_line("error", "change_log: an entry names a later one as its previous", r->path, (long)seq);
            return store_fail(tx, STORE_ERROR, NULL, 0);
        }
        seq = prev;
    }
    for (size_t i = 0; i < k / 2; i++) { /* oldest first */
        struct change_entry e = items[i];
        items[i] = items[k - 1 - i];
        items[k - 1 - i] = e;
    }
    *out = items;
    *n = k;
    return STORE_OK;
}

static enum store_status sq_changes(struct store_tx *tx, const char *tenant, int64_t after, int limit,
                                    struct change_entry *out, int *count)
{
    *count = 0;
    sqlite3_stmt *st = sq_bind_texts(tx,
                                     "SELECT " ENTRY_COLS " FROM change_log"
                                     " WHERE b_id = ? AND seq > ? ORDER BY seq LIMIT ?",
                                     1, tenant);
    if (!st)
        return tx->failed;
    sqlite3_bind_int64(st, 2, after);
    sqlite3_bind_int(st, 3, limit);
    int got = 0, rc = SQLITE_DONE;
    while (got < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        if (!read_entry(st, tx->a, &out[got])) {
            sqlite3_reset(st);
            return store_fail(tx, STORE_ERROR, NULL, 0);
        }
        got++;
    }
    sqlite3_reset(st);
    if (rc != SQLITE_ROW && rc != SQLITE_DONE)
        return sq_fail(tx, rc);
    *count = got;
    return STORE_OK;
}

/* Migration 6: records written before the change log get the entries they would have had:
 * a create (every field and link as the record is now, dated created_at) and, for deleted
 * ones, a delete (dated deleted_at), each tenant's in time order. Runs inside the
 * migration's transaction on the migrating connection. */
bool sq_change_log_backfill(sqlite3 *db)
{
    struct sqlite_conn *c = calloc(1, sizeof *c); /* borrows db for the statement cache */
    if (!c)
        return false;
    c->db = db;
    sq_conn_unit_start(c);
    struct arena a;
    arena_init(&a);
    struct store_tx tx = {.conn = c, .a = &a, .write = true};
    char sql[SQL_MAX];
    int n = 0;
    sqlcat(sql, sizeof sql, &n, "SELECT k, rid, at, del FROM (");
    for (int k = 0; k < R_COUNT; k++) {
        const char *t = resource_get((enum rkind)k)->table;
        sqlcat(sql, sizeof sql, &n,
               "%sSELECT %d AS k, rid, created_at AS at, 0 AS del FROM %s"
               " UNION ALL SELECT %d, rid, deleted_at, 1 FROM %s WHERE deleted_at IS NOT NULL",
               k ? " UNION ALL " : "", k, t, k, t);
    }
    sqlcat(sql, sizeof sql, &n, ") ORDER BY at, del, k, rid");
    sqlite3_stmt *ev = NULL;
    bool ok = sqlite3_prepare_v2(db, sql, -1, &ev, NULL) == SQLITE_OK;
    int rc = SQLITE_DONE;
    long done = 0;
    while (ok && (rc = sqlite3_step(ev)) == SQLITE_ROW) {
        const struct resource *r = resource_get((enum rkind)sqlite3_column_int(ev, 0));
        int64_t rid = sqlite3_column_int64(ev, 1);
        bool del = sqlite3_column_int(ev, 3) != 0;
        char q[SQL_MAX];
        int qn = select_cols_ex(r, q, sizeof q, false);
        sqlcat(q, sizeof q, &qn, " WHERE rid = ?");
        sqlite3_stmt *st = sq_prep(&tx, q);
        const char *tenant = NULL, *at = NULL;
        struct record rec = {0};
        ok = st != NULL;
        if (ok) {
            sqlite3_bind_int64(st, 1, rid);
            ok = sqlite3_step(st) == SQLITE_ROW;
            if (ok)
                read_row(r, st, &a, &rec);
            sqlite3_reset(st);
        }
        if (ok) {
            n = 0;
            sqlcat(sql, sizeof sql, &n, "SELECT b_id, %s FROM %s WHERE rid = ?", del ? "deleted_at" : "created_at",
                   r->table);
            st = sq_prep(&tx, sql);
            ok = st != NULL;
            if (ok) {
                sqlite3_bind_int64(st, 1, rid);
                ok = sqlite3_step(st) == SQLITE_ROW;
                tenant = ok ? sq_text(st, 0, &a) : NULL;
                at = ok ? sq_text(st, 1, &a) : NULL;
                sqlite3_reset(st);
                ok = tenant && at;
            }
        }
        struct change_entry e = {.r = r, .id = rec.id, .action = del ? CHANGE_DELETE : CHANGE_CREATE};
        if (ok && !del) {
            ok = load_links(&tx, r, tenant, &rec) == STORE_OK;
            json_t *ch = ok ? model_changes(r, NULL, &rec) : NULL;
            char *txt = ch ? json_dumps(ch, JSON_COMPACT) : NULL;
            json_decref(ch);
            e.changes = txt ? arena_strdup(&a, txt) : NULL;
            free(txt);
            ok = e.changes != NULL;
        }
        ok = ok && log_append_at(&tx, tenant, &e, at, false) == STORE_OK;
        if (++done % 256 == 0) { /* bounded memory, however many records */
            arena_release(&a);
            arena_init(&a);
        }
    }
    if (ok && rc != SQLITE_DONE)
        ok = false;
    if (!ok)
        log_line("error", "migration 6: the change log could not be filled", sqlite3_errmsg(db), done);
    sqlite3_finalize(ev);
    arena_release(&a);
    for (int i = 0; i < c->ncached; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    free(c);
    return ok;
}

static enum store_status sq_list(struct store_tx *tx, const struct resource *r, const char *tenant, int64_t after,
                                 int limit, struct record *out, int *count, int64_t *next)
{
    return sq_list_where(tx, r, tenant, NULL, after, limit, out, count, next, NULL);
}

static void sq_close(struct store *base)
{
    struct sqlite_store *s = S(base);
    /* The writer finishes what is queued, then stops; so does the checkpointer. */
    pthread_mutex_lock(&s->wq_mu);
    s->wq_stop = true;
    pthread_cond_signal(&s->wq_cv);
    pthread_cond_signal(&s->ckpt_cv);
    pthread_mutex_unlock(&s->wq_mu);
    if (s->writer_running)
        pthread_join(s->writer, NULL);
    if (s->checkpointer_running)
        pthread_join(s->checkpointer, NULL);
    sq_conn_close(s->cconn);
    sq_conn_close(s->wconn);
    seq_free(&s->seqs);
    while (s->idle) {
        struct sqlite_conn *c = s->idle;
        s->idle = c->next_idle;
        sq_conn_close(c);
    }
    if (s->watching)
        sq_watch_close(&s->watch);
    for (int i = 0; i < SQ_MEMO_MAX; i++)
        free(s->memo_sql[i]);
    pthread_cond_destroy(&s->wq_cv);
    pthread_cond_destroy(&s->ckpt_cv);
    pthread_mutex_destroy(&s->wq_mu);
    pthread_mutex_destroy(&s->pool_mu);
    store_base_free(&s->base);
    free(s);
}

const struct store_ops SQLITE_OPS = {
    .insert = sq_insert,
    .update = sq_update,
    .find = sq_find,
    .soft_delete = sq_soft_delete,
    .resolve = sq_resolve,
    .link = sq_link,
    .list = sq_list,
    .put = sq_put,
    .savepoint = sq_savepoint,
    .find_any = sq_find_any,
    .restore = sq_restore,
    .log_append = sq_log_append,
    .history = sq_history,
    .changes = sq_changes,
    .list_where = sq_list_where,
    .idem_get = sq_idem_get,
    .idem_claim = sq_idem_claim,
    .idem_finish = sq_idem_finish,
    .idem_release = sq_idem_release,
    .idem_purge = sq_idem_purge,
    .throttle_lock = sq_throttle_lock,
    .throttle_put = sq_throttle_put,
    .throttle_purge = sq_throttle_purge,
    .business_create = sq_business_create,
    .business_get = sq_business_get,
    .business_list = sq_business_list,
    .client_create = sq_client_create,
    .client_get = sq_client_get,
    .client_list = sq_client_list,
    .client_revoke = sq_client_revoke,
    .sharing_key_create = sq_sharing_key_create,
    .sharing_key_owner = sq_sharing_key_owner,
    .sharing_key_revoke = sq_sharing_key_revoke,
    .session_create = sq_session_create,
    .refresh_insert = sq_refresh_insert,
    .refresh_take = sq_refresh_take,
    .session_revoke = sq_session_revoke,
    .revocations = sq_revocations,
};

static bool sq_foreign_epoch(struct store *base, uint64_t *epoch)
{
    struct sqlite_store *s = S(base);
    return s->watching && sq_watch_check(&s->watch, epoch);
}

static const struct store_backend SQLITE_BACKEND = {
    .run = sq_run_unit,
    .close = sq_close,
    .write_stats = sq_write_stats,
    .counts_commits = true,
    .max_attempts = 1, /* one writer per process; SQLite's busy timeout waits between processes */
    .ops = &SQLITE_OPS,
    .ready = sq_ready,
    .foreign_epoch = sq_foreign_epoch,
};

/* The read path's SQL, built from the field tables once. */
static bool build_memo_sql(struct sqlite_store *s)
{
    char sql[SQL_MAX];
    for (int k = 0; k < R_COUNT; k++) {
        const struct resource *r = resource_get((enum rkind)k);
        for (int by = 0; by < 2; by++) {
            int which = SQ_MEMO_FIND + k * 2 + by;
            memo_sql_build(which, sql, sizeof sql, false);
            if (!(s->memo_sql[which] = strdup(sql)))
                return false;
        }
        for (size_t v = 0; v < r->nviews; v++) {
            int which = SQ_MEMO_LINKS + k * MAX_LINKS + (int)v;
            memo_sql_build(which, sql, sizeof sql, false);
            if (!(s->memo_sql[which] = strdup(sql)))
                return false;
        }
    }
    return true;
}

/* SQLite counts every allocation under one process-wide mutex unless told not to; nothing
 * here reads those counts, and the writer and the readers would contend for it. */
static void sqlite_configure(void) { sqlite3_config(SQLITE_CONFIG_MEMSTATUS, 0); }

struct store *store_sqlite_open(const char *path, const struct store_options *opt, char *err, size_t errlen)
{
    static pthread_once_t configured = PTHREAD_ONCE_INIT;
    pthread_once(&configured, sqlite_configure);
    /* Personal data and secret hashes: the file (and the WAL and shm SQLite derives from it)
     * is owner-only whoever creates it, the server or an admin command. O_EXCL matters:
     * closing any descriptor of a file drops every POSIX lock this process holds on it, so
     * the file is only ever touched here when it is new, and no SQLite lock can exist yet. */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    struct sqlite_store *s = calloc(1, sizeof *s);
    if (!s || !store_base_init(&s->base, &SQLITE_BACKEND, STORE_SQLITE, opt)) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    snprintf(s->path, sizeof s->path, "%s", path);
    pthread_mutex_init(&s->pool_mu, NULL);
    if (!build_memo_sql(s)) {
        snprintf(err, errlen, "out of memory");
        sq_close(&s->base);
        return NULL;
    }
    pthread_mutex_init(&s->wq_mu, NULL);
    pthread_cond_init(&s->wq_cv, NULL);
    pthread_condattr_t mono;
    pthread_condattr_init(&mono);
    pthread_condattr_setclock(&mono, CLOCK_MONOTONIC);
    pthread_cond_init(&s->ckpt_cv, &mono);
    pthread_condattr_destroy(&mono);
    s->wq_cap = opt && opt->write_queue ? opt->write_queue : STORE_WRITE_QUEUE_DEFAULT;
    s->ckpt_frames = opt && opt->checkpoint_frames ? (int)opt->checkpoint_frames : CHECKPOINT_FRAMES;
    /* The first connection migrates the schema, then waits in the pool. */
    struct sqlite_conn *c = sq_conn_open(path, err, errlen);
    struct herr e = {0};
    if (!c || !migrations_apply(c->db, opt ? opt->schema_version : 0, &e)) {
        if (c)
            snprintf(err, errlen, "%s", e.message ? e.message : "cannot initialise the database");
        sq_conn_close(c);
        sq_close(&s->base);
        return NULL;
    }
    s->idle = c;
    for (unsigned i = 1; opt && i < opt->threads; i++) {
        if (!(c = sq_conn_open(path, err, errlen))) {
            sq_close(&s->base);
            return NULL;
        }
        c->next_idle = s->idle;
        s->idle = c;
    }
    if (!(s->wconn = sq_conn_open(path, err, errlen)) || !(s->cconn = sq_conn_open(path, err, errlen))) {
        sq_close(&s->base);
        return NULL;
    }
    sqlite3_wal_hook(s->wconn->db, wal_hook, s); /* in place of the writer's own checkpoints */
    /* before the writer starts: the migrations' transactions have made the -shm file */
    s->watching = true; /* closed in sq_close either way; without its map it never answers */
    sq_watch_open(&s->watch, path);
    /* Every write reads its record (and indexes) first, on this one connection: a page cache
     * of 4 MiB, twice the readers', holds the indexes' upper levels; the rest comes from the
     * operating system's cache. 16 MiB put the server at 35-41 MiB with 100,000 users under
     * load (issue 9 asks for 32 at most) and was not measurably faster (docs/performance.md). */
    sqlite3_exec(s->wconn->db, "PRAGMA cache_size = -4096", NULL, NULL, NULL);
    s->checkpointer_running = start_thread(&s->checkpointer, checkpointer_main, s);
    if (!s->checkpointer_running || !start_thread(&s->writer, writer_main, s)) {
        snprintf(err, errlen, "cannot start the writer threads");
        sq_close(&s->base);
        return NULL;
    }
    s->writer_running = true;
    return &s->base;
}
