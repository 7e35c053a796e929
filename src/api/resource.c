/* Create, read, patch, delete and list for any resource, driven by its field table:
 * decode and validate (model), then one unit of work on the store, then render. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "api/idempotency.h"
#include "api/list_query.h"
#include "api/rcache.h"
#include "auth/cursor.h"
#include "http/etag.h"
#include "model/ids.h"
#include "util/utc.h"

#define LIST_BATCH 64

static int side_of(const struct resource *r, enum rel rel) { return relation_get(rel)->kind[0] == r->kind ? 0 : 1; }

/* Every referenced id must exist, live, in the tenant; all are checked before any write.
 * ids[i] gets the Eka ids of link field i (the inputs stay as given: a unit may run again).
 * Unknown ones are gathered into e, every field at fault, and the unit stops. */
static enum store_status resolve_links(struct store_tx *tx, const struct resource *r, const char *tenant,
                                       const struct fval *vals, const char **ids[], struct arena *a, struct herr *e)
{
    return resource_resolve_links(tx, r, tenant, vals, ids, a, e, NULL);
}

enum store_status resource_resolve_links(struct store_tx *tx, const struct resource *r, const char *tenant,
                                         const struct fval *vals, const char **ids[], struct arena *a,
                                         struct herr *e, size_t *pending)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        ids[i] = NULL;
        if (f->type != FT_LINKS || vals[i].state != V_SET || vals[i].n == 0)
            continue;
        const struct resource *target = resource_get(f->target);
        ids[i] = arena_calloc(a, vals[i].n, sizeof *ids[i]);
        enum store_status st = store_resolve(tx, target, tenant, f->by_partner, vals[i].items, vals[i].n, ids[i]);
        if (st != STORE_OK)
            return st;
        for (size_t k = 0; k < vals[i].n; k++) {
            const char *key = vals[i].items[k];
            if (!ids[i][k] && pending && f->rel == REL_DOCTOR_CLINIC && !f->by_partner &&
                id_has_shape(f->target, key, strlen(key))) {
                ids[i][k] = key; /* an import: shown once that record is imported */
                (*pending)++;
            } else if (!ids[i][k]) {
                herr_field(e, a, f->name, arena_printf(a, "%s %s does not exist.", target->label, key));
            }
        }
    }
    return e->status ? STORE_ABORT : STORE_OK;
}

static enum store_status write_links(struct store_tx *tx, const struct resource *r, const char *tenant, const char *id,
                                     const struct fval *vals, const char **ids[], bool replace)
{
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type != FT_LINKS || vals[i].state != V_SET)
            continue;
        enum store_status st = store_link(tx, f->rel, side_of(r, f->rel), tenant, id, ids[i], vals[i].n, replace);
        if (st != STORE_OK)
            return st;
    }
    return STORE_OK;
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

/* {"status":"success","ekaid":...}, the answer of a write, written straight into the arena:
 * the bytes jansson's compact dump of the same object gives, without its tree. */
static char *ekaid_text(struct arena *a, const char *id)
{
    struct jbuf b;
    jbuf_init(&b, a, NULL, 0);
    bool first = true;
    jbuf_put(&b, "{", 1);
    jbuf_member_str(&b, &first, "status", "success");
    jbuf_member_str(&b, &first, "ekaid", id);
    jbuf_put(&b, "}", 1);
    return jbuf_finish(&b);
}

static void respond_ekaid(struct request *rq, int status, const char *id)
{
    char *body = ekaid_text(&rq->arena, id); /* already in the arena: not copied again */
    respond_bytes(rq, status, body, strlen(body));
}

/* A record on the other side of a link a write sets, whose own view shows that link (a
 * clinic's doctors): its representation changes with the link, so it gets an entry too. */
