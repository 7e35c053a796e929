/* hipusers import and export.
 *
 * Import reads JSON Lines (one create body per line) or CSV (a header row of field names,
 * RFC 4180 quoting by libcsv), decodes every record with the API's own decoder and rules
 * (model_decode, resource_resolve_links), and writes batches of records in one unit of work
 * each, every record inside its own savepoint (store_try): a record the store refuses (a
 * unique value taken, a link to nothing) is undone alone and reported, the rest of its batch
 * commits. A line with "id" (an export) keeps that Eka id and its times; a line without one
 * is matched by partner_id (an upsert keeps the record's Eka id) or creates a record.
 *
 * Export writes every live record of a tenant, with its Eka id, times and links (Eka ids),
 * to standard output, in creation order, as JSON Lines or CSV that import takes back. */
#include "cli/bulk.h"

#include <csv.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api/api.h"
#include "model/ids.h"
#include "model/tabular.h"
#include "store/store.h"
#include "util/utc.h"

#define BATCH_DEFAULT 5000
#define BATCH_MAX 10000
#define EXPORT_BATCH 256
#define STORE_TRIES 6

enum format { FMT_NONE, FMT_JSONL, FMT_CSV };

static enum format format_of(const char *s)
{
    if (!s)
        return FMT_NONE;
    if (!strcmp(s, "jsonl") || !strcmp(s, "ndjson") || !strcmp(s, "json"))
        return FMT_JSONL;
    if (!strcmp(s, "csv"))
        return FMT_CSV;
    return FMT_NONE;
}

static double mono_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static struct store *open_store(const char *db)
{
    char err[512], shown[512];
    struct store *s = store_open(db, NULL, err, sizeof err);
    if (!s) {
        store_url_redact(db, shown, sizeof shown);
        fprintf(stderr, "hipusers: %s (%s)\n", err, shown);
    }
    return s;
}

static const struct resource *kind_of(const char *kind)
{
    return kind ? resource_by_path(kind, strlen(kind)) : NULL;
}

static bool tenant_ok(const char *b_id) { return b_id && *b_id && strlen(b_id) <= CLAIM_MAX; }

/* ---------------------------------------------------------------- progress */

struct progress {
    bool tty;
    double interval; /* seconds between redraws (bar) or lines */
    double start, last;
    long long total; /* input bytes, 0 when unknown (a pipe) */
    bool drawn;
};

static void progress_show(struct progress *p, long long bytes, long long records, bool final)
{
    double now = mono_s();
    if (!final && now - p->last < p->interval)
        return;
    p->last = now;
    double elapsed = now - p->start;
    double rate = elapsed > 0 ? (double)records / elapsed : 0;
    double frac = p->total > 0 ? (double)bytes / (double)p->total : 0;
    if (frac > 1)
        frac = 1;
    char eta[32] = "";
    if (p->total > 0 && bytes > 0) {
        long left = final ? 0 : (long)(elapsed * (double)(p->total - bytes) / (double)bytes + 0.5);
        snprintf(eta, sizeof eta, "%ld:%02ld", left / 60, left % 60);
    }
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30 + 0.5);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '-';
        bar[30] = '\0';
        if (p->total > 0)
            fprintf(stderr, "\r[%s] %3d%%  %lld records  %.0f records/s  ETA %s\x1b[K", bar, (int)(frac * 100),
                    records, rate, eta);
        else
            fprintf(stderr, "\r%lld records  %.0f records/s\x1b[K", records, rate);
        if (final)
            fputc('\n', stderr);
        p->drawn = true;
    } else if (!final) {
        if (p->total > 0)
            fprintf(stderr, "import: %d%% of the file, %lld records, %.0f records/s, ETA %s\n", (int)(frac * 100),
                    records, rate, eta);
        else
            fprintf(stderr, "import: %lld records, %.0f records/s\n", records, rate);
    }
    fflush(stderr);
}

/* ---------------------------------------------------------------- import */

