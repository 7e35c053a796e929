/* Records as CSV rows: columns, cells to the import's JSON body, records to cells. */
#include "model/tabular.h"

#include <stdlib.h>
#include <string.h>

static const char *const META[] = {"id", "created_at", "updated_at"};

size_t tabular_columns(const struct resource *r, const char **out)
{
    size_t n = 0;
    out[n++] = "id";
    for (size_t i = 0; i < r->nfields; i++)
        if (!(r->fields[i].type == FT_LINKS && r->fields[i].by_partner))
            out[n++] = r->fields[i].name;
    out[n++] = "created_at";
    out[n++] = "updated_at";
    return n;
}

bool tabular_known(const struct resource *r, const char *name)
{
    for (size_t i = 0; i < sizeof META / sizeof META[0]; i++)
        if (strcmp(name, META[i]) == 0)
            return true;
    return field_index(r, name) >= 0;
}

char *tabular_join(json_t *items, struct arena *a)
{
    size_t cap = 1, n = 0;
    for (size_t i = 0; i < json_array_size(items); i++)
        cap += 2 * json_string_length(json_array_get(items, i)) + 1;
    char *out = arena_alloc(a, cap);
    for (size_t i = 0; i < json_array_size(items); i++) {
        json_t *it = json_array_get(items, i);
        const char *s = json_string_value(it);
        size_t len = json_string_length(it);
        if (i)
            out[n++] = ';';
        for (size_t k = 0; s && k < len; k++) {
            if (s[k] == ';' || s[k] == '\\')
                out[n++] = '\\';
            out[n++] = s[k];
        }
    }
    out[n] = '\0';
    return out;
}

json_t *tabular_split(const char *s, size_t len)
{
    json_t *arr = json_array();
    if (len == 0)
        return arr;
    char *item = malloc(len + 1);
    if (!item) {
        json_decref(arr);
        return NULL;
    }
    size_t n = 0;
    for (size_t k = 0; k <= len; k++) {
        if (k == len || s[k] == ';') {
            json_t *str = json_stringn(item, n); /* NULL: not UTF-8 */
            if (!str || json_array_append_new(arr, str) != 0) {
                free(item);
                json_decref(arr);
                return NULL;
            }
            n = 0;
        } else if (s[k] == '\\' && k + 1 < len && (s[k + 1] == ';' || s[k + 1] == '\\')) {
            item[n++] = s[++k];
        } else {
            item[n++] = s[k];
        }
    }
    free(item);
    return arr;
}

json_t *tabular_to_json(const struct resource *r, const char *const *names, const char *const *cells,
                        const size_t *lens, size_t n, size_t *bad)
{
    json_t *o = json_object();
    for (size_t i = 0; i < n; i++) {
        if (!cells[i])
            continue;
        int idx = field_index(r, names[i]);
        enum ftype t = idx >= 0 ? r->fields[idx].type : FT_TEXT;
        json_t *v;
        if (t == FT_BOOL && lens[i] == 4 && memcmp(cells[i], "true", 4) == 0)
            v = json_true();
        else if (t == FT_BOOL && lens[i] == 5 && memcmp(cells[i], "false", 5) == 0)
            v = json_false();
        else if (t == FT_STRLIST || t == FT_LINKS)
            v = tabular_split(cells[i], lens[i]);
        else
            v = json_stringn(cells[i], lens[i]);
        if (!v) { /* not UTF-8 (or out of memory) */
            *bad = i;
            json_decref(o);
            return NULL;
        }
        json_object_set_new(o, names[i], v);
    }
    return o;
}

void tabular_cells(const struct resource *r, json_t *exported, struct arena *a, const char **cells, size_t ncols)
{
    const char *names[TABULAR_MAX_COLUMNS];
    size_t n = tabular_columns(r, names);
    for (size_t i = 0; i < n && i < ncols; i++) {
        json_t *v = json_object_get(exported, names[i]);
        if (json_is_string(v))
            cells[i] = arena_strndup(a, json_string_value(v), json_string_length(v));
        else if (json_is_boolean(v))
            cells[i] = json_is_true(v) ? "true" : "false";
        else if (json_is_array(v))
            cells[i] = tabular_join(v, a);
        else
            cells[i] = NULL;
    }
}
