/* Unit tests of the field tables (src/model/resources.c), request decoding and
 * validation (src/model/decode.c) and rendering (src/model/render.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/field.h"
#include "util/arena.h"
#include "util/err.h"

#define TODAY "2024-06-15"

/* ---------------------------------------------------------------- fixture */

struct ctx {
    struct arena a;
    struct herr e;
    struct fval vals[MAX_FIELDS];
    const struct resource *r;
};

static int setup(void **state)
{
    struct ctx *c = calloc(1, sizeof *c);
    if (!c)
        return -1;
    arena_init(&c->a);
    *state = c;
    return 0;
}

/* Runs even when a test failed, so every jansson value and arena chunk is freed. */
static int teardown(void **state)
{
    struct ctx *c = *state;
    arena_release(&c->a);
    free(c);
    return 0;
}

static void decref_cb(void *p) { json_decref(p); }

/* A jansson value owned by the test's arena. */
static json_t *own(struct ctx *c, json_t *v)
{
    assert_non_null(v);
    arena_defer(&c->a, decref_cb, v);
    return v;
}

static json_t *J(struct ctx *c, const char *text)
{
    json_error_t err;
    json_t *v = json_loads(text, JSON_DECODE_ANY, &err);
    if (!v)
        print_error("bad test JSON: %s: %s\n", text, err.text);
    return own(c, v);
}

/* A string of n copies of unit (a UTF-8 sequence). */
static char *rep(struct ctx *c, const char *unit, size_t n)
{
    size_t u = strlen(unit);
    char *s = arena_alloc(&c->a, u * n + 1);
    for (size_t i = 0; i < n; i++)
        memcpy(s + i * u, unit, u);
    s[u * n] = '\0';
    return s;
}

static bool decode_json(struct ctx *c, enum rkind kind, json_t *body, bool create)
{
    c->r = resource_get(kind);
    memset(&c->e, 0, sizeof c->e);
    memset(c->vals, 0x6b, sizeof c->vals); /* model_decode must clear what it does not set */
    return model_decode(c->r, body, create, TODAY, &c->a, c->vals, &c->e);
}

static bool decode(struct ctx *c, enum rkind kind, const char *text, bool create)
{
    return decode_json(c, kind, J(c, text), create);
}

static const struct fval *val(struct ctx *c, const char *name)
{
    int i = field_index(c->r, name);
    if (i < 0)
        print_error("no field %s\n", name);
    assert_true(i >= 0);
    return &c->vals[i];
}

static void assert_str_val(struct ctx *c, const char *name, const char *want)
{
    const struct fval *v = val(c, name);
    assert_int_equal(v->state, V_SET);
    assert_non_null(v->s);
    assert_string_equal(v->s, want);
}

static void assert_state(struct ctx *c, const char *name, enum fstate st)
{
    if (val(c, name)->state != st)
        print_error("field %s: state %d, want %d\n", name, val(c, name)->state, st);
    assert_int_equal(val(c, name)->state, st);
}

static size_t error_count(struct ctx *c) { return c->e.fields ? json_object_size(c->e.fields) : 0; }

/* The field's error list is exactly [why]. */
static void assert_field_error(struct ctx *c, const char *name, const char *why)
{
    if (!c->e.fields)
        print_error("no field errors at all; wanted %s: %s (message: %s)\n", name, why,
                    c->e.message ? c->e.message : "(null)");
    assert_non_null(c->e.fields);
    json_t *list = json_object_get(c->e.fields, name);
    if (!list) {
        char *dump = json_dumps(c->e.fields, JSON_COMPACT);
        print_error("no error for %s; errors: %s\n", name, dump);
        free(dump);
    }
    assert_non_null(list);
    assert_int_equal(json_array_size(list), 1);
    assert_string_equal(json_string_value(json_array_get(list, 0)), why);
}

static void assert_no_field_error(struct ctx *c, const char *name)
{
    if (c->e.fields)
        assert_null(json_object_get(c->e.fields, name));
}

/* Decode of one field in an otherwise valid create body fails with exactly this error. */
static void expect_create_error(struct ctx *c, enum rkind kind, const char *base, const char *name,
                                json_t *value, const char *why)
{
    json_t *body = J(c, base);
    json_object_set_new(body, name, value);
    assert_false(decode_json(c, kind, body, true));
    assert_int_equal(c->e.status, 400);
    assert_int_equal(error_count(c), 1);
    assert_field_error(c, name, why);
    assert_non_null(c->e.message);
    char want[512];
    snprintf(want, sizeof want, "%s: %s", name, why);
    assert_string_equal(c->e.message, want);
    /* a rejected value is not kept (on create a default may stand in; the decode failed anyway) */
    int i = field_index(c->r, name);
    if (!c->r->fields[i].deflt)
        assert_state(c, name, V_ABSENT);
}

static void expect_create_ok(struct ctx *c, enum rkind kind, const char *base, const char *name, json_t *value)
{
    json_t *body = J(c, base);
    json_object_set_new(body, name, value);
    bool ok = decode_json(c, kind, body, true);
    if (!ok)
        print_error("%s rejected: %s\n", name, c->e.message ? c->e.message : "(null)");
    assert_true(ok);
    assert_int_equal(c->e.status, 0);
    assert_null(c->e.fields);
}

static const char *const USER =
    "{\"firstname\":\"Amit\",\"lastname\":\"Kumar\",\"gender\":\"M\",\"dob\":\"1990-05-15\","
    "\"mobile\":\"9876543210\"}";
static const char *const DOCTOR = "{\"firstname\":\"Asha\",\"lastname\":\"Rao\",\"gender\":\"F\"}";
static const char *const CLINIC = "{\"name\":\"City Clinic\",\"address\":\"12 MG Road\"}";

/* ---------------------------------------------------------------- tables */

static void test_resource_tables(void **state)
{
    (void)state;
    assert_ptr_equal(resource_by_path("ekauser", 7), resource_get(R_EKAUSER));
    assert_ptr_equal(resource_by_path("doctor", 6), resource_get(R_DOCTOR));
    assert_ptr_equal(resource_by_path("clinic", 6), resource_get(R_CLINIC));
    assert_ptr_equal(resource_by_path("doctorX", 6), resource_get(R_DOCTOR)); /* length-delimited */
    assert_null(resource_by_path("doctor", 5));
    assert_null(resource_by_path("doctors", 7));
    assert_null(resource_by_path("hipusers", 8));
    assert_null(resource_by_path("", 0));
    const struct resource *u = resource_get(R_EKAUSER);
    assert_int_equal(field_index(u, "firstname"), 0);
    assert_true(field_index(u, "partner_doctor_ids") >= 0);
    assert_int_equal(field_index(u, "nope"), -1);
    assert_int_equal(field_index(u, "about"), -1); /* doctors only */
    assert_true(field_index(resource_get(R_DOCTOR), "about") >= 0);
    assert_int_equal(field_index(resource_get(R_CLINIC), "firstname"), -1);
    assert_int_equal(field_index(resource_get(R_DOCTOR), "doctor_ids"), -1);
    /* identity fields of an Eka User are exactly mobile, email and auth_userid */
    size_t ident = 0;
    for (size_t i = 0; i < u->nfields; i++)
        if (u->fields[i].flags & F_IDENT) {
            ident++;
            assert_true(strcmp(u->fields[i].name, "mobile") == 0 || strcmp(u->fields[i].name, "email") == 0 ||
                        strcmp(u->fields[i].name, "auth_userid") == 0);
        }
    assert_int_equal(ident, 3);
}

/* ---------------------------------------------------------------- create: Eka User */

static void test_user_create_minimal_and_defaults(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_EKAUSER, USER, true));
    assert_int_equal(c->e.status, 0);
    assert_null(c->e.fields);
    assert_null(c->e.message);
    assert_str_val(c, "firstname", "Amit");
    assert_str_val(c, "lastname", "Kumar");
    assert_str_val(c, "gender", "M");
    assert_str_val(c, "dob", "1990-05-15");
    assert_str_val(c, "mobile", "9876543210");
    assert_state(c, "is_admin", V_SET);
    assert_false(val(c, "is_admin")->b);
    assert_str_val(c, "seat_type", "b");
    assert_str_val(c, "persona", "D");
    assert_state(c, "email", V_ABSENT);
    assert_state(c, "auth_userid", V_ABSENT);
    assert_state(c, "partner_id", V_ABSENT);
    assert_state(c, "doctor_ids", V_ABSENT);
    assert_state(c, "partner_doctor_ids", V_ABSENT);
    assert_state(c, "clinic_ids", V_ABSENT);
    assert_state(c, "partner_clinic_ids", V_ABSENT);
}

