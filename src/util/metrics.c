#include "util/metrics.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#ifndef HIPUSERS_VERSION
#define HIPUSERS_VERSION "unknown"
#endif

static const char *const ROUTE_NAMES[MR_COUNT] = {
    [MR_UNROUTED] = "unrouted",
    [MR_EKAUSER_COLLECTION] = "ekauser_collection",
    [MR_EKAUSER_ITEM] = "ekauser_item",
    [MR_DOCTOR_COLLECTION] = "doctor_collection",
    [MR_DOCTOR_ITEM] = "doctor_item",
    [MR_CLINIC_COLLECTION] = "clinic_collection",
    [MR_CLINIC_ITEM] = "clinic_item",
    [MR_HIPUSERS_COLLECTION] = "hipusers_collection",
    [MR_HIPUSERS_ITEM] = "hipusers_item",
    [MR_BUSINESS_INFO] = "business_info",
    [MR_LOGIN] = "login",
    [MR_REFRESH_TOKEN] = "refresh_token",
    [MR_REFRESH] = "refresh",
    [MR_METRICS] = "metrics",
    [MR_HEALTHZ] = "healthz",
    [MR_READYZ] = "readyz",
    [MR_EKAUSER_HISTORY] = "ekauser_history",
    [MR_DOCTOR_HISTORY] = "doctor_history",
    [MR_CLINIC_HISTORY] = "clinic_history",
    [MR_EKAUSER_RESTORE] = "ekauser_restore",
    [MR_DOCTOR_RESTORE] = "doctor_restore",
    [MR_CLINIC_RESTORE] = "clinic_restore",
    [MR_CHANGES] = "changes",
    [MR_OPENAPI] = "openapi",
    [MR_DOCS] = "docs",
    [MR_OTHER] = "other",
};

static const char *const CLASS_NAMES[METRICS_STATUS_CLASSES] = {"2xx", "3xx", "4xx", "5xx"};

/* Request latency buckets: 0.5 ms to 10 s. */
static const uint64_t LATENCY_US[METRICS_LATENCY_BUCKETS] = {500,    1000,   2500,    5000,    10000,
                                                             25000,  50000,  100000,  250000,  500000,
                                                             1000000, 2500000, 5000000, 10000000};
