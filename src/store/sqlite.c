/* The SQLite implementation of the storage interface: one connection per worker
 * thread, WAL with synchronous=FULL (a 2xx means the change is on disk), statements
 * prepared once per connection and kept in a small cache keyed by their SQL. */
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include "model/ids.h"
#include "store/migrations.h"
#include "util/log.h"
#include "store/sqlite_int.h"

/* used inside snprintf formats, hence the doubled percent signs */
#define NOW "strftime('%%Y-%%m-%%dT%%H:%%M:%%fZ','now')"


static uint32_t hash(const char *s)
{
    uint32_t h = 2166136261u;
    while (*s)
        h = (h ^ (unsigned char)*s++) * 16777619u;
    return h;
}

/* Appends to a statement being built from the field tables. One that would not fit is a
 * bug in the tables, stopped here rather than truncated or written past the buffer. */
static void sqlcat(char *buf, size_t cap, int *n, const char *fmt, ...) __attribute__((format(printf, 4, 5)));
static void sqlcat(char *buf, size_t cap, int *n, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(buf + *n, cap - (size_t)*n, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)*n + (size_t)k >= cap) {
        log_line("error", "SQL statement longer than SQL_MAX", NULL, 0);
        abort();
    }
    *n += k;
}

/* Turns an SQLite failure into the error a client should see. Disk trouble is a
 * 503 (retry later), never a 500, and the message never carries data. */
bool sq_fail(struct sqlite_conn *c, int rc, struct herr *e)
{
    int prim = rc & 0xff;
    if (prim == SQLITE_BUSY || prim == SQLITE_LOCKED) {
        herr_set(e, 503, "The database is busy; retry shortly.");
        e->retry_after = 1;
    } else if (prim == SQLITE_FULL || prim == SQLITE_READONLY || prim == SQLITE_IOERR || prim == SQLITE_CANTOPEN) {
        herr_set(e, 503, "Storage is unavailable for writes; retry later.");
        e->retry_after = 5;
    } else {
        log_line("error", "sqlite", sqlite3_errmsg(c->db), rc);
        herr_set(e, 500, "Internal server error.");
    }
    return false;
}

sqlite3_stmt *sq_prep(struct sqlite_conn *c, const char *sql, struct herr *e)
{
    uint32_t h = hash(sql) % STMT_CACHE;
    for (int i = 0; i < STMT_CACHE; i++) {
        struct cached *slot = &c->cache[(h + (uint32_t)i) % STMT_CACHE];
        if (!slot->sql) {
            if (sqlite3_prepare_v3(c->db, sql, -1, SQLITE_PREPARE_PERSISTENT, &slot->st, NULL) != SQLITE_OK) {
                sq_fail(c, sqlite3_errcode(c->db), e);
                return NULL;
            }
            slot->sql = strdup(sql);
            return slot->st;
        }
        if (strcmp(slot->sql, sql) == 0) {
            sqlite3_reset(slot->st);
            sqlite3_clear_bindings(slot->st);
            return slot->st;
        }
    }
    /* Full: the set of distinct statements is bounded by the field tables, so this only
     * happens with unusual PATCH mixes; start over rather than grow. */
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
        c->cache[i].sql = NULL;
        c->cache[i].st = NULL;
    }
    return sq_prep(c, sql, e);
}

/* Binds text arguments in order; NULL binds SQL NULL. */
sqlite3_stmt *sq_bind_texts(struct sqlite_conn *c, const char *sql, struct herr *e, int n, ...)
{
    sqlite3_stmt *st = sq_prep(c, sql, e);
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

/* Runs a statement that returns no rows; *changes gets the affected row count. */
bool sq_run(struct sqlite_conn *c, sqlite3_stmt *st, int *changes, struct herr *e)
{
    if (!st)
        return false;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE)
        return sq_fail(c, rc, e);
    if (changes)
        *changes = sqlite3_changes(c->db);
    return true;
}

static bool exec(struct sqlite_conn *c, const char *sql, struct herr *e)
{
    sqlite3_stmt *st = sq_prep(c, sql, e);
    if (!st)
        return false;
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc != SQLITE_DONE && rc != SQLITE_ROW)
        return sq_fail(c, rc, e);
    return true;
}

