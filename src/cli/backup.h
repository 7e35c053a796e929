/* `hipusers backup`: an online copy of the SQLite database (src/store/backup.c). */
#ifndef HIP_CLI_BACKUP_H
#define HIP_CLI_BACKUP_H

/* db: the default database (HIPUSERS_DB or the built-in path) when --db is not given. */
int cmd_backup(const char *db, int argc, char **argv);

#endif
