/* A VFS shim: the default VFS, with a write-ahead log's consecutive writes gathered and sent
 * to the file in one write (sqlite_walbuf.h). */
#include "store/sqlite_walbuf.h"

#include <pthread.h>
#include <sqlite3.h>
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

/* What one WAL may hold in memory before it is written out: 254 frames of 4 KiB pages. */
#define WALBUF_CAP (1u << 20)

struct wal_file {
    sqlite3_file base;  /* this shim's methods */
    sqlite3_file *real; /* the default VFS's file, in the same allocation, after this struct */
    unsigned char *buf; /* WALBUF_CAP bytes, allocated at the first write */
    size_t len;         /* bytes gathered: they belong at [off, off + len) */
    sqlite3_int64 off;
};

/* The most the default VFS writes in one call: it keeps the low 17 bits of a write's length
 * (a write is at most a page to SQLite), so a longer one would come out short. */
#define REAL_WRITE_MAX (64u << 10)

/* Writes out what is gathered, in writes of REAL_WRITE_MAX. The bytes are dropped either
 * way: on an error SQLite fails the transaction, and its next one writes the frames again. */
static int wal_flush(struct wal_file *w)
{
    int rc = SQLITE_OK;
    for (size_t done = 0; done < w->len && rc == SQLITE_OK; done += REAL_WRITE_MAX) {
        size_t n = w->len - done < REAL_WRITE_MAX ? w->len - done : REAL_WRITE_MAX;
        rc = w->real->pMethods->xWrite(w->real, w->buf + done, (int)n, w->off + (sqlite3_int64)done);
    }
    w->len = 0;
    return rc;
}

static bool overlaps(const struct wal_file *w, sqlite3_int64 ofst, int n)
{
    return w->len && ofst < w->off + (sqlite3_int64)w->len && ofst + n > w->off;
}

static int wal_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 ofst)
{
    struct wal_file *w = (struct wal_file *)f;
    sqlite3_int64 end = w->off + (sqlite3_int64)w->len;
    if (w->len && ofst >= w->off && ofst + n <= end) { /* a frame rewritten (its checksum) */
        memcpy(w->buf + (ofst - w->off), p, (size_t)n);
        return SQLITE_OK;
    }
    if (w->len && ofst == end && w->len + (size_t)n <= WALBUF_CAP) {
        memcpy(w->buf + w->len, p, (size_t)n);
        w->len += (size_t)n;
        return SQLITE_OK;
    }
    int rc = wal_flush(w);
    if (rc != SQLITE_OK)
        return rc;
    if (!w->buf && (size_t)n <= REAL_WRITE_MAX)
        w->buf = malloc(WALBUF_CAP);
    if (!w->buf || (size_t)n > REAL_WRITE_MAX)
        return w->real->pMethods->xWrite(w->real, p, n, ofst);
    memcpy(w->buf, p, (size_t)n);
    w->len = (size_t)n;
    w->off = ofst;
    return SQLITE_OK;
}

static int wal_read(sqlite3_file *f, void *p, int n, sqlite3_int64 ofst)
{
    struct wal_file *w = (struct wal_file *)f;
    if (overlaps(w, ofst, n)) {
        int rc = wal_flush(w);
        if (rc != SQLITE_OK)
            return rc;
    }
    return w->real->pMethods->xRead(w->real, p, n, ofst);
}

