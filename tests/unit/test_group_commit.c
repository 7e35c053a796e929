/* Group commit in the SQLite store: write units queued together run in one transaction,
 * each in its own savepoint, and commit with one sync. A unit that fails or stops rolls
 * back alone while its neighbours commit; a failure the transaction cannot survive (disk
 * full) fails every unit of the batch and stores nothing; each unit keeps its own time; a
 * full queue refuses at once with a retry.
 *
 * To make a batch at will, the test holds SQLite's write lock from a connection of its
 * own: the writer waits for it, the units queue behind it (the test waits until the store
 * reports them queued), and once the lock is released the writer takes them all at once. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <sodium.h>
#include <stdatomic.h>
#include <time.h>
#include <unistd.h>

#include "model/field.h"
#include "model/ids.h"
#include "store/sqlite_int.h"

#define T0 1714566896789LL /* 2024-05-01T12:34:56.789Z */
static _Atomic int64_t clock_now = T0;

static int64_t fake_clock(void *ctx)
{
    (void)ctx;
    return atomic_load(&clock_now);
}

static const struct resource *USER;
static char dir[64], path[128];

struct fixture {
    struct store *s;
    struct arena a;
    sqlite3 *lock; /* the test's own connection, to hold the write lock */
};

static struct store *open_store(unsigned write_queue)
{
    struct store_options opt = {.clock_ms = fake_clock, .threads = 2, .write_queue = write_queue};
    char err[512];
    struct store *s = store_open(path, &opt, err, sizeof err);
    if (!s)
        fail_msg("cannot open %s: %s", path, err);
    return s;
}

static int setup(void **state)
{
    static int n;
    snprintf(path, sizeof path, "%s/g%d.db", dir, n++);
    struct fixture *f = calloc(1, sizeof *f);
    if (!f)
        return -1;
    arena_init(&f->a);
    atomic_store(&clock_now, T0);
    *state = f;
    return 0;
}

static int teardown(void **state)
{
    struct fixture *f = *state;
    store_close(f->s);
    if (f->lock)
        sqlite3_close(f->lock);
    arena_release(&f->a);
    free(f);
    const char *suffixes[] = {"", "-wal", "-shm"};
    for (int i = 0; i < 3; i++) {
        char p[160];
        snprintf(p, sizeof p, "%s%s", path, suffixes[i]);
        unlink(p);
    }
    return 0;
}

static void hold_write_lock(struct fixture *f)
{
    assert_int_equal(sqlite3_open(path, &f->lock), SQLITE_OK);
    sqlite3_busy_timeout(f->lock, 30000);
    assert_int_equal(sqlite3_exec(f->lock, "BEGIN IMMEDIATE", NULL, NULL, NULL), SQLITE_OK);
}

static void release_write_lock(struct fixture *f)
{
    assert_int_equal(sqlite3_exec(f->lock, "COMMIT", NULL, NULL, NULL), SQLITE_OK);
}

static struct store_write_stats stats(struct fixture *f)
{
    struct store_write_stats w;
    assert_true(store_write_stats(f->s, &w));
    return w;
}

/* Waits (on the condition, polled) until n units wait in the queue. The bound only turns
 * a hang into a failure. */
static void wait_queued(struct fixture *f, unsigned n)
{
    for (int i = 0; i < 120000; i++) {
        if (stats(f).queued >= n)
            return;
        struct timespec ms = {0, 1000000};
        nanosleep(&ms, NULL);
    }
    fail_msg("%u units never queued (%u did)", n, stats(f).queued);
}

/* ---- units run on threads of their own, one arena each ---- */

/* K_TRIES: each insert in a store_try of its own, as an import's batch does: a refused one
 * is undone alone and the unit goes on. */
enum kind { K_INSERT, K_INSERT_THEN_ABORT, K_INSERT_THEN_CONFLICT, K_TRIES, K_TRY_UNDONE };

struct job {
    struct store *s;
    enum kind kind;
    const char *tenant;
    struct arena a;
    struct fval *vals, *vals2;
    char id[ID_MAX], id2[ID_MAX];
    enum store_status first; /* what its first insert answered, inside the batch */
    bool log;                 /* each insert also appends its change log entry (a create) */
    struct store_unit u;
    pthread_t th;
};

