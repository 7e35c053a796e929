/* Records to the JSON a GET shows, driven by the same field table. Eka's OpenAPI types
 * these properties as plain strings and arrays, so a value the record does not have is
 * left out of the object: null is never rendered. */
#include <sodium.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "model/field.h"

static void set_str(json_t *o, const char *key, const char *s)
{
    if (s)
        json_object_set_new(o, key, json_string(s));
}

static json_t *render_links(const struct resource *target, const struct reflist *l)
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

json_t *model_render(const struct resource *r, const struct record *rec)
{
    json_t *o = json_object();
    json_object_set_new(o, "id", json_string(rec->id));
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        json_t *out = render_value(f, &rec->v[i]);
        if (!out)
            continue;
        json_t *first = f->primary_as ? json_array_get(out, 0) : NULL;
        if (json_is_string(first))
            json_object_set(o, f->primary_as, first);
        json_object_set_new(o, f->name, out);
    }
    for (size_t i = 0; i < r->nviews; i++)
        json_object_set_new(o, r->views[i].json_name,
                            render_links(resource_get(r->views[i].target), &rec->links[i]));
    set_str(o, "created_at", rec->created_at);
    set_str(o, "updated_at", rec->updated_at);
    return o;
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

void model_etag(const struct resource *r, const struct record *rec, char out[ETAG_MAX])
{
    json_t *o = model_render(r, rec);
    model_etag_of(o, out);
    json_decref(o);
}

void model_etag_of(const json_t *rendered, char out[ETAG_MAX])
{
    char *txt = rendered ? json_dumps(rendered, JSON_COMPACT) : NULL;
    unsigned char h[16];
    /* the rendering cannot fail short of memory; an ETag then matches nothing sent before */
    if (!txt || crypto_generichash(h, sizeof h, (const unsigned char *)txt, strlen(txt), NULL, 0) != 0)
        randombytes_buf(h, sizeof h);
    free(txt);
    out[0] = '"';
    sodium_bin2base64(out + 1, ETAG_MAX - 2, h, sizeof h, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    size_t n = strlen(out);
    out[n] = '"';
    out[n + 1] = '\0';
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

json_t *model_changes(const struct resource *r, const struct record *before, const struct record *after)
{
    json_t *changes = json_object();
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type == FT_LINKS)
            continue;
        put_change(changes, f->name, before ? render_value(f, &before->v[i]) : NULL,
                   after ? render_value(f, &after->v[i]) : NULL, !before);
    }
    for (size_t v = 0; v < r->nviews; v++) {
        const struct field *f = model_link_field(r, r->views[v].rel);
        if (!f)
            continue;
        put_change(changes, f->name, before ? link_ids(&before->links[v]) : NULL,
                   after ? link_ids(&after->links[v]) : NULL, !before);
    }
    return changes;
}
