/* The connect-auth request bodies: the parse request_json() does, then the login and
 * refresh decoders. Input: the raw body. Invariants: a decoded body's strings are
 * non-empty, NUL-free and within CREDENTIAL_MAX; a rejected one names a member. */
#include "fuzz_common.h"

#include "auth/login_body.h"

static void check_string(const char *s, bool optional)
{
    if (!s) {
        FUZZ_CHECK(optional);
        return;
    }
    size_t n = strlen(s);
    FUZZ_CHECK(n > 0 && n <= CREDENTIAL_MAX);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    json_t *body = json_loadb((const char *)data, size, JSON_REJECT_DUPLICATES | JSON_ALLOW_NUL, NULL);
    if (!body)
        return 0;
    struct login_body login;
    const char *bad = login_body_decode(body, &login);
    if (bad) {
        FUZZ_CHECK(*bad);
    } else {
        check_string(login.client_id, false);
        check_string(login.client_secret, false);
        check_string(login.sharing_key, true);
    }
    struct refresh_body refresh;
    bad = refresh_body_decode(body, &refresh);
    if (bad) {
        FUZZ_CHECK(*bad);
    } else {
        check_string(refresh.refresh_token, false);
        check_string(refresh.access_token, true);
    }
    json_decref(body);
    return 0;
}