static const char *const LATENCY_LE[METRICS_LATENCY_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05", "0.1", "0.25", "0.5", "1", "2.5", "5", "10"};

/* Units of work per storage commit. */
static const unsigned BATCH_LE[METRICS_BATCH_BUCKETS] = {1, 2, 4, 8, 16, 32, 64};

#define RELAXED memory_order_relaxed

bool metrics_init(struct metrics *m)
{
    memset(m, 0, sizeof *m);
    m->shards = aligned_alloc(_Alignof(struct metrics_shard), METRICS_SHARDS * sizeof *m->shards);
    if (!m->shards)
        return false;
    memset(m->shards, 0, METRICS_SHARDS * sizeof *m->shards);
    if (pthread_key_create(&m->shard_key, NULL) != 0) {
        free(m->shards);
        m->shards = NULL;
        return false;
    }
    atomic_init(&m->next_shard, 0);
    m->started_s = (int64_t)time(NULL);
    return true;
}

void metrics_free(struct metrics *m)
{
    if (!m->shards)
        return;
    pthread_key_delete(m->shard_key);
    free(m->shards);
    m->shards = NULL;
}

/* The calling thread's shard, chosen on its first count. Threads past METRICS_SHARDS
 * share shards, which the atomics keep correct. */
static struct metrics_shard *shard(struct metrics *m)
{
    uintptr_t idx = (uintptr_t)pthread_getspecific(m->shard_key);
    if (!idx) {
        idx = atomic_fetch_add_explicit(&m->next_shard, 1, RELAXED) % METRICS_SHARDS + 1;
        pthread_setspecific(m->shard_key, (void *)idx);
    }
    return &m->shards[idx - 1];
}

static void add(atomic_uint_fast64_t *c, uint64_t n) { atomic_fetch_add_explicit(c, n, RELAXED); }

void metrics_request_started(struct metrics *m)
{
    if (m && m->shards)
        atomic_fetch_add_explicit(&shard(m)->in_flight, 1, RELAXED);
}

void metrics_request_done(struct metrics *m, enum metric_route route, int status, uint64_t duration_us)
{
    if (!m || !m->shards)
        return;
    struct metrics_shard *s = shard(m);
    if ((unsigned)route >= MR_COUNT)
        route = MR_OTHER;
    if (status < 200 || status > 599) {
        add(&s->unanswered[route], 1);
    } else {
        add(&s->requests[route][status / 100 - 2], 1);
        int b = 0;
        while (b < METRICS_LATENCY_BUCKETS && duration_us > LATENCY_US[b])
            b++;
        add(&s->latency[route][b], 1);
        add(&s->latency_sum_us[route], duration_us);
    }
    /* Last, and a release: a scrape that sees the request gone sees it counted. */
    atomic_fetch_sub_explicit(&s->in_flight, 1, memory_order_release);
}

void metrics_connection(struct metrics *m, int delta)
{
    if (m && m->shards)
        atomic_fetch_add_explicit(&shard(m)->connections, delta, RELAXED);
}

void metrics_event(struct metrics *m, enum metric_event ev)
{
    if (m && m->shards && (unsigned)ev < ME_COUNT)
        add(&shard(m)->events[ev], 1);
}

void metrics_store_commit(struct metrics *m, unsigned batch)
{
    if (!m || !m->shards)
        return;
    struct metrics_shard *s = shard(m);
    add(&s->events[ME_STORE_COMMIT], 1);
    int b = 0;
    while (b < METRICS_BATCH_BUCKETS && batch > BATCH_LE[b])
        b++;
    add(&s->batch[b], 1);
    add(&s->batch_sum, batch);
}

/* ---- rendering: the shards summed, in the order of the tables above ---- */

static uint64_t load(const atomic_uint_fast64_t *c) { return atomic_load_explicit(c, RELAXED); }

/* Sums one counter over the shards; off is its byte offset inside a shard. */
static uint64_t total(const struct metrics *m, size_t off)
{
    uint64_t n = 0;
    for (int i = 0; i < METRICS_SHARDS; i++)
        n += load((const atomic_uint_fast64_t *)((const char *)&m->shards[i] + off));
    return n;
}

/* Gauges are read first, with acquire: the counts read after them include every request
 * the in-flight gauge no longer shows. */
static int64_t gauge(const struct metrics *m, size_t off)
{
    int64_t n = 0;
    for (int i = 0; i < METRICS_SHARDS; i++)
        n += atomic_load_explicit((const atomic_int_fast64_t *)((const char *)&m->shards[i] + off),
                                  memory_order_acquire);
    return n;
}

/* A member's byte offset inside a shard (the index may be a variable). */
#define OFF(member) ((size_t)((const char *)&m->shards[0].member - (const char *)&m->shards[0]))

static void head(FILE *f, const char *name, const char *type, const char *help)
{
    fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void events(FILE *f, const struct metrics *m, const char *name, const char *help, const char *label,
                   const enum metric_event *evs, const char *const *values, int n)
{
    head(f, name, "counter", help);
    for (int i = 0; i < n; i++)
        fprintf(f, "%s{%s=\"%s\"} %llu\n", name, label, values[i],
                (unsigned long long)total(m, OFF(events[evs[i]])));
}

char *metrics_render(struct metrics *m, size_t *len)
{
    char *buf = NULL;
    size_t n = 0;
    int64_t in_flight = gauge(m, OFF(in_flight)), connections = gauge(m, OFF(connections));
    FILE *f = open_memstream(&buf, &n);
    if (!f)
        return NULL;

    head(f, "hipusers_build_info", "gauge", "The running build: its version is the label; the value is always 1.");
    fprintf(f, "hipusers_build_info{version=\"%s\"} 1\n", HIPUSERS_VERSION);
    head(f, "hipusers_start_time_seconds", "gauge", "When the server started, in seconds since the Unix epoch.");
    fprintf(f, "hipusers_start_time_seconds %lld\n", (long long)m->started_s);

    head(f, "hipusers_http_requests_total", "counter",
         "HTTP requests answered, by route template and status class.");
    for (int r = 0; r < MR_COUNT; r++)
        for (int c = 0; c < METRICS_STATUS_CLASSES; c++)
            fprintf(f, "hipusers_http_requests_total{route=\"%s\",status=\"%s\"} %llu\n", ROUTE_NAMES[r],
                    CLASS_NAMES[c], (unsigned long long)total(m, OFF(requests[r][c])));

    head(f, "hipusers_http_requests_unanswered_total", "counter",
         "HTTP requests that ended without a complete response (the client left, or a deadline cut it off).");
    for (int r = 0; r < MR_COUNT; r++)
        fprintf(f, "hipusers_http_requests_unanswered_total{route=\"%s\"} %llu\n", ROUTE_NAMES[r],
                (unsigned long long)total(m, OFF(unanswered[r])));

    head(f, "hipusers_http_request_duration_seconds", "histogram",
         "Time from a request's headers to the end of its response, by route template.");
    for (int r = 0; r < MR_COUNT; r++) {
        uint64_t cum = 0;
        for (int b = 0; b <= METRICS_LATENCY_BUCKETS; b++) {
            cum += total(m, OFF(latency[r][b]));
            fprintf(f, "hipusers_http_request_duration_seconds_bucket{route=\"%s\",le=\"%s\"} %llu\n",
                    ROUTE_NAMES[r], b < METRICS_LATENCY_BUCKETS ? LATENCY_LE[b] : "+Inf", (unsigned long long)cum);
        }
        uint64_t sum_us = total(m, OFF(latency_sum_us[r]));
        fprintf(f, "hipusers_http_request_duration_seconds_sum{route=\"%s\"} %llu.%06llu\n", ROUTE_NAMES[r],
                (unsigned long long)(sum_us / 1000000), (unsigned long long)(sum_us % 1000000));
        fprintf(f, "hipusers_http_request_duration_seconds_count{route=\"%s\"} %llu\n", ROUTE_NAMES[r],
                (unsigned long long)cum);
    }

    head(f, "hipusers_http_requests_in_flight", "gauge", "Requests begun and not yet ended (this one included).");
    fprintf(f, "hipusers_http_requests_in_flight %lld\n", (long long)in_flight);
    head(f, "hipusers_http_open_connections", "gauge", "Client connections open now.");
    fprintf(f, "hipusers_http_open_connections %lld\n", (long long)connections);

    static const enum metric_event login_ev[] = {ME_LOGIN_SUCCESS, ME_LOGIN_FAILURE, ME_LOGIN_THROTTLED};
    static const char *const login_res[] = {"success", "failure", "throttled"};
    events(f, m, "hipusers_logins_total",
           "Business logins (connect-auth) by result: success, failure (401), throttled (429).", "result", login_ev,
           login_res, 3);
    static const enum metric_event refresh_ev[] = {ME_REFRESH_SUCCESS, ME_REFRESH_FAILURE, ME_REFRESH_REUSE};
    static const char *const refresh_res[] = {"success", "failure", "reuse_detected"};
    events(f, m, "hipusers_token_refreshes_total",
           "Refresh-token uses by result: success, failure (401), reuse_detected (a spent token again: the "
           "session is ended).",
           "result", refresh_ev, refresh_res, 3);

    head(f, "hipusers_storage_commits_total", "counter", "Write transactions committed.");
    fprintf(f, "hipusers_storage_commits_total %llu\n", (unsigned long long)total(m, OFF(events[ME_STORE_COMMIT])));
    static const enum metric_event store_ev[] = {ME_STORE_ERROR_RETRY, ME_STORE_ERROR_UNAVAILABLE,
                                                 ME_STORE_ERROR_INTERNAL};
    static const char *const store_res[] = {"retry", "unavailable", "internal"};
    events(f, m, "hipusers_storage_errors_total",
           "Storage failures by reason: retry (busy), unavailable (disk full, I/O, read-only, writes paused), "
           "internal.",
           "reason", store_ev, store_res, 3);

    static const enum metric_event cache_ev[] = {ME_CACHE_HIT, ME_CACHE_MISS};
    static const char *const cache_res[] = {"hit", "miss"};
    events(f, m, "hipusers_response_cache_lookups_total",
           "GETs by id looked up in the answers kept in memory (serve --cache-mb), by result.", "result", cache_ev,
           cache_res, 2);

    head(f, "hipusers_storage_commit_batch_size", "histogram",
         "Units of work made durable by one commit (1 while each request commits on its own).");
    uint64_t cum = 0;
    for (int b = 0; b <= METRICS_BATCH_BUCKETS; b++) {
        cum += total(m, OFF(batch[b]));
        if (b < METRICS_BATCH_BUCKETS)
            fprintf(f, "hipusers_storage_commit_batch_size_bucket{le=\"%u\"} %llu\n", BATCH_LE[b],
                    (unsigned long long)cum);
        else
            fprintf(f, "hipusers_storage_commit_batch_size_bucket{le=\"+Inf\"} %llu\n", (unsigned long long)cum);
    }
    fprintf(f, "hipusers_storage_commit_batch_size_sum %llu\n", (unsigned long long)total(m, OFF(batch_sum)));
    fprintf(f, "hipusers_storage_commit_batch_size_count %llu\n", (unsigned long long)cum);

    if (fclose(f) != 0) {
        free(buf);
        return NULL;
    }
    *len = n;
    return buf;
}
