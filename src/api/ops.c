/* The operations endpoints: /metrics (Prometheus text), /healthz (the process answers)
 * and /readyz (the store can serve). No authentication: serve them on --admin-listen to
 * keep them off the public address. */
#include <stdlib.h>
#include <string.h>

#include "api/api.h"

static bool metrics(struct app *app, struct request *rq, struct herr *e)
{
    size_t len = 0;
    char *text = metrics_render(&app->metrics, &len);
    if (!text) {
        herr_set(e, 500, "Internal server error.");
        return false;
    }
    arena_defer(&rq->arena, free, text);
    rq->resp.status = 200;
    rq->resp.body = text;
    rq->resp.len = len;
    rq->resp.content_type = METRICS_CONTENT_TYPE;
    return true;
}

static bool ok(struct request *rq)
{
    respond_json(rq, 200, json_pack("{s:s}", "status", "ok"));
    return true;
}

bool ops_handle(struct app *app, struct request *rq, struct herr *e)
{
    switch (rq->route.kind) {
    case RT_METRICS: return metrics(app, rq, e);
    case RT_HEALTHZ: return ok(rq);
    case RT_READYZ: return app_ready(app, e) && ok(rq);
    default: herr_set(e, 404, "Not found"); return false;
    }
}