static void sq_close(struct store_conn *base)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    for (int i = 0; i < STMT_CACHE; i++) {
        sqlite3_finalize(c->cache[i].st);
        free(c->cache[i].sql);
    }
    sqlite3_close(c->db);
    free(c);
}

/* An operator can make the database read-only while serving (chmod a-w): writes then
 * answer 503 and reads go on. Open descriptors would keep writing, and root ignores
 * permission bits, so the mode is checked here; a stat costs nothing next to an fsync. */
static bool writable(struct sqlite_conn *c, struct herr *e)
{
    struct stat st;
    if (stat(c->path, &st) == 0 && !(st.st_mode & S_IWUSR)) {
        herr_set(e, 503, "The database is read-only; writes are paused. Retry later.");
        e->retry_after = 30;
        return false;
    }
    return true;
}

static void release_writer(struct sqlite_conn *c)
{
    if (c->holds_writer) {
        c->holds_writer = false;
        pthread_mutex_unlock(c->writer);
    }
}

/* Writers of one process queue on a mutex before BEGIN IMMEDIATE: SQLite has one writer
 * anyway, and its busy handler would otherwise make the losers sleep 1..100 ms. The busy
 * timeout still arbitrates between processes. */
static bool sq_begin(struct store_conn *base, bool write, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    if (!write)
        return exec(c, "BEGIN", e);
    if (!writable(c, e))
        return false;
    if (c->writer) {
        pthread_mutex_lock(c->writer);
        c->holds_writer = true;
    }
    if (exec(c, "BEGIN IMMEDIATE", e))
        return true;
    release_writer(c);
    return false;
}

static bool sq_commit(struct store_conn *base, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    bool ok = exec(c, "COMMIT", e);
    if (!ok && !sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    release_writer(c);
    return ok;
}

static void sq_rollback(struct store_conn *base)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    if (!sqlite3_get_autocommit(c->db))
        sqlite3_exec(c->db, "ROLLBACK", NULL, NULL, NULL);
    release_writer(c);
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

/* A UNIQUE failure names the index (<table>_uq_<field>) or the columns; report the field. */
static bool unique_fail(struct sqlite_conn *c, const struct resource *r, struct arena *a, struct herr *e)
{
    const char *msg = sqlite3_errmsg(c->db);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!(f->flags & F_UNIQUE))
            continue;
        char idx[96];
        snprintf(idx, sizeof idx, "%s_uq_%s", r->table, f->name);
        if (names_column(msg, r->table, f->column) || (f->key_column && names_column(msg, r->table, f->key_column)) ||
            strstr(msg, idx)) {
            herr_set(e, 409, arena_printf(a, "%s already in use", f->name));
            return false;
        }
    }
    return sq_fail(c, SQLITE_CONSTRAINT, e);
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

/* Is this UNIQUE failure about the id column itself (a collision of random ids)? */
static bool id_collision(struct sqlite_conn *c, const struct resource *r)
{
    char idcol[64];
    snprintf(idcol, sizeof idcol, "%s.id", r->table);
    const char *msg = sqlite3_errmsg(c->db);
    size_t L = strlen(idcol), ML = strlen(msg);
    return ML > L && strcmp(msg + ML - L, idcol) == 0 && msg[ML - L - 1] == ' ';
}

