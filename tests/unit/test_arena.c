/* The request arena with its first chunk in the caller's memory (arena_init_with): small
 * allocations come from that memory, larger ones from malloc, and release frees only what
 * was malloc'd (ASan reports a free of the caller's memory or a leak). */
#include <setjmp.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "util/arena.h"

static max_align_t mem[1024 / sizeof(max_align_t)];

static bool inside(const void *p)
{
    return (const char *)p >= (const char *)mem && (const char *)p < (const char *)mem + sizeof mem;
}

static int defers;
static void count_defer(void *p)
{
    (void)p;
    defers++;
}

static void test_first_chunk_is_the_callers(void **state)
{
    (void)state;
    struct arena a;
    arena_init_with(&a, mem, sizeof mem);
    char *s = arena_strdup(&a, "hello");
    assert_true(inside(s));
    void *big = arena_alloc(&a, 10000); /* larger than a chunk: malloc'd on its own */
    assert_false(inside(big));
    memset(big, 1, 10000);
    char *t = arena_strdup(&a, "still here"); /* the partly used chunk stays in front */
    assert_true(inside(t));
    assert_string_equal(s, "hello");
    int before = defers;
    arena_defer(&a, count_defer, NULL);
    arena_release(&a);
    assert_int_equal(defers, before + 1);
    /* usable again, from the start of the caller's memory */
    char *u = arena_strdup(&a, "again");
    assert_true(inside(u));
    for (int i = 0; i < 200; i++) /* past the first chunk: more chunks, all freed */
        assert_non_null(arena_printf(&a, "%d-%s", i, "some text to fill the arena"));
    arena_release(&a);
}

static void test_too_small_memory_is_not_used(void **state)
{
    (void)state;
    struct arena a;
    arena_init_with(&a, mem, 8);
    char *s = arena_strdup(&a, "x");
    assert_false(inside(s));
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_first_chunk_is_the_callers),
        cmocka_unit_test(test_too_small_memory_is_not_used),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
