/* The PostgreSQL implementation of the storage interface (libpq). A unit takes a pooled
 * connection and runs in one transaction. Reads run in REPEATABLE READ READ ONLY: one
 * snapshot for the whole unit. Writes run in READ COMMITTED and lock what they change: the
 * record they found (FOR UPDATE), a refresh token, the tenant's change-log counter row; a
 * second unit on the same row waits and then reads the committed row, as the next writer
 * after SQLite's single writer would. Every other check a unit makes before it writes is a
 * unique index. A deadlock or a serialization failure re-runs the whole unit, a bounded
 * number of times. Statements are prepared once per connection. A lost connection is a
 * STORE_UNAVAILABLE for the unit that met it; the connection is dropped and a new one
 * opened on next use. */
#include <libpq-fe.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "model/ids.h"
#include "model/validate.h"
#include "store/migrations.h"
#include "store/pg_int.h"
#include "util/log.h"

#define PG_STMTS 256
/* any constant: all hipusers processes migrating one database take turns on it */
#define MIGRATION_LOCK 0x68697075
/* the schema version that brought the sequence hip_order (migration 8) */
#define SCHEMA_ORDER_SEQUENCE 8

struct pg_stmt {
    uint32_t hash;
    char *sql;
    char name[16];
};

struct pg_conn {
    PGconn *pc;
    struct pg_conn *next_idle;
    unsigned named;
    int nstmts;
    struct pg_stmt stmts[PG_STMTS];
};

struct pg_store {
    struct store base;
    char *url;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    struct pg_conn *idle;
    unsigned total, max;
};

#define PS(base) ((struct pg_store *)(base))
#define PC(tx) ((struct pg_conn *)(tx)->conn)

static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

/* ---- failures ---- */

/* The field a unique index guards: <table>_uq_<field> for the resources, the keys of the
 * login tables by their constraint names. */
static const char *conflict_name(const char *constraint)
{
    static const struct {
        const char *constraint, *key;
    } AUTH_KEYS[] = {{"business_pkey", "b_id"},       {"client_pkey", "client_id"},
                     {"sharing_key_pkey", "key_id"},  {"sharing_key_key_hash_key", "key_hash"},
                     {"session_pkey", "family"},      {"refresh_token_pkey", "token_hash"},
                     {"idempotency_key_pkey", "Idempotency-Key"}};
    if (!constraint)
        return NULL;
    for (int k = 0; k < R_COUNT; k++) {
        const struct resource *r = resource_get((enum rkind)k);
        size_t tl = strlen(r->table);
        if (strncmp(constraint, r->table, tl) != 0 || strncmp(constraint + tl, "_uq_", 4) != 0)
            continue;
        for (size_t i = 0; i < r->nfields; i++) {
            const struct field *f = &r->fields[i];
            if ((f->flags & F_UNIQUE) && (strcmp(constraint + tl + 4, f->name) == 0 ||
                                          (f->key_column && strcmp(constraint + tl + 4, f->key_column) == 0)))
                return f->name;
        }
    }
    for (size_t i = 0; i < sizeof AUTH_KEYS / sizeof AUTH_KEYS[0]; i++)
        if (strcmp(constraint, AUTH_KEYS[i].constraint) == 0)
            return AUTH_KEYS[i].key;
    return NULL;
}

static bool lost(PGconn *pc, const char *state)
{
    return PQstatus(pc) == CONNECTION_BAD || !state || strncmp(state, "08", 2) == 0 ||
           strncmp(state, "57P", 3) == 0;
}

/* Maps a failed statement to a storage status and records it on tx. The log gets the
 * SQLSTATE and the primary message only: the detail can quote values. */
static enum store_status pg_fail(struct store_tx *tx, const PGresult *res)
{
    PGconn *pc = PC(tx)->pc;
    const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
    if (lost(pc, state)) {
        log_line("error", "postgresql: connection lost", state, 0);
        return store_fail(tx, STORE_UNAVAILABLE, NULL, 5);
    }
    if (!strcmp(state, "40001") || !strcmp(state, "40P01")) { /* serialization failure, deadlock */
        tx->rerun = true;
        return store_fail(tx, STORE_RETRY, NULL, 1);
    }
    if (!strcmp(state, "23505")) {
        const char *key = conflict_name(PQresultErrorField(res, PG_DIAG_CONSTRAINT_NAME));
        if (key)
            return store_fail(tx, STORE_CONFLICT, key, 0);
    }
    if (!strcmp(state, "55P03") || !strcmp(state, "57014")) /* lock not available, statement timeout */
        return store_fail(tx, STORE_RETRY, NULL, 1);
    if (!strncmp(state, "53", 2) || !strncmp(state, "58", 2)) /* out of disk, memory, connections; I/O */
        return store_fail(tx, STORE_UNAVAILABLE, NULL, 5);
    log_line("error", PQresultErrorField(res, PG_DIAG_MESSAGE_PRIMARY), state, 0);
    return store_fail(tx, STORE_ERROR, NULL, 0);
}

/* ---- statements ---- */

/* The name of sql prepared on this connection; NULL when the connection's table is full
 * (then it runs unnamed) or the prepare failed (recorded on tx). */
static const char *prepared(struct store_tx *tx, const char *sql, int n, bool *failed)
{
    struct pg_conn *c = PC(tx);
    uint32_t h = hash(sql);
    *failed = false;
    for (int i = 0; i < c->nstmts; i++)
        if (c->stmts[i].hash == h && strcmp(c->stmts[i].sql, sql) == 0)
            return c->stmts[i].name;
    store_observe_sql(sql);
    if (c->nstmts == PG_STMTS)
        return NULL; /* runs unnamed: observed each time */
    struct pg_stmt *s = &c->stmts[c->nstmts];
    snprintf(s->name, sizeof s->name, "h%u", ++c->named);
    PGresult *res = PQprepare(c->pc, s->name, sql, n, NULL);
    if (PQresultStatus(res) != PGRES_COMMAND_OK) {
        pg_fail(tx, res);
        PQclear(res);
        *failed = true;
        return NULL;
    }
    PQclear(res);
    s->sql = strdup(sql);
    if (!s->sql) /* the statement stays prepared under its name, unused */
        return NULL;
    s->hash = h;
    c->nstmts++;
    return s->name;
}

PGresult *pg_exec(struct store_tx *tx, const char *sql, int n, const char *const *vals)
{
    if (tx->failed)
        return NULL;
    bool failed;
    const char *name = prepared(tx, sql, n, &failed);
    if (failed)
        return NULL;
    PGconn *pc = PC(tx)->pc;
    PGresult *res = name ? PQexecPrepared(pc, name, n, vals, NULL, NULL, 0)
                         : PQexecParams(pc, sql, n, NULL, vals, NULL, NULL, 0);
    ExecStatusType s = PQresultStatus(res);
    if (s == PGRES_COMMAND_OK || s == PGRES_TUPLES_OK)
        return res;
    pg_fail(tx, res);
    PQclear(res);
    return NULL;
}

const char *pg_text(const struct store_tx *tx, const PGresult *r, int row, int col)
{
    if (PQgetisnull(r, row, col))
        return NULL;
    return arena_strndup(tx->a, PQgetvalue(r, row, col), (size_t)PQgetlength(r, row, col));
}

const char *pg_num(const struct store_tx *tx, int64_t v) { return arena_printf(tx->a, "%lld", (long long)v); }

