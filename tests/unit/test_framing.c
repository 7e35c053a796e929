/* Unit tests of src/http/framing.c: RFC 9112 framing verdicts from the request line and
 * header fields, before any body is read. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>

#include "http/framing.h"
#include "util/arena.h"

#include "arena_fixture.h"

#define HOST {"Host", "x"}

static struct framing judge(void **state, const char *target, const char *version, const struct header_field *h,
                            size_t n)
{
    struct framing f;
    memset(&f, 0x5a, sizeof f); /* stale data must be cleared */
    framing_check(target, version, h, n, *state, &f);
    return f;
}

#define JUDGE(target, version, ...)                                                                                \
    judge(state, target, version, (const struct header_field[]){__VA_ARGS__},                                        \
          sizeof((const struct header_field[]){__VA_ARGS__}) / sizeof(struct header_field))

static void plain_requests_pass(void **state)
{
    struct framing f = JUDGE("/cdr/v1/ekauser/", "HTTP/1.1", HOST);
    assert_int_equal(f.status, 0);
    assert_int_equal(f.body, BODY_NONE);
    assert_string_equal(f.path, "/cdr/v1/ekauser/");

    f = JUDGE("/x", "HTTP/1.1", HOST, {"content-length", "42"});
    assert_int_equal(f.status, 0);
    assert_int_equal(f.body, BODY_LENGTH);
    assert_true(f.length == 42);

    f = JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length", "0"});
    assert_int_equal(f.status, 0);
    assert_int_equal(f.body, BODY_NONE);

    f = JUDGE("/x", "HTTP/1.1", HOST, {"Transfer-Encoding", "Chunked"});
    assert_int_equal(f.status, 0);
    assert_int_equal(f.body, BODY_CHUNKED);

    f = JUDGE("/x", "HTTP/1.0", {"X-A", "b"}); /* HTTP/1.0 needs no Host */
    assert_int_equal(f.status, 0);
}

static void ambiguous_lengths_are_400(void **state)
{
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length", "5"}, {"Transfer-Encoding", "chunked"}).status,
                     400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length", "5"}, {"Content-Length", "5"}).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length", "5"}, {"content-length", "6"}).status, 400);
    static const char *bad[] = {"", "+5", "-1", " 5", "5 ", "0x5", "5,5", "99999999999999999999999"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++)
        assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length", bad[i]}).status, 400);
}

static void transfer_codings(void **state)
{
    static const struct {
        const char *value;
        int status;
    } cases[] = {
        {"chunked", 0},          {" chunked ", 0},      {"CHUNKED", 0},         {"gzip", 501},
        {"gzip, chunked", 501},  {"identity", 501},     {"chunked, identity", 400}, {"chunked, chunked", 400},
        {"chunked;x=1", 501},    {"", 400},             {",", 400},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct framing f = JUDGE("/x", "HTTP/1.1", HOST, {"Transfer-Encoding", cases[i].value});
        if (f.status != cases[i].status)
            fail_msg("Transfer-Encoding: '%s' gave %d, want %d", cases[i].value, f.status, cases[i].status);
    }
    /* two fields are one list */
    assert_int_equal(
        JUDGE("/x", "HTTP/1.1", HOST, {"Transfer-Encoding", "chunked"}, {"Transfer-Encoding", "chunked"}).status,
        400);
    assert_int_equal(
        JUDGE("/x", "HTTP/1.1", HOST, {"Transfer-Encoding", "gzip"}, {"Transfer-Encoding", "chunked"}).status, 501);
    /* HTTP/1.0 has no chunked */
    assert_int_equal(JUDGE("/x", "HTTP/1.0", {"Transfer-Encoding", "chunked"}).status, 400);
}

static void header_names_and_hosts(void **state)
{
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length ", "5"}).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"Content-Length\t", "5"}).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"a b", "5"}).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"", "5"}).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"X-Ok!#$%&'*+-.^_`|~", "5"}).status, 0);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", HOST, {"host", "y"}).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1", {"X-A", "b"}).status, 400); /* no Host */
}

static void targets(void **state)
{
    assert_int_equal(JUDGE("/a b", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("/a\x01", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("/a\x7f", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("/a\tb", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("a", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("*", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("http:///x", "HTTP/1.1", HOST).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/2.0", HOST).status, 400);
    assert_int_equal(JUDGE("/x", "HTTP/1.1 x", HOST).status, 400);

    struct framing f = JUDGE("http://example.test/cdr/v1/clinic/", "HTTP/1.1", HOST);
    assert_int_equal(f.status, 0);
    assert_string_equal(f.path, "/cdr/v1/clinic/");
    f = JUDGE("HTTPS://example.test:8443/a/b", "HTTP/1.1", HOST);
    assert_int_equal(f.status, 0);
    assert_string_equal(f.path, "/a/b");
    f = JUDGE("http://example.test", "HTTP/1.1", HOST);
    assert_int_equal(f.status, 0);
    assert_string_equal(f.path, "/");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(plain_requests_pass, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(ambiguous_lengths_are_400, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(transfer_codings, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(header_names_and_hosts, setup_arena, teardown_arena),
        cmocka_unit_test_setup_teardown(targets, setup_arena, teardown_arena),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