struct item {
    long line;
    struct fval vals[MAX_FIELDS];
    const char *id, *created_at, *updated_at, *partner_id;
    struct herr e;
    bool bad;      /* refused before the store: syntax or a field rule */
    bool refused;  /* refused by the store in this run of the unit */
    bool updated;  /* an existing record was overwritten */
    size_t pending;
    const char **ids[MAX_FIELDS];
    char out_id[ID_MAX];
};

struct importer {
    struct store *s;
    const struct resource *r;
    const char *tenant, *path, *report_path, *today;
    enum format fmt;
    FILE *in, *report;
    size_t batch;     /* records per unit of work */
    size_t batch_cap; /* room in items */
    /* the batch being read, and its memory */
    struct item *items;
    size_t n;
    struct arena a;
    struct arena keep; /* what lives as long as the import: the CSV header, today */
    /* counts */
    long lineno;
    long long bytes, records, created, updated, rejected, pending;
    struct progress prog;
    bool fatal;
    bool bad_file; /* refused as a whole (a header that is not a resource's columns): exit 2 */
    /* CSV */
    struct csv_parser csv;
    bool csv_in_record, have_header;
    long record_line;
    char **cells;
    size_t *lens, ncells, cells_cap;
    const char **header;
    size_t nheader;
};

static struct item *next_item(struct importer *im, long line)
{
    if (im->n == im->batch_cap) { /* one CSV line can end several records (bare CRs) */
        struct item *more = realloc(im->items, 2 * im->batch_cap * sizeof *more);
        if (!more) {
            fprintf(stderr, "hipusers import: out of memory\n");
            abort();
        }
        im->items = more;
        im->batch_cap *= 2;
    }
    struct item *it = &im->items[im->n++];
    memset(it, 0, sizeof *it);
    it->line = line;
    return it;
}

static void reject(struct importer *im, long line, const char *message)
{
    struct item *it = next_item(im, line);
    it->bad = true;
    herr_set(&it->e, 400, arena_strdup(&im->a, message));
}

/* Stored times as the export writes them: "2024-05-01T12:34:56.789Z", a real UTC time. */
static bool time_ok(const char *s)
{
    int y, mo, d, h, mi, sec, ms, len = 0;
    if (strlen(s) != 24 || sscanf(s, "%4d-%2d-%2dT%2d:%2d:%2d.%3dZ%n", &y, &mo, &d, &h, &mi, &sec, &ms, &len) != 7 ||
        len != 24 || y < 1970)
        return false;
    struct tm tm = {.tm_year = y - 1900, .tm_mon = mo - 1, .tm_mday = d, .tm_hour = h, .tm_min = mi, .tm_sec = sec};
    time_t t = timegm(&tm);
    char back[32];
    store_format_time((int64_t)t * 1000 + ms, back);
    return strcmp(back, s) == 0;
}

/* The members only an import takes: checked and taken out of the body before the API's
 * decoder sees it (which would call them unknown fields); complaints go to meta. */
static const char *take_meta(struct importer *im, struct herr *meta, json_t *body, const char *name)
{
    json_t *v = json_object_get(body, name);
    if (!v || json_is_null(v)) {
        json_object_del(body, name);
        return NULL;
    }
    const char *s = json_is_string(v) ? json_string_value(v) : NULL;
    const char *why = NULL;
    if (!strcmp(name, "id")) {
        if (!s || !id_has_shape(im->r->kind, s, strlen(s)))
            why = arena_printf(&im->a, "Must be the Eka id of a %s (%s).", im->r->label, id_shape_text(im->r->kind));
    } else if (!s || !time_ok(s)) {
        why = "Must be a UTC time as exported, e.g. 2024-05-01T12:34:56.789Z.";
    }
    const char *out = why ? NULL : arena_strdup(&im->a, s);
    if (why)
        herr_field(meta, &im->a, name, why);
    json_object_del(body, name);
    return out;
}

