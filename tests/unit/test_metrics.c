/* Unit tests of src/util/metrics.c: counts from many threads add up, buckets take their
 * bounds inclusively, status classes, gauges, and the text the scrape shows. */
#include <pthread.h>
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/metrics.h"

static int setup(void **state)
{
    struct metrics *m = malloc(sizeof *m);
    if (!m || !metrics_init(m)) {
        free(m);
        return -1;
    }
    *state = m;
    return 0;
}

static int teardown(void **state)
{
    metrics_free(*state);
    free(*state);
    return 0;
}

/* The value of the sample line that starts with `series ` in text; fails when absent. */
static unsigned long long sample(const char *text, const char *series)
{
    size_t n = strlen(series);
    for (const char *p = text; p && *p; p = strchr(p, '\n'), p = p ? p + 1 : NULL)
        if (strncmp(p, series, n) == 0 && p[n] == ' ')
            return strtoull(p + n + 1, NULL, 10);
    print_error("no sample %s\n", series);
    fail();
    return 0;
}

static char *render(struct metrics *m)
{
    size_t len = 0;
    char *t = metrics_render(m, &len);
    assert_non_null(t);
    assert_int_equal(strlen(t), len);
    assert_true(len > 0 && t[len - 1] == '\n');
    return t;
}

static void test_fresh_registry_shows_every_series_at_zero(void **state)
{
    char *t = render(*state);
    assert_int_equal(sample(t, "hipusers_build_info{version=\"" HIPUSERS_VERSION "\"}"), 1);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"ekauser_item\",status=\"2xx\"}"), 0);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"unrouted\",status=\"5xx\"}"), 0);
    assert_int_equal(sample(t, "hipusers_http_request_duration_seconds_count{route=\"login\"}"), 0);
    assert_int_equal(sample(t, "hipusers_http_request_duration_seconds_bucket{route=\"login\",le=\"+Inf\"}"), 0);
    assert_int_equal(sample(t, "hipusers_http_requests_in_flight"), 0);
    assert_int_equal(sample(t, "hipusers_http_open_connections"), 0);
    assert_int_equal(sample(t, "hipusers_logins_total{result=\"throttled\"}"), 0);
    assert_int_equal(sample(t, "hipusers_token_refreshes_total{result=\"reuse_detected\"}"), 0);
    assert_int_equal(sample(t, "hipusers_storage_commits_total"), 0);
    assert_int_equal(sample(t, "hipusers_storage_errors_total{reason=\"unavailable\"}"), 0);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_count"), 0);
    /* each family is announced once, before its samples */
    const char *help = strstr(t, "# TYPE hipusers_http_request_duration_seconds histogram\n");
    assert_non_null(help);
    assert_true(help < strstr(t, "hipusers_http_request_duration_seconds_bucket"));
    assert_null(strstr(help + 1, "# TYPE hipusers_http_request_duration_seconds histogram\n"));
    free(t);
}

static void test_status_classes_and_unanswered(void **state)
{
    struct metrics *m = *state;
    static const int statuses[] = {200, 201, 299, 304, 400, 404, 429, 499, 500, 503, 0, 199, 600};
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++) {
        metrics_request_started(m);
        metrics_request_done(m, MR_CLINIC_ITEM, statuses[i], 100);
    }
    char *t = render(m);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"clinic_item\",status=\"2xx\"}"), 3);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"clinic_item\",status=\"3xx\"}"), 1);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"clinic_item\",status=\"4xx\"}"), 4);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"clinic_item\",status=\"5xx\"}"), 2);
    assert_int_equal(sample(t, "hipusers_http_requests_unanswered_total{route=\"clinic_item\"}"), 3);
    /* only answered requests are timed, so _count is the sum of the classes */
    assert_int_equal(sample(t, "hipusers_http_request_duration_seconds_count{route=\"clinic_item\"}"), 10);
    assert_int_equal(sample(t, "hipusers_http_requests_in_flight"), 0);
    /* other routes untouched */
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"clinic_collection\",status=\"2xx\"}"), 0);
    free(t);
}

static void test_latency_buckets_are_inclusive_and_cumulative(void **state)
{
    struct metrics *m = *state;
    static const uint64_t us[] = {0, 500, 501, 1000, 10000000, 10000001, 3600000000u};
    for (size_t i = 0; i < sizeof us / sizeof us[0]; i++) {
        metrics_request_started(m);
        metrics_request_done(m, MR_LOGIN, 200, us[i]);
    }
#define B(le) sample(t, "hipusers_http_request_duration_seconds_bucket{route=\"login\",le=\"" le "\"}")
    char *t = render(m);
    assert_int_equal(B("0.0005"), 2); /* 0 and 500 us */
    assert_int_equal(B("0.001"), 4);  /* + 501, 1000 */
    assert_int_equal(B("5"), 4);
    assert_int_equal(B("10"), 5);   /* + exactly 10 s */
    assert_int_equal(B("+Inf"), 7); /* + beyond */
    assert_int_equal(sample(t, "hipusers_http_request_duration_seconds_count{route=\"login\"}"), 7);
    /* the sum is in seconds with microseconds: 0+500+501+1000+10000000+10000001+3600000000 us */
    assert_non_null(strstr(t, "hipusers_http_request_duration_seconds_sum{route=\"login\"} 3620.002002\n"));
    free(t);
#undef B
}

