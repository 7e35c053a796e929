/* The OpenAPI document the binary serves (docs/openapi.json, embedded at build time)
 * against the code it describes: every route the router knows is documented with exactly
 * the methods it serves, and every documented path routes; each resource's create, patch
 * and view schemas have the fields of its field table, with the same required fields,
 * types, choices, lengths and defaults; the reference page's files are all embedded; the
 * document's version is the program's. A route, method or field added to the code without
 * the document (or the other way round) fails here. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "api/api.h"
#include "http/router.h"
#include "model/field.h"
#include "util/embedded.h"

#include "arena_fixture.h"

static json_t *DOC;

/* The first problem a check found: the checks return false with it filled in, so tests
 * can also show that a broken document is caught. */
static char why[2048];
#define PROBLEM(...) (snprintf(why, sizeof why, __VA_ARGS__), false)

static int load_doc(void **state)
{
    (void)state;
    const struct embedded *f = embedded_find("docs/openapi.json");
    if (!f)
        return -1;
    json_error_t err;
    DOC = json_loadb((const char *)f->data, f->len, JSON_REJECT_DUPLICATES, &err);
    if (!DOC)
        fprintf(stderr, "docs/openapi.json: line %d: %s\n", err.line, err.text);
    return DOC ? 0 : -1;
}

static int free_doc(void **state)
{
    (void)state;
    json_decref(DOC);
    return 0;
}

static json_t *schema(json_t *doc, const char *name)
{
    return json_object_get(json_object_get(json_object_get(doc, "components"), "schemas"), name);
}

static json_t *props(json_t *s) { return json_object_get(s, "properties"); }

static bool in_array(json_t *arr, const char *word)
{
    size_t i;
    json_t *v;
    json_array_foreach(arr, i, v) if (json_is_string(v) && strcmp(json_string_value(v), word) == 0) return true;
    return false;
}

/* Does the schema's type (a string or a list of them) include t? */
static bool has_type(json_t *s, const char *t)
{
    json_t *type = json_object_get(s, "type");
    return json_is_string(type) ? strcmp(json_string_value(type), t) == 0 : in_array(type, t);
}

/* ---------------------------------------------------------------- the document */

static void test_document_header(void **state)
{
    (void)state;
    assert_string_equal(json_string_value(json_object_get(DOC, "openapi")), "3.1.0");
    json_t *info = json_object_get(DOC, "info");
    assert_string_equal(json_string_value(json_object_get(info, "version")), HIPUSERS_VERSION);
}

/* ---------------------------------------------------------------- routes */

static const char *const METHODS[] = {"get", "head", "post", "put", "patch", "delete", "options", "trace"};

/* The path with each {param} replaced by a value the router accepts. */
static char *concrete(json_t *doc, const char *path)
{
    static char out[256];
    size_t o = 0;
    for (const char *p = path; *p && o < sizeof out - 64; p++) {
        if (*p != '{') {
            out[o++] = *p;
            continue;
        }
        const char *end = strchr(p, '}');
        assert_non_null(end);
        const char *value = "x1";
        if (strncmp(p, "{file}", 6) == 0) { /* the first of the documented files */
            json_t *docs_file =
                json_object_get(json_object_get(json_object_get(doc, "components"), "parameters"), "DocsFile");
            value = json_string_value(json_array_get(json_object_get(json_object_get(docs_file, "schema"), "enum"), 0));
            assert_non_null(value);
        }
        o += (size_t)snprintf(out + o, sizeof out - o, "%s", value);
        p = end;
    }
    out[o] = '\0';
    return out;
}

/* Is METHOD (upper case) in an Allow list like "GET, PATCH, DELETE"? HEAD goes with GET. */
static bool allows(const char *allow, const char *method)
{
    if (strcmp(method, "HEAD") == 0)
        method = "GET";
    size_t n = strlen(method);
    for (const char *p = allow; (p = strstr(p, method)); p += n)
        if ((p == allow || p[-1] == ' ') && (p[n] == '\0' || p[n] == ','))
            return true;
    return false;
}

