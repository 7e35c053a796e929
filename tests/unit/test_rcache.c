/* Unit tests of src/api/rcache.c, the kept answers of GET by id: an answer is served only
 * while nothing it shows can have changed (its record, the kinds it shows, another process's
 * writes), an answer read before a write is never kept after it, and memory stays bounded. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <malloc.h>
#include <pthread.h>
#include <sqlite3.h>
#include <unistd.h>

#include "api/rcache.h"
#include "store/sqlite_watch.h"

#define T1 "1000000000000001"
#define T2 "2000000000000002"

struct ctx {
    struct rcache *c;
    struct arena a;
};

static int setup(void **state)
{
    struct ctx *x = calloc(1, sizeof *x);
    if (!x || !(x->c = rcache_new(1 << 20)))
        return -1;
    arena_init(&x->a);
    *state = x;
    return 0;
}

static int teardown(void **state)
{
    struct ctx *x = *state;
    rcache_free(x->c);
    arena_release(&x->a);
    free(x);
    return 0;
}

static struct rc_key key(enum rkind kind, const char *tenant, const char *id)
{
    return (struct rc_key){.kind = kind, .variant = 0, .tenant = tenant, .id = id};
}

/* The ticket of a lookup that must miss. */
static struct rc_ticket miss(struct rcache *c, struct arena *a, const struct rc_key *k, uint64_t foreign)
{
    char *b;
    size_t n;
    const char *tag;
    struct rc_ticket t;
    assert_false(rcache_get(c, foreign, k, a, &b, &n, &tag, &t));
    return t;
}

/* A miss, then the answer read kept: as GET does. */
static void fill(struct ctx *x, const struct rc_key *k, uint64_t foreign, const char *body, const char *etag)
{
    struct rc_ticket t = miss(x->c, &x->a, k, foreign);
    assert_true(t.ok);
    rcache_put(x->c, foreign, k, &t, body, strlen(body), etag);
}

/* The body served for k, or NULL on a miss. */
static const char *lookup(struct ctx *x, const struct rc_key *k, uint64_t foreign, const char **etag)
{
    char *b;
    size_t n;
    const char *tag;
    struct rc_ticket t;
    if (!rcache_get(x->c, foreign, k, &x->a, &b, &n, &tag, &t))
        return NULL;
    assert_int_equal(n, strlen(b));
    if (etag)
        *etag = tag;
    return b;
}

static void test_hit_after_fill(void **state)
{
    struct ctx *x = *state;
    struct rc_key k = key(R_EKAUSER, T1, "171000000000001");
    assert_null(lookup(x, &k, 0, NULL));
    fill(x, &k, 0, "{\"user\":1}", "\"e1\"");
    const char *tag;
    assert_string_equal(lookup(x, &k, 0, &tag), "{\"user\":1}");
    assert_string_equal(tag, "\"e1\"");
    /* the same id of another tenant, or shaped otherwise, is another answer */
    struct rc_key other = key(R_EKAUSER, T2, "171000000000001");
    assert_null(lookup(x, &other, 0, NULL));
    struct rc_key shaped = k;
    shaped.variant = 1;
    assert_null(lookup(x, &shaped, 0, NULL));
    struct rc_key kind = key(R_DOCTOR, T1, "171000000000001");
    assert_null(lookup(x, &kind, 0, NULL));
}

static void test_write_drops_and_blocks(void **state)
{
    struct ctx *x = *state;
    struct rc_key k = key(R_EKAUSER, T1, "171000000000002");
    fill(x, &k, 0, "old", "\"1\"");
    /* a reader misses... */
    rcache_pin(x->c, R_EKAUSER, T1, "171000000000002", NULL);
    assert_null(lookup(x, &k, 0, NULL));
    struct rc_ticket t = miss(x->c, &x->a, &k, 0);
    assert_false(t.ok); /* while pinned, nothing read may be kept */
    rcache_put(x->c, 0, &k, &t, "old", 3, "\"1\"");
    assert_null(lookup(x, &k, 0, NULL));
    rcache_unpin(x->c, R_EKAUSER, T1, "171000000000002");
    fill(x, &k, 0, "new", "\"2\"");
    assert_string_equal(lookup(x, &k, 0, NULL), "new");
}

static void test_ticket_from_before_a_write_is_refused(void **state)
{
    struct ctx *x = *state;
    struct rc_key k = key(R_EKAUSER, T1, "171000000000003");
    struct rc_ticket t = miss(x->c, &x->a, &k, 0);
    assert_true(t.ok);
    /* a whole write (pin, commit, unpin) happens while the reader reads the old record */
    rcache_pin(x->c, R_EKAUSER, T1, "171000000000003", NULL);
    rcache_unpin(x->c, R_EKAUSER, T1, "171000000000003");
    rcache_put(x->c, 0, &k, &t, "stale", 5, "\"s\"");
    assert_null(lookup(x, &k, 0, NULL));
}

