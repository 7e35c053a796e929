/* hipusers copy --from SQLITE --to postgresql://...: moves a whole deployment (every table of
 * the schema: records with their ids and times, deleted ones too, links in their order,
 * businesses, API clients, sharing keys, sessions and refresh tokens, the change log and its
 * counters, Idempotency-Keys) from a SQLite file into a PostgreSQL database.
 *
 * Nothing here names a table but the short SKIP list: the tables and their columns come
 * from the source's schema (sqlite_master, table_info), each matched with the target's
 * (information_schema), so a table a later migration adds is copied as it is. Each value
 * is written in the target column's type (SQLite's 0/1 into boolean, blobs into bytea).
 *
 * The source is opened read-only and read in one transaction: one snapshot, while a server
 * keeps writing to it. The target's schema is first brought to this version (the migration
 * `serve` runs); then everything happens in one transaction on the target: refuse a target
 * that holds data (unless --replace, which empties it in the same transaction), COPY each
 * table in an order its foreign keys accept, move identity sequences past the copied ids,
 * count rows per table and per business on both sides, and commit only when they agree.
 * Any failure (or the end of the process) rolls back, and the target is as it was. */
#include "cli/copy.h"

#include <errno.h>
#include <getopt.h>
#include <libpq-fe.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "model/field.h"
#include "store/migrations.h"
#include "store/store.h"

/* Tables never copied: the target's record of its own schema version (SQLite keeps it in
 * the file's header). Transient state that only means something to the process that made
 * it belongs here too, documented as such (docs/decisions.md). Every other table is copied. */
static const char *const SKIP[] = {"hipusers_schema"};

#define FLUSH_AT (256 * 1024)
#define BAR 30
#define MISMATCHES_SHOWN 10

static const char USAGE[] =
    "usage: hipusers copy --from SQLITE_DB --to POSTGRESQL_URL [--replace]\n"
    "  Copies every table of a SQLite deployment (records with their ids and times, deleted\n"
    "  ones too, links, businesses, API clients, sharing keys, sessions and refresh tokens,\n"
    "  the change log, Idempotency-Keys) into a PostgreSQL database, in one transaction\n"
    "  that commits only once the rows per table and per business agree on both sides.\n"
    "  The source is read in one snapshot (a server may keep running on it); the target's\n"
    "  schema is brought up to date first. A target that already holds data is refused;\n"
    "  --replace empties it instead (in the same transaction: a failed copy keeps it).\n"
    "  Progress goes to standard error (a bar on a terminal), the summary to standard output.\n";

enum ctype { CT_OTHER, CT_BOOL, CT_BYTEA };

struct column {
    const char *name;
    enum ctype type;
    bool serial; /* an identity or serial column: its sequence follows the copied values */
};

struct table {
    const char *name;
    struct column *cols;
    int ncols;
    bool has_b_id;
    bool placed; /* ordering */
    long long rows; /* in the source's snapshot */
    long long tenants;
};

struct copy {
    sqlite3 *src;
    PGconn *pg;
    bool in_tx;
    bool tty;
    char shown[512]; /* the target's URL without its password */
    struct table *t;
    int nt;
    char **names; /* every string the tables point into, freed at the end */
    int nnames, capnames;
    char err[2048];
};

struct buf {
    char *p;
    size_t n, cap;
};

/* ---------------------------------------------------------------- helpers */

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

__attribute__((format(printf, 2, 3))) static bool fail(struct copy *c, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(c->err, sizeof c->err, fmt, ap);
    va_end(ap);
    return false;
}

static void oom(void)
{
    fputs("hipusers copy: out of memory\n", stderr);
    exit(1); /* the target's transaction ends with the connection: nothing is committed */
}

static void put(struct buf *b, const void *data, size_t n)
{
    if (b->n + n + 1 > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (b->n + n + 1 > cap)
            cap *= 2;
        char *p = realloc(b->p, cap);
        if (!p)
            oom();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, data, n);
    b->n += n;
    b->p[b->n] = '\0';
}

static void puts_(struct buf *b, const char *s) { put(b, s, strlen(s)); }

__attribute__((format(printf, 2, 3))) static void putf(struct buf *b, const char *fmt, ...)
{
    char tmp[64];
    va_list ap;
    va_start(ap, fmt);
    int k = vsnprintf(tmp, sizeof tmp, fmt, ap);
    va_end(ap);
    if (k < 0 || (size_t)k >= sizeof tmp)
        abort(); /* only short numbers come here */
    put(b, tmp, (size_t)k);
}