static bool sq_insert(struct store_conn *base, const struct resource *r, const char *tenant, const struct fval *vals,
                      struct arena *a, char *id_out, size_t id_cap, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    char sql[SQL_MAX], marks[SQL_MAX];
    int n = 0, m = 0;
    sqlcat(sql, sizeof sql, &n, "INSERT INTO %s (id, b_id, created_at, updated_at", r->table);
    sqlcat(marks, sizeof marks, &m, "?, ?, " NOW ", " NOW);
    for (size_t i = 0; i < r->nfields; i++) {
        if (!r->fields[i].column)
            continue;
        sqlcat(sql, sizeof sql, &n, ", %s", r->fields[i].column);
        sqlcat(marks, sizeof marks, &m, ", ?");
        if (r->fields[i].key_column) {
            sqlcat(sql, sizeof sql, &n, ", %s", r->fields[i].key_column);
            sqlcat(marks, sizeof marks, &m, ", ?");
        }
    }
    sqlcat(sql, sizeof sql, &n, ") VALUES (%s)", marks);

    for (int attempt = 0; attempt < 8; attempt++) {
        sqlite3_stmt *st = sq_prep(c, sql, e);
        if (!st)
            return false;
        char id[ID_MAX];
        id_generate(r->kind, id);
        sqlite3_bind_text(st, 1, id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
        int pos = 3;
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
            return true;
        }
        if (rc == SQLITE_CONSTRAINT_UNIQUE) {
            if (id_collision(c, r))
                continue;
            return unique_fail(c, r, a, e);
        }
        return sq_fail(c, rc, e);
    }
    herr_set(e, 500, "Internal server error.");
    return false;
}

static bool sq_update(struct store_conn *base, const struct resource *r, const char *tenant, const char *id,
                      const struct fval *vals, struct arena *a, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    char sql[SQL_MAX];
    int n = 0;
    sqlcat(sql, sizeof sql, &n, "UPDATE %s SET updated_at = " NOW, r->table);
    for (size_t i = 0; i < r->nfields; i++) {
        if (!r->fields[i].column || vals[i].state == V_ABSENT)
            continue;
        sqlcat(sql, sizeof sql, &n, ", %s = ?", r->fields[i].column);
        if (r->fields[i].key_column)
            sqlcat(sql, sizeof sql, &n, ", %s = ?", r->fields[i].key_column);
    }
    sqlcat(sql, sizeof sql, &n, " WHERE id = ? AND b_id = ? AND deleted_at IS NULL");
    sqlite3_stmt *st = sq_prep(c, sql, e);
    if (!st)
        return false;
    int pos = 1;
    for (size_t i = 0; i < r->nfields; i++) {
        if (!r->fields[i].column || vals[i].state == V_ABSENT)
            continue;
        bind_val(st, pos++, &r->fields[i], &vals[i]);
        if (r->fields[i].key_column)
            bind_key(st, pos++, &vals[i]);
    }
    sqlite3_bind_text(st, pos++, id, -1, SQLITE_STATIC);
    sqlite3_bind_text(st, pos, tenant, -1, SQLITE_STATIC);
    int rc = sqlite3_step(st);
    sqlite3_reset(st);
    if (rc == SQLITE_DONE)
        return true;
    if (rc == SQLITE_CONSTRAINT_UNIQUE)
        return unique_fail(c, r, a, e);
    return sq_fail(c, rc, e);
}

const char *sq_text(sqlite3_stmt *st, int i, struct arena *a)
{
    const unsigned char *t = sqlite3_column_text(st, i);
    return t ? arena_strndup(a, (const char *)t, (size_t)sqlite3_column_bytes(st, i)) : NULL;
}

/* SELECT list shared by find and list: rid, id, created_at, updated_at, then the columns. */
static int select_cols(const struct resource *r, char *buf, size_t cap)
{
    int n = 0;
    sqlcat(buf, cap, &n, "SELECT rid, id, created_at, updated_at");
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].column)
            sqlcat(buf, cap, &n, ", %s", r->fields[i].column);
    sqlcat(buf, cap, &n, " FROM %s", r->table);
    return n;
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

