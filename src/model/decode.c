/* Request bodies to field values: one rule per field type serves create and patch. */
#include <string.h>

#include <stdlib.h>

#include "model/field.h"
#include "model/ids.h"
#include "model/validate.h"

#define MAX_NAME 100

/* Common string checks; returns the reason or NULL and the span. */
static const char *string_of(json_t *v, struct arena *a, const char **s, size_t *len)
{
    if (!json_is_string(v))
        return "Must be a string.";
    *s = json_string_value(v);
    *len = json_string_length(v);
    if (text_codepoints(*s, *len) < 0)
        return "Must be valid UTF-8 text without control characters.";
    uint32_t cp;
    if (text_forbidden(*s, *len, &cp))
        return arena_printf(a,
                            "May not contain U+%04X: bidi controls, line and paragraph separators, "
                            "noncharacters and tag characters are not allowed.",
                            (unsigned)cp);
    return NULL;
}

/* Names, free text, ids: at least one character that shows; names are stored without
 * the white space around them. Lengths count characters (code points). */
static const char *text_value(json_t *v, size_t max, bool trim, struct arena *a, struct fval *out)
{
    const char *s, *why;
    size_t len, start;
    if ((why = string_of(v, a, &s, &len)))
        return why;
    size_t tlen = text_trim(s, len, &start);
    if (!text_has_visible(s + start, tlen))
        return "May not be blank.";
    if (trim) {
        s += start;
        len = tlen;
    }
    if ((size_t)text_codepoints(s, len) > max)
        return arena_printf(a, "Ensure this field has no more than %zu characters.", max);
    out->s = arena_strndup(a, s, len);
    return NULL;
}

/* A partner_id is the record's key in paths: it must reach the router unchanged and never
 * be read as an Eka id of the same resource (a lookup then finds one record, not two). */
static const char *lookup_key_check(const struct field *f, const char *s, struct arena *a)
{
    size_t len = strlen(s), start;
    if (text_trim(s, len, &start) != len)
        return "May not start or end with white space.";
    if (memchr(s, '/', len))
        return "May not contain '/'.";
    if (strcmp(s, ".") == 0 || strcmp(s, "..") == 0)
        return "May not be \".\" or \"..\".";
    if (id_has_shape(f->target, s, len))
        return arena_printf(a, "May not have the shape of an Eka id (%s).", id_shape_text(f->target));
    return NULL;
}

/* Arrays of non-empty strings, duplicates collapsed (first occurrence kept). */
static const char *list_value(json_t *v, size_t maxlen, struct arena *a, struct fval *out)
{
    if (!json_is_array(v))
        return "Must be an array of strings.";
    size_t n = json_array_size(v);
    if (n > MAX_ARRAY_ITEMS)
        return "Too many items (at most 1000).";
    out->items = arena_calloc(a, n ? n : 1, sizeof(char *));
    out->n = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *it = json_array_get(v, i);
        const char *s;
        size_t len, start;
        uint32_t cp;
        if (!json_is_string(it))
            return "Every item must be a string of valid text.";
        s = json_string_value(it);
        len = json_string_length(it);
        if (text_codepoints(s, len) < 0)
            return "Every item must be a string of valid text.";
        if (text_forbidden(s, len, &cp))
            return arena_printf(a,
                                "Items may not contain U+%04X: bidi controls, line and paragraph separators, "
                                "noncharacters and tag characters are not allowed.",
                                (unsigned)cp);
        size_t tlen = text_trim(s, len, &start);
        if (!text_has_visible(s + start, tlen))
            return "Items may not be blank.";
        if ((size_t)text_codepoints(s + start, tlen) > maxlen)
            return "An item is too long.";
        char *item = arena_strndup(a, s + start, tlen);
        bool dup = false;
        for (size_t j = 0; j < out->n && !dup; j++)
            dup = strcmp(out->items[j], item) == 0;
        if (!dup)
            out->items[out->n++] = item;
    }
    return NULL;
}