static void test_other_records_of_the_kind_stay(void **state)
{
    struct ctx *x = *state;
    struct rc_key a = key(R_EKAUSER, T1, "171000000000004"), b = key(R_EKAUSER, T1, "171000000000005");
    fill(x, &a, 0, "a", "\"a\"");
    fill(x, &b, 0, "b", "\"b\"");
    rcache_pin(x->c, R_EKAUSER, T1, "171000000000004", NULL);
    rcache_unpin(x->c, R_EKAUSER, T1, "171000000000004");
    rcache_pin(x->c, R_EKAUSER, T1, NULL, NULL); /* a create */
    rcache_unpin(x->c, R_EKAUSER, T1, NULL);
    assert_null(lookup(x, &a, 0, NULL));
    assert_string_equal(lookup(x, &b, 0, NULL), "b");
}

static void test_writes_of_a_shown_kind_drop_the_viewers(void **state)
{
    struct ctx *x = *state;
    /* an Eka User shows its doctors' names: a doctor's write drops the tenant's users */
    struct rc_key u = key(R_EKAUSER, T1, "171000000000006"), d = key(R_DOCTOR, T1, "171000000000007");
    fill(x, &u, 0, "user", "\"u\"");
    fill(x, &d, 0, "doctor", "\"d\"");
    rcache_pin(x->c, R_DOCTOR, T1, "171000000000008", NULL);
    assert_null(lookup(x, &u, 0, NULL));
    assert_string_equal(lookup(x, &d, 0, NULL), "doctor"); /* another doctor: a doctor shows clinics only */
    struct rc_ticket t = miss(x->c, &x->a, &u, 0);
    assert_false(t.ok);
    rcache_unpin(x->c, R_DOCTOR, T1, "171000000000008");
    assert_null(lookup(x, &u, 0, NULL));
    fill(x, &u, 0, "user2", "\"u2\"");
    assert_string_equal(lookup(x, &u, 0, NULL), "user2");
    /* a ticket taken before a clinic's whole write is refused too */
    struct rc_key u2 = key(R_EKAUSER, T1, "171000000000009");
    t = miss(x->c, &x->a, &u2, 0);
    rcache_pin(x->c, R_CLINIC, T1, NULL, NULL);
    rcache_unpin(x->c, R_CLINIC, T1, NULL);
    rcache_put(x->c, 0, &u2, &t, "stale", 5, "\"s\"");
    assert_null(lookup(x, &u2, 0, NULL));
}

static void test_foreign_epoch(void **state)
{
    struct ctx *x = *state;
    struct rc_key k = key(R_CLINIC, T1, "171000000000010");
    fill(x, &k, 7, "c", "\"c\"");
    assert_string_equal(lookup(x, &k, 7, NULL), "c");
    assert_null(lookup(x, &k, 8, NULL)); /* another process wrote since */
    assert_null(lookup(x, &k, 7, NULL)); /* and the answer is gone */
    /* read under one epoch, kept under another: refused */
    struct rc_ticket t = miss(x->c, &x->a, &k, 8);
    rcache_put(x->c, 9, &k, &t, "stale", 5, "\"s\"");
    assert_null(lookup(x, &k, 9, NULL));
}

static void test_bounded(void **state)
{
    (void)state;
    struct rcache *c = rcache_new(64 * 1024);
    assert_non_null(c);
    struct arena a;
    arena_init(&a);
    char body[600], id[32];
    memset(body, 'x', sizeof body - 1);
    body[sizeof body - 1] = '\0';
    int kept = 0;
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "17100000%07d", i);
        struct rc_key k = key(R_EKAUSER, T1, id);
        struct rc_ticket t = miss(c, &a, &k, 0);
        rcache_put(c, 0, &k, &t, body, strlen(body), "\"x\"");
    }
    for (int i = 0; i < 5000; i++) {
        snprintf(id, sizeof id, "17100000%07d", i);
        struct rc_key k = key(R_EKAUSER, T1, id);
        char *b;
        size_t n;
        const char *tag;
        struct rc_ticket t;
        if (rcache_get(c, 0, &k, &a, &b, &n, &tag, &t)) {
            assert_string_equal(b, body);
            kept++;
        }
    }
    /* 64 KiB holds about a hundred answers of 600 bytes, never all 5000 */
    assert_true(kept > 20);
    assert_true(kept * 600 <= 64 * 1024);
    /* the most recent ones are there */
    snprintf(id, sizeof id, "17100000%07d", 4999);
    struct rc_key last = key(R_EKAUSER, T1, id);
    char *b;
    size_t n;
    const char *tag;
    struct rc_ticket t;
    assert_true(rcache_get(c, 0, &last, &a, &b, &n, &tag, &t));
    rcache_free(c);
    arena_release(&a);
    assert_null(rcache_new(0));
}