static bool check_routes(json_t *doc, struct arena *a)
{
    json_t *paths = json_object_get(doc, "paths");
    bool seen[RT_KINDS] = {0};
    const char *path;
    json_t *item;
    json_object_foreach(paths, path, item)
    {
        struct route rt;
        const char *concrete_path = concrete(doc, path);
        if (!route_match(concrete_path, a, &rt))
            return PROBLEM("documented path %s (as %s) does not route", path, concrete_path);
        seen[rt.kind] = true;
        const char *allow = route_allow(rt.kind);
        for (size_t i = 0; i < sizeof METHODS / sizeof METHODS[0]; i++) {
            char upper[16];
            size_t k;
            for (k = 0; METHODS[i][k]; k++)
                upper[k] = (char)(METHODS[i][k] - 'a' + 'A');
            upper[k] = '\0';
            bool documented = json_object_get(item, METHODS[i]) != NULL;
            bool served = allows(allow, upper);
            if (documented != served)
                return PROBLEM("%s %s: %s but %s (Allow: %s)", upper, path,
                               documented ? "documented" : "not documented", served ? "served" : "not served", allow);
        }
    }
    for (int k = RT_NOT_FOUND + 1; k < RT_KINDS; k++)
        if (!seen[k])
            return PROBLEM("route kind %d (Allow: %s) has no path in the document", k,
                           route_allow((enum route_kind)k));
    return true;
}

static void test_every_route_is_documented_with_its_methods(void **state)
{
    if (!check_routes(DOC, *state))
        fail_msg("%s", why);
}

/* Each way the document can drift from the router is caught. */
static void test_route_drift_is_caught(void **state)
{
    struct arena *a = *state;
    json_t *doc = json_deep_copy(DOC);
    json_object_del(json_object_get(json_object_get(doc, "paths"), "/cdr/v1/doctor/{doc_id}/"), "delete");
    assert_false(check_routes(doc, a));
    assert_non_null(strstr(why, "DELETE /cdr/v1/doctor/{doc_id}/: not documented but served"));
    json_decref(doc);

    doc = json_deep_copy(DOC);
    json_object_set_new(json_object_get(json_object_get(doc, "paths"), "/openapi.json"), "post", json_object());
    assert_false(check_routes(doc, a));
    assert_non_null(strstr(why, "POST /openapi.json: documented but not served"));
    json_decref(doc);

    doc = json_deep_copy(DOC);
    json_object_del(json_object_get(doc, "paths"), "/cdr/v1/hipusers/");
    assert_false(check_routes(doc, a));
    assert_non_null(strstr(why, "has no path in the document"));
    json_decref(doc);

    doc = json_deep_copy(DOC);
    json_object_set_new(json_object_get(doc, "paths"), "/cdr/v2/clinic/", json_object());
    assert_false(check_routes(doc, a));
    assert_non_null(strstr(why, "/cdr/v2/clinic/ (as /cdr/v2/clinic/) does not route"));
    json_decref(doc);
}

static void test_reference_files_are_embedded(void **state)
{
    (void)state;
    const char *file = reference_file_of(RT_OPENAPI, NULL);
    assert_non_null(file);
    assert_non_null(embedded_find(file));
    file = reference_file_of(RT_DOCS, NULL);
    assert_non_null(file);
    assert_non_null(embedded_find(file));
    json_t *names = json_object_get(
        json_object_get(json_object_get(json_object_get(json_object_get(DOC, "components"), "parameters"), "DocsFile"),
                        "schema"),
        "enum");
    assert_true(json_array_size(names) >= 1);
    size_t i;
    json_t *name;
    json_array_foreach(names, i, name)
    {
        file = reference_file_of(RT_DOCS_FILE, json_string_value(name));
        if (!file || !embedded_find(file))
            fail_msg("/docs/%s is documented but not served", json_string_value(name));
    }
    assert_null(reference_file_of(RT_DOCS_FILE, "nope.js"));
    for (size_t k = 0; k < EMBEDDED_COUNT; k++) {
        assert_true(EMBEDDED[k].len > 0);
        assert_int_equal(strlen(EMBEDDED[k].sha256), 64);
    }
}

/* ---------------------------------------------------------------- field tables */

static const char *json_type_of(const struct field *f)
{
    switch (f->type) {
    case FT_BOOL: return "boolean";
    case FT_STRLIST:
    case FT_LINKS: return "array";
    default: return "string";
    }
}

