/* The tenant's change feed: GET /cdr/v1/changes/?after=SEQ&limit=N, every write of the
 * tenant in commit order, from the change log the write units append to. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

#define FEED_LIMIT_DEFAULT 100
#define FEED_LIMIT_MAX 1000

struct feed_query {
    struct request *rq;
    struct herr *e;
    int64_t after;
    int limit;
    bool seen_after, seen_limit;
};

/* A decimal integer from lo to hi: digits only, no sign, no spaces. */
static bool parse_int(const char *raw, struct arena *a, long long lo, long long hi, long long *out)
{
    const char *v = raw ? percent_decode(raw, strlen(raw), a) : NULL;
    if (!v || !*v || strspn(v, "0123456789") != strlen(v) || strlen(v) > 19)
        return false;
    errno = 0;
    long long n = strtoll(v, NULL, 10);
    if (errno || n < lo || n > hi)
        return false;
    *out = n;
    return true;
}

static bool feed_param(void *ctx, const char *name, const char *value)
{
    struct feed_query *q = ctx;
    struct arena *a = &q->rq->arena;
    long long n;
    if (strcmp(name, "after") == 0) {
        if (q->seen_after) {
            herr_set(q->e, 400, "after: give it once.");
            return false;
        }
        q->seen_after = true;
        if (!parse_int(value, a, 0, INT64_MAX, &n)) {
            herr_set(q->e, 400, "after must be a sequence number: a whole number from 0.");
            return false;
        }
        q->after = n;
    } else if (strcmp(name, "limit") == 0) {
        if (q->seen_limit) {
            herr_set(q->e, 400, "limit: give it once.");
            return false;
        }
        q->seen_limit = true;
        if (!parse_int(value, a, 1, FEED_LIMIT_MAX, &n)) {
            herr_set(q->e, 400, "limit must be a whole number from 1 to 1000.");
            return false;
        }
        q->limit = (int)n;
    } else {
        /* the name as sent may be anything: it is not echoed */
        herr_set(q->e, 400, "Unknown query parameter: the change feed takes after and limit.");
        return false;
    }
    return true;
}

struct feed_unit {
    const char *tenant;
    int64_t after;
    int limit;
    struct change_entry *items;
    int count;
};

static enum store_status seal_fn(struct store_tx *tx, void *ctx)
{
    struct feed_unit *f = ctx;
    return store_feed_seal(tx, f->tenant);
}

static enum store_status feed_fn(struct store_tx *tx, void *ctx)
{
    struct feed_unit *f = ctx;
    return store_changes(tx, f->tenant, f->after, f->limit, f->items, &f->count);
}

bool changes_feed(struct app *app, struct request *rq, const char *tenant, struct herr *e)
{
    struct feed_query q = {.rq = rq, .e = e, .limit = FEED_LIMIT_DEFAULT};
    if (!http_query_each(rq, feed_param, &q))
        return false;
    struct feed_unit f = {.tenant = tenant, .after = q.after, .limit = q.limit};
    f.items = arena_calloc(&rq->arena, (size_t)q.limit, sizeof *f.items);
    /* Where entries get their numbers after commit (PostgreSQL), the ones committed by now
     * are numbered first, so a client reads its own writes. */
    struct store_unit seal = {.fn = seal_fn, .ctx = &f, .arena = &rq->arena};
    if (store_feed_needs_seal(app->store) && !app_write(app, &seal, e))
        return false;
    struct store_unit u = {.fn = feed_fn, .ctx = &f, .arena = &rq->arena};
    if (!app_read(app, &u, e))
        return false;
    json_t *list = json_array();
    int64_t next = q.after;
    for (int i = 0; i < f.count; i++) {
        const struct change_entry *ce = &f.items[i];
        json_array_append_new(list, json_pack("{s:I, s:s, s:s, s:s, s:s}", "seq", (json_int_t)ce->seq, "resource",
                                              ce->r->path, "id", ce->id, "action", change_action_name(ce->action),
                                              "at", ce->at));
        next = ce->seq;
    }
    respond_json(rq, 200,
                 json_pack("{s:s, s:o, s:I}", "status", "success", "changes", list, "next_after", (json_int_t)next));
    return true;
}