/* The heap in use, as the allocator counts it (small chunks and mapped blocks, every arena). */
static size_t heap_in_use(void)
{
    struct mallinfo2 m = mallinfo2();
    return m.uordblks + m.hblkhd;
}

struct filling {
    size_t budget;
    struct rcache *c;
};

/* A cache of f->budget bytes filled with answers of many sizes, from a few bytes to a 64th
 * of the budget, on a thread of its own: the allocator's cache of the thread's freed chunks
 * (glibc's tcache, counted as in use) goes back to it when the thread ends. */
static void *fill_many(void *arg)
{
    struct filling *f = arg;
    struct arena a;
    arena_init(&a);
    char *body = malloc(4096), id[32];
    memset(body, 'y', 4095);
    body[4095] = '\0';
    f->c = rcache_new(f->budget);
    for (int i = 0; f->c && i < 40000; i++) {
        snprintf(id, sizeof id, "17200000%07d", i);
        struct rc_key k = key(i % 3 == 0 ? R_DOCTOR : R_EKAUSER, i % 2 ? T1 : T2, id);
        char *b;
        size_t n;
        const char *tag;
        struct rc_ticket t;
        rcache_get(f->c, 0, &k, &a, &b, &n, &tag, &t);
        size_t len = (size_t)(i * 7919 % 4000) + 1;
        if (len > f->budget / 80)
            len = len % (f->budget / 80) + 1;
        rcache_put(f->c, 0, &k, &t, body + 4095 - len, len, "\"e\"");
        arena_release(&a);
    }
    free(body);
    arena_release(&a);
    return NULL;
}

/* --cache-mb is the memory the cache takes, whatever its answers' sizes: its table of sets
 * included, measured by the allocator, not by the cache's own count. */
static void test_memory_within_budget(void **state)
{
    (void)state;
#if defined(__SANITIZE_ADDRESS__)
    skip(); /* the sanitizer's allocator: mallinfo2 does not see it */
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
    skip();
#endif
#endif
    static const size_t budgets[] = {256 * 1024, 1 << 20, 3 << 20, 8 << 20};
    for (size_t b = 0; b < sizeof budgets / sizeof *budgets; b++) {
        struct filling f = {.budget = budgets[b]};
        size_t before = heap_in_use();
        pthread_t th;
        assert_int_equal(pthread_create(&th, NULL, fill_many, &f), 0);
        assert_int_equal(pthread_join(th, NULL), 0);
        assert_non_null(f.c);
        size_t used = heap_in_use() - before;
        /* (8 KiB: the bookkeeping of the thread's own arena, about 3.4 KiB) */
        if (used > budgets[b] + 8192)
            fail_msg("a cache of %zu bytes took %zu", budgets[b], used);
        /* and it is used: most of the budget holds answers */
        if (used < budgets[b] * 3 / 4)
            fail_msg("a cache of %zu bytes holds only %zu", budgets[b], used);
        rcache_free(f.c);
    }
}

/* ---- the -shm watch (src/store/sqlite_watch.c): what tells the cache of other processes'
 * writes. Two connections on one file: "ours" keeps the writer's protocol (BEGIN IMMEDIATE,
 * sq_watch_begin, its WAL hook, COMMIT, sq_watch_end); "other" stands for another process
 * (the watch sees only the wal-index header, whoever wrote it). */

struct wdb {
    char dir[64], path[96];
    sqlite3 *ours, *other;
    struct sq_watch w;
};

static int watch_hook(void *arg, sqlite3 *db, const char *name, int frames)
{
    (void)db;
    (void)name;
    sq_watch_committed(arg, frames);
    return SQLITE_OK;
}

static void xexec(sqlite3 *db, const char *sql)
{
    char *msg = NULL;
    if (sqlite3_exec(db, sql, NULL, NULL, &msg) != SQLITE_OK)
        fail_msg("%s: %s", sql, msg ? msg : "?");
}

