#include "auth/throttle.h"

#include <sodium.h>
#include <string.h>

void throttle_init(struct throttle *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
    randombytes_buf(t->hash_key, sizeof t->hash_key);
}

/* The slot key of (client id, address), or of the address alone when client_id is NULL. */
static void key_of(const struct throttle *t, const char *client_id, const char *addr, unsigned char out[16])
{
    crypto_generichash_state st;
    crypto_generichash_init(&st, t->hash_key, sizeof t->hash_key, 16);
    unsigned char kind = client_id ? 'c' : 'a';
    crypto_generichash_update(&st, &kind, 1);
    crypto_generichash_update(&st, (const unsigned char *)addr, strlen(addr) + 1);
    if (client_id)
        crypto_generichash_update(&st, (const unsigned char *)client_id, strlen(client_id));
    crypto_generichash_final(&st, out, 16);
}

static bool expired(const struct throttle_slot *s, long now)
{
    return !s->used || now - s->window_start >= THROTTLE_WINDOW;
}

/* Open addressing over 8 probes. A new key takes an empty or expired slot, else the
 * stalest slot that is not locking anyone out and has no attempt in flight: a slot at
 * its limit is never evicted (an attacker must not free their own lock by filling its
 * neighbourhood). NULL: no room. */
static struct throttle_slot *find(struct throttle *t, const unsigned char key[16], int limit, long now, bool create)
{
    unsigned h;
    memcpy(&h, key, sizeof h);
    struct throttle_slot *victim = NULL;
    bool victim_free = false;
    for (unsigned i = 0; i < 8; i++) {
        struct throttle_slot *s = &t->slots[(h + i) % THROTTLE_SLOTS];
        if (s->used && memcmp(s->key, key, 16) == 0)
            return s;
        bool free_slot = expired(s, now);
        bool locking = !free_slot && s->failures + s->pending >= s->limit;
        if (victim_free || locking || s->pending)
            continue;
        if (free_slot || !victim || s->window_start < victim->window_start) {
            victim = s;
            victim_free = free_slot;
        }
    }
    if (!create || !victim)
        return NULL;
    memset(victim, 0, sizeof *victim);
    memcpy(victim->key, key, 16);
    victim->used = true;
    victim->limit = limit;
    victim->window_start = now;
    return victim;
}

/* Seconds until s may try again, 0 now; a window that has ended starts afresh. */
static int wait_of(struct throttle_slot *s, long now)
{
    if (now - s->window_start >= THROTTLE_WINDOW) {
        s->window_start = now;
        s->failures = 0;
    }
    if (s->failures + s->pending < s->limit)
        return 0;
    int wait = (int)(s->window_start + THROTTLE_WINDOW - now);
    return wait > 0 ? wait : 1;
}

int throttle_begin(struct throttle *t, const char *client_id, const char *addr, long now)
{
    unsigned char kp[16], ka[16];
    key_of(t, client_id, addr, kp);
    key_of(t, NULL, addr, ka);
    pthread_mutex_lock(&t->mu);
    int wait = THROTTLE_WINDOW; /* every slot nearby is busy or locking: make this one wait too */
    struct throttle_slot *pair = find(t, kp, THROTTLE_MAX, now, true);
    if (pair) {
        int wp = wait_of(pair, now);
        pair->pending++; /* holds the slot while the address's is looked up */
        struct throttle_slot *a = find(t, ka, THROTTLE_ADDR_MAX, now, true);
        if (a) {
            int wa = wait_of(a, now);
            wait = wp > wa ? wp : wa;
            if (!wait)
                a->pending++;
        }
        if (wait)
            pair->pending--;
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

static void settle(struct throttle_slot *s, enum attempt outcome, bool clear_on_success)
{
    if (!s)
        return;
    if (s->pending > 0)
        s->pending--;
    if (outcome == ATTEMPT_FAILED)
        s->failures++;
    else if (outcome == ATTEMPT_OK && clear_on_success)
        s->failures = 0;
}

void throttle_end(struct throttle *t, const char *client_id, const char *addr, enum attempt outcome, long now)
{
    unsigned char kp[16], ka[16];
    key_of(t, client_id, addr, kp);
    key_of(t, NULL, addr, ka);
    pthread_mutex_lock(&t->mu);
    settle(find(t, kp, THROTTLE_MAX, now, false), outcome, true);
    settle(find(t, ka, THROTTLE_ADDR_MAX, now, false), outcome, false);
    pthread_mutex_unlock(&t->mu);
}