/* The schema of one request field agrees with the field's rule. */
static bool check_field(const struct resource *r, const char *which, const struct field *f, json_t *s, bool patch)
{
    if (!s)
        return PROBLEM("%s%s has no property %s", r->label, which, f->name);
    if (!has_type(s, json_type_of(f)))
        return PROBLEM("%s%s.%s: type is not %s", r->label, which, f->name, json_type_of(f));
    bool nullable = has_type(s, "null");
    bool want_nullable = patch && !(f->flags & F_REQUIRED);
    if (nullable != want_nullable)
        return PROBLEM("%s%s.%s: null is %s by the server", r->label, which, f->name, want_nullable ? "accepted" : "refused");
    if (f->type == FT_ENUM) {
        json_t *en = json_object_get(s, "enum");
        size_t n = 0;
        for (const char *const *c = f->choices; *c; c++, n++)
            if (!in_array(en, *c))
                return PROBLEM("%s%s.%s: choice %s is missing", r->label, which, f->name, *c);
        if (json_array_size(en) != n)
            return PROBLEM("%s%s.%s: the enum lists %zu choices, the server %zu", r->label, which, f->name,
                     json_array_size(en), n);
    }
    if (f->type == FT_TEXT &&
        json_integer_value(json_object_get(s, "maxLength")) != (json_int_t)f->maxlen)
        return PROBLEM("%s%s.%s: maxLength is not %u", r->label, which, f->name, f->maxlen);
    if (f->type == FT_STRLIST || f->type == FT_LINKS) {
        if (json_integer_value(json_object_get(s, "maxItems")) != MAX_ARRAY_ITEMS)
            return PROBLEM("%s%s.%s: maxItems is not %d", r->label, which, f->name, MAX_ARRAY_ITEMS);
        if (!has_type(json_object_get(s, "items"), "string"))
            return PROBLEM("%s%s.%s: items are not strings", r->label, which, f->name);
    }
    json_t *dflt = json_object_get(s, "default");
    if (f->deflt) {
        char *txt = dflt ? json_dumps(dflt, JSON_ENCODE_ANY) : NULL;
        bool same = txt && (strcmp(txt, f->deflt) == 0 ||
                            (json_is_string(dflt) && strcmp(json_string_value(dflt), f->deflt) == 0));
        free(txt);
        if (!same)
            return PROBLEM("%s%s.%s: default is not %s", r->label, which, f->name, f->deflt);
    } else if (dflt) {
        return PROBLEM("%s%s.%s: documents a default the server does not have", r->label, which, f->name);
    }
    return true;
}

static bool check_request_schema(json_t *doc, const struct resource *r, const char *which, bool patch)
{
    char name[64];
    snprintf(name, sizeof name, "%s%s", r->label, which);
    json_t *s = schema(doc, name), *p = props(s), *required = json_object_get(s, "required");
    if (!s)
        return PROBLEM("components.schemas.%s is missing", name);
    if (!json_is_false(json_object_get(s, "additionalProperties")))
        return PROBLEM("%s: the server refuses unknown fields (additionalProperties: false)", name);
    size_t nreq = 0;
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (!check_field(r, which, f, json_object_get(p, f->name), patch))
            return false;
        bool req = !patch && (f->flags & F_REQUIRED);
        if (in_array(required, f->name) != req)
            return PROBLEM("%s.%s: %s by the server", name, f->name, req ? "required" : "not required");
        nreq += req;
    }
    if (json_object_size(p) != r->nfields)
        return PROBLEM("%s has %zu properties, the field table %zu", name, json_object_size(p), r->nfields);
    if (json_array_size(required) != nreq)
        return PROBLEM("%s requires %zu fields, the server %zu", name, json_array_size(required), nreq);
    return true;
}

/* What GET shows: id, every stored field, a list's primary item, the linked records and
 * the two timestamps; always there: id, required and defaulted fields, links, timestamps. */
static bool check_view_schema(json_t *doc, const struct resource *r)
{
    json_t *s = schema(doc, r->label), *p = props(s), *required = json_object_get(s, "required");
    if (!s)
        return PROBLEM("components.schemas.%s is missing", r->label);
    if (!json_is_false(json_object_get(s, "additionalProperties")))
        return PROBLEM("%s: a view shows no other field (additionalProperties: false)", r->label);
    size_t n = 0;
    const char *always[] = {"id", "created_at", "updated_at"};
    for (size_t i = 0; i < 3; i++, n++)
        if (!json_object_get(p, always[i]) || !in_array(required, always[i]))
            return PROBLEM("%s: %s is always shown", r->label, always[i]);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type == FT_LINKS)
            continue;
        json_t *fs = json_object_get(p, f->name);
        if (!fs || !has_type(fs, json_type_of(f)) || has_type(fs, "null"))
            return PROBLEM("%s.%s: shown by GET as a %s, never null", r->label, f->name, json_type_of(f));
        bool always_there = (f->flags & F_REQUIRED) || f->deflt;
        if (in_array(required, f->name) != always_there)
            return PROBLEM("%s.%s: %s", r->label, f->name, always_there ? "always shown" : "left out when unset");
        n++;
        if (f->primary_as) {
            if (!json_object_get(p, f->primary_as) || in_array(required, f->primary_as))
                return PROBLEM("%s.%s: shown when %s has an item", r->label, f->primary_as, f->name);
            n++;
        }
    }
    for (size_t i = 0; i < r->nviews; i++, n++) {
        json_t *vs = json_object_get(p, r->views[i].json_name);
        if (!vs || !has_type(vs, "array") || !in_array(required, r->views[i].json_name))
            return PROBLEM("%s.%s: an array, always shown", r->label, r->views[i].json_name);
    }
    if (json_object_size(p) != n)
        return PROBLEM("%s documents %zu properties, GET shows %zu", r->label, json_object_size(p), n);
    return true;
}