static struct wdb *wdb_open(void)
{
    struct wdb *d = calloc(1, sizeof *d);
    assert_non_null(d);
    snprintf(d->dir, sizeof d->dir, "/tmp/rcache-watch-XXXXXX");
    assert_non_null(mkdtemp(d->dir));
    snprintf(d->path, sizeof d->path, "%s/w.db", d->dir);
    assert_int_equal(sqlite3_open(d->path, &d->ours), SQLITE_OK);
    assert_int_equal(sqlite3_open(d->path, &d->other), SQLITE_OK);
    /* no automatic checkpoints: every restart of the WAL is the test's doing */
    xexec(d->ours, "PRAGMA journal_mode=WAL; PRAGMA wal_autocheckpoint=0;"
                   "CREATE TABLE t (x INTEGER); INSERT INTO t VALUES (0)");
    xexec(d->other, "PRAGMA wal_autocheckpoint=0");
    sqlite3_wal_hook(d->ours, watch_hook, &d->w);
    assert_true(sq_watch_open(&d->w, d->path));
    return d;
}

static void wdb_close(struct wdb *d)
{
    sqlite3_close(d->ours);
    sqlite3_close(d->other);
    sq_watch_close(&d->w);
    char p[128];
    static const char *const suffix[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        snprintf(p, sizeof p, "%s%s", d->path, suffix[i]);
        unlink(p);
    }
    rmdir(d->dir);
    free(d);
}

/* One transaction of this process's writer, committed but not yet accounted for. */
static void our_commit(struct wdb *d, const char *sql)
{
    xexec(d->ours, "BEGIN IMMEDIATE");
    sq_watch_begin(&d->w);
    xexec(d->ours, sql);
    xexec(d->ours, "COMMIT");
}

/* One transaction of this process's writer, whole. */
static void our_write(struct wdb *d, const char *sql)
{
    our_commit(d, sql);
    sq_watch_end(&d->w);
}

/* The foreign epoch, the database being as accounted for. */
static uint64_t settled(struct wdb *d)
{
    uint64_t f = 0;
    assert_true(sq_watch_check(&d->w, &f));
    return f;
}

/* The header's word at (walformat.html): mxFrame 16, salt-1 32. */
static uint32_t hdr_word(struct wdb *d, size_t at)
{
    uint32_t v;
    unsigned char h[SQ_WATCH_HDR];
    for (size_t i = 0; i < sizeof h; i++)
        h[i] = d->w.map[i];
    memcpy(&v, h + at, sizeof v);
    return v;
}

static void test_watch_own_writes_and_restarts_are_ours(void **state)
{
    (void)state;
    struct wdb *d = wdb_open();
    uint64_t f = settled(d);
    our_write(d, "UPDATE t SET x = x + 1");
    our_write(d, "UPDATE t SET x = x + 1");
    assert_int_equal(settled(d), f);
    /* a checkpoint copies the whole WAL back: the next write starts it over (new salts) */
    int log = -1, done = -2;
    assert_int_equal(sqlite3_wal_checkpoint_v2(d->ours, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done), SQLITE_OK);
    assert_int_equal(log, done);
    uint32_t salt = hdr_word(d, 32), frames = hdr_word(d, 16);
    our_write(d, "UPDATE t SET x = x + 1");
    assert_int_not_equal(hdr_word(d, 32), salt); /* the WAL was restarted... */
    assert_true(hdr_word(d, 16) < frames);       /* ...from its first frame */
    assert_int_equal(settled(d), f);             /* and that was this process's own write */
    our_write(d, "UPDATE t SET x = x + 1");
    assert_int_equal(settled(d), f);
    /* another process's write is not */
    xexec(d->other, "UPDATE t SET x = x + 1");
    uint64_t g = 0;
    assert_false(sq_watch_check(&d->w, &g)); /* seen by the first look, which counts it */
    assert_int_equal(settled(d), f + 1);
    wdb_close(d);
}