static void json_decref_void(void *p) { json_decref(p); }

/* A decoded line: the API's decoder and rules, plus the import's own members. */
static void decode_body(struct importer *im, long line, json_t *body)
{
    struct item *it = next_item(im, line);
    arena_defer(&im->a, json_decref_void, body);
    if (!json_is_object(body)) {
        it->bad = true;
        herr_set(&it->e, 400, "A line must be a JSON object.");
        return;
    }
    struct herr meta = {0}, e = {0};
    it->id = take_meta(im, &meta, body, "id");
    it->created_at = take_meta(im, &meta, body, "created_at");
    it->updated_at = take_meta(im, &meta, body, "updated_at");
    if (it->created_at && it->updated_at && strcmp(it->updated_at, it->created_at) < 0)
        herr_field(&meta, &im->a, "updated_at", "May not be before created_at.");
    bool decoded = model_decode(im->r, body, true, im->today, &im->a, it->vals, &e);
    if (!decoded || meta.status) {
        it->bad = true;
        it->e = decoded ? meta : e; /* the decoder's verdict first (its message), then the import's members */
        if (!decoded && meta.fields) {
            const char *k;
            json_t *list, *why;
            size_t i;
            json_object_foreach(meta.fields, k, list) json_array_foreach(list, i, why)
                herr_field(&it->e, &im->a, k, json_string_value(why));
        }
        return;
    }
    int p = field_index(im->r, "partner_id");
    if (p >= 0 && it->vals[p].state == V_SET)
        it->partner_id = it->vals[p].s;
}

static void jsonl_line(struct importer *im, char *line, size_t len)
{
    while (len && (line[len - 1] == '\n' || line[len - 1] == '\r'))
        len--;
    size_t k = 0;
    while (k < len && (line[k] == ' ' || line[k] == '\t'))
        k++;
    if (k == len)
        return; /* a blank line */
    json_error_t jerr;
    json_t *body = json_loadb(line, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!body) {
        reject(im, im->lineno, arena_printf(&im->a, "Invalid JSON at column %d: %s", jerr.column, jerr.text));
        return;
    }
    decode_body(im, im->lineno, body);
}

/* ---- CSV: libcsv calls back per cell and per row ---- */

static int no_space(unsigned char c)
{
    (void)c;
    return 0; /* RFC 4180: spaces are part of a field */
}

static void csv_cells_clear(struct importer *im)
{
    for (size_t i = 0; i < im->ncells; i++)
        free(im->cells[i]);
    im->ncells = 0;
}

static void csv_cell(void *s, size_t len, void *ctx)
{
    struct importer *im = ctx;
    if (im->ncells == im->cells_cap) {
        size_t cap = im->cells_cap ? 2 * im->cells_cap : 32;
        char **cells = realloc(im->cells, cap * sizeof *cells);
        size_t *lens = cells ? realloc(im->lens, cap * sizeof *lens) : NULL;
        if (cells)
            im->cells = cells;
        if (!lens) {
            im->fatal = true;
            return;
        }
        im->lens = lens;
        im->cells_cap = cap;
    }
    char *copy = NULL;
    if (s) { /* NULL: an empty unquoted cell, an absent value */
        copy = malloc(len + 1);
        if (!copy) {
            im->fatal = true;
            return;
        }
        memcpy(copy, s, len);
        copy[len] = '\0';
    }
    im->cells[im->ncells] = copy;
    im->lens[im->ncells++] = len;
}

