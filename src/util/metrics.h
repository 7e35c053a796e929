/* The server's metrics, rendered in Prometheus' text format (0.0.4) for GET /metrics.
 *
 * Every label value comes from a fixed enum below, so no series is ever named after
 * anything a client sent (no tenant, no id, no path). Counting is cheap: each thread
 * counts into a shard of its own (relaxed atomics on cache lines no other thread writes
 * to, unless there are more threads than shards), and a scrape sums the shards. There
 * is no lock on the request path. The registry belongs to the server context (struct
 * app); functions given a NULL registry count nothing (the command-line tools). */
#ifndef HIP_METRICS_H
#define HIP_METRICS_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* Route templates: the route a request matched, never its path. */
enum metric_route {
    MR_UNROUTED, /* no route: 404s of unknown paths, requests refused by the framing checks */
    MR_EKAUSER_COLLECTION,
    MR_EKAUSER_ITEM,
    MR_DOCTOR_COLLECTION,
    MR_DOCTOR_ITEM,
    MR_CLINIC_COLLECTION,
    MR_CLINIC_ITEM,
    MR_HIPUSERS_COLLECTION,
    MR_HIPUSERS_ITEM,
    MR_BUSINESS_INFO,
    MR_LOGIN,
    MR_REFRESH_TOKEN,
    MR_REFRESH,
    MR_METRICS,
    MR_HEALTHZ,
    MR_READYZ,
    MR_EKAUSER_HISTORY,
    MR_DOCTOR_HISTORY,
    MR_CLINIC_HISTORY,
    MR_EKAUSER_RESTORE,
    MR_DOCTOR_RESTORE,
    MR_CLINIC_RESTORE,
    MR_CHANGES,
    MR_OPENAPI, /* /openapi.json */
    MR_DOCS,    /* /docs and its files */
    MR_OTHER, /* a route without a template of its own here */
    MR_COUNT
};

/* Events counted by the layers behind the HTTP adapter. */
enum metric_event {
    ME_LOGIN_SUCCESS,
    ME_LOGIN_FAILURE,           /* 401: wrong credentials, unknown or revoked client */
    ME_LOGIN_THROTTLED,         /* 429 */
    ME_REFRESH_SUCCESS,         /* a new pair (a retry within the reuse grace included) */
    ME_REFRESH_FAILURE,         /* 401 other than reuse: unknown, expired, revoked, mismatched */
    ME_REFRESH_REUSE,           /* a spent refresh token presented again: the session is ended */
    ME_STORE_COMMIT,            /* a write transaction committed */
    ME_STORE_ERROR_RETRY,       /* busy or locked: the client is told to retry shortly */
    ME_STORE_ERROR_UNAVAILABLE, /* disk full, I/O error, read-only, writes paused, cannot open */
    ME_STORE_ERROR_INTERNAL,    /* anything else the storage failed at (a 500) */
    ME_CACHE_HIT,               /* a GET by id answered from the kept answers */
    ME_CACHE_MISS,              /* one that read the store (the answer may then be kept) */
    ME_COUNT
};

#define METRICS_SHARDS 16
#define METRICS_STATUS_CLASSES 4 /* 2xx, 3xx, 4xx, 5xx */
#define METRICS_LATENCY_BUCKETS 14 /* upper bounds in metrics.c; +Inf is one more */
#define METRICS_BATCH_BUCKETS 7

struct metrics_shard {
    _Alignas(64) atomic_uint_fast64_t requests[MR_COUNT][METRICS_STATUS_CLASSES];
    atomic_uint_fast64_t latency[MR_COUNT][METRICS_LATENCY_BUCKETS + 1]; /* per bucket, not cumulative */
    atomic_uint_fast64_t latency_sum_us[MR_COUNT];
    atomic_uint_fast64_t unanswered[MR_COUNT]; /* ended without a complete response (client gone, timeout) */
    atomic_uint_fast64_t events[ME_COUNT];
    atomic_uint_fast64_t batch[METRICS_BATCH_BUCKETS + 1];
    atomic_uint_fast64_t batch_sum;
    atomic_int_fast64_t in_flight; /* gauges: a thread may add and another subtract */
    atomic_int_fast64_t connections;
};

struct metrics {
    struct metrics_shard *shards; /* METRICS_SHARDS of them */
    pthread_key_t shard_key;      /* the calling thread's shard index + 1 */
    atomic_uint next_shard;
    int64_t started_s; /* unix time the process started serving */
};

bool metrics_init(struct metrics *m);
void metrics_free(struct metrics *m);

/* The request path (HTTP adapter). status 0: the request ended without a complete response. */
void metrics_request_started(struct metrics *m);
void metrics_request_done(struct metrics *m, enum metric_route route, int status, uint64_t duration_us);
void metrics_connection(struct metrics *m, int delta);

void metrics_event(struct metrics *m, enum metric_event ev);
/* A storage commit that made `batch` units of work durable at once: counts the commit and
 * observes the batch size (1 until writes are grouped). */
void metrics_store_commit(struct metrics *m, unsigned batch);

/* The text exposition, malloc'd (the caller frees it); NULL when out of memory. */
char *metrics_render(struct metrics *m, size_t *len);

#define METRICS_CONTENT_TYPE "text/plain; version=0.0.4; charset=utf-8"

#endif