/* Fills the record's link views: the linked records that are still undeleted. */
static bool load_links(struct sqlite_conn *c, const struct resource *r, const char *tenant, struct arena *a,
                       struct record *rec, struct herr *e)
{
    for (size_t v = 0; v < r->nviews; v++) {
        const struct link_view *lv = &r->views[v];
        const struct relation *rel = relation_get(lv->rel);
        const struct resource *t = resource_get(lv->target);
        int side = rel->kind[0] == r->kind ? 0 : 1;
        char sql[SQL_MAX];
        snprintf(sql, sizeof sql,
                 "SELECT t.id, t.%s, %s%s FROM %s l JOIN %s t ON t.id = l.%s "
                 "WHERE l.%s = ? AND t.b_id = ? AND t.deleted_at IS NULL ORDER BY l.pos",
                 t->summary[0], t->summary[1] ? "t." : "NULL", t->summary[1] ? t->summary[1] : "", rel->table,
                 t->table, rel->col[1 - side], rel->col[side]);
        sqlite3_stmt *st = sq_prep(c, sql, e);
        if (!st)
            return false;
        sqlite3_bind_text(st, 1, rec->id, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC); /* links never cross tenants; checked anyway */
        size_t cap = 4, n = 0;
        struct ref *items = arena_alloc(a, cap * sizeof *items);
        int rc;
        while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
            if (n == cap) {
                struct ref *bigger = arena_alloc(a, 2 * cap * sizeof *items);
                memcpy(bigger, items, n * sizeof *items);
                items = bigger;
                cap *= 2;
            }
            items[n].id = sq_text(st, 0, a);
            items[n].a = sq_text(st, 1, a);
            items[n].b = sq_text(st, 2, a);
            n++;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE)
            return sq_fail(c, rc, e);
        rec->links[v].items = items;
        rec->links[v].n = n;
    }
    return true;
}

static enum find_result sq_find(struct store_conn *base, const struct resource *r, const char *tenant,
                                const char *key, struct arena *a, struct record *out, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    char sql[SQL_MAX];
    int n = select_cols(r, sql, sizeof sql);
    /* Two probes so the Eka id wins over a partner_id that happens to be equal. */
    static const char *const by[] = {"id", "partner_id"};
    for (int k = 0; k < 2; k++) {
        int end = n;
        sqlcat(sql, sizeof sql, &end, " WHERE %s = ? AND b_id = ? AND deleted_at IS NULL", by[k]);
        sqlite3_stmt *st = sq_prep(c, sql, e);
        if (!st)
            return FIND_ERROR;
        sqlite3_bind_text(st, 1, key, -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            read_row(r, st, a, out);
            sqlite3_reset(st);
            return load_links(c, r, tenant, a, out, e) ? FIND_OK : FIND_ERROR;
        }
        sqlite3_reset(st);
        if (rc != SQLITE_DONE) {
            sq_fail(c, rc, e);
            return FIND_ERROR;
        }
    }
    return FIND_MISSING;
}

static bool sq_soft_delete(struct store_conn *base, const struct resource *r, const char *tenant, const char *id,
                           struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    char sql[SQL_MAX];
    snprintf(sql, sizeof sql,
             "UPDATE %s SET deleted_at = " NOW ", updated_at = " NOW
             " WHERE id = ? AND b_id = ? AND deleted_at IS NULL",
             r->table);
    return sq_run(c, sq_bind_texts(c, sql, e, 2, id, tenant), NULL, e);
}

static bool sq_resolve(struct store_conn *base, const struct resource *target, const char *tenant,
                       const char *field, bool by_partner, const char **keys, size_t n, struct arena *a,
                       const char **ids_out, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    char sql[SQL_MAX];
    snprintf(sql, sizeof sql, "SELECT id FROM %s WHERE %s = ? AND b_id = ? AND deleted_at IS NULL", target->table,
             by_partner ? "partner_id" : "id");
    for (size_t i = 0; i < n; i++) {
        sqlite3_stmt *st = sq_prep(c, sql, e);
        if (!st)
            return false;
        sqlite3_bind_text(st, 1, keys[i], -1, SQLITE_STATIC);
        sqlite3_bind_text(st, 2, tenant, -1, SQLITE_STATIC);
        int rc = sqlite3_step(st);
        if (rc == SQLITE_ROW) {
            ids_out[i] = sq_text(st, 0, a);
        } else if (rc == SQLITE_DONE) {
            ids_out[i] = NULL;
            herr_field(e, a, field, arena_printf(a, "%s %s does not exist.", target->label, keys[i]));
        } else {
            sqlite3_reset(st);
            return sq_fail(c, rc, e);
        }
        sqlite3_reset(st);
    }
    return e->status == 0;
}