static void test_user_create_full(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_EKAUSER,
                       "{\"firstname\":\"  Amit \",\"lastname\":\"Kumar\",\"gender\":\"O\",\"dob\":\"2000-02-29\","
                       "\"mobile\":\"+919876543210\",\"email\":\"amit@example.com\",\"auth_userid\":\"auth-1\","
                       "\"is_admin\":true,\"seat_type\":\"p\",\"persona\":\"S\",\"partner_id\":\"P-77\","
                       "\"doctor_ids\":[\"do1\",\"do2\",\"do1\"],\"partner_clinic_ids\":[\"pc1\"]}",
                       true));
    assert_null(c->e.fields);
    assert_str_val(c, "firstname", "Amit");
    assert_str_val(c, "mobile", "9876543210");
    assert_str_val(c, "email", "amit@example.com");
    assert_str_val(c, "auth_userid", "auth-1");
    assert_str_val(c, "gender", "O");
    assert_str_val(c, "dob", "2000-02-29");
    assert_true(val(c, "is_admin")->b);
    assert_str_val(c, "seat_type", "p");
    assert_str_val(c, "persona", "S");
    assert_str_val(c, "partner_id", "P-77");
    const struct fval *d = val(c, "doctor_ids");
    assert_int_equal(d->state, V_SET);
    assert_int_equal(d->n, 2);
    assert_string_equal(d->items[0], "do1");
    assert_string_equal(d->items[1], "do2");
    const struct fval *pc = val(c, "partner_clinic_ids");
    assert_int_equal(pc->n, 1);
    assert_string_equal(pc->items[0], "pc1");
    assert_state(c, "partner_doctor_ids", V_ABSENT);
    assert_state(c, "clinic_ids", V_ABSENT);
}

static void test_user_mobile_forms(void **state)
{
    struct ctx *c = *state;
    const char *forms[] = {"9876543210", "+919876543210", "919876543210"};
    for (size_t i = 0; i < 3; i++) {
        json_t *body = J(c, USER);
        json_object_set_new(body, "mobile", json_string(forms[i]));
        assert_true(decode_json(c, R_EKAUSER, body, true));
        assert_str_val(c, "mobile", "9876543210");
    }
    const char *msg = "Enter a valid 10-digit mobile number (optionally prefixed by +91).";
    expect_create_error(c, R_EKAUSER, USER, "mobile", json_string("12345"), msg);
    expect_create_error(c, R_EKAUSER, USER, "mobile", json_string("+449876543210"), msg);
    expect_create_error(c, R_EKAUSER, USER, "mobile", json_string("98765 43210"), msg);
    expect_create_error(c, R_EKAUSER, USER, "mobile", json_integer(9876543210), "Must be a string.");
}

static void test_user_required_fields(void **state)
{
    struct ctx *c = *state;
    assert_false(decode(c, R_EKAUSER, "{}", true));
    assert_int_equal(c->e.status, 400);
    assert_int_equal(error_count(c), 4);
    assert_field_error(c, "firstname", "This field is required.");
    assert_field_error(c, "lastname", "This field is required.");
    assert_field_error(c, "gender", "This field is required.");
    assert_field_error(c, "dob", "This field is required.");
    assert_string_equal(c->e.message, "firstname: This field is required.");
    /* one missing */
    json_t *body = J(c, USER);
    json_object_del(body, "dob");
    assert_false(decode_json(c, R_EKAUSER, body, true));
    assert_int_equal(error_count(c), 1);
    assert_field_error(c, "dob", "This field is required.");
    assert_string_equal(c->e.message, "dob: This field is required.");
}

static void test_user_null_on_required_create(void **state)
{
    struct ctx *c = *state;
    const char *req[] = {"firstname", "lastname", "gender", "dob"};
    for (size_t i = 0; i < 4; i++) {
        json_t *body = J(c, USER);
        json_object_set_new(body, req[i], json_null());
        assert_false(decode_json(c, R_EKAUSER, body, true));
        assert_int_equal(c->e.status, 400);
        assert_int_equal(error_count(c), 1);
        assert_field_error(c, req[i], "This field may not be null."); /* and not also "required" */
    }
}

static void test_user_null_on_optional_create(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_EKAUSER,
                       "{\"firstname\":\"A\",\"lastname\":\"B\",\"gender\":\"F\",\"dob\":\"1990-01-01\","
                       "\"email\":\"a@b.co\",\"mobile\":null,\"auth_userid\":null,\"partner_id\":null,"
                       "\"is_admin\":null,\"seat_type\":null,\"persona\":null,\"doctor_ids\":null}",
                       true));
    assert_state(c, "mobile", V_ABSENT);
    assert_state(c, "auth_userid", V_ABSENT);
    assert_state(c, "partner_id", V_ABSENT);
    assert_state(c, "is_admin", V_SET);
    assert_false(val(c, "is_admin")->b);
    assert_str_val(c, "seat_type", "b");
    assert_str_val(c, "persona", "D");
    assert_state(c, "doctor_ids", V_SET);
    assert_int_equal(val(c, "doctor_ids")->n, 0);
}

static void test_user_identity_rule(void **state)
{
    struct ctx *c = *state;
    const char *noident = "{\"firstname\":\"A\",\"lastname\":\"B\",\"gender\":\"F\",\"dob\":\"1990-01-01\"}";
    assert_false(decode(c, R_EKAUSER, noident, true));
    assert_int_equal(c->e.status, 400);
    assert_string_equal(c->e.message, "At least one of mobile, email or auth_userid is required.");
    assert_null(c->e.fields);
    /* null identities count as none */
    json_t *body = J(c, noident);
    json_object_set_new(body, "mobile", json_null());
    json_object_set_new(body, "email", json_null());
    assert_false(decode_json(c, R_EKAUSER, body, true));
    assert_string_equal(c->e.message, "At least one of mobile, email or auth_userid is required.");
    /* any one of the three is enough */
    const char *ids[][2] = {{"mobile", "9876543210"}, {"email", "a@b.co"}, {"auth_userid", "u1"}};
    for (size_t i = 0; i < 3; i++) {
        body = J(c, noident);
        json_object_set_new(body, ids[i][0], json_string(ids[i][1]));
        assert_true(decode_json(c, R_EKAUSER, body, true));
        assert_int_equal(c->e.status, 0);
    }
    /* an invalid identity is reported as the field error, not as the identity rule */
    body = J(c, noident);
    json_object_set_new(body, "email", json_string("not-an-email"));
    assert_false(decode_json(c, R_EKAUSER, body, true));
    assert_field_error(c, "email", "Enter a valid email address.");
    assert_string_equal(c->e.message, "email: Enter a valid email address.");
    /* partner_id is not an identity */
    body = J(c, noident);
    json_object_set_new(body, "partner_id", json_string("p1"));
    assert_false(decode_json(c, R_EKAUSER, body, true));
    assert_string_equal(c->e.message, "At least one of mobile, email or auth_userid is required.");
}

static void test_unknown_fields(void **state)
{
    struct ctx *c = *state;
    json_t *body = J(c, USER);
    json_object_set_new(body, "nickname", json_string("x"));
    assert_false(decode_json(c, R_EKAUSER, body, true));
    assert_int_equal(c->e.status, 400);
    assert_int_equal(error_count(c), 1);
    assert_field_error(c, "nickname", "Unknown field.");
    assert_string_equal(c->e.message, "nickname: Unknown field.");
    /* the valid fields were still decoded */
    assert_str_val(c, "firstname", "Amit");
    /* a field of another resource is unknown here */
    body = J(c, DOCTOR);
    json_object_set_new(body, "is_admin", json_true());
    assert_false(decode_json(c, R_DOCTOR, body, true));
    assert_field_error(c, "is_admin", "Unknown field.");
    /* on patch too, and the message names the unknown field even after a bad known one */
    assert_false(decode(c, R_CLINIC, "{\"pincode\":\"1\",\"colour\":\"red\"}", false));
    assert_int_equal(error_count(c), 2);
    assert_field_error(c, "colour", "Unknown field.");
    assert_field_error(c, "pincode", "Must be 6 digits.");
    assert_string_equal(c->e.message, "colour: Unknown field.");
    /* an unknown field with a null value is still unknown */
    assert_false(decode(c, R_CLINIC, "{\"colour\":null}", false));
    assert_field_error(c, "colour", "Unknown field.");
}