/* A statement that returns no rows; *changes (when given) gets the rows it touched. */
static enum store_status pg_run(struct store_tx *tx, const char *sql, int n, const char *const *vals, int *changes)
{
    PGresult *res = pg_exec(tx, sql, n, vals);
    if (!res)
        return tx->failed;
    if (changes)
        *changes = atoi(PQcmdTuples(res));
    PQclear(res);
    return STORE_OK;
}

/* ---- connections ---- */

static void quiet(void *arg, const char *message)
{
    (void)arg;
    (void)message; /* NOTICEs ("already exists, skipping") are not for the server's log */
}

static struct pg_conn *conn_open(const char *url, char *err, size_t errlen)
{
    const char *keys[] = {"connect_timeout", "application_name", "dbname", NULL};
    const char *vals[] = {"10", "hipusers", url, NULL};
    PGconn *pc = PQconnectdbParams(keys, vals, 1);
    if (PQstatus(pc) != CONNECTION_OK) {
        const char *why = pc ? PQerrorMessage(pc) : "out of memory";
        size_t len = strcspn(why, "\n");
        snprintf(err, errlen, "cannot connect to PostgreSQL: %.*s", (int)(len > 300 ? 300 : len), why);
        PQfinish(pc);
        return NULL;
    }
    PQsetNoticeProcessor(pc, quiet, NULL);
    struct pg_conn *c = calloc(1, sizeof *c);
    if (!c) {
        snprintf(err, errlen, "out of memory");
        PQfinish(pc);
        return NULL;
    }
    c->pc = pc;
    return c;
}

static void forget_statements(struct pg_conn *c)
{
    for (int i = 0; i < c->nstmts; i++)
        free(c->stmts[i].sql);
    c->nstmts = 0;
}

static void conn_close(struct pg_conn *c)
{
    if (!c)
        return;
    forget_statements(c);
    PQfinish(c->pc);
    free(c);
}

/* A connection for one unit: an idle one, a new one while the pool is below its size, or
 * the next one given back (the pool is sized for the threads, so waits are rare). */
static struct pg_conn *pool_take(struct pg_store *s)
{
    pthread_mutex_lock(&s->mu);
    struct timespec deadline;
    clock_gettime(CLOCK_REALTIME, &deadline);
    deadline.tv_sec += 10;
    while (!s->idle && s->total >= s->max)
        if (pthread_cond_timedwait(&s->cv, &s->mu, &deadline) != 0 && !s->idle && s->total >= s->max) {
            pthread_mutex_unlock(&s->mu);
            log_line("error", "postgresql: no connection free for 10 s", NULL, (long)s->max);
            return NULL;
        }
    struct pg_conn *c = s->idle;
    if (c) {
        s->idle = c->next_idle;
        pthread_mutex_unlock(&s->mu);
        return c;
    }
    s->total++;
    pthread_mutex_unlock(&s->mu);
    char err[512];
    if ((c = conn_open(s->url, err, sizeof err)))
        return c;
    log_line("error", "postgresql: cannot connect", err, 0);
    pthread_mutex_lock(&s->mu);
    s->total--;
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Back to the pool, never inside a transaction; a broken connection is closed instead
 * and the next unit opens a fresh one. */
static void pool_give(struct pg_store *s, struct pg_conn *c)
{
    if (PQstatus(c->pc) == CONNECTION_OK && PQtransactionStatus(c->pc) != PQTRANS_IDLE)
        PQclear(PQexec(c->pc, "ROLLBACK"));
    bool keep = PQstatus(c->pc) == CONNECTION_OK && PQtransactionStatus(c->pc) == PQTRANS_IDLE;
    pthread_mutex_lock(&s->mu);
    if (keep) {
        c->next_idle = s->idle;
        s->idle = c;
    } else {
        s->total--;
    }
    pthread_cond_signal(&s->cv);
    pthread_mutex_unlock(&s->mu);
    if (!keep)
        conn_close(c);
}

/* BEGIN, reconnecting once when a pooled connection turns out dead (the server restarted,
 * an idle timeout): nothing of the unit has run yet, so that is safe. */
static enum store_status begin(struct store_tx *tx)
{
    struct pg_conn *c = PC(tx);
    const char *sql = tx->write ? "BEGIN ISOLATION LEVEL READ COMMITTED" : "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY";
    for (int attempt = 0; attempt < 2; attempt++) {
        PGresult *res = PQexec(c->pc, sql);
        if (PQresultStatus(res) == PGRES_COMMAND_OK) {
            PQclear(res);
            return STORE_OK;
        }
        const char *state = res ? PQresultErrorField(res, PG_DIAG_SQLSTATE) : NULL;
        if (attempt == 0 && lost(c->pc, state)) {
            PQclear(res);
            forget_statements(c);
            PQreset(c->pc);
            if (PQstatus(c->pc) == CONNECTION_OK)
                continue;
            res = NULL;
        }
        enum store_status st = pg_fail(tx, res);
        PQclear(res);
        return st;
    }
    return tx->failed;
}

static enum store_status pg_run_unit(struct store *base, struct store_tx *tx)
{
    struct pg_store *s = PS(base);
    struct pg_conn *c = pool_take(s);
    if (!c)
        return store_fail(tx, STORE_UNAVAILABLE, NULL, 5);
    tx->conn = c;
    enum store_status st = begin(tx);
    if (st == STORE_OK)
        st = store_run_fn(tx);
    if (st == STORE_OK) {
        PGresult *res = PQexec(c->pc, "COMMIT");
        if (PQresultStatus(res) != PGRES_COMMAND_OK)
            st = pg_fail(tx, res);
        PQclear(res);
    }
    pool_give(s, c);
    tx->conn = NULL;
    return st;
}

/* ---- readiness ---- */

struct ready_probe {
    int version;
    bool standby;
};

static enum store_status ready_fn(struct store_tx *tx, void *ctx)
{
    struct ready_probe *p = ctx;
    PGresult *res = pg_exec(tx, "SELECT (SELECT version FROM hipusers_schema), pg_is_in_recovery()", 0, NULL);
    if (!res)
        return tx->failed;
    p->version = PQgetisnull(res, 0, 0) ? -1 : atoi(PQgetvalue(res, 0, 0));
    p->standby = PQgetvalue(res, 0, 1)[0] == 't';
    PQclear(res);
    return STORE_OK;
}

/* The database answers, its schema is this build's (another server may have migrated it
 * further), and it takes writes (not a standby). */
static enum store_status pg_ready(struct store *base, const char **why, int *retry_after)
{
    struct ready_probe p = {0};
    struct arena a;
    arena_init(&a);
    struct store_unit u = {.fn = ready_fn, .ctx = &p, .arena = &a};
    enum store_status st = store_read(base, &u);
    arena_release(&a);
    if (st != STORE_OK) {
        *why = "The database does not answer; retry later.";
        *retry_after = u.retry_after;
        return st;
    }
    *retry_after = 30;
    if (p.version != migrations_latest()) {
        *why = "The database schema is not the version this build expects.";
        return STORE_UNAVAILABLE;
    }
    if (p.standby) {
        *why = "The database is a standby and takes no writes; retry later.";
        return STORE_UNAVAILABLE;
    }
    *retry_after = 0;
    return STORE_OK;
}

/* ---- resources ---- */

/* The normalised key of an F_FOLDED field, stored beside its value. */
static const char *key_param(const struct fval *v) { return v->state == V_SET ? v->key : NULL; }

static const char *param(const struct store_tx *tx, const struct field *f, const struct fval *v)
{
    (void)tx;
    if (v->state != V_SET)
        return NULL;
    if (f->type == FT_BOOL)
        return v->b ? "true" : "false";
    return v->s;
}

/* Inserts a record: with the given id (one attempt; taken: STORE_CONFLICT "id") or a fresh
 * random one (a collision tries another); the times as given or the unit's. */
static enum store_status insert_row(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *given_id, const char *created_at, const char *updated_at,
                                    const struct fval *vals, char *id_out, size_t id_cap)
{
    char sql[PG_SQL_MAX], marks[PG_SQL_MAX];
    int n = 0, m = 0, pos = 5;
    const char *args[2 * MAX_FIELDS + 4];
    sqlcat(sql, sizeof sql, &n, "INSERT INTO %s (id, b_id, created_at, updated_at", r->table);
    sqlcat(marks, sizeof marks, &m, "$1, $2, $3, $4");
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!f->column)
            continue;
        sqlcat(sql, sizeof sql, &n, ", %s", f->column);
        sqlcat(marks, sizeof marks, &m, ", $%d::%s", pos, f->type == FT_BOOL ? "boolean" : "text");
        args[pos - 1] = param(tx, f, &vals[i]);
        pos++;
        if (f->key_column) {
            sqlcat(sql, sizeof sql, &n, ", %s", f->key_column);
            sqlcat(marks, sizeof marks, &m, ", $%d::text", pos);
            args[pos - 1] = key_param(&vals[i]);
            pos++;
        }
    }
    sqlcat(sql, sizeof sql, &n, ") VALUES (%s)", marks);
    /* No lock of the tenant's is taken, so creates of a tenant commit together (group
     * commit). A list walks records in row-number order, the order creates took their
     * numbers, which is not always the order they committed: a record whose create commits
     * while a client pages may land behind that client's cursor (docs/decisions.md). */
    for (int attempt = 0; attempt < 8; attempt++) {
        char id[ID_MAX];
        if (given_id)
            snprintf(id, sizeof id, "%s", given_id);
        else
            id_generate(r->kind, id);
        /* Ids are unique over all tenants: the id registry (keyed by the id alone, so a
         * table of its own) takes it first; one already taken inserts nothing and returns
         * no row, and another random one is tried. */
        const char *reg[] = {id, r->path, tenant};
        PGresult *res = pg_exec(tx,
                                "INSERT INTO eka_id (id, resource, b_id) VALUES ($1, $2, $3)"
                                " ON CONFLICT (id) DO NOTHING RETURNING id",
                                3, reg);
        if (!res)
            return tx->failed;
        int rows = PQntuples(res);
        PQclear(res);
        if (rows != 1) {
            if (given_id)
                return store_fail(tx, STORE_CONFLICT, "id", 0);
            continue;
        }
        args[0] = id;
        args[1] = tenant;
        args[2] = created_at ? created_at : tx->now_text;
        args[3] = updated_at ? updated_at : tx->now_text;
        enum store_status st = pg_run(tx, sql, pos - 1, args, NULL);
        if (st != STORE_OK)
            return st;
        snprintf(id_out, id_cap, "%s", id);
        return STORE_OK;
    }
    log_line("error", "eight random ids in a row were taken", r->table, 0);
    return store_fail(tx, STORE_ERROR, NULL, 0);
}

