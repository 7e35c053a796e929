/* The VFS that gathers a WAL's writes (src/store/sqlite_walbuf.c, included): what reaches
 * the file, when, and that a database used through it reads back everything it committed,
 * from another connection at once and after it is reopened. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <unistd.h>

#include "../../src/store/sqlite_walbuf.c"
#include "tmpdb_fixture.h"

/* ---- a file in memory under the shim, counting what it is asked ---- */

#define MEM_MAX (4u << 20)

static struct {
    unsigned char *data;
    sqlite3_int64 size;
    int writes, syncs, reads, closes;
    int fail_writes; /* the next write fails with this code, when set */
} mem;

static int mem_close(sqlite3_file *f)
{
    mem.closes++;
    return SQLITE_OK;
}
static int mem_read(sqlite3_file *f, void *p, int n, sqlite3_int64 ofst)
{
    mem.reads++;
    memset(p, 0, (size_t)n);
    if (ofst < mem.size)
        memcpy(p, mem.data + ofst, (size_t)(ofst + n <= mem.size ? n : mem.size - ofst));
    return ofst + n <= mem.size ? SQLITE_OK : SQLITE_IOERR_SHORT_READ;
}
static int mem_write(sqlite3_file *f, const void *p, int n, sqlite3_int64 ofst)
{
    if (mem.fail_writes) {
        int rc = mem.fail_writes;
        mem.fail_writes = 0;
        return rc;
    }
    assert_true(n <= (int)REAL_WRITE_MAX); /* the default VFS would write less */
    assert_true(ofst + n <= (sqlite3_int64)MEM_MAX);
    mem.writes++;
    memcpy(mem.data + ofst, p, (size_t)n);
    if (ofst + n > mem.size)
        mem.size = ofst + n;
    return SQLITE_OK;
}
static int mem_truncate(sqlite3_file *f, sqlite3_int64 size)
{
    mem.size = size;
    return SQLITE_OK;
}
static int mem_sync(sqlite3_file *f, int flags)
{
    mem.syncs++;
    return SQLITE_OK;
}
static int mem_file_size(sqlite3_file *f, sqlite3_int64 *size)
{
    *size = mem.size;
    return SQLITE_OK;
}
static int mem_lock(sqlite3_file *f, int l) { return SQLITE_OK; }
static int mem_reserved(sqlite3_file *f, int *out)
{
    *out = 0;
    return SQLITE_OK;
}
static int mem_control(sqlite3_file *f, int op, void *arg) { return SQLITE_NOTFOUND; }
static int mem_sector(sqlite3_file *f) { return 4096; }
static int mem_device(sqlite3_file *f) { return 0; }

static const sqlite3_io_methods mem_methods = {
    .iVersion = 1,
    .xClose = mem_close,
    .xRead = mem_read,
    .xWrite = mem_write,
    .xTruncate = mem_truncate,
    .xSync = mem_sync,
    .xFileSize = mem_file_size,
    .xLock = mem_lock,
    .xUnlock = mem_lock,
    .xCheckReservedLock = mem_reserved,
    .xFileControl = mem_control,
    .xSectorSize = mem_sector,
    .xDeviceCharacteristics = mem_device,
};

static int mem_open(sqlite3_vfs *v, sqlite3_filename name, sqlite3_file *f, int flags, int *out)
{
    f->pMethods = &mem_methods;
    return SQLITE_OK;
}

static sqlite3_vfs mem_vfs = {.iVersion = 1, .szOsFile = sizeof(sqlite3_file), .zName = "mem", .xOpen = mem_open};
static sqlite3_vfs shim = {.iVersion = 1, .pAppData = &mem_vfs};

struct opened {
    struct wal_file w;
    sqlite3_file real;
};

static int setup_mem(void **state)
{
    memset(&mem, 0, sizeof mem);
    mem.data = calloc(1, MEM_MAX);
    struct opened *o = calloc(1, sizeof *o);
    if (!mem.data || !o)
        return -1;
    int out = 0;
    if (vfs_open(&shim, "t.db-wal", &o->w.base, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_WAL, &out))
        return -1;
    *state = o;
    return 0;
}

