/* Unit tests of src/http/router.c: paths to routes, percent-decoding of ids, Allow. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/router.h"
#include "model/field.h"
#include "util/arena.h"

#include "arena_fixture.h"

/* Matches path and checks the outcome: kind, resource kind (or -1 for none) and id. */
static void expect_route(struct arena *a, const char *path, enum route_kind kind, int res, const char *id)
{
    struct route r;
    memset(&r, 0x5a, sizeof r); /* stale data must be cleared */
    bool ok = route_match(path, a, &r);
    if (kind == RT_NOT_FOUND) {
        if (ok)
            print_error("path %s unexpectedly matched kind %d\n", path, r.kind);
        assert_false(ok);
        assert_int_equal(r.kind, RT_NOT_FOUND);
        return;
    }
    if (!ok)
        print_error("path %s did not match\n", path);
    assert_true(ok);
    assert_int_equal(r.kind, kind);
    if (res < 0) {
        assert_null(r.res);
    } else {
        assert_non_null(r.res);
        assert_int_equal(r.res->kind, res);
        assert_ptr_equal(r.res, resource_get((enum rkind)res));
    }
    if (id)
        assert_string_equal(r.id, id);
    else
        assert_null(r.id);
}

#define NF(path) expect_route(a, (path), RT_NOT_FOUND, -1, NULL)

/* ---------------------------------------------------------------- collections */

static void test_collections(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/cdr/v1/ekauser", RT_COLLECTION, R_EKAUSER, NULL);
    expect_route(a, "/cdr/v1/ekauser/", RT_COLLECTION, R_EKAUSER, NULL);
    expect_route(a, "/cdr/v1/doctor", RT_COLLECTION, R_DOCTOR, NULL);
    expect_route(a, "/cdr/v1/doctor/", RT_COLLECTION, R_DOCTOR, NULL);
    expect_route(a, "/cdr/v1/clinic", RT_COLLECTION, R_CLINIC, NULL);
    expect_route(a, "/cdr/v1/clinic/", RT_COLLECTION, R_CLINIC, NULL);
}

static void test_items(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/cdr/v1/ekauser/123456789012345", RT_ITEM, R_EKAUSER, "123456789012345");
    expect_route(a, "/cdr/v1/ekauser/123456789012345/", RT_ITEM, R_EKAUSER, "123456789012345");
    expect_route(a, "/cdr/v1/doctor/do1234567890123", RT_ITEM, R_DOCTOR, "do1234567890123");
    expect_route(a, "/cdr/v1/doctor/do1234567890123/", RT_ITEM, R_DOCTOR, "do1234567890123");
    expect_route(a, "/cdr/v1/clinic/c-0123456789abcdef01234567", RT_ITEM, R_CLINIC,
                 "c-0123456789abcdef01234567");
    expect_route(a, "/cdr/v1/clinic/c-0123456789abcdef01234567/", RT_ITEM, R_CLINIC,
                 "c-0123456789abcdef01234567");
    /* any non-empty segment is an id at this layer; existence is the store's business */
    expect_route(a, "/cdr/v1/doctor/x", RT_ITEM, R_DOCTOR, "x");
    expect_route(a, "/cdr/v1/clinic/..", RT_ITEM, R_CLINIC, "..");
    expect_route(a, "/cdr/v1/ekauser/get_business_info", RT_ITEM, R_EKAUSER, "get_business_info");
}

static void test_hipusers(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/cdr/v1/hipusers", RT_HIPUSERS, R_EKAUSER, NULL);
    expect_route(a, "/cdr/v1/hipusers/", RT_HIPUSERS, R_EKAUSER, NULL);
    expect_route(a, "/cdr/v1/hipusers/123456789012345", RT_HIPUSER, R_EKAUSER, "123456789012345");
    expect_route(a, "/cdr/v1/hipusers/123456789012345/", RT_HIPUSER, R_EKAUSER, "123456789012345");
    expect_route(a, "/cdr/v1/hipusers/a%20b", RT_HIPUSER, R_EKAUSER, "a b");
    NF("/cdr/v1/hipusers/1/x");
    NF("/cdr/v1/hipusers//");
    NF("/cdr/v1/hipusers/%2F");
}

