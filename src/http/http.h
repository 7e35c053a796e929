/* What a handler sees of an HTTP exchange, independent of libmicrohttpd. */
#ifndef HIP_HTTP_H
#define HIP_HTTP_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "http/router.h"
#include "util/arena.h"
#include "util/err.h"
#include "util/netaddr.h"

#define BODY_MAX (1024 * 1024)
#define JSON_DEPTH_MAX 32
#define RESP_EXTRA_MAX 4

struct guard;
struct guard_conn;

enum method { M_OTHER, M_GET, M_HEAD, M_POST, M_PATCH, M_DELETE, M_PUT };

/* Produces the next piece of a streamed body into buf; returns bytes written,
 * 0 at the end, -1 on failure (the connection is then cut). */
typedef long (*stream_fn)(void *ctx, char *buf, size_t cap);

struct response {
    int status;
    const char *body; /* arena-owned, or static */
    size_t len;
    const char *content_type;  /* NULL: application/json; charset=utf-8 */
    const char *cache_control; /* NULL: no-store */
    const char *allow;
    const char *etag; /* the ETag header (quoted), or NULL */
    int retry_after;
    bool close; /* the connection is closed after this answer (framing errors) */
    struct {
        const char *name, *value; /* static or arena-owned */
    } extra[RESP_EXTRA_MAX];      /* headers a handler adds (respond_header) */
    int nextra;
    stream_fn stream; /* instead of body: a chunked stream */
    void *stream_ctx;
    void (*stream_free)(void *ctx);
};

/* One parameter of the query string, percent-decoded, '+' read as a space (HTML form
 * encoding, as clients' URL libraries write it). bad: an escape is malformed or decodes
 * to NUL; name and value are then as sent. value is "" for a parameter without '='. */
struct query_param {
    const char *name, *value;
    bool bad;
};

struct request {
    struct arena arena;
    enum method method;
    const char *method_name;
    const char *path;
    const char *content_type; /* read when the headers arrive */
    char *body;
    size_t body_len, body_cap;
    size_t discarded;
    bool too_large, busy;
    bool has_body; /* the framing announced a body (Content-Length > 0 or chunked) */
    bool deferred; /* answered at the headers, sent once the (empty) body is read */
    bool admin;    /* arrived on the --admin-listen address */
    void *api_state; /* what the layer behind the HTTP adapter settled at precheck */
    struct route route;
    const struct query_param *query; /* http_query, once read */
    size_t nquery;
    bool query_read;
    char request_id[33];
    const char *tenant; /* for the access log, once authenticated */
    const char *log_id; /* the server-issued id of the record the path named, once found */
    uint64_t start_us;
    char client_addr[ADDR_TEXT_MAX]; /* the peer's IP address as text; "" when it has none */
    void *conn;             /* the libmicrohttpd connection */
    struct guard *guard;
    struct guard_conn *guard_conn;
    struct response resp;
    /* The handler of a request that may write runs on a fiber, which parks (its connection
     * suspended) while the write waits for its commit. */
    struct fiber *fiber;
    void *server;
    struct request *woken_next; /* in the server's list of woken requests */
};

/* A request header, or NULL. */
const char *http_header(struct request *rq, const char *name);
/* Every value of a header that may be sent more than once, in order, joined by ", "
 * (RFC 9110 §5.3), in the request's arena; NULL when absent. */
const char *http_header_joined(struct request *rq, const char *name);

/* Calls fn for each query parameter of the request target in order, name and value as sent
 * (not percent-decoded; "" for a name without '='); false when fn answers false. */
bool http_query_each(struct request *rq, bool (*fn)(void *ctx, const char *name, const char *value), void *ctx);
/* The query string's parameters in the order sent, repeats included; *n gets how many. */
const struct query_param *http_query(struct request *rq, size_t *n);

/* Responses: all bodies are JSON. */
void respond_json(struct request *rq, int status, json_t *body); /* steals body */
/* A body that is JSON text already (copied). */
void respond_json_text(struct request *rq, int status, const char *json);
/* Adds a header to the response (at most RESP_EXTRA_MAX; name and value must outlive the
 * request: static or in its arena). */
void respond_header(struct request *rq, const char *name, const char *value);
/* A body already written (JSON text of len bytes in the request's arena). */
void respond_bytes(struct request *rq, int status, char *body, size_t len);
void respond_error(struct request *rq, const struct herr *e);
/* 304 Not Modified: no body, the entity tag in ETag; length is the size of the body a 200
 * would have (the only Content-Length a 304 may declare, RFC 9110 §8.6). */
void respond_not_modified(struct request *rq, const char *etag, size_t length);

/* Parses the request body as a JSON object or value; duplicate keys and nesting
 * deeper than JSON_DEPTH_MAX are errors. Checks Content-Type first (415). */
json_t *request_json(struct request *rq, struct herr *e);

/* Microseconds on the monotonic clock: for measuring durations only. */
uint64_t now_us(void);

#endif
