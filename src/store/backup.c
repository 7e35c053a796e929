#include "store/backup.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <limits.h>
#include <sqlite3.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* How long a busy source may hold the copy up, in all. */
#define BUSY_MS 30000
#define RETRY_MS 50

__attribute__((format(printf, 3, 4))) static bool fail(char *err, size_t cap, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, cap, fmt, ap);
    va_end(ap);
    return false;
}

/* path with its directory made absolute and symbolic links resolved (the file itself
 * need not exist); false when the directory does not exist. */
static bool canonical(const char *path, char *out, size_t cap)
{
    char a[PATH_MAX], b[PATH_MAX], dir[PATH_MAX];
    snprintf(a, sizeof a, "%s", path);
    snprintf(b, sizeof b, "%s", path);
    if (!realpath(dirname(a), dir))
        return false;
    const char *base = basename(b);
    int n = snprintf(out, cap, "%s/%s", strcmp(dir, "/") == 0 ? "" : dir, base);
    return n > 0 && (size_t)n < cap;
}

/* Is `to` the database, or its -wal, -shm or -journal file? */
static bool is_database_file(const char *db, const struct stat *dbst, const char *to)
{
    struct stat st;
    if (stat(to, &st) == 0 && st.st_dev == dbst->st_dev && st.st_ino == dbst->st_ino)
        return true;
    char cdb[PATH_MAX], cto[PATH_MAX];
    if (!canonical(db, cdb, sizeof cdb) || !canonical(to, cto, sizeof cto))
        return false;
    static const char *const suffix[] = {"", "-wal", "-shm", "-journal"};
    size_t n = strlen(cdb);
    for (size_t i = 0; i < sizeof suffix / sizeof suffix[0]; i++)
        if (strncmp(cto, cdb, n) == 0 && strcmp(cto + n, suffix[i]) == 0)
            return true;
    return false;
}

static bool sync_path(const char *path, int flags)
{
    int fd = open(path, flags | O_CLOEXEC);
    if (fd < 0)
        return false;
    bool ok = fsync(fd) == 0;
    close(fd);
    return ok;
}

/* The copy's own checks: one file of its own (no WAL beside it), and sound. */
static bool finish_copy(sqlite3 *dst, char *err, size_t cap)
{
    sqlite3_stmt *st = NULL;
    bool ok = sqlite3_exec(dst, "PRAGMA journal_mode=DELETE", NULL, NULL, NULL) == SQLITE_OK &&
              sqlite3_prepare_v2(dst, "PRAGMA quick_check", -1, &st, NULL) == SQLITE_OK &&
              sqlite3_step(st) == SQLITE_ROW;
    const unsigned char *verdict = ok ? sqlite3_column_text(st, 0) : NULL;
    if (!ok)
        snprintf(err, cap, "checking the copy failed: %s", sqlite3_errmsg(dst));
    else if (!verdict || strcmp((const char *)verdict, "ok") != 0)
        snprintf(err, cap, "the copy is not sound: %s", verdict ? (const char *)verdict : "?");
    ok = ok && verdict && strcmp((const char *)verdict, "ok") == 0;
    sqlite3_finalize(st);
    return ok;
}

/* The pages of the database at db_path into the (empty) file tmp, checked. */
static bool copy(const char *db_path, const char *tmp, struct backup_result *out, char *err, size_t cap)
{
    sqlite3 *src = NULL, *dst = NULL;
    bool ok = false;
    /* Read-only: the copy never writes the database (and never creates it). */
    if (sqlite3_open_v2(db_path, &src, SQLITE_OPEN_READONLY, NULL) != SQLITE_OK) {
        snprintf(err, cap, "cannot open the database %s: %s", db_path, sqlite3_errmsg(src));
    } else if (sqlite3_open_v2(tmp, &dst, SQLITE_OPEN_READWRITE, NULL) != SQLITE_OK) {
        snprintf(err, cap, "cannot open the copy %s: %s", tmp, sqlite3_errmsg(dst));
    } else {
        sqlite3_busy_timeout(src, BUSY_MS);
        sqlite3_backup *b = sqlite3_backup_init(dst, "main", src, "main");
        if (!b) {
            snprintf(err, cap, "cannot start the backup: %s", sqlite3_errmsg(dst));
        } else {
            /* All pages in one step: one read transaction, so one consistent snapshot. In WAL
             * mode it never blocks the writers (a copy in several steps would start over
             * whenever a server wrote in between). */
            int rc, waited = 0;
            while ((rc = sqlite3_backup_step(b, -1)) == SQLITE_BUSY || rc == SQLITE_LOCKED) {
                if (waited >= BUSY_MS)
                    break;
                sqlite3_sleep(RETRY_MS);
                waited += RETRY_MS;
            }
            out->pages = sqlite3_backup_pagecount(b);
            int frc = sqlite3_backup_finish(b);
            if (rc != SQLITE_DONE || frc != SQLITE_OK)
                snprintf(err, cap, "the backup failed: %s", sqlite3_errstr(rc != SQLITE_DONE ? rc : frc));
            else
                ok = finish_copy(dst, err, cap);
        }
    }
    if (dst && sqlite3_close(dst) != SQLITE_OK && ok) {
        snprintf(err, cap, "cannot close the copy: %s", sqlite3_errmsg(dst));
        ok = false;
    }
    sqlite3_close(src);
    return ok;
}

bool sqlite_backup(const char *db_path, const char *to_path, struct backup_result *out, char *err, size_t cap)
{
    struct stat dbst, tost;
    if (stat(db_path, &dbst) != 0)
        return fail(err, cap, "cannot read the database %s: %s", db_path, strerror(errno));
    if (!S_ISREG(dbst.st_mode))
        return fail(err, cap, "%s is not a database file", db_path);
    if (is_database_file(db_path, &dbst, to_path))
        return fail(err, cap, "%s is the database or one of its files; back up to another file", to_path);
    if (stat(to_path, &tost) == 0 && !S_ISREG(tost.st_mode))
        return fail(err, cap, "%s exists and is not a regular file", to_path);
    /* root copying another user's database would leave root-owned -wal/-shm files the
     * server could not open: copy as the database's owner. */
    if (geteuid() == 0 && dbst.st_uid != 0)
        return fail(err, cap, "%s belongs to another user: run the backup as that user (sudo -u ...)", db_path);

    char tmp[PATH_MAX];
    if ((size_t)snprintf(tmp, sizeof tmp, "%s.tmp-XXXXXX", to_path) >= sizeof tmp)
        return fail(err, cap, "path too long: %s", to_path);
    int fd = mkstemp(tmp); /* mode 0600, whatever the umask */
    if (fd < 0)
        return fail(err, cap, "cannot create a file beside %s: %s", to_path, strerror(errno));
    close(fd);

    char dirbuf[PATH_MAX];
    snprintf(dirbuf, sizeof dirbuf, "%s", to_path);
    struct stat st;
    bool ok = copy(db_path, tmp, out, err, cap);
    if (ok && (!sync_path(tmp, O_RDONLY) || stat(tmp, &st) != 0 || rename(tmp, to_path) != 0)) {
        snprintf(err, cap, "cannot put the copy in place at %s: %s", to_path, strerror(errno));
        ok = false;
    }
    if (!ok) {
        unlink(tmp);
        char journal[PATH_MAX + 16];
        snprintf(journal, sizeof journal, "%s-journal", tmp);
        unlink(journal);
        return false;
    }
    sync_path(dirname(dirbuf), O_RDONLY | O_DIRECTORY); /* the rename itself; best effort */
    out->bytes = (long long)st.st_size;
    return true;
}