struct neighbour {
    const struct resource *r;
    struct record before;
};
/* One request's unit of work on one record: what it needs and what it found. */
struct record_unit {
    struct request *rq;
    const struct resource *r;
    const char *tenant;
    const char *key;         /* the id in the path */
    const struct fval *vals; /* create, patch */
    const char *if_match;    /* patch, delete: the If-Match field (its syntax checked), or NULL */
    struct herr *e;          /* the unit's own verdicts (404, 400, 412); reset at each run */
    const char **ids[MAX_FIELDS];
    struct record rec;   /* as found (before a write) */
    struct record after; /* after a write, as GET will show it */
    struct neighbour *nb;
    size_t nnb;
    char id[ID_MAX];
    const struct idem *idem; /* create with an Idempotency-Key: the answer is stored in the unit */
    const char *answer;      /* that answer */
    struct rcache *rc;       /* the kept answers: pinned by a write before its commit */
    struct store *store;
    bool pinned;
    char pin_id[ID_MAX];   /* "": the kind only (a create) */
    struct rc_ticket seen; /* what the pin saw */
    char etag[ETAG_MAX];   /* after's, once unpin_unit has rendered it ("": not yet) */
};

/* The answer of GET for rec (wrap NULL: the resource's own member) and its ETag. */
static struct jbuf render_answer(struct arena *a, const struct resource *r, const char *wrap,
                                 const struct record *rec, char etag[ETAG_MAX])
{
    struct jbuf b;
    jbuf_init(&b, a, NULL, 0);
    model_render_one(&b, wrap ? wrap : r->json_one, r, rec, etag);
    return b;
}

/* Keeps the answers of the record written (id NULL: a create) and of its kind's viewers from
 * being served or kept until unpin_unit; once per unit, which may run more than once. */
static void pin_unit(struct record_unit *u, const char *id)
{
    if (u->pinned || !u->rc)
        return;
    snprintf(u->pin_id, sizeof u->pin_id, "%s", id ? id : "");
    uint64_t foreign = 0;
    bool known = store_foreign_epoch(u->store, &foreign);
    rcache_pin(u->rc, u->r->kind, u->tenant, id ? u->pin_id : NULL, &u->seen);
    u->seen.ok = u->seen.ok && known;
    u->seen.foreign = foreign;
    u->pinned = true;
}

/* After the unit's write was committed (ok) or rolled back. A committed write of a record
 * leaves its answer kept, as GET renders it, when the cache can tell it is still current
 * (rcache_unpin_keeping): the GET after a PATCH then costs no SQL. */
static void unpin_unit(struct record_unit *u, bool ok)
{
    if (!u->pinned)
        return;
    u->pinned = false;
    uint64_t foreign;
    if (ok && u->seen.ok && u->pin_id[0] && u->after.id && strcmp(u->after.id, u->pin_id) == 0 &&
        store_foreign_epoch(u->store, &foreign)) {
        struct jbuf b = render_answer(&u->rq->arena, u->r, NULL, &u->after, u->etag);
        rcache_unpin_keeping(u->rc, u->r->kind, u->tenant, u->pin_id, &u->seen, foreign, b.p, b.len, u->etag);
        return;
    }
    rcache_unpin(u->rc, u->r->kind, u->tenant, u->pin_id[0] ? u->pin_id : NULL);
}

static void unit_start(struct record_unit *u)
{
    *u->e = (struct herr){0};
    u->nnb = 0;
}

/* The caller's API client, for the history's actor; NULL for a token that names none. */
static const char *actor_client(struct request *rq)
{
    const struct caller *who = rq->api_state;
    return who && who->p.client_id[0] ? who->p.client_id : NULL;
}

static enum store_status out_of_memory(struct record_unit *u)
{
    herr_set(u->e, 503, "The server is out of memory; retry shortly.");
    return STORE_ABORT;
}

/* Appends one write's entry to the tenant's log, in the unit's transaction; takes changes. */
static enum store_status journal(struct store_tx *tx, struct record_unit *u, const struct resource *r, const char *id,
                                 enum change_action action, json_t *changes)
{
    char *txt = changes ? json_dumps(changes, JSON_COMPACT) : NULL;
    json_decref(changes);
    if (!txt)
        return out_of_memory(u);
    struct change_entry ce = {.r = r, .id = id, .action = action, .client_id = actor_client(u->rq),
                              .request_id = u->rq->request_id, .changes = arena_strdup(&u->rq->arena, txt)};
    free(txt);
    return store_log_append(tx, u->tenant, &ce);
}

