#include "api/list_query.h"

#include <stdio.h>
#include <string.h>

#include "auth/cursor.h"
#include "model/ids.h"
#include "model/validate.h"

/* A parameter's name as an error may show it: JSON keys must be text, and long junk is
 * not worth echoing. */
static const char *shown(const char *name)
{
    long n = text_codepoints(name, strlen(name));
    return n > 0 && n <= 64 ? name : "(query parameter)";
}

/* The hint for a '+' that arrived as a space (form encoding). */
static const char *plus_hint(const char *v, const char *why, struct arena *a)
{
    return strchr(v, ' ') ? arena_printf(a, "%s A '+' in a query string reads as a space: send it as %%2B.", why) : why;
}

/* A value checked by the rule of r's field of that name, as a create would check it. */
static const char *by_field(const struct resource *r, const char *name, const char *v, struct arena *a,
                            struct fval *out)
{
    int i = field_index(r, name);
    if (text_codepoints(v, strlen(v)) < 0)
        return "Must be valid UTF-8 text without control characters.";
    json_t *js = json_string(v);
    memset(out, 0, sizeof *out);
    const char *why = field_validate(&r->fields[i], js, NULL, a, out);
    json_decref(js);
    return why;
}

static bool has_link(const struct resource *r, enum rkind target)
{
    for (size_t v = 0; v < r->nviews; v++)
        if (r->views[v].target == target)
            return true;
    return false;
}

enum param {
    P_LIMIT,
    P_CURSOR,
    P_PARTNER_ID,
    P_MOBILE,
    P_EMAIL,
    P_AUTH_USERID,
    P_CLINIC_ID,
    P_DOCTOR_ID,
    P_UPDATED_SINCE,
    P_COUNT
};

static const char *const NAMES[P_COUNT] = {"limit",       "cursor",    "partner_id", "mobile",       "email",
                                           "auth_userid", "clinic_id", "doctor_id",  "updated_since"};

/* Does this list take that filter? Decided by r's field table. */
static bool applies(const struct resource *r, enum param p)
{
    int i;
    switch (p) {
    case P_PARTNER_ID:
    case P_AUTH_USERID:
    case P_MOBILE:
        return field_index(r, NAMES[p]) >= 0;
    case P_EMAIL:
        return (i = field_index(r, "email")) >= 0 && r->fields[i].key_column;
    case P_CLINIC_ID:
        return has_link(r, R_CLINIC);
    case P_DOCTOR_ID:
        return has_link(r, R_DOCTOR);
    default:
        return true;
    }
}

