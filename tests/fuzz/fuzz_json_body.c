/* The request-body path of POST and PATCH: request_json() (Content-Type check, the
 * 32-level nesting check, json_loadb with JSON_REJECT_DUPLICATES), then model_decode()
 * as PATCH /cdr/v1/ekauser/{id}/ does.
 *
 * request_json() is the real one from src/http/respond.c; the Content-Type reaches it
 * in the request, as the server sets it when the headers arrive.
 *
 * Input: when it starts with "CT:", the rest of that first line is the Content-Type
 * ("CT!" on the first line: no Content-Type header at all); otherwise the Content-Type
 * is application/json. The remaining bytes are the body.
 *
 * Invariants: a body request_json accepts is nested at most JSON_DEPTH_MAX deep and
 * had a JSON Content-Type; a refusal is 400 or 415 with a message; model_decode on an
 * accepted body succeeds, or fails with a 400 and a message. */
#include "fuzz_common.h"

#include "http/http.h"
#include "model/field.h"

static const char *g_content_type;

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size > BODY_MAX) /* the server answers 413 before any parsing */
        return 0;
    char *ct = NULL;
    g_content_type = "application/json";
    if (size >= 3 && (memcmp(data, "CT:", 3) == 0 || memcmp(data, "CT!", 3) == 0)) {
        const uint8_t *nl = memchr(data, '\n', size);
        size_t line = nl ? (size_t)(nl - data) : size;
        if (data[2] == '!') {
            g_content_type = NULL;
        } else {
            ct = fuzz_cstr(data + 3, line - 3);
            g_content_type = ct;
        }
        data += nl ? line + 1 : line;
        size -= nl ? line + 1 : line;
    }

    struct request rq;
    memset(&rq, 0, sizeof rq);
    arena_init(&rq.arena);
    rq.method = M_PATCH;
    rq.method_name = "PATCH";
    rq.path = "/cdr/v1/ekauser/176338032692057/";
    rq.content_type = g_content_type;
    /* The server keeps the body in a buffer of its own; an exact-size copy lets ASan
     * see any read past its end. */
    rq.body = malloc(size ? size : 1);
    if (!rq.body)
        abort();
    memcpy(rq.body, data, size);
    rq.body_len = size;

    struct herr e = {0};
    json_t *body = request_json(&rq, &e);
    if (!body) {
        FUZZ_CHECK(e.status == 400 || e.status == 415);
        FUZZ_CHECK(e.message != NULL);
    } else {
        FUZZ_CHECK(e.status == 0);
        FUZZ_CHECK(g_content_type != NULL);
        FUZZ_CHECK(fuzz_json_depth(body) <= JSON_DEPTH_MAX);
        const struct resource *r = resource_get(R_EKAUSER);
        struct fval vals[MAX_FIELDS];
        if (!model_decode(r, body, false, FUZZ_TODAY, &rq.arena, vals, &e))
            FUZZ_CHECK(e.status == 400 && e.message != NULL);
        else
            FUZZ_CHECK(e.status == 0);
    }

    arena_release(&rq.arena);
    free(rq.body);
    free(ct);
    return 0;
}
