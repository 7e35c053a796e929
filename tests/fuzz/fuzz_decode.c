/* Body decoding and validation of every resource, create and patch.
 *
 * Input: byte 0 picks the resource (byte % 3: R_EKAUSER, R_DOCTOR, R_CLINIC) and the
 * mode (byte / 3 even: create, odd: patch). The rest is the request body, so a seed
 * is one selector byte ('0' ekauser create, '3' ekauser patch, '1'/'4' doctor,
 * '2'/'5' clinic) followed by the JSON.
 *
 * Per input:
 *  - json_loadb(JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL), the flags request_json()
 *    parses bodies with (NUL inside strings gets to the field rules), then model_decode(); on success the decoded
 *    values are turned into a record and rendered with model_render(), which must
 *    show exactly the fields the record has, hold no null anywhere (Eka's OpenAPI
 *    types them as strings and arrays) and dump to JSON that parses again; on failure the
 *    error must be a 400 with a message.
 *  - field_validate() directly: every member of a parsed object against every field
 *    of the resource (wrong types included), and the raw bytes as a JSON string
 *    against every field, so the validators see inputs the JSON syntax hides. */
#include "fuzz_common.h"

#include "model/field.h"
#include "model/ids.h"
#include "model/validate.h"
#include "util/arena.h"
#include "util/err.h"

/* True when v holds no JSON null at any depth. */
static bool no_nulls(json_t *v)
{
    const char *k;
    json_t *x;
    size_t i;
    if (json_is_null(v))
        return false;
    if (json_is_object(v)) {
        json_object_foreach(v, k, x) {
            if (!no_nulls(x))
                return false;
        }
    } else if (json_is_array(v)) {
        json_array_foreach(v, i, x) {
            if (!no_nulls(x))
                return false;
        }
    }
    return true;
}

/* A record as the store would hand it back after the write. */
static void record_from(const struct resource *r, const struct fval *vals, struct arena *a, struct record *rec)
{
    memset(rec, 0, sizeof *rec);
    rec->id = "176338032692057";
    rec->created_at = "2026-01-31T10:00:00Z";
    rec->updated_at = "2026-01-31T10:00:00Z";
    memcpy(rec->v, vals, sizeof(struct fval) * r->nfields);
    /* Links: the ids sent become the linked records, shown with their summary. */
    for (size_t i = 0; i < r->nviews; i++) {
        for (size_t j = 0; j < r->nfields; j++) {
            const struct field *f = &r->fields[j];
            if (f->type != FT_LINKS || f->rel != r->views[i].rel || vals[j].state != V_SET)
                continue;
            struct reflist *l = &rec->links[i];
            struct ref *items = arena_calloc(a, l->n + vals[j].n + 1, sizeof *items);
            if (l->n)
                memcpy(items, l->items, l->n * sizeof *items);
            for (size_t k = 0; k < vals[j].n; k++) {
                FUZZ_CHECK(vals[j].items[k] != NULL);
                items[l->n + k] = (struct ref){.id = vals[j].items[k], .a = vals[j].items[k], .b = NULL};
            }
            l->items = items;
            l->n += vals[j].n;
        }
    }
}

/* What every accepted value must look like, whichever path accepted it. */
static void check_value(const struct field *f, const struct fval *v)
{
    FUZZ_CHECK(v->state == V_SET);
    switch (f->type) {
    case FT_BOOL:
        return;
    case FT_LINKS:
        FUZZ_CHECK(v->n <= MAX_ARRAY_ITEMS);
        FUZZ_CHECK(v->n == 0 || v->items != NULL);
        for (size_t k = 0; k < v->n; k++)
            FUZZ_CHECK(v->items[k] && *v->items[k] && strlen(v->items[k]) <= 4 * MAX_ID_LEN);
        return;
    case FT_STRLIST:
        FUZZ_CHECK(v->n <= MAX_ARRAY_ITEMS);
        for (size_t k = 0; k < v->n; k++) {
            uint32_t cp;
            FUZZ_CHECK(text_has_visible(v->items[k], strlen(v->items[k])));
            FUZZ_CHECK(!text_forbidden(v->items[k], strlen(v->items[k]), &cp));
        }
        break;
    case FT_MOBILE:
        FUZZ_CHECK(v->s && strlen(v->s) == 10);
        break;
    case FT_ID:
        FUZZ_CHECK(v->s && *v->s && text_codepoints(v->s, strlen(v->s)) <= MAX_ID_LEN);
        FUZZ_CHECK(text_has_visible(v->s, strlen(v->s)));
        if (f->flags & F_LOOKUP_KEY) {
            size_t len = strlen(v->s), start;
            FUZZ_CHECK(!strchr(v->s, '/') && text_trim(v->s, len, &start) == len);
            FUZZ_CHECK(!id_has_shape(f->target, v->s, len));
        }
        break;
    case FT_NAME:
    case FT_TEXT:
        FUZZ_CHECK(v->s && text_has_visible(v->s, strlen(v->s)));
        break;
    case FT_DATE:
        FUZZ_CHECK(v->s && strlen(v->s) == 10 && strcmp(v->s, FUZZ_TODAY) <= 0);
        break;
    case FT_PINCODE:
        FUZZ_CHECK(v->s && strlen(v->s) == 6);
        break;
    case FT_CONTACT:
        FUZZ_CHECK(v->s && (strlen(v->s) == 10 || strlen(v->s) == 11));
        break;
    case FT_ENUM: {
        bool found = false;
        for (const char *const *c = f->choices; *c && !found; c++)
            found = v->s && strcmp(*c, v->s) == 0;
        FUZZ_CHECK(found);
        break;
    }
    default:
        FUZZ_CHECK(v->s && *v->s);
        break;
    }
    /* Stored text must be storable and renderable: valid UTF-8 without NUL, and without
     * the characters no text field takes. */
    json_t *js = json_string(v->s);
    FUZZ_CHECK(js != NULL);
    json_decref(js);
    uint32_t cp;
    FUZZ_CHECK(!text_forbidden(v->s, strlen(v->s), &cp));
    /* A normalised key is the key of the value, and its own key. */
    if (f->flags & F_FOLDED) {
        FUZZ_CHECK(v->key != NULL);
        char *again = text_fold_key(v->key, strlen(v->key));
        char *of_value = text_fold_key(v->s, strlen(v->s));
        FUZZ_CHECK(again && of_value && strcmp(again, v->key) == 0 && strcmp(of_value, v->key) == 0);
        free(again);
        free(of_value);
    }
}

