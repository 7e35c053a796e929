#include "util/netaddr.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>

static const unsigned char V4_MAPPED[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff};

static bool is_v4(const unsigned char a[16]) { return memcmp(a, V4_MAPPED, sizeof V4_MAPPED) == 0; }

/* Parses n bytes of text (not NUL-terminated) as an address. */
static bool parse_n(const char *text, size_t n, unsigned char out[16])
{
    char buf[ADDR_TEXT_MAX];
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, text, n);
    buf[n] = '\0';
    if (inet_pton(AF_INET6, buf, out) == 1)
        return true;
    memcpy(out, V4_MAPPED, sizeof V4_MAPPED);
    return inet_pton(AF_INET, buf, out + 12) == 1;
}

bool addr_parse(const char *text, unsigned char out[16]) { return text && parse_n(text, strlen(text), out); }

void addr_format(const unsigned char a[16], char *out, size_t cap)
{
    char buf[INET6_ADDRSTRLEN];
    bool ok = is_v4(a) ? inet_ntop(AF_INET, a + 12, buf, sizeof buf) != NULL
                       : inet_ntop(AF_INET6, a, buf, sizeof buf) != NULL;
    snprintf(out, cap, "%s", ok ? buf : "");
}

void addr_of_sockaddr(const struct sockaddr *sa, char *out, size_t cap)
{
    unsigned char a[16];
    if (sa && sa->sa_family == AF_INET) {
        memcpy(a, V4_MAPPED, sizeof V4_MAPPED);
        memcpy(a + 12, &((const struct sockaddr_in *)sa)->sin_addr, 4);
    } else if (sa && sa->sa_family == AF_INET6) {
        memcpy(a, &((const struct sockaddr_in6 *)sa)->sin6_addr, 16);
    } else {
        snprintf(out, cap, "%s", "");
        return;
    }
    addr_format(a, out, cap);
}

static bool ows(char c) { return c == ' ' || c == '\t'; }

/* Narrows [*s, *e) to its content without SP and HTAB around it. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && ows(**s))
        (*s)++;
    while (*e > *s && ows((*e)[-1]))
        (*e)--;
}

static void mask(unsigned char net[16], int bits)
{
    for (int i = 0; i < 16; i++) {
        int keep = bits - 8 * i;
        if (keep <= 0)
            net[i] = 0;
        else if (keep < 8)
            net[i] &= (unsigned char)(0xff << (8 - keep));
    }
}

static bool parse_cidr(const char *s, const char *e, struct cidr *out)
{
    const char *slash = memchr(s, '/', (size_t)(e - s));
    if (!parse_n(s, (size_t)((slash ? slash : e) - s), out->net))
        return false;
    int max = is_v4(out->net) ? 32 : 128, bits = max;
    if (slash) {
        const char *p = slash + 1;
        if (p == e || e - p > 3)
            return false;
        bits = 0;
        for (; p < e; p++) {
            if (*p < '0' || *p > '9')
                return false;
            bits = bits * 10 + (*p - '0');
        }
        if (bits > max)
            return false;
    }
    out->bits = bits + (max == 32 ? 96 : 0);
    mask(out->net, out->bits);
    return true;
}

bool cidrs_add(struct cidrs *list, const char *text, char *err, size_t errlen)
{
    const char *p = text;
    for (;;) {
        const char *end = strchr(p, ',');
        if (!end)
            end = p + strlen(p);
        const char *s = p, *e = end;
        trim(&s, &e);
        if (list->n >= CIDRS_MAX) {
            snprintf(err, errlen, "at most %d trusted proxy ranges", CIDRS_MAX);
            return false;
        }
        if (!parse_cidr(s, e, &list->items[list->n])) {
            snprintf(err, errlen, "'%.*s' is not an IPv4 or IPv6 address or CIDR range", (int)(e - s), s);
            return false;
        }
        list->n++;
        if (!*end)
            return true;
        p = end + 1;
    }
}

bool cidrs_contain(const struct cidrs *list, const unsigned char a[16])
{
    for (int i = 0; i < list->n; i++) {
        unsigned char x[16];
        memcpy(x, a, sizeof x);
        mask(x, list->items[i].bits);
        if (memcmp(x, list->items[i].net, sizeof x) == 0)
            return true;
    }
    return false;
}

/* One X-Forwarded-For entry: "addr", "[v6]", "[v6]:port" or "v4:port". */
static bool parse_forwarded(const char *s, const char *e, unsigned char out[16])
{
    trim(&s, &e);
    if (s < e && *s == '[') {
        const char *close = memchr(s, ']', (size_t)(e - s));
        return close && parse_n(s + 1, (size_t)(close - s - 1), out);
    }
    const char *colon = memchr(s, ':', (size_t)(e - s));
    if (colon && !memchr(colon + 1, ':', (size_t)(e - colon - 1)))
        return parse_n(s, (size_t)(colon - s), out) && is_v4(out);
    return parse_n(s, (size_t)(e - s), out);
}

void client_address(const struct cidrs *trusted, const char *peer, const char *xff, char *out, size_t cap)
{
    unsigned char a[16];
    if (!addr_parse(peer, a)) {
        snprintf(out, cap, "%s", peer ? peer : "");
        return;
    }
    addr_format(a, out, cap);
    if (!xff || !cidrs_contain(trusted, a))
        return;
    const char *end = xff + strlen(xff);
    for (;;) {
        const char *start = end;
        while (start > xff && start[-1] != ',')
            start--;
        if (!parse_forwarded(start, end, a))
            return; /* not an address: keep the last trusted hop */
        addr_format(a, out, cap);
        if (!cidrs_contain(trusted, a) || start == xff)
            return;
        end = start - 1;
    }
}

void addr_throttle_key(const char *addr, char *out, size_t cap)
{
    unsigned char a[16];
    if (!addr_parse(addr, a)) {
        snprintf(out, cap, "%s", addr ? addr : "");
        return;
    }
    if (is_v4(a)) {
        addr_format(a, out, cap);
        return;
    }
    char text[ADDR_TEXT_MAX];
    memset(a + 8, 0, 8);
    addr_format(a, text, sizeof text);
    snprintf(out, cap, "%s/64", text);
}
