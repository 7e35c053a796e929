/* The connect-auth request bodies, decoded by pure functions (unit-tested and fuzzed). */
#ifndef HIP_LOGIN_BODY_H
#define HIP_LOGIN_BODY_H

#include <jansson.h>
#include <stdbool.h>

#define CREDENTIAL_MAX 512

struct login_body {
    const char *client_id, *client_secret, *sharing_key; /* sharing_key may be NULL */
};

struct refresh_body {
    const char *refresh_token, *access_token; /* access_token may be NULL */
};

/* NULL when valid, else the name of the member at fault. Strings point into body. */
const char *login_body_decode(json_t *body, struct login_body *out);
const char *refresh_body_decode(json_t *body, struct refresh_body *out);

#endif
