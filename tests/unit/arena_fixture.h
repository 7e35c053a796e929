/* cmocka fixtures shared by the unit tests: every test gets a fresh arena as its state;
 * the teardown releases it even when an assertion failed, so ASan's leak checker only
 * reports real leaks. Include after <cmocka.h>. */
#ifndef HIP_TEST_ARENA_FIXTURE_H
#define HIP_TEST_ARENA_FIXTURE_H

#include <stdlib.h>

#include "util/arena.h"

static int setup_arena(void **state)
{
    struct arena *a = malloc(sizeof *a);
    if (!a)
        return -1;
    arena_init(a);
    *state = a;
    return 0;
}

static int teardown_arena(void **state)
{
    arena_release(*state);
    free(*state);
    return 0;
}

#endif
