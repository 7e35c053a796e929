/* Limits on what clients can hold: a cap on open connections (extra ones are closed
 * at once, not left waiting in the listen queue) and deadlines for sending a
 * request's headers and body, which libmicrohttpd's idle timeout does not give (a
 * client dribbling one byte a second is never idle). */
#ifndef HIP_GUARD_H
#define HIP_GUARD_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stdint.h>

struct guard_conn;

struct guard {
    pthread_mutex_t mu;
    struct guard_conn *head;
    unsigned open, max;
    uint64_t header_us, body_us; /* deadlines */
    pthread_t reaper;
    atomic_bool stop;
    bool running;
};

void guard_init(struct guard *g, unsigned max_connections, unsigned timeout_s);
bool guard_start(struct guard *g);
void guard_stop(struct guard *g);

/* libmicrohttpd hooks: accept policy, connection start/close, and the request's phases. */
bool guard_admit(struct guard *g);
struct guard_conn *guard_opened(struct guard *g, int fd);
void guard_closed(struct guard *g, struct guard_conn *c);
void guard_headers_done(struct guard *g, struct guard_conn *c); /* the body's clock starts */
void guard_answered(struct guard *g, struct guard_conn *c);     /* no deadline while sending */
void guard_request_done(struct guard *g, struct guard_conn *c); /* next request's headers */

#endif
