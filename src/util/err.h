/* Errors travel as values: a handler fills one struct herr and returns; the HTTP
 * layer is the one place that turns it into a status line and a JSON body. */
#ifndef HIP_ERR_H
#define HIP_ERR_H

#include <jansson.h>
#include <stdbool.h>

#include "util/arena.h"

struct herr {
    int status;          /* HTTP status; 0 = no error */
    const char *message; /* arena or static string */
    json_t *fields;      /* {"field": ["why", ...]} or NULL; owned by the arena */
    json_t *extra;       /* extra members merged into the error body, or NULL */
    const char *allow;   /* Allow header for 405 */
    int retry_after;     /* seconds, for 429/503; 0 = none */
};

/* Sets status and message; keeps the first error when called twice. */
bool herr_set(struct herr *e, int status, const char *message);
/* Records a per-field complaint; the first one also becomes the message "field: why". */
void herr_field(struct herr *e, struct arena *a, const char *field, const char *why);

#endif