static void check_decoded(const struct resource *r, const struct fval *vals, bool create, struct arena *a)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (vals[i].state == V_SET)
            check_value(&r->fields[i], &vals[i]);
    if (create) /* a create that decodes has every required field and a login identity */
        for (size_t i = 0; i < r->nfields; i++)
            if (r->fields[i].flags & F_REQUIRED)
                FUZZ_CHECK(vals[i].state == V_SET);

    struct record rec;
    record_from(r, vals, a, &rec);
    json_t *out = model_render(r, &rec);
    FUZZ_CHECK(out != NULL);
    arena_defer(a, fuzz_json_decref, out);
    /* a field is shown exactly when the record has a value */
    for (size_t i = 0; i < r->nfields; i++)
        if (r->fields[i].type != FT_LINKS) {
            json_t *shown = json_object_get(out, r->fields[i].name);
            FUZZ_CHECK((shown != NULL) == (rec.v[i].state == V_SET));
        }
    FUZZ_CHECK(no_nulls(out));
    for (size_t i = 0; i < r->nviews; i++)
        FUZZ_CHECK(json_array_size(json_object_get(out, r->views[i].json_name)) == rec.links[i].n);
    char *txt = json_dumps(out, JSON_COMPACT);
    FUZZ_CHECK(txt != NULL);
    json_t *again = json_loads(txt, JSON_REJECT_DUPLICATES, NULL);
    FUZZ_CHECK(again != NULL && json_equal(again, out));
    json_decref(again);
    free(txt);
    /* a patch with these values applied to the rendered record */
    (void)model_has_identity(r, &rec, vals);
}

static void validate_all(const struct resource *r, json_t *v, struct arena *a)
{
    for (size_t i = 0; i < r->nfields; i++) {
        struct fval out = {0};
        if (!field_validate(&r->fields[i], v, FUZZ_TODAY, a, &out))
            check_value(&r->fields[i], &out);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size < 1)
        return 0;
    const struct resource *r = resource_get((enum rkind)(data[0] % R_COUNT));
    bool create = (data[0] / R_COUNT) % 2 == 0;
    const char *body = (const char *)data + 1;
    size_t len = size - 1;

    struct arena a;
    arena_init(&a);

    json_error_t jerr;
    json_t *doc = json_loadb(body, len, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, &jerr);
    if (doc) {
        arena_defer(&a, fuzz_json_decref, doc);
        struct fval vals[MAX_FIELDS];
        struct herr e = {0};
        if (model_decode(r, doc, create, FUZZ_TODAY, &a, vals, &e)) {
            FUZZ_CHECK(e.status == 0);
            check_decoded(r, vals, create, &a);
        } else {
            FUZZ_CHECK(e.status == 400 && e.message != NULL);
        }
        if (json_is_object(doc)) {
            const char *k;
            json_t *m;
            json_object_foreach(doc, k, m) validate_all(r, m, &a);
        } else {
            validate_all(r, doc, &a);
        }
    }

    /* The bytes themselves as a string value (jansson refuses invalid UTF-8 here, as
     * its parser does, so only strings a client could send get through). */
    json_t *str = json_stringn(body, len);
    if (str) {
        validate_all(r, str, &a);
        json_decref(str);
    }

    arena_release(&a);
    return 0;
}