/* Issue 10: a record's history and restore, and the tenant's change feed. */
static void test_versions_routes(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/cdr/v1/ekauser/123456789012345/history", RT_HISTORY, R_EKAUSER, "123456789012345");
    expect_route(a, "/cdr/v1/doctor/do1234567890123/history/", RT_HISTORY, R_DOCTOR, "do1234567890123");
    expect_route(a, "/cdr/v1/clinic/Part%20x/history", RT_HISTORY, R_CLINIC, "Part x");
    expect_route(a, "/cdr/v1/clinic/c-0123456789abcdef01234567/restore", RT_RESTORE, R_CLINIC,
                 "c-0123456789abcdef01234567");
    expect_route(a, "/cdr/v1/ekauser/123456789012345/restore/", RT_RESTORE, R_EKAUSER, "123456789012345");
    /* the words are ids where an id goes */
    expect_route(a, "/cdr/v1/doctor/history", RT_ITEM, R_DOCTOR, "history");
    expect_route(a, "/cdr/v1/doctor/restore/history", RT_HISTORY, R_DOCTOR, "restore");
    expect_route(a, "/cdr/v1/changes", RT_CHANGES, -1, NULL);
    expect_route(a, "/cdr/v1/changes/", RT_CHANGES, -1, NULL);
    NF("/cdr/v1/changes/1");
    NF("/cdr/v1/changes//");
    NF("/cdr/v1/Changes/");
    NF("/cdr/v1/ekauser/1/History");
    NF("/cdr/v1/ekauser/1/histories");
    NF("/cdr/v1/ekauser/1/history/x");
    NF("/cdr/v1/ekauser/1/history//");
    NF("/cdr/v1/ekauser//history");
    NF("/cdr/v1/ekauser/%2F/history");
    NF("/cdr/v1/hipusers/1/history");
    NF("/cdr/v1/hipusers/1/restore");
    NF("/cdr/v1/get_business_info/1/history");
    NF("/cdr/v1/changes/1/history");
}

static void test_business_info(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/cdr/v1/get_business_info", RT_BUSINESS_INFO, -1, NULL);
    expect_route(a, "/cdr/v1/get_business_info/", RT_BUSINESS_INFO, -1, NULL);
    NF("/cdr/v1/get_business_info/x");
    NF("/cdr/v1/get_business_info/x/");
    NF("/cdr/v1/get_business_info//");
    NF("/cdr/v1/get_business_infos");
}

static void test_auth_routes(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/connect-auth/v1/account/login", RT_LOGIN, -1, NULL);
    expect_route(a, "/connect-auth/v1/account/login/", RT_LOGIN, -1, NULL);
    expect_route(a, "/connect-auth/v1/account/refresh-token", RT_REFRESH_TOKEN, -1, NULL);
    expect_route(a, "/connect-auth/v1/account/refresh-token/", RT_REFRESH_TOKEN, -1, NULL);
    expect_route(a, "/connect-auth/v1/account/refresh", RT_REFRESH, -1, NULL);
    expect_route(a, "/connect-auth/v1/account/refresh/", RT_REFRESH, -1, NULL);
    NF("/connect-auth/v1/account");
    NF("/connect-auth/v1/account/");
    NF("/connect-auth/v1/account/logout");
    NF("/connect-auth/v1/account/Login");
    NF("/connect-auth/v1/account/refresh-tokens");
    NF("/connect-auth/v1/account/login/x");
    NF("/connect-auth/v1/account/login//");
    NF("/connect-auth/v2/account/login");
    NF("/connect-auth/v1/accounts/login");
    NF("/connect-auth/v1/account//login");
    NF("/connect-auth/v1/account/%6cogin"); /* no decoding outside ids */
    NF("/cdr/v1/account/login");
    NF("/connect-auth/v1/ekauser");
}

