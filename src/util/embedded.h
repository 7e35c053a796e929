/* Files built into the binary (scripts/embed.py writes the table at build time from the
 * list in CMakeLists.txt): the OpenAPI document and the reference page's files. */
#ifndef HIP_EMBEDDED_H
#define HIP_EMBEDDED_H

#include <stddef.h>

struct embedded {
    const char *name; /* the file's name in the repository, e.g. "docs/openapi.json" */
    const unsigned char *data;
    size_t len;
    const char *sha256; /* of the data, in hex: the file's ETag */
};

extern const struct embedded EMBEDDED[];
extern const size_t EMBEDDED_COUNT;

/* The embedded file of that name, or NULL. */
const struct embedded *embedded_find(const char *name);

#endif
