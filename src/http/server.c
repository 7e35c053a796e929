#include "http/server.h"

#include <arpa/inet.h>
#include <microhttpd.h>
#include <netdb.h>
#include <pthread.h>
#include <signal.h>
#include <sodium.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "http/accesslog.h"
#include "http/framing.h"
#include "http/guard.h"
#include "http/http.h"
#include "util/metrics.h"
#include "util/fiber.h"
#include "util/log.h"

/* Past the body limit, at most this much more is read and discarded so the client
 * gets its 413; a larger upload is cut off. */
#define DISCARD_MAX (8 * 1024 * 1024)

/* Per-connection buffer for the request line and headers (so also their limit: 431
 * beyond). libmicrohttpd zeroes it for every request, so it is kept small. */
#define HEADER_POOL (16 * 1024)

/* A handler's stack when it runs on a fiber, and how many idle fibers are kept. The
 * sanitizers' frames are several times larger. */
#if defined(__SANITIZE_ADDRESS__)
#define FIBER_STACK (2 * 1024 * 1024)
#else
#define FIBER_STACK (256 * 1024)
#endif
#define FIBERS_SPARE 256

/* Blocks kept for reuse, under a lock: one thread takes and gives them, or a few. */
struct spares {
    pthread_mutex_t mu;
    unsigned n, cap;
    void *item[FIBERS_SPARE];
};

static void spares_init(struct spares *sp, unsigned cap)
{
    pthread_mutex_init(&sp->mu, NULL);
    sp->n = 0;
    sp->cap = cap < FIBERS_SPARE ? cap : FIBERS_SPARE;
}

static void *spares_take(struct spares *sp)
{
    void *p = NULL;
    pthread_mutex_lock(&sp->mu);
    if (sp->n)
        p = sp->item[--sp->n];
    pthread_mutex_unlock(&sp->mu);
    return p;
}

/* false when full: the caller frees p */
static bool spares_give(struct spares *sp, void *p)
{
    pthread_mutex_lock(&sp->mu);
    bool kept = sp->n < sp->cap;
    if (kept)
        sp->item[sp->n++] = p;
    pthread_mutex_unlock(&sp->mu);
    return kept;
}

/* Empties the list, freeing each block with release. */
static void spares_free(struct spares *sp, void (*release)(void *))
{
    while (sp->n)
        release(sp->item[--sp->n]);
    pthread_mutex_destroy(&sp->mu);
}

#define REQUESTS_SPARE 64

struct server {
    request_handler handle;
    request_check precheck;
    void *ctx;
    const struct server_config *cfg;
    atomic_int in_flight;
    atomic_size_t buffered; /* bytes held by request bodies */
    struct guard guard;
    bool admin; /* the --admin-listen daemon */
    /* Request ids: a keyed hash of a counter (unique, unguessable, no system call) */
    unsigned char rid_key[crypto_shorthash_siphashx24_KEYBYTES];
    atomic_uint_fast64_t rid_counter;
    /* Fibers for the handlers of requests that may write (every method but GET and HEAD):
     * a spare few are kept for reuse, and how many are in use is counted for the stop. */
    struct spares fibers;
    atomic_int fibers_in_use;
    /* Requests' memory kept for reuse: malloc takes a block of this size from its bins
     * after merging its fast ones, which was ~2% of the server's time under load. */
    struct spares requests;
    /* Parked requests whose wait is over, after the first of a burst (wake_request). */
    pthread_mutex_t woken_mu;
    struct request *woken;
    bool woken_armed; /* a woken request's callback is due, and will resume the list */
};

/* Connections the admin address holds at most (metrics scrapers and probes). */
#define ADMIN_CONNECTIONS 64

const char *http_header(struct request *rq, const char *name)
{
    return MHD_lookup_connection_value(rq->conn, MHD_HEADER_KIND, name);
}

struct query_each {
    bool (*fn)(void *ctx, const char *name, const char *value);
    void *ctx;
    bool ok;
};

static enum MHD_Result each_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_each *q = cls;
    q->ok = q->fn(q->ctx, key ? key : "", value ? value : "");
    return q->ok ? MHD_YES : MHD_NO;
}

bool http_query_each(struct request *rq, bool (*fn)(void *ctx, const char *name, const char *value), void *ctx)
{
    struct query_each q = {.fn = fn, .ctx = ctx, .ok = true};
    MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, each_arg, &q);
    return q.ok;
}

struct query_list {
    struct arena *a;
    struct query_param *items;
    size_t n, cap;
};

/* libmicrohttpd splits the query string at '&' and '=' and reads '+' as a space; the
 * percent escapes reach us as sent (URL unescaping is off, see no_unescape). */
static enum MHD_Result collect_arg(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct query_list *ql = cls;
    if ((!key || !*key) && !value) /* "a=1&&b=2": an empty piece says nothing */
        return MHD_YES;
    if (ql->n == ql->cap) {
        size_t cap = ql->cap ? ql->cap * 2 : 8;
        struct query_param *items = arena_calloc(ql->a, cap, sizeof *items);
        if (ql->n)
            memcpy(items, ql->items, ql->n * sizeof *items);
        ql->items = items;
        ql->cap = cap;
    }
    struct query_param *p = &ql->items[ql->n++];
    const char *raw_name = key ? key : "", *raw_value = value ? value : "";
    p->name = query_decode(raw_name, ql->a);
    p->value = query_decode(raw_value, ql->a);
    if (!p->name || !p->value) {
        p->bad = true;
        p->name = arena_strdup(ql->a, raw_name);
        p->value = arena_strdup(ql->a, raw_value);
    }
    return MHD_YES;
}