static bool csv_header(struct importer *im)
{
    im->header = arena_calloc(&im->keep, im->ncells ? im->ncells : 1, sizeof *im->header);
    for (size_t i = 0; i < im->ncells; i++) {
        const char *name = im->cells[i] ? im->cells[i] : "";
        if (i == 0 && !strncmp(name, "\xEF\xBB\xBF", 3))
            name += 3; /* a byte order mark, as spreadsheets write */
        if (!tabular_known(im->r, name)) {
            fprintf(stderr, "hipusers import: line %ld: '%s' is not a column of %s (columns: the fields, id, "
                            "created_at, updated_at)\n", im->record_line, name, im->r->path);
            return false;
        }
        for (size_t k = 0; k < i; k++)
            if (!strcmp(im->header[k], name)) {
                fprintf(stderr, "hipusers import: line %ld: column '%s' appears twice\n", im->record_line, name);
                return false;
            }
        im->header[i] = arena_strdup(&im->keep, name);
    }
    im->nheader = im->ncells;
    return true;
}

static void csv_row(int term, void *ctx)
{
    (void)term;
    struct importer *im = ctx;
    im->csv_in_record = false;
    if (im->fatal) {
        csv_cells_clear(im);
        return;
    }
    if (!im->have_header) {
        im->have_header = true;
        if (!csv_header(im))
            im->fatal = im->bad_file = true;
    } else if (im->ncells != im->nheader) {
        reject(im, im->record_line,
               arena_printf(&im->a, "The line has %zu cells; the header has %zu.", im->ncells, im->nheader));
    } else {
        size_t bad = 0;
        json_t *body = tabular_to_json(im->r, im->header, (const char *const *)im->cells, im->lens, im->ncells, &bad);
        if (body) {
            decode_body(im, im->record_line, body);
        } else {
            struct item *it = next_item(im, im->record_line);
            it->bad = true;
            herr_field(&it->e, &im->a, im->header[bad], "Must be valid UTF-8 text.");
        }
    }
    csv_cells_clear(im);
}

static void csv_restart(struct importer *im)
{
    csv_fini(&im->csv, NULL, NULL, NULL);
    csv_cells_clear(im);
    im->csv_in_record = false;
}

static void csv_line(struct importer *im, const char *line, size_t len)
{
    if (!im->csv_in_record) {
        size_t k = 0;
        while (k < len && (line[k] == '\n' || line[k] == '\r'))
            k++;
        if (k == len)
            return; /* a blank line between records */
        im->csv_in_record = true;
        im->record_line = im->lineno;
    }
    if (csv_parse(&im->csv, line, len, csv_cell, csv_row, im) != len) {
        long at = im->record_line;
        csv_restart(im);
        reject(im, at, "CSV syntax: a quote inside a cell that is not quoted, or text after a closing quote.");
    }
}

/* ---- batches: one unit of work, a savepoint per record ---- */

static int side_of(const struct resource *r, enum rel rel) { return relation_get(rel)->kind[0] == r->kind ? 0 : 1; }

struct record_ctx {
    struct importer *im;
    struct item *it;
};

static enum store_status record_fn(struct store_tx *tx, void *ctx)
{
    struct record_ctx *rc = ctx;
    struct importer *im = rc->im;
    struct item *it = rc->it;
    const struct resource *r = im->r;
    struct record rec;
    bool exists = false;
    const char *id = it->id;
    enum store_status st = STORE_NOT_FOUND;
    if (it->id) /* the Eka id decides: an export's line is that record */
        st = store_find(tx, r, im->tenant, it->id, &rec);
    else if (it->partner_id)
        st = store_find(tx, r, im->tenant, it->partner_id, &rec);
    if (st == STORE_OK && (!it->id || !strcmp(rec.id, it->id))) {
        exists = true;
        id = rec.id;
    } else if (st != STORE_OK && st != STORE_NOT_FOUND) {
        return st;
    }
    st = resource_resolve_links(tx, r, im->tenant, it->vals, it->ids, &im->a, &it->e, &it->pending);
    if (st != STORE_OK)
        return st;
    st = store_put(tx, r, im->tenant, exists, id, it->created_at, it->updated_at, it->vals, it->out_id,
                   sizeof it->out_id);
    if (st != STORE_OK)
        return st;
    /* The line is the whole record: each of its link lists replaces that side's links. */
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type != FT_LINKS || f->by_partner)
            continue;
        int tw = field_index(r, f->twin);
        size_t k = it->vals[i].state == V_SET ? i : (tw >= 0 && it->vals[tw].state == V_SET) ? (size_t)tw : SIZE_MAX;
        size_t n = k == SIZE_MAX ? 0 : it->vals[k].n;
        if (!exists && !it->id && n == 0)
            continue; /* a new record with a new id has no links to clear */
        st = store_link(tx, f->rel, side_of(r, f->rel), im->tenant, it->out_id, k == SIZE_MAX ? NULL : it->ids[k], n, true);
        if (st != STORE_OK)
            return st;
    }
    it->updated = exists;
    return STORE_OK;
}

