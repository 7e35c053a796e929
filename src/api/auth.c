/* The business login of connect-auth: client credentials to an access token and a
 * refresh token; refresh with rotation and reuse detection. */
#include <string.h>
#include <time.h>

#include "api/api.h"
#include "auth/credentials.h"
#include "auth/login_body.h"
#include "util/log.h"

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

/* A fresh refresh token (the client's copy) and its digest (the store's). */
struct fresh_refresh {
    char token[2 * REFRESH_BYTES], digest[DIGEST_HEX];
};

static void fresh_refresh(struct fresh_refresh *f)
{
    random_b64(f->token, sizeof f->token, REFRESH_BYTES);
    token_digest(f->token, f->digest);
}

/* Answers an access token and the refresh token stored by the unit that just committed. */
static bool respond_tokens(struct app *app, struct request *rq, const char *b_id, const char *client_id,
                           const char *family, const struct fresh_refresh *f, long now, struct herr *e)
{
    char jti[33];
    random_hex(jti, sizeof jti, 16);
    char *access = token_sign(&app->keys, b_id, client_id, now, ACCESS_TTL, jti, ISSUER, family);
    if (!access)
        return fail(e, 500, "could not sign the token");
    respond_json(rq, 200,
                 json_pack("{s:s, s:i, s:s, s:I}", "access_token", access, "expires_in", ACCESS_TTL, "refresh_token",
                           f->token, "refresh_expires_in", (json_int_t)app->refresh_ttl));
    free(access);
    rq->tenant = arena_strdup(&rq->arena, b_id);
    return true;
}

/* What a login reads: the client, its business and the sharing key. */
struct login_check {
    const char *client_id, *key_digest; /* key_digest: NULL without a sharing key */
    struct client_row cl;
    bool found, business_ok, key_ok;
    const char *owner, *key_id;
};

static enum store_status login_check_fn(struct store_tx *tx, void *ctx)
{
    struct login_check *u = ctx;
    u->found = store_client_get(tx, u->client_id, &u->cl) == STORE_OK;
    u->business_ok = u->found && store_business_get(tx, u->cl.b_id, NULL) == STORE_OK;
    u->key_ok = !u->key_digest || store_sharing_key_owner(tx, u->key_digest, &u->owner, &u->key_id) == STORE_OK;
    return STORE_OK; /* a failed read fails the unit by itself */
}

/* 1: the credentials are good and *b_id is the token's tenant; 0: they are not (one
 * answer for every reason); -1: the store failed (e is set). */
static int check_client(struct app *app, struct request *rq, const char *client_id, const char *secret,
                        const char *sharing_key, const char **b_id, const char **key_id, struct herr *e)
{
    char digest[DIGEST_HEX];
    struct login_check lc = {.client_id = client_id};
    if (sharing_key) {
        token_digest(sharing_key, digest);
        lc.key_digest = digest;
    }
    struct store_unit u = {.fn = login_check_fn, .ctx = &lc, .arena = &rq->arena};
    if (!app_read(app, &u, e))
        return -1;
    /* The hash is checked whatever happened above so every failure costs the same. */
    bool secret_ok = secret_verify(lc.found ? lc.cl.secret_hash : NULL, secret);
    if (!secret_ok || !lc.found || lc.cl.revoked || !lc.business_ok || !lc.key_ok)
        return 0;
    *b_id = lc.owner ? lc.owner : lc.cl.b_id;
    *key_id = lc.key_id;
    return 1;
}

/* A login's writes: the session and its first refresh token, which lives `ttl` seconds
 * from the unit's time (the clock its other stored times come from). */
struct login_write {
    const char *family, *client_id, *b_id, *key_id, *digest;
    long ttl;
};

static enum store_status login_write_fn(struct store_tx *tx, void *ctx)
{
    struct login_write *u = ctx;
    enum store_status st = store_session_create(tx, u->family, u->client_id, u->b_id, u->key_id);
    return st == STORE_OK ? store_refresh_insert(tx, u->digest, u->family, store_now(tx) / 1000 + u->ttl) : st;
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
    struct throttle_attempt at;
    throttle_attempt_init(&app->throttle, &at, client_id, from);
    /* A store that cannot count the attempt refuses it (fail closed): its 503 and Retry-After. */
    struct store_unit tu = {.fn = throttle_begin_fn, .ctx = &at, .arena = &rq->arena};
    if (!app_write(app, &tu, e))
        return false;
    if (at.wait) {
        metrics_event(&app->metrics, ME_LOGIN_THROTTLED);
        e->retry_after = at.wait;
        return fail(e, 429, "too many failed login attempts; retry later");
    }
    int verdict = check_client(app, rq, client_id, secret, sharing_key, &b_id, &key_id, e);
    at.outcome = verdict > 0 ? ATTEMPT_OK : verdict == 0 ? ATTEMPT_FAILED : ATTEMPT_UNDECIDED;
    tu = (struct store_unit){.fn = throttle_end_fn, .ctx = &at, .arena = &rq->arena};
    struct herr end_err = {0};
    if (!app_write(app, &tu, &end_err)) /* the attempt stays in flight: it counts as a failure */
        log_line("warn", "login throttle: an attempt could not be ended; it counts until its window is over",
                 store_status_name(tu.status), 0);
    if (verdict <= 0) {
        if (verdict == 0) {
            metrics_event(&app->metrics, ME_LOGIN_FAILURE);
            fail(e, 401, "invalid client credentials");
        }
        return false;
    }
    char family[33];
    random_hex(family, sizeof family, 16);
    struct fresh_refresh f;
    fresh_refresh(&f);
    struct login_write lw = {.family = family, .client_id = client_id, .b_id = b_id, .key_id = key_id,
                             .digest = f.digest, .ttl = app->refresh_ttl};
    struct store_unit u = {.fn = login_write_fn, .ctx = &lw, .arena = &rq->arena};
    if (!app_write(app, &u, e) || !respond_tokens(app, rq, b_id, client_id, family, &f, now, e))
        return false;
    metrics_event(&app->metrics, ME_LOGIN_SUCCESS);
    return true;
}