const struct query_param *http_query(struct request *rq, size_t *n)
{
    if (!rq->query_read) {
        struct query_list ql = {.a = &rq->arena};
        MHD_get_connection_values(rq->conn, MHD_GET_ARGUMENT_KIND, collect_arg, &ql);
        rq->query = ql.items;
        rq->nquery = ql.n;
        rq->query_read = true;
    }
    *n = rq->nquery;
    return rq->query;
}

static enum method parse_method(const char *m)
{
    static const struct {
        const char *name;
        enum method m;
    } table[] = {{"GET", M_GET}, {"HEAD", M_HEAD}, {"POST", M_POST},
                 {"PATCH", M_PATCH}, {"DELETE", M_DELETE}, {"PUT", M_PUT}};
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++)
        if (strcmp(m, table[i].name) == 0)
            return table[i].m;
    return M_OTHER;
}

/* What a GET needs from its arena fits the first chunk (about 3 KiB are used). */
#define ARENA_FIRST (8 * 1024)

/* A body this small (a PATCH's is ~100 bytes) is read into the request's own memory. */
#define BODY_INLINE 1024

struct request_mem {
    struct request rq; /* first: freeing the request frees the whole */
    max_align_t first[ARENA_FIRST / sizeof(max_align_t)];
    char body[BODY_INLINE];
};

/* What hipusers keeps per connection (libmicrohttpd's socket context). */
struct conn_ctx {
    struct guard_conn *guard;
    struct MHD_Connection *conn;
    int fd;
    /* The request target while the header block arrives: libmicrohttpd's own copy, valid
     * until that request ends. */
    const char *target;
    /* In the list of its worker thread's connections whose header block is arriving (from
     * the request line to the access handler's first call). A connection lives on one
     * worker thread, which makes every call below for it. */
    struct conn_ctx *prev, *next;
    bool receiving;
    char client_addr[ADDR_TEXT_MAX]; /* the peer's address as text, made once */
};

static _Thread_local struct conn_ctx *receiving;

static void receiving_add(struct conn_ctx *c)
{
    if (c->receiving)
        return;
    c->prev = NULL;
    c->next = receiving;
    if (receiving)
        receiving->prev = c;
    receiving = c;
    c->receiving = true;
}

static void receiving_remove(struct conn_ctx *c)
{
    if (!c || !c->receiving)
        return;
    if (c->prev)
        c->prev->next = c->next;
    else
        receiving = c->next;
    if (c->next)
        c->next->prev = c->prev;
    c->prev = c->next = NULL;
    c->receiving = false;
}

static struct conn_ctx *conn_ctx_of(struct MHD_Connection *conn)
{
    const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_SOCKET_CONTEXT);
    return ci ? ci->socket_context : NULL;
}

/* Keep the caller's X-Request-Id when it is a plain token, else mint one. */
static void set_request_id(struct server *srv, struct request *rq)
{
    const char *given = http_header(rq, "X-Request-Id");
    size_t n = given ? strlen(given) : 0;
    bool ok = n > 0 && n < sizeof rq->request_id;
    for (size_t i = 0; ok && i < n; i++)
        ok = (given[i] >= '0' && given[i] <= '9') || (given[i] >= 'a' && given[i] <= 'z') ||
             (given[i] >= 'A' && given[i] <= 'Z') || given[i] == '-' || given[i] == '_';
    if (ok) {
        memcpy(rq->request_id, given, n + 1);
        return;
    }
    uint64_t count = atomic_fetch_add_explicit(&srv->rid_counter, 1, memory_order_relaxed);
    unsigned char rnd[crypto_shorthash_siphashx24_BYTES];
    crypto_shorthash_siphashx24(rnd, (const unsigned char *)&count, sizeof count, srv->rid_key);
    sodium_bin2hex(rq->request_id, sizeof rq->request_id, rnd, sizeof rnd);
}

static ssize_t stream_reader(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)pos;
    struct response *resp = cls;
    long n = resp->stream(resp->stream_ctx, buf, max);
    if (n < 0)
        return MHD_CONTENT_READER_END_WITH_ERROR;
    if (n == 0)
        return MHD_CONTENT_READER_END_OF_STREAM;
    return (ssize_t)n;
}

static void stream_done(void *cls)
{
    struct response *resp = cls;
    if (resp->stream_free)
        resp->stream_free(resp->stream_ctx);
    free(resp);
}

/* Never called: HEAD and 304 responses carry no body (libmicrohttpd sends only the headers). */
static ssize_t no_body(void *cls, uint64_t pos, char *buf, size_t max)
{
    (void)cls;
    (void)pos;
    (void)buf;
    (void)max;
    return MHD_CONTENT_READER_END_WITH_ERROR;
}

