/* The revocation snapshot: loaded outside any lock, published atomically, reloaded by
 * one request ahead of expiry, failing closed once stale, backing off while the store
 * fails, and safe to read while it is being replaced (run under ASan in make test). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cmocka.h>
#include <pthread.h>
#include <stdatomic.h>

#include "auth/revocation.h"

/* What the fake store holds, and whether it works. */
struct fake {
    const char *clients[4], *sessions[4];
    size_t nc, ns;
    atomic_bool failing;
    atomic_int calls;
};

static bool load(void *ctx, struct arena *a, const char ***clients, size_t *nc, const char ***sessions, size_t *ns)
{
    struct fake *f = ctx;
    atomic_fetch_add(&f->calls, 1);
    if (atomic_load(&f->failing))
        return false;
    /* copies in the arena, as a store hands them back */
    const char **c = arena_calloc(a, 4, sizeof *c), **s = arena_calloc(a, 4, sizeof *s);
    for (size_t i = 0; i < f->nc; i++)
        c[i] = arena_strdup(a, f->clients[i]);
    for (size_t i = 0; i < f->ns; i++)
        s[i] = arena_strdup(a, f->sessions[i]);
    *clients = c;
    *nc = f->nc;
    *sessions = s;
    *ns = f->ns;
    return true;
}

static enum rev_verdict check(struct revocation_cache *rc, struct fake *f, const char *client, const char *sid,
                              int64_t now)
{
    int retry = 0;
    return revocation_check(rc, client, sid, now, load, f, &retry);
}

static void test_loads_once_and_answers_from_the_snapshot(void **state)
{
    (void)state;
    struct revocation_cache rc;
    revocation_init(&rc);
    struct fake f = {.clients = {"EC_zz", "EC_bad"}, .nc = 2, .sessions = {"s2", "s1"}, .ns = 2};
    assert_int_equal(check(&rc, &f, "EC_bad", "", 10000), REV_REVOKED);
    assert_int_equal(check(&rc, &f, "EC_zz", "", 10001), REV_REVOKED);
    assert_int_equal(check(&rc, &f, "EC_good", "s1", 10002), REV_REVOKED);
    assert_int_equal(check(&rc, &f, "EC_good", "s3", 10003), REV_OK);
    assert_int_equal(check(&rc, &f, "EC_good", "", 10999), REV_OK);
    assert_int_equal(atomic_load(&f.calls), 1);
    revocation_free(&rc);
}

static void test_reloads_ahead_of_expiry_and_fails_closed_when_stale(void **state)
{
    (void)state;
    struct revocation_cache rc;
    revocation_init(&rc);
    struct fake f = {.nc = 0, .ns = 0};
    assert_int_equal(check(&rc, &f, "EC_a", "", 0), REV_OK);
    f.clients[0] = "EC_a"; /* revoked in the store now */
    f.nc = 1;
    /* past REVOCATION_PRELOAD_MS: this request answers from the snapshot and reloads */
    assert_int_equal(check(&rc, &f, "EC_a", "", REVOCATION_PRELOAD_MS), REV_OK);
    assert_int_equal(atomic_load(&f.calls), 2);
    assert_int_equal(check(&rc, &f, "EC_a", "", REVOCATION_PRELOAD_MS + 1), REV_REVOKED);
    /* the store fails: the snapshot serves until it expires, then the check fails closed */
    atomic_store(&f.failing, true);
    int64_t loaded = REVOCATION_PRELOAD_MS;
    assert_int_equal(check(&rc, &f, "EC_b", "", loaded + REVOCATION_PRELOAD_MS), REV_OK);
    int retry = 0;
    assert_int_equal(revocation_check(&rc, "EC_b", "", loaded + REVOCATION_REFRESH_MS, load, &f, &retry),
                     REV_UNAVAILABLE);
    assert_true(retry >= 1);
    revocation_free(&rc);
}

