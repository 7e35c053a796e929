/* Create, read, patch, delete and list for any resource, driven by its field table:
 * decode and validate (model), then one transaction on the store, then render. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "model/ids.h"

#define LIST_BATCH 64

static const char *today(struct arena *a)
{
    time_t t = time(NULL);
    struct tm tm;
    gmtime_r(&t, &tm);
    return arena_printf(a, "%04d-%02d-%02d", tm.tm_year + 1900, tm.tm_mon + 1, tm.tm_mday);
}

static int side_of(const struct resource *r, enum rel rel) { return relation_get(rel)->kind[0] == r->kind ? 0 : 1; }

/* Every referenced id must exist, undeleted, in the tenant; all are checked before any write. */
static bool resolve_links(struct store_conn *c, const struct resource *r, const char *tenant, struct fval *vals,
                          struct arena *a, struct herr *e)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type != FT_LINKS || vals[i].state != V_SET || vals[i].n == 0)
            continue;
        const char **ids = arena_calloc(a, vals[i].n, sizeof *ids);
        struct herr one = {0};
        if (!c->ops->resolve(c, resource_get(f->target), tenant, f->name, f->by_partner, vals[i].items, vals[i].n, a,
                             ids, &one)) {
            if (one.status != 400) {
                *e = one;
                return false;
            }
            /* gather every unknown id of every field into one answer */
            const char *key;
            json_t *list;
            json_object_foreach(one.fields, key, list) {
                size_t k;
                json_t *why;
                json_array_foreach(list, k, why) herr_field(e, a, key, json_string_value(why));
            }
            continue;
        }
        vals[i].items = ids;
    }
    return e->status == 0;
}

static bool write_links(struct store_conn *c, const struct resource *r, const char *id, const struct fval *vals,
                        bool replace, struct herr *e)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type != FT_LINKS || vals[i].state != V_SET)
            continue;
        if (!c->ops->link(c, f->rel, side_of(r, f->rel), id, vals[i].items, vals[i].n, replace, e))
            return false;
    }
    return true;
}

void resource_not_found(struct request *rq, const struct resource *r, struct herr *e)
{
    herr_set(e, 404, arena_printf(&rq->arena, "%s not found", r->label));
    if (r->kind == R_EKAUSER) {
        e->extra = json_pack("{s:{s:s, s:s}}", "error", "code", "NOT_FOUND", "message",
                             "User not found. Please check the provided ID.");
        arena_defer(&rq->arena, (void (*)(void *))json_decref, e->extra);
    }
}

static void respond_ekaid(struct request *rq, int status, const char *id)
{
    respond_json(rq, status, json_pack("{s:s, s:s}", "status", "success", "ekaid", id));
}

bool resource_create(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                     struct herr *e)
{
    json_t *body = request_json(rq, e);
    if (!body)
        return false;
    struct fval vals[MAX_FIELDS];
    if (!model_decode(r, body, true, today(&rq->arena), &rq->arena, vals, e))
        return false;
    struct store_conn *c = app_store(app, e);
    if (!c || !c->ops->begin(c, true, e))
        return false;
    char id[ID_MAX];
    if (resolve_links(c, r, tenant, vals, &rq->arena, e) &&
        c->ops->insert(c, r, tenant, vals, &rq->arena, id, sizeof id, e) && write_links(c, r, id, vals, true, e) &&
        c->ops->commit(c, e)) {
        respond_ekaid(rq, 201, id);
        return true;
    }
    c->ops->rollback(c);
    return false;
}

/* Finds the record named in the path, inside the caller's transaction. */
static bool load(struct store_conn *c, struct request *rq, const struct resource *r, const char *tenant,
                 const char *key, struct record *rec, struct herr *e)
{
    enum find_result fr = c->ops->find(c, r, tenant, key, &rq->arena, rec, e);
    if (fr == FIND_MISSING)
        resource_not_found(rq, r, e);
    if (fr == FIND_OK)
        rq->log_id = rec->id;
    return fr == FIND_OK;
}

bool resource_get_one(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, const char *wrap, struct herr *e)
{
    struct store_conn *c = app_store(app, e);
    struct record rec;
    if (!c || !c->ops->begin(c, false, e))
        return false;
    bool ok = load(c, rq, r, tenant, key, &rec, e);
    c->ops->rollback(c);
    if (!ok)
        return false;
    respond_json(rq, 200, json_pack("{s:s, s:o}", "status", "success", wrap ? wrap : r->json_one,
                                    model_render(r, &rec)));
    return true;
}

