/* Versioned schema migrations, applied in order at start: on SQLite under PRAGMA
 * user_version, on PostgreSQL in table hipusers_schema under an advisory lock. */
#ifndef HIP_MIGRATIONS_H
#define HIP_MIGRATIONS_H

#include <sqlite3.h>

#include "util/err.h"

/* Brings the schema to version target (0: the latest). */
bool migrations_apply(sqlite3 *db, int target, struct herr *e);
int migrations_latest(void);
/* What a PostgreSQL migration needs done in C, between its sql and its after. */
enum pg_hook {
    PG_HOOK_NONE,
    PG_HOOK_CHANGE_LOG, /* migration 6: the change log entries of the records written before */
};

/* A PostgreSQL migration: sql; then, when fold_table is set, fold_key filled in C with
 * text_fold_key(fold_column) for every row, and the hook; then after (when set). */
struct pg_migration {
    const char *sql;
    const char *fold_table, *fold_column, *fold_key;
    enum pg_hook hook;
    const char *after;
    bool report_unkeyed; /* the key is unique: say how many live rows were left without one */
};
/* PostgreSQL migration `version` (1..migrations_latest()). */
const struct pg_migration *migrations_pg(int version);

#endif