/* HEAD gets the headers GET would get and no body: a stream is run to count its length
 * (constant memory), then dropped, and the answer declares that length. */
static struct MHD_Response *head_response(struct request *rq)
{
    char buf[16 * 1024];
    uint64_t total = 0;
    long n;
    while ((n = rq->resp.stream(rq->resp.stream_ctx, buf, sizeof buf)) > 0)
        total += (uint64_t)n;
    if (rq->resp.stream_free)
        rq->resp.stream_free(rq->resp.stream_ctx);
    rq->resp.stream_free = NULL;
    if (n < 0)
        return NULL;
    return MHD_create_response_from_callback(total, 1024, no_body, NULL, NULL);
}

static enum MHD_Result send_response(struct request *rq)
{
    struct MHD_Response *r;
    if (rq->resp.stream && rq->method == M_HEAD) {
        r = head_response(rq);
    } else if (rq->resp.stream) {
        /* The stream outlives nothing of the request: it owns its state and is freed with the response. */
        struct response *copy = malloc(sizeof *copy);
        if (!copy)
            return MHD_NO; /* the request's completion frees the stream */
        *copy = rq->resp;
        rq->resp.stream_free = NULL;
        r = MHD_create_response_from_callback(MHD_SIZE_UNKNOWN, 32 * 1024, stream_reader, copy, stream_done);
        if (!r) {
            stream_done(copy);
            return MHD_NO;
        }
    } else if (rq->resp.status == 304) {
        r = MHD_create_response_from_callback(rq->resp.len, 1024, no_body, NULL, NULL);
    } else {
        /* PERSISTENT: libmicrohttpd neither copies nor writes the buffer (the arena or static data). */
        r = MHD_create_response_from_buffer(rq->resp.len, (void *)rq->resp.body, MHD_RESPMEM_PERSISTENT);
    }
    if (!r)
        return MHD_NO;
    if (rq->resp.status != 304) /* no body, so no representation metadata (RFC 9110 §15.4.5) */
        MHD_add_response_header(r, "Content-Type",
                                rq->resp.content_type ? rq->resp.content_type : "application/json; charset=utf-8");
    if (rq->resp.etag)
        MHD_add_response_header(r, "ETag", rq->resp.etag);
    MHD_add_response_header(r, "X-Content-Type-Options", "nosniff");
    MHD_add_response_header(r, "Cache-Control", rq->resp.cache_control ? rq->resp.cache_control : "no-store");
    MHD_add_response_header(r, "X-Request-Id", rq->request_id);
    if (rq->resp.close)
        MHD_add_response_header(r, "Connection", "close");
    if (rq->resp.allow)
        MHD_add_response_header(r, "Allow", rq->resp.allow);
    for (int i = 0; i < rq->resp.nextra; i++)
        MHD_add_response_header(r, rq->resp.extra[i].name, rq->resp.extra[i].value);
    if (rq->resp.retry_after > 0) {
        char ra[16];
        snprintf(ra, sizeof ra, "%d", rq->resp.retry_after);
        MHD_add_response_header(r, "Retry-After", ra);
    }
    enum MHD_Result ok = MHD_queue_response(rq->conn, (unsigned)rq->resp.status, r);
    MHD_destroy_response(r);
    guard_answered(rq->guard, rq->guard_conn);
    return ok;
}

static enum MHD_Result reply_error(struct request *rq, int status, const char *message)
{
    struct herr e = {0};
    herr_set(&e, status, message);
    respond_error(rq, &e);
    return send_response(rq);
}

/* An answer settled from the headers alone. With a body on its way it leaves at once
 * and libmicrohttpd closes the connection rather than read the body; without one it
 * waits for libmicrohttpd's next call, so the connection stays open for the next request. */
static enum MHD_Result answer_early(struct request *rq)
{
    if (rq->has_body)
        return send_response(rq);
    rq->deferred = true;
    return MHD_YES;
}

struct header_list {
    struct arena *a;
    struct header_field *items;
    size_t n, cap;
};

static enum MHD_Result collect_header(void *cls, enum MHD_ValueKind kind, const char *key, const char *value)
{
    (void)kind;
    struct header_list *hl = cls;
    if (hl->n == hl->cap) {
        size_t cap = hl->cap ? hl->cap * 2 : 32;
        struct header_field *items = arena_calloc(hl->a, cap, sizeof *items);
        if (!items)
            return MHD_NO;
        if (hl->n)
            memcpy(items, hl->items, hl->n * sizeof *items);
        hl->items = items;
        hl->cap = cap;
    }
    hl->items[hl->n++] = (struct header_field){.name = key, .value = value ? value : ""};
    return MHD_YES;
}

/* Bodies of all requests of the process together stay under this: past it, new uploads
 * get 503 rather than the server growing without bound. */
#define BODIES_MAX ((size_t)128 * 1024 * 1024)

static char *inline_body(struct request *rq) { return ((struct request_mem *)rq)->body; }

/* Makes room for need bytes of body (plus a NUL): the request's own BODY_INLINE bytes, then
 * one buffer of the heap, sized from Content-Length when it is known. The process-wide budget
 * is charged for what is held. */