static enum store_status pg_insert(struct store_tx *tx, const struct resource *r, const char *tenant,
                                   const struct fval *vals, char *id_out, size_t id_cap)
{
    return insert_row(tx, r, tenant, NULL, NULL, NULL, vals, id_out, id_cap);
}

/* An import's overwrite: every column from vals (unset ones cleared), the times as given. */
static enum store_status overwrite_row(struct store_tx *tx, const struct resource *r, const char *tenant,
                                       const char *id, const char *created_at, const char *updated_at,
                                       const struct fval *vals)
{
    char sql[PG_SQL_MAX];
    const char *args[2 * MAX_FIELDS + 4];
    int n = 0, pos = 3;
    args[0] = created_at;
    args[1] = updated_at ? updated_at : tx->now_text;
    sqlcat(sql, sizeof sql, &n, "UPDATE %s SET created_at = coalesce($1::text, created_at), updated_at = $2",
           r->table);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!f->column)
            continue;
        sqlcat(sql, sizeof sql, &n, ", %s = $%d::%s", f->column, pos, f->type == FT_BOOL ? "boolean" : "text");
        args[pos++ - 1] = param(tx, f, &vals[i]);
        if (f->key_column) {
            sqlcat(sql, sizeof sql, &n, ", %s = $%d::text", f->key_column, pos);
            args[pos++ - 1] = key_param(&vals[i]);
        }
    }
    sqlcat(sql, sizeof sql, &n, " WHERE id = $%d AND b_id = $%d AND deleted_at IS NULL", pos, pos + 1);
    args[pos - 1] = id;
    args[pos] = tenant;
    int changes = 0;
    enum store_status st = pg_run(tx, sql, pos + 1, args, &changes);
    return st == STORE_OK && !changes ? STORE_NOT_FOUND : st;
}

static enum store_status pg_put(struct store_tx *tx, const struct resource *r, const char *tenant, bool exists,
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

/* store_try's savepoint. After a failed statement PostgreSQL refuses everything until the
 * transaction rolls back; ROLLBACK TO the savepoint is what lets the unit go on. */
static enum store_status pg_savepoint(struct store_tx *tx, enum savepoint_op op)
{
    const char *sql = op == SAVEPOINT_BEGIN     ? "SAVEPOINT hip_try"
                      : op == SAVEPOINT_RELEASE ? "RELEASE SAVEPOINT hip_try"
                                                : "ROLLBACK TO SAVEPOINT hip_try; RELEASE SAVEPOINT hip_try";
    PGresult *res = PQexec(PC(tx)->pc, sql);
    enum store_status st = PQresultStatus(res) == PGRES_COMMAND_OK ? STORE_OK : pg_fail(tx, res);
    PQclear(res);
    return st;
}

/* One statement per resource whatever a PATCH names, as on SQLite. */
static enum store_status pg_update(struct store_tx *tx, const struct resource *r, const char *tenant,
                                   const char *id, const struct fval *vals)
{
    char sql[PG_SQL_MAX];
    const char *args[3 * MAX_FIELDS + 3];
    int n = 0, pos = 2;
    args[0] = tx->now_text;
    sqlcat(sql, sizeof sql, &n, "UPDATE %s SET updated_at = $1", r->table);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!f->column)
            continue;
        sqlcat(sql, sizeof sql, &n, ", %s = CASE WHEN $%d::boolean THEN $%d::%s ELSE %s END", f->column, pos,
               pos + 1, f->type == FT_BOOL ? "boolean" : "text", f->column);
        args[pos - 1] = vals[i].state != V_ABSENT ? "true" : "false";
        args[pos] = param(tx, f, &vals[i]);
        if (f->key_column) { /* the value's key goes with it, under the same flag */
            sqlcat(sql, sizeof sql, &n, ", %s = CASE WHEN $%d::boolean THEN $%d::text ELSE %s END", f->key_column,
                   pos, pos + 2, f->key_column);
            args[pos + 1] = key_param(&vals[i]);
        }
        pos += f->key_column ? 3 : 2;
    }
    sqlcat(sql, sizeof sql, &n, " WHERE id = $%d AND b_id = $%d AND deleted_at IS NULL", pos, pos + 1);
    args[pos - 1] = id;
    args[pos] = tenant;
    int changes = 0;
    enum store_status st = pg_run(tx, sql, pos + 1, args, &changes);
    return st == STORE_OK && !changes ? STORE_NOT_FOUND : st;
}