static void test_twin_rule(void **state)
{
    struct ctx *c = *state;
    json_t *body = J(c, USER);
    json_object_set(body, "doctor_ids", J(c, "[\"do1\"]"));
    json_object_set(body, "partner_doctor_ids", J(c, "[\"p1\"]"));
    assert_false(decode_json(c, R_EKAUSER, body, true));
    assert_int_equal(c->e.status, 400);
    assert_string_equal(c->e.message, "Only one of doctor_ids or partner_doctor_ids should be provided, not both.");

    assert_false(decode(c, R_EKAUSER, "{\"clinic_ids\":[\"c-1\"],\"partner_clinic_ids\":[\"x\"]}", false));
    assert_string_equal(c->e.message, "Only one of clinic_ids or partner_clinic_ids should be provided, not both.");

    assert_false(decode(c, R_CLINIC, "{\"doctor_ids\":[],\"partner_doctor_ids\":[]}", false));
    assert_string_equal(c->e.message, "Only one of doctor_ids or partner_doctor_ids should be provided, not both.");

    assert_false(decode(c, R_DOCTOR, "{\"clinic_ids\":[\"a\"],\"partner_clinic_ids\":[\"b\"]}", false));
    assert_string_equal(c->e.message, "Only one of clinic_ids or partner_clinic_ids should be provided, not both.");

    /* the twin message wins over a field error that comes with it */
    assert_false(decode(c, R_CLINIC, "{\"pincode\":\"x\",\"doctor_ids\":[\"a\"],\"partner_doctor_ids\":[\"b\"]}", false));
    assert_string_equal(c->e.message, "Only one of doctor_ids or partner_doctor_ids should be provided, not both.");
    assert_field_error(c, "pincode", "Must be 6 digits.");

    /* one of each pair is fine */
    assert_true(decode(c, R_EKAUSER, "{\"doctor_ids\":[\"do1\"],\"partner_clinic_ids\":[\"p\"]}", false));
    assert_true(decode(c, R_CLINIC, "{\"partner_doctor_ids\":[\"p\"]}", false));
}

/* ---------------------------------------------------------------- body shape */

static void test_body_must_be_object(void **state)
{
    struct ctx *c = *state;
    const char *bodies[] = {"[]", "[{\"firstname\":\"a\"}]", "\"x\"", "1", "null", "true"};
    for (size_t i = 0; i < sizeof bodies / sizeof *bodies; i++) {
        for (int create = 0; create < 2; create++) {
            assert_false(decode(c, R_DOCTOR, bodies[i], create));
            assert_int_equal(c->e.status, 400);
            assert_string_equal(c->e.message, "Request body must be a JSON object.");
            assert_null(c->e.fields);
        }
    }
}

static void test_empty_patch(void **state)
{
    struct ctx *c = *state;
    for (int k = 0; k < R_COUNT; k++) {
        assert_false(decode(c, (enum rkind)k, "{}", false));
        assert_int_equal(c->e.status, 400);
        assert_string_equal(c->e.message, "Request body must contain at least one field to update.");
        assert_null(c->e.fields);
    }
}

/* ---------------------------------------------------------------- patch */

static void test_patch_sets_only_given_fields(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_EKAUSER, "{\"lastname\":\" Sharma \"}", false));
    assert_int_equal(c->e.status, 0);
    assert_str_val(c, "lastname", "Sharma");
    const struct resource *u = resource_get(R_EKAUSER);
    for (size_t i = 0; i < u->nfields; i++)
        if (strcmp(u->fields[i].name, "lastname") != 0)
            assert_int_equal(c->vals[i].state, V_ABSENT); /* no defaults, no required checks */
}

static void test_patch_null_optional_is_v_null(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_EKAUSER,
                       "{\"mobile\":null,\"email\":null,\"auth_userid\":null,\"partner_id\":null}", false));
    assert_state(c, "mobile", V_NULL);
    assert_state(c, "email", V_NULL);
    assert_state(c, "auth_userid", V_NULL);
    assert_state(c, "partner_id", V_NULL);
    assert_state(c, "firstname", V_ABSENT);

    assert_true(decode(c, R_DOCTOR,
                       "{\"about\":null,\"profile_image_url\":null,\"specialisations\":null,"
                       "\"qualifications\":null,\"mobile\":null}",
                       false));
    assert_state(c, "about", V_NULL);
    assert_state(c, "profile_image_url", V_NULL);
    assert_state(c, "specialisations", V_NULL);
    assert_state(c, "qualifications", V_NULL);
    assert_state(c, "mobile", V_NULL);

    assert_true(decode(c, R_CLINIC, "{\"pincode\":null,\"contact\":null,\"city\":null,\"state\":null}", false));
    assert_state(c, "pincode", V_NULL);
    assert_state(c, "contact", V_NULL);
    assert_state(c, "city", V_NULL);
    assert_state(c, "state", V_NULL);
}

static void test_patch_null_with_default_resets_it(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_EKAUSER, "{\"is_admin\":null,\"seat_type\":null,\"persona\":null}", false));
    assert_state(c, "is_admin", V_SET);
    assert_false(val(c, "is_admin")->b);
    assert_str_val(c, "seat_type", "b");
    assert_str_val(c, "persona", "D");
    assert_true(decode(c, R_DOCTOR, "{\"dob\":null}", false));
    assert_str_val(c, "dob", "1990-01-01");
    /* null links empty the list */
    assert_true(decode(c, R_CLINIC, "{\"doctor_ids\":null}", false));
    assert_state(c, "doctor_ids", V_SET);
    assert_int_equal(val(c, "doctor_ids")->n, 0);
}

static void test_patch_null_on_required(void **state)
{
    struct ctx *c = *state;
    assert_false(decode(c, R_EKAUSER, "{\"firstname\":null,\"gender\":null,\"email\":null}", false));
    assert_int_equal(c->e.status, 400);
    assert_int_equal(error_count(c), 2);
    assert_field_error(c, "firstname", "This field may not be null.");
    assert_field_error(c, "gender", "This field may not be null.");
    assert_string_equal(c->e.message, "firstname: This field may not be null.");
    assert_state(c, "email", V_NULL);
    assert_false(decode(c, R_CLINIC, "{\"address\":null}", false));
    assert_field_error(c, "address", "This field may not be null.");
    assert_false(decode(c, R_DOCTOR, "{\"lastname\":null}", false));
    assert_field_error(c, "lastname", "This field may not be null.");
}

static void test_patch_does_not_apply_identity_rule(void **state)
{
    struct ctx *c = *state;
    /* whether an identity remains depends on the stored record: model_has_identity's job */
    assert_true(decode(c, R_EKAUSER, "{\"mobile\":null,\"email\":null,\"auth_userid\":null}", false));
    assert_int_equal(c->e.status, 0);
}

/* ---------------------------------------------------------------- names and text */

static void test_name_rules(void **state)
{
    struct ctx *c = *state;
    const char *too_long = "Ensure this field has no more than 100 characters.";
    expect_create_ok(c, R_EKAUSER, USER, "firstname", json_string(rep(c, "a", 100)));
    assert_str_val(c, "firstname", rep(c, "a", 100));
    expect_create_error(c, R_EKAUSER, USER, "firstname", json_string(rep(c, "a", 101)), too_long);
    /* characters, not bytes */
    expect_create_ok(c, R_EKAUSER, USER, "lastname", json_string(rep(c, "\xc3\xa9", 100)));
    expect_create_ok(c, R_EKAUSER, USER, "lastname", json_string(rep(c, "\xe0\xa4\xb9", 100)));
    expect_create_error(c, R_EKAUSER, USER, "lastname", json_string(rep(c, "\xc3\xa9", 101)), too_long);
    /* trimmed before counting */
    char *padded = arena_printf(&c->a, "   %s   ", rep(c, "b", 100));
    expect_create_ok(c, R_DOCTOR, DOCTOR, "firstname", json_string(padded));
    assert_str_val(c, "firstname", rep(c, "b", 100));
    expect_create_ok(c, R_CLINIC, CLINIC, "name", json_string("  Sunrise  Clinic "));
    assert_str_val(c, "name", "Sunrise  Clinic");
    expect_create_error(c, R_CLINIC, CLINIC, "name", json_string(""), "May not be blank.");
    expect_create_error(c, R_CLINIC, CLINIC, "name", json_string("    "), "May not be blank.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_integer(5), "Must be a string.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_true(), "Must be a string.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_array(), "Must be a string.");
    const char *utf = "Must be valid UTF-8 text without control characters.";
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_string("Ra\no"), utf);
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_string("Ra\to"), utf);
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_stringn("Ra\0o", 4), utf);
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_string("Ra\xc2\x85o"), utf);
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_string("Ra\x7fo"), utf);
}

