#include "util/log.h"

#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>

/* Built with jansson so a quote in a library's message cannot break the line. */
void log_line(const char *level, const char *msg, const char *detail, long code)
{
    json_t *o = json_pack("{s:s, s:s}", "level", level, "msg", msg);
    if (!o)
        return;
    if (detail)
        json_object_set_new(o, "detail", json_string(detail));
    if (code)
        json_object_set_new(o, "code", json_integer(code));
    char *txt = json_dumps(o, JSON_COMPACT);
    json_decref(o);
    if (txt) {
        fprintf(stderr, "%s\n", txt);
        free(txt);
    }
}