static void read_row(const struct store_tx *tx, const struct resource *r, const PGresult *res, int row,
                     struct record *out)
{
    memset(out, 0, sizeof *out);
    out->id = pg_text(tx, res, row, 1);
    out->created_at = pg_text(tx, res, row, 2);
    out->updated_at = pg_text(tx, res, row, 3);
    int col = 4;
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!f->column)
            continue;
        if (PQgetisnull(res, row, col)) {
            out->v[i].state = V_NULL;
        } else {
            out->v[i].state = V_SET;
            if (f->type == FT_BOOL)
                out->v[i].b = PQgetvalue(res, row, col)[0] == 't';
            else
                out->v[i].s = pg_text(tx, res, row, col);
        }
        col++;
    }
}

static enum store_status load_links(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    struct record *rec)
{
    for (size_t v = 0; v < r->nviews; v++) {
        const struct link_view *lv = &r->views[v];
        const struct relation *rel = relation_get(lv->rel);
        const struct resource *t = resource_get(lv->target);
        int side = rel->kind[0] == r->kind ? 0 : 1;
        char sql[PG_SQL_MAX];
        int n = 0;
        /* no store: migration 6's backfill, on a schema whose link tables have no b_id yet
         * (links never crossed tenants: each end was resolved in the tenant) */
        bool pre8 = !tx->s;
        sqlcat(sql, sizeof sql, &n,
               pre8 ? "SELECT t.id, t.%s, %s%s FROM %s l JOIN %s t ON t.id = l.%s "
                      "WHERE l.%s = $1 AND t.b_id = $2 AND t.deleted_at IS NULL ORDER BY coalesce(l.ord%d, l.pos)"
                    : "SELECT t.id, t.%s, %s%s FROM %s l JOIN %s t ON t.b_id = l.b_id AND t.id = l.%s "
                      "WHERE l.b_id = $2 AND l.%s = $1 AND t.deleted_at IS NULL ORDER BY coalesce(l.ord%d, l.pos)",
               t->summary[0], t->summary[1] ? "t." : "NULL::text", t->summary[1] ? t->summary[1] : "", rel->table,
               t->table, rel->col[1 - side], rel->col[side], side);
        const char *args[] = {rec->id, tenant};
        PGresult *res = pg_exec(tx, sql, 2, args);
        if (!res)
            return tx->failed;
        int k = PQntuples(res);
        struct ref *items = arena_calloc(tx->a, k ? (size_t)k : 1, sizeof *items);
        for (int i = 0; i < k; i++) {
            items[i].id = pg_text(tx, res, i, 0);
            items[i].a = pg_text(tx, res, i, 1);
            items[i].b = pg_text(tx, res, i, 2);
        }
        PQclear(res);
        rec->links[v].items = items;
        rec->links[v].n = (size_t)k;
    }
    return STORE_OK;
}

static enum store_status pg_find(struct store_tx *tx, const struct resource *r, const char *tenant, const char *key,
                                 struct record *out)
{
    char sql[PG_SQL_MAX];
    int n = select_cols(r, sql, sizeof sql);
    static const char *const by[] = {"id", "partner_id"};
    const char *args[] = {key, tenant};
    for (int k = 0; k < 2; k++) {
        int end = n;
        /* a write unit locks the row it found: what it read cannot change under it */
        sqlcat(sql, sizeof sql, &end, " WHERE %s = $1 AND b_id = $2 AND deleted_at IS NULL%s", by[k],
               tx->write ? " FOR UPDATE" : "");
        PGresult *res = pg_exec(tx, sql, 2, args);
        if (!res)
            return tx->failed;
        if (PQntuples(res) > 0) {
            read_row(tx, r, res, 0, out);
            PQclear(res);
            return load_links(tx, r, tenant, out);
        }
        PQclear(res);
    }
    return STORE_NOT_FOUND;
}

static enum store_status pg_soft_delete(struct store_tx *tx, const struct resource *r, const char *tenant,
                                        const char *id)
{
    char sql[PG_SQL_MAX];
    int n = 0, changes = 0;
    sqlcat(sql, sizeof sql, &n,
           "UPDATE %s SET deleted_at = $3, updated_at = $3 WHERE id = $1 AND b_id = $2 AND deleted_at IS NULL",
           r->table);
    const char *args[] = {id, tenant, tx->now_text};
    enum store_status st = pg_run(tx, sql, 3, args, &changes);
    return st == STORE_OK && !changes ? STORE_NOT_FOUND : st;
}

static enum store_status pg_resolve(struct store_tx *tx, const struct resource *target, const char *tenant,
                                    bool by_partner, const char *const *keys, size_t n, const char **ids_out)
{
    char sql[PG_SQL_MAX];
    int len = 0;
    sqlcat(sql, sizeof sql, &len, "SELECT id FROM %s WHERE %s = $1 AND b_id = $2 AND deleted_at IS NULL",
           target->table, by_partner ? "partner_id" : "id");
    for (size_t i = 0; i < n; i++) {
        const char *args[] = {keys[i], tenant};
        PGresult *res = pg_exec(tx, sql, 2, args);
        if (!res)
            return tx->failed;
        ids_out[i] = PQntuples(res) > 0 ? pg_text(tx, res, 0, 0) : NULL;
        PQclear(res);
    }
    return STORE_OK;
}

/* As on SQLite: a list given whole (replace) sets this side's order to -n..-1 and keeps the
 * rows that stay, so the other side's order of them is untouched; rows not in the list go.
 * Adding appends rows ordered by pos on both sides. */
static enum store_status pg_link(struct store_tx *tx, enum rel rel, int side, const char *tenant, const char *id,
                                 const char *const *others, size_t n, bool replace)
{
    const struct relation *R = relation_get(rel);
    char sql[PG_SQL_MAX];
    int len = 0;
    if (!replace) {
        sqlcat(sql, sizeof sql, &len, "INSERT INTO %s (b_id, %s, %s) VALUES ($1, $2, $3) ON CONFLICT DO NOTHING",
               R->table, R->col[side], R->col[1 - side]);
        for (size_t i = 0; i < n; i++) {
            const char *args[] = {tenant, id, others[i]};
            enum store_status st = pg_run(tx, sql, 3, args, NULL);
            if (st != STORE_OK)
                return st;
        }
        return STORE_OK;
    }
    /* 0 marks the rows of this record; those the list names again get their place */
    sqlcat(sql, sizeof sql, &len, "UPDATE %s SET ord%d = 0 WHERE b_id = $1 AND %s = $2", R->table, side,
           R->col[side]);
    const char *one[] = {tenant, id};
    enum store_status st = pg_run(tx, sql, 2, one, NULL);
    if (st != STORE_OK)
        return st;
    len = 0;
    sqlcat(sql, sizeof sql, &len,
           "INSERT INTO %s (b_id, %s, %s, ord%d) VALUES ($1, $2, $3, $4::bigint)"
           " ON CONFLICT (b_id, %s, %s) DO UPDATE SET ord%d = $4::bigint",
           R->table, R->col[side], R->col[1 - side], side, R->col[0], R->col[1], side);
    for (size_t i = 0; i < n; i++) {
        const char *args[] = {tenant, id, others[i], pg_num(tx, (int64_t)i - (int64_t)n)};
        if ((st = pg_run(tx, sql, 4, args, NULL)) != STORE_OK)
            return st;
    }
    len = 0;
    sqlcat(sql, sizeof sql, &len, "DELETE FROM %s WHERE b_id = $1 AND %s = $2 AND ord%d = 0", R->table, R->col[side],
           side);
    return pg_run(tx, sql, 2, one, NULL);
}

