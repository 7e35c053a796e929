/* Fibers: a function run on a stack of its own, on the thread that resumes it, which can
 * leave it mid-way (park) and later go on from where it stopped. The HTTP adapter runs the
 * handler of a request that may write on a fiber: a write that waits for its commit parks
 * the fiber instead of blocking the connection's thread, which serves its other connections
 * meanwhile, and no other thread is involved in handing the answer back.
 *
 * Waiting code (store_write) asks fiber_current() whether it runs on a fiber, and if so
 * parks it with a `then` step: the owner of the fiber runs that step once the fiber is off
 * the stack and it has arranged for a wake to resume it (the HTTP adapter suspends the
 * connection first), so a wake can never come before the owner is ready for it. */
#ifndef HIP_FIBER_H
#define HIP_FIBER_H

#include <stdbool.h>
#include <stddef.h>

struct fiber;

typedef void (*fiber_fn)(void *arg);

/* A fiber with a stack of `stack` bytes (plus a guard page); NULL when out of memory. */
struct fiber *fiber_new(size_t stack);
void fiber_free(struct fiber *f);

/* Makes f run fn(arg) from the start at its next resume. wake(wake_arg) is what
 * fiber_wake calls. */
void fiber_start(struct fiber *f, fiber_fn fn, void *arg, void (*wake)(void *), void *wake_arg);

/* Runs f on this thread until it parks or its function returns: true when it returned. */
bool fiber_resume(struct fiber *f);

/* After fiber_resume answered false: runs the step the fiber parked with. It may wake
 * the fiber at once (when the work it waits for is refused, say). */
void fiber_then(struct fiber *f);

/* The fiber running on this thread, or NULL. */
struct fiber *fiber_current(void);

/* From inside f: leaves it, back to the fiber_resume that ran it. Returns once f has been
 * woken and resumed again. */
void fiber_park(struct fiber *f, void (*then)(void *), void *arg);

/* Calls f's waker: from any thread, once per park. */
void fiber_wake(struct fiber *f);

#endif
