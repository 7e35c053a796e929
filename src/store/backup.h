/* An online backup of a SQLite database (`hipusers backup`), with SQLite's backup API:
 * consistent while servers write to it, never blocking them. */
#ifndef HIP_BACKUP_H
#define HIP_BACKUP_H

#include <stdbool.h>
#include <stddef.h>

struct backup_result {
    long pages;      /* pages copied */
    long long bytes; /* size of the copy */
};

/* Copies the database at db_path to to_path: into a new file (mode 0600) beside to_path,
 * checked (PRAGMA quick_check), synced, then renamed over to_path, so to_path is either
 * its old self or a whole copy. Refuses a to_path that is the database or one of its
 * companion files. On failure, returns false with the reason in err. */
bool sqlite_backup(const char *db_path, const char *to_path, struct backup_result *out, char *err, size_t cap);

#endif