static void test_text_rules(void **state)
{
    struct ctx *c = *state;
    /* free text keeps its spaces */
    expect_create_ok(c, R_CLINIC, "{\"name\":\"N\"}", "address", json_string("  12 MG Road, Bengaluru "));
    assert_str_val(c, "address", "  12 MG Road, Bengaluru ");
    expect_create_ok(c, R_CLINIC, "{\"name\":\"N\"}", "address", json_string(rep(c, "x", 500)));
    expect_create_error(c, R_CLINIC, "{\"name\":\"N\"}", "address", json_string(rep(c, "x", 501)),
                        "Ensure this field has no more than 500 characters.");
    expect_create_error(c, R_CLINIC, "{\"name\":\"N\"}", "address", json_string("   "), "May not be blank.");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "about", json_string(rep(c, "\xc3\xa9", 2000)));
    expect_create_error(c, R_DOCTOR, DOCTOR, "about", json_string(rep(c, "y", 2001)),
                        "Ensure this field has no more than 2000 characters.");
    expect_create_ok(c, R_CLINIC, CLINIC, "city", json_string(rep(c, "c", 100)));
    expect_create_error(c, R_CLINIC, CLINIC, "city", json_string(rep(c, "c", 101)),
                        "Ensure this field has no more than 100 characters.");
    expect_create_error(c, R_CLINIC, CLINIC, "state", json_string(rep(c, "s", 101)),
                        "Ensure this field has no more than 100 characters.");
}

static void test_id_fields(void **state)
{
    struct ctx *c = *state;
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string(rep(c, "p", 128)));
    assert_str_val(c, "partner_id", rep(c, "p", 128));
    expect_create_ok(c, R_EKAUSER, USER, "auth_userid", json_string(" a b "));
    assert_str_val(c, "auth_userid", " a b "); /* ids are not trimmed */
    expect_create_error(c, R_EKAUSER, USER, "auth_userid", json_string("  "), "May not be blank.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "partner_id", json_integer(12), "Must be a string.");
    /* characters, not bytes: 128 two-byte characters (256 bytes), 128 emoji (512 bytes) */
    expect_create_ok(c, R_CLINIC, CLINIC, "partner_id", json_string(rep(c, "\xc3\xa9", 128)));
    assert_str_val(c, "partner_id", rep(c, "\xc3\xa9", 128));
    expect_create_ok(c, R_EKAUSER, USER, "auth_userid", json_string(rep(c, "\xf0\x9f\x98\x80", 128)));
    expect_create_error(c, R_CLINIC, CLINIC, "partner_id", json_string(rep(c, "\xc3\xa9", 129)),
                        "Ensure this field has no more than 128 characters.");
    expect_create_error(c, R_EKAUSER, USER, "auth_userid", json_string(rep(c, "\xf0\x9f\x98\x80", 129)),
                        "Ensure this field has no more than 128 characters.");
}

/* partner_id is the other key in paths: nothing that changes or hides a path, and never the
 * shape of an Eka id of the same resource (a lookup by id must find one record). */
static void test_partner_id_rules(void **state)
{
    struct ctx *c = *state;
    const char *ws = "May not start or end with white space.";
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("a/b"), "May not contain '/'.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "partner_id", json_string("/"), "May not contain '/'.");
    expect_create_error(c, R_CLINIC, CLINIC, "partner_id", json_string("x/"), "May not contain '/'.");
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string(" p1"), ws);
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("p1 "), ws);
    expect_create_error(c, R_DOCTOR, DOCTOR, "partner_id", json_string("p1\xc2\xa0"), ws);
    expect_create_error(c, R_CLINIC, CLINIC, "partner_id", json_string("\xe3\x80\x80p1"), ws);
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("."), "May not be \".\" or \"..\".");
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string(".."), "May not be \".\" or \"..\".");
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("p\x01"),
                        "Must be valid UTF-8 text without control characters.");
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("p\xc2\x9b"),
                        "Must be valid UTF-8 text without control characters.");
    /* Eka id shapes, each on its own resource */
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("176338032692057"),
                        "May not have the shape of an Eka id (15 digits).");
    expect_create_error(c, R_DOCTOR, DOCTOR, "partner_id", json_string("do1763380326920"),
                        "May not have the shape of an Eka id (\"do\" and 13 digits).");
    expect_create_error(c, R_CLINIC, CLINIC, "partner_id", json_string("c-0123456789abcdef01234567"),
                        "May not have the shape of an Eka id (\"c-\" and 24 hexadecimal digits).");
    /* near misses and other resources' shapes are fine */
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string("076338032692057")); /* leading 0 */
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string("17633803269205"));  /* 14 digits */
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string("1763380326920571"));
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string("do1763380326920"));
    expect_create_ok(c, R_DOCTOR, DOCTOR, "partner_id", json_string("DO1763380326920"));
    expect_create_ok(c, R_DOCTOR, DOCTOR, "partner_id", json_string("176338032692057"));
    expect_create_ok(c, R_CLINIC, CLINIC, "partner_id", json_string("c-0123456789ABCDEF01234567"));
    expect_create_ok(c, R_CLINIC, CLINIC, "partner_id", json_string("c-0123456789abcdef0123456"));
    expect_create_ok(c, R_CLINIC, CLINIC, "partner_id", json_string("Clinic_321_Indore"));
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string("a.b..c"));
    expect_create_ok(c, R_EKAUSER, USER, "partner_id", json_string("p 1"));
    assert_str_val(c, "partner_id", "p 1");
    /* the same rules on PATCH */
    assert_false(decode(c, R_DOCTOR, "{\"partner_id\":\"do1763380326920\"}", false));
    assert_field_error(c, "partner_id", "May not have the shape of an Eka id (\"do\" and 13 digits).");
    /* auth_userid is not a path key: '/' and spaces around stay allowed */
    expect_create_ok(c, R_EKAUSER, USER, "auth_userid", json_string(" dom/user "));
    assert_str_val(c, "auth_userid", " dom/user ");
}

/* Characters no text field takes, in every kind of text field, named in the message. */
static void test_forbidden_characters_in_every_text_field(void **state)
{
    struct ctx *c = *state;
    const char *rlo = "May not contain U+202E: bidi controls, line and paragraph separators, "
                      "noncharacters and tag characters are not allowed.";
    expect_create_error(c, R_EKAUSER, USER, "firstname", json_string("Amit\xe2\x80\xae" "gnp.exe"), rlo);
    expect_create_error(c, R_DOCTOR, DOCTOR, "about", json_string("\xe2\x80\xae" "x"), rlo);
    expect_create_error(c, R_CLINIC, CLINIC, "address", json_string("12 MG Road\xe2\x80\xae"), rlo);
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("p\xe2\x80\xae"), rlo);
    expect_create_error(c, R_EKAUSER, USER, "auth_userid", json_string("u\xe2\x80\xae"), rlo);
    expect_create_error(c, R_DOCTOR, DOCTOR, "profile_image_url", json_string("https://x.in/\xe2\x80\xae"), rlo);
    expect_create_error(c, R_EKAUSER, USER, "lastname", json_string("Kumar\xe2\x81\xa6"),
                        "May not contain U+2066: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_CLINIC, CLINIC, "city", json_string("Pune\xe2\x80\xa8" "East"),
                        "May not contain U+2028: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "about", json_string("a\xe2\x80\xa9" "b"),
                        "May not contain U+2029: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_CLINIC, CLINIC, "state", json_string("\xef\xb7\x90"),
                        "May not contain U+FDD0: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_CLINIC, CLINIC, "name", json_string("N\xef\xbf\xbe"),
                        "May not contain U+FFFE: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "firstname", json_string("A\xf0\x9f\xbf\xbf"),
                        "May not contain U+1FFFF: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_EKAUSER, USER, "firstname", json_string("A\xf3\xa0\x81\x81"),
                        "May not contain U+E0041: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "specialisations", json_pack("[s,s]", "ENT", "Cardio\xe2\x80\xae"),
                        "Items may not contain U+202E: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    expect_create_error(c, R_CLINIC, CLINIC, "partner_doctor_ids", json_pack("[s]", "d\xe2\x81\xa9"),
                        "Items may not contain U+2069: bidi controls, line and paragraph separators, "
                        "noncharacters and tag characters are not allowed.");
    /* in an email: invalid like any other invisible character */
    expect_create_error(c, R_EKAUSER, USER, "email", json_string("a\xe2\x80\xae@x.in"), rlo);
}