static bool sq_link(struct store_conn *base, enum rel rel, int side, const char *id, const char **others, size_t n,
                    bool replace, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    const struct relation *R = relation_get(rel);
    char sql[SQL_MAX];
    if (replace) {
        snprintf(sql, sizeof sql, "DELETE FROM %s WHERE %s = ?", R->table, R->col[side]);
        if (!sq_run(c, sq_bind_texts(c, sql, e, 1, id), NULL, e))
            return false;
    }
    snprintf(sql, sizeof sql, "INSERT OR IGNORE INTO %s (%s, %s) VALUES (?, ?)", R->table, R->col[side],
             R->col[1 - side]);
    for (size_t i = 0; i < n; i++)
        if (!sq_run(c, sq_bind_texts(c, sql, e, 2, id, others[i]), NULL, e))
            return false;
    return true;
}

static bool sq_list(struct store_conn *base, const struct resource *r, const char *tenant, int64_t *cursor,
                    int limit, struct arena *a, store_row_fn fn, void *ctx, int *count, struct herr *e)
{
    struct sqlite_conn *c = (struct sqlite_conn *)base;
    char sql[SQL_MAX];
    int n = select_cols(r, sql, sizeof sql);
    sqlcat(sql, sizeof sql, &n, " WHERE b_id = ? AND deleted_at IS NULL AND rid > ? ORDER BY rid LIMIT ?");
    /* Rows are copied out first: load_links reuses this connection's statements. */
    struct record *recs = arena_calloc(a, (size_t)limit, sizeof *recs);
    int64_t *rids = arena_calloc(a, (size_t)limit, sizeof *rids);
    sqlite3_stmt *st = sq_prep(c, sql, e);
    if (!st)
        return false;
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    sqlite3_bind_int64(st, 2, *cursor);
    sqlite3_bind_int(st, 3, limit);
    int got = 0, rc;
    while (got < limit && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        rids[got] = sqlite3_column_int64(st, 0);
        read_row(r, st, a, &recs[got]);
        got++;
    }
    if (got < limit && rc != SQLITE_DONE) {
        sqlite3_reset(st);
        return sq_fail(c, rc, e);
    }
    sqlite3_reset(st);
    *count = got;
    for (int i = 0; i < got; i++) {
        if (!load_links(c, r, tenant, a, &recs[i], e))
            return false;
        *cursor = rids[i];
        if (!fn(ctx, &recs[i]))
            break;
    }
    return true;
}

static const struct store_ops SQLITE_OPS = {
    .close = sq_close,
    .begin = sq_begin,
    .commit = sq_commit,
    .rollback = sq_rollback,
    .insert = sq_insert,
    .update = sq_update,
    .find = sq_find,
    .soft_delete = sq_soft_delete,
    .resolve = sq_resolve,
    .link = sq_link,
    .list = sq_list,
};

struct store_conn *store_sqlite_open(const char *path, pthread_mutex_t *writer, struct herr *e)
{
    /* Personal data and secret hashes: the file (and the WAL and shm SQLite derives from it)
     * is owner-only whoever creates it, the server or an admin command. O_EXCL matters:
     * closing any descriptor of a file drops every POSIX lock this process holds on it, so
     * the file is only ever touched here when it is new, and no SQLite lock can exist yet. */
    int fd = open(path, O_RDWR | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd >= 0)
        close(fd);
    struct sqlite_conn *c = calloc(1, sizeof *c);
    if (!c) {
        herr_set(e, 500, "out of memory");
        return NULL;
    }
    c->writer = writer;
    c->base.ops = &SQLITE_OPS;
    c->base.auth = &SQLITE_AUTH_OPS;
    snprintf(c->path, sizeof c->path, "%s", path);
    int rc = sqlite3_open_v2(path, &c->db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, NULL);
    if (rc != SQLITE_OK) {
        herr_set(e, 500, "cannot open the database");
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    sqlite3_busy_timeout(c->db, 5000);
    sqlite3_extended_result_codes(c->db, 1);
    if (sqlite3_exec(c->db,
                     "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA foreign_keys=ON;"
                     "PRAGMA temp_store=MEMORY;",
                     NULL, NULL, NULL) != SQLITE_OK ||
        !migrations_apply(c->db, e)) {
        if (!e->status)
            herr_set(e, 500, "cannot initialise the database");
        sqlite3_close(c->db);
        free(c);
        return NULL;
    }
    return &c->base;
}