static void test_events_and_batches(void **state)
{
    struct metrics *m = *state;
    metrics_event(m, ME_LOGIN_SUCCESS);
    metrics_event(m, ME_LOGIN_FAILURE);
    metrics_event(m, ME_LOGIN_FAILURE);
    metrics_event(m, ME_LOGIN_THROTTLED);
    metrics_event(m, ME_REFRESH_REUSE);
    metrics_event(m, ME_STORE_ERROR_RETRY);
    metrics_event(m, ME_STORE_ERROR_INTERNAL);
    metrics_event(m, ME_COUNT); /* out of range: ignored */
    metrics_store_commit(m, 1);
    metrics_store_commit(m, 1);
    metrics_store_commit(m, 3);
    metrics_store_commit(m, 1000);
    char *t = render(m);
    assert_int_equal(sample(t, "hipusers_logins_total{result=\"success\"}"), 1);
    assert_int_equal(sample(t, "hipusers_logins_total{result=\"failure\"}"), 2);
    assert_int_equal(sample(t, "hipusers_logins_total{result=\"throttled\"}"), 1);
    assert_int_equal(sample(t, "hipusers_token_refreshes_total{result=\"success\"}"), 0);
    assert_int_equal(sample(t, "hipusers_token_refreshes_total{result=\"reuse_detected\"}"), 1);
    assert_int_equal(sample(t, "hipusers_storage_errors_total{reason=\"retry\"}"), 1);
    assert_int_equal(sample(t, "hipusers_storage_errors_total{reason=\"unavailable\"}"), 0);
    assert_int_equal(sample(t, "hipusers_storage_errors_total{reason=\"internal\"}"), 1);
    assert_int_equal(sample(t, "hipusers_storage_commits_total"), 4);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_bucket{le=\"1\"}"), 2);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_bucket{le=\"2\"}"), 2);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_bucket{le=\"4\"}"), 3);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_bucket{le=\"64\"}"), 3);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_bucket{le=\"+Inf\"}"), 4);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_sum"), 1005);
    assert_int_equal(sample(t, "hipusers_storage_commit_batch_size_count"), 4);
    free(t);
}

static void test_null_registry_counts_nothing(void **state)
{
    (void)state;
    metrics_request_started(NULL);
    metrics_request_done(NULL, MR_LOGIN, 200, 1);
    metrics_connection(NULL, 1);
    metrics_event(NULL, ME_LOGIN_SUCCESS);
    metrics_store_commit(NULL, 1);
}

/* More threads than shards, so some share one: the totals must still be exact. */
#define THREADS (METRICS_SHARDS + 4)
#define PER_THREAD 20000

static void *hammer(void *arg)
{
    struct metrics *m = arg;
    for (int i = 0; i < PER_THREAD; i++) {
        metrics_connection(m, 1);
        metrics_request_started(m);
        metrics_request_done(m, MR_EKAUSER_COLLECTION, 201, 2000);
        metrics_event(m, ME_REFRESH_SUCCESS);
        metrics_store_commit(m, 1);
        if (i % 2)
            metrics_connection(m, -1);
    }
    return NULL;
}

static void test_threads_add_up(void **state)
{
    struct metrics *m = *state;
    pthread_t th[THREADS];
    for (int i = 0; i < THREADS; i++)
        assert_int_equal(pthread_create(&th[i], NULL, hammer, m), 0);
    for (int i = 0; i < THREADS; i++)
        pthread_join(th[i], NULL);
    unsigned long long n = (unsigned long long)THREADS * PER_THREAD;
    char *t = render(m);
    assert_int_equal(sample(t, "hipusers_http_requests_total{route=\"ekauser_collection\",status=\"2xx\"}"), n);
    assert_int_equal(sample(t, "hipusers_http_request_duration_seconds_bucket{route=\"ekauser_collection\","
                               "le=\"0.0025\"}"),
                     n);
    assert_int_equal(sample(t, "hipusers_http_request_duration_seconds_bucket{route=\"ekauser_collection\","
                               "le=\"0.001\"}"),
                     0);
    assert_int_equal(sample(t, "hipusers_token_refreshes_total{result=\"success\"}"), n);
    assert_int_equal(sample(t, "hipusers_storage_commits_total"), n);
    assert_int_equal(sample(t, "hipusers_http_requests_in_flight"), 0);
    assert_int_equal(sample(t, "hipusers_http_open_connections"), n / 2);
    char want[128];
    snprintf(want, sizeof want, "hipusers_http_request_duration_seconds_sum{route=\"ekauser_collection\"} %llu.%06llu\n",
             n * 2000 / 1000000, n * 2000 % 1000000);
    assert_non_null(strstr(t, want));
    free(t);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_fresh_registry_shows_every_series_at_zero),
        T(test_status_classes_and_unanswered),
        T(test_latency_buckets_are_inclusive_and_cumulative),
        T(test_events_and_batches),
        T(test_null_registry_counts_nothing),
        T(test_threads_add_up),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
