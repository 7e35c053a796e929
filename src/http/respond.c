/* The one place errors become HTTP, and JSON bodies become bytes. */
#include <string.h>
#include <strings.h>
#include <time.h>

#include "http/http.h"
#include "model/validate.h"

/* For durations: the monotonic clock, which wall-clock steps (NTP, an operator) never move. */
uint64_t now_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

void respond_json(struct request *rq, int status, json_t *body)
{
    char *txt = json_dumps(body, JSON_COMPACT);
    json_decref(body);
    rq->resp.status = status;
    if (!txt) {
        rq->resp.status = 500;
        rq->resp.body = arena_strdup(&rq->arena, "{\"status\":\"error\",\"message\":\"Internal server error.\"}");
    } else {
        rq->resp.body = arena_strdup(&rq->arena, txt);
        free(txt);
    }
    rq->resp.len = strlen(rq->resp.body);
}

void respond_not_modified(struct request *rq, const char *etag, size_t length)
{
    rq->resp.status = 304;
    rq->resp.body = NULL;
    rq->resp.len = length;
    rq->resp.etag = etag;
}

void respond_json_text(struct request *rq, int status, const char *json)
{
    rq->resp.status = status;
    rq->resp.body = arena_strdup(&rq->arena, json);
    rq->resp.len = strlen(rq->resp.body);
}

void respond_header(struct request *rq, const char *name, const char *value)
{
    if (rq->resp.nextra < RESP_EXTRA_MAX) {
        rq->resp.extra[rq->resp.nextra].name = name;
        rq->resp.extra[rq->resp.nextra].value = value;
        rq->resp.nextra++;
    }
}

void respond_bytes(struct request *rq, int status, char *body, size_t len)
{
    rq->resp.status = status;
    rq->resp.body = body;
    rq->resp.len = len;
}

/* Eka's OpenAPI types the 400 of a create (POST on a collection) as {"message": [string]};
 * every other error's message is a string. The route is matched here when the error came
 * before routing (HTTP framing), so the shape does not depend on which layer refused. */
static bool is_create(struct request *rq)
{
    if (rq->method != M_POST || !rq->path)
        return false;
    struct route rt = rq->route;
    if (rt.kind == RT_NOT_FOUND && !route_match(rq->path, &rq->arena, &rt))
        return false;
    return rt.kind == RT_COLLECTION;
}

/* Everything under /connect-auth/ answers errors in that API's own shape,
 * {"code":N,"error":"..."}, whichever layer found the error; /cdr/v1 answers
 * {"status":"error","message":...} with "errors" when fields are at fault. */
void respond_error(struct request *rq, const struct herr *e)
{
    int status = e->status ? e->status : 500;
    const char *message = e->message ? e->message : "Error";
    if (text_codepoints(message, strlen(message)) < 0) /* a parser quoting invalid input */
        message = "Invalid request.";
    json_t *o;
    if (strncmp(rq->path, "/connect-auth/", 14) == 0) {
        o = json_pack("{s:i, s:s}", "code", status, "error", message);
    } else {
        json_t *msg = json_string(message);
        if (status == 400 && is_create(rq))
            msg = json_pack("[o]", msg);
        o = json_pack("{s:s, s:o}", "status", "error", "message", msg);
        if (e->fields)
            json_object_set(o, "errors", e->fields);
        if (e->extra)
            json_object_update(o, e->extra);
    }
    respond_json(rq, status, o);
    rq->resp.allow = e->allow;
    rq->resp.retry_after = e->retry_after;
}

/* A media type parameter's value (token or quoted-string, RFC 9110 §5.6.6) equals want,
 * ignoring case. */
