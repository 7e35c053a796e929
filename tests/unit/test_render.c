/* The buffer renderer (src/model/render.c, src/util/jbuf.c) against the jansson tree it
 * replaced: for many random records of every resource, with hostile strings (quotes,
 * backslashes, controls, multi-byte and invalid UTF-8, NULLs) and odd stored lists, the
 * bytes must equal json_dumps(tree, JSON_COMPACT) of the tree renderer kept below as it was. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <jansson.h>

#include "model/field.h"
#include "util/jbuf.h"

/* ---------------------------------------------------------------- the reference: the tree renderer as it was */

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

static json_t *tree_links(const struct resource *target, const struct reflist *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(l->items[i].id));
        set_str(o, target->summary[0], l->items[i].a);
        if (target->summary[1])
            set_str(o, target->summary[1], l->items[i].b);
        json_array_append_new(arr, o);
    }
    return arr;
}

static json_t *tree_render(const struct resource *r, const struct record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(rec->id));
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        const struct fval *v = &rec->v[i];
        if (f->type == FT_LINKS || v->state != V_SET)
            continue;
        json_t *out;
        if (f->type == FT_BOOL) {
            out = json_boolean(v->b);
        } else if (f->type == FT_STRLIST) {
            out = json_loads(v->s, 0, NULL);
            if (!json_is_array(out)) {
                json_decref(out);
                out = json_array();
            }
        } else if (f->flags & F_RENDER_91) {
            char buf[32];
            snprintf(buf, sizeof buf, "+91%s", v->s);
            out = json_string(buf);
        } else {
            out = json_string(v->s);
        }
        json_t *first = f->primary_as ? json_array_get(out, 0) : NULL;
        if (json_is_string(first))
            json_object_set(o, f->primary_as, first);
        json_object_set_new(o, f->name, out);
    }
    for (size_t i = 0; i < r->nviews; i++)
        json_object_set_new(o, r->views[i].json_name, tree_links(resource_get(r->views[i].target), &rec->links[i]));
    set_str(o, "created_at", rec->created_at);
    set_str(o, "updated_at", rec->updated_at);
    return o;
}

/* ---------------------------------------------------------------- random inputs */

static uint64_t rng = 0x9E3779B97F4A7C15u;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const PIECES[] = {
    "Amit", "Kumar", " ", "\"", "\\", "/", "\n", "\r", "\t", "\b", "\f", "\x01", "\x1f", "\x7f",
    "é", "अमित", "😀", "\xe2\x80\xa8", "\xef\xbb\xbf", "0", "9876543210", "+91", "{}", "[]", ",", ":",
    /* not UTF-8: a lone continuation, overlong, a surrogate, beyond U+10FFFF, truncated */
    "\x80", "\xc0\xaf", "\xed\xa0\x80", "\xf4\x90\x80\x80", "\xe2\x82", "\xff",
};

/* A random string in the arena; NULL now and then. */
static const char *rnd_text(struct arena *a, bool may_be_null)
{
    if (may_be_null && rnd(10) == 0)
        return NULL;
    char buf[256];
    size_t n = 0;
    int parts = (int)rnd(6);
    bool clean = rnd(3) != 0; /* most records are ordinary */
    for (int i = 0; i < parts; i++) {
        const char *p = clean ? PIECES[rnd(2)] : PIECES[rnd(sizeof PIECES / sizeof *PIECES)];
        size_t k = strlen(p);
        if (n + k >= sizeof buf)
            break;
        memcpy(buf + n, p, k);
        n += k;
    }
    if (clean && n == 0)
        buf[n++] = 'x';
    return arena_strndup(a, buf, n);
}

static const char *rnd_list(struct arena *a)
{
    switch (rnd(8)) {
    case 0: return "[]";
    case 1: return "not json";
    case 2: return "{\"a\":1}";
    case 3: return "[7,\"ENT\"]";
    case 4: return "[\"a\\u0000b\"]";
    case 5: return "[ \"spaced\" , \"\\u00e9\\n\" ]";
    default: {
        json_t *arr = json_array();
        int n = (int)rnd(4);
        for (int i = 0; i < n; i++) {
            const char *t = rnd_text(a, false);
            json_t *s = json_string(t);
            json_array_append_new(arr, s ? s : json_string("ok"));
        }
        char *txt = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        const char *out = arena_strdup(a, txt);
        free(txt);
        return out;
    }
    }
}

static void rnd_record(const struct resource *r, struct arena *a, struct record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->id = rnd(20) ? rnd_text(a, false) : NULL;
    rec->created_at = rnd(2) ? "2024-01-02T03:04:05.678Z" : rnd_text(a, true);
    rec->updated_at = rnd(2) ? NULL : rnd_text(a, true);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        struct fval *v = &rec->v[i];
        v->state = (enum fstate)rnd(3);
        if (v->state != V_SET)
            continue;
        if (f->type == FT_BOOL)
            v->b = rnd(2);
        else if (f->type == FT_STRLIST)
            v->s = rnd_list(a);
        else if (f->flags & F_RENDER_91 && rnd(4) == 0)
            v->s = "12345678901234567890123456789"; /* longer than the +91 buffer holds */
        else
            v->s = rnd_text(a, false);
    }
    for (size_t i = 0; i < r->nviews; i++) {
        size_t n = rnd(4);
        struct ref *items = arena_calloc(a, n ? n : 1, sizeof *items);
        for (size_t k = 0; k < n; k++)
            items[k] = (struct ref){rnd(10) ? rnd_text(a, false) : NULL, rnd_text(a, true), rnd_text(a, true)};
        rec->links[i] = (struct reflist){items, n};
    }
}