/* The view of t that shows the links of rel, or -1. */
static int view_of(const struct resource *t, enum rel rel)
{
    for (size_t v = 0; v < t->nviews; v++)
        if (t->views[v].rel == rel)
            return (int)v;
    return -1;
}

/* The Eka ids of the records whose view of link field i can change with this write: the
 * targets given and (before: a patch) the ones linked now, which a replace may drop. */
static size_t neighbour_ids(const struct record_unit *u, size_t i, const struct record *before, const char **out)
{
    const struct field *f = &u->r->fields[i];
    size_t n = 0;
    if (f->type != FT_LINKS || u->vals[i].state != V_SET || view_of(resource_get(f->target), f->rel) < 0)
        return 0;
    for (size_t k = 0; k < u->vals[i].n && u->ids[i]; k++)
        if (u->ids[i][k]) {
            if (out)
                out[n] = u->ids[i][k];
            n++;
        }
    int mine = view_of(u->r, f->rel);
    for (size_t k = 0; before && mine >= 0 && k < before->links[mine].n; k++) {
        if (out)
            out[n] = before->links[mine].items[k].id;
        n++;
    }
    return n;
}

/* Reads, before the links are written, every record on their other side whose own view
 * shows them. */
static enum store_status neighbours_before(struct store_tx *tx, struct record_unit *u, const struct record *before)
{
    size_t total = 0;
    for (size_t i = 0; i < u->r->nfields; i++)
        total += neighbour_ids(u, i, before, NULL);
    if (!total)
        return STORE_OK;
    u->nb = arena_calloc(&u->rq->arena, total, sizeof *u->nb);
    const char **ids = arena_calloc(&u->rq->arena, total, sizeof *ids);
    for (size_t i = 0; i < u->r->nfields; i++) {
        const struct resource *t = resource_get(u->r->fields[i].target);
        size_t n = neighbour_ids(u, i, before, ids);
        for (size_t k = 0; k < n; k++) {
            bool seen = false;
            for (size_t j = 0; j < u->nnb && !seen; j++)
                seen = u->nb[j].r == t && strcmp(u->nb[j].before.id, ids[k]) == 0;
            if (seen)
                continue;
            struct neighbour *nb = &u->nb[u->nnb];
            nb->r = t;
            enum store_status st = store_find(tx, t, u->tenant, ids[k], &nb->before);
            if (st == STORE_NOT_FOUND)
                continue;
            if (st != STORE_OK)
                return st;
            u->nnb++;
        }
    }
    return STORE_OK;
}

/* After the links are written: an entry for each neighbour whose links changed. */
static enum store_status neighbours_after(struct store_tx *tx, struct record_unit *u)
{
    for (size_t j = 0; j < u->nnb; j++) {
        const struct neighbour *nb = &u->nb[j];
        struct record now;
        enum store_status st = store_find(tx, nb->r, u->tenant, nb->before.id, &now);
        if (st != STORE_OK)
            return st;
        json_t *ch = model_changes(nb->r, &nb->before, &now);
        if (!ch)
            return out_of_memory(u);
        if (json_object_size(ch) == 0) {
            json_decref(ch);
            continue;
        }
        st = journal(tx, u, nb->r, nb->before.id, CHANGE_UPDATE, ch);
        if (st != STORE_OK)
            return st;
    }
    return STORE_OK;
}

/* The record as GET will show it after a create (before NULL) or patch that set no link,
 * made without reading it back: the record as read with the values written (as the store
 * keeps them), updated_at (and a create's created_at) the unit's time. A link list shows the
 * linked records' own columns: a write that sets one reads the record back (false). */