static enum store_status pg_list(struct store_tx *tx, const struct resource *r, const char *tenant, int64_t after,
                                 int limit, struct record *out, int *count, int64_t *next)
{
    char sql[PG_SQL_MAX];
    int n = select_cols(r, sql, sizeof sql);
    sqlcat(sql, sizeof sql, &n,
           " WHERE b_id = $1 AND deleted_at IS NULL AND rid > $2::bigint ORDER BY rid LIMIT $3::integer");
    *count = 0;
    *next = after;
    const char *args[] = {tenant, pg_num(tx, after), pg_num(tx, limit)};
    PGresult *res = pg_exec(tx, sql, 3, args);
    if (!res)
        return tx->failed;
    int got = PQntuples(res);
    for (int i = 0; i < got && i < limit; i++) {
        *next = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        read_row(tx, r, res, i, &out[i]);
    }
    PQclear(res);
    for (int i = 0; i < got; i++) {
        enum store_status st = load_links(tx, r, tenant, &out[i]);
        if (st != STORE_OK)
            return st;
    }
    *count = got;
    return STORE_OK;
}


/* As store_find, deleted records too: the Eka id among all the tenant's records, else the
 * partner_id of a live record, else that of the most recently deleted one. */
static enum store_status pg_find_any(struct store_tx *tx, const struct resource *r, const char *tenant,
                                     const char *key, struct record *out, bool *deleted)
{
    char sql[PG_SQL_MAX];
    int n = select_cols_ex(r, sql, sizeof sql, true);
    static const char *const where[] = {
        " WHERE id = $1 AND b_id = $2",
        " WHERE partner_id = $1 AND b_id = $2 AND deleted_at IS NULL",
        " WHERE partner_id = $1 AND b_id = $2 AND deleted_at IS NOT NULL ORDER BY deleted_at DESC, rid DESC LIMIT 1",
    };
    const char *args[] = {key, tenant};
    for (int k = 0; k < 3; k++) {
        int end = n;
        sqlcat(sql, sizeof sql, &end, "%s", where[k]);
        PGresult *res = pg_exec(tx, sql, 2, args);
        if (!res)
            return tx->failed;
        if (PQntuples(res) > 0) {
            read_row(tx, r, res, 0, out);
            *deleted = !PQgetisnull(res, 0, select_ncols(r));
            PQclear(res);
            return load_links(tx, r, tenant, out);
        }
        PQclear(res);
    }
    return STORE_NOT_FOUND;
}

/* The partial unique indexes cover live rows only, so bringing a row back is where a value
 * taken meanwhile shows: the UPDATE fails on that index, which names its field. */
static enum store_status pg_restore(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *id)
{
    char sql[PG_SQL_MAX];
    int n = 0, changes = 0;
    sqlcat(sql, sizeof sql, &n,
           "UPDATE %s SET deleted_at = NULL, updated_at = $3 WHERE id = $1 AND b_id = $2 AND deleted_at IS NOT NULL",
           r->table);
    const char *args[] = {id, tenant, tx->now_text};
    enum store_status st = pg_run(tx, sql, 3, args, &changes);
    return st == STORE_OK && !changes ? STORE_NOT_FOUND : st;
}

/* ---- the change log ---- */

/* The tenant's next number: its counter row, bumped in the unit's transaction (migration
 * 6's backfill only, which runs alone). */
static enum store_status next_seq(struct store_tx *tx, const char *tenant, int64_t *seq)
{
    const char *args[] = {tenant};
    PGresult *res = pg_exec(tx,
                            "INSERT INTO change_seq (b_id, last) VALUES ($1, 1)"
                            " ON CONFLICT (b_id) DO UPDATE SET last = change_seq.last + 1 RETURNING last",
                            1, args);
    if (!res)
        return tx->failed;
    *seq = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    return STORE_OK;
}

/* Appends with an explicit time (the backfill of migration 6 dates entries in the past,
 * numbered). A writer takes no lock of its tenant's: the entry goes in without its feed
 * number, which pg_feed_seal gives once it has committed (a counter row locked until
 * commit made every writer of a tenant wait for the one before it to reach the disk: no
 * group commit). The record's version needs no such lock: the writer holds the record's
 * row lock. */
static enum store_status log_append_at(struct store_tx *tx, const char *tenant, struct change_entry *e, const char *at,
                                       bool numbered)
{
    e->seq = 0;
    if (numbered) {
        enum store_status ss = next_seq(tx, tenant, &e->seq);
        if (ss != STORE_OK)
            return ss;
    }
    const char *vargs[] = {tenant, e->r->path, e->id};
    PGresult *res = pg_exec(tx,
                            "SELECT coalesce(max(version), 0) + 1 FROM change_log"
                            " WHERE b_id = $1 AND resource = $2 AND id = $3",
                            3, vargs);
    if (!res)
        return tx->failed;
    e->version = strtoll(PQgetvalue(res, 0, 0), NULL, 10);
    PQclear(res);
    e->at = arena_strdup(tx->a, at);
    const char *args[] = {tenant,
                          numbered ? pg_num(tx, e->seq) : NULL,
                          e->r->path,
                          e->id,
                          pg_num(tx, e->version),
                          change_action_name(e->action),
                          e->at,
                          e->client_id && *e->client_id ? e->client_id : NULL,
                          e->request_id && *e->request_id ? e->request_id : NULL,
                          e->changes ? e->changes : "{}"};
    /* the entry's place among the unsealed (ord): a create's is its record's row number */
    char sql[PG_SQL_MAX];
    int n = 0;
    sqlcat(sql, sizeof sql, &n,
           "INSERT INTO change_log (b_id, seq, resource, id, version, action, at, client_id, request_id,"
           " changes%s) VALUES ($1, $2::bigint, $3, $4, $5::bigint, $6, $7, $8, $9, $10",
           numbered ? "" : ", ord"); /* migration 6's backfill runs before ord exists */
    if (numbered)
        sqlcat(sql, sizeof sql, &n, ")");
    else if (e->action == CHANGE_CREATE)
        sqlcat(sql, sizeof sql, &n,
               ", coalesce((SELECT rid FROM %s WHERE b_id = $1 AND id = $4), nextval('hip_order')))", e->r->table);
    else
        sqlcat(sql, sizeof sql, &n, ", nextval('hip_order'))");
    return pg_run(tx, sql, 10, args, NULL);
}

/* Entries numbered by one seal at most, so its transaction stays short. */
#define SEAL_BATCH 5000

/* Numbers the tenant's committed, unnumbered entries in append order (ord), after its last
 * number. Sealers of a tenant take turns on its counter row; each statement after the lock
 * sees what the one before committed (READ COMMITTED), so no entry is numbered twice, and
 * an entry that commits after a seal gets a number after that seal's. */
