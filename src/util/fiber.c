/* Fibers: a stack of their own entered once with makecontext/swapcontext, then switched to
 * and from with _setjmp/_longjmp, which do not save or restore the signal mask (swapcontext
 * makes an rt_sigprocmask system call each time: 1.1 µs here, five per write request). A
 * fiber runs functions one after another in a loop on its stack, so a reused fiber is never
 * entered anew. AddressSanitizer is told of every stack switch so it neither loses track of
 * the stacks nor reports false positives. A switch leaves the signal mask as it is: the
 * mask is that of the thread running the fiber, which need not be the one that started it. */
/* _FORTIFY_SOURCE turns _longjmp into a checked one that aborts on a jump to another stack. */
#undef _FORTIFY_SOURCE
#include "util/fiber.h"

#include <setjmp.h>
#include <stdint.h>
#include <stdlib.h>
#include <sys/mman.h>
#include <ucontext.h>
#include <unistd.h>

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#define SWITCH_START(save, bottom, size) __sanitizer_start_switch_fiber(save, bottom, size)
#define SWITCH_FINISH(save, bottom, size) __sanitizer_finish_switch_fiber(save, bottom, size)
#else
#define SWITCH_START(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#define SWITCH_FINISH(save, bottom, size) ((void)(save), (void)(bottom), (void)(size))
#endif

struct fiber {
    jmp_buf ctx;    /* the fiber's own, while it is parked or between functions */
    jmp_buf caller; /* the resumer's, while the fiber runs */
    bool entered;   /* its stack runs the loop (trampoline) */
    /* for the first entry: kept here, not on the resumer's stack, whose frame the entry
     * leaves by _longjmp (AddressSanitizer would keep its locals' redzones poisoned) */
    ucontext_t entry, entry_from;
    char *map; /* the mapping: a guard page, then the stack */
    size_t map_size;
    void *stack;
    size_t stack_size;
    fiber_fn fn;
    void *arg;
    bool done;
    void (*then)(void *);
    void *then_arg;
    void (*wake)(void *);
    void *wake_arg;
    /* for AddressSanitizer: the fiber's fake stack while it is parked, the resumer's stack */
    void *fake;
    const void *caller_bottom;
    size_t caller_size;
};

/* Which fiber this thread runs now: the one thing a waiting call needs to know. */
static _Thread_local struct fiber *current;

struct fiber *fiber_new(size_t stack)
{
    size_t page = (size_t)sysconf(_SC_PAGESIZE);
    stack = (stack + page - 1) / page * page;
    struct fiber *f = calloc(1, sizeof *f);
    if (!f)
        return NULL;
    f->map_size = stack + page;
    f->map =
        mmap(NULL, f->map_size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE | MAP_STACK, -1, 0);
    if (f->map == MAP_FAILED) {
        free(f);
        return NULL;
    }
    mprotect(f->map, page, PROT_NONE); /* an overflow faults rather than writing over memory */
    f->stack = f->map + page;
    f->stack_size = stack;
    return f;
}

void fiber_free(struct fiber *f)
{
    if (!f)
        return;
    munmap(f->map, f->map_size);
    free(f);
}

/* Leaves the fiber for its resumer; returns when it is resumed. */
static void leave(struct fiber *f)
{
    SWITCH_START(&f->fake, f->caller_bottom, f->caller_size);
    if (!_setjmp(f->ctx))
        _longjmp(f->caller, 1);
    SWITCH_FINISH(f->fake, &f->caller_bottom, &f->caller_size);
}

/* The fiber's stack: one function per fiber_start, for as long as the fiber lives. */
static void trampoline(unsigned hi, unsigned lo)
{
    struct fiber *f = (struct fiber *)(((uintptr_t)hi << 32) | (uintptr_t)lo);
    SWITCH_FINISH(NULL, &f->caller_bottom, &f->caller_size);
    for (;;) {
        f->fn(f->arg);
        f->done = true;
        leave(f);
    }
}

void fiber_start(struct fiber *f, fiber_fn fn, void *arg, void (*wake)(void *), void *wake_arg)
{
    f->fn = fn;
    f->arg = arg;
    f->wake = wake;
    f->wake_arg = wake_arg;
    f->done = false;
    f->then = NULL;
}

/* The first entry onto the fiber's stack: the only context switch by ucontext. */
static void enter(struct fiber *f)
{
    getcontext(&f->entry);
    f->entry.uc_stack.ss_sp = f->stack;
    f->entry.uc_stack.ss_size = f->stack_size;
    f->entry.uc_link = NULL; /* the loop never returns */
    uintptr_t p = (uintptr_t)f;
    makecontext(&f->entry, (void (*)(void))trampoline, 2, (unsigned)(p >> 32), (unsigned)(p & 0xffffffffu));
    f->entered = true;
    swapcontext(&f->entry_from, &f->entry); /* comes back by _longjmp to f->caller, never here */
}

bool fiber_resume(struct fiber *f)
{
    struct fiber *outer = current;
    current = f;
    void *fake = NULL;
    SWITCH_START(&fake, f->stack, f->stack_size);
    if (!_setjmp(f->caller)) {
        if (f->entered)
            _longjmp(f->ctx, 1);
        enter(f);
    }
    SWITCH_FINISH(fake, NULL, NULL);
    current = outer;
    return f->done;
}

void fiber_then(struct fiber *f)
{
    void (*then)(void *) = f->then;
    f->then = NULL;
    if (then)
        then(f->then_arg); /* may wake f (and so resume it elsewhere): f is not touched after */
}

struct fiber *fiber_current(void) { return current; }

void fiber_park(struct fiber *f, void (*then)(void *), void *arg)
{
    f->then = then;
    f->then_arg = arg;
    leave(f);
}

void fiber_wake(struct fiber *f) { f->wake(f->wake_arg); }
