/* Unit tests of issue 10's pure parts: entity-tag lists (src/http/etag.c), the ETag of a
 * record and the changes of a write (src/model/render.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <sodium.h>

#include "http/etag.h"
#include "model/field.h"

#include "arena_fixture.h"

#define TAG "\"HLh2n0ZBlLvYZRz1IsMsxg\""

static void expect(const char *field, const char *cur, bool weak, enum etag_match want)
{
    enum etag_match got = etag_list_match(field, cur, weak);
    if (got != want)
        print_error("etag_list_match(%s, %s, %s) = %d, want %d\n", field, cur, weak ? "weak" : "strong", got, want);
    assert_int_equal(got, want);
}

/* If-Match compares strongly, If-None-Match weakly (RFC 9110 §8.8.3.2). */
static void test_comparison(void **state)
{
    (void)state;
    expect(TAG, TAG, false, ETAG_MATCH);
    expect(TAG, TAG, true, ETAG_MATCH);
    expect("W/" TAG, TAG, false, ETAG_NO_MATCH);
    expect("W/" TAG, TAG, true, ETAG_MATCH);
    expect("\"other\"", TAG, false, ETAG_NO_MATCH);
    expect("\"other\"", TAG, true, ETAG_NO_MATCH);
    expect("\"HLh2n0ZBlLvYZRz1IsMsx\"", TAG, false, ETAG_NO_MATCH); /* a prefix */
    expect("\"hlh2n0zbllvyzrz1ismsxg\"", TAG, false, ETAG_NO_MATCH); /* case matters */
    expect("\"\"", "\"\"", false, ETAG_MATCH);                       /* the empty tag is a tag */
}

static void test_star_and_lists(void **state)
{
    (void)state;
    expect("*", TAG, false, ETAG_MATCH);
    expect(" \t* \t", TAG, true, ETAG_MATCH);
    expect("\"a\", " TAG, TAG, false, ETAG_MATCH);
    expect("\"a\"," TAG ",\"b\"", TAG, false, ETAG_MATCH);
    expect(", ,\"a\",, \t" TAG " ,", TAG, false, ETAG_MATCH); /* empty elements and OWS */
    expect("\"a\", W/" TAG, TAG, false, ETAG_NO_MATCH);
    expect("\"a\", W/" TAG, TAG, true, ETAG_MATCH);
    expect("\"a\", \"b\"", TAG, true, ETAG_NO_MATCH);
    /* two header lines, joined as http_header_joined does */
    expect("\"a\", " TAG, TAG, false, ETAG_MATCH);
}

static void test_invalid(void **state)
{
    (void)state;
    static const char *const bad[] = {
        "",          " ",          ",",        ", ,",          "abc",         "HLh2n0ZBlLvYZRz1IsMsxg",
        "\"abc",     "abc\"",      "W/abc",    "w/\"abc\"",    "W /\"abc\"",  "* ,\"a\"",
        "\"a\", *",  "**",         "\"a\" \"b\"", "\"a\";q=1", "\"a\"b",      "\"a b\"",
        "\"a\x01\"", "\"a\x7f\"",  "\"a\"\"\"", "W/",           "W/\"",        "\"a\",\"b",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        expect(bad[i], TAG, false, ETAG_INVALID);
        expect(bad[i], TAG, true, ETAG_INVALID);
    }
    assert_int_equal(etag_list_match(NULL, TAG, false), ETAG_INVALID);
    /* obs-text is allowed inside a tag */
    expect("\"\xc3\xa9t\xc3\xa9\"", "\"\xc3\xa9t\xc3\xa9\"", false, ETAG_MATCH);
}

/* ---------------------------------------------------------------- model_etag */

static struct record clinic(struct arena *a, const char *name, const char *city)
{
    const struct resource *r = resource_get(R_CLINIC);
    struct record rec = {.id = "c-0123456789abcdef01234567", .created_at = "2024-05-01T12:34:56.789Z",
                         .updated_at = "2024-05-01T12:34:56.789Z"};
    rec.v[field_index(r, "name")] = (struct fval){.state = V_SET, .s = name};
    rec.v[field_index(r, "address")] = (struct fval){.state = V_SET, .s = "1 Road"};
    if (city)
        rec.v[field_index(r, "city")] = (struct fval){.state = V_SET, .s = city};
    struct ref *doctors = arena_calloc(a, 2, sizeof *doctors);
    doctors[0] = (struct ref){.id = "do1234567890123", .a = "Rajesh", .b = "Sharma"};
    doctors[1] = (struct ref){.id = "do1234567890124", .a = "Anil", .b = "Rao"};
    rec.links[0] = (struct reflist){.items = doctors, .n = 2};
    return rec;
}

