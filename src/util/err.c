#include "util/err.h"

static void json_decref_void(void *p) { json_decref(p); }

bool herr_set(struct herr *e, int status, const char *message)
{
    if (e->status)
        return false;
    e->status = status;
    e->message = message;
    return true;
}

void herr_field(struct herr *e, struct arena *a, const char *field, const char *why)
{
    if (!e->fields) {
        e->fields = json_object();
        arena_defer(a, json_decref_void, e->fields);
    }
    json_t *list = json_object_get(e->fields, field);
    if (!list) {
        list = json_array();
        json_object_set_new(e->fields, field, list);
    }
    json_array_append_new(list, json_string(why));
    if (!e->status || e->status == 400)
        if (!e->message || !e->status) {
            e->status = 400;
            e->message = arena_printf(a, "%s: %s", field, why);
        }
}
