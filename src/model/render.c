/* Records to the JSON a GET shows, driven by the same field table, written straight into
 * a buffer (no jansson tree on the read path). Eka's OpenAPI types these properties as
 * plain strings and arrays, so a value the record does not have is left out of the
 * object: null is never rendered. The bytes are those json_dumps(JSON_COMPACT) gave for the
 * jansson tree this file used to build (tests/unit/test_render.c compares the two), so
 * entity tags (a hash of those bytes) are unchanged too. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/field.h"

static void put_links(struct jbuf *b, const struct resource *target, const struct reflist *l)
{
    jbuf_put(b, "[", 1);
    for (size_t i = 0; i < l->n; i++) {
        bool first = true;
        jbuf_put(b, i ? ",{" : "{", i ? 2 : 1);
        jbuf_member_str(b, &first, "id", l->items[i].id);
        jbuf_member_str(b, &first, target->summary[0], l->items[i].a);
        if (target->summary[1])
            jbuf_member_str(b, &first, target->summary[1], l->items[i].b);
        jbuf_put(b, "}", 1);
    }
    jbuf_put(b, "]", 1);
}

/* Stored as JSON text; anything but an array shows as []. The first item, when a string,
 * is also shown under f->primary_as (ahead of the list, where the tree put it). */
static void put_strlist(struct jbuf *b, bool *first, const struct field *f, const char *stored)
{
    json_t *arr = json_loads(stored, 0, NULL);
    if (!json_is_array(arr)) {
        json_decref(arr);
        arr = NULL;
    }
    json_t *primary = f->primary_as && arr ? json_array_get(arr, 0) : NULL;
    if (json_is_string(primary)) {
        jbuf_key(b, first, f->primary_as);
        jbuf_string(b, json_string_value(primary), json_string_length(primary));
    }
    jbuf_key(b, first, f->name);
    char *txt = arr ? json_dumps(arr, JSON_COMPACT) : NULL;
    jbuf_puts(b, txt ? txt : "[]");
    free(txt);
    json_decref(arr);
}

void model_render_to(struct jbuf *b, const struct resource *r, const struct record *rec)
{
    bool first = true;
    jbuf_put(b, "{", 1);
    jbuf_member_str(b, &first, "id", rec->id);
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        const struct fval *v = &rec->v[i];
        if (f->type == FT_LINKS || v->state != V_SET)
            continue;
        if (f->type == FT_BOOL) {
            jbuf_key(b, &first, f->name);
            jbuf_puts(b, v->b ? "true" : "false");
        } else if (f->type == FT_STRLIST) {
            put_strlist(b, &first, f, v->s);
        } else if (f->flags & F_RENDER_91) {
            char buf[32];
            snprintf(buf, sizeof buf, "+91%s", v->s);
            jbuf_member_str(b, &first, f->name, buf);
        } else {
            jbuf_member_str(b, &first, f->name, v->s);
        }
    }
    for (size_t i = 0; i < r->nviews; i++) {
        jbuf_key(b, &first, r->views[i].json_name);
        put_links(b, resource_get(r->views[i].target), &rec->links[i]);
    }
    jbuf_member_str(b, &first, "created_at", rec->created_at);
    jbuf_member_str(b, &first, "updated_at", rec->updated_at);
    jbuf_put(b, "}", 1);
}

static void etag_of_bytes(const char *p, size_t n, char out[ETAG_MAX]);

void model_render_one(struct jbuf *b, const char *wrap, const struct resource *r, const struct record *rec,
                      char etag[ETAG_MAX])
{
    bool first = true;
    jbuf_put(b, "{", 1);
    jbuf_member_str(b, &first, "status", "success");
    jbuf_key(b, &first, wrap);
    size_t start = b->len;
    model_render_to(b, r, rec);
    if (etag)
        etag_of_bytes(b->p + start, b->len - start, etag);
    jbuf_put(b, "}", 1);
}

json_t *model_render(const struct resource *r, const struct record *rec)
{
    struct arena a;
    arena_init(&a);
    struct jbuf b;
    jbuf_init(&b, &a, NULL, 0);
    model_render_to(&b, r, rec);
    json_t *o = json_loadb(b.p, b.len, 0, NULL);
    arena_release(&a);
    return o;
}

/* ---- export and history: jansson values, built field by field ---- */

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