static enum store_status batch_fn(struct store_tx *tx, void *ctx)
{
    struct importer *im = ctx;
    for (size_t i = 0; i < im->n; i++) {
        struct item *it = &im->items[i];
        if (it->bad)
            continue;
        it->e = (struct herr){0}; /* a unit may run again: start from the inputs */
        it->refused = it->updated = false;
        it->pending = 0;
        struct record_ctx rc = {im, it};
        const char *conflict = NULL;
        enum store_status st = store_try(tx, record_fn, &rc, &conflict);
        if (st == STORE_OK)
            continue;
        if (st == STORE_CONFLICT) {
            it->e = (struct herr){0};
            if (conflict && !strcmp(conflict, "id"))
                herr_field(&it->e, &im->a, "id", "Already the Eka id of another record (another business's, or a deleted one).");
            else
                herr_field(&it->e, &im->a, conflict ? conflict : "record", "Already in use.");
        } else if (st == STORE_NOT_FOUND && !it->e.status) {
            herr_set(&it->e, 409, "The record changed during the import; import the line again.");
        } else if (st != STORE_ABORT && st != STORE_NOT_FOUND) {
            return st;
        }
        if (!it->e.status)
            herr_set(&it->e, 400, "Refused.");
        it->refused = true;
    }
    return STORE_OK;
}

static void report_line(struct importer *im, const struct item *it)
{
    if (!im->report) {
        im->report = fopen(im->report_path, "w");
        if (!im->report) {
            fprintf(stderr, "hipusers import: cannot write the report %s: %s\n", im->report_path, strerror(errno));
            im->report_path = NULL;
            return;
        }
    }
    json_t *o = json_pack("{s:I, s:s}", "line", (json_int_t)it->line, "message",
                          it->e.message ? it->e.message : "Refused.");
    if (it->e.fields)
        json_object_set(o, "errors", it->e.fields);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (txt) {
        fprintf(im->report, "%s\n", txt);
        free(txt);
    }
}

static bool flush(struct importer *im)
{
    bool any = false;
    for (size_t i = 0; i < im->n && !any; i++)
        any = !im->items[i].bad;
    if (any) {
        struct store_unit u = {.fn = batch_fn, .ctx = im, .arena = &im->a, .alone = true};
        for (int attempt = 0;; attempt++) {
            if (store_write(im->s, &u) == STORE_OK)
                break;
            bool transient = u.status == STORE_RETRY || u.status == STORE_UNAVAILABLE;
            if (!transient || attempt + 1 == STORE_TRIES) {
                if (u.status == STORE_CONFLICT)
                    fprintf(stderr, "\nhipusers import: %s already in use\n", u.conflict ? u.conflict : "a value");
                else
                    fprintf(stderr, "\nhipusers import: the database failed (%s); lines %ld to %ld were not imported\n",
                            store_status_name(u.status), im->items[0].line, im->items[im->n - 1].line);
                im->fatal = true;
                return false;
            }
            sleep((unsigned)(u.retry_after > 0 ? u.retry_after : 1));
        }
    }
    for (size_t i = 0; i < im->n; i++) {
        struct item *it = &im->items[i];
        im->records++;
        if (it->bad || it->refused) {
            im->rejected++;
            report_line(im, it);
        } else if (it->updated) {
            im->updated++;
            im->pending += (long long)it->pending;
        } else {
            im->created++;
            im->pending += (long long)it->pending;
        }
    }
    arena_release(&im->a);
    arena_init(&im->a);
    im->n = 0;
    return true;
}

