/* Handlers behind the router; each fills rq->resp or returns an error value. */
#ifndef HIP_API_H
#define HIP_API_H

#include "api/app.h"
#include "auth/token.h"

/* The authenticated caller of a /cdr/v1 request. */
struct caller {
    struct principal p;
};

/* The generic resource handlers, driven by the resource's field table. */
bool resource_create(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                     struct herr *e);
bool resource_get_one(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, const char *wrap, struct herr *e);
bool resource_patch(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                    const char *key, struct herr *e);
bool resource_delete(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                     const char *key, struct herr *e);
bool resource_list(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                   const char *wrap, struct herr *e);
/* Issue 10: a record's history (deleted records too), restore of a deleted record, and
 * the tenant's change feed (GET /cdr/v1/changes/?after=N&limit=N). */
bool resource_history(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, struct herr *e);
bool resource_restore(struct app *app, struct request *rq, const struct resource *r, const char *tenant,
                      const char *key, struct herr *e);
bool changes_feed(struct app *app, struct request *rq, const char *tenant, struct herr *e);
/* connect-auth: login and refresh (with_headers: /refresh-token; without: deprecated /refresh). */
bool auth_login(struct app *app, struct request *rq, struct herr *e);
bool auth_refresh(struct app *app, struct request *rq, bool with_headers, struct herr *e);
bool business_info(struct app *app, struct request *rq, const char *tenant, struct herr *e);
/* GET /metrics, /healthz, /readyz: no authentication. */
bool ops_handle(struct app *app, struct request *rq, struct herr *e);

/* GET /openapi.json, /docs and /docs/{file} from the embedded files (src/api/reference.c). */
bool reference_serve(struct request *rq, struct herr *e);
/* The embedded file a reference route serves (name: the {file} of RT_DOCS_FILE), or NULL. */
const char *reference_file_of(enum route_kind kind, const char *name);

/* The token of `Authorization: Bearer <token>` (scheme in any case, SP or HTAB around
 * and between), or NULL. */
const char *authorization_bearer(struct request *rq);

/* Maps the link lists of vals (field i, state V_SET) to Eka ids in ids[i]: every key must
 * name a live record of the tenant (by Eka id, or by partner id for the partner_* fields);
 * the unknown ones are gathered into e (every field at fault) and the answer is STORE_ABORT.
 * pending non-NULL (an import): a doctor-clinic link given by an Eka id no record has yet
 * is kept as it is and counted there; it shows once that record is imported. */
enum store_status resource_resolve_links(struct store_tx *tx, const struct resource *r, const char *tenant,
                                         const struct fval *vals, const char **ids[], struct arena *a,
                                         struct herr *e, size_t *pending);

/* The 404 for a resource, in the shape the spec gives it. */
void resource_not_found(struct request *rq, const struct resource *r, struct herr *e);

#endif