static struct fval *decode(struct arena *a, const char *json)
{
    json_error_t jerr;
    json_t *body = json_loads(json, 0, &jerr);
    assert_non_null(body);
    struct fval *vals = arena_calloc(a, MAX_FIELDS, sizeof *vals);
    struct herr e = {0};
    bool ok = model_decode(USER, body, true, "2024-06-01", a, vals, &e);
    json_decref(body);
    if (!ok)
        fail_msg("decode: %s", e.message);
    return vals;
}

/* store_insert, and its entry when the job logs. */
static enum store_status insert(struct store_tx *tx, struct job *j, const struct fval *vals, char *id, size_t cap)
{
    enum store_status st = store_insert(tx, USER, j->tenant, vals, id, cap);
    if (st != STORE_OK || !j->log)
        return st;
    struct change_entry e = {.r = USER, .id = id, .action = CHANGE_CREATE, .changes = "{}"};
    return store_log_append(tx, j->tenant, &e);
}

static enum store_status try_first(struct store_tx *tx, void *c)
{
    struct job *j = c;
    return insert(tx, j, j->vals, j->id, sizeof j->id);
}

static enum store_status try_second(struct store_tx *tx, void *c)
{
    struct job *j = c;
    return insert(tx, j, j->vals2, j->id2, sizeof j->id2);
}

/* K_TRY_UNDONE: a store_try that writes (and logs) and then stops: undone */
static enum store_status try_then_stop(struct store_tx *tx, void *c)
{
    struct job *j = c;
    enum store_status st = insert(tx, j, j->vals, j->id, sizeof j->id);
    return st == STORE_OK ? STORE_ABORT : STORE_ERROR;
}

static enum store_status job_fn(struct store_tx *tx, void *c)
{
    struct job *j = c;
    if (j->kind == K_TRY_UNDONE) {
        const char *conflict;
        j->first = store_try(tx, try_then_stop, j, &conflict);
        return j->first == STORE_ABORT ? store_try(tx, try_second, j, &conflict) : STORE_ERROR;
    }
    if (j->kind == K_TRIES) {
        const char *conflict;
        j->first = store_try(tx, try_first, j, &conflict);
        enum store_status second = store_try(tx, try_second, j, &conflict);
        return j->first == STORE_CONFLICT || second == STORE_CONFLICT ? STORE_OK : STORE_ERROR;
    }
    enum store_status st = insert(tx, j, j->vals, j->id, sizeof j->id);
    j->first = st;
    if (st != STORE_OK || j->kind == K_INSERT)
        return st;
    if (j->kind == K_INSERT_THEN_ABORT)
        return STORE_ABORT;
    return insert(tx, j, j->vals2, j->id2, sizeof j->id2);
}

static void *job_main(void *p)
{
    struct job *j = p;
    store_write(j->s, &j->u);
    return NULL;
}

static const char *user_json(struct arena *a, const char *email, const char *mobile)
{
    return arena_printf(a,
                        "{\"firstname\":\"G\",\"lastname\":\"C\",\"gender\":\"F\",\"dob\":\"1990-01-01\","
                        "\"email\":\"%s\"%s%s%s}",
                        email, mobile ? ",\"mobile\":\"" : "", mobile ? mobile : "", mobile ? "\"" : "");
}

static struct job *job_new(struct fixture *f, const char *tenant, enum kind kind, const char *email,
                           const char *mobile)
{
    struct job *j = arena_calloc(&f->a, 1, sizeof *j);
    j->s = f->s;
    j->kind = kind;
    j->tenant = tenant;
    arena_init(&j->a);
    j->vals = decode(&j->a, user_json(&j->a, email, mobile));
    j->u = (struct store_unit){.fn = job_fn, .ctx = j, .arena = &j->a};
    return j;
}

static void job_start(struct job *j) { assert_int_equal(pthread_create(&j->th, NULL, job_main, j), 0); }

static void job_end(struct job *j)
{
    pthread_join(j->th, NULL);
    arena_release(&j->a);
}

/* A direct write of one user, outside any batch test. */
static enum store_status insert_now(struct fixture *f, const char *tenant, const char *email, const char *mobile,
                                    char *id_out)
{
    struct job *j = job_new(f, tenant, K_INSERT, email, mobile);
    enum store_status st = store_write(f->s, &j->u);
    if (id_out)
        strcpy(id_out, j->id);
    arena_release(&j->a);
    return st;
}

