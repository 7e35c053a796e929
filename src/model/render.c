/* Records to the JSON a GET shows, driven by the same field table. Eka's OpenAPI types
 * these properties as plain strings and arrays, so a value the record does not have is
 * left out of the object: null is never rendered. */
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

/* A field's value as a GET shows it. */
static json_t *render_value(const struct field *f, const struct fval *v)
{
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
        const struct fval *v = &rec->v[i];
        if (f->type == FT_LINKS || v->state != V_SET)
            continue;
        json_t *out = render_value(f, v);
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
        json_t *ids = json_array();
        for (size_t k = 0; k < rec->links[v].n; k++)
            json_array_append_new(ids, json_string(rec->links[v].items[k].id));
        json_object_set_new(o, f->name, ids);
    }
    set_str(o, "created_at", rec->created_at);
    set_str(o, "updated_at", rec->updated_at);
    return o;
}