static bool reserve_body(struct server *srv, struct request *rq, size_t need)
{
    if (need + 1 <= rq->body_cap)
        return true;
    size_t cap = rq->body_cap ? rq->body_cap : need + 1 <= BODY_INLINE ? BODY_INLINE : 4096;
    while (cap < need + 1)
        cap *= 2;
    if (cap > BODY_MAX + 1)
        cap = BODY_MAX + 1;
    size_t more = cap - rq->body_cap;
    if (atomic_fetch_add(&srv->buffered, more) + more > BODIES_MAX) {
        atomic_fetch_sub(&srv->buffered, more);
        return false;
    }
    char *nb = cap == BODY_INLINE            ? inline_body(rq)
               : rq->body == inline_body(rq) ? malloc(cap)
                                             : realloc(rq->body, cap);
    if (!nb) {
        atomic_fetch_sub(&srv->buffered, more);
        return false;
    }
    if (rq->body == inline_body(rq) && nb != rq->body)
        memcpy(nb, rq->body, rq->body_len + 1);
    rq->body = nb;
    rq->body_cap = cap;
    return true;
}

static bool append_body(struct server *srv, struct request *rq, const char *data, size_t n)
{
    if (!reserve_body(srv, rq, rq->body_len + n))
        return false;
    memcpy(rq->body + rq->body_len, data, n);
    rq->body_len += n;
    rq->body[rq->body_len] = '\0';
    return true;
}

/* ---- handlers on fibers ---- */

static struct fiber *fiber_take(struct server *srv)
{
    struct fiber *f = spares_take(&srv->fibers);
    if (!f)
        f = fiber_new(FIBER_STACK);
    if (f)
        atomic_fetch_add(&srv->fibers_in_use, 1);
    return f;
}

static void fiber_give(struct server *srv, struct fiber *f)
{
    atomic_fetch_sub(&srv->fibers_in_use, 1);
    if (!spares_give(&srv->fibers, f))
        fiber_free(f);
}

static void release_fiber(void *f) { fiber_free(f); }

static void handle_on_fiber(void *arg)
{
    struct request *rq = arg;
    struct server *srv = rq->server;
    srv->handle(srv->ctx, rq);
}

/* A parked handler's wait is over (called from the thread that ended it, the store's
 * writer): libmicrohttpd calls on_request again on the connection's thread, which goes on
 * with the handler.
 *
 * A commit ends the waits of a whole batch, and each MHD_resume_connection is a lock and a
 * write to wake the connections' thread, on the writer's time. So only the first request of
 * a burst is resumed here; the others are listed, and the connections' thread resumes them
 * when it takes the first (resume_woken), with no one to wake. */
static void wake_request(void *arg)
{
    struct request *rq = arg;
    struct server *srv = rq->server;
    pthread_mutex_lock(&srv->woken_mu);
    bool first = !srv->woken_armed;
    if (first) {
        srv->woken_armed = true;
    } else {
        rq->woken_next = srv->woken;
        srv->woken = rq;
    }
    pthread_mutex_unlock(&srv->woken_mu);
    if (first)
        MHD_resume_connection(rq->conn);
}

/* On a connection's thread, in the callback of a woken request: resumes those listed since.
 * Whenever the list is not empty a woken request's callback is still to come (the one that
 * armed it), so none is left suspended. */
static void resume_woken(struct server *srv)
{
    pthread_mutex_lock(&srv->woken_mu);
    struct request *list = srv->woken;
    srv->woken = NULL;
    srv->woken_armed = false;
    pthread_mutex_unlock(&srv->woken_mu);
    for (struct request *next; list; list = next) {
        next = list->woken_next;
        MHD_resume_connection(list->conn);
    }
}

/* Runs the request's fiber until its handler ends (the answer goes out) or parks (the
 * connection is suspended, then the fiber's waiting step runs: its wake resumes it). */
static enum MHD_Result run_fiber(struct server *srv, struct request *rq)
{
    if (fiber_resume(rq->fiber)) {
        fiber_give(srv, rq->fiber);
        rq->fiber = NULL;
        return send_response(rq);
    }
    MHD_suspend_connection(rq->conn);
    fiber_then(rq->fiber);
    return MHD_YES;
}