static bool after_in_memory(struct store_tx *tx, struct record_unit *u, const char *id, const struct record *before)
{
    const struct resource *r = u->r;
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].type == FT_LINKS && u->vals[i].state != V_ABSENT)
            return false;
    struct record *after = &u->after;
    const char *now = arena_strdup(&u->rq->arena, store_now_text(tx));
    if (!now)
        return false;
    if (before) {
        *after = *before;
    } else {
        *after = (struct record){.id = id, .created_at = now};
    }
    after->updated_at = now;
    for (size_t i = 0; i < r->nfields; i++) {
        const struct fval *v = &u->vals[i];
        if (!r->fields[i].column)
            continue;
        if (v->state == V_SET)
            after->v[i] = *v;
        else if (v->state == V_NULL || !before) /* a create stores NULL for a value not given */
            after->v[i] = (struct fval){.state = V_NULL};
    }
    return true;
}

/* The record as written (u->after) and its entry; before NULL: a create. */
static enum store_status journal_write(struct store_tx *tx, struct record_unit *u, const char *id,
                                       const struct record *before, enum change_action action)
{
    enum store_status st = STORE_OK;
    if (action == CHANGE_RESTORE || !after_in_memory(tx, u, id, before))
        st = store_find(tx, u->r, u->tenant, id, &u->after);
    if (st != STORE_OK)
        return st == STORE_NOT_FOUND ? STORE_ERROR : st;
    json_t *ch = action == CHANGE_CREATE || action == CHANGE_UPDATE ? model_changes(u->r, before, &u->after)
                                                                    : json_object();
    if (!ch)
        return out_of_memory(u);
    st = journal(tx, u, u->r, id, action, ch);
    return st == STORE_OK ? neighbours_after(tx, u) : st;
}

/* If-Match, judged on the record as this unit read it, so a write that committed in between
 * is seen: of two writers holding the same tag, the second gets 412. */
static enum store_status check_if_match(struct record_unit *u)
{
    if (!u->if_match)
        return STORE_OK;
    char etag[ETAG_MAX];
    model_etag(u->r, &u->rec, etag);
    if (etag_list_match(u->if_match, etag, false) == ETAG_MATCH)
        return STORE_OK;
    herr_set(u->e, 412, "precondition failed: the record has changed");
    return STORE_ABORT;
}

/* A conditional request field, its syntax checked (400 when it is not `*` or a list of
 * entity-tags); *out NULL when absent. */
static bool condition_field(struct request *rq, const char *name, const char **out, struct herr *e)
{
    *out = http_header_joined(rq, name);
    if (*out && etag_list_match(*out, "\"\"", false) == ETAG_INVALID) {
        herr_set(e, 400,
                 arena_printf(&rq->arena, "%s must be * or a list of entity tags such as \"abc\" or W/\"abc\".",
                              name));
        return false;
    }
    return true;
}

/* The ETag of the record as written: rendered once, where the answer was kept. */
static void set_etag(struct request *rq, struct record_unit *u)
{
    if (!u->etag[0])
        model_etag(u->r, &u->after, u->etag);
    rq->resp.etag = arena_strdup(&rq->arena, u->etag);
}

/* Finds the record named in the path; its 404 is the resource's own. */
static enum store_status load(struct store_tx *tx, struct record_unit *u)
{
    enum store_status st = store_find(tx, u->r, u->tenant, u->key, &u->rec);
    if (st == STORE_NOT_FOUND)
        resource_not_found(u->rq, u->r, u->e);
    if (st == STORE_OK)
        u->rq->log_id = u->rec.id;
    return st;
}

static enum store_status create_fn(struct store_tx *tx, void *ctx)
{
    struct record_unit *u = ctx;
    unit_start(u);
    pin_unit(u, NULL);
    enum store_status st = resolve_links(tx, u->r, u->tenant, u->vals, u->ids, &u->rq->arena, u->e);
    if (st == STORE_OK)
        st = store_insert(tx, u->r, u->tenant, u->vals, u->id, sizeof u->id);
    if (st == STORE_OK)
        st = neighbours_before(tx, u, NULL);
    if (st == STORE_OK)
        st = write_links(tx, u->r, u->tenant, u->id, u->vals, u->ids, true);
    if (st == STORE_OK)
        st = journal_write(tx, u, u->id, NULL, CHANGE_CREATE);
    if (st == STORE_OK && u->idem) {
        u->answer = ekaid_text(&u->rq->arena, u->id); /* the arena never answers NULL */
        st = idem_store_answer(tx, u->tenant, u->idem, 201, u->answer, u->e);
    }
    return st;
}