/* ---------------------------------------------------------------- operations endpoints */

static void test_ops_routes(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/metrics", RT_METRICS, -1, NULL);
    expect_route(a, "/metrics/", RT_METRICS, -1, NULL);
    expect_route(a, "/healthz", RT_HEALTHZ, -1, NULL);
    expect_route(a, "/healthz/", RT_HEALTHZ, -1, NULL);
    expect_route(a, "/readyz", RT_READYZ, -1, NULL);
    expect_route(a, "/readyz/", RT_READYZ, -1, NULL);
    NF("/metrics//");
    NF("/metrics/x");
    NF("/Metrics");
    NF("/metricsz");
    NF("/health");
    NF("/ready");
    NF("/%6detrics"); /* no decoding outside ids */
    NF("/cdr/v1/metrics");
    NF("/cdr/v1/healthz/");
    NF("//metrics");
}

/* Every route has a fixed template name: nothing of the path (an id) reaches the metrics. */
static void test_route_metric(void **state)
{
    struct arena *a = *state;
    static const struct {
        const char *path;
        enum metric_route want;
    } cases[] = {
        {"/cdr/v1/ekauser/", MR_EKAUSER_COLLECTION},
        {"/cdr/v1/ekauser/HIS-PATIENT-1", MR_EKAUSER_ITEM},
        {"/cdr/v1/doctor", MR_DOCTOR_COLLECTION},
        {"/cdr/v1/doctor/x/", MR_DOCTOR_ITEM},
        {"/cdr/v1/clinic/", MR_CLINIC_COLLECTION},
        {"/cdr/v1/clinic/c-1", MR_CLINIC_ITEM},
        {"/cdr/v1/hipusers/", MR_HIPUSERS_COLLECTION},
        {"/cdr/v1/hipusers/123", MR_HIPUSERS_ITEM},
        {"/cdr/v1/get_business_info/", MR_BUSINESS_INFO},
        {"/connect-auth/v1/account/login", MR_LOGIN},
        {"/connect-auth/v1/account/refresh-token", MR_REFRESH_TOKEN},
        {"/connect-auth/v1/account/refresh", MR_REFRESH},
        {"/metrics", MR_METRICS},
        {"/healthz", MR_HEALTHZ},
        {"/readyz/", MR_READYZ},
        {"/cdr/v1/ekauser/HIS-PATIENT-1/history", MR_EKAUSER_HISTORY},
        {"/cdr/v1/doctor/x/history/", MR_DOCTOR_HISTORY},
        {"/cdr/v1/clinic/c-1/history", MR_CLINIC_HISTORY},
        {"/cdr/v1/ekauser/1/restore", MR_EKAUSER_RESTORE},
        {"/cdr/v1/doctor/x/restore/", MR_DOCTOR_RESTORE},
        {"/cdr/v1/clinic/c-1/restore", MR_CLINIC_RESTORE},
        {"/cdr/v1/changes/", MR_CHANGES},
        {"/openapi.json", MR_OPENAPI},
        {"/docs", MR_DOCS},
        {"/docs/swagger-ui.css", MR_DOCS},
        {"/nowhere", MR_UNROUTED},
        {"/cdr/v1/ekauser/a/b", MR_UNROUTED},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct route r;
        route_match(cases[i].path, a, &r);
        if (route_metric(&r) != cases[i].want)
            print_error("%s: template %d, want %d\n", cases[i].path, route_metric(&r), cases[i].want);
        assert_int_equal(route_metric(&r), cases[i].want);
    }
    struct route unknown = {.kind = (enum route_kind)999};
    assert_int_equal(route_metric(&unknown), MR_OTHER);
}

/* ---------------------------------------------------------------- not found */

