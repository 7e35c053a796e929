/* Client addresses: IPv4 and IPv6 text, CIDR lists of trusted proxies, and the client
 * address behind them (X-Forwarded-For). Pure functions over inet_pton/inet_ntop. */
#ifndef HIP_NETADDR_H
#define HIP_NETADDR_H

#include <stdbool.h>
#include <stddef.h>

struct sockaddr;

/* Room for any address this module writes: an IPv6 text and a "/64". */
#define ADDR_TEXT_MAX 56
#define CIDRS_MAX 64

/* IPv4 is held as IPv4-mapped IPv6 (::ffff:a.b.c.d), so one comparison serves both. */
struct cidr {
    unsigned char net[16];
    int bits; /* 0..128 */
};

struct cidrs {
    struct cidr items[CIDRS_MAX];
    int n;
};

/* An IPv4 or IPv6 address in text (no port, no brackets). */
bool addr_parse(const char *text, unsigned char out[16]);
/* The canonical text: dotted quad for IPv4 (also when mapped), RFC 5952 for IPv6. */
void addr_format(const unsigned char a[16], char *out, size_t cap);
/* The peer of a socket as canonical text, "" when it has no IP address. */
void addr_of_sockaddr(const struct sockaddr *sa, char *out, size_t cap);

/* Appends "ADDR[/BITS]" entries separated by commas (spaces allowed around them).
 * false with a message in err for a malformed entry or more than CIDRS_MAX in all. */
bool cidrs_add(struct cidrs *list, const char *text, char *err, size_t errlen);
bool cidrs_contain(const struct cidrs *list, const unsigned char a[16]);

/* The address of the client: the peer itself unless the peer is a trusted proxy; then
 * the right-most X-Forwarded-For entry that is not a trusted proxy (entries may carry
 * a port or brackets). An entry that is no address ends the walk at the last trusted
 * hop. xff: every X-Forwarded-For value, joined by commas, or NULL. */
void client_address(const struct cidrs *trusted, const char *peer, const char *xff, char *out, size_t cap);

/* What the login throttle counts an address as: IPv4 itself, IPv6 its /64 (one
 * subscriber gets a whole /64, so counting single IPv6 addresses would count nothing). */
void addr_throttle_key(const char *addr, char *out, size_t cap);

#endif