static bool param_is(const char *v, size_t n, const char *want)
{
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"') {
        /* quoted: drop the quotes and the backslashes of quoted-pairs */
        char buf[64];
        size_t k = 0;
        for (size_t i = 1; i + 1 < n; i++) {
            if (v[i] == '\\' && i + 2 < n)
                i++;
            if (k + 1 >= sizeof buf)
                return false;
            buf[k++] = v[i];
        }
        buf[k] = '\0';
        return strcasecmp(buf, want) == 0;
    }
    return strlen(want) == n && strncasecmp(v, want, n) == 0;
}

/* "application/json", any case, optionally followed by parameters. JSON is UTF-8 (RFC 8259
 * §8.1): a charset parameter naming anything else means the body would be misread. */
static bool is_json_type(const char *ct, bool *bad_charset)
{
    *bad_charset = false;
    if (!ct)
        return false;
    while (*ct == ' ')
        ct++;
    static const char want[] = "application/json";
    if (strncasecmp(ct, want, sizeof want - 1) != 0)
        return false;
    const char *rest = ct + sizeof want - 1;
    while (*rest == ' ' || *rest == '\t')
        rest++;
    if (*rest != '\0' && *rest != ';')
        return false;
    while (*rest == ';') {
        const char *name = rest + 1;
        while (*name == ' ' || *name == '\t')
            name++;
        const char *end = strchr(name, ';');
        if (!end)
            end = name + strlen(name);
        const char *eq = memchr(name, '=', (size_t)(end - name));
        size_t nlen = (size_t)((eq ? eq : end) - name);
        while (nlen && (name[nlen - 1] == ' ' || name[nlen - 1] == '\t'))
            nlen--;
        if (nlen == 7 && strncasecmp(name, "charset", 7) == 0) {
            const char *v = eq ? eq + 1 : end, *vend = end;
            while (v < vend && (*v == ' ' || *v == '\t'))
                v++;
            while (vend > v && (vend[-1] == ' ' || vend[-1] == '\t'))
                vend--;
            /* "utf8" is the WHATWG Encoding Standard's other label for UTF-8 */
            if (!param_is(v, (size_t)(vend - v), "utf-8") && !param_is(v, (size_t)(vend - v), "utf8"))
                *bad_charset = true;
        }
        rest = end;
    }
    return !*bad_charset;
}

/* Nesting depth outside strings; jansson's own limit is far deeper than any body here needs. */
static bool depth_ok(const char *s, size_t n)
{
    int depth = 0;
    bool in_str = false;
    for (size_t i = 0; i < n; i++) {
        char c = s[i];
        if (in_str) {
            if (c == '\\')
                i++;
            else if (c == '"')
                in_str = false;
        } else if (c == '"') {
            in_str = true;
        } else if (c == '{' || c == '[') {
            if (++depth > JSON_DEPTH_MAX)
                return false;
        } else if (c == '}' || c == ']') {
            depth--;
        }
    }
    return true;
}

static void json_decref_void(void *p) { json_decref(p); }

json_t *request_json(struct request *rq, struct herr *e)
{
    bool bad_charset;
    if (!is_json_type(rq->content_type, &bad_charset)) {
        herr_set(e, 415, bad_charset ? "Content-Type charset must be utf-8: JSON bodies are UTF-8."
                                     : "Content-Type must be application/json.");
        return NULL;
    }
    if (rq->body_len == 0) {
        herr_set(e, 400, "Request body is empty; a JSON object is required.");
        return NULL;
    }
    if (!depth_ok(rq->body, rq->body_len)) {
        herr_set(e, 400, "Invalid JSON: nested deeper than 32 levels.");
        return NULL;
    }
    json_error_t jerr;
    /* NUL is let through the parser (jansson still refuses it in keys) so that the field
     * rules refuse it with the field named, like any other control character. */
    json_t *v = json_loadb(rq->body, rq->body_len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (!v) {
        herr_set(e, 400,
                 arena_printf(&rq->arena, "Invalid JSON at line %d, column %d: %s", jerr.line, jerr.column, jerr.text));
        return NULL;
    }
    arena_defer(&rq->arena, json_decref_void, v);
    return v;
}
