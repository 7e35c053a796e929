/* The revoked clients and sessions every authenticated request is checked against: an
 * immutable snapshot behind an atomic pointer, reloaded from the store at most every
 * REVOCATION_PRELOAD_MS by one request while the others go on reading the current one.
 * Readers take no lock: old snapshots are freed once every reader that could see them
 * has left (two reader counters flipped by an epoch). A failed load backs off, and a
 * snapshot older than REVOCATION_REFRESH_MS is never used: the check then fails closed. */
#ifndef HIP_REVOCATION_H
#define HIP_REVOCATION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "util/arena.h"

/* A revocation is honoured by every process within this. */
#define REVOCATION_REFRESH_MS 2000
/* From this age one request reloads while the others use the snapshot. */
#define REVOCATION_PRELOAD_MS 1000
/* After a failed load, no other before this (doubling per failure, up to the maximum).
 * The maximum is also how long a process can go on refusing requests after its database
 * is back: one load a second per process while it is away costs the database nothing. */
#define REVOCATION_BACKOFF_MIN_MS 100
#define REVOCATION_BACKOFF_MAX_MS 1000

struct rev_snapshot;

/* Fetches the revoked client ids and session ids (any order) into the arena; false when
 * the store failed. */
typedef bool (*revocation_load_fn)(void *ctx, struct arena *a, const char ***clients, size_t *nclients,
                                   const char ***sessions, size_t *nsessions);

struct revocation_cache {
    _Atomic(struct rev_snapshot *) current;
    atomic_uint epoch;
    atomic_long readers[2];
    pthread_mutex_t publish; /* taken by loaders only, never by readers */
    atomic_bool loading;     /* one refresh ahead of expiry at a time */
    atomic_llong retry_at_ms;
    atomic_int failures;
    atomic_long loads; /* calls of the loader */
};

enum rev_verdict { REV_OK, REV_REVOKED, REV_UNAVAILABLE };

void revocation_init(struct revocation_cache *rc);
void revocation_free(struct revocation_cache *rc);
/* Is this client or session revoked? now_ms: a monotonic clock. REV_UNAVAILABLE (with
 * *retry_after in seconds) when no fresh enough snapshot can be had. */
enum rev_verdict revocation_check(struct revocation_cache *rc, const char *client_id, const char *sid, int64_t now_ms,
                                  revocation_load_fn load, void *ctx, int *retry_after);

#endif