static enum store_status find_fn(struct store_tx *tx, void *c)
{
    struct job *j = c;
    struct record rec;
    enum store_status st = store_find(tx, USER, j->tenant, j->id, &rec);
    if (st == STORE_OK)
        snprintf(j->id2, sizeof j->id2, "%s", rec.created_at);
    return st;
}

/* Is the user with this id stored? (its created_at into when, if given) */
static bool stored(struct fixture *f, const char *tenant, const char *id, char *when)
{
    if (!id[0])
        return false;
    struct job j = {.tenant = tenant};
    snprintf(j.id, sizeof j.id, "%s", id);
    struct store_unit u = {.fn = find_fn, .ctx = &j, .arena = &f->a};
    enum store_status st = store_read(f->s, &u);
    assert_true(st == STORE_OK || st == STORE_NOT_FOUND);
    if (when && st == STORE_OK)
        strcpy(when, j.id2);
    return st == STORE_OK;
}

static const char *new_tenant(struct fixture *f)
{
    unsigned char r[7];
    randombytes_buf(r, sizeof r);
    unsigned long long v = 0;
    memcpy(&v, r, sizeof r);
    return arena_printf(&f->a, "9%015llu", v % 1000000000000000ull);
}

/* ---- the tests ---- */

static void test_units_of_a_batch_fail_alone(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(0);
    const char *t = new_tenant(f);
    assert_int_equal(insert_now(f, t, "taken@example.com", "9811111111", NULL), STORE_OK);
    struct store_write_stats before = stats(f);

    hold_write_lock(f);
    enum { N = 8 };
    struct job *jobs[N];
    jobs[0] = job_new(f, t, K_INSERT, "a@example.com", NULL);
    jobs[1] = job_new(f, t, K_INSERT, "taken@example.com", NULL); /* 409 */
    jobs[2] = job_new(f, t, K_INSERT, "b@example.com", NULL);
    jobs[3] = job_new(f, t, K_INSERT_THEN_ABORT, "c@example.com", NULL); /* the handler's 400 */
    jobs[4] = job_new(f, t, K_INSERT_THEN_CONFLICT, "d@example.com", NULL);
    jobs[4]->vals2 = decode(&jobs[4]->a, user_json(&jobs[4]->a, "e@example.com", "9811111111")); /* mobile taken */
    jobs[5] = job_new(f, t, K_INSERT, "dup@example.com", NULL);
    jobs[6] = job_new(f, t, K_INSERT, "dup@example.com", NULL); /* after jobs[5] in the same batch: 409 */
    jobs[7] = job_new(f, t, K_INSERT, "f@example.com", NULL);
    for (unsigned i = 0; i < N; i++) {
        job_start(jobs[i]);
        wait_queued(f, i + 1); /* one by one, so the queue's order is known */
    }
    assert_int_equal(stats(f).batches, before.batches); /* nothing ran yet: the writer waits for the lock */
    release_write_lock(f);
    for (unsigned i = 0; i < N; i++)
        job_end(jobs[i]);

    enum store_status want[N] = {STORE_OK,       STORE_CONFLICT, STORE_OK,       STORE_ABORT,
                                 STORE_CONFLICT, STORE_OK,       STORE_CONFLICT, STORE_OK};
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(jobs[i]->u.status, want[i]);
        bool ok = want[i] == STORE_OK;
        assert_int_equal(stored(f, t, jobs[i]->id, NULL), ok);
    }
    assert_string_equal(jobs[1]->u.conflict, "email");
    assert_string_equal(jobs[4]->u.conflict, "mobile");
    assert_string_equal(jobs[6]->u.conflict, "email");
    assert_int_equal(jobs[4]->id2[0], '\0'); /* its second insert failed; its first was rolled back */
    /* the eight ran as one transaction, committed once */
    struct store_write_stats after = stats(f);
    assert_int_equal(after.batches - before.batches, 1);
    assert_int_equal(after.units - before.units, N);
    assert_int_equal(after.failed_batches, 0);
    assert_int_equal(after.max_batch, N);
    assert_int_equal(after.sizes[3] - before.sizes[3], 1); /* the 8-15 bucket */
    assert_int_equal(after.queued, 0);
}

