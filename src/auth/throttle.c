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

/* Open addressing over 8 probes: an empty or expired slot is taken first, else the
 * one whose window started longest ago. */
static struct throttle_slot *find(struct throttle *t, const char *key, long now, bool create)
{
    unsigned h = slot_of(key);
    struct throttle_slot *victim = NULL;
    bool victim_free = false;
    for (unsigned i = 0; i < 8; i++) {
        struct throttle_slot *s = &t->slots[(h + i) % THROTTLE_SLOTS];
        if (s->key[0] && same(s, key))
            return s;
        bool free_slot = !s->key[0] || now - s->window_start >= THROTTLE_WINDOW;
        if (victim_free)
            continue;
        if (free_slot || !victim || s->window_start < victim->window_start) {
            victim = s;
            victim_free = free_slot;
        }
    }
    if (!create)
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

void throttle_end(struct throttle *t, const char *key, bool failed, long now)
{
    pthread_mutex_lock(&t->mu);
    struct throttle_slot *s = find(t, key, now, true);
    if (s->pending > 0)
        s->pending--;
    if (failed)
        s->failures++;
    else
        s->failures = 0;
    pthread_mutex_unlock(&t->mu);
}