bool resource_patch(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                    const char *key, struct herr *e)
{
    json_t *body = request_json(rq, e);
    if (!body)
        return false;
    struct fval vals[MAX_FIELDS];
    if (!model_decode(r, body, false, today(&rq->arena), &rq->arena, vals, e))
        return false;
    struct store_conn *c = app_store(app, e);
    struct record rec;
    if (!c || !c->ops->begin(c, true, e))
        return false;
    bool ok = load(c, rq, r, tenant, key, &rec, e);
    if (ok && !model_has_identity(r, &rec, vals)) {
        herr_set(e, 400, "At least one of mobile, email or auth_userid must remain set.");
        ok = false;
    }
    ok = ok && resolve_links(c, r, tenant, vals, &rq->arena, e) &&
         c->ops->update(c, r, tenant, rec.id, vals, &rq->arena, e) &&
         write_links(c, r, rec.id, vals, r->link_mode == LINK_REPLACE, e) && c->ops->commit(c, e);
    if (!ok) {
        c->ops->rollback(c);
        return false;
    }
    respond_ekaid(rq, 200, rec.id);
    return true;
}

bool resource_delete(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                     const char *key, struct herr *e)
{
    struct store_conn *c = app_store(app, e);
    struct record rec;
    if (!c || !c->ops->begin(c, true, e))
        return false;
    if (!load(c, rq, r, tenant, key, &rec, e) || !c->ops->soft_delete(c, r, tenant, rec.id, e) ||
        !c->ops->commit(c, e)) {
        c->ops->rollback(c);
        return false;
    }
    respond_json(rq, 200, json_pack("{s:s, s:s}", "status", "success", "message",
                                    arena_printf(&rq->arena, "%s Deleted Successfully", r->label)));
    return true;
}

/* A list is a stream of batches: memory is bounded by one batch, not by the tenant's size. */
struct list_stream {
    struct app *app;
    const struct resource *r;
    char tenant[CLAIM_MAX + 1];
    const char *wrap;
    int64_t cursor;
    int phase; /* 0 head, 1 rows, 2 tail, 3 done */
    bool first, failed;
    char *buf;
    size_t len, off, cap;
};

static bool ls_append(struct list_stream *ls, const char *s, size_t n)
{
    if (ls->len + n > ls->cap) {
        size_t cap = ls->cap ? ls->cap : 16384;
        while (cap < ls->len + n)
            cap *= 2;
        char *bigger = realloc(ls->buf, cap);
        if (!bigger)
            return false;
        ls->buf = bigger;
        ls->cap = cap;
    }
    memcpy(ls->buf + ls->len, s, n);
    ls->len += n;
    return true;
}

static bool ls_row(void *ctx, const struct record *rec)
{
    struct list_stream *ls = ctx;
    json_t *o = model_render(ls->r, rec);
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (!txt)
        return false;
    bool ok = (ls->first || ls_append(ls, ",", 1)) && ls_append(ls, txt, strlen(txt));
    ls->first = false;
    free(txt);
    ls->failed = ls->failed || !ok;
    return ok;
}

static bool ls_fill(struct list_stream *ls)
{
    ls->len = ls->off = 0;
    if (ls->phase == 0) {
        char head[64];
        int n = snprintf(head, sizeof head, "{\"status\":\"success\",\"%s\":[", ls->wrap);
        ls->phase = 1;
        return ls_append(ls, head, (size_t)n);
    }
    if (ls->phase == 1) {
        struct herr e = {0};
        struct arena a;
        arena_init(&a);
        struct store_conn *c = app_store(ls->app, &e);
        int count = 0;
        bool ok = c && c->ops->begin(c, false, &e) &&
                  c->ops->list(c, ls->r, ls->tenant, &ls->cursor, LIST_BATCH, &a, ls_row, ls, &count, &e);
        if (c)
            c->ops->rollback(c);
        arena_release(&a);
        if (!ok || ls->failed)
            return false;
        if (count < LIST_BATCH)
            ls->phase = 2;
        return true;
    }
    if (ls->phase == 2) {
        ls->phase = 3;
        return ls_append(ls, "]}", 2);
    }
    return true;
}

static long ls_read(void *ctx, char *out, size_t cap)
{
    struct list_stream *ls = ctx;
    while (ls->off == ls->len) {
        if (ls->phase == 3)
            return 0;
        if (!ls_fill(ls))
            return -1;
    }
    size_t n = ls->len - ls->off;
    if (n > cap)
        n = cap;
    memcpy(out, ls->buf + ls->off, n);
    ls->off += n;
    return (long)n;
}

static void ls_free(void *ctx)
{
    struct list_stream *ls = ctx;
    free(ls->buf);
    free(ls);
}

bool resource_list(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                   const char *wrap, struct herr *e)
{
    struct list_stream *ls = calloc(1, sizeof *ls);
    if (!ls) {
        herr_set(e, 503, "The server is out of memory; retry shortly.");
        return false;
    }
    ls->app = app;
    ls->r = r;
    snprintf(ls->tenant, sizeof ls->tenant, "%s", tenant);
    ls->wrap = wrap ? wrap : r->json_many;
    ls->first = true;
    rq->resp.status = 200;
    rq->resp.stream = ls_read;
    rq->resp.stream_ctx = ls;
    rq->resp.stream_free = ls_free;
    return true;
}