/* ZWJ and ZWNJ are part of Indic spelling: kept, stored exactly. */
static void test_indic_names_with_joiners(void **state)
{
    struct ctx *c = *state;
    /* Malayalam "Kiran" and "Arjun" with chillu letters written as virama + ZWJ */
    const char *kiran = "\xe0\xb4\x95\xe0\xb4\xbf\xe0\xb4\xb0\xe0\xb4\xa3\xe0\xb5\x8d\xe2\x80\x8d";
    const char *arjun = "\xe0\xb4\x85\xe0\xb4\xb0\xe0\xb5\x8d\xe2\x80\x8d\xe0\xb4\x9c\xe0\xb5\x81"
                        "\xe0\xb4\xa8\xe0\xb5\x8d\xe2\x80\x8d";
    expect_create_ok(c, R_EKAUSER, USER, "firstname", json_string(kiran));
    assert_str_val(c, "firstname", kiran);
    expect_create_ok(c, R_DOCTOR, DOCTOR, "lastname", json_string(arjun));
    assert_str_val(c, "lastname", arjun);
    /* Hindi with ZWNJ (क्‌ष) and ZWJ (क्‍ष), and in free text */
    expect_create_ok(c, R_CLINIC, CLINIC, "name", json_string("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8c\xe0\xa4\xb7"));
    assert_str_val(c, "name", "\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8c\xe0\xa4\xb7");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "about", json_string("\xe0\xa4\x95\xe0\xa5\x8d\xe2\x80\x8d\xe0\xa4\xb7"));
    /* a trailing ZWJ is not white space: not trimmed */
    expect_create_ok(c, R_EKAUSER, USER, "lastname", json_string(" \xe0\xb4\xa3\xe0\xb5\x8d\xe2\x80\x8d "));
    assert_str_val(c, "lastname", "\xe0\xb4\xa3\xe0\xb5\x8d\xe2\x80\x8d");
}

/* Names are trimmed of Unicode white space; a value with nothing visible is blank. */
static void test_unicode_blank_and_trim(void **state)
{
    struct ctx *c = *state;
    const char *blank = "May not be blank.";
    expect_create_ok(c, R_EKAUSER, USER, "firstname", json_string("\xc2\xa0" "Amit\xe3\x80\x80"));
    assert_str_val(c, "firstname", "Amit");
    expect_create_ok(c, R_CLINIC, CLINIC, "name", json_string("\xe2\x80\x83Sunrise\xc2\xa0" "Clinic\xe2\x80\x83"));
    assert_str_val(c, "name", "Sunrise\xc2\xa0" "Clinic");
    /* trimmed before counting: 100 letters between ideographic spaces */
    char *padded = arena_printf(&c->a, "\xe3\x80\x80%s\xe3\x80\x80", rep(c, "b", 100));
    expect_create_ok(c, R_DOCTOR, DOCTOR, "firstname", json_string(padded));
    assert_str_val(c, "firstname", rep(c, "b", 100));
    expect_create_error(c, R_EKAUSER, USER, "firstname", json_string("\xc2\xa0\xe3\x80\x80"), blank);
    expect_create_error(c, R_EKAUSER, USER, "lastname", json_string("\xe2\x80\x8b"), blank);
    expect_create_error(c, R_DOCTOR, DOCTOR, "firstname", json_string("\xe2\x80\x8d"), blank);
    expect_create_error(c, R_DOCTOR, DOCTOR, "lastname", json_string("\xe2\x80\x8c\xe2\x80\x8d"), blank);
    expect_create_error(c, R_CLINIC, CLINIC, "name", json_string("\xe3\x85\xa4"), blank); /* HANGUL FILLER */
    expect_create_error(c, R_CLINIC, CLINIC, "name", json_string("\xef\xbb\xbf"), blank);
    expect_create_error(c, R_CLINIC, CLINIC, "address", json_string("\xe2\x81\xa0 \xc2\xad"), blank);
    expect_create_error(c, R_DOCTOR, DOCTOR, "about", json_string("\xe3\x80\x80"), blank);
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string("\xe2\x80\x8b"), blank);
    expect_create_error(c, R_EKAUSER, USER, "auth_userid", json_string("\xc2\xa0"), blank);
    expect_create_error(c, R_DOCTOR, DOCTOR, "qualifications", json_pack("[s,s]", "MBBS", "\xe2\x80\x8b"),
                        "Items may not be blank.");
    /* list items are trimmed of Unicode white space too */
    expect_create_ok(c, R_DOCTOR, DOCTOR, "qualifications", json_pack("[s,s]", "\xc2\xa0MBBS\xe3\x80\x80", "MBBS"));
    assert_str_val(c, "qualifications", "[\"MBBS\"]");
}

/* Emails: invisible characters refused; the key is NFC + full case folding; the value is
 * stored as sent. */
static void test_email_key(void **state)
{
    struct ctx *c = *state;
    const char *bad = "Enter a valid email address.";
    expect_create_error(c, R_EKAUSER, USER, "email", json_string("amit\xe2\x80\x8b@x.in"), bad);
    expect_create_error(c, R_EKAUSER, USER, "email", json_string("amit@x\xe2\x81\xa0.in"), bad);
    expect_create_error(c, R_EKAUSER, USER, "email", json_string("\xef\xbb\xbf" "amit@x.in"), bad);
    expect_create_error(c, R_DOCTOR, DOCTOR, "email", json_string("amit\xc2\xad@x.in"), bad);
    expect_create_error(c, R_DOCTOR, DOCTOR, "email", json_string("amit\xc2\xa0@x.in"), bad);

    expect_create_ok(c, R_EKAUSER, USER, "email", json_string("A\xcc\x88rzte@Example.IN"));
    assert_str_val(c, "email", "A\xcc\x88rzte@Example.IN"); /* as sent */
    assert_string_equal(val(c, "email")->key, "\xc3\xa4rzte@example.in");
    expect_create_ok(c, R_EKAUSER, USER, "email", json_string("\xc3\x84RZTE@example.in"));
    assert_string_equal(val(c, "email")->key, "\xc3\xa4rzte@example.in");
    expect_create_ok(c, R_EKAUSER, USER, "email", json_string("\xe2\x84\xaa.Rao@x.in"));
    assert_string_equal(val(c, "email")->key, "k.rao@x.in");
    /* a doctor's email is not unique, but keyed alike so the email list filter compares it */
    expect_create_ok(c, R_DOCTOR, DOCTOR, "email", json_string("K.Rao@x.in"));
    assert_string_equal(val(c, "email")->key, "k.rao@x.in");
    assert_false(resource_get(R_DOCTOR)->fields[field_index(resource_get(R_DOCTOR), "email")].flags & F_UNIQUE);
    /* PATCH to null: no key either */
    assert_true(decode(c, R_EKAUSER, "{\"email\":null}", false));
    assert_state(c, "email", V_NULL);
    assert_null(val(c, "email")->key);
    /* characters are counted: 64 two-byte letters before the @ */
    expect_create_ok(c, R_EKAUSER, USER, "email", json_string(arena_printf(&c->a, "%s@x.in", rep(c, "\xc3\xa9", 64))));
    expect_create_error(c, R_EKAUSER, USER, "email",
                        json_string(arena_printf(&c->a, "%s@x.in", rep(c, "\xc3\xa9", 65))), bad);
}

/* The 128-character limit of ids carries its own message; a plain ASCII id one over the
 * limit gets it too (each names its own limit). */
static void test_id_field_length_message(void **state)
{
    struct ctx *c = *state;
    expect_create_error(c, R_EKAUSER, USER, "partner_id", json_string(rep(c, "p", 129)),
                        "Ensure this field has no more than 128 characters.");
    expect_create_error(c, R_CLINIC, CLINIC, "partner_id", json_string(rep(c, "p", 200)),
                        "Ensure this field has no more than 128 characters.");
    expect_create_error(c, R_EKAUSER, USER, "auth_userid", json_string(rep(c, "u", 129)),
                        "Ensure this field has no more than 128 characters.");
}