static void test_not_found_shapes(void **state)
{
    struct arena *a = *state;
    NF("");
    NF("/");
    NF("//");
    NF("cdr/v1/ekauser");
    NF("/cdr");
    NF("/cdr/");
    NF("/cdr/v1");
    NF("/cdr/v1/");
    NF("/cdr/v1//");
    NF("/cdr/v2/ekauser");
    NF("/cdr/V1/ekauser");
    NF("/CDR/v1/ekauser");
    NF("/cdr/v1/EkaUser");
    NF("/cdr/v1/ekausers");
    NF("/cdr/v1/doctors/");
    NF("/cdr/v1/clinics");
    NF("/cdr/v1/hipuser");
    NF("/cdr/v1/unknown/1");
    NF("/api/cdr/v1/ekauser");
    NF("/cdr/v1/ekauser/1/2");
    NF("/cdr/v1/ekauser/1/2/");
    NF("/cdr/v1/ekauser/1/2/3/4/5/6/7/8");
}

static void test_empty_segments(void **state)
{
    struct arena *a = *state;
    NF("//cdr/v1/ekauser");
    NF("/cdr//v1/ekauser");
    NF("/cdr/v1//ekauser");
    NF("/cdr/v1/ekauser//");
    NF("/cdr/v1/ekauser//1");
    NF("/cdr/v1/ekauser/1//");
    NF("/cdr/v1/doctor///");
}

/* ---------------------------------------------------------------- percent-decoding */

static void test_id_percent_decoding(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/cdr/v1/ekauser/%41%42c", RT_ITEM, R_EKAUSER, "ABc");
    expect_route(a, "/cdr/v1/ekauser/a%2db", RT_ITEM, R_EKAUSER, "a-b");
    expect_route(a, "/cdr/v1/ekauser/a%2Db", RT_ITEM, R_EKAUSER, "a-b");
    expect_route(a, "/cdr/v1/doctor/%20", RT_ITEM, R_DOCTOR, " ");
    expect_route(a, "/cdr/v1/doctor/%25", RT_ITEM, R_DOCTOR, "%");
    /* decoded once only: %252F is the literal text %2F, not a slash */
    expect_route(a, "/cdr/v1/doctor/%252F", RT_ITEM, R_DOCTOR, "%2F");
    expect_route(a, "/cdr/v1/clinic/caf%C3%A9", RT_ITEM, R_CLINIC, "caf\xc3\xa9");
    expect_route(a, "/cdr/v1/clinic/%2e%2e", RT_ITEM, R_CLINIC, "..");
    expect_route(a, "/cdr/v1/clinic/a+b", RT_ITEM, R_CLINIC, "a+b"); /* '+' is not a space in paths */
    expect_route(a, "/cdr/v1/clinic/%3F", RT_ITEM, R_CLINIC, "?");
}

static void test_id_forbidden_escapes(void **state)
{
    struct arena *a = *state;
    NF("/cdr/v1/ekauser/%2F");
    NF("/cdr/v1/ekauser/%2f");
    NF("/cdr/v1/ekauser/a%2Fb");
    NF("/cdr/v1/ekauser/a%2Fb/");
    NF("/cdr/v1/ekauser/%00");
    NF("/cdr/v1/ekauser/a%00b");
    NF("/cdr/v1/hipusers/%00");
}

static void test_id_malformed_escapes(void **state)
{
    struct arena *a = *state;
    NF("/cdr/v1/ekauser/%");
    NF("/cdr/v1/ekauser/abc%");
    NF("/cdr/v1/ekauser/%4");
    NF("/cdr/v1/ekauser/abc%4");
    NF("/cdr/v1/ekauser/abc%4/");
    NF("/cdr/v1/ekauser/%G1");
    NF("/cdr/v1/ekauser/%1G");
    NF("/cdr/v1/ekauser/%zz");
    NF("/cdr/v1/ekauser/%%41");
    NF("/cdr/v1/ekauser/%-1");
    NF("/cdr/v1/ekauser/% 1");
}

/* router.c: ids up to ROUTE_ID_MAX (1024) bytes, decoded, still route to the resource (which
 * then simply finds nothing: a 404 of that resource); longer ones are not found at all. */