static enum MHD_Result on_request(void *cls, struct MHD_Connection *conn, const char *url, const char *method,
                                  const char *version, const char *upload_data, size_t *upload_size,
                                  void **con_cls)
{
    struct server *srv = cls;
    struct request *rq = *con_cls;
    if (!rq) {
        /* One allocation per request: the request and the first chunk of its arena. */
        struct request_mem *m = spares_take(&srv->requests);
        if (!m)
            m = malloc(sizeof *m);
        if (!m)
            return MHD_NO;
        rq = &m->rq;
        memset(rq, 0, sizeof *rq);
        arena_init_with(&rq->arena, m->first, sizeof m->first);
        rq->start_us = now_us();
        rq->conn = conn;
        rq->admin = srv->admin;
        metrics_request_started(srv->cfg->metrics);
        rq->guard = &srv->guard;
        struct conn_ctx *cc = conn_ctx_of(conn);
        receiving_remove(cc);
        rq->guard_conn = cc ? cc->guard : NULL;
        if (cc) {
            memcpy(rq->client_addr, cc->client_addr, sizeof rq->client_addr);
        } else {
            const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            addr_of_sockaddr(ci ? ci->client_addr : NULL, rq->client_addr, sizeof rq->client_addr);
        }
        guard_headers_done(rq->guard, rq->guard_conn);
        rq->method = parse_method(method);
        rq->method_name = arena_strdup(&rq->arena, method);
        rq->path = arena_strdup(&rq->arena, url);
        set_request_id(srv, rq);
        rq->content_type = http_header(rq, "Content-Type");
        *con_cls = rq;
        atomic_fetch_add(&srv->in_flight, 1);
        struct framing fr;
        struct header_list hl = {.a = &rq->arena};
        MHD_get_connection_values(conn, MHD_HEADER_KIND, collect_header, &hl);
        framing_check(url, version, hl.items, hl.n, &rq->arena, &fr);
        if (fr.status) {
            rq->resp.close = true;
            return reply_error(rq, fr.status, fr.message);
        }
        rq->path = fr.path;
        rq->has_body = fr.body != BODY_NONE;
        if (fr.body == BODY_LENGTH && fr.length > BODY_MAX)
            return reply_error(rq, 413, "Request body is larger than 1 MiB.");
        /* Route, method and token are settled before a byte of the body is read, so an
         * unauthenticated client never gets the server to hold its upload. */
        if (!srv->precheck(srv->ctx, rq))
            return answer_early(rq);
        if (fr.body == BODY_LENGTH && !reserve_body(srv, rq, (size_t)fr.length))
            return reply_error(rq, 503, "The server is busy; retry shortly.");
        return MHD_YES;
    }
    if (*upload_size) {
        size_t n = *upload_size;
        *upload_size = 0;
        if (!rq->too_large && !rq->busy) {
            if (rq->body_len + n > BODY_MAX)
                rq->too_large = true;
            else if (append_body(srv, rq, upload_data, n))
                return MHD_YES;
            else
                rq->busy = true;
        }
        rq->discarded += n; /* read and dropped so the client gets its answer, up to a point */
        return rq->discarded > DISCARD_MAX ? MHD_NO : MHD_YES;
    }
    if (rq->fiber) { /* woken: the handler goes on */
        resume_woken(srv);
        return run_fiber(srv, rq);
    }
    if (rq->deferred)
        return send_response(rq);
    if (rq->too_large)
        return reply_error(rq, 413, "Request body is larger than 1 MiB.");
    if (rq->busy)
        return reply_error(rq, 503, "The server is busy; retry shortly.");
    /* Reads never wait for the writer; anything else may, so it runs on a fiber. */
    if (rq->method != M_GET && rq->method != M_HEAD && (rq->fiber = fiber_take(srv))) {
        rq->server = srv;
        fiber_start(rq->fiber, handle_on_fiber, rq, wake_request, rq);
        return run_fiber(srv, rq);
    }
    srv->handle(srv->ctx, rq);
    return send_response(rq);
}

/* Paths in the log keep their shape but never a caller-chosen id (a partner id may be
 * anything, even personal data): an item shows the Eka id of the record it resolved to. */
static const char *log_path(struct request *rq)
{
    const struct route *rt = &rq->route;
    if (rt->kind == RT_NOT_FOUND)
        return "(unrouted)";
    if (rt->kind != RT_ITEM && rt->kind != RT_HIPUSER && rt->kind != RT_HISTORY && rt->kind != RT_RESTORE)
        return rq->path;
    return arena_printf(&rq->arena, "/cdr/v1/%s/%s%s", rt->kind == RT_HIPUSER ? "hipusers" : rt->res->path,
                        rq->log_id ? rq->log_id : "{id}",
                        rt->kind == RT_HISTORY   ? "/history"
                        : rt->kind == RT_RESTORE ? "/restore"
                                                 : "");
}

static void on_completed(void *cls, struct MHD_Connection *conn, void **con_cls, enum MHD_RequestTerminationCode toe)
{
    (void)conn;
    struct server *srv = cls;
    struct request *rq = *con_cls;
    if (!rq)
        return;
    uint64_t duration_us = now_us() - rq->start_us;
    /* A response cut off on its way counts as none. */
    metrics_request_done(srv->cfg->metrics, route_metric(&rq->route),
                         toe == MHD_REQUEST_TERMINATED_COMPLETED_OK ? rq->resp.status : 0, duration_us);
    if (srv->cfg->access_log) {
        struct access_entry e = {.method = rq->method_name,
                                 .path = log_path(rq),
                                 .status = rq->resp.status,
                                 .us = (long long)duration_us,
                                 .tenant = rq->tenant,
                                 .request_id = rq->request_id,
                                 .completed = toe == MHD_REQUEST_TERMINATED_COMPLETED_OK};
        access_log_write(STDERR_FILENO, &rq->arena, &e);
    }
    guard_request_done(&srv->guard, rq->guard_conn);
    if (rq->fiber) {
        /* Never seen: a parked request's connection is suspended until its handler ends.
         * Its stack may still be referenced, so it is left alone. */
        log_line("error", "a request ended with its handler parked", NULL, 0);
        resume_woken(srv);
        atomic_fetch_sub(&srv->fibers_in_use, 1);
    }
    if (rq->resp.stream_free) /* a stream never handed to libmicrohttpd */
        rq->resp.stream_free(rq->resp.stream_ctx);
    atomic_fetch_sub(&srv->buffered, rq->body_cap);
    if (rq->body != inline_body(rq))
        free(rq->body);
    arena_release(&rq->arena);
    if (!spares_give(&srv->requests, rq)) /* the request is its memory's start */
        free(rq);
    *con_cls = NULL;
    atomic_fetch_sub(&srv->in_flight, 1);
}