/* A stored value as GET shows it; NULL when the field has none. */
static json_t *render_value(const struct field *f, const struct fval *v)
{
    if (f->type == FT_LINKS || v->state != V_SET)
        return NULL;
    if (f->type == FT_BOOL)
        return json_boolean(v->b);
    if (f->type == FT_STRLIST) {
        json_t *out = json_loads(v->s, 0, NULL);
        if (!json_is_array(out)) {
            json_decref(out);
            out = json_array();
        }
        return out;
    }
    if (f->flags & F_RENDER_91) {
        char buf[32];
        snprintf(buf, sizeof buf, "+91%s", v->s);
        return json_string(buf);
    }
    return json_string(v->s);
}

const struct field *model_link_field(const struct resource *r, enum rel rel)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].type == FT_LINKS && !r->fields[i].by_partner && r->fields[i].rel == rel)
            return &r->fields[i];
    return NULL;
}

static json_t *link_ids(const struct reflist *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++)
        json_array_append_new(arr, json_string(l->items[i].id));
    return arr;
}

json_t *model_export(const struct resource *r, const struct record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(rec->id));
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type != FT_LINKS && rec->v[i].state == V_SET)
            json_object_set_new(o, f->name, render_value(f, &rec->v[i]));
    }
    for (size_t v = 0; v < r->nviews; v++) {
        const struct field *f = model_link_field(r, r->views[v].rel);
        json_object_set_new(o, f->name, link_ids(&rec->links[v]));
    }
    set_str(o, "created_at", rec->created_at);
    set_str(o, "updated_at", rec->updated_at);
    return o;
}

/* A strong entity tag of rendered bytes, quoted. */
static void etag_of_bytes(const char *p, size_t n, char out[ETAG_MAX])
{
    unsigned char h[16];
    /* the rendering cannot fail short of memory; an ETag then matches nothing sent before */
    if (!p || crypto_generichash(h, sizeof h, (const unsigned char *)p, n, NULL, 0) != 0)
        randombytes_buf(h, sizeof h);
    out[0] = '"';
    sodium_bin2base64(out + 1, ETAG_MAX - 2, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t len = strlen(out);
    out[len] = '"';
    out[len + 1] = '\0';
}

void model_etag(const struct resource *r, const struct record *rec, char out[ETAG_MAX])
{
    char stack[2048];
    struct arena a;
    arena_init(&a);
    struct jbuf b;
    jbuf_init(&b, &a, stack, sizeof stack);
    model_render_to(&b, r, rec);
    etag_of_bytes(b.p, b.len, out);
    arena_release(&a);
}

void model_etag_of(const json_t *rendered, char out[ETAG_MAX])
{
    char *txt = rendered ? json_dumps(rendered, JSON_COMPACT) : NULL;
    etag_of_bytes(txt, txt ? strlen(txt) : 0, out);
    free(txt);
}

/* One member of a change: from and to, taking ownership of both (NULL: null). */
static void put_change(json_t *changes, const char *name, json_t *from, json_t *to, bool create)
{
    bool empty_list = !to || (json_is_array(to) && json_array_size(to) == 0);
    if ((create && empty_list) || (!create && json_equal(from ? from : json_null(), to ? to : json_null()))) {
        json_decref(from);
        json_decref(to);
        return;
    }
    json_object_set_new(changes, name,
                        json_pack("{s:o, s:o}", "from", from ? from : json_null(), "to", to ? to : json_null()));
}

/* The very same value (a field a PATCH left alone, copied into the record after it): the
 * same rendering, so no change, without rendering either. */
static bool same_value(const struct fval *a, const struct fval *b)
{
    return a->state == b->state && a->s == b->s && a->b == b->b && a->items == b->items && a->n == b->n;
}

json_t *model_changes(const struct resource *r, const struct record *before, const struct record *after)
{
    json_t *changes = json_object();
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type == FT_LINKS)
            continue;
        if (before && after && same_value(&before->v[i], &after->v[i]))
            continue;
        put_change(changes, f->name, before ? render_value(f, &before->v[i]) : NULL,
                   after ? render_value(f, &after->v[i]) : NULL, !before);
    }
    for (size_t v = 0; v < r->nviews; v++) {
        const struct field *f = model_link_field(r, r->views[v].rel);
        if (!f || (before && after && before->links[v].items == after->links[v].items &&
                   before->links[v].n == after->links[v].n)) /* the same list, copied */
            continue;
        put_change(changes, f->name, before ? link_ids(&before->links[v]) : NULL,
                   after ? link_ids(&after->links[v]) : NULL, !before);
    }
    return changes;
}