/* An identifier, double-quoted (names come from the catalogs, never from input). */
static void ident(struct buf *b, const char *name)
{
    put(b, "\"", 1);
    for (const char *p = name; *p; p++)
        put(b, *p == '"' ? "\"\"" : p, *p == '"' ? 2 : 1);
    put(b, "\"", 1);
}

static const char *keep(struct copy *c, const char *s)
{
    if (c->nnames == c->capnames) {
        int cap = c->capnames ? c->capnames * 2 : 64;
        char **p = realloc(c->names, (size_t)cap * sizeof *p);
        if (!p)
            oom();
        c->names = p;
        c->capnames = cap;
    }
    char *d = strdup(s);
    if (!d)
        oom();
    return c->names[c->nnames++] = d;
}

static bool skipped(const char *table)
{
    for (size_t i = 0; i < sizeof SKIP / sizeof SKIP[0]; i++)
        if (strcmp(table, SKIP[i]) == 0)
            return true;
    return false;
}

/* The primary message of a failed statement (its detail can quote values: left out), or
 * the first line of the connection's. */
static const char *pg_why(PGconn *pg, const PGresult *r)
{
    static char line[512];
    const char *m = r ? PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY) : NULL;
    if (m)
        return m;
    m = PQerrorMessage(pg);
    if (!strncmp(m, "FATAL:  ", 8) || !strncmp(m, "ERROR:  ", 8))
        m += 8;
    snprintf(line, sizeof line, "%.*s", (int)strcspn(m, "\n"), m);
    return line[0] ? line : "the connection failed";
}

/* Runs one statement on the target; false with c->err set (`what` says which step). */
static bool pg_run(struct copy *c, const char *sql, ExecStatusType want, PGresult **out, const char *what)
{
    PGresult *r = PQexec(c->pg, sql);
    if (PQresultStatus(r) != want) {
        fail(c, "%s failed: %s", what, pg_why(c->pg, r));
        PQclear(r);
        return false;
    }
    if (out)
        *out = r;
    else
        PQclear(r);
    return true;
}

/* ---------------------------------------------------------------- progress */

struct progress {
    bool tty;
    const char *table;
    long long total;
    double start, last;
};