static enum MHD_Result admit(void *cls, const struct sockaddr *addr, socklen_t len)
{
    (void)addr;
    (void)len;
    struct server *srv = cls;
    return guard_admit(&srv->guard) ? MHD_YES : MHD_NO;
}

static void on_connection(void *cls, struct MHD_Connection *conn, void **socket_context,
                          enum MHD_ConnectionNotificationCode code)
{
    struct server *srv = cls;
    if (code == MHD_CONNECTION_NOTIFY_STARTED) {
        const union MHD_ConnectionInfo *ci = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CONNECTION_FD);
        struct conn_ctx *c = ci ? calloc(1, sizeof *c) : NULL;
        if (c) {
            c->conn = conn;
            c->fd = ci->connect_fd;
            c->guard = guard_opened(&srv->guard, c->fd);
            const union MHD_ConnectionInfo *ai = MHD_get_connection_info(conn, MHD_CONNECTION_INFO_CLIENT_ADDRESS);
            addr_of_sockaddr(ai ? ai->client_addr : NULL, c->client_addr, sizeof c->client_addr);
        }
        *socket_context = c;
        metrics_connection(srv->cfg->metrics, 1);
    } else {
        struct conn_ctx *c = *socket_context;
        metrics_connection(srv->cfg->metrics, -1);
        receiving_remove(c);
        if (c)
            guard_closed(&srv->guard, c->guard);
        free(c);
        *socket_context = NULL;
    }
}

/* ---- libmicrohttpd's own refusal of a Content-Length, answered by hipusers instead ----
 *
 * libmicrohttpd 0.9.75 reads Content-Length itself once the header block is in, before the
 * access handler is called (parse_connection_headers, src/microhttpd/connection.c): a value
 * that is not a number gets its own 400, one past 2^64-1 its own 413, and the access handler
 * is never called for that request. That answer goes out with its status line and headers
 * twice: transmit_error_response_len builds them into the write buffer and sets the state to
 * HEADERS_SENDING, then MHD_connection_handle_idle, back from parse_connection_headers, sets
 * the state to HEADERS_PROCESSED all the same, and the state machine goes on through
 * FULL_REQ_RECEIVED to START_REPLY, which builds them again behind the first copy. No option
 * or flag avoids that path (docs/bad-inputs.md).
 *
 * The one piece of ours that runs on it is the error logger, called just before the refusal
 * is queued. There the connection whose header block is being judged is found (the only one
 * of its thread's receiving connections past its header block: any other went on to the
 * access handler in the same pass), hipusers' own JSON error is written to its socket, and
 * the socket is shut down: libmicrohttpd's answer then fails to go out and it closes the
 * connection. libmicrohttpd does not tell the method before the access handler: the error
 * takes a create's shape when the path is a collection (a body announced there is a
 * create's). */

static const char LIB_LENGTH_NOT_A_NUMBER[] = "Failed to parse `Content-Length' header. Closing connection.\n";
static const char LIB_LENGTH_TOO_LARGE[] = "Too large value of 'Content-Length' header. Closing connection.\n";

/* The request line has arrived: the connection's header block is on its way. */
static void *on_request_line(void *cls, const char *uri, struct MHD_Connection *conn)
{
    (void)cls;
    struct conn_ctx *c = conn_ctx_of(conn);
    if (c) {
        c->target = uri ? uri : "";
        receiving_add(c);
    }
    return NULL; /* the request's own context is made by on_request */
}

static void refuse_length(struct server *srv, struct conn_ctx *c, int status)
{
    struct request_mem *m = malloc(sizeof *m);
    if (!m) {
        shutdown(c->fd, SHUT_RDWR);
        return;
    }
    struct request *rq = &m->rq;
    memset(rq, 0, sizeof *rq);
    arena_init_with(&rq->arena, m->first, sizeof m->first);
    rq->conn = c->conn;
    rq->method = M_POST;
    rq->path = framing_origin_form(c->target, &rq->arena);
    if (!rq->path)
        rq->path = "/";
    set_request_id(srv, rq);
    struct herr e = {0};
    herr_set(&e, status,
             status == 400 ? "Content-Length must be a decimal number." : "Request body is larger than 1 MiB.");
    respond_error(rq, &e);
    char date[64];
    struct tm tm;
    time_t now = time(NULL);
    strftime(date, sizeof date, "%a, %d %b %Y %H:%M:%S GMT", gmtime_r(&now, &tm));
    const char *text = arena_printf(&rq->arena,
                                    "HTTP/1.1 %d %s\r\nDate: %s\r\nConnection: close\r\n"
                                    "Content-Type: application/json; charset=utf-8\r\n"
                                    "X-Content-Type-Options: nosniff\r\nCache-Control: no-store\r\n"
                                    "X-Request-Id: %s\r\nContent-Length: %zu\r\n\r\n%.*s",
                                    status, status == 400 ? "Bad Request" : "Content Too Large", date,
                                    rq->request_id, rq->resp.len, (int)rq->resp.len, rq->resp.body);
    size_t len = text ? strlen(text) : 0;
    /* A few hundred bytes into a socket that has sent every earlier answer: they go at
     * once. Should they not all fit, the connection is cut rather than answered in part. */
    ssize_t sent = len ? send(c->fd, text, len, MSG_NOSIGNAL | MSG_DONTWAIT) : -1;
    shutdown(c->fd, sent == (ssize_t)len ? SHUT_WR : SHUT_RDWR);
    arena_release(&rq->arena);
    free(m);
}