static bool run_unit(struct app *app, struct record_unit *ru, store_fn fn, bool write, struct herr *e)
{
    struct store_unit u = {.fn = fn, .ctx = ru, .arena = &ru->rq->arena};
    ru->e = e;
    ru->rc = app->rcache;
    ru->store = app->store;
    if (!write)
        return app_read(app, &u, e);
    bool ok = app_write(app, &u, e);
    unpin_unit(ru, ok);
    return ok;
}

/* A body the rules refuse is answered 400 before its Idempotency-Key is looked at: it
 * changes nothing and leaves no trace, as without a key. */
bool resource_create(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                     struct herr *e)
{
    struct idem idem;
    if (!idem_read(rq, &idem, e))
        return false;
    json_t *body = request_json(rq, e);
    if (!body)
        return false;
    struct fval vals[MAX_FIELDS];
    if (!model_decode(r, body, true, utc_today(&rq->arena), &rq->arena, vals, e))
        return false;
    struct record_unit u = {.rq = rq, .r = r, .tenant = tenant, .vals = vals};
    if (idem.key) {
        switch (idem_begin(app, rq, tenant, arena_printf(&rq->arena, "/cdr/v1/%s/", r->path), body, &idem, e)) {
        case IDEM_RUN:
            u.idem = &idem;
            break;
        case IDEM_ANSWERED:
            return true;
        default:
            return false;
        }
    }
    if (!run_unit(app, &u, create_fn, true, e)) {
        idem_release(app, rq, tenant, &idem);
        return false;
    }
    if (u.answer)
        respond_json_text(rq, 201, u.answer);
    else
        respond_ekaid(rq, 201, u.id);
    set_etag(rq, &u);
    return true;
}

static enum store_status get_fn(struct store_tx *tx, void *ctx)
{
    struct record_unit *u = ctx;
    unit_start(u);
    return load(tx, u);
}

/* A GET by Eka id, answered from the kept answers when it can be (rcache.h). */
bool resource_get_one(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, const char *wrap, struct herr *e)
{
    const char *if_none_match;
    if (!condition_field(rq, "If-None-Match", &if_none_match, e))
        return false;
    uint64_t foreign = 0;
    struct rcache *rc = app->rcache && store_foreign_epoch(app->store, &foreign) ? app->rcache : NULL;
    struct rc_key ck = {.kind = r->kind, .variant = wrap != NULL, .tenant = tenant, .id = key};
    struct rc_ticket ticket = {0};
    char *body;
    size_t len;
    const char *etag;
    bool hit = rc && rcache_get(rc, foreign, &ck, &rq->arena, &body, &len, &etag, &ticket);
    if (rc)
        metrics_event(&app->metrics, hit ? ME_CACHE_HIT : ME_CACHE_MISS);
    if (hit) {
        rq->log_id = key;
    } else {
        struct record_unit u = {.rq = rq, .r = r, .tenant = tenant, .key = key};
        if (!run_unit(app, &u, get_fn, false, e))
            return false;
        char tag[ETAG_MAX];
        struct jbuf b = render_answer(&rq->arena, r, wrap, &u.rec, tag);
        body = b.p;
        len = b.len;
        etag = arena_strdup(&rq->arena, tag);
        /* kept under the Eka id only: a partner id can move to another record */
        uint64_t now;
        if (rc && strcmp(u.rec.id, key) == 0 && store_foreign_epoch(app->store, &now))
            rcache_put(rc, now, &ck, &ticket, body, len, etag);
    }
    respond_bytes(rq, 200, body, len);
    if (if_none_match && etag_list_match(if_none_match, etag, true) == ETAG_MATCH)
        respond_not_modified(rq, NULL, rq->resp.len);
    rq->resp.etag = etag;
    return true;
}