/* ---------------------------------------------------------------- typed fields */

static void test_enum_bool_date_fields(void **state)
{
    struct ctx *c = *state;
    const char *choice = "Not a valid choice.";
    expect_create_error(c, R_EKAUSER, USER, "gender", json_string("m"), choice);
    expect_create_error(c, R_EKAUSER, USER, "gender", json_string("Male"), choice);
    expect_create_error(c, R_EKAUSER, USER, "gender", json_string(""), choice);
    expect_create_error(c, R_EKAUSER, USER, "gender", json_stringn("M\0", 2), "Must be valid UTF-8 text without control characters.");
    expect_create_error(c, R_EKAUSER, USER, "seat_type", json_string("B"), choice);
    expect_create_error(c, R_EKAUSER, USER, "persona", json_string("X"), choice);
    expect_create_error(c, R_EKAUSER, USER, "persona", json_integer(1), "Must be a string.");
    expect_create_ok(c, R_EKAUSER, USER, "gender", json_string("F"));
    assert_str_val(c, "gender", "F");
    expect_create_error(c, R_EKAUSER, USER, "is_admin", json_string("true"), "Must be a boolean.");
    expect_create_error(c, R_EKAUSER, USER, "is_admin", json_integer(1), "Must be a boolean.");
    expect_create_ok(c, R_EKAUSER, USER, "is_admin", json_false());
    assert_false(val(c, "is_admin")->b);
    assert_state(c, "is_admin", V_SET);
    expect_create_error(c, R_EKAUSER, USER, "dob", json_string("1990-02-30"), "Not a real calendar date.");
    expect_create_error(c, R_EKAUSER, USER, "dob", json_string("2024-06-16"), "Date may not be in the future.");
    expect_create_error(c, R_EKAUSER, USER, "dob", json_string("1899-12-31"), "Date must be on or after 1900-01-01.");
    expect_create_error(c, R_EKAUSER, USER, "dob", json_string("15-05-1990"), "Date has wrong format. Use YYYY-MM-DD.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "dob", json_integer(1990), "Must be a string.");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "dob", json_string(TODAY));
    assert_str_val(c, "dob", TODAY);
}

static void test_contact_fields(void **state)
{
    struct ctx *c = *state;
    expect_create_ok(c, R_DOCTOR, DOCTOR, "email", json_string("Asha.Rao@Example.com"));
    assert_str_val(c, "email", "Asha.Rao@Example.com");
    expect_create_error(c, R_DOCTOR, DOCTOR, "email", json_string("asha@"), "Enter a valid email address.");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "mobile", json_string("+919000000001"));
    assert_str_val(c, "mobile", "9000000001");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "profile_image_url", json_string("https://cdn.example.com/a.png"));
    assert_str_val(c, "profile_image_url", "https://cdn.example.com/a.png");
    expect_create_error(c, R_DOCTOR, DOCTOR, "profile_image_url", json_string("ftp://x.example.com/a.png"),
                        "Enter a valid http(s) URL.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "profile_image_url", json_string("javascript:alert(1)"),
                        "Enter a valid http(s) URL.");
    expect_create_ok(c, R_CLINIC, CLINIC, "pincode", json_string("560001"));
    assert_str_val(c, "pincode", "560001");
    expect_create_error(c, R_CLINIC, CLINIC, "pincode", json_string("56000"), "Must be 6 digits.");
    expect_create_error(c, R_CLINIC, CLINIC, "pincode", json_string("5600011"), "Must be 6 digits.");
    expect_create_error(c, R_CLINIC, CLINIC, "pincode", json_string("56000a"), "Must be 6 digits.");
    expect_create_error(c, R_CLINIC, CLINIC, "pincode", json_integer(560001), "Must be a string.");
    expect_create_ok(c, R_CLINIC, CLINIC, "contact", json_string("0801234567"));
    assert_str_val(c, "contact", "0801234567");
    expect_create_ok(c, R_CLINIC, CLINIC, "contact", json_string("08012345678"));
    assert_str_val(c, "contact", "08012345678");
    expect_create_error(c, R_CLINIC, CLINIC, "contact", json_string("080123456"), "Must be 10 or 11 digits.");
    expect_create_error(c, R_CLINIC, CLINIC, "contact", json_string("080123456789"), "Must be 10 or 11 digits.");
    expect_create_error(c, R_CLINIC, CLINIC, "contact", json_string("080-1234567"), "Must be 10 or 11 digits.");
}

static void test_many_errors_at_once(void **state)
{
    struct ctx *c = *state;
    assert_false(decode(c, R_EKAUSER,
                        "{\"firstname\":1,\"lastname\":\"\",\"gender\":\"X\",\"dob\":\"x\",\"mobile\":\"1\","
                        "\"is_admin\":\"no\"}",
                        true));
    assert_int_equal(c->e.status, 400);
    assert_int_equal(error_count(c), 6);
    assert_field_error(c, "firstname", "Must be a string.");
    assert_field_error(c, "lastname", "May not be blank.");
    assert_field_error(c, "gender", "Not a valid choice.");
    assert_field_error(c, "dob", "Date has wrong format. Use YYYY-MM-DD.");
    assert_field_error(c, "mobile", "Enter a valid 10-digit mobile number (optionally prefixed by +91).");
    assert_field_error(c, "is_admin", "Must be a boolean.");
    assert_string_equal(c->e.message, "firstname: Must be a string.");
    assert_no_field_error(c, "email");
    assert_no_field_error(c, "seat_type");
}

static void test_doctor_create_defaults(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_DOCTOR, DOCTOR, true));
    assert_null(c->e.fields);
    assert_str_val(c, "dob", "1990-01-01");
    assert_state(c, "mobile", V_ABSENT);
    assert_state(c, "email", V_ABSENT);
    assert_state(c, "specialisations", V_ABSENT);
    assert_state(c, "clinic_ids", V_ABSENT);
    json_t *body = J(c, DOCTOR);
    json_object_set_new(body, "dob", json_null());
    assert_true(decode_json(c, R_DOCTOR, body, true));
    assert_str_val(c, "dob", "1990-01-01");
    assert_false(decode(c, R_DOCTOR, "{\"firstname\":\"A\"}", true));
    assert_int_equal(error_count(c), 2);
    assert_field_error(c, "lastname", "This field is required.");
    assert_field_error(c, "gender", "This field is required.");
    assert_no_field_error(c, "dob");
}

static void test_clinic_create(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_CLINIC, CLINIC, true));
    assert_str_val(c, "name", "City Clinic");
    assert_str_val(c, "address", "12 MG Road");
    assert_state(c, "pincode", V_ABSENT);
    assert_state(c, "doctor_ids", V_ABSENT);
    assert_false(decode(c, R_CLINIC, "{\"name\":\"N\"}", true));
    assert_int_equal(error_count(c), 1);
    assert_field_error(c, "address", "This field is required.");
}

/* ---------------------------------------------------------------- lists */

static json_t *string_array(size_t n, const char *fmt)
{
    json_t *arr = json_array();
    char buf[64];
    for (size_t i = 0; i < n; i++) {
        snprintf(buf, sizeof buf, fmt, i);
        json_array_append_new(arr, json_string(buf));
    }
    return arr;
}

