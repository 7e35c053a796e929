/* The access log line (src/http/accesslog.c) against the json_pack + json_dumps it
 * replaced, over random entries; and a method of raw bytes, which that version could not
 * log at all, still gives a valid line. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <cmocka.h>
#include <jansson.h>

#include "http/accesslog.h"

static uint64_t rng = 0x2545F4914F6CDD1Du;

static uint32_t rnd(uint32_t n)
{
    rng ^= rng << 13;
    rng ^= rng >> 7;
    rng ^= rng << 17;
    return (uint32_t)(rng % n);
}

static const char *const PIECES[] = {"GET", "/cdr/v1/ekauser/", "{id}", "(unrouted)", "\"", "\\", "\n", "\x01",
                                     "é", "😀", "5550000000000004", "ops-test-1", "x"};

static char *rnd_text(char *buf, size_t cap)
{
    size_t n = 0;
    int parts = (int)rnd(40); /* some longer than the stack buffer */
    for (int i = 0; i < parts; i++) {
        const char *p = PIECES[rnd(sizeof PIECES / sizeof *PIECES)];
        size_t k = strlen(p);
        if (n + k >= cap)
            break;
        memcpy(buf + n, p, k);
        n += k;
    }
    buf[n] = '\0';
    return buf;
}

static void test_lines_as_jansson_wrote_them(void **state)
{
    (void)state;
    for (int i = 0; i < 20000; i++) {
        char m[512], p[2048], t[512], id[64];
        struct access_entry e = {.method = rnd_text(m, sizeof m),
                                 .path = rnd_text(p, sizeof p),
                                 .status = (int)rnd(600),
                                 .us = rnd(3) ? (long long)rnd(1u << 31) * 1000 : -(long long)rnd(100),
                                 .tenant = rnd(3) ? rnd_text(t, sizeof t) : NULL,
                                 .request_id = rnd_text(id, sizeof id),
                                 .completed = rnd(2)};
        json_t *line = json_pack("{s:s, s:s, s:i, s:I, s:s?, s:s, s:b}", "method", e.method, "path", e.path, "status",
                                 e.status, "us", (json_int_t)e.us, "tenant", e.tenant, "request_id", e.request_id,
                                 "completed", e.completed);
        assert_non_null(line);
        char *want = json_dumps(line, JSON_COMPACT);
        json_decref(line);
        struct arena a;
        arena_init(&a);
        struct jbuf b;
        char stack[64];
        jbuf_init(&b, &a, stack, sizeof stack);
        access_log_format(&b, &e);
        assert_int_equal(b.len, strlen(want) + 1);
        assert_memory_equal(b.p, want, strlen(want));
        assert_int_equal(b.p[b.len - 1], '\n');
        free(want);
        arena_release(&a);
    }
}

static void test_raw_bytes_still_logged(void **state)
{
    (void)state;
    struct access_entry e = {.method = "G\xffT", .path = "(unrouted)", .status = 405, .us = 12,
                             .request_id = "r1", .completed = true};
    struct arena a;
    arena_init(&a);
    struct jbuf b;
    jbuf_init(&b, &a, NULL, 0);
    access_log_format(&b, &e);
    json_error_t err;
    json_t *line = json_loadb(b.p, b.len, 0, &err);
    assert_non_null(line);
    assert_string_equal(json_string_value(json_object_get(line, "method")), "G\xEF\xBF\xBDT");
    assert_true(json_is_null(json_object_get(line, "tenant")));
    assert_int_equal(json_integer_value(json_object_get(line, "status")), 405);
    json_decref(line);
    arena_release(&a);
}

/* What reaches the descriptor is the whole line, in one piece. */
static void test_written_to_descriptor(void **state)
{
    (void)state;
    int fds[2];
    assert_int_equal(pipe(fds), 0);
    struct access_entry e = {.method = "GET", .path = "/cdr/v1/ekauser/{id}", .status = 404, .us = 7,
                             .tenant = "5550000000000004", .request_id = "abc", .completed = false};
    struct arena a;
    arena_init(&a);
    access_log_write(fds[1], &a, &e);
    close(fds[1]);
    char buf[512];
    ssize_t n = read(fds[0], buf, sizeof buf - 1);
    close(fds[0]);
    assert_true(n > 0);
    buf[n] = '\0';
    assert_string_equal(buf, "{\"method\":\"GET\",\"path\":\"/cdr/v1/ekauser/{id}\",\"status\":404,\"us\":7,"
                             "\"tenant\":\"5550000000000004\",\"request_id\":\"abc\",\"completed\":false}\n");
    arena_release(&a);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_lines_as_jansson_wrote_them),
        cmocka_unit_test(test_raw_bytes_still_logged),
        cmocka_unit_test(test_written_to_descriptor),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