static enum store_status patch_fn(struct store_tx *tx, void *ctx)
{
    struct record_unit *u = ctx;
    unit_start(u);
    enum store_status st = load(tx, u);
    if (st == STORE_OK) {
        pin_unit(u, u->rec.id);
        st = check_if_match(u);
    }
    if (st != STORE_OK)
        return st;
    if (!model_has_identity(u->r, &u->rec, u->vals)) {
        herr_set(u->e, 400, "At least one of mobile, email or auth_userid must remain set.");
        return STORE_ABORT;
    }
    st = resolve_links(tx, u->r, u->tenant, u->vals, u->ids, &u->rq->arena, u->e);
    if (st == STORE_OK)
        st = store_update(tx, u->r, u->tenant, u->rec.id, u->vals);
    if (st == STORE_OK)
        st = neighbours_before(tx, u, u->r->link_mode == LINK_REPLACE ? &u->rec : NULL);
    if (st == STORE_OK)
        st = write_links(tx, u->r, u->tenant, u->rec.id, u->vals, u->ids, u->r->link_mode == LINK_REPLACE);
    if (st == STORE_OK)
        st = journal_write(tx, u, u->rec.id, &u->rec, CHANGE_UPDATE);
    return st;
}

bool resource_patch(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                    const char *key, struct herr *e)
{
    json_t *body = request_json(rq, e);
    if (!body)
        return false;
    struct fval vals[MAX_FIELDS];
    if (!model_decode(r, body, false, utc_today(&rq->arena), &rq->arena, vals, e))
        return false;
    struct record_unit u = {.rq = rq, .r = r, .tenant = tenant, .key = key, .vals = vals};
    if (!condition_field(rq, "If-Match", &u.if_match, e))
        return false;
    if (!run_unit(app, &u, patch_fn, true, e))
        return false;
    respond_ekaid(rq, 200, u.rec.id);
    set_etag(rq, &u);
    return true;
}

static enum store_status delete_fn(struct store_tx *tx, void *ctx)
{
    struct record_unit *u = ctx;
    unit_start(u);
    enum store_status st = load(tx, u);
    if (st == STORE_OK) {
        pin_unit(u, u->rec.id);
        st = check_if_match(u);
    }
    if (st == STORE_OK)
        st = store_soft_delete(tx, u->r, u->tenant, u->rec.id);
    if (st == STORE_OK)
        st = journal(tx, u, u->r, u->rec.id, CHANGE_DELETE, json_object());
    return st;
}

bool resource_delete(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                     const char *key, struct herr *e)
{
    struct record_unit u = {.rq = rq, .r = r, .tenant = tenant, .key = key};
    if (!condition_field(rq, "If-Match", &u.if_match, e))
        return false;
    if (!run_unit(app, &u, delete_fn, true, e))
        return false;
    respond_json(rq, 200, json_pack("{s:s, s:s}", "status", "success", "message",
                                    arena_printf(&rq->arena, "%s Deleted Successfully", r->label)));
    return true;
}

static enum store_status restore_fn(struct store_tx *tx, void *ctx)
{
    struct record_unit *u = ctx;
    unit_start(u);
    pin_unit(u, u->key);
    enum store_status st = store_restore(tx, u->r, u->tenant, u->key);
    if (st == STORE_NOT_FOUND)
        resource_not_found(u->rq, u->r, u->e);
    if (st != STORE_OK)
        return st;
    u->rq->log_id = u->key;
    return journal_write(tx, u, u->key, NULL, CHANGE_RESTORE);
}

bool resource_restore(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, struct herr *e)
{
    struct record_unit u = {.rq = rq, .r = r, .tenant = tenant, .key = key};
    if (!run_unit(app, &u, restore_fn, true, e))
        return false;
    respond_ekaid(rq, 200, u.after.id);
    set_etag(rq, &u);
    return true;
}

