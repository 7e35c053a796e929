/* Fibers (src/util/fiber.c): a function runs on its own stack, parks mid-way and goes on
 * where it stopped when resumed, on this thread or another; a fiber runs one function after
 * another; the step it parks with runs once it is off the stack. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>

#include "util/fiber.h"

#define STACK (512 * 1024)

struct script {
    struct fiber *f;
    int steps[8];
    int n;
    int woken, thens;
    struct fiber *seen_current;
};

static void note_then(void *arg)
{
    struct script *s = arg;
    s->thens++;
}

static void wake(void *arg)
{
    struct script *s = arg;
    s->woken++;
}

/* Parks twice, noting where it is each time; the locals live on across the parks. */
static void two_parks(void *arg)
{
    struct script *s = arg;
    int local = 10;
    s->seen_current = fiber_current();
    s->steps[s->n++] = local++;
    fiber_park(s->f, note_then, s);
    s->steps[s->n++] = local++;
    fiber_park(s->f, note_then, s);
    s->steps[s->n++] = local;
}

static void test_parks_and_goes_on_where_it_stopped(void **state)
{
    struct script s = {.f = fiber_new(STACK)};
    assert_non_null(s.f);
    fiber_start(s.f, two_parks, &s, wake, &s);
    assert_null(fiber_current());
    assert_false(fiber_resume(s.f));
    assert_ptr_equal(s.seen_current, s.f);
    assert_null(fiber_current());
    assert_int_equal(s.n, 1);
    assert_int_equal(s.thens, 0); /* the step runs when the owner says so */
    fiber_then(s.f);
    assert_int_equal(s.thens, 1);
    fiber_wake(s.f);
    assert_int_equal(s.woken, 1);
    assert_false(fiber_resume(s.f));
    fiber_then(s.f);
    assert_true(fiber_resume(s.f));
    assert_int_equal(s.n, 3);
    assert_int_equal(s.steps[0], 10);
    assert_int_equal(s.steps[1], 11);
    assert_int_equal(s.steps[2], 12);
    assert_int_equal(s.thens, 2);
    fiber_then(s.f); /* nothing parked: nothing runs */
    assert_int_equal(s.thens, 2);
    fiber_free(s.f);
}

static void fill(void *arg)
{
    /* uses most of the stack, and must find it usable each time */
    volatile char big[192 * 1024];
    memset((char *)big, 0x5a, sizeof big);
    int *out = arg;
    *out += big[sizeof big - 1] == 0x5a;
}

/* A fiber whose function ended runs the next one from its start, many times over. */
static void test_a_fiber_runs_one_function_after_another(void **state)
{
    struct fiber *f = fiber_new(STACK);
    struct script s = {.f = f};
    for (int round = 0; round < 50; round++) {
        s.n = 0;
        fiber_start(f, two_parks, &s, wake, &s);
        assert_false(fiber_resume(f));
        assert_false(fiber_resume(f));
        assert_true(fiber_resume(f));
        assert_int_equal(s.steps[2], 12);
        int ok = 0;
        fiber_start(f, fill, &ok, wake, &s);
        assert_true(fiber_resume(f));
        assert_int_equal(ok, 1);
    }
    fiber_free(f);
}

/* Two fibers parked at once, resumed in the other order, each on its own stack. */
static void test_fibers_interleave(void **state)
{
    struct script a = {.f = fiber_new(STACK)}, b = {.f = fiber_new(STACK)};
    fiber_start(a.f, two_parks, &a, wake, &a);
    fiber_start(b.f, two_parks, &b, wake, &b);
    assert_false(fiber_resume(a.f));
    assert_false(fiber_resume(b.f));
    assert_false(fiber_resume(b.f));
    assert_false(fiber_resume(a.f));
    assert_true(fiber_resume(b.f));
    assert_true(fiber_resume(a.f));
    assert_int_equal(a.steps[2], 12);
    assert_int_equal(b.steps[2], 12);
    assert_ptr_equal(a.seen_current, a.f);
    assert_ptr_equal(b.seen_current, b.f);
    fiber_free(a.f);
    fiber_free(b.f);
}

struct inner_outer {
    struct fiber *outer, *inner;
    struct fiber *current_after_inner;
};

static void inner_fn(void *arg)
{
    struct inner_outer *io = arg;
    fiber_park(io->inner, NULL, NULL);
}

static void outer_fn(void *arg)
{
    struct inner_outer *io = arg;
    fiber_start(io->inner, inner_fn, io, wake, NULL);
    assert_false(fiber_resume(io->inner));
    io->current_after_inner = fiber_current();
}

/* A fiber may resume another; each resume gives the fiber that ran it back. */
static void test_a_fiber_resumes_another(void **state)
{
    struct inner_outer io = {.outer = fiber_new(STACK), .inner = fiber_new(STACK)};
    fiber_start(io.outer, outer_fn, &io, wake, NULL);
    assert_true(fiber_resume(io.outer));
    assert_ptr_equal(io.current_after_inner, io.outer);
    assert_null(fiber_current());
    assert_true(fiber_resume(io.inner));
    fiber_free(io.outer);
    fiber_free(io.inner);
}

static void *resume_elsewhere(void *arg)
{
    struct script *s = arg;
    bool done = fiber_resume(s->f);
    s->steps[7] = done;
    return NULL;
}

static void park_once(void *arg)
{
    struct script *s = arg;
    s->steps[s->n++] = 1;
    fiber_park(s->f, NULL, NULL);
    s->seen_current = fiber_current(); /* this thread's, wherever it runs now */
    s->steps[s->n++] = 2;
}

/* Parked on one thread, resumed on another, and reused on a third (the HTTP threads share
 * their spare fibers). */
static void test_a_fiber_goes_on_on_another_thread(void **state)
{
    struct script s = {.f = fiber_new(STACK)};
    fiber_start(s.f, park_once, &s, wake, &s);
    assert_false(fiber_resume(s.f));
    pthread_t t;
    assert_int_equal(pthread_create(&t, NULL, resume_elsewhere, &s), 0);
    pthread_join(t, NULL);
    assert_int_equal(s.steps[7], 1);
    assert_int_equal(s.n, 2);
    assert_ptr_equal(s.seen_current, s.f);
    assert_null(fiber_current());
    s.n = 0;
    s.steps[7] = 0;
    fiber_start(s.f, two_parks, &s, wake, &s);
    assert_false(fiber_resume(s.f));
    assert_false(fiber_resume(s.f));
    assert_int_equal(pthread_create(&t, NULL, resume_elsewhere, &s), 0);
    pthread_join(t, NULL);
    assert_int_equal(s.steps[7], 1);
    assert_int_equal(s.steps[2], 12);
    fiber_free(s.f);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parks_and_goes_on_where_it_stopped),
        cmocka_unit_test(test_a_fiber_runs_one_function_after_another),
        cmocka_unit_test(test_fibers_interleave),
        cmocka_unit_test(test_a_fiber_resumes_another),
        cmocka_unit_test(test_a_fiber_goes_on_on_another_thread),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
