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

json_t *model_render(const struct resource *r, const struct record *rec)
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
        json_object_set_new(o, r->views[i].json_name,
                            render_links(resource_get(r->views[i].target), &rec->links[i]));
    set_str(o, "created_at", rec->created_at);
    set_str(o, "updated_at", rec->updated_at);
    return o;
}
