/* Each resource's fields, described once. The same table drives decoding and
 * validation (create and patch), the SQL the store builds, and rendering. */
#ifndef HIP_FIELD_H
#define HIP_FIELD_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>

#include "util/arena.h"
#include "util/err.h"
#include "util/jbuf.h"

#define MAX_FIELDS 24
#define MAX_LINKS 2
#define MAX_ARRAY_ITEMS 1000
#define MAX_ID_LEN 128

enum ftype {
    FT_NAME,    /* trimmed, 1..100 characters */
    FT_TEXT,    /* free text, 1..maxlen characters */
    FT_ID,      /* partner_id, auth_userid: 1..128 characters */
    FT_MOBILE,  /* 10 digits, optional +91 / 91 prefix; stored as 10 digits */
    FT_EMAIL,
    FT_DATE,    /* YYYY-MM-DD, a real date, not in the future */
    FT_ENUM,
    FT_BOOL,
    FT_URL,     /* http(s)://host... */
    FT_CONTACT, /* 10 or 11 digits */
    FT_PINCODE, /* 6 digits */
    FT_STRLIST, /* array of strings, stored as JSON text */
    FT_LINKS,   /* array of ids of another resource, stored in a link table */
};

enum {
    F_REQUIRED = 1u << 0, /* required on create; null is refused on patch */
    F_UNIQUE = 1u << 1,   /* unique among the tenant's undeleted records */
    F_IDENT = 1u << 2,    /* an Eka User's login identity: one of them must remain */
    F_RENDER_91 = 1u << 3, /* mobile shown as +91XXXXXXXXXX */
    /* The record's second key in paths ({id} is the Eka id or this): no '/', no leading
     * or trailing white space, not "." or "..", never the shape of an Eka id of .target. */
    F_LOOKUP_KEY = 1u << 4,
    /* The value's normalised key (text_fold_key: NFC, full case folding) is kept in
     * .key_column beside the value as sent: with F_UNIQUE the value is unique by it, and
     * list filters compare it. */
    F_FOLDED = 1u << 5,
};

enum rkind { R_EKAUSER, R_DOCTOR, R_CLINIC, R_COUNT };

/* Link tables: each joins two resources; a record sits on side 0 or 1. */
enum rel { REL_USER_DOCTOR, REL_USER_CLINIC, REL_DOCTOR_CLINIC, REL_COUNT };

enum link_mode { LINK_REPLACE, LINK_ADD };

struct field {
    const char *name;
    enum ftype type;
    const char *column;              /* NULL for FT_LINKS */
    unsigned flags;
    unsigned maxlen;                 /* FT_TEXT */
    const char *const *choices;      /* FT_ENUM, NULL-terminated */
    const char *deflt;               /* value on create when absent */
    /* FT_LINKS only (target also for F_LOOKUP_KEY: the resource whose Eka ids it must not look like) */
    enum rel rel;
    enum rkind target;
    bool by_partner;                 /* items are partner ids of the target */
    const char *twin;                /* the other form of the same link */
    const char *primary_as;          /* FT_STRLIST: also render the first item under this name */
    const char *key_column;          /* F_FOLDED: the column of the normalised key */
};

struct relation {
    const char *table;
    const char *col[2];
    enum rkind kind[2];
};

const struct relation *relation_get(enum rel rel);

enum fstate { V_ABSENT = 0, V_NULL, V_SET };

struct fval {
    enum fstate state;
    const char *s;      /* strings, dates, enums; FT_STRLIST as JSON text */
    const char *key;    /* F_FOLDED: text_fold_key(s) */
    bool b;             /* FT_BOOL */
    const char **items; /* FT_STRLIST, FT_LINKS */
    size_t n;
};

/* What a linked record shows of itself, e.g. doctors: [{id, firstname, lastname}]. */
struct link_view {
    const char *json_name;
    enum rel rel;
    enum rkind target;
};

struct resource {
    enum rkind kind;
    const char *path;        /* "ekauser" */
    const char *label;       /* "EkaUser": messages */
    const char *table;
    const char *json_one;    /* "user" */
    const char *json_many;   /* "users" */
    const char *summary[3];  /* columns shown when this resource is linked from another */
    const struct field *fields;
    size_t nfields;
    struct link_view views[MAX_LINKS];
    size_t nviews;
    enum link_mode link_mode;   /* what doctor_ids etc. do on PATCH */
};

/* A stored record as the store hands it back; values indexed like resource.fields. */
struct ref {
    const char *id;
    const char *a, *b; /* summary columns */
};

struct reflist {
    struct ref *items;
    size_t n;
};

struct record {
    const char *id;
    const char *created_at, *updated_at;
    struct fval v[MAX_FIELDS];
    struct reflist links[MAX_LINKS]; /* by resource.views index */
};

const struct resource *resource_get(enum rkind kind);
const struct resource *resource_by_path(const char *segment, size_t len);
int field_index(const struct resource *r, const char *name);

/* Checks one JSON value against its field's rule and stores the normalized value.
 * Returns NULL when valid, else the reason (static text). */
const char *field_validate(const struct field *f, json_t *v, const char *today, struct arena *a,
                           struct fval *out);

/* Decodes a create (create=true) or patch body into vals, every field checked by the
 * same rule. Fills e with every field at fault. */
bool model_decode(const struct resource *r, json_t *body, bool create, const char *today,
                  struct arena *a, struct fval *vals, struct herr *e);

/* After a patch, does the merged record still have a login identity (Eka Users)? */
bool model_has_identity(const struct resource *r, const struct record *current, const struct fval *patch);

/* The JSON object a GET shows, written into b (compact, as json_dumps would write it). */
void model_render_to(struct jbuf *b, const struct resource *r, const struct record *rec);
/* The same object parsed back into a jansson value (history, tests and fuzzing). */
json_t *model_render(const struct resource *r, const struct record *rec);

/* A record as `hipusers export` writes it, which is a create body `hipusers import` takes
 * back: "id", every field that has a value (as GET shows it, without derived names such as
 * a doctor's "specialisation"), each link list as the Eka ids of its live records under its
 * field name ("doctor_ids"), then "created_at" and "updated_at". */
json_t *model_export(const struct resource *r, const struct record *rec);
/* The link field of r (by Eka id, not its partner-id twin) for relation rel, or NULL. */
const struct field *model_link_field(const struct resource *r, enum rel rel);
/* A strong entity tag of the object model_render shows, quoted: a hash of its exact bytes,
 * so it changes exactly when what GET shows changes. */
#define ETAG_MAX 32
void model_etag(const struct resource *r, const struct record *rec, char out[ETAG_MAX]);
/* The same from the object model_render made. */
void model_etag_of(const json_t *rendered, char out[ETAG_MAX]);
/* {"status":"success","<wrap>":{the object}}: a GET's answer, and (etag not NULL) the
 * object's entity tag, as model_etag gives it. */
void model_render_one(struct jbuf *b, const char *wrap, const struct resource *r, const struct record *rec,
                      char etag[ETAG_MAX]);

/* What a write changed, for the history: {"field":{"from":..,"to":..}} for every field whose
 * value as GET shows it differs, and every link list (as Eka ids, under the name of its
 * field: doctor_ids, clinic_ids) that differs. before NULL: a create, every field after has
 * (and every non-empty link list) with from null. */
json_t *model_changes(const struct resource *r, const struct record *before, const struct record *after);

#endif