static void test_each_unit_keeps_its_own_time(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(0);
    const char *t = new_tenant(f);
    hold_write_lock(f);
    struct job *a = job_new(f, t, K_INSERT, "t1@example.com", NULL);
    struct job *b = job_new(f, t, K_INSERT, "t2@example.com", NULL);
    atomic_store(&clock_now, T0);
    job_start(a);
    wait_queued(f, 1);
    atomic_store(&clock_now, T0 + 61001);
    job_start(b);
    wait_queued(f, 2);
    atomic_store(&clock_now, T0 + 999999); /* the batch's own start is no unit's time */
    release_write_lock(f);
    job_end(a);
    job_end(b);
    assert_int_equal(a->u.status, STORE_OK);
    assert_int_equal(b->u.status, STORE_OK);
    assert_int_equal(stats(f).max_batch, 2);
    char when[32] = "";
    assert_true(stored(f, t, a->id, when));
    assert_string_equal(when, "2024-05-01T12:34:56.789Z");
    assert_true(stored(f, t, b->id, when));
    assert_string_equal(when, "2024-05-01T12:35:57.790Z");
}

static void test_a_full_disk_fails_the_whole_batch(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(0);
    const char *t = new_tenant(f);
    char first[ID_MAX];
    assert_int_equal(insert_now(f, t, "before@example.com", NULL, first), STORE_OK);
    /* The writer's connection may not grow the file any more: the next new page is
     * SQLITE_FULL. Set while the writer is idle (it waits for work, off the connection). */
    struct sqlite_conn *w = ((struct sqlite_store *)f->s)->wconn;
    assert_int_equal(sqlite3_exec(w->db, "PRAGMA max_page_count = 1", NULL, NULL, NULL), SQLITE_OK);

    hold_write_lock(f);
    struct job *small = job_new(f, t, K_INSERT, "small@example.com", NULL);
    /* a name of 256 KiB needs overflow pages the file cannot have */
    char *big = arena_alloc(&f->a, 256 * 1024 + 1);
    memset(big, 'x', 256 * 1024);
    big[256 * 1024] = '\0';
    struct job *large = job_new(f, t, K_INSERT, "large@example.com", NULL);
    large->vals[field_index(USER, "firstname")].s = big;
    struct job *last = job_new(f, t, K_INSERT, "last@example.com", NULL);
    job_start(small);
    wait_queued(f, 1);
    job_start(large);
    wait_queued(f, 2);
    job_start(last);
    wait_queued(f, 3);
    struct store_write_stats before = stats(f);
    release_write_lock(f);
    job_end(small);
    job_end(large);
    job_end(last);
    /* the unit that ran fine before the failure fails too: its batch never committed */
    assert_int_equal(small->first, STORE_OK);
    assert_int_equal(large->first, STORE_UNAVAILABLE);
    struct job *all[] = {small, large, last};
    for (int i = 0; i < 3; i++) {
        assert_int_equal(all[i]->u.status, STORE_UNAVAILABLE);
        assert_true(all[i]->u.retry_after > 0);
        assert_false(stored(f, t, all[i]->id, NULL));
    }
    assert_int_equal(stats(f).failed_batches - before.failed_batches, 1);
    assert_true(stored(f, t, first, NULL));

    /* room again: writes go on, in the same store */
    assert_int_equal(sqlite3_exec(w->db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL), SQLITE_OK);
    char id[ID_MAX];
    assert_int_equal(insert_now(f, t, "small@example.com", NULL, id), STORE_OK);
    assert_true(stored(f, t, id, NULL));
}

/* A unit alone in its batch runs without the batch's savepoint: when it fails, the whole
 * transaction is rolled back, which must leave nothing of it and the writer ready. */