/* A refresh refused with 401 (a reuse is counted apart). */
static bool refresh_refused(struct app *app, struct herr *e, const char *why)
{
    metrics_event(&app->metrics, ME_REFRESH_FAILURE);
    return fail(e, 401, why);
}

/* A refresh: take the presented token, check it belongs with the rest, store the next. */
struct refresh_unit {
    const char *digest, *client_hdr, *access;
    const struct principal *prev;
    long grace, ttl; /* grace: --refresh-reuse-grace seconds; ttl: --refresh-ttl */
    const char *next_digest;
    struct herr *e;
    struct session_row s;
    bool reuse;
};

static enum store_status refresh_fn(struct store_tx *tx, void *ctx)
{
    struct refresh_unit *u = ctx;
    *u->e = (struct herr){0};
    u->reuse = false;
    /* the time of this unit: the same clock the token's first use was stored with */
    int64_t now = store_now(tx) / 1000;
    enum store_status st = store_refresh_take(tx, u->digest, &u->s);
    const char *why = NULL;
    if (st == STORE_NOT_FOUND) {
        why = "invalid refresh token";
    } else if (st != STORE_OK) {
        return st;
    } else if (u->s.used && !(u->grace > 0 && now - u->s.used_at <= u->grace)) {
        /* Reuse of a rotated token: someone holds a stolen copy. End the whole session.
         * (A retry (lost answer) or a concurrent refresh of the same token soon after its
         * first use gets a pair of its own in the same session, so a later reuse still ends
         * them all.) */
        u->reuse = true;
        return u->s.revoked ? STORE_OK : store_session_revoke(tx, u->s.family);
    } else if (u->s.revoked) {
        why = "the session has been revoked";
    } else if (u->s.expires_at <= now) {
        why = "refresh token has expired";
    } else if ((u->client_hdr && strcmp(u->client_hdr, u->s.client_id) != 0) ||
               (u->access &&
                (strcmp(u->prev->client_id, u->s.client_id) != 0 || strcmp(u->prev->sid, u->s.family) != 0))) {
        why = "the tokens do not belong together";
    } else {
        struct client_row cl = {0};
        st = store_client_get(tx, u->s.client_id, &cl);
        if (st != STORE_OK && st != STORE_NOT_FOUND)
            return st;
        if (st == STORE_NOT_FOUND || cl.revoked)
            why = "invalid client credentials";
    }
    if (why) {
        fail(u->e, 401, why);
        return STORE_ABORT;
    }
    return store_refresh_insert(tx, u->next_digest, u->s.family, now + u->ttl);
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
            return refresh_refused(app, e, "Authorization: Bearer <access token> and Client-Id headers are required");
    }
    /* The access token may have expired, but it must be ours and of the same client. */
    if (access && token_verify_ex(&app->keys, access, now, true, &prev))
        return refresh_refused(app, e, "invalid access token");
    char digest[DIGEST_HEX];
    token_digest(refresh, digest);
    struct fresh_refresh f;
    fresh_refresh(&f);
    struct refresh_unit ru = {.digest = digest, .client_hdr = client_hdr, .access = access, .prev = &prev,
                              .grace = app->refresh_grace, .ttl = app->refresh_ttl, .next_digest = f.digest};
    ru.e = e;
    struct store_unit u = {.fn = refresh_fn, .ctx = &ru, .arena = &rq->arena};
    if (!app_write(app, &u, e)) {
        if (u.status == STORE_ABORT) /* refused by the unit: its 401 is in e */
            metrics_event(&app->metrics, ME_REFRESH_FAILURE);
        return false;
    }
    if (ru.reuse) {
        metrics_event(&app->metrics, ME_REFRESH_REUSE);
        return fail(e, 401, "refresh token reuse detected; the session is revoked");
    }
    if (!respond_tokens(app, rq, ru.s.b_id, ru.s.client_id, ru.s.family, &f, now, e))
        return false;
    metrics_event(&app->metrics, ME_REFRESH_SUCCESS);
    return true;
}

struct business_unit {
    const char *b_id, *name;
    struct herr *e;
};

static enum store_status business_fn(struct store_tx *tx, void *ctx)
{
    struct business_unit *u = ctx;
    enum store_status st = store_business_get(tx, u->b_id, &u->name);
    if (st == STORE_NOT_FOUND)
        herr_set(u->e, 404, "Business not found.");
    return st;
}

bool business_info(struct app *app, struct request *rq, const char *tenant, struct herr *e)
{
    struct business_unit bu = {.b_id = tenant, .e = e};
    struct store_unit u = {.fn = business_fn, .ctx = &bu, .arena = &rq->arena};
    if (!app_read(app, &u, e))
        return false;
    respond_json(rq, 200,
                 json_pack("{s:s, s:s, s:s}", "status", "success", "bid", tenant, "business_name", bu.name));
    return true;
}
