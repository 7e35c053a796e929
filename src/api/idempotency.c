#include "api/idempotency.h"

#include <sodium.h>
#include <stdlib.h>
#include <string.h>

#include "util/log.h"

#define BUSY_MESSAGE "A request with this Idempotency-Key is still being processed; retry shortly."

bool idem_key_valid(const char *key)
{
    size_t n = strlen(key);
    if (n < 1 || n > IDEM_KEY_MAX)
        return false;
    for (size_t i = 0; i < n; i++)
        if ((unsigned char)key[i] < 0x21 || (unsigned char)key[i] > 0x7e)
            return false;
    return true;
}

bool idem_read(struct request *rq, struct idem *id, struct herr *e)
{
    memset(id, 0, sizeof *id);
    /* every line of the header, joined: two keys read as one with ", " inside, which no key has */
    const char *key = http_header_joined(rq, "Idempotency-Key");
    if (!key)
        return true;
    /* spaces and tabs around a field value are not part of it (RFC 9110 5.5) */
    while (*key == ' ' || *key == '\t')
        key++;
    size_t n = strlen(key);
    while (n > 0 && (key[n - 1] == ' ' || key[n - 1] == '\t'))
        n--;
    key = arena_strndup(&rq->arena, key, n);
    if (!idem_key_valid(key)) {
        herr_set(e, 400, "Idempotency-Key must be 1 to 255 visible ASCII characters (no spaces), sent once.");
        return false;
    }
    id->key = key;
    return true;
}

/* Method, path and the body as canonical JSON (keys sorted, no spaces): the same request
 * sent again with its keys in another order or spaced otherwise is still the same. */
static const char *request_hash(struct arena *a, const char *path, json_t *body)
{
    char *canon = json_dumps(body, JSON_COMPACT | JSON_SORT_KEYS | JSON_ENCODE_ANY);
    if (!canon)
        return NULL;
    crypto_hash_sha256_state st;
    unsigned char h[crypto_hash_sha256_BYTES];
    crypto_hash_sha256_init(&st);
    crypto_hash_sha256_update(&st, (const unsigned char *)"POST ", 5);
    crypto_hash_sha256_update(&st, (const unsigned char *)path, strlen(path));
    crypto_hash_sha256_update(&st, (const unsigned char *)"\n", 1);
    crypto_hash_sha256_update(&st, (const unsigned char *)canon, strlen(canon));
    crypto_hash_sha256_final(&st, h);
    free(canon);
    char *hex = arena_alloc(a, sizeof h * 2 + 1);
    sodium_bin2hex(hex, sizeof h * 2 + 1, h, sizeof h);
    return hex;
}

enum claim_verdict { CLAIMED, REPLAY, OTHER_REQUEST, RUNNING };

struct claim_unit {
    const char *tenant;
    struct idem *id;
    enum claim_verdict verdict;
    struct idem_record found;
};

static enum store_status claim_fn(struct store_tx *tx, void *ctx)
{
    struct claim_unit *u = ctx;
    u->verdict = RUNNING; /* a unit may run again: start from the inputs */
    int64_t now = store_now(tx);
    enum store_status st = store_idem_purge(tx, u->tenant, now - IDEM_TTL_MS, IDEM_PURGE_BATCH, NULL);
    if (st != STORE_OK)
        return st;
    const struct idem_record *replaces = NULL;
    st = store_idem_get(tx, u->tenant, u->id->key, &u->found);
    if (st == STORE_OK) {
        if (u->found.created_ms <= now - IDEM_TTL_MS) {
            replaces = &u->found; /* expired, not purged yet: a new key */
        } else if (strcmp(u->found.request_hash, u->id->hash) != 0) {
            u->verdict = OTHER_REQUEST;
            return STORE_OK; /* the purge commits; nothing else was written */
        } else if (u->found.done) {
            u->verdict = REPLAY;
            return STORE_OK;
        } else if (u->found.lease_until_ms > now) {
            u->verdict = RUNNING;
            return STORE_OK;
        } else {
            replaces = &u->found; /* its holder stopped before answering: take it over */
        }
    } else if (st != STORE_NOT_FOUND) {
        return st;
    }
    struct idem_record rec = {
        .request_hash = u->id->hash, .holder = u->id->holder, .created_ms = now, .lease_until_ms = now + IDEM_LEASE_MS};
    st = store_idem_claim(tx, u->tenant, u->id->key, replaces, &rec);
    if (st == STORE_OK)
        u->verdict = CLAIMED;
    return st;
}

enum idem_outcome idem_begin(struct app *app, struct request *rq, const char *tenant, const char *path, json_t *body,
                             struct idem *id, struct herr *e)
{
    id->hash = request_hash(&rq->arena, path, body);
    if (!id->hash) {
        herr_set(e, 503, "The server is out of memory; retry shortly.");
        return IDEM_REFUSED;
    }
    unsigned char rnd[16];
    randombytes_buf(rnd, sizeof rnd);
    sodium_bin2hex(id->holder, sizeof id->holder, rnd, sizeof rnd);
    struct claim_unit cu = {.tenant = tenant, .id = id};
    struct store_unit u = {.fn = claim_fn, .ctx = &cu, .arena = &rq->arena};
    if (!app_write(app, &u, e)) {
        if (u.status == STORE_CONFLICT) { /* another server claimed it between our read and write */
            *e = (struct herr){0};
            herr_set(e, 409, BUSY_MESSAGE);
            e->retry_after = 1;
        }
        return IDEM_REFUSED;
    }
    switch (cu.verdict) {
    case CLAIMED:
        id->claimed = true;
        return IDEM_RUN;
    case REPLAY:
        respond_json_text(rq, cu.found.status, cu.found.body ? cu.found.body : "{}");
        respond_header(rq, "Idempotent-Replayed", "true");
        return IDEM_ANSWERED;
    case OTHER_REQUEST:
        herr_set(e, 422, "Idempotency-Key reused with a different request");
        return IDEM_REFUSED;
    case RUNNING:
    default:
        herr_set(e, 409, BUSY_MESSAGE);
        e->retry_after = 1;
        return IDEM_REFUSED;
    }
}

enum store_status idem_store_answer(struct store_tx *tx, const char *tenant, const struct idem *id, int status,
                                    const char *body, struct herr *e)
{
    enum store_status st = store_idem_finish(tx, tenant, id->key, id->holder, status, body);
    if (st == STORE_NOT_FOUND) {
        /* our lease ended and another request took the key over: it creates, we must not */
        herr_set(e, 409, BUSY_MESSAGE);
        e->retry_after = 1;
        return STORE_ABORT;
    }
    return st;
}

struct release_unit {
    const char *tenant;
    const struct idem *id;
};

static enum store_status release_fn(struct store_tx *tx, void *ctx)
{
    struct release_unit *u = ctx;
    enum store_status st = store_idem_release(tx, u->tenant, u->id->key, u->id->holder);
    return st == STORE_NOT_FOUND ? STORE_OK : st;
}

void idem_release(struct app *app, struct request *rq, const char *tenant, struct idem *id)
{
    if (!id->claimed)
        return;
    struct release_unit ru = {.tenant = tenant, .id = id};
    struct store_unit u = {.fn = release_fn, .ctx = &ru, .arena = &rq->arena};
    struct herr ignored = {0};
    if (!app_write(app, &u, &ignored))
        log_line("warn", "an Idempotency-Key claim could not be released; it ends with its lease",
                 store_status_name(u.status), 0);
    id->claimed = false;
}
