/* Versioned schema migrations, applied in order at start under PRAGMA user_version. */
#ifndef HIP_MIGRATIONS_H
#define HIP_MIGRATIONS_H

#include <sqlite3.h>

#include "util/err.h"

bool migrations_apply(sqlite3 *db, struct herr *e);
int migrations_latest(void);

#endif
