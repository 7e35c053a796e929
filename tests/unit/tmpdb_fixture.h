/* A SQLite database's path in a fresh folder under /tmp, for a unit test, and the removal of
 * the file with its -wal and -shm files and the folder. */
#ifndef HIP_TEST_TMPDB_FIXTURE_H
#define HIP_TEST_TMPDB_FIXTURE_H

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <unistd.h>

struct tmpdb {
    char dir[64], path[128];
};

/* name: the folder's prefix and the file's name, as in "cache" for .../hipusers-cache-XXXXXX/cache.db */
static bool tmpdb_make(struct tmpdb *t, const char *name)
{
    snprintf(t->dir, sizeof t->dir, "/tmp/hipusers-%s-XXXXXX", name);
    if (!mkdtemp(t->dir))
        return false;
    snprintf(t->path, sizeof t->path, "%s/%s.db", t->dir, name);
    return true;
}

static void tmpdb_remove(const struct tmpdb *t)
{
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char f[160];
        snprintf(f, sizeof f, "%s%s", t->path, suffixes[i]);
        unlink(f);
    }
    rmdir(t->dir);
}

#endif