static void test_link_lists(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_DOCTOR, "{\"clinic_ids\":[\"b\",\"a\",\" b \",\"c\",\"a\"]}", false));
    const struct fval *v = val(c, "clinic_ids");
    assert_int_equal(v->state, V_SET);
    assert_int_equal(v->n, 3);
    assert_string_equal(v->items[0], "b");
    assert_string_equal(v->items[1], "a");
    assert_string_equal(v->items[2], "c");

    assert_true(decode(c, R_DOCTOR, "{\"clinic_ids\":[]}", false));
    assert_state(c, "clinic_ids", V_SET);
    assert_int_equal(val(c, "clinic_ids")->n, 0);

    json_t *body = own(c, json_object());
    json_object_set_new(body, "partner_clinic_ids", string_array(1000, "pc-%zu"));
    assert_true(decode_json(c, R_DOCTOR, body, false));
    assert_int_equal(val(c, "partner_clinic_ids")->n, 1000);
    assert_string_equal(val(c, "partner_clinic_ids")->items[999], "pc-999");

    json_object_set_new(body, "partner_clinic_ids", string_array(1001, "pc-%zu"));
    assert_false(decode_json(c, R_DOCTOR, body, false));
    assert_field_error(c, "partner_clinic_ids", "Too many items (at most 1000).");
    assert_state(c, "partner_clinic_ids", V_ABSENT);

    /* 1000 copies of one id collapse to one */
    json_t *same = json_array();
    for (int i = 0; i < 1000; i++)
        json_array_append_new(same, json_string("c-1"));
    json_object_set_new(body, "partner_clinic_ids", same);
    assert_true(decode_json(c, R_DOCTOR, body, false));
    assert_int_equal(val(c, "partner_clinic_ids")->n, 1);

    const char *where = "{\"name\":\"N\",\"address\":\"A\"}";
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_string("do1"), "Must be an array of strings.");
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_object(), "Must be an array of strings.");
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_pack("[s,i]", "do1", 2),
                        "Every item must be a string of valid text.");
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_pack("[s,n]", "do1"),
                        "Every item must be a string of valid text.");
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_pack("[s,s]", "do1", "  "), "Items may not be blank.");
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_pack("[s]", "a\nb"),
                        "Every item must be a string of valid text.");
    expect_create_ok(c, R_CLINIC, where, "doctor_ids", json_pack("[s]", rep(c, "d", 128)));
    expect_create_error(c, R_CLINIC, where, "doctor_ids", json_pack("[s]", rep(c, "d", 129)), "An item is too long.");
}

static void test_strlist(void **state)
{
    struct ctx *c = *state;
    expect_create_ok(c, R_DOCTOR, DOCTOR, "specialisations",
                     json_pack("[s,s,s,s]", "Cardiology", " Neurology ", "Cardiology", "Caf\xc3\xa9"));
    const struct fval *v = val(c, "specialisations");
    assert_int_equal(v->state, V_SET);
    assert_int_equal(v->n, 3);
    assert_string_equal(v->s, "[\"Cardiology\",\"Neurology\",\"Caf\xc3\xa9\"]");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "qualifications", json_array());
    assert_str_val(c, "qualifications", "[]");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "qualifications", json_pack("[s]", "MBBS \"Gold\""));
    assert_str_val(c, "qualifications", "[\"MBBS \\\"Gold\\\"\"]");
    expect_create_ok(c, R_DOCTOR, DOCTOR, "qualifications", json_pack("[s]", rep(c, "q", 100)));
    expect_create_error(c, R_DOCTOR, DOCTOR, "qualifications", json_pack("[s]", rep(c, "q", 101)),
                        "An item is too long.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "specialisations", json_string("Cardiology"),
                        "Must be an array of strings.");
    expect_create_error(c, R_DOCTOR, DOCTOR, "specialisations", json_pack("[s,s]", "A", ""), "Items may not be blank.");
}

/* ---------------------------------------------------------------- field_validate */

static void test_field_validate_direct(void **state)
{
    struct ctx *c = *state;
    const struct resource *u = resource_get(R_EKAUSER);
    const struct field *gender = &u->fields[field_index(u, "gender")];
    struct fval out;
    memset(&out, 0, sizeof out);
    json_t *v = own(c, json_string("F"));
    assert_null(field_validate(gender, v, TODAY, &c->a, &out));
    assert_int_equal(out.state, V_SET);
    assert_string_equal(out.s, "F");
    const struct field *dob = &u->fields[field_index(u, "dob")];
    json_t *future = own(c, json_string("2030-01-01"));
    assert_string_equal(field_validate(dob, future, TODAY, &c->a, &out), "Date may not be in the future.");
    assert_null(field_validate(dob, future, NULL, &c->a, &out)); /* no today, no future check */
    assert_string_equal(out.s, "2030-01-01");
    const struct field *admin = &u->fields[field_index(u, "is_admin")];
    assert_null(field_validate(admin, json_true(), TODAY, &c->a, &out));
    assert_true(out.b);
}

/* ---------------------------------------------------------------- identity after patch */

static void test_model_has_identity(void **state)
{
    (void)state;
    const struct resource *u = resource_get(R_EKAUSER);
    int mobile = field_index(u, "mobile"), email = field_index(u, "email"), auth = field_index(u, "auth_userid");
    int first = field_index(u, "firstname");
    struct record cur;
    struct fval patch[MAX_FIELDS];
    memset(&cur, 0, sizeof cur);
    memset(patch, 0, sizeof patch);

    assert_false(model_has_identity(u, NULL, patch)); /* nothing at all */
    patch[first].state = V_SET;
    assert_false(model_has_identity(u, NULL, patch)); /* a name is no identity */
    patch[email].state = V_SET;
    assert_true(model_has_identity(u, NULL, patch));

    /* stored mobile, patch leaves it alone */
    memset(patch, 0, sizeof patch);
    cur.v[mobile].state = V_SET;
    cur.v[mobile].s = "9876543210";
    assert_true(model_has_identity(u, &cur, patch));
    /* patch removes it */
    patch[mobile].state = V_NULL;
    assert_false(model_has_identity(u, &cur, patch));
    /* ...while another identity remains stored */
    cur.v[auth].state = V_SET;
    assert_true(model_has_identity(u, &cur, patch));
    /* ...or is removed too */
    patch[auth].state = V_NULL;
    assert_false(model_has_identity(u, &cur, patch));
    /* ...or the patch brings a new one */
    patch[email].state = V_SET;
    assert_true(model_has_identity(u, &cur, patch));
    /* a stored null identity is none */
    memset(&cur, 0, sizeof cur);
    memset(patch, 0, sizeof patch);
    cur.v[email].state = V_NULL;
    assert_false(model_has_identity(u, &cur, patch));

    /* doctors and clinics have no identity rule */
    memset(patch, 0, sizeof patch);
    assert_true(model_has_identity(resource_get(R_DOCTOR), NULL, patch));
    assert_true(model_has_identity(resource_get(R_CLINIC), &cur, patch));
}

/* ---------------------------------------------------------------- render */

static void set_s(const struct resource *r, struct record *rec, const char *name, const char *s)
{
    int i = field_index(r, name);
    assert_true(i >= 0);
    rec->v[i].state = V_SET;
    rec->v[i].s = s;
}

static void assert_json_equal(struct ctx *c, json_t *got, const char *want_text)
{
    json_t *want = J(c, want_text);
    if (!json_equal(got, want)) {
        char *g = json_dumps(got, JSON_COMPACT | JSON_SORT_KEYS);
        char *w = json_dumps(want, JSON_COMPACT | JSON_SORT_KEYS);
        print_error("got  %s\nwant %s\n", g, w);
        free(g);
        free(w);
    }
    assert_true(json_equal(got, want));
}

static void test_render_user(void **state)
{
    struct ctx *c = *state;
    const struct resource *u = resource_get(R_EKAUSER);
    struct record rec;
    memset(&rec, 0, sizeof rec);
    rec.id = "123456789012345";
    rec.created_at = "2024-01-02T03:04:05Z";
    set_s(u, &rec, "firstname", "Amit");
    set_s(u, &rec, "lastname", "Kumar");
    set_s(u, &rec, "mobile", "9876543210");
    set_s(u, &rec, "gender", "M");
    set_s(u, &rec, "dob", "1990-05-15");
    set_s(u, &rec, "seat_type", "b");
    set_s(u, &rec, "persona", "D");
    rec.v[field_index(u, "is_admin")].state = V_SET;
    rec.v[field_index(u, "is_admin")].b = true;
    rec.v[field_index(u, "email")].state = V_NULL;
    struct ref docs[2] = {{"do1000000000001", "Asha", "Rao"}, {"do1000000000002", "Ravi", NULL}};
    struct ref clin[1] = {{"c-000000000000000000000001", "City Clinic", NULL}};
    rec.links[0] = (struct reflist){docs, 2};
    rec.links[1] = (struct reflist){clin, 1};
    json_t *o = own(c, model_render(u, &rec));
    assert_json_equal(c, o,
                      "{\"id\":\"123456789012345\",\"firstname\":\"Amit\",\"lastname\":\"Kumar\","
                      "\"mobile\":\"+919876543210\",\"gender\":\"M\","
                      "\"dob\":\"1990-05-15\",\"is_admin\":true,\"seat_type\":\"b\",\"persona\":\"D\","
                      "\"doctors\":[{\"id\":\"do1000000000001\",\"firstname\":\"Asha\",\"lastname\":\"Rao\"},"
                      "{\"id\":\"do1000000000002\",\"firstname\":\"Ravi\"}],"
                      "\"clinics\":[{\"id\":\"c-000000000000000000000001\",\"name\":\"City Clinic\"}],"
                      "\"created_at\":\"2024-01-02T03:04:05Z\"}");
}

