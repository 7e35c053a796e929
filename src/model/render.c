/* Records to the JSON a GET shows, driven by the same field table. */
#include <string.h>

#include "model/field.h"

static json_t *str_or_null(const char *s) { return s ? json_string(s) : json_null(); }

static json_t *render_links(const struct resource *target, const struct reflist *l)
{
    json_t *arr = json_array();
    for (size_t i = 0; i < l->n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "id", json_string(l->items[i].id));
        json_object_set_new(o, target->summary[0], str_or_null(l->items[i].a));
        if (target->summary[1])
            json_object_set_new(o, target->summary[1], str_or_null(l->items[i].b));
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
        if (f->type == FT_LINKS)
            continue;
        json_t *out;
        if (v->state != V_SET) {
            out = json_null();
        } else if (f->type == FT_BOOL) {
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
        if (f->primary_as) {
            json_t *first = json_array_get(out, 0);
            json_object_set_new(o, f->primary_as, first ? json_incref(first) : json_null());
        }
        json_object_set_new(o, f->name, out);
    }
    for (size_t i = 0; i < r->nviews; i++)
        json_object_set_new(o, r->views[i].json_name,
                            render_links(resource_get(r->views[i].target), &rec->links[i]));
    json_object_set_new(o, "created_at", str_or_null(rec->created_at));
    json_object_set_new(o, "updated_at", str_or_null(rec->updated_at));
    return o;
}