static void test_backs_off_while_the_store_fails(void **state)
{
    (void)state;
    struct revocation_cache rc;
    revocation_init(&rc);
    struct fake f = {.nc = 0};
    atomic_store(&f.failing, true);
    int64_t t = 50000;
    assert_int_equal(check(&rc, &f, "EC_a", "", t), REV_UNAVAILABLE);
    assert_int_equal(atomic_load(&f.calls), 1);
    /* requests during the back-off do not touch the store */
    for (int i = 0; i < 100; i++)
        assert_int_equal(check(&rc, &f, "EC_a", "", t + i), REV_UNAVAILABLE);
    assert_int_equal(atomic_load(&f.calls), 1);
    /* it doubles per failure, up to the maximum */
    t += REVOCATION_BACKOFF_MIN_MS;
    assert_int_equal(check(&rc, &f, "EC_a", "", t), REV_UNAVAILABLE);
    assert_int_equal(atomic_load(&f.calls), 2);
    assert_int_equal(check(&rc, &f, "EC_a", "", t + REVOCATION_BACKOFF_MIN_MS), REV_UNAVAILABLE);
    assert_int_equal(atomic_load(&f.calls), 2);
    int retry = 0;
    for (int i = 0; i < 20; i++) {
        t += REVOCATION_BACKOFF_MAX_MS;
        assert_int_equal(revocation_check(&rc, "EC_a", "", t, load, &f, &retry), REV_UNAVAILABLE);
    }
    assert_int_equal(atomic_load(&f.calls), 22);
    assert_int_equal(retry, REVOCATION_BACKOFF_MAX_MS / 1000);
    /* the store is back: the first request after the back-off loads and is answered */
    atomic_store(&f.failing, false);
    t += REVOCATION_BACKOFF_MAX_MS;
    assert_int_equal(check(&rc, &f, "EC_a", "", t), REV_OK);
    assert_int_equal(check(&rc, &f, "EC_a", "", t + 1), REV_OK);
    assert_int_equal(atomic_load(&f.calls), 23);
    revocation_free(&rc);
}

/* Readers on several threads while the snapshot is replaced all the time: every answer
 * is right and nothing is read after it was freed (ASan watches in make test). */
struct reader_arg {
    struct revocation_cache *rc;
    struct fake *f;
    _Atomic int64_t *clock;
    int wrong;
};

static void *reader(void *p)
{
    struct reader_arg *a = p;
    for (int i = 0; i < 20000; i++) {
        int64_t now = atomic_fetch_add(a->clock, 1); /* every request a ms later: reloads keep coming */
        int retry;
        if (revocation_check(a->rc, "EC_bad", "", now, load, a->f, &retry) != REV_REVOKED)
            a->wrong++;
        if (revocation_check(a->rc, "EC_good", "sess-ok", now, load, a->f, &retry) != REV_OK)
            a->wrong++;
    }
    return NULL;
}

static void test_concurrent_readers_while_reloading(void **state)
{
    (void)state;
    struct revocation_cache rc;
    revocation_init(&rc);
    struct fake f = {.clients = {"EC_bad", "EC_x"}, .nc = 2, .sessions = {"sess-bad"}, .ns = 1};
    _Atomic int64_t clock = 1000000;
    enum { N = 6 };
    pthread_t th[N];
    struct reader_arg args[N];
    for (int i = 0; i < N; i++) {
        args[i] = (struct reader_arg){.rc = &rc, .f = &f, .clock = &clock};
        assert_int_equal(pthread_create(&th[i], NULL, reader, &args[i]), 0);
    }
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        assert_int_equal(args[i].wrong, 0);
    }
    /* 240000 checks over 120 s of fake time: about one load a second, not one per check */
    int calls = atomic_load(&f.calls);
    assert_true(calls >= 60);
    assert_true(calls < 2000);
    revocation_free(&rc);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_loads_once_and_answers_from_the_snapshot),
        cmocka_unit_test(test_reloads_ahead_of_expiry_and_fails_closed_when_stale),
        cmocka_unit_test(test_backs_off_while_the_store_fails),
        cmocka_unit_test(test_concurrent_readers_while_reloading),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
