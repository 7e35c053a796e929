/* The business login of connect-auth: client credentials to an access token and a
 * refresh token; refresh with rotation and reuse detection. */
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "auth/credentials.h"
#include "auth/login_body.h"

#define REFRESH_BYTES 32
#define ISSUER "hipusers"

static bool fail(struct herr *e, int status, const char *why)
{
    herr_set(e, status, why);
    return false;
}

static bool bad_member(struct request *rq, const char *name, struct herr *e)
{
    if (strcmp(name, "body") == 0)
        return fail(e, 400, "Request body must be a JSON object.");
    return fail(e, 400, arena_printf(&rq->arena, "%s: a non-empty string is required", name));
}

/* Issues an access token and a fresh refresh token of the session `family`. */
static bool issue(struct app *app, struct request *rq, struct store_conn *c, const char *b_id, const char *client_id,
                  const char *family, struct herr *e)
{
    long now = (long)time(NULL);
    char refresh[2 * REFRESH_BYTES], digest[DIGEST_HEX], jti[33];
    random_b64(refresh, sizeof refresh, REFRESH_BYTES);
    token_digest(refresh, digest);
    random_hex(jti, sizeof jti, 16);
    if (!c->auth->refresh_insert(c, digest, family, now + app->refresh_ttl, now, e) || !c->ops->commit(c, e))
        return false;
    char *access = token_sign(&app->keys, b_id, client_id, now, ACCESS_TTL, jti, ISSUER, family);
    if (!access)
        return fail(e, 500, "could not sign the token");
    respond_json(rq, 200,
                 json_pack("{s:s, s:i, s:s, s:I}", "access_token", access, "expires_in", ACCESS_TTL, "refresh_token",
                           refresh, "refresh_expires_in", (json_int_t)app->refresh_ttl));
    free(access);
    return true;
}

/* 1: the credentials are good and *b_id is the token's tenant; 0: they are not (one
 * answer for every reason); -1: the store failed (e is set). */
static int check_client(struct app *app, struct request *rq, const char *client_id, const char *secret,
                        const char *sharing_key, const char **b_id, const char **key_id, struct herr *e)
{
    struct store_conn *c = app_store(app, e);
    struct client_row cl = {0};
    if (!c || !c->ops->begin(c, false, e))
        return -1;
    enum find_result fr = c->auth->client_get(c, client_id, &rq->arena, &cl, e);
    bool business_ok = fr == FIND_OK && c->auth->business_get(c, cl.b_id, &rq->arena, NULL, e) == FIND_OK;
    const char *owner = NULL;
    bool key_ok = true;
    if (sharing_key) {
        char digest[DIGEST_HEX];
        token_digest(sharing_key, digest);
        key_ok = c->auth->sharing_key_owner(c, digest, &rq->arena, &owner, key_id, e) == FIND_OK;
    }
    c->ops->rollback(c);
    if (e->status)
        return -1;
    /* The hash is checked whatever happened above so every failure costs the same. */
    bool secret_ok = secret_verify(fr == FIND_OK ? cl.secret_hash : NULL, secret);
    if (!secret_ok || fr != FIND_OK || cl.revoked || !business_ok || !key_ok)
        return 0;
    *b_id = owner ? owner : cl.b_id;
    return 1;
}

bool auth_login(struct app *app, struct request *rq, struct herr *e)
{
    json_t *body = request_json(rq, e);
    struct login_body in;
    const char *b_id = NULL, *key_id = NULL, *bad;
    if (!body)
        return false;
    if ((bad = login_body_decode(body, &in)))
        return bad_member(rq, bad, e);
    const char *client_id = in.client_id, *secret = in.client_secret, *sharing_key = in.sharing_key;
    long now = (long)time(NULL);
    char addr[ADDR_TEXT_MAX], from[ADDR_TEXT_MAX];
    client_address(&app->proxies, rq->client_addr, app->proxies.n ? http_header_joined(rq, "X-Forwarded-For") : NULL,
                   addr, sizeof addr);
    addr_throttle_key(addr, from, sizeof from);
    int wait = throttle_begin(&app->throttle, client_id, from, now);
    if (wait) {
        e->retry_after = wait;
        return fail(e, 429, "too many failed login attempts; retry later");
    }
    int verdict = check_client(app, rq, client_id, secret, sharing_key, &b_id, &key_id, e);
    throttle_end(&app->throttle, client_id, from,
                 verdict > 0 ? ATTEMPT_OK : verdict == 0 ? ATTEMPT_FAILED : ATTEMPT_UNDECIDED, now);
    if (verdict <= 0) {
        if (verdict == 0)
            fail(e, 401, "invalid client credentials");
        return false;
    }
    struct store_conn *c = app_store(app, e);
    char family[33];
    random_hex(family, sizeof family, 16);
    if (!c || !c->ops->begin(c, true, e))
        return false;
    if (!c->auth->session_create(c, family, client_id, b_id, key_id, now, e) ||
        !issue(app, rq, c, b_id, client_id, family, e)) {
        c->ops->rollback(c);
        return false;
    }
    rq->tenant = arena_strdup(&rq->arena, b_id);
    return true;
}