static void import_usage(FILE *out)
{
    fprintf(out, "usage: hipusers import --b-id B --kind ekauser|doctor|clinic --file F [--format jsonl|csv]\n"
                 "                       [--report PATH] [--batch N] [--progress-interval SECONDS] [--db DB]\n"
                 "  F: JSON Lines (one create body per line) or CSV (a header row of field names; list\n"
                 "  items separated by ';'), by --format or else by the file name (.csv); '-' reads stdin.\n"
                 "  Rejected lines go to PATH (default F.rejected.jsonl) and the exit status is 1.\n"
                 "  --batch: records per transaction (default 5000); --progress-interval: seconds between\n"
                 "  progress lines (default 5; on a terminal the bar redraws every 0.1 s).\n");
}

static int import_run(struct importer *im)
{
    char *line = NULL;
    size_t cap = 0;
    ssize_t len;
    while (!im->fatal && (len = getline(&line, &cap, im->in)) != -1) {
        im->lineno++;
        im->bytes += len;
        char *p = line;
        if (im->lineno == 1 && len >= 3 && !memcmp(p, "\xEF\xBB\xBF", 3)) { /* a byte order mark */
            p += 3;
            len -= 3;
        }
        if (im->fmt == FMT_CSV)
            csv_line(im, p, (size_t)len);
        else
            jsonl_line(im, p, (size_t)len);
        if (im->n >= im->batch && !flush(im))
            break;
        progress_show(&im->prog, im->bytes, im->records + (long long)im->n, false);
    }
    if (ferror(im->in) && !im->fatal) {
        fprintf(stderr, "hipusers import: reading %s: %s\n", im->path, strerror(errno));
        im->fatal = true;
    }
    if (im->fmt == FMT_CSV && !im->fatal) {
        if (csv_fini(&im->csv, csv_cell, csv_row, im) != 0) /* an unterminated quote */
            reject(im, im->record_line, "CSV syntax: a quoted cell is not closed before the end of the file.");
        if (!im->have_header) {
            fprintf(stderr, "hipusers import: %s has no header row\n", im->path);
            im->fatal = im->bad_file = true;
        }
    }
    if (!im->fatal)
        flush(im);
    free(line);
    return im->fatal ? 1 : 0;
}