/* libmicrohttpd's messages: all but the two above stay unlogged, as they were without a logger. */
static void on_library_message(void *cls, const char *fmt, va_list ap)
{
    (void)ap;
    int status = strcmp(fmt, LIB_LENGTH_NOT_A_NUMBER) == 0 ? 400 : strcmp(fmt, LIB_LENGTH_TOO_LARGE) == 0 ? 413 : 0;
    if (!status)
        return;
    struct conn_ctx *c = receiving;
    while (c && !MHD_get_connection_info(c->conn, MHD_CONNECTION_INFO_REQUEST_HEADER_SIZE))
        c = c->next;
    if (!c)
        return; /* not found: libmicrohttpd's own answer goes out */
    receiving_remove(c);
    refuse_length(cls, c, status);
}

/* Every connection needs a descriptor: take all the hard limit allows. */
static void raise_fd_limit(void)
{
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
        rl.rlim_cur = rl.rlim_max;
        setrlimit(RLIMIT_NOFILE, &rl);
    }
}

/* The raw path reaches the router: it decodes the id itself so %2F and %00 stay inert. */
static size_t no_unescape(void *cls, struct MHD_Connection *c, char *uri)
{
    (void)cls;
    (void)c;
    return strlen(uri);
}

static bool parse_listen(const char *listen, struct sockaddr_storage *ss, socklen_t *len)
{
    char host[256];
    const char *colon = strrchr(listen, ':');
    if (!colon || colon == listen || (size_t)(colon - listen) >= sizeof host)
        return false;
    memcpy(host, listen, (size_t)(colon - listen));
    host[colon - listen] = '\0';
    struct addrinfo hints = {.ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *res = NULL;
    if (getaddrinfo(host, colon + 1, &hints, &res) != 0 || !res)
        return false;
    memcpy(ss, res->ai_addr, res->ai_addrlen);
    *len = res->ai_addrlen;
    freeaddrinfo(res);
    return true;
}

/* One libmicrohttpd daemon on `listen` for srv, with its own connection guard; NULL
 * (with a message on stderr) when it cannot start. */
static struct MHD_Daemon *start_daemon(struct server *srv, const char *listen, unsigned threads,
                                       unsigned max_connections)
{
    randombytes_buf(srv->rid_key, sizeof srv->rid_key);
    struct sockaddr_storage ss;
    socklen_t sslen;
    if (!parse_listen(listen, &ss, &sslen)) {
        fprintf(stderr, "hipusers: cannot parse listen address %s (want HOST:PORT)\n", listen);
        return NULL;
    }
    guard_init(&srv->guard, max_connections, srv->cfg->timeout_s);
    if (!guard_start(&srv->guard)) {
        fprintf(stderr, "hipusers: cannot start the connection guard\n");
        return NULL;
    }
    /* poll(), not epoll: quiescing an epoll daemon that runs its own threads races inside
     * libmicrohttpd (its MHD_quiesce_daemon and the workers both take the listening socket
     * out of the epoll set, and the loser aborts the process; seen at SIGTERM in CI). */
    unsigned flags = MHD_USE_INTERNAL_POLLING_THREAD | MHD_USE_POLL | MHD_USE_TURBO | MHD_USE_ITC |
                     MHD_ALLOW_SUSPEND_RESUME | MHD_USE_ERROR_LOG; /* the logger: see on_library_message */
    if (ss.ss_family == AF_INET6)
        flags |= MHD_USE_IPv6;
    /* The guard enforces max_connections across all workers; libmicrohttpd's own limit
     * (split between the workers) sits above it so it never leaves clients queued. */
    struct MHD_Daemon *d = MHD_start_daemon(
        flags, 0, admit, srv, on_request, srv, MHD_OPTION_SOCK_ADDR, (struct sockaddr *)&ss,
        MHD_OPTION_THREAD_POOL_SIZE, threads, MHD_OPTION_CONNECTION_LIMIT, max_connections * 2 + threads,
        MHD_OPTION_NOTIFY_CONNECTION, on_connection, srv, MHD_OPTION_CONNECTION_TIMEOUT, srv->cfg->timeout_s,
        MHD_OPTION_CONNECTION_MEMORY_LIMIT, (size_t)HEADER_POOL, MHD_OPTION_LISTEN_BACKLOG_SIZE, 1024u,
        MHD_OPTION_NOTIFY_COMPLETED, on_completed, srv, MHD_OPTION_UNESCAPE_CALLBACK, no_unescape, NULL,
        MHD_OPTION_URI_LOG_CALLBACK, on_request_line, srv, MHD_OPTION_EXTERNAL_LOGGER, on_library_message, srv,
        MHD_OPTION_END);
    if (!d) {
        guard_stop(&srv->guard);
        fprintf(stderr, "hipusers: cannot listen on %s\n", listen);
    }
    return d;
}

/* Stops accepting on d; returns the listening socket, closed by the caller once d is stopped. */
static MHD_socket quiesce(struct MHD_Daemon *d)
{
    MHD_socket listener = d ? MHD_quiesce_daemon(d) : MHD_INVALID_SOCKET;
    /* Quiescing only stops accept(): new clients would wait in the backlog. shutdown() makes
     * them see a refusal at once, while the descriptor stays valid for the workers, which
     * drop it from their poll sets when they next wake; it is closed once they are gone. */
    if (listener != MHD_INVALID_SOCKET)
        shutdown(listener, SHUT_RDWR);
    return listener;
}

static void stop_daemon(struct server *srv, struct MHD_Daemon *d, MHD_socket listener)
{
    if (!d)
        return;
    MHD_stop_daemon(d);
    if (listener != MHD_INVALID_SOCKET)
        close(listener);
    guard_stop(&srv->guard);
}

int server_run(request_check precheck, request_handler handle, void *ctx, const struct server_config *cfg)
{
    struct server srv = {.precheck = precheck, .handle = handle, .ctx = ctx, .cfg = cfg};
    struct server adm = {.precheck = precheck, .handle = handle, .ctx = ctx, .cfg = cfg, .admin = true};
    struct sockaddr_storage ss;
    socklen_t sslen;
    const char *addrs[] = {cfg->listen, cfg->admin_listen};
    for (int i = 0; i < 2; i++)
        if (addrs[i] && !parse_listen(addrs[i], &ss, &sslen)) {
            fprintf(stderr, "hipusers: cannot parse listen address %s (want HOST:PORT)\n", addrs[i]);
            return 2;
        }
    /* Signals are taken by sigwait below, never by the worker threads. */
    sigset_t sigs;
    sigemptyset(&sigs);
    sigaddset(&sigs, SIGTERM);
    sigaddset(&sigs, SIGINT);
    pthread_sigmask(SIG_BLOCK, &sigs, NULL);
    signal(SIGPIPE, SIG_IGN);

    raise_fd_limit();
    spares_init(&srv.fibers, FIBERS_SPARE);
    spares_init(&adm.fibers, FIBERS_SPARE);
    spares_init(&srv.requests, REQUESTS_SPARE);
    spares_init(&adm.requests, REQUESTS_SPARE);
    pthread_mutex_init(&srv.woken_mu, NULL);
    pthread_mutex_init(&adm.woken_mu, NULL);
    /* The admin address first: once the main one answers, both do. */
    struct MHD_Daemon *ad = NULL;
    if (cfg->admin_listen) {
        ad = start_daemon(&adm, cfg->admin_listen, 1, ADMIN_CONNECTIONS);
        if (!ad)
            return 1;
        fprintf(stderr, "{\"level\":\"info\",\"msg\":\"admin listening\",\"listen\":\"%s\"}\n",
                cfg->admin_listen);
    }
    struct MHD_Daemon *d = start_daemon(&srv, cfg->listen, (unsigned)cfg->threads, cfg->max_connections);
    if (!d) {
        stop_daemon(&adm, ad, MHD_INVALID_SOCKET);
        return 1;
    }
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"listening\",\"listen\":\"%s\",\"threads\":%d}\n", cfg->listen,
            cfg->threads);
    int sig = 0;
    sigwait(&sigs, &sig);
    /* Stop accepting, give requests in flight up to 10 s, then close everything. */
    MHD_socket listener = quiesce(d), admin_listener = quiesce(ad);
    for (int i = 0; i < 1000 && atomic_load(&srv.in_flight) + atomic_load(&adm.in_flight) > 0; i++)
        usleep(10000);
    /* A parked handler waits for the store's writer, which always answers: its connection
     * is suspended, and libmicrohttpd must not stop with one suspended. */
    while (atomic_load(&srv.fibers_in_use) + atomic_load(&adm.fibers_in_use) > 0)
        usleep(10000);
    stop_daemon(&adm, ad, admin_listener);
    stop_daemon(&srv, d, listener);
    spares_free(&srv.fibers, release_fiber);
    spares_free(&adm.fibers, release_fiber);
    spares_free(&srv.requests, free);
    spares_free(&adm.requests, free);
    pthread_mutex_destroy(&srv.woken_mu);
    pthread_mutex_destroy(&adm.woken_mu);
    fprintf(stderr, "{\"level\":\"info\",\"msg\":\"stopped\",\"signal\":%d}\n", sig);
    return 0;
}