/* with_headers: the current endpoint, which names the access token and client in headers;
 * the deprecated one takes the body alone. */
bool auth_refresh(struct app *app, struct request *rq, bool with_headers, struct herr *e)
{
    json_t *body = request_json(rq, e);
    struct refresh_body in;
    const char *bad;
    if (!body)
        return false;
    if ((bad = refresh_body_decode(body, &in)))
        return bad_member(rq, bad, e);
    const char *refresh = in.refresh_token, *access_body = in.access_token;
    long now = (long)time(NULL);
    const char *client_hdr = NULL;
    struct principal prev = {0};
    const char *access = access_body;
    if (with_headers) {
        access = authorization_bearer(rq);
        client_hdr = http_header(rq, "Client-Id");
        if (!access || !client_hdr)
            return fail(e, 401, "Authorization: Bearer <access token> and Client-Id headers are required");
    }
    /* The access token may have expired, but it must be ours and of the same client. */
    if (access && token_verify_ex(&app->keys, access, now, true, &prev))
        return fail(e, 401, "invalid access token");
    char digest[DIGEST_HEX];
    token_digest(refresh, digest);
    struct store_conn *c = app_store(app, e);
    struct session_row s = {0};
    if (!c || !c->ops->begin(c, true, e))
        return false;
    enum find_result fr = c->auth->refresh_take(c, digest, now, &rq->arena, &s, e);
    const char *why = NULL;
    if (fr == FIND_ERROR) {
        c->ops->rollback(c);
        return false;
    }
    /* A retry (lost answer) or a concurrent refresh of the same token soon after its first
     * use gets a pair of its own in the same session, so a later reuse still ends them all. */
    bool retry = fr == FIND_OK && s.used && app->refresh_grace > 0 && now - s.used_at <= app->refresh_grace;
    if (fr == FIND_MISSING) {
        why = "invalid refresh token";
    } else if (s.used && !retry) {
        /* Reuse of a rotated token: someone holds a stolen copy. End the whole session. */
        if (!s.revoked && (!c->auth->session_revoke(c, s.family, now, e) || !c->ops->commit(c, e))) {
            c->ops->rollback(c);
            return false;
        }
        c->ops->rollback(c);
        return fail(e, 401, "refresh token reuse detected; the session is revoked");
    } else if (s.revoked) {
        why = "the session has been revoked";
    } else if (s.expires_at <= now) {
        why = "refresh token has expired";
    } else if ((client_hdr && strcmp(client_hdr, s.client_id) != 0) ||
               (access && (strcmp(prev.client_id, s.client_id) != 0 || strcmp(prev.sid, s.family) != 0))) {
        why = "the tokens do not belong together";
    } else {
        struct client_row cl = {0};
        enum find_result cr = c->auth->client_get(c, s.client_id, &rq->arena, &cl, e);
        if (cr == FIND_ERROR) {
            c->ops->rollback(c);
            return false;
        }
        if (cr != FIND_OK || cl.revoked)
            why = "invalid client credentials";
    }
    if (why) {
        c->ops->rollback(c);
        return fail(e, 401, why);
    }
    if (!issue(app, rq, c, s.b_id, s.client_id, s.family, e)) {
        c->ops->rollback(c);
        return false;
    }
    rq->tenant = arena_strdup(&rq->arena, s.b_id);
    return true;
}

bool business_info(struct app *app, struct request *rq, const char *tenant, struct herr *e)
{
    struct store_conn *c = app_store(app, e);
    const char *name = NULL;
    if (!c || !c->ops->begin(c, false, e))
        return false;
    enum find_result fr = c->auth->business_get(c, tenant, &rq->arena, &name, e);
    c->ops->rollback(c);
    if (fr == FIND_ERROR)
        return false;
    if (fr == FIND_MISSING) {
        herr_set(e, 404, "Business not found.");
        return false;
    }
    respond_json(rq, 200, json_pack("{s:s, s:s, s:s}", "status", "success", "bid", tenant, "business_name", name));
    return true;
}