static const char *validate_one(const struct field *f, json_t *v, const char *today, struct arena *a,
                                struct fval *out)
{
    const char *s, *why;
    size_t len;
    out->state = V_SET;
    switch (f->type) {
    case FT_NAME:
        return text_value(v, MAX_NAME, true, a, out);
    case FT_TEXT:
        return text_value(v, f->maxlen, false, a, out);
    case FT_ID:
        if ((why = text_value(v, MAX_ID_LEN, false, a, out)))
            return why;
        return (f->flags & F_LOOKUP_KEY) ? lookup_key_check(f, out->s, a) : NULL;
    case FT_MOBILE: {
        if ((why = string_of(v, a, &s, &len)))
            return why;
        char digits[11];
        if (!mobile_normalize(s, len, digits))
            return "Enter a valid 10-digit mobile number (optionally prefixed by +91).";
        out->s = arena_strdup(a, digits);
        return NULL;
    }
    case FT_EMAIL:
        if ((why = string_of(v, a, &s, &len)))
            return why;
        if (!email_valid(s, len))
            return "Enter a valid email address.";
        out->s = arena_strndup(a, s, len);
        return NULL;
    case FT_DATE:
        if ((why = string_of(v, a, &s, &len)))
            return why;
        if ((why = date_check(s, len, today)))
            return why;
        out->s = arena_strndup(a, s, len);
        return NULL;
    case FT_ENUM:
        if ((why = string_of(v, a, &s, &len)))
            return why;
        for (const char *const *c = f->choices; *c; c++)
            if (strlen(*c) == len && memcmp(*c, s, len) == 0) {
                out->s = *c;
                return NULL;
            }
        return "Not a valid choice.";
    case FT_BOOL:
        if (!json_is_boolean(v))
            return "Must be a boolean.";
        out->b = json_is_true(v);
        return NULL;
    case FT_URL:
        if ((why = string_of(v, a, &s, &len)))
            return why;
        if (!url_valid(s, len))
            return "Enter a valid http(s) URL.";
        out->s = arena_strndup(a, s, len);
        return NULL;
    case FT_CONTACT:
        if ((why = string_of(v, a, &s, &len)))
            return why;
        if ((len != 10 && len != 11) || !digits_only(s, len))
            return "Must be 10 or 11 digits.";
        out->s = arena_strndup(a, s, len);
        return NULL;
    case FT_PINCODE:
        if ((why = string_of(v, a, &s, &len)))
            return why;
        if (len != 6 || !digits_only(s, len))
            return "Must be 6 digits.";
        out->s = arena_strndup(a, s, len);
        return NULL;
    case FT_STRLIST: {
        if ((why = list_value(v, MAX_NAME, a, out)))
            return why;
        json_t *arr = json_array();
        for (size_t i = 0; i < out->n; i++)
            json_array_append_new(arr, json_string(out->items[i]));
        char *txt = json_dumps(arr, JSON_COMPACT);
        json_decref(arr);
        out->s = arena_strdup(a, txt);
        free(txt);
        return NULL;
    }
    case FT_LINKS:
        return list_value(v, MAX_ID_LEN, a, out);
    }
    return "Unsupported field.";
}

const char *field_validate(const struct field *f, json_t *v, const char *today, struct arena *a,
                           struct fval *out)
{
    const char *why = validate_one(f, v, today, a, out);
    if (why || !(f->flags & F_FOLDED))
        return why;
    char *key = text_fold_key(out->s, strlen(out->s));
    if (!key)
        return "Could not be processed (out of memory); retry.";
    out->key = arena_strdup(a, key);
    free(key);
    return NULL;
}

/* A field's default, as if the client had sent it. */
static void apply_default(const struct field *f, struct fval *out)
{
    out->state = V_SET;
    if (f->type == FT_BOOL)
        out->b = strcmp(f->deflt, "true") == 0;
    else
        out->s = f->deflt;
}

bool model_decode(const struct resource *r, json_t *body, bool create, const char *today,
                  struct arena *a, struct fval *vals, struct herr *e)
{
    memset(vals, 0, sizeof(struct fval) * r->nfields);
    if (!json_is_object(body)) {
        herr_set(e, 400, "Request body must be a JSON object.");
        return false;
    }
    if (!create && json_object_size(body) == 0) {
        herr_set(e, 400, "Request body must contain at least one field to update.");
        return false;
    }
    /* The twin rule's message is the spec's own, so it goes first. */
    for (size_t i = 0; i < r->nfields; i++) {
        const struct field *f = &r->fields[i];
        if (f->type == FT_LINKS && !f->by_partner && json_object_get(body, f->name) &&
            json_object_get(body, f->twin))
            herr_set(e, 400,
                     arena_printf(a, "Only one of %s or %s should be provided, not both.", f->name, f->twin));
    }
    const char *key;
    json_t *v;
    /* Unknown fields first, so the message names them. */
    json_object_foreach(body, key, v) if (field_index(r, key) < 0) herr_field(e, a, key, "Unknown field.");
    json_object_foreach(body, key, v) {
        int idx = field_index(r, key);
        if (idx < 0)
            continue;
        const struct field *f = &r->fields[idx];
        if (json_is_null(v)) {
            if (f->flags & F_REQUIRED) {
                herr_field(e, a, key, "This field may not be null.");
            } else if (f->deflt) {
                apply_default(f, &vals[idx]);
            } else if (f->type == FT_LINKS) {
                vals[idx].state = V_SET; /* null links: an empty list */
                vals[idx].n = 0;
            } else {
                vals[idx].state = create ? V_ABSENT : V_NULL;
            }
            continue;
        }
        const char *why = field_validate(f, v, today, a, &vals[idx]);
        if (why) {
            vals[idx].state = V_ABSENT;
            herr_field(e, a, key, why);
        }
    }
    if (create) {
        for (size_t i = 0; i < r->nfields; i++) {
            const struct field *f = &r->fields[i];
            if (vals[i].state != V_ABSENT)
                continue;
            if ((f->flags & F_REQUIRED) && !json_object_get(body, f->name))
                herr_field(e, a, f->name, "This field is required.");
            else if (f->deflt)
                apply_default(f, &vals[i]);
        }
        if (!e->status && !model_has_identity(r, NULL, vals))
            herr_set(e, 400, "At least one of mobile, email or auth_userid is required.");
    }
    return e->status == 0;
}

bool model_has_identity(const struct resource *r, const struct record *current, const struct fval *patch)
{
    bool any_ident = false;
    for (size_t i = 0; i < r->nfields; i++) {
        if (!(r->fields[i].flags & F_IDENT))
            continue;
        any_ident = true;
        enum fstate st = patch[i].state;
        if (st == V_SET)
            return true;
        if (st == V_ABSENT && current && current->v[i].state == V_SET)
            return true;
    }
    return !any_ident;
}
