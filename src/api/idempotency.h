/* Idempotency-Key on creates (issue 10): the first request with a key runs; a repeat with
 * the same key and request within IDEM_TTL_MS replays the stored answer. The key's record
 * lives in the store, so every server on the database sees it:
 *   1. claim: a short write unit reads the key and claims it (running, with a lease);
 *   2. the create's own unit stores the answer (done) with the record, so a create never
 *      commits without its answer and an answer never exists without its create;
 *   3. a create that changed nothing (any error) releases the claim: its retry runs again.
 * A claim whose holder died (crash between 1 and 2) blocks retries with 409 until its
 * lease ends, then the next retry takes it over; the holder's unit checks its claim is
 * still its own before it commits, so a takeover can never make a second record. */
#ifndef HIP_IDEMPOTENCY_H
#define HIP_IDEMPOTENCY_H

#include <stdbool.h>

#include "api/app.h"

#define IDEM_KEY_MAX 255
#define IDEM_TTL_MS (24LL * 3600 * 1000)
#define IDEM_LEASE_MS (10LL * 1000)
/* Expired keys of the tenant deleted by each claim (so purging keeps pace with claiming). */
#define IDEM_PURGE_BATCH 16

struct idem {
    const char *key;  /* NULL: the request has no Idempotency-Key */
    const char *hash; /* hex SHA-256 of the request: method, path, canonical JSON body */
    char holder[33];  /* this request's claim */
    bool claimed;
};

/* 1 to 255 visible ASCII characters (0x21..0x7E). */
bool idem_key_valid(const char *key);

/* Reads Idempotency-Key; false with a 400 in e when it is malformed or sent twice. */
bool idem_read(struct request *rq, struct idem *id, struct herr *e);

enum idem_outcome {
    IDEM_RUN,      /* claimed: run the create, store its answer in its unit */
    IDEM_ANSWERED, /* a replay is in rq->resp */
    IDEM_REFUSED,  /* e holds the answer: 422 other request, 409 still running, storage errors */
};

/* Claims the key for the request to POST `path` with `body` (already validated). */
enum idem_outcome idem_begin(struct app *app, struct request *rq, const char *tenant, const char *path, json_t *body,
                             struct idem *id, struct herr *e);
/* Inside the create's unit: stores its answer. STORE_ABORT with a 409 in e when the claim
 * was taken over (this unit then commits nothing). */
enum store_status idem_store_answer(struct store_tx *tx, const char *tenant, const struct idem *id, int status,
                                    const char *body, struct herr *e);
/* After a create that failed: frees the claim so a retry runs afresh (best effort: a claim
 * left behind ends with its lease). */
void idem_release(struct app *app, struct request *rq, const char *tenant, struct idem *id);

#endif