static enum store_status pg_feed_seal(struct store_tx *tx, const char *tenant)
{
    const char *args[] = {tenant};
    PGresult *res = pg_exec(tx, "SELECT 1 FROM change_log WHERE b_id = $1 AND seq IS NULL LIMIT 1", 1, args);
    if (!res)
        return tx->failed;
    bool pending = PQntuples(res) > 0;
    PQclear(res);
    if (!pending) /* a reader that keeps up: nothing locked, nothing written */
        return STORE_OK;
    res = pg_exec(tx,
                  "INSERT INTO change_seq (b_id, last) VALUES ($1, 0)"
                  " ON CONFLICT (b_id) DO UPDATE SET last = change_seq.last RETURNING last",
                  1, args);
    if (!res)
        return tx->failed;
    const char *last = pg_text(tx, res, 0, 0);
    PQclear(res);
    const char *nargs[] = {tenant, last, pg_num(tx, SEAL_BATCH)};
    res = pg_exec(tx,
                  "WITH todo AS (SELECT resource, id, version, row_number() OVER (ORDER BY ord) AS n"
                  "   FROM change_log WHERE b_id = $1 AND seq IS NULL ORDER BY ord LIMIT $3::integer),"
                  " done AS (UPDATE change_log l SET seq = $2::bigint + todo.n FROM todo"
                  "   WHERE l.b_id = $1 AND l.resource = todo.resource AND l.id = todo.id"
                  "   AND l.version = todo.version RETURNING l.seq)"
                  " UPDATE change_seq SET last = coalesce((SELECT max(seq) FROM done), last) WHERE b_id = $1",
                  3, nargs);
    if (!res)
        return tx->failed;
    PQclear(res);
    return STORE_OK;
}

static enum store_status pg_log_append(struct store_tx *tx, const char *tenant, struct change_entry *e)
{
    return log_append_at(tx, tenant, e, tx->now_text, false);
}

#define ENTRY_COLS "seq, resource, id, version, action, at, client_id, request_id, changes"

static bool read_entry(const struct store_tx *tx, const PGresult *res, int row, struct change_entry *e)
{
    static const char *const ACTIONS[] = {"create", "update", "delete", "restore"};
    memset(e, 0, sizeof *e);
    e->seq = strtoll(PQgetvalue(res, row, 0), NULL, 10);
    const char *rsrc = PQgetvalue(res, row, 1);
    e->r = resource_by_path(rsrc, strlen(rsrc));
    e->id = pg_text(tx, res, row, 2);
    e->version = strtoll(PQgetvalue(res, row, 3), NULL, 10);
    const char *action = PQgetvalue(res, row, 4);
    int k = 0;
    while (k < 4 && strcmp(action, ACTIONS[k]) != 0)
        k++;
    e->action = (enum change_action)k;
    e->at = pg_text(tx, res, row, 5);
    e->client_id = pg_text(tx, res, row, 6);
    e->request_id = pg_text(tx, res, row, 7);
    e->changes = pg_text(tx, res, row, 8);
    if (!e->r || k == 4 || !e->id || !e->at || !e->changes) {
        log_line("error", "change_log: a row the server cannot read", rsrc, (long)e->seq);
        return false;
    }
    return true;
}

static enum store_status pg_history(struct store_tx *tx, const struct resource *r, const char *tenant,
                                    const char *id, struct change_entry **out, size_t *n)
{
    const char *args[] = {tenant, r->path, id};
    PGresult *res = pg_exec(tx,
                            "SELECT " ENTRY_COLS " FROM change_log"
                            " WHERE b_id = $1 AND resource = $2 AND id = $3 ORDER BY version",
                            3, args);
    if (!res)
        return tx->failed;
    int k = PQntuples(res);
    struct change_entry *items = arena_calloc(tx->a, k ? (size_t)k : 1, sizeof *items);
    for (int i = 0; i < k; i++)
        if (!read_entry(tx, res, i, &items[i])) {
            PQclear(res);
            return store_fail(tx, STORE_ERROR, NULL, 0);
        }
    PQclear(res);
    *out = items;
    *n = (size_t)k;
    return k ? STORE_OK : STORE_NOT_FOUND;
}

static enum store_status pg_changes(struct store_tx *tx, const char *tenant, int64_t after, int limit,
                                    struct change_entry *out, int *count)
{
    *count = 0;
    const char *args[] = {tenant, pg_num(tx, after), pg_num(tx, limit)};
    PGresult *res = pg_exec(tx,
                            "SELECT " ENTRY_COLS " FROM change_log"
                            " WHERE b_id = $1 AND seq > $2::bigint ORDER BY seq LIMIT $3::integer", /* the sealed */
                            3, args);
    if (!res)
        return tx->failed;
    int got = PQntuples(res);
    for (int i = 0; i < got && i < limit; i++)
        if (!read_entry(tx, res, i, &out[i])) {
            PQclear(res);
            return store_fail(tx, STORE_ERROR, NULL, 0);
        }
    PQclear(res);
    *count = got < limit ? got : limit;
    return STORE_OK;
}

/* ---- lists with filters ---- */

static const char *filter_column(const struct resource *r, const char *field, bool key)
{
    int i = field_index(r, field);
    if (i < 0)
        return NULL;
    return key ? r->fields[i].key_column : r->fields[i].column;
}

static const struct link_view *filter_link(const struct resource *r, enum rkind target)
{
    for (size_t v = 0; v < r->nviews; v++)
        if (r->views[v].target == target)
            return &r->views[v];
    return NULL;
}

/* One statement: PostgreSQL's planner has statistics and picks the index a filter's rows
 * come from by itself (SQLite's needs the choice made for it, see sqlite.c). */