int cmd_import(const char *db, int argc, char **argv)
{
    const char *b_id = NULL, *kind = NULL, *file = NULL, *fmt = NULL, *report = NULL;
    long batch = BATCH_DEFAULT;
    double interval = -1;
    static const struct option opts[] = {{"b-id", required_argument, 0, 'b'},
                                         {"kind", required_argument, 0, 'k'},
                                         {"file", required_argument, 0, 'f'},
                                         {"format", required_argument, 0, 'F'},
                                         {"report", required_argument, 0, 'r'},
                                         {"batch", required_argument, 0, 'n'},
                                         {"progress-interval", required_argument, 0, 'p'},
                                         {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},
                                         {0, 0, 0, 0}};
    int ch;
    char *end;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': b_id = optarg; break;
        case 'k': kind = optarg; break;
        case 'f': file = optarg; break;
        case 'F': fmt = optarg; break;
        case 'r': report = optarg; break;
        case 'n':
            batch = strtol(optarg, &end, 10);
            if (*end || batch < 1 || batch > BATCH_MAX)
                batch = -1;
            break;
        case 'p':
            interval = strtod(optarg, &end);
            if (*end || !(interval >= 0.01 && interval <= 3600))
                interval = -2;
            break;
        case 'd': db = optarg; break;
        case 'h': import_usage(stdout); return 0;
        default: import_usage(stderr); return 2;
        }
    }
    const struct resource *r = kind_of(kind);
    enum format f = fmt ? format_of(fmt) : FMT_NONE;
    if (!f && !fmt && file) {
        size_t L = strlen(file);
        f = L > 4 && !strcasecmp(file + L - 4, ".csv") ? FMT_CSV : FMT_JSONL;
    }
    if (!tenant_ok(b_id) || !r || !file || !f || batch < 0 || interval < -1 || optind < argc) {
        import_usage(stderr);
        return 2;
    }
    struct importer im = {.r = r, .tenant = b_id, .path = file, .fmt = f, .batch = (size_t)batch, .batch_cap = (size_t)batch + 8};
    bool from_stdin = !strcmp(file, "-");
    im.in = from_stdin ? stdin : fopen(file, "rb");
    if (!im.in) {
        fprintf(stderr, "hipusers import: cannot read %s: %s\n", file, strerror(errno));
        return 2;
    }
    struct stat sb;
    im.prog.total = !from_stdin && fstat(fileno(im.in), &sb) == 0 && S_ISREG(sb.st_mode) ? (long long)sb.st_size : 0;
    im.prog.tty = isatty(STDERR_FILENO);
    im.prog.interval = interval > 0 ? interval : im.prog.tty ? 0.1 : 5;
    char report_buf[4200];
    if (!report)
        snprintf(report_buf, sizeof report_buf, "%s.rejected.jsonl", from_stdin ? "import" : file);
    im.report_path = report ? report : report_buf;
    im.items = calloc(im.batch_cap, sizeof *im.items);
    if (!im.items || csv_init(&im.csv, CSV_STRICT | CSV_STRICT_FINI | CSV_EMPTY_IS_NULL) != 0) {
        fprintf(stderr, "hipusers import: out of memory\n");
        free(im.items);
        if (!from_stdin)
            fclose(im.in);
        return 1;
    }
    csv_set_space_func(&im.csv, no_space);
    arena_init(&im.a);
    arena_init(&im.keep);
    im.today = utc_today(&im.keep);
    im.s = open_store(db);
    int rc = 1;
    if (im.s) {
        im.prog.start = im.prog.last = mono_s();
        rc = import_run(&im);
        double secs = mono_s() - im.prog.start;
        if (im.prog.tty && im.prog.drawn)
            progress_show(&im.prog, im.bytes, im.records, true);
        printf("imported %s into %s: %lld records in %.2f s (%.0f records/s): %lld created, %lld updated, "
               "%lld rejected\n",
               file, r->path, im.records, secs, secs > 0 ? (double)im.records / secs : 0.0, im.created, im.updated,
               im.rejected);
        if (im.pending)
            printf("%lld links name records not imported yet; they show once those records are imported\n",
                   im.pending);
        if (im.rejected && im.report_path)
            printf("rejected lines and their errors: %s\n", im.report_path);
        if (im.fatal)
            printf("the import stopped at line %ld\n", im.lineno);
        if (im.rejected)
            rc = 1;
        if (im.bad_file)
            rc = 2;
        store_close(im.s);
    }
    if (im.report && fclose(im.report) != 0) {
        fprintf(stderr, "hipusers import: writing the report %s failed\n", im.report_path);
        rc = 1;
    }
    csv_cells_clear(&im);
    free(im.cells);
    free(im.lens);
    csv_free(&im.csv);
    arena_release(&im.a);
    arena_release(&im.keep);
    free(im.items);
    if (!from_stdin)
        fclose(im.in);
    return rc;
}

/* ---------------------------------------------------------------- export */

struct export_unit {
    const struct resource *r;
    const char *tenant;
    int64_t after, next;
    struct record *recs;
    int count;
};

static enum store_status export_fn(struct store_tx *tx, void *ctx)
{
    struct export_unit *u = ctx;
    return store_list(tx, u->r, u->tenant, u->after, EXPORT_BATCH, u->recs, &u->count, &u->next);
}