static void test_render_doctor(void **state)
{
    struct ctx *c = *state;
    const struct resource *d = resource_get(R_DOCTOR);
    struct record rec;
    memset(&rec, 0, sizeof rec);
    rec.id = "do1234567890123";
    set_s(d, &rec, "firstname", "Asha");
    set_s(d, &rec, "lastname", "Rao");
    set_s(d, &rec, "gender", "F");
    set_s(d, &rec, "dob", "1990-01-01");
    set_s(d, &rec, "mobile", "9000000001");
    set_s(d, &rec, "specialisations", "[\"Cardiology\",\"Neurology\"]");
    set_s(d, &rec, "qualifications", "[\"MBBS\"]");
    json_t *o = own(c, model_render(d, &rec));
    assert_json_equal(c, o,
                      "{\"id\":\"do1234567890123\",\"firstname\":\"Asha\",\"lastname\":\"Rao\",\"gender\":\"F\","
                      "\"dob\":\"1990-01-01\",\"mobile\":\"9000000001\",\"specialisation\":\"Cardiology\","
                      "\"specialisations\":[\"Cardiology\",\"Neurology\"],\"qualifications\":[\"MBBS\"],"
                      "\"clinics\":[]}");

    /* no specialisations (never set, or cleared): both omitted */
    rec.v[field_index(d, "specialisations")].state = V_ABSENT;
    o = own(c, model_render(d, &rec));
    assert_null(json_object_get(o, "specialisation"));
    assert_null(json_object_get(o, "specialisations"));
    rec.v[field_index(d, "specialisations")].state = V_NULL;
    o = own(c, model_render(d, &rec));
    assert_null(json_object_get(o, "specialisation"));
    assert_null(json_object_get(o, "specialisations"));
    /* an empty list: [] and no primary */
    set_s(d, &rec, "specialisations", "[]");
    o = own(c, model_render(d, &rec));
    assert_null(json_object_get(o, "specialisation"));
    assert_json_equal(c, json_object_get(o, "specialisations"), "[]");
    /* unreadable stored text renders as [] rather than failing */
    set_s(d, &rec, "specialisations", "not json");
    o = own(c, model_render(d, &rec));
    assert_json_equal(c, json_object_get(o, "specialisations"), "[]");
    assert_null(json_object_get(o, "specialisation"));
    /* a first item that is not a string is no primary specialisation */
    set_s(d, &rec, "specialisations", "[7,\"ENT\"]");
    o = own(c, model_render(d, &rec));
    assert_null(json_object_get(o, "specialisation"));
    set_s(d, &rec, "specialisations", "{\"a\":1}");
    o = own(c, model_render(d, &rec));
    assert_json_equal(c, json_object_get(o, "specialisations"), "[]");
}

static void test_render_clinic(void **state)
{
    struct ctx *c = *state;
    const struct resource *cl = resource_get(R_CLINIC);
    struct record rec;
    memset(&rec, 0, sizeof rec);
    rec.id = "c-0123456789abcdef01234567";
    rec.updated_at = "2024-02-02T00:00:00Z";
    set_s(cl, &rec, "name", "City Clinic");
    set_s(cl, &rec, "address", "12 MG Road");
    set_s(cl, &rec, "contact", "0801234567");
    struct ref docs[1] = {{"do1", "Asha", "Rao"}};
    rec.links[0] = (struct reflist){docs, 1};
    json_t *o = own(c, model_render(cl, &rec));
    assert_json_equal(c, o,
                      "{\"id\":\"c-0123456789abcdef01234567\",\"name\":\"City Clinic\",\"address\":\"12 MG Road\","
                      "\"contact\":\"0801234567\","
                      "\"doctors\":[{\"id\":\"do1\",\"firstname\":\"Asha\",\"lastname\":\"Rao\"}],"
                      "\"updated_at\":\"2024-02-02T00:00:00Z\"}");
}

/* Decoded values render back to what the client sent, normalized. */
static void test_decode_then_render(void **state)
{
    struct ctx *c = *state;
    assert_true(decode(c, R_DOCTOR,
                       "{\"firstname\":\" Asha \",\"lastname\":\"Rao\",\"gender\":\"F\",\"mobile\":\"+919000000001\","
                       "\"specialisations\":[\" ENT \",\"ENT\",\"Oncology\"],\"clinic_ids\":[\"c-1\"]}",
                       true));
    struct record rec;
    memset(&rec, 0, sizeof rec);
    rec.id = "do1000000000000";
    memcpy(rec.v, c->vals, sizeof(struct fval) * c->r->nfields);
    json_t *o = own(c, model_render(c->r, &rec));
    assert_json_equal(c, o,
                      "{\"id\":\"do1000000000000\",\"firstname\":\"Asha\",\"lastname\":\"Rao\",\"gender\":\"F\","
                      "\"dob\":\"1990-01-01\",\"mobile\":\"9000000001\",\"specialisation\":\"ENT\","
                      "\"specialisations\":[\"ENT\",\"Oncology\"],\"clinics\":[]}");
}

/* ---------------------------------------------------------------- herr */

static void test_herr(void **state)
{
    struct ctx *c = *state;
    struct herr e;
    memset(&e, 0, sizeof e);
    assert_true(herr_set(&e, 404, "Not found."));
    assert_false(herr_set(&e, 500, "Other.")); /* the first error stays */
    assert_int_equal(e.status, 404);
    assert_string_equal(e.message, "Not found.");
    herr_field(&e, &c->a, "x", "Bad.");        /* recorded, but status and message stay */
    assert_int_equal(e.status, 404);
    assert_string_equal(e.message, "Not found.");
    assert_string_equal(json_string_value(json_array_get(json_object_get(e.fields, "x"), 0)), "Bad.");

    memset(&e, 0, sizeof e);
    herr_field(&e, &c->a, "a", "First.");
    herr_field(&e, &c->a, "b", "Second.");
    herr_field(&e, &c->a, "a", "Third.");
    assert_int_equal(e.status, 400);
    assert_string_equal(e.message, "a: First.");
    assert_int_equal(json_object_size(e.fields), 2);
    json_t *la = json_object_get(e.fields, "a");
    assert_int_equal(json_array_size(la), 2);
    assert_string_equal(json_string_value(json_array_get(la, 0)), "First.");
    assert_string_equal(json_string_value(json_array_get(la, 1)), "Third.");

    /* a 400 with its own message keeps it when field errors follow */
    memset(&e, 0, sizeof e);
    herr_set(&e, 400, "Whole body.");
    herr_field(&e, &c->a, "a", "Why.");
    assert_string_equal(e.message, "Whole body.");
    assert_non_null(json_object_get(e.fields, "a"));
}

#define T(f) cmocka_unit_test_setup_teardown(f, setup, teardown)

int main(void)
{
    const struct CMUnitTest tests[] = {
        T(test_resource_tables),
        T(test_user_create_minimal_and_defaults),
        T(test_user_create_full),
        T(test_user_mobile_forms),
        T(test_user_required_fields),
        T(test_user_null_on_required_create),
        T(test_user_null_on_optional_create),
        T(test_user_identity_rule),
        T(test_unknown_fields),
        T(test_twin_rule),
        T(test_body_must_be_object),
        T(test_empty_patch),
        T(test_patch_sets_only_given_fields),
        T(test_patch_null_optional_is_v_null),
        T(test_patch_null_with_default_resets_it),
        T(test_patch_null_on_required),
        T(test_patch_does_not_apply_identity_rule),
        T(test_name_rules),
        T(test_text_rules),
        T(test_id_fields),
        T(test_id_field_length_message),
        T(test_partner_id_rules),
        T(test_forbidden_characters_in_every_text_field),
        T(test_indic_names_with_joiners),
        T(test_unicode_blank_and_trim),
        T(test_email_key),
        T(test_enum_bool_date_fields),
        T(test_contact_fields),
        T(test_many_errors_at_once),
        T(test_doctor_create_defaults),
        T(test_clinic_create),
        T(test_link_lists),
        T(test_strlist),
        T(test_field_validate_direct),
        T(test_model_has_identity),
        T(test_render_user),
        T(test_render_doctor),
        T(test_render_clinic),
        T(test_decode_then_render),
        T(test_herr),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
