/* Request headers that may repeat: libmicrohttpd's lookup answers only the first. */
#include <microhttpd.h>
#include <string.h>
#include <strings.h>

#include "http/http.h"

struct joined {
    struct request *rq;
    const char *name;
    char *out;
};

static enum MHD_Result collect(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct joined *j = cls;
    if (key && value && strcasecmp(key, j->name) == 0)
        j->out = j->out ? arena_printf(&j->rq->arena, "%s, %s", j->out, value) : arena_strdup(&j->rq->arena, value);
    return MHD_YES;
}

const char *http_header_joined(struct request *rq, const char *name)
{
    struct joined j = {.rq = rq, .name = name, .out = NULL};
    MHD_get_connection_values(rq->conn, MHD_HEADER_KIND, collect, &j);
    return j.out;
}
