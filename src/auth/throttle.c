#include "auth/throttle.h"

#include <string.h>

void throttle_init(struct throttle *t)
{
    memset(t, 0, sizeof *t);
    pthread_mutex_init(&t->mu, NULL);
}

/* Long keys are truncated: an attacker gains nothing, they only share a slot with themselves. */
static unsigned slot_of(const char *key)
{
    unsigned h = 2166136261u;
    for (int i = 0; key[i] && i < 64; i++)
        h = (h ^ (unsigned char)key[i]) * 16777619u;
    return h % THROTTLE_SLOTS;
}

static bool same(const struct throttle_slot *s, const char *key) { return strncmp(s->key, key, 64) == 0; }

/* Open addressing over 8 probes. A new key takes an empty or expired slot, else the
 * stalest slot that is not locking anyone out: a slot at the limit is never evicted (an
 * attacker must not free their own lock by filling its neighbourhood). NULL: no room. */
static struct throttle_slot *find(struct throttle *t, const char *key, long now, bool create)
{
    unsigned h = slot_of(key);
    struct throttle_slot *victim = NULL;
    bool victim_free = false;
    for (unsigned i = 0; i < 8; i++) {
        struct throttle_slot *s = &t->slots[(h + i) % THROTTLE_SLOTS];
        if (s->key[0] && same(s, key))
            return s;
        bool expired = !s->key[0] || now - s->window_start >= THROTTLE_WINDOW;
        bool locking = !expired && s->failures + s->pending >= THROTTLE_MAX;
        if (victim_free || locking || s->pending)
            continue;
        if (expired || !victim || s->window_start < victim->window_start) {
            victim = s;
            victim_free = expired;
        }
    }
    if (!create || !victim)
        return NULL;
    memset(victim, 0, sizeof *victim);
    strncpy(victim->key, key, 64);
    victim->window_start = now;
    return victim;
}

int throttle_begin(struct throttle *t, const char *key, long now)
{
    pthread_mutex_lock(&t->mu);
    struct throttle_slot *s = find(t, key, now, true);
    if (!s) { /* every slot nearby is busy or locking: make this one wait too */
        pthread_mutex_unlock(&t->mu);
        return THROTTLE_WINDOW;
    }
    if (now - s->window_start >= THROTTLE_WINDOW) {
        s->window_start = now;
        s->failures = 0;
    }
    int wait = 0;
    if (s->failures + s->pending >= THROTTLE_MAX)
        wait = (int)(s->window_start + THROTTLE_WINDOW - now);
    if (wait <= 0) {
        wait = 0;
        s->pending++;
    }
    pthread_mutex_unlock(&t->mu);
    return wait;
}

void throttle_end(struct throttle *t, const char *key, enum attempt outcome, long now)
{
    pthread_mutex_lock(&t->mu);
    struct throttle_slot *s = find(t, key, now, false);
    if (s) {
        if (s->pending > 0)
            s->pending--;
        if (outcome == ATTEMPT_FAILED)
            s->failures++;
        else if (outcome == ATTEMPT_OK)
            s->failures = 0;
    }
    pthread_mutex_unlock(&t->mu);
}
