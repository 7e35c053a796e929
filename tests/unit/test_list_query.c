/* A list's query string (src/api/list_query.c), its cursors (src/auth/cursor.c) and the
 * Idempotency-Key rule (src/api/idempotency.c): every parameter rule, values normalised as
 * stored, and cursors that open only for their own tenant, list and filters. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "api/idempotency.h"
#include "api/list_query.h"
#include "auth/cursor.h"

#include "arena_fixture.h"

#define TENANT "1000000000000001"
static struct keyring KEYS, OTHER_KEYS, ROTATED;

static const struct resource *USER, *DOCTOR, *CLINIC;

struct parsed {
    bool ok;
    struct list_query q;
    struct herr e;
};

/* Parses "a=1&b=2" (already decoded; a piece "!x" is a parameter whose escapes were bad). */
static struct parsed parse_on(struct arena *a, const struct resource *r, const char *list, const char *tenant,
                              const struct keyring *k, const char *query)
{
    struct query_param p[16];
    size_t n = 0;
    char *copy = arena_strdup(a, query);
    for (char *save = NULL, *piece = strtok_r(copy, "&", &save); piece; piece = strtok_r(NULL, "&", &save)) {
        bool bad = piece[0] == '!';
        char *eq = strchr(piece + bad, '=');
        if (eq)
            *eq = '\0';
        p[n++] = (struct query_param){.name = piece + bad, .value = eq ? eq + 1 : "", .bad = bad};
    }
    struct parsed out = {0};
    out.ok = list_query_parse(r, list, tenant, p, n, k, a, &out.q, &out.e);
    return out;
}

static struct parsed parse(struct arena *a, const struct resource *r, const char *query)
{
    return parse_on(a, r, r->path, TENANT, &KEYS, query);
}

static const char *field_why(const struct parsed *p, const char *name)
{
    json_t *list = p->e.fields ? json_object_get(p->e.fields, name) : NULL;
    return list ? json_string_value(json_array_get(list, 0)) : NULL;
}

static void refused(struct arena *a, const struct resource *r, const char *query, const char *name, const char *why)
{
    struct parsed p = parse(a, r, query);
    if (p.ok)
        fail_msg("accepted: %s?%s", r->path, query);
    assert_int_equal(p.e.status, 400);
    const char *got = field_why(&p, name);
    if (!got)
        fail_msg("%s?%s: %s not named (%s)", r->path, query, name, p.e.message);
    if (why && !strstr(got, why))
        fail_msg("%s?%s: '%s' does not say '%s'", r->path, query, got, why);
    assert_true(strncmp(p.e.message, name, strlen(name)) == 0 || p.e.fields);
}

static void test_no_parameters_is_the_whole_list(void **state)
{
    struct parsed p = parse(*state, USER, "");
    assert_true(p.ok);
    assert_int_equal(p.q.limit, 0);
    assert_true(p.q.after == 0);
    assert_null(p.q.f.partner_id);
    assert_null(p.q.f.updated_since);
}