static enum store_status pg_list_where(struct store_tx *tx, const struct resource *r, const char *tenant,
                                       const struct list_filter *f, int64_t after, int limit, struct record *out,
                                       int *count, int64_t *next, bool *more)
{
    static const struct list_filter none;
    if (!f)
        f = &none;
    *count = 0;
    *next = after;
    if (more)
        *more = false;
    char sql[PG_SQL_MAX];
    const char *args[16] = {tenant, pg_num(tx, after), pg_num(tx, limit + 1)}; /* one more: do more follow? */
    int nargs = 3, n = select_cols(r, sql, sizeof sql);
    sqlcat(sql, sizeof sql, &n, " t WHERE t.b_id = $1 AND t.deleted_at IS NULL AND t.rid > $2::bigint");
    const struct {
        const char *value, *field;
        bool key;
    } eq[] = {{f->partner_id, "partner_id", false},
              {f->mobile, "mobile", false},
              {f->email_key, "email", true},
              {f->auth_userid, "auth_userid", false}};
    bool bad = false;
    for (size_t k = 0; k < sizeof eq / sizeof eq[0]; k++) {
        if (!eq[k].value)
            continue;
        const char *col = filter_column(r, eq[k].field, eq[k].key);
        if (!col) {
            bad = true;
            break;
        }
        args[nargs++] = eq[k].value;
        sqlcat(sql, sizeof sql, &n, " AND t.%s = $%d", col, nargs);
    }
    if (f->updated_since) {
        args[nargs++] = f->updated_since;
        sqlcat(sql, sizeof sql, &n, " AND t.updated_at >= $%d", nargs);
    }
    const struct {
        const char *value;
        enum rkind target;
    } links[] = {{f->clinic_id, R_CLINIC}, {f->doctor_id, R_DOCTOR}};
    for (int k = 0; k < 2 && !bad; k++) {
        if (!links[k].value)
            continue;
        const struct link_view *lv = filter_link(r, links[k].target);
        if (!lv) {
            bad = true;
            break;
        }
        const struct relation *rel = relation_get(lv->rel);
        const struct resource *target = resource_get(lv->target);
        int side = rel->kind[0] == r->kind ? 0 : 1;
        args[nargs++] = links[k].value;
        /* a link counts while the linked record is live and the tenant's, as in the record's view */
        sqlcat(sql, sizeof sql, &n,
               " AND EXISTS (SELECT 1 FROM %s x WHERE x.b_id = $1 AND x.%s = t.id AND x.%s = $%d)"
               " AND EXISTS (SELECT 1 FROM %s o WHERE o.id = $%d AND o.b_id = $1 AND o.deleted_at IS NULL)",
               rel->table, rel->col[side], rel->col[1 - side], nargs, target->table, nargs);
    }
    if (bad) {
        log_line("error", "a list filter the resource has no column or link for", r->table, 0);
        return store_fail(tx, STORE_ERROR, NULL, 0);
    }
    sqlcat(sql, sizeof sql, &n, " ORDER BY t.rid LIMIT $3::integer");
    PGresult *res = pg_exec(tx, sql, nargs, args);
    if (!res)
        return tx->failed;
    int got = PQntuples(res);
    if (got > limit) {
        got = limit;
        if (more)
            *more = true;
    }
    for (int i = 0; i < got; i++) {
        *next = strtoll(PQgetvalue(res, i, 0), NULL, 10);
        read_row(tx, r, res, i, &out[i]);
    }
    PQclear(res);
    for (int i = 0; i < got; i++) {
        enum store_status st = load_links(tx, r, tenant, &out[i]);
        if (st != STORE_OK)
            return st;
    }
    *count = got;
    return STORE_OK;
}

/* ---- opening ---- */

static void pg_close(struct store *base)
{
    struct pg_store *s = PS(base);
    while (s->idle) {
        struct pg_conn *c = s->idle;
        s->idle = c->next_idle;
        conn_close(c);
    }
    pthread_cond_destroy(&s->cv);
    pthread_mutex_destroy(&s->mu);
    free(s->url);
    store_base_free(&s->base);
    free(s);
}

static const struct store_ops PG_OPS = {
    .insert = pg_insert,
    .update = pg_update,
    .find = pg_find,
    .soft_delete = pg_soft_delete,
    .resolve = pg_resolve,
    .link = pg_link,
    .list = pg_list,
    .put = pg_put,
    .savepoint = pg_savepoint,
    .find_any = pg_find_any,
    .restore = pg_restore,
    .log_append = pg_log_append,
    .history = pg_history,
    .changes = pg_changes,
    .feed_seal = pg_feed_seal,
    .list_where = pg_list_where,
    .idem_get = pg_idem_get,
    .idem_claim = pg_idem_claim,
    .idem_finish = pg_idem_finish,
    .idem_release = pg_idem_release,
    .idem_purge = pg_idem_purge,
    .throttle_lock = pg_throttle_lock,
    .throttle_put = pg_throttle_put,
    .throttle_purge = pg_throttle_purge,
    .business_create = pg_business_create,
    .business_get = pg_business_get,
    .business_list = pg_business_list,
    .client_create = pg_client_create,
    .client_get = pg_client_get,
    .client_list = pg_client_list,
    .client_revoke = pg_client_revoke,
    .sharing_key_create = pg_sharing_key_create,
    .sharing_key_owner = pg_sharing_key_owner,
    .sharing_key_revoke = pg_sharing_key_revoke,
    .session_create = pg_session_create,
    .refresh_insert = pg_refresh_insert,
    .refresh_take = pg_refresh_take,
    .session_revoke = pg_session_revoke,
    .revocations = pg_revocations,
};

static const struct store_backend PG_BACKEND = {
    .run = pg_run_unit,
    .close = pg_close,
    .max_attempts = 10, /* a unit that meets a serialization failure runs again, up to this */
    .ops = &PG_OPS,
    .ready = pg_ready,
};

static bool ok(PGresult *res, ExecStatusType want)
{
    bool good = PQresultStatus(res) == want;
    PQclear(res);
    return good;
}

/* A migration's backfill of normalised keys: the same text_fold_key the model computes for
 * new writes, which SQL cannot compute. */
static bool fold_keys(PGconn *pc, const struct pg_migration *mg)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT rid, %s FROM %s WHERE %s IS NOT NULL", mg->fold_column, mg->fold_table,
             mg->fold_column);
    PGresult *rows = PQexec(pc, sql);
    if (PQresultStatus(rows) != PGRES_TUPLES_OK) {
        PQclear(rows);
        return false;
    }
    snprintf(sql, sizeof sql, "UPDATE %s SET %s = $1 WHERE rid = $2::bigint", mg->fold_table, mg->fold_key);
    bool good = true;
    for (int i = 0; good && i < PQntuples(rows); i++) {
        char *key = text_fold_key(PQgetvalue(rows, i, 1), (size_t)PQgetlength(rows, i, 1));
        const char *args[] = {key, PQgetvalue(rows, i, 0)}; /* no key (not text): none, as for no value */
        good = ok(PQexecParams(pc, sql, 2, NULL, args, NULL, NULL, 0), PGRES_COMMAND_OK);
        free(key);
    }
    PQclear(rows);
    return good;
}

/* Live rows that a fold migration left without a key (counted, never named). */
static void report_unkeyed(PGconn *pc, const struct pg_migration *mg)
{
    char sql[256];
    snprintf(sql, sizeof sql, "SELECT count(*) FROM %s WHERE deleted_at IS NULL AND %s IS NOT NULL AND %s IS NULL",
             mg->fold_table, mg->fold_column, mg->fold_key);
    PGresult *res = PQexec(pc, sql);
    if (PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 1 && atol(PQgetvalue(res, 0, 0)) > 0)
        log_line("warn", "users whose email equals an older user's when case and Unicode spelling are ignored;"
                         " their email is not unique-checked until it is changed",
                 NULL, atol(PQgetvalue(res, 0, 0)));
    PQclear(res);
}

/* Brings the schema to the latest version in one transaction, under an advisory lock so
 * concurrent starters take turns; DDL is transactional, so a failure leaves it as it was. */
/* Migration 6: records written before the change log get the entries they would have had:
 * a create (every field and link as the record is now, dated created_at) and, for deleted
 * ones, a delete (dated deleted_at), each tenant's in time order, as on SQLite. Runs in the
 * migration's transaction on the migrating connection. */
