/* The access log line: one JSON object per request, written with one write(2). */
#ifndef HIP_ACCESSLOG_H
#define HIP_ACCESSLOG_H

#include <stdbool.h>

#include "util/jbuf.h"

struct access_entry {
    const char *method, *path;
    int status;
    long long us;       /* from the request's start to its end */
    const char *tenant; /* NULL: null (not authenticated) */
    const char *request_id;
    bool completed;     /* the answer went out whole */
};

/* {"method":..,"path":..,"status":..,"us":..,"tenant":..|null,"request_id":..,"completed":..}
 * and a newline, as json_pack + json_dumps(JSON_COMPACT) wrote it; a string that is not
 * UTF-8 (a method of raw bytes) is written with U+FFFD for each stray byte instead of
 * losing the line. */
void access_log_format(struct jbuf *b, const struct access_entry *e);

/* Formats e into a stack buffer (the arena when longer) and writes it to fd at once. */
void access_log_write(int fd, struct arena *a, const struct access_entry *e);

#endif
