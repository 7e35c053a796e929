/* Conditional requests (RFC 9110 §13.1.1 If-Match, §13.1.2 If-None-Match): an entity-tag
 * list against the current tag. Pure: unit-tested and fuzzed. */
#ifndef HIP_ETAG_H
#define HIP_ETAG_H

#include <stdbool.h>

enum etag_match {
    ETAG_NO_MATCH,
    ETAG_MATCH,
    ETAG_INVALID, /* the field is neither "*" nor a list of entity-tags */
};

/* Does the field value (`*` or a comma-separated list of entity-tags, `"x"` or `W/"x"`,
 * OWS and empty elements allowed) name current (a quoted strong tag)? `*` matches any
 * current tag. Strong comparison (If-Match): a weak tag never matches; weak comparison
 * (If-None-Match): the opaque parts are compared, W/ or not. */
enum etag_match etag_list_match(const char *field, const char *current, bool weak);

#endif
