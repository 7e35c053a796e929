/* Login throttle: more than THROTTLE_MAX failures for one client id within a window
 * and that id gets 429 until the window ends, whatever it sends. In memory, per process. */
#ifndef HIP_THROTTLE_H
#define HIP_THROTTLE_H

#include <pthread.h>
#include <stdbool.h>

#define THROTTLE_SLOTS 4096
#define THROTTLE_MAX 10
#define THROTTLE_WINDOW 60

struct throttle_slot {
    char key[65];
    long window_start;
    int failures;
    int pending; /* attempts being checked right now: each may become a failure */
};

struct throttle {
    pthread_mutex_t mu;
    struct throttle_slot slots[THROTTLE_SLOTS];
};

void throttle_init(struct throttle *t);
/* Reserves an attempt: 0 when key may try, else the seconds until it may (Retry-After).
 * Attempts in flight count as failures until they end, so parallel guesses cannot
 * slip past the limit. Every 0 must be followed by one throttle_end. */
int throttle_begin(struct throttle *t, const char *key, long now);
enum attempt { ATTEMPT_OK, ATTEMPT_FAILED, ATTEMPT_UNDECIDED /* the store failed: counts neither way */ };
void throttle_end(struct throttle *t, const char *key, enum attempt outcome, long now);

#endif
