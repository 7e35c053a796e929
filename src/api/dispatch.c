/* Route, method, authentication, then the handler; any error value ends up in one
 * respond_error call here. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "api/api.h"

static bool method_allowed(enum route_kind kind, enum method m)
{
    bool get = m == M_GET || m == M_HEAD;
    switch (kind) {
    case RT_COLLECTION:
        return get || m == M_POST || m == M_PATCH; /* PATCH answers its own 400 */
    case RT_ITEM:
        return get || m == M_PATCH || m == M_DELETE;
    case RT_BUSINESS_INFO:
    case RT_HIPUSERS:
    case RT_HIPUSER:
    case RT_METRICS:
    case RT_HEALTHZ:
    case RT_READYZ:
    case RT_HISTORY:
    case RT_CHANGES:
    case RT_OPENAPI:
    case RT_DOCS:
    case RT_DOCS_FILE:
        return get;
    case RT_RESTORE:
        return m == M_POST;
    case RT_LOGIN:
    case RT_REFRESH_TOKEN:
    case RT_REFRESH:
        return m == M_POST;
    default:
        return false;
    }
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

/* A header value without the SP and HTAB around it (RFC 9110 §5.5: they are not part
 * of the value), or NULL when absent or blank. */
static const char *header_trimmed(struct request *rq, const char *name)
{
    const char *v = http_header(rq, name);
    if (!v)
        return NULL;
    while (ows(*v))
        v++;
    size_t n = strlen(v);
    while (n > 0 && ows(v[n - 1]))
        n--;
    return n ? arena_strndup(&rq->arena, v, n) : NULL;
}

const char *authorization_bearer(struct request *rq)
{
    const char *h = header_trimmed(rq, "Authorization");
    if (!h || strncasecmp(h, "Bearer", 6) != 0 || !ows(h[6]))
        return NULL;
    h += 6;
    while (ows(*h))
        h++;
    return h;
}

/* The token from `auth: <JWT>` (preferred) or `Authorization: Bearer <JWT>`. */
static const char *bearer(struct request *rq)
{
    const char *t = header_trimmed(rq, "auth");
    return t ? t : authorization_bearer(rq);
}

static bool authenticate(struct app *app, struct request *rq, struct caller *who, struct herr *e)
{
    const char *why = token_verify_cached(app_token_cache(app), &app->keys, bearer(rq), (long)time(NULL), &who->p);
    if (why) {
        herr_set(e, 401, why);
        return false;
    }
    if (app_token_revoked(app, &who->p, e))
        return false;
    rq->tenant = arena_strdup(&rq->arena, who->p.b_id);
    return true;
}

static bool handle_cdr(struct app *app, struct request *rq, const struct caller *who, struct herr *e)
{
    const struct route *rt = &rq->route;
    const char *tenant = who->p.b_id;
    switch (rt->kind) {
    case RT_COLLECTION:
        if (rq->method == M_POST)
            return resource_create(app, rq, rt->res, tenant, e);
        if (rq->method == M_PATCH) {
            herr_set(e, 400, arena_printf(&rq->arena, "%s ID is required for PATCH", rt->res->label));
            return false;
        }
        return resource_list(app, rq, rt->res, tenant, NULL, e);
    case RT_ITEM:
        if (rq->method == M_PATCH)
            return resource_patch(app, rq, rt->res, tenant, rt->id, e);
        if (rq->method == M_DELETE)
            return resource_delete(app, rq, rt->res, tenant, rt->id, e);
        return resource_get_one(app, rq, rt->res, tenant, rt->id, NULL, e);
    case RT_HIPUSERS:
        return resource_list(app, rq, rt->res, tenant, "users", e);
    case RT_HIPUSER:
        return resource_get_one(app, rq, rt->res, tenant, rt->id, "user", e);
    case RT_BUSINESS_INFO:
        return business_info(app, rq, tenant, e);
    case RT_HISTORY:
        return resource_history(app, rq, rt->res, tenant, rt->id, e);
    case RT_RESTORE:
        return resource_restore(app, rq, rt->res, tenant, rt->id, e);
    case RT_CHANGES:
        return changes_feed(app, rq, tenant, e);
    default:
        herr_set(e, 404, "Not found");
        return false;
    }
}

static bool is_connect_auth(enum route_kind kind)
{
    return kind == RT_LOGIN || kind == RT_REFRESH_TOKEN || kind == RT_REFRESH;
}

static bool is_ops(enum route_kind kind) { return kind == RT_METRICS || kind == RT_HEALTHZ || kind == RT_READYZ; }

/* With --admin-listen, the operations endpoints are served there and nowhere else, and
 * the admin address serves nothing else. */
static bool misplaced(const struct app *app, const struct request *rq)
{
    bool ops = is_ops(rq->route.kind);
    return rq->admin ? !ops : ops && app->ops_on_admin;
}

static bool is_reference(enum route_kind kind)
{
    return kind == RT_OPENAPI || kind == RT_DOCS || kind == RT_DOCS_FILE;
}

bool api_precheck(void *ctx, struct request *rq)
{
    struct app *app = ctx;
    struct herr e = {0};
    if (!route_match(rq->path, &rq->arena, &rq->route) || misplaced(app, rq) ||
        (is_reference(rq->route.kind) && app->no_docs)) {
        rq->route.kind = RT_NOT_FOUND;
        herr_set(&e, 404, "Not found");
    } else if (!method_allowed(rq->route.kind, rq->method)) {
        herr_set(&e, 405, "Method not allowed");
        e.allow = route_allow(rq->route.kind);
    } else if (!is_connect_auth(rq->route.kind) && !is_ops(rq->route.kind) && !is_reference(rq->route.kind)) {
        struct caller *who = arena_calloc(&rq->arena, 1, sizeof *who);
        if (authenticate(app, rq, who, &e))
            rq->api_state = who;
    }
    if (!e.status)
        return true;
    respond_error(rq, &e);
    return false;
}

void api_handle(void *ctx, struct request *rq)
{
    struct app *app = ctx;
    struct herr e = {0};
    bool ok;
    if (is_ops(rq->route.kind))
        ok = ops_handle(app, rq, &e);
    else if (is_reference(rq->route.kind))
        ok = reference_serve(rq, &e);
    else if (rq->route.kind == RT_LOGIN)
        ok = auth_login(app, rq, &e);
    else if (is_connect_auth(rq->route.kind))
        ok = auth_refresh(app, rq, rq->route.kind == RT_REFRESH_TOKEN, &e);
    else
        ok = handle_cdr(app, rq, rq->api_state, &e);
    if (!ok)
        respond_error(rq, &e);
}