static void test_a_unit_alone_fails_alone_too(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(0);
    const char *t = new_tenant(f);
    assert_int_equal(insert_now(f, t, "taken@example.com", "9811111111", NULL), STORE_OK);
    struct store_write_stats before = stats(f);

    struct job *conflict = job_new(f, t, K_INSERT_THEN_CONFLICT, "one@example.com", NULL);
    conflict->vals2 = decode(&conflict->a, user_json(&conflict->a, "two@example.com", "9811111111"));
    assert_int_equal(store_write(f->s, &conflict->u), STORE_CONFLICT);
    assert_string_equal(conflict->u.conflict, "mobile");
    assert_int_equal(conflict->first, STORE_OK);
    assert_false(stored(f, t, conflict->id, NULL)); /* its first insert was rolled back */

    struct job *abort = job_new(f, t, K_INSERT_THEN_ABORT, "three@example.com", NULL);
    assert_int_equal(store_write(f->s, &abort->u), STORE_ABORT);
    assert_int_equal(abort->first, STORE_OK);
    assert_false(stored(f, t, abort->id, NULL));

    /* K_TRIES: the first insert commits, the second (mobile taken) is undone alone */
    struct job *tries = job_new(f, t, K_TRIES, "four@example.com", NULL);
    tries->vals2 = decode(&tries->a, user_json(&tries->a, "five@example.com", "9811111111"));
    assert_int_equal(store_write(f->s, &tries->u), STORE_OK);
    assert_int_equal(tries->first, STORE_OK);
    assert_true(stored(f, t, tries->id, NULL));
    assert_int_equal(tries->id2[0], '\0');

    /* the writer goes on: the emails refused above are free, the one stored is taken */
    char id[ID_MAX];
    assert_int_equal(insert_now(f, t, "one@example.com", NULL, id), STORE_OK);
    assert_true(stored(f, t, id, NULL));
    assert_int_equal(insert_now(f, t, "three@example.com", NULL, NULL), STORE_OK);
    assert_int_equal(insert_now(f, t, "four@example.com", NULL, NULL), STORE_CONFLICT);
    struct store_write_stats after = stats(f);
    assert_int_equal(after.batches - before.batches, 6);
    assert_int_equal(after.failed_batches, before.failed_batches);
    arena_release(&conflict->a);
    arena_release(&abort->a);
    arena_release(&tries->a);
}

/* A unit marked alone (an import's batch) is never grouped with others: the batch before it
 * ends, it runs on its own, the units after it form the next batch. */
static void test_a_unit_marked_alone_gets_a_batch_of_its_own(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(0);
    const char *t = new_tenant(f);
    assert_int_equal(insert_now(f, t, "taken@example.com", "9811111111", NULL), STORE_OK);
    struct store_write_stats before = stats(f);

    hold_write_lock(f);
    enum { N = 5 };
    struct job *jobs[N];
    jobs[0] = job_new(f, t, K_INSERT, "a@example.com", NULL);
    jobs[1] = job_new(f, t, K_INSERT, "b@example.com", NULL);
    jobs[2] = job_new(f, t, K_TRIES, "c@example.com", NULL);
    jobs[2]->vals2 = decode(&jobs[2]->a, user_json(&jobs[2]->a, "d@example.com", "9811111111")); /* refused */
    jobs[2]->u.alone = true;
    jobs[3] = job_new(f, t, K_INSERT, "e@example.com", NULL);
    jobs[4] = job_new(f, t, K_INSERT, "c@example.com", NULL); /* after the alone unit: 409 */
    for (unsigned i = 0; i < N; i++) {
        job_start(jobs[i]);
        wait_queued(f, i + 1);
    }
    release_write_lock(f);
    for (unsigned i = 0; i < N; i++)
        job_end(jobs[i]);

    enum store_status want[N] = {STORE_OK, STORE_OK, STORE_OK, STORE_OK, STORE_CONFLICT};
    for (unsigned i = 0; i < N; i++) {
        assert_int_equal(jobs[i]->u.status, want[i]);
        assert_int_equal(stored(f, t, jobs[i]->id, NULL), want[i] == STORE_OK);
    }
    assert_int_equal(jobs[2]->id2[0], '\0');
    struct store_write_stats after = stats(f);
    assert_int_equal(after.batches - before.batches, 3); /* [a, b], [c], [e, c] */
    assert_int_equal(after.units - before.units, N);
    assert_int_equal(after.sizes[0] - before.sizes[0], 1);
    assert_int_equal(after.sizes[1] - before.sizes[1], 2);
    assert_int_equal(after.failed_batches, 0);
}

static void test_a_full_queue_refuses_at_once(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(2);
    const char *t = new_tenant(f);
    hold_write_lock(f);
    struct job *a = job_new(f, t, K_INSERT, "q1@example.com", NULL);
    struct job *b = job_new(f, t, K_INSERT, "q2@example.com", NULL);
    job_start(a);
    job_start(b);
    wait_queued(f, 2);
    assert_int_equal(stats(f).queue_cap, 2);
    /* the third finds the queue full: a retry, at once, and nothing stored */
    struct job *c = job_new(f, t, K_INSERT, "q3@example.com", NULL);
    assert_int_equal(store_write(f->s, &c->u), STORE_RETRY);
    assert_int_equal(c->u.retry_after, 1);
    assert_int_equal(stats(f).queue_full, 1);
    arena_release(&c->a);
    release_write_lock(f);
    job_end(a);
    job_end(b);
    assert_int_equal(a->u.status, STORE_OK);
    assert_int_equal(b->u.status, STORE_OK);
    assert_true(stored(f, t, a->id, NULL));
    assert_true(stored(f, t, b->id, NULL));
    /* and once the queue drains, writes are taken again */
    char id[ID_MAX];
    assert_int_equal(insert_now(f, t, "q3@example.com", NULL, id), STORE_OK);
    assert_true(stored(f, t, id, NULL));
}