/* ---------------------------------------------------------------- tests */

static void assert_same_bytes(const char *want, const char *got, size_t got_len)
{
    if (strlen(want) != got_len || memcmp(want, got, got_len) != 0) {
        print_error("want %s\n got  %.*s\n", want, (int)got_len, got);
        fail();
    }
}

static void test_records_render_as_the_tree_did(void **state)
{
    (void)state;
    for (int kind = 0; kind < R_COUNT; kind++) {
        const struct resource *r = resource_get((enum rkind)kind);
        for (int i = 0; i < 20000; i++) {
            struct arena a;
            arena_init(&a);
            struct record rec;
            rnd_record(r, &a, &rec);
            json_t *tree = tree_render(r, &rec);
            char *want = json_dumps(tree, JSON_COMPACT);
            struct jbuf b;
            jbuf_init(&b, &a, NULL, 0);
            model_render_to(&b, r, &rec);
            assert_same_bytes(want, b.p, b.len);
            free(want);

            /* entity tags: a hash of the same bytes, so they are unchanged too */
            char want_tag[ETAG_MAX], tag[ETAG_MAX], tag2[ETAG_MAX];
            model_etag_of(tree, want_tag);
            model_etag(r, &rec, tag2);
            assert_string_equal(tag2, want_tag);

            /* the whole GET answer, as resource_get_one packed it, and its ETag */
            json_t *one = json_pack("{s:s, s:O}", "status", "success", r->json_one, tree);
            want = json_dumps(one, JSON_COMPACT);
            jbuf_init(&b, &a, NULL, 0);
            model_render_one(&b, r->json_one, r, &rec, tag);
            assert_same_bytes(want, b.p, b.len);
            assert_string_equal(tag, want_tag);
            free(want);
            json_decref(tree);
            json_decref(one);
            arena_release(&a);
        }
    }
}

/* The writer's pieces against jansson directly: validity and escaping of any bytes. */
static void test_strings_as_jansson(void **state)
{
    (void)state;
    for (int i = 0; i < 200000; i++) {
        unsigned char s[12];
        size_t n = rnd(sizeof s);
        for (size_t k = 0; k < n; k++) {
            uint32_t pick = rnd(4);
            s[k] = pick == 0 ? (unsigned char)(0x80 + rnd(0x80)) : pick == 1 ? (unsigned char)rnd(0x20)
                                                                               : (unsigned char)(0x20 + rnd(0x60));
            if (s[k] == 0)
                s[k] = 1;
        }
        json_t *js = json_stringn((const char *)s, n);
        assert_int_equal(js != NULL, utf8_valid((const char *)s, n));
        if (!js)
            continue;
        char *want = json_dumps(js, JSON_ENCODE_ANY | JSON_COMPACT);
        struct jbuf b;
        char store[8];
        struct arena a;
        arena_init(&a);
        jbuf_init(&b, &a, store, sizeof store); /* starts small: growth is exercised too */
        jbuf_string(&b, (const char *)s, n);
        assert_same_bytes(want, b.p, b.len);
        assert_string_equal(jbuf_finish(&b), want);
        free(want);
        json_decref(js);
        arena_release(&a);
    }
}

/* A fixed buffer that is too small says so and never writes past its end. */
static void test_fixed_buffer_overflow(void **state)
{
    (void)state;
    char store[16 + 1];
    store[16] = '#';
    struct jbuf b;
    jbuf_init(&b, NULL, store, 16);
    jbuf_puts(&b, "0123456789");
    assert_false(b.full);
    jbuf_puts(&b, "0123456789");
    assert_true(b.full);
    assert_int_equal(b.len, 10);
    assert_int_equal(store[16], '#');
}

/* The known shapes, spelled out (the random test proves equality, this shows the result). */
static void test_user_example(void **state)
{
    (void)state;
    const struct resource *u = resource_get(R_EKAUSER);
    struct record rec;
    memset(&rec, 0, sizeof rec);
    rec.id = "123456789012345";
    rec.v[field_index(u, "firstname")] = (struct fval){.state = V_SET, .s = "Am\"it"};
    rec.v[field_index(u, "mobile")] = (struct fval){.state = V_SET, .s = "9876543210"};
    rec.v[field_index(u, "is_admin")] = (struct fval){.state = V_SET, .b = true};
    struct ref docs[1] = {{"do1", "Asha", NULL}};
    rec.links[0] = (struct reflist){docs, 1};
    struct arena a;
    arena_init(&a);
    struct jbuf b;
    jbuf_init(&b, &a, NULL, 0);
    model_render_one(&b, "user", u, &rec, NULL);
    assert_string_equal(jbuf_finish(&b),
                        "{\"status\":\"success\",\"user\":{\"id\":\"123456789012345\",\"firstname\":\"Am\\\"it\","
                        "\"mobile\":\"+919876543210\",\"is_admin\":true,"
                        "\"doctors\":[{\"id\":\"do1\",\"firstname\":\"Asha\"}],\"clinics\":[]}}");
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_records_render_as_the_tree_did),
        cmocka_unit_test(test_strings_as_jansson),
        cmocka_unit_test(test_fixed_buffer_overflow),
        cmocka_unit_test(test_user_example),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
