/* Unit tests of src/util/netaddr.c: address text, CIDR lists, the client address behind
 * trusted proxies (X-Forwarded-For) and the throttle's address key. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>

#include <arpa/inet.h>
#include <cmocka.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include "util/netaddr.h"

static const char *canon(const char *text)
{
    static char out[ADDR_TEXT_MAX];
    unsigned char a[16];
    if (!addr_parse(text, a))
        return NULL;
    addr_format(a, out, sizeof out);
    return out;
}

static void test_parse_and_format(void **state)
{
    (void)state;
    assert_string_equal(canon("127.0.0.1"), "127.0.0.1");
    assert_string_equal(canon("::ffff:10.1.2.3"), "10.1.2.3"); /* IPv4-mapped is IPv4 */
    assert_string_equal(canon("2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
    assert_string_equal(canon("::1"), "::1");
    assert_null(canon(""));
    assert_null(canon(NULL));
    assert_null(canon("256.1.1.1"));
    assert_null(canon("1.2.3"));
    assert_null(canon("1.2.3.4:80"));
    assert_null(canon("[::1]"));
    assert_null(canon("fe80::1%eth0"));
    assert_null(canon("unknown"));
    assert_null(canon(" 1.2.3.4"));
}

static void test_sockaddr(void **state)
{
    (void)state;
    char out[ADDR_TEXT_MAX];
    struct sockaddr_in v4 = {.sin_family = AF_INET};
    inet_pton(AF_INET, "192.0.2.10", &v4.sin_addr);
    addr_of_sockaddr((struct sockaddr *)&v4, out, sizeof out);
    assert_string_equal(out, "192.0.2.10");
    struct sockaddr_in6 v6 = {.sin6_family = AF_INET6};
    inet_pton(AF_INET6, "2001:db8::5", &v6.sin6_addr);
    addr_of_sockaddr((struct sockaddr *)&v6, out, sizeof out);
    assert_string_equal(out, "2001:db8::5");
    inet_pton(AF_INET6, "::ffff:192.0.2.11", &v6.sin6_addr);
    addr_of_sockaddr((struct sockaddr *)&v6, out, sizeof out);
    assert_string_equal(out, "192.0.2.11");
    addr_of_sockaddr(NULL, out, sizeof out);
    assert_string_equal(out, "");
}

static bool contains(const struct cidrs *l, const char *text)
{
    unsigned char a[16];
    assert_true(addr_parse(text, a));
    return cidrs_contain(l, a);
}

static void test_cidrs(void **state)
{
    (void)state;
    struct cidrs l = {0};
    char err[128];
    assert_true(cidrs_add(&l, "127.0.0.1/32", err, sizeof err));
    assert_true(cidrs_add(&l, " 10.0.0.0/8 , 2001:db8:1::/48", err, sizeof err));
    assert_true(cidrs_add(&l, "192.168.1.77/24", err, sizeof err)); /* host bits are masked */
    assert_true(cidrs_add(&l, "fd00::1", err, sizeof err));         /* a lone address */
    assert_int_equal(l.n, 5);
    assert_true(contains(&l, "127.0.0.1"));
    assert_false(contains(&l, "127.0.0.2"));
    assert_true(contains(&l, "10.255.1.2"));
    assert_false(contains(&l, "11.0.0.1"));
    assert_true(contains(&l, "::ffff:10.9.9.9")); /* mapped IPv4 matches the IPv4 range */
    assert_true(contains(&l, "2001:db8:1:ffff::9"));
    assert_false(contains(&l, "2001:db8:2::9"));
    assert_true(contains(&l, "192.168.1.1"));
    assert_false(contains(&l, "192.168.2.1"));
    assert_true(contains(&l, "fd00::1"));
    assert_false(contains(&l, "fd00::2"));
    struct cidrs all = {0};
    assert_true(cidrs_add(&all, "0.0.0.0/0", err, sizeof err));
    assert_true(contains(&all, "8.8.8.8"));
    assert_false(contains(&all, "2001:db8::1")); /* an IPv4 range holds no IPv6 */

    const char *bad[] = {"", "10.0.0.0/33", "::/129", "10.0.0.0/", "10.0.0.0/8x", "10.0.0.0/-1",
                         "example.com", "10.0.0.0/8,", ",10.0.0.0/8", "1.2.3.4/0008"};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        struct cidrs b = {0};
        err[0] = '\0';
        if (cidrs_add(&b, bad[i], err, sizeof err))
            print_error("accepted '%s'\n", bad[i]);
        assert_true(strlen(err) > 0);
    }
    struct cidrs full = {0};
    for (int i = 0; i < CIDRS_MAX; i++)
        assert_true(cidrs_add(&full, "10.0.0.1", err, sizeof err));
    assert_false(cidrs_add(&full, "10.0.0.2", err, sizeof err));
}