static void test_watch_other_commit_before_our_account(void **state)
{
    (void)state;
    struct wdb *d = wdb_open();
    /* an empty WAL, so that this process's commit below appends one frame to no others */
    xexec(d->ours, "PRAGMA wal_checkpoint(TRUNCATE)");
    uint64_t g, f;
    (void)sq_watch_check(&d->w, &g);
    f = settled(d);
    /* Another process commits in the moment between this process's COMMIT and its account
     * of it (the write lock is free by then): first by appending to the WAL... */
    our_commit(d, "UPDATE t SET x = x + 1");
    xexec(d->other, "UPDATE t SET x = x + 1");
    sq_watch_end(&d->w);
    assert_int_equal(settled(d), f + 1);
    /* ...then by starting the WAL over and writing exactly as many frames as this process's
     * commit left: the frame count and the salts are those this process's own restart would
     * leave; the commit counter (iChange) is one further */
    xexec(d->ours, "PRAGMA wal_checkpoint(TRUNCATE)");
    (void)sq_watch_check(&d->w, &g);
    f = settled(d);
    our_commit(d, "UPDATE t SET x = x + 1");
    uint32_t salt = hdr_word(d, 32), frames = hdr_word(d, 16);
    assert_int_equal(frames, 1);
    int log = -1, done = -2;
    assert_int_equal(sqlite3_wal_checkpoint_v2(d->other, NULL, SQLITE_CHECKPOINT_PASSIVE, &log, &done), SQLITE_OK);
    assert_int_equal(log, done);
    xexec(d->other, "UPDATE t SET x = x + 1");
    assert_int_not_equal(hdr_word(d, 32), salt);
    assert_int_equal(hdr_word(d, 16), frames);
    sq_watch_end(&d->w);
    assert_int_equal(settled(d), f + 1);
    wdb_close(d);
}

static void test_a_committed_write_keeps_its_answer(void **state)
{
    struct ctx *x = *state;
    const char *id = "171000000000020";
    struct rc_key k = key(R_EKAUSER, T1, id);
    struct rc_ticket seen;
    rcache_pin(x->c, R_EKAUSER, T1, id, &seen);
    seen.foreign = 3;
    assert_true(seen.ok);
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &seen, 3, "after", 5, "\"a\"");
    const char *tag;
    assert_string_equal(lookup(x, &k, 3, &tag), "after");
    assert_string_equal(tag, "\"a\"");

    /* two writes of the record at once: neither keeps its answer (either may be the older) */
    struct rc_ticket s1, s2;
    rcache_pin(x->c, R_EKAUSER, T1, id, &s1);
    rcache_pin(x->c, R_EKAUSER, T1, id, &s2);
    s1.foreign = s2.foreign = 3;
    assert_null(lookup(x, &k, 3, NULL));
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &s2, 3, "second", 6, "\"2\"");
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &s1, 3, "first", 5, "\"1\"");
    assert_null(lookup(x, &k, 3, NULL));

    /* another process wrote since the pin */
    rcache_pin(x->c, R_EKAUSER, T1, id, &seen);
    seen.foreign = 3;
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &seen, 4, "after", 5, "\"a\"");
    assert_null(lookup(x, &k, 4, NULL));

    /* a doctor (shown in the user) written while the user's write was pinned */
    rcache_pin(x->c, R_EKAUSER, T1, id, &seen);
    seen.foreign = 3;
    rcache_pin(x->c, R_DOCTOR, T1, "171000000000021", NULL);
    rcache_unpin(x->c, R_DOCTOR, T1, "171000000000021");
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &seen, 3, "after", 5, "\"a\"");
    assert_null(lookup(x, &k, 3, NULL));

    /* a doctor pinned before the user's write: the pin sees it, nothing is kept */
    rcache_pin(x->c, R_DOCTOR, T1, "171000000000021", NULL);
    rcache_pin(x->c, R_EKAUSER, T1, id, &seen);
    assert_false(seen.ok);
    seen.foreign = 3;
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &seen, 3, "after", 5, "\"a\"");
    rcache_unpin(x->c, R_DOCTOR, T1, "171000000000021");
    assert_null(lookup(x, &k, 3, NULL));

    /* and a plain write after all that keeps again */
    rcache_pin(x->c, R_EKAUSER, T1, id, &seen);
    seen.foreign = 3;
    rcache_unpin_keeping(x->c, R_EKAUSER, T1, id, &seen, 3, "last", 4, "\"l\"");
    assert_string_equal(lookup(x, &k, 3, NULL), "last");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_hit_after_fill, setup, teardown),
        cmocka_unit_test_setup_teardown(test_write_drops_and_blocks, setup, teardown),
        cmocka_unit_test_setup_teardown(test_ticket_from_before_a_write_is_refused, setup, teardown),
        cmocka_unit_test_setup_teardown(test_other_records_of_the_kind_stay, setup, teardown),
        cmocka_unit_test_setup_teardown(test_writes_of_a_shown_kind_drop_the_viewers, setup, teardown),
        cmocka_unit_test_setup_teardown(test_foreign_epoch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_committed_write_keeps_its_answer, setup, teardown),
        cmocka_unit_test(test_bounded),
        cmocka_unit_test(test_memory_within_budget),
        cmocka_unit_test(test_watch_own_writes_and_restarts_are_ours),
        cmocka_unit_test(test_watch_other_commit_before_our_account),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
