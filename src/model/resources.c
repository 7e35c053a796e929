/* The three resources of the onboarding API, each described once. */
#include <string.h>

#include "model/field.h"

static const char *const GENDERS[] = {"M", "F", "O", NULL};
static const char *const SEATS[] = {"b", "p", NULL};
static const char *const PERSONAS[] = {"S", "D", NULL};

static const struct relation RELATIONS[REL_COUNT] = {
    [REL_USER_DOCTOR] = {"user_doctor", {"user_id", "doctor_id"}, {R_EKAUSER, R_DOCTOR}},
    [REL_USER_CLINIC] = {"user_clinic", {"user_id", "clinic_id"}, {R_EKAUSER, R_CLINIC}},
    [REL_DOCTOR_CLINIC] = {"doctor_clinic", {"doctor_id", "clinic_id"}, {R_DOCTOR, R_CLINIC}},
};

static const struct field EKAUSER_FIELDS[] = {
    {.name = "firstname", .type = FT_NAME, .column = "firstname", .flags = F_REQUIRED},
    {.name = "lastname", .type = FT_NAME, .column = "lastname", .flags = F_REQUIRED},
    {.name = "mobile", .type = FT_MOBILE, .column = "mobile", .flags = F_UNIQUE | F_IDENT | F_RENDER_91},
    {.name = "email", .type = FT_EMAIL, .column = "email", .flags = F_UNIQUE | F_IDENT | F_FOLDED,
     .key_column = "email_key"},
    {.name = "auth_userid", .type = FT_ID, .column = "auth_userid", .flags = F_UNIQUE | F_IDENT},
    {.name = "gender", .type = FT_ENUM, .column = "gender", .flags = F_REQUIRED, .choices = GENDERS},
    {.name = "dob", .type = FT_DATE, .column = "dob", .flags = F_REQUIRED},
    {.name = "is_admin", .type = FT_BOOL, .column = "is_admin", .deflt = "false"},
    {.name = "seat_type", .type = FT_ENUM, .column = "seat_type", .choices = SEATS, .deflt = "b"},
    {.name = "persona", .type = FT_ENUM, .column = "persona", .choices = PERSONAS, .deflt = "D"},
    {.name = "partner_id", .type = FT_ID, .column = "partner_id", .flags = F_UNIQUE | F_LOOKUP_KEY,
     .target = R_EKAUSER},
    {.name = "doctor_ids", .type = FT_LINKS, .rel = REL_USER_DOCTOR, .target = R_DOCTOR,
     .twin = "partner_doctor_ids"},
    {.name = "partner_doctor_ids", .type = FT_LINKS, .rel = REL_USER_DOCTOR, .target = R_DOCTOR,
     .by_partner = true, .twin = "doctor_ids"},
    {.name = "clinic_ids", .type = FT_LINKS, .rel = REL_USER_CLINIC, .target = R_CLINIC,
     .twin = "partner_clinic_ids"},
    {.name = "partner_clinic_ids", .type = FT_LINKS, .rel = REL_USER_CLINIC, .target = R_CLINIC,
     .by_partner = true, .twin = "clinic_ids"},
};

static const struct field DOCTOR_FIELDS[] = {
    {.name = "firstname", .type = FT_NAME, .column = "firstname", .flags = F_REQUIRED},
    {.name = "lastname", .type = FT_NAME, .column = "lastname", .flags = F_REQUIRED},
    {.name = "gender", .type = FT_ENUM, .column = "gender", .flags = F_REQUIRED, .choices = GENDERS},
    {.name = "dob", .type = FT_DATE, .column = "dob", .deflt = "1990-01-01"},
    {.name = "mobile", .type = FT_MOBILE, .column = "mobile"},
    {.name = "email", .type = FT_EMAIL, .column = "email", .flags = F_FOLDED, .key_column = "email_key"},
    {.name = "about", .type = FT_TEXT, .column = "about", .maxlen = 2000},
    {.name = "profile_image_url", .type = FT_URL, .column = "profile_image_url"},
    {.name = "specialisations", .type = FT_STRLIST, .column = "specialisations", .primary_as = "specialisation"},
    {.name = "qualifications", .type = FT_STRLIST, .column = "qualifications"},
    {.name = "partner_id", .type = FT_ID, .column = "partner_id", .flags = F_UNIQUE | F_LOOKUP_KEY,
     .target = R_DOCTOR},
    {.name = "clinic_ids", .type = FT_LINKS, .rel = REL_DOCTOR_CLINIC, .target = R_CLINIC,
     .twin = "partner_clinic_ids"},
    {.name = "partner_clinic_ids", .type = FT_LINKS, .rel = REL_DOCTOR_CLINIC, .target = R_CLINIC,
     .by_partner = true, .twin = "clinic_ids"},
};

