#include "auth/login_body.h"

#include <string.h>

/* A member that is absent or null, or a non-empty string without NUL of bounded size. */
static bool member(json_t *body, const char *name, bool required, const char **out)
{
    json_t *v = json_object_get(body, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return !required;
    size_t n = json_string_length(v);
    if (!json_is_string(v) || n == 0 || n > CREDENTIAL_MAX || strlen(json_string_value(v)) != n)
        return false;
    *out = json_string_value(v);
    return true;
}

const char *login_body_decode(json_t *body, struct login_body *out)
{
    if (!json_is_object(body))
        return "body";
    if (!member(body, "client_id", true, &out->client_id))
        return "client_id";
    if (!member(body, "client_secret", true, &out->client_secret))
        return "client_secret";
    if (!member(body, "sharing_key", false, &out->sharing_key))
        return "sharing_key";
    return NULL;
}

const char *refresh_body_decode(json_t *body, struct refresh_body *out)
{
    if (!json_is_object(body))
        return "body";
    if (!member(body, "refresh_token", true, &out->refresh_token))
        return "refresh_token";
    if (!member(body, "access_token", false, &out->access_token))
        return "access_token";
    return NULL;
}