static void test_etag_follows_the_representation(void **state)
{
    struct arena *a = *state;
    const struct resource *r = resource_get(R_CLINIC);
    char t1[ETAG_MAX], t2[ETAG_MAX], t3[ETAG_MAX];
    struct record rec = clinic(a, "Sunrise", NULL);
    model_etag(r, &rec, t1);
    /* quoted, strong, base64url */
    assert_int_equal(t1[0], '"');
    assert_int_equal(t1[strlen(t1) - 1], '"');
    assert_int_equal(strlen(t1), 24);
    assert_int_equal(etag_list_match(t1, t1, false), ETAG_MATCH);
    for (size_t i = 1; i + 1 < strlen(t1); i++)
        assert_non_null(strchr("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_", t1[i]));
    /* the same representation, the same tag */
    struct record same = clinic(a, "Sunrise", NULL);
    model_etag(r, &same, t2);
    assert_string_equal(t1, t2);
    json_t *o = model_render(r, &same);
    model_etag_of(o, t3);
    json_decref(o);
    assert_string_equal(t1, t3);
    /* anything GET shows: a field, a linked record's name, the links' order, updated_at */
    struct record other = clinic(a, "Sunrise", "Pune");
    model_etag(r, &other, t2);
    assert_string_not_equal(t1, t2);
    other = clinic(a, "Sunrise", NULL);
    other.links[0].items[1].a = "Anand";
    model_etag(r, &other, t2);
    assert_string_not_equal(t1, t2);
    other = clinic(a, "Sunrise", NULL);
    struct ref swap = other.links[0].items[0];
    other.links[0].items[0] = other.links[0].items[1];
    other.links[0].items[1] = swap;
    model_etag(r, &other, t2);
    assert_string_not_equal(t1, t2);
    other = clinic(a, "Sunrise", NULL);
    other.links[0].n = 1;
    model_etag(r, &other, t2);
    assert_string_not_equal(t1, t2);
    other = clinic(a, "Sunrise", NULL);
    other.updated_at = "2024-05-01T12:34:56.790Z";
    model_etag(r, &other, t2);
    assert_string_not_equal(t1, t2);
}

/* ---------------------------------------------------------------- model_changes */

static void assert_json(json_t *got, const char *want_text)
{
    json_t *want = json_loads(want_text, 0, NULL);
    assert_non_null(want);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("got  %s\nwant %s\n", g, want_text);
        free(g);
    }
    assert_true(json_equal(got, want));
    json_decref(want);
    json_decref(got);
}

static void test_changes_of_a_create(void **state)
{
    struct arena *a = *state;
    const struct resource *r = resource_get(R_CLINIC);
    struct record rec = clinic(a, "Sunrise", NULL);
    assert_json(model_changes(r, NULL, &rec),
                "{\"name\":{\"from\":null,\"to\":\"Sunrise\"},\"address\":{\"from\":null,\"to\":\"1 Road\"},"
                "\"doctor_ids\":{\"from\":null,\"to\":[\"do1234567890123\",\"do1234567890124\"]}}");
    rec.links[0].n = 0; /* an empty link list is not a set field */
    assert_json(model_changes(r, NULL, &rec), "{\"name\":{\"from\":null,\"to\":\"Sunrise\"},"
                                               "\"address\":{\"from\":null,\"to\":\"1 Road\"}}");
}

static void test_changes_of_an_update(void **state)
{
    struct arena *a = *state;
    const struct resource *r = resource_get(R_CLINIC);
    struct record before = clinic(a, "Sunrise", "Pune");
    struct record after = clinic(a, "Sunset", NULL);
    after.links[0].n = 1;
    after.updated_at = "2030-01-01T00:00:00.000Z"; /* not a field */
    assert_json(model_changes(r, &before, &after),
                "{\"name\":{\"from\":\"Sunrise\",\"to\":\"Sunset\"},\"city\":{\"from\":\"Pune\",\"to\":null},"
                "\"doctor_ids\":{\"from\":[\"do1234567890123\",\"do1234567890124\"],\"to\":[\"do1234567890123\"]}}");
    assert_json(model_changes(r, &before, &before), "{}");
    /* a linked record's name is its own field, not this record's */
    after = clinic(a, "Sunrise", "Pune");
    after.links[0].items[0].a = "Renamed";
    assert_json(model_changes(r, &before, &after), "{}");
}

static void test_changes_render_values_as_get_shows_them(void **state)
{
    (void)state;
    const struct resource *r = resource_get(R_EKAUSER);
    struct record before = {.id = "176338032692057"}, after = {.id = "176338032692057"};
    before.v[field_index(r, "mobile")] = (struct fval){.state = V_SET, .s = "9876543210"};
    before.v[field_index(r, "is_admin")] = (struct fval){.state = V_SET, .b = false};
    after.v[field_index(r, "mobile")] = (struct fval){.state = V_SET, .s = "9876543211"};
    after.v[field_index(r, "is_admin")] = (struct fval){.state = V_SET, .b = true};
    assert_json(model_changes(r, &before, &after),
                "{\"mobile\":{\"from\":\"+919876543210\",\"to\":\"+919876543211\"},"
                "\"is_admin\":{\"from\":false,\"to\":true}}");
    const struct resource *d = resource_get(R_DOCTOR);
    struct record db = {.id = "do1234567890123"}, da = {.id = "do1234567890123"};
    da.v[field_index(d, "specialisations")] = (struct fval){.state = V_SET, .s = "[\"ENT\",\"Surgery\"]"};
    /* the derived specialisation is not a field of its own; equal (empty) link lists are no change */
    assert_json(model_changes(d, &db, &da), "{\"specialisations\":{\"from\":null,\"to\":[\"ENT\",\"Surgery\"]}}");
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_comparison),
        cmocka_unit_test(test_star_and_lists),
        cmocka_unit_test(test_invalid),
        cmocka_unit_test_setup_teardown(test_etag_follows_the_representation, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_changes_of_a_create, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_changes_of_an_update, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(test_changes_render_values_as_get_shows_them, setup_arena, teardown_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
