#include "http/accesslog.h"

#include <stdio.h>
#include <string.h>
#include <unistd.h>

static void member(struct jbuf *b, bool *first, const char *key, const char *value)
{
    jbuf_key(b, first, key);
    if (value)
        jbuf_string_lossy(b, value, strlen(value));
    else
        jbuf_put(b, "null", 4);
}

void access_log_format(struct jbuf *b, const struct access_entry *e)
{
    bool first = true;
    char num[24];
    jbuf_put(b, "{", 1);
    member(b, &first, "method", e->method);
    member(b, &first, "path", e->path);
    jbuf_key(b, &first, "status");
    jbuf_put(b, num, (size_t)snprintf(num, sizeof num, "%d", e->status));
    jbuf_key(b, &first, "us");
    jbuf_put(b, num, (size_t)snprintf(num, sizeof num, "%lld", e->us));
    member(b, &first, "tenant", e->tenant);
    member(b, &first, "request_id", e->request_id);
    jbuf_key(b, &first, "completed");
    jbuf_puts(b, e->completed ? "true" : "false");
    jbuf_put(b, "}\n", 2);
}

void access_log_write(int fd, struct arena *a, const struct access_entry *e)
{
    char stack[1024];
    struct jbuf b;
    jbuf_init(&b, a, stack, sizeof stack);
    access_log_format(&b, e);
    /* One write: lines of concurrent requests never interleave (stderr is a pipe or a
     * file opened for appending, and a line is far below PIPE_BUF). */
    size_t off = 0;
    while (off < b.len) {
        ssize_t n = write(fd, b.p + off, b.len - off);
        if (n <= 0)
            break;
        off += (size_t)n;
    }
}