#define ROUTE_ID_MAX 1024

static void test_id_length_limit(void **state)
{
    struct arena *a = *state;
    size_t cap = 3 * (ROUTE_ID_MAX + 2) + 64;
    char *path = arena_alloc(a, cap), *id = arena_alloc(a, ROUTE_ID_MAX + 2);
    /* longer than any stored id (128), still routed */
    memset(id, 'a', 129);
    id[129] = '\0';
    snprintf(path, cap, "/cdr/v1/ekauser/%s", id);
    expect_route(a, path, RT_ITEM, R_EKAUSER, id);
    memset(id, 'a', ROUTE_ID_MAX);
    id[ROUTE_ID_MAX] = '\0';
    snprintf(path, cap, "/cdr/v1/ekauser/%s", id);
    expect_route(a, path, RT_ITEM, R_EKAUSER, id);
    snprintf(path, cap, "/cdr/v1/hipusers/%s/", id);
    expect_route(a, path, RT_HIPUSER, R_EKAUSER, id);
    memset(id, 'a', ROUTE_ID_MAX + 1);
    id[ROUTE_ID_MAX + 1] = '\0';
    snprintf(path, cap, "/cdr/v1/ekauser/%s", id);
    NF(path);
    snprintf(path, cap, "/cdr/v1/hipusers/%s/", id);
    NF(path);
    /* the limit applies to the decoded id: ROUTE_ID_MAX escapes are 3x the raw bytes */
    char *enc = arena_alloc(a, 3 * (ROUTE_ID_MAX + 1) + 1);
    enc[0] = '\0';
    for (int i = 0; i < ROUTE_ID_MAX; i++)
        memcpy(enc + 3 * i, "%41", 4);
    memset(id, 'A', ROUTE_ID_MAX);
    id[ROUTE_ID_MAX] = '\0';
    snprintf(path, cap, "/cdr/v1/doctor/%s", enc);
    expect_route(a, path, RT_ITEM, R_DOCTOR, id);
    strcat(enc, "%41");
    snprintf(path, cap, "/cdr/v1/doctor/%s", enc);
    NF(path);
}

static void test_route_is_reset_on_failure(void **state)
{
    struct arena *a = *state;
    struct route r;
    assert_true(route_match("/cdr/v1/doctor/abc", a, &r));
    assert_non_null(r.id);
    assert_false(route_match("/cdr/v1/doctor/abc/def", a, &r));
    assert_int_equal(r.kind, RT_NOT_FOUND);
    assert_null(r.res);
    assert_null(r.id);
}

/* ---------------------------------------------------------------- percent_decode */

static void test_percent_decode_direct(void **state)
{
    struct arena *a = *state;
    assert_string_equal(percent_decode("abc", 3, a), "abc");
    assert_string_equal(percent_decode("", 0, a), "");
    assert_string_equal(percent_decode("%41", 3, a), "A");
    assert_string_equal(percent_decode("x%7e%7E", 7, a), "x~~");
    assert_string_equal(percent_decode("%ff", 3, a), "\xff");
    /* only len bytes are read */
    assert_string_equal(percent_decode("ab%41", 2, a), "ab");
    assert_null(percent_decode("ab%41", 4, a)); /* "ab%4" */
    assert_null(percent_decode("%", 1, a));
    assert_null(percent_decode("%2f", 3, a));
    assert_null(percent_decode("%2F", 3, a));
    assert_null(percent_decode("%00", 3, a));
    assert_null(percent_decode("%0", 2, a));
    assert_null(percent_decode("%x0", 3, a));
    /* a raw '/' is not this function's concern: it is left as is */
    assert_string_equal(percent_decode("a/b%41", 6, a), "a/bA");
}

/* ---------------------------------------------------------------- query_decode */