static const char *client(const struct cidrs *l, const char *peer, const char *xff)
{
    static char out[ADDR_TEXT_MAX];
    client_address(l, peer, xff, out, sizeof out);
    return out;
}

static void test_client_address(void **state)
{
    (void)state;
    struct cidrs none = {0}, l = {0};
    char err[128];
    assert_true(cidrs_add(&l, "127.0.0.1/32,10.0.0.0/8,2001:db8:ff::/48", err, sizeof err));
    /* without trusted proxies, X-Forwarded-For is ignored */
    assert_string_equal(client(&none, "127.0.0.1", "203.0.113.5"), "127.0.0.1");
    /* from an untrusted peer too */
    assert_string_equal(client(&l, "198.51.100.1", "203.0.113.5"), "198.51.100.1");
    /* a trusted peer without the header */
    assert_string_equal(client(&l, "127.0.0.1", NULL), "127.0.0.1");
    assert_string_equal(client(&l, "127.0.0.1", ""), "127.0.0.1");
    /* the right-most entry that is not a trusted proxy */
    assert_string_equal(client(&l, "127.0.0.1", "203.0.113.5"), "203.0.113.5");
    assert_string_equal(client(&l, "127.0.0.1", "1.1.1.1, 203.0.113.5, 10.1.1.1"), "203.0.113.5");
    assert_string_equal(client(&l, "::ffff:127.0.0.1", "6.6.6.6,203.0.113.5"), "203.0.113.5");
    /* a spoofed left part does not matter */
    assert_string_equal(client(&l, "127.0.0.1", "10.0.0.9, 198.51.100.77"), "198.51.100.77");
    /* everyone in the chain trusted: the left-most */
    assert_string_equal(client(&l, "127.0.0.1", "10.0.0.3,10.0.0.4"), "10.0.0.3");
    /* IPv6, brackets, ports, spacing, canonical text */
    assert_string_equal(client(&l, "2001:db8:ff::1", "2001:DB8::0:7"), "2001:db8::7");
    assert_string_equal(client(&l, "127.0.0.1", "[2001:db8::7]:4431"), "2001:db8::7");
    assert_string_equal(client(&l, "127.0.0.1", " \t203.0.113.5:8080 \t"), "203.0.113.5");
    /* an entry that is no address stops at the last trusted hop */
    assert_string_equal(client(&l, "127.0.0.1", "203.0.113.5, unknown"), "127.0.0.1");
    assert_string_equal(client(&l, "127.0.0.1", "203.0.113.5, garbage, 10.0.0.8"), "10.0.0.8");
    assert_string_equal(client(&l, "127.0.0.1", "203.0.113.5,,"), "127.0.0.1");
    /* a peer without an IP address */
    assert_string_equal(client(&l, "", "203.0.113.5"), "");
}

static void test_throttle_key(void **state)
{
    (void)state;
    char out[ADDR_TEXT_MAX];
    addr_throttle_key("203.0.113.5", out, sizeof out);
    assert_string_equal(out, "203.0.113.5");
    addr_throttle_key("2001:db8:1:2:3:4:5:6", out, sizeof out);
    assert_string_equal(out, "2001:db8:1:2::/64");
    char other[ADDR_TEXT_MAX];
    addr_throttle_key("2001:db8:1:2:ffff::1", other, sizeof other);
    assert_string_equal(out, other); /* one /64, one key */
    addr_throttle_key("2001:db8:1:3::1", other, sizeof other);
    assert_string_not_equal(out, other);
    addr_throttle_key("", out, sizeof out);
    assert_string_equal(out, "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_parse_and_format), cmocka_unit_test(test_sockaddr),
        cmocka_unit_test(test_cidrs),            cmocka_unit_test(test_client_address),
        cmocka_unit_test(test_throttle_key),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