static bool change_log_backfill(struct pg_conn *c)
{
    struct arena a;
    arena_init(&a);
    struct store_tx tx = {.conn = c, .a = &a, .write = true};
    char sql[PG_SQL_MAX];
    int n = 0;
    sqlcat(sql, sizeof sql, &n, "SELECT k, rid, at, del, b_id FROM (");
    for (int k = 0; k < R_COUNT; k++) {
        const char *t = resource_get((enum rkind)k)->table;
        sqlcat(sql, sizeof sql, &n,
               "%sSELECT %d AS k, rid, created_at AS at, 0 AS del, b_id FROM %s"
               " UNION ALL SELECT %d, rid, deleted_at, 1, b_id FROM %s WHERE deleted_at IS NOT NULL",
               k ? " UNION ALL " : "", k, t, k, t);
    }
    sqlcat(sql, sizeof sql, &n, ") ev ORDER BY at, del, k, rid");
    PGresult *ev = PQexec(c->pc, sql);
    bool good = PQresultStatus(ev) == PGRES_TUPLES_OK;
    for (int i = 0; good && i < PQntuples(ev); i++) {
        const struct resource *r = resource_get((enum rkind)atoi(PQgetvalue(ev, i, 0)));
        bool del = PQgetvalue(ev, i, 3)[0] == '1';
        const char *tenant = pg_text(&tx, ev, i, 4), *at = pg_text(&tx, ev, i, 2);
        char q[PG_SQL_MAX];
        int qn = select_cols(r, q, sizeof q);
        sqlcat(q, sizeof q, &qn, " WHERE rid = $1::bigint");
        const char *args[] = {PQgetvalue(ev, i, 1)};
        PGresult *row = pg_exec(&tx, q, 1, args);
        struct record rec = {0};
        good = row && PQntuples(row) == 1;
        if (good)
            read_row(&tx, r, row, 0, &rec);
        PQclear(row);
        struct change_entry e = {.r = r, .id = rec.id, .action = del ? CHANGE_DELETE : CHANGE_CREATE};
        if (good && !del) {
            good = load_links(&tx, r, tenant, &rec) == STORE_OK;
            json_t *ch = good ? model_changes(r, NULL, &rec) : NULL;
            char *txt = ch ? json_dumps(ch, JSON_COMPACT) : NULL;
            json_decref(ch);
            e.changes = txt ? arena_strdup(&a, txt) : NULL;
            free(txt);
            good = e.changes != NULL;
        }
        good = good && log_append_at(&tx, tenant, &e, at, true) == STORE_OK;
        if (i % 256 == 255) { /* bounded memory, however many records */
            arena_release(&a);
            arena_init(&a);
        }
    }
    if (!good)
        log_line("error", "migration 6: the change log could not be filled", PQerrorMessage(c->pc), 0);
    PQclear(ev);
    arena_release(&a);
    return good;
}

static bool migrate(struct pg_conn *c, int target, char *err, size_t errlen)
{
    if (target <= 0 || target > migrations_latest())
        target = migrations_latest();
    PGconn *pc = c->pc;
    char lock[96];
    snprintf(lock, sizeof lock, "SELECT pg_advisory_xact_lock(%d)", MIGRATION_LOCK);
    if (!ok(PQexec(pc, "BEGIN"), PGRES_COMMAND_OK) || !ok(PQexec(pc, lock), PGRES_TUPLES_OK) ||
        !ok(PQexec(pc, "CREATE TABLE IF NOT EXISTS hipusers_schema (version integer NOT NULL)"), PGRES_COMMAND_OK)) {
        snprintf(err, errlen, "could not lock the database for migration: %.200s", PQerrorMessage(pc));
        PQclear(PQexec(pc, "ROLLBACK"));
        return false;
    }
    PGresult *res = PQexec(pc, "SELECT version FROM hipusers_schema");
    int version = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) > 0 ? atoi(PQgetvalue(res, 0, 0)) : -1;
    bool fresh = PQresultStatus(res) == PGRES_TUPLES_OK && PQntuples(res) == 0;
    PQclear(res);
    if (fresh) {
        version = 0;
        if (!ok(PQexec(pc, "INSERT INTO hipusers_schema VALUES (0)"), PGRES_COMMAND_OK))
            version = -1;
    }
    if (version < 0 || version > migrations_latest()) {
        snprintf(err, errlen, version < 0 ? "cannot read the schema version" : "the database was written by a newer hipusers");
        PQclear(PQexec(pc, "ROLLBACK"));
        return false;
    }
    for (int v = version + 1; v <= target; v++) {
        const struct pg_migration *mg = migrations_pg(v);
        char set[64];
        snprintf(set, sizeof set, "UPDATE hipusers_schema SET version = %d", v);
        if (!ok(PQexec(pc, mg->sql), PGRES_COMMAND_OK) || (mg->fold_table && !fold_keys(pc, mg)) ||
            (mg->hook == PG_HOOK_CHANGE_LOG && !change_log_backfill(c)) || (mg->after && !ok(PQexec(pc, mg->after), PGRES_COMMAND_OK)) || !ok(PQexec(pc, set), PGRES_COMMAND_OK)) {
            snprintf(err, errlen, "schema migration %d failed: %.200s", v, PQerrorMessage(pc));
            PQclear(PQexec(pc, "ROLLBACK"));
            return false;
        }
        if (mg->report_unkeyed)
            report_unkeyed(pc, mg);
    }
    /* Records' row numbers and the log's order come from one sequence (migration 8): at
     * every start it is moved past every number in use, as rows may have come with their
     * numbers (a copy from SQLite, a restored dump). Only ever forward, and only when rows
     * are past it: other servers (or a running server beside `hipusers import`) take numbers
     * meanwhile, and a setval to a value read before their nextval would hand theirs out
     * again (a duplicate row number, seen as a 500 on a create during an import). */
    char sql[PG_SQL_MAX];
    int n = 0;
    if (target >= SCHEMA_ORDER_SEQUENCE)
        sqlcat(sql, sizeof sql, &n,
               "SELECT setval('hip_order', m) FROM (SELECT greatest((SELECT max(ord) FROM change_log"
               " WHERE seq IS NULL)");
    for (int k = 0; k < R_COUNT && target >= SCHEMA_ORDER_SEQUENCE; k++)
        sqlcat(sql, sizeof sql, &n, ", (SELECT max(rid) FROM %s)", resource_get((enum rkind)k)->table);
    sqlcat(sql, sizeof sql, &n, ") AS m) x WHERE m > (SELECT last_value FROM hip_order)");
    if (target >= SCHEMA_ORDER_SEQUENCE && !ok(PQexec(pc, sql), PGRES_TUPLES_OK)) {
        snprintf(err, errlen, "could not set the row number sequence: %.200s", PQerrorMessage(pc));
        PQclear(PQexec(pc, "ROLLBACK"));
        return false;
    }
    if (!ok(PQexec(pc, "COMMIT"), PGRES_COMMAND_OK)) {
        snprintf(err, errlen, "schema migration could not commit: %.200s", PQerrorMessage(pc));
        return false;
    }
    return true;
}

struct store *store_pg_open(const char *url, const struct store_options *opt, char *err, size_t errlen)
{
    struct pg_store *s = calloc(1, sizeof *s);
    if (!s || !store_base_init(&s->base, &PG_BACKEND, STORE_POSTGRES, opt) || !(s->url = strdup(url))) {
        snprintf(err, errlen, "out of memory");
        free(s);
        return NULL;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->max = opt && opt->threads ? opt->threads : 1;
    struct pg_conn *c = conn_open(url, err, errlen);
    if (!c || !migrate(c, opt ? opt->schema_version : 0, err, errlen)) {
        conn_close(c);
        pg_close(&s->base);
        return NULL;
    }
    s->idle = c;
    s->total = 1;
    /* the rest of the pool at once: a bad URL or credentials show at start, not under load */
    while (s->total < s->max) {
        if (!(c = conn_open(url, err, errlen))) {
            pg_close(&s->base);
            return NULL;
        }
        c->next_idle = s->idle;
        s->idle = c;
        s->total++;
    }
    return &s->base;
}