static void test_query_decode(void **state)
{
    struct arena *a = *state;
    assert_string_equal(query_decode("limit", a), "limit");
    assert_string_equal(query_decode("", a), "");
    assert_string_equal(query_decode("%2B919876543210", a), "+919876543210");
    /* '/' is an ordinary character in a query (an email's local part may have one) */
    assert_string_equal(query_decode("a%2Fb/c", a), "a/b/c");
    assert_string_equal(query_decode("%C3%84rzte%40x.in", a), "\xc3\x84rzte@x.in");
    assert_string_equal(query_decode("100%25", a), "100%");
    assert_null(query_decode("%00", a));
    assert_null(query_decode("a%0", a));
    assert_null(query_decode("%", a));
    assert_null(query_decode("%g1", a));
    assert_null(query_decode("x%2", a));
}

/* ---------------------------------------------------------------- route_allow */

/* ---------------------------------------------------------------- the API's reference */

static void test_reference_routes(void **state)
{
    struct arena *a = *state;
    expect_route(a, "/openapi.json", RT_OPENAPI, -1, NULL);
    expect_route(a, "/docs", RT_DOCS, -1, NULL);
    expect_route(a, "/docs/", RT_DOCS, -1, NULL);
    expect_route(a, "/docs/swagger-ui-bundle.js", RT_DOCS_FILE, -1, "swagger-ui-bundle.js");
    expect_route(a, "/docs/unknown-file.css", RT_DOCS_FILE, -1, "unknown-file.css"); /* its 404 is the handler's */
    NF("/openapi.json/");
    NF("/openapi.yaml");
    NF("/OPENAPI.json");
    NF("/docsx");
    NF("/docs//");
    NF("/docs/a/b");
    NF("/docs/a%2Fb");
    NF("/docs/%2e%2e");
    NF("/docs/a b");
    NF("/cdr/v1/docs");
    /* a file name is at most 64 characters */
    char long_name[80] = "/docs/";
    memset(long_name + 6, 'a', 65);
    long_name[71] = '\0';
    NF(long_name);
    long_name[70] = '\0';
    expect_route(a, long_name, RT_DOCS_FILE, -1, long_name + 6);
}

static void test_route_allow(void **state)
{
    (void)state;
    assert_string_equal(route_allow(RT_COLLECTION), "GET, POST");
    assert_string_equal(route_allow(RT_ITEM), "GET, PATCH, DELETE");
    assert_string_equal(route_allow(RT_BUSINESS_INFO), "GET");
    assert_string_equal(route_allow(RT_HIPUSERS), "GET");
    assert_string_equal(route_allow(RT_HIPUSER), "GET");
    assert_string_equal(route_allow(RT_LOGIN), "POST");
    assert_string_equal(route_allow(RT_REFRESH_TOKEN), "POST");
    assert_string_equal(route_allow(RT_REFRESH), "POST");
    assert_string_equal(route_allow(RT_METRICS), "GET");
    assert_string_equal(route_allow(RT_HEALTHZ), "GET");
    assert_string_equal(route_allow(RT_READYZ), "GET");
    assert_string_equal(route_allow(RT_HISTORY), "GET");
    assert_string_equal(route_allow(RT_CHANGES), "GET");
    assert_string_equal(route_allow(RT_RESTORE), "POST");
    assert_string_equal(route_allow(RT_OPENAPI), "GET");
    assert_string_equal(route_allow(RT_DOCS), "GET");
    assert_string_equal(route_allow(RT_DOCS_FILE), "GET");
    assert_string_equal(route_allow(RT_NOT_FOUND), "");
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_arena, teardown_arena)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_collections),
        T(test_items),
        T(test_hipusers),
        T(test_versions_routes),
        T(test_business_info),
        T(test_auth_routes),
        T(test_ops_routes),
        T(test_route_metric),
        T(test_not_found_shapes),
        T(test_empty_segments),
        T(test_id_percent_decoding),
        T(test_id_forbidden_escapes),
        T(test_id_malformed_escapes),
        T(test_id_length_limit),
        T(test_route_is_reset_on_failure),
        T(test_percent_decode_direct),
        T(test_query_decode),
        T(test_reference_routes),
        T(test_route_allow),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
