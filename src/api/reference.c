/* The API's own reference: GET /openapi.json (docs/openapi.json) and GET /docs (Swagger
 * UI reading it), served from files embedded at build time, so nothing is fetched from
 * anywhere else. No token needed; `serve --no-docs` turns both off (404). */
#include <string.h>

#include "api/api.h"
#include "http/etag.h"
#include "util/embedded.h"

struct reference_file {
    enum route_kind kind;
    const char *name; /* RT_DOCS_FILE: the name in /docs/{name} */
    const char *file; /* the embedded file */
    const char *type;
};

static const struct reference_file FILES[] = {
    {RT_OPENAPI, NULL, "docs/openapi.json", "application/json; charset=utf-8"},
    {RT_DOCS, NULL, "web/docs.html", "text/html; charset=utf-8"},
    {RT_DOCS_FILE, "hipusers-docs.js", "web/hipusers-docs.js", "text/javascript; charset=utf-8"},
    {RT_DOCS_FILE, "swagger-ui-bundle.js", "vendor/swagger-ui/swagger-ui-bundle.js", "text/javascript; charset=utf-8"},
    {RT_DOCS_FILE, "swagger-ui.css", "vendor/swagger-ui/swagger-ui.css", "text/css; charset=utf-8"},
    {RT_DOCS_FILE, "favicon-32x32.png", "vendor/swagger-ui/favicon-32x32.png", "image/png"},
};

/* The page runs only its own scripts and talks only to this server (Swagger UI styles
 * elements inline, hence 'unsafe-inline' for styles alone). */
static const char CSP[] = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; "
                          "img-src 'self' data:; font-src 'self' data:; connect-src 'self'; base-uri 'none'; "
                          "form-action 'none'; frame-ancestors 'none'";

static const struct reference_file *find(enum route_kind kind, const char *name)
{
    for (size_t i = 0; i < sizeof FILES / sizeof FILES[0]; i++)
        if (FILES[i].kind == kind && (kind != RT_DOCS_FILE || (name && strcmp(FILES[i].name, name) == 0)))
            return &FILES[i];
    return NULL;
}

const char *reference_file_of(enum route_kind kind, const char *name)
{
    const struct reference_file *rf = find(kind, name);
    return rf ? rf->file : NULL;
}

/* If-None-Match is "*" or lists this entity tag (weak comparison: W/ makes no difference);
 * a field that is not a list of entity tags is ignored (the file is sent). */
static bool not_modified(struct request *rq, const char *etag)
{
    const char *inm = http_header_joined(rq, "If-None-Match");
    return inm && etag_list_match(inm, etag, true) == ETAG_MATCH;
}

bool reference_serve(struct request *rq, struct herr *e)
{
    const struct reference_file *rf = find(rq->route.kind, rq->route.id);
    const struct embedded *f = rf ? embedded_find(rf->file) : NULL;
    if (!f) {
        herr_set(e, 404, "Not found");
        return false;
    }
    const char *etag = arena_printf(&rq->arena, "\"%s\"", f->sha256);
    rq->resp.cache_control = "no-cache"; /* revalidated by ETag on each use */
    respond_header(rq, "Content-Security-Policy", CSP);
    respond_header(rq, "Referrer-Policy", "no-referrer");
    if (not_modified(rq, etag)) {
        respond_not_modified(rq, etag, f->len);
        return true;
    }
    rq->resp.status = 200;
    rq->resp.etag = etag;
    rq->resp.content_type = rf->type;
    rq->resp.body = (const char *)f->data;
    rq->resp.len = f->len;
    return true;
}