/* RFC 4180: a cell with a comma, a quote or a line break is quoted (libcsv doubles the
 * quotes); so is the empty list, which an empty unquoted cell (absent) would lose. */
static void csv_put(FILE *out, const char *cell, bool first)
{
    if (!first)
        fputc(',', out);
    if (!cell)
        return;
    size_t len = strlen(cell);
    if (len == 0 || strpbrk(cell, ",\"\r\n"))
        csv_fwrite(out, cell, len);
    else
        fwrite(cell, 1, len, out);
}

static void export_usage(FILE *out)
{
    fprintf(out, "usage: hipusers export --b-id B --kind ekauser|doctor|clinic [--format jsonl|csv] [--db DB]\n"
                 "  Every live record, with its Eka id, times and links, to standard output.\n");
}

int cmd_export(const char *db, int argc, char **argv)
{
    const char *b_id = NULL, *kind = NULL, *fmt = "jsonl";
    static const struct option opts[] = {{"b-id", required_argument, 0, 'b'}, {"kind", required_argument, 0, 'k'},
                                         {"format", required_argument, 0, 'F'}, {"db", required_argument, 0, 'd'},
                                         {"help", no_argument, 0, 'h'},       {0, 0, 0, 0}};
    int ch;
    optind = 0;
    while ((ch = getopt_long(argc, argv, "", opts, NULL)) != -1) {
        switch (ch) {
        case 'b': b_id = optarg; break;
        case 'k': kind = optarg; break;
        case 'F': fmt = optarg; break;
        case 'd': db = optarg; break;
        case 'h': export_usage(stdout); return 0;
        default: export_usage(stderr); return 2;
        }
    }
    const struct resource *r = kind_of(kind);
    enum format f = format_of(fmt);
    if (!tenant_ok(b_id) || !r || !f || optind < argc) {
        export_usage(stderr);
        return 2;
    }
    struct store *s = open_store(db);
    if (!s)
        return 1;
    const char *cols[TABULAR_MAX_COLUMNS];
    size_t ncols = tabular_columns(r, cols);
    if (f == FMT_CSV) {
        for (size_t i = 0; i < ncols; i++)
            csv_put(stdout, cols[i], i == 0);
        fputs("\r\n", stdout);
    }
    struct export_unit eu = {.r = r, .tenant = b_id};
    long long n = 0;
    int rc = 0;
    for (;;) {
        struct arena a;
        arena_init(&a);
        eu.recs = arena_calloc(&a, EXPORT_BATCH, sizeof *eu.recs);
        struct store_unit u = {.fn = export_fn, .ctx = &eu, .arena = &a};
        if (store_read(s, &u) != STORE_OK) {
            fprintf(stderr, "hipusers export: the database failed (%s) after %lld records\n",
                    store_status_name(u.status), n);
            arena_release(&a);
            rc = 1;
            break;
        }
        for (int i = 0; i < eu.count; i++) {
            json_t *o = model_export(r, &eu.recs[i]);
            if (f == FMT_JSONL) {
                char *txt = json_dumps(o, JSON_COMPACT);
                if (txt) {
                    fputs(txt, stdout);
                    fputc('\n', stdout);
                    free(txt);
                } else {
                    rc = 1;
                }
            } else {
                const char *cells[TABULAR_MAX_COLUMNS];
                tabular_cells(r, o, &a, cells, ncols);
                for (size_t c = 0; c < ncols; c++)
                    csv_put(stdout, cells[c], c == 0);
                fputs("\r\n", stdout);
            }
            json_decref(o);
            n++;
        }
        arena_release(&a);
        eu.after = eu.next;
        if (eu.count < EXPORT_BATCH)
            break;
    }
    if (fflush(stdout) != 0 || ferror(stdout)) {
        fprintf(stderr, "hipusers export: writing the output failed: %s\n", strerror(errno));
        rc = 1;
    }
    store_close(s);
    if (rc == 0)
        fprintf(stderr, "exported %lld %s records\n", n, r->path);
    return rc;
}