static int teardown_mem(void **state)
{
    struct opened *o = *state;
    if (o->w.base.pMethods)
        o->w.base.pMethods->xClose(&o->w.base);
    free(o);
    free(mem.data);
    return 0;
}

#define FRAME 4120
#define FILE_OF(state) (&((struct opened *)*(state))->w.base)

/* As SQLite writes a commit of n frames after the WAL's header: 24 bytes, then the page. */
static void write_frames(sqlite3_file *f, unsigned char *expect, int first, int n)
{
    unsigned char hdr[24], page[4096];
    for (int i = first; i < first + n; i++) {
        memset(hdr, 0x40 + i % 50, sizeof hdr);
        memset(page, i % 251, sizeof page);
        sqlite3_int64 at = 32 + (sqlite3_int64)i * FRAME;
        assert_int_equal(f->pMethods->xWrite(f, hdr, sizeof hdr, at), SQLITE_OK);
        assert_int_equal(f->pMethods->xWrite(f, page, sizeof page, at + 24), SQLITE_OK);
        memcpy(expect + at, hdr, sizeof hdr);
        memcpy(expect + at + 24, page, sizeof page);
    }
}

/* A commit's 150 frames are 300 writes to SQLite and none to the file until the sync, which
 * sends them in writes of 64 KiB, then syncs. */
static void test_a_commit_reaches_the_file_at_its_sync(void **state)
{
    sqlite3_file *f = FILE_OF(state);
    unsigned char *expect = calloc(1, MEM_MAX);
    unsigned char whdr[32];
    memset(whdr, 0x77, sizeof whdr);
    assert_int_equal(f->pMethods->xWrite(f, whdr, sizeof whdr, 0), SQLITE_OK);
    memcpy(expect, whdr, sizeof whdr);
    write_frames(f, expect, 0, 150);
    assert_int_equal(mem.writes, 0);
    assert_int_equal(mem.size, 0);
    assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    size_t len = 32 + 150 * FRAME;
    assert_int_equal(mem.writes, (int)((len + REAL_WRITE_MAX - 1) / REAL_WRITE_MAX));
    assert_int_equal(mem.syncs, 1);
    assert_int_equal(mem.size, (sqlite3_int64)len);
    assert_memory_equal(mem.data, expect, len);
    /* the next commit continues where the last ended */
    write_frames(f, expect, 150, 3);
    assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    assert_int_equal(mem.size, (sqlite3_int64)(len + 3 * FRAME));
    assert_memory_equal(mem.data, expect, len + 3 * FRAME);
    free(expect);
}

/* SQLite reads back frames it wrote in the transaction (a rewritten checksum, a page spilled
 * from its cache): the read sees them, because what is gathered is written first. */
static void test_a_read_sees_gathered_bytes(void **state)
{
    sqlite3_file *f = FILE_OF(state);
    unsigned char *expect = calloc(1, MEM_MAX), got[FRAME];
    write_frames(f, expect, 0, 5);
    assert_int_equal(f->pMethods->xRead(f, got, FRAME, 32 + 2 * FRAME), SQLITE_OK);
    assert_memory_equal(got, expect + 32 + 2 * FRAME, FRAME);
    assert_int_equal(mem.syncs, 0);
    /* a read elsewhere leaves the gathered bytes alone */
    write_frames(f, expect, 5, 2);
    int writes = mem.writes;
    f->pMethods->xRead(f, got, 32, 0);
    assert_int_equal(mem.writes, writes);
    /* the size asked is the one the writes made */
    sqlite3_int64 size = 0;
    assert_int_equal(f->pMethods->xFileSize(f, &size), SQLITE_OK);
    assert_int_equal(size, 32 + 7 * FRAME);
    free(expect);
}

/* A write inside what is gathered replaces those bytes; a write that does not follow on
 * sends what is gathered first, so the file ends as if every write had gone straight there. */