static const struct field CLINIC_FIELDS[] = {
    {.name = "name", .type = FT_NAME, .column = "name", .flags = F_REQUIRED},
    {.name = "address", .type = FT_TEXT, .column = "address", .flags = F_REQUIRED, .maxlen = 500},
    {.name = "pincode", .type = FT_PINCODE, .column = "pincode"},
    {.name = "contact", .type = FT_CONTACT, .column = "contact"},
    {.name = "city", .type = FT_TEXT, .column = "city", .maxlen = 100},
    {.name = "state", .type = FT_TEXT, .column = "state", .maxlen = 100},
    {.name = "partner_id", .type = FT_ID, .column = "partner_id", .flags = F_UNIQUE | F_LOOKUP_KEY,
     .target = R_CLINIC},
    {.name = "doctor_ids", .type = FT_LINKS, .rel = REL_DOCTOR_CLINIC, .target = R_DOCTOR,
     .twin = "partner_doctor_ids"},
    {.name = "partner_doctor_ids", .type = FT_LINKS, .rel = REL_DOCTOR_CLINIC, .target = R_DOCTOR,
     .by_partner = true, .twin = "doctor_ids"},
};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static const struct resource RESOURCES[R_COUNT] = {
    [R_EKAUSER] = {.kind = R_EKAUSER, .path = "ekauser", .label = "EkaUser", .table = "ekauser",
                   .json_one = "user", .json_many = "users", .summary = {"firstname", "lastname"},
                   .fields = EKAUSER_FIELDS, .nfields = COUNT(EKAUSER_FIELDS),
                   .views = {{"doctors", REL_USER_DOCTOR, R_DOCTOR}, {"clinics", REL_USER_CLINIC, R_CLINIC}},
                   .nviews = 2, .link_mode = LINK_REPLACE},
    [R_DOCTOR] = {.kind = R_DOCTOR, .path = "doctor", .label = "Doctor", .table = "doctor",
                  .json_one = "doctor", .json_many = "doctors", .summary = {"firstname", "lastname"},
                  .fields = DOCTOR_FIELDS, .nfields = COUNT(DOCTOR_FIELDS),
                  .views = {{"clinics", REL_DOCTOR_CLINIC, R_CLINIC}}, .nviews = 1, .link_mode = LINK_ADD},
    [R_CLINIC] = {.kind = R_CLINIC, .path = "clinic", .label = "Clinic", .table = "clinic",
                  .json_one = "clinic", .json_many = "clinics", .summary = {"name"},
                  .fields = CLINIC_FIELDS, .nfields = COUNT(CLINIC_FIELDS),
                  .views = {{"doctors", REL_DOCTOR_CLINIC, R_DOCTOR}}, .nviews = 1, .link_mode = LINK_ADD},
};

_Static_assert(COUNT(EKAUSER_FIELDS) <= MAX_FIELDS, "raise MAX_FIELDS");
_Static_assert(COUNT(DOCTOR_FIELDS) <= MAX_FIELDS, "raise MAX_FIELDS");
_Static_assert(COUNT(CLINIC_FIELDS) <= MAX_FIELDS, "raise MAX_FIELDS");

const struct resource *resource_get(enum rkind kind) { return &RESOURCES[kind]; }

const struct relation *relation_get(enum rel rel) { return &RELATIONS[rel]; }

const struct resource *resource_by_path(const char *segment, size_t len)
{
    for (int i = 0; i < R_COUNT; i++)
        if (strlen(RESOURCES[i].path) == len && memcmp(RESOURCES[i].path, segment, len) == 0)
            return &RESOURCES[i];
    return NULL;
}

int field_index(const struct resource *r, const char *name)
{
    for (size_t i = 0; i < r->nfields; i++)
        if (strcmp(r->fields[i].name, name) == 0)
            return (int)i;
    return -1;
}
