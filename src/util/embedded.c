#include "util/embedded.h"

#include <string.h>

const struct embedded *embedded_find(const char *name)
{
    for (size_t i = 0; i < EMBEDDED_COUNT; i++)
        if (strcmp(EMBEDDED[i].name, name) == 0)
            return &EMBEDDED[i];
    return NULL;
}