static int wal_sync(sqlite3_file *f, int flags)
{
    struct wal_file *w = (struct wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xSync(w->real, flags);
}

static int wal_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    struct wal_file *w = (struct wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xTruncate(w->real, size);
}

static int wal_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    struct wal_file *w = (struct wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFileSize(w->real, size);
}

static int wal_close(sqlite3_file *f)
{
    struct wal_file *w = (struct wal_file *)f;
    int rc = wal_flush(w);
    int rc2 = w->real->pMethods->xClose(w->real);
    free(w->buf);
    w->buf = NULL;
    return rc != SQLITE_OK ? rc : rc2;
}

/* The rest as the default VFS's file does them. A WAL file has no locks, shared memory or
 * mappings of its own, but whatever SQLite asks is passed on; a mapping sees the file, so
 * what is gathered goes there first. */
#define REAL(f) (((struct wal_file *)(f))->real)
static int wal_lock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xLock(REAL(f), l); }
static int wal_unlock(sqlite3_file *f, int l) { return REAL(f)->pMethods->xUnlock(REAL(f), l); }
static int wal_reserved(sqlite3_file *f, int *out) { return REAL(f)->pMethods->xCheckReservedLock(REAL(f), out); }
static int wal_control(sqlite3_file *f, int op, void *arg) { return REAL(f)->pMethods->xFileControl(REAL(f), op, arg); }
static int wal_sector(sqlite3_file *f) { return REAL(f)->pMethods->xSectorSize(REAL(f)); }
static int wal_device(sqlite3_file *f) { return REAL(f)->pMethods->xDeviceCharacteristics(REAL(f)); }
static int wal_shm_map(sqlite3_file *f, int pg, int sz, int extend, void volatile **pp)
{
    return REAL(f)->pMethods->xShmMap(REAL(f), pg, sz, extend, pp);
}
static int wal_shm_lock(sqlite3_file *f, int ofst, int n, int flags)
{
    return REAL(f)->pMethods->xShmLock(REAL(f), ofst, n, flags);
}
static void wal_shm_barrier(sqlite3_file *f) { REAL(f)->pMethods->xShmBarrier(REAL(f)); }
static int wal_shm_unmap(sqlite3_file *f, int del) { return REAL(f)->pMethods->xShmUnmap(REAL(f), del); }
static int wal_fetch(sqlite3_file *f, sqlite3_int64 ofst, int n, void **pp)
{
    struct wal_file *w = (struct wal_file *)f;
    int rc = wal_flush(w);
    return rc != SQLITE_OK ? rc : w->real->pMethods->xFetch(w->real, ofst, n, pp);
}
static int wal_unfetch(sqlite3_file *f, sqlite3_int64 ofst, void *p)
{
    return REAL(f)->pMethods->xUnfetch(REAL(f), ofst, p);
}

/* Version 2's and 3's methods are taken only from a default VFS whose files have them. */
static const sqlite3_io_methods wal_methods[3] = {
    {1, wal_close, wal_read, wal_write, wal_truncate, wal_sync, wal_file_size, wal_lock, wal_unlock, wal_reserved,
     wal_control, wal_sector, wal_device, NULL, NULL, NULL, NULL, NULL, NULL},
    {2, wal_close, wal_read, wal_write, wal_truncate, wal_sync, wal_file_size, wal_lock, wal_unlock, wal_reserved,
     wal_control, wal_sector, wal_device, wal_shm_map, wal_shm_lock, wal_shm_barrier, wal_shm_unmap, NULL, NULL},
    {3, wal_close, wal_read, wal_write, wal_truncate, wal_sync, wal_file_size, wal_lock, wal_unlock, wal_reserved,
     wal_control, wal_sector, wal_device, wal_shm_map, wal_shm_lock, wal_shm_barrier, wal_shm_unmap, wal_fetch,
     wal_unfetch},
};

/* Every file but a WAL is the default VFS's own, opened in place: SQLite sized the
 * allocation for a wal_file and the default file after it, and the default file fits. */
static int vfs_open(sqlite3_vfs *vfs, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    sqlite3_vfs *root = vfs->pAppData;
    if (!(flags & SQLITE_OPEN_WAL))
        return root->xOpen(root, name, f, flags, out);
    struct wal_file *w = (struct wal_file *)f;
    memset(w, 0, sizeof *w);
    w->real = (sqlite3_file *)(w + 1);
    int rc = root->xOpen(root, name, w->real, flags, out);
    if (rc != SQLITE_OK || !w->real->pMethods) {
        if (w->real->pMethods)
            w->real->pMethods->xClose(w->real);
        w->base.pMethods = NULL;
        return rc != SQLITE_OK ? rc : SQLITE_CANTOPEN;
    }
    int version = w->real->pMethods->iVersion;
    w->base.pMethods = &wal_methods[(version < 1 ? 1 : version > 3 ? 3 : version) - 1];
    return SQLITE_OK;
}