static void test_rewrites_and_jumps_keep_the_order_of_writes(void **state)
{
    sqlite3_file *f = FILE_OF(state);
    unsigned char *expect = calloc(1, MEM_MAX);
    write_frames(f, expect, 0, 10);
    unsigned char cks[8];
    memset(cks, 0xee, sizeof cks);
    sqlite3_int64 at = 32 + 3 * FRAME + 16;
    assert_int_equal(f->pMethods->xWrite(f, cks, sizeof cks, at), SQLITE_OK);
    memcpy(expect + at, cks, sizeof cks);
    assert_int_equal(mem.writes, 0);
    /* straddling the end of what is gathered: not inside, not after it */
    unsigned char straddle[100];
    memset(straddle, 0x11, sizeof straddle);
    at = 32 + 10 * FRAME - 50;
    assert_int_equal(f->pMethods->xWrite(f, straddle, sizeof straddle, at), SQLITE_OK);
    memcpy(expect + at, straddle, sizeof straddle);
    assert_true(mem.writes > 0);
    /* a jump back to the start (SQLite starting the WAL over) */
    write_frames(f, expect, 0, 2);
    assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    assert_memory_equal(mem.data, expect, 32 + 10 * FRAME + 50);
    free(expect);
}

/* More than 1 MiB in one transaction goes out as it gathers, never more than 1 MiB held. */
static void test_a_long_transaction_is_written_as_it_goes(void **state)
{
    sqlite3_file *f = FILE_OF(state);
    unsigned char *expect = calloc(1, MEM_MAX);
    write_frames(f, expect, 0, 600); /* 2.4 MiB */
    struct wal_file *w = (struct wal_file *)f;
    assert_true(w->len <= WALBUF_CAP);
    assert_true(mem.size >= 32 + 600 * FRAME - (sqlite3_int64)WALBUF_CAP);
    assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    assert_memory_equal(mem.data, expect, 32 + 600 * FRAME);
    free(expect);
}

/* A write the file refuses (a full disk) is the sync's error, which fails SQLite's commit;
 * the bytes are dropped, and the file is asked nothing more for them. */
static void test_a_failed_write_is_the_syncs_error(void **state)
{
    sqlite3_file *f = FILE_OF(state);
    unsigned char *expect = calloc(1, MEM_MAX);
    write_frames(f, expect, 0, 4);
    mem.fail_writes = SQLITE_FULL;
    assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_FULL);
    assert_int_equal(mem.syncs, 0);
    assert_int_equal(mem.size, 0);
    assert_int_equal(f->pMethods->xSync(f, SQLITE_SYNC_NORMAL), SQLITE_OK);
    assert_int_equal(mem.writes, 0);
    free(expect);
}

/* Closing writes what is gathered; files that are not a WAL are the default VFS's own. */
static void test_close_writes_and_other_files_pass_through(void **state)
{
    sqlite3_file *f = FILE_OF(state);
    unsigned char *expect = calloc(1, MEM_MAX);
    write_frames(f, expect, 0, 3);
    assert_int_equal(f->pMethods->xClose(f), SQLITE_OK);
    f->pMethods = NULL;
    assert_int_equal(mem.closes, 1);
    assert_memory_equal(mem.data, expect, 32 + 3 * FRAME);

    struct opened o2;
    memset(&o2, 0, sizeof o2);
    int out = 0;
    assert_int_equal(vfs_open(&shim, "t.db", &o2.w.base, SQLITE_OPEN_READWRITE | SQLITE_OPEN_MAIN_DB, &out), SQLITE_OK);
    assert_ptr_equal(o2.w.base.pMethods, &mem_methods);
    free(expect);
}

/* ---- a real database through the shim ---- */

static struct tmpdb tmp;

static int setup_db(void **state) { return tmpdb_make(&tmp, "walbuf") ? 0 : -1; }

static int teardown_db(void **state)
{
    tmpdb_remove(&tmp);
    return 0;
}