static void test_limit(void **state)
{
    struct arena *a = *state;
    assert_int_equal(parse(a, CLINIC, "limit=1").q.limit, 1);
    assert_int_equal(parse(a, CLINIC, "limit=1000").q.limit, 1000);
    assert_int_equal(parse(a, CLINIC, "limit=64").q.limit, 64);
    const char *bad[] = {"limit=0",  "limit=1001", "limit=-1", "limit=",   "limit",
                         "limit=01", "limit=1e3",  "limit= 5", "limit=5 ", "limit=99999999999999999999",
                         "limit=+5", "limit=0x10"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        refused(a, CLINIC, bad[i], "limit", "from 1 to 1000");
}

static void test_unknown_repeated_and_malformed(void **state)
{
    struct arena *a = *state;
    refused(a, USER, "foo=1", "foo", "Unknown query parameter");
    refused(a, USER, "Limit=5", "Limit", "Unknown query parameter"); /* names are case-sensitive */
    refused(a, USER, "limit=5&limit=5", "limit", "more than once");
    refused(a, USER, "mobile=9876543210&mobile=9876543210", "mobile", "more than once");
    refused(a, USER, "!partner_id=%zz", "partner_id", "percent-encoding");
    refused(a, USER, "!%zz=1", "%zz", "percent-encoding");
    /* a name that is not text is not echoed */
    refused(a, USER, "\xff\xfe=1", "(query parameter)", "Unknown");
    /* every parameter at fault is named, the message names the first */
    struct parsed p = parse(a, USER, "foo=1&limit=0&bar=2");
    assert_false(p.ok);
    assert_non_null(field_why(&p, "foo"));
    assert_non_null(field_why(&p, "bar"));
    assert_true(strncmp(p.e.message, "foo: ", 5) == 0);
}

static void test_filters_that_do_not_apply(void **state)
{
    struct arena *a = *state;
    refused(a, CLINIC, "mobile=9876543210", "mobile", "Clinic records have no mobile");
    refused(a, CLINIC, "email=a@x.in", "email", "no email");
    refused(a, CLINIC, "auth_userid=x", "auth_userid", "no auth_userid");
    refused(a, CLINIC, "clinic_id=c-0123456789abcdef01234567", "clinic_id", "no clinic_id");
    refused(a, DOCTOR, "doctor_id=do1234567890123", "doctor_id", "no doctor_id");
    refused(a, DOCTOR, "auth_userid=x", "auth_userid", "no auth_userid");
    /* and those that do */
    assert_true(parse(a, USER,
                      "partner_id=p&mobile=9876543210&email=a@x.in&auth_userid=s&clinic_id=c-0123456789abcdef01234567"
                      "&doctor_id=do1234567890123&updated_since=2024-05-01T00:00:00Z&limit=5")
                    .ok);
    assert_true(
        parse(a, DOCTOR, "partner_id=p&mobile=9876543210&email=a@x.in&clinic_id=c-0123456789abcdef01234567").ok);
    assert_true(parse(a, CLINIC, "partner_id=p&doctor_id=do1234567890123&updated_since=2024-05-01T00:00:00Z").ok);
}

static void test_values_normalised_as_stored(void **state)
{
    struct arena *a = *state;
    const char *forms[] = {"9876543210", "+919876543210", "919876543210"};
    for (size_t i = 0; i < 3; i++) {
        struct parsed p = parse(a, USER, arena_printf(a, "mobile=%s", forms[i]));
        assert_true(p.ok);
        assert_string_equal(p.q.f.mobile, "9876543210");
    }
    struct parsed p = parse(a, DOCTOR, "email=A\xcc\x88RZTE@Example.IN");
    assert_true(p.ok);
    assert_string_equal(p.q.f.email_key, "\xc3\xa4rzte@example.in");
    p = parse(a, USER, "updated_since=2024-05-01T18:04:56.789%2B05:30");
    assert_false(p.ok); /* (the test passes decoded values: a literal "%2B" is not an offset) */
    p = parse(a, USER, "updated_since=2024-05-01T18:04:56.789+05:30");
    assert_true(p.ok);
    assert_string_equal(p.q.f.updated_since, "2024-05-01T12:34:56.789Z");
    p = parse(a, USER, "updated_since=1960-01-01T00:00:00Z");
    assert_true(p.ok);
    assert_string_equal(p.q.f.updated_since, "1970-01-01T00:00:00.000Z");
    p = parse(a, USER, "partner_id=Part_user_1&auth_userid= sso 1 ");
    assert_true(p.ok);
    assert_string_equal(p.q.f.partner_id, "Part_user_1");
    assert_string_equal(p.q.f.auth_userid, " sso 1 "); /* stored as sent */
    p = parse(a, USER, "clinic_id=c-0123456789abcdef01234567&doctor_id=do1234567890123");
    assert_string_equal(p.q.f.clinic_id, "c-0123456789abcdef01234567");
    assert_string_equal(p.q.f.doctor_id, "do1234567890123");
}

static void test_bad_values(void **state)
{
    struct arena *a = *state;
    refused(a, USER, "mobile=12345", "mobile", "10-digit");
    refused(a, USER, "mobile= 919876543210", "mobile", "send it as %2B"); /* a '+' read as a space */
    refused(a, USER, "email=not-an-email", "email", "valid email");
    refused(a, USER, "email=a\xe2\x80\x8b@x.in", "email", "valid email");
    refused(a, USER, "partner_id=", "partner_id", "blank");
    refused(a, USER, "partner_id=a/b", "partner_id", "'/'");
    refused(a, USER, "partner_id=\xff", "partner_id", "UTF-8");
    refused(a, USER, "auth_userid=\x01", "auth_userid", "UTF-8");
    refused(a, USER, arena_printf(a, "auth_userid=%0129d", 1), "auth_userid", "128");
    refused(a, USER, "clinic_id=Clinic_321", "clinic_id", "Eka id of a clinic");
    refused(a, USER, "clinic_id=C-0123456789ABCDEF01234567", "clinic_id", "Eka id");
    refused(a, CLINIC, "doctor_id=do123", "doctor_id", "Eka id of a doctor");
    refused(a, USER, "updated_since=2024-05-01", "updated_since", "RFC 3339");
    refused(a, USER, "updated_since=2024-05-01T10:00:00 05:30", "updated_since", "%2B");
    refused(a, USER, "updated_since=yesterday", "updated_since", "RFC 3339");
    refused(a, USER, "updated_since=", "updated_since", "RFC 3339");
}

/* The cursor of the next page opens for the same tenant, list and filters only. */
static void test_cursor_binding(void **state)
{
    struct arena *a = *state;
    struct parsed p = parse(a, USER, "mobile=9876543210&limit=2");
    char cur[CURSOR_TEXT_MAX];
    assert_true(cursor_seal(&KEYS, p.q.bind, 4242, cur));
    assert_true(strlen(cur) <= 66);
    for (const char *c = cur; *c; c++) /* base64url: safe in a query string as it is */
        assert_true((*c >= 'A' && *c <= 'Z') || (*c >= 'a' && *c <= 'z') || (*c >= '0' && *c <= '9') || *c == '-' ||
                    *c == '_');
    /* the same filters, spelt otherwise, another limit: the same list */
    p = parse(a, USER, arena_printf(a, "limit=7&mobile=+919876543210&cursor=%s", cur));
    assert_true(p.ok);
    assert_true(p.q.after == 4242);
    p = parse(a, USER, arena_printf(a, "cursor=%s&mobile=919876543210", cur));
    assert_true(p.ok);
    assert_true(p.q.after == 4242);
    /* the previous key of a rotation still opens it */
    p = parse_on(a, USER, "ekauser", TENANT, &ROTATED, arena_printf(a, "limit=7&mobile=9876543210&cursor=%s", cur));
    assert_true(p.ok);
    /* another tenant, list, filter set, or key */
    const char *no = "Not a cursor of this list";
    struct parsed q =
        parse_on(a, USER, "ekauser", "2000000000000002", &KEYS, arena_printf(a, "mobile=9876543210&cursor=%s", cur));
    assert_false(q.ok);
    assert_non_null(strstr(field_why(&q, "cursor"), no));
    q = parse_on(a, USER, "hipusers", TENANT, &KEYS, arena_printf(a, "mobile=9876543210&cursor=%s", cur));
    assert_false(q.ok);
    q = parse_on(a, DOCTOR, "doctor", TENANT, &KEYS, arena_printf(a, "mobile=9876543210&cursor=%s", cur));
    assert_false(q.ok);
    refused(a, USER, arena_printf(a, "cursor=%s", cur), "cursor", no);
    refused(a, USER, arena_printf(a, "mobile=9876543211&cursor=%s", cur), "cursor", no);
    refused(a, USER, arena_printf(a, "mobile=9876543210&partner_id=p&cursor=%s", cur), "cursor", no);
    q = parse_on(a, USER, "ekauser", TENANT, &OTHER_KEYS, arena_printf(a, "mobile=9876543210&cursor=%s", cur));
    assert_false(q.ok);
    /* forged: any bit changed, truncated, extended, padded, empty, junk */
    size_t len = strlen(cur);
    for (size_t i = 0; i < len; i++) {
        char *forged = arena_strdup(a, cur);
        forged[i] = forged[i] == 'A' ? 'B' : 'A';
        refused(a, USER, arena_printf(a, "mobile=9876543210&cursor=%s", forged), "cursor", no);
    }
    refused(a, USER, arena_printf(a, "mobile=9876543210&cursor=%.*s", (int)len - 1, cur), "cursor", no);
    refused(a, USER, arena_printf(a, "mobile=9876543210&cursor=%sA", cur), "cursor", no);
    refused(a, USER, arena_printf(a, "mobile=9876543210&cursor=%s==", cur), "cursor", no);
    refused(a, USER, "mobile=9876543210&cursor=", "cursor", no);
    refused(a, USER, "mobile=9876543210&cursor=12345", "cursor", no);
    refused(a, USER, "mobile=9876543210&cursor=%%%%", "cursor", no);
    /* two seals of one position differ (random nonce), both open */
    char again[CURSOR_TEXT_MAX];
    p = parse(a, USER, "mobile=9876543210");
    assert_true(cursor_seal(&KEYS, p.q.bind, 4242, again));
    assert_string_not_equal(again, cur);
    int64_t pos;
    assert_true(cursor_open(&KEYS, p.q.bind, again, &pos) && pos == 4242);
}

static void test_idempotency_key_rule(void **state)
{
    struct arena *a = *state;
    assert_true(idem_key_valid("a"));
    assert_true(idem_key_valid("8e03978e-40d5-43e8-bc93-6894a57f9324"));
    assert_true(idem_key_valid("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"));
    char *max = arena_alloc(a, 257);
    memset(max, 'k', 255);
    max[255] = '\0';
    assert_true(idem_key_valid(max));
    max[255] = 'k';
    max[256] = '\0';
    assert_false(idem_key_valid(max));
    const char *bad[] = {"", " ", "a b", "a\tb", "a\x01", "a\x7f", "caf\xc3\xa9", "a, b", "\xff"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        if (idem_key_valid(bad[i]))
            fail_msg("accepted: %s", bad[i]);
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup_arena, teardown_arena)

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    USER = resource_get(R_EKAUSER);
    DOCTOR = resource_get(R_DOCTOR);
    CLINIC = resource_get(R_CLINIC);
    const char *k1 = "list-query-test-secret-0123456789abcdef", *k2 = "another-test-secret-0123456789abcdef0123";
    keyring_add(&KEYS, k1, strlen(k1));
    keyring_add(&OTHER_KEYS, k2, strlen(k2));
    keyring_add(&ROTATED, k2, strlen(k2)); /* signs with the new key, still opens with the old */
    keyring_add(&ROTATED, k1, strlen(k1));
    const struct CMUnitTest tests[] = {
        T(test_no_parameters_is_the_whole_list),
        T(test_limit),
        T(test_unknown_repeated_and_malformed),
        T(test_filters_that_do_not_apply),
        T(test_values_normalised_as_stored),
        T(test_bad_values),
        T(test_cursor_binding),
        T(test_idempotency_key_rule),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