/* ---- the feed's numbers ---- */

struct feed_read {
    const char *tenant;
    struct change_entry items[64];
    int n;
};

static enum store_status feed_fn(struct store_tx *tx, void *c)
{
    struct feed_read *r = c;
    return store_changes(tx, r->tenant, 0, 64, r->items, &r->n);
}

/* The tenant's feed is 1..n without a gap, entry i for record ids[i]. */
static void assert_feed(struct fixture *f, const char *tenant, const char *const *ids, int n)
{
    struct feed_read r = {.tenant = tenant};
    struct store_unit u = {.fn = feed_fn, .ctx = &r, .arena = &f->a};
    assert_int_equal(store_read(f->s, &u), STORE_OK);
    assert_int_equal(r.n, n);
    for (int i = 0; i < n; i++) {
        assert_int_equal(r.items[i].seq, i + 1);
        assert_string_equal(r.items[i].id, ids[i]);
        assert_int_equal(r.items[i].version, 1);
    }
    /* and the tenant's counter row says the same, for any other writer of the file */
    sqlite3 *db;
    sqlite3_stmt *st;
    assert_int_equal(sqlite3_open(path, &db), SQLITE_OK);
    assert_int_equal(sqlite3_prepare_v2(db, "SELECT last FROM change_seq WHERE b_id = ?", -1, &st, NULL), SQLITE_OK);
    sqlite3_bind_text(st, 1, tenant, -1, SQLITE_STATIC);
    assert_int_equal(sqlite3_step(st), SQLITE_ROW);
    assert_int_equal(sqlite3_column_int64(st, 0), n);
    sqlite3_finalize(st);
    sqlite3_close(db);
}

static const char *logged_now(struct fixture *f, const char *tenant, const char *email)
{
    struct job *j = job_new(f, tenant, K_INSERT, email, NULL);
    j->log = true;
    assert_int_equal(store_write(f->s, &j->u), STORE_OK);
    const char *id = arena_strdup(&f->a, j->id);
    arena_release(&j->a);
    return id;
}

/* The writer numbers a tenant's entries in memory within a batch: units that roll back (alone,
 * or a store_try of theirs), a batch that fails, another process's writer, and a restart must
 * all leave the feed 1, 2, 3.. without a gap or a number given twice. */
