/* Login throttle. Failures are counted per client id and source address together:
 * THROTTLE_MAX of them within a window and that client id gets 429 from that address
 * until the window ends, whatever it sends, while the same client id from elsewhere
 * goes on (someone who has seen a client id cannot lock its integrator out). An address
 * is also held to THROTTLE_ADDR_MAX failures per window over all client ids together.
 * In memory, per process. */
#ifndef HIP_THROTTLE_H
#define HIP_THROTTLE_H

#include <pthread.h>
#include <stdbool.h>

#define THROTTLE_SLOTS 8192
#define THROTTLE_MAX 10
#define THROTTLE_ADDR_MAX 50
#define THROTTLE_WINDOW 60

struct throttle_slot {
    unsigned char key[16]; /* keyed hash of the whole key: long keys never share a slot */
    bool used;
    int limit; /* THROTTLE_MAX (client id + address) or THROTTLE_ADDR_MAX (address) */
    long window_start;
    int failures;
    int pending; /* attempts being checked right now: each may become a failure */
};

struct throttle {
    pthread_mutex_t mu;
    unsigned char hash_key[32]; /* random per process, so slots cannot be aimed at */
    struct throttle_slot slots[THROTTLE_SLOTS];
};

/* Needs libsodium initialised. */
void throttle_init(struct throttle *t);
/* Reserves an attempt of client_id from addr (either may be ""): 0 when it may try,
 * else the seconds until it may (Retry-After). Attempts in flight count as failures
 * until they end, so parallel guesses cannot slip past the limit. Every 0 must be
 * followed by one throttle_end with the same client_id and addr. */
int throttle_begin(struct throttle *t, const char *client_id, const char *addr, long now);
enum attempt { ATTEMPT_OK, ATTEMPT_FAILED, ATTEMPT_UNDECIDED /* the store failed: counts neither way */ };
/* A success clears the client id's count at that address, not the address's own
 * count: one good credential must not launder guesses at other client ids. */
void throttle_end(struct throttle *t, const char *client_id, const char *addr, enum attempt outcome, long now);

#endif