static bool check_resources(json_t *doc)
{
    for (int k = 0; k < R_COUNT; k++) {
        const struct resource *r = resource_get((enum rkind)k);
        if (!check_request_schema(doc, r, "Create", false) || !check_request_schema(doc, r, "Patch", true) ||
            !check_view_schema(doc, r))
            return false;
    }
    return true;
}

static void test_resource_schemas_follow_the_field_tables(void **state)
{
    (void)state;
    if (!check_resources(DOC))
        fail_msg("%s", why);
}

/* A copy of the document with one thing changed, checked: the check must name it. */
static void expect_caught(const char *schema_name, const char *field, const char *key, json_t *value,
                          const char *expected)
{
    json_t *doc = json_deep_copy(DOC);
    json_t *s = schema(doc, schema_name);
    json_t *target = field ? json_object_get(props(s), field) : s;
    assert_non_null(target);
    if (value)
        json_object_set_new(target, key, value);
    else
        json_object_del(target, key);
    why[0] = '\0';
    bool ok = check_resources(doc);
    json_decref(doc);
    if (ok)
        fail_msg("changing %s.%s.%s went unnoticed", schema_name, field ? field : "", key);
    if (!strstr(why, expected))
        fail_msg("changing %s.%s.%s: \"%s\" does not mention \"%s\"", schema_name, field ? field : "", key, why,
                 expected);
}

static void test_each_kind_of_drift_is_caught(void **state)
{
    (void)state;
    json_t *p = props(schema(DOC, "ClinicCreate"));
    assert_non_null(json_object_get(p, "city"));
    /* a field missing from the document */
    json_t *doc = json_deep_copy(DOC);
    json_object_del(props(schema(doc, "ClinicCreate")), "city");
    assert_false(check_resources(doc));
    assert_non_null(strstr(why, "city"));
    json_decref(doc);
    /* a field the server does not know */
    doc = json_deep_copy(DOC);
    json_object_set_new(props(schema(doc, "DoctorPatch")), "nickname", json_pack("{s:s}", "type", "string"));
    assert_false(check_resources(doc));
    assert_non_null(strstr(why, "DoctorPatch"));
    json_decref(doc);
    expect_caught("ClinicCreate", NULL, "required", json_pack("[s]", "name"), "address");
    expect_caught("EkaUserCreate", "gender", "enum", json_pack("[s,s]", "M", "F"), "gender");
    expect_caught("ClinicCreate", "address", "maxLength", json_integer(400), "address");
    expect_caught("DoctorCreate", "dob", "default", NULL, "dob");
    expect_caught("EkaUserPatch", "email", "type", json_string("string"), "email");
    expect_caught("EkaUserCreate", "is_admin", "type", json_string("string"), "is_admin");
    expect_caught("Doctor", NULL, "required", json_pack("[s]", "id"), "Doctor");
    expect_caught("Clinic", "pincode", "type", json_pack("[s,s]", "string", "null"), "pincode");
    expect_caught("EkaUserCreate", NULL, "additionalProperties", json_true(), "unknown fields");
}

#define T(f) cmocka_unit_test(f)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_document_header),
        cmocka_unit_test_setup_teardown(test_every_route_is_documented_with_its_methods, setup_arena,
                                        teardown_arena),
        cmocka_unit_test_setup_teardown(test_route_drift_is_caught, setup_arena, teardown_arena),
        T(test_reference_files_are_embedded),
        T(test_resource_schemas_follow_the_field_tables),
        T(test_each_kind_of_drift_is_caught),
    };
    return cmocka_run_group_tests(tests, load_doc, free_doc);
}