bool list_query_parse(const struct resource *r, const char *list, const char *tenant, const struct query_param *p,
                      size_t n, const struct keyring *k, struct arena *a, struct list_query *out, struct herr *e)
{
    memset(out, 0, sizeof *out);
    const char *given[P_COUNT] = {0}; /* the values of the parameters that apply */
    bool seen[P_COUNT] = {0};
    for (size_t i = 0; i < n; i++) {
        const char *name = p[i].name;
        int which = -1;
        for (int w = 0; w < P_COUNT && !p[i].bad; w++)
            if (strcmp(name, NAMES[w]) == 0)
                which = w;
        if (p[i].bad) {
            herr_field(e, a, shown(name), "Malformed percent-encoding (or an encoded NUL).");
        } else if (which < 0) {
            herr_field(e, a, shown(name),
                       "Unknown query parameter: lists take limit, cursor, partner_id, mobile, email, auth_userid,"
                       " clinic_id, doctor_id and updated_since.");
        } else if (seen[which]) {
            herr_field(e, a, name, "Given more than once.");
            given[which] = NULL;
        } else if (!applies(r, (enum param)which)) {
            seen[which] = true;
            herr_field(e, a, name,
                       arena_printf(a, "Not a filter of this list: %s records have no %s.", r->label, name));
        } else {
            seen[which] = true;
            given[which] = p[i].value;
        }
    }
    /* the values of the others are checked too, so one answer names every parameter at fault */

    struct fval v;
    const char *why;
    struct list_filter *f = &out->f;
    if (given[P_LIMIT]) {
        const char *s = given[P_LIMIT];
        size_t len = strlen(s);
        int lim = 0;
        bool ok = len >= 1 && len <= 4 && s[0] != '0' && digits_only(s, len);
        for (size_t i = 0; ok && i < len; i++)
            lim = lim * 10 + (s[i] - '0');
        if (!ok || lim > LIST_LIMIT_MAX)
            herr_field(e, a, "limit", "Must be a whole number from 1 to 1000.");
        out->limit = lim;
    }
    if (given[P_PARTNER_ID]) {
        if ((why = by_field(r, "partner_id", given[P_PARTNER_ID], a, &v)))
            herr_field(e, a, "partner_id", why);
        f->partner_id = v.s;
    }
    if (given[P_MOBILE]) {
        if ((why = by_field(r, "mobile", given[P_MOBILE], a, &v)))
            herr_field(e, a, "mobile", plus_hint(given[P_MOBILE], why, a));
        f->mobile = v.s;
    }
    if (given[P_EMAIL]) {
        if ((why = by_field(r, "email", given[P_EMAIL], a, &v)))
            herr_field(e, a, "email", why);
        f->email_key = v.key;
    }
    if (given[P_AUTH_USERID]) {
        if ((why = by_field(r, "auth_userid", given[P_AUTH_USERID], a, &v)))
            herr_field(e, a, "auth_userid", why);
        f->auth_userid = v.s;
    }
    static const struct {
        enum param p;
        enum rkind kind;
        const char *what;
    } ids[] = {{P_CLINIC_ID, R_CLINIC, "clinic"}, {P_DOCTOR_ID, R_DOCTOR, "doctor"}};
    for (size_t i = 0; i < sizeof ids / sizeof ids[0]; i++) {
        const char *s = given[ids[i].p];
        if (!s)
            continue;
        if (!id_has_shape(ids[i].kind, s, strlen(s)))
            herr_field(e, a, NAMES[ids[i].p],
                       arena_printf(a, "Must be the Eka id of a %s (%s).", ids[i].what, id_shape_text(ids[i].kind)));
        if (ids[i].p == P_CLINIC_ID)
            f->clinic_id = s;
        else
            f->doctor_id = s;
    }
    if (given[P_UPDATED_SINCE]) {
        const char *s = given[P_UPDATED_SINCE];
        int64_t ms;
        if (!rfc3339_ms(s, strlen(s), &ms)) {
            herr_field(
                e, a, "updated_since",
                plus_hint(s, "Must be an RFC 3339 date-time, e.g. 2024-05-01T10:00:00Z or 2024-05-01T15:30:00+05:30.",
                          a));
        } else {
            char t[32];
            store_format_time(ms < 0 ? 0 : ms, t); /* past 9999: written as its last ms, after every record */
            f->updated_since = arena_strdup(a, t);
        }
    }
    if (e->status)
        return false;

    /* A cursor is bound to the tenant, the list and the filters as normalised (the same
     * filters spelt differently, +91 or not, keep their cursors). Lengths keep the parts apart. */
    const char *parts[] = {tenant,         list,         f->partner_id, f->mobile,       f->email_key,
                           f->auth_userid, f->clinic_id, f->doctor_id,  f->updated_since};
    char *bind = arena_strdup(a, "hipusers-list");
    for (size_t i = 0; i < sizeof parts / sizeof parts[0]; i++)
        bind =
            parts[i] ? arena_printf(a, "%s|%zu:%s", bind, strlen(parts[i]), parts[i]) : arena_printf(a, "%s|-", bind);
    out->bind = bind;
    if (given[P_CURSOR] && !cursor_open(k, bind, given[P_CURSOR], &out->after)) {
        herr_field(e, a, "cursor",
                   "Not a cursor of this list: it comes from another list, tenant or set of filters, or was altered.");
        return false;
    }
    return true;
}