#define ROOT(v) ((sqlite3_vfs *)(v)->pAppData)
static int vfs_delete(sqlite3_vfs *v, const char *name, int sync) { return ROOT(v)->xDelete(ROOT(v), name, sync); }
static int vfs_access(sqlite3_vfs *v, const char *name, int flags, int *out)
{
    return ROOT(v)->xAccess(ROOT(v), name, flags, out);
}
static int vfs_full_pathname(sqlite3_vfs *v, const char *name, int n, char *out)
{
    return ROOT(v)->xFullPathname(ROOT(v), name, n, out);
}
static void *vfs_dl_open(sqlite3_vfs *v, const char *name) { return ROOT(v)->xDlOpen(ROOT(v), name); }
static void vfs_dl_error(sqlite3_vfs *v, int n, char *msg) { ROOT(v)->xDlError(ROOT(v), n, msg); }
static void (*vfs_dl_sym(sqlite3_vfs *v, void *h, const char *sym))(void) { return ROOT(v)->xDlSym(ROOT(v), h, sym); }
static void vfs_dl_close(sqlite3_vfs *v, void *h) { ROOT(v)->xDlClose(ROOT(v), h); }
static int vfs_randomness(sqlite3_vfs *v, int n, char *out) { return ROOT(v)->xRandomness(ROOT(v), n, out); }
static int vfs_sleep(sqlite3_vfs *v, int us) { return ROOT(v)->xSleep(ROOT(v), us); }
static int vfs_current_time(sqlite3_vfs *v, double *t) { return ROOT(v)->xCurrentTime(ROOT(v), t); }
static int vfs_last_error(sqlite3_vfs *v, int n, char *msg) { return ROOT(v)->xGetLastError(ROOT(v), n, msg); }
static int vfs_current_time64(sqlite3_vfs *v, sqlite3_int64 *t) { return ROOT(v)->xCurrentTimeInt64(ROOT(v), t); }
static int vfs_set_call(sqlite3_vfs *v, const char *name, sqlite3_syscall_ptr p)
{
    return ROOT(v)->xSetSystemCall(ROOT(v), name, p);
}
static sqlite3_syscall_ptr vfs_get_call(sqlite3_vfs *v, const char *name)
{
    return ROOT(v)->xGetSystemCall(ROOT(v), name);
}
static const char *vfs_next_call(sqlite3_vfs *v, const char *name) { return ROOT(v)->xNextSystemCall(ROOT(v), name); }

/* Written once, under pthread_once, before any connection can use it; SQLite keeps the
 * pointer for the process's life. */
static sqlite3_vfs walbuf_vfs;
static bool walbuf_ready;
static pthread_once_t walbuf_once = PTHREAD_ONCE_INIT;

static void walbuf_register(void)
{
    sqlite3_vfs *root = sqlite3_vfs_find(NULL);
    if (!root || root->iVersion < 1)
        return;
    sqlite3_vfs v = {
        .iVersion = root->iVersion < 3 ? root->iVersion : 3,
        .szOsFile = (int)sizeof(struct wal_file) + root->szOsFile,
        .mxPathname = root->mxPathname,
        .zName = "hipusers-walbuf",
        .pAppData = root,
        .xOpen = vfs_open,
        .xDelete = vfs_delete,
        .xAccess = vfs_access,
        .xFullPathname = vfs_full_pathname,
        .xDlOpen = vfs_dl_open,
        .xDlError = vfs_dl_error,
        .xDlSym = vfs_dl_sym,
        .xDlClose = vfs_dl_close,
        .xRandomness = vfs_randomness,
        .xSleep = vfs_sleep,
        .xCurrentTime = vfs_current_time,
        .xGetLastError = vfs_last_error,
    };
    if (v.iVersion >= 2)
        v.xCurrentTimeInt64 = vfs_current_time64;
    if (v.iVersion >= 3) {
        v.xSetSystemCall = vfs_set_call;
        v.xGetSystemCall = vfs_get_call;
        v.xNextSystemCall = vfs_next_call;
    }
    walbuf_vfs = v;
    walbuf_ready = sqlite3_vfs_register(&walbuf_vfs, 0) == SQLITE_OK;
}

const char *sq_walbuf_vfs(void)
{
    pthread_once(&walbuf_once, walbuf_register);
    return walbuf_ready ? walbuf_vfs.zName : NULL;
}