struct history_unit {
    struct record_unit ru;
    struct change_entry *items;
    size_t n;
};

static enum store_status history_fn(struct store_tx *tx, void *ctx)
{
    struct history_unit *h = ctx;
    struct record_unit *u = &h->ru;
    unit_start(u);
    bool deleted;
    enum store_status st = store_find_any(tx, u->r, u->tenant, u->key, &u->rec, &deleted);
    if (st == STORE_NOT_FOUND)
        resource_not_found(u->rq, u->r, u->e);
    if (st != STORE_OK)
        return st;
    u->rq->log_id = u->rec.id;
    h->n = 0;
    st = store_history(tx, u->r, u->tenant, u->rec.id, &h->items, &h->n);
    return st == STORE_NOT_FOUND ? STORE_OK : st;
}

bool resource_history(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, struct herr *e)
{
    struct history_unit h = {.ru = {.rq = rq, .r = r, .tenant = tenant, .key = key}};
    struct store_unit su = {.fn = history_fn, .ctx = &h, .arena = &rq->arena};
    h.ru.e = e;
    if (!app_read(app, &su, e))
        return false;
    json_t *list = json_array();
    for (size_t i = 0; i < h.n; i++) {
        const struct change_entry *ce = &h.items[i];
        json_t *changes = json_loads(ce->changes, 0, NULL);
        json_array_append_new(
            list, json_pack("{s:I, s:s, s:s, s:{s:s?, s:s}, s:s?, s:o}", "version", (json_int_t)ce->version,
                            "action", change_action_name(ce->action), "at", ce->at, "actor", "client_id",
                            ce->client_id, "b_id", tenant, "request_id", ce->request_id, "changes",
                            json_is_object(changes) ? changes : json_object()));
        if (!json_is_object(changes))
            json_decref(changes);
    }
    respond_json(rq, 200, json_pack("{s:s, s:o}", "status", "success", "history", list));
    return true;
}

/* A list is a stream of batches: memory is bounded by one batch, not by the tenant's size.
 * The first batch is read before the status is chosen, so a storage failure is an error
 * answer rather than a 200 cut short; a failure on a later batch can only cut the stream.
 * With ?limit=N it stops after N records and, when more match, ends with "next_cursor". */
struct list_stream {
    struct app *app;
    const struct resource *r;
    struct arena mem; /* the filters and the cursor binding: the stream outlives the request */
    char tenant[CLAIM_MAX + 1];
    const char *wrap;
    struct list_filter filter;
    const char *bind;
    int limit, emitted; /* limit 0: the whole list */
    bool more;          /* limit reached and more records match: a next_cursor */
    int64_t cursor;
    int phase; /* 1 rows, 2 tail, 3 done */
    bool first;
    char *buf;
    size_t len, off, cap;
};

struct list_unit {
    const struct resource *r;
    const char *tenant;
    const struct list_filter *filter;
    int64_t after, next;
    int want;
    struct record *recs;
    int count;
    bool more;
};

static enum store_status list_fn(struct store_tx *tx, void *ctx)
{
    struct list_unit *u = ctx;
    return store_list_where(tx, u->r, u->tenant, u->filter, u->after, u->want, u->recs, &u->count, &u->next,
                            &u->more);
}

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

static bool ls_row(struct list_stream *ls, struct arena *a, const struct record *rec)
{
    struct jbuf b;
    jbuf_init(&b, a, NULL, 0);
    model_render_to(&b, ls->r, rec);
    bool ok = (ls->first || ls_append(ls, ",", 1)) && ls_append(ls, b.p, b.len);
    ls->first = false;
    return ok;
}

/* Reads and renders the next batch into the buffer; false with e set when the read failed,
 * or without (e.status 0) when memory ran out. */
