#include "http/guard.h"

#include <stdlib.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

struct guard_conn {
    struct guard_conn *prev, *next; /* under the guard's mutex */
    int fd;
    /* 0: none. Set by the connection's worker thread at each phase of a request without
     * the mutex (three times per request); read by the reaper. */
    _Atomic uint64_t deadline_us;
    bool cut;
};

static uint64_t mono_us(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

/* Headers get twice the idle timeout from the connection's start (or the previous
 * answer); a body gets four times it: at the default 30 s, a 1 MiB body must arrive
 * at 9 KB/s or better. */
void guard_init(struct guard *g, unsigned max_connections, unsigned timeout_s)
{
    g->head = NULL;
    g->open = 0;
    g->max = max_connections;
    g->header_us = (uint64_t)timeout_s * 2 * 1000000u;
    g->body_us = (uint64_t)timeout_s * 4 * 1000000u;
    atomic_store(&g->stop, false);
    g->running = false;
    pthread_mutex_init(&g->mu, NULL);
}

/* Every 200 ms, connections past their deadline are shut down; libmicrohttpd then sees
 * the socket fail and closes it itself (the descriptor stays valid until our close hook
 * has unlinked it, which happens under the same lock). */
static void *reaper(void *arg)
{
    struct guard *g = arg;
    while (!atomic_load(&g->stop)) {
        usleep(200000);
        uint64_t now = mono_us();
        pthread_mutex_lock(&g->mu);
        for (struct guard_conn *c = g->head; c; c = c->next) {
            uint64_t deadline = atomic_load_explicit(&c->deadline_us, memory_order_relaxed);
            if (!c->cut && deadline && now > deadline) {
                shutdown(c->fd, SHUT_RDWR);
                c->cut = true;
            }
        }
        pthread_mutex_unlock(&g->mu);
    }
    return NULL;
}

bool guard_start(struct guard *g)
{
    g->running = pthread_create(&g->reaper, NULL, reaper, g) == 0;
    return g->running;
}

void guard_stop(struct guard *g)
{
    atomic_store(&g->stop, true);
    if (g->running)
        pthread_join(g->reaper, NULL);
    g->running = false;
}

bool guard_admit(struct guard *g)
{
    pthread_mutex_lock(&g->mu);
    bool ok = g->open < g->max;
    pthread_mutex_unlock(&g->mu);
    return ok;
}

struct guard_conn *guard_opened(struct guard *g, int fd)
{
    struct guard_conn *c = calloc(1, sizeof *c);
    if (!c)
        return NULL;
    c->fd = fd;
    atomic_init(&c->deadline_us, mono_us() + g->header_us);
    pthread_mutex_lock(&g->mu);
    /* guard_admit and this call are apart: two workers accepting at once can both have
     * been admitted below the cap. The one over it is cut at once rather than kept. */
    if (g->open >= g->max) {
        shutdown(fd, SHUT_RDWR);
        c->cut = true;
    }
    c->next = g->head;
    if (g->head)
        g->head->prev = c;
    g->head = c;
    g->open++;
    pthread_mutex_unlock(&g->mu);
    return c;
}

void guard_closed(struct guard *g, struct guard_conn *c)
{
    if (!c)
        return;
    pthread_mutex_lock(&g->mu);
    if (c->prev)
        c->prev->next = c->next;
    else
        g->head = c->next;
    if (c->next)
        c->next->prev = c->prev;
    g->open--;
    pthread_mutex_unlock(&g->mu);
    free(c);
}

/* The connection stays in the list (and its memory valid) until guard_closed, which its
 * own worker thread calls after the last of these: no lock is needed to set it. */
static void set_deadline(struct guard *g, struct guard_conn *c, uint64_t span)
{
    (void)g;
    if (c)
        atomic_store_explicit(&c->deadline_us, span ? mono_us() + span : 0, memory_order_relaxed);
}

void guard_headers_done(struct guard *g, struct guard_conn *c) { set_deadline(g, c, g->body_us); }
void guard_answered(struct guard *g, struct guard_conn *c) { set_deadline(g, c, 0); }
void guard_request_done(struct guard *g, struct guard_conn *c) { set_deadline(g, c, g->header_us); }