static void test_feed_numbers_stay_gapless(void **state)
{
    struct fixture *f = *state;
    f->s = open_store(0);
    const char *t = new_tenant(f), *t2 = new_tenant(f);
    const char *ids[16];
    int n = 0;
    ids[n++] = logged_now(f, t, "taken@example.com");
    assert_int_equal(insert_now(f, t, "other@example.com", "9811111111", NULL), STORE_OK); /* not logged */

    hold_write_lock(f);
    enum { N = 8 };
    struct job *jobs[N];
    jobs[0] = job_new(f, t, K_INSERT, "a@example.com", NULL);
    jobs[1] = job_new(f, t, K_INSERT, "taken@example.com", NULL); /* 409 before its entry */
    jobs[2] = job_new(f, t, K_INSERT_THEN_ABORT, "b@example.com", NULL); /* its entry rolled back */
    jobs[3] = job_new(f, t2, K_INSERT, "c@example.com", NULL);           /* another tenant between */
    jobs[4] = job_new(f, t, K_INSERT_THEN_CONFLICT, "d@example.com", NULL);
    jobs[4]->vals2 = decode(&jobs[4]->a, user_json(&jobs[4]->a, "e@example.com", "9811111111"));
    jobs[5] = job_new(f, t, K_TRIES, "f@example.com", NULL); /* first kept, second undone alone */
    jobs[5]->vals2 = decode(&jobs[5]->a, user_json(&jobs[5]->a, "g@example.com", "9811111111"));
    jobs[6] = job_new(f, t, K_TRY_UNDONE, "h@example.com", NULL); /* first undone, second kept */
    jobs[6]->vals2 = decode(&jobs[6]->a, user_json(&jobs[6]->a, "h2@example.com", NULL));
    jobs[7] = job_new(f, t2, K_INSERT, "i@example.com", NULL);
    for (unsigned i = 0; i < N; i++) {
        jobs[i]->log = true;
        job_start(jobs[i]);
        wait_queued(f, i + 1);
    }
    release_write_lock(f);
    for (unsigned i = 0; i < N; i++)
        job_end(jobs[i]);
    enum store_status want[N] = {STORE_OK,       STORE_CONFLICT, STORE_ABORT, STORE_OK,
                                 STORE_CONFLICT, STORE_OK,       STORE_OK,    STORE_OK};
    for (unsigned i = 0; i < N; i++)
        assert_int_equal(jobs[i]->u.status, want[i]);
    assert_int_equal(stats(f).max_batch, N);
    ids[n++] = jobs[0]->id;
    ids[n++] = jobs[5]->id;
    ids[n++] = jobs[6]->id2;
    assert_feed(f, t, ids, n);
    const char *ids2[] = {jobs[3]->id, jobs[7]->id};
    assert_feed(f, t2, ids2, 2);

    /* a batch that fails as a whole (a full disk) gives every number it took back */
    sqlite3_close(f->lock);
    f->lock = NULL;
    struct sqlite_conn *w = ((struct sqlite_store *)f->s)->wconn;
    assert_int_equal(sqlite3_exec(w->db, "PRAGMA max_page_count = 1", NULL, NULL, NULL), SQLITE_OK);
    hold_write_lock(f);
    struct job *small = job_new(f, t, K_INSERT, "small@example.com", NULL);
    struct job *large = job_new(f, t, K_INSERT, "large@example.com", NULL);
    char *big = arena_alloc(&f->a, 256 * 1024 + 1);
    memset(big, 'x', 256 * 1024);
    big[256 * 1024] = '\0';
    large->vals[field_index(USER, "firstname")].s = big;
    small->log = large->log = true;
    job_start(small);
    wait_queued(f, 1);
    job_start(large);
    wait_queued(f, 2);
    release_write_lock(f);
    job_end(small);
    job_end(large);
    assert_int_equal(small->u.status, STORE_UNAVAILABLE);
    assert_int_equal(large->u.status, STORE_UNAVAILABLE);
    assert_int_equal(sqlite3_exec(w->db, "PRAGMA max_page_count = 1073741823", NULL, NULL, NULL), SQLITE_OK);
    assert_feed(f, t, ids, n);
    ids[n++] = logged_now(f, t, "after-full@example.com");
    assert_feed(f, t, ids, n);

    /* another process's writer numbers entries of the tenant in between */
    struct store *mine = f->s;
    f->s = open_store(0);
    ids[n++] = logged_now(f, t, "other-process@example.com");
    store_close(f->s);
    f->s = mine;
    ids[n++] = logged_now(f, t, "back@example.com");
    assert_feed(f, t, ids, n);

    /* and after a restart */
    store_close(f->s);
    f->s = open_store(0);
    ids[n++] = logged_now(f, t, "restarted@example.com");
    assert_feed(f, t, ids, n);
    assert_feed(f, t2, ids2, 2);
}

int main(void)
{
    if (sodium_init() < 0)
        return 1;
    USER = resource_get(R_EKAUSER);
    snprintf(dir, sizeof dir, "/tmp/hipusers-group-XXXXXX");
    if (!mkdtemp(dir))
        return 1;
    const struct CMUnitTest tests[] = {
        cmocka_unit_test_setup_teardown(test_units_of_a_batch_fail_alone, setup, teardown),
        cmocka_unit_test_setup_teardown(test_each_unit_keeps_its_own_time, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_disk_fails_the_whole_batch, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_unit_alone_fails_alone_too, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_unit_marked_alone_gets_a_batch_of_its_own, setup, teardown),
        cmocka_unit_test_setup_teardown(test_a_full_queue_refuses_at_once, setup, teardown),
        cmocka_unit_test_setup_teardown(test_feed_numbers_stay_gapless, setup, teardown),
    };
    int rc = cmocka_run_group_tests_name("group commit", tests, NULL, NULL);
    rmdir(dir);
    return rc;
}
