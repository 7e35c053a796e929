/* Login throttle. Failures are counted per client id and source address together:
 * THROTTLE_MAX of them within a window and that client id gets 429 from that address
 * until the window ends, whatever it sends, while the same client id from elsewhere
 * goes on (someone who has seen a client id cannot lock its integrator out). An address
 * is also held to THROTTLE_ADDR_MAX failures per window over all client ids together.
 *
 * The counters live in the store (store_throttle_begin / store_throttle_end), so every
 * server of one database counts the same failures, and a restart forgets none. They are
 * named by a keyed hash of the client id and address, never the values themselves; the
 * hashing key comes from the signing secret, which every server of a deployment shares. */
#ifndef HIP_THROTTLE_H
#define HIP_THROTTLE_H

#include <stdbool.h>
#include <stddef.h>

#include "store/store.h"

#define THROTTLE_MAX 10
#define THROTTLE_ADDR_MAX 50
#define THROTTLE_WINDOW 60
#define THROTTLE_KEY_HEX 33 /* a counter's key: 16 bytes of keyed hash in hex, and the NUL */

struct throttle {
    unsigned char hash_key[32];
};

/* The hashing key, derived from the signing secret (the key that signs: a rotation starts
 * the counts afresh). Needs libsodium initialised. */
void throttle_init(struct throttle *t, const unsigned char *secret, size_t len);

enum attempt { ATTEMPT_OK, ATTEMPT_FAILED, ATTEMPT_UNDECIDED /* the store failed: counts neither way */ };

/* One login attempt: its two counters, and what became of it. */
struct throttle_attempt {
    char pair[THROTTLE_KEY_HEX]; /* the client id at that address */
    char addr[THROTTLE_KEY_HEX]; /* the address, over all client ids */
    int wait;                    /* throttle_begin_fn's answer */
    enum attempt outcome;        /* throttle_end_fn's question */
};

/* The counters of client_id from addr (either may be ""). */
void throttle_attempt_init(const struct throttle *t, struct throttle_attempt *at, const char *client_id,
                           const char *addr);

/* A write unit's function (ctx: the attempt) that reserves the attempt: at->wait is 0 when it
 * may try, else the seconds until it may (Retry-After). Attempts in flight count as failures
 * until they end, on every server, so parallel guesses cannot slip past the limit. Every
 * reservation (wait 0) is followed by a unit of throttle_end_fn. */
enum store_status throttle_begin_fn(struct store_tx *tx, void *ctx);
/* A write unit's function that ends the reserved attempt with at->outcome. A success clears
 * the client id's count at that address, not the address's own count: one good credential
 * must not launder guesses at other client ids. */
enum store_status throttle_end_fn(struct store_tx *tx, void *ctx);

#endif