static sqlite3 *open_db(void)
{
    sqlite3 *conn = NULL;
    const char *vfs = sq_walbuf_vfs();
    assert_non_null(vfs);
    assert_int_equal(sqlite3_open_v2(tmp.path, &conn, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE, vfs), SQLITE_OK);
    assert_int_equal(sqlite3_exec(conn, "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL;", NULL, NULL, NULL),
                     SQLITE_OK);
    return conn;
}

static long long one_int(sqlite3 *db, const char *sql)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    long long v = sqlite3_column_int64(st, 0);
    sqlite3_finalize(st);
    return v;
}

static const char *one_text(sqlite3 *db, const char *sql, char *out, size_t cap)
{
    sqlite3_stmt *st = NULL;
    assert_int_equal(sqlite3_prepare_v2(db, sql, -1, &st, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    snprintf(out, cap, "%s", (const char *)sqlite3_column_text(st, 0));
    sqlite3_finalize(st);
    return out;
}

/* Every commit is seen by another connection as soon as it returns; a transaction larger
 * than the page cache (its pages spilled into the WAL and read back) commits or rolls back
 * whole; and after both connections close, the file reopens with everything committed. */
static void test_a_database_through_the_shim(void **state)
{
    sqlite3 *w = open_db(), *r = open_db();
    assert_int_equal(sqlite3_exec(w, "CREATE TABLE t (k INTEGER PRIMARY KEY, v BLOB)", NULL, NULL, NULL), SQLITE_OK);
    for (int i = 1; i <= 200; i++) {
        char sql[128];
        snprintf(sql, sizeof sql, "INSERT INTO t VALUES (%d, randomblob(%d))", i, 100 + i * 37 % 3000);
        assert_int_equal(sqlite3_exec(w, sql, NULL, NULL, NULL), SQLITE_OK);
        assert_int_equal(one_int(r, "SELECT count(*) FROM t"), i);
    }
    assert_int_equal(sqlite3_exec(w, "PRAGMA cache_size = 10", NULL, NULL, NULL), SQLITE_OK);
    const char *big = "BEGIN; WITH RECURSIVE n(i) AS (SELECT 1000 UNION ALL SELECT i + 1 FROM n WHERE i < 2999)"
                      " INSERT INTO t SELECT i, randomblob(1500) FROM n;";
    assert_int_equal(sqlite3_exec(w, big, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(one_int(w, "SELECT count(*) FROM t"), 2200);
    assert_int_equal(sqlite3_exec(w, "ROLLBACK", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 200);
    assert_int_equal(sqlite3_exec(w, big, NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(sqlite3_exec(w, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
    assert_int_equal(one_int(r, "SELECT count(*) FROM t"), 2200);
    long long sum = one_int(r, "SELECT sum(length(v)) FROM t");
    assert_int_equal(sqlite3_close(w), SQLITE_OK);
    assert_int_equal(sqlite3_close(r), SQLITE_OK);

    sqlite3 *again = open_db();
    char ok[64];
    assert_string_equal(one_text(again, "PRAGMA integrity_check", ok, sizeof ok), "ok");
    assert_int_equal(one_int(again, "SELECT count(*) FROM t"), 2200);
    assert_int_equal(one_int(again, "SELECT sum(length(v)) FROM t"), sum);
    assert_int_equal(sqlite3_close(again), SQLITE_OK);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_a_commit_reaches_the_file_at_its_sync, setup_mem, teardown_mem),
        cmocka_unit_test_setup_teardown(test_a_read_sees_gathered_bytes, setup_mem, teardown_mem),
        cmocka_unit_test_setup_teardown(test_rewrites_and_jumps_keep_the_order_of_writes, setup_mem, teardown_mem),
        cmocka_unit_test_setup_teardown(test_a_long_transaction_is_written_as_it_goes, setup_mem, teardown_mem),
        cmocka_unit_test_setup_teardown(test_a_failed_write_is_the_syncs_error, setup_mem, teardown_mem),
        cmocka_unit_test_setup_teardown(test_close_writes_and_other_files_pass_through, setup_mem, teardown_mem),
        cmocka_unit_test_setup_teardown(test_a_database_through_the_shim, setup_db, teardown_db),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