static void progress_show(struct progress *p, long long done, bool final)
{
    double now = mono_s();
    if (!final && now - p->last < 0.1)
        return;
    p->last = now;
    double elapsed = now - p->start;
    char rate[48] = "";
    if (done > 0)
        snprintf(rate, sizeof rate, "  %.0f rows/s", (double)done / (elapsed > 0.001 ? elapsed : 0.001));
    if (p->tty) {
        char bar[BAR + 1];
        int fill = p->total > 0 ? (int)((double)done * BAR / (double)p->total + 0.5) : (final ? BAR : 0);
        if (fill > BAR)
            fill = BAR;
        for (int i = 0; i < BAR; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[BAR] = '\0';
        fprintf(stderr, "\r%-16s [%s] %lld/%lld rows%s\x1b[K%s", p->table, bar, done, p->total, rate,
                final ? "\n" : "");
    } else if (final) {
        fprintf(stderr, "copy: %s: %lld rows in %.2f s%s\n", p->table, done, elapsed, rate);
    }
    fflush(stderr);
}

/* ---------------------------------------------------------------- the source */

static bool src_open(struct copy *c, const char *path)
{
    struct stat st;
    if (stat(path, &st) != 0)
        return fail(c, "cannot read the source %s: %s", path, strerror(errno));
    if (!S_ISREG(st.st_mode))
        return fail(c, "the source %s is not a database file", path);
    /* Reading may create the -shm file beside it: as root, it would be root's, and the
     * server could no longer open its database (as for hipusers backup). */
    if (geteuid() == 0 && st.st_uid != 0)
        return fail(c, "%s belongs to another user: run the copy as that user (sudo -u ...)", path);
    /* Read-only: the copy never writes the source (nor creates one). */
    if (sqlite3_open_v2(path, &c->src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK)
        return fail(c, "cannot open the source %s: %s", path, sqlite3_errmsg(c->src));
    sqlite3_busy_timeout(c->src, 30000);
    /* One read transaction for everything read below: one snapshot of the source. */
    if (sqlite3_exec(c->src, "BEGIN", NULL, NULL, NULL) != SQLITE_OK)
        return fail(c, "cannot read the source %s: %s", path, sqlite3_errmsg(c->src));
    sqlite3_stmt *st_v;
    int version = -1;
    if (sqlite3_prepare_v2(c->src, "PRAGMA user_version", -1, &st_v, NULL) != SQLITE_OK)
        return fail(c, "the source %s is not a hipusers database: %s", path, sqlite3_errmsg(c->src));
    if (sqlite3_step(st_v) == SQLITE_ROW)
        version = sqlite3_column_int(st_v, 0);
    sqlite3_finalize(st_v);
    if (version < 1)
        return fail(c, "the source %s is not a hipusers database (no schema version)", path);
    if (version > migrations_latest())
        return fail(c, "the source %s was written by a newer hipusers (schema version %d, this one knows %d)",
                    path, version, migrations_latest());
    if (version < migrations_latest())
        return fail(c,
                    "the source %s has schema version %d, this hipusers %d: bring it up to date first "
                    "(hipusers migrate --db %s)",
                    path, version, migrations_latest(), path);
    return true;
}

/* The source's tables (creation order) and their columns, less SKIP and SQLite's own. */
static bool src_tables(struct copy *c)
{
    sqlite3_stmt *st, *cols;
    if (sqlite3_prepare_v2(c->src,
                           "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite\\_%' "
                           "ESCAPE '\\' ORDER BY rowid",
                           -1, &st, NULL) != SQLITE_OK)
        return fail(c, "reading the source's schema failed: %s", sqlite3_errmsg(c->src));
    if (sqlite3_prepare_v2(c->src, "SELECT name FROM pragma_table_info(?1) ORDER BY cid", -1, &cols, NULL) !=
        SQLITE_OK) {
        sqlite3_finalize(st);
        return fail(c, "reading the source's schema failed: %s", sqlite3_errmsg(c->src));
    }
    int rc;
    while ((rc = sqlite3_step(st)) == SQLITE_ROW) {
        const char *name = (const char *)sqlite3_column_text(st, 0);
        if (!name || skipped(name))
            continue;
        struct table *t = realloc(c->t, (size_t)(c->nt + 1) * sizeof *t);
        if (!t)
            oom();
        c->t = t;
        t = &c->t[c->nt++];
        *t = (struct table){.name = keep(c, name)};
        sqlite3_reset(cols);
        sqlite3_bind_text(cols, 1, t->name, -1, SQLITE_STATIC);
        while ((rc = sqlite3_step(cols)) == SQLITE_ROW) {
            struct column *cs = realloc(t->cols, (size_t)(t->ncols + 1) * sizeof *cs);
            if (!cs)
                oom();
            t->cols = cs;
            cs[t->ncols++] = (struct column){.name = keep(c, (const char *)sqlite3_column_text(cols, 0))};
        }
        if (rc != SQLITE_DONE)
            break;
    }
    sqlite3_finalize(st);
    sqlite3_finalize(cols);
    if (rc != SQLITE_DONE)
        return fail(c, "reading the source's schema failed: %s", sqlite3_errmsg(c->src));
    return true;
}

static bool src_count(struct copy *c, struct table *t)
{
    struct buf q = {0};
    puts_(&q, "SELECT count(*) FROM ");
    ident(&q, t->name);
    sqlite3_stmt *st;
    bool good = sqlite3_prepare_v2(c->src, q.p, -1, &st, NULL) == SQLITE_OK && sqlite3_step(st) == SQLITE_ROW;
    if (good)
        t->rows = sqlite3_column_int64(st, 0);
    else
        fail(c, "counting %s in the source failed: %s", t->name, sqlite3_errmsg(c->src));
    sqlite3_finalize(st);
    free(q.p);
    return good;
}

/* ---------------------------------------------------------------- the target */

static bool pg_connect(struct copy *c, const char *url)
{
    const char *keys[] = {"dbname", "application_name", "client_encoding", NULL};
    const char *vals[] = {url, "hipusers copy", "UTF8", NULL};
    c->pg = PQconnectdbParams(keys, vals, 1);
    if (!c->pg)
        oom();
    if (PQstatus(c->pg) != CONNECTION_OK)
        return fail(c, "cannot connect to the target %s: %s", c->shown, pg_why(c->pg, NULL));
    if (!pg_run(c, "BEGIN", PGRES_COMMAND_OK, NULL, "starting the target's transaction"))
        return false;
    c->in_tx = true;
    return true;
}

/* Matches every source table and column with the target's: the column's type there (for
 * the values' text) and whether a sequence feeds it. A source table or column the target
 * lacks would be data left behind: refused. */
static bool match_target(struct copy *c)
{
    PGresult *r;
    if (!pg_run(c,
                "SELECT table_name, column_name, data_type,"
                " is_identity = 'YES' OR coalesce(column_default, '') LIKE 'nextval(%'"
                " FROM information_schema.columns WHERE table_schema = current_schema()",
                PGRES_TUPLES_OK, &r, "reading the target's schema"))
        return false;
    bool good = true;
    for (int i = 0; good && i < c->nt; i++) {
        struct table *t = &c->t[i];
        bool table_found = false;
        for (int k = 0; good && k < t->ncols; k++) {
            struct column *col = &t->cols[k];
            int row = -1;
            for (int j = 0; j < PQntuples(r); j++) {
                if (strcmp(PQgetvalue(r, j, 0), t->name) != 0)
                    continue;
                table_found = true;
                if (strcmp(PQgetvalue(r, j, 1), col->name) == 0)
                    row = j;
            }
            if (!table_found)
                good = fail(c, "the target has no table %s (the source's schema has it)", t->name);
            else if (row < 0)
                good = fail(c, "the target's table %s has no column %s (the source's has it)", t->name, col->name);
            else {
                const char *type = PQgetvalue(r, row, 2);
                col->type = !strcmp(type, "boolean") ? CT_BOOL : !strcmp(type, "bytea") ? CT_BYTEA : CT_OTHER;
                col->serial = PQgetvalue(r, row, 3)[0] == 't';
                if (!strcmp(col->name, "b_id"))
                    t->has_b_id = true;
            }
        }
        if (good && t->ncols == 0)
            good = fail(c, "the source's table %s has no columns", t->name);
    }
    PQclear(r);
    return good;
}

/* A target holding data is refused, unless told to replace it: then every table but SKIP
 * is emptied, in this transaction. */
static bool target_empty(struct copy *c, bool replace)
{
    PGresult *r;
    if (!pg_run(c,
                "SELECT table_name FROM information_schema.tables"
                " WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name",
                PGRES_TUPLES_OK, &r, "reading the target's tables"))
        return false;
    struct buf held = {0}, trunc = {0};
    bool good = true;
    int n = 0;
    for (int i = 0; good && i < PQntuples(r); i++) {
        const char *name = PQgetvalue(r, i, 0);
        if (skipped(name))
            continue;
        struct buf q = {0};
        puts_(&q, "SELECT EXISTS (SELECT 1 FROM ");
        ident(&q, name);
        puts_(&q, ")");
        PGresult *e;
        good = pg_run(c, q.p, PGRES_TUPLES_OK, &e, "reading the target");
        if (good && PQgetvalue(e, 0, 0)[0] == 't') {
            if (held.n)
                puts_(&held, ", ");
            puts_(&held, name);
        }
        if (good)
            PQclear(e);
        free(q.p);
        puts_(&trunc, n++ ? ", " : "TRUNCATE ");
        ident(&trunc, name);
    }
    PQclear(r);
    if (good && held.n) {
        if (!replace)
            good = fail(c,
                        "the target %s already holds data (in %s): nothing was written. Copy into an empty "
                        "database, or give --replace to replace what it holds",
                        c->shown, held.p);
        else {
            puts_(&trunc, " RESTART IDENTITY");
            good = pg_run(c, trunc.p, PGRES_COMMAND_OK, NULL, "emptying the target (--replace)");
            if (good)
                fprintf(stderr, "copy: --replace: emptied %s (in this transaction)\n", held.p);
        }
    }
    free(held.p);
    free(trunc.p);
    return good;
}

/* The tables in an order the target's foreign keys accept (parents first), else in the
 * source's creation order. */
static bool order_tables(struct copy *c)
{
    PGresult *r;
    if (!pg_run(c,
                "SELECT ch.relname, pa.relname FROM pg_constraint k"
                " JOIN pg_class ch ON ch.oid = k.conrelid JOIN pg_class pa ON pa.oid = k.confrelid"
                " JOIN pg_namespace ns ON ns.oid = ch.relnamespace"
                " WHERE k.contype = 'f' AND ns.nspname = current_schema()",
                PGRES_TUPLES_OK, &r, "reading the target's foreign keys"))
        return false;
    struct table *out = malloc((size_t)c->nt * sizeof *out);
    if (!out && c->nt)
        oom();
    int n = 0;
    while (n < c->nt) {
        int pick = -1;
        for (int i = 0; pick < 0 && i < c->nt; i++) {
            if (c->t[i].placed)
                continue;
            bool ready = true;
            for (int j = 0; ready && j < PQntuples(r); j++) {
                if (strcmp(PQgetvalue(r, j, 0), c->t[i].name) != 0 || !strcmp(PQgetvalue(r, j, 1), c->t[i].name))
                    continue;
                for (int p = 0; p < c->nt; p++)
                    if (!c->t[p].placed && !strcmp(c->t[p].name, PQgetvalue(r, j, 1)))
                        ready = false;
            }
            if (ready)
                pick = i;
        }
        if (pick < 0) /* a cycle: the first left; its COPY says what is wrong */
            for (int i = 0; pick < 0 && i < c->nt; i++)
                if (!c->t[i].placed)
                    pick = i;
        c->t[pick].placed = true;
        out[n++] = c->t[pick];
    }
    PQclear(r);
    free(c->t);
    c->t = out;
    return true;
}

/* ---------------------------------------------------------------- rows */

/* A text value for COPY's text format. */
static void put_text(struct buf *b, const unsigned char *s, size_t n)
{
    size_t from = 0;
    for (size_t i = 0; i < n; i++) {
        const char *esc = s[i] == '\\' ? "\\\\" : s[i] == '\n' ? "\\n" : s[i] == '\r' ? "\\r" : s[i] == '\t' ? "\\t" : NULL;
        if (!esc)
            continue;
        put(b, s + from, i - from);
        puts_(b, esc);
        from = i + 1;
    }
    put(b, s + from, n - from);
}

static void put_value(struct buf *b, sqlite3_stmt *st, int i, enum ctype type)
{
    static const char HEX[] = "0123456789abcdef";
    switch (sqlite3_column_type(st, i)) {
    case SQLITE_NULL: puts_(b, "\\N"); break;
    case SQLITE_INTEGER:
        if (type == CT_BOOL)
            puts_(b, sqlite3_column_int64(st, i) ? "t" : "f");
        else
            putf(b, "%lld", (long long)sqlite3_column_int64(st, i));
        break;
    case SQLITE_FLOAT:
        if (type == CT_BOOL)
            puts_(b, sqlite3_column_double(st, i) != 0 ? "t" : "f");
        else
            putf(b, "%.17g", sqlite3_column_double(st, i));
        break;
    case SQLITE_BLOB: {
        const unsigned char *p = sqlite3_column_blob(st, i);
        size_t n = (size_t)sqlite3_column_bytes(st, i);
        if (type != CT_BYTEA) {
            put_text(b, p, n); /* text the target checks as such */
            break;
        }
        puts_(b, "\\\\x");
        for (size_t k = 0; k < n; k++) {
            char h[2] = {HEX[p[k] >> 4], HEX[p[k] & 15]};
            put(b, h, 2);
        }
        break;
    }
    default: {
        const unsigned char *p = sqlite3_column_text(st, i);
        put_text(b, p, (size_t)sqlite3_column_bytes(st, i));
        break;
    }
    }
}

static bool send(struct copy *c, struct buf *b, const char *table)
{
    if (b->n && PQputCopyData(c->pg, b->p, (int)b->n) != 1)
        return fail(c, "copying %s failed: %s", table, pg_why(c->pg, NULL));
    b->n = 0;
    return true;
}

/* Ends the COPY; false when the target refused it (the transaction is then aborted). */
static bool copy_end(struct copy *c, const char *table, const char *abort_msg, long long sent)
{
    bool good = PQputCopyEnd(c->pg, abort_msg) == 1;
    PGresult *r;
    char why[1024] = "";
    bool done = false;
    while ((r = PQgetResult(c->pg))) {
        if (PQresultStatus(r) == PGRES_COMMAND_OK)
            done = atoll(PQcmdTuples(r)) == sent;
        else if (!why[0])
            snprintf(why, sizeof why, "%s", pg_why(c->pg, r));
        PQclear(r);
    }
    if (abort_msg)
        return false;
    if (!good || !done)
        return fail(c, "copying %s failed: %s", table,
                    why[0] ? why : !good ? pg_why(c->pg, NULL) : "the target took another number of rows");
    return true;
}

static bool copy_table(struct copy *c, struct table *t)
{
    struct buf q = {0}, data = {0};
    puts_(&q, "COPY ");
    ident(&q, t->name);
    puts_(&q, " (");
    for (int k = 0; k < t->ncols; k++) {
        if (k)
            puts_(&q, ", ");
        ident(&q, t->cols[k].name);
    }
    puts_(&q, ") FROM STDIN");
    PGresult *r = PQexec(c->pg, q.p);
    free(q.p);
    if (PQresultStatus(r) != PGRES_COPY_IN) {
        fail(c, "copying %s failed: %s", t->name, pg_why(c->pg, r));
        PQclear(r);
        return false;
    }
    PQclear(r);

    q = (struct buf){0};
    puts_(&q, "SELECT ");
    for (int k = 0; k < t->ncols; k++) {
        if (k)
            puts_(&q, ", ");
        ident(&q, t->cols[k].name);
    }
    puts_(&q, " FROM ");
    ident(&q, t->name);
    sqlite3_stmt *st;
    if (sqlite3_prepare_v2(c->src, q.p, -1, &st, NULL) != SQLITE_OK) {
        fail(c, "reading %s from the source failed: %s", t->name, sqlite3_errmsg(c->src));
        free(q.p);
        copy_end(c, t->name, "source failed", 0);
        return false;
    }
    free(q.p);
    struct progress p = {.tty = c->tty, .table = t->name, .total = t->rows, .start = mono_s()};
    progress_show(&p, 0, false);
    long long done = 0;
    int rc;
    bool good = true;
    while (good && (rc = sqlite3_step(st)) == SQLITE_ROW) {
        for (int k = 0; k < t->ncols; k++) {
            if (k)
                put(&data, "\t", 1);
            put_value(&data, st, k, t->cols[k].type);
        }
        put(&data, "\n", 1);
        done++;
        if (data.n >= FLUSH_AT)
            good = send(c, &data, t->name);
        if ((done & 1023) == 0)
            progress_show(&p, done, false);
    }
    if (good && rc != SQLITE_DONE)
        good = fail(c, "reading %s from the source failed: %s", t->name, sqlite3_errmsg(c->src));
    sqlite3_finalize(st);
    good = good && send(c, &data, t->name);
    free(data.p);
    if (!good) {
        char keep_err[sizeof c->err];
        memcpy(keep_err, c->err, sizeof keep_err);
        copy_end(c, t->name, "the copy failed", done);
        memcpy(c->err, keep_err, sizeof keep_err);
        if (p.tty)
            fputc('\n', stderr);
        return false;
    }
    if (!copy_end(c, t->name, NULL, done)) {
        if (p.tty)
            fputc('\n', stderr);
        return false;
    }
    progress_show(&p, done, true);
    return true;
}

/* Identity and serial columns: their sequences go past the copied values, so the target's
 * next rows do not collide with copied ones. */
static bool reset_sequences(struct copy *c, const struct table *t)
{
    for (int k = 0; k < t->ncols; k++) {
        if (!t->cols[k].serial)
            continue;
        struct buf qt = {0}, q = {0};
        ident(&qt, t->name);
        puts_(&q, "SELECT setval(pg_get_serial_sequence($1, $2), m) FROM (SELECT max(");
        ident(&q, t->cols[k].name);
        puts_(&q, ") AS m FROM ");
        put(&q, qt.p, qt.n);
        puts_(&q, ") x WHERE m IS NOT NULL");
        const char *args[] = {qt.p, t->cols[k].name};
        PGresult *r = PQexecParams(c->pg, q.p, 2, NULL, args, NULL, NULL, 0);
        bool good = PQresultStatus(r) == PGRES_TUPLES_OK;
        if (!good)
            fail(c, "moving the sequence of %s.%s failed: %s", t->name, t->cols[k].name, pg_why(c->pg, r));
        PQclear(r);
        free(q.p);
        free(qt.p);
        if (!good)
            return false;
    }
    return true;
}

/* PostgreSQL keeps ids unique over all tenants in a registry of its own (eka_id, schema 9),
 * which SQLite does not have: it is filled from the copied records, so an id copied in is
 * never handed out again, nor taken by an import into another business. */
static bool fill_id_registry(struct copy *c)
{
    PGresult *r;
    if (!pg_run(c,
                "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema()"
                " AND table_name = 'eka_id'",
                PGRES_TUPLES_OK, &r, "reading the target's tables"))
        return false;
    bool has = PQntuples(r) > 0;
    PQclear(r);
    for (int k = 0; has && k < R_COUNT; k++) {
        const struct resource *res = resource_get((enum rkind)k);
        char sql[256];
        snprintf(sql, sizeof sql, "INSERT INTO eka_id (id, resource, b_id) SELECT id, '%s', b_id FROM %s",
                 res->path, res->table);
        if (!pg_run(c, sql, PGRES_COMMAND_OK, NULL, "filling the id registry"))
            return false;
    }
    return true;
}

/* ---------------------------------------------------------------- verification */

struct tally {
    char *key; /* NULL: rows without a b_id */
    long long n;
};

static int key_cmp(const char *a, const char *b)
{
    if (!a || !b)
        return (a != NULL) - (b != NULL);
    return strcmp(a, b);
}

/* One difference, on a line of its own (the first MISMATCHES_SHOWN are shown). */
static void mismatch(struct buf *out, int *shown, const char *table, bool per_business, const char *key,
                     long long in_source, long long in_target)
{
    if ((*shown)++ >= MISMATCHES_SHOWN)
        return;
    char line[512];
    if (per_business)
        snprintf(line, sizeof line, "%s of business %s: %lld rows in the source, %lld in the target", table,
                 key ? key : "(none)", in_source, in_target);
    else
        snprintf(line, sizeof line, "%s: %lld rows in the source, %lld in the target", table, in_source, in_target);
    puts_(out, "\n  ");
    puts_(out, line);
}

/* Rows per table, and per business for the tables with a b_id, on both sides. */
static bool verify(struct copy *c)
{
    struct buf bad = {0};
    int nbad = 0;
    bool good = true;
    for (int i = 0; good && i < c->nt; i++) {
        struct table *t = &c->t[i];
        struct buf q = {0};
        puts_(&q, "SELECT count(*) FROM ");
        ident(&q, t->name);
        PGresult *r;
        good = pg_run(c, q.p, PGRES_TUPLES_OK, &r, "counting the target's rows");
        free(q.p);
        if (!good)
            break;
        long long n = atoll(PQgetvalue(r, 0, 0));
        PQclear(r);
        if (n != t->rows)
            mismatch(&bad, &nbad, t->name, false, NULL, t->rows, n);
        if (!t->has_b_id)
            continue;

        /* per business: both sides sorted by the bytes of b_id (SQLite's BINARY, "C") */
        q = (struct buf){0};
        puts_(&q, "SELECT CAST(b_id AS TEXT), count(*) FROM ");
        ident(&q, t->name);
        puts_(&q, " GROUP BY 1 ORDER BY 1");
        sqlite3_stmt *st;
        if (sqlite3_prepare_v2(c->src, q.p, -1, &st, NULL) != SQLITE_OK) {
            free(q.p);
            good = fail(c, "counting %s per business in the source failed: %s", t->name, sqlite3_errmsg(c->src));
            break;
        }
        free(q.p);
        q = (struct buf){0};
        puts_(&q, "SELECT b_id::text, count(*) FROM ");
        ident(&q, t->name);
        puts_(&q, " GROUP BY 1 ORDER BY b_id::text COLLATE \"C\" NULLS FIRST");
        good = pg_run(c, q.p, PGRES_TUPLES_OK, &r, "counting the target's rows per business");
        free(q.p);
        if (!good) {
            sqlite3_finalize(st);
            break;
        }
        int j = 0, rc = sqlite3_step(st);
        t->tenants = 0;
        while (rc == SQLITE_ROW || j < PQntuples(r)) {
            const char *sk = rc == SQLITE_ROW ? (const char *)sqlite3_column_text(st, 0) : NULL;
            const char *tk = j < PQntuples(r) && !PQgetisnull(r, j, 0) ? PQgetvalue(r, j, 0) : NULL;
            int cmp = rc != SQLITE_ROW ? 1 : j >= PQntuples(r) ? -1 : key_cmp(sk, tk);
            long long sn = cmp <= 0 ? sqlite3_column_int64(st, 1) : 0;
            long long tn = cmp >= 0 ? atoll(PQgetvalue(r, j, 1)) : 0;
            if (sn != tn)
                mismatch(&bad, &nbad, t->name, true, cmp <= 0 ? sk : tk, sn, tn);
            t->tenants++;
            if (cmp <= 0)
                rc = sqlite3_step(st);
            if (cmp >= 0)
                j++;
        }
        PQclear(r);
        sqlite3_finalize(st);
        if (rc != SQLITE_DONE)
            good = fail(c, "counting %s per business in the source failed: %s", t->name, sqlite3_errmsg(c->src));
    }
    if (good && nbad) {
        good = fail(c, "the copy does not match the source (%d difference%s)%s%s", nbad, nbad == 1 ? "" : "s",
                    bad.p, nbad > MISMATCHES_SHOWN ? "\n  ..." : "");
    }
    free(bad.p);
    return good;
}

/* ---------------------------------------------------------------- the command */

static bool run(struct copy *c, const char *from, const char *to, bool replace, long long *rows)
{
    double t0 = mono_s();
    if (!src_open(c, from) || !src_tables(c))
        return false;
    /* the target's schema, as `serve` would migrate it (committed on its own) */
    char err[512];
    struct store *s = store_open(to, NULL, err, sizeof err);
    if (!s)
        return fail(c, "the target %s: %s", c->shown, err);
    store_close(s);
    if (!pg_connect(c, to) || !match_target(c) || !target_empty(c, replace) || !order_tables(c))
        return false;
    for (int i = 0; i < c->nt; i++)
        if (!src_count(c, &c->t[i]))
            return false;
    for (int i = 0; i < c->nt; i++)
        if (!copy_table(c, &c->t[i]) || !reset_sequences(c, &c->t[i]))
            return false;
    if (!fill_id_registry(c) || !verify(c))
        return false;
    if (!pg_run(c, "COMMIT", PGRES_COMMAND_OK, NULL, "committing the copy"))
        return false;
    c->in_tx = false;
    /* Statistics for the tables just filled, so the servers' first plans use the id indexes
     * (until autovacuum analyzes them, plans made for empty tables scan a business's rows:
     * docs/scaling-figures.md). The copy is committed: a failure here only says so. */
    PGresult *an = PQexec(c->pg, "ANALYZE");
    if (PQresultStatus(an) != PGRES_COMMAND_OK)
        fprintf(stderr, "copy: ANALYZE failed (the copy is committed; autovacuum will analyze later): %s",
                PQresultErrorMessage(an));
    PQclear(an);
    *rows = 0;
    printf("%-20s %12s %12s\n", "table", "rows", "businesses");
    for (int i = 0; i < c->nt; i++) {
        char ten[24] = "-";
        if (c->t[i].has_b_id)
            snprintf(ten, sizeof ten, "%lld", c->t[i].tenants);
        printf("%-20s %12lld %12s\n", c->t[i].name, c->t[i].rows, ten);
        *rows += c->t[i].rows;
    }
    printf("copied %s to %s: %d tables, %lld rows in %.2f s; rows per table and per business verified; "
           "committed\n",
           from, c->shown, c->nt, *rows, mono_s() - t0);
    return true;
}

int cmd_copy(int argc, char **argv)
{
    const char *from = NULL, *to = NULL;
    bool replace = false;
    static const struct option opts[] = {{"from", required_argument, 0, 'f'},
                                         {"to", required_argument, 0, 't'},
                                         {"replace", no_argument, 0, 'r'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    optind = 1;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'f': from = optarg; break;
        case 't': to = optarg; break;
        case 'r': replace = true; break;
        case 'h': fputs(USAGE, stdout); return 0;
        default: fputs(USAGE, stderr); return 2;
        }
    }
    if (!from || !*from || !to || !*to || optind != argc) {
        fputs(USAGE, stderr);
        return 2;
    }
    char err[1024];
    struct store_url fu, tu;
    if (!store_url_parse(from, &fu, err, sizeof err)) {
        fprintf(stderr, "hipusers copy: --from: %s\n", err);
        return 2;
    }
    if (!store_url_parse(to, &tu, err, sizeof err)) {
        fprintf(stderr, "hipusers copy: --to: %s\n", err);
        return 2;
    }
    if (fu.kind != STORE_SQLITE || tu.kind != STORE_POSTGRES) {
        fprintf(stderr, "hipusers copy: copies a SQLite database (--from FILE) into a PostgreSQL one "
                        "(--to postgresql://...)\n");
        return 2;
    }
    struct copy c = {.tty = isatty(STDERR_FILENO)};
    store_url_redact(to, c.shown, sizeof c.shown);
    long long rows = 0;
    bool ok = run(&c, fu.path, to, replace, &rows);
    if (!ok) {
        fprintf(stderr, "hipusers copy: %s\n", c.err);
        if (c.in_tx) {
            PQclear(PQexec(c.pg, "ROLLBACK"));
            fprintf(stderr, "hipusers copy: nothing was copied: the target's transaction was rolled back\n");
        }
    }
    if (c.pg)
        PQfinish(c.pg);
    if (c.src) {
        sqlite3_exec(c.src, "ROLLBACK", NULL, NULL, NULL);
        sqlite3_close(c.src);
    }
    for (int i = 0; i < c.nt; i++)
        free(c.t[i].cols);
    free(c.t);
    for (int i = 0; i < c.nnames; i++)
        free(c.names[i]);
    free(c.names);
    return ok ? 0 : 1;
}