static bool ls_batch(struct list_stream *ls, struct herr *e)
{
    struct arena a;
    arena_init(&a);
    int want = LIST_BATCH;
    if (ls->limit && ls->limit - ls->emitted < want)
        want = ls->limit - ls->emitted;
    struct list_unit lu = {.r = ls->r, .tenant = ls->tenant, .filter = &ls->filter, .after = ls->cursor, .want = want};
    lu.recs = arena_calloc(&a, (size_t)want, sizeof *lu.recs);
    struct store_unit u = {.fn = list_fn, .ctx = &lu, .arena = &a};
    bool ok = app_read(ls->app, &u, e);
    for (int i = 0; ok && i < lu.count; i++)
        ok = ls_row(ls, &a, &lu.recs[i]);
    arena_release(&a);
    if (!ok)
        return false;
    ls->cursor = lu.next;
    ls->emitted += lu.count;
    if (!lu.more)
        ls->phase = 2;
    else if (ls->limit && ls->emitted == ls->limit) {
        ls->phase = 2;
        ls->more = true;
    }
    return true;
}

/* The end of the body: the next page's cursor when the limit left records behind. */
static bool ls_tail(struct list_stream *ls)
{
    if (!ls->more)
        return ls_append(ls, "]}", 2);
    char cur[CURSOR_TEXT_MAX], tail[CURSOR_TEXT_MAX + 32];
    if (!cursor_seal(&ls->app->keys, ls->bind, ls->cursor, cur))
        return false;
    int n = snprintf(tail, sizeof tail, "],\"next_cursor\":\"%s\"}", cur);
    return ls_append(ls, tail, (size_t)n);
}

static bool ls_fill(struct list_stream *ls)
{
    ls->len = ls->off = 0;
    if (ls->phase == 1) {
        struct herr e = {0};
        return ls_batch(ls, &e);
    }
    if (ls->phase == 2) {
        ls->phase = 3;
        return ls_tail(ls);
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
    arena_release(&ls->mem);
    free(ls->buf);
    free(ls);
}

static const char *keep(struct arena *a, const char *s) { return s ? arena_strdup(a, s) : NULL; }

/* `list` names the list for its cursors: the resource's path, or "hipusers". */
bool resource_list(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                   const char *wrap, struct herr *e)
{
    size_t nparams;
    const struct query_param *params = http_query(rq, &nparams);
    struct list_query q;
    if (!list_query_parse(r, wrap ? "hipusers" : r->path, tenant, params, nparams, &app->keys, &rq->arena, &q, e))
        return false;
    struct list_stream *ls = calloc(1, sizeof *ls);
    if (!ls) {
        herr_set(e, 503, "The server is out of memory; retry shortly.");
        return false;
    }
    arena_init(&ls->mem);
    ls->app = app;
    ls->r = r;
    snprintf(ls->tenant, sizeof ls->tenant, "%s", tenant);
    ls->wrap = wrap ? wrap : r->json_many;
    ls->first = true;
    ls->phase = 1;
    ls->limit = q.limit;
    ls->cursor = q.after;
    ls->bind = keep(&ls->mem, q.bind);
    ls->filter = (struct list_filter){
        .partner_id = keep(&ls->mem, q.f.partner_id),
        .mobile = keep(&ls->mem, q.f.mobile),
        .email_key = keep(&ls->mem, q.f.email_key),
        .auth_userid = keep(&ls->mem, q.f.auth_userid),
        .clinic_id = keep(&ls->mem, q.f.clinic_id),
        .doctor_id = keep(&ls->mem, q.f.doctor_id),
        .updated_since = keep(&ls->mem, q.f.updated_since),
    };
    char head[64];
    int n = snprintf(head, sizeof head, "{\"status\":\"success\",\"%s\":[", ls->wrap);
    if (!ls_append(ls, head, (size_t)n) || !ls_batch(ls, e)) {
        ls_free(ls);
        if (!e->status)
            herr_set(e, 503, "The server is out of memory; retry shortly.");
        return false;
    }
    rq->resp.status = 200;
    rq->resp.stream = ls_read;
    rq->resp.stream_ctx = ls;
    rq->resp.stream_free = ls_free;
    return true;
}
